"""pipex.expand: nodes made from a node's data, streamed into the run, cheap on restart."""

from __future__ import annotations

import os
import re
from collections import Counter
from pathlib import Path

import pytest

import pipex
from pipex.core.targets import Target
from tests.documents import calls, documents, notes
from tests.files import files_under


@pytest.fixture
def log(tmp_path):
    folder = tmp_path / "log"
    folder.mkdir()
    return folder


@pytest.fixture
def counted(monkeypatch):
    """Counts every Target.load (in this process), by target path."""
    loads: Counter[str] = Counter()
    original = Target.load

    def load(self):
        loads[self.path] += 1
        return original(self)

    monkeypatch.setattr(Target, "load", load)
    return loads


def pipeline(log, docs, fn_calls=None):
    """One expansion per document: ``split`` it, then ``ocr`` each page."""
    split, ocr, _ = documents(log)
    fn_calls = Counter() if fn_calls is None else fn_calls

    def pages(texts):
        fn_calls[texts[0].rsplit("-", 1)[0] if texts else "?"] += 1
        return [ocr(text) for text in texts]

    with pipex.context(path="out"):
        return [pipex.expand(split(doc, n, s), pages) for doc, n, s in docs]


def test_an_expansion_runs_the_nodes_fn_returns_and_computes_to_their_targets(workdir, log):
    (expansion,) = pipeline(log, [("a", 3, 0)])

    (targets,) = pipex.compute(expansion)

    assert [t.path for t in targets] == [f"out/ocr/a-p{i}.pkl" for i in range(3)]
    assert all(type(t) is pipex.Target for t in targets)
    assert [t.load() for t in targets] == ["A-P0", "A-P1", "A-P2"]
    assert calls(log) == {"split": 1, "ocr": 3}
    assert pipex.compute(expansion, load=True) == (["A-P0", "A-P1", "A-P2"],)


def test_pages_of_the_first_document_run_while_later_documents_are_split(workdir, log):
    # The first document splits fast, the last slowly: without streaming, no page would
    # start before every split had finished.
    expansions = pipeline(log, [("a", 2, 0.05), ("b", 2, 1.0), ("c", 2, 2.5)])

    results = pipex.compute(expansions, num_workers=4)

    assert [len(r) for r in results[0]] == [2, 2, 2]
    recorded = notes(log)
    last_split_end = max(n["end"] for n in recorded if n["step"] == "split")
    page_starts = [n["start"] for n in recorded if n["step"] == "ocr"]
    assert min(page_starts) < last_split_end


def test_a_finished_expansion_restarts_with_zero_calls_and_zero_loads(workdir, log, counted):
    fn_calls: Counter[str] = Counter()
    expansions = pipeline(log, [("a", 2, 0), ("b", 3, 0)], fn_calls)
    first = pipex.compute(expansions)
    assert fn_calls == {"a": 1, "b": 1}
    assert calls(log) == {"split": 2, "ocr": 5}
    counted.clear()

    again = pipex.compute(pipeline(log, [("a", 2, 0), ("b", 3, 0)], fn_calls))

    assert again == first
    assert fn_calls == {"a": 1, "b": 1}  # fn not called again
    assert calls(log) == {"split": 2, "ocr": 5}  # no task ran
    # The only reads are the two records: no output of any task.
    read = sorted(path.split(".expand-")[0] for path in counted)
    assert read == ["out/split/a.pkl", "out/split/b.pkl"]
    assert again.summary.ran == 0
    assert (again.summary.requested, again.summary.done) == (5, 5)


def test_a_lost_page_reruns_fn_and_only_that_page(workdir, log):
    fn_calls: Counter[str] = Counter()
    pipex.compute(pipeline(log, [("a", 2, 0), ("b", 3, 0)], fn_calls))
    os.remove("out/ocr/b-p1.pkl")

    (results,) = pipex.compute(pipeline(log, [("a", 2, 0), ("b", 3, 0)], fn_calls), load=True)

    assert results == [["A-P0", "A-P1"], ["B-P0", "B-P1", "B-P2"]]
    assert fn_calls == {"a": 1, "b": 2}  # only b's expansion called fn again
    assert calls(log) == {"split": 2, "ocr": 6}  # only the lost page ran


def test_a_lost_record_calls_fn_again_and_runs_nothing(workdir, log):
    fn_calls: Counter[str] = Counter()
    (expansion,) = pipeline(log, [("a", 2, 0)], fn_calls)
    pipex.compute(expansion)
    os.remove(expansion.record.path)

    (targets,) = pipex.compute(expansion)

    assert fn_calls == {"a": 2}
    assert calls(log) == {"split": 1, "ocr": 2}
    assert os.path.exists(expansion.record.path)  # recorded again
    assert [t.path for t in targets] == ["out/ocr/a-p0.pkl", "out/ocr/a-p1.pkl"]


