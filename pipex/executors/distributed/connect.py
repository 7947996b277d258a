"""Reaching a cluster: a scheduler address connected to within ``pipex.distributed.connect-
timeout``, and a cluster with no worker waited for, aloud, for ``pipex.distributed.wait-for-
workers`` at most. Neither waits silently: an unreachable address fails naming it and the
cause; a scheduler with no worker is said at once, again every few seconds, then fails
naming its address."""

from __future__ import annotations

import logging
import time
from typing import Any

from dask.utils import format_time, parse_timedelta
from distributed import Client

from pipex import settings
from pipex.exceptions import PipexError

logger = logging.getLogger("pipex")

#: How often the wait for a worker is said again (seconds).
SAY_EVERY = 10.0


def connect(address: str) -> Any:
    """A client of the scheduler at ``address``; a :class:`PipexError` naming the address
    and the cause when it cannot be reached within ``pipex.distributed.connect-timeout``."""
    timeout = seconds("distributed.connect-timeout")
    try:
        return Client(address, set_as_default=False, timeout=timeout)
    except (OSError, TimeoutError, ValueError) as exc:
        raise PipexError(
            f"cannot reach the dask scheduler at {address} (waited "
            f"{format_time(timeout)}, pipex.distributed.connect-timeout): "
            f"{type(exc).__name__}: {exc}. Is a scheduler running there (`dask scheduler`), "
            "and is the address (host and port) right?"
        ) from exc


def wait_for_workers(client: Any) -> None:
    """Return once ``client``'s cluster has a worker. Without one, say so at once and every
    few seconds, and fail naming the scheduler's address after
    ``pipex.distributed.wait-for-workers``."""
    if client.nthreads():
        return
    limit = seconds("distributed.wait-for-workers")
    address = getattr(client.scheduler, "address", None) or "its address"
    deadline = time.monotonic() + limit
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise PipexError(
                f"the dask scheduler at {address} has no workers: waited "
                f"{format_time(limit)} (pipex.distributed.wait-for-workers) and none joined; "
                f"nothing ran. Start workers (`dask worker {address}`), or run without "
                "--scheduler (dask's local threads)."
            )
        logger.warning(
            "pipex: the dask scheduler at %s has no workers; waiting for one "
            "(%s more at most, pipex.distributed.wait-for-workers). Start one with "
            "`dask worker %s`.",
            address,
            format_time(left),
            address,
        )
        try:
            client.wait_for_workers(1, timeout=min(SAY_EVERY, left))
        except TimeoutError:
            continue
        return


def seconds(name: str) -> float:
    """The duration setting ``pipex.<name>`` in seconds."""
    return float(parse_timedelta(settings.get(name), default="seconds") or 0)
