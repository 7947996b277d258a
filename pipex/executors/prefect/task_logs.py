"""What a dask worker runs for a node of a ``graph`` task run: the node's call, the log
records it emits sent to that task run.

Prefect is imported on the worker with the first record a task logs, not before: a worker
whose tasks log nothing never pays for importing it (seconds per worker process).
"""

from __future__ import annotations

from typing import Any

from pipex.core import worker
from pipex.core.outcomes import Outcome
from pipex.core.worker import Call
from pipex.executors.prefect.logs import logs_to


class LogContext:
    """The ids that route a log record to one Prefect task run (opaque to dask)."""

    __slots__ = ("extra",)

    def __init__(self, extra: dict[str, Any]) -> None:
        self.extra = extra

    def __reduce__(self) -> tuple[Any, ...]:
        return (LogContext, (self.extra,))


class _RunLogger:
    """The run logger of one task run, made (and Prefect imported) on its first record."""

    __slots__ = ("extra", "logger")

    def __init__(self, extra: dict[str, Any]) -> None:
        self.extra = extra
        self.logger: Any = None

    def log(self, level: int, message: str, *args: Any, **kwargs: Any) -> None:
        if self.logger is None:
            from pipex.executors.prefect.runtime import (
                PrefectLogAdapter,
                get_logger,
                logging_configured,
            )

            logging_configured()
            self.logger = PrefectLogAdapter(get_logger("prefect.task_runs"), extra=self.extra)
        self.logger.log(level, message, *args, **kwargs)


def run_logged(context: LogContext, call: Call, keep_going: bool, *inputs: Outcome) -> Outcome:
    """:func:`~pipex.core.worker.execute_call`, what the call logs sent to the task run."""
    with logs_to(_RunLogger(context.extra)):
        return worker.execute_call(call, keep_going, *inputs)
