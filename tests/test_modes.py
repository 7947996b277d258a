"""The PIPEX modes: the same script in cache and off; the Prefect modes without Prefect.

With Prefect installed, tests/integration/test_prefect.py runs the same script in all modes.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import pytest

import pipex
from tests.files import LEDGER

ROOT = Path(__file__).resolve().parent.parent  # the folder holding the pipex package

SCRIPT = textwrap.dedent(
    """
    import os

    import pipex

    def say(line):  # one write per line: tasks run in threads or in other processes
        os.write(1, f"{line}\\n".encode())

    @pipex.task(target="{path}/square/{x}.pkl")
    def square(x):
        say(f"ran square {x}")
        return x * x

    @pipex.task(target="{path}/total.pkl")
    def total(values):
        say("ran total")
        return sum(values)

    @pipex.flow
    def main():
        with pipex.context(path="out"):
            node = total([square(x) for x in range(3)])
        print("node is data:", not isinstance(node, pipex.Node), flush=True)
        (result,) = pipex.compute(node, load=True)
        print("result", result, flush=True)
        print("passed through:", pipex.compute(41, [node], load=True), flush=True)

    if __name__ == "__main__":  # the Prefect modes' Dask task runner starts worker processes
        main()
    """
)


# Runs the script named by its first argument as __main__ with Prefect made unimportable, as
# on a machine without the prefect extra (whether or not this one has it).
WITHOUT_PREFECT = (
    "import runpy, sys; sys.modules['prefect'] = sys.modules['prefect_dask'] = None; "
    "runpy.run_path(sys.argv.pop(1), run_name='__main__')"
)


def run_script(
    tmp_path: Path, mode: str | None, *, without_prefect: bool = False, text: str = SCRIPT
) -> tuple[subprocess.CompletedProcess[str], Path]:
    """Run ``text`` with PIPEX=mode (unset if None) in tmp_path/run; return it and the folder."""
    script = tmp_path / "pipeline.py"
    script.write_text(text)
    folder = tmp_path / "run"
    folder.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k != "PIPEX"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    if mode is not None:
        env["PIPEX"] = mode
    shim = ["-c", WITHOUT_PREFECT] if without_prefect else []
    proc = subprocess.run(
        [sys.executable, *shim, str(script)],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return proc, folder


def ran(proc: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in proc.stdout.splitlines() if line.startswith("ran ")]


def files_under(folder: Path) -> list[str]:
    """Every file and folder below ``folder`` but the run ledger's, sorted."""
    return sorted(
        str(p.relative_to(folder))
        for p in folder.rglob("*")
        if LEDGER not in p.relative_to(folder).parts
    )


@pytest.mark.slow
@pytest.mark.parametrize("mode", [None, "cache"], ids=["unset", "cache"])
def test_cache_mode_writes_targets_and_skips_on_the_second_run(tmp_path, mode):
    first, folder = run_script(tmp_path, mode)
    assert first.returncode == 0, first.stderr
    assert sorted(ran(first)) == ["ran square 0", "ran square 1", "ran square 2", "ran total"]
    assert "result 5" in first.stdout
    assert "node is data: False" in first.stdout
    assert pickle.loads((folder / "out" / "total.pkl").read_bytes()) == 5
    squares = [
        pickle.loads((folder / "out" / "square" / f"{x}.pkl").read_bytes()) for x in range(3)
    ]
    assert squares == [0, 1, 4]

    second, _ = run_script(tmp_path, mode)
    assert second.returncode == 0, second.stderr
    assert ran(second) == []
    assert "result 5" in second.stdout


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["off", "do_nothing", "OFF"])
def test_off_mode_runs_the_functions_directly_and_writes_nothing(tmp_path, mode):
    proc, folder = run_script(tmp_path, mode)

    assert proc.returncode == 0, proc.stderr
    assert sorted(ran(proc)) == ["ran square 0", "ran square 1", "ran square 2", "ran total"]
    assert "node is data: True" in proc.stdout
    assert "result 5" in proc.stdout
    assert "passed through: (41, [5])" in proc.stdout
    assert files_under(folder) == []

    again, _ = run_script(tmp_path, mode)
    assert len(ran(again)) == 4  # no cache: everything runs again


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["prefect", "prefect+cache", "prefect.cache"])
def test_without_prefect_the_prefect_modes_say_how_to_install_it(tmp_path, mode):
    proc, folder = run_script(tmp_path, mode, without_prefect=True)

    assert proc.returncode != 0
    assert "ImportError" in proc.stderr
    assert "pip install 'dask-pipex[prefect]'" in proc.stderr
    assert ran(proc) == []
    assert files_under(folder) == []


