"""pipex on a real ``dask scheduler`` with two ``dask worker`` processes, on 127.0.0.1.

Attach by address, readable task keys, failure reporting (a failure, a killed worker,
retries), and log forwarding. The memory-release and long-task plugins, which need clusters
configured their own way, are in test_worker_plugins.py.
"""

from __future__ import annotations

import importlib
import logging
import os
import signal
import threading
import time
import traceback
from pathlib import Path

import dask
import pytest

import pipex
from tests import pipelines
from tests.integration.processes import dask_cluster, wait_until

distributed = pytest.importorskip("distributed")

pytestmark = pytest.mark.slow

CLUSTER_SETTINGS = {
    # A task that kills its worker twice is a KilledWorker (default: after 4 deaths).
    "DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "1",
}


@pytest.fixture(scope="module")
def address(tmp_path_factory):
    """A scheduler and two single-threaded worker processes, for the whole module."""
    with dask_cluster(tmp_path_factory.mktemp("cluster"), env=CLUSTER_SETTINGS) as address:
        yield address


@pytest.fixture(scope="module")
def client(address):
    with distributed.Client(address, set_as_default=False) as client:
        yield client


def on_scheduler(client, function):
    return client.run_on_scheduler(function)


def build(folder: Path, names: list[str], log: Path) -> tuple[list[pipex.Node], pipex.Node]:
    with pipex.context(path=str(folder)):
        doubled = pipelines.chains(names, str(log))
        summary = pipelines.total(doubled, "all", str(log))
    return doubled, summary


# --- attach ---------------------------------------------------------------------------------


def test_compute_by_address_runs_on_the_workers_and_closes_its_client(client, address, tmp_path):
    log = tmp_path / "calls.log"
    doubled, summary = build(tmp_path / "out", ["a", "bb", "ccc"], log)
    clients_before = len(on_scheduler(client, lambda dask_scheduler: dask_scheduler.clients))

    results = pipex.compute(summary, doubled, scheduler=address)

    assert results == (summary.target, [n.target for n in doubled])
    assert results.summary.ran == 7
    assert summary.target.load() == 12
    recorded = pipelines.calls(log)
    assert len(recorded) == 7
    worker_pids = set(client.run(os.getpid).values())
    assert {pid for _, _, pid in recorded} <= worker_pids
    assert os.getpid() not in worker_pids
    # The client pipex opened for the address is closed again.
    wait_until(
        lambda: (
            len(on_scheduler(client, lambda dask_scheduler: dask_scheduler.clients))
            == clients_before
        ),
        message="pipex left its client to the scheduler open",
    )

    doubled, summary = build(tmp_path / "out", ["a", "bb", "ccc"], log)
    assert pipex.compute(summary, scheduler=address, load=True) == (12,)
    assert len(pipelines.calls(log)) == 7


def test_compute_uses_the_active_client(client, tmp_path):
    log = tmp_path / "calls.log"
    doubled, _ = build(tmp_path / "out", ["x", "yy"], log)

    with client.as_current():
        assert pipex.compute(doubled, load=True) == (
            [{"name": "x", "value": 2}, {"name": "yy", "value": 4}],
        )
    assert {pid for _, _, pid in pipelines.calls(log)} <= set(client.run(os.getpid).values())

    doubled, _ = build(tmp_path / "out", ["zzz"], log)
    with client.as_current():
        assert pipex.compute(doubled, scheduler="distributed") == ([doubled[0].target],)
    assert client.status == "running"  # pipex closes only the clients it opens
    assert len(pipelines.calls(log)) == 6


def test_plugins_are_registered_once_on_the_cluster(client, tmp_path):
    log = tmp_path / "calls.log"
    for names in (["p"], ["q"]):
        doubled, _ = build(tmp_path / "out", names, log)
        pipex.compute(doubled, scheduler=client)

    def plugins(dask_scheduler):
        return sorted(dask_scheduler.worker_plugins)

    def worker_plugins(dask_worker):
        return sorted(dask_worker.plugins)

    assert "pipex-memory-release" in on_scheduler(client, plugins)
    for names in client.run(worker_plugins).values():
        assert names.count("pipex-memory-release") == 1


# --- readable keys --------------------------------------------------------------------------


