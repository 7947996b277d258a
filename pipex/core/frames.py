"""Where a task failed, in the user's code: the frames of a traceback's text that are the
user's (not pipex's, dask's, click's or any installed package's), and the last of them.

Tracebacks reach pipex as text (a worker formats its own), so this reads text: the
``File "...", line N, in name`` lines and the source lines below each.
"""

from __future__ import annotations

import os
import re
import sysconfig
from dataclasses import dataclass

_FRAME = re.compile(r'^\s*File "(?P<file>[^"]+)", line (?P<line>\d+), in (?P<name>.+)$')
_PIPEX = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
_LIBRARIES = tuple(
    {
        os.path.abspath(p) + os.sep
        for key in ("stdlib", "platstdlib", "purelib", "platlib")
        if (p := sysconfig.get_paths().get(key))
    }
)
_INSTALLED = re.compile(r"[/\\](site|dist)-packages[/\\]|^<|[/\\]lib[/\\]python\d")


def is_users(file: str) -> bool:
    """Whether ``file`` is the user's code: not pipex, not the standard library, not an
    installed package, not a frozen module."""
    path = os.path.abspath(file) if not file.startswith("<") else file
    if path.startswith(_PIPEX) or path.startswith(_LIBRARIES):
        return False
    return not _INSTALLED.search(file)


@dataclass(frozen=True)
class Frame:
    file: str
    line: int
    name: str
    source: str  #: the line of code, stripped ("" if the traceback did not show it)

    def __str__(self) -> str:
        where = f"{_short(self.file)}:{self.line}, in {self.name}"
        return f"{where}: {self.source}" if self.source else where


def frames(traceback: str) -> list[Frame]:
    """Every frame of ``traceback``'s text, outermost first (chained tracebacks in turn)."""
    found: list[Frame] = []
    lines = traceback.splitlines()
    for i, text in enumerate(lines):
        match = _FRAME.match(text)
        if match:
            below = lines[i + 1].strip() if i + 1 < len(lines) else ""
            source = "" if _FRAME.match(below) or _is_marker(below) else below
            found.append(Frame(match["file"], int(match["line"]), match["name"], source))
    return found


def where(traceback: str) -> Frame | None:
    """The user's frame the failure came from: the innermost of the user's frames (of the
    last traceback of a chain that has one), or ``None`` when none is the user's."""
    users = [f for f in frames(traceback) if is_users(f.file)]
    return users[-1] if users else None


def users(traceback: str) -> str:
    """``traceback``'s text with only the user's frames (each ``File`` line and its source);
    the headers, chain separators and exception lines stay. Where no frame of a traceback
    is the user's, its innermost frame stays, to show where it was raised."""
    out: list[str] = []
    section: list[tuple[str, list[str]]] = []  # one traceback's frames: (file, its lines)

    def flush() -> None:
        kept = [lines for file, lines in section if is_users(file)]
        if not kept and section:
            kept = [section[-1][1]]
        for lines in kept:
            out.extend(lines)
        section.clear()

    current: list[str] | None = None
    for text in traceback.splitlines():
        match = _FRAME.match(text)
        if match:
            current = [text]
            section.append((match["file"], current))
        elif current is not None and text.startswith("    "):
            current.append(text)
        else:
            current = None
            flush()
            out.append(text)
    flush()
    return "\n".join(out)


def _is_marker(text: str) -> bool:
    return bool(text) and set(text) <= set("^~ ")


def _short(file: str) -> str:
    """``file`` relative to the working directory when it is below it."""
    try:
        relative = os.path.relpath(file)
    except ValueError:
        return file
    return file if relative.startswith("..") else relative
