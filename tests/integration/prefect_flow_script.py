"""A pipex flow run as a script, on the default set-up a user gets: ``PIPEX=prefect+cache``,
Prefect's temporary server (no ``PREFECT_API_URL``) and the default ``DaskTaskRunner``.

``python prefect_flow_script.py N`` computes N chains of two steps (2N task runs in node
mode) into ``out/`` of the working directory. With ``PAUSE`` set in the environment, each
second step sleeps that many seconds first (for tests that kill the flow mid-run).
"""

import os
import sys
import time

import pipex

PAUSE = float(os.environ.get("PAUSE", "0"))


@pipex.task(target="{path}/first/{i}.pkl")
def first(i):
    return i


@pipex.task(target="{path}/second/{i}.pkl")
def second(x, i):
    time.sleep(PAUSE)
    return x + 1


@pipex.flow(name="pages")
def pages(n: int):
    with pipex.context(path="out"):
        nodes = [second(first(i), i) for i in range(n)]
    pipex.compute(nodes)
    print("computed", n, flush=True)


if __name__ == "__main__":  # the Dask task runner starts worker processes
    pages(int(sys.argv[1]))
