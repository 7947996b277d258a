"""Importing pipex has no side effects, and its public names are pinned."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import pipex

ROOT = Path(__file__).resolve().parent.parent  # the folder holding the pipex package

CHECK = textwrap.dedent(
    """
    import sys
    import threading

    import pipex

    assert pipex.__file__.startswith(sys.argv[1]), pipex.__file__
    assert "prefect" not in sys.modules, "importing pipex imported prefect"
    assert "distributed" not in sys.modules, "importing pipex imported distributed"
    assert threading.active_count() == 1, threading.enumerate()
    print("import ok")
    """
)


@pytest.mark.slow
@pytest.mark.parametrize("mode", [None, "prefect+cache"])
def test_import_pipex_has_no_side_effects(tmp_path, mode):
    home, cwd = tmp_path / "home", tmp_path / "cwd"
    home.mkdir()
    cwd.mkdir()
    env = {
        k: v
        for k, v in os.environ.items()
        if k != "PIPEX" and not k.startswith(("XDG_", "DASK_", "PREFECT_"))
    }
    env.update(HOME=str(home), PYTHONPATH=str(ROOT))
    if mode is not None:  # the mode is read when used: Prefect is not imported before that
        env["PIPEX"] = mode

    proc = subprocess.run(
        [sys.executable, "-c", CHECK, str(ROOT / "pipex")],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "import ok"
    assert list(home.rglob("*")) == []
    assert list(cwd.rglob("*")) == []
    assert proc.stderr == ""


def test_public_names_are_pinned():
    assert sorted(pipex.__all__) == [
        "Expansion",
        "FileStore",
        "FsspecStore",
        "Mapped",
        "MemoryStore",
        "ModeError",
        "Node",
        "PipelineError",
        "PipexError",
        "SQLiteStore",
        "SerializerError",
        "Status",
        "Store",
        "StoreError",
        "Target",
        "TargetCollisionError",
        "TargetError",
        "Targets",
        "TaskFunction",
        "__version__",
        "compute",
        "context",
        "expand",
        "flow",
        "history",
        "invalidate",
        "report",
        "restore",
        "status",
        "task",
        "visualize",
    ]
    assert len(set(pipex.__all__)) == len(pipex.__all__)
    for name in pipex.__all__:
        assert getattr(pipex, name) is not None
    public = {n for n in vars(pipex) if not n.startswith("_")}
    modules = {n for n in public if type(getattr(pipex, n)).__name__ == "module"}
    assert public - modules <= set(pipex.__all__)


def test_the_errors_share_one_root_and_match_the_builtins():
    assert issubclass(pipex.TargetError, pipex.PipexError)
    assert issubclass(pipex.TargetError, ValueError)
    assert issubclass(pipex.TargetCollisionError, pipex.TargetError)
    assert issubclass(pipex.StoreError, OSError)
    assert issubclass(pipex.ModeError, pipex.PipexError)
    assert issubclass(pipex.PipelineError, pipex.PipexError)
    assert issubclass(pipex.PipelineError, ExceptionGroup)
