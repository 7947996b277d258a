"""The Prefect modes against a real Prefect server and a real dask cluster, on 127.0.0.1.

One session-scoped Prefect test harness (a temporary server with its own SQLite database)
and one LocalCluster of two worker processes (tests/integration/conftest.py) serve every
test. What Prefect recorded is read
back through its API: the task runs a flow run created, their names, states and logs.
"""

from __future__ import annotations

import os
import pickle
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dask
import pytest

import pipex
from tests import pipelines
from tests.test_modes import SCRIPT, files_under, ran, run_script

prefect = pytest.importorskip("prefect")
prefect_dask = pytest.importorskip("prefect_dask")
distributed = pytest.importorskip("distributed")

from prefect.client.schemas.filters import (  # noqa: E402
    FlowRunFilter,
    FlowRunFilterId,
    LogFilter,
    LogFilterTaskRunId,
)
from prefect.task_runners import ThreadPoolTaskRunner  # noqa: E402

from tests.integration import prefect_pipelines  # noqa: E402
from tests.integration.processes import local_cluster  # noqa: E402

pytestmark = pytest.mark.slow


def api() -> Any:
    return prefect.get_client(sync_client=True)


def task_runs(state: Any, expected: int, timeout: float = 60) -> list[Any]:
    """The task runs of the flow run that ended in ``state``, once Prefect has them all.

    Task runs reach the server as events: wait (bounded) until ``expected`` are there, all
    finished, and nothing changed for half a second more.
    """
    flow_run_id = state.state_details.flow_run_id
    deadline = time.monotonic() + timeout
    last = None
    while True:
        with api() as client:
            runs = client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
            )
        seen = sorted((r.name, r.state.name if r.state else "") for r in runs)
        settled = all(r.state and (r.state.is_final() or r.state.name == "NotReady") for r in runs)
        if len(runs) >= expected and settled and seen == last:
            return runs
        assert time.monotonic() < deadline, f"task runs did not settle: {seen}"
        last = seen
        time.sleep(0.5)


def flow_run_state(state: Any) -> Any:
    with api() as client:
        return client.read_flow_run(state.state_details.flow_run_id).state


def logs_of(run: Any, contains: str, timeout: float = 30) -> list[str]:
    """The log messages of one task run, once one of them contains ``contains``."""
    deadline = time.monotonic() + timeout
    while True:
        with api() as client:
            logs = client.read_logs(
                log_filter=LogFilter(task_run_id=LogFilterTaskRunId(any_=[run.id]))
            )
        messages = [log.message for log in logs]
        if any(contains in m for m in messages):
            return messages
        assert time.monotonic() < deadline, (
            f"no log of {run.name} contains {contains!r}: {messages}"
        )
        time.sleep(0.5)


def by_name(runs: list[Any]) -> dict[str, Any]:
    named = {run.name: run for run in runs}
    assert len(named) == len(runs), [run.name for run in runs]
    return named


def restart_flow(task_runner: Any, names: list[str], extra: Callable[..., Any] | None = None):
    """A pipex flow over ``source -> double`` chains (and whatever ``extra`` adds)."""

    @pipex.flow(task_runner=task_runner)
    def restart(folder: str, calls: str):
        with pipex.context(path=folder):
            nodes = pipelines.chains(names, calls)
            if extra is not None:
                nodes = extra(nodes, calls)
        return pipex.compute(nodes)

    return restart


def run_all_then_delete(folder: Path, calls: Path, names: list[str], missing: list[str]) -> None:
    """Write every chain's targets (outside any flow run), then delete those of ``missing``."""
    with pipex.context(path=str(folder)):
        pipex.compute(pipelines.chains(names, str(calls)))
    for name in missing:
        (folder / "source" / f"{name}.pkl").unlink()
        (folder / "double" / f"{name}.pkl").unlink()


def test_run_names_come_from_targets_and_stay_distinct(workdir):
    from pipex.core.plan import dependency_order
    from pipex.executors.prefect.nodes import run_names

    with pipex.context(path="out"):
        a = pipelines.source("page-001", "calls.log")
        b = pipelines.double(a, "calls.log")
        total = pipelines.total([b, a], "all", "calls.log")
    with pipex.context(path="elsewhere"):
        other = pipelines.source("page-001", "calls.log")

    order = dependency_order([total, b, other, a])
    assert order.index(a) < order.index(b) < order.index(total)
    assert sorted(n.key for n in order) == sorted(n.key for n in (a, b, total, other))
    assert run_names(order) == {
        a.key: "source-out/source/page-001",  # two sources render the same stem:
        other.key: "source-elsewhere/source/page-001",  # the whole path tells them apart
        b.key: "double-page-001",
        total.key: "total-all",
    }


