"""Executors: run a plan's missing nodes somewhere, reporting each outcome to an observer.

:data:`EXECUTORS` lists, by import string and in order of preference, the functions that
may claim a run (``claim(scheduler) -> Executor | None``); the first that claims it runs
it. A new executor is one module plus one line here.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pipex import registry
from pipex.executors.base import Executor

#: Each entry's module also names the scheduler options it takes, as ``OPTIONS``.
EXECUTORS: tuple[str, ...] = (
    "pipex.executors.prefect:claim",  # inside a Prefect flow run, with PIPEX=prefect+cache
    "pipex.executors.distributed:claim",  # a distributed Client, address, or the active one
    "pipex.executors.local:claim",  # dask's local schedulers: claims every other run
)

__all__ = ["EXECUTORS", "Executor", "check_options", "select"]


def check_options(options: Iterable[str]) -> None:
    """Refuse scheduler options that no executor takes (``TypeError`` naming them).

    Run before anything is resolved or run: a misspelt keyword is never silently ignored.
    Each executor checks again, against its own options, before it runs anything.
    """
    known: set[str] = set()
    for spec in EXECUTORS:
        known.update(registry.load(spec.partition(":")[0] + ":OPTIONS"))
    unknown = sorted(set(options) - known)
    if unknown:
        raise TypeError(
            f"pipex.compute got unknown keyword argument(s) {', '.join(unknown)}; it takes "
            "load, scheduler, keep_going, progress, skip_failed, and these scheduler options: "
            f"{', '.join(sorted(known))}"
        )


def select(scheduler: Any = None) -> Executor:
    """The executor for ``scheduler`` (as :func:`pipex.compute` takes it)."""
    for spec in EXECUTORS:
        executor = registry.load(spec)(scheduler)
        if executor is not None:
            return executor
    raise ValueError(f"no pipex executor runs scheduler={scheduler!r}")
