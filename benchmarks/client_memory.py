"""Client memory benchmark: thousands of 10 MB outputs computed on a LocalCluster.

pipex tasks hand each other Targets, never data, and ``pipex.compute`` gathers only the
Targets: the client's memory should not grow with the size of what the workers write. This
samples the client's RSS during ``pipex.compute`` of N independent tasks that each write a
``--megabytes`` output, and, as a baseline in the same run, during ``client.gather`` of a
few plain dask futures returning outputs of the same size (what holding outputs costs).
Run:

    python benchmarks/client_memory.py                  # 2,000 x 10 MB (20 GB written)
    python benchmarks/client_memory.py --outputs 100    # a quick look

Outputs go to a temporary folder (``--folder`` to choose; it needs room for all of them),
deleted at the end. Prints the client's RSS before, at its peak and after, for both.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any

import psutil
from distributed import Client, LocalCluster

import pipex

MiB = 2**20


@pipex.task(target="{path}/blob/{i:05d}.pkl")
def blob(i: int, megabytes: int) -> bytes:
    """One output of ``megabytes`` (written by the worker, never sent to the client)."""
    return i.to_bytes(4, "little") * (megabytes * MiB // 4)


def make(i: int, megabytes: int) -> bytes:
    """The same output as a plain dask future's result (the baseline)."""
    return i.to_bytes(4, "little") * (megabytes * MiB // 4)


class Sampler:
    """Samples this process's RSS every ``interval`` seconds while in the ``with`` block."""

    def __init__(self, interval: float = 0.02) -> None:
        self.interval = interval
        self.process = psutil.Process()
        self.before = self.peak = self.after = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss)
            self._stop.wait(self.interval)

    def __enter__(self) -> Sampler:
        self.before = self.peak = self.process.memory_info().rss
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.after = self.process.memory_info().rss
        self.peak = max(self.peak, self.after)


def timed(function: Callable[[], Any]) -> tuple[Any, Sampler, float]:
    with Sampler() as sampler:
        start = time.perf_counter()
        result = function()
        seconds = time.perf_counter() - start
    return result, sampler, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--outputs", type=int, default=2000, help="pipex tasks (outputs)")
    parser.add_argument("--megabytes", type=int, default=10, help="size of each output, MiB")
    parser.add_argument("--baseline", type=int, default=30, help="plain futures gathered")
    parser.add_argument("--workers", type=int, default=2, help="LocalCluster worker processes")
    parser.add_argument("--folder", default=None, help="where outputs go (default: a temp dir)")
    args = parser.parse_args()

    folder = tempfile.mkdtemp(prefix="pipex-client-memory-", dir=args.folder)
    cwd = os.getcwd()
    os.chdir(folder)  # the store root of the outputs, where the run ledger goes too
    try:
        with (
            LocalCluster(
                n_workers=args.workers,
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address=":0",
            ) as cluster,
            Client(cluster) as client,
        ):
            with pipex.context(path=folder):
                nodes = [blob(i, args.megabytes) for i in range(args.outputs)]
                warm_up = blob(args.outputs, 1)  # imports, plugins: not measured
            pipex.compute(warm_up, progress=False)

            results, pipex_run, seconds = timed(lambda: pipex.compute(nodes, progress=False))
            assert results.summary.ran == args.outputs, results.summary
            written = sum(os.path.getsize(t) for t in results[0])

            futures = [
                client.submit(make, i, args.megabytes, pure=False) for i in range(args.baseline)
            ]
            _, baseline, _ = timed(lambda: client.gather(futures))
    finally:
        os.chdir(cwd)
        shutil.rmtree(folder, ignore_errors=True)

    def grew(sampler: Sampler) -> float:
        return (sampler.peak - sampler.before) / MiB

    print(
        f"pipex.compute: {args.outputs} outputs x {args.megabytes} MiB "
        f"({written / 2**30:.1f} GiB written by {args.workers} workers) in {seconds:.1f} s"
    )
    print(
        f"  client RSS: {pipex_run.before / MiB:.0f} MiB before, "
        f"{pipex_run.peak / MiB:.0f} MiB peak, {pipex_run.after / MiB:.0f} MiB after: "
        f"+{grew(pipex_run):.0f} MiB at peak, "
        f"{grew(pipex_run) * 1024 / args.outputs:.1f} KiB per output"
    )
    print(
        f"baseline, client.gather of {args.baseline} plain futures x {args.megabytes} MiB: "
        f"+{grew(baseline):.0f} MiB at peak, "
        f"{grew(baseline) / max(args.baseline, 1):.1f} MiB per output"
    )


if __name__ == "__main__":
    main()
