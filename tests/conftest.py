import pytest


@pytest.fixture(autouse=True)
def _clean_mode(monkeypatch):
    """Every test starts in the default mode unless it sets PIPEX itself."""
    monkeypatch.delenv("PIPEX", raising=False)


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """Run the test inside its own empty folder (targets resolve against the cwd)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path
