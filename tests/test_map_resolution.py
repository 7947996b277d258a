"""What a mapped step runs: bottom-up skipping per item, Make semantics, staleness, claims,
and the checks made before anything runs (containment, collisions)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import dask
import pytest

import pipex
from tests.files import files_under
from tests.integration.processes import environment
from tests.mapped import Steps, written_by_hand

# --- bottom-up skipping, per item --------------------------------------------------------------


def test_a_second_compute_runs_nothing(workdir):
    steps = Steps()
    pipex.compute(steps.build(20)[-1], progress=False)
    assert steps.counts() == {"a": 20, "b": 20, "c": 20}
    steps.calls.clear()

    results = pipex.compute(Steps().build(20)[-1], progress=False)  # built again

    assert steps.calls == []
    assert results.summary.ran == 0
    assert results.summary.done == 20


def test_deleting_one_final_target_reruns_exactly_that_items_last_step(workdir):
    steps = Steps()
    _, _, third = steps.build(30)
    pipex.compute(third, progress=False)
    steps.calls.clear()
    os.remove("out/c/17.pkl")

    pipex.compute(third, progress=False)

    assert steps.calls == [("c", 17)]  # its upstream exists: b/17 is loaded, not run
    assert third[17].target.load() == 171


def test_deleting_an_intermediate_alone_changes_nothing_while_its_dependant_exists(workdir):
    steps = Steps()
    _, _, third = steps.build(30)
    pipex.compute(third, progress=False)
    steps.calls.clear()
    os.remove("out/b/4.pkl")
    os.remove("out/a/9.pkl")

    results = pipex.compute(third, progress=False)

    assert steps.calls == []
    assert results.summary.ran == 0
    assert not os.path.exists("out/b/4.pkl")  # Make semantics: c/4 is done


def test_a_missing_chain_runs_whole_and_the_others_not_at_all(workdir):
    steps = Steps()
    _, _, third = steps.build(30)
    pipex.compute(third, progress=False)
    steps.calls.clear()
    for step in "abc":
        os.remove(f"out/{step}/5.pkl")
    os.remove("out/c/6.pkl")
    os.remove("out/b/6.pkl")

    results = pipex.compute(third, progress=False)

    assert sorted(steps.calls) == [("a", 5), ("b", 5), ("b", 6), ("c", 5), ("c", 6)]
    assert (results.summary.ran, results.summary.done) == (5, 28)
    assert [third[i].target.load() for i in (5, 6)] == [51, 61]


def test_nothing_below_a_done_item_is_looked_at(workdir):
    steps = Steps()
    _, _, third = steps.build(10)
    pipex.compute(third, progress=False)
    # Damage every upstream target: a run that loaded or checked them would fail or rerun.
    for step in "ab":
        for name in os.listdir(f"out/{step}"):
            Path(f"out/{step}/{name}").write_bytes(b"not a pickle")
    os.remove("out/c/3.pkl")
    os.remove("out/b/3.pkl")
    os.remove("out/a/3.pkl")
    steps.calls.clear()

    pipex.compute(third, progress=False)

    assert sorted(steps.calls) == [("a", 3), ("b", 3), ("c", 3)]


def test_resolution_makes_no_node_per_item(workdir, monkeypatch):
    steps = Steps()
    written_by_hand("c", range(2_000), lambda i: 10 * i + 1)
    written_by_hand("b", range(10, 11), lambda i: 10 * i)
    os.remove("out/c/10.pkl")
    made: list[int] = []
    init = pipex.Node.__init__

    def counted(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        made.append(1)
        init(self, *args, **kwargs)

    monkeypatch.setattr(pipex.Node, "__init__", counted)

    _, _, again = steps.build(2_000)
    pipex.compute(again, progress=False)

    assert steps.calls == [("c", 10)]
    assert len(made) < 100
    assert Path("out/c/10.pkl").exists()


# --- staleness opt-ins, per item ---------------------------------------------------------------


def test_a_version_bump_reruns_each_item_recorded_under_another_version(workdir):
    steps = Steps(version="1")
    pipex.compute(steps.build(10)[-1], progress=False)
    assert steps.counts() == {"a": 10, "b": 10, "c": 10}

    bumped = Steps(version="2")
    *_, third = bumped.build(10)
    pipex.compute(third[3], progress=False)  # one item recorded under version 2 first
    assert sorted(bumped.calls) == [("b", 3), ("c", 3)]
    bumped.calls.clear()

    pipex.compute(third, progress=False)

    assert bumped.ran("b") == [i for i in range(10) if i != 3]
    assert bumped.ran("c") == [i for i in range(10) if i != 3]
    assert bumped.ran("a") == []
    bumped.calls.clear()
    pipex.compute(third, progress=False)
    assert bumped.calls == []
    assert pipex.status(third).steps["c"].to_run == 0


# --- checks before anything runs ---------------------------------------------------------------


def test_an_item_whose_argument_escapes_the_root_is_refused_before_running(workdir):
    calls: list[str] = []

    @pipex.task(target="out/name/{name}.pkl")
    def named(name: str) -> str:
        calls.append(name)
        return name

    with pytest.raises(pipex.TargetError, match=r"\{name\}"):
        pipex.compute(named.map(["a", "b", "../../../escaped", "d"]), progress=False)
    assert calls == []
    assert files_under(workdir) == []
    assert not (workdir.parent / "escaped.pkl").exists()


def test_two_items_rendering_one_target_collide_before_running(workdir):
    calls: list[int] = []

    @pipex.task(target="out/by-name/{name}.pkl")
    def keyed(i: int, name: str) -> int:
        calls.append(i)
        return i

    with pytest.raises(pipex.TargetCollisionError, match=r"out/by-name/x\.pkl"):
        pipex.compute(keyed.map(range(4), ["w", "x", "y", "x"]), progress=False)
    assert calls == []
    assert files_under(workdir) == []


def test_an_item_colliding_with_a_plain_node_is_refused_too(workdir):
    calls: list[int] = []

    @pipex.task(target="out/by-name/{name}.pkl")
    def keyed(i: int, name: str) -> int:
        calls.append(i)
        return i

    with pytest.raises(pipex.TargetCollisionError, match=r"out/by-name/y\.pkl"):
        pipex.compute([keyed.map(range(3), ["x", "y", "z"]), keyed(9, "y")], progress=False)
    assert calls == []
    assert files_under(workdir) == []


# --- two runners on one folder -----------------------------------------------------------------

ITEMS = 40

#: A map ``first -> second`` over ITEMS items under argv[1]; every call appends a line to
#: argv[2]. Starts when the file "go" exists beside argv[2].
RUNNER = textwrap.dedent(
    f"""
    import os, sys, time
    import pipex

    root, log = sys.argv[1], sys.argv[2]

    def record(name):
        descriptor = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        os.write(descriptor, (name + "\\n").encode())
        os.close(descriptor)

    @pipex.task(target="{{path}}/first/{{i}}.pkl")
    def first(i):
        record(f"first {{i}}")
        time.sleep(0.01)
        return i

    @pipex.task(target="{{path}}/second/{{x.stem}}.pkl")
    def second(x):
        record(f"second {{x}}")
        time.sleep(0.01)
        return x * 10

    go = os.path.join(os.path.dirname(log), "go")
    while not os.path.exists(go):
        time.sleep(0.01)
    with pipex.context(path=root):
        m = second.map(first.map(range({ITEMS})))
    (values,) = pipex.compute(m, load=True, progress=False, scheduler="threads")
    assert list(values) == [10 * i for i in range({ITEMS})], values
    """
)


@pytest.mark.slow
def test_two_runners_on_one_folder_run_each_item_once(tmp_path):
    script = tmp_path / "pipeline.py"
    script.write_text(RUNNER)
    log = tmp_path / "calls.log"
    env = environment()
    runners = [
        subprocess.Popen(
            [sys.executable, str(script), str(tmp_path / "out"), str(log)],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    (tmp_path / "go").touch()
    for runner in runners:
        _, err = runner.communicate(timeout=240)
        assert runner.returncode == 0, err

    lines = log.read_text().splitlines()
    assert sorted(lines) == sorted(
        [f"first {i}" for i in range(ITEMS)] + [f"second {i}" for i in range(ITEMS)]
    )


def test_rerun_code_reruns_the_items_of_a_step_whose_code_changed(workdir):
    calls: list[int] = []

    @pipex.task(target="out/a/{i}.pkl", name="a")
    def a(i: int) -> int:
        return i

    @pipex.task(target="out/b/{x.stem}.pkl", name="b")
    def b_before(x: int) -> int:
        calls.append(x)
        return x * 10

    @pipex.task(target="out/b/{x.stem}.pkl", name="b")
    def b_after(x: int) -> int:
        calls.append(x)
        return x * 100

    pipex.compute(b_before.map(a.map(range(6))), progress=False)
    calls.clear()
    with dask.config.set({"pipex.rerun": "code"}):
        pipex.compute(b_before.map(a.map(range(6))), progress=False)
        assert calls == []  # the same code: nothing is stale
        (values,) = pipex.compute(b_after.map(a.map(range(6))), load=True, progress=False)
    assert sorted(calls) == list(range(6))
    assert list(values) == [100 * i for i in range(6)]


def test_resolution_lists_each_folder_once_and_stats_no_target(workdir, monkeypatch):
    steps = Steps()
    written_by_hand("c", range(2_000), lambda i: 10 * i + 1)
    written_by_hand("b", range(3), lambda i: 10 * i)
    for i in range(3):
        os.remove(f"out/c/{i}.pkl")  # three items to look at one level down
    listed: list[str] = []
    looked_up: list[str] = []
    scandir, exists = os.scandir, os.path.exists

    def counted_scandir(folder="."):  # type: ignore[no-untyped-def]
        listed.append(os.path.relpath(folder))
        return scandir(folder)

    def counted_exists(where) -> bool:  # type: ignore[no-untyped-def]
        if str(where).endswith(".pkl"):
            looked_up.append(str(where))
        return exists(where)

    monkeypatch.setattr(os, "scandir", counted_scandir)
    monkeypatch.setattr(os.path, "exists", counted_exists)
    _, _, third = steps.build(2_000)

    results = pipex.compute(third, progress=False)

    assert sorted(steps.calls) == [("c", i) for i in range(3)]
    assert results.summary.done == 1_997
    assert listed.count(os.path.join("out", "c")) == 1
    assert listed.count(os.path.join("out", "b")) == 1
    assert os.path.join("out", "a") not in listed  # below done items: never looked at
    assert len(looked_up) < 10
