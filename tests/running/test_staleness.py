"""Opt-in staleness: a task's ``version`` and ``pipex.rerun: code``, read from the ledger."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import dask
import pytest

import pipex
from pipex.core.code import fingerprint
from pipex.core.plan import resolve
from pipex.running import staleness

ROOT = Path(__file__).resolve().parents[2]


def three_steps(calls: list[tuple[str, int]], version: str | None):
    """``a -> b -> c`` chains of 3; ``b`` has ``version``; a shared ``a`` feeds a second c."""

    @pipex.task(target="out/a/{i}.pkl")
    def a(i: int) -> int:
        calls.append(("a", i))
        return i

    @pipex.task(target="out/b/{i}.pkl", version=version)
    def b(x: int, i: int) -> int:
        calls.append(("b", i))
        return x + 1

    @pipex.task(target="out/c/{i}.pkl")
    def c(x: int, i: int) -> int:
        calls.append(("c", i))
        return x * 10

    @pipex.task(target="out/side/{i}.pkl")
    def side(x: int, i: int) -> int:  # reads a, not b: not downstream of b
        calls.append(("side", i))
        return -x

    return [c(b(a(i), i), i) for i in range(3)] + [side(a(i), i) for i in range(3)]


def test_bumping_a_version_reruns_exactly_that_step_and_its_downstream(workdir):
    calls: list[tuple[str, int]] = []
    pipex.compute(three_steps(calls, "1"), progress=False)
    assert len(calls) == 12
    calls.clear()
    pipex.compute(three_steps(calls, "1"), progress=False)
    assert calls == []  # the same version: all done

    roots = three_steps(calls, "2")
    assert pipex.status(roots).steps["c"].to_run == 3  # status sees it too
    (results,) = pipex.compute(roots, progress=False)
    assert sorted(calls) == [("b", i) for i in range(3)] + [("c", i) for i in range(3)]
    assert [r.load() for r in results[:3]] == [10, 20, 30]
    calls.clear()
    pipex.compute(three_steps(calls, "2"), progress=False)
    assert calls == []  # recorded under "2" now


def test_a_version_added_to_a_task_reruns_it_once_and_none_reads_nothing(workdir):
    calls: list[tuple[str, int]] = []
    pipex.compute(three_steps(calls, None), progress=False)
    calls.clear()
    roots = three_steps(calls, None)
    assert staleness.check(roots) is None  # no opt-in: resolution does not read the ledger
    os.remove(workdir / ".pipex" / "ledger.sqlite")
    assert pipex.compute(roots, progress=False).summary.ran == 0

    pipex.compute(three_steps(calls, "1"), progress=False)
    assert calls == []  # the ledger has no record of these targets: done (Make semantics)


def test_a_stale_target_below_a_missing_one_reruns_and_a_fresh_one_does_not(workdir):
    calls: list[tuple[str, int]] = []
    pipex.compute(three_steps(calls, "1"), progress=False)
    os.remove(workdir / "out" / "c" / "0.pkl")
    calls.clear()
    plan = resolve(roots := three_steps(calls, "1"), stale=staleness.check(roots))
    assert sorted(n.key for n in plan.missing) == ["c-out/c/0.pkl"]
    with dask.config.set({"pipex.rerun": "code"}):  # same code: nothing is stale
        assert len(resolve(roots, stale=staleness.check(roots)).missing) == 1
    with dask.config.set({"pipex.rerun": "later"}), pytest.raises(ValueError, match="rerun"):
        staleness.check(roots)


MODULE = """
import pipex

LOG = {log!r}


@pipex.task(target="out/double/{{i}}.pkl")
def double(i):
    with open(LOG, "a") as log:
        log.write(f"double {{i}}\\n")
    return i * {factor}  # a comment


@pipex.task(target="out/total/{{i}}.pkl")
def total(x, i):
    with open(LOG, "a") as log:
        log.write(f"total {{i}}\\n")
    return x + 1


def build():
    return [total(double(i), i) for i in range(2)]
