"""S3 request benchmark: HTTP requests of an all-done restart, for growing numbers of targets.

The pipeline of restart.py (C chains x 4 steps) with ``pipex.context(path="s3://...")``,
against moto's standalone S3 server on 127.0.0.1 (``pip install "moto[server]" s3fs``).
For each size, every target is written (uploaded concurrently by s3fs, outside pipex),
then the restart builds the nodes and calls ``pipex.compute``; the server's log counts
the requests it received during the restart. Resolution stops at the finished final
targets, so it lists ``s4/`` only: one request per 1,000 keys (S3's page), against one
request per target for a per-target existence check. Run:

    python benchmarks/s3_requests.py                        # 100, 1,000, 10,000 chains
    python benchmarks/s3_requests.py --chains 100,2000      # a smoke run
"""

from __future__ import annotations

import argparse
import os
import pickle
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.s3server

from restart import STEPS, pipex_tasks

from tests.s3server import moto_server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chains", default="100,1000,10000")
    args = parser.parse_args()
    sizes = [int(n) for n in args.chains.split(",")]

    import s3fs

    import pipex

    rows = []
    with tempfile.TemporaryDirectory() as folder, moto_server(Path(folder)) as server:
        fs = s3fs.S3FileSystem(**server.options)
        for chains in sizes:
            bucket = server.new_bucket()
            fs.pipe(
                {
                    f"{bucket}/run/s{s}/{c}.pkl": pickle.dumps(c + s - 1)
                    for s in range(1, STEPS + 1)
                    for c in range(chains)
                }
            )
            s1, s2, s3, s4 = pipex_tasks(pipex.FsspecStore(f"s3://{bucket}", **server.options))
            before = server.requests()
            t0 = time.perf_counter()
            with pipex.context(path=f"s3://{bucket}/run"):
                nodes = [s4(s3(s2(s1(c), c), c), c) for c in range(chains)]
            results = pipex.compute(nodes, progress=False, scheduler="threads")
            seconds = time.perf_counter() - t0
            assert results.summary.ran == 0, "not every target was found"
            rows.append((chains, server.requests() - before, seconds))

    print(f"all-done restart on S3 (moto_server on 127.0.0.1); {os.cpu_count()} cores")
    print(f"{'chains':>7} {'targets':>8} {'requests':>9} {'one by one':>11} {'s':>7}")
    for chains, requests, seconds in rows:
        print(f"{chains:>7} {chains * STEPS:>8} {requests:>9} {chains:>11} {seconds:>7.2f}")


if __name__ == "__main__":
    main()
