"""Exceptions raised by pipex. Every one derives from :class:`PipexError`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pipex.execution import Failure, NotRun


class PipexError(Exception):
    """Root of every error pipex raises."""


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
        failed: Sequence[Failure] = (),
        not_run: Sequence[NotRun] = (),
    ) -> None:
        super().__init__(message, exceptions)
        self.failed = list(failed)
        self.not_run = list(not_run)
        self.summary = None  # the run's pipex.report.Summary, set by pipex.compute

    def derive(self, excs: Sequence[Exception]) -> ExceptionGroup:  # type: ignore[override]
        return ExceptionGroup(self.message, excs)

    def __str__(self) -> str:
        return self.message
