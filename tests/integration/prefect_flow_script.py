"""A pipex flow run as a script, on the default set-up a user gets: ``PIPEX=prefect+cache``,
Prefect's temporary server (no ``PREFECT_API_URL``) and the default ``DaskTaskRunner``.

``python prefect_flow_script.py N`` computes N chains of two steps (2N task runs in node
mode) into ``out/`` of the working directory. With ``PAUSE`` set in the environment, each
second step sleeps that many seconds first (for tests that kill the flow mid-run). With
``GATE`` set, each second step says it started (``marks/<i>``) and chain 0's waits up to
``GATE`` seconds for chain 1's to start, leaving ``marks/0-saw-1`` or ``marks/0-missed-1``.
"""

import os
import sys
import time
from pathlib import Path

import pipex

PAUSE = float(os.environ.get("PAUSE", "0"))
GATE = float(os.environ.get("GATE", "0"))


@pipex.task(target="{path}/first/{i}.pkl")
def first(i):
    return i


@pipex.task(target="{path}/second/{i}.pkl")
def second(x, i):
    time.sleep(PAUSE)
    if GATE:
        gate(i)
    return x + 1


def gate(i):
    marks = Path("marks")
    marks.mkdir(exist_ok=True)
    (marks / str(i)).touch()
    if i != 0:
        return
    deadline = time.monotonic() + GATE
    while not (marks / "1").exists():
        if time.monotonic() > deadline:
            (marks / "0-missed-1").touch()
            return
        time.sleep(0.05)
    (marks / "0-saw-1").touch()


@pipex.flow(name="pages")
def pages(n: int):
    with pipex.context(path="out"):
        nodes = [second(first(i), i) for i in range(n)]
    pipex.compute(nodes)
    print("computed", n, flush=True)


if __name__ == "__main__":  # the Dask task runner starts worker processes
    pages(int(sys.argv[1]))
