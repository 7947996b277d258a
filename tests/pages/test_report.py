"""The report page as a file: the three ways to make it, what it holds, that it stands alone
(no network), that credentials stay out of it, its size at 20,000 task runs, and the error
without the ``report`` extra."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import dask
import pytest
from click.testing import CliRunner

import pipex
from pipex.cli import main
from tests.integration.processes import environment
from tests.pages import pipeline

ROOT = Path(__file__).resolve().parents[2]


def text_of(page: Path) -> str:
    return page.read_text(encoding="utf-8")


def test_pipex_report_writes_one_page_that_needs_no_network(failed_run, tmp_path):
    _, nodes = failed_run
    written = pipex.report(nodes, filename=tmp_path / "sub" / "report.html")
    assert written == str(tmp_path / "sub" / "report.html")
    page = text_of(Path(written))
    for step in ("load", "scale", "total"):
        assert f">{step}<" in page
    assert "Bokeh" in page and "<svg" in page  # the charts' library and the step graph, inline
    # nothing fetched: no external script, style, image or font
    assert not re.search(r"<(script|link|img)[^>]+(src|href)=", page)
    assert "url(http" not in page and "@import" not in page
    # loads 1, 6 and 11 failed with one error, 2 with another
    assert "4 task run(s) failed, in 2 group(s)" in page
    assert "KeyError" in page and "no field 2" in page  # a group of one: its own message
    assert "ValueError" in page and "is unreadable at" in page


def test_credentials_in_urls_never_appear_in_the_page(failed_run, tmp_path):
    _, nodes = failed_run
    page = text_of(Path(pipex.report(nodes, filename=tmp_path / "report.html")))
    assert pipeline.SECRET not in page
    assert "unreadable" in page


def test_compute_writes_the_report_of_its_run_when_it_fails(tmp_path):
    nodes = pipeline.build(6, str(tmp_path / "out"))
    with pytest.raises(pipex.PipelineError):
        pipex.compute(nodes, progress=False, report=tmp_path / "run.html")
    page = text_of(tmp_path / "run.html")
    assert "2 task run(s) failed" in page and "no field 2" in page
    assert page.count("<tr><td class='text'>20") == 1  # one run in the history


@pipex.task(target="{path}/slow/{i}.pkl")
def interrupted(i: int) -> int:
    if i == 3:
        raise KeyboardInterrupt
    return i


def test_compute_writes_the_report_when_the_run_is_interrupted(tmp_path):
    with pipex.context(path=str(tmp_path / "out")):
        nodes = [interrupted(i) for i in range(6)]
    with pytest.raises(KeyboardInterrupt):
        pipex.compute(nodes, scheduler="sync", progress=False, report=tmp_path / "run.html")
    page = text_of(tmp_path / "run.html")
    assert "interrupted" in page and ">interrupted<" in page


def test_compute_writes_the_report_when_nothing_was_left_to_run(tmp_path):
    with pytest.raises(pipex.PipelineError):
        pipex.compute(pipeline.build(6, str(tmp_path / "out")), progress=False)
    nodes = pipeline.build(6, str(tmp_path / "out"), bad=0)
    pipex.compute(nodes, progress=False)
    pipex.compute(nodes, progress=False, report=tmp_path / "again.html")
    page = text_of(tmp_path / "again.html")
    assert "No task failed in this run." in page  # the latest run: the one that fixed it


def test_pipex_report_command(failed_run, tmp_path, monkeypatch):
    folder, _ = failed_run
    monkeypatch.chdir(tmp_path)
    entry = f"{ROOT / 'tests' / 'pages' / 'pipeline.py'}:build"
    result = CliRunner().invoke(
        main, ["report", entry, "-o", "page.html", "--param", f"path={folder / 'out'}"]
    )
    assert result.exit_code == 0, result.output
    assert "Wrote page.html" in result.output
    page = text_of(tmp_path / "page.html")
    assert "pipex report: " in page and "no field 2" in page


def test_the_command_in_a_real_process(failed_run, tmp_path):
    folder, _ = failed_run
    entry = f"{ROOT / 'tests' / 'pages' / 'pipeline.py'}:build"
    out, path = str(tmp_path / "p.html"), f"path={folder / 'out'}"
    done = subprocess.run(
        [sys.executable, "-m", "pipex", "report", entry, "-o", out, "--param", path],
        env=environment(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "p.html").stat().st_size > 100_000


def test_without_the_extra_an_import_error_names_it_before_anything_runs(tmp_path):
    script = textwrap.dedent(
        f"""
        import sys
        sys.modules["bokeh"] = None  # as if Bokeh were not installed
        import pipex

        calls = []

        @pipex.task(target="{tmp_path}/out/{{i}}.pkl")
        def step(i):
            calls.append(i)
            return i

        for make in (
            lambda: pipex.report([step(1)], filename="{tmp_path}/r.html"),
            lambda: pipex.compute([step(1)], report="{tmp_path}/r.html"),
        ):
            try:
                make()
            except ImportError as exc:
                print(exc)
        print("calls", len(calls))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], env=environment(), capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 3, done.stdout
    assert all("pip install 'dask-pipex[report]'" in line for line in lines[:2])
    assert lines[2] == "calls 0"
    assert not (tmp_path / "r.html").exists()


def test_without_the_ledger_the_page_shows_the_status_and_says_there_is_no_run(tmp_path):
    nodes = pipeline.build(6, str(tmp_path / "out"))
    with dask.config.set({"pipex.ledger": False}), pytest.raises(pipex.PipelineError):
        pipex.compute(nodes, progress=False, report=tmp_path / "run.html")
    page = text_of(tmp_path / "run.html")
    assert "Run: none (no run of these targets recorded in the run ledger)." in page
    assert "No timed task runs recorded for this run." in page
    assert ">scale<" in page and "<svg" in page


def test_the_page_of_mapped_steps_counts_items_without_a_node_per_item(tmp_path, monkeypatch):
    import pipex.mapped

    @pipex.task(target=f"{tmp_path}/out/first/{{i}}.pkl")
    def first(i: int) -> int:
        return i

    @pipex.task(target=f"{tmp_path}/out/second/{{x.stem}}.pkl")
    def second(x: int) -> int:
        return 2 * x

    mapped = second.map(first.map(range(3000)))
    pipex.compute(mapped, progress=False)
    made = []
    item_node = pipex.mapped.item_node
    monkeypatch.setattr(
        pipex.mapped, "item_node", lambda family, i: made.append(i) or item_node(family, i)
    )

    page = text_of(Path(pipex.report([mapped], filename=tmp_path / "report.html")))

    assert len(made) < 10  # not one per item
    assert ">first<" in page and ">second<" in page
    assert "3,000" in page  # each step's count of done targets
