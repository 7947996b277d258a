"""Bottom-up resolution: from the requested nodes downward, stop at every existing target.

A node whose target exists is done; nothing below it is checked, loaded or scheduled.
Existence is checked level by level, in one batch per store (one listing per folder for
files). The result is a :class:`Plan`: the targets found done and the nodes that must run.
An optional :class:`Stale` check (the run ledger's opt-ins) may call existing targets of a
level missing, in one call per level.
"""

from __future__ import annotations

from collections import ChainMap, defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from pipex.core.items import DONE, Levels, missing_count, refuse_collisions
from pipex.core.order import inputs_first
from pipex.core.targets import Target
from pipex.core.tokens import token
from pipex.core.walk import replace
from pipex.exceptions import TargetCollisionError


class Task(Protocol):
    """What resolution reads of a task (a :class:`pipex.TaskFunction`)."""

    name: str
    fn: Any


class Node(Protocol):
    """What resolution reads of a node (a :class:`pipex.Node`)."""

    task: Any
    deps: tuple[Any, ...]

    @property
    def arguments(self) -> dict[str, Any]: ...

    @property
    def target(self) -> Target: ...

    @property
    def key(self) -> str: ...


class Stale(Protocol):
    """Which of some nodes whose targets exist count as missing all the same (one call per
    level of resolution, never one per node)."""

    def __call__(self, nodes: Sequence[Any]) -> list[bool]: ...


@dataclass
class Plan:
    """The outcome of resolution: which visited targets exist, and which nodes must run.

    ``done`` maps each finished node's key to its target; ``missing`` lists the nodes to run,
    each before the nodes below it (the order they were found in); ``rewrites`` holds the
    keys of those whose targets exist but count as missing (``Stale``): they are rewritten;
    each maps to the target's stamp as resolution saw it (``Store.stamp``), so that a
    runner that claims it can tell another runner rewrote it meanwhile (:meth:`rewrite`).
    With ``defer``, a target another runner claimed is not waited for: its call returns
    ``Claimed`` at once (the run comes back to it: :mod:`pipex.running.claimed`).
    """

    roots: list[Any]
    done: Mapping[str, Target] = field(default_factory=dict)
    missing: list[Any] = field(default_factory=list)
    rewrites: dict[str, str | None] = field(default_factory=dict)
    defer: bool = False
    #: Each mapped step visited, with the state of each item (:mod:`pipex.core.items`).
    families: dict[Any, bytearray] = field(default_factory=dict)
    #: The items of mapped steps that missing nodes read (``m[i]`` below a plain node, or a
    #: ``Mapped`` given to a plain task), by key, that must run: their steps' batches run
    #: them, before the nodes that read them (:meth:`split`). They are not in ``missing``.
    awaited: dict[str, Any] = field(default_factory=dict)

    @property
    def items(self) -> int:
        """How many items of mapped steps must run."""
        return sum(missing_count(states) for states in self.families.values())

    def rewrite(self, key: str) -> bool | str:
        """What the call of ``key`` rewrites: ``False``, a missing target; a stale target's
        stamp, which it writes unless that changed meanwhile; ``True`` (stamp unknown),
        which it writes whatever it holds."""
        if key not in self.rewrites:
            return False
        stamp = self.rewrites[key]
        return True if stamp is None else stamp

    def order(self) -> list[Any]:
        """The missing nodes, every one after the missing nodes it depends on."""
        return dependency_order(self.missing)

    def without(self, keys: Iterable[str]) -> tuple[Plan, list[Any]]:
        """This plan without the missing nodes named by ``keys`` and every missing node that
        depends on one of them; and those nodes left out, inputs first."""
        out = set(keys)
        left: list[Any] = []
        for node in self.order():
            if node.key in out or any(dep.key in out for dep in node.deps):
                out.add(node.key)
                left.append(node)
        if not left:
            return self, []
        missing = [node for node in self.missing if node.key not in out]
        plan = Plan(roots=self.roots, done=self.done, missing=missing, rewrites=self.rewrites)
        plan.families = self.families
        plan.awaited = self.awaited
        return plan, left

    def split(self) -> tuple[Plan, Plan]:
        """The missing nodes that can run before the items of mapped steps (every node that
        reads no :attr:`awaited` item, even through other nodes) and those that run after;
        each as a plan (the second one's ``done`` to be completed with the items' outcomes)."""
        if not self.awaited:
            return self, Plan(roots=[], done=self.done, rewrites=self.rewrites)
        before, after = self.without(self.awaited)
        later = Plan(roots=[], done=self.done, missing=after, rewrites=self.rewrites)
        later.defer = self.defer
        return before, later

    def batches(self, size: int, finished: Mapping[str, Any]) -> Iterator[Plan]:
        """The missing nodes in plans of about ``size`` nodes, inputs before their users.

        A batch ends once it holds ``size`` nodes or more, after the last node it needs from
        below the node that filled it. Each batch's inputs are finished targets or outcomes
        of earlier batches, read from ``finished``, which the caller fills as batches
        complete. Bounds the memory a scheduler needs for very large runs.
        """
        if len(self.missing) <= size:
            yield self
            return
        # ChainMap's stub asks for MutableMappings; only reads go through this one
        done: ChainMap[str, Any] = ChainMap(finished, self.done)  # type: ignore[arg-type]
        batch: list[Any] = []
        for group in _placed(self.missing):
            batch.extend(group)
            if len(batch) >= size:
                yield Plan(roots=[], done=done, missing=batch, rewrites=self.rewrites)
                batch = []
        if batch:
            yield Plan(roots=[], done=done, missing=batch, rewrites=self.rewrites)


