"""pipex.compute: results, containers, keep-going failures, reruns, schedulers."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import threading
import traceback
from collections import Counter

import dask
import dask.config
import pytest

import pipex
from tests.files import files_under


def two_steps(calls: Counter[str], bad: set[int]):
    """``load(i) -> scale(x)``; ``load`` raises for every ``i`` in ``bad``."""

    @pipex.task(target="{path}/load/{i:02d}.pkl")
    def load(i):
        calls["load", i] += 1
        if i in bad:
            raise ValueError(f"input {i} is unreadable")
        return i

    @pipex.task(target="{path}/scale/{x.stem}.pkl")
    def scale(x):
        calls["scale", x] += 1
        return 10 * x

    return load, scale


def test_compute_returns_a_tuple_of_targets_that_hold_the_results(workdir):
    load, scale = two_steps(Counter(), set())
    a, b = scale(load(1)), load(2)

    results = pipex.compute(a, b)

    assert isinstance(results, tuple)  # a tuple that also carries the run's summary
    assert results == (a.target, b.target)
    assert all(type(r) is pipex.Target for r in results)
    assert [r.load() for r in results] == [10, 2]
    assert sorted(files_under(workdir)) == [
        "pipex-out/load/01.pkl",
        "pipex-out/load/02.pkl",
        "pipex-out/scale/01.pkl",
    ]


def test_load_true_returns_the_data(workdir):
    load, scale = two_steps(Counter(), set())
    assert pipex.compute(scale(load(1)), load(2), load=True) == (10, 2)
    # Also when nothing had to run.
    assert pipex.compute(scale(load(1)), load(2), load=True) == (10, 2)


def test_containers_of_nodes_are_traversed_and_other_values_pass_through(workdir):
    load, scale = two_steps(Counter(), set())
    a, b, c = load(1), scale(load(2)), load(3)
    marker = object()

    results = pipex.compute([a, b], {"c": c, "n": 5}, (c, "text"), 7, marker)

    assert results == (
        [a.target, b.target],
        {"c": c.target, "n": 5},
        (c.target, "text"),
        7,
        marker,
    )
    assert results[-1] is marker
    assert pipex.compute([a, b], {"c": c, "n": 5}, load=True) == ([1, 20], {"c": 3, "n": 5})
    assert pipex.compute(1, [2], {"x": 3}) == (1, [2], {"x": 3})


def test_a_failing_task_does_not_stop_independent_chains_and_is_reported_once(workdir):
    calls: Counter[str] = Counter()
    load, scale = two_steps(calls, bad={7})
    nodes = [scale(load(i)) for i in range(20)]
    failed_node, unrun_node = nodes[7].deps[0], nodes[7]

    with pytest.raises(pipex.PipelineError) as info:
        pipex.compute(nodes)
    error = info.value

    # Every other chain completed.
    for i, node in enumerate(nodes):
        assert node.target.exists() is (i != 7)
        if i != 7:
            assert node.target.load() == 10 * i
    assert calls["load", 7] == 1
    assert sum(n for (task, _), n in calls.items() if task == "scale") == 19

    # One error, an ExceptionGroup holding the task's own exception.
    assert isinstance(error, ExceptionGroup)
    assert len(error.exceptions) == 1
    (original,) = error.exceptions
    assert type(original) is ValueError
    assert str(original) == "input 7 is unreadable"
    assert any(failed_node.key in note for note in original.__notes__)
    shown = "".join(traceback.format_exception(original))
    assert 'raise ValueError(f"input {i} is unreadable")' in shown

    # The failure and the unrun downstream, described.
    assert [(f.key, f.target) for f in error.failed] == [(failed_node.key, failed_node.target)]
    assert "raise ValueError" in error.failed[0].traceback
    assert "input 7 is unreadable" in error.failed[0].traceback
    assert [(n.key, n.target) for n in error.not_run] == [(unrun_node.key, unrun_node.target)]
    assert error.not_run[0].causes == {failed_node.key}
    message = str(error)
    assert failed_node.key in message
    assert str(failed_node.target) in message
    assert "input 7 is unreadable" in message
    assert unrun_node.key in message

    # Nothing written for the failed task nor its downstream, not even a temporary file.
    written = files_under(workdir)
    assert "pipex-out/load/07.pkl" not in written
    assert "pipex-out/scale/07.pkl" not in written
    assert len(written) == 38
    assert not [name for name in written if "pipex-tmp" in name]


def test_the_pipeline_error_works_with_except_star(workdir):
    load, scale = two_steps(Counter(), bad={1})
    caught = []
    try:
        pipex.compute([scale(load(i)) for i in range(3)])
    except* ValueError as group:
        caught.append(group)
    assert len(caught) == 1
    assert [str(e) for e in caught[0].exceptions] == ["input 1 is unreadable"]


def test_rerunning_after_fixing_the_input_runs_only_the_failed_and_unrun_part(workdir):
    calls: Counter[str] = Counter()
    bad = {7}
    load, scale = two_steps(calls, bad)
    with pytest.raises(pipex.PipelineError):
        pipex.compute([scale(load(i)) for i in range(20)])
    calls.clear()

    bad.clear()
    results = pipex.compute([scale(load(i)) for i in range(20)], load=True)

    assert calls == {("load", 7): 1, ("scale", 7): 1}
    assert results == ([10 * i for i in range(20)],)


def test_keep_going_false_raises_the_tasks_own_exception(workdir):
    calls: Counter[str] = Counter()
    load, scale = two_steps(calls, bad={2})
    node = scale(load(2))

    with pytest.raises(ValueError, match="input 2 is unreadable") as info:
        pipex.compute(node, keep_going=False)

    assert not isinstance(info.value, pipex.PipelineError)
    assert not isinstance(info.value, ExceptionGroup)
    assert any(node.deps[0].key in note for note in info.value.__notes__)
    assert calls == {("load", 2): 1}
    assert files_under(workdir) == []


def test_the_keep_going_setting_is_read_from_dask_config(workdir):
    calls: Counter[str] = Counter()
    load, scale = two_steps(calls, bad={2})

    with (
        dask.config.set({"pipex.keep-going": False}),
        pytest.raises(ValueError, match="input 2 is unreadable") as info,
    ):
        pipex.compute(scale(load(2)))
    assert not isinstance(info.value, ExceptionGroup)

    with pytest.raises(pipex.PipelineError):
        pipex.compute(scale(load(2)))


def test_a_corrupt_upstream_file_fails_its_downstream_clearly_other_work_goes_on(workdir):
    calls: Counter[str] = Counter()
    load, scale = two_steps(calls, set())
    pipex.compute([load(i) for i in range(3)])
    corrupt = load(1).target
    with open(corrupt, "wb") as file:
        file.write(b"\x00\x01 not a pickle \xfe")

    nodes = [scale(load(i)) for i in range(3)]
    with pytest.raises(pipex.PipelineError) as info:
        pipex.compute(nodes)

    error = info.value
    assert [f.key for f in error.failed] == [nodes[1].key]
    assert nodes[0].target.load() == 0
    assert nodes[2].target.load() == 20
    assert not nodes[1].target.exists()
    assert calls["scale", 1] == 0
    # The error says which file could not be read.
    (original,) = error.exceptions
    assert str(corrupt) in "".join(traceback.format_exception(original))


@pytest.mark.parametrize("scheduler", ["sync", "threads"])
def test_sync_and_threaded_schedulers_run_the_pipeline(workdir, scheduler):
    calls: Counter[str] = Counter()
    threads: set[str] = set()
    load, scale = two_steps(calls, set())

    @pipex.task(target="{path}/where/{x.stem}.pkl")
    def where(x):
        threads.add(threading.current_thread().name)
        return x

    nodes = [where(scale(load(i))) for i in range(6)]
    assert pipex.compute(nodes, load=True, scheduler=scheduler) == ([10 * i for i in range(6)],)
    assert sum(calls.values()) == 12
    if scheduler == "sync":
        assert threads == {threading.main_thread().name}
    else:
        assert threading.main_thread().name not in threads
    assert pipex.compute(nodes, scheduler=scheduler) == ([n.target for n in nodes],)
    assert sum(calls.values()) == 12


def test_nothing_is_sent_to_a_scheduler_when_everything_is_done(workdir):
    load, scale = two_steps(Counter(), set())
    graphs = []

    def recording_scheduler(dsk, keys, **kwargs):
        graphs.append(sorted(keys))
        return dask.get(dsk, keys, **kwargs)

    nodes = [scale(load(i)) for i in range(3)]
    pipex.compute(nodes, scheduler=recording_scheduler)
    assert len(graphs) == 1
    assert len(graphs[0]) == 3  # each chain load -> scale is one fused task

    assert pipex.compute(nodes, scheduler=recording_scheduler, load=True) == ([0, 10, 20],)
    assert len(graphs) == 1

    # Only the missing part is sent.
    os.remove(nodes[2].target)
    pipex.compute(nodes, scheduler=recording_scheduler)
    # keys are the node's key plus a per-run token (see test_graph's run-key test)
    assert len(graphs[1]) == 1
    assert graphs[1][0][:2] == nodes[2].dask_key


def test_the_results_carry_a_summary_of_the_run(workdir):
    load, scale = two_steps(Counter(), set())
    nodes = [scale(load(i)) for i in range(4)]

    first = pipex.compute(nodes).summary
    assert (first.requested, first.done, first.ran, first.failed, first.not_run) == (4, 0, 8, 0, 0)
    assert first.seconds > 0

    os.remove(nodes[1].target)
    again = pipex.compute(nodes).summary
    # three finished roots; the one that ran again reused its finished input
    assert (again.requested, again.done, again.ran, again.failed, again.not_run) == (4, 3, 1, 0, 0)
    assert again.reused == 1
    assert str(again).startswith(
        "pipex: 4 requested, 3 already done, ran 1, failed 0, not run 0; "
        "1 finished input(s) reused"
    )


def test_a_failed_run_reports_its_summary_on_the_error(workdir):
    @pipex.task(target="{path}/bad/{i}.pkl")
    def bad(i):
        if i == 2:
            raise ValueError("no")
        return i

    @pipex.task(target="{path}/after/{i}.pkl")
    def after(x, i):
        return x

    with pytest.raises(pipex.PipelineError) as info:
        pipex.compute([after(bad(i), i) for i in range(3)])
    s = info.value.summary
    assert (s.requested, s.done, s.ran, s.failed, s.not_run) == (3, 0, 4, 1, 1)


def test_progress_bar_counts_only_tasks_that_run_and_failures(workdir, capsys):
    load, scale = two_steps(Counter(), set())
    nodes = [scale(load(i)) for i in range(3)]
    pipex.compute(nodes[:2])
    capsys.readouterr()

    pipex.compute(nodes, progress=True)
    err = capsys.readouterr().err
    assert "2 already done" in err  # the two finished roots are not progress
    assert "2/2" in err  # only the missing chain's two tasks are counted
    assert "pipex: 3 requested, 2 already done, ran 2" in err

    os.remove(nodes[0].target)
    pipex.compute(nodes, progress=False)
    assert capsys.readouterr().err == ""
    assert os.path.exists(nodes[0].target)  # it did run, quietly


ALREADY_DONE = re.compile(r"pipex \((\d+) already done\)")


def test_the_progress_label_counts_what_the_summary_counts_as_already_done(workdir, capsys):
    # A finished input shared by every task to run, chains fused, a partly done graph.
    load, scale = two_steps(Counter(), set())

    @pipex.task(target="{path}/model.pkl")
    def model():
        return 1

    @pipex.task(target="{path}/fit/{x.stem}.pkl")
    def fit(x, m):
        return x + m

    nodes = [fit(scale(load(i)), model()) for i in range(6)]
    pipex.compute(nodes[:3])
    os.remove("pipex-out/fit/00.pkl")
    os.remove("pipex-out/scale/00.pkl")
    capsys.readouterr()

    summary = pipex.compute(nodes, progress=True).summary
    err = capsys.readouterr().err
    assert (summary.done, summary.ran, summary.reused) == (2, 11, 2)
    assert {int(n) for n in ALREADY_DONE.findall(err)} == {summary.done}
    assert "11/11" in err  # every task that ran counted once, fused or not
    assert err.count(str(summary)) == 1


@pytest.mark.slow
def test_a_script_not_on_a_terminal_prints_the_summary_line_to_stderr(workdir):
    script = textwrap.dedent(
        """
        import pipex

        @pipex.task(target="out/{i}.pkl")
        def square(i):
            return i * i

        print(pipex.compute([square(i) for i in range(3)], load=True))
        """
    )
    (workdir / "script.py").write_text(script)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    for done in (0, 3):
        proc = subprocess.run(
            [sys.executable, "script.py"], env=env, capture_output=True, text=True, timeout=120
        )
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout == "([0, 1, 4],)\n"
        (line,) = proc.stderr.splitlines()  # the summary, no progress bar
        assert line.startswith(f"pipex: 3 requested, {done} already done, ran {3 - done}, ")


class Blob:
    """A stand-in for a large output: counts its loaded (unpickled) instances still alive."""

    alive = 0

    def __init__(self, size: int) -> None:
        self.data = bytes(size)

    def __setstate__(self, state):
        self.__dict__.update(state, loaded=True)
        Blob.alive += 1

    def __del__(self):
        if self.__dict__.get("loaded"):
            Blob.alive -= 1


def test_loaded_inputs_are_freed_as_soon_as_their_task_finishes(workdir):
    """No reference cycle may keep loaded inputs alive until the garbage collector runs."""
    import gc

    @pipex.task(target="{path}/blob/{i}.pkl")
    def make(i):
        return Blob(1000)

    @pipex.task(target="{path}/size/{i}.json")
    def size(blob, i):
        return len(blob.data)

    nodes = [size(make(i), i) for i in range(10)]
    Blob.alive = 0
    gc.disable()
    try:
        assert pipex.compute(nodes, load=True, scheduler="sync")[0] == [1000] * 10
        assert Blob.alive == 0  # each of the 10 loaded blobs was freed by refcounting alone
    finally:
        gc.enable()


def test_large_runs_go_to_the_scheduler_in_batches_inputs_first(workdir):
    """With pipex.batch-size, each graph sent is closed: its inputs are finished targets or
    outputs of earlier batches, every node runs exactly once, and results are right."""
    calls: Counter[str] = Counter()

    @pipex.task(target="{path}/shared/{k}.pkl")
    def shared(k):
        calls[f"shared-{k}"] += 1
        return k

    @pipex.task(target="{path}/step/{i}.pkl")
    def step(x, y, i):
        calls[f"step-{i}"] += 1
        return x + y + i

    graphs = []

    def recording_scheduler(dsk, keys, **kwargs):
        graphs.append(dsk)
        return dask.get(dsk, keys, **kwargs)

    nodes = [step(shared(i % 3), shared((i + 1) % 3), i) for i in range(12)]
    with dask.config.set({"pipex.batch-size": 4}):
        results = pipex.compute(nodes, load=True, scheduler=recording_scheduler)

    assert results[0] == [i % 3 + (i + 1) % 3 + i for i in range(12)]
    assert set(calls.values()) == {1} and len(calls) == 15
    assert len(graphs) > 1
    seen: set = set()
    for dsk in graphs:
        for task in dsk.values():
            assert task.dependencies <= set(dsk)  # no reference to another batch's key
        assert seen.isdisjoint(dsk)
        seen.update(dsk)
    assert len(seen) == 15


def test_a_failure_in_an_early_batch_marks_its_users_in_later_batches_not_run(workdir):
    @pipex.task(target="{path}/first/{k}.pkl")
    def first(k):
        if k == 0:
            raise ValueError("bad first input")
        return k

    @pipex.task(target="{path}/then/{i}.pkl")
    def then(x, i):
        return x

    nodes = [then(first(i % 2), i) for i in range(10)]
    with dask.config.set({"pipex.batch-size": 2}), pytest.raises(pipex.PipelineError) as info:
        pipex.compute(nodes)
    err = info.value
    assert [f.key for f in err.failed] == ["first-pipex-out/first/0.pkl"]
    assert sorted(n.key for n in err.not_run) == sorted(
        f"then-pipex-out/then/{i}.pkl" for i in range(0, 10, 2)
    )
    assert all(os.path.exists(nodes[i].target) for i in range(1, 10, 2))
