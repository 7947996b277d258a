"""A family: the calls of one task over many items, kept as columns, never as call objects.

``task.map(pages)`` makes one family: the task, its per-item argument columns (a sequence of
values, or the upstream family whose item ``i`` is this item's input), the arguments every
item shares, and the context of the call. Item ``i`` is the call with each column's ``i``-th
value. A family renders its targets in bulk (:mod:`pipex.core.bulk`) and checks which of a
set of items exist in one listing per folder; resolution (:mod:`pipex.core.plan`) and the
batches (:mod:`pipex.core.batch`) read it by item index. A plain node is the family of one
call.
"""

from __future__ import annotations

import datetime
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pipex.core.bulk import (
    ATTRIBUTES,
    Indices,
    Rendered,
    check_locations,
    checked,
    escaped,
    text_column,
)
from pipex.core.rendering import Origin
from pipex.core.targets import Target
from pipex.core.templates import ROOT_FIELDS, Template
from pipex.exceptions import TargetCollisionError, TargetError


class Upstream(Target):
    """Item ``i`` of an upstream family as a template sees it: its Target, tokenized by its
    key (as the item's node is), so a default ``{base}`` renders as for that node."""

    __slots__ = ("key",)

    def __init__(self, path: str, store: Any, key: str) -> None:
        super().__init__(path, store)
        self.key = key

    def __dask_tokenize__(self) -> str:  # type: ignore[override]
        return self.key

    def __reduce__(self) -> tuple[Any, ...]:
        return (Target, (self.path, self.store))


class ItemCall:
    """One item's call as rendering reads it (:class:`pipex.core.rendering.Call`)."""

    __slots__ = ("arguments", "context", "deps", "origin", "today")

    def __init__(
        self,
        arguments: dict[str, Any],
        context: Mapping[str, Any],
        today: datetime.date | None,
        deps: tuple[Any, ...],
        origin: Origin,
    ) -> None:
        self.arguments = arguments
        self.context = context
        self.today = today
        self.deps = deps
        self.origin = origin


class Family:
    """The calls of ``task`` over ``length`` items.

    ``columns`` maps each per-item parameter to its values (a sequence) or to the upstream
    :class:`Family` whose item ``i`` feeds item ``i``; ``constants`` maps the others to the
    value every item gets (upstream nodes among them are ``deps``, computed once).
    """

    def __init__(
        self,
        task: Any,
        columns: dict[str, Sequence[Any] | Family],
        constants: dict[str, Any],
        deps: tuple[Any, ...],
        context: Mapping[str, Any],
        today: datetime.date | None,
        origin: Origin,
        length: int,
        node: Callable[[Family, int], Any],
    ) -> None:
        self.task = task
        self._node = node
        self.columns = columns
        self.constants = constants
        self.deps = deps
        self.context = context
        self.today = today
        self.origin = origin
        self.length = length
        self.upstream: tuple[Family, ...] = tuple(
            {id(c): c for c in columns.values() if isinstance(c, Family)}.values()
        )
        self.names: tuple[str, ...] = tuple(task.binder.names)
        self.versioned: bool = (
            task.version is not None
            or any(bool(f.versioned) for f in self.upstream)
            or any(getattr(d, "versioned", False) for d in deps)
        )
        self._rendered: tuple[Rendered, Any] | None = None
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return self.length

    def __repr__(self) -> str:
        return f"<pipex family {self.task.name} x {self.length}>"

    @property
    def name(self) -> str:
        return str(self.task.name)

    # -- items ---------------------------------------------------------------------------------

    def arguments(self, i: int, upstream: Callable[[Family, int], Any]) -> dict[str, Any]:
        """Item ``i``'s arguments by parameter name; ``upstream(family, i)`` stands for an
        upstream family's item."""
        columns, constants = self.columns, self.constants
        out: dict[str, Any] = {}
        for name in self.names:
            if name in columns:
                column = columns[name]
                out[name] = upstream(column, i) if type(column) is Family else column[i]  # type: ignore[index]
            elif name in constants:
                out[name] = constants[name]
        return out

    def node(self, i: int) -> Any:
        """Item ``i``'s node (a :class:`pipex.Node`, made now)."""
        return self._node(self, i)

    def call(self, i: int) -> ItemCall:
        """Item ``i``'s call as its template sees it (upstream items as their Targets)."""
        return ItemCall(
            self.arguments(i, _upstream_target),
            self.context,
            self.today,
            self.deps,
            self.origin,
        )

    def target(self, i: int) -> Target:
        """Item ``i``'s target."""
        rendered, store = self.rendered()
        return Target(rendered.path(i), store)

    def key(self, i: int, path: str | None = None) -> str:
        """Item ``i``'s key, as its node's (``"<funcname>-<target path>"``)."""
        rendered, store = self.rendered()
        where = rendered.path(i) if path is None else path
        home = self.origin.store
        if home is not None and (store is home or store == home):
            return f"{self.task.name}-{where}"
        return f"{self.task.name}-{Target(where, store)}"

    def keyed(self) -> Callable[[str], str]:
        """A function from a path of this family to its key (what :meth:`key` gives)."""
        _, store = self.rendered()
        home = self.origin.store
        name = self.task.name
        if home is not None and (store is home or store == home):
            return f"{name}-{{}}".format
        return lambda path: f"{name}-{Target(path, store)}"

    # -- rendering and existence ---------------------------------------------------------------

    def rendered(self) -> tuple[Rendered, Any]:
        """Every item's location and the store they share, rendered once."""
        found = self._rendered
        if found is None:
            with self._lock:
                if self._rendered is None:
                    self._rendered = _render(self)
                found = self._rendered
        return found

    def exists(self, indices: Indices) -> list[bool]:
        """Whether each of ``indices`` has its target: one listing per folder."""
        rendered, store = self.rendered()
        if rendered.folder is not None and len(indices) > 1:
            return store.exists_names(rendered.folder, rendered.names(indices))
        return store.exists_many(rendered.paths(indices))


