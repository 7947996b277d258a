"""A 5,000 x 4 run's report page stays under 5 MB: aggregated, never an element per task run
beyond the capped lists."""

from __future__ import annotations

import os

import pytest

import pipex
from pipex.pages import timeline
from pipex.pages.facts import gather
from tests.pages import pipeline


@pipex.task(target="{path}/shift/{i}.pkl")
def shift(x: int, i: int) -> int:
    return x + 1


@pipex.task(target="{path}/square/{i}.pkl")
def square(x: int, i: int) -> int:
    return x * x


@pytest.mark.slow
def test_the_page_of_a_5000_by_4_run_is_under_5_mb(tmp_path):
    with pipex.context(path=str(tmp_path / "out")):
        nodes = [square(shift(pipeline.scale(pipeline.load(i, 97), i), i), i) for i in range(5000)]
    with pytest.raises(pipex.PipelineError):
        pipex.compute(nodes, progress=False)
    page = pipex.report(nodes, filename=tmp_path / "report.html")

    assert os.path.getsize(page) <= 5_000_000
    facts = gather(nodes)
    assert len(facts.timed) > 19_000  # every task run is timed...
    bars = timeline.bars(facts.timed)
    assert bars.binned and len(bars) <= timeline.CELLS  # ...and drawn in bins
    assert sum(g.count for g in facts.failures) == 53 and len(facts.failures) == 2
    with open(page, encoding="utf-8") as file:
        text = file.read()
    assert text.count("<li>") <= 2 * 200  # the capped lists of targets