def dependency_order(nodes: Sequence[Node]) -> list[Any]:
    """``nodes`` with every node after the nodes of ``nodes`` it depends on (depth first)."""
    return [node for group in _placed(nodes) for node in group]


def _placed(nodes: Sequence[Node]) -> Iterator[list[Any]]:
    """For each of ``nodes`` in turn: it and its inputs among ``nodes`` not placed before,
    inputs first (roots and shared inputs first appear in the order resolution found them)."""
    canonical = {node.key: node for node in nodes}  # the same call may be two node objects
    seen: set[str] = set()
    for start in nodes:
        if start.key in seen:
            continue
        seen.add(start.key)
        group: list[Any] = []
        stack = [(start, iter(start.deps))]
        while stack:
            node, deps = stack[-1]
            dep = next(deps, None)
            if dep is None:
                stack.pop()
                group.append(node)
            elif dep.key in canonical and dep.key not in seen:
                seen.add(dep.key)
                dep = canonical[dep.key]
                stack.append((dep, iter(dep.deps)))
        yield group


def resolve(
    roots: Iterable[Node],
    check: bool = True,
    stale: Stale | None = None,
    families: Sequence[Any] = (),
    items_with_steps: bool = False,
) -> Plan:
    """Walk down from ``roots`` and every item of ``families`` (mapped steps), checking
    targets level by level (all missing if not ``check``).

    ``stale``, when given, sees the nodes of each level whose targets exist and may call some
    of them missing: they run again, and resolution goes on below them. A mapped step is
    checked as a set of item indices: one listing per folder, the items still missing
    passed down to the steps they read, their shared inputs (nodes) added to the next level.
    With ``items_with_steps``, an item of a mapped step below a plain node is checked with
    the rest of its step, not as a plain node: if missing, it is :attr:`Plan.awaited` (for
    a caller that runs the plan's items before the nodes that read them, as compute does).
    """
    plan = Plan(roots=list(roots))
    levels = Levels(plan.families, check, stale)
    for family in families:
        levels.add(family, range(len(family)))
    done: dict[str, Target] = {}
    plan.done = done
    by_target: dict[tuple[Any, str], Node] = {}
    calls: dict[int, str] = {}  # call tokens of the nodes compared so far, by id
    items: dict[str, Any] = {}  # items of mapped steps below plain nodes, by key
    plain = {node.key for node in plan.roots}  # a requested item stays a plain node

    def plain_dep(dep: Any) -> bool:
        """Whether ``dep`` is checked as a plain node: not an item of a mapped step, which
        is checked (and run) with the rest of its step."""
        item = getattr(dep, "item", None)
        if item is None or not items_with_steps or dep.key in plain:
            return True
        if dep.key not in items:
            items[dep.key] = dep
            levels.add_one(*item)
        return False

    def first_visit(node: Node) -> bool:
        target = node.target
        ident = (target.store, target.path)
        seen = by_target.get(ident)
        if seen is None:
            by_target[ident] = node
            return True
        refuse_collision(seen, node, memo=calls)
        return False

    frontier = [node for node in plan.roots if first_visit(node)]
    while frontier or levels:
        frontier.extend(dep for dep in levels.step() if first_visit(dep))
        if not frontier:
            continue
        exists = exists_many([n.target for n in frontier]) if check else [False] * len(frontier)
        written = exists
        if stale is not None:
            exists = _fresh(frontier, exists, stale)
        below: list[Node] = []
        for node, found, was in zip(frontier, exists, written, strict=True):
            if found:
                done[node.key] = node.target
                continue
            plan.missing.append(node)
            if was:
                plan.rewrites[node.key] = _stamp(node.target)
            below.extend(dep for dep in node.deps if plain_dep(dep) and first_visit(dep))
        frontier = below
    for key, node in items.items():
        family, i = node.item
        if plan.families[family][i] == DONE:
            done[key] = node.target
        else:
            plan.awaited[key] = node
    if plan.families and by_target:
        nodes = list(by_target.values())
        refuse_collisions(list(plan.families), nodes, lambda a, b: refuse_collision(a, b))
    return plan


