"""The ``pipex`` command on a user's pipeline, through click's CliRunner and one subprocess."""

from __future__ import annotations

import fcntl
import os
import signal
import struct
import subprocess
import sys
import termios
import textwrap
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipex.cli import main

ROOT = Path(__file__).resolve().parent.parent

PIPELINE = textwrap.dedent(
    """
    import pipex


    def record(step, i):
        with open("calls.log", "a") as log:
            log.write(f"{step} {i}\\n")


    @pipex.task(target="{path}/first/{i}.pkl")
    def first(i: int) -> int:
        record("first", i)
        if i in BAD:
            raise ValueError(f"bad input {i}")
        return i


    @pipex.task(target="{path}/second/{i}.pkl")
    def second(x: int, i: int) -> int:
        record("second", i)
        return x + 1


    BAD: set[int] = set()


    def build(chains: int = 4, path: str = "out", bad: int = -1, collide: bool = False):
        if chains > 1000:
            raise ValueError("too many chains")
        BAD.add(bad)
        with pipex.context(path=path):
            nodes = [second(first(i), i) for i in range(chains)]
            if collide:  # a different call rendering out/second/0.pkl
                nodes.append(second(first(1), 0))
        return nodes
    """
)


@pytest.fixture
def cli(workdir):
    """Runs ``pipex ARGS`` in the test's folder, where pipeline.py defines ``build``."""
    (workdir / "pipeline.py").write_text(PIPELINE)
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None):
        return runner.invoke(main, list(args), input=input, catch_exceptions=False)

    return invoke


def calls(folder: Path = Path()) -> list[str]:
    log = folder / "calls.log"
    lines = log.read_text().splitlines() if log.exists() else []
    log.unlink(missing_ok=True)
    return sorted(lines)


def test_status_then_run_runs_what_status_said(cli):
    result = cli("status", "pipeline.py:build", "-p", "chains=3", "--list")
    assert result.exit_code == 0, result.output
    assert "total      0       6       0            0" in result.output
    to_run = sorted(line.split()[-1] for line in result.output.splitlines() if "to run /" in line)
    assert calls() == []

    result = cli("run", "pipeline.py:build", "-p", "chains=3", "--no-progress")
    assert result.exit_code == 0, result.output
    assert "ran 6, failed 0" in result.output
    ran = calls()
    assert len(ran) == len(to_run) == 6
    assert to_run == sorted(
        str(Path(f"out/{s}/{i}.pkl").resolve()) for s, i in map(str.split, ran)
    )

    result = cli("status", "pipeline.py:build", "-p", "chains=3")
    assert "Nothing to run" in result.output
    assert result.output.splitlines()[:5] == [
        "step    done  to run  failed  not checked",
        "first      0       0       0            3",  # below the done second ones
        "second     3       0       0            0",
        "-----------------------------------------",
        "total      3       0       0            3",
    ]


def test_run_exits_1_on_task_failures(cli):
    result = cli("run", "pipeline.py:build", "-p", "bad=2", "--no-progress")
    assert result.exit_code == 1
    assert "bad input 2" in result.output
    assert "ran 6, failed 1, not run 1" in result.output


def test_run_skip_failed_then_log_shows_runs_failures_and_slow_steps(cli):
    assert "No run ledger yet" in cli("log").output
    cli("run", "pipeline.py:build", "-p", "bad=2", "--no-progress")
    calls()

    skipped = cli("run", "pipeline.py:build", "-p", "bad=2", "--skip-failed", "--no-progress")
    assert skipped.exit_code == 0, skipped.output
    assert calls() == []
    assert "skipped 2 (failed last time, or need a task that did)" in skipped.output
    assert "  skipped " + str(Path("out/first/2.pkl").resolve()) in skipped.output

    for args in (("log",), ("log", "pipeline.py:build")):
        shown = cli(*args)
        assert shown.exit_code == 0, shown.output
        lines = shown.output.splitlines()
        assert lines[0] == "Recent runs"  # plain when piped: no colours, no boxes
        assert "\x1b[" not in shown.output and "┃" not in shown.output
        assert lines[1].split() == [
            *("run", "ended", "started", "seconds", "ran", "failed", "not", "run")
        ]
        assert lines[2].split()[1] == "finished"
        assert lines[2].split()[-3:] == ["6", "1", "1"]
        assert "  first: failed with ValueError: bad input 2" in shown.output
        assert "Slowest steps" in shown.output


