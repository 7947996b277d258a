"""Failures grouped by step and error: what every place that shows failures shows.

Two thousand tasks failing with "No module named 'images'" are one group: its step, its
error, the message with the parts that differ from task to task set aside (numbers, paths,
quoted values, locations), how many failed so, the first few targets and one traceback.
Whatever the count, the groups fit a screen; the full list stays where it was (a
:class:`~pipex.exceptions.PipelineError`'s ``failed``, the run ledger).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol


class Failed(Protocol):
    """One failure as grouping reads it: :class:`pipex.core.outcomes.Failure`, or a row of
    the run ledger."""

    @property
    def step(self) -> str: ...  # the task's funcname

    @property
    def error(self) -> str: ...  # the exception's type name, e.g. "ValueError"

    @property
    def message(self) -> str: ...  # the exception's message

    @property
    def target(self) -> object: ...  # its location (str() shows it)

    @property
    def traceback(self) -> str: ...


@dataclass(frozen=True)
class FailureGroup:
    """Failures of one step with one error and one message shape."""

    step: str  #: the task's funcname
    error: str  #: exception type name, e.g. "ValueError"
    message: str  #: the message with task-specific parts set aside as placeholders
    count: int
    targets: tuple[str, ...]  #: the first few targets (locations), in the order seen
    traceback: str  #: one traceback (of the first failure of the group)


#: Locations with a scheme (``s3://bucket/key``, ``file:///tmp/x``).
_URL = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]*://\S*[^\s'\".,;:)\]}>]")
#: Quoted values: a quote not inside a word (``can't`` is no quote) up to its mate.
_QUOTED = re.compile(r"(?<!\w)(['\"])[^\n]*?\1(?!\w)")
#: Paths: a run of path characters holding a separator (``out/a.png``, ``C:\\data``).
_PATH = re.compile(r"(?<![\w<])(?:[A-Za-z]:)?[\w.~-]*[/\\][\w./\\~-]*")
#: Numbers (with sign, fraction, exponent) and hex addresses, not part of a name.
_NUMBER = re.compile(r"(?<![\w<])(?:0x[0-9a-fA-F]+|[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)(?!\w)")

#: The placeholders.
PATH, VALUE, NUMBER = "<path>", "<value>", "<n>"


def shape(message: str) -> str:
    """``message`` with the parts that differ from task to task set aside: locations and
    paths become ``<path>``, quoted values ``'<value>'``, numbers ``<n>``."""
    text = _URL.sub(PATH, message)
    text = _QUOTED.sub(lambda m: m.group(1) + VALUE + m.group(1), text)
    text = _PATH.sub(PATH, text)
    return _NUMBER.sub(NUMBER, text)


def group(failures: Iterable[Failed], keep: int = 5) -> list[FailureGroup]:
    """``failures`` grouped by step, error type and message shape, largest group first (in
    the order first seen among equals); each keeps the first ``keep`` targets and the first
    failure's traceback."""
    shapes: dict[str, str] = {}  # many failures share a message: shape each once
    found: dict[tuple[str, str, str], _Group] = {}
    for failure in failures:
        message = failure.message
        shaped = shapes.get(message)
        if shaped is None:
            shaped = shapes[message] = shape(message)
        key = (failure.step, failure.error, shaped)
        into = found.get(key)
        if into is None:
            into = found[key] = _Group(failure.traceback)
        into.count += 1
        if len(into.targets) < keep:
            into.targets.append(str(failure.target))
    ordered = sorted(found.items(), key=lambda item: -item[1].count)  # stable: first seen
    return [
        FailureGroup(step, error, message, g.count, tuple(g.targets), g.traceback)
        for (step, error, message), g in ordered
    ]


class _Group:
    """A group while it fills."""

    __slots__ = ("count", "targets", "traceback")

    def __init__(self, traceback: str) -> None:
        self.count = 0
        self.targets: list[str] = []
        self.traceback = traceback


class Example(Protocol):
    """The first failure of a group as :func:`describe` names it: its task's key and its
    own message (a :class:`~pipex.core.outcomes.Failure`)."""

    @property
    def key(self) -> str: ...

    @property
    def message(self) -> str: ...


def describe(
    groups: Sequence[FailureGroup],
    examples: Mapping[str, Example] | None = None,
    shown: int = 10,
    where: str = "error.failed",
) -> list[str]:
    """The groups as lines of text, at most ``shown`` groups of two lines each however many
    failed: ``step: N failed with Error: message`` and the first targets. ``examples`` gives
    a group's first failure by its first target: a group of one then shows its own message
    and its task's key. ``where`` says where the full list is."""
    lines: list[str] = []
    for g in groups[:shown]:
        message, task = g.message, ""
        example = examples.get(g.targets[0]) if examples and g.targets else None
        if g.count == 1 and example is not None:
            message, task = example.message, f"task {example.key}, "
        what = f"{g.error}: {_line(message)}" if message.strip() else g.error
        if g.count == 1:
            lines.append(f"  {g.step}: failed with {what}")
            lines.append(f"    {task}target {g.targets[0]}" if g.targets else "")
            continue
        lines.append(f"  {g.step}: {g.count:,} failed with {what}")
        more = g.count - len(g.targets[:TARGETS])
        lines.append(
            f"    targets {', '.join(g.targets[:TARGETS])}"
            + (f", ... and {more:,} more" if more else "")
        )
    if len(groups) > shown:
        rest = groups[shown:]
        lines.append(
            f"  ... and {len(rest):,} more group(s) of {sum(g.count for g in rest):,} "
            f"failure(s) (all in {where})"
        )
    return [line for line in lines if line]


#: The longest message :func:`describe` shows (of its first line), and how many targets of
#: a group.
WIDTH, TARGETS = 400, 3


def _line(message: str) -> str:
    first = message.strip().splitlines()[0] if message.strip() else ""
    return first if len(first) <= WIDTH else first[: WIDTH - 3] + "..."
