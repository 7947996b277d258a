"""The public API type-checks for users: mypy on a user's script reveals real types, not Any.

pipex ships ``py.typed``, so a user's own mypy run reads pipex's annotations. This test runs
mypy (its API, in this process) on a small script written as a user would, and compares each
``reveal_type`` with what the user expects.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

mypy_api = pytest.importorskip("mypy.api")

SCRIPT = """
import pipex


@pipex.task
def load(n: int) -> list[int]:
    return list(range(n))


@pipex.task(target="{path}/total/{n}.pkl")
def total(numbers: list[int], n: int) -> int:
    return sum(numbers)


node = load.node(3)
reveal_type(load)  # task
reveal_type(total)  # task with options
reveal_type(load(3))  # call
reveal_type(node)  # node
reveal_type(node.target)  # target
reveal_type(node.key)  # key
reveal_type(node.target.exists())  # exists
reveal_type(node.target.load())  # load
reveal_type(node.target.path)  # path
reveal_type(node.target.name)  # name
reveal_type(node.target.suffix)  # suffix
reveal_type(pipex.Target("out/a.pkl"))  # Target
reveal_type(pipex.compute(node))  # compute
reveal_type(pipex.status(node))  # status
reveal_type(load.map(range(3)))  # mapped
reveal_type(load.map(range(3))[0])  # item
"""

#: What each line's ``reveal_type`` must show, by the comment that ends the line.
EXPECTED = {
    "task": "pipex.task.TaskFunction",
    "task with options": "pipex.task.TaskFunction",
    # A call builds a Node in the default mode but runs the function with PIPEX=off, so its
    # type depends on the mode: Any. ``fn.node(...)`` is the typed way to ask for the Node.
    "call": "Any",
    "node": "pipex.node.Node",
    "target": "pipex.core.targets.Target",
    "key": "str",
    "exists": "bool",
    "load": "Any",  # the task's data: its serializer decides
    "path": "str",
    "name": "str",
    "suffix": "str",
    "Target": "pipex.core.targets.Target",
    "compute": "tuple[Any, ...]",  # like dask.compute: one result per argument
    "status": "pipex.steer.status.Status",
    "mapped": "pipex.mapped.Mapped",
    "item": "pipex.node.Node",
}


#: mypy's cache of pipex and its dependencies, shared with ``mypy pipex`` (cold, a check
#: reads dask, distributed and prefect: minutes; warm, seconds).
CACHE = Path(__file__).resolve().parent.parent / ".mypy_cache"


@pytest.mark.slow
def test_public_api_reveals_user_types(tmp_path: Path) -> None:
    script = tmp_path / "user_script.py"
    script.write_text(textwrap.dedent(SCRIPT))
    lines = script.read_text().splitlines()
    stdout, stderr, _exit = mypy_api.run(
        [
            str(script),
            "--cache-dir",
            str(CACHE),
            "--disallow-untyped-defs",
            "--no-error-summary",
            "--hide-error-context",
        ]
    )
    revealed = {}
    others = []
    for message in stdout.splitlines():
        found = re.match(r".*user_script\.py:(\d+): note: Revealed type is \"(.*)\"$", message)
        if found is None:
            others.append(message)
            continue
        label = lines[int(found[1]) - 1].split("# ")[-1]
        revealed[label] = found[2].replace("builtins.", "")  # mypy < 2 spells it out
    assert not others, f"mypy reported more than the revealed types:\n{stdout}{stderr}"
    assert revealed == EXPECTED
