"""``pipex.compute``: resolve on the client, run only what is missing, report every failure."""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import dask
import dask.threaded
from dask.base import get_scheduler

from pipex import config
from pipex.execution import CONTAINERS, Outcome
from pipex.graph import Plan, resolve, run_token, task_key
from pipex.progress import LocalProgress, Progress, enabled
from pipex.report import Results, failure_error, summarize
from pipex.targets import Target
from pipex.task import Node

logger = logging.getLogger("pipex")


def compute(
    *args: Any,
    load: bool = False,
    scheduler: Any = None,
    keep_going: bool | None = None,
    progress: bool | None = None,
    **kwargs: Any,
) -> tuple[Any, ...]:
    """Compute nodes, running only what is missing below them.

    Returns a tuple like ``dask.compute``: a :class:`Target` per node (its data with
    ``load=True``); its ``.summary`` counts what was done, ran, failed and not run.
    Lists, tuples and dicts of nodes are traversed; other values pass through. ``scheduler``
    is as in dask (``"threads"``, ``"sync"``, ``"processes"``, a ``distributed.Client``, or
    a scheduler address); by default the active distributed client if there is one, else
    dask's threads. With ``keep_going`` (default: ``pipex.keep-going``, true) independent
    work goes on after a failure and one :class:`PipelineError` lists every failed and unrun
    task at the end; otherwise the first failure is raised at once. ``progress`` shows a bar
    (default: ``pipex.progress``, on when stderr is a terminal). Extra keywords go to the
    scheduler.
    """
    start = time.perf_counter()
    nodes: list[Node] = []
    for arg in args:
        _collect(arg, nodes)
    if not nodes:
        return args
    if keep_going is None:
        keep_going = bool(config.get("keep-going"))
    plan = resolve(nodes)
    outcomes: dict[str, Outcome] = {}
    if plan.missing:
        with (
            _connected(scheduler) as scheduler,
            Progress(len(plan.missing), len(plan.done), progress) as bar,
        ):
            for batch in plan.batches(int(config.get("batch-size")), outcomes):
                outcomes.update(execute(batch, scheduler, keep_going, bar, **kwargs))
    summary = summarize(
        len({n.key for n in nodes}), len(plan.done), outcomes.values(), time.perf_counter() - start
    )
    logger.info("%s", summary)
    if plan.missing and (progress if progress is not None else enabled()):
        print(summary, file=sys.stderr)
    error = failure_error(outcomes.values(), summary)
    if error is not None:
        raise error
    outcomes.update(plan.done)
    return Results((_repack(arg, outcomes, load) for arg in args), summary)


def execute(
    plan: Plan, scheduler: Any, keep_going: bool, progress: Progress, **kwargs: Any
) -> dict[str, Outcome]:
    """Run the plan's missing nodes on the chosen scheduler; the outcome of each, by key."""
    if config.mode() == "prefect+cache":
        from pipex import prefect as prefect_mode

        if prefect_mode.in_flow_run():
            return prefect_mode.execute(plan, keep_going, progress, **kwargs)
    client = _distributed_client(scheduler)
    if client is not None:
        from pipex.distributed import execute as on_cluster

        return on_cluster(plan, client, keep_going, progress, **kwargs)
    run = run_token()
    keys = [task_key(node, run) for node in plan.missing]
    with LocalProgress(progress):
        results = _local_scheduler(scheduler)(plan.graph(keep_going, run), keys, **kwargs)
    return {node.key: r for node, r in zip(plan.missing, results, strict=True)}


@contextlib.contextmanager
def _connected(scheduler: Any) -> Iterator[Any]:
    """``scheduler``, with a scheduler address replaced by a client open for the whole run."""
    if isinstance(scheduler, str) and ":" in scheduler:
        with _distributed_client(scheduler) as client:
            yield client
    else:
        yield scheduler


def _distributed_client(scheduler: Any) -> Any:
    """The distributed client to run on, or ``None`` for dask's local schedulers.

    ``scheduler`` may be a ``distributed.Client``, a scheduler address (``"tcp://host:8786"``;
    the client opened for it is the caller's to close), ``"distributed"`` for the active
    client, or ``None``: then the active client if there is one and ``dask.config``'s
    ``scheduler`` does not name a local one.
    """
    if isinstance(scheduler, str):
        if scheduler in ("distributed", "dask.distributed"):
            from distributed import default_client

            return default_client()
        if ":" in scheduler:  # an address: "tcp://10.0.0.5:8786", "localhost:8786"
            from distributed import Client

            return Client(scheduler, set_as_default=False)
        return None
    if scheduler is not None:
        distributed = sys.modules.get("distributed")
        return scheduler if distributed and isinstance(scheduler, distributed.Client) else None
    if "distributed" in sys.modules:
        choice = dask.config.get("scheduler", None)
        if choice in (None, "dask.distributed", "distributed"):
            from distributed import default_client

            try:
                return default_client()
            except ValueError:
                return None
    return None


def _local_scheduler(scheduler: Any) -> Callable[..., Sequence[Any]]:
    """dask's local scheduler of choice (threads by default)."""
    if scheduler is None and dask.config.get("scheduler", None) is None:
        return dask.threaded.get
    return get_scheduler(scheduler=scheduler, cls=Node)


def _collect(value: Any, found: list[Node]) -> None:
    if isinstance(value, Node):
        found.append(value)
    elif type(value) in CONTAINERS:
        for v in value:
            _collect(v, found)
    elif type(value) is dict:
        for v in value.values():
            _collect(v, found)


def _repack(value: Any, outcomes: dict[str, Any], load: bool) -> Any:
    if isinstance(value, Node):
        target: Target = outcomes[value.key]
        return target.load() if load else target
    if type(value) in CONTAINERS:
        return type(value)(_repack(v, outcomes, load) for v in value)
    if type(value) is dict:
        return {k: _repack(v, outcomes, load) for k, v in value.items()}
    return value
