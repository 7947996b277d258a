"""What each ``pipex.*`` setting accepts, and where a value came from.

:func:`check` is how :mod:`pipex.settings` reads every value: a value that is not accepted
is one :class:`~pipex.exceptions.SettingError` naming the key, the value, where it came
from (an environment variable, a dask config file, or ``dask.config.set`` in code) and what
is accepted, instead of a progress bar drawn into a pipe or a scheduler's long error later.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

import dask.config
from dask.utils import parse_timedelta

from pipex.exceptions import SettingError


def _boolean(value: Any) -> bool:
    return isinstance(value, bool)


def _duration(value: Any) -> bool:
    if isinstance(value, bool) or value is None:
        return False
    try:
        seconds = parse_timedelta(value, default="seconds")
    except (ValueError, TypeError, KeyError):
        return False
    return seconds is not None and seconds >= 0


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _path(value: Any) -> bool:
    return isinstance(value, str | os.PathLike) and str(value).strip() != ""


def _loggers(value: Any) -> bool:
    return value is None or (
        isinstance(value, list | tuple) and all(isinstance(v, str) and v for v in value)
    )


def _level(value: Any) -> bool:
    if isinstance(value, int) and not isinstance(value, bool):
        return True
    return isinstance(value, str) and isinstance(logging.getLevelName(value.upper()), int)


def _one_of(*choices: Any) -> Callable[[Any], bool]:
    def accepted(value: Any) -> bool:
        return any(value is c or (value == c and type(value) is type(c)) for c in choices)

    return accepted


BOOLEAN = (_boolean, "true or false")
DURATION = (_duration, "a duration: seconds (60) or a string with a unit ('60s', '2min')")

#: Each setting (dotted, under ``pipex.``): its check and what it accepts, in words.
ACCEPTED: dict[str, tuple[Callable[[Any], bool], str]] = {
    "path": (_path, "a folder or URL (a non-empty string)"),
    "keep-going": BOOLEAN,
    "progress": (_one_of("auto", True, False), "auto, true or false"),
    "batch-size": (_count, "a whole number of tasks, 1 or more"),
    "fuse": BOOLEAN,
    "chains-per-task": (
        lambda value: value == "auto" or _count(value),
        "auto or a whole number of chains, 1 or more",
    ),
    "ledger": BOOLEAN,
    "rerun": (_one_of(None, "code"), "null (never) or code"),
    "claims.enabled": BOOLEAN,
    "claims.timeout": DURATION,
    "distributed.wait-for-workers": DURATION,
    "distributed.connect-timeout": DURATION,
    "distributed.memory-release": BOOLEAN,
    "distributed.memory-release-interval": DURATION,
    "distributed.long-running": BOOLEAN,
    "distributed.forward-logs": (_loggers, "a list of logger names ([] for none)"),
    "distributed.forward-logs-level": (_level, "a logging level: DEBUG, INFO, WARNING..."),
    "prefect.granularity": (_one_of("node", "graph"), "node or graph"),
}

_CHECKED: set[tuple[str, Any]] = set()  # (name, value) pairs found good: checked once


def check(name: str, value: Any) -> Any:
    """``value`` of the setting ``pipex.<name>`` if it is accepted (a section: each value in
    it), else a :class:`SettingError`."""
    try:
        if (name, value) in _CHECKED:
            return value
        hashable = True
    except TypeError:  # a section (dict) or a list
        hashable = False
    if isinstance(value, dict):
        for key, inner in value.items():
            inner_name = f"{name}.{str(key).replace('_', '-')}"
            if inner_name in ACCEPTED or any(k.startswith(inner_name + ".") for k in ACCEPTED):
                check(inner_name, inner)
        return value
    accepted = ACCEPTED.get(name)
    if accepted is not None and not accepted[0](value):
        raise SettingError(
            f"pipex.{name} is {value!r} ({origin(name)}), which it does not accept: it takes "
            f"{accepted[1]}. Nothing ran: fix or unset it."
        )
    if hashable:
        _CHECKED.add((name, value))
    return value


def check_all() -> None:
    """Check every setting's value (what :func:`pipex.compute` does before anything runs)."""
    for name in ACCEPTED:
        try:
            value = dask.config.get(f"pipex.{name}")
        except KeyError:
            continue
        check(name, value)


def variable(name: str) -> str:
    """The environment variable that sets ``pipex.<name>``: ``DASK_PIPEX__CLAIMS__TIMEOUT``."""
    return "DASK_PIPEX__" + "__".join(name.upper().replace("-", "_").split("."))


def origin(name: str) -> str:
    """Where the value of ``pipex.<name>`` came from, in words: the environment variable,
    the dask config file(s), or else code (``dask.config.set``)."""
    return source(name)[0]


def source(name: str) -> tuple[str, str | None, int]:
    """Where the value of ``pipex.<name>`` came from: in words, and as a place a warning
    can point at: the environment variable (its name, line 0), the config file and the line
    that sets it, or ``None`` (set in code)."""
    wanted = ["pipex", *(part.replace("_", "-") for part in name.split("."))]
    for key in os.environ:
        if key.startswith("DASK_") and _parts(key[5:]) == wanted:
            return f"from the environment variable {key}={os.environ[key]}", key, 0
    files = [str(p) for p in dask.config.paths_containing_key(f"pipex.{name}")]
    if files:
        said = f"from the dask config file {' and '.join(files)}"
        return said, files[-1], _line(files[-1], name)
    return "set in code with dask.config.set, or in a config dask was given", None, 0


def _line(file: str, name: str) -> int:
    """The line of ``file`` that sets the last part of ``name`` (1 if none is found)."""
    last = name.rsplit(".", 1)[-1]
    spellings = {last, last.replace("-", "_"), last.replace("_", "-")}
    try:
        with open(file, encoding="utf-8") as text:
            for number, line in enumerate(text, 1):
                key = line.strip().split(":", 1)[0].strip().strip("'\"")
                if key in spellings:
                    return number
    except OSError:
        pass
    return 1


def _parts(variable: str) -> list[str]:
    return [part.replace("_", "-") for part in variable.lower().split("__")]
