"""Targets of many calls rendered at once: a template over columns of per-item text.

A mapped step's target template is compiled into one ``str.format`` string whose slots are
the fields that change from item to item (an argument column, or an attribute such as
``{img.stem}`` of the upstream step's targets); every other field is rendered once. The
locations are kept as that format and its columns (:class:`Rendered`), not as one string
per item: a step below reads its upstream's columns (the stem of ``out/gray/{page}.pkl`` is
the ``page`` column itself), and existence is checked per folder from the names alone.

The checks a single render makes (:mod:`pipex.core.templates`) are made on the whole
column at once: one search of the joined column for anything that could be refused, and
the per-value checks only when something was found.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pipex.core.templates import (
    check_contained,
    check_inside,
    check_location,
    check_named,
    check_segments,
)
from pipex.stores.atomic import NAME_MAX

#: Target attributes an upstream column gives without a Target per item.
ATTRIBUTES = frozenset({"path", "name", "stem"})

Indices = Sequence[int]  # a range, or an array of item indices


class Rendered:
    """The locations of a family's items: ``fmt.format(*(column[i] for column))``.

    ``columns`` hold one text per item. ``folder`` is set when every location lies directly
    in that one folder (the per-item text names files, no ``/``): ``names`` then renders
    the file names alone, with ``name_fmt``.
    """

    __slots__ = ("clean", "columns", "fmt", "folder", "name_fmt", "stem_column", "widths")

    def __init__(
        self,
        fmt: str,
        columns: tuple[Sequence[str], ...],
        slashed: bool,
    ) -> None:
        self.fmt = fmt
        self.columns = columns
        self.folder: str | None = None
        self.name_fmt = ""
        self.stem_column: int | None = None
        #: ids of the columns checked and found plain (no value a check could refuse), and
        #: each column's longest value: a step below that reads a column checks it no more.
        self.clean: set[int] = set()
        self.widths: dict[int, int] = {}
        head, slot, _ = fmt.partition("{")
        rest = fmt[len(head) :]
        if slot and not slashed and "/" not in rest and "/" in head:
            self.folder = head[: head.rindex("/")].replace("}}", "}")
            self.name_fmt = head[head.rindex("/") + 1 :] + rest
        elif not slot and "/" in fmt:
            self.folder, _, self.name_fmt = fmt.rpartition("/")
        if self.folder is not None and len(columns) == 1:
            stem, dot, suffix = self.name_fmt.rpartition(".")
            if stem == "{0}" and dot and "{" not in suffix and "}" not in suffix:
                self.stem_column = 0  # name_fmt is "{0}.pkl": the stem is the column

    def __len__(self) -> int:
        return len(self.columns[0]) if self.columns else 0

    def path(self, i: int) -> str:
        return self.fmt.format(*[column[i] for column in self.columns])

    def paths(self, indices: Indices | None = None) -> list[str]:
        """The locations of ``indices`` (all items by default)."""
        return self._apply(self.fmt, indices)

    def names(self, indices: Indices | None = None) -> list[str]:
        """The file names of ``indices`` in :attr:`folder` (set only when there is one)."""
        return self._apply(self.name_fmt, indices)

    def _apply(self, fmt: str, indices: Indices | None) -> list[str]:
        render = fmt.format
        columns = self.columns
        if indices is None or (type(indices) is range and indices == range(len(self))):
            return list(map(render, *columns))
        if len(columns) == 1:
            column = columns[0]
            return [render(column[i]) for i in indices]
        return [render(*[column[i] for column in columns]) for i in indices]

    def attribute(self, name: str) -> Sequence[str]:
        """The column of one target attribute (``stem``, ``name``, ``path``) of every item."""
        if name == "stem" and self.stem_column is not None:
            return self.columns[self.stem_column]
        if name == "name" and self.folder is not None:
            return self.names()
        paths = self.paths()
        if name == "path":
            return paths
        names = [p[p.rfind("/") + 1 :] for p in paths]
        if name == "name":
            return names
        return [n[: n.rfind(".")] if n.rfind(".") > 0 else n for n in names]


def checked(
    column: Sequence[str], field: str, template: str, task: str, contained: bool
) -> tuple[bool, bool]:
    """Check one column of per-item argument text as a single render checks each value;
    whether some value holds a ``/`` (the locations are then not all in one folder), and
    whether every value is plain (nothing a check of a whole location could refuse)."""
    if not column:
        return False, True
    joined = "\0".join(column)
    if joined.count("\0") != len(column) - 1:
        _each(column, field, template, task, contained)
    suspicious = (
        " at 0x" in joined
        or ".." in joined
        or ":" in joined
        or "\\" in joined
        or "\0\0" in joined
        or joined[:1] in ("\0", "/", ".")
        or joined[-1:] in ("\0", ".")
        or "\0." in joined
        or "\0/" in joined
        or "pipex-" in joined
    )
    slashed = "/" in joined
    if suspicious or slashed:
        _each(column, field, template, task, contained)
    return slashed, not (suspicious or slashed)


def _each(column: Sequence[str], field: str, template: str, task: str, contained: bool) -> None:
    for text in column:
        if " at 0x" in text:
            check_named(text, field, template, task)
        if contained and (".." in text or ":" in text or text[:1] in ("/", "\\")):
            check_contained(text, field, template, task)
        check_segments(text, field, template, task)


def check_locations(rendered: Rendered, folder: str, template: str, task: str) -> None:
    """What a single render checks of each whole location, for values that could fail it
    (a ``..``, an odd character, a name near the length limit)."""
    widths = rendered.widths
    for column in rendered.columns:
        if id(column) not in widths:
            widths[id(column)] = max(map(len, column), default=0)
    long = max(widths.values(), default=0) + len(rendered.fmt) > NAME_MAX
    for column in rendered.columns:
        if id(column) in rendered.clean and not long:
            continue
        joined = "\0".join(column)
        if long or ".." in joined or "pipex-" in joined or joined.count("\0") != len(column) - 1:
            for path in rendered.paths():
                check_location(path, task)
                if ".." in path:
                    check_inside(path, folder, template, task)
            return


def text_column(values: Sequence[Any]) -> Sequence[str] | None:
    """Each value as the text a template field renders it to, when all are plain ``str`` or
    ``int`` (``None`` otherwise: such a column renders item by item)."""
    if type(values) is range:
        return list(map(str, values))
    kinds = set(map(type, values))
    if kinds <= {str}:
        return values
    if kinds <= {int, str}:
        return list(map(str, values))
    return None


def escaped(text: str) -> str:
    """Literal text inside a format string."""
    return text.replace("{", "{{").replace("}", "}}")
