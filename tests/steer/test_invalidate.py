"""pipex.invalidate and pipex.restore: the selection and its downstream, nothing else; undo."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import dask
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pipex
from pipex.steer.clean import leftovers
from pipex.steer.graph import Graph
from tests.steer.conftest import Chains, files
from tests.stores.conftest import STORES


def test_reset_with_downstream_reruns_exactly_that(chains):
    pipeline = chains(5)
    pipeline.compute()
    before = files("out")
    pipeline.calls.clear()

    removed = pipex.invalidate(pipeline.nodes("load")[1:3], within=pipeline.roots)

    assert sorted(t.path for t in removed) == sorted(
        f"out/{step}/{i}.pkl" for step in ("load", "clean", "score") for i in (1, 2)
    )
    assert set(files("out")) == set(before) - {t.path.removeprefix("out/") for t in removed}
    pipeline.compute()
    assert sorted(pipeline.calls) == sorted(
        (step, i) for step in ("load", "clean", "score") for i in (1, 2)
    )


def test_nodes_built_again_select_their_downstream_by_key(chains):
    pipeline = chains(6)
    pipeline.compute()
    before = files("out")
    pipeline.calls.clear()
    again = [pipeline.clean(pipeline.load(i), i) for i in (1, 4)]  # the same calls, new nodes

    removed = pipex.invalidate(again, within=pipeline.roots)

    assert sorted(t.path for t in removed) == sorted(
        f"out/{step}/{i}.pkl" for step in ("clean", "score") for i in (1, 4)
    )
    pipeline.compute()
    assert sorted(pipeline.calls) == sorted((s, i) for s in ("clean", "score") for i in (1, 4))
    pipex.invalidate(again, within=pipeline.roots)
    assert sorted(t.path for t in pipex.restore()) == sorted(t.path for t in removed)
    assert files("out") == before


@pipex.task(target="out/report/{i}.pkl")
def report(x: int, i: int) -> int:
    return x


def test_downstream_follows_every_node_object_of_one_call(chains):
    pipeline = chains(2)
    again = pipeline.clean(pipeline.load(0), 0)  # the same call as chain 0's clean
    roots = [*pipeline.roots, report(again, 0)]
    pipex.compute(roots, scheduler="sync", progress=False)

    removed = pipex.invalidate(pipeline.load(0), within=roots)  # built again: every copy

    assert sorted(t.path for t in removed) == [
        f"out/{s}/0.pkl" for s in ("clean", "load", "report", "score")
    ]


def test_without_within_only_the_selection_goes(chains):
    pipeline = chains(3)
    pipeline.compute()
    removed = pipex.invalidate(pipeline.nodes("clean")[0])
    assert [t.path for t in removed] == ["out/clean/0.pkl"]
    assert not os.path.exists("out/clean/0.pkl")
    assert os.path.exists("out/score/0.pkl")


def test_dry_run_touches_nothing(chains):
    pipeline = chains(3)
    pipeline.compute()
    before = files(".")
    would = pipex.invalidate("out/clean/*.pkl", within=pipeline.roots, dry_run=True)
    assert sorted(t.path for t in would) == sorted(
        f"out/{s}/{i}.pkl" for s in ("clean", "score") for i in range(3)
    )
    assert files(".") == before


def test_globs_targets_and_missing_ones(chains):
    pipeline = chains(4)
    pipeline.compute()
    os.remove("out/score/3.pkl")
    removed = pipex.invalidate(
        ["out/load/[23].pkl", pipeline.roots[0].target], within=pipeline.roots
    )
    assert sorted(t.path for t in removed) == [  # score/3 did not exist: not "removed"
        "out/clean/2.pkl",
        "out/clean/3.pkl",
        "out/load/2.pkl",
        "out/load/3.pkl",
        "out/score/0.pkl",
        "out/score/2.pkl",
    ]


def test_a_glob_without_within_lists_the_working_directory(chains):
    pipeline = chains(3)
    pipeline.compute()
    Path("out/clean/stray.pkl").write_bytes(b"not a target of the graph")
    removed = pipex.invalidate("out/clean/*.pkl")
    assert sorted(t.path for t in removed) == [
        f"out/clean/{n}.pkl" for n in ("0", "1", "2", "stray")
    ]
    assert os.listdir("out/clean") == []
    assert len(pipex.restore()) == 4
    assert Path("out/clean/stray.pkl").read_bytes() == b"not a target of the graph"


@pytest.mark.parametrize(
    "pattern",
    ["{outside}/*.txt", "{outside}/**", "../*.txt", "out/../../*.txt", "file://{outside}/*.txt"],
)
def test_a_glob_outside_every_pipex_root_is_refused(pattern, chains, tmp_path_factory):
    outside = tmp_path_factory.mktemp("other")
    (outside / "keep.txt").write_text("not pipex's")
    Path("../keep.txt").write_text("not pipex's either")
    pattern = pattern.format(outside=outside)
    with pytest.raises(pipex.TargetError, match="outside") as error:
        pipex.invalidate(pattern)
    assert pattern in str(error.value) and "within=" in str(error.value)
    assert (outside / "keep.txt").read_text() == "not pipex's"
    assert Path("../keep.txt").exists()


def test_a_glob_under_the_pipex_path_root_is_allowed(chains, tmp_path_factory):
    root = tmp_path_factory.mktemp("root")
    (root / "a.txt").write_text("a")
    with dask.config.set({"pipex.path": str(root)}):
        removed = pipex.invalidate(f"{root}/*.txt")
    assert [t.name for t in removed] == ["a.txt"]
    assert not (root / "a.txt").exists()
    assert [t.name for t in pipex.restore()] == ["a.txt"]
    assert (root / "a.txt").read_text() == "a"


def test_restore_round_trips_byte_for_byte_even_over_a_rerun(chains):
    pipeline = chains(4)
    pipeline.compute()
    before = files("out")
    removed = pipex.invalidate(pipeline.nodes("load")[:2], within=pipeline.roots)
    assert len(removed) == 6
    Path("out/clean/0.pkl").write_bytes(b"written again since")

    restored = pipex.restore()

    assert sorted(restored, key=str) == sorted(removed, key=str)
    assert files("out") == before
    assert not os.path.exists(".pipex-trash")  # the trash is gone too
    assert pipex.restore() == []


def versioned(version: str, calls: list[int]) -> list[pipex.Node]:
    """Two calls of a task of this ``version`` (the same targets whatever the version)."""

    @pipex.task(target="out/v/{i}.pkl", version=version, name="step")
    def step(i: int) -> tuple[str, int]:
        calls.append(i)
        return version, i

    return [step(i) for i in range(2)]


def test_a_target_restored_after_a_version_bump_keeps_its_old_version(workdir):
    calls: list[int] = []
    pipex.compute(versioned("1", calls), scheduler="sync", progress=False)
    pipex.invalidate(versioned("1", calls)[0])
    pipex.compute(versioned("2", calls), scheduler="sync", progress=False)  # 0 missing, 1 stale
    assert Path("out/v/0.pkl").exists()
    calls.clear()

    assert [t.path for t in pipex.restore()] == ["out/v/0.pkl"]
    assert pipex.Target("out/v/0.pkl").load() == ("1", 0)  # version 1's bytes, back
    assert pipex.status(versioned("2", calls)).to_run == [pipex.Target("out/v/0.pkl")]
    pipex.compute(versioned("2", calls), scheduler="sync", progress=False)

    assert calls == [0]
    assert pipex.Target("out/v/0.pkl").load() == ("2", 0)


def test_a_target_restored_without_a_ledger_record_stays_done(workdir):
    calls: list[int] = []
    with dask.config.set({"pipex.ledger": False}):  # written with no record
        pipex.compute(versioned("1", calls), scheduler="sync", progress=False)
    pipex.invalidate(versioned("1", calls)[0])
    pipex.compute(versioned("2", calls), scheduler="sync", progress=False)  # 0 recorded now
    pipex.restore()
    calls.clear()
    pipex.compute(versioned("2", calls), scheduler="sync", progress=False)
    assert calls == []  # as before the invalidation: no record, Make's rule


def test_restore_undoes_the_last_invalidation_only(chains):
    pipeline = chains(3)
    pipeline.compute()
    pipex.invalidate(pipeline.roots[0])
    pipex.invalidate(pipeline.roots[1])
    assert [t.path for t in pipex.restore()] == ["out/score/1.pkl"]
    assert not os.path.exists("out/score/0.pkl")
    assert [t.path for t in pipex.restore()] == ["out/score/0.pkl"]


RACER = """
import os, sys, time
import pipex

