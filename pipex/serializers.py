"""How a target's data is written and read, chosen by the target's suffix."""

from __future__ import annotations

import json
import pickle
import posixpath
from typing import IO, Any, Protocol

import cloudpickle

from pipex.exceptions import SerializerError


class Serializer(Protocol):
    """Writes an object to, and reads it from, a binary file object."""

    def dump(self, obj: Any, file: IO[bytes]) -> None: ...

    def load(self, file: IO[bytes]) -> Any: ...


class Pickle:
    """``.pkl`` / ``.pickle``: cloudpickle, so lambdas and local classes round-trip."""

    exact = True  # loading gives back an object equal to the one dumped, of its type

    def dump(self, obj: Any, file: IO[bytes]) -> None:
        cloudpickle.dump(obj, file, protocol=pickle.HIGHEST_PROTOCOL)

    def load(self, file: IO[bytes]) -> Any:
        return pickle.load(file)


class Json:
    """``.json``: UTF-8 JSON."""

    def dump(self, obj: Any, file: IO[bytes]) -> None:
        file.write(json.dumps(obj).encode("utf-8"))

    def load(self, file: IO[bytes]) -> Any:
        return json.load(file)


class Text:
    """``.txt``: a ``str``, written as UTF-8."""

    exact = True

    def dump(self, obj: Any, file: IO[bytes]) -> None:
        if not isinstance(obj, str):
            raise SerializerError(
                f"a .txt target holds text, but the task returned {type(obj).__name__}; "
                "return a str or use a .pkl or .json target"
            )
        file.write(obj.encode("utf-8"))

    def load(self, file: IO[bytes]) -> Any:
        return file.read().decode("utf-8")


class Numpy:
    """``.npy``: one numpy array (needs numpy); object arrays are refused."""

    def dump(self, obj: Any, file: IO[bytes]) -> None:
        np = _numpy()
        np.save(file, np.asarray(obj), allow_pickle=False)

    def load(self, file: IO[bytes]) -> Any:
        return _numpy().load(file, allow_pickle=False)


def _numpy() -> Any:
    try:
        import numpy
    except ImportError as exc:
        raise ImportError(
            "a .npy target needs numpy: pip install numpy (or use a .pkl target)"
        ) from exc
    return numpy


_PICKLE = Pickle()
_BY_SUFFIX: dict[str, Serializer] = {
    ".pkl": _PICKLE,
    ".pickle": _PICKLE,
    ".json": Json(),
    ".txt": Text(),
    ".npy": Numpy(),
}

SUFFIXES: tuple[str, ...] = tuple(_BY_SUFFIX)


def exact(suffix: str) -> bool:
    """Whether loading what the serializer for ``suffix`` dumped gives back an equal object
    of the same type (pickle and text do; JSON turns tuples into lists, say)."""
    serializer = _BY_SUFFIX.get(suffix.lower())
    return bool(getattr(serializer, "exact", False))


def suffix_of(location: str) -> str:
    """The suffix of a location's file name (``"../out/a.pkl"`` -> ``".pkl"``): only the
    last component is looked at, so dots in the folders never count."""
    return posixpath.splitext(posixpath.basename(location))[1]


def for_suffix(suffix: str) -> Serializer:
    """The serializer for a suffix such as ``".pkl"``; :class:`SerializerError` if none fits."""
    try:
        return _BY_SUFFIX[suffix.lower()]
    except KeyError:
        shown = repr(suffix) if suffix else "no suffix"
        raise SerializerError(
            f"pipex has no serializer for {shown}; use one of {', '.join(SUFFIXES)}, "
            "or pass save=False and write the file yourself"
        ) from None
