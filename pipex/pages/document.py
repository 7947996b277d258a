"""A report page: :class:`~pipex.pages.facts.Facts` as one self-contained HTML file.

The charts are Bokeh figures written with ``bokeh.embed.file_html`` and Bokeh's ``INLINE``
resources, so every script and style is inside the file and it opens offline; the tables,
the failure groups (collapsible, with a search box) and the step graph (the SVG ``pipex
graph`` draws) are plain HTML. Every text is escaped; every location was redacted when read.
"""

from __future__ import annotations

import html
import time
from collections.abc import Iterable, Sequence
from typing import Any

from bokeh.embed import file_html
from bokeh.resources import INLINE

from pipex.core.grouping import FailureGroup
from pipex.pages import charts
from pipex.pages.durations import spreads
from pipex.pages.facts import Facts, slowest
from pipex.pages.timeline import bars
from pipex.running.records import Run

#: Blocks of Bokeh's page template (``bokeh.core.templates.FILE``, which this extends).
TEMPLATE = """
{% block postamble %}<style>{{ style }}</style>{% endblock %}
{% block contents %}
{% for part in parts %}{% if part.root %}<div class="chart">{{ embed(roots[part.root]) }}</div>
{% else %}{{ part.html }}
{% endif %}{% endfor %}
{% endblock %}
{% block inner_body %}{{ super() }}<script>{{ search }}</script>{% endblock %}
"""

STYLE = """
html, body { height: auto; display: block; }
body { font-family: Helvetica, Arial, sans-serif; margin: 24px auto; max-width: 1000px;
  color: #263238; font-size: 14px; padding: 0 12px; }
h1 { font-size: 22px; margin-bottom: 4px; } h2 { font-size: 18px; margin-top: 32px;
  border-bottom: 1px solid #cfd8dc; padding-bottom: 4px; } h3 { font-size: 15px; }
.meta { color: #546e7a; margin: 2px 0; }
table { border-collapse: collapse; margin: 10px 0; }
th, td { padding: 3px 10px; text-align: right; border-bottom: 1px solid #eceff1; }
th:first-child, td:first-child { text-align: left; }
td.text { text-align: left; font-family: monospace; font-size: 12px; }
.chart { margin: 8px 0; }
details.group { border: 1px solid #ef9a9a; border-radius: 4px; margin: 8px 0;
  padding: 6px 10px; background: #fff8f8; }
details.group > summary { cursor: pointer; }
.count { font-weight: bold; color: #c62828; }
pre { background: #f5f5f5; padding: 8px; overflow-x: auto; font-size: 12px; }
ul.targets { max-height: 240px; overflow-y: auto; font-family: monospace; font-size: 12px; }
.graph { overflow-x: auto; } .graph svg { max-width: 100%; height: auto; }
input[type=search] { width: 60%; padding: 4px; font-size: 14px; }
"""

#: Filters failure groups and their targets by the text typed in the search box.
SEARCH = """
(function () {
  var box = document.getElementById("failure-search");
  if (!box) { return; }
  box.addEventListener("input", function () {
    var text = box.value.toLowerCase();
    document.querySelectorAll("details.group").forEach(function (group) {
      var head = group.querySelector("summary").textContent.toLowerCase();
      var shown = 0;
      group.querySelectorAll("ul.targets li").forEach(function (item) {
        var hit = !text || head.indexOf(text) >= 0 ||
          item.textContent.toLowerCase().indexOf(text) >= 0;
        item.style.display = hit ? "" : "none";
        shown += hit ? 1 : 0;
      });
      group.style.display = (!text || head.indexOf(text) >= 0 || shown) ? "" : "none";
      if (text && shown && head.indexOf(text) < 0) {
        group.open = true;
        group.querySelectorAll("details").forEach(function (inner) { inner.open = true; });
      }
    });
  });
})();
"""


def render(facts: Facts) -> str:
    """The HTML text of the page of ``facts``."""
    palette = charts.colours(facts.steps)
    parts: list[dict[str, str]] = []
    models: list[Any] = []

    def text(*chunks: str) -> None:
        parts.append({"html": "".join(chunks)})

    def chart(model: Any) -> None:
        models.append(model)
        parts.append({"root": model.name})

    text(f"<h1>{_e(facts.title)}</h1>", _summary(facts))
    text("<h2>Status per step</h2>")
    if facts.status.steps:
        chart(charts.status(facts.status))
    text(_status_table(facts))
    text("<h2>The run</h2>")
    timeline = bars(facts.timed)
    if facts.timed:
        how = " (binned: each bar is the step that kept the thread busiest)" * timeline.binned
        text(f"<h3>Task runs per worker thread{how}</h3>")
        chart(charts.timeline(timeline, palette))
        spread = spreads(facts.timed, facts.steps)
        text("<h3>Durations per step</h3>")
        chart(charts.durations(spread, palette))
        text(_durations_table(spread), "<h3>Slowest task runs</h3>", _slowest(facts))
    else:
        text("<p>No timed task runs recorded for this run.</p>")
    text("<h2>Failures</h2>", _failures(facts.failures))
    text("<h2>Run history</h2>")
    if facts.history:
        chart(charts.history(facts.history))
    text(_history_table(facts.history))
    text("<h2>Step graph</h2>", f"<div class='graph'>{facts.graph_svg}</div>")
    page: str = file_html(
        models,
        INLINE,
        facts.title,
        template=TEMPLATE,
        template_variables={"parts": parts, "style": STYLE, "search": SEARCH},
    )
    return page


