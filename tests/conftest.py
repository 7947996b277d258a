import pytest


@pytest.fixture(autouse=True)
def _clean_mode(monkeypatch):
    """Every test starts in the default mode unless it sets PIPEX itself."""
    monkeypatch.delenv("PIPEX", raising=False)


@pytest.fixture(autouse=True)
def _ledgers_elsewhere(tmp_path_factory, monkeypatch):
    """Run ledgers go to folders of the test's own: those of remote stores to its cache
    folder, not the home's; that of the working directory (the store root of targets with
    absolute paths) to a folder of its own, not the checkout's."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """Run the test inside its own empty folder (targets resolve against the cwd)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """moto's standalone S3 server on 127.0.0.1 for the session (skipped without moto/s3fs)."""
    pytest.importorskip("s3fs")
    pytest.importorskip("moto")
    from tests.s3server import moto_server

    with moto_server(tmp_path_factory.mktemp("s3")) as server:
        yield server
