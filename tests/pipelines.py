"""Small importable pipelines for tests that run tasks in other processes.

Worker processes and subprocesses cannot append to a list in the test, so every task here
records its call as one line ``<task> <name> <pid>`` in the log file it is given: the number
of lines is the number of real calls.
"""

from __future__ import annotations

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
