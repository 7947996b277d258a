"""Store benchmark: the restart scenario (C chains x 4 small outputs) on SQLiteStore vs FileStore.

The pipeline of restart.py, its targets in a ``FileStore`` folder (one file per output) or a
``SQLiteStore`` (one row per output, one database file), for three states: fresh, 80% of
chains done (the crash-and-restart case) and all done. Every measurement runs in a fresh
subprocess on dask's threaded scheduler; the ratios printed are measured in this run. Run:

    python benchmarks/stores.py                  # 25,000 chains (100,000 tasks)
    python benchmarks/stores.py --chains 500     # a smoke run (seconds)
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from typing import Any

import restart
from restart import STEPS, pipex_tasks

STORES = ("file", "sqlite")


def make_store(kind: str, root: str) -> Any:
    import pipex

    if kind == "file":
        return pipex.FileStore(root)
    return pipex.SQLiteStore(os.path.join(root, "targets.db"))


def run(kind: str, root: str, chains: int) -> dict[str, Any]:
    """Build the chains and compute them: what a restart costs, in this process."""
    import pipex

    s1, s2, s3, s4 = pipex_tasks(make_store(kind, root))
    t0 = time.perf_counter()
    with pipex.context(path="run"):
        nodes = [s4(s3(s2(s1(c), c), c), c) for c in range(chains)]
    results = pipex.compute(nodes, progress=False, scheduler="threads")
    return {"total": time.perf_counter() - t0, "ran": results.summary.ran}


def measure(kind: str, root: str, chains: int) -> dict[str, Any]:
    """One run in a fresh subprocess; its wall time, CPU time and peak RSS."""
    return restart.measure(kind, root, chains, script=__file__)


def delete_chains(kind: str, root: str, chains: int, fraction: float) -> None:
    """Delete every step's output of the last ``fraction`` of chains."""
    store = make_store(kind, root)
    for c in range(int(chains * (1 - fraction)), chains):
        for s in range(1, STEPS + 1):
            store.delete(f"run/s{s}/{c}.pkl")


def main() -> None:
    parser = restart.measuring(__doc__.splitlines()[0])
    args = parser.parse_args()
    if restart.measured(args, run):
        return

    rows: dict[tuple[str, str], dict[str, Any]] = {}
    base = tempfile.mkdtemp(prefix="pipex-stores-")
    try:
        for kind in STORES:
            root = os.path.join(base, kind)
            os.makedirs(root)
            rows["fresh", kind] = measure(kind, root, args.chains)
            delete_chains(kind, root, args.chains, 0.2)
            rows["80% done", kind] = measure(kind, root, args.chains)
            rows["all done", kind] = measure(kind, root, args.chains)
    finally:
        shutil.rmtree(base, ignore_errors=True)

    print(f"{args.chains} chains x {STEPS} steps; {os.cpu_count()} cores; threaded scheduler")
    print(f"{'state':<9} {'store':<7} {'total s':>8} {'cpu s':>7} {'ran':>7} {'peak MB':>8}")
    for (state, kind), m in rows.items():
        print(
            f"{state:<9} {kind:<7} {m['total']:>8.3f} {m['cpu']:>7.2f} {m['ran']:>7} "
            f"{m['rss_mb']:>8.0f}"
        )
    print()
    for state in ("fresh", "80% done", "all done"):
        mine, theirs = rows[state, "sqlite"], rows[state, "file"]
        print(
            f"{state:<9} sqlite / file = {mine['total'] / theirs['total']:6.3f} wall, "
            f"{mine['cpu'] / theirs['cpu']:6.3f} cpu"
        )


if __name__ == "__main__":
    main()
