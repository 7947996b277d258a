"""Restart benchmark under Prefect: C chains x 4 steps, 80% of chains done, on Dask.

The seed user's case: a Prefect run of C x 4 tasks died after 80% of the chains, and is
restarted. Every restart runs as a Prefect flow on a ``DaskTaskRunner`` connected to the same
``LocalCluster`` (2 single-threaded worker processes), and is compared on wall time of the
flow call and on the task runs it created in Prefect's API:

- pipex, ``PIPEX=prefect+cache``, ``pipex.prefect.granularity: node``: one task run per
  missing node;
- pipex, ``PIPEX=prefect+cache``, ``pipex.prefect.granularity: graph``: one task run that
  computes the missing graph with dask;
- Prefect's own caching: plain Prefect tasks with a ``result_storage_key`` template, so a task
  whose result exists ends ``Cached`` without running its function (it is still a task run,
  and its result is read back for the tasks downstream of it);
- for reference, pipex's cache mode on the same cluster, without Prefect (``cache``), and on
  dask's threads in the flow's process, as a user runs it without a cluster (``threads``).

The Prefect rows need the prefect extra. Run:

    python benchmarks/prefect_restart.py                  # 500 chains: 2,000 tasks
    python benchmarks/prefect_restart.py --chains 50      # a smoke run
    python benchmarks/prefect_restart.py --rows node      # only pipex's node granularity
    python benchmarks/prefect_restart.py --rows node --breakdown   # where its CPU goes
    python benchmarks/prefect_restart.py --chains 5000 --done 0 --rows graph,cache
        # a fresh run (nothing done) of 20,000 tasks: graph granularity against PIPEX=cache
    python benchmarks/prefect_restart.py --chains 25000 --done 0 --rows graph,cache,threads
        # 100,000 tasks: five batches of pipex.batch-size, the next sent while one runs

With the ``graph`` row and the ``cache`` or ``threads`` rows it prints their ratios of wall
times, measured in the same run (the machine may be shared: compare the ratio, not the
seconds).

Besides wall time it prints the CPU time of the flow process (every thread of it: the flow,
dask's client, Prefect's event and log workers) and of the dask workers during each row, so
that figures taken on a busy machine can still be compared. With ``--breakdown`` it also
prints where the CPU time of the node granularity's task runs goes, per task run: by thread
of the flow process and of the workers (pipex's own call timed on the workers), and the
Prefect server's process.

It runs against a temporary Prefect server (Prefect's test harness: its own SQLite database)
unless PREFECT_API_URL is set, keeps Prefect's home and result storage in a temporary folder,
and prints a markdown table at the end.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any

WORK = tempfile.mkdtemp(prefix="pipex-prefect-bench-")
# `import prefect` creates $PREFECT_HOME: keep it, and Prefect's result files, out of $HOME.
os.environ.setdefault("PREFECT_HOME", os.path.join(WORK, "prefect-home"))
os.environ["PREFECT_RESULTS_LOCAL_STORAGE_PATH"] = os.path.join(WORK, "prefect-results")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

import dask  # noqa: E402
import distributed  # noqa: E402
import prefect  # noqa: E402
import psutil  # noqa: E402  (a dependency of distributed)
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId  # noqa: E402
from prefect.futures import wait  # noqa: E402
from prefect_dask import DaskTaskRunner  # noqa: E402

import pipex  # noqa: E402

STEPS = 4
ROWS = ("node", "graph", "prefect", "cache", "threads")  # the rows --rows chooses from


# --- the pipeline, as pipex tasks and as Prefect tasks -------------------------------------


@pipex.task(target="{path}/s1/{chain}.pkl", name="s1")
def s1(chain: int) -> int:
    return chain


@pipex.task(target="{path}/s2/{chain}.pkl", name="s2")
def s2(x: int, chain: int) -> int:
    return x + 1


@pipex.task(target="{path}/s3/{chain}.pkl", name="s3")
def s3(x: int, chain: int) -> int:
    return x + 1


@pipex.task(target="{path}/s4/{chain}.pkl", name="s4")
def s4(x: int, chain: int) -> int:
    return x + 1


def pipex_nodes(root: str, chains: int) -> list[pipex.Node]:
    with pipex.context(path=root):
        return [s4(s3(s2(s1(c), c), c), c) for c in range(chains)]


@prefect.task(name="s1", result_storage_key="s1/{parameters[chain]}.pkl")
def p1(chain: int) -> int:
    return chain


@prefect.task(name="s2", result_storage_key="s2/{parameters[chain]}.pkl")
def p2(x: int, chain: int) -> int:
    return x + 1


@prefect.task(name="s3", result_storage_key="s3/{parameters[chain]}.pkl")
def p3(x: int, chain: int) -> int:
    return x + 1


@prefect.task(name="s4", result_storage_key="s4/{parameters[chain]}.pkl")
def p4(x: int, chain: int) -> int:
    return x + 1


def prefect_pipeline(chains: int) -> dict[str, int]:
    """Submit every chain's four tasks; wait; count the final states by name."""
    futures = []
    for c in range(chains):
        x = p1.submit(c)
        futures.append(x)
        for step in (p2, p3, p4):
            x = step.submit(x, c)
            futures.append(x)
    wait(futures)
    states: dict[str, int] = {}
    for future in futures:
        states[future.state.name] = states.get(future.state.name, 0) + 1
    return states


