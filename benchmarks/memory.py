"""Memory: outputs of 10 MB each must not accumulate in the process that computes them.

N tasks each produce 10 MB; a second step reads each and writes a small summary. pipex hands
Targets between tasks, so peak RSS should not grow with N. The baseline is plain
``dask.delayed`` over the same functions returning data, whose results the client holds.
Each (system, N) runs in a fresh subprocess on dask's threaded scheduler. Run:

    python benchmarks/memory.py                 # N = 25, 100, 200 (2 GB of outputs at most)
    python benchmarks/memory.py --counts 5,20   # a smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile

MB = 2**20


def produce(i: int) -> bytes:
    return bytes([i % 256]) * (10 * MB)


def summarize(blob: bytes) -> int:
    return len(blob)


def run_pipex(root: str, count: int) -> None:
    import pipex

    big = pipex.task(target="{path}/big/{i}.pkl", name="big")(produce)
    small = pipex.task(target="{path}/small/{blob.stem}.json", name="small")(summarize)
    with pipex.context(path=root):
        nodes = [small(big(i)) for i in range(count)]
    results = pipex.compute(nodes, load=True, progress=False)[0]
    assert results == [10 * MB] * count


def run_dask(root: str, count: int) -> None:
    import dask

    blobs = [dask.delayed(produce)(i) for i in range(count)]
    sizes = [dask.delayed(summarize)(b) for b in blobs]
    _, results = dask.compute(blobs, sizes, optimize_graph=False)
    assert results == [10 * MB] * count


RUNNERS = {"pipex": run_pipex, "dask": run_dask}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", default="25,100,200")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--root", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        RUNNERS[args.one](args.root, args.count)
        print(json.dumps({"rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
        return

    print(f"{'outputs':>8} {'output MB':>9} {'pipex peak MB':>13} {'dask peak MB':>12}")
    for count in (int(c) for c in args.counts.split(",")):
        peaks = {}
        for system in RUNNERS:
            root = tempfile.mkdtemp(prefix="pipex-memory-")
            try:
                out = subprocess.run(
                    [
                        sys.executable,
                        __file__,
                        "--one",
                        system,
                        "--count",
                        str(count),
                        "--root",
                        root,
                    ],
                    check=True,
                    capture_output=True,
                    text=True,
                )
                peaks[system] = json.loads(out.stdout.strip().splitlines()[-1])["rss_mb"]
            finally:
                shutil.rmtree(root, ignore_errors=True)
        print(f"{count:>8} {10 * count:>9} {peaks['pipex']:>13.0f} {peaks['dask']:>12.0f}")
    print(f"({os.cpu_count()} cores, dask's threaded scheduler)")


if __name__ == "__main__":
    main()