def test_a_rerun_split_expands_again(workdir, log):
    fn_calls: Counter[str] = Counter()
    (expansion,) = pipeline(log, [("a", 2, 0)], fn_calls)
    pipex.compute(expansion)
    os.remove("out/split/a.pkl")

    pipex.compute(expansion)

    assert fn_calls == {"a": 2}  # a new output of split: its record no longer counts
    assert calls(log) == {"split": 2, "ocr": 2}


def test_the_reduce_after_a_fan_out_is_built_inside_fn(workdir, log, counted):
    split, ocr, merge = documents(log)

    def merged(texts):
        return merge("a", [ocr(text) for text in texts])

    with pipex.context(path="out"):
        expansion = pipex.expand(split("a", 3), merged)
    assert pipex.compute(expansion, load=True) == ("A-P0 A-P1 A-P2",)
    assert calls(log) == {"split": 1, "ocr": 3, "merge": 1}

    os.remove("out/ocr/a-p1.pkl")  # Make semantics: the merged document needs no page
    counted.clear()
    (target,) = pipex.compute(expansion)

    assert target.path == "out/merged/a.pkl"
    assert calls(log) == {"split": 1, "ocr": 3, "merge": 1}
    assert not [path for path in counted if ".expand-" not in path]


def test_an_expansion_cannot_be_a_task_argument(workdir, log):
    split, ocr, merge = documents(log)
    with pipex.context(path="out"):
        expansion = pipex.expand(split("a", 3), lambda texts: [ocr(t) for t in texts])
        with pytest.raises(TypeError, match=r"cannot be an argument of a task.*inside fn"):
            merge("a", expansion)


def test_expansions_and_nodes_mix_as_roots(workdir, log):
    split, ocr, _ = documents(log)
    with pipex.context(path="out"):
        node = ocr("cover")
        expansion = pipex.expand(split("a", 2), lambda texts: {t: ocr(t) for t in texts})

    results = pipex.compute(node, {"pages": expansion}, load=True)

    assert results == ("COVER", {"pages": {"a-p0": "A-P0", "a-p1": "A-P1"}})
    assert results.summary.ran == 4  # the cover, the split and two pages


def test_fn_returning_data_fails_that_expansion_naming_node_target_and_fix(workdir, log):
    split, ocr, _ = documents(log)
    with pipex.context(path="out"):
        bad = pipex.expand(split("a", 2), lambda texts: [t.upper() for t in texts])
        good = pipex.expand(split("b", 2), lambda texts: [ocr(t) for t in texts])

    with pytest.raises(pipex.PipelineError) as caught:
        pipex.compute(bad, good)

    (failure,) = caught.value.failed
    assert failure.key == bad.key
    message = str(failure.exception)
    assert "split-out/split/a.pkl" in message
    assert "out/split/a.pkl" in str(failure.target)
    assert "fn must return pipex nodes" in message
    assert "str 'A-P0'" in message
    assert calls(log) == {"split": 2, "ocr": 2}  # the other expansion went on
    assert not os.path.exists(bad.record.path)


def test_fn_raising_is_that_expansions_failure(workdir, log):
    split, _, _ = documents(log)

    def broken(texts):
        raise ValueError("no pages found")

    with pipex.context(path="out"):
        expansion = pipex.expand(split("a", 2), broken)

    with pytest.raises(pipex.PipelineError, match="no pages found") as caught:
        pipex.compute(expansion)
    assert [f.key for f in caught.value.failed] == [expansion.key]
    assert caught.value.summary.failed == 1

    with pytest.raises(ValueError, match="no pages found"):
        pipex.compute(expansion, keep_going=False)


def test_a_failed_split_leaves_its_expansion_unrun_and_others_go_on(workdir, log):
    split, ocr, _ = documents(log)
    with pipex.context(path="out"):
        bad = pipex.expand(split("a", -1, "not a number"), lambda t: [ocr(x) for x in t])
        good = pipex.expand(split("b", 2), lambda texts: [ocr(t) for t in texts])

    with pytest.raises(pipex.PipelineError) as caught:
        pipex.compute(bad, good)

    assert [f.key for f in caught.value.failed] == ["split-out/split/a.pkl"]
    assert calls(log) == {"split": 1, "ocr": 2}
    assert good.record.exists() and not bad.record.exists()


