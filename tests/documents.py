"""A document pipeline for ``pipex.expand``: split each document into pages, read each page.

Every call leaves a note (a small JSON file: step, name, start, end) in the folder ``log``,
so that tests count calls and read when each ran, from the threads of this process or from
worker processes alike.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pipex


def note(log: str, step: str, name: str, start: float) -> None:
    """Leave a note of one call in ``log``."""
    record = {"step": step, "name": name, "start": start, "end": time.time()}
    path = os.path.join(log, f"{step}-{uuid.uuid4().hex}.json")
    Path(path).write_text(json.dumps(record))


def notes(log: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every note left in ``log``."""
    return [json.loads(p.read_text()) for p in Path(log).glob("*.json")]


def calls(log: str | os.PathLike[str]) -> Counter[str]:
    """How many times each step ran."""
    return Counter(n["step"] for n in notes(log))


def documents(log: str | os.PathLike[str]) -> tuple[Any, Any, Any]:
    """The tasks ``split(doc, pages, seconds)``, ``ocr(page)``, ``merge(doc, texts)``."""
    log = os.fspath(log)

    @pipex.task(target="{path}/split/{doc}.pkl")
    def split(doc: str, pages: int, seconds: float = 0.0) -> list[str]:
        start = time.time()
        time.sleep(seconds)
        note(log, "split", doc, start)
        return [f"{doc}-p{i}" for i in range(pages)]

    @pipex.task(target="{path}/ocr/{page}.pkl")
    def ocr(page: str) -> str:
        note(log, "ocr", page, time.time())
        return page.upper()

    @pipex.task(target="{path}/merged/{doc}.pkl")
    def merge(doc: str, texts: list[str]) -> str:
        note(log, "merge", doc, time.time())
        return " ".join(texts)

    return split, ocr, merge
