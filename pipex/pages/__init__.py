"""Report pages: one self-contained HTML file that shows a pipeline and its latest run.

:func:`report` (``pipex.report``, ``pipex report``) and :class:`RunPage` (what
``pipex.compute(..., report=...)`` writes when the run ends) gather the facts
(:mod:`~pipex.pages.facts`: a resolution and the run ledger, never an output) and write them
with Bokeh (:mod:`~pipex.pages.document`), which is imported only then: without the
``report`` extra, an ``ImportError`` says what to install.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

logger = logging.getLogger("pipex")

EXTRA = "pip install 'dask-pipex[report]'"


def report(
    *nodes: Any, filename: str | os.PathLike[str] = "report.html", title: str | None = None
) -> str:
    """Write the report page of the pipeline below ``nodes`` into ``filename``; returns its
    path.

    One HTML file that opens offline in any browser: status per step (a chart and a table),
    the timeline and durations of the latest run that wrote one of its targets, its slowest
    tasks, its failures grouped by step and error, the history of runs, and the step graph
    coloured by status. Costs a resolution and reads of the run ledger; no output is loaded.
    Needs the ``report`` extra (Bokeh).
    """
    return _write(nodes, filename, title, run=None)


class RunPage:
    """The report page of one :func:`pipex.compute` run, written when it ends however it
    ends; made before it starts, so that a missing extra is said before anything runs."""

    def __init__(self, filename: str | os.PathLike[str]) -> None:
        _document()
        self.filename = os.fspath(filename)

    def write(self, nodes: Sequence[Any], run: str | None = None) -> str | None:
        """Write the page of ``run`` (``None``: the latest run of these targets, the one just
        made if it ran anything); a page that cannot be written is a warning, never the
        run's error."""
        try:
            return _write(nodes, self.filename, None, run=run)
        except Exception as exc:
            logger.warning(
                "pipex: could not write the run's report page %s (%s: %s)",
                self.filename,
                type(exc).__name__,
                exc,
            )
            return None


def _write(
    nodes: Sequence[Any], filename: str | os.PathLike[str], title: str | None, run: str | None
) -> str:
    document = _document()
    from pipex.pages.facts import gather

    path = os.fspath(filename)
    facts = gather(nodes, title or "pipex report", run=run)
    text = document.render(facts)
    folder = os.path.dirname(path)
    if folder:
        os.makedirs(folder, exist_ok=True)
    with open(path, "w", encoding="utf-8") as file:
        file.write(text)
    return path


def _document() -> Any:
    """:mod:`pipex.pages.document`, or the ``ImportError`` that names the extra."""
    try:
        from pipex.pages import document
    except ImportError as exc:
        if str(exc.name or "").startswith("pipex"):  # pipex's own: a bug, as it is
            raise
        raise ImportError(
            f"pipex's report page needs Bokeh, which is not installed ({exc}): {EXTRA}"
        ) from exc
    return document
