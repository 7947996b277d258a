"""``pipex.flow``: marks a pipeline's entry point; a Prefect flow in the Prefect modes."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from pipex import config

F = TypeVar("F", bound=Callable[..., Any])


def flow(fn: F | None = None, /, **options: Any) -> Any:
    """Decorate a pipeline function. In ``off`` and ``cache`` modes it runs unchanged.

    ``options`` are Prefect flow options, used by the Prefect modes only.
    """

    def decorate(f: F) -> F:
        @functools.wraps(f)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            config.mode()  # refuse an unknown or unavailable PIPEX mode before running
            return f(*args, **kwargs)

        wrapper.options = options  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorate if fn is None else decorate(fn)
