"""pipex on a real distributed.LocalCluster with worker processes, on 127.0.0.1."""

from __future__ import annotations

import os
import time
import traceback
from pathlib import Path

import dask
import pytest

import pipex
from tests import pipelines

distributed = pytest.importorskip("distributed")


pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def client(local_client):
    return local_client


def build(folder: Path, names: list[str], log: Path) -> tuple[list[pipex.Node], pipex.Node]:
    """source -> double chains for ``names`` and a total over them, with targets in folder."""
    with pipex.context(path=str(folder)):
        doubled = pipelines.chains(names, str(log))
        summary = pipelines.total(doubled, "all", str(log))
    return doubled, summary


def test_compute_with_the_active_client_runs_on_the_workers_then_skips(client, tmp_path):
    log = tmp_path / "calls.log"
    names = ["a", "bb", "ccc"]
    doubled, summary = build(tmp_path / "out", names, log)

    with client.as_current():
        results = pipex.compute(summary, doubled)

    assert results == (summary.target, [n.target for n in doubled])
    assert summary.target.load() == 2 * (1 + 2 + 3)
    assert [n.target.load() for n in doubled] == [
        {"name": name, "value": 2 * len(name)} for name in names
    ]
    recorded = pipelines.calls(log)
    assert sorted((task, name) for task, name, _ in recorded) == [
        ("double", "a"),
        ("double", "bb"),
        ("double", "ccc"),
        ("source", "a"),
        ("source", "bb"),
        ("source", "ccc"),
        ("total", "all"),
    ]
    assert os.getpid() not in {pid for _, _, pid in recorded}  # it ran on the workers

    with client.as_current():
        doubled, summary = build(tmp_path / "out", names, log)
        assert pipex.compute(summary, load=True) == (12,)
    assert len(pipelines.calls(log)) == 7


def test_compute_with_scheduler_client(client, tmp_path):
    log = tmp_path / "calls.log"
    doubled, _ = build(tmp_path / "out", ["x", "yy"], log)

    assert pipex.compute(doubled, scheduler=client, load=True) == (
        [{"name": "x", "value": 2}, {"name": "yy", "value": 4}],
    )
    recorded = pipelines.calls(log)
    assert len(recorded) == 4
    assert os.getpid() not in {pid for _, _, pid in recorded}

    doubled, _ = build(tmp_path / "out", ["x", "yy"], log)
    assert pipex.compute(doubled, scheduler=client) == ([n.target for n in doubled],)
    assert len(pipelines.calls(log)) == 4


def test_a_failing_task_is_reported_with_its_worker_traceback(client, tmp_path):
    log = tmp_path / "calls.log"
    names = ["a", "bad-one", "ccc"]
    doubled, _ = build(tmp_path / "out", names, log)

    with pytest.raises(pipex.PipelineError) as info:
        pipex.compute(doubled, scheduler=client)

    error = info.value
    failed = doubled[1].deps[0]
    assert [f.key for f in error.failed] == [failed.key]
    assert [n.key for n in error.not_run] == [doubled[1].key]
    (original,) = error.exceptions
    assert type(original) is ValueError
    assert str(original) == "bad input 'bad-one'"
    assert any(failed.key in note for note in original.__notes__)
    assert failed.key in str(error)
    # The worker's traceback, as shown for the error and as recorded for the failure.
    for text in ("".join(traceback.format_exception(error)), error.failed[0].traceback):
        assert "tests/pipelines.py" in text.replace(os.sep, "/")
        assert 'raise ValueError(f"bad input {name!r}")' in text
    # Independent chains completed; nothing was written for the failure or its downstream.
    assert doubled[0].target.exists()
    assert doubled[2].target.exists()
    assert not failed.target.exists()
    assert not doubled[1].target.exists()
    assert sorted(task for task, _, _ in pipelines.calls(log)) == [
        "double",
        "double",
        "source",
        "source",
        "source",
    ]


def forgotten(client, folder: Path) -> None:
    """Wait until the scheduler has forgotten every task of the targets under ``folder``.

    The client releases a computation's keys asynchronously; this keeps one computation's
    leftovers from meeting the next one's (see the test after this one for why that matters).
    """

    def keys_under(dask_scheduler, folder):
        return [str(key) for key in dask_scheduler.tasks if folder in str(key)]

    deadline = time.monotonic() + 30
    while client.run_on_scheduler(keys_under, folder=str(folder)):
        assert time.monotonic() < deadline, "the scheduler kept the keys of a finished run"
        time.sleep(0.05)


def test_dask_compute_with_the_client_prunes(client, tmp_path):
    log = tmp_path / "calls.log"
    _, summary = build(tmp_path / "out", ["p", "qq"], log)
    pipex.compute(summary, scheduler=client)
    assert len(pipelines.calls(log)) == 5
    forgotten(client, tmp_path)

    with client.as_current():
        assert dask.compute(summary) == (summary.target,)
    assert len(pipelines.calls(log)) == 5
    forgotten(client, tmp_path)

    os.remove(summary.target)
    with client.as_current():
        assert dask.compute(summary) == (summary.target,)
    assert [task for task, _, _ in pipelines.calls(log)[5:]] == ["total"]
    assert summary.target.load() == 2 * (1 + 2)


