"""URLs pick the store: ``path`` and ``store=`` as URLs, errors, and credentials kept out of
everything shown."""

from __future__ import annotations

import pickle
import uuid

import pytest

import pipex
from pipex.core.graph import dask_key
from pipex.stores import locate, store_for


def _bucket():
    return f"pipex-{uuid.uuid4().hex[:12]}"


def test_a_url_path_puts_targets_in_the_store_of_its_bucket(workdir):
    bucket = _bucket()
    calls = []

    @pipex.task(target="{path}/double/{x}.json")
    def double(x):
        calls.append(x)
        return 2 * x

    with pipex.context(path=f"memory://{bucket}/run1"):
        nodes = [double(i) for i in range(3)]
    target = nodes[0].target
    assert target.store == pipex.FsspecStore(f"memory://{bucket}")
    assert target.path == "run1/double/0.json"
    assert str(target) == f"memory://{bucket}/run1/double/0.json"
    assert pipex.compute(nodes, load=True, scheduler="threads")[0] == [0, 2, 4]
    assert pipex.compute(nodes, load=True, scheduler="threads")[0] == [0, 2, 4]
    assert sorted(calls) == [0, 1, 2]
    assert pipex.FsspecStore(f"memory://{bucket}/run1").load("double/2.json") == 4
    assert list(workdir.iterdir()) == []  # nothing local


def test_every_target_under_one_bucket_shares_one_store():
    bucket = _bucket()
    stores = {locate(f"memory://{bucket}/run{i}/x.pkl", None)[0] for i in range(5)}
    assert len(stores) == 1


def test_a_store_keeps_the_urls_under_its_root_with_its_options():
    store = pipex.FsspecStore("memory://bucket/root", skip_instance_cache=True)
    assert locate("memory://bucket/root/run1/a.pkl", store) == (store, "run1/a.pkl")
    other, path = locate("memory://bucket/elsewhere/a.pkl", store)
    assert other == pipex.FsspecStore("memory://bucket") and path == "elsewhere/a.pkl"
    assert locate("run1/a.pkl", store) == (store, "run1/a.pkl")
    assert locate("file:///data/a.pkl", None) == (None, "/data/a.pkl")


def test_store_option_as_a_url(workdir):
    bucket = _bucket()

    @pipex.task(target="{path}/f/{x}.pkl", store=f"memory://{bucket}/root")
    def f(x):
        return x + 1

    with pipex.context(path="run"):
        node = f(1)
    assert str(node.target) == f"memory://{bucket}/root/run/f/1.pkl"
    assert pipex.compute(node, load=True, scheduler="sync") == (2,)
    assert store_for(f"memory://{bucket}/root").load("run/f/1.pkl") == 2
    assert list(workdir.iterdir()) == []


@pytest.mark.parametrize("where", ["path", "store"])
def test_a_scheme_fsspec_does_not_know_is_refused_and_creates_nothing(workdir, where):
    with pytest.raises(pipex.StoreError, match=r"nosuch://.*fsspec knows no such protocol"):
        if where == "store":
            pipex.task(store="nosuch://bucket/root")(lambda x: x)
        else:
            task = pipex.task(target="{path}/f/{x}.pkl")(lambda x: x)
            with pipex.context(path="nosuch://bucket/run"):
                task(1).target  # noqa: B018
    assert list(workdir.iterdir()) == []


def test_a_protocol_whose_package_is_missing_names_what_to_install(workdir):
    pytest.importorskip("fsspec")
    try:
        import gcsfs  # noqa: F401

        pytest.skip("gcsfs is installed")
    except ImportError:
        pass
    with pytest.raises(pipex.StoreError, match=r"pip install gcsfs .*dask-pipex\[gcs\]"):
        pipex.task(store="gs://bucket/root")(lambda x: x)
    assert list(workdir.iterdir()) == []


def test_credentials_never_show():
    store = pipex.FsspecStore(
        "memory://bucket/root", key="AKIA-KEY-VALUE", secret="SECRET-VALUE", token="TOKEN"
    )
    target = pipex.Target("run/a.pkl", store)
    shown = [repr(store), str(target), repr(target), str(dask_key_of(target))]
    for text in shown:
        assert "AKIA-KEY-VALUE" not in text and "SECRET-VALUE" not in text and "TOKEN" not in text
    assert "key" in repr(store)  # the option names are shown, not their values


def dask_key_of(target):
    @pipex.task(target="{path}/f/{x}.pkl", store=target.store)
    def f(x):
        return x

    with pipex.context(path="run"):
        node = f(1)
    return dask_key(node, "run-id"), node.key


def test_fsspec_stores_are_equal_and_hashable_by_url_and_options():
    a = pipex.FsspecStore("memory://bucket/root/", endpoint_url="http://x")
    b = pipex.FsspecStore("memory://bucket/root", endpoint_url="http://x")
    assert a == b and hash(a) == hash(b)
    assert a != pipex.FsspecStore("memory://bucket/root", endpoint_url="http://y")
    assert a != pipex.FsspecStore("memory://bucket/other", endpoint_url="http://x")
    assert pickle.loads(pickle.dumps(a)) == a
    assert pipex.MemoryStore("x") == pickle.loads(pickle.dumps(pipex.MemoryStore("x")))
    assert pipex.MemoryStore() != pipex.MemoryStore()


def test_a_memory_store_as_the_path_of_a_pipeline_under_test(workdir):
    @pipex.task(target="{path}/gray/{page}.pkl")
    def gray(page):
        return page.upper()

    store = pipex.MemoryStore()
    with pipex.context(path=store.url):
        node = gray("page-001")
    assert pipex.compute(node, load=True, scheduler="threads") == ("PAGE-001",)
    assert store.exists("gray/page-001.pkl")
    assert not pipex.MemoryStore().exists("gray/page-001.pkl")  # a new one starts empty
    assert list(workdir.iterdir()) == []
