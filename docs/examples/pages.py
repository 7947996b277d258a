"""The pipeline of the quickstart's "Steering a big run": PAGES pages x 4 steps.

Each step's output is a small pickle under ``out/<step>/<page>.pkl``. ``pipeline`` is the
entry point the ``pipex`` command calls: ``pipex run docs/examples/pages.py:pipeline``.
"""

from __future__ import annotations

import pipex


@pipex.task(target="{path}/scan/{page}.pkl")
def scan(page: str) -> list[int]:
    """A 'scanned page': a few numbers made from its name."""
    return [ord(c) * 3 % 256 for c in page * 8]


@pipex.task(target="{path}/grayscale/{page}.pkl")
def grayscale(pixels: list[int], page: str) -> list[int]:
    return [p // 2 for p in pixels]


@pipex.task(target="{path}/denoise/{page}.pkl")
def denoise(pixels: list[int], page: str) -> list[int]:
    return [sum(pixels[max(i - 1, 0) : i + 2]) // 3 for i in range(len(pixels))]


@pipex.task(target="{path}/binarize/{page}.pkl")
def binarize(pixels: list[int], page: str) -> list[bool]:
    return [p < 60 for p in pixels]


def pipeline(pages: int = 5000, path: str = "out") -> list[pipex.Node]:
    """One ``binarize`` node per page, each below three more steps."""
    nodes = []
    with pipex.context(path=path):
        for i in range(pages):
            page = f"page-{i:05d}"
            nodes.append(binarize(denoise(grayscale(scan(page), page), page), page))
    return nodes
