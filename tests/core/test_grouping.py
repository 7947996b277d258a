"""Failures grouped by step and error (issue 24, item 4): one group per step, error type and
message shape, largest first; whatever the count, what is shown fits a screen."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass

import pytest
from click.testing import CliRunner

import pipex
from pipex.cli import entry, main
from pipex.core.grouping import FailureGroup, describe, group, shape


@dataclass(frozen=True)
class Row:
    step: str
    error: str
    message: str
    target: str
    traceback: str


def test_shape_sets_aside_numbers_paths_quoted_values_and_locations():
    assert shape("No module named 'images'") == "No module named '<value>'"
    assert shape("cannot read /data/in/img-0042.png: 3.5e3 bytes at 0x7ffa") == (
        "cannot read <path>: <n> bytes at <n>"
    )
    assert shape("cannot open s3://key:secret@bucket/run/x.pkl now") == "cannot open <path> now"
    assert (
        shape('bad value -5 for "n", expected 1.') == 'bad value <n> for "<value>", expected <n>.'
    )
    # Words that hold digits or apostrophes are the message, not its task-specific parts.
    assert shape("can't cast float64 in step2") == "can't cast float64 in step2"


def test_group_counts_each_step_and_error_keeps_the_first_targets_and_traceback():
    rows = [
        Row("load", "ValueError", f"page {i} is blank", f"out/{i}.pkl", f"tb {i}")
        for i in range(9)
    ]
    rows += [Row("load", "KeyError", "'x'", "out/k.pkl", "tb k")]
    rows += [Row("scale", "ValueError", "page 3 is blank", "out/s.pkl", "tb s")]
    groups = group(rows, keep=3)
    assert groups == [
        FailureGroup(
            "load",
            "ValueError",
            "page <n> is blank",
            9,
            ("out/0.pkl", "out/1.pkl", "out/2.pkl"),
            "tb 0",
        ),
        FailureGroup("load", "KeyError", "'<value>'", 1, ("out/k.pkl",), "tb k"),
        FailureGroup("scale", "ValueError", "page <n> is blank", 1, ("out/s.pkl",), "tb s"),
    ]


def test_describe_fits_a_screen_whatever_the_count():
    rows = [
        Row(f"step{i % 40}", "ValueError", f"bad {i}", f"out/{i}.pkl", "tb")
        for i in range(100_000)
    ]
    lines = describe(group(rows))
    assert len(lines) == 21  # ten groups of two lines, and how many more
    assert lines[-1] == "  ... and 30 more group(s) of 75,000 failure(s) (all in error.failed)"
    assert lines[0] == "  step0: 2,500 failed with ValueError: bad <n>"
    assert lines[1] == "    targets out/0.pkl, out/40.pkl, out/80.pkl, ... and 2,497 more"


@pytest.fixture
def failing_pipeline(workdir):
    (workdir / "failing.py").write_text(
        textwrap.dedent(
            """
            import pipex

            @pipex.task(target="{path}/pages/{i}.pkl")
            def read_page(i):
                raise ValueError(f"page {i} is unreadable: out/scans/{i}.png")

            def build(n: int = 1000):
                with pipex.context(path="out"):
                    return [read_page(i) for i in range(n)]
            """
        )
    )
    return workdir


def test_a_thousand_failures_make_a_short_error_a_short_run_and_a_short_log(failing_pipeline):
    with pytest.raises(pipex.PipelineError) as info:
        pipex.compute(entry.nodes("failing.py:build", ()), scheduler="sync", progress=False)
    error = info.value
    message = str(error)
    assert len(error.failed) == 1000
    assert len(message) < 1000, len(message)
    assert "read_page: 1,000 failed with ValueError: page <n> is unreadable: <path>" in message
    assert len(error.exceptions) == 1  # one per group: one traceback printed, not a thousand

    runner = CliRunner()
    run = runner.invoke(main, ["run", "failing.py:build", "--no-progress"], catch_exceptions=False)
    assert run.exit_code == 1
    assert "read_page: 1,000 failed with ValueError" in run.output
    assert len(run.output) < 3000, len(run.output)

    log = runner.invoke(main, ["log"], catch_exceptions=False)
    assert "read_page: 1,000 failed with ValueError: page <n> is unreadable" in log.output
    assert len(log.output) < 3000, len(log.output)
