"""A :class:`~pipex.steer.picture.Picture` as a standalone SVG file (no package needed)."""

from __future__ import annotations

from xml.sax.saxutils import escape

from pipex.steer.picture import LEGEND, STATES, Box, Picture

WIDTH, HEIGHT, GAP_X, GAP_Y, MARGIN = 190, 44, 70, 14, 20
STEP_HEIGHT = 74  # a step box: title, bar, two lines of counts
FONT = "font-family='Helvetica, Arial, sans-serif'"


def render(picture: Picture) -> str:
    """The SVG text of ``picture``: boxes left to right by layer, arrows from inputs."""
    height = STEP_HEIGHT if any(len(b.lines) > 1 for b in picture.boxes) else HEIGHT
    layers = picture.layers()
    rows = max((len(layer) for layer in layers), default=0)
    top = MARGIN + 24
    where: dict[int, tuple[float, float]] = {
        i: (MARGIN + box.layer * (WIDTH + GAP_X), top + box.row * (height + GAP_Y))
        for i, box in enumerate(picture.boxes)
    }
    width = MARGIN * 2 + len(layers) * WIDTH + (len(layers) - 1) * GAP_X
    legend_y = top + rows * (height + GAP_Y) + 6
    width = max(width, 620)
    out = [
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{legend_y + 30}' "
        f"viewBox='0 0 {width} {legend_y + 30}' {FONT} font-size='12'>",
        "<defs><marker id='arrow' viewBox='0 0 10 10' refX='10' refY='5' markerWidth='7' "
        "markerHeight='7' orient='auto'><path d='M0,0 L10,5 L0,10 z' fill='#546e7a'/></marker>"
        "</defs>",
        "<rect width='100%' height='100%' fill='white'/>",
        f"<text x='{MARGIN}' y='{MARGIN + 8}' font-size='14' font-weight='bold'>"
        f"{escape(picture.title)}</text>",
    ]
    for a, b in sorted(picture.edges):
        (x1, y1), (x2, y2) = where[a], where[b]
        y1, y2, x1 = y1 + height / 2, y2 + height / 2, x1 + WIDTH
        mid = (x1 + x2) / 2
        out.append(
            f"<path d='M{x1},{y1} C{mid},{y1} {mid},{y2} {x2},{y2}' fill='none' "
            "stroke='#90a4ae' stroke-width='1.2' marker-end='url(#arrow)'/>"
        )
    for i, box in enumerate(picture.boxes):
        out += _box(box, *where[i], height)
    x: float = MARGIN
    for state, colour in STATES.items():
        out.append(
            f"<rect x='{x}' y='{legend_y}' width='14' height='14' rx='3' fill='{colour}' "
            "stroke='#455a64' stroke-width='0.5'/>"
        )
        out.append(f"<text x='{x + 20}' y='{legend_y + 11}'>{escape(LEGEND[state])}</text>")
        x += 36 + 6.3 * len(LEGEND[state])
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _box(box: Box, x: float, y: float, height: int) -> list[str]:
    total = sum(box.counts.values())
    parts = [f"<g><title>{escape(box.title)}: {escape(' '.join(box.lines))}</title>"]
    if len(box.counts) == 1 and height == HEIGHT:  # a node: filled with its state's colour
        (state,) = box.counts
        parts.append(_rect(x, y, WIDTH, height, STATES[state], stroke=True))
        parts.append(_text(x + 8, y + 17, box.title, bold=True))
        parts.append(_text(x + 8, y + 34, box.lines[0]))
        return [*parts, "</g>"]
    parts.append(_rect(x, y, WIDTH, height, "#fafafa", stroke=True))
    parts.append(_text(x + 8, y + 17, box.title, bold=True))
    left = x + 8.0
    for state, colour in STATES.items():  # a bar split by state
        share = (WIDTH - 16) * box.counts.get(state, 0) / max(total, 1)
        if share:
            share = max(share, 3.0)  # a few among thousands still shows
            parts.append(_rect(left, y + 24, share, 10, colour))
            left += share
    for k, line in enumerate(box.lines):
        parts.append(_text(x + 8, y + 49 + 14 * k, line, size=11))
    return [*parts, "</g>"]


def _rect(x: float, y: float, w: float, h: float, fill: str, stroke: bool = False) -> str:
    edge = " stroke='#455a64' stroke-width='0.8' rx='5'" if stroke else ""
    return f"<rect x='{x:.1f}' y='{y:.1f}' width='{w:.1f}' height='{h}' fill='{fill}'{edge}/>"


def _text(x: float, y: float, text: str, bold: bool = False, size: int = 12) -> str:
    shown = text if len(text) <= 28 else text[:27] + "…"
    weight = " font-weight='bold'" if bold else ""
    return f"<text x='{x:.1f}' y='{y:.1f}' font-size='{size}'{weight}>{escape(shown)}</text>"
