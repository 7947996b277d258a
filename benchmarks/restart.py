"""Restart benchmark: C chains x 4 steps, layout {path}/s{step}/{chain}.pkl.

Times pipex building the graph, resolving it against the files on disk, and running what is
missing, for three states: fresh, 80% of chains done, all done. Run:

    python benchmarks/restart.py --chains 25000

Prints wall times (build, resolve, run) and peak RSS of this process.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time

import psutil

import pipex
from pipex import graph


@pipex.task(target="{path}/s1/{chain}.pkl")
def step1(chain: int) -> int:
    return chain


@pipex.task(target="{path}/s2/{chain}.pkl")
def step2(x: int, chain: int) -> int:
    return x + 1


@pipex.task(target="{path}/s3/{chain}.pkl")
def step3(x: int, chain: int) -> int:
    return x + 1


@pipex.task(target="{path}/s4/{chain}.pkl")
def step4(x: int, chain: int) -> int:
    return x + 1


def build(root: str, chains: int) -> list[pipex.Node]:
    with pipex.context(path=root):
        return [step4(step3(step2(step1(c), c), c), c) for c in range(chains)]


def measure(root: str, chains: int, scheduler: str) -> dict[str, float]:
    t0 = time.perf_counter()
    nodes = build(root, chains)
    t1 = time.perf_counter()
    plan = graph.resolve(nodes)
    t2 = time.perf_counter()
    if plan.missing:
        pipex.compute(*nodes, scheduler=scheduler)
    t3 = time.perf_counter()
    return {
        "build": t1 - t0,
        "resolve": t2 - t1,
        "run": t3 - t2,
        "ran": len(plan.missing),
    }


def remove_fraction(root: str, chains: int, fraction: float) -> None:
    """Delete every step's output for the last ``fraction`` of chains."""
    for c in range(int(chains * (1 - fraction)), chains):
        for step in range(1, 5):
            os.remove(os.path.join(root, f"s{step}", f"{c}.pkl"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chains", type=int, default=25_000)
    parser.add_argument("--scheduler", default="threads")
    args = parser.parse_args()
    root = tempfile.mkdtemp(prefix="pipex-bench-")
    try:
        rows = []
        rows.append(("fresh", measure(root, args.chains, args.scheduler)))
        rows.append(("all done", measure(root, args.chains, args.scheduler)))
        remove_fraction(root, args.chains, 0.2)
        rows.append(("80% done", measure(root, args.chains, args.scheduler)))
        print(f"{args.chains} chains x 4 steps = {args.chains * 4} tasks, {os.cpu_count()} cores")
        print(f"{'state':<10} {'build s':>8} {'resolve s':>10} {'run s':>8} {'ran':>7}")
        for name, m in rows:
            print(
                f"{name:<10} {m['build']:>8.2f} {m['resolve']:>10.3f} {m['run']:>8.2f} "
                f"{m['ran']:>7}"
            )
        rss = psutil.Process().memory_info().rss / 2**20
        print(f"RSS at end: {rss:.0f} MiB")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
