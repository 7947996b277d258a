"""A mapped step's failures are per item; its writes are atomic per item; its ledger rows too."""

from __future__ import annotations

import os
import pickle
import re
import signal
import subprocess
import sys
import textwrap
import time
import traceback
from pathlib import Path

import pytest

import pipex
from tests.files import files_under
from tests.integration.processes import environment
from tests.mapped import Steps

BAD = frozenset({4, 17})


def test_a_failing_item_fails_itself_and_its_downstream_only(workdir):
    steps = Steps(bad=BAD)
    first, _, third = steps.build(30)

    with pytest.raises(pipex.PipelineError) as info:
        pipex.compute(third, progress=False)
    error = info.value

    good = [i for i in range(30) if i not in BAD]
    assert steps.ran("a") == list(range(30))
    assert steps.ran("b") == good and steps.ran("c") == good
    assert files_under(workdir) == sorted(f"out/{s}/{i}.pkl" for s in "abc" for i in good)
    assert [third[i].target.load() for i in good] == [10 * i + 1 for i in good]

    assert sorted(f.target.path for f in error.failed) == ["out/a/17.pkl", "out/a/4.pkl"]
    assert {f.target for f in error.failed} == {first[4].target, first[17].target}
    assert all(type(f.exception) is ValueError for f in error.failed)
    assert all("unreadable input" in f.traceback for f in error.failed)
    assert sorted(n.target.path for n in error.not_run) == sorted(
        f"out/{s}/{i}.pkl" for s in "bc" for i in BAD
    )
    s = error.summary
    assert (s.ran, s.failed, s.not_run) == (3 * 28, 2, 4)


def test_a_rerun_after_failures_runs_only_the_failed_items(workdir):
    steps = Steps(bad=BAD)
    with pytest.raises(pipex.PipelineError):
        pipex.compute(steps.build(30)[-1], progress=False)

    fixed = Steps()
    _, _, third = fixed.build(30)
    (values,) = pipex.compute(third, load=True, progress=False)

    assert sorted(fixed.calls) == sorted((s, i) for s in "abc" for i in BAD)
    assert list(values) == [10 * i + 1 for i in range(30)]


def test_a_failing_item_leaves_no_file_not_even_a_temporary(workdir):
    @pipex.task(target="out/half/{i}.pkl")
    def half(i: int) -> bytes:
        if i % 2:
            raise OSError("disk said no")
        return bytes(100_000)

    with pytest.raises(pipex.PipelineError):
        pipex.compute(half.map(range(10)), progress=False)

    assert files_under(workdir) == [f"out/half/{i}.pkl" for i in range(0, 10, 2)]


def test_save_false_items_write_through_temporaries(workdir):
    @pipex.task(target="out/own/{i}.txt", save=False)
    def own(i: int, target: str) -> None:
        with open(target, "w") as file:
            file.write(f"item {i}")
        if i == 2:
            raise ValueError("written, then failed")

    with pytest.raises(pipex.PipelineError):
        pipex.compute(own.map(range(4)), progress=False)

    assert files_under(workdir) == ["out/own/0.txt", "out/own/1.txt", "out/own/3.txt"]
    assert Path("out/own/3.txt").read_text() == "item 3"


# --- a thousand failures -----------------------------------------------------------------------


@pipex.task(target="out/broken/{i}.pkl")
def broken(i: int) -> int:
    raise ValueError("the input is broken")


@pipex.task(target="out/after/{x.stem}.pkl")
def after_broken(x: int) -> int:
    return x


def test_a_thousand_failures_make_a_short_message_grouped_by_step_and_error(workdir):
    m = after_broken.map(broken.map(range(1_000)))

    with pytest.raises(pipex.PipelineError) as info:
        pipex.compute(m, progress=False)
    error = info.value
    message = str(error)

    assert len(error.failed) == 1_000
    assert len(error.not_run) == 1_000
    assert sorted(f.target.path for f in error.failed) == sorted(
        f"out/broken/{i}.pkl" for i in range(1_000)
    )
    assert len(message) < 5_000, len(message)
    assert "broken" in message  # the step
    assert "ValueError" in message and "the input is broken" in message
    assert re.search(r"\b1,?000\b", message)  # the count
    printed = "".join(traceback.format_exception(error))  # as an uncaught error shows it
    assert len(printed) < 10_000, len(printed)
    assert "out/broken/" in message  # a few of its targets
    assert len(message.splitlines()) < 60
    assert files_under(workdir) == []


