"""Restart benchmark: C chains x 4 steps, layout {path}/s{step}/{chain}.pkl.

The seed scenario: a run of C x 4 tasks dies, and is restarted. On identical files, in one run,
this compares pipex against the same pipeline written

- with Luigi (``luigi.build(..., local_scheduler=True)``, a ``LocalTarget`` per step);
- by hand with ``dask.delayed``: the script checks existence itself, from the last step down,
  builds delayed calls for the missing steps only and writes atomically (temporary name +
  ``os.replace``), as a careful dask user would; computed without dask's graph optimization
  (its default optimizer is roughly quadratic in the number of delayed calls).

for three states: fresh, all done, and 80% of chains done (the crash-and-restart case).
Every measurement runs in a fresh subprocess, so its peak RSS is its own; ``cpu s`` is that
process's user + system CPU time, less sensitive than wall time to other load. Run:

    python benchmarks/restart.py                       # 25,000 chains (100,000 tasks)
    python benchmarks/restart.py --chains 500 --luigi-chains 100   # a smoke run (seconds)

Luigi's scheduler slows as its graph grows (a few tasks per second at 100,000 tasks), so its
80% run uses --luigi-chains (default 2,500; ratios are then per task) and it has no fresh run;
its all-done check runs at full size. The table says which size each row is. Prefect is
measured by prefect_restart.py.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import pickle
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

STEPS = 4


# --- pipex -----------------------------------------------------------------------------------


def pipex_tasks(store: Any = None, version: str | None = None) -> list[Any]:
    """The four steps as pipex tasks, their targets in ``store`` (the working folder if None),
    each with the ``version`` option given."""
    import pipex

    def make(step: int) -> Any:
        if step == 1:

            def first(chain: int) -> int:
                return chain

            target = "{path}/s1/{chain}.pkl"
            return pipex.task(target=target, name="s1", store=store, version=version)(first)

        def later(x: int, chain: int) -> int:
            return x + 1

        target = f"{{path}}/s{step}/{{chain}}.pkl"
        return pipex.task(target=target, name=f"s{step}", store=store, version=version)(later)

    return [make(step) for step in range(1, STEPS + 1)]


def run_pipex(root: str, chains: int) -> dict[str, Any]:
    import pipex
    from pipex.core import plan as planning

    s1, s2, s3, s4 = pipex_tasks()

    def build() -> list[Any]:
        with pipex.context(path=root):
            return [s4(s3(s2(s1(c), c), c), c) for c in range(chains)]

    t0 = time.perf_counter()
    nodes = build()
    t1 = time.perf_counter()
    results = pipex.compute(nodes, progress=False)  # resolves, then runs what is missing
    t2 = time.perf_counter()
    # resolution alone, timed afterwards on freshly built nodes (its targets not yet rendered)
    again = build()
    t3 = time.perf_counter()
    planning.resolve(again)
    resolve = time.perf_counter() - t3
    return {
        "build": t1 - t0,
        "resolve": resolve,
        "run": t2 - t1 - resolve,
        "total": t2 - t0,
        "ran": results.summary.ran,
    }


# --- hand-written dask -------------------------------------------------------------------------


def _path(root: str, step: int, chain: int) -> str:
    return os.path.join(root, f"s{step}", f"{chain}.pkl")


def _atomic_save(obj: Any, path: str) -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.{os.getpid()}.{id(obj)}.tmp"
    with open(tmp, "wb") as f:
        pickle.dump(obj, f)
    os.replace(tmp, path)
    return path


def _load(path: str) -> Any:
    with open(path, "rb") as f:
        return pickle.load(f)


def _step(step: int, chain: int, upstream: str | None, root: str) -> str:
    value = chain if upstream is None else _load(upstream) + 1
    return _atomic_save(value, _path(root, step, chain))


def run_dask(root: str, chains: int) -> dict[str, Any]:
    import dask

    step = dask.delayed(_step, pure=True)
    t0 = time.perf_counter()
    outputs = []
    ran = 0
    for c in range(chains):
        # find the last finished step, from the top down
        done = 0
        for s in range(STEPS, 0, -1):
            if os.path.exists(_path(root, s, c)):
                done = s
                break
        if done == STEPS:
            continue
        upstream: Any = _path(root, done, c) if done else None
        for s in range(done + 1, STEPS + 1):
            upstream = step(s, c, upstream, root)
            ran += 1
        outputs.append(upstream)
    t1 = time.perf_counter()
    dask.compute(*outputs, optimize_graph=False)
    t2 = time.perf_counter()
    return {"build": t1 - t0, "resolve": 0.0, "run": t2 - t1, "total": t2 - t0, "ran": ran}


# --- Luigi -------------------------------------------------------------------------------------


def run_luigi(root: str, chains: int) -> dict[str, Any]:
    import logging

    import luigi

    logging.getLogger("luigi-interface").setLevel(logging.WARNING)
    ran = []

    class Step(luigi.Task):
        step = luigi.IntParameter()
        chain = luigi.IntParameter()

        def requires(self) -> Any:
            return Step(step=self.step - 1, chain=self.chain) if self.step > 1 else []

        def output(self) -> Any:
            return luigi.LocalTarget(_path(root, self.step, self.chain), format=luigi.format.Nop)

        def run(self) -> None:
            if self.step == 1:
                value = self.chain
            else:
                with self.input().open("r") as f:
                    value = pickle.load(f) + 1
            with self.output().open("w") as f:  # LocalTarget writes atomically
                pickle.dump(value, f)
            ran.append(1)

    t0 = time.perf_counter()
    tasks = [Step(step=STEPS, chain=c) for c in range(chains)]
    t1 = time.perf_counter()
    ok = luigi.build(tasks, local_scheduler=True, workers=1, log_level="WARNING")
    t2 = time.perf_counter()
    if not ok:
        raise RuntimeError("luigi.build failed")
    return {"build": t1 - t0, "resolve": 0.0, "run": t2 - t1, "total": t2 - t0, "ran": len(ran)}


RUNNERS = {"pipex": run_pipex, "dask": run_dask, "luigi": run_luigi}


# --- driver ------------------------------------------------------------------------------------


def measure(system: str, root: str, chains: int, script: str = __file__) -> dict[str, Any]:
    """Run one system once in a fresh subprocess (``script --one``); its timings and peak RSS.

    It runs in the folder holding ``root``, so that pipex's run ledger (under the working
    directory, the store root of the targets) is made there, not where the script is run.
    """
    script = os.path.abspath(script)
    out = subprocess.run(
        [sys.executable, script, "--one", system, "--root", root, "--chains", str(chains)],
        check=True,
        capture_output=True,
        text=True,
        cwd=os.path.dirname(os.path.abspath(root)),
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def measuring(description: str) -> argparse.ArgumentParser:
    """A parser with ``--chains`` and the hidden ``--one``/``--root`` of :func:`measure`."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--chains", type=int, default=25_000)
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--root", help=argparse.SUPPRESS)
    return parser


