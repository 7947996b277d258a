"""What the report page weighs and costs: a run of N items x 4 steps with a few failures.

In one run: the pipeline runs once on dask's threaded scheduler (every 97th item fails), then
``pipex.status`` and ``pipex.report`` are timed on it (the page costs a resolution, like
status, plus reading the run's ledger rows and drawing); prints the page's size, how many
timeline bars it holds (binned past 3,000 task runs), and the ratio of its time to
status's. The issue's bound: a 5,000 x 4
run's page is at most 5 MB.

Run:

    python benchmarks/report.py                 # 5,000 items x 4 steps (20,000 tasks)
    python benchmarks/report.py --items 500     # a smoke run (seconds)
"""

from __future__ import annotations

import argparse
import contextlib
import os
import tempfile
import time

import pipex
from pipex.pages import timeline
from pipex.pages.facts import gather

LIMIT_MB = 5.0


@pipex.task(target="{path}/load/{i}.pkl")
def load(i: int) -> int:
    if i % 97 == 1:
        raise ValueError(f"item {i} is unreadable")
    return i


@pipex.task(target="{path}/scale/{i}.pkl")
def scale(x: int, i: int) -> int:
    return 2 * x


@pipex.task(target="{path}/shift/{i}.pkl")
def shift(x: int, i: int) -> int:
    return x + 1


@pipex.task(target="{path}/square/{i}.pkl")
def square(x: int, i: int) -> int:
    return x * x


def build(items: int, folder: str) -> list[pipex.Node]:
    with pipex.context(path=folder):
        return [square(shift(scale(load(i), i), i), i) for i in range(items)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=5000)
    items = parser.parse_args().items
    with tempfile.TemporaryDirectory() as folder:
        nodes = build(items, os.path.join(folder, "out"))
        start = time.perf_counter()
        with contextlib.suppress(pipex.PipelineError):  # every 97th item fails
            pipex.compute(nodes, progress=False)
        ran = time.perf_counter() - start
        start = time.perf_counter()
        pipex.status(nodes)
        status = time.perf_counter() - start
        pipex.report(nodes, filename=os.path.join(folder, "warm.html"))  # imports Bokeh
        start = time.perf_counter()
        page = pipex.report(nodes, filename=os.path.join(folder, "report.html"))
        report = time.perf_counter() - start
        size = os.path.getsize(page) / 1e6
        count = len(timeline.bars(gather(nodes).timed))
    print(f"{items:,} items x 4 steps: the run took {ran:.1f} s")
    print(f"pipex.status: {status:.2f} s; pipex.report: {report:.2f} s ({report / status:.1f}x)")
    print(f"page: {size:.2f} MB (bound {LIMIT_MB:g} MB), {count:,} timeline bars")
    if size > LIMIT_MB:
        raise SystemExit(f"the page is over {LIMIT_MB:g} MB")


if __name__ == "__main__":
    main()