def test_an_unknown_granularity_is_refused():
    from pipex.executors.prefect.runtime import granularity

    assert granularity() == "node"
    with (
        dask.config.set({"pipex.prefect.granularity": "nodes"}),
        pytest.raises(pipex.ModeError, match="granularity is 'nodes'"),
    ):
        granularity()


NAMES = [f"p{i:02d}" for i in range(15)]  # 15 chains x 2 steps = 30 nodes
MISSING = NAMES[12:]  # 80% done: 6 nodes to run


def test_outside_a_flow_run_prefect_cache_is_the_cache(prefect_cache, tmp_path):
    calls = tmp_path / "calls.log"
    with pipex.context(path=str(tmp_path / "out")):
        nodes = pipelines.chains(["a", "bb"], str(calls))
    assert pipex.compute(nodes, load=True) == (
        [{"name": "a", "value": 2}, {"name": "bb", "value": 4}],
    )
    assert len(pipelines.calls(calls)) == 4
    assert os.getpid() in {pid for _, _, pid in pipelines.calls(calls)}  # dask's threads, here
    pipex.compute(nodes)
    assert len(pipelines.calls(calls)) == 4


def test_a_restart_runs_only_the_missing_nodes_as_named_task_runs(
    prefect_cache, dask_runner, tmp_path
):
    folder, calls = tmp_path / "out", tmp_path / "calls.log"
    run_all_then_delete(folder, calls, NAMES, MISSING)
    restart = restart_flow(dask_runner, NAMES)

    state = restart(str(folder), str(calls), return_state=True)

    assert state.is_completed(), state
    runs = by_name(task_runs(state, expected=2 * len(MISSING)))
    expected = {f"{step}-{name}" for name in MISSING for step in ("source", "double")}
    assert set(runs) == expected
    assert {run.state.name for run in runs.values()} == {"Completed"}
    for name in MISSING:  # each double waited for the source run that writes its input
        waited = {i.id for i in runs[f"double-{name}"].task_inputs["wait_for"]}
        assert waited == {runs[f"source-{name}"].id}
    recorded = pipelines.calls(calls)[2 * len(NAMES) :]
    assert sorted(f"{task}-{name}" for task, name, _ in recorded) == sorted(expected)
    assert os.getpid() not in {pid for _, _, pid in recorded}  # it ran on the dask workers
    targets = state.result()
    assert all(target.exists() for target in targets[0])

    again = restart(str(folder), str(calls), return_state=True)  # all done: no task run

    assert again.is_completed(), again
    assert task_runs(again, expected=0) == []
    assert len(pipelines.calls(calls)) == 2 * len(NAMES) + len(expected)


def with_total_and_noisy(nodes: list[pipex.Node], calls: str) -> list[pipex.Node]:
    """The chains, a total over them and an independent task that logs."""
    return [pipelines.total(nodes, "all", calls), prefect_pipelines.noisy("z", calls)]