def test_expand_refuses_what_is_not_a_node(workdir):
    with pytest.raises(TypeError, match=r"pipex\.expand takes a pipex node"):
        pipex.expand([1, 2], len)


def test_expansions_run_after_the_first_stage_on_the_processes_scheduler(workdir, log):
    expansions = pipeline(log, [("a", 2, 0), ("b", 1, 0)])

    (results,) = pipex.compute(expansions, scheduler="processes", num_workers=2, load=True)

    assert results == [["A-P0", "A-P1"], ["B-P0"]]
    assert calls(log) == {"split": 2, "ocr": 3}


def test_expanded_tasks_are_counted_and_in_the_ledger(workdir, log):
    expansions = pipeline(log, [("a", 2, 0), ("b", 1, 0)])

    results = pipex.compute(expansions)

    assert results.summary.ran == 5
    assert results.summary.requested == 3  # the pages the expansions produced
    steps = Counter(record.step for record in pipex.history())
    assert steps == {"split": 2, "ocr": 3}


def test_with_pipex_off_expand_calls_fn_on_the_data(workdir, log, monkeypatch):
    monkeypatch.setenv("PIPEX", "off")
    split, ocr, _ = documents(log)

    pages = pipex.expand(split("a", 2), lambda texts: [ocr(t) for t in texts])

    assert pages == ["A-P0", "A-P1"]
    assert pipex.compute(pages) == (["A-P0", "A-P1"],)


def test_the_documented_pdf_example_runs_and_restarts_with_zero_calls(workdir, counted):
    docs = Path(__file__).resolve().parent.parent / "docs" / "concepts.md"
    section = docs.read_text().split("## Fan-out")[1].split("\n## ")[0]
    code = section.split("```python\n")[1].split("```")[0]

    exec(compile(code, str(docs), "exec"), {"__name__": "concepts"})
    assert files_under(workdir / "out") == [
        "merged/a.pdf.pkl",
        "merged/b.pdf.pkl",
        "ocr/a.pdf/000.pkl",
        "ocr/a.pdf/001.pkl",
        "ocr/b.pdf/000.pkl",
        "pages/a.pdf.pkl",
        "pages/a.pdf.pkl.expand-read-" + _code("pages/a.pdf.pkl", workdir) + ".pkl",
        "pages/b.pdf.pkl",
        "pages/b.pdf.pkl.expand-read-" + _code("pages/b.pdf.pkl", workdir) + ".pkl",
    ]

    counted.clear()
    exec(compile(code, str(docs), "exec"), {"__name__": "concepts"})  # loads only the merges
    assert sorted(p for p in counted if ".expand-" not in p) == [
        "out/merged/a.pdf.pkl",
        "out/merged/b.pdf.pkl",
    ]


def _code(prefix, workdir):
    (record,) = (workdir / "out").glob(prefix + ".expand-read-*.pkl")
    return record.name.rsplit("-", 1)[1].removesuffix(".pkl")


def test_the_progress_bar_counts_the_expanded_tasks(workdir, log, capsys):
    expansions = pipeline(log, [("a", 2, 0), ("b", 1, 0)])

    pipex.compute(expansions, progress=True)

    bar = capsys.readouterr().err
    assert "5/5" in bar  # two splits, then three pages added as their expansions ran
    assert "ran 5" in bar


def test_the_progress_label_ends_on_the_summarys_already_done(workdir, log, capsys):
    expansions = pipeline(log, [("a", 2, 0), ("b", 3, 0)])
    pipex.compute(expansions)
    os.remove("out/ocr/b-p1.pkl")  # b expands again; a finishes from its record
    capsys.readouterr()

    summary = pipex.compute(expansions, progress=True).summary
    bar = capsys.readouterr().err
    assert (summary.requested, summary.done, summary.ran) == (5, 4, 1)
    labels = re.findall(r"pipex \((\d+) already done\)", bar)
    assert int(labels[-1]) == summary.done  # a's two pages at first, b's two once found


def test_a_bumped_version_of_a_produced_task_reruns_it_through_its_expansion(workdir, log):
    split, _, _ = documents(log)
    ran: Counter[str] = Counter()

    def reader(version):
        @pipex.task(target="{path}/read/{page}.pkl", version=version)
        def read(page):
            ran[page, version] += 1
            return page

        return read

    def run(version):
        read = reader(version)
        with pipex.context(path="out"):
            expansion = pipex.expand(split("a", 2), lambda texts: [read(t) for t in texts])
        return pipex.compute(expansion)

    run("1")
    run("1")
    assert ran == {("a-p0", "1"): 1, ("a-p1", "1"): 1}

    run("2")  # the record holds versioned nodes: resolved again, with the version check

    assert ran == {("a-p0", "1"): 1, ("a-p1", "1"): 1, ("a-p0", "2"): 1, ("a-p1", "2"): 1}
    assert calls(log) == {"split": 1}


