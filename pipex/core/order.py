"""One order over a graph of nodes: each node after its inputs, without recursion."""

from __future__ import annotations

from collections.abc import Container, Iterator
from typing import Any


def inputs_first(node: Any, made: Container[int]) -> Iterator[Any]:
    """``node`` and the nodes below it whose ids are not in ``made``, each after its inputs
    (``.deps``), in a loop: a chain of any depth needs no recursion.

    The caller puts each yielded node's id in ``made`` before it asks for the next one.
    """
    stack = [node]
    while stack:
        top = stack[-1]
        if id(top) in made:
            stack.pop()
            continue
        pending = [dep for dep in top.deps if id(dep) not in made]
        if pending:
            stack.extend(pending)
            continue
        stack.pop()
        yield top
