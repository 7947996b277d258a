"""Mapped pipelines for the tests of ``task.map``: chains of steps over many items, counted.

:class:`Steps` keeps its calls in a list (threads of this process); the module-level tasks
at the end are importable by worker processes and subprocesses, and write nothing but their
targets.
"""

from __future__ import annotations

import gc
import os
import pickle
from collections import Counter
from collections.abc import Callable

import pipex
from tests.pipelines import record


class Steps:
    """Three steps over items ``i``: ``a(i) -> b(x) -> c(x)`` under ``out/``.

    ``a`` writes ``out/a/{i}.pkl`` (the data ``i``), ``b`` writes ``out/b/{x.stem}.pkl``
    (``10 * i``) and ``c`` writes ``out/c/{x.stem}.pkl`` (``10 * i + 1``): the later steps
    name their targets after their upstream target, as a page's later steps do. ``calls``
    lists every real call as ``(step, i)``; ``a`` raises for every ``i`` in ``bad``.
    """

    def __init__(self, bad: frozenset[int] = frozenset(), version: str | None = None) -> None:
        self.calls: list[tuple[str, int]] = []
        calls = self.calls

        @pipex.task(target="out/a/{i}.pkl")
        def a(i: int) -> int:
            calls.append(("a", int(i)))
            if i in bad:
                raise ValueError("unreadable input")
            return int(i)

        @pipex.task(target="out/b/{x.stem}.pkl", version=version)
        def b(x: int) -> int:
            calls.append(("b", x))
            return 10 * x

        @pipex.task(target="out/c/{x.stem}.pkl")
        def c(x: int) -> int:
            calls.append(("c", x // 10))
            return x + 1

        self.a, self.b, self.c = a, b, c

    def build(self, n: int) -> tuple[pipex.Mapped, pipex.Mapped, pipex.Mapped]:
        """The three mapped steps over ``range(n)``, each over the one before."""
        first = self.a.map(range(n))
        second = self.b.map(first)
        return first, second, self.c.map(second)

    def counts(self) -> Counter[str]:
        """How many real calls each step had."""
        return Counter(step for step, _ in self.calls)

    def ran(self, step: str) -> list[int]:
        """The items ``step`` ran for, sorted."""
        return sorted(i for s, i in self.calls if s == step)


def written_by_hand(step: str, items: range, value: Callable[[int], object]) -> None:
    """Write ``out/<step>/<i>.pkl`` for every item, as a finished run would have (fast)."""
    os.makedirs(f"out/{step}", exist_ok=True)
    for i in items:
        with open(f"out/{step}/{i}.pkl", "wb") as file:
            pickle.dump(value(i), file)


def live(kind: type) -> int:
    """How many objects of exactly ``kind`` the garbage collector tracks now."""
    return sum(1 for o in gc.get_objects() if type(o) is kind)


# --- importable by worker processes and subprocesses -------------------------------------------


@pipex.task(target="{path}/s1/{i}.pkl")
def s1(i: int) -> int:
    """The first of four small steps."""
    return int(i)


@pipex.task(target="{path}/s2/{x.stem}.pkl")
def s2(x: int) -> int:
    return x + 1


@pipex.task(target="{path}/s3/{x.stem}.pkl")
def s3(x: int) -> int:
    return x + 1


@pipex.task(target="{path}/s4/{x.stem}.pkl")
def s4(x: int) -> int:
    return x + 1


def four_steps(n: int) -> pipex.Mapped:
    """``s1 -> s2 -> s3 -> s4`` over ``range(n)`` (inside the caller's ``pipex.context``)."""
    return s4.map(s3.map(s2.map(s1.map(range(n)))))


@pipex.task(target="{path}/fragile/{x.stem}.pkl")
def fragile(x: int) -> int:
    """After ``s1``: raises for every item ending in 7."""
    if x % 10 == 7:
        raise ValueError("seven is not welcome")
    return x


@pipex.task(target="{path}/pid/{i}.pkl")
def pid(i: int) -> int:
    """The id of the process that ran the call."""
    return os.getpid()


@pipex.task(target="{path}/first/{i}.pkl")
def logged_first(i: int, log: str) -> int:
    """``s1`` that records each call in ``log`` (a line ``first <i> <pid>``)."""
    record(log, "first", str(i))
    return int(i)


@pipex.task(target="{path}/second/{x.stem}.pkl")
def logged_second(x: int, log: str) -> int:
    """The step after :func:`logged_first`, recorded as ``second <i> <pid>``."""
    record(log, "second", str(x))
    return x * 10
