"""Bundles: several independent chains of missing nodes run as one scheduler task.

A scheduler pays for every task it holds (on a cluster, about a millisecond of its CPU and a
message each way), more than a small chain's work. So the chains of a plan
(:func:`pipex.core.fusion.chains`) that do not read each other, those at the same depth
(every missing input of a chain is in a chain of a lower depth), are packed into tasks of
up to ``pipex.chains-per-task`` chains, neighbours in the plan together. With ``auto``, a
depth keeps at least :data:`PER_WORKER` tasks per worker thread (the cluster stays busy to
the end) and a task holds at most :data:`MOST` chains. A bundle runs as one batch of one
item (:func:`pipex.core.fusion.chain_batch`), each chain after the one before: a chain that
fails fails its own later steps only, and every step is still reported as it was.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from pipex import settings

#: ``auto``: the most chains in one task.
MOST = 64
#: ``auto``: the fewest tasks per worker thread at each depth (fewer chains: one each).
PER_WORKER = 8


def chains_per_task() -> int | None:
    """The setting ``pipex.chains-per-task``: a number of chains, or ``None`` for ``auto``."""
    value = settings.get("chains-per-task")
    return None if value == "auto" else int(value)


def bundles(
    chains: Sequence[list[Any]],
    workers: int,
    fusable: Callable[[Any], bool] | None = None,
    size: int | None = None,
) -> list[list[Any]]:
    """``chains`` (inputs first, each a list of nodes) packed into the node lists of
    scheduler tasks: each the nodes of one or more chains of the same depth, one chain
    after the other. ``workers``: the worker threads that will run them; ``size``: chains
    per task (default: the setting); a chain with a node that is not ``fusable`` stays alone.
    """
    size = chains_per_task() if size is None else size
    if size == 1 or (size is None and len(chains) < 2 * PER_WORKER * max(1, workers)):
        return [list(chain) for chain in chains]  # auto: at most one chain per task anyway
    return _packed(chains, workers, fusable, size)


def _packed(
    chains: Sequence[list[Any]],
    workers: int,
    fusable: Callable[[Any], bool] | None,
    size: int | None,
) -> list[list[Any]]:
    alone: list[list[Any]] = []
    by_depth: dict[int, list[list[Any]]] = {}
    for chain, depth in zip(chains, _depths(chains), strict=True):
        if fusable is not None and not all(fusable(node) for node in chain):
            alone.append(list(chain))
        else:
            by_depth.setdefault(depth, []).append(chain)
    out: list[list[Any]] = []
    for depth in sorted(by_depth):
        level = by_depth[depth]
        per = size or min(MOST, len(level) // (PER_WORKER * max(1, workers)))
        if per <= 1:
            out.extend(list(chain) for chain in level)
            continue
        count = -(-len(level) // per)
        for b in range(count):
            part = level[b * len(level) // count : (b + 1) * len(level) // count]
            out.append([node for chain in part for node in chain])
    return out + alone


def _depths(chains: Sequence[list[Any]]) -> list[int]:
    """Each chain's depth: 0 if it reads no other chain, else one more than the deepest
    chain it reads."""
    owner = {node.key: c for c, chain in enumerate(chains) for node in chain}
    depth = [-1] * len(chains)
    for start in range(len(chains)):
        stack = [start]
        while stack:
            c = stack[-1]
            if depth[c] >= 0:
                stack.pop()
                continue
            below = {
                owner[dep.key]
                for node in chains[c]
                for dep in node.deps
                if owner.get(dep.key, c) != c
            }
            pending = [b for b in below if depth[b] < 0]
            if pending:
                stack.extend(pending)
                continue
            stack.pop()
            depth[c] = 1 + max((depth[b] for b in below), default=-1)
    return depth