first, count = int(sys.argv[1]), int(sys.argv[2])
while not os.path.exists("go"):
    time.sleep(0.001)
for i in range(first, first + count):
    pipex.invalidate(f"out/{i}.txt")
"""


def test_two_invalidations_at_once_lose_no_trash_entry(workdir):
    count = 25
    os.mkdir("out")
    for i in range(2 * count):
        Path(f"out/{i}.txt").write_text(f"file {i}")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    racers = [
        subprocess.Popen([sys.executable, "-c", RACER, str(first), str(count)], env=env)
        for first in (0, count)
    ]
    time.sleep(2)  # both processes import pipex, then wait for the start
    Path("go").touch()
    assert [racer.wait(timeout=120) for racer in racers] == [0, 0]
    assert os.listdir("out") == []

    index = json.loads(Path(".pipex-trash/index.json").read_text())
    assert len(index["invalidations"]) == 2 * count
    restored = [t.name for _ in range(2 * count) for t in pipex.restore()]
    assert sorted(restored) == sorted(f"{i}.txt" for i in range(2 * count))
    assert all(Path(f"out/{i}.txt").read_text() == f"file {i}" for i in range(2 * count))


def test_a_damaged_trash_index_is_a_clear_error_and_clean_still_empties_the_trash(chains):
    pipeline = chains(3)
    pipeline.compute()
    pipex.invalidate(pipeline.roots[:2])
    Path(".pipex-trash/index.json").write_text('{"invalidations": [{"id": ')  # cut short

    for attempt in (pipex.restore, lambda: pipex.invalidate(pipeline.roots[2])):
        with pytest.raises(pipex.StoreError) as error:
            attempt()
        message = str(error.value)
        assert ".pipex-trash/index.json" in message and "pipex clean" in message
    assert os.path.exists("out/score/2.pkl")  # the refused invalidation removed nothing

    found = leftovers(Graph(pipeline.roots).nodes)
    assert found.trashed == 2
    found.remove()
    assert not os.path.exists(".pipex-trash")
    assert pipex.restore() == []
    assert [t.path for t in pipex.invalidate(pipeline.roots[2])] == ["out/score/2.pkl"]


def test_selection_of_the_wrong_type_is_refused():
    with pytest.raises(TypeError, match="nodes, pipex\\.Target objects or location globs"):
        pipex.invalidate([42])


class DictStore(pipex.Store):
    """A store kept in a dict, written on the five primitives only: no file of its own."""

    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}

    def exists_many(self, paths):
        return [path in self.data for path in paths]

    @contextlib.contextmanager
    def open(self, path):
        if path not in self.data:
            raise FileNotFoundError(path)
        with tempfile.TemporaryFile() as file:
            file.write(self.data[path])
            file.seek(0)
            yield file

    def stage(self, path):
        fd, staged = tempfile.mkstemp(suffix=".pipex-tmp")
        return staged, os.fdopen(fd, "wb")

    def commit(self, staged, path):
        self.data[path] = Path(staged).read_bytes()
        os.remove(staged)

    def delete(self, path):
        self.data.pop(path, None)


@pytest.mark.parametrize("kind", ["dict", *sorted(STORES)])
def test_invalidate_and_restore_work_on_any_store(kind, tmp_path, workdir, request):
    store = DictStore() if kind == "dict" else STORES[kind](tmp_path, request)
    pipeline = Chains(3, store=store)
    pipeline.compute()
    paths = [f"out/{s}/{i}.pkl" for s in ("load", "clean", "score") for i in range(3)]
    before = {path: read(store, path) for path in paths}

    removed = pipex.invalidate(pipeline.nodes("clean")[2], within=pipeline.roots)

    assert {t.path for t in removed} == {"out/clean/2.pkl", "out/score/2.pkl"}
    assert store.exists_many(paths) == [p not in {t.path for t in removed} for p in paths]
    assert [t.path for t in pipex.restore(store)] == ["out/clean/2.pkl", "out/score/2.pkl"]
    assert {path: read(store, path) for path in paths} == before
    assert not store.exists(".pipex-trash/index.json")


def read(store: pipex.Store, path: str) -> bytes:
    with store.open(path) as file:
        return file.read()


@st.composite
def graphs(draw):
    """A random DAG: node i takes a subset of the nodes before it; a selection; some roots."""
    n = draw(st.integers(1, 12))
    deps = [draw(st.sets(st.integers(0, i - 1), max_size=3)) if i else set() for i in range(n)]
    selected = draw(st.sets(st.integers(0, n - 1), max_size=3))
    missing = draw(st.sets(st.integers(0, n - 1), max_size=3))
    return deps, selected, missing


@pipex.task(target="{path}/n/{name}.pkl")
def graph_node(name: int, inputs: list) -> int:
    return name


@settings(max_examples=40, deadline=None)
@given(graphs())
def test_invalidate_never_touches_a_target_outside_the_selection_and_its_downstream(graph):
    deps, selected, missing = graph
    with tempfile.TemporaryDirectory() as folder, contextlib.chdir(folder):
        with pipex.context(path="out"):
            nodes: list[pipex.Node] = []
            for i, ins in enumerate(deps):
                nodes.append(graph_node(i, [nodes[j] for j in sorted(ins)]))
        pipex.compute(nodes, scheduler="sync", progress=False)
        for i in missing:  # some targets are already gone
            os.remove(f"out/n/{i}.pkl")
        before = files("out/n")

        removed = pipex.invalidate([nodes[i] for i in selected], within=nodes)

        users = {i: {k for k, ins in enumerate(deps) if i in ins} for i in range(len(deps))}
        reach, stack = set(), list(selected)
        while stack:
            i = stack.pop()
            if i not in reach:
                reach.add(i)
                stack.extend(users[i])
        expected = {f"{i}.pkl" for i in reach} - {f"{i}.pkl" for i in missing}
        assert {t.name for t in removed} == expected
        after = files("out/n")
        assert set(after) == set(before) - expected
        assert all(after[name] == before[name] for name in after)
        pipex.restore()
        assert files("out/n") == before


def absolute(root: Path, version: str, calls: list[int]) -> list[pipex.Node]:
    """:func:`versioned`'s two calls, with absolute targets under the absolute ``root``."""

    @pipex.task(target="{path}/v/{i}.pkl", version=version, name="step")
    def step(i: int) -> tuple[str, int]:
        calls.append(i)
        return version, i

    with pipex.context(path=str(root)):
        return [step(i) for i in range(2)]


