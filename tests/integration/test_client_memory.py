"""benchmarks/client_memory.py runs (at a small size: the full one is not for CI)."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.integration.processes import ROOT, environment

pytestmark = pytest.mark.slow


def test_the_client_memory_benchmark_runs_and_the_client_holds_no_outputs(tmp_path):
    command = [
        sys.executable,
        str(ROOT / "benchmarks" / "client_memory.py"),
        "--outputs=40",
        "--megabytes=4",
        "--baseline=4",
        "--workers=1",
        f"--folder={tmp_path}",
    ]
    proc = subprocess.run(
        command, env=environment(), cwd=tmp_path, capture_output=True, text=True, timeout=180
    )

    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "pipex.compute: 40 outputs x 4 MiB" in out
    growth = [int(n) for n in re.findall(r"\+(-?\d+) MiB at peak", out)]
    assert len(growth) == 2, out
    assert growth[0] < 40 * 4 / 4, out  # a quarter of what the workers wrote, at most
    assert list(tmp_path.iterdir()) == []  # the outputs were removed
