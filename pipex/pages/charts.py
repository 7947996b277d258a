"""The charts of a report page, drawn with Bokeh (dask's dashboard library).

Each chart is a Bokeh figure named after its section (``status``, ``timeline``,
``durations``, ``history``); :mod:`pipex.pages.document` embeds them in the page, with Bokeh's
own script inline. Steps keep one colour throughout the page.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from bokeh.models import ColumnDataSource, FactorRange, HoverTool
from bokeh.palettes import Category10_10, Category20_20
from bokeh.plotting import figure
from bokeh.transform import factor_cmap

from pipex.pages.durations import Spread
from pipex.pages.timeline import Bars
from pipex.running.records import Run
from pipex.steer.picture import STATES
from pipex.steer.status import Status

#: Width of every chart, in CSS pixels; the height of one row of a chart with a row per item.
WIDTH, ROW = 960, 30
#: Colours of how runs ended.
ENDINGS = {
    "finished": "#66bb6a",
    "interrupted": "#ffa726",
    "stopped": "#ef5350",
    "killed": "#8e24aa",
    "running": "#42a5f5",
    "-": "#b0bec5",
}
TOOLS = "pan,xwheel_zoom,box_zoom,reset,save"


def colours(steps: Sequence[str]) -> dict[str, str]:
    """One colour per step, in order (colours repeat past twenty steps)."""
    palette = Category10_10 if len(steps) <= 10 else Category20_20
    return {step: palette[i % len(palette)] for i, step in enumerate(steps)}


def _figure(name: str, height: int, **options: Any) -> Any:
    plot = figure(
        name=name, width=WIDTH, height=height, tools=TOOLS, toolbar_location="right", **options
    )
    plot.toolbar.logo = None
    plot.outline_line_color = None
    plot.grid.grid_line_alpha = 0.4
    return plot


def status(steps: Status) -> Any:
    """Per step, its targets by state: a stacked bar each."""
    names = list(steps.steps)
    counts = list(steps.steps.values())
    data = {
        "step": names,
        "done": [c.done for c in counts],
        "to run": [c.to_run - c.failed for c in counts],
        "failed": [c.failed for c in counts],
        "unchecked": [c.not_checked for c in counts],
    }
    states = list(STATES)
    plot = _figure(
        "status",
        70 + ROW * len(names),
        y_range=FactorRange(factors=list(reversed(names))),
        x_axis_label="targets",
    )
    plot.hbar_stack(
        states,
        y="step",
        height=0.7,
        color=[STATES[s] for s in states],
        source=ColumnDataSource(data),
        legend_label=["done", "to run", "failed last time", "not checked"],
    )
    plot.add_tools(HoverTool(tooltips=[("step", "@step"), *((s, f"@{{{s}}}") for s in states)]))
    plot.legend.orientation = "horizontal"
    plot.legend.location = "top_right"
    plot.x_range.start = 0
    return plot


def timeline(bars: Bars, palette: dict[str, str]) -> Any:
    """The task runs (or time bins) per worker thread, coloured by step."""
    lanes = bars.lanes
    plot = _figure(
        "timeline",
        110 + (ROW if len(lanes) < 30 else 12) * len(lanes),
        y_range=FactorRange(factors=list(reversed(lanes))),
        x_axis_label="seconds since the run's first task started",
    )
    steps = list(palette)
    plot.hbar(
        y="lane",
        left="start",
        right="end",
        height=0.8,
        source=ColumnDataSource(bars.columns()),
        color=factor_cmap("step", [palette[s] for s in steps], steps),
        fill_alpha="busy",
        line_alpha=0.0,
        legend_field="step",
    )
    what = "task runs started" if bars.binned else "task runs"
    plot.add_tools(
        HoverTool(
            tooltips=[
                ("step", "@step"),
                ("worker", "@lane"),
                ("from", "@start{0.000} s"),
                ("to", "@end{0.000} s"),
                (what, "@runs"),
            ]
        )
    )
    plot.yaxis.major_label_text_font_size = "10px"
    plot.legend.orientation = "horizontal"
    plot.legend.location = "top_left"
    plot.add_layout(plot.legend[0], "above")
    return plot


def durations(spreads: Sequence[Spread], palette: dict[str, str]) -> Any:
    """Per step, the spread of its task runs' durations: least to most, the middle half as
    a bar, the median as a tick."""
    names = [s.step for s in spreads]
    data = {
        "step": names,
        "least": [s.least for s in spreads],
        "lower": [s.lower for s in spreads],
        "median": [s.median for s in spreads],
        "upper": [s.upper for s in spreads],
        "most": [s.most for s in spreads],
        "mean": [s.mean for s in spreads],
        "runs": [s.runs for s in spreads],
        "colour": [palette.get(s.step, "#90a4ae") for s in spreads],
    }
    source = ColumnDataSource(data)
    plot = _figure(
        "durations",
        70 + ROW * len(names),
        y_range=FactorRange(factors=list(reversed(names))),
        x_axis_label="seconds per task run",
    )
    plot.segment(x0="least", x1="most", y0="step", y1="step", source=source, color="#546e7a")
    bars = plot.hbar(
        y="step", left="lower", right="upper", height=0.6, source=source, color="colour"
    )
    plot.scatter(x="median", y="step", source=source, marker="dash", size=18, color="black")
    plot.add_tools(
        HoverTool(
            renderers=[bars],
            tooltips=[
                ("step", "@step"),
                ("task runs", "@runs"),
                ("least", "@least{0.000} s"),
                ("median", "@median{0.000} s"),
                ("mean", "@mean{0.000} s"),
                ("most", "@most{0.000} s"),
            ],
        )
    )
    plot.x_range.start = 0
    return plot


def history(runs: Sequence[Run]) -> Any:
    """The runs, oldest first: how long each took, coloured by how it ended."""
    ordered = list(reversed(runs))
    labels = [f"{time.strftime('%m-%d %H:%M:%S', time.localtime(r.started))}" for r in ordered]
    labels = [f"{label} #{i + 1}" for i, label in enumerate(labels)]  # unique factors
    data = {
        "label": labels,
        "run": [r.run for r in ordered],
        "seconds": [round(max(r.finished - r.started, 0.0), 3) for r in ordered],
        "ran": [r.ran for r in ordered],
        "failed": [r.failed for r in ordered],
        "not_run": [r.not_run for r in ordered],
        "ended": [r.ended for r in ordered],
        "colour": [ENDINGS.get(r.ended, ENDINGS["-"]) for r in ordered],
    }
    plot = _figure("history", 280, x_range=FactorRange(factors=labels), y_axis_label="seconds")
    plot.vbar(
        x="label",
        top="seconds",
        width=0.7 if len(labels) > 4 else 0.2 * len(labels),
        source=ColumnDataSource(data),
        color="colour",
        legend_field="ended",
    )
    plot.add_tools(
        HoverTool(
            tooltips=[
                ("run", "@run"),
                ("seconds", "@seconds{0.00}"),
                ("ran", "@ran"),
                ("failed", "@failed"),
                ("not run", "@not_run"),
                ("ended", "@ended"),
            ]
        )
    )
    plot.xaxis.major_label_orientation = 0.8
    plot.y_range.start = 0
    plot.legend.location = "top_left"
    return plot
