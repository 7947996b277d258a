"""A small counted pipeline for the seeing-and-steering tests: chains of three steps."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

import pipex


class Chains:
    """``n`` chains ``load -> clean -> score`` under ``out/``; ``calls`` lists real calls."""

    def __init__(self, n: int, store: pipex.Store | None = None) -> None:
        self.calls: list[tuple[str, int]] = []
        calls = self.calls

        @pipex.task(target="out/load/{i}.pkl", store=store)
        def load(i: int) -> int:
            calls.append(("load", i))
            return i

        @pipex.task(target="out/clean/{i}.pkl", store=store)
        def clean(x: int, i: int) -> int:
            calls.append(("clean", i))
            return x * 10

        @pipex.task(target="out/score/{i}.pkl", store=store)
        def score(x: int, i: int) -> int:
            calls.append(("score", i))
            return x + 1

        self.load, self.clean, self.score = load, clean, score
        self.roots = [score(clean(load(i), i), i) for i in range(n)]

    def compute(self) -> None:
        pipex.compute(self.roots, scheduler="sync", progress=False)

    def nodes(self, step: str) -> list[pipex.Node]:
        """Every node of one step, in chain order."""
        depth = {"score": 0, "clean": 1, "load": 2}[step]
        found = []
        for node in self.roots:
            for _ in range(depth):
                node = node.deps[0]
            found.append(node)
        return found


@pytest.fixture
def chains(workdir: Path) -> Callable[..., Chains]:
    """Makes a :class:`Chains` pipeline inside the test's own folder."""
    return Chains


def files(folder: str | os.PathLike[str]) -> dict[str, bytes]:
    """Every file under ``folder`` (relative path -> bytes), hidden ones included."""
    root = Path(folder)
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}
