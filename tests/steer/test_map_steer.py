"""Seeing and steering mapped steps: status, invalidate and restore, visualize, expand and the
CLI take a pipex.Mapped wherever they take nodes."""

from __future__ import annotations

import os
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner

import pipex
from pipex.cli import main
from pipex.steer.status import StepCounts
from tests.mapped import Steps
from tests.steer.conftest import files

SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture
def done(workdir: Path) -> tuple[Steps, tuple[pipex.Mapped, ...]]:
    """Three mapped steps over 10 items, all computed; ``calls`` cleared."""
    steps = Steps()
    maps = steps.build(10)
    pipex.compute(maps[-1], progress=False)
    steps.calls.clear()
    return steps, maps


# --- status ------------------------------------------------------------------------------------


def test_status_counts_items_per_step_as_compute_then_finds_them(done):
    steps, (_, _, third) = done
    os.remove("out/c/1.pkl")
    for step in "bc":
        os.remove(f"out/{step}/2.pkl")
    os.remove("out/b/3.pkl")  # alone: c/3 is done

    status = pipex.status(third)

    assert steps.calls == []
    assert status.steps == {
        "a": StepCounts(done=1, not_checked=9),
        "b": StepCounts(done=1, to_run=1, not_checked=8),
        "c": StepCounts(done=8, to_run=2),
    }
    assert sorted(t.path for t in status.to_run) == ["out/b/2.pkl", "out/c/1.pkl", "out/c/2.pkl"]
    pipex.compute(third, progress=False)
    assert sorted(steps.calls) == [("b", 2), ("c", 1), ("c", 2)]
    assert pipex.status(third).to_run == []


def test_status_of_a_fresh_map_and_of_a_mix_with_nodes(workdir):
    steps = Steps()
    first, _, third = steps.build(50)

    status = pipex.status([third, first[0]], steps.a(99))

    assert status.steps["a"] == StepCounts(to_run=51)
    assert status.steps["c"] == StepCounts(to_run=50)
    assert len(status.to_run) == 151
    assert steps.calls == []


def test_status_counts_the_items_that_failed_last_time(workdir):
    steps = Steps(bad=frozenset({4, 17}))
    _, _, third = steps.build(30)
    with pytest.raises(pipex.PipelineError):
        pipex.compute(third, progress=False)

    status = pipex.status(third)

    assert status.steps == {
        "a": StepCounts(to_run=2, failed=2, not_checked=28),
        "b": StepCounts(to_run=2, not_checked=28),
        "c": StepCounts(done=28, to_run=2),
    }
    assert sorted(t.path for t in status.failed) == ["out/a/17.pkl", "out/a/4.pkl"]
    assert status.rows()[-1] == ("total", 28, 6, 2, 56)

    steps.calls.clear()
    results = pipex.compute(third, progress=False, skip_failed=True)
    assert steps.calls == []  # the failed items and what needs them are left alone
    assert results.summary.skipped == 6 and results.summary.failed == 0


# --- invalidate and restore --------------------------------------------------------------------


def test_invalidate_a_glob_within_a_mapped_takes_the_downstream_items(done):
    steps, (_, _, third) = done
    before = files("out")

    removed = pipex.invalidate("out/a/[36].pkl", within=third)

    assert sorted(t.path for t in removed) == sorted(
        f"out/{s}/{i}.pkl" for s in "abc" for i in (3, 6)
    )
    assert set(before) - set(files("out")) == {t.path.removeprefix("out/") for t in removed}
    pipex.compute(third, progress=False)
    assert sorted(steps.calls) == sorted((s, i) for s in "abc" for i in (3, 6))


def test_invalidate_an_item_node_and_a_whole_mapped_step(done):
    steps, (first, second, third) = done

    removed = pipex.invalidate(second[7], within=third)
    assert sorted(t.path for t in removed) == ["out/b/7.pkl", "out/c/7.pkl"]

    removed = pipex.invalidate(third)  # no within: the selection only
    assert sorted(t.path for t in removed) == sorted(f"out/c/{i}.pkl" for i in range(10) if i != 7)
    assert len(os.listdir("out/a")) == 10 and len(os.listdir("out/b")) == 9

    pipex.compute(third, progress=False)
    assert steps.counts() == {"b": 1, "c": 10}
    assert first[0].target.exists()


def test_restore_puts_back_what_an_invalidation_of_a_mapped_removed(done):
    steps, (first, _, third) = done
    before = files("out")

    removed = pipex.invalidate(first, within=third)
    assert len(removed) == 30
    assert files("out") == {}

    restored = pipex.restore()
    assert sorted(t.path for t in restored) == sorted(t.path for t in removed)
    assert files("out") == before
    pipex.compute(third, progress=False)
    assert steps.calls == []


def test_dry_run_on_a_mapped_touches_nothing(done):
    _, (first, _, third) = done
    before = files(".")
    would = pipex.invalidate(first[0], within=third, dry_run=True)
    assert sorted(t.path for t in would) == ["out/a/0.pkl", "out/b/0.pkl", "out/c/0.pkl"]
    assert files(".") == before


# --- visualize ---------------------------------------------------------------------------------


