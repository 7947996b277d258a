"""Registering pipex's worker plugins on the cluster a run uses, as configured."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from dask.utils import parse_timedelta

from pipex import settings
from pipex.executors.distributed.logs import (
    LOG_TOPIC,
    LogForwarding,
    forwarded_loggers,
    level_number,
    on_forwarded_record,
)
from pipex.executors.distributed.long_running import LongRunning
from pipex.executors.distributed.memory import MemoryRelease


def register_plugins(client: Any, nodes: Iterable[Any] = ()) -> None:
    """Register pipex's worker plugins on ``client``'s cluster, as configured.

    Registration is idempotent (by plugin name): a cluster keeps the first registration of
    each plugin, with the settings it had then. The long-running executor is registered only
    when some node needs it.
    """
    release = settings.get("distributed.memory-release")
    if release:
        interval = parse_timedelta(settings.get("distributed.memory-release-interval"), "seconds")
        client.register_plugin(MemoryRelease(float(interval)))
    if settings.get("distributed.long-running") and any(n.task.long_running for n in nodes):
        client.register_plugin(LongRunning())
    names = forwarded_loggers()
    if names:
        client.subscribe_topic(LOG_TOPIC, on_forwarded_record)
        level = level_number(settings.get("distributed.forward-logs-level"))
        for name in names:
            client.register_plugin(LogForwarding(name, level), f"pipex-forward-logs-{name}")
