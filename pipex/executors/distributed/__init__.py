"""Running pipex graphs on a dask.distributed cluster, and the worker plugins pipex brings.

``pipex.compute`` sends only the missing tasks, as futures, and follows them as they finish
(:mod:`~pipex.executors.distributed.execute`). On the client it computes with, pipex
registers (once; each can be switched off under ``pipex.distributed.*`` in ``dask.config``)
three worker plugins: :mod:`~pipex.executors.distributed.memory` (hand freed memory back to
the OS), :mod:`~pipex.executors.distributed.long_running` (``long_running`` tasks in
processes of the worker's own) and :mod:`~pipex.executors.distributed.logs` (task log
records forwarded to the client).

This package's ``__init__`` does not import ``distributed``: :func:`claim` looks for a
client only where the user has imported ``distributed`` or named a cluster.
"""

from __future__ import annotations

import sys
from typing import Any

import dask.config

from pipex.executors.base import Executor

#: Keywords of ``distributed.Client.get`` that pass through :func:`pipex.compute`.
OPTIONS = frozenset(
    {"workers", "allow_other_workers", "resources", "retries", "priority", "fifo_timeout"}
)


def claim(scheduler: Any) -> Executor | None:
    """A :class:`~pipex.executors.distributed.execute.DistributedExecutor` when ``scheduler``
    names a cluster: a ``distributed.Client``, a scheduler address (``"tcp://host:8786"``;
    the client opened for it lasts the whole run), ``"distributed"`` for the active client,
    or ``None`` when there is an active client and ``dask.config``'s ``scheduler`` does not
    name a local one.
    """
    if isinstance(scheduler, str):
        if scheduler in ("distributed", "dask.distributed"):
            from distributed import default_client

            return _executor(default_client())
        if ":" in scheduler:  # an address: "tcp://10.0.0.5:8786", "localhost:8786"
            from pipex.executors.distributed.connect import connect

            return _executor(connect(scheduler), owned=True)
        return None
    distributed = sys.modules.get("distributed")
    if scheduler is not None:
        if distributed and isinstance(scheduler, distributed.Client):
            return _executor(scheduler)
        return None
    if distributed is not None and dask.config.get("scheduler", None) in (
        None,
        "dask.distributed",
        "distributed",
    ):
        try:
            return _executor(distributed.default_client())
        except ValueError:
            return None
    return None


def register_plugins(client: Any, nodes: Any = ()) -> None:
    """Register pipex's worker plugins on ``client``'s cluster, as configured (what
    :func:`pipex.compute` does before it runs anything on a cluster)."""
    from pipex.executors.distributed.plugins import register_plugins as register

    register(client, nodes)


def _executor(client: Any, owned: bool = False) -> Executor:
    from pipex.executors.distributed.execute import DistributedExecutor

    return DistributedExecutor(client, owned)