def test_each_group_of_failures_shows_one_traceback(workdir):
    @pipex.task(target="out/other/{i}.pkl")
    def other(i: int) -> int:
        raise KeyError("missing column")

    with pytest.raises(pipex.PipelineError) as info:
        pipex.compute([broken.map(range(150)), other.map(range(150))], progress=False)
    message = str(info.value)
    # The error carries one exception per group (core/grouping.py): printed, it shows one
    # traceback of each, not 300.
    printed = "".join(traceback.format_exception(info.value))

    assert len(info.value.failed) == 300
    assert len(message) < 5_000, len(message)
    assert len(info.value.exceptions) == 2
    # the message names each group's line of user code; beside it, one traceback per group
    for line in ('raise ValueError("the input is broken")', 'raise KeyError("missing column")'):
        assert printed.count(line) - message.count(line) == 1
    assert len(printed) < 10_000, len(printed)
    assert "ValueError" in message and "KeyError" in message


# --- the run ledger ----------------------------------------------------------------------------


def test_the_ledger_has_a_row_per_item(workdir):
    steps = Steps(bad=BAD)
    with pytest.raises(pipex.PipelineError):
        pipex.compute(steps.build(12)[-1], progress=False)

    rows = pipex.history(limit=None)

    by_status = {
        status: sorted(r.path for r in rows if r.status == status)
        for status in ("ran", "failed", "not run")
    }
    good = [i for i in range(12) if i not in BAD]
    assert by_status["ran"] == sorted(f"out/{s}/{i}.pkl" for s in "abc" for i in good)
    assert by_status["failed"] == ["out/a/4.pkl"]
    assert by_status["not run"] == ["out/b/4.pkl", "out/c/4.pkl"]
    assert len(rows) == 36
    (failed,) = pipex.history(status="failed")
    assert failed.error == "ValueError: unreadable input"
    assert "unreadable input" in failed.traceback
    assert all(r.duration is not None and r.duration >= 0 for r in rows if r.status == "ran")
    assert len({r.run for r in rows}) == 1
    assert len(pipex.history(step="b", limit=None)) == 12


# --- kill -9 in the middle of a batch ----------------------------------------------------------

ITEMS = 40

#: A mapped step of ITEMS items of 2 MB each under out/; every call appends its item to
#: calls.log; item argv[1] (if any) creates the file "started" and never returns.
KILLED = textwrap.dedent(
    f"""
    import os, sys, time
    import pipex

    hang = int(sys.argv[1])

    @pipex.task(target="out/blob/{{i}}.pkl")
    def blob(i):
        descriptor = os.open("calls.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        os.write(descriptor, f"{{i}}\\n".encode())
        os.close(descriptor)
        if i == hang:
            open("started", "w").close()
            while True:
                time.sleep(1)
        return bytes([i]) * 2_000_000

    pipex.compute(blob.map(range({ITEMS})), progress=False, scheduler="threads")
    """
)


def written(folder: Path) -> set[int]:
    """The items whose target is in ``folder``, each checked whole (loads, right content)."""
    found = set()
    for name in os.listdir(folder):
        match = re.fullmatch(r"(\d+)\.pkl", name)
        if match:
            i = int(match.group(1))
            with open(folder / name, "rb") as file:
                assert pickle.load(file) == bytes([i]) * 2_000_000, name
            found.add(i)
    return found


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_kill_9_mid_batch_leaves_no_partial_target_and_the_rerun_completes_the_rest(tmp_path):
    (tmp_path / "killed.py").write_text(KILLED)
    env = environment()
    proc = subprocess.Popen([sys.executable, "killed.py", "25"], cwd=tmp_path, env=env)
    try:
        deadline = time.monotonic() + 120
        while not (tmp_path / "started").exists():
            assert proc.poll() is None and time.monotonic() < deadline, "never started item 25"
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL

    folder = tmp_path / "out" / "blob"
    before = written(folder) if folder.exists() else set()
    assert 25 not in before
    (tmp_path / "calls.log").unlink()

    rerun = subprocess.run(
        [sys.executable, "killed.py", "-1"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert rerun.returncode == 0, rerun.stderr

    ran = [int(line) for line in (tmp_path / "calls.log").read_text().split()]
    assert sorted(ran) == sorted(set(range(ITEMS)) - before)
    assert written(folder) == set(range(ITEMS))
