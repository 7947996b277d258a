"""pipex's memory-release and long-task worker plugins, each with and without, on real clusters.

Each test starts a cluster of its own, set up the way the plugin's problem shows: worker
memory is measured in a fresh ``LocalCluster`` worker process; long tasks run on a
``dask scheduler`` whose worker TTL is scaled down to seconds.
"""

from __future__ import annotations

import os
import threading
import time

import dask
import pytest

import pipex
from pipex.executors.distributed.memory import _malloc_trim
from tests import pipelines
from tests.integration.processes import dask_cluster, local_cluster, wait_until

distributed = pytest.importorskip("distributed")
psutil = pytest.importorskip("psutil")

pytestmark = pytest.mark.slow

MiB = 2**20


# --- memory release -------------------------------------------------------------------------


def worker_rss(client) -> int:
    (rss,) = client.run(lambda: psutil.Process().memory_info().rss).values()
    return rss


@pytest.mark.skipif(_malloc_trim() is None, reason="needs glibc's malloc_trim")
def test_memory_release_returns_freed_memory_to_the_os(one_worker, tmp_path):
    client = one_worker
    before = worker_rss(client)
    with pipex.context(path=str(tmp_path)):
        first, second = (pipelines.churn(name, 300) for name in ("first", "second"))

    # Without the plugin: the ~300 MB the task freed stay in the worker process.
    with dask.config.set({"pipex.distributed.memory-release": False}):
        pipex.compute(first, scheduler=client)
    time.sleep(1)
    without = worker_rss(client)
    assert without - before > 150 * MiB, (before / MiB, without / MiB)

    # With it (registered by this compute): they go back to the OS once the task is done.
    pipex.compute(second, scheduler=client)
    released = wait_until(
        lambda: (rss := worker_rss(client)) < without - 150 * MiB and rss,
        10,
        f"the worker kept its memory: {worker_rss(client) / MiB:.0f} MiB after "
        f"{without / MiB:.0f} MiB without the plugin",
    )
    assert released - before < 100 * MiB, (before / MiB, without / MiB, released / MiB)


def test_long_running_tasks_run_on_daemonic_workers(one_worker, tmp_path):
    # LocalCluster's worker processes are daemonic by default: multiprocessing may not start
    # children there; the task's process is started with subprocess, which may.
    with pipex.context(path=str(tmp_path)):
        node = pipelines.chatty_long("page-1")
    daemonic = one_worker.run(lambda: __import__("multiprocessing").current_process().daemon)
    assert list(daemonic.values()) == [True]
    assert pipex.compute(node, scheduler=one_worker, load=True, progress=False) == ("page-1",)
    assert node.target.load() == "page-1"


def test_a_long_running_tasks_process_dies_with_its_worker(tmp_path):
    log = tmp_path / "calls.log"
    with pipex.context(path=str(tmp_path / "out")):
        node = pipelines.long_call("orphan", 60, str(log))
    errors: list[BaseException] = []

    def run(client) -> None:
        try:
            pipex.compute(node, scheduler=client, progress=False)
        except BaseException as exc:  # the cluster goes away under it
            errors.append(exc)

    with (
        local_cluster(1) as cluster,
        distributed.Client(cluster, set_as_default=False) as client,
    ):
        runner = threading.Thread(target=run, args=(client,), daemon=True)
        runner.start()
        wait_until(lambda: pipelines.calls(log), 60, "the long task never started")
        ((_, _, child_pid),) = pipelines.calls(log)
        (worker_pid,) = client.run(os.getpid).values()
        assert child_pid != worker_pid  # the call ran in a process of its own
        assert psutil.Process(child_pid).ppid() == worker_pid

        psutil.Process(worker_pid).kill()  # the worker dies (its nanny may start another)
        wait_until(lambda: not _alive(child_pid), 30, "the task's process outlived its worker")
    runner.join(60)
    assert not node.target.exists()


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


# --- long tasks -----------------------------------------------------------------------------

TTL_SETTINGS = {
    # The scheduler restarts a worker not heard from for max(worker-ttl, 5 s) (5 s: ten
    # heartbeats of a small cluster), checking every worker-ttl.
    "DASK_DISTRIBUTED__SCHEDULER__WORKER_TTL": "1s",
    "DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "1",
}  # default (daemonic) worker processes: long_running tasks need no special cluster


def ttl_restarts(client) -> list[dict]:
    return [
        msg
        for _, msg in client.get_events("scheduler")
        if isinstance(msg, dict) and msg.get("action") == "worker-ttl-timed-out"
    ]