def test_a_failing_node_is_a_failed_task_run_and_the_flow_fails_with_the_report(
    prefect_cache, dask_runner, tmp_path
):
    folder, calls = tmp_path / "out", tmp_path / "calls.log"
    restart = restart_flow(dask_runner, ["a", "bad-b", "c"], with_total_and_noisy)

    state = restart(str(folder), str(calls), return_state=True)

    assert state.is_failed(), state
    assert flow_run_state(state).is_failed()
    error = state.result(raise_on_failure=False)
    assert isinstance(error, pipex.PipelineError)
    assert [f.key for f in error.failed] == [f"source-{folder}/source/bad-b.pkl"]
    assert sorted(n.key for n in error.not_run) == [
        f"double-{folder}/double/bad-b.pkl",
        f"total-{folder}/total/all.pkl",
    ]
    (original,) = error.exceptions
    assert type(original) is ValueError
    assert str(original) == "bad input 'bad-b'"
    assert 'raise ValueError(f"bad input {name!r}")' in error.failed[0].traceback

    runs = by_name(task_runs(state, expected=8))
    assert {name: run.state.name for name, run in runs.items()} == {
        "source-a": "Completed",
        "source-bad-b": "Failed",
        "source-c": "Completed",
        "double-a": "Completed",
        "double-bad-b": "NotReady",
        "double-c": "Completed",
        "total-all": "NotReady",
        "noisy-z": "Completed",
    }
    # independent work finished; nothing was written for the failure or below it
    assert (folder / "double" / "a.pkl").exists()
    assert (folder / "double" / "c.pkl").exists()
    assert not (folder / "source" / "bad-b.pkl").exists()
    assert not (folder / "total" / "all.pkl").exists()
    assert any("bad input 'bad-b'" in m for m in logs_of(runs["source-bad-b"], "bad input"))
    # the task function's own log record reached its task run's log
    messages = logs_of(runs["noisy-z"], "noisy task says z")
    assert f"{prefect_pipelines.__name__}: noisy task says z" in messages


def test_the_graph_granularity_runs_the_missing_graph_as_one_task_run(
    prefect_cache, dask_runner, tmp_path
):
    folder, calls = tmp_path / "out", tmp_path / "calls.log"
    run_all_then_delete(folder, calls, NAMES, MISSING)
    restart = restart_flow(dask_runner, NAMES)

    with dask.config.set({"pipex.prefect.granularity": "graph"}):
        state = restart(str(folder), str(calls), return_state=True)

    assert state.is_completed(), state
    (run,) = task_runs(state, expected=1)
    assert (run.name, run.state.name) == (f"source..double [0:{2 * len(MISSING)}]", "Completed")
    recorded = pipelines.calls(calls)[2 * len(NAMES) :]
    assert sorted(name for _, name, _ in recorded) == sorted(MISSING * 2)
    assert os.getpid() not in {pid for _, _, pid in recorded}
    messages = logs_of(run, "6/6 finished")
    assert "pipex: 6/6 finished (ran 6, failed 0, not run 0)" in messages
    assert all(
        (folder / step / f"{name}.pkl").exists()
        for name in MISSING
        for step in ("source", "double")
    )


def test_graph_mode_workers_import_prefect_only_for_a_task_that_logs(
    prefect_api, prefect_cache, tmp_path, monkeypatch
):
    # importing Prefect costs a worker process seconds: a user's fresh DaskTaskRunner
    # cluster paid it before its first task ran
    folder, calls = tmp_path / "out", tmp_path / "calls.log"
    with local_cluster(1, dashboard_address=None) as cluster:
        monkeypatch.setenv("PIPEX", "prefect+cache")  # the cluster's workers run without it
        runner = prefect_dask.DaskTaskRunner(address=cluster.scheduler_address)
        with dask.config.set({"pipex.prefect.granularity": "graph"}):
            quiet = restart_flow(runner, ["a", "bb"])(str(folder), str(calls), return_state=True)
            with distributed.Client(cluster.scheduler_address) as client:
                before = client.run(lambda: "prefect" in sys.modules)
                state = restart_flow(runner, ["c"], with_total_and_noisy)(
                    str(folder), str(calls), return_state=True
                )
                after = client.run(lambda: "prefect" in sys.modules)

    assert quiet.is_completed() and state.is_completed()
    assert list(before.values()) == [False]
    sources = sorted(name for task, name, _ in pipelines.calls(calls) if task == "source")
    assert sources == ["a", "bb", "c"]
    assert list(after.values()) == [True]  # the noisy task logged: its record went to Prefect
    (run,) = task_runs(state, expected=1)
    assert f"{prefect_pipelines.__name__}: noisy task says z" in logs_of(run, "noisy task says")


def test_the_graph_granularity_makes_one_task_run_per_batch(prefect_cache, dask_runner, tmp_path):
    folder, calls = tmp_path / "out", tmp_path / "calls.log"
    restart = restart_flow(dask_runner, ["a", "b", "c"])  # 6 missing nodes

    with dask.config.set({"pipex.prefect.granularity": "graph", "pipex.batch-size": 4}):
        state = restart(str(folder), str(calls), return_state=True)

    assert state.is_completed(), state
    runs = task_runs(state, expected=2)
    assert sorted((run.name, run.state.name) for run in runs) == [
        ("source..double [0:4]", "Completed"),  # batches end after a chain: 4 nodes, then 2
        ("source..double [4:6]", "Completed"),  # named by their steps and slice: told apart
    ]
    assert len(pipelines.calls(calls)) == 6


