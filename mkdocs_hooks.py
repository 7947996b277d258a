"""mkdocs hook: the build fails when a name of ``pipex.__all__`` has no entry in the API
reference (docs/reference.md), or the reference documents a name that is not public."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from mkdocs.exceptions import PluginError

REFERENCE = "reference.md"
#: Public names without a docstring of their own, so not reference entries.
UNDOCUMENTED = frozenset({"__version__"})


def entries(text: str) -> list[str]:
    """The names the reference documents: its ``::: pipex.<name>`` lines."""
    return re.findall(r"^::: pipex\.(\w+)\s*$", text, re.M)


def missing_and_extra(text: str) -> tuple[list[str], list[str]]:
    """Public names the reference lacks, and names it has that are not public."""
    import pipex

    public = set(pipex.__all__) - UNDOCUMENTED
    found = set(entries(text))
    return sorted(public - found), sorted(found - public)


def on_config(config: Any) -> Any:
    text = (Path(config["docs_dir"]) / REFERENCE).read_text(encoding="utf-8")
    missing, extra = missing_and_extra(text)
    if missing or extra:
        raise PluginError(
            f"docs/{REFERENCE} is out of step with pipex.__all__: missing {missing or 'none'}, "
            f"not public {extra or 'none'}. Add a '::: pipex.<name>' line for each public name."
        )
    return config
