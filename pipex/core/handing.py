"""One step of a task that runs several calls (a fused chain, a batch of mapped items): run
it, and hand what it returned to the next step in memory.

A step's data goes to the next step without a load when its serializer gives back exactly
what it was given (``.pkl``, ``.txt``): the step's task is wrapped in :class:`Keep`, and
its written target comes back :class:`Handed`, the data attached (for that next step only).
"""

from __future__ import annotations

import posixpath
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pipex import serializers
from pipex.core.outcomes import Outcome
from pipex.core.targets import Target
from pipex.core.worker import Call, execute_call

Runner = Callable[..., Outcome]  # execute_call's signature: (call, keep_going, *inputs)


def run_step(
    call: Call,
    keep_going: bool,
    inputs: Sequence[Outcome],
    read_next: bool,
    step: Runner = execute_call,
) -> tuple[Outcome, float, float]:
    """Run one step of a fused chain or of a batch's item through ``step``: its outcome,
    when it started (seconds since the epoch) and how long it ran. With ``read_next`` (a
    later step of the same task reads it), a written target whose data the next step would
    load as it is comes back :class:`Handed`, that data attached (the caller keeps it for
    that step only)."""
    kept = Keep(call.task) if read_next and exact(call) else None
    run = call if kept is None else call.with_task(kept)
    started = time.time()
    clock = time.perf_counter()
    outcome = step(run, keep_going, *inputs)
    seconds = time.perf_counter() - clock
    if kept is not None and kept.has and type(outcome) is Target:
        outcome = Handed(outcome.path, outcome.store, kept.result)
    return outcome, started, seconds


def exact(call: Call) -> bool:
    """Whether the data a step returns is what the next would load from its target."""
    return call.task.save and serializers.exact(posixpath.splitext(call.target.path)[1])


def takes_data(call: Call) -> bool:
    """Whether a step takes all its inputs as data (none as a :class:`Target` parameter)."""
    return not (call.linked & call.task.target_parameters)


class Keep:
    """A step's task that keeps what it returned, to hand it to the next step."""

    __slots__ = ("has", "result", "task")

    def __init__(self, task: Any) -> None:
        self.task = task
        self.has = False
        self.result: Any = None

    def call(self, arguments: Mapping[str, Any], target: str) -> Any:
        self.result = self.task.call(arguments, target)
        self.has = True
        return self.result

    def __getattr__(self, name: str) -> Any:  # save, target_parameters, name, ...
        return getattr(self.task, name)


class Handed(Target):
    """The target of the step before, whose data is already here: loading it costs nothing.

    Pickled, it is the plain :class:`Target`.
    """

    __slots__ = ("data",)

    def __init__(self, path: str, store: Any, data: Any) -> None:
        super().__init__(path, store)
        self.data = data

    def load(self) -> Any:
        return self.data