def test_long_running_tasks_survive_holding_the_gil_past_the_worker_ttl(tmp_path):
    log = tmp_path / "calls.log"
    seconds = 10  # longer than the 5-6 s after which the scheduler gives up a silent worker
    with pipex.context(path=str(tmp_path / "out")):
        marked = pipelines.long_call("marked", seconds, str(log))
        unmarked = pipelines.long_call_unmarked("unmarked", seconds, str(log))
        after = pipelines.after(unmarked, str(log))
        fine = pipelines.chains(["fine"], str(log))

    with (
        dask_cluster(tmp_path / "cluster", env=TTL_SETTINGS) as address,
        distributed.Client(address, set_as_default=False) as client,
    ):
        # One run each: an unmarked call starves whichever worker it lands on, and a marked
        # call running there at the time would be restarted with it.
        start = time.monotonic()
        pipex.compute(marked, fine, scheduler=client, progress=False)
        took_marked = time.monotonic() - start
        assert ttl_restarts(client) == []
        start = time.monotonic()
        with pytest.raises(pipex.PipelineError) as info:
            pipex.compute(after, scheduler=client, progress=False)
        took = time.monotonic() - start
        restarts = ttl_restarts(client)

    starts = [task for task, _, _ in pipelines.calls(log)]
    # Marked long_running, the call ran in a process of its worker's own: the worker's
    # heartbeat went on, and the task completed, once.
    assert marked.target.load() == "marked"
    assert starts.count("long_call") == 1
    assert took_marked > seconds, f"the marked run took {took_marked:.1f} s: it did not run"
    # The same call, unmarked, starved its worker, which the scheduler restarted; retried
    # (allowed-failures is 1), it starved the next one: a KilledWorker, reported as its failure.
    error = info.value
    assert [f.key for f in error.failed] == [unmarked.key]
    assert [n.key for n in error.not_run] == [after.key]
    (killed,) = error.exceptions
    assert isinstance(killed, distributed.scheduler.KilledWorker)
    assert starts.count("long_call_unmarked") == 2
    assert len(restarts) >= 2, restarts
    assert took > seconds, f"the run took {took:.1f} s: the long calls did not run"
    assert not unmarked.target.exists()
    assert fine[0].target.exists()
    assert (error.summary.ran, error.summary.failed, error.summary.not_run) == (0, 1, 1)


# --- registration ---------------------------------------------------------------------------


def worker_plugins(client) -> dict:
    """Each worker's pipex plugins: name -> the plugin's setting (interval or level)."""

    def read(dask_worker) -> dict:
        return {
            name: getattr(plugin, "interval", getattr(plugin, "level", None))
            for name, plugin in dask_worker.plugins.items()
            if name.startswith("pipex-")
        }

    (plugins,) = client.run(read).values()
    return plugins


def test_dask_compute_on_a_cluster_registers_the_plugins(tmp_path):
    with pipex.context(path=str(tmp_path)):
        node = pipelines.chatty("page-1")
    with local_cluster(1) as cluster, distributed.Client(cluster) as client:  # the default
        assert "pipex-memory-release" not in worker_plugins(client)
        (target,) = dask.compute(node)
        assert target.load() == "page-1"
        assert worker_plugins(client)["pipex-memory-release"] == 1.0


def test_changed_plugin_settings_replace_those_of_the_last_run(one_worker, tmp_path):
    log = str(tmp_path / "calls.log")
    with pipex.context(path=str(tmp_path)):
        first, second, third = (pipelines.chains([name], log) for name in "abc")
    settings = {"pipex.distributed.forward-logs": ["tests.forwarded"]}
    with dask.config.set({**settings, "pipex.distributed.memory-release-interval": "3s"}):
        pipex.compute(first, scheduler=one_worker, progress=False)
    plugins = worker_plugins(one_worker)
    assert plugins["pipex-memory-release"] == 3.0
    assert plugins["pipex-forward-logs-tests.forwarded"] == 20  # INFO

    changed = {"pipex.distributed.memory-release-interval": "7s"}
    with dask.config.set({**settings, **changed, "pipex.distributed.forward-logs-level": "DEBUG"}):
        pipex.compute(second, scheduler=one_worker, progress=False)
    plugins = worker_plugins(one_worker)
    assert plugins["pipex-memory-release"] == 7.0
    assert plugins["pipex-forward-logs-tests.forwarded"] == 10  # DEBUG

    with dask.config.set({"pipex.distributed.memory-release": False}):
        pipex.compute(third, scheduler=one_worker, progress=False)
    plugins = worker_plugins(one_worker)  # switched off: removed
    assert "pipex-memory-release" not in plugins
    assert "pipex-forward-logs-tests.forwarded" not in plugins
