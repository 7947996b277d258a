"""The progress bar of :func:`pipex.compute`: only tasks that will run, failures counted.

A tqdm bar (quiet when stderr is not a terminal, or when ``pipex.progress`` is false).
Requested targets found done are shown as already done (the summary's figure), not as
progress. Whether the summary line is printed is decided here too.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from pipex import settings
from pipex.core.outcomes import Tally


def enabled() -> bool:
    """Whether to show progress: ``pipex.progress`` true, or ``"auto"`` and stderr a tty."""
    setting = settings.get("progress")
    if isinstance(setting, str) and setting.lower() == "auto":
        return sys.stderr.isatty()
    return bool(setting)


def announced(progress: bool | None = None) -> bool:
    """Whether :func:`pipex.compute` prints its summary line on stderr: unless ``progress``
    is false, or it is ``None`` and ``pipex.progress`` is false (terminal or not)."""
    if progress is not None:
        return bool(progress)
    setting = settings.get("progress")
    return (isinstance(setting, str) and setting.lower() == "auto") or bool(setting)


class Progress:
    """Counts tasks as they finish; draws a bar when enabled. An observer of a run."""

    def __init__(self, total: int, done: int, show: bool | None = None) -> None:
        self.tally = Tally()
        self.done = done
        self._bar = None
        if enabled() if show is None else show:
            from tqdm.auto import tqdm

            self._bar = tqdm(
                total=total,
                desc=self._label(),
                unit="task",
                file=sys.stderr,
                dynamic_ncols=True,
            )

    def record(self, key: str, outcome: Any) -> None:
        """Count one finished task."""
        tally = self.tally
        tally.add(outcome)
        if self._bar is not None:
            if tally.failed or tally.not_run:
                self._bar.set_postfix(failed=tally.failed, not_run=tally.not_run, refresh=False)
            self._bar.update(1)

    def batch(self, batch: Any, result: Any) -> None:
        """Count a batch of items at once."""
        tally = self.tally
        tally.ran += sum(result.ran)
        for _, _, outcome in result.outcomes:
            tally.add(outcome)
        if self._bar is not None:
            if tally.failed or tally.not_run:
                self._bar.set_postfix(failed=tally.failed, not_run=tally.not_run, refresh=False)
            self._bar.update(sum(result.ran) + len(result.outcomes))

    def planned(self, nodes: Sequence[Any]) -> None:
        """Count more tasks to run (an expansion's)."""
        if self._bar is not None and nodes:
            self._bar.total = (self._bar.total or 0) + len(nodes)
            self._bar.refresh()

    def found(self, done: int) -> None:
        """Show ``done`` requested targets as already done (the expansions' found since)."""
        if done != self.done:
            self.done = done
            if self._bar is not None:
                self._bar.set_description(self._label())

    def _label(self) -> str:
        return f"pipex ({self.done} already done)"

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