def test_visualize_draws_a_mapped_step_as_one_box_with_its_counts(done):
    steps, (_, _, third) = done
    for i in (1, 2):
        os.remove(f"out/c/{i}.pkl")

    written = pipex.visualize(third, filename="mapped.svg")

    root = ET.parse(written).getroot()
    texts = [t.text or "" for t in root.iter(f"{SVG}text")]
    assert len(list(root.iter(f"{SVG}g"))) == 3  # one box per step
    assert any("10" in t for t in texts)
    assert any("2 to run" in t for t in texts)
    assert any("8 done" in t for t in texts)
    assert steps.calls == []


# --- expand ------------------------------------------------------------------------------------


def test_an_expansion_may_return_a_mapped(workdir):
    calls: list[str] = []

    @pipex.task(target="out/doc.pkl")
    def split() -> list[str]:
        calls.append("split")
        return ["p1", "p2", "p3"]

    @pipex.task(target="out/page/{page}.pkl")
    def page(page: str) -> str:
        calls.append(page)
        return page.upper()

    expansion = pipex.expand(split(), page.map)

    assert pipex.compute(expansion, load=True, progress=False) == (["P1", "P2", "P3"],)
    assert sorted(calls) == ["p1", "p2", "p3", "split"]
    calls.clear()
    os.remove("out/page/p2.pkl")
    pipex.compute(pipex.expand(split(), page.map), progress=False)
    assert calls == ["p2"]


# --- the CLI -----------------------------------------------------------------------------------

PIPELINE = textwrap.dedent(
    """
    import pipex


    def record(step, i):
        with open("calls.log", "a") as log:
            log.write(f"{step} {i}\\n")


    @pipex.task(target="{path}/first/{i}.pkl")
    def first(i: int) -> int:
        record("first", i)
        return i


    @pipex.task(target="{path}/second/{x.stem}.pkl")
    def second(x: int) -> int:
        record("second", x)
        return x + 1


    @pipex.task(target="{path}/total.pkl")
    def total(values: list[int]) -> int:
        record("total", 0)
        return sum(values)


    def one(items: int = 5):
        with pipex.context(path="out"):
            return second.map(first.map(range(items)))


    def several(items: int = 5):
        with pipex.context(path="out"):
            firsts = first.map(range(items))
            return [firsts, second.map(firsts)]


    def mixed(items: int = 5):
        with pipex.context(path="out"):
            seconds = second.map(first.map(range(items)))
            return [seconds, total(seconds)]
    """
)


@pytest.fixture
def cli(workdir):
    (workdir / "pipeline.py").write_text(PIPELINE)
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(main, list(args), catch_exceptions=False)

    return invoke


def calls() -> list[str]:
    log = Path("calls.log")
    lines = log.read_text().splitlines() if log.exists() else []
    log.unlink(missing_ok=True)
    return sorted(lines)


@pytest.mark.parametrize("entry", ["one", "several", "mixed"])
def test_the_cli_runs_an_entry_point_returning_mapped_steps(cli, entry):
    status = cli("status", f"pipeline.py:{entry}")
    assert status.exit_code == 0, status.output
    assert "total" in status.output

    result = cli("run", f"pipeline.py:{entry}", "--no-progress")
    assert result.exit_code == 0, result.output
    expected = [f"first {i}" for i in range(5)] + [f"second {i}" for i in range(5)]
    if entry == "mixed":
        expected.append("total 0")
    assert calls() == sorted(expected)
    assert Path("out/second/4.pkl").exists()

    again = cli("run", f"pipeline.py:{entry}", "--no-progress")
    assert again.exit_code == 0, again.output
    assert "ran 0," in again.output
    assert calls() == []
    assert "Nothing to run" in cli("status", f"pipeline.py:{entry}").output


def test_the_cli_status_counts_the_items_and_invalidate_takes_them(cli):
    cli("run", "pipeline.py:one", "-p", "items=8", "--no-progress")
    calls()

    result = cli(
        "invalidate", "pipeline.py:one", "-p", "items=8", "--match", "*/first/[25].pkl", "--yes"
    )
    assert result.exit_code == 0, result.output
    assert "Moved 4 target(s) to the trash" in result.output

    status = cli("status", "pipeline.py:one", "-p", "items=8")
    rows = {line.split()[0]: line.split()[1:] for line in status.output.splitlines() if line}
    assert rows["second"][:2] == ["6", "2"]  # done, to run
    assert rows["total"][:2] == ["6", "4"]

    cli("run", "pipeline.py:one", "-p", "items=8", "--no-progress")
    assert calls() == ["first 2", "first 5", "second 2", "second 5"]


def test_graph_clean_and_log_take_an_entry_returning_mapped_steps(cli):
    cli("run", "pipeline.py:mixed", "--no-progress")
    calls()

    graph = cli("graph", "pipeline.py:mixed", "-o", "g.svg")
    assert graph.exit_code == 0, graph.output
    assert Path("g.svg").read_text().startswith("<svg")

    stale = Path("out/first/.3.abcdef.pipex-tmp.pkl")
    stale.write_bytes(b"half")
    cli("invalidate", "pipeline.py:mixed", "--match", "out/second/[01].pkl", "--yes")
    result = cli("clean", "pipeline.py:mixed")
    assert result.exit_code == 0, result.output
    assert not stale.exists()
    assert not Path(".pipex-trash").exists()

    log = cli("log", "pipeline.py:mixed")
    assert log.exit_code == 0, log.output
    assert log.output.splitlines()[2].split()[-3:] == ["11", "0", "0"]  # ran, failed, not run
