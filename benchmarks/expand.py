"""pipex.expand against the two-compute fan-out it replaces: documents split into pages.

Each document is split (a task that sleeps, some documents four times longer than others,
and returns a page count); each page is read (a task that sleeps). Two ways to write it:

- barrier: ``pipex.compute(splits, load=True)``, then build the page nodes from the counts
  and ``pipex.compute(pages)`` (every page waits for the slowest split);
- expand: ``pipex.compute([pipex.expand(split, pages_of) ...])`` (pages of a document run
  once it is split).

Measured in one run, alternating, on fresh folders and dask's threads: the fresh run's wall
time and when the first page finished; then the restart with everything done (the barrier
loads every split's output; expand reads only its records). Ratios are expand / barrier.

Run:

    python benchmarks/expand.py                       # 40 documents x 10 pages
    python benchmarks/expand.py --docs 8 --repeat 1   # a smoke run (seconds)
"""

from __future__ import annotations

import argparse
import functools
import os
import shutil
import statistics
import tempfile
import time
from typing import Any

import pipex


def tasks(split_seconds: float, page_seconds: float, log: list[float]) -> tuple[Any, ...]:
    @pipex.task(target="{path}/split/{doc:04d}.pkl")
    def split(doc: int, pages: int) -> int:
        time.sleep(split_seconds * (4 if doc % 4 == 0 else 1))
        return pages

    @pipex.task(target="{path}/page/{doc:04d}-{page:03d}.pkl")
    def page(doc: int, page: int) -> int:
        time.sleep(page_seconds)
        log.append(time.perf_counter())
        return doc * page

    def pages_of(doc: int, count: int) -> list[Any]:
        return [page(doc, p) for p in range(count)]

    return split, page, pages_of


def barrier(root: str, args: argparse.Namespace, log: list[float]) -> int:
    split, page, _ = tasks(args.split_seconds, args.page_seconds, log)
    with pipex.context(path=root):
        first = pipex.compute(
            [split(d, args.pages) for d in range(args.docs)], load=True, num_workers=4
        )
        nodes = [page(d, p) for d, n in enumerate(first[0]) for p in range(n)]
    return first.summary.ran + pipex.compute(nodes, num_workers=4).summary.ran


def expand(root: str, args: argparse.Namespace, log: list[float]) -> int:
    split, _, pages_of = tasks(args.split_seconds, args.page_seconds, log)
    with pipex.context(path=root):
        expansions = [
            pipex.expand(split(d, args.pages), functools.partial(pages_of, d))
            for d in range(args.docs)
        ]
    return pipex.compute(expansions, num_workers=4).summary.ran


def measure(way: Any, root: str, args: argparse.Namespace) -> dict[str, float]:
    log: list[float] = []
    start = time.perf_counter()
    ran = way(root, args, log)
    fresh = time.perf_counter() - start
    assert ran == args.docs * (args.pages + 1), ran
    first = min(log) - start
    start = time.perf_counter()
    assert way(root, args, []) == 0
    return {"fresh": fresh, "first page": first, "restart": time.perf_counter() - start}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=40)
    parser.add_argument("--pages", type=int, default=10)
    parser.add_argument("--split-seconds", type=float, default=0.05)
    parser.add_argument("--page-seconds", type=float, default=0.01)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    runs: dict[str, list[dict[str, float]]] = {"barrier": [], "expand": []}
    base = tempfile.mkdtemp(prefix="pipex-expand-")
    try:
        for i in range(args.repeat):
            for name, way in (("barrier", barrier), ("expand", expand)):
                runs[name].append(measure(way, os.path.join(base, f"{name}-{i}"), args))
    finally:
        shutil.rmtree(base, ignore_errors=True)
    print(
        f"{args.docs} documents x {args.pages} pages; splits {args.split_seconds} s (every "
        f"4th x4), pages {args.page_seconds} s; 4 threads; {os.cpu_count()} cores; "
        f"medians of {args.repeat}"
    )
    for column in ("fresh", "first page", "restart"):
        b = statistics.median(r[column] for r in runs["barrier"])
        e = statistics.median(r[column] for r in runs["expand"])
        print(f"{column:<11} barrier {b:7.3f} s   expand {e:7.3f} s   expand/barrier x{e / b:.2f}")


if __name__ == "__main__":
    main()