def test_log_of_an_entry_shows_only_that_pipelines_runs(cli):
    cli("run", "pipeline.py:build", "--no-progress")
    cli("run", "pipeline.py:build", "-p", "path=elsewhere", "-p", "chains=2", "--no-progress")

    def ran(*args: str) -> list[str]:
        lines = cli("log", *args).output.split("Failing now")[0].splitlines()[2:]
        return [line.split()[-3] for line in lines]

    assert ran() == ["4", "8"]  # the working directory's ledger: both pipelines
    assert ran("pipeline.py:build") == ["8"]
    assert ran("pipeline.py:build", "-p", "path=elsewhere", "-p", "chains=2") == ["4"]


HANGING = textwrap.dedent(
    """
    import os, time
    import pipex

    @pipex.task(target="out/quick/{i}.pkl")
    def quick(i):
        return i

    @pipex.task(target="out/slow/{i}.pkl")
    def slow(x, i):
        open("started", "w").close()
        while not os.path.exists("release"):
            time.sleep(0.05)
        return x

    pipex.compute([slow(quick(i), i) for i in range(2)], scheduler="threads", progress=False)
    """
)


def test_log_shows_a_killed_run_and_an_interrupted_one(cli, workdir):
    (workdir / "hanging.py").write_text(HANGING)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    def stop(how: int) -> None:
        Path("started").unlink(missing_ok=True)
        proc = subprocess.Popen([sys.executable, "hanging.py"], cwd=workdir, env=env)
        try:
            deadline = time.monotonic() + 120
            while not Path("started").exists():
                assert proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.05)
            proc.send_signal(how)
            if how == signal.SIGINT:  # Ctrl-C: it records that, then waits for its threads
                time.sleep(1)
                Path("release").touch()
            proc.wait(timeout=120)
        finally:
            proc.kill()
            proc.wait()
            Path("release").unlink(missing_ok=True)

    stop(signal.SIGKILL)
    stop(signal.SIGINT)
    lines = cli("log").output.split("Failing now")[0].splitlines()
    assert lines[1].split()[:2] == ["run", "ended"]
    assert [line.split()[1] for line in lines[2:]] == ["interrupted", "killed"]


def test_invalidate_dry_run_then_for_real_then_restore(cli):
    cli("run", "pipeline.py:build", "--no-progress")
    calls()
    before = {p: p.read_bytes() for p in Path("out").rglob("*.pkl")}

    result = cli("invalidate", "pipeline.py:build", "--match", "out/first/[12].pkl", "-n")
    assert result.exit_code == 0, result.output
    assert "Dry run: 4 target(s) would move" in result.output
    assert {p: p.read_bytes() for p in Path("out").rglob("*.pkl")} == before

    result = cli(
        "invalidate", "pipeline.py:build", "--step", "second", "--ask-above", "2", input="n\n"
    )
    assert result.exit_code == 2
    assert "nothing removed; pass --yes" in result.output
    assert len(list(Path("out").rglob("*.pkl"))) == 8

    result = cli("invalidate", "pipeline.py:build", "--match", "*/first/[12].pkl", "--yes")
    assert result.exit_code == 0, result.output
    assert "Moved 4 target(s) to the trash" in result.output
    assert len(list(Path("out").rglob("*.pkl"))) == 4

    result = cli("restore", "pipeline.py:build")
    assert result.exit_code == 0, result.output
    assert "Restored 4 target(s)." in result.output
    assert {p: p.read_bytes() for p in Path("out").rglob("*.pkl")} == before

    cli("invalidate", "pipeline.py:build", "--step", "second", "-y")
    cli("run", "pipeline.py:build", "--no-progress")
    assert calls() == [f"second {i}" for i in range(4)]