def test_a_deleted_output_is_rebuilt_while_the_scheduler_still_holds_its_key(client, tmp_path):
    # The scheduler still knows a finished task's key: here because the user persisted it
    # (as in a notebook); also, at random, right after a run, until the client's release of
    # its keys has arrived. A deleted output must be rebuilt all the same.
    log = tmp_path / "calls.log"
    _, summary = build(tmp_path / "out", ["p", "qq"], log)
    with client.as_current():
        held = client.persist(summary)
        distributed.wait(held)
        assert summary.target.exists()
        assert len(pipelines.calls(log)) == 5

        os.remove(summary.target)
        assert pipex.compute(summary) == (summary.target,)

    assert summary.target.exists()
    assert summary.target.load() == 2 * (1 + 2)
    assert [task for task, _, _ in pipelines.calls(log)[5:]] == ["total"]


def test_the_scheduler_sees_a_fused_chain_under_the_name_of_every_step(client, tmp_path):
    log = tmp_path / "calls.log"
    with pipex.context(path=str(tmp_path / "out")):
        (doubled,) = pipelines.chains(["solo"], str(log))
        summary = pipelines.total([doubled], "solo", str(log))

    with distributed.get_task_stream(client) as stream:
        pipex.compute(summary, scheduler=client)

    assert sorted(task for task, _, _ in pipelines.calls(log)) == ["double", "source", "total"]
    (ran,) = stream.data  # one task ran the three steps
    assert ran["key"][:2] == ("source+double+total", summary.target.path)
    prefixes = client.run_on_scheduler(lambda dask_scheduler: list(dask_scheduler.task_prefixes))
    assert "source+double+total" in prefixes  # the dashboard's name for the task


def test_a_chain_of_5000_runs_on_the_workers_then_skips(client, tmp_path):
    with pipex.context(path=str(tmp_path / "out")):
        node = None
        for i in range(5000):
            node = pipelines.link(node, i)
    with client.as_current():
        assert pipex.compute(node, load=True, progress=False) == (4999,)
        started = time.perf_counter()
        assert pipex.compute(node, progress=False) == (node.target,)
    assert time.perf_counter() - started < 20
    assert len(list((tmp_path / "out" / "link").iterdir())) == 5000


def test_a_deeply_nested_argument_is_a_clear_error_on_the_cluster(client, tmp_path):
    value: object = "leaf"
    for _ in range(5000):
        value = [value]
    with pipex.context(path=str(tmp_path / "out")):
        node = pipelines.link(value, 1)
    with client.as_current(), pytest.raises(pipex.PipexError, match="nested too deeply") as info:
        pipex.compute(node, progress=False)
    assert node.key in str(info.value)
    assert not node.target.exists()


def test_dask_compute_of_a_chain_runs_fused_as_pipex_compute_does(client, tmp_path):
    with pipex.context(path=str(tmp_path / "out")):
        node = None
        for i in range(300):
            node = pipelines.link(node, i)
    with client.as_current(), distributed.get_task_stream(client) as stream:
        assert dask.compute(node) == (node.target,)
    assert len(list((tmp_path / "out" / "link").iterdir())) == 300  # every step wrote
    ran = [task["key"][:2] for task in stream.data if isinstance(task["key"], tuple)]
    assert ran == [("link", node.target.path)]  # one task ran the 300 calls
    assert node.target.load() == 299
    forgotten(client, tmp_path)

    written = os.stat(node.target).st_mtime_ns
    with client.as_current():
        assert node.compute() == node.target  # done: its Target, nothing run again
    assert os.stat(node.target).st_mtime_ns == written


def test_the_ledger_records_when_how_long_and_where_each_task_ran(client, tmp_path):
    log = tmp_path / "calls.log"
    _, summary = build(tmp_path / "out", ["a", "bb", "ccc"], log)
    with pipex.context(path=str(tmp_path / "out")):
        failing = pipelines.odd_error("x")
    before = time.time()
    with pytest.raises(pipex.PipelineError):
        pipex.compute(summary, failing, scheduler=client, progress=False)
    after = time.time()

    records = pipex.history(tmp_path / "out", limit=None)
    assert sorted(r.step for r in records) == ["double"] * 3 + ["odd_error"] + ["source"] * 3 + [
        "total"
    ]
    addresses = set(client.scheduler_info()["workers"])
    for record in records:  # fused chains and single tasks, finished and failed
        assert record.started is not None and before <= record.started <= after, record
        assert record.duration is not None and 0 <= record.duration <= after - before, record
        address, thread = record.worker.rsplit("/", 1)
        assert address in addresses and int(thread) > 0, record
    (failed,) = [r for r in records if r.status == "failed"]
    assert failed.step == "odd_error"

    # so the report page's timeline has a lane per worker thread that ran something
    page = Path(pipex.report(summary, failing, filename=tmp_path / "report.html")).read_text()
    assert all(record.worker in page for record in records)