def test_task_keys_and_prefixes_are_readable(client, tmp_path):
    log = tmp_path / "calls.log"
    doubled, summary = build(tmp_path / "out", ["k1", "k22"], log)

    # one task per node (fused chains are named by their last step)
    with (
        distributed.get_task_stream(client=client) as stream,
        dask.config.set({"pipex.fuse": False}),
    ):
        pipex.compute(summary, scheduler=client)

    keys = {record["key"] for record in stream.data}
    assert len(keys) == 5
    for key in keys:
        funcname, path, run = key
        assert funcname in {"source", "double", "total"}
        assert path.startswith(str(tmp_path / "out" / funcname))
        assert len(run) == 8
    expected = {n.dask_key for n in [summary, *doubled, *(d.deps[0] for d in doubled)]}
    assert {key[:2] for key in keys} == expected

    def prefixes(dask_scheduler):
        return sorted(dask_scheduler.task_prefixes)

    # The dashboard groups tasks (task stream colours, progress bars) by these prefixes.
    assert {"source", "double", "total"} <= set(on_scheduler(client, prefixes))
    assert not {"run", "execution", "pipex"} & set(on_scheduler(client, prefixes))
    assert {distributed.utils.key_split(key) for key in keys} == {"source", "double", "total"}


# --- failures -------------------------------------------------------------------------------


def test_failures_are_reported_together_and_independent_work_finishes(client, tmp_path, capsys):
    log = tmp_path / "calls.log"
    doubled, _ = build(tmp_path / "out", ["a", "bad-one", "ccc"], log)

    with pytest.raises(pipex.PipelineError) as info:
        pipex.compute(doubled, scheduler=client, progress=True)

    error = info.value
    failed = doubled[1].deps[0]
    assert [f.key for f in error.failed] == [failed.key]
    assert [n.key for n in error.not_run] == [doubled[1].key]
    assert (error.summary.ran, error.summary.failed, error.summary.not_run) == (4, 1, 1)
    (original,) = error.exceptions
    assert type(original) is ValueError
    assert 'raise ValueError(f"bad input {name!r}")' in "".join(traceback.format_exception(error))
    assert doubled[0].target.exists() and doubled[2].target.exists()
    # The progress bar counted each task as it finished, the failure and the unrun one too.
    bar = capsys.readouterr().err.replace("\r", "\n").splitlines()
    assert any("6/6" in line and "failed=1" in line and "not_run=1" in line for line in bar)


def test_a_killed_worker_is_that_tasks_failure_and_its_dependants_are_not_run(client, tmp_path):
    log = tmp_path / "calls.log"
    with pipex.context(path=str(tmp_path / "out")):
        crashed = pipelines.after(pipelines.crash("boom", str(log)), str(log))
        fine = pipelines.chains(["fine"], str(log))

    with pytest.raises(pipex.PipelineError) as info:
        pipex.compute(crashed, fine, scheduler=client, progress=False)

    error = info.value
    crash_node = crashed.deps[0]
    assert [f.key for f in error.failed] == [crash_node.key]
    assert [n.key for n in error.not_run] == [crashed.key]
    assert error.not_run[0].causes == {crash_node.key}
    (killed,) = error.exceptions
    assert isinstance(killed, distributed.scheduler.KilledWorker)
    assert crash_node.key in str(error) and "KilledWorker" in str(error)
    assert (error.summary.ran, error.summary.failed, error.summary.not_run) == (2, 1, 1)
    # allowed-failures is 1 here: the task ran twice, each time taking its worker down.
    assert [task for task, _, _ in pipelines.calls(log)].count("crash") == 2
    assert fine[0].target.exists()
    assert not crash_node.target.exists() and not crashed.target.exists()
    client.wait_for_workers(2, timeout=60)  # the nannies restart the workers


def test_a_worker_killed_while_writing_a_target_is_taken_over_at_once(one_worker, tmp_path):
    flag = tmp_path / "writer.pid"
    with pipex.context(path=str(tmp_path / "out")):
        node = pipelines.big_once("b", str(flag))
    claim = tmp_path / "out" / "big" / ".b.pkl.pipex-claim"
    killed: list[int] = []

    def kill_mid_write() -> None:
        def writing() -> bool:
            return flag.exists() and claim.exists() and claim.stat().st_size > 1_000_000

        wait_until(writing, timeout=120, message="the first attempt never wrote")
        killed.append(int(flag.read_text()))
        os.kill(killed[0], signal.SIGKILL)  # the worker process, mid-write

    killer = threading.Thread(target=kill_mid_write)
    killer.start()
    started = time.monotonic()
    pipex.compute(node, scheduler=one_worker, progress=False)
    took = time.monotonic() - started
    killer.join()

    assert killed  # the first attempt died writing through its claim
    assert node.target.load() == b"small"  # the retry took the dead worker's claim over
    assert not claim.exists()
    assert took < 45, took  # not after the claim's timeout (60 s): its owner is known dead


