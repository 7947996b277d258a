"""CI's lowest supported versions (``.ci/lowest.txt``, the pins ``.ci/versions`` installs) are
the floors of ``pyproject.toml``: a floor raised or lowered in one and not the other fails here,
locally as in CI."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent


def floors(pyproject: str) -> dict[str, set[Version]]:
    """Every ``>=`` floor of ``pyproject``'s dependencies, extras and dependency groups, by
    package. ``dask[distributed]>=V`` floors distributed at V too (dask pins its extra)."""
    data = tomllib.loads(pyproject)
    lines = list(data["project"]["dependencies"])
    for extra in data["project"].get("optional-dependencies", {}).values():
        lines += extra
    for group in data.get("dependency-groups", {}).values():
        lines += [line for line in group if isinstance(line, str)]
    found: dict[str, set[Version]] = {}
    for line in lines:
        requirement = Requirement(line)
        names = {requirement.name}
        if requirement.name == "dask":
            names |= requirement.extras & {"distributed"}
        for spec in requirement.specifier:
            if spec.operator == ">=":
                for name in names:
                    found.setdefault(_normal(name), set()).add(Version(spec.version))
    return found


def pins(lowest: str) -> dict[str, Version]:
    """The ``name==version`` lines of a pip constraints file."""
    found = {}
    for line in lowest.splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            requirement = Requirement(line)
            (spec,) = requirement.specifier
            found[_normal(requirement.name)] = Version(spec.version)
    return found


def disagreements(pyproject: str, lowest: str) -> list[str]:
    """What ``lowest`` pins that is not ``pyproject``'s floor of the package, one line each."""
    known = floors(pyproject)
    wrong = []
    for name, version in sorted(pins(lowest).items()):
        floor = known.get(name)
        if not floor:
            wrong.append(f"{name}=={version} is pinned, but pyproject.toml gives it no floor")
        elif floor != {version}:
            shown = ", ".join(f">={v}" for v in sorted(floor))
            wrong.append(f"{name}=={version} is pinned, but pyproject.toml says {shown}")
    return wrong


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_the_lowest_pins_are_pyprojects_floors():
    pyproject = (ROOT / "pyproject.toml").read_text()
    lowest = (ROOT / ".ci" / "lowest.txt").read_text()
    assert set(pins(lowest)) >= {"dask", "distributed", "prefect", "prefect-dask"}
    assert disagreements(pyproject, lowest) == [], (
        "update .ci/lowest.txt and the floors of pyproject.toml together"
    )


def test_a_floor_raised_in_pyproject_alone_is_caught():
    pyproject = (ROOT / "pyproject.toml").read_text()
    lowest = (ROOT / ".ci" / "lowest.txt").read_text()
    raised = pyproject.replace('"prefect>=3.8"', '"prefect>=3.9"', 1)
    assert raised != pyproject
    assert disagreements(raised, lowest) == [
        "prefect==3.8.0 is pinned, but pyproject.toml says >=3.8, >=3.9"
    ]
    drifted = lowest.replace("distributed==2026.3.0", "distributed==2026.1.0")
    assert disagreements(pyproject, drifted) == [
        "distributed==2026.1.0 is pinned, but pyproject.toml says >=2026.3.0"
    ]
