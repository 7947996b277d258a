"""Prefect 3 integration (``PIPEX=prefect`` and ``PIPEX=prefect+cache``): not built yet."""

from __future__ import annotations

from typing import Any

from pipex.exceptions import ModeError


def in_flow_run() -> bool:
    """Whether the caller runs inside a Prefect flow run."""
    return False


def call_as_task(task: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Run a pipex task as a plain Prefect task (``PIPEX=prefect``)."""
    raise ModeError("PIPEX=prefect is not available in this version of pipex")


def execute(plan: Any, keep_going: bool, progress: Any, **kwargs: Any) -> dict[str, Any]:
    """Run a plan's missing nodes as Prefect task runs (``PIPEX=prefect+cache``)."""
    raise ModeError("PIPEX=prefect+cache is not available in this version of pipex")
