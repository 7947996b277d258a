"""Registering pipex's worker plugins on the cluster a run uses, as configured."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from functools import partial
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

#: What this process registered on each cluster: (scheduler address, plugin name) -> settings.
_registered: dict[tuple[str, str], Hashable] = {}


def register_plugins(client: Any, nodes: Iterable[Any] = ()) -> None:
    """Register pipex's worker plugins on ``client``'s cluster, as configured now.

    A plugin is sent once per cluster and settings: the first time this process uses the
    cluster, or when its settings changed since, it replaces the cluster's plugin of that
    name (so the settings of the run are the ones in force); a plugin switched off since is
    removed. The long-running executor is registered only when some node needs it.
    """
    address = client.scheduler.address
    interval = parse_timedelta(settings.get("distributed.memory-release-interval"), "seconds")
    release = float(interval) if settings.get("distributed.memory-release") else None
    _apply(client, address, MemoryRelease.name, release, MemoryRelease)
    if settings.get("distributed.long-running") and any(n.task.long_running for n in nodes):
        client.register_plugin(LongRunning())  # no settings: registered once per cluster
    names = forwarded_loggers()
    level = level_number(settings.get("distributed.forward-logs-level"))
    gone = [
        plugin
        for cluster, plugin in _registered
        if cluster == address
        and plugin.startswith(FORWARDING)
        and plugin.removeprefix(FORWARDING) not in names
    ]
    for plugin in gone:
        _apply(client, address, plugin, None, None)
    if names:
        client.subscribe_topic(LOG_TOPIC, on_forwarded_record)
        for name in names:
            _apply(client, address, FORWARDING + name, level, partial(LogForwarding, name))


FORWARDING = "pipex-forward-logs-"


def _apply(
    client: Any, address: str, name: str, value: Hashable, make: Callable[[Any], Any] | None
) -> None:
    """Register ``make(value)`` as plugin ``name`` (or remove it if ``value`` is None), unless
    this process already did so with the same value."""
    key = (address, name)
    if key in _registered and _registered[key] == value:
        return
    if value is None:
        if key in _registered:
            client.unregister_worker_plugin(name)
            del _registered[key]
        return
    plugin = make(value)  # type: ignore[misc]
    plugin.idempotent = False  # replaces what the cluster had under that name
    client.register_plugin(plugin, name)
    _registered[key] = value


def on_send(nodes: Iterable[Any]) -> None:
    """``dask.compute(node)`` is sending ``nodes`` to a cluster: register the plugins on the
    cluster of the default client (or of this process's only client), if there is one."""
    from distributed import Client

    try:
        client = Client.current(allow_global=True)
    except ValueError:
        running = [c for c in list(Client._instances) if c.status == "running"]
        if len(running) != 1:
            return  # which cluster is not known: pipex.compute(..., scheduler=client) knows
        (client,) = running
    register_plugins(client, nodes)
