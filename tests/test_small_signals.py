"""Small lies and silences (issue 24, items 7, 8, 12, 14, 15): what pipex says matches what
it did and what the user can do."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

import pipex
from pipex.cli import main
from pipex.stores import owners
from tests.integration.processes import environment

ROOT = Path(__file__).resolve().parent.parent

PIPELINE = textwrap.dedent(
    """
    import pipex

    @pipex.task(target="{path}/pages/{i}.pkl")
    def page(i: int, n: int):
        with open("calls.log", "a") as log:
            log.write(f"{i}\\n")
        return i * n

    def build(n: int = 3, path: str = "out"):
        with pipex.context(path=path):
            return [page(i, n) for i in range(n)]
    """
)


@pytest.fixture
def cli(workdir):
    (workdir / "pipeline.py").write_text(PIPELINE)
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None):
        return runner.invoke(main, list(args), input=input, catch_exceptions=False)

    return invoke


def test_invalidate_prints_the_rerun_command_with_its_settings_and_it_reruns_them(cli, workdir):
    args = ("pipeline.py:build", "-p", "n=4", "-p", "path=other out")
    assert cli("run", *args, "--no-progress").exit_code == 0
    (workdir / "calls.log").unlink()
    shown = cli("invalidate", *args, "--match", "*/pages/1.pkl", "--yes").output
    command = re.search(r"`pipex run ([^`]*)` reruns them", shown).group(1)
    assert shlex.split(command) == list(args)
    result = subprocess.run(  # run as printed, through a shell
        f"{shlex.quote(sys.executable)} -m pipex run {command} --no-progress",
        shell=True,
        cwd=workdir,
        env=environment(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert (workdir / "calls.log").read_text().split() == ["1"]  # that target, not others
    assert (workdir / "other out" / "pages" / "1.pkl").exists()


def test_an_unconfirmed_invalidate_never_says_it_is_removing(cli, workdir):
    assert cli("run", "pipeline.py:build", "-p", "n=5", "--no-progress").exit_code == 0
    shown = cli("invalidate", "pipeline.py:build", "-p", "n=5", "--match", "*", "--ask-above", "2")
    assert shown.exit_code == 2
    assert "removing" not in shown.output
    assert "would move to the trash:" in shown.output
    assert "nothing removed" in shown.output
    assert len(list((workdir / "out" / "pages").iterdir())) == 5


def test_invalidate_of_something_it_cannot_select_names_what_it_takes(workdir):
    with pytest.raises(TypeError) as info:
        pipex.invalidate(42)
    message = str(info.value)
    assert "not int 42" in message
    assert "a node, a pipex.Target or a location glob, or an iterable of them" in message


def test_owners_are_shown_one_way_whatever_the_form_of_their_record():
    owner = owners.new_owner()
    record = json.loads(owner)
    short = owners.from_mark(owners.mark(owner))  # the form kept beside a claim
    assert owners.shown(owner) == owners.shown(short)
    assert owners.shown(owner) == f"process {os.getpid()} on {record['host']}"
    old = time.time() - 3600
    remote = json.dumps({"host": "elsewhere", "pid": 7, "start": 1.0, "id": "x"})
    said = owners.why_expired((remote, old), 60)
    assert said.startswith("its owner, process 7 on elsewhere, renewed it")


def test_clean_with_nothing_to_clean_does_not_say_it_removed_something(cli):
    assert cli("run", "pipeline.py:build", "--no-progress").exit_code == 0
    shown = cli("clean", "pipeline.py:build").output
    assert "Removed" not in shown
    assert shown.strip().endswith("Nothing to remove.")


def test_concepts_name_the_store_primitives_that_stores_implement():
    from pipex.stores.base import Store

    primitives = ("exists_many", "open", "stage", "commit", "delete")
    for name in primitives:  # each raises or is abstract on the base class: a primitive
        assert name in Store.__dict__, name
    for doc in ("concepts.md", "architecture.md"):
        text = (ROOT / "docs" / doc).read_text()
        assert "primitives: `exists_many`, `load`, `save`" not in text, doc
        assert all(f"`{name}`" in text for name in primitives), doc


def test_restore_of_a_location_below_the_store_root_finds_the_trash_above(workdir, caplog):
    """Item 11: the trash of URL targets is at their bucket's root."""

    @pipex.task(target="{path}/pages/{i}.pkl")
    def page(i):
        return i

    with pipex.context(path="memory://restore-above/run"):
        nodes = [page(i) for i in range(3)]
    pipex.compute(nodes, progress=False)
    removed = pipex.invalidate(nodes[1])
    assert [str(t) for t in removed] == ["memory://restore-above/run/pages/1.pkl"]
    assert not nodes[1].target.exists()

    restored = pipex.restore("memory://restore-above/run")
    assert [str(t) for t in restored] == ["memory://restore-above/run/pages/1.pkl"]
    assert nodes[1].target.load() == 1

    assert pipex.restore("memory://restore-above/run") == []  # nothing left: said where
    said = [r.getMessage() for r in caplog.records if "nothing to restore" in r.getMessage()]
    assert said and "memory://restore-above/.pipex-trash" in said[-1]


def test_removing_version_from_a_task_says_once_that_its_check_is_off(workdir):
    """Item 13: the ledger recorded version 2; the task no longer has a version."""

    def make(version):
        @pipex.task(target="{path}/pages/{i}.pkl", version=version, name="page")
        def page(i):
            return i

        return page

    pipex.compute([make("2")(i) for i in range(3)], progress=False)
    with pytest.warns(UserWarning, match=r"step page has no version now.*version='2'"):
        pipex.compute([make(None)(i) for i in range(3)], progress=False)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # said once
        pipex.compute([make(None)(i) for i in range(3)], progress=False)
