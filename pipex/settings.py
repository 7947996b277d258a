"""Settings: the ``PIPEX`` mode and every ``pipex.*`` key, registered with ``dask.config``.

pipex follows dask's pattern for downstream libraries: the defaults in ``pipex.yaml`` are
registered with ``dask.config.update_defaults`` when this module is first imported (an
in-memory update: nothing is read from or written to the user's files), and every value is
read when used, so ``dask.config.set({"pipex.path": ...})``, ``DASK_PIPEX__PATH=...`` and
``PIPEX=off`` all take effect on the next call. A ``pipex.*`` key that is not a setting (a
misspelling, which dask would silently keep) is warned of when settings are read.
"""

from __future__ import annotations

import difflib
import functools
import os
import pathlib
import sys
import warnings
from collections.abc import Iterator
from typing import Any, Literal

import dask.config
import yaml

from pipex.exceptions import ModeError
from pipex.setting_checks import check, source
from pipex.setting_checks import check_all as _check_all

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
    """The setting ``pipex.<name>`` (dotted for nested keys: ``"distributed.long-running"``).

    Warns, once per key, of each ``pipex.*`` key set that pipex does not know (see
    :func:`warn_unknown`).
    """
    warn_unknown(dask.config.config.get("pipex"))
    return check(name, dask.config.get(f"pipex.{name}"))


def check_all() -> None:
    """Check every ``pipex.*`` value (a :class:`~pipex.exceptions.SettingError` for one not
    accepted) and warn of unknown keys: what :func:`pipex.compute` does before anything runs."""
    warn_unknown(dask.config.config.get("pipex"))
    _check_all()


def warn_unknown(section: Any) -> None:
    """A ``UserWarning``, once per key, for each key of ``section`` (the ``pipex`` part of
    dask's configuration) that is not a pipex setting, naming the closest one."""
    if isinstance(section, dict):
        for name in _names(section):
            if name not in _KNOWN and _canonical(name) not in _KNOWN:
                _warn(name)


def _names(section: dict[str, Any], prefix: str = "") -> Iterator[str]:
    """The dotted names of the keys set in ``section``, down to the known sub-sections."""
    for key, value in section.items():
        name = f"{prefix}{key}"
        if type(value) is dict and _canonical(name) in _SECTIONS:
            yield from _names(value, f"{name}.")
        else:
            yield name


def _canonical(name: str) -> str:
    return str(name).replace("_", "-")


def _known(section: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, bool]]:
    """Each dotted name of ``section`` and whether it is a sub-section."""
    for key, value in section.items():
        name = f"{prefix}{key}"
        yield name, isinstance(value, dict)
        if isinstance(value, dict):
            yield from _known(value, f"{name}.")


_SECTIONS = frozenset(name for name, inner in _known(DEFAULTS["pipex"]) if inner)
_LEAVES = tuple(name for name, inner in _known(DEFAULTS["pipex"]) if not inner)
_KNOWN = _SECTIONS | frozenset(_LEAVES)


@functools.cache
def _warn(name: str) -> None:
    """Warn that ``pipex.<name>`` is not a setting (once per process: the result is cached),
    pointing at where it was set: the environment variable, the line of the config file, or
    (set in code) the user's line that read it."""
    close = difflib.get_close_matches(_canonical(name), _LEAVES, n=1)
    hint = (
        f"did you mean pipex.{close[0]}?"
        if close
        else f"the settings are: {', '.join(f'pipex.{k}' for k in _LEAVES)}."
    )
    said, where, line = source(name)
    message = f"pipex.{name} is not a pipex setting, so it is ignored ({said}): {hint}"
    if where is None:
        warnings.warn(message, UserWarning, stacklevel=_first_outside())
    else:
        warnings.warn_explicit(message, UserWarning, where, line, module="pipex.settings")


def _first_outside() -> int:
    """The ``stacklevel`` of the caller's first frame outside pipex: a warning shows the
    user's line that led to it, not pipex's."""
    package = os.path.dirname(os.path.abspath(__file__)) + os.sep
    frame, level = sys._getframe(1), 1  # level 1: the function that warns
    while frame.f_back is not None and frame.f_code.co_filename.startswith(package):
        frame, level = frame.f_back, level + 1
    return level


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
