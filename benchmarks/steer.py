"""Seeing and steering a big pipeline: status and "reset 50 chains" at 100,000 nodes.

C chains x 5 steps, layout ``out/s{step}/{chain}.pkl``, every target written (small files:
nothing is loaded by any of these). In one process, on the same files, it times

- ``pipex.status`` against plain resolution (``pipex.core.plan.resolve``), all done and
  with 50 chains reset: status is resolution plus counting;
- ``pipex.invalidate`` of 50 chains with everything downstream (``within=roots``), as a dry
  run and for real (the 250 files copied to the trash and deleted), selected by nodes and by
  a glob; against deleting the same 250 files by hand with ``os.remove``;
- ``pipex.restore`` of them.

Each measurement builds fresh nodes first (build time is printed, not counted); read-only
ones are the best of --repeat runs. Run from the
repository root:

    python benchmarks/steer.py                  # 20,000 chains (100,000 nodes)
    python benchmarks/steer.py --chains 1000    # a smoke run
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import tempfile
import time
from collections.abc import Callable
from typing import Any

import pipex
from pipex.core.plan import resolve

STEPS = 5
RESET = 50


def tasks() -> list[Any]:
    def first(chain: int) -> int:
        return chain

    def later(x: int, chain: int) -> int:
        return x + 1

    made = [pipex.task(target="{path}/s1/{chain}.pkl", name="s1")(first)]
    for step in range(2, STEPS + 1):
        made.append(pipex.task(target=f"{{path}}/s{step}/{{chain}}.pkl", name=f"s{step}")(later))
    return made


def build(chains: int) -> tuple[list[Any], list[Any], float]:
    """The roots and the first step's nodes of a fresh graph, and the build time."""
    steps = tasks()
    start = time.perf_counter()
    roots, firsts = [], []
    with pipex.context(path="out"):
        for c in range(chains):
            node = steps[0](c)
            firsts.append(node)
            for step in steps[1:]:
                node = step(node, c)
            roots.append(node)
    return roots, firsts, time.perf_counter() - start


def timed(fn: Callable[..., Any], *args: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn(*args)
    return time.perf_counter() - start, result


def write_all(chains: int) -> None:
    payload = b"\x80\x05K\x00."  # a pickled 0: restored bytes are compared with it
    for step in range(1, STEPS + 1):
        os.makedirs(f"out/s{step}", exist_ok=True)
        for c in range(chains):
            with open(f"out/s{step}/{c}.pkl", "wb") as file:
                file.write(payload)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chains", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3, help="best of N (read-only steps)")
    args = parser.parse_args()
    chains = args.chains
    picked = range(chains // 2, chains // 2 + RESET)  # 50 chains in the middle
    glob = f"out/s1/{chains // 2 // 100}[0-4]?.pkl"  # the same 50 chains, by a glob

    with tempfile.TemporaryDirectory() as folder, contextlib.chdir(folder):
        write_all(chains)
        rows: list[tuple[str, float]] = []
        print(f"{chains:,} chains x {STEPS} steps = {chains * STEPS:,} nodes, all written")

        def measure(label: str, fn: Callable[[list[Any], list[Any]], Any], times: int) -> Any:
            best = float("inf")
            for _ in range(times):
                roots, firsts, built = build(chains)
                gc.collect()  # the build's garbage is not the measurement's
                seconds, result = timed(fn, roots, firsts)
                best = min(best, seconds)
            rows.append((label, best))
            print(f"  {label:<46} {best:8.3f} s   (build {built:.2f} s, not counted)")
            return result

        resolve_done = measure("resolve, all done", lambda r, f: resolve(r), args.repeat)
        status_done = measure("status, all done", lambda r, f: pipex.status(r), args.repeat)
        assert not status_done.to_run and len(resolve_done.done) == chains
        would = measure(
            "invalidate 50 chains, dry run (by nodes)",
            lambda r, f: pipex.invalidate([f[c] for c in picked], within=r, dry_run=True),
            args.repeat,
        )
        assert len(would) == RESET * STEPS
        gone = measure(
            "invalidate 50 chains (by nodes)",
            lambda r, f: pipex.invalidate([f[c] for c in picked], within=r),
            1,
        )
        assert len(gone) == RESET * STEPS
        measure("resolve, 50 chains reset", lambda r, f: resolve(r), args.repeat)
        reset = measure("status, 50 chains reset", lambda r, f: pipex.status(r), args.repeat)
        assert len(reset.to_run) == RESET * STEPS, len(reset.to_run)
        restored = measure("restore", lambda r, f: pipex.restore(), 1)
        assert len(restored) == RESET * STEPS
        gone = measure(
            "invalidate 50 chains (by a glob)", lambda r, f: pipex.invalidate(glob, within=r), 1
        )
        assert len(gone) == RESET * STEPS, len(gone)
        pipex.restore()
        paths = [f"out/s{s}/{c}.pkl" for s in range(1, STEPS + 1) for c in picked]
        by_hand, _ = timed(lambda: [os.remove(p) for p in paths])
        rows.append(("os.remove of the same 250 files", by_hand))
        print(f"  {'os.remove of the same 250 files (baseline)':<46} {by_hand:8.3f} s")

    t = dict(rows)
    print("ratios (same run):")
    for label, top, bottom in (
        ("status / resolve, all done", "status, all done", "resolve, all done"),
        (
            "status / resolve, 50 chains reset",
            "status, 50 chains reset",
            "resolve, 50 chains reset",
        ),
        (
            "invalidate by nodes / resolve, all done",
            "invalidate 50 chains (by nodes)",
            "resolve, all done",
        ),
        (
            "invalidate by a glob / resolve, all done",
            "invalidate 50 chains (by a glob)",
            "resolve, all done",
        ),
    ):
        print(f"  {label:<46} {t[top] / t[bottom]:8.2f}")


if __name__ == "__main__":
    main()
