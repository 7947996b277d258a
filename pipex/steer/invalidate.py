"""``pipex.invalidate`` and ``pipex.restore``: reset targets with everything above them, undo.

Make semantics keep a target that exists, whatever changed below it, so resetting an input
alone reruns nothing. ``invalidate(selection, within=roots)`` also removes every target of
that graph that depends on the selection. Removed targets go to their store's trash
(:mod:`pipex.steer.trash`); ``restore()`` puts back the last invalidation, byte for byte.
"""

from __future__ import annotations

import fnmatch
import logging
import os
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from pipex import settings
from pipex.core.plan import exists_many
from pipex.core.targets import Target
from pipex.exceptions import TargetError
from pipex.node import Node
from pipex.running import recorded
from pipex.running.ledger import home
from pipex.steer import trash
from pipex.steer.graph import Graph, collect
from pipex.stores import FileStore, Store, store_for
from pipex.stores.locations import locate

logger = logging.getLogger("pipex")

Selection = Node | Target | str | Iterable["Node | Target | str"]


@dataclass
class Invalidation:
    """The existing targets an invalidation removes, found before anything is removed.

    ``steps`` counts them per step (task name; ``"?"`` for a target matched outside a graph).
    """

    targets: list[Target] = field(default_factory=list)
    steps: Counter[str] = field(default_factory=Counter)
    #: the store whose ledger records a target, where not the target's own store (an
    #: absolute target under an absolute ``{path}`` root: :func:`pipex.running.ledger.home`)
    homes: dict[Target, Store] = field(default_factory=dict)

    @classmethod
    def of(cls, selection: Selection, within: Any = None) -> Invalidation:
        """What ``invalidate(selection, within=within)`` would remove now."""
        nodes, targets, patterns = _split(selection)
        chosen: dict[Target, str] = {}
        homes: dict[Target, Store] = {}
        if within is not None:
            for node in _downstream(Graph(collect([within])), nodes, targets, patterns):
                chosen.setdefault(node.target, node.task.name)
                homes.setdefault(node.target, home(node))
        else:
            for node in nodes:
                chosen.setdefault(node.target, node.task.name)
                homes.setdefault(node.target, home(node))
            store = FileStore()
            for pattern in patterns:
                for path in store.glob(_inside_a_root(pattern, store)):
                    chosen.setdefault(Target(path, store), "?")
        for target in targets:
            chosen.setdefault(target, "?")
        found = exists_many(list(chosen))
        invalidation = cls()
        for (target, step), ok in zip(chosen.items(), found, strict=True):
            if ok:
                invalidation.targets.append(target)
                invalidation.steps[step] += 1
                if target in homes and homes[target] != target.store:
                    invalidation.homes[target] = homes[target]
        return invalidation

    def __len__(self) -> int:
        return len(self.targets)

    def apply(self) -> list[Target]:
        """Move the targets to their stores' trash, as one invalidation; returns them."""
        by_store: defaultdict[Store, list[str]] = defaultdict(list)
        for target in self.targets:
            by_store[target.store].append(target.path)
        entry_id = trash.new_id()
        for store, paths in by_store.items():
            ledgers: defaultdict[Store, list[str]] = defaultdict(list)
            for path in paths:
                ledgers[self.homes.get(Target(path, store), store)].append(path)
            rows: dict[str, recorded.Row] = {}
            for ledger, kept in ledgers.items():
                rows.update(recorded.rows(ledger, kept))
            homes = {
                path: _root(ledger)
                for ledger, kept in ledgers.items()
                if ledger != store
                for path in kept
            }
            trash.move(store, paths, entry_id, rows, homes)
        return list(self.targets)


def invalidate(selection: Selection, *, within: Any = None, dry_run: bool = False) -> list[Target]:
    """Remove the targets of ``selection`` and, with ``within``, everything above them.

    ``selection``: nodes, :class:`Target` objects or location globs (one, or an iterable of
    them). With ``within`` (the roots of the graph, anything ``pipex.compute`` takes), every
    target of that graph that depends on a selected one goes too; a node is found in the
    graph by its key (task and target), so nodes built again by the same calls select the
    graph's own, and a glob selects the graph's targets whose path matches it (``fnmatch``
    rules). Without ``within`` a glob matches the files of the working directory's store
    (``glob`` rules), and one that may reach outside the working directory and the
    ``pipex.path`` root is a :class:`TargetError`. Only
    targets that exist are removed; they move to their store's trash, and
    :func:`restore` undoes the last invalidation. Returns the removed targets (with
    ``dry_run``, the ones that would be, and nothing is touched). No output is loaded.
    """
    invalidation = Invalidation.of(selection, within)
    return list(invalidation.targets) if dry_run else invalidation.apply()


