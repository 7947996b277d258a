"""Log records of task functions, sent to the Prefect run logger of their task run."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pipex.redact import redact, scrub


class _ToRunLogger(logging.Handler):
    """Forwards the log records of one thread to a Prefect run logger."""

    def __init__(self, run_logger: Any, thread: int) -> None:
        super().__init__()
        self.run_logger = run_logger
        self.thread = thread

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread != self.thread or record.name.split(".", 1)[0] == "prefect":
            return
        try:
            message = record.getMessage()
            if record.exc_info and record.exc_info[1] is not None:
                scrub(record.exc_info[1])
            if record.name != "root":
                message = f"{record.name}: {message}"
            self.run_logger.log(record.levelno, "%s", redact(message), exc_info=record.exc_info)
        except Exception:
            self.handleError(record)


@contextmanager
def logs_to(run_logger: Any) -> Iterator[None]:
    """Send what this thread logs (any logger, at its own level) to ``run_logger``."""
    handler = _ToRunLogger(run_logger, threading.get_ident())
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)
