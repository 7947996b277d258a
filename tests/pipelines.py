"""Small importable pipelines for tests that run tasks in other processes.

Worker processes and subprocesses cannot append to a list in the test, so every task here
records its call as one line ``<task> <name> <pid>`` in the log file it is given: the number
of lines is the number of real calls.
"""

from __future__ import annotations

import ctypes
import logging
import os

import pipex


def record(log: str, task: str, name: str) -> None:
    """Append one line for one real call of ``task``."""
    with open(log, "a", encoding="utf-8") as file:
        file.write(f"{task} {name} {os.getpid()}\n")


def calls(log: str | os.PathLike[str]) -> list[tuple[str, str, int]]:
    """The calls recorded in ``log`` as ``(task, name, pid)``; none if it does not exist."""
    try:
        with open(log, encoding="utf-8") as file:
            lines = file.read().splitlines()
    except FileNotFoundError:
        return []
    return [(task, name, int(pid)) for task, name, pid in (line.split() for line in lines)]


@pipex.task(target="{path}/source/{name}.pkl")
def source(name: str, log: str) -> dict[str, object]:
    """The first step; a name starting with ``bad`` raises."""
    record(log, "source", name)
    if name.startswith("bad"):
        raise ValueError(f"bad input {name!r}")
    return {"name": name, "value": len(name)}


@pipex.task(target="{path}/double/{item.stem}.pkl")
def double(item: dict[str, object], log: str) -> dict[str, object]:
    """The second step: twice the value."""
    record(log, "double", str(item["name"]))
    return {"name": item["name"], "value": 2 * int(item["value"])}  # type: ignore[call-overload]


@pipex.task(target="{path}/total/{label}.pkl")
def total(items: list[dict[str, object]], label: str, log: str) -> int:
    """Sum of the values of many items."""
    record(log, "total", label)
    return sum(int(item["value"]) for item in items)  # type: ignore[call-overload]


def chains(names: list[str], log: str) -> list[pipex.Node]:
    """One ``source -> double`` chain per name (inside the caller's ``pipex.context``)."""
    return [double(source(name, log), log) for name in names]


# --- for tests on dask.distributed clusters ------------------------------------------------


@pipex.task
def link(previous: object, i: int) -> int:
    """One step of a long chain (default target: a token of its arguments)."""
    return i


@pipex.task(target="{path}/after/{item.stem}.pkl")
def after(item: object, log: str) -> str:
    """A step after another (to see dependants of a failure reported as not run)."""
    record(log, "after", "x")
    return "after"


@pipex.task(target="{path}/crash/{name}.pkl")
def crash(name: str, log: str) -> None:
    """Kills the worker process running it, as an out-of-memory kill or a segfault would."""
    record(log, "crash", name)
    os._exit(1)


@pipex.task(target="{path}/big/{name}.pkl")
def big_once(name: str, flag: str) -> bytes:
    """On its first call (``flag`` missing) writes its process id to ``flag`` and returns
    300 MB, so that a test can kill its worker while it writes them; then a few bytes."""
    if not os.path.exists(flag):
        with open(flag, "w") as file:
            file.write(str(os.getpid()))
        return bytes(300_000_000)
    return b"small"


@pipex.task(target="{path}/crash-on/{item.stem}.pkl")
def crash_on(item: object, log: str) -> None:
    """As :func:`crash`, as the step after another (in the middle of a fused chain)."""
    record(log, "crash_on", "x")
    os._exit(1)


@pipex.task(target="{path}/flaky/{name}.pkl", retries=2)
def flaky(name: str, failures: int, log: str) -> str:
    """Raises on its first ``failures`` calls for ``name``, then succeeds (``retries=2``)."""
    record(log, "flaky", name)
    if sum(1 for task, n, _ in calls(log) if (task, n) == ("flaky", name)) <= failures:
        raise ValueError(f"flaky {name} failed")
    return name


class NeedsTwo(Exception):
    """An exception whose ``__init__`` takes two arguments: pickle cannot rebuild it."""

    def __init__(self, a: object, b: object) -> None:
        super().__init__(f"{a}/{b}")


@pipex.task(target="{path}/odd/{name}.pkl")
def odd_error(name: str) -> None:
    """Raises an exception that cannot be rebuilt where it is unpickled."""
    raise NeedsTwo(name, "extra")


@pipex.task(target="{path}/odd-retried/{name}.pkl", retries=1)
def odd_error_retried(name: str) -> None:
    """The same, on a task that dask retries (so the exception itself travels)."""
    raise NeedsTwo(name, "extra")


def hold_the_gil(seconds: int) -> None:
    """One C call that holds the GIL for ``seconds``: libc's ``sleep`` called through PyDLL.

    (ctypes releases the GIL around foreign calls, except through a ``PyDLL``.) Nothing else
    in the process runs meanwhile, as with a long regex or compiled code that keeps the GIL.
    """
    ctypes.PyDLL(None).sleep(seconds)


@pipex.task(target="{path}/long/{name}.pkl", long_running=True)
def long_call(name: str, seconds: int, log: str) -> str:
    """A call that holds the GIL for long, marked ``long_running``."""
    record(log, "long_call", name)
    hold_the_gil(seconds)
    return name


@pipex.task(target="{path}/long/{name}.pkl")
def long_call_unmarked(name: str, seconds: int, log: str) -> str:
    """The same call, not marked ``long_running``."""
    record(log, "long_call_unmarked", name)
    hold_the_gil(seconds)
    return name


@pipex.task(target="{path}/churn/{name}.pkl")
def churn(name: str, megabytes: int) -> int:
    """Allocates and frees ``megabytes`` of 8 KB buffers, pinned by later small allocations.

    Once it returns, glibc keeps most of that memory mapped in the process until
    ``malloc_trim`` (that is what the memory-release plugin is for).
    """
    buffers, pins = [], []
    for i in range(megabytes * 128):
        buffers.append(bytearray(8192))
        if i % 64 == 0:
            pins.append(bytearray(600))  # from malloc too (past 512 B), between the buffers
    del buffers
    PINNED.append(pins)  # kept for the process's life: the freed buffers stay between them
    return len(pins)


PINNED: list[list[bytearray]] = []


FORWARDED = "pipex_test_forwarded"  # a logger the log-forwarding tests forward
QUIET = "pipex_test_quiet"  # one they do not


@pipex.task(target="{path}/chatty/{name}.pkl")
def chatty(name: str) -> str:
    """Logs on a forwarded logger (below it, at INFO) and on a logger nobody forwards."""
    logging.getLogger(f"{FORWARDED}.steps").info("working on %s", name)  # CHATTY-LINE
    logging.getLogger(QUIET).warning("quiet %s", name)
    return name


@pipex.task(target="{path}/chatty-long/{name}.pkl", long_running=True)
def chatty_long(name: str) -> str:
    """As :func:`chatty`, in the long-running executor's own process."""
    logging.getLogger(f"{FORWARDED}.steps").info("working long on %s", name)  # LONG-LINE
    return name
