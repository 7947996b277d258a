"""On a cluster too, a runner goes on with the work no other runner claimed and comes back
to the claimed targets (one worker thread: a wait on a claim would hold it)."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from pathlib import Path

import pipex
from pipex.stores.claims import held
from pipex.stores.file import FileStore

TASKS = 6


@pipex.task(target="{path}/step/{i}.pkl")
def step(i: int, log: str) -> int:
    descriptor = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    os.write(descriptor, f"step {i}\n".encode())
    os.close(descriptor)
    return i * 10


def test_a_cluster_run_goes_on_past_claimed_targets_and_comes_back(one_worker, tmp_path):
    store = FileStore(str(tmp_path / "out"))
    log = str(tmp_path / "calls.log")
    with pipex.context(path=str(tmp_path / "out")):
        nodes = [step(i, log) for i in range(TASKS)]
    claimed = [f"step/{i}.pkl" for i in range(0, TASKS, 2)]
    free = [tmp_path / "out" / "step" / f"{i}.pkl" for i in range(1, TASKS, 2)]
    results: list = []
    run = threading.Thread(
        target=lambda: results.append(
            pipex.compute(nodes, load=True, scheduler=one_worker, progress=False)
        )
    )
    with contextlib.ExitStack() as stack:
        for path in claimed:
            assert stack.enter_context(held(store, path))
        run.start()
        deadline = time.monotonic() + 120
        while not all(p.exists() for p in free):
            assert time.monotonic() < deadline, "the unclaimed targets were not written"
            time.sleep(0.05)
        assert run.is_alive()  # it waits for the claimed ones
        for path in claimed:
            store.save(path, -1)  # as another runner would
    run.join(120)

    (result,) = results
    assert sorted(Path(log).read_text().splitlines()) == [f"step {i}" for i in range(1, TASKS, 2)]
    assert (result.summary.ran, result.summary.waited) == (TASKS // 2, TASKS // 2)
    assert result[0] == [-1 if i % 2 == 0 else i * 10 for i in range(TASKS)]
