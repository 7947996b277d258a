"""Settings registered with dask.config and read when used; registries by import string."""

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
