"""Worker plugin :class:`LogForwarding`: records logged inside tasks reach the client.

Records of the loggers named in ``pipex.distributed.forward-logs``, emitted on the workers,
are published as events and handed to the same-named loggers on the client, tagged with the
pipex task and the file:line they come from.
"""

from __future__ import annotations

import contextvars
import logging
from typing import Any

from distributed.diagnostics.plugin import WorkerPlugin

from pipex import settings

#: Event topic that workers publish forwarded log records on.
LOG_TOPIC = "pipex-forwarded-log"

#: The pipex task (``node.key``) running in this thread of a worker.
running_task: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "pipex_running_task", default=None
)


class LogForwarding(WorkerPlugin):
    """Publish the records of one logger (and those below it), emitted on the worker.

    Each record is tagged with the pipex task that emitted it; the client hands it to its own
    logger of the same name (see :func:`register_plugins`). Where the worker's logger would
    drop records of ``level``, the plugin lowers its level to ``level`` while registered.
    """

    idempotent = True

    def __init__(self, logger_name: str, level: int = logging.INFO) -> None:
        self.logger_name = logger_name
        self.level = level
        self._handler: _Publish | None = None
        self._old_level: int | None = None

    def setup(self, worker: Any) -> None:
        target = logging.getLogger(self.logger_name)
        self._handler = _Publish(worker, self.level)
        target.addHandler(self._handler)
        if target.getEffectiveLevel() > self.level:
            self._old_level = target.level
            target.setLevel(self.level)

    def teardown(self, worker: Any) -> None:
        target = logging.getLogger(self.logger_name)
        if self._handler is not None:
            target.removeHandler(self._handler)
        if self._old_level is not None:
            target.setLevel(self._old_level)


class _Publish(logging.Handler):
    def __init__(self, worker: Any, level: int) -> None:
        super().__init__(level)
        self.worker = worker

    def emit(self, record: logging.LogRecord) -> None:
        try:
            attributes = record_attributes(record, self)
            attributes["worker"] = self.worker.address
            self.worker.log_event(LOG_TOPIC, attributes)
        except Exception:
            self.handleError(record)


def record_attributes(record: logging.LogRecord, handler: logging.Handler) -> dict[str, Any]:
    """A record as plain values (message formatted, traceback as text), tagged with its task."""
    if record.exc_info and not record.exc_text:
        record.exc_text = logging.Formatter().formatException(record.exc_info)
    attributes = dict(record.__dict__)
    attributes["msg"] = record.getMessage()
    attributes["args"] = None
    attributes["exc_info"] = None
    attributes.pop("message", None)
    if attributes.get("pipex_task") is None:
        attributes["pipex_task"] = current_task()
    return {k: v for k, v in attributes.items() if _plain(v)}


def _plain(value: Any) -> bool:
    return value is None or type(value) in (str, int, float, bool)


def current_task() -> str | None:
    """The pipex task (``node.key``) running in this thread; else the dask key, if any."""
    name = running_task.get()
    if name is not None:
        return name
    try:
        from distributed.worker import thread_state
    except ImportError:
        return None
    key = getattr(thread_state, "key", None)
    return None if key is None else str(key)


def on_forwarded_record(event: tuple[float, dict[str, Any]]) -> None:
    """On the client: emit a worker's record on the same-named logger, if still forwarded."""
    _, attributes = event
    name = attributes.get("name") or ""
    if not any(name == n or name.startswith(n + ".") for n in forwarded_loggers()):
        return
    record = logging.makeLogRecord(attributes)
    task = attributes.get("pipex_task")
    where = f"{record.filename}:{record.lineno}"
    record.msg = f"[{task} {where}] {record.msg}" if task else f"[{where}] {record.msg}"
    logging.getLogger(name).handle(record)


def forwarded_loggers() -> list[str]:
    """The loggers named in ``pipex.distributed.forward-logs``."""
    names = settings.get("distributed.forward-logs") or []
    if isinstance(names, str):
        names = [names]
    return [str(n) for n in names]


def level_number(value: Any) -> int:
    if isinstance(value, int):
        return value
    level = logging.getLevelName(str(value).upper())
    if not isinstance(level, int):
        raise ValueError(
            f"pipex.distributed.forward-logs-level: {value!r} is not a logging level "
            "(use DEBUG, INFO, WARNING, ERROR or a number)"
        )
    return level