def test_the_graph_granularity_starts_the_next_batch_while_one_runs(
    prefect_cache, dask_runner, tmp_path
):
    folder, calls = tmp_path / "out", tmp_path / "calls.log"
    marks = tmp_path / "marks"
    marks.mkdir()

    @pipex.flow(task_runner=dask_runner)
    def two_batches(folder: str, calls: str):
        with pipex.context(path=folder):  # one node per batch: a, then b
            first = prefect_pipelines.gate("a", "b", str(marks), calls)
            second = prefect_pipelines.gate("b", None, str(marks), calls)
        return pipex.compute([first, second], load=True)

    with dask.config.set({"pipex.prefect.granularity": "graph", "pipex.batch-size": 1}):
        state = two_batches(str(folder), str(calls), return_state=True)

    assert state.is_completed(), state
    # a, in the first batch, saw b start on the cluster: the second batch was sent while
    # the first one ran (one after the other, a would wait for b in vain)
    assert sorted(name for _, name, _ in pipelines.calls(calls)) == ["a", "a-saw-b", "b"]
    assert state.result() == ([True, True],)
    runs = task_runs(state, expected=2)
    assert sorted((run.name, run.state.name) for run in runs) == [
        ("gate [0:1]", "Completed"),  # named in the batches' order, whichever started first
        ("gate [1:2]", "Completed"),
    ]


def test_a_graph_batch_that_reads_an_earlier_batch_s_outcome_waits_for_it(
    prefect_cache, dask_runner, tmp_path
):
    folder, calls = tmp_path / "out", tmp_path / "calls.log"
    restart = restart_flow(
        dask_runner,
        ["a", "bb", "ccc"],
        lambda nodes, calls: [*nodes, pipelines.total(nodes, "all", calls)],
    )

    with dask.config.set({"pipex.prefect.granularity": "graph", "pipex.batch-size": 2}):
        state = restart(str(folder), str(calls), return_state=True)

    assert state.is_completed(), state
    runs = task_runs(state, expected=4)  # a chain per batch, then the total over them
    assert sorted(run.name for run in runs) == [
        "source..double [0:2]",
        "source..double [2:4]",
        "source..double [4:6]",
        "total [6:7]",
    ]
    assert total_written(folder) == 2 * (1 + 2 + 3)
    assert len(pipelines.calls(calls)) == 7


def total_written(folder: Path) -> int:
    with open(folder / "total" / "all.pkl", "rb") as file:
        return int(pickle.load(file))


def test_the_graph_granularity_reports_failures_in_its_one_task_run(
    prefect_cache, dask_runner, tmp_path
):
    folder, calls = tmp_path / "out", tmp_path / "calls.log"
    restart = restart_flow(dask_runner, ["a", "bad-b", "c"], with_total_and_noisy)

    with dask.config.set({"pipex.prefect.granularity": "graph"}):
        state = restart(str(folder), str(calls), return_state=True)

    assert state.is_failed(), state
    error = state.result(raise_on_failure=False)
    assert isinstance(error, pipex.PipelineError)
    assert [f.key for f in error.failed] == [f"source-{folder}/source/bad-b.pkl"]
    assert len(error.not_run) == 2
    (run,) = task_runs(state, expected=1)
    assert (run.name, run.state.name) == ("source..noisy [0:8]", "Failed")
    messages = logs_of(run, "8/8 finished")
    assert "pipex: 8/8 finished (ran 5, failed 1, not run 2)" in messages
    failure = next(m for m in messages if m.startswith("pipex: source-bad-b failed"))
    assert "ValueError: bad input 'bad-b'" in failure
    assert 'raise ValueError(f"bad input {name!r}")' in failure  # the worker's traceback
    assert "pipex: double-bad-b not run: an input failed" in messages
    assert f"{prefect_pipelines.__name__}: noisy task says z" in logs_of(run, "noisy task says")
    assert (folder / "double" / "c.pkl").exists()


