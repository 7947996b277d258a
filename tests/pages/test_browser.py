"""The report page in a real browser: headless Chromium (Debian's ``chromium``, driven by
playwright from the system binary), with every request that is not the file itself aborted."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import pipex
from tests.pages.browser import Opened, chromium, opened

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(chromium() is None, reason="no chromium: apt-get install chromium"),
]


@pytest.fixture(scope="module")
def shown(failed_run, tmp_path_factory) -> Iterator[Opened]:
    """The report page of the test pipeline's failed run, open in the browser (once for the
    module: the tests below read it, the last one types into it)."""
    _, nodes = failed_run
    file = Path(pipex.report(nodes, filename=tmp_path_factory.mktemp("page") / "report.html"))
    with opened(file) as seen:
        yield seen


def test_the_page_opens_offline_without_errors_and_shows_the_run(shown):
    assert shown.requests == [shown.url]  # nothing but the file itself was asked for
    assert shown.aborted == []
    assert shown.errors == []
    text = shown.page.inner_text("body")
    for step in ("load", "scale", "total"):
        assert step in text
    assert "4 task run(s) failed, in 2 group(s)" in text
    assert "ValueError: page <n> is unreadable at <path>" in text  # a failure's message
    assert "KeyError: 'no field 2'" in text
    assert "finished" in text  # how the run ended, in the history


def test_the_charts_are_drawn_at_a_readable_size(shown):
    charts = shown.page.locator(".chart")
    assert charts.count() == 4  # status, timeline, durations, history
    for i in range(charts.count()):
        box = charts.nth(i).locator("canvas").first.bounding_box()  # where Bokeh drew it
        assert box is not None and box["width"] >= 600 and box["height"] >= 120, box
    graph = shown.page.locator(".graph svg").bounding_box()
    assert graph is not None and graph["width"] >= 400 and graph["height"] >= 100


def test_failures_are_collapsible_and_searchable(shown):
    page = shown.page
    groups = page.locator("details.group")
    assert groups.count() == 2
    assert not page.locator("ul.targets li").first.is_visible()  # collapsed
    page.fill("#failure-search", "load/11.pkl")
    assert groups.nth(0).is_visible() and not groups.nth(1).is_visible()
    hits = page.locator("ul.targets li:visible")
    assert hits.count() == 1 and hits.first.inner_text().endswith("load/11.pkl")
    page.fill("#failure-search", "")
    assert groups.nth(1).is_visible()
    assert shown.errors == []
