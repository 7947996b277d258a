"""Configuration: the ``PIPEX`` mode and ``pipex.*`` settings in ``dask.config``.

Everything is read when used, never at import: ``dask.config.set({"pipex.path": ...})``,
``DASK_PIPEX__PATH=...`` and ``PIPEX=off`` all take effect on the next call.
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


@functools.cache
def _defaults() -> dict[str, Any]:
    text = (pathlib.Path(__file__).parent / "pipex.yaml").read_text()
    return yaml.safe_load(text)["pipex"]


def get(name: str) -> Any:
    """The setting ``pipex.<name>`` from ``dask.config``, falling back to pipex's default."""
    return dask.config.get(f"pipex.{name}", default=_defaults()[name])


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
