"""Credentials in errors and log lines (issue 24, item 6): an object store's URL cannot
carry them (its fsspec filesystem takes them as part of the bucket name), and errors pipex
raises from another library's, with their chains, and the Prefect executor's log lines,
never show them."""

from __future__ import annotations

import logging
import traceback

import pytest

import pipex
from pipex.core.outcomes import Failure

SECRET = "Wx9SECRETs3cr3tKEY"


def shown(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc))


def test_credentials_in_an_object_store_url_are_refused_saying_where_they_go():
    pytest.importorskip("s3fs")
    scheme = "s3"
    url = f"{scheme}://AKIAKEY:{SECRET}@bucket/run"
    with pytest.raises(pipex.StoreError) as info:
        pipex.FsspecStore(url)
    text = shown(info.value)
    assert SECRET not in text and "AKIAKEY" not in text, text
    message = str(info.value)
    assert "never reads credentials from a URL" in message
    assert f"({scheme}://bucket/...)" in message and "key=..., secret=..." in message


def test_a_pipeline_on_such_a_url_fails_before_anything_runs(workdir):
    pytest.importorskip("s3fs")
    calls = []

    @pipex.task(target="{path}/x/{i}.pkl")
    def f(i):
        calls.append(i)
        return i

    url = f"s3://AKIAKEY:{SECRET}@bucket/run"
    with pytest.raises(pipex.StoreError) as info, pipex.context(path=url):
        pipex.compute(f(1), progress=False)
    assert SECRET not in shown(info.value)
    assert calls == []


def test_a_store_errors_chain_hides_the_credentials_the_library_quoted(workdir):
    store = pipex.FsspecStore(f"memory://AKIAKEY:{SECRET}@creds-chain/run")
    with pytest.raises(pipex.StoreError) as info:
        store.load("out/missing.pkl")  # fsspec's FileNotFoundError quotes the path whole
    text = shown(info.value)
    assert isinstance(info.value.__cause__, FileNotFoundError)
    assert SECRET not in text and "AKIAKEY" not in text, text
    assert "***@creds-chain/run/out/missing.pkl" in text


def test_the_prefect_executors_failure_log_lines_hide_credentials():
    pytest.importorskip("prefect")
    from pipex.executors.prefect.graph import _RunLog

    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    logger = logging.getLogger("tests.prefect-run-log")
    logger.addHandler(Keep())
    logger.propagate = False
    url = f"https://user:{SECRET}@host/data/3.csv"
    target = "memory://creds-log/run/out/3.pkl"
    try:
        raise OSError(f"cannot read {url}")
    except OSError as exc:
        failure = Failure("read-out/3.pkl", target, exc, traceback.format_exc())  # type: ignore[arg-type]
    passed_on: list[tuple[str, object]] = []

    class Observer:  # the run's observers, which the run log passes each outcome on to
        def record(self, key: str, outcome: object) -> None:
            passed_on.append((key, outcome))

    adapter = logging.LoggerAdapter(logger, {})
    run_log = _RunLog(adapter, {"read-out/3.pkl": "read-3"}, Observer())
    run_log.record("read-out/3.pkl", failure)
    assert passed_on == [("read-out/3.pkl", failure)]
    (record,) = records
    assert record.levelno == logging.ERROR
    text = record.getMessage()
    assert "read-3 failed" in text and "cannot read https://***@host/data/3.csv" in text
    assert SECRET not in text
