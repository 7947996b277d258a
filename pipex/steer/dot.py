"""A :class:`~pipex.steer.picture.Picture` as Graphviz DOT text (render it with ``dot``)."""

from __future__ import annotations

import json

from pipex.steer.picture import STATES, Picture


def render(picture: Picture) -> str:
    """The DOT text of ``picture``: one filled box per box, in the colour of its main state."""
    out = ["digraph pipex {", "  rankdir=LR;", "  node [shape=box, style=filled];"]
    out.append(f"  label={json.dumps(picture.title)}; labelloc=t;")
    for i, box in enumerate(picture.boxes):
        state = box.counts.most_common(1)[0][0] if box.counts else "unchecked"
        label = "\\n".join([box.title, *box.lines])
        out.append(f'  n{i} [label="{_quoted(label)}", fillcolor="{STATES[state]}"];')
    out += [f"  n{a} -> n{b};" for a, b in sorted(picture.edges)]
    out.append("}")
    return "\n".join(out) + "\n"


def _quoted(text: str) -> str:
    return text.replace('"', '\\"')