"""

RUN = """
import sys
import time
import pipex
import steps
print(pipex.compute(steps.build(), progress=False).summary.ran)
"""


def test_rerun_code_reruns_after_an_edit_to_the_functions_source(tmp_path):
    log = tmp_path / "calls.log"
    module = tmp_path / "steps.py"
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}"}
    env.pop("PIPEX", None)

    def run(factor: str, rerun: str | None = None) -> list[str]:
        module.write_text(MODULE.format(log=str(log), factor=factor))
        if rerun is not None:
            env["DASK_PIPEX__RERUN"] = rerun
        proc = subprocess.run(
            [sys.executable, "-c", RUN], cwd=tmp_path, env=env, capture_output=True, text=True
        )
        assert proc.returncode == 0, proc.stderr
        lines = sorted(log.read_text().splitlines()) if log.exists() else []
        log.unlink(missing_ok=True)
        return lines

    assert run("2") == ["double 0", "double 1", "total 0", "total 1"]
    assert run("3") == []  # the default: a target that exists is done
    assert run("3", rerun="code") == ["double 0", "double 1", "total 0", "total 1"]
    assert run("3") == []
    # a comment or a blank line is not a change of code
    module_text = MODULE.format(log=str(log), factor="3").replace("# a comment", "# other")
    module.write_text(module_text + "\n\n")
    assert run("3", rerun="code") == []


def _plain():
    def f(x):
        return x * 2

    return f


def _commented():
    def f(x):
        # a comment

        return x * 2  # another

    return f


def _changed():
    def f(x):
        return x * 3

    return f


def test_the_fingerprint_ignores_layout_and_sees_code():
    assert fingerprint(_plain()) == fingerprint(_commented()) != fingerprint(_changed())
    assert fingerprint(lambda x: x) == fingerprint(lambda x: x)
    with pytest.raises(TypeError, match="version"):
        pipex.task(version=2.5)(_plain())
    assert pipex.task(version=2)(_plain()).version == "2"


KILLED = """
import sys, time
import pipex
from pipex.running import ledger

ledger.FLUSH_SECONDS = 600  # the outcomes stay buffered until the run ends: it never does

@pipex.task(target="out/made/{i}.pkl", version=sys.argv[1])
def made(i):
    with open("calls.log", "a") as log:
        log.write(f"made {i}\\n")
    return i

@pipex.task(target="out/hang/{i}.pkl")
def hang(i):
    if sys.argv[2] == "hang":
        time.sleep(600)
    return i

pipex.compute([made(0), hang(0)], scheduler="threads", progress=False)
"""


def run_killed_midway(folder: Path, version: str) -> None:
    """Run :data:`KILLED` in a subprocess, ``kill -9`` it once ``made``'s target committed
    (its outcome still buffered, not in the ledger)."""
    (folder / "killed.py").write_text(KILLED)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("PIPEX", None)
    proc = subprocess.Popen([sys.executable, "killed.py", version, "hang"], cwd=folder, env=env)
    try:
        deadline = time.monotonic() + 120
        while not (folder / "out" / "made" / "0.pkl").exists():
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        proc.kill()  # SIGKILL: no cleanup, no flush
        proc.wait()


def test_a_target_written_by_a_killed_run_reruns_after_a_version_bump(workdir):
    run_killed_midway(workdir, "1")
    assert (workdir / "calls.log").read_text() == "made 0\n"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("PIPEX", None)

    def again(version: str) -> str:
        (workdir / "calls.log").unlink(missing_ok=True)
        args = [sys.executable, "killed.py", version, "no"]
        proc = subprocess.run(args, cwd=workdir, env=env, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        log = workdir / "calls.log"
        return log.read_text() if log.exists() else ""

    assert again("2") == "made 0\n"  # unknown version: stale, not silently current
    assert again("2") == ""  # recorded now


def test_a_target_of_a_killed_run_restored_after_a_rerun_has_no_known_version_again(workdir):
    run_killed_midway(workdir, "1")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("PIPEX", None)

    def again() -> str:
        (workdir / "calls.log").unlink(missing_ok=True)
        args = [sys.executable, "killed.py", "1", "no"]
        proc = subprocess.run(args, cwd=workdir, env=env, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        log = workdir / "calls.log"
        return log.read_text() if log.exists() else ""

    (removed,) = pipex.invalidate("out/made/0.pkl")
    assert again() == "made 0\n"  # missing: written again, and recorded under version 1
    assert [t.path for t in pipex.restore()] == [removed.path]
    assert again() == "made 0\n"  # the restored bytes are the killed run's: version unknown
    assert again() == ""
