"""Tasks sealed for the scheduler: it sees only standard-library callables, bytes and
references; a worker unpickles the task, with its inputs' results, when it runs it.

A worker that cannot import what a task's code needs raises :class:`Unreachable`, whose
message (made on the client) says which module and how to put it on the workers' path.
"""

from __future__ import annotations

import operator
import os
import pickle
import sys
from collections.abc import Mapping
from typing import Any

import cloudpickle
from dask.task_spec import List, Task, TaskRef

from pipex.core import worker


def sealed(task: Task, first: Any) -> Task:
    """``task`` as the scheduler sees it: standard-library callables, bytes and references.

    The task itself (pipex's function, the call with the task's function and arguments, the
    done inputs' Targets) travels pickled and is unpickled only on the worker that runs it,
    with its inputs' results, so the scheduler needs neither pipex nor the task's code.
    ``first`` is the call it runs first (a fused chain's first): what a worker that cannot
    import the task's code names.
    """
    keys = sorted(task.dependencies)
    results = Task(None, dict, Task(None, zip, tuple(keys), List(*map(TaskRef, keys))))
    try:
        sent = cloudpickle.dumps(task)
    except (pickle.PicklingError, RecursionError) as exc:
        name = "-".join(map(str, task.key[:2])) if isinstance(task.key, tuple) else str(task.key)
        raise worker.too_deep_to_send(exc, [name]) or exc from exc
    opener = Task(None, pickle.loads, _UNSEALED)
    module = getattr(first.task.fn, "__module__", None) or "?"
    return Task(task.key, operator.call, opener, sent, results, first.key, module)


class Unreachable(ImportError):
    """Raised on a worker that cannot unpickle a task: it cannot import what the task's code
    needs. Its message is made where it is read (the client, after ``pipex.compute`` or
    ``dask.compute``): the task, the module, where that module is there, and how to put it
    on the workers' path."""

    def __init__(self, what: str, name: str | None, key: str, module: str) -> None:
        super().__init__(what, name, key, module)
        self.name = name or module

    def __str__(self) -> str:
        what, name, key, module = self.args
        module = name or module
        file = getattr(sys.modules.get(module), "__file__", None)
        if file and os.path.basename(file) == "__init__.py":  # a package: its folder
            file = os.path.dirname(file)
            upload = f"client.upload_file(<a .zip of {file}>)"
        else:
            upload = f"client.upload_file({file!r})" if file else "client.upload_file(<its file>)"
        here = f" (here, on the client: {file})" if file else ""
        stale = " (or has another version of it)" if what.startswith("AttributeError") else ""
        return (
            f"pipex task {key} could not start on its dask worker, which cannot import "
            f"module {module!r}{here}{stale} that the task's code needs ({what}). Workers "
            "import a task's function from its module: put that module on the workers' path: "
            f"set PYTHONPATH for the workers to the folder holding it, send it with {upload}, "
            "or install it on the workers as a package."
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), self.args)


def _unsealed(sealed: bytes, results: Mapping[Any, Any], key: str, module: str) -> Any:
    """Run on a worker: unpickle a task sealed by :func:`sealed`, and run it."""
    try:
        task = pickle.loads(sealed)
    except (ImportError, AttributeError) as exc:  # a module, or a function in it, not found
        name = exc.name if isinstance(exc, ImportError) else None
        raise Unreachable(f"{type(exc).__name__}: {exc}", name, key, module) from None
    return task(results)


_UNSEALED = pickle.dumps(_unsealed)  # by reference: every worker has pipex


def unreachable(exc: BaseException, node: Any) -> BaseException:
    """``exc``; for :class:`Unreachable`, the ``ImportError`` that says what to do, without
    the worker's traceback."""
    return exc.with_traceback(None) if isinstance(exc, Unreachable) else exc
