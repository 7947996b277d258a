"""``pipex demo`` writes its run's report page and says where it is."""

from __future__ import annotations

from click.testing import CliRunner

from pipex.cli import main


def test_the_demo_writes_a_report_and_prints_where_it_is(tmp_path):
    folder = tmp_path / "demo"
    result = CliRunner().invoke(main, ["demo", str(folder), "--images", "3", "--damaged", "1"])
    assert result.exit_code == 1  # the damaged page failed
    assert f"report: {folder / 'report.html'}" in result.output
    page = (folder / "report.html").read_text(encoding="utf-8")
    assert "page-00003 is unreadable: the scanner jammed" in page
    assert "1 task run(s) failed, in 1 group(s)" in page

    result = CliRunner().invoke(main, ["demo", str(folder), "--images", "3"])
    assert result.exit_code == 0, result.output
    assert "ran 4," in result.output  # only the damaged page's four tasks
    assert f"report: {folder / 'report.html'}" in result.output
    assert "No task failed in this run." in (folder / "report.html").read_text(encoding="utf-8")