def test_a_worker_killed_inside_a_fused_chain_fails_that_step_only(client, tmp_path):
    log = tmp_path / "calls.log"
    with pipex.context(path=str(tmp_path / "out")):
        first = pipelines.source("s", str(log))
        crashed = pipelines.crash_on(first, str(log))
        last = pipelines.after(crashed, str(log))  # source -> crash_on -> after: one task

    with pytest.raises(pipex.PipelineError) as info:
        pipex.compute(last, scheduler=client, progress=False)

    error = info.value
    assert [f.key for f in error.failed] == [crashed.key]
    assert isinstance(error.exceptions[0], distributed.scheduler.KilledWorker)
    assert [(n.key, n.causes) for n in error.not_run] == [(last.key, {crashed.key})]
    assert (error.summary.ran, error.summary.failed, error.summary.not_run) == (1, 1, 1)
    assert first.target.load() == {"name": "s", "value": 1}
    assert not crashed.target.exists() and not last.target.exists()
    client.wait_for_workers(2, timeout=60)


def test_a_worker_killed_inside_a_task_of_many_chains_fails_that_chain_only(client, tmp_path):
    log = tmp_path / "calls.log"
    with pipex.context(path=str(tmp_path / "out")):
        sources = [pipelines.source(f"s{n}", str(log)) for n in range(30)]
        ends = [pipelines.after(source, str(log)) for source in sources]
        crashed = pipelines.crash_on(sources[12], str(log))
        ends[12] = pipelines.after(crashed, str(log))  # source -> crash_on -> after
        summary = pipelines.total(ends, "all", str(log))

    with (
        dask.config.set({"pipex.chains-per-task": 10}),  # 3 tasks of 10 chains, then the total
        distributed.get_task_stream(client=client) as stream,
        pytest.raises(pipex.PipelineError) as info,
    ):
        pipex.compute(summary, scheduler=client, progress=False)

    error = info.value
    assert [f.key for f in error.failed] == [crashed.key]
    assert isinstance(error.exceptions[0], distributed.scheduler.KilledWorker)
    assert sorted(n.key for n in error.not_run) == sorted([ends[12].key, summary.key])
    assert (error.summary.failed, error.summary.not_run) == (1, 2)
    # a task finished on the worker that died and lost with it before the client read it runs
    # again and finds its targets written (``found``)
    assert error.summary.ran + error.summary.found == 59
    assert [end.target.exists() for end in ends] == [n != 12 for n in range(30)]
    assert all(source.target.exists() for source in sources)
    # the lost task's other chains ran again, each in a task of its own
    assert len({record["key"] for record in stream.data}) < 30
    client.wait_for_workers(2, timeout=60)


def test_a_fused_chain_on_a_cluster_writes_every_step_and_fetches_nothing(client, tmp_path):
    log = tmp_path / "calls.log"
    doubled, summary = build(tmp_path / "out", ["x", "yy"], log)
    with distributed.get_task_stream(client=client) as stream:
        results = pipex.compute(summary, scheduler=client, progress=False)
    assert len({record["key"] for record in stream.data}) == 3  # two chains, then the total
    assert results.summary.ran == 5
    assert [node.target.load()["value"] for node in doubled] == [2, 4]
    assert [node.deps[0].target.exists() for node in doubled] == [True, True]
    assert summary.target.load() == 6


def test_retries_rerun_a_failing_task(client, tmp_path):
    log = tmp_path / "calls.log"
    with pipex.context(path=str(tmp_path / "out")):
        twice = pipelines.flaky("twice", 2, str(log))  # fails twice, then works

    assert pipex.compute(twice, scheduler=client, load=True) == ("twice",)
    assert [n for t, n, _ in pipelines.calls(log) if t == "flaky"] == ["twice"] * 3


