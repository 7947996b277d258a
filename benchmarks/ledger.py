"""What the run ledger costs on the restart benchmark (restart.py's chains, 4 steps).

In one run, on the same files, each measurement in a fresh subprocess on dask's threaded
scheduler, alternating between the variants compared (medians are compared):

- all done: the restart without an opt-in (the ledger is not read) against the same restart
  with every task's ``version`` set (resolution reads the ledger for the 25,000 roots) and
  with ``pipex.rerun: code``;
- 80% done (the crash-and-restart case): the restart with ``pipex.ledger: false`` against the
  same restart writing the ledger (20% of the chains deleted before each one).

Run:

    python benchmarks/ledger.py                          # 25,000 chains (100,000 tasks)
    python benchmarks/ledger.py --chains 500 --repeat 1  # a smoke run (seconds)
    python benchmarks/ledger.py --states all --repeat 9  # the opt-ins only, more runs
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from typing import Any

import restart
from restart import STEPS, compare, delete_chains, pipex_tasks

#: variant -> (the tasks' version, pipex settings)
VARIANTS: dict[str, tuple[str | None, dict[str, Any]]] = {
    "fill": ("1", {}),
    "plain": (None, {}),
    "version": ("1", {}),
    "code": (None, {"pipex.rerun": "code"}),
    "ledger off": (None, {"pipex.ledger": False}),
    "ledger on": (None, {}),
}


def run(variant: str, root: str, chains: int) -> dict[str, Any]:
    """Build the chains and compute them: what a restart costs, in this process."""
    import dask

    import pipex

    version, config = VARIANTS[variant]
    s1, s2, s3, s4 = pipex_tasks(version=version)
    t0 = time.perf_counter()
    with dask.config.set(config):
        with pipex.context(path=root):
            nodes = [s4(s3(s2(s1(c), c), c), c) for c in range(chains)]
        results = pipex.compute(nodes, progress=False, scheduler="threads")
    return {"total": time.perf_counter() - t0, "ran": results.summary.ran}


def main() -> None:
    parser = restart.measuring(__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--states", default="all,80", help="all (done), 80 (% done), or both")
    args = parser.parse_args()
    if restart.measured(args, run):
        return

    chains, base = args.chains, tempfile.mkdtemp(prefix="pipex-ledger-")
    runs: dict[str, list[dict[str, Any]]] = {}

    def measure(variant: str) -> None:
        result = restart.measure(variant, root, chains, script=__file__)
        runs.setdefault(variant, []).append(result)

    try:
        root = os.path.join(base, "run")
        measure("fill")  # fresh: every target, and the ledger under version "1"
        states = args.states.split(",")
        for _ in range(args.repeat if "all" in states else 0):
            for variant in ("plain", "version", "code"):
                measure(variant)
        for _ in range(args.repeat if "80" in states else 0):
            for variant in ("ledger off", "ledger on"):
                delete_chains(root, chains, 0.2)
                measure(variant)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    print(
        f"{chains} chains x {STEPS} steps; {os.cpu_count()} cores; Python "
        f"{sys.version.split()[0]}; medians of {args.repeat}"
    )
    if "plain" in runs:
        print(compare("all done: no opt-in -> version=", runs["plain"], runs["version"]))
        print(compare("all done: no opt-in -> pipex.rerun: code", runs["plain"], runs["code"]))
    if "ledger on" in runs:
        print(compare("80% done: ledger off -> on", runs["ledger off"], runs["ledger on"]))


if __name__ == "__main__":
    main()
