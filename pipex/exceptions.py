"""Exceptions raised by pipex. Every one derives from :class:`PipexError`::

PipexError
├── TargetError (ValueError)         a template or its fields give no safe location
│   └── TargetCollisionError         two different calls render the same target
├── SerializerError (ValueError)     no serializer fits a target's suffix
├── StoreError (OSError)             a store could not check, read or write a target
├── ModeError (ValueError)           PIPEX or a pipex.* setting names no known choice
│   └── SettingError                 a pipex.* setting's value is not one it accepts
└── PipelineError (ExceptionGroup)   tasks failed during pipex.compute
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from pipex.redact import redact


class PipexError(Exception):
    """Root of every error pipex raises. Its message never shows the credentials of a URL
    (:func:`pipex.redact.redact`)."""

    def __init__(self, *args: object) -> None:
        super().__init__(*(redact(a) if isinstance(a, str) else a for a in args))


class TargetError(PipexError, ValueError):
    """A target template or its fields cannot give a safe, usable location."""


class TargetCollisionError(TargetError):
    """Two different calls render the same target."""


class SerializerError(PipexError, ValueError):
    """No serializer fits a target's suffix."""


class StoreError(PipexError, OSError):
    """A store could not check, read or write a target."""


class ModeError(PipexError, ValueError):
    """The ``PIPEX`` environment variable names an unknown or unavailable mode."""


class SettingError(ModeError):
    """A ``pipex.*`` setting's value is not one it accepts (named with where it was set)."""


class TaskOutcome(Protocol):
    """What :class:`PipelineError` lists: a task by its key and target.

    The records themselves are :class:`pipex.core.outcomes.Failure` (``.exception``,
    ``.traceback``) and :class:`pipex.core.outcomes.NotRun` (``.causes``).
    """

    @property
    def key(self) -> str: ...

    @property
    def target(self) -> Any: ...


class PipelineError(PipexError, ExceptionGroup):
    """Tasks failed during :func:`pipex.compute`.

    ``exceptions`` holds each failed task's original exception, with a note naming the task,
    its target and (when it ran in another process) the worker's traceback. ``failed`` and
    ``not_run`` describe every task that failed and every task skipped because an input failed.
    """

    def __new__(
        cls, message: str, exceptions: Sequence[Exception], *args: object, **kwargs: object
    ) -> PipelineError:
        return super().__new__(cls, message, exceptions)

    def __init__(
        self,
        message: str,
        exceptions: Sequence[Exception],
        failed: Sequence[TaskOutcome] = (),
        not_run: Sequence[TaskOutcome] = (),
    ) -> None:
        super().__init__(message, exceptions)
        self.failed = list(failed)
        self.not_run = list(not_run)
        self.summary: Any = None  # the run's pipex.running.report.Summary, set by compute

    def derive(self, excs: Sequence[Exception]) -> ExceptionGroup:  # type: ignore[override]
        return ExceptionGroup(self.message, excs)

    def __str__(self) -> str:
        return self.message