def test_invalidate_selectors_narrow_each_other(cli):
    cli("run", "pipeline.py:build", "-p", "chains=6", "--no-progress")
    calls()

    result = cli(
        "invalidate", "pipeline.py:build", "-p", "chains=6", "--step", "second",
        "--match", "*/[13].pkl", "-y",
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    assert "Moved 2 target(s) to the trash" in result.output
    assert sorted(p.name for p in Path("out/second").iterdir()) == [
        "0.pkl",
        "2.pkl",
        "4.pkl",
        "5.pkl",
    ]
    assert len(list(Path("out/first").iterdir())) == 6
    cli("run", "pipeline.py:build", "-p", "chains=6", "--no-progress")
    assert calls() == ["second 1", "second 3"]


def test_invalidate_from_a_file_or_stdin_shows_the_count_then_asks(cli):
    cli("run", "pipeline.py:build", "-p", "chains=60", "--no-progress")
    calls()
    picked = [3, 17, 42]
    Path("redo.txt").write_text(
        "# pages to redo\n"
        + "".join(f"out/first/{i}.pkl\n" for i in picked[:2])
        + f"\n{Path('out/first/42.pkl').resolve()}\nout/first/nothing-*.pkl\n"
    )

    result = cli(
        "invalidate", "pipeline.py:build", "-p", "chains=60", "--from", "redo.txt",
        "--ask-above", "3", input="n\n",
    )  # fmt: skip

    assert result.exit_code == 2
    assert "out/first/nothing-*.pkl" in result.output  # a line that matched nothing is named
    table = result.output.index("total")
    prompt = result.output.index("Move 6 targets to the trash?")
    assert table < prompt and result.output[table:prompt].split()[1] == "6"
    assert len(list(Path("out").rglob("*.pkl"))) == 120

    lines = "".join(f"out/first/{i}.pkl\n" for i in picked)
    result = cli(
        "invalidate", "pipeline.py:build", "-p", "chains=60", "--from", "-", "--step", "second",
        "-y", input=lines,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Moved 0" not in result.output and "Nothing to reset" in result.output  # AND
    result = cli(
        "invalidate", "pipeline.py:build", "-p", "chains=60", "--from", "-", "-y", input=lines
    )
    assert "Moved 6 target(s) to the trash" in result.output
    cli("run", "pipeline.py:build", "-p", "chains=60", "--no-progress")
    assert calls() == sorted(f"{s} {i}" for s in ("first", "second") for i in picked)


def test_invalidate_usage_errors(cli):
    result = cli("invalidate", "pipeline.py:build")
    assert result.exit_code == 2
    assert "--step STEP, --match GLOB or --from FILE" in result.output
    result = cli("invalidate", "pipeline.py:build", "--from", "-", input="# nothing\n\n")
    assert result.exit_code == 2
    assert "Invalid value for --from: <stdin> names no target" in result.output
    result = cli("invalidate", "pipeline.py:build", "--step", "third")
    assert result.exit_code == 2
    assert "the steps are first, second" in result.output
    result = cli("invalidate", "pipeline.py:build", "--step", "first")
    assert result.exit_code == 0
    assert "Nothing to reset" in result.output


def test_graph_writes_a_picture(cli):
    result = cli("graph", "pipeline.py:build", "-o", "pictures/g.svg")
    assert result.exit_code == 0, result.output
    assert Path("pictures/g.svg").read_text().startswith("<svg")
    assert cli("graph", "pipeline.py:build", "-o", "g.pdf").exit_code == 2


def test_clean_removes_temporaries_and_the_trash(cli):
    cli("run", "pipeline.py:build", "--no-progress")
    stale = Path("out/first/.0.abcdef.pipex-tmp.pkl")
    stale.write_bytes(b"half")
    cli("invalidate", "pipeline.py:build", "--match", "out/second/0.pkl")

    result = cli("clean", "pipeline.py:build", "--dry-run")
    assert "1 temporary file(s), 0 expired claim(s); the trash holds 1 target(s) from 1 " in (
        result.output
    )
    assert stale.exists()

    result = cli("clean", "pipeline.py:build")
    assert result.exit_code == 0, result.output
    assert not stale.exists()
    assert not Path(".pipex-trash").exists()
    assert "Nothing to restore" in cli("restore", "pipeline.py:build").output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["pipelin.py:build"], "Error: no file pipelin.py (entry point pipelin.py:build)"),
        (["pipeline.py:buld"], "Error: pipeline.py has no function 'buld'"),
        (["pipeline"], "Error: entry point 'pipeline' must be FILE.py:FUNCTION or MODULE"),
        (["no_such_module:build"], "Error: no module no_such_module"),
        (["pipeline:build", "-p", "chain=2"], "Error: --param 'chain=2': give KEY=VALUE"),
        (["pipeline:build", "-p", "chains=two"], "Error: --param 'chains=two': 'two' is not"),
        (
            ["pipeline:build", "-p", "chains=5000"],
            "Error: pipeline:build failed while building the pipeline: ValueError: too many",
        ),
        (["pipeline:build", "-p", "chains=0"], "Error: pipeline:build returned list, with no"),
        (["pipeline:build", "-p", "collide=yes"], "Error: two different calls render the same"),
    ],
)
def test_a_bad_entry_point_is_one_line_and_exit_code_2(cli, args, message):
    result = cli("status", *args)
    assert result.exit_code == 2
    assert result.output.startswith(message), result.output
    assert len(result.output.strip().splitlines()) == 1


