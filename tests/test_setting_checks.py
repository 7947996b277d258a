"""Every ``pipex.*`` value is checked when read (issue 24, items 2 and 3): a wrong one is
one error before anything runs, naming the key, the value, where it came from and what is
accepted; a misspelled key's warning points at the variable or the config file."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import dask
import pytest

import pipex
from tests.integration.processes import environment

PIPELINE = textwrap.dedent(
    """
    import pipex

    @pipex.task(target="{path}/pages/{i}.pkl")
    def page(i):
        with open("calls.log", "a") as log:
            log.write(f"{i}\\n")
        return i

    def build():
        with pipex.context(path="out"):
            return [page(i) for i in range(3)]
    """
)


def pipex_cli(folder, *args, **env):
    (folder / "pipeline.py").write_text(PIPELINE)
    return subprocess.run(
        [sys.executable, "-m", "pipex", *args],
        cwd=folder,
        env=environment(env),
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("variable", "value", "key", "accepted"),
    [
        ("DASK_PIPEX__PROGRESS", "flase", "pipex.progress", "auto, true or false"),
        ("DASK_PIPEX__KEEP_GOING", "nope", "pipex.keep-going", "true or false"),
        ("DASK_PIPEX__FUSE", "maybe", "pipex.fuse", "true or false"),
        ("DASK_PIPEX__BATCH_SIZE", "-5", "pipex.batch-size", "a whole number of tasks"),
        ("DASK_PIPEX__CLAIMS__TIMEOUT", "abc", "pipex.claims.timeout", "a duration"),
    ],
)
def test_a_wrong_value_in_the_environment_is_one_error_before_anything_runs(
    tmp_path, variable, value, key, accepted
):
    run = pipex_cli(tmp_path, "run", "pipeline.py:build", **{variable: value})
    assert run.returncode == 2, run.stdout + run.stderr
    error = run.stderr.strip().splitlines()
    assert len(error) == 1, run.stderr
    assert error[0].startswith(f"Error: {key} is ")
    assert f"(from the environment variable {variable}={value})" in error[0]
    assert accepted in error[0]
    assert not (tmp_path / "calls.log").exists()  # nothing ran
    assert not (tmp_path / "out").exists()


def test_a_wrong_value_in_a_config_file_names_the_file(tmp_path):
    config = tmp_path / "config"
    config.mkdir()
    (config / "pipex.yaml").write_text("pipex:\n  rerun: always\n")
    run = pipex_cli(tmp_path, "run", "pipeline.py:build", DASK_CONFIG=str(config))
    assert run.returncode == 2, run.stderr
    assert "pipex.rerun is 'always'" in run.stderr
    assert f"from the dask config file {config / 'pipex.yaml'}" in run.stderr
    assert "null (never) or code" in run.stderr
    assert not (tmp_path / "calls.log").exists()


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("pipex.ledger", "yes"),
        ("pipex.batch-size", 0),
        ("pipex.distributed.forward-logs-level", "LOUD"),
        ("pipex.prefect.granularity", "task"),
        ("pipex.path", ""),
    ],
)
def test_a_wrong_value_set_in_code_fails_compute_before_anything_runs(workdir, key, value):
    calls = []

    @pipex.task(target="{path}/x/{i}.pkl")
    def f(i):
        calls.append(i)
        return i

    node = f(1)
    with dask.config.set({key: value}), pytest.raises(pipex.ModeError) as info:
        pipex.compute(node, progress=False)
    message = str(info.value)
    assert message.startswith(f"{key} is {value!r} (set in code with dask.config.set")
    assert "it takes" in message
    assert calls == []


def test_good_values_in_either_form_are_accepted(workdir):
    @pipex.task(target="{path}/x/{i}.pkl")
    def f(i):
        return i

    settings = {
        "pipex.progress": False,
        "pipex.claims.timeout": 30,
        "pipex.distributed.forward-logs-level": "debug",
        "pipex.rerun": "code",
    }
    with dask.config.set(settings):
        assert pipex.compute(f(1), load=True) == (1,)


def test_a_misspelled_key_in_the_environment_warns_pointing_at_the_variable(tmp_path):
    run = pipex_cli(tmp_path, "status", "pipeline.py:build", DASK_PIPEX__PTH="elsewhere")
    assert run.returncode == 0, run.stderr
    assert "DASK_PIPEX__PTH:0: UserWarning: pipex.pth is not a pipex setting" in run.stderr
    assert "(from the environment variable DASK_PIPEX__PTH=elsewhere)" in run.stderr
    assert "click" not in run.stderr


def test_a_misspelled_key_in_a_config_file_warns_pointing_at_its_line(tmp_path):
    config = tmp_path / "config"
    config.mkdir()
    (config / "pipex.yaml").write_text("pipex:\n  keep-going: true\n  batch_sise: 10\n")
    run = pipex_cli(tmp_path, "status", "pipeline.py:build", DASK_CONFIG=str(config))
    assert run.returncode == 0, run.stderr
    assert f"{config / 'pipex.yaml'}:3: UserWarning: pipex.batch_sise" in run.stderr
    assert "did you mean pipex.batch-size" in run.stderr
    assert "click" not in run.stderr
