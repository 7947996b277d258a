"""Settings registered with dask.config and read when used; registries by import string."""

import os
import subprocess
import sys

import dask
import pytest

import pipex
from pipex import registry, settings


def test_every_default_is_registered_with_dask_config():
    assert dask.config.get("pipex.path") == "pipex-out"
    assert dask.config.get("pipex.batch-size") == 20000
    assert dask.config.get("pipex.distributed.long-running") is True
    assert dask.config.get("pipex.prefect.granularity") == "node"


def test_settings_are_read_when_used(monkeypatch):
    with dask.config.set({"pipex.path": "elsewhere"}):
        assert settings.get("path") == "elsewhere"

        @pipex.task(target="{path}/x/{a}.pkl")
        def f(a):
            return a

        assert f(1).target.path == "elsewhere/x/1.pkl"
    assert settings.get("path") == "pipex-out"
    monkeypatch.setenv("PIPEX", "off")
    assert settings.mode() == "off"


def test_registry_loads_by_import_string():
    assert registry.load("pipex.stores.file:FileStore") is pipex.FileStore
    assert registry.locate("pipex.core.plan:resolve") is pipex.core.plan.resolve
    with pytest.raises(AttributeError):
        registry.locate("pipex.stores.file:NoSuchThing")


def test_a_misspelled_setting_warns_once_naming_the_closest_key():
    with dask.config.set({"pipex.pth": "elsewhere", "pipex.claims.timout": "5s"}):
        with pytest.warns(UserWarning) as caught:
            settings.get("keep-going")
            settings.get("ledger")  # read again: no second warning for either key
        assert settings.get("path") == "pipex-out"  # ignored, as dask ignores it

    messages = sorted(str(w.message) for w in caught)
    assert len(messages) == 2
    assert "pipex.claims.timout" in messages[0] and "pipex.claims.timeout" in messages[0]
    assert "pipex.pth" in messages[1] and "did you mean pipex.path" in messages[1]
    assert {w.filename for w in caught} == {__file__}  # the user's line, not pipex's


def test_known_settings_in_either_spelling_do_not_warn(recwarn):
    with dask.config.set({"pipex.keep_going": True, "pipex.distributed.forward-logs": ["x"]}):
        settings.get("keep-going")
    assert not [w for w in recwarn if "pipex." in str(w.message)]


def test_a_misspelled_environment_variable_warns_when_settings_are_read(tmp_path):
    code = "import pipex; pipex.settings.get('ledger'); pipex.settings.get('ledger')"
    env = {**os.environ, "DASK_PIPEX__PTH": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert done.stderr.count("UserWarning") == 1
    assert "pipex.pth" in done.stderr and "did you mean pipex.path" in done.stderr
    assert "DASK_PIPEX__PTH" in done.stderr


def test_a_misspelled_setting_warning_shows_the_users_line(workdir):
    @pipex.task(target="out/{i}.pkl")
    def made(i: int) -> int:
        return i

    with dask.config.set({"pipex.ledgr": False}), pytest.warns(UserWarning) as caught:
        pipex.compute(made(1), progress=False)
    (warned,) = [w for w in caught if "pipex.ledgr" in str(w.message)]
    assert warned.filename == __file__  # where the user computed, not inside pipex