def test_retries_of_a_pipex_task_are_prefect_retries_of_its_task_run(
    prefect_cache, dask_runner, tmp_path
):
    folder, calls = tmp_path / "out", tmp_path / "calls.log"

    @pipex.flow(task_runner=dask_runner)
    def retried(folder: str, calls: str):
        with pipex.context(path=folder):
            return pipex.compute(prefect_pipelines.flaky("f", calls), load=True)

    state = retried(str(folder), str(calls), return_state=True)

    assert state.is_completed(), state
    assert state.result() == ("f",)
    assert [task for task, _, _ in pipelines.calls(calls)] == ["flaky", "flaky"]
    (run,) = task_runs(state, expected=1)
    assert (run.name, run.state.name, run.run_count) == ("flaky-f", "Completed", 2)


@pytest.mark.parametrize("granularity", ["node", "graph"])
def test_without_keep_going_the_first_failure_is_raised_as_it_is(
    prefect_cache, dask_runner, tmp_path, granularity
):
    folder, calls = tmp_path / "out", tmp_path / "calls.log"

    @pipex.flow(task_runner=dask_runner)
    def first_failure(folder: str, calls: str):
        with pipex.context(path=folder):
            nodes = pipelines.chains(["bad-a"], calls)
        return pipex.compute(nodes, keep_going=False)

    with dask.config.set({"pipex.prefect.granularity": granularity}):
        state = first_failure(str(folder), str(calls), return_state=True)

    assert state.is_failed(), state
    error = state.result(raise_on_failure=False)
    assert type(error) is ValueError
    assert str(error) == "bad input 'bad-a'"
    assert any("source-" in note and "bad-a.pkl" in note for note in error.__notes__)
    assert [task for task, _, _ in pipelines.calls(calls)] == ["source"]
    assert files_under(folder) == []


@pytest.mark.parametrize("granularity", ["node", "graph"])
def test_a_task_runner_given_to_the_flow_wins(prefect_cache, tmp_path, granularity):
    folder, calls = tmp_path / "out", tmp_path / "calls.log"
    restart = restart_flow(ThreadPoolTaskRunner(max_workers=2), ["a", "bb"])

    with dask.config.set({"pipex.prefect.granularity": granularity}):
        state = restart(str(folder), str(calls), return_state=True)

    assert state.is_completed(), state
    assert {pid for _, _, pid in pipelines.calls(calls)} == {os.getpid()}  # threads, here
    runs = task_runs(state, expected=4 if granularity == "node" else 1)
    assert len(runs) == (4 if granularity == "node" else 1)


def test_prefect_mode_runs_plain_prefect_tasks(monkeypatch, workdir):
    monkeypatch.setenv("PIPEX", "prefect")

    @pipex.task(target="{path}/square/{x}.pkl")
    def square(x):
        return x * x

    @pipex.flow(name="plain")
    def plain():
        return sum(square(x) for x in range(3))

    state = plain(return_state=True)

    assert state.is_completed(), state
    assert state.result() == 5
    runs = task_runs(state, expected=3)
    assert sorted(run.state.name for run in runs) == ["Completed"] * 3
    assert all(run.name.startswith("square-") for run in runs)
    assert files_under(workdir) == []  # pipex options are ignored: no targets


@pytest.mark.parametrize("mode", ["cache", "off", "prefect", "prefect+cache", "prefect.cache"])
def test_the_same_script_runs_in_every_mode(prefect_api, tmp_path, mode):
    proc, folder = run_script(tmp_path, mode)

    assert proc.returncode == 0, proc.stderr
    assert sorted(ran(proc)) == ["ran square 0", "ran square 1", "ran square 2", "ran total"]
    assert "result 5" in proc.stdout
    assert "passed through: (41, [5])" in proc.stdout
    cached = mode in ("cache", "prefect+cache", "prefect.cache")
    assert f"node is data: {not cached}" in proc.stdout
    assert ("out/total.pkl" in files_under(folder)) is cached
    if mode.startswith("prefect"):
        assert "Finished in state Completed()" in proc.stderr  # it was a Prefect flow run

    if mode == "prefect+cache":
        again, _ = run_script(tmp_path, mode)
        assert again.returncode == 0, again.stderr
        assert ran(again) == []
        assert "result 5" in again.stdout


