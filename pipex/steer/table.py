"""A plain-text table: what ``str(pipex.status(...))`` and the piped CLI print."""

from __future__ import annotations

from collections.abc import Sequence


def plain(header: Sequence[str], rows: Sequence[Sequence[object]], total: bool = True) -> str:
    """``rows`` under ``header``, numbers right-aligned with thousands separators; with
    ``total``, a rule above the last row (the total)."""
    cells = [list(header), *([_cell(c) for c in row] for row in rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = ["  ".join(_aligned(row, widths)) for row in cells]
    if total and len(rows) > 1:
        lines.insert(len(lines) - 1, "-" * len(lines[0]))
    return "\n".join(lines)


def _cell(value: object) -> str:
    return f"{value:,}" if isinstance(value, int) else str(value)


def _aligned(row: list[str], widths: list[int]) -> list[str]:
    first, *rest = zip(row, widths, strict=True)
    return [first[0].ljust(first[1]), *(cell.rjust(width) for cell, width in rest)]
