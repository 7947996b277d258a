"""pipex.visualize: a picture coloured by status, one box per step when large; no package."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import pipex
from pipex.steer.picture import STATES

SVG = "{http://www.w3.org/2000/svg}"


def fills(path: str) -> list[str]:
    """The fill colours of the boxes of an SVG picture, legend excluded."""
    root = ET.parse(path).getroot()
    return [r.get("fill") for g in root.iter(f"{SVG}g") for r in g.iter(f"{SVG}rect")]


def test_small_graph_one_box_per_node_coloured_by_status(chains):
    pipeline = chains(2)
    pipeline.compute()
    os.remove("out/score/1.pkl")
    os.remove("out/clean/1.pkl")

    written = pipex.visualize(pipeline.roots, filename="pictures/pipeline.svg")

    assert written == "pictures/pipeline.svg"
    colours = fills(written)
    assert len(colours) == 6
    assert colours.count(STATES["done"]) == 2  # score/0 and load/1
    assert colours.count(STATES["to run"]) == 2  # clean/1 and score/1
    assert colours.count(STATES["unchecked"]) == 2  # below score/0
    assert len(pipeline.calls) == 6  # the first run only: drawing ran nothing


def test_large_graph_one_box_per_step_with_counts(chains):
    pipeline = chains(30)
    pipex.visualize(pipeline.roots, filename="big.svg", max_boxes=20)
    root = ET.parse("big.svg").getroot()
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert len(list(root.iter(f"{SVG}g"))) == 3
    assert texts[0] == "90 targets in 3 steps"
    assert texts.count("30 targets") == 3
    assert texts.count("30 to run") == 3
    assert len(list(root.iter(f"{SVG}path"))) == 2 + 1  # two arrows, and the arrow head


def test_dot_and_unknown_suffixes(chains):
    pipeline = chains(1)
    pipex.visualize(pipeline.roots, filename="g.dot")
    text = Path("g.dot").read_text()
    assert text.startswith("digraph pipex {")
    assert text.count("->") == 2
    with pytest.raises(ValueError, match=r"not \.png"):
        pipex.visualize(pipeline.roots, filename="g.png")