# Enough task runs that events are still arriving when the temporary server stops.
MANY_TASKS = SCRIPT.replace("range(3)", "range(60)")


def test_without_a_configured_server_the_flow_s_temporary_server_is_the_only_one_and_quiet(
    prefect_api, monkeypatch, tmp_path
):
    # no PREFECT_API_URL: the flow process starts a temporary server; the default task
    # runner's worker processes must report to it rather than each start one of their own,
    # and its shutdown must not log errors ("Error flushing 1 events") after a good run
    monkeypatch.delenv("PREFECT_API_URL")
    monkeypatch.setenv("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "150")

    proc, _ = run_script(tmp_path, "prefect+cache", text=MANY_TASKS)

    assert proc.returncode == 0, proc.stderr
    assert len(ran(proc)) == 61
    assert "Task run 'total-total' - Finished in state Completed()" in proc.stderr
    servers = set(re.findall(r"temporary server on (http://\S+)", proc.stderr))
    assert len(servers) == 1, proc.stderr
    assert "ERROR" not in proc.stderr
    assert "Traceback" not in proc.stderr


def test_expansions_run_after_the_first_stage_in_a_prefect_cache_flow(
    prefect_cache, dask_runner, tmp_path
):
    from tests.documents import calls, documents

    log = tmp_path / "log"
    log.mkdir()
    split, ocr, _ = documents(log)

    @pipex.flow(task_runner=dask_runner)
    def read_documents(folder: str):
        with pipex.context(path=folder):
            expansions = [
                pipex.expand(split(doc, 2), lambda texts: [ocr(t) for t in texts]) for doc in "ab"
            ]
        return pipex.compute(expansions, load=True)

    state = read_documents(str(tmp_path / "out"), return_state=True)

    assert state.is_completed(), state
    assert state.result() == ([["A-P0", "A-P1"], ["B-P0", "B-P1"]],)
    runs = by_name(task_runs(state, expected=6))
    assert {name.split("-")[0] for name in runs} == {"split", "ocr"}
    assert calls(log) == {"split": 2, "ocr": 4}

    again = read_documents(str(tmp_path / "out"), return_state=True)  # all done: no task run

    assert again.is_completed(), again
    assert task_runs(again, expected=0) == []
    assert calls(log) == {"split": 2, "ocr": 4}


def test_this_prefect_version_is_supported_and_submits_through_the_fast_path():
    # CI runs this on the lowest (3.8) and the newest (3.9) supported Prefect: a version whose
    # internals moved would fall back to task.submit, slower, without this failing
    from pipex.executors.prefect import submit

    minor = ".".join(prefect.__version__.split(".")[:2])
    assert minor in submit.SUPPORTED, f"prefect {prefect.__version__} is not tested"
    assert submit._fast_dask is not None


def test_node_task_runs_see_the_flow_process_settings_built_once_per_worker_and_compute(
    prefect_cache, dask_runner, tmp_path
):
    from prefect.settings import PREFECT_CLIENT_MAX_RETRIES, temporary_settings

    folder, calls = tmp_path / "out", tmp_path / "calls.log"

    @pipex.flow(task_runner=dask_runner)
    def two_computes(folder: str, calls: str):
        seen = []
        for retries, part in ((7, "first"), (8, "second")):
            # set in this process only: the workers' environment does not have it
            with temporary_settings({PREFECT_CLIENT_MAX_RETRIES: retries}):
                with pipex.context(path=f"{folder}/{part}"):
                    nodes = [prefect_pipelines.settings_seen(f"n{i}", calls) for i in range(8)]
                seen.append(pipex.compute(nodes, load=True)[0])
        return seen

    state = two_computes(str(folder), str(calls), return_state=True)

    assert state.is_completed(), state
    first, second = state.result()
    assert [retries for _, _, retries in first] == [7] * 8
    assert [retries for _, _, retries in second] == [8] * 8
    for seen in (first, second):
        assert os.getpid() not in {pid for pid, _, _ in seen}  # it ran on the dask workers
        per_worker = {pid: {ident for p, ident, _ in seen if p == pid} for pid, _, _ in seen}
        assert all(len(idents) == 1 for idents in per_worker.values()), per_worker
    assert not {i for _, i, _ in first} & {i for _, i, _ in second}  # rebuilt per compute
    assert len(task_runs(state, expected=16)) == 16