def test_a_task_failing_more_than_its_retries_is_reported_with_its_traceback(client, tmp_path):
    log = tmp_path / "calls.log"
    with pipex.context(path=str(tmp_path / "out")):
        always = pipelines.flaky("always", 99, str(log))
        later = pipelines.after(always, str(log))
        fine = pipelines.chains(["fine"], str(log))

    with pytest.raises(pipex.PipelineError) as info:
        pipex.compute(later, fine, scheduler=client, progress=False)

    error = info.value
    assert [f.key for f in error.failed] == [always.key]
    assert [n.key for n in error.not_run] == [later.key]
    (original,) = error.exceptions
    assert type(original) is ValueError and str(original) == "flaky always failed"
    text = "".join(traceback.format_exception(error))
    assert 'raise ValueError(f"flaky {name} failed")' in text
    assert text.count(f"pipex task {always.key}") == 1
    assert [n for t, n, _ in pipelines.calls(log) if t == "flaky"] == ["always"] * 3
    assert fine[0].target.exists()


def test_failures_are_reported_the_same_when_a_run_goes_in_batches(client, tmp_path, monkeypatch):
    from pipex.executors.distributed.execute import DistributedExecutor

    batches = []
    real = DistributedExecutor.execute

    def counted(executor, plan, *args, **kwargs):
        batches.append(len(plan.missing))
        return real(executor, plan, *args, **kwargs)

    monkeypatch.setattr(DistributedExecutor, "execute", counted)
    log = tmp_path / "calls.log"
    with pipex.context(path=str(tmp_path / "out")):
        always = pipelines.flaky("always", 99, str(log))  # fails on the cluster (retries)
        later = pipelines.after(always, str(log))
        doubled = pipelines.chains(["a", "bad-one", "ccc"], str(log))
        summary = pipelines.total(doubled, "all", str(log))

    bad = doubled[1].deps[0]

    # Batches of one start each: each failing task goes in a batch before its users'.
    with (
        dask.config.set({"pipex.batch-size": 1}),
        pytest.raises(pipex.PipelineError) as info,
    ):
        pipex.compute(always, later, bad, summary, scheduler=client, progress=False)

    error = info.value
    assert sorted(f.key for f in error.failed) == sorted([always.key, bad.key])
    not_run = {n.key: n.causes for n in error.not_run}
    assert not_run == {
        later.key: {always.key},
        doubled[1].key: {bad.key},
        summary.key: {bad.key},
    }
    assert doubled[0].target.exists() and doubled[2].target.exists()
    assert batches == [1, 1, 1, 6]


def test_an_exception_that_cannot_be_rebuilt_is_reported_as_that_tasks_failure(client, tmp_path):
    log = tmp_path / "calls.log"
    with pipex.context(path=str(tmp_path / "out")):
        odd = pipelines.odd_error("a")
        retried = pipelines.odd_error_retried("b")
        fine = pipelines.source("c", str(log))
    with pytest.raises(pipex.PipelineError) as info:
        pipex.compute(odd, retried, fine, scheduler=client, progress=False)
    assert sorted(f.key for f in info.value.failed) == sorted([odd.key, retried.key])
    assert str(info.value).count("NeedsTwo") >= 2
    assert fine.target.exists()


def test_keep_going_false_raises_the_first_failure(client, tmp_path):
    log = tmp_path / "calls.log"
    doubled, _ = build(tmp_path / "out", ["bad-at-once"], log)

    with pytest.raises(ValueError, match="bad input 'bad-at-once'") as info:
        pipex.compute(doubled, scheduler=client, keep_going=False)

    assert not isinstance(info.value, pipex.PipelineError)
    assert not doubled[0].target.exists()


# --- log forwarding -------------------------------------------------------------------------


@pytest.fixture
def forwarded(caplog):
    """Forward ``pipelines.FORWARDED`` from the workers; capture it on the client."""
    caplog.set_level(logging.INFO, logger=pipelines.FORWARDED)
    with dask.config.set({"pipex.distributed.forward-logs": [pipelines.FORWARDED]}):
        yield caplog


def line_of(marker: str) -> int:
    text = Path(pipelines.__file__).read_text().splitlines()
    (line,) = [i for i, s in enumerate(text, 1) if s.rstrip().endswith(f"# {marker}")]
    return line


def test_worker_log_records_reach_the_client_with_task_and_line(client, forwarded, tmp_path):
    with pipex.context(path=str(tmp_path / "out")):
        nodes = [pipelines.chatty(name) for name in ("page-1", "page-2")]

    pipex.compute(nodes, scheduler=client)

    def received():
        return [r for r in forwarded.records if r.name == f"{pipelines.FORWARDED}.steps"]

    records = wait_until(lambda: len(received()) == 2 and received(), 10, "no records came")
    by_task = {r.pipex_task: r for r in records}
    assert set(by_task) == {n.key for n in nodes}
    line = line_of("CHATTY-LINE")
    for node in nodes:
        record = by_task[node.key]
        name = node.arguments["name"]
        assert record.getMessage() == f"[{node.key} pipelines.py:{line}] working on {name}"
        assert (record.filename, record.lineno, record.levelno) == ("pipelines.py", line, 20)
        assert record.process in set(client.run(os.getpid).values())
    assert not [r for r in forwarded.records if r.name == pipelines.QUIET]


