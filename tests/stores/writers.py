"""Writers in other processes, for the store tests: a store travels there pickled."""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

from tests.integration.processes import environment

BIG = 8 * 1024 * 1024  # large enough that pickle streams it to the file before what follows

_SLOW_SAVE = textwrap.dedent(
    """
    import pickle, sys, time

    class Slow:
        def __reduce__(self):
            print("prefix written", flush=True)
            time.sleep(120)
            return (int, ())

    with open(sys.argv[1], "rb") as file:
        store = pickle.load(file)
    if sys.argv[4] == "claimed":  # as a task does: the save runs inside its target's claim
        from pipex.stores.claims import held

        with held(store, sys.argv[2], stage=True):
            store.save(sys.argv[2], [b"x" * int(sys.argv[3]), Slow()])
    else:
        store.save(sys.argv[2], [b"x" * int(sys.argv[3]), Slow()])
    print("finished", flush=True)
    """
)


def pickled(store: object, folder: Path) -> str:
    """The file holding ``store`` pickled, for another process to load."""
    path = folder / "store.pickle"
    path.write_bytes(pickle.dumps(store))
    return str(path)


def kill_mid_save(
    store: object,
    path: str,
    folder: Path,
    while_writing: Callable[[], None] = lambda: None,
    claimed: bool = False,
) -> None:
    """Save a large object at ``path`` in another process and SIGKILL it half way through
    (with ``claimed``, inside the claim on ``path``, as a task saves).

    ``while_writing`` runs once the first ``BIG`` bytes are written, before the kill. Local
    temporary files of stores that stage outside their folder go in ``folder/staging``.
    """
    staging = folder / "staging"
    staging.mkdir(exist_ok=True)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            _SLOW_SAVE,
            pickled(store, folder),
            path,
            str(BIG),
            "claimed" if claimed else "plain",
        ],
        stdout=subprocess.PIPE,
        text=True,
        env=environment({"TMPDIR": str(staging)}),
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "prefix written"
        while_writing()
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        rest = proc.stdout.read() if proc.stdout else ""
        if proc.stdout:
            proc.stdout.close()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert "finished" not in rest