OUTSIDE_A_FLOW = textwrap.dedent(
    """
    import pipex

    @pipex.task(target="{path}/one.pkl")
    def one():
        print("ran one", flush=True)
        return 1

    node = one()  # building nodes needs no Prefect
    print("built", isinstance(node, pipex.Node), flush=True)
    pipex.compute(node)
    """
)


@pytest.mark.slow
def test_without_prefect_prefect_cache_fails_when_computing_not_when_building(tmp_path):
    proc, folder = run_script(tmp_path, "prefect+cache", without_prefect=True, text=OUTSIDE_A_FLOW)

    assert proc.returncode != 0
    assert "built True" in proc.stdout
    assert "pip install 'dask-pipex[prefect]'" in proc.stderr
    assert ran(proc) == []
    assert files_under(folder) == []


@pytest.mark.slow
def test_an_unknown_mode_is_refused_with_a_clear_error(tmp_path):
    proc, folder = run_script(tmp_path, "fast-please")

    assert proc.returncode != 0
    assert "pipex.exceptions.ModeError" in proc.stderr
    assert "PIPEX='fast-please' is not a pipex mode" in proc.stderr
    assert "off, cache, prefect, prefect+cache" in proc.stderr
    assert ran(proc) == []
    assert files_under(folder) == []


def test_the_mode_is_read_when_a_task_is_called_not_at_import(workdir, monkeypatch):
    calls: Counter[str] = Counter()

    @pipex.task(target="{path}/double/{x}.pkl")
    def double(x):
        calls["double"] += 1
        return 2 * x

    monkeypatch.setenv("PIPEX", "off")
    assert double(4) == 8
    assert calls == {"double": 1}
    assert pipex.compute(8) == (8,)

    monkeypatch.setenv("PIPEX", "cache")
    node = double(4)
    assert isinstance(node, pipex.Node)
    assert calls == {"double": 1}
    assert pipex.compute(node, load=True) == (8,)
    assert calls == {"double": 2}

    monkeypatch.delenv("PIPEX")
    assert isinstance(double(4), pipex.Node)

    monkeypatch.setenv("PIPEX", "nonsense")
    with pytest.raises(pipex.ModeError, match="PIPEX='nonsense'"):
        double(4)
    assert calls == {"double": 2}
    assert isinstance(pipex.ModeError("x"), ValueError)


@pytest.mark.parametrize("mode", ["cache", "off"])
def test_flow_runs_the_function_unchanged(workdir, monkeypatch, mode):
    monkeypatch.setenv("PIPEX", mode)
    calls: Counter[str] = Counter()

    @pipex.task(target="{path}/inc/{x}.pkl")
    def inc(x):
        calls["inc"] += 1
        return x + 1

    @pipex.flow
    def bare(x, *, extra=0):
        """A flow."""
        calls["bare"] += 1
        return pipex.compute(inc(x), load=True)[0] + extra

    @pipex.flow(name="with-options", retries=2)
    def configured(x):
        calls["configured"] += 1
        return x, inc(x)

    assert bare(1, extra=10) == 12
    assert bare.__name__ == "bare"
    assert bare.__doc__ == "A flow."
    x, result = configured(5)
    assert x == 5
    if mode == "off":
        assert result == 6
    else:
        assert isinstance(result, pipex.Node)
        assert pipex.compute(result, load=True) == (6,)
    assert calls == {"bare": 1, "inc": 2, "configured": 1}


def test_flow_refuses_an_unknown_mode_before_running(monkeypatch):
    monkeypatch.setenv("PIPEX", "nonsense")
    calls = []

    @pipex.flow
    def main():
        calls.append(1)

    with pytest.raises(pipex.ModeError):
        main()
    assert calls == []
