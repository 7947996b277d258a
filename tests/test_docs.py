"""The python code blocks of the user docs run as written, each in turn, as a file of its own
in one fresh folder (a block opening with ``# name.py`` is saved under that name)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def blocks(doc: str) -> list[tuple[str, str]]:
    """``(file name, code)`` of each python block of ``doc``, in order."""
    found = re.findall(r"```python\n(.*?)```", (DOCS / doc).read_text(), re.S)
    named = []
    for i, code in enumerate(found):
        first = re.match(r"# ([\w.-]+\.py)\b", code)
        named.append((first.group(1) if first else f"block{i}.py", code))
    return named


def python(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PIPEX"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *sys.path])
    return subprocess.run(
        [sys.executable, *args], cwd=folder, env=env, capture_output=True, text=True, timeout=300
    )


def run_blocks(doc: str, folder: Path) -> dict[str, subprocess.CompletedProcess[str]]:
    """Save and run every python block of ``doc`` in ``folder``; each must succeed."""
    ran = {}
    for name, code in blocks(doc):
        (folder / name).write_text(code)
        proc = python(folder, name)
        assert proc.returncode == 0, f"{doc}, {name}:\n{code}\n{proc.stderr}"
        ran[name] = proc
    return ran


@pytest.mark.slow
def test_every_python_block_of_the_quickstart_runs(tmp_path):
    shutil.copy(DOCS / "examples" / "pages.py", tmp_path)  # as "Steering a big run" says

    ran = run_blocks("quickstart.md", tmp_path)

    assert ran["pipeline.py"].stdout == "(11,)\n"
    assert ran["pipeline.py"].stderr.startswith("pipex: 1 requested, 0 already done, ran 7,")
    assert ran["failing.py"].stdout.splitlines() == [
        "parse-out/parsed/b.json cannot parse b",
        "not run: report-out/report/b.txt",
    ]
    assert ran["on_a_cluster.py"].stdout == "(11,)\n"  # found done: nothing to run
    assert (tmp_path / "pipeline.svg").read_text().startswith("<svg")


@pytest.mark.slow
def test_the_cli_docs_pipeline_is_a_file_the_pipex_command_runs(tmp_path):
    (name, code), *others = blocks("cli.md")
    assert name == "pipeline.py" and others == []
    (tmp_path / name).write_text(code)

    run = python(tmp_path, "-m", "pipex", "run", "pipeline.py:build")
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("pipex: 4 requested, 0 already done, ran 8, failed 0")
    status = python(tmp_path, "-m", "pipex", "status", "pipeline.py:build", "-p", "chains=5")
    assert status.returncode == 0, status.stderr
    assert status.stdout.splitlines()[-1] == "pipex run would run 2 task(s)."
    text = (DOCS / "cli.md").read_text()
    for args in (["pipeline.py:buld"], ["pipeline:build", "-p", "chain=3"]):
        bad = python(tmp_path, "-m", "pipex", "status", *args)
        assert bad.returncode == 2
        assert f"$ pipex status {' '.join(args)}\n{bad.stderr}" in text


def test_what_the_examples_write_in_a_checkout_is_ignored_by_git():
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    written = ["out/scan/page-00000.pkl", "docs/examples/out/scan/page-00000.pkl"]
    proc = subprocess.run(
        ["git", "check-ignore", *written], cwd=ROOT, capture_output=True, text=True
    )
    assert proc.stdout.splitlines() == written
