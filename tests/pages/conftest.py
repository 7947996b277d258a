"""Fixtures of the report page's tests."""

from __future__ import annotations

from pathlib import Path

import pytest

import pipex
from tests.pages import pipeline


@pytest.fixture(scope="module")
def failed_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[pipex.Node]]:
    """A folder where the test pipeline ran once (with failures), and its roots."""
    folder = tmp_path_factory.mktemp("run")
    nodes = pipeline.build(12, str(folder / "out"))
    with pytest.raises(pipex.PipelineError):
        pipex.compute(nodes, progress=False)
    return folder, nodes
