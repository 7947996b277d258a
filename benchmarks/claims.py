"""What claims cost on the restart benchmark, and what two runners on one store do.

In one run, on the same files, each measurement in a fresh subprocess on dask's threaded
scheduler:

- 80% done (the crash-and-restart case), alternating: the restart with
  ``pipex.claims: false`` against the same restart with claims (the default); 20% of the
  chains deleted before each one. Medians are compared.
- two runners: the restart pipeline started twice at once on one fresh folder (two
  processes), with and without claims: how many tasks ran in all, and the wall time until
  both finished.

Run:

    python benchmarks/claims.py                          # 25,000 chains (100,000 tasks)
    python benchmarks/claims.py --chains 200 --repeat 1  # a smoke run (seconds)
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any

import restart
from restart import STEPS, compare, delete_chains, pipex_tasks


def run(variant: str, root: str, chains: int) -> dict[str, Any]:
    """Build the chains and compute them, claims on or off: what a restart costs."""
    import dask

    import pipex

    s1, s2, s3, s4 = pipex_tasks()
    t0 = time.perf_counter()
    with dask.config.set({"pipex.claims.enabled": variant == "claims on"}):
        with pipex.context(path=root):
            nodes = [s4(s3(s2(s1(c), c), c), c) for c in range(chains)]
        results = pipex.compute(nodes, progress=False, scheduler="threads")
    return {"total": time.perf_counter() - t0, "ran": results.summary.ran}


def two_runners(variant: str, root: str, chains: int) -> dict[str, Any]:
    """Start two runners at once on a fresh ``root``: tasks run in all, and the wall time."""
    command = [sys.executable, os.path.abspath(__file__), "--one", variant, "--root", root]
    command += ["--chains", str(chains)]
    t0 = time.perf_counter()
    processes = [
        subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=os.path.dirname(root))
        for _ in range(2)
    ]
    outputs = [json.loads(p.communicate()[0].strip().splitlines()[-1]) for p in processes]
    return {"total": time.perf_counter() - t0, "ran": sum(o["ran"] for o in outputs)}


def main() -> None:
    parser = restart.measuring(__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--pair-chains", type=int, default=400, help="chains of the 2-runner run")
    args = parser.parse_args()
    if restart.measured(args, run):
        return

    chains, base = args.chains, tempfile.mkdtemp(prefix="pipex-claims-")
    runs: dict[str, list[dict[str, Any]]] = {}
    pairs: dict[str, dict[str, Any]] = {}
    try:
        root = os.path.join(base, "run")
        restart.measure("claims on", root, chains, script=__file__)  # fresh: every target
        for _ in range(args.repeat):
            for variant in ("claims off", "claims on"):
                delete_chains(root, chains, 0.2)
                result = restart.measure(variant, root, chains, script=__file__)
                runs.setdefault(variant, []).append(result)
        for variant in ("claims off", "claims on"):
            pair_root = os.path.join(base, f"pair-{variant.split()[-1]}")
            os.makedirs(pair_root)
            pairs[variant] = two_runners(variant, pair_root, args.pair_chains)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    print(
        f"{chains} chains x {STEPS} steps; {os.cpu_count()} cores; Python "
        f"{sys.version.split()[0]}; medians of {args.repeat}"
    )
    print(compare("80% done: claims off -> on", runs["claims off"], runs["claims on"], 36))
    for variant, pair in pairs.items():
        print(
            f"two runners at once, {args.pair_chains * STEPS} targets, {variant}: "
            f"{pair['ran']} task runs in all, {pair['total']:.2f} s until both finished"
        )


if __name__ == "__main__":
    main()