def test_with_rerun_code_records_are_not_enough_and_fn_is_called_again(workdir, log):
    import dask

    fn_calls: Counter[str] = Counter()
    pipex.compute(pipeline(log, [("a", 2, 0)], fn_calls))

    with dask.config.set({"pipex.rerun": "code"}):
        again = pipex.compute(pipeline(log, [("a", 2, 0)], fn_calls))

    assert fn_calls == {"a": 2}  # the produced nodes were resolved, with the code check
    assert calls(log) == {"split": 1, "ocr": 2}  # and found unchanged
    assert again.summary.ran == 0


def test_status_counts_an_expansion_as_its_node(workdir, log):
    expansions = pipeline(log, [("a", 2, 0), ("b", 1, 0)])
    assert pipex.status(expansions).steps["split"].to_run == 2

    pipex.compute(expansions)

    assert pipex.status(expansions).steps["split"].done == 2


def test_two_expansions_producing_one_target_are_a_collision_naming_both_calls(workdir, log):
    split, _, _ = documents(log)
    ran = []

    @pipex.task(target="{path}/cover.pkl")  # the same target whatever the page
    def cover(page: str) -> str:
        ran.append(page)
        return page.upper()

    def covers(texts):
        return [cover(texts[0])]

    with pipex.context(path="out"):
        expansions = [pipex.expand(split(doc, 2), covers) for doc in ("a", "b")]

    with pytest.raises(pipex.TargetCollisionError) as caught:
        pipex.compute(expansions)

    message = str(caught.value)
    assert "out/cover.pkl" in message
    assert "cover(page='a-p0')" in message and "cover(page='b-p0')" in message
    assert all(e.key in message for e in expansions)  # which expansions returned them
    assert len(ran) == 1  # one call ran; the other neither ran nor took its output
    assert not any(e.record.exists() for e in expansions)

    # Neither kept a record: running again calls both fns again, and finds it again.
    with pytest.raises(pipex.TargetCollisionError, match=r"out/cover\.pkl"):
        pipex.compute(expansions)
    assert len(ran) == 1


def test_an_expansion_colliding_with_one_finished_on_an_earlier_run_is_a_collision(workdir, log):
    split, _, _ = documents(log)

    @pipex.task(target="{path}/cover.pkl")
    def cover(page: str) -> str:
        return page.upper()

    def covers(texts):
        return [cover(texts[0])]

    with pipex.context(path="out"):
        first = pipex.expand(split("a", 2), covers)
        pipex.compute(first)  # recorded: a restart reads only its record
        added = pipex.expand(split("b", 2), covers)  # a document added later

    with pytest.raises(pipex.TargetCollisionError, match=r"out/cover\.pkl") as caught:
        pipex.compute(first, added)

    message = str(caught.value)
    assert first.key in message and "cover(page='b-p0')" in message
    assert pipex.Target("out/cover.pkl").load() == "A-P0"
    assert not first.record.exists() and not added.record.exists()
    with pytest.raises(pipex.TargetCollisionError, match="cover\\(page='a-p0'\\)"):
        pipex.compute(first, added)  # both fns called again: the calls named


def test_an_expansion_producing_a_target_of_the_graph_is_a_collision(workdir, log):
    split, _, _ = documents(log)

    @pipex.task(target="{path}/cover.pkl")
    def cover(page: str) -> str:
        return page.upper()

    with pipex.context(path="out"):
        plain = cover("z")
        clash = pipex.expand(split("a", 1), lambda texts: [cover(texts[0])])

    with pytest.raises(pipex.TargetCollisionError, match=r"out/cover\.pkl") as caught:
        pipex.compute(plain, clash)
    assert "cover(page='z')" in str(caught.value) and clash.key in str(caught.value)
    assert pipex.Target("out/cover.pkl").load() == "Z"


def test_two_expansions_returning_the_same_call_share_its_node(workdir, log):
    split, ocr, _ = documents(log)
    with pipex.context(path="out"):
        expansions = [pipex.expand(split(d, 1), lambda t: [ocr("shared")]) for d in "ab"]

    results = pipex.compute(expansions)

    assert [[t.path for t in r] for r in results[0]] == [["out/ocr/shared.pkl"]] * 2
    assert calls(log)["ocr"] == 1
