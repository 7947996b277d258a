"""``pipex.history``: what the run ledger remembers of the task runs under a store root."""

from __future__ import annotations

import os
from typing import Any

from pipex.running.ledger import location
from pipex.running.records import Record, records
from pipex.stores import Store, store_for


def history(
    where: Store | str | os.PathLike[str] | None = None,
    *,
    step: str | None = None,
    status: str | None = None,
    run: str | None = None,
    target: Any = None,
    limit: int | None = 100,
) -> list[Record]:
    """The ledger's records of task runs under ``where``, newest first.

    ``where`` is a store, a folder or a URL: the root whose ledger is read (default: the
    working directory, where tasks without ``store=`` write). Filters: ``step`` (a task
    name), ``status`` (``"ran"``, ``"failed"`` or ``"not run"``), ``run`` (a run id),
    ``target`` (a :class:`Target` or its path); at most ``limit`` records (``None``: all).
    Reads no output; an absent ledger has no records.
    """
    store = store_for(where if where is not None else os.getcwd())
    path = getattr(target, "path", target)
    return records(location(store), step=step, status=status, run=run, path=path, limit=limit)