def test_absolute_targets_under_an_absolute_root_keep_one_ledger_there(tmp_path, monkeypatch):
    root, first, second = tmp_path / "data", tmp_path / "here", tmp_path / "there"
    first.mkdir(), second.mkdir()
    calls: list[int] = []
    monkeypatch.chdir(first)
    pipex.compute(absolute(root, "1", calls), scheduler="sync", progress=False)
    monkeypatch.chdir(second)  # another working directory: the same ledger, beside the data
    nodes = absolute(root, "1", calls)
    assert [t.path for t in pipex.invalidate(nodes[0], within=nodes)] == [str(root / "v/0.pkl")]
    pipex.compute(absolute(root, "2", calls), scheduler="sync", progress=False)
    calls.clear()

    assert [t.path for t in pipex.restore()] == [str(root / "v/0.pkl")]
    assert pipex.Target(str(root / "v/0.pkl")).load() == ("1", 0)  # version 1's bytes
    stale = pipex.status(absolute(root, "2", calls)).to_run
    assert [t.path for t in stale] == [str(root / "v/0.pkl")]  # and version 1's record
    pipex.compute(absolute(root, "2", calls), scheduler="sync", progress=False)
    assert calls == [0]

    ran = [(r.step, r.target, r.status) for r in pipex.history(root)]
    assert ran.count(("step", str(root / "v/0.pkl"), "ran")) == 3
    assert (root / ".pipex" / "ledger.sqlite").exists()
    assert not (first / ".pipex").exists() and not (second / ".pipex").exists()
