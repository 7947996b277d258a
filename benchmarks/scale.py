"""Scale benchmark (issue 22): mapped steps (``task.map``) at millions of targets.

Items x steps, layout ``{root}/s{step}/{item}.pkl`` (``s1`` takes the item, each later step
its upstream's data and names its target ``{x.stem}``). Each figure of the issue's table is
measured against a baseline in the same run, each measurement in a fresh subprocess (its
peak RSS is its own):

- ``done``: all done, 2.5M items x 4 steps = 10M targets (the final files present): pipex's
  build + compute against the floor, listing the final folder and looking the 2.5M names up
  by hand; pipex's peak RSS.
- ``done1m``: the same at 1M targets (250,000 items x 4).
- ``resume``: 100,000 items x 4, 80% of the items done (the last 20% have no file at all):
  pipex against a hand-written dask script (``os.path.exists`` per target from the last step
  down, a ``dask.delayed`` call per missing step, atomic writes, the threaded scheduler).
  Both folders are filled before either runs, and each run starts after :func:`settle`.
- ``cluster``: a LocalCluster of 2 workers x 1 thread, 5,000 items x 4, fresh: pipex against
  chained ``client.map`` calls writing the same files; the scheduler's task count sampled
  (``len(scheduler.tasks)``) during both runs.
- ``cluster1m``: the LocalCluster, 1M targets (250,000 items x 4) fresh: that it completes,
  the scheduler's peak task count and the client's peak RSS (the cluster runs in the driver
  process, the client in the measured one).
- ``build``: building 3 chained maps of 1M items, memory allocated (tracemalloc's peak).

Run (the full run writes 10M small files; the machine's disk and minutes):

    python benchmarks/scale.py                                   # every figure, the issue's sizes
    python benchmarks/scale.py --only resume --only cluster      # some figures
    python benchmarks/scale.py --items 2000                      # a smoke run: 2,000 items each

``--items`` gives every figure that many items (goals are then not comparable, only ratios);
``--steps`` the number of steps (4). Without ``task.map`` in the pipex imported, pipex's rows
say so and the baselines are still measured.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

FIGURES = {  # figure -> the number of items
    "done": 2_500_000,
    "done1m": 250_000,
    "resume": 100_000,
    "cluster": 5_000,
    "cluster1m": 250_000,
    "build": 1_000_000,
}
STEPS = 4
UNAVAILABLE = "task.map is not in this pipex"


# --- the pipeline ------------------------------------------------------------------------------


def path(root: str, step: int, item: int) -> str:
    return os.path.join(root, f"s{step}", f"{item}.pkl")


def value(step: int, item: int) -> int:
    """What step ``step`` of item ``item`` writes: the item, plus one per later step."""
    return item + step - 1


def pipex_steps(steps: int) -> list[Any]:
    """The steps as pipex tasks: ``s1(i)``, then ``sK(x)`` writing ``sK/{x.stem}.pkl``."""
    import pipex

    def first(i: int) -> int:
        return int(i)

    def make(step: int) -> Any:
        def later(x: int) -> int:
            return x + 1

        return pipex.task(target=f"{{path}}/s{step}/{{x.stem}}.pkl", name=f"s{step}")(later)

    head = pipex.task(target="{path}/s1/{i}.pkl", name="s1")(first)
    return [head, *(make(step) for step in range(2, steps + 1))]


def pipex_maps(root: str, items: int, steps: int) -> Any:
    """The chained maps over ``range(items)``; the last one (nothing runs)."""
    import pipex

    tasks = pipex_steps(steps)
    with pipex.context(path=root):
        mapped = tasks[0].map(range(items))
        for task in tasks[1:]:
            mapped = task.map(mapped)
    return mapped


def has_map() -> bool:
    import pipex

    return hasattr(pipex, "Mapped") and hasattr(pipex.TaskFunction, "map")


# --- what the subprocesses measure -------------------------------------------------------------


def pipex_run(root: str, items: int, steps: int, address: str | None) -> dict[str, Any]:
    """Build the maps and compute them (on the cluster at ``address`` if given)."""
    import pipex

    if not has_map():
        return {"unavailable": UNAVAILABLE}
    client = _client(address)
    t0 = time.perf_counter()
    mapped = pipex_maps(root, items, steps)
    t1 = time.perf_counter()
    with _sampling(client) as samples:
        options = {"scheduler": client} if client is not None else {}
        results = pipex.compute(mapped, progress=False, **options)
    t2 = time.perf_counter()
    if len(results[0]) != items:
        raise RuntimeError(f"pipex returned {len(results[0])} targets for {items} items")
    summary = results.summary
    return {
        "build": t1 - t0,
        "total": t2 - t0,
        "ran": summary.ran,
        "done": summary.done,
        **_peak(samples),
    }


def floor_done(root: str, items: int, steps: int, address: str | None) -> dict[str, Any]:
    """The least a check of the final targets can do: list their folder, look the names up."""
    t0 = time.perf_counter()
    names = set(os.listdir(os.path.join(root, f"s{steps}")))
    found = sum(1 for i in range(items) if f"{i}.pkl" in names)
    t1 = time.perf_counter()
    if found != items:
        raise RuntimeError(f"{items - found} final targets missing")
    return {"total": t1 - t0, "ran": 0, "done": found}


def _atomic_save(obj: Any, target: str) -> None:
    os.makedirs(os.path.dirname(target), exist_ok=True)
    temporary = f"{target}.{os.getpid()}.{threading.get_ident()}.tmp"
    with open(temporary, "wb") as file:
        pickle.dump(obj, file)
    os.replace(temporary, target)


def _load(source: str) -> Any:
    with open(source, "rb") as file:
        return pickle.load(file)


def _step(step: int, item: int, upstream: str | None, root: str) -> str:
    data = item if upstream is None else _load(upstream) + 1
    target = path(root, step, item)
    _atomic_save(data, target)
    return target


def dask_resume(root: str, items: int, steps: int, address: str | None) -> dict[str, Any]:
    """The hand-written dask script: ``os.path.exists`` per target from the last step down,
    a delayed call per missing step, the threaded scheduler (no graph optimization: dask's
    default one is roughly quadratic in the number of delayed calls)."""
    import dask

    step = dask.delayed(_step, pure=True)
    t0 = time.perf_counter()
    outputs, ran = [], 0
    for i in range(items):
        done = next((s for s in range(steps, 0, -1) if os.path.exists(path(root, s, i))), 0)
        if done == steps:
            continue
        upstream: Any = path(root, done, i) if done else None
        for s in range(done + 1, steps + 1):
            upstream = step(s, i, upstream, root)
            ran += 1
        outputs.append(upstream)
    t1 = time.perf_counter()
    dask.compute(*outputs, optimize_graph=False, scheduler="threads")
    t2 = time.perf_counter()
    return {"build": t1 - t0, "total": t2 - t0, "ran": ran, "done": items - len(outputs)}


def _first(item: int, root: str) -> tuple[int, int]:
    _atomic_save(item, path(root, 1, item))
    return item, item


def _later(previous: tuple[int, int], step: int, root: str) -> tuple[int, int]:
    item, data = previous
    _atomic_save(data + 1, path(root, step, item))
    return item, data + 1


def client_map(root: str, items: int, steps: int, address: str | None) -> dict[str, Any]:
    """Chained ``client.map`` calls writing the same files (data passed between them)."""
    client = _client(address)
    t0 = time.perf_counter()
    with _sampling(client) as samples:
        futures = client.map(_first, range(items), root=root)
        for step in range(2, steps + 1):
            futures = client.map(_later, futures, step=step, root=root)
        client.gather(futures, errors="skip")
        errors = sum(1 for f in futures if f.status != "finished")
    t1 = time.perf_counter()
    if errors:
        raise RuntimeError(f"{errors} client.map chains failed")
    return {"total": t1 - t0, "ran": items * steps, "done": 0, **_peak(samples)}


def pipex_build(root: str, items: int, steps: int, address: str | None) -> dict[str, Any]:
    """Three chained maps of ``items`` items built under tracemalloc; nothing computed."""
    if not has_map():
        return {"unavailable": UNAVAILABLE}
    tasks = pipex_steps(3)
    import pipex

    tracemalloc.start()
    t0 = time.perf_counter()
    with pipex.context(path=root):
        mapped = tasks[2].map(tasks[1].map(tasks[0].map(range(items))))
    t1 = time.perf_counter()
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    if len(mapped) != items:
        raise RuntimeError(f"a map of {items} items has length {len(mapped)}")
    return {"total": t1 - t0, "peak_mb": peak / 1e6, "kept_mb": current / 1e6, "ran": 0}


RUNS: dict[str, Callable[[str, int, int, str | None], dict[str, Any]]] = {
    "pipex": pipex_run,
    "floor": floor_done,
    "dask": dask_resume,
    "client.map": client_map,
    "pipex-build": pipex_build,
}


def _client(address: str | None) -> Any:
    if address is None:
        return None
    from distributed import Client

    client = Client(address, set_as_default=False)
    client.run(lambda: __import__("pipex"))  # imports are not what is measured
    return client


class _sampling:
    """While the block runs, the scheduler's task count every 0.1 s (none without a client)."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.samples: list[int] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self.stop.is_set():
            count = self.client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks))
            self.samples.append(count)
            self.stop.wait(0.1)

    def __enter__(self) -> list[int]:
        if self.client is not None:
            self.thread.start()
        return self.samples

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        if self.client is not None:
            self.thread.join()