def _upstream_target(family: Family, i: int) -> Upstream:
    rendered, store = family.rendered()
    path = rendered.path(i)
    return Upstream(path, store, family.key(i, path))


def _render(family: Family) -> tuple[Rendered, Any]:
    """The family's locations: in bulk when its template allows, else item by item."""
    spec = family.task.spec
    store = family.task.store
    if family.length == 0:
        return Rendered("", (), False), store
    first = spec.render(family.call(0), store)  # every check, for one item
    bulk = _bulk(family, first) if spec.template is not None else None
    if bulk is None:
        paths = [first.path]
        for i in range(1, family.length):
            target = spec.render(family.call(i), store)
            if target.store != first.store:
                raise TargetError(
                    f"task {family.name}: the items of a mapped step must share one store; "
                    f"item 0 is in {first.store!r}, item {i} in {target.store!r}"
                )
            paths.append(target.path)
        bulk = Rendered("{0}", (paths,), True), False
    rendered, unique = bulk
    if not unique:
        _refuse_duplicates(family, rendered)
    return rendered, first.store


def _bulk(family: Family, first: Target) -> tuple[Rendered, bool] | None:
    """The family's locations as one format over per-item columns, and whether they are
    surely distinct; ``None`` when the template needs a render per item (a default
    ``{base}``, a format spec on a per-item field, an attribute other than
    ``path``/``name``/``stem`` of an upstream target, values other than text and ints)."""
    spec = family.task.spec
    template: Template = spec.template
    call = family.call(0)
    fields, given = spec.fields(call)
    if "base" in spec.needs and "base" not in call.context:
        return None
    if spec.save and not spec.suffix_known:
        return None
    free = frozenset() if "path" in given else ROOT_FIELDS
    parts: list[str] = []
    columns: list[Sequence[str]] = []
    distinct: list[bool] = []
    slashed = False
    clean: set[int] = set()
    widths: dict[int, int] = {}
    for literal, root, accessors, conversion, fmt_spec in template.pieces:
        parts.append(escaped(literal))
        if root is None:
            continue
        source = family.columns.get(root) if root in given else None
        if source is None:
            part = Template("{" + root + _tail(accessors, conversion, fmt_spec) + "}")
            parts.append(escaped(part.render(fields, family.name, ROOT_FIELDS)))
            continue
        if conversion or fmt_spec:
            return None
        if type(source) is Family:
            if len(accessors) != 1 or not accessors[0][0] or accessors[0][1] not in ATTRIBUTES:
                return None
            upstream, _ = source.rendered()
            text = upstream.attribute(accessors[0][1])
            unique = upstream.stem_column is not None or accessors[0][1] == "path"
            if id(text) in upstream.clean:  # checked where it was rendered: plain
                clean.add(id(text))
                widths[id(text)] = upstream.widths[id(text)]
        else:
            if accessors:
                return None
            found = text_column(source)  # type: ignore[arg-type]
            if found is None:
                return None
            text, unique = found, type(source) is range
        if id(text) not in clean:
            slash, plain = checked(text, root, template.text, family.name, root not in free)
            slashed = slashed or slash
            if plain:
                clean.add(id(text))
        if not any(c is text for c in columns):
            columns.append(text)
            distinct.append(unique)
        slot = next(i for i, c in enumerate(columns) if c is text)
        parts.append(f"{{{slot}}}")
    fmt = "".join(parts)
    rendered = Rendered(fmt, tuple(columns), slashed)
    path = rendered.path(0)
    if path != first.path:
        if not path.endswith(first.path) or "://" not in path:
            return None  # normalized, say: rendered one by one
        prefix = escaped(path[: len(path) - len(first.path)])
        if not fmt.startswith(prefix) or "{" in fmt[: len(prefix)].replace("{{", ""):
            return None
        rendered = Rendered(fmt[len(prefix) :], tuple(columns), slashed)
        if rendered.path(0) != first.path:
            return None
    rendered.clean.update(clean & {id(c) for c in columns})
    rendered.widths.update(widths)
    head = rendered.fmt.partition("{")[0]
    check_locations(rendered, head[: head.rfind("/") + 1], template.text, family.name)
    return rendered, len(columns) == 1 and distinct[0]


def _tail(accessors: tuple[tuple[bool, Any], ...], conversion: str | None, spec: str) -> str:
    text = "".join(f".{key}" if is_attribute else f"[{key}]" for is_attribute, key in accessors)
    return text + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "")


def _refuse_duplicates(family: Family, rendered: Rendered) -> None:
    """A :class:`TargetCollisionError` when two items render the same target."""
    paths = rendered.paths()
    if len(set(paths)) == len(paths):
        return
    seen: dict[str, int] = {}
    for i, path in enumerate(paths):
        j = seen.setdefault(path, i)
        if j != i:
            raise TargetCollisionError(
                f"two items of mapped step {family.name} render the same target {path}: "
                f"items {j} and {i}. Each would overwrite the other's output. Make the "
                "template tell them apart (use the argument that differs between items)."
            )
