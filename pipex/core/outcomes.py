"""What became of each task that was to run: its :class:`Target`, a :class:`Failure`, or
:class:`NotRun` because an input failed (or :class:`Waited`, a Target another runner wrote;
:class:`Claimed`, not run yet because another runner is writing it); the one rule that says
which, and the one tally.

A task's key (``node.key``, ``"<funcname>-<target path>"``) names it in every outcome.
"""

from __future__ import annotations

import pickle
import re
import traceback
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import cloudpickle

from pipex.core.targets import Target


@dataclass(frozen=True)
class Failure:
    """A task that raised: its exception and the traceback text from where it ran."""

    key: str
    target: Target
    exception: BaseException
    traceback: str

    def __reduce__(self) -> tuple[Any, ...]:
        return (Failure, (self.key, self.target, portable(self.exception), self.traceback))

    @property
    def step(self) -> str:
        """The task's funcname: its key without the target (``"<funcname>-<target>"``)."""
        key, target = self.key, self.target
        for where in (getattr(target, "path", None), str(target)):
            if where and key.endswith("-" + where) and len(key) > len(where) + 1:
                return key[: -len(where) - 1]
        return key.split("-", 1)[0]

    @property
    def error(self) -> str:
        """The exception's type name (``"ValueError"``)."""
        return type(self.exception).__name__

    @property
    def message(self) -> str:
        """The exception's message, without its notes."""
        return str(self.exception)


@dataclass(frozen=True)
class NotRun:
    """A task skipped because an input failed; ``causes`` are the failed tasks' keys."""

    key: str
    target: Target
    causes: frozenset[str] = field(default_factory=frozenset)


class Waited(Target):
    """A target another runner was writing when this one came to it: waited for, not run."""

    __slots__ = ()

    def __reduce__(self) -> tuple[Any, ...]:
        return (Waited, (self.path, self.store))


class Found(Waited):
    """A target found written when its runner claimed it, with no other runner's claim seen
    on the way: written by a runner that finished first, or by an earlier attempt of the
    same task (a worker lost after writing it). Not run, not waited for."""

    __slots__ = ()

    def __reduce__(self) -> tuple[Any, ...]:
        return (Found, (self.path, self.store))


@dataclass(frozen=True)
class Claimed:
    """A task not run yet because another runner holds the claim on its target (``owner``,
    that claim's owner record) or on an input's (``owner`` is ``None``): what a worker call
    asked not to wait (``Call.defer``) returns at once. The run goes on with its other work
    and comes back to these (:mod:`pipex.running.claimed`); observers never hear of them."""

    key: str
    target: Target
    owner: str | None = None


Outcome = Target | Failure | NotRun | Claimed


def portable(exc: BaseException) -> BaseException:
    """``exc`` if it survives pickling (to another process and back), else a
    ``RuntimeError`` that names its type and message (an exception whose ``__init__`` takes
    other arguments than it passes on cannot be rebuilt where it is unpickled)."""
    try:
        pickle.loads(cloudpickle.dumps(exc))
    except Exception:
        stand_in = RuntimeError(f"{type(exc).__name__}: {exc}")
        stand_in.__notes__ = list(getattr(exc, "__notes__", ()))
        return stand_in
    return exc


_RAISED = "pipex task {key} failed; target {target} was not written"
_RAISED_KEY = re.compile(r"^pipex task (.+) failed; target .* was not written$")


def mark_raised(exc: BaseException, key: str, target: object) -> None:
    """Note on ``exc``, raised out of a run (no keep-going), which task failed and its target."""
    exc.add_note(_RAISED.format(key=key, target=target))


def unmark_raised(exc: BaseException) -> None:
    """Remove :func:`mark_raised`'s note from ``exc`` (a failure reported as an outcome)."""
    notes = getattr(exc, "__notes__", None)
    if notes:
        notes[:] = [note for note in notes if not _RAISED_KEY.match(note)]


def raised_by(exc: BaseException) -> str | None:
    """The key of the task that raised ``exc`` (see :func:`mark_raised`), if it says."""
    for note in getattr(exc, "__notes__", ()):
        match = _RAISED_KEY.match(note)
        if match:
            return match.group(1)
    return None


def failed_inputs(inputs: Iterable[object]) -> frozenset[str]:
    """The keys of the failed tasks behind ``inputs``: the rule for "not run".

    A task runs only if this is empty. A failed input names itself; an input that did not
    run passes on the failures it waited for.
    """
    causes: set[str] = set()
    for value in inputs:
        if isinstance(value, Failure):
            causes.add(value.key)
        elif isinstance(value, NotRun):
            causes.update(value.causes)
    return frozenset(causes)


class Dependent(Protocol):
    """A node as :func:`settle` sees it."""

    @property
    def key(self) -> str: ...

    @property
    def target(self) -> Target: ...

    @property
    def deps(self) -> Sequence[Any]: ...


def settle(
    order: Iterable[Dependent],
    outcomes: dict[str, Outcome],
    unsettled: Mapping[str, Failure | NotRun],
) -> dict[str, Outcome]:
    """Give each ``unsettled`` task its outcome, going through ``order`` (inputs first).

    A scheduler that fails every dependant of a failed task with the same error (dask), or
    only says that it did not run (Prefect), leaves an outcome per task that does not yet
    tell why: each becomes :class:`NotRun` when an input failed, else keeps its own.
    """
    for node in order:
        own = unsettled.get(node.key)
        if own is None:
            continue
        causes = failed_inputs(outcomes.get(dep.key) for dep in node.deps)
        outcomes[node.key] = NotRun(node.key, node.target, causes) if causes else own
    return outcomes


@dataclass
class Tally:
    """Counts of outcomes: ran (wrote its target), failed, not run, waited (for another
    runner that wrote the target)."""

    ran: int = 0
    failed: int = 0
    not_run: int = 0
    waited: int = 0
    found: int = 0  #: found written meanwhile (:class:`Found`)

    def add(self, outcome: object) -> None:
        """Count one outcome."""
        if isinstance(outcome, Failure):
            self.failed += 1
        elif isinstance(outcome, NotRun):
            self.not_run += 1
        elif type(outcome) is Waited:
            self.waited += 1
        elif type(outcome) is Found:
            self.found += 1
        else:
            self.ran += 1

    @property
    def total(self) -> int:
        return self.ran + self.failed + self.not_run + self.waited + self.found

    def __str__(self) -> str:
        text = f"ran {self.ran}, failed {self.failed}, not run {self.not_run}"
        text += f", waited {self.waited}" if self.waited else ""
        return text + (f", found {self.found}" if self.found else "")


def one_line(exc: BaseException) -> str:
    """The exception's own last line as Python prints it (`ValueError: bad input`), without
    the notes printed after it."""
    text = "".join(traceback.format_exception_only(exc)).strip().splitlines()
    notes = getattr(exc, "__notes__", None)
    if isinstance(notes, list) and notes:
        below = sum(len(str(note).splitlines()) or 1 for note in notes)
        text = text[:-below] or text
    return text[-1] if text else type(exc).__name__
