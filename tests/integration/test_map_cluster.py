"""Mapped steps on a real LocalCluster (2 worker processes x 1 thread): the scheduler holds
batches, never calls; failures stay per item across processes."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

import pipex
from tests.mapped import four_steps, fragile, pid, s1

distributed = pytest.importorskip("distributed")

pytestmark = pytest.mark.slow

ITEMS = 5_000


@contextmanager
def scheduler_tasks(client: distributed.Client) -> Iterator[list[int]]:
    """Samples the number of tasks the scheduler holds, from a thread, while the block runs."""
    samples: list[int] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            samples.append(
                client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks))
            )
            stop.wait(0.05)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield samples
    finally:
        stop.set()
        thread.join(timeout=60)


def written(folder: Path) -> int:
    return len([name for name in os.listdir(folder) if name.endswith(".pkl")])


def test_5000_items_by_4_steps_fresh_never_put_calls_on_the_scheduler(local_client, tmp_path):
    with pipex.context(path=str(tmp_path / "out")):
        m = four_steps(ITEMS)

    with scheduler_tasks(local_client) as samples:
        (targets,) = pipex.compute(m, scheduler=local_client, progress=False)

    assert len(targets) == ITEMS
    for step in ("s1", "s2", "s3", "s4"):
        assert written(tmp_path / "out" / step) == ITEMS
    assert targets[4_321].load() == 4_321 + 3
    assert samples and max(samples) > 0, "the sampler saw no task: the run was not sampled"
    assert max(samples) < 2_000, f"the scheduler held {max(samples)} tasks at once"


def test_a_partial_rerun_on_the_cluster_runs_exactly_the_missing_items(local_client, tmp_path):
    out = tmp_path / "out"
    with pipex.context(path=str(out)):
        pipex.compute(four_steps(500), scheduler=local_client, progress=False)
    for i in range(0, 500, 50):  # ten final targets
        os.remove(out / "s4" / f"{i}.pkl")
    for i in (7, 8, 9):  # three whole chains
        for step in ("s1", "s2", "s3", "s4"):
            (out / step / f"{i}.pkl").unlink(missing_ok=True)

    with pipex.context(path=str(out)):
        results = pipex.compute(four_steps(500), scheduler=local_client, progress=False)

    assert results.summary.ran == 10 + 3 * 4
    assert results.summary.done == 500 - 13
    assert [results[0][i].load() for i in (0, 7, 450)] == [3, 10, 453]


def test_failures_on_workers_are_per_item_with_their_tracebacks(local_client, tmp_path):
    out = tmp_path / "out"
    with pipex.context(path=str(out)):
        m = fragile.map(s1.map(range(200)))

    with pytest.raises(pipex.PipelineError) as info:
        pipex.compute(m, scheduler=local_client, progress=False)

    error = info.value
    assert {Path(f.target.path).parent.name for f in error.failed} == {"fragile"}
    failed = sorted(int(Path(f.target.path).stem) for f in error.failed)
    assert failed == [i for i in range(200) if i % 10 == 7]
    assert all("seven is not welcome" in f.traceback for f in error.failed)
    assert written(out / "fragile") == 180
    assert written(out / "s1") == 200
    assert len(str(error)) < 5_000


def test_mapped_items_run_on_the_workers(local_client, tmp_path):
    with pipex.context(path=str(tmp_path / "out")):
        m = pid.map(range(200))

    (pids,) = pipex.compute(m, scheduler=local_client, load=True, progress=False)

    workers = set(local_client.run(os.getpid).values())
    assert len(pids) == 200
    assert set(pids) <= workers
    assert os.getpid() not in pids
