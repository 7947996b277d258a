"""The API reference of the docs site (docs/reference.md) documents every public name."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import pipex

ROOT = Path(__file__).resolve().parent.parent

pytest.importorskip("mkdocs")
sys.path.insert(0, str(ROOT))
import mkdocs_hooks  # noqa: E402  (the hook beside mkdocs.yml)


def test_reference_lists_every_public_name() -> None:
    text = (ROOT / "docs" / mkdocs_hooks.REFERENCE).read_text()
    assert mkdocs_hooks.missing_and_extra(text) == ([], [])
    assert set(mkdocs_hooks.entries(text)) | mkdocs_hooks.UNDOCUMENTED == set(pipex.__all__)


def test_a_missing_name_fails_the_check() -> None:
    text = (ROOT / "docs" / mkdocs_hooks.REFERENCE).read_text()
    without = text.replace("::: pipex.compute\n", "")
    assert mkdocs_hooks.missing_and_extra(without) == (["compute"], [])
    assert mkdocs_hooks.missing_and_extra(text + "::: pipex.nothing\n") == ([], ["nothing"])
