"""The progress bar of :func:`pipex.compute`: only tasks that will run, failures counted.

A tqdm bar (quiet when stderr is not a terminal, or when ``pipex.progress`` is false).
Finished targets found during resolution are shown as already done, not as progress.
"""

from __future__ import annotations

import sys
from typing import Any

from dask.callbacks import Callback

from pipex import config
from pipex.execution import Failure, NotRun


def enabled() -> bool:
    """Whether to show progress: ``pipex.progress`` true, or ``"auto"`` and stderr a tty."""
    setting = config.get("progress")
    if isinstance(setting, str) and setting.lower() == "auto":
        return sys.stderr.isatty()
    return bool(setting)


class Progress:
    """Counts tasks as they finish; draws a bar when enabled."""

    def __init__(self, total: int, done: int, show: bool | None = None) -> None:
        self.failed = 0
        self.not_run = 0
        self._bar = None
        if enabled() if show is None else show:
            from tqdm.auto import tqdm

            self._bar = tqdm(
                total=total,
                desc=f"pipex ({done} already done)",
                unit="task",
                file=sys.stderr,
                dynamic_ncols=True,
            )

    def advance(self, outcome: Any) -> None:
        """Count one finished task."""
        if isinstance(outcome, Failure):
            self.failed += 1
        elif isinstance(outcome, NotRun):
            self.not_run += 1
        if self._bar is not None:
            if self.failed or self.not_run:
                self._bar.set_postfix(failed=self.failed, not_run=self.not_run, refresh=False)
            self._bar.update(1)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class LocalProgress(Callback):
    """Feeds a :class:`Progress` from dask's local schedulers (threads, sync, processes)."""

    def __init__(self, progress: Progress) -> None:
        super().__init__()
        self.progress = progress

    def _posttask(self, key: Any, result: Any, dsk: Any, state: Any, worker_id: Any) -> None:
        self.progress.advance(result)