def restore(*stores: Store | str | os.PathLike[str]) -> list[Target]:
    """Undo the last invalidation: put its targets back, byte for byte; returns them.

    ``stores`` (stores or their locations) are where to look, the working directory's by
    default. A target written again since is replaced by the one the invalidation removed,
    and the run ledger's record of it too: a target restored after a ``version`` bump is
    stale, as it was before the invalidation.
    """
    last: dict[Store, trash.Entry] = {}
    looked: list[str] = []
    for given in stores or (FileStore(),):
        for store in _trash_homes(given):  # the location given, then the roots above it
            kept = trash.entries(store)
            looked.append(store.location(trash.FOLDER))
            if kept:
                last[store] = kept[-1]
                break
    if not last:
        logger.warning(
            "pipex: nothing to restore: no invalidation in a trash at %s (a trash lives "
            "under the root of the store its targets are in: the bucket of an object store's "
            "URL, the working directory for relative paths)",
            ", ".join(looked),
        )
        return []
    newest = max(last.values(), key=lambda entry: (entry.time, entry.id)).id
    restored: list[Target] = []
    for store, entry in last.items():
        if entry.id == newest:
            paths = trash.restore(store, entry)
            ledgers: defaultdict[str | None, dict[str, recorded.Row]] = defaultdict(dict)
            for path in paths:
                if path in entry.ledger:
                    ledgers[entry.homes.get(path)][path] = entry.ledger[path]
            for root, rows in ledgers.items():
                recorded.put_back(store if root is None else store_for(root), rows)
            restored += [Target(path, store) for path in paths]
    return restored


def _root(store: Store) -> str:
    """Where ``store`` is, as :func:`pipex.stores.store_for` takes it back."""
    return store.root if isinstance(store, FileStore) else store.location("")


def _downstream(
    graph: Graph, nodes: list[Any], targets: list[Target], patterns: list[str]
) -> Iterator[Any]:
    """The nodes of ``graph`` selected and every node that depends on one of them.

    A node of the graph is selected by identity; a node built again by the same call (not
    in the graph) selects the graph's nodes with its key (task and target, as resolution
    matches calls), and so every copy of that call the graph holds. Only the targets of the
    graph's nodes of the same tasks are rendered (all of them for targets and globs).
    """
    start = [node for node in nodes if node in graph]
    strangers = [node for node in nodes if node not in graph]
    if strangers or targets or patterns:
        everything = bool(targets or patterns)
        keys = {node.key for node in (nodes if everything else strangers)}
        names = {node.task.name for node in strangers}
        wanted = set(targets)
        matches = _matcher(patterns) if patterns else None
        for node in graph.nodes:
            if not everything and node.task.name not in names:
                continue
            if (
                node.key in keys
                or node.target in wanted
                or (matches is not None and matches(node.target))
            ):
                start.append(node)
    return graph.downstream(start)


def _inside_a_root(pattern: str, store: FileStore) -> str:
    """``pattern``, a glob for ``store`` (the working directory's), if every path it can
    match lies under the working directory or the ``pipex.path`` root; else a TargetError."""
    roots = [store.root]
    configured = settings.root()
    if isinstance(configured, str) and "://" not in configured:
        roots.append(os.path.abspath(configured))
    where = os.path.normpath(os.path.join(store.root, pattern))
    parts = pattern.replace(os.sep, "/").split("/")
    if "://" not in pattern and ".." not in parts:
        for root in roots:
            if where == root or where.startswith(root.rstrip(os.sep) + os.sep):
                return pattern
    raise TargetError(
        f"pipex.invalidate({pattern!r}): the glob may reach outside every pipex root "
        f"({', '.join(roots)}), and pipex removes only its own targets. Pass "
        "within=roots (the nodes of your pipeline) to select targets of the graph, or run "
        "from the folder of the outputs (or set pipex.path to it) and glob below it."
    )


def _trash_homes(given: Store | str | os.PathLike[str]) -> Iterator[Store]:
    """Where the trash of ``given`` may be: its own store, then, for a URL, the store of its
    bucket (where invalidate keeps a URL target's trash), or, for a folder, those of the
    folders above it."""
    yield store_for(given)
    if isinstance(given, Store):
        return
    text = os.fspath(given)
    if "://" in text:
        root = locate(text.rstrip("/") + "/x", None)[0]
        if root is not None and root != store_for(given):
            yield root
        return
    folder = os.path.abspath(text)
    while os.path.dirname(folder) != folder:
        folder = os.path.dirname(folder)
        yield FileStore(folder)


def _split(selection: Selection) -> tuple[list[Any], list[Target], list[str]]:
    if isinstance(selection, (Node, Target, str, os.PathLike)):
        items: list[Any] = [selection]
    else:
        try:
            items = list(selection)
        except TypeError:
            raise TypeError(
                "pipex.invalidate selects a node, a pipex.Target or a location glob, or an "
                f"iterable of them (a list, say), not {type(selection).__name__} "
                f"{selection!r}"
            ) from None
    nodes: list[Any] = []
    targets: list[Target] = []
    patterns: list[str] = []
    for item in items:
        if isinstance(item, Node):
            nodes.append(item)
        elif isinstance(item, Target):
            targets.append(item)
        elif isinstance(item, (str, os.PathLike)):
            patterns.append(os.fspath(item))
        else:
            raise TypeError(
                "pipex.invalidate selects nodes, pipex.Target objects or location globs, "
                f"not {type(item).__name__}"
            )
    return nodes, targets, patterns


def _matcher(patterns: list[str]) -> Callable[[Target], bool]:
    """Whether a target's path (or, for absolute patterns and URLs, its location) matches."""
    match = re.compile("|".join(fnmatch.translate(p) for p in patterns)).match
    if any(p.startswith("/") or "://" in p for p in patterns):
        return lambda target: bool(match(target.path) or match(str(target)))
    return lambda target: match(target.path) is not None
