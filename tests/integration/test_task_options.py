"""The task options for clusters, ``long_running`` and ``retries``: checked and kept."""

from __future__ import annotations

import pickle

import cloudpickle
import pytest

import pipex


def test_long_running_and_retries_are_kept_and_travel_with_the_task():
    @pipex.task(long_running=True, retries=3)
    def step(x):
        return x

    assert (step.long_running, step.retries) == (True, 3)
    copy = pickle.loads(cloudpickle.dumps(step))  # not importable: rebuilt from its options
    assert (copy.long_running, copy.retries) == (True, 3)

    @pipex.task
    def plain(x):
        return x

    assert (plain.long_running, plain.retries) == (False, 0)


def test_retries_must_be_a_count():
    with pytest.raises(TypeError, match="retries must be an int"):
        pipex.task(retries="2")(lambda x: x)
    with pytest.raises(ValueError, match="retries must be 0 or more"):
        pipex.task(retries=-1)(lambda x: x)
