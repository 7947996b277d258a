"""Running pipex graphs on a dask.distributed cluster."""

from __future__ import annotations

from typing import Any

from pipex.execution import Outcome
from pipex.graph import Plan, run_token, task_key
from pipex.progress import Progress


def execute(
    plan: Plan, client: Any, keep_going: bool, progress: Progress, **kwargs: Any
) -> dict[str, Outcome]:
    """Run the plan's missing nodes on ``client``'s cluster; the outcome of each, by key."""
    run = run_token()
    keys = [task_key(node, run) for node in plan.missing]
    results = client.get(plan.graph(keep_going, run), keys, **kwargs)
    for result in results:
        progress.advance(result)
    return {node.key: r for node, r in zip(plan.missing, results, strict=True)}
