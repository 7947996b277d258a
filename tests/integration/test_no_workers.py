"""A cluster that cannot run anything is said, never waited for in silence (issue 24, item
1): a real ``dask scheduler`` with no worker, and an address where nothing listens."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
import threading

import pytest

import pipex
from tests.integration.processes import dask_cluster, environment

distributed = pytest.importorskip("distributed")

pytestmark = pytest.mark.slow

PIPELINE = textwrap.dedent(
    """
    import pipex

    @pipex.task(target="{path}/pages/{i}.pkl")
    def page(i):
        return i

    def build():
        with pipex.context(path="out"):
            return [page(i) for i in range(3)]
    """
)


def pipex_run(folder, *args, **env):
    (folder / "pipeline.py").write_text(PIPELINE)
    return subprocess.run(
        [sys.executable, "-m", "pipex", "run", "pipeline.py:build", "--no-progress", *args],
        cwd=folder,
        env=environment(env),
        capture_output=True,
        text=True,
        timeout=120,  # f10bd86 waited forever
    )


def test_pipex_run_on_a_scheduler_without_workers_says_so_and_gives_up_naming_it(tmp_path):
    with dask_cluster(tmp_path / "cluster", n_workers=0) as address:
        run = pipex_run(
            tmp_path,
            "--scheduler",
            address,
            DASK_PIPEX__DISTRIBUTED__WAIT_FOR_WORKERS="2s",
        )
    assert run.returncode == 1, run.stderr
    said = f"pipex: the dask scheduler at {address} has no workers; waiting for one"
    assert said in run.stderr  # said while waiting...
    assert f"Error: the dask scheduler at {address} has no workers: waited 2" in run.stderr
    assert "pipex.distributed.wait-for-workers" in run.stderr  # ...and what bounds the wait
    assert "Traceback" not in run.stderr
    assert not (tmp_path / "out").exists()


def test_compute_with_a_client_of_a_cluster_without_workers_gives_up_naming_it(tmp_path, caplog):
    with pipex.context(path=str(tmp_path / "out")):
        node = pipex.task(target="{path}/n.pkl")(lambda: 1)()
    raised: list[BaseException] = []
    with (
        dask_cluster(tmp_path / "cluster", n_workers=0) as address,
        distributed.Client(address, set_as_default=False) as client,
        pipex.context(),
    ):
        import dask

        def compute() -> None:
            with dask.config.set({"pipex.distributed.wait-for-workers": "1s"}):
                try:
                    pipex.compute(node, scheduler=client, progress=False)
                except BaseException as exc:
                    raised.append(exc)

        runner = threading.Thread(target=compute, daemon=True)
        runner.start()
        runner.join(60)
        assert not runner.is_alive(), "pipex.compute waited for a worker without end"
    (error,) = raised
    assert isinstance(error, pipex.PipexError)
    assert f"the dask scheduler at {address} has no workers" in str(error)
    assert any("has no workers; waiting for one" in r.getMessage() for r in caplog.records)


def test_pipex_run_on_an_address_where_nothing_listens_fails_naming_it(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # free, and nothing listens once the socket is closed
    address = f"tcp://127.0.0.1:{port}"
    run = pipex_run(
        tmp_path, "--scheduler", address, DASK_PIPEX__DISTRIBUTED__CONNECT_TIMEOUT="2s"
    )
    assert run.returncode == 1, run.stderr
    assert f"Error: cannot reach the dask scheduler at {address}" in run.stderr
    assert "pipex.distributed.connect-timeout" in run.stderr
    assert "Traceback" not in run.stderr