def measured(args: argparse.Namespace, run: Any) -> bool:
    """With ``--one KIND``: measure ``run(KIND, root, chains)`` here, print it, and say so."""
    if not args.one:
        return False
    importlib.import_module("pipex")  # imports not counted
    print_one(run, args.one, args.root, args.chains)
    return True


def print_one(run: Any, *args: Any) -> None:
    """Print ``run(*args)``'s timings as JSON, with this process's peak RSS and the CPU time
    ``run`` took (what :func:`measure` reads)."""
    before = resource.getrusage(resource.RUSAGE_SELF)
    result = run(*args)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    result["rss_mb"] = usage.ru_maxrss / 1024
    result["cpu"] = (usage.ru_utime + usage.ru_stime) - (before.ru_utime + before.ru_stime)
    print(json.dumps(result))


def delete_chains(root: str, chains: int, fraction: float) -> None:
    """Delete every step's output of the last ``fraction`` of chains."""
    for c in range(int(chains * (1 - fraction)), chains):
        for s in range(1, STEPS + 1):
            os.remove(_path(root, s, c))


def fill(root: str, chains: int) -> None:
    """Write every target, as a finished run would have."""
    measure("pipex", root, chains)


def compare(
    title: str, base: list[dict[str, Any]], other: list[dict[str, Any]], width: int = 42
) -> str:
    """One line: the median wall and CPU time of ``other``'s runs against ``base``'s."""

    def median(runs: list[dict[str, Any]], column: str) -> float:
        return statistics.median(r[column] for r in runs)

    wall = median(other, "total") / median(base, "total")
    cpu = median(other, "cpu") / median(base, "cpu")
    return (
        f"{title:<{width}} {median(base, 'total'):7.3f} s -> {median(other, 'total'):7.3f} s  "
        f"wall x{wall:.3f}  cpu x{cpu:.3f}  (ran {other[0]['ran']})"
    )


