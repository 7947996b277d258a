"""An invalidation killed while it copies targets into the trash leaves a folder there that
no invalidation of the index names: ``pipex clean`` finds it, says its size and removes it;
``restore`` never uses it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

import pipex
from pipex.cli import main
from pipex.steer.clean import leftovers
from pipex.steer.graph import Graph
from pipex.stores.atomic import temporary_name
from tests.steer.conftest import files

ROOT = Path(__file__).resolve().parents[2]

BIG = textwrap.dedent(
    """
    import os

    import pipex


    @pipex.task(target="out/big/{i}.bin", save=False)
    def big(i: int, target: str) -> None:
        with open(target, "wb") as file:
            file.write(os.urandom(256 * 1024))


    def build(n: int = 400):
        return [big(i) for i in range(n)]
    """
)


def cut_short(pid: int) -> str:
    """The id of an invalidation by process ``pid`` of this host, as ``trash.new_id`` makes
    them (the writer named in it), written so that tests run on f10bd86 too."""
    host = temporary_name("x").split(".")[2]
    return f"20261206T120000-{host}-{pid}-0badc0de"


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_kill_mid_copy_leaves_a_folder_clean_removes_and_restore_ignores(chains):
    pipeline = chains(3)
    pipeline.compute()
    pipex.invalidate(pipeline.roots[0])  # a whole invalidation: restore puts it back
    entry = f".pipex-trash/{cut_short(dead_pid())}"
    # What a kill -9 while copying out/score/1.pkl and 2.pkl leaves: one full copy, one
    # partial temporary, no entry in the index; both targets still in place.
    Path(f"{entry}/out/score").mkdir(parents=True)
    Path(f"{entry}/out/score/1.pkl").write_bytes(Path("out/score/1.pkl").read_bytes())
    partial = Path(f"{entry}/out/score") / temporary_name("2.pkl")
    partial.write_bytes(b"x" * 1000)
    targets = files("out")

    assert [t.path for t in pipex.restore()] == ["out/score/0.pkl"]
    assert Path(entry).is_dir() and partial.exists()  # restore never used it
    assert files("out") == {**targets, "score/0.pkl": files("out")["score/0.pkl"]}
    assert pipex.restore() == []

    found = leftovers(Graph(pipeline.roots).nodes)
    (orphan,) = found.orphans[pipeline.roots[0].target.store]
    assert orphan.size == Path("out/score/1.pkl").stat().st_size + 1000
    assert found.orphaned == orphan.size and found.trashed == 0
    found.remove()
    assert not Path(".pipex-trash").exists()
    assert files("out") == {**targets, "score/0.pkl": files("out")["score/0.pkl"]}


def test_an_invalidation_being_written_is_no_orphan(chains):
    pipeline = chains(2)
    pipeline.compute()
    Path(f".pipex-trash/{cut_short(os.getpid())}/out/score").mkdir(parents=True)
    Path(f".pipex-trash/{cut_short(os.getpid())}/out/score/1.pkl").write_bytes(b"copying")
    found = leftovers(Graph(pipeline.roots).nodes)
    assert found.orphans == {}
    found.remove()
    assert Path(f".pipex-trash/{cut_short(os.getpid())}/out/score/1.pkl").exists()


@pytest.mark.slow
def test_killing_pipex_invalidate_mid_copy_then_clean(workdir):
    (workdir / "big.py").write_text(BIG)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), *sys.path])}
    command = [sys.executable, "-m", "pipex"]
    subprocess.run([*command, "run", "big.py:build", "--no-progress"], env=env, check=True)
    before = files("out")
    trash = workdir / ".pipex-trash"

    killed = subprocess.Popen(
        [*command, "invalidate", "big.py:build", "--step", "big", "--yes"],
        env=env,
        stdout=subprocess.DEVNULL,
    )
    while killed.poll() is None and not any(trash.glob("*/out/big/[0-9]*.bin")):
        time.sleep(0.001)  # until the first copy is in the trash
    killed.send_signal(signal.SIGKILL)
    assert killed.wait() == -signal.SIGKILL, "the invalidation ended before it could be killed"
    assert not (trash / "index.json").exists()
    assert files("out") == before  # nothing is lost: every target is still in place
    left = sum(p.stat().st_size for p in trash.rglob("*") if p.is_file())
    assert left > 0

    runner = CliRunner()
    shown = runner.invoke(main, ["restore", "big.py:build"]).output
    assert "Nothing to restore" in shown
    shown = runner.invoke(main, ["clean", "big.py:build", "--dry-run"]).output
    assert "1 invalidation(s) cut short left" in shown, shown
    assert f"{left / 1e6:.1f} MB" in shown or f"{left / 1e3:.1f} kB" in shown, shown
    assert trash.exists()
    shown = runner.invoke(main, ["clean", "big.py:build"]).output
    assert "removing the folder of an invalidation cut short" in shown, shown
    assert not trash.exists()
    assert files("out") == before
