"""The process of one ``long_running`` task: ``python -m pipex.executors.distributed.child PID``.

Reads the worker's ``sys.path`` and then the call from stdin, runs it, writes
``(ok, result or exception)`` to what was stdout (the call's own prints go to stderr), and
exits. It dies with the worker process ``PID`` that started it: at once on Linux
(``PR_SET_PDEATHSIG``), within a second elsewhere.
"""

from __future__ import annotations

import ctypes
import os
import pickle
import signal
import sys
import threading
import time
from typing import BinaryIO

import cloudpickle

_PR_SET_PDEATHSIG = 1


def _die_with(parent: int) -> None:
    """End this process when ``parent`` ends."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        done = libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL) == 0
    except (OSError, AttributeError):
        done = False
    if os.getppid() != parent:  # the parent died before the signal was asked for
        os._exit(1)
    if not done:
        threading.Thread(target=_watch, args=(parent,), daemon=True).start()


def _watch(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(1)
    os._exit(1)


def main(parent: int, source: BinaryIO, answer: BinaryIO) -> None:
    _die_with(parent)
    sys.path[:] = pickle.load(source)
    try:
        from pipex.executors.distributed.long_running import run_in_child

        levels, fn, args, kwargs = pickle.load(source)
        result: tuple[bool, object] = (True, run_in_child(levels, fn, args, kwargs))
    except BaseException as exc:  # every failure goes back to the worker
        result = (False, exc)
    try:
        data = cloudpickle.dumps(result)
    except Exception as exc:  # an answer that cannot be pickled
        data = cloudpickle.dumps((False, RuntimeError(f"cannot send the result back: {exc!r}")))
    answer.write(data)
    answer.flush()


if __name__ == "__main__":
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # the call's prints go to stderr, not into the answer
    main(int(sys.argv[1]), sys.stdin.buffer, out)