def table(rows: list[tuple[str, str, int, dict[str, Any]]]) -> str:
    head = f"{'state':<9} {'system':<6} {'tasks':>7} {'build s':>8} {'resolve s':>9} "
    head += f"{'run s':>8} {'total s':>8} {'cpu s':>7} {'ran':>7} {'peak MB':>8}"
    lines = [head]
    for state, system, chains, m in rows:
        lines.append(
            f"{state:<9} {system:<6} {chains * STEPS:>7} {m['build']:>8.3f} {m['resolve']:>9.3f} "
            f"{m['run']:>8.2f} {m['total']:>8.3f} {m['cpu']:>7.2f} {m['ran']:>7} "
            f"{m['rss_mb']:>8.0f}"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chains", type=int, default=25_000)
    parser.add_argument("--luigi-chains", type=int, default=2_500)
    parser.add_argument("--systems", default="pipex,dask,luigi")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--root", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.one:  # a single measurement, in this process (imports not counted)
        importlib.import_module({"pipex": "pipex", "dask": "dask", "luigi": "luigi"}[args.one])
        print_one(RUNNERS[args.one], args.root, args.chains)
        return

    systems = [s for s in args.systems.split(",") if s]
    if "luigi" in systems:
        try:
            import luigi  # noqa: F401
        except ImportError:
            print("luigi is not installed (pip install luigi): skipping it", file=sys.stderr)
            systems.remove("luigi")
    rows: list[tuple[str, str, int, dict[str, Any]]] = []
    base = tempfile.mkdtemp(prefix="pipex-restart-")
    try:
        for system in systems:
            chains = args.luigi_chains if system == "luigi" else args.chains
            root = os.path.join(base, system)
            if system == "luigi":  # a fresh Luigi run of this size takes many minutes
                fill(root, chains)
            else:
                rows.append(("fresh", system, chains, measure(system, root, chains)))
            delete_chains(root, chains, 0.2)
            rows.append(("80% done", system, chains, measure(system, root, chains)))
        for system in systems:  # all done, at full size for everyone, on pipex's files
            root = os.path.join(base, "full")
            if not os.path.exists(root):
                fill(root, args.chains)
            rows.append(("all done", system, args.chains, measure(system, root, args.chains)))
    finally:
        shutil.rmtree(base, ignore_errors=True)

    print(
        f"{args.chains} chains x {STEPS} steps; {os.cpu_count()} cores; Python "
        f"{sys.version.split()[0]}"
    )
    print(table(rows))
    by = {(state, system): m for state, system, _, m in rows}
    print()
    for state in ("all done", "80% done", "fresh"):
        mine = by.get((state, "pipex"))
        for other in systems:
            theirs = by.get((state, other))
            if other == "pipex" or not mine or not theirs:
                continue
            same_size = other != "luigi" or state == "all done" or args.luigi_chains == args.chains
            note = "" if same_size else " (Luigi at its own, smaller size: per task)"
            if same_size:
                ratio = mine["total"] / theirs["total"]
            else:
                ratio = (mine["total"] / max(mine["ran"], 1)) / (
                    theirs["total"] / max(theirs["ran"], 1)
                )
            cpu = mine["cpu"] / theirs["cpu"] if same_size and theirs["cpu"] else float("nan")
            print(f"{state:<9} pipex / {other:<5} = {ratio:6.3f} wall, {cpu:6.3f} cpu{note}")
    print("\nissue 13's figures (wall time; its goals are set at 25,000 chains):")
    done = by.get(("all done", "pipex"))
    if done:
        goal("all done: pipex build + compute", done["total"], "s", 0.30)
        print(f"  (build {done['build']:.3f} s, resolve alone {done['resolve']:.3f} s)")
    luigi_done = by.get(("all done", "luigi"))
    if done and luigi_done:
        goal("all done: Luigi's check / pipex", luigi_done["total"] / done["total"], "x", 20, 1)
    eighty, hand = by.get(("80% done", "pipex")), by.get(("80% done", "dask"))
    if eighty and hand:
        goal("80% done: pipex / hand-written dask", eighty["total"] / hand["total"], "", 0.60)
    luigi_80 = by.get(("80% done", "luigi"))
    if eighty and luigi_80 and eighty["ran"] and luigi_80["ran"]:
        per_task = (luigi_80["total"] / luigi_80["ran"]) / (eighty["total"] / eighty["ran"])
        goal("Luigi resume / pipex (per task)", per_task, "x", 50, 1)
    peak = max((m["rss_mb"] for _, system, _, m in rows if system == "pipex"), default=None)
    if peak is not None:
        goal("peak RSS, pipex, any state", peak, "MB", 200)
    if eighty and eighty["ran"]:
        print(f"80% done: pipex {1000 * eighty['run'] / eighty['ran']:.3f} ms per executed task")


def goal(what: str, value: float, unit: str, target: float, sense: int = -1) -> None:
    """Print one figure with its goal (``sense`` -1: at most ``target``; 1: at least)."""
    met = value <= target if sense < 0 else value >= target
    bound = "<=" if sense < 0 else ">="
    print(
        f"  {what}: {value:.3f}{unit} (goal {bound} {target}{unit}: {'met' if met else 'NOT met'})"
    )


if __name__ == "__main__":
    main()
