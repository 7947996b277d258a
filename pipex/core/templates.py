"""Target templates: ``str.format`` strings rendered safely, never ``eval``.

A template is rendered with attribute/index access and format specs. Every field value except
``path`` is checked so that it cannot move the target out of the folder the template puts
it in.
"""

from __future__ import annotations

import _string  # the parser str.format itself uses
import difflib
import posixpath
import re
import string
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any

from pipex.exceptions import TargetError
from pipex.stores.atomic import NAME_MAX, TEMPORARY_MARK
from pipex.stores.claims import is_claim

ROOT_FIELDS = frozenset({"path"})
_DRIVE = re.compile(r"^[A-Za-z]:[\\/]")
_SEPARATORS = ("/", "\\")
_ADDRESS = re.compile(r" at 0x[0-9A-Fa-f]{4,}")
_CONVERSIONS: dict[str, Callable[[object], str]] = {"s": str, "r": repr, "a": ascii}


class Template:
    """A compiled ``str.format`` target template with root-escape checks."""

    __slots__ = ("_slashed", "fields", "pieces", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        pieces: list[tuple[str, str | None, tuple[Any, ...], str | None, str]] = []
        try:
            parsed = list(string.Formatter().parse(text))
        except ValueError as exc:
            raise TargetError(
                f"target template {text!r} cannot be parsed: {exc}. Fields are written "
                "{name}; a literal brace is written {{ or }}."
            ) from None
        for literal, field, spec, conversion in parsed:
            if field is None:
                pieces.append((literal, None, (), None, ""))
                continue
            root, rest = _string.formatter_field_name_split(field)
            if not isinstance(root, str) or not root:
                raise TargetError(
                    f"target template {text!r} uses a positional field {{{field}}}; "
                    "name every field, e.g. {path}/{funcname}/{base}.pkl"
                )
            pieces.append((literal, root, tuple(rest), conversion, spec or ""))
        self.pieces = tuple(pieces)
        self.fields = frozenset(p[1] for p in pieces if p[1] is not None)
        self._slashed = {free: self._has_folder(free) for free in (ROOT_FIELDS, frozenset())}

    def _in_folder(self, free: frozenset[str]) -> bool:
        """:meth:`_has_folder`, decided once per ``free``."""
        known = self._slashed.get(free)
        if known is None:
            known = self._slashed[free] = self._has_folder(free)
        return known

    def _has_folder(self, free: frozenset[str]) -> bool:
        """Whether a literal ``/`` comes before the first field not in ``free``: then the
        checked fields always sit in a named folder, whatever the values."""
        for literal, root, *_ in self.pieces:
            if "/" in literal:
                return True
            if root is not None and root not in free:
                return False
        return False

    def render(
        self,
        fields: Mapping[str, Any],
        task: str = "",
        free: frozenset[str] = ROOT_FIELDS,
        given: Collection[str] = (),
    ) -> str:
        """The location for ``fields``; :class:`TargetError` if a field is missing or unsafe.

        Fields in ``free`` (the root, ``path``, when it does not come from an argument) may
        point anywhere; every other field must stay inside the folder the template puts it.
        Fields in ``given`` (the call's arguments) must not render empty or hold an empty or
        ``.`` segment.
        """
        out = []
        anchor = -1  # how many pieces were rendered before the first checked field
        for literal, root, accessors, conversion, spec in self.pieces:
            out.append(literal)
            if root is None:
                continue
            try:
                value = fields[root]
            except KeyError:
                raise TargetError(
                    f"{_who(task)}target template {self.text!r} uses {{{root}}}, which is "
                    f"neither an argument nor a context variable.{did_you_mean(root, fields)} "
                    f"Available: {', '.join(sorted(fields))}. "
                    f"Or set it with pipex.context({root}=...)."
                ) from None
            kind = type(value)
            if kind is str and not (accessors or conversion or spec):
                text = value  # the usual field: a plain string
            elif kind is int and not (accessors or conversion or spec):
                text = str(value)
            else:
                text = self._formatted(
                    value, root, accessors, conversion, spec, fields, task, free
                )
            if " at 0x" in text:
                check_named(text, root, self.text, task)
            if root not in free:
                if ".." in text or ":" in text or text[:1] in _SEPARATORS:
                    check_contained(text, root, self.text, task)
                if anchor < 0:
                    anchor = len(out)
            if root in given:
                check_segments(text, root, self.text, task)
            out.append(text)
        result = "".join(out)
        if anchor >= 0 and (
            ".." in result
            or (
                not self._in_folder(free)
                and (result[:1] in "/\\" or _DRIVE.match(result) is not None)
            )
        ):
            before = "".join(out[:anchor])
            folder = before[: before.rfind("/") + 1]
            # Each field alone is contained; together they can only escape through a ".."
            # or, below a relative folder, by making the location absolute.
            if ".." in result or (not folder and (result[:1] in "/\\" or _DRIVE.match(result))):
                check_inside(result, folder, self.text, task)
        return result

    def _formatted(
        self,
        value: Any,
        root: str,
        accessors: tuple[tuple[bool, Any], ...],
        conversion: str | None,
        spec: str,
        fields: Mapping[str, Any],
        task: str,
        free: frozenset[str],
    ) -> str:
        """One field's text: attribute and index access, conversion, then format spec."""
        try:
            for is_attribute, key in accessors:
                value = getattr(value, key) if is_attribute else value[key]
            if conversion:
                value = _CONVERSIONS[conversion](value)
            if "{" in spec:
                spec = Template(spec).render(fields, task, free)
            return format(value, spec)
        except (AttributeError, LookupError, TypeError, ValueError) as exc:
            raise TargetError(
                f"{_who(task)}cannot render field {{{root}...}} of target template "
                f"{self.text!r}: {exc}"
            ) from exc


def check_location(location: str, task: str = "", where: str = "") -> None:
    """Refuse a rendered location that no store can hold: a NUL character, an empty file
    name (nothing before the suffix), or a component longer than :data:`NAME_MAX` bytes."""
    name = location.rpartition("/")[2]
    stem, dot, _ = name.rpartition(".")
    problem = None
    if "\0" in location:
        problem = "holds a NUL character"
    elif not name or (dot and not stem.strip(".")):  # "", ".pkl", "..pkl", ".."
        problem = "has an empty file name (nothing before its suffix)"
    elif len(location) > NAME_MAX and any(
        len(part.encode()) > NAME_MAX for part in location.split("/")
    ):
        problem = f"has a component longer than {NAME_MAX} bytes, the file-name limit"
    if problem:
        raise TargetError(
            f"{_who(task)}{where or 'the target'} renders to {location!r}, which {problem}. "
            "Nothing was run or written. Give the fields it is built from plain, non-empty, "
            "shorter values."
        )
    check_unreserved(name, location, task)


def check_unreserved(name: str, location: str, task: str = "") -> None:
    """Refuse a file name ``name`` of the kind pipex gives its own files: a temporary
    (holding ``.pipex-tmp``) or a claim (``.<name>.pipex-claim``): it never counts as a
    written target, so its task would seem to run again on every run."""
    if TEMPORARY_MARK in name or is_claim(name):
        kind = "temporary file" if TEMPORARY_MARK in name else "claim"
        raise TargetError(
            f"{_who(task)}target {location!r} is named as pipex names a {kind}, which never "
            "counts as a written target. Nothing was run or written. Rename the target "
            f"(no {TEMPORARY_MARK!r} in its name, no leading '.' with a '.pipex-claim' end)."
        )


def check_segments(value: str, field: str, template: str, task: str = "") -> None:
    """Refuse an argument's text that is empty or has an empty or ``.`` segment: such a
    value vanishes from the location (``a//b``), or makes names like ``..pkl``."""
    if "/" in value or "\\" in value:
        parts = re.split(r"[\\/]", value)
        if "" not in parts and "." not in parts:
            return
    elif value and value != ".":
        return  # the usual value: one plain name
    raise TargetError(
        f"{_who(task)}argument {{{field}}} of target template {template!r} renders to "
        f"{value!r}, which is empty or has an empty or '.' segment: it would vanish from the "
        "target's location or name a file of dots. Nothing was run or written. Pass a "
        "non-empty name for it."
    )


def check_named(value: str, field: str, template: str, task: str = "") -> None:
    """Refuse a field value that names a memory address (``<function f at 0x7f...>``).

    Such a name differs on every run, so the target would never be found again.
    """
    if " at 0x" in value and _ADDRESS.search(value):
        raise TargetError(
            f"{_who(task)}field {{{field}}} of target template {template!r} renders to "
            f"{value!r}, which holds a memory address: it names a new file on every run, "
            "so the target would never be found again. Pass a plain value (a name, a "
            "number), or give that object a __str__ or __format__ that names it."
        )


def check_contained(value: str, field: str, template: str, task: str = "") -> None:
    """Refuse a field value that is absolute or has a ``..`` component."""
    problem = None
    if value[:1] in ("/", "\\") or (value[1:2] == ":" and _DRIVE.match(value)) or "://" in value:
        problem = "is an absolute location"
    elif ".." in value and ".." in re.split(r"[\\/]", value):
        problem = "has a '..' component"
    if problem:
        raise TargetError(
            f"{_who(task)}field {{{field}}} renders to {value!r}, which {problem}: it would "
            f"put the target outside the folder that template {template!r} puts it in. "
            f"Nothing was written. Pass a plain relative name (for an upstream target use "
            f"{{{field}.stem}} or {{{field}.name}}); only the root, `path` set with "
            "pipex.context(path=...) or the pipex.path setting, may point anywhere."
        )


def check_inside(result: str, folder: str, template: str, task: str = "") -> None:
    """Refuse a rendered location that is not inside ``folder`` once normalized.

    Catches what no single field shows: an empty leading field making the location
    absolute, or neighbouring fields adding up to ``..``.
    """
    norm = posixpath.normpath(result)
    base = posixpath.normpath(folder) if folder else "."
    if base == ".":
        inside = not (norm.startswith(("/", "\\")) or _DRIVE.match(norm) or norm == "..")
        inside = inside and not norm.startswith("../")
    else:
        inside = norm == base or norm.startswith(base.rstrip("/") + "/")
    if not inside:
        where = f"folder {folder!r}" if folder else "the relative folder it starts in"
        raise TargetError(
            f"{_who(task)}target template {template!r} renders to {result!r}, which is "
            f"outside {where}: its fields together move the target out of the folder the "
            "template puts it in. Nothing was written. Give each field a plain, non-empty "
            "relative name."
        )


def render_callable(
    fn: Callable[..., Any], fields: Mapping[str, Any], accepts_all: bool, names: frozenset[str]
) -> Any:
    """Call a callable target with the fields it names (all of them if it takes ``**``)."""
    if accepts_all:
        return fn(**fields)
    return fn(**{k: v for k, v in fields.items() if k in names})


def did_you_mean(name: str, names: Iterable[str]) -> str:
    """`` Did you mean {src}?`` for the closest of ``names``, or nothing."""
    close = difflib.get_close_matches(name, list(names), n=1)
    return f" Did you mean {{{close[0]}}}?" if close else ""


def _who(task: str) -> str:
    return f"task {task}: " if task else ""