def _peak(samples: list[int]) -> dict[str, Any]:
    return {"peak_tasks": max(samples), "samples": len(samples)} if samples else {}


# --- the driver --------------------------------------------------------------------------------


def measure(
    kind: str, root: str, items: int, steps: int, address: str | None = None
) -> dict[str, Any]:
    """Run ``kind`` once in a fresh subprocess (in the folder holding ``root``, where pipex's
    ledger goes); its result with the process's peak RSS and CPU time."""
    command = [sys.executable, os.path.abspath(__file__), "--one", kind, "--root", root]
    command += ["--items", str(items), "--steps", str(steps)]
    if address:
        command += ["--address", address]
    out = subprocess.run(command, capture_output=True, text=True, cwd=os.path.dirname(root))
    if out.returncode:
        raise RuntimeError(f"{' '.join(command)} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def one(kind: str, root: str, items: int, steps: int, address: str | None) -> None:
    """In the subprocess: import first (not measured), run, print the result as JSON."""
    import dask  # noqa: F401

    import pipex  # noqa: F401

    before = resource.getrusage(resource.RUSAGE_SELF)
    result = RUNS[kind](root, items, steps, address)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    result["rss_mb"] = usage.ru_maxrss / 1024
    result["cpu"] = usage.ru_utime + usage.ru_stime - before.ru_utime - before.ru_stime
    print(json.dumps(result))


def fill(root: str, items: int, steps: range, skip_last: float = 0.0) -> None:
    """Write the targets of ``steps`` as a finished run would, but for the last ``skip_last``
    of the items."""
    for step in steps:
        os.makedirs(os.path.join(root, f"s{step}"), exist_ok=True)
        for i in range(int(items * (1 - skip_last))):
            with open(path(root, step, i), "wb") as file:
                pickle.dump(value(step, i), file)


class Table:
    """The figures as they are measured: printed at once, and again at the end."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def add(self, line: str) -> None:
        print(line, flush=True)
        self.lines.append(line)


def shown(m: dict[str, Any]) -> str:
    if "unavailable" in m:
        return m["unavailable"]
    text = f"{m['total']:.3f} s, peak RSS {m['rss_mb']:.0f} MB, ran {m['ran']:,}"
    if "peak_tasks" in m:
        text += f", scheduler peak {m['peak_tasks']:,} tasks ({m['samples']} samples)"
    return text


def ratio(
    table: Table, what: str, mine: dict[str, Any], theirs: dict[str, Any], goal: float | None
) -> None:
    if "unavailable" in mine:
        table.add(f"  {what}: n/a ({mine['unavailable']})")
        return
    r = mine["total"] / theirs["total"]
    verdict = "" if goal is None else f" (goal <= {goal}: {'met' if r <= goal else 'NOT met'})"
    table.add(f"  {what}: {r:.3f}{verdict}")


def check(table: Table, what: str, value: float, unit: str, goal: float) -> None:
    met = "met" if value <= goal else "NOT met"
    shown = f"{value:,}" if isinstance(value, int) else f"{value:,.3f}"
    table.add(f"  {what}: {shown} {unit} (goal <= {goal:,} {unit}: {met})")


def figure_done(table: Table, base: str, items: int, steps: int, goal_s: float) -> None:
    root = os.path.join(base, f"done-{items}")
    fill(root, items, range(steps, steps + 1))  # the final targets only: nothing below is read
    floor = measure("floor", root, items, steps)
    mine = measure("pipex", root, items, steps)
    table.add(f"all done, {items:,} items x {steps} = {items * steps:,} targets")
    table.add(f"  floor (listing + lookups by hand): {shown(floor)}")
    table.add(f"  pipex build + compute:             {shown(mine)}")
    ratio(table, "pipex / floor", mine, floor, None)
    if "unavailable" not in mine:
        check(table, "pipex build + compute", mine["total"], "s", goal_s)
        if items * steps >= 10_000_000:
            check(table, "pipex peak RSS", mine["rss_mb"], "MB", 1500)
    shutil.rmtree(root, ignore_errors=True)


def settle() -> None:
    """Before a measurement that creates files: write the filesystem's dirty blocks back and
    wait :data:`RECENT` seconds. ext4 without a journal (as on the machine of
    docs/benchmarks.md) passes over the inodes freed in the last 5 s (300 s while their inode
    table block is not written back) each time it allocates one, from the start of the
    block group: a run that creates files soon after many were removed pays per file it
    creates. Measured there at 20,000 items, the baseline's 80,000 files removed just before
    pipex's run: about half of pipex's samples in that search (``perf``), and a ratio of
    0.67-0.70 with the baseline run first, 0.38 with pipex first.

    The files written after a removal dirty those blocks again, so only five minutes after
    the last large removal (a previous run's folders, or a test suite's) is a figure free of
    it: a run of 100,000 items started right after another gave 1.04x; started 5 to 20
    minutes after the previous removal of this benchmark, 0.48x and 0.50x."""
    os.sync()
    time.sleep(RECENT)


#: Seconds after which ext4 takes a freed inode like any other (its table block written).
RECENT = 6.0


def figure_resume(table: Table, base: str, items: int, steps: int) -> None:
    kinds = ("dask", "pipex")
    roots = {kind: os.path.join(base, f"resume-{kind}") for kind in kinds}
    for root in roots.values():  # each on the same files, 80% done; no run follows a removal
        fill(root, items, range(1, steps + 1), skip_last=0.2)
    results = {}
    for kind in kinds:
        settle()
        results[kind] = measure(kind, roots[kind], items, steps)
    for root in roots.values():
        shutil.rmtree(root, ignore_errors=True)
    table.add(f"resume, {items:,} items x {steps}, 80% done")
    table.add(f"  hand-written dask: {shown(results['dask'])}")
    table.add(f"  pipex:             {shown(results['pipex'])}")
    ratio(table, "pipex / hand-written dask", results["pipex"], results["dask"], 0.5)


def figure_cluster(table: Table, base: str, items: int, steps: int, address: str) -> None:
    results = {}
    for kind in ("client.map", "pipex"):
        root = os.path.join(base, f"cluster-{kind}")
        os.makedirs(root)
        results[kind] = measure(kind, root, items, steps, address)
        shutil.rmtree(root, ignore_errors=True)
    table.add(f"LocalCluster 2 workers x 1 thread, {items:,} items x {steps}, fresh")
    table.add(f"  chained client.map: {shown(results['client.map'])}")
    table.add(f"  pipex:              {shown(results['pipex'])}")
    ratio(table, "pipex / client.map", results["pipex"], results["client.map"], 0.5)
    if "peak_tasks" in results["pipex"]:
        check(table, "scheduler peak, pipex", results["pipex"]["peak_tasks"], "tasks", 2000)


def figure_cluster1m(table: Table, base: str, items: int, steps: int, address: str) -> None:
    root = os.path.join(base, "cluster1m")
    os.makedirs(root)
    mine = measure("pipex", root, items, steps, address)
    shutil.rmtree(root, ignore_errors=True)
    table.add(f"LocalCluster 2 workers x 1 thread, {items * steps:,} targets, fresh")
    table.add(f"  pipex: {shown(mine)}  (peak RSS: the client's)")


def figure_build(table: Table, base: str, items: int) -> None:
    mine = measure("pipex-build", os.path.join(base, "build"), items, 3)
    table.add(f"building 3 chained maps of {items:,} items")
    if "unavailable" in mine:
        table.add(f"  pipex: n/a ({mine['unavailable']})")
        return
    table.add(f"  pipex: {mine['total']:.3f} s, tracemalloc peak {mine['peak_mb']:.1f} MB")
    check(table, "allocated", mine["peak_mb"], "MB", round(100 * items / 1_000_000, 1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", choices=list(FIGURES), help="a figure")
    parser.add_argument("--items", type=int, help="items of every figure (default: the issue's)")
    parser.add_argument("--steps", type=int, default=STEPS)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--root", help=argparse.SUPPRESS)
    parser.add_argument("--address", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        one(args.one, args.root, args.items, args.steps, args.address)
        return

    figures = args.only or list(FIGURES)
    size = {f: args.items or FIGURES[f] for f in figures}
    print(f"{os.cpu_count()} cores; Python {sys.version.split()[0]}; sizes {size}", flush=True)
    table = Table()
    base = tempfile.mkdtemp(prefix="pipex-scale-")
    try:
        for figure in figures:
            if figure == "done":
                figure_done(table, base, size[figure], args.steps, 10.0)
            elif figure == "done1m":
                figure_done(table, base, size[figure], args.steps, 1.0)
            elif figure == "resume":
                figure_resume(table, base, size[figure], args.steps)
            elif figure == "build":
                figure_build(table, base, size[figure])
        clustered = [f for f in figures if f.startswith("cluster")]
        if clustered:
            from distributed import LocalCluster

            with LocalCluster(
                n_workers=args.workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=":0",
                host="127.0.0.1",
            ) as cluster:
                for figure in clustered:
                    run = figure_cluster if figure == "cluster" else figure_cluster1m
                    run(table, base, size[figure], args.steps, cluster.scheduler_address)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    print("\n" + "\n".join(table.lines))


if __name__ == "__main__":
    main()