def _e(value: object) -> str:
    return html.escape(str(value))


def _summary(facts: Facts) -> str:
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime())
    lines = [f"<p class='meta'>Written {stamp}.</p>"]
    run = facts.run
    if run is None:
        why = "no run of these targets recorded" if not facts.ledger else "that run not found"
        lines.append(f"<p class='meta'>Run: none ({why} in the run ledger).</p>")
        return "".join(lines)
    began = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(run.started))
    lines.append(
        f"<p class='meta'>Run <code>{_e(run.run)}</code>: started {began}, "
        f"{max(run.finished - run.started, 0.0):.1f} s, {run.ran:,} ran, "
        f"{run.failed:,} failed, {run.not_run:,} not run, {_e(run.ended)}.</p>"
    )
    return "".join(lines)


def _table(header: Sequence[str], rows: Iterable[Sequence[object]], texts: int = 1) -> str:
    """A table; the first ``texts`` columns are text, the rest numbers."""
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = []
    for row in rows:
        cells = [
            f"<td class='text'>{_e(v)}</td>" if i < texts else f"<td>{_number(v)}</td>"
            for i, v in enumerate(row)
        ]
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _number(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.3f}"
    if isinstance(value, int):
        return f"{value:,}"
    return _e(value)


def _status_table(facts: Facts) -> str:
    header = ["step", "done", "to run", "failed last time", "not checked"]
    header += ["ran", "failed", "not run"]
    rows = []
    for step in facts.steps:
        c = facts.status.steps.get(step)
        now = (c.done, c.to_run, c.failed, c.not_checked) if c else ("", "", "", "")
        run = facts.counts.get(step, {})
        rows.append((step, *now, *(run.get(s, 0) for s in ("ran", "failed", "not run"))))
    total = facts.status.total
    ran = [sum(c.get(s, 0) for c in facts.counts.values()) for s in ("ran", "failed", "not run")]
    rows.append(("total", total.done, total.to_run, total.failed, total.not_checked, *ran))
    return (
        "<p class='meta'>Now: what <code>pipex.compute</code> would find done and run. "
        "This run: what its task runs did.</p>" + _table(header, rows)
    )


def _durations_table(spread: Sequence[Any]) -> str:
    header = ("step", "task runs", "median s", "mean s", "longest s", "total s")
    rows = [(s.step, s.runs, s.median, s.mean, s.most, s.total) for s in spread]
    return _table(header, rows)


def _slowest(facts: Facts) -> str:
    rows = [(t.target, t.step, t.worker, t.duration) for t in slowest(facts.timed)]
    return _table(("target", "step", "worker", "seconds"), rows, texts=3)


def _failures(groups: Sequence[FailureGroup]) -> str:
    if not groups:
        return "<p>No task failed in this run.</p>"
    total = sum(g.count for g in groups)
    out = [
        f"<p>{total:,} task run(s) failed, in {len(groups):,} group(s) by step and error.</p>",
        "<p><input type='search' id='failure-search' placeholder='Search failures: step, "
        "error, target' aria-label='Search failures'></p>",
    ]
    for g in groups:
        more = g.count - len(g.targets)
        listed = "".join(f"<li>{_e(t)}</li>" for t in g.targets)
        if more > 0:
            listed += f"<li class='more'>... and {more:,} more</li>"
        out.append(
            "<details class='group'><summary>"
            f"<span class='count'>{g.count:,}</span> &times; <b>{_e(g.step)}</b>: "
            f"{_e(g.error)}: {_e(g.message)}</summary>"
            f"<pre>{_e(g.traceback)}</pre>"
            f"<details><summary>targets ({len(g.targets):,} of {g.count:,})</summary>"
            f"<ul class='targets'>{listed}</ul></details></details>"
        )
    return "".join(out)


def _history_table(runs: Sequence[Run]) -> str:
    if not runs:
        return "<p>No runs recorded in the run ledger.</p>"
    header = ("run", "started", "ended", "seconds", "ran", "failed", "not run")
    rows = [
        (
            r.run,
            time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r.started)),
            r.ended,
            round(max(r.finished - r.started, 0.0), 2),
            r.ran,
            r.failed,
            r.not_run,
        )
        for r in runs
    ]
    return _table(header, rows, texts=3)
