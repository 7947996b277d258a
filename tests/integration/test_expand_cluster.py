"""pipex.expand on a real distributed.LocalCluster (two single-threaded worker processes)."""

from __future__ import annotations

from collections import Counter

import pytest

import pipex
from tests.documents import calls, documents, notes

distributed = pytest.importorskip("distributed")

pytestmark = pytest.mark.slow


def pipeline(tmp_path, docs, fn_calls):
    log = tmp_path / "log"
    log.mkdir(exist_ok=True)
    split, ocr, _ = documents(log)

    def pages(texts):
        fn_calls[texts[0].rsplit("-", 1)[0]] += 1
        return [ocr(text) for text in texts]

    with pipex.context(path=str(tmp_path / "out")):
        return [pipex.expand(split(doc, n, s), pages) for doc, n, s in docs], log


def test_pages_stream_on_the_cluster_and_a_finished_run_restarts_with_zero_calls(
    local_client, tmp_path
):
    fn_calls: Counter[str] = Counter()
    docs = [("a", 2, 0.05), ("b", 2, 1.0), ("c", 2, 2.5)]
    expansions, log = pipeline(tmp_path, docs, fn_calls)

    (results,) = pipex.compute(expansions, scheduler=local_client, load=True)

    assert results == [["A-P0", "A-P1"], ["B-P0", "B-P1"], ["C-P0", "C-P1"]]
    assert calls(log) == {"split": 3, "ocr": 6}
    recorded = notes(log)
    last_split_end = max(n["end"] for n in recorded if n["step"] == "split")
    page_starts = [n["start"] for n in recorded if n["step"] == "ocr"]
    assert min(page_starts) < last_split_end

    expansions, _ = pipeline(tmp_path, docs, fn_calls)
    again = pipex.compute(expansions, scheduler=local_client)

    assert fn_calls == {"a": 1, "b": 1, "c": 1}
    assert calls(log) == {"split": 3, "ocr": 6}
    assert again.summary.ran == 0
    assert [t.path for t in again[0][2]] == [f"{tmp_path}/out/ocr/c-p{i}.pkl" for i in (0, 1)]


def test_a_failing_expansion_on_the_cluster_is_reported_and_others_go_on(local_client, tmp_path):
    log = tmp_path / "log"
    log.mkdir()
    split, ocr, _ = documents(log)

    def broken(texts):
        raise ValueError("cannot read the table of contents")

    with pipex.context(path=str(tmp_path / "out")):
        bad = pipex.expand(split("a", 2), broken)
        good = pipex.expand(split("b", 2), lambda texts: [ocr(t) for t in texts])

    with pytest.raises(pipex.PipelineError, match="table of contents") as caught:
        pipex.compute(bad, good, scheduler=local_client)

    assert [f.key for f in caught.value.failed] == [bad.key]
    assert calls(log) == {"split": 2, "ocr": 2}
