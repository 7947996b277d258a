"""``pipex.expand``: nodes made from a node's data (the pages of a document), found as it runs.

An :class:`Expansion` is lazy, like a node: ``pipex.compute`` runs its node, loads that
node's output on the client, calls ``fn`` on it and runs the nodes ``fn`` returns, while the
rest of the run goes on (:mod:`pipex.running.expansion`). What an expansion produced is
recorded beside its node's target (its *record*: the produced targets, written atomically
through the node's store), so that a restart whose produced targets all exist reads only
that record: it neither loads the node's output nor calls ``fn``.
"""

from __future__ import annotations

import contextvars
import functools
import re
from collections.abc import Callable
from typing import Any

from pipex import settings
from pipex.core.code import fingerprint
from pipex.core.plan import call_token
from pipex.core.targets import Target
from pipex.core.tokens import token
from pipex.core.walk import replace, visit
from pipex.mapped import Mapped
from pipex.node import Node

__all__ = ["Expansion", "expand"]


def expand(node: Node, fn: Callable[[Any], Any]) -> Any:
    """The nodes that follow from ``node``'s data: ``fn(data)`` returns them, as it runs.

    ``fn`` receives the data of ``node``'s output and returns pipex nodes (a node, or a list,
    tuple or dict of them). ``pipex.compute(expansion)`` gives what ``fn`` returned with each
    node replaced by its :class:`Target` (its data with ``load=True``). ``fn`` runs on the
    client, in the ``pipex.context`` of this call. With ``PIPEX=off`` or ``prefect``, tasks
    return data: this returns ``fn(node)`` at once.
    """
    if settings.mode_set() and settings.mode() in ("off", "prefect"):
        return fn(node)
    if not isinstance(node, Node):
        raise TypeError(
            f"pipex.expand takes a pipex node (a call of a @pipex.task function), not "
            f"{type(node).__name__}: expand the node whose output fn should receive"
        )
    if not callable(fn):
        raise TypeError(f"pipex.expand: fn must be callable, not {type(fn).__name__}")
    return Expansion(node, fn)


class Expansion:
    """``pipex.expand(node, fn)``: lazy; computed by :func:`pipex.compute`, not by dask.

    ``key`` names it in reports; ``record`` is the :class:`Target` beside ``node``'s target
    where what it produced is kept, named by ``fn``'s name and a fingerprint of its code (of
    a ``functools.partial``: its function's code and its arguments). An edit to ``fn`` makes
    the next run call it again; only missing nodes run.
    """

    __slots__ = ("context", "fn", "key", "node", "record")

    def __init__(self, node: Node, fn: Callable[[Any], Any]) -> None:
        self.node = node
        self.fn = fn
        self.context = contextvars.copy_context()
        name, code = _named(fn)
        self.key = f"pipex.expand({node.key}, {name})"
        slug = re.sub(r"\W+", "_", name).strip("_") or "fn"
        target = node.target
        self.record = Target(f"{target.path}.expand-{slug}-{code[:10]}.pkl", target.store)

    def __repr__(self) -> str:
        return f"<pipex.expand {self.key}>"

    @property
    def __pipex_refusal__(self) -> str:
        """Why an expansion cannot be a task's argument, and what to do instead."""
        return (
            f"{self!r} cannot be an argument of a task: its nodes are known only once "
            f"{self.node.key} has run. Build the step that takes them all inside fn: return "
            "merge([ocr(page) for page in pages]) (a node whose inputs are the produced "
            "nodes) instead of the list (docs/concepts.md, 'Fan-out')"
        )

    def produce(self, data: Any) -> tuple[Any, list[Node]]:
        """What ``fn(data)`` returns, and the nodes in it; a ``TypeError`` naming this
        expansion's node and target if it returns anything but nodes."""
        returned = self.context.copy().run(self.fn, data)
        returned = replace(returned, _items)  # a mapped step: its items' nodes, in order
        nodes: list[Node] = []
        other: list[Any] = []
        visit(returned, lambda v: (nodes if isinstance(v, Node) else other).append(v))
        if other:
            wrong = other[0]
            nested = isinstance(wrong, Expansion)
            raise TypeError(
                f"{self.key}: fn returned {_short(wrong)} for the output of {self.node.key} "
                f"(target {self.node.target}); fn must return pipex nodes (a node, or a list, "
                "tuple or dict of nodes). "
                + (
                    "An expansion inside an expansion is not supported: return the nodes "
                    "of the next stage directly."
                    if nested
                    else "Return the calls of @pipex.task functions, e.g. "
                    "[ocr(page) for page in pages], not data."
                )
            )
        return returned, nodes

    def recorded(self) -> dict[str, Any] | None:
        """The record of the last finished expansion (``None`` if it has no readable one):
        ``result``, what ``fn`` returned with Targets for nodes; ``versioned``, whether a
        produced node's task, or one below it, has a ``version``; ``calls``, a token of each
        produced node's call by target path (absent from older records)."""
        try:
            record = self.record.load()
        except Exception:
            return None
        return record if isinstance(record, dict) and "result" in record else None

    def keep(self, produced: Any, nodes: list[Node]) -> Any:
        """Record ``produced`` (what ``fn`` returned, holding ``nodes``) with each node as
        its Target, and a token of each node's call by target path (``calls``); that."""
        result = replace(produced, _as_target)
        versioned = any(node.versioned for node in nodes)
        memo: dict[int, str] = {}
        calls = {node.target.path: call_token(node, memo) for node in nodes}
        record = {"result": result, "versioned": versioned, "calls": calls}
        self.record.store.save(self.record.path, record)
        return result


def targets_in(result: Any) -> list[Target]:
    """The targets in a recorded result."""
    found: list[Target] = []
    visit(result, lambda v: found.append(v) if isinstance(v, Target) else None)
    return found


def _named(fn: Callable[..., Any]) -> tuple[str, str]:
    """``fn``'s name and a token of its code (a ``functools.partial``: of its function and
    arguments)."""
    if isinstance(fn, functools.partial):
        name, code = _named(fn.func)
        try:
            return name, token(code, fn.args, fn.keywords)
        except Exception:  # arguments without a stable token: the function's code alone
            return name, code
    try:
        code = _fingerprint(fn)
    except TypeError:  # not hashable
        code = fingerprint(fn)
    return getattr(fn, "__name__", type(fn).__name__), code


@functools.lru_cache(maxsize=256)
def _fingerprint(fn: Callable[..., Any]) -> str:
    """:func:`fingerprint`, once per function (many expansions share one ``fn``)."""
    return fingerprint(fn)


def _as_target(value: Any) -> Any:
    return value.target if isinstance(value, Node) else value


def _short(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 60 else text[:57] + '...'}"


def _items(value: Any) -> Any:
    return list(value) if type(value) is Mapped else value
