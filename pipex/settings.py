"""Settings: the ``PIPEX`` mode and every ``pipex.*`` key, registered with ``dask.config``.

pipex follows dask's pattern for downstream libraries: the defaults in ``pipex.yaml`` are
registered with ``dask.config.update_defaults`` when this module is first imported (an
in-memory update: nothing is read from or written to the user's files), and every value is
read when used, so ``dask.config.set({"pipex.path": ...})``, ``DASK_PIPEX__PATH=...`` and
``PIPEX=off`` all take effect on the next call.
"""

from __future__ import annotations

import functools
import os
import pathlib
from typing import Any, Literal

import dask.config
import yaml

from pipex.exceptions import ModeError

Mode = Literal["off", "cache", "prefect", "prefect+cache"]

MODES: tuple[str, ...] = ("off", "cache", "prefect", "prefect+cache")
_ALIASES = {"do_nothing": "off", "prefect.cache": "prefect+cache", "": "cache"}

#: What a task call and ``pipex.flow`` become in each mode that hands them to another
#: library, by import string (loaded only in that mode, so pipex never imports Prefect first).
MODE_CALLS: dict[str, str] = {"prefect": "pipex.executors.prefect.plain:call_as_task"}
MODE_FLOWS: dict[str, str] = {
    "prefect": "pipex.executors.prefect.plain:as_flow",
    "prefect+cache": "pipex.executors.prefect.plain:as_flow",
}

DEFAULTS: dict[str, Any] = yaml.safe_load(
    (pathlib.Path(__file__).parent / "pipex.yaml").read_text()
)
dask.config.update_defaults(DEFAULTS)


def get(name: str) -> Any:
    """The setting ``pipex.<name>`` (dotted for nested keys: ``"distributed.long-running"``)."""
    return dask.config.get(f"pipex.{name}")


def choice(name: str, allowed: tuple[Any, ...], meaning: str) -> Any:
    """The setting ``pipex.<name>``, which must be one of ``allowed``.

    Any other value is a :class:`ModeError` naming the setting, the choices and ``meaning``
    (what each choice does).
    """
    value = get(name)
    if value not in allowed:
        shown = ", ".join("null" if a is None else str(a) for a in allowed)
        raise ModeError(f"pipex.{name}={value!r} is not one of {shown}: {meaning}")
    return value


def root() -> Any:
    """The setting ``pipex.path`` (read on every node built, so by the shortest way)."""
    section = dask.config.config.get("pipex")
    value = section.get("path") if isinstance(section, dict) else None
    return value if value is not None else get("path")


def _environment_variable(name: str) -> str | None:
    """``os.environ.get(name)``, reading the live mapping directly where it is bytes (POSIX).

    Tasks read ``PIPEX`` on every call; ``os.environ.get`` costs ~0.8 us, this ~0.1 us.
    """
    data = getattr(os.environ, "_data", None)
    if os.name == "posix" and isinstance(data, dict):
        value = data.get(_encoded(name))
        return None if value is None else os.fsdecode(value)
    return os.environ.get(name)


@functools.cache
def _encoded(name: str) -> bytes:
    return os.fsencode(name)


def mode_set() -> bool:
    """Whether the ``PIPEX`` environment variable is set at all (else the mode is ``cache``).

    The first thing every task call asks, so by the shortest way (~30 ns on POSIX).
    """
    if os.environ is _ENVIRON and _DATA is not None:
        return _PIPEX_KEY in _DATA
    return "PIPEX" in os.environ


_ENVIRON = os.environ
#: The live mapping behind ``os.environ`` on POSIX (``putenv`` and ``del`` update it in place).
_DATA = getattr(os.environ, "_data", None) if os.name == "posix" else None
_PIPEX_KEY = os.fsencode("PIPEX")


def mode() -> Mode:
    """The mode named by the ``PIPEX`` environment variable (default ``cache``).

    The Prefect modes need the ``prefect`` extra; pipex imports it only when they are used.
    """
    raw = _environment_variable("PIPEX")
    if raw is None:
        return "cache"
    value = raw.strip().lower()
    value = _ALIASES.get(value, value)
    if value not in MODES:
        raise ModeError(
            f"PIPEX={raw!r} is not a pipex mode. Set PIPEX to one of: {', '.join(MODES)} "
            "(or unset it for the default, 'cache')."
        )
    return value  # type: ignore[return-value]
