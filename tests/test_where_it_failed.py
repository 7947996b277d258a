"""Where it failed (issue 24, item 5): ``pipex run`` shows each failure group with the
user's file:line and the user's frames of its traceback (not pipex's, dask's or click's);
``--stop`` the same way; ``pipex log`` the traceback of each group or of a target."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from click.testing import CliRunner

from pipex.cli import main
from pipex.core.frames import users, where
from tests.integration.processes import environment

PIPELINE = textwrap.dedent(
    """
    import pipex
    import helpers

    @pipex.task(target="{path}/pages/{i}.pkl")
    def read_page(i):
        return helpers.parse(i)

    def build(n: int = 6):
        with pipex.context(path="out"):
            return [read_page(i) for i in range(n)]
    """
)

HELPERS = textwrap.dedent(
    """
    def parse(i):
        if i % 2:
            raise ValueError(f"page {i} is unreadable")
        return i
    """
)

NOT_USERS = ("pipex/core", "pipex/cli", "site-packages", "click", "dask/")


@pytest.fixture
def folder(workdir, monkeypatch):
    (workdir / "pipeline.py").write_text(PIPELINE)
    (workdir / "helpers.py").write_text(HELPERS)
    monkeypatch.syspath_prepend(str(workdir))
    return workdir


def pipex_cli(folder, *args):
    return subprocess.run(
        [sys.executable, "-m", "pipex", *args],
        cwd=folder,
        env=environment(),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_run_shows_the_users_line_and_frames_of_each_group(folder):
    run = pipex_cli(folder, "run", "pipeline.py:build", "--no-progress")
    assert run.returncode == 1, run.stderr
    assert "read_page: 3 failed with ValueError: page <n> is unreadable" in run.stderr
    assert 'at helpers.py:4, in parse: raise ValueError(f"page {i} is unreadable")' in run.stderr
    assert "Traceback of read_page (ValueError), your code only:" in run.stderr
    assert f'File "{folder / "pipeline.py"}", line 7, in read_page' in run.stderr
    assert f'File "{folder / "helpers.py"}", line 4, in parse' in run.stderr
    for other in NOT_USERS:
        assert other not in run.stderr, other


def test_stop_shows_the_first_failure_the_same_way_not_a_raw_traceback(folder):
    run = pipex_cli(folder, "run", "pipeline.py:build", "--no-progress", "--stop")
    assert run.returncode == 1, run.stderr
    assert "the run stopped there" in run.stderr
    assert "read_page: failed with ValueError: page " in run.stderr
    assert "at helpers.py:4, in parse" in run.stderr
    assert len(run.stderr.splitlines()) < 20, run.stderr
    for other in NOT_USERS:
        assert other not in run.stderr, other


def test_log_shows_where_each_group_failed_and_a_targets_whole_traceback(folder):
    runner = CliRunner()
    runner.invoke(main, ["run", "pipeline.py:build", "--no-progress"])
    log = runner.invoke(main, ["log", "--traceback"], catch_exceptions=False)
    assert "at helpers.py:4, in parse" in log.output
    assert "Traceback of read_page (ValueError), your code only:" in log.output
    assert f'File "{folder / "helpers.py"}", line 4, in parse' in log.output
    assert "pipex/core/worker.py" not in log.output

    one = runner.invoke(main, ["log", "--target", "out/pages/3.pkl"], catch_exceptions=False)
    assert "latest run failed (read_page) with ValueError: page 3 is unreadable" in one.output
    assert "pipex/core/worker.py" in one.output  # the whole traceback, as recorded
    fine = runner.invoke(main, ["log", "--target", "out/pages/2.pkl"], catch_exceptions=False)
    assert "its latest run did not fail" in fine.output


def test_users_frames_of_a_chained_traceback():
    text = textwrap.dedent(
        """\
        Traceback (most recent call last):
          File "/usr/lib/python3.11/site-packages/dask/local.py", line 10, in run
            result = fn()
          File "/home/me/project/steps.py", line 12, in load
            data = json.load(f)
          File "/usr/lib/python3.11/json/__init__.py", line 293, in load
            return loads(fp.read())
        ValueError: bad json

        The above exception was the direct cause of the following exception:

        Traceback (most recent call last):
          File "/usr/lib/python3.11/site-packages/click/core.py", line 911, in invoke
            return callback()
          File "/usr/lib/python3.11/site-packages/dask/base.py", line 5, in compute
            raise RuntimeError("wrapped")
        RuntimeError: wrapped
        """
    )
    shown = users(text)
    assert "steps.py" in shown and "click" not in shown and "json/__init__" not in shown
    assert 'dask/base.py", line 5' in shown  # no frame of the user's: where it was raised
    assert "The above exception was the direct cause" in shown
    found = where(text)
    assert found is not None and (found.file, found.line) == ("/home/me/project/steps.py", 12)
    assert found.source == "data = json.load(f)"
