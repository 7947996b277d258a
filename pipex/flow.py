"""``pipex.flow``: marks a pipeline's entry point; a Prefect flow in the Prefect modes."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from pipex import registry, settings

F = TypeVar("F", bound=Callable[..., Any])


def flow(fn: F | None = None, /, **options: Any) -> Any:
    """Decorate a pipeline function. In ``off`` and ``cache`` modes it runs unchanged.

    With ``PIPEX=prefect`` it runs as ``prefect.flow(fn, **options)``; with
    ``PIPEX=prefect+cache`` too, with ``prefect_dask.DaskTaskRunner()`` as the task runner
    unless ``options`` names one. ``options`` are Prefect flow options, used by the Prefect
    modes only. The mode is read at each call, not when decorating.
    """

    def decorate(f: F) -> F:
        prefect_flows: dict[str, Any] = {}  # the flow built for each mode, on first use

        @functools.wraps(f)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            mode = settings.mode()  # refuses an unknown PIPEX mode before running
            handler = settings.MODE_FLOWS.get(mode)
            if handler is not None:
                built = prefect_flows.get(mode)
                if built is None:
                    built = prefect_flows[mode] = registry.load(handler)(f, options, mode)
                return built(*args, **kwargs)
            return f(*args, **kwargs)

        wrapper.options = options  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorate if fn is None else decorate(fn)
