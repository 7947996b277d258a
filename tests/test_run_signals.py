"""Ctrl-C and the demo (issue 24, items 9, 10): ``pipex run`` exits 130 (1 means tasks
failed), and the count of saved tasks it prints is the count of targets written; the demo
shows its progress bar on a terminal."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import textwrap
import time

from tests.integration.processes import environment

PIPELINE = textwrap.dedent(
    """
    import os, time
    import pipex

    @pipex.task(target="{path}/pages/{i}.pkl")
    def page(i):
        return i

    @pipex.task(target="{path}/held/{i}.pkl")
    def held(page, i):
        open(f"started-{i}", "w").close()
        while not os.path.exists("release"):  # held until the test has interrupted the run
            time.sleep(0.02)
        raise RuntimeError("released after the interruption: writes nothing")

    def build():
        with pipex.context(path="out"):
            return [held(page(i), i) for i in range(4)]
    """
)


def test_ctrl_c_exits_130_and_counts_the_targets_written(workdir):
    (workdir / "pipeline.py").write_text(PIPELINE)
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipex", "run", "pipeline.py:build", "--no-progress"],
        cwd=workdir,
        env=environment({"DASK_PIPEX__FUSE": "false", "DASK_NUM_WORKERS": "2"}),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    pages = workdir / "out" / "pages"
    try:
        deadline = time.monotonic() + 120
        while len(list(workdir.glob("started-*"))) < 2:  # every thread held: no write now
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        time.sleep(1)
        (workdir / "release").touch()  # the held tasks end, writing nothing
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 130, err
    said = re.search(r"pipex: interrupted; (\d+) task\(s\) saved their targets", err)
    assert said is not None, err
    assert int(said.group(1)) == len(list(pages.glob("*.pkl"))) >= 2
    assert not (workdir / "out" / "held").exists()


def test_demo_on_a_terminal_shows_the_progress_bar(tmp_path):
    """Issue 24, item 10: ``pipex demo`` was blank on a terminal until it finished."""
    import fcntl
    import os
    import struct
    import termios

    leader, follower = os.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    with subprocess.Popen(
        [sys.executable, "-m", "pipex", "demo", str(tmp_path / "demo"), "-n", "3"],
        cwd=tmp_path,
        env=environment(),
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
    assert "pipex (0 already done)" in text and "12/12" in text, text  # the bar
    assert "pipex: 3 requested" not in text  # the demo's own report, not the summary line