def test_log_records_of_long_running_tasks_reach_the_client(client, forwarded, tmp_path):
    with pipex.context(path=str(tmp_path / "out")):
        node = pipelines.chatty_long("page-9")

    pipex.compute(node, scheduler=client)

    (record,) = wait_until(
        lambda: [r for r in forwarded.records if r.name.startswith(pipelines.FORWARDED)],
        10,
        "no record came",
    )
    line = line_of("LONG-LINE")
    assert record.getMessage() == f"[{node.key} pipelines.py:{line}] working long on page-9"
    assert record.pipex_task == node.key
    # It ran in a process of the worker's own, not in the worker.
    assert record.process not in set(client.run(os.getpid).values())


def test_records_are_not_forwarded_unless_configured(client, caplog, tmp_path):
    caplog.set_level(logging.INFO, logger=pipelines.FORWARDED)
    with pipex.context(path=str(tmp_path / "out")):
        node = pipelines.chatty("unheard")

    with dask.config.set({"pipex.distributed.forward-logs": []}):
        pipex.compute(node, scheduler=client)
        time.sleep(1)

    assert not [r for r in caplog.records if r.name.startswith(pipelines.FORWARDED)]


UNREACHABLE = """
import pipex


@pipex.task(target="{path}/far/{name}.pkl")
def far(name):
    return name.upper()


@pipex.task(target="{path}/farther/{item.stem}.pkl")
def farther(item):
    return item + "!"
"""


def test_workers_that_cannot_import_the_tasks_module_say_how_to_reach_it(
    client, tmp_path, monkeypatch
):
    code = tmp_path / "code"  # importable here only: not on the workers' path
    code.mkdir()
    module = code / "far_from_workers.py"
    module.write_text(UNREACHABLE)
    monkeypatch.syspath_prepend(str(code))
    tasks = importlib.import_module("far_from_workers")
    with pipex.context(path=str(tmp_path / "out")):
        alone = tasks.far("alone")
        chained = tasks.farther(tasks.far("chained"))  # one fused task

    start = time.monotonic()
    with pytest.raises(pipex.PipelineError) as caught:
        pipex.compute(alone, chained, scheduler=client)
    assert time.monotonic() - start < 60  # reported at once, not after a timeout

    failed = caught.value.failed
    assert sorted(f.key for f in failed) == sorted([alone.key, chained.deps[0].key])
    for failure in failed:
        message = str(failure.exception)
        assert isinstance(failure.exception, ImportError)
        assert failure.key in message  # the task
        assert "far_from_workers" in message  # the module
        assert str(module) in message  # where it is on the client
        for fix in ("PYTHONPATH", "client.upload_file", "install"):
            assert fix in message
    assert [n.key for n in caught.value.not_run] == [chained.key]
    assert not alone.target.exists()
    with pytest.raises(ImportError, match=r"far_from_workers.*PYTHONPATH"):
        pipex.compute(alone, scheduler=client, keep_going=False)

    with client.as_current(), pytest.raises(ImportError) as raised:  # the same through dask
        dask.compute(chained)
    message = str(raised.value)
    assert chained.deps[0].key in message and str(module) in message, message
    assert "could not start on its dask worker" in message and "PYTHONPATH" in message

    client.upload_file(str(module))  # the advice, followed
    assert pipex.compute(alone, chained, scheduler=client, load=True) == ("ALONE", "CHAINED!")


def test_workers_that_cannot_import_a_tasks_package_are_told_to_send_the_package(
    client, tmp_path, monkeypatch
):
    package = tmp_path / "code" / "far_package"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "steps.py").write_text(UNREACHABLE)
    monkeypatch.syspath_prepend(str(tmp_path / "code"))
    tasks = importlib.import_module("far_package.steps")
    with pipex.context(path=str(tmp_path / "out")):
        node = tasks.far("packaged")

    with pytest.raises(ImportError) as caught:
        pipex.compute(node, scheduler=client, keep_going=False)

    message = str(caught.value)
    assert node.key in message and "module 'far_package'" in message
    assert f"client.upload_file(<a .zip of {package}>)" in message