def _stamp(target: Target) -> str | None:
    """The stamp of an existing target (``Store.stamp``), if its store gives one."""
    stamp = getattr(target.store, "stamp", None)
    return stamp(target.path) if stamp is not None else None


def _fresh(nodes: Sequence[Node], exists: list[bool], stale: Stale) -> list[bool]:
    """``exists``, with the existing targets that ``stale`` calls stale counted missing."""
    found = [node for node, ok in zip(nodes, exists, strict=True) if ok]
    if not found:
        return exists
    verdicts = iter(stale(found))
    return [ok and not next(verdicts) for ok in exists]


def exists_many(targets: Sequence[Target]) -> list[bool]:
    """Whether each target exists: one ``exists_many`` call per store."""
    by_store: defaultdict[Any, list[int]] = defaultdict(list)
    for i, target in enumerate(targets):
        by_store[target.store].append(i)
    found = [False] * len(targets)
    for store, indexes in by_store.items():
        answers = store.exists_many([targets[i].path for i in indexes])
        for i, ok in zip(indexes, answers, strict=True):
            found[i] = ok
    return found


def refuse_collision(
    seen: Node | str,
    node: Node,
    seen_in: str = "",
    node_in: str = "",
    memo: dict[int, str] | None = None,
) -> None:
    """A :class:`TargetCollisionError` if ``seen`` and ``node``, which render the same target,
    are different calls (``seen_in``, ``node_in``: where each came from, if not the graph;
    ``memo``: call tokens already made, by node id, for the caller's walk).

    ``seen`` may be the :func:`call_token` of a call that is no longer at hand (recorded).
    """
    memo = {} if memo is None else memo
    if isinstance(seen, str):
        if seen == call_token(node, memo):
            return
    elif seen is node or _same_call(seen, node, memo):
        return
    shown = "a call" if isinstance(seen, str) else _describe(seen)
    raise TargetCollisionError(
        f"two different calls render the same target {node.target}: "
        f"{shown}{seen_in} and {_describe(node)}{node_in}. Each would overwrite "
        "the other's output. Make the template tell them apart (add an argument or "
        "pipex.context variable to it), or leave `base` unset so pipex derives it "
        "from the arguments."
    )


def call_token(node: Node, memo: dict[int, str] | None = None) -> str:
    """A token of ``node``'s whole call: its function, arguments and upstream calls
    (``memo``: tokens already made, by node id, shared by the calls of many nodes)."""
    return _call_token(node, {} if memo is None else memo)


def _same_call(a: Node, b: Node, memo: dict[int, str]) -> bool:
    """Whether two nodes are the same call: same function, same arguments, same upstream
    (``memo`` keeps the call tokens already made, by node id, for the caller's walk)."""
    try:
        return a.key == b.key and _call_token(a, memo) == _call_token(b, memo)
    except Exception:
        return False


class _Tokens:
    """Replaces each upstream node by the token of its whole call, made before."""

    __slots__ = ("memo", "upstream")

    def __init__(self, node: Node, memo: dict[int, str]) -> None:
        self.upstream = {id(dep) for dep in node.deps}
        self.memo = memo

    def __call__(self, value: Any) -> Any:
        ident = id(value)
        return ("pipex.Node", self.memo[ident]) if ident in self.upstream else value


def _call_token(node: Node, memo: dict[int, str]) -> str:
    """A token of the whole call below ``node`` (upstream calls included, not just keys),
    made inputs first in a loop: a chain of any depth needs no recursion."""
    for top in inputs_first(node, memo):
        fn = top.task.fn
        name = (getattr(fn, "__module__", ""), getattr(fn, "__qualname__", repr(fn)))
        arguments = replace(top.arguments, _Tokens(top, memo))
        memo[id(top)] = token(name, top.key, arguments)
    return memo[id(node)]


def _describe(node: Node) -> str:
    shown = ", ".join(f"{k}={_short(v)}" for k, v in node.arguments.items())
    return f"{node.task.name}({shown})"


def _short(value: Any) -> str:
    target = getattr(value, "target", None)
    text = repr(target.path) if isinstance(target, Target) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