def test_a_syntax_error_in_the_entry_file_shows_file_line_and_the_line(cli):
    Path("broken.py").write_text("import pipex\n\n\ndef build(:\n    return []\n")
    result = cli("run", "broken.py:build")
    assert result.exit_code == 2
    lines = result.output.splitlines()
    assert (
        lines[0] == "Error: importing broken.py failed: broken.py:4: SyntaxError: invalid syntax"
    )
    assert lines[1].strip() == "def build(:"
    assert lines[2].strip() == "^"
    assert "Traceback" not in result.output and "pipex/" not in result.output


def test_an_error_raised_by_the_entry_file_names_the_users_line(cli):
    Path("raising.py").write_text(
        "import os\n\nLIMIT = os.nope\n\n\ndef build():\n    return []\n"
    )
    result = cli("status", "raising.py:build")
    assert result.exit_code == 2
    assert result.output == (
        "Error: importing raising.py failed: AttributeError: module 'os' has no attribute 'nope' "
        "(at raising.py:3: LIMIT = os.nope)\n"
    )
    result = cli("status", "pipeline.py:build", "-p", "chains=5000")
    assert result.output.rstrip().endswith(
        '(at pipeline.py:29: raise ValueError("too many chains"))'
    )


def test_a_module_entry_point_with_converted_params(cli):
    result = cli("run", "pipeline:build", "--param", "chains=2", "-p", "path=elsewhere")
    assert result.exit_code == 0, result.output
    assert sorted(os.listdir("elsewhere/second")) == ["0.pkl", "1.pkl"]


@pytest.mark.slow
def test_the_console_script_in_a_subprocess(workdir):
    (workdir / "pipeline.py").write_text(PIPELINE)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    def pipex(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "pipex", *args],
            cwd=workdir,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    first = pipex("run", "pipeline.py:build", "-p", "chains=2", "--no-progress")
    assert first.returncode == 0, first.stderr
    assert "ran 4, failed 0" in first.stdout
    piped = pipex("status", "pipeline.py:build", "-p", "chains=2")
    assert piped.returncode == 0, piped.stderr
    assert piped.stdout.splitlines()[0] == "step    done  to run  failed  not checked"  # plain
    assert "\x1b[" not in piped.stdout
    log = pipex("log")
    assert log.returncode == 0, log.stderr
    assert log.stdout.splitlines()[0] == "Recent runs" and "\x1b[" not in log.stdout
    bad = pipex("status", "nowhere.py:build")
    assert bad.returncode == 2
    assert bad.stderr == "Error: no file nowhere.py (entry point nowhere.py:build)\n"


@pytest.mark.slow
def test_on_a_terminal_run_prints_the_bar_and_the_summary_once(workdir):
    (workdir / "pipeline.py").write_text(PIPELINE)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    leader, follower = os.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    with subprocess.Popen(
        [sys.executable, "-m", "pipex", "run", "pipeline.py:build", "-p", "chains=2"],
        cwd=workdir,
        env=env,
        stdin=follower,
        stdout=follower,
        stderr=follower,
    ) as proc:
        os.close(follower)
        shown = b""
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # EIO: the command exited and closed the terminal
                break
            if not chunk:
                break
            shown += chunk
        assert proc.wait(timeout=120) == 0, shown
    os.close(leader)
    text = shown.decode()
    assert "pipex (0 already done)" in text and "4/4" in text  # the bar, on a terminal
    assert text.count("pipex: 2 requested, 0 already done, ran 4, failed 0") == 1


def test_credentials_in_a_url_root_are_never_shown(cli):
    root = "memory://AKIAKEY:s3cr3t@cli-bucket/run"
    shown = []
    for args in (
        ("status", "--list"),
        ("run", "-p", "bad=2", "--no-progress"),
        ("status", "--list"),
        ("log",),
        ("invalidate", "--step", "first", "--dry-run"),
    ):
        command, *rest = args
        result = cli(command, "pipeline.py:build", "-p", f"path={root}", *rest)
        shown.append(result.output)
    text = "\n".join(shown)
    assert "to run memory://***@cli-bucket/run/first/0.pkl" in text
    assert "memory://***@cli-bucket/run/first/2.pkl" in text  # the failure names its target
    assert "bad input 2" in text
    assert "s3cr3t" not in text and "AKIAKEY" not in text
    assert calls() != []