# --- measuring ----------------------------------------------------------------------------


def task_runs(state: Any, timeout: float = 300) -> int:
    """How many task runs the flow run that ended in ``state`` created, once they are all in."""
    flow_run_id = state.state_details.flow_run_id
    deadline = time.monotonic() + timeout
    last = -1
    while True:
        count = 0
        with prefect.get_client(sync_client=True) as client:
            while True:
                page = client.read_task_runs(
                    flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])),
                    limit=200,
                    offset=count,
                )
                count += len(page)
                if len(page) < 200:
                    break
        if count == last or time.monotonic() > deadline:
            return count
        last = count
        time.sleep(2)


def timed_flow(fn: Callable[..., Any], *args: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    state = fn(*args, return_state=True)
    seconds = time.perf_counter() - start
    if not state.is_completed():
        raise RuntimeError(f"the benchmark flow ended {state}")
    return seconds, state


PREFECT_THREADS = ("GlobalEventLoopThread", "EventsWorkerThread", "APILogWorkerThread")


def threads_cpu(dask_worker: Any = None) -> dict[str, float]:
    """CPU seconds of this process, by kind of thread: dask's task threads, the main
    thread (a dask worker's event loop), dask's client loop, Prefect's event and log
    threads, others; and ``pipex``, the time of pipex's calls (see :func:`time_pipex`)."""
    names = {t.native_id: t.name for t in threading.enumerate()}
    kinds = {"pipex": sum(getattr(dask_worker, "pipex_cpu", [0.0]))}
    for thread in psutil.Process().threads():
        name = names.get(thread.id, "")
        if "Dask-Default-Threads" in name:
            kind = "tasks"
        elif name in ("MainThread", "IO loop"):
            kind = name
        elif name.startswith(PREFECT_THREADS):
            kind = "prefect"
        else:
            kind = "other"
        kinds[kind] = kinds.get(kind, 0.0) + thread.user_time + thread.system_time
    return kinds


def time_pipex(dask_worker: Any) -> None:
    """On a worker: add up the CPU time of pipex's own call in each task run."""
    from pipex.core import worker

    original = worker.execute_call
    spent = dask_worker.pipex_cpu = [0.0]

    def timed(*args: Any, **kwargs: Any) -> Any:
        start = time.thread_time()
        try:
            return original(*args, **kwargs)
        finally:
            spent[0] += time.thread_time() - start

    worker.execute_call = timed


def server_cpu() -> float:
    """CPU seconds of the Prefect server this process started (the test harness's)."""
    total = 0.0
    for child in psutil.Process().children(recursive=True):
        try:
            if "prefect.server" in " ".join(child.cmdline()):
                total += sum(child.cpu_times()[:2])
        except psutil.Error:
            pass
    return total


class CPU:
    """CPU seconds of this process, of the cluster's workers and of the Prefect server
    while a row runs."""

    def __init__(self, address: str | None) -> None:
        self.address = address  # None: no cluster (dask's threads)

    def workers(self) -> dict[str, float]:
        if self.address is None:
            return {}
        with distributed.Client(self.address) as client:
            total: dict[str, float] = {}
            for kinds in client.run(threads_cpu).values():
                for kind, seconds in kinds.items():
                    total[kind] = total.get(kind, 0.0) + seconds
            return total

    def __enter__(self) -> CPU:
        workers = self.workers()  # first: connecting costs this process CPU too
        self.start = (time.process_time(), threads_cpu(), workers, server_cpu())
        return self

    def __exit__(self, *exc: object) -> None:
        flow, flow_threads = time.process_time(), threads_cpu()
        workers, server = self.workers(), server_cpu()
        self.flow = flow - self.start[0]
        self.flow_threads = _minus(flow_threads, self.start[1])
        self.cluster = _minus(workers, self.start[2])
        self.server = server - self.start[3]

    def figures(self) -> dict[str, Any]:
        cluster = sum(v for k, v in self.cluster.items() if k != "pipex")
        return {"flow_cpu": self.flow, "workers_cpu": cluster, "cpu": self}


def _minus(after: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    return {kind: after[kind] - before.get(kind, 0.0) for kind in after}


def breakdown(row: dict[str, Any]) -> None:
    """Print where the CPU time of a row's task runs went, in ms per task run."""
    cpu, runs = row["cpu"], row["task_runs"]
    flow, workers = cpu.flow_threads, cpu.cluster
    lines = [
        (
            "flow process, main thread: pipex (resolve, submit, wait) and Prefect's flow run",
            flow.get("MainThread", 0.0),
        ),
        ("flow process, dask's client loop", flow.get("IO loop", 0.0)),
        (
            "flow process, Prefect's event and log threads, others",
            flow.get("prefect", 0.0) + flow.get("other", 0.0) + flow.get("tasks", 0.0),
        ),
        (
            "workers, task thread: Prefect's task engine",
            workers.get("tasks", 0.0) - workers.get("pipex", 0.0),
        ),
        (
            "workers, task thread: pipex's call (claim, load inputs, run, save)",
            workers.get("pipex", 0.0),
        ),
        (
            "workers, dask's event loop (tasks in, states between workers and out)",
            workers.get("MainThread", 0.0),
        ),
        (
            "workers, Prefect's event and log threads, others",
            workers.get("prefect", 0.0) + workers.get("other", 0.0),
        ),
        ("Prefect server (events and logs of the task runs)", cpu.server),
    ]
    print()
    print(f"CPU time per task run, {row['how']} ({runs} task runs):")
    print()
    print("| where | CPU per task run (ms) |")
    print("| --- | ---: |")
    for where, seconds in lines:
        print(f"| {where} | {1000 * seconds / runs:.1f} |")
    print(f"| total | {1000 * sum(s for _, s in lines) / runs:.1f} |")


def warm_up(address: str) -> None:
    """Import Prefect and pipex in every worker first, so that no row pays for it."""
    with distributed.Client(address) as client:
        client.run(__import__, "pipex.executors.prefect.runtime")


def measure(chains: int, done: int, address: str, which: set[str]) -> list[dict[str, Any]]:
    warm_up(address)
    with distributed.Client(address) as client:
        client.run(time_pipex)
    rows: list[dict[str, Any]] = []
    missing = (chains - done) * STEPS

    def runner() -> DaskTaskRunner:
        return DaskTaskRunner(address=address)

    # pipex: each variant gets its own folder with the first `done` chains written
    for granularity in ("node", "graph"):
        if granularity not in which:
            continue
        root = os.path.join(WORK, f"pipex-{granularity}")
        os.environ["PIPEX"] = "cache"
        pipex.compute(pipex_nodes(root, done))
        os.environ["PIPEX"] = "prefect+cache"

        @pipex.flow(name=f"pipex-{granularity}", task_runner=runner())
        def restart(root: str, chains: int) -> dict[str, int]:
            summary = pipex.compute(pipex_nodes(root, chains)).summary
            return {"done": summary.done, "ran": summary.ran}

        with dask.config.set({"pipex.prefect.granularity": granularity}), CPU(address) as cpu:
            seconds, state = timed_flow(restart, root, chains)
        os.environ["PIPEX"] = "cache"
        result = state.result()
        assert result["ran"] == missing, result
        rows.append(
            {
                "how": f"pipex prefect+cache, granularity {granularity}",
                "seconds": seconds,
                "task_runs": task_runs(state),
                "ran": result["ran"],
                **cpu.figures(),
            }
        )
        show(rows[-1])
    if "prefect" in which:
        rows.append(prefect_caching(chains, done, address))
        show(rows[-1])
    if "cache" in which:
        rows.append(pipex_cache(chains, done, address))
        show(rows[-1])
    if "threads" in which:
        rows.append(pipex_cache(chains, done, None))
        show(rows[-1])
    return rows


def show(row: dict[str, Any]) -> None:
    print({key: value for key, value in row.items() if key != "cpu"}, flush=True)


def prefect_caching(chains: int, done: int, address: str) -> dict[str, Any]:
    # Prefect's own caching: a first run writes the first `done` chains' results (not timed,
    # with the faster thread-pool runner), then the restart over every chain, on Dask
    @prefect.flow(name="prefect-first-run")
    def first_run(chains: int) -> dict[str, int]:
        return prefect_pipeline(chains)

    @prefect.flow(name="prefect-restart", task_runner=DaskTaskRunner(address=address))
    def prefect_restart(chains: int) -> dict[str, int]:
        return prefect_pipeline(chains)

    timed_flow(first_run, done)
    with CPU(address) as cpu:
        seconds, state = timed_flow(prefect_restart, chains)
    states = state.result()
    assert states.get("Cached", 0) == done * STEPS, states
    return {
        "how": "Prefect caching (result_storage_key)",
        "seconds": seconds,
        "task_runs": task_runs(state),
        "ran": states.get("Completed", 0),
        **cpu.figures(),
    }


def pipex_cache(chains: int, done: int, address: str | None) -> dict[str, Any]:
    # reference: pipex's cache mode on the same cluster (or, without an address, on dask's
    # threads), no Prefect
    root = os.path.join(WORK, "pipex-cache" if address else "pipex-threads")
    pipex.compute(pipex_nodes(root, done))
    with ExitStack() as stack:
        client = stack.enter_context(distributed.Client(address)) if address else None
        cpu = stack.enter_context(CPU(address))
        start = time.perf_counter()
        results = pipex.compute(pipex_nodes(root, chains), scheduler=client or "threads")
        seconds = time.perf_counter() - start
    where = "same cluster, PIPEX=cache" if address else "PIPEX=cache on dask's threads"
    return {
        "how": f"pipex (no Prefect), {where}",
        "seconds": seconds,
        "task_runs": 0,
        "ran": results.summary.ran,
        **cpu.figures(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chains", type=int, default=500, help="chains of 4 tasks (500)")
    parser.add_argument("--done", type=float, default=0.8, help="fraction of chains done")
    parser.add_argument(
        "--breakdown",
        action="store_true",
        help="print where the CPU time of the node granularity's task runs goes",
    )
    parser.add_argument(
        "--rows",
        default=",".join(ROWS),
        help=f"which rows, comma-separated, of {','.join(ROWS)} (all)",
    )
    args = parser.parse_args()
    which = set(args.rows.split(","))
    if not which <= set(ROWS):
        parser.error(f"--rows: {args.rows!r}; choose among {','.join(ROWS)}")
    done = int(args.chains * args.done)
    try:
        with ExitStack() as stack:
            if not os.environ.get("PREFECT_API_URL"):
                from prefect.settings import get_current_settings
                from prefect.testing.utilities import prefect_test_harness

                stack.enter_context(prefect_test_harness(server_startup_timeout=120))
                # dask worker processes only see the environment, not the harness's settings
                os.environ["PREFECT_API_URL"] = get_current_settings().api.url
            cluster = stack.enter_context(
                distributed.LocalCluster(
                    n_workers=2,
                    threads_per_worker=1,
                    processes=True,
                    host="127.0.0.1",
                    dashboard_address=None,
                )
            )
            rows = measure(args.chains, done, cluster.scheduler_address, which)
    finally:
        shutil.rmtree(WORK, ignore_errors=True)
    tasks = args.chains * STEPS
    print()
    print(
        f"{args.chains} chains x {STEPS} steps = {tasks} tasks, {done} chains done "
        f"({(args.chains - done) * STEPS} tasks to run); Dask LocalCluster of 2 worker "
        f"processes x 1 thread; {os.cpu_count()} cores; Python {platform.python_version()}, "
        f"prefect {prefect.__version__}, dask {dask.__version__}"
    )
    print()
    print(
        "| restart | wall time (s) | flow process CPU (s) | workers CPU (s) "
        "| task runs created | tasks run |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for row in rows:
        print(
            f"| {row['how']} | {row['seconds']:.1f} | {row['flow_cpu']:.1f} "
            f"| {row['workers_cpu']:.1f} | {row['task_runs']} | {row['ran']} |"
        )
    times = {row["how"].split()[-1].removeprefix("PIPEX="): row["seconds"] for row in rows}
    for other in ("cache", "threads"):
        if "graph" in times and other in times:
            print(
                f"graph granularity / pipex {other}, wall time: "
                f"{times['graph'] / times[other]:.2f} "
                f"({times['graph']:.1f} s / {times[other]:.1f} s)"
            )
    for row in rows:
        if args.breakdown and row["how"].endswith("granularity node"):
            breakdown(row)


if __name__ == "__main__":
    main()
