"""The demo pipeline: synthetic scanned pages through four image steps, each saved as .npy.

``pipex demo`` runs it. It is the project's reference case in miniature: many pages, one file
per step and page, restarted often.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from pipex.compute import run
from pipex.context import context
from pipex.core.plan import resolve
from pipex.node import Node
from pipex.task import task

STEPS = ("scan", "grayscale", "denoise", "binarize")


def _numpy() -> Any:
    try:
        import numpy
    except ImportError as exc:
        raise ImportError(
            "the demo needs numpy: pip install 'dask-pipex[demo]' (or pip install numpy)"
        ) from exc
    return numpy


@task(target="{path}/scan/{page}.npy")
def scan(page: str, seed: int, height: int = 240, width: int = 180, damaged: bool = False) -> Any:
    """A synthetic scanned page: paper, lines of 'text', a tint and sensor noise (a
    ``damaged`` page fails, to show what failures look like)."""
    if damaged:
        raise ValueError(f"{page} is unreadable: the scanner jammed (pipex demo --damaged)")
    np = _numpy()
    rng = np.random.default_rng(seed)
    img = np.full((height, width, 3), 235.0)
    for top in range(20, height - 20, 14):
        left, right = sorted(rng.integers(10, width - 10, size=2))
        img[top : top + 6, left:right] = 40.0
    img *= rng.uniform(0.9, 1.0, size=3)
    img += rng.normal(0, 18, size=img.shape)
    return np.clip(img, 0, 255).astype("uint8")


@task(target="{path}/grayscale/{page}.npy")
def grayscale(img: Any, page: str) -> Any:
    """Luma of an RGB page."""
    return (img[..., :3] @ _numpy().array([0.299, 0.587, 0.114])).astype("float32")


@task(target="{path}/denoise/{page}.npy")
def denoise(gray: Any, page: str) -> Any:
    """3x3 mean filter."""
    np = _numpy()
    padded = np.pad(gray, 1, mode="edge")
    h, w = gray.shape
    return sum(padded[i : i + h, j : j + w] for i in range(3) for j in range(3)) / 9.0


@task(target="{path}/binarize/{page}.npy")
def binarize(gray: Any, page: str) -> Any:
    """Ink (True) where the page is darker than the midpoint of its range."""
    return gray < (float(gray.min()) + float(gray.max())) / 2


def pages(folder: str, images: int, damaged: int = 0) -> list[Node]:
    """The demo pipeline: one ``binarize`` node per page, built lazily; the last
    ``damaged`` pages cannot be scanned."""
    nodes = []
    with context(path=folder):
        for i in range(images):
            page = f"page-{i + 1:05d}"
            img = scan(page, seed=i, damaged=i >= images - damaged)
            nodes.append(binarize(denoise(grayscale(img, page), page), page))
    return nodes


@dataclass
class Report:
    """What one demo run did."""

    total: int
    ran: Counter[str]
    done: int
    seconds: float

    def lines(self) -> list[str]:
        ran = sum(self.ran.values())
        out = [
            f"{self.total} tasks ({len(STEPS)} steps per page): ran {ran}, "
            f"found {self.done} finished target(s) and skipped everything below them, "
            f"in {self.seconds:.2f} s"
        ]
        out += [f"  ran {self.ran[step]:>6} {step}" for step in STEPS if self.ran[step]]
        if not ran:
            out.append("  nothing to do: every output exists. Delete one to rerun just that.")
        return out


def build_and_compute(
    folder: str, images: int, damaged: int = 0, **compute_options: Any
) -> Report:
    """Build the pipeline, run what is missing, report what ran (a
    :class:`~pipex.exceptions.PipelineError` if a damaged page failed)."""
    start = time.perf_counter()
    nodes = pages(folder, images, damaged)
    plan = resolve(nodes)
    # The bar on a terminal (pipex.progress); the demo prints its own report, not the
    # summary line.
    run(*nodes, **compute_options)
    return Report(
        total=images * len(STEPS),
        ran=Counter(node.task.name for node in plan.missing),
        done=len(plan.done),
        seconds=time.perf_counter() - start,
    )
