"""What claims cost on the restart benchmark, and what two runners on one store do.

In one run, on the same files, each measurement in a fresh subprocess on dask's threaded
scheduler:

- 80% done (the crash-and-restart case), alternating: the restart with
  ``pipex.claims: false`` against the same restart with claims (the default); 20% of the
  chains deleted before each one. Medians are compared.
- two runners: the restart pipeline started twice at once on one fresh folder (two
  processes), with and without claims: how many tasks ran in all, and the wall time until
  both finished.
- sharing: ``--share-tasks`` independent tasks that each sleep ``--share-seconds`` on 2
  threads, once by one runner, then by two runners started at once on a fresh folder: the
  two runners' wall time against the one's (the target: at most 0.6x), and the task runs.

Run:

    python benchmarks/claims.py                          # 25,000 chains (100,000 tasks)
    python benchmarks/claims.py --chains 200 --repeat 1  # a smoke run (seconds)
    python benchmarks/claims.py --share-only             # the sharing measurement alone
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
    """Build the chains and compute them, claims on or off: what a restart costs. Variant
    ``sleep:S``: ``chains`` independent tasks of ``S`` seconds each, on 2 threads."""
    import dask

    import pipex

    if variant.startswith("sleep:"):
        seconds = float(variant.split(":")[1])

        @pipex.task(target="{path}/sleep/{i}.pkl")
        def nap(i: int) -> int:
            time.sleep(seconds)
            return i

        t0 = time.perf_counter()
        with pipex.context(path=root):
            naps = [nap(i) for i in range(chains)]
        results = pipex.compute(naps, progress=False, scheduler="threads", num_workers=2)
        summary = results.summary
        return {"total": time.perf_counter() - t0, "ran": summary.ran}

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
    return {
        "total": time.perf_counter() - t0,
        "ran": sum(o["ran"] for o in outputs),
        "inside": max(o["total"] for o in outputs),  # the slower one, without its start-up
    }


def sharing(base: str, tasks: int, seconds: float) -> dict[str, Any]:
    """One runner on ``tasks`` sleeping tasks, then two at once on a fresh folder."""
    variant = f"sleep:{seconds:g}"
    one_root, two_root = os.path.join(base, "share-one", "run"), os.path.join(base, "share-two")
    os.makedirs(os.path.dirname(one_root))
    t0 = time.perf_counter()
    one = restart.measure(variant, one_root, tasks, script=__file__)
    one["wall"] = time.perf_counter() - t0
    os.makedirs(two_root)
    two = two_runners(variant, os.path.join(two_root, "run"), tasks)
    return {
        "one": one["wall"],
        "two": two["total"],
        "ran": two["ran"],
        "one inside": one["total"],
        "two inside": two["inside"],
    }


def main() -> None:
    parser = restart.measuring(__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--pair-chains", type=int, default=400, help="chains of the 2-runner run")
    parser.add_argument("--share-tasks", type=int, default=40)
    parser.add_argument("--share-seconds", type=float, default=1.0)
    parser.add_argument("--share-only", action="store_true", help="the sharing measurement only")
    args = parser.parse_args()
    if restart.measured(args, run):
        return
    if args.share_only:
        base = tempfile.mkdtemp(prefix="pipex-claims-")
        try:
            shared = sharing(base, args.share_tasks, args.share_seconds)
        finally:
            shutil.rmtree(base, ignore_errors=True)
        _print_sharing(shared, args)
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
        shared = sharing(base, args.share_tasks, args.share_seconds)
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
    _print_sharing(shared, args)


def _print_sharing(shared: dict[str, Any], args: Any) -> None:
    print(
        f"sharing, {args.share_tasks} tasks of {args.share_seconds:g} s on 2 threads: one "
        f"runner {shared['one']:.2f} s, two runners at once {shared['two']:.2f} s "
        f"({shared['two'] / shared['one']:.2f}x), {shared['ran']} task runs in all; without "
        f"process start-up and imports: {shared['one inside']:.2f} s -> "
        f"{shared['two inside']:.2f} s ({shared['two inside'] / shared['one inside']:.2f}x)"
    )


if __name__ == "__main__":
    main()
