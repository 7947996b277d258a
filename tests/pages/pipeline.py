"""A small pipeline for the report page's tests: ``load -> scale`` chains and a total, where
some loads fail with one of two errors (one holding a URL with credentials)."""

from __future__ import annotations

import pipex

SECRET = "hunter2secret"


@pipex.task(target="{path}/load/{i}.pkl")
def load(i: int, bad: int) -> int:
    if bad and i % bad == 1:
        raise ValueError(f"page {i} is unreadable at s3://reader:{SECRET}@scans/page-{i}.png")
    if bad and i == 2:
        raise KeyError(f"no field {i}")
    return i


@pipex.task(target="{path}/scale/{i}.pkl")
def scale(x: int, i: int) -> int:
    return x * 2


@pipex.task(target="{path}/total/all.pkl")
def total(xs: list[int]) -> int:
    return sum(xs)


def build(n: int = 12, path: str = "out", bad: int = 5) -> list[pipex.Node]:
    """``n`` chains and their total; ``load`` fails for ``i % bad == 1`` and for ``i == 2``."""
    with pipex.context(path=path):
        return [total([scale(load(i, int(bad)), i) for i in range(int(n))])]
