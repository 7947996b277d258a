"""Cluster benchmark: C chains x 4 small steps, fresh, on a dask.distributed LocalCluster.

One ``LocalCluster`` (2 worker processes x 1 thread by default) runs, in turns, pipex and the
same pipeline written by hand with ``dask.delayed`` (restart.py's careful script: existence
checked from the last step down, atomic writes, ``optimize_graph=False``), each time in a
fresh folder, so every task runs. The turns alternate and the best of ``--repeat`` is kept,
so both meet the same load on the machine. Run:

    python benchmarks/cluster.py                     # 500 chains (2,000 tasks), 3 turns each
    python benchmarks/cluster.py --chains 20 --repeat 1   # a smoke run

Goal (issue 13): pipex / hand-written dask <= 1.0.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from typing import Any

import restart
from restart import pipex_tasks, run_dask

GOAL = 1.0


def run_pipex_on(client: Any, root: str, chains: int) -> dict[str, Any]:
    """Build the nodes and compute them on ``client``; wall time and tasks run."""
    import pipex

    s1, s2, s3, s4 = pipex_tasks()
    t0 = time.perf_counter()
    with pipex.context(path=root):
        nodes = [s4(s3(s2(s1(c), c), c), c) for c in range(chains)]
    results = pipex.compute(nodes, scheduler=client, progress=False)
    return {"total": time.perf_counter() - t0, "ran": results.summary.ran}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chains", type=int, default=500)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    import cloudpickle
    import dask
    from distributed import Client, LocalCluster

    # the workers cannot import these scripts: ship their functions by value
    cloudpickle.register_pickle_by_value(restart)
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    base = tempfile.mkdtemp(prefix="pipex-cluster-")
    times: dict[str, list[float]] = {"pipex": [], "dask": []}
    ran: dict[str, int] = {}
    try:
        with (
            LocalCluster(
                n_workers=args.workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=":0",
            ) as cluster,
            Client(cluster) as client,
        ):
            client.run(lambda: __import__("pipex"))  # imports are not what is measured
            for turn in range(args.repeat):
                for system in ("pipex", "dask") if turn % 2 == 0 else ("dask", "pipex"):
                    root = os.path.join(base, f"{system}-{turn}")
                    if system == "pipex":
                        m = run_pipex_on(client, root, args.chains)
                    else:
                        with dask.config.set(scheduler=client):
                            m = run_dask(root, args.chains)
                    times[system].append(m["total"])
                    ran[system] = m["ran"]
    finally:
        shutil.rmtree(base, ignore_errors=True)

    tasks = args.chains * restart.STEPS
    print(
        f"LocalCluster {args.workers} workers x 1 thread; {tasks} tasks fresh; "
        f"{os.cpu_count()} cores; best of {args.repeat}"
    )
    print(f"{'system':<6} {'best s':>8} {'all runs s':<30} {'ran':>6}")
    for system, runs in times.items():
        shown = ", ".join(f"{t:.2f}" for t in runs)
        print(f"{system:<6} {min(runs):>8.3f} {shown:<30} {ran[system]:>6}")
    ratio = min(times["pipex"]) / min(times["dask"])
    met = "met" if ratio <= GOAL else "NOT met"
    print(
        f"\nLocalCluster, {tasks} tasks fresh: pipex / hand-written dask = {ratio:.2f} "
        f"(goal <= {GOAL}: {met})"
    )


if __name__ == "__main__":
    main()
