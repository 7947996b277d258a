"""``@pipex.task`` and its nodes (pipex/task.py)."""

import datetime
import importlib
import os
import pathlib
import re
import subprocess
import sys
import textwrap
import uuid

import dask
import pytest

import pipex
from tests.files import files_under


@pytest.fixture
def module_factory(tmp_path_factory, monkeypatch):
    """Write Python source to a fresh importable module; returns (module, its folder)."""
    folder = tmp_path_factory.mktemp("modules")
    monkeypatch.syspath_prepend(str(folder))
    names = []

    def make(source):
        name = f"pipex_testmod_{uuid.uuid4().hex[:10]}"
        (folder / f"{name}.py").write_text(textwrap.dedent(source))
        importlib.invalidate_caches()
        names.append(name)
        return importlib.import_module(name), folder

    yield make
    for name in names:
        sys.modules.pop(name, None)


# --- the decorator ---------------------------------------------------------------------------


def test_bare_decorator(workdir):
    calls = []

    @pipex.task
    def double(x):
        """Doubles."""
        calls.append(x)
        return 2 * x

    assert isinstance(double, pipex.TaskFunction)
    assert double.__name__ == "double"
    assert double.__doc__ == "Doubles."
    node = double(4)
    assert isinstance(node, pipex.Node)
    assert pipex.compute(node, load=True) == (8,)
    assert calls == [4]


def test_decorator_with_options(workdir):
    @pipex.task(target="{path}/d/{x}.txt")
    def double(x):
        return str(2 * x)

    node = double(4)
    assert node.target.path == "pipex-out/d/4.txt"
    pipex.compute(node)
    assert (workdir / "pipex-out" / "d" / "4.txt").read_text() == "8"


def test_decorator_with_empty_parentheses(workdir):
    @pipex.task()
    def double(x):
        return 2 * x

    assert pipex.compute(double(4), load=True) == (8,)


def test_unknown_keyword_is_a_type_error():
    with pytest.raises(TypeError, match="tagret"):
        pipex.task(tagret="{path}/x.pkl")


def test_template_passed_positionally_is_a_type_error_with_a_hint():
    with pytest.raises(TypeError, match=r"target='\{path\}/x.pkl'"):
        pipex.task("{path}/x.pkl")


def test_bad_target_and_store_types():
    with pytest.raises(TypeError, match="target"):

        @pipex.task(target=42)
        def f(x):
            return x

    with pytest.raises(TypeError, match="store"):

        @pipex.task(store=42)
        def g(x):
            return x


# --- the default template --------------------------------------------------------------------


def test_default_template_is_path_funcname_token(workdir):
    @pipex.task
    def f(x, y=2):
        return x + y

    node = f(1)
    folder, name = node.target.path.rsplit("/", 1)
    assert folder == "pipex-out/f"
    assert name.endswith(".pkl")
    assert len(name) > len("x.pkl")
    assert node.target.store == pipex.FileStore(workdir)


def test_default_template_same_call_same_target(workdir):
    @pipex.task
    def f(x, y=2):
        return x

    first = f(1).target
    assert f(1).target == first
    assert f(1, 2).target == first  # defaults applied
    assert f(x=1).target == first
    assert f(y=2, x=1).target == first


def test_default_template_different_calls_differ(workdir):
    @pipex.task
    def f(x, y=2):
        return x

    calls = [f(1), f(2), f("1"), f(1.0), f(True), f(None), f([1]), f((1,)), f({1: 2}), f(1, 3)]
    paths = [node.target.path for node in calls]
    assert len(set(paths)) == len(paths)


def test_default_template_differs_between_functions(workdir):
    @pipex.task(name="same")
    def f(x):
        return x

    @pipex.task(name="same")
    def g(x):
        return x

    assert f(1).target != g(1).target


def _targets_in_subprocesses(workdir, folder, script):
    """What ``script`` prints, run in fresh interpreters with different hash seeds."""
    seen = []
    for seed in ("0", "1", "12345"):
        env = {**os.environ, "PYTHONPATH": str(folder), "PYTHONHASHSEED": seed}
        out = subprocess.run(
            [sys.executable, "-c", script],
            cwd=workdir,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        seen.append(out.stdout.strip())
    return seen


_STABLE = """
import pipex

@pipex.task
def f(*args):
    return args
"""


@pytest.mark.parametrize(
    "call",
    [
        "m.f(7, 'text', 1.5, None, True, b'raw')",
        "m.f({'b', 'a', 'c'}, {3, 1, 2})",
        "m.f({'k': ('v', 1.5), 'z': [1, {'n': None}]}, {'q': 1, 'a': 2})",
        "m.f(frozenset({'p', 'q', 'r'}))",
    ],
    ids=["atoms", "sets", "containers", "frozenset"],
)
def test_default_template_is_stable_across_processes(workdir, module_factory, call):
    module, folder = module_factory(_STABLE)
    here = eval(call, {"m": module}).target.path
    script = f"import {module.__name__} as m; print({call}.target.path)"
    assert _targets_in_subprocesses(workdir, folder, script) == [here] * 3


_SCRIPT = """
import dataclasses, enum
import pipex

class Colour(enum.Enum):
    RED = 1

@dataclasses.dataclass(frozen=True)
class Size:
    width: int
    height: int

@pipex.task
def paint(colour, size):
    return colour

try:
    print(paint(Colour.RED, Size(3, 4)).target.path)
except pipex.TargetError as exc:  # a clear refusal is fine too; a new target each run is not
    print("TargetError", "base" in str(exc))
"""


def test_default_template_is_stable_for_types_defined_in_the_script(workdir):
    """A pipeline script run twice must render the same targets (or refuse clearly)."""
    (workdir / "pipeline.py").write_text(_SCRIPT)
    seen = []
    for _ in range(2):
        out = subprocess.run(
            [sys.executable, "pipeline.py"],
            cwd=workdir,
            capture_output=True,
            text=True,
            check=True,
        )
        seen.append(out.stdout.strip())
    assert seen[0] == seen[1]
    assert seen[0] == "TargetError True" or seen[0].startswith("pipex-out/paint/")


def test_default_base_for_a_call_with_an_upstream_node(workdir):
    @pipex.task
    def up(x):
        return x

    @pipex.task
    def down(a):
        return a

    assert down(up(1)).target == down(up(1)).target
    assert down(up(1)).target != down(up(2)).target


# --- context, funcname, today ----------------------------------------------------------------


def test_context_sets_path_and_base(workdir):
    @pipex.task
    def f(x):
        return x * 3

    with pipex.context(path="results", base="page-001"):
        node = f(1)
    assert node.target.path == "results/f/page-001.pkl"
    pipex.compute(node)
    assert pipex.FileStore(workdir).load("results/f/page-001.pkl") == 3


def test_context_nesting_and_restoring(workdir):
    @pipex.task
    def f(x):
        return x

    default = f(1).target.path
    with pipex.context(path="outer"):
        token = f(1).target.path.rsplit("/", 1)[1]
        assert f(1).target.path == f"outer/f/{token}"
        with pipex.context(base="b1"):
            assert f(1).target.path == "outer/f/b1.pkl"
            with pipex.context(path="inner", base="b2"):
                assert f(1).target.path == "inner/f/b2.pkl"
            assert f(1).target.path == "outer/f/b1.pkl"
        assert f(1).target.path == f"outer/f/{token}"
    assert f(1).target.path == default
    assert default == f"pipex-out/f/{token}"


def test_context_restores_after_an_exception(workdir):
    @pipex.task
    def f(x):
        return x

    before = f(1).target.path
    with pytest.raises(RuntimeError), pipex.context(path="x"):
        raise RuntimeError
    assert f(1).target.path == before


def test_context_as_a_decorator(workdir):
    @pipex.task(target="{path}/{kind}/{x}.pkl")
    def f(x):
        return x

    @pipex.context(kind="gray")
    def build():
        return f(1)

    assert build().target.path == "pipex-out/gray/1.pkl"


def test_funcname_and_today(workdir):
    @pipex.task(target="{path}/{funcname}/{today}/{today:%Y}.pkl")
    def stamp(x):
        return x

    before = datetime.date.today()
    path = stamp(1).target.path
    after = datetime.date.today()
    assert path in {f"pipex-out/stamp/{d.isoformat()}/{d.year}.pkl" for d in (before, after)}


def test_arguments_override_context_variables(workdir):
    @pipex.task(target="{path}/{kind}/{x}.pkl")
    def f(x, kind="default"):
        return x

    with pipex.context(kind="from-context", x="ctx"):
        assert f(1).target.path == "pipex-out/default/1.pkl"
        assert f(1, kind="arg").target.path == "pipex-out/arg/1.pkl"


def test_context_variables_fill_fields_that_are_not_arguments(workdir):
    @pipex.task(target="{path}/{kind}/{x}.pkl")
    def f(x):
        return x

    with pipex.context(kind="from-context"):
        assert f(1).target.path == "pipex-out/from-context/1.pkl"


def test_path_setting_from_dask_config(workdir):
    @pipex.task(target="{path}/{x}.pkl")
    def f(x):
        return x

    with dask.config.set({"pipex.path": "configured"}):
        assert f(1).target.path == "configured/1.pkl"
        with pipex.context(path="ctx"):
            assert f(1).target.path == "ctx/1.pkl"


def test_name_option_changes_funcname_and_key(workdir):
    @pipex.task(name="grayscale")
    def f(x):
        return x

    node = f(1)
    assert node.target.path.startswith("pipex-out/grayscale/")
    assert node.key.startswith("grayscale-")
    assert "f-" not in node.key
    assert f.name == "grayscale"


# --- callable targets ------------------------------------------------------------------------


def test_callable_target_receives_fields_by_name(workdir):
    received = []

    def where(x, funcname, path):
        received.append((x, funcname, path))
        return f"{path}/{funcname}-{x}.pkl"

    @pipex.task(target=where)
    def f(x, y=5):
        return x + y

    with pipex.context(path="ctx"):
        node = f(1)
    assert node.target.path == "ctx/f-1.pkl"
    assert received == [(1, "f", "ctx")]
    pipex.compute(node)
    assert pipex.FileStore(workdir).load("ctx/f-1.pkl") == 6


def test_callable_target_with_var_keywords_gets_every_field(workdir):
    received = {}

    def where(**fields):
        received.update(fields)
        return f"{fields['path']}/{fields['kind']}/{fields['x']}-{fields['y']}.pkl"

    @pipex.task(target=where)
    def f(x, y=5):
        return x

    with pipex.context(kind="k"):
        assert f(1).target.path == "pipex-out/k/1-5.pkl"
    assert {"x", "y", "kind", "funcname", "path", "base", "today"} <= set(received)
    assert received["funcname"] == "f"
    assert received["today"] == datetime.date.today()


def test_callable_target_returning_a_path(workdir):
    @pipex.task(target=lambda x: pathlib.Path("out") / f"{x}.pkl")
    def f(x):
        return x

    node = f(3)
    assert node.target.path == "out/3.pkl"
    pipex.compute(node)
    assert (workdir / "out" / "3.pkl").is_file()


def test_callable_target_returning_a_target_uses_its_store(workdir):
    elsewhere = pipex.FileStore(workdir / "elsewhere")

    @pipex.task(target=lambda x: pipex.Target(f"t/{x}.pkl", elsewhere))
    def f(x):
        return x * 10

    node = f(3)
    assert node.target == pipex.Target("t/3.pkl", elsewhere)
    pipex.compute(node)
    assert elsewhere.load("t/3.pkl") == 30
    assert files_under(workdir) == ["elsewhere/t/3.pkl"]


@pytest.mark.parametrize("value", [42, None, ["a.pkl"], b"a.pkl"])
def test_callable_target_returning_something_else_is_a_target_error(workdir, value):
    @pipex.task(target=lambda x: value)
    def f(x):
        return x

    with pytest.raises(pipex.TargetError, match=re.escape("str, a path or a pipex.Target")):
        _ = f(1).target


# --- store -----------------------------------------------------------------------------------


def test_store_as_a_folder_string(workdir):
    @pipex.task(target="{path}/{x}.pkl", store="data")
    def f(x):
        return x + 1

    node = f(1)
    assert node.target.store == pipex.FileStore(workdir / "data")
    pipex.compute(node)
    assert files_under(workdir) == ["data/pipex-out/1.pkl"]
    assert pipex.FileStore(workdir / "data").load("pipex-out/1.pkl") == 2


def test_store_as_a_store_object(workdir, tmp_path_factory):
    store = pipex.FileStore(tmp_path_factory.mktemp("elsewhere"))

    @pipex.task(target="{x}.pkl", store=store)
    def f(x):
        return x + 1

    pipex.compute(f(1))
    assert store.load("1.pkl") == 2
    assert files_under(workdir) == []


# --- nodes -----------------------------------------------------------------------------------


def test_building_a_node_runs_nothing_and_knows_its_target(workdir):
    calls = []

    @pipex.task(target="{path}/a/{x}.pkl")
    def a(x):
        calls.append(("a", x))
        return x

    @pipex.task(target="{path}/b/{src.stem}.pkl")
    def b(src):
        calls.append(("b", src))
        return src + 1

    node = b(a(1))
    assert calls == []
    assert isinstance(node.target, pipex.Target)
    assert node.target.path == "pipex-out/b/1.pkl"
    assert not node.target.exists()
    assert files_under(workdir) == []
    assert pipex.compute(node) == (node.target,)
    assert calls == [("a", 1), ("b", 1)]
    assert node.target.load() == 2
    pipex.compute(node)
    assert calls == [("a", 1), ("b", 1)]  # already done: nothing ran again


def test_node_key_starts_with_name_and_contains_target(workdir):
    @pipex.task(target="{path}/gray/{x}.pkl")
    def gray(x):
        return x

    node = gray("page-001")
    assert node.key.startswith("gray")
    assert "pipex-out/gray/page-001.pkl" in node.key
    assert gray("page-002").key != node.key
    assert "gray" in repr(node)


def test_node_computes_with_dask(workdir):
    calls = []

    @pipex.task(target="{path}/{x}.pkl")
    def f(x):
        calls.append(x)
        return x

    node = f(1)
    (result,) = dask.compute(node)
    assert result == node.target
    assert node.compute() == node.target
    assert calls == [1]


# --- save=False ------------------------------------------------------------------------------


def test_save_false_writes_through_a_temporary_path(workdir):
    seen = []

    @pipex.task(target="{path}/raw/{x}.bin", save=False)
    def write(x, target):
        final = workdir / "pipex-out" / "raw" / f"{x}.bin"
        seen.append((target, final.exists()))
        with open(target, "wb") as file:
            file.write(bytes([x]) * 3)
        seen.append(final.exists())

    node = write(7)
    pipex.compute(node)
    (target, existed_before), existed_after_writing = seen
    final = workdir / "pipex-out" / "raw" / "7.bin"
    assert os.path.dirname(target) == str(final.parent)
    assert os.path.basename(target) != "7.bin"
    assert not existed_before
    assert not existed_after_writing  # moved into place only after the function returned
    assert final.read_bytes() == b"\x07\x07\x07"
    assert os.listdir(final.parent) == ["7.bin"]


def test_save_false_failure_leaves_nothing(workdir):
    @pipex.task(target="{path}/raw/{x}.bin", save=False)
    def write(x, target):
        with open(target, "wb") as file:
            file.write(b"partial")
        raise ValueError("half-way")

    with pytest.raises(pipex.PipelineError, match="half-way"):
        pipex.compute(write(1))
    assert files_under(workdir) == []


def test_save_false_without_a_target_parameter_is_a_type_error():
    with pytest.raises(TypeError, match="target"):

        @pipex.task(save=False)
        def write(x):
            pass


def test_save_false_with_var_keywords_gets_target(workdir):
    @pipex.task(target="{path}/{x}.txt", save=False)
    def write(x, **kwargs):
        with open(kwargs["target"], "w") as file:
            file.write(str(x))

    pipex.compute(write(5))
    assert (workdir / "pipex-out" / "5.txt").read_text() == "5"


def test_save_false_target_parameter_is_not_an_argument(workdir):
    @pipex.task(target="{path}/{x}.txt", save=False)
    def write(target, x):
        with open(target, "w") as file:
            file.write(str(x))

    with pytest.raises(TypeError, match="write"):
        write(1, 2)
    pipex.compute(write(2))
    assert (workdir / "pipex-out" / "2.txt").read_text() == "2"


def test_save_false_writing_nothing_fails(workdir):
    calls = []

    @pipex.task(target="{path}/{x}.txt", save=False)
    def lazy(x, target):
        calls.append(x)

    node = lazy(1)
    with pytest.raises(pipex.PipelineError, match="nothing was written") as info:
        pipex.compute(node)
    assert calls == [1]
    assert isinstance(info.value.exceptions[0], pipex.StoreError)
    assert not node.target.exists()


def test_save_false_allows_any_suffix(workdir):
    @pipex.task(target="{path}/{x}.weird", save=False)
    def write(x, target):
        pathlib.Path(target).write_text("w")

    pipex.compute(write(1))
    assert (workdir / "pipex-out" / "1.weird").read_text() == "w"


# --- passing data between tasks --------------------------------------------------------------


def _chain(kind):
    """An upstream task and a downstream one whose parameter is annotated as ``kind``."""

    @pipex.task(target="{path}/up/{x}.pkl")
    def up(x):
        return x * 10

    received = []
    if kind == "class":

        def down(src: pipex.Target):
            received.append(src)
            return 0

    elif kind == "string":

        def down(src: "pipex.Target"):
            received.append(src)
            return 0

    elif kind == "list":

        def down(src: list[pipex.Target]):
            received.append(src)
            return 0

    else:

        def down(src):
            received.append(src)
            return 0

    return up, pipex.task(target="{path}/down/{funcname}.pkl")(down), received


@pytest.mark.parametrize("kind", ["class", "string"])
def test_target_annotation_receives_the_upstream_target(workdir, kind):
    up, down, received = _chain(kind)
    upstream = up(4)
    pipex.compute(down(upstream))
    assert received == [upstream.target]
    assert type(received[0]) is pipex.Target
    assert received[0].load() == 40


def test_target_annotation_inside_a_list(workdir):
    up, down, received = _chain("list")
    nodes = [up(1), up(2)]
    pipex.compute(down(nodes))
    assert received == [[nodes[0].target, nodes[1].target]]


def test_unannotated_parameter_receives_loaded_data(workdir):
    up, down, received = _chain("none")
    pipex.compute(down(up(4)))
    assert received == [40]


def test_target_annotation_with_future_annotations(workdir, module_factory):
    module, _ = module_factory(
        """
        from __future__ import annotations

        import pipex
        from pipex import Target

        received = []

        @pipex.task(target="{path}/up/{x}.pkl")
        def up(x: int) -> int:
            return x * 10

        @pipex.task(target="{path}/down/{src.stem}.pkl")
        def down(src: Target, plain: int) -> int:
            received.append((src, plain))
            return 0

        @pipex.task(target="{path}/qualified/{src.stem}.pkl")
        def qualified(src: pipex.Target | None, plain: int) -> int:
            received.append((src, plain))
            return 0
        """
    )
    first, second = module.up(1), module.up(2)
    pipex.compute(module.down(first, second), module.qualified(second, first))
    assert sorted(module.received, key=lambda pair: pair[1]) == [
        (second.target, 10),
        (first.target, 20),
    ]


def test_unresolvable_string_annotation_still_counts(workdir, module_factory):
    module, _ = module_factory(
        """
        from __future__ import annotations

        import pipex

        received = []

        @pipex.task(target="{path}/up/{x}.pkl")
        def up(x):
            return x

        @pipex.task(target="{path}/down/{src.stem}.pkl")
        def down(src: Target, other: NotDefinedAnywhere):  # noqa: F821
            received.append((src, other))
            return 0
        """
    )
    first = module.up(1)
    pipex.compute(module.down(first, module.up(2)))
    assert module.received == [(first.target, 2)]


def test_nodes_nested_in_containers_become_loaded_dependencies(workdir):
    calls = []

    @pipex.task(target="{path}/leaf/{x}.pkl")
    def leaf(x):
        calls.append(x)
        return x * 10

    @pipex.task(target="{path}/gather/{name}.pkl")
    def gather(name, items, mapping, pair):
        return {"items": items, "mapping": mapping, "pair": pair}

    node = gather(
        "all",
        [leaf(1), leaf(2), 3],
        {"a": leaf(4), "b": [leaf(5)], "c": 6},
        (leaf(1), "x"),
    )
    assert calls == []
    assert {dep.key for dep in node.deps} == {leaf(x).key for x in (1, 2, 4, 5)}
    (result,) = pipex.compute(node, load=True)
    assert result == {
        "items": [10, 20, 3],
        "mapping": {"a": 40, "b": [50], "c": 6},
        "pair": (10, "x"),
    }
    assert sorted(calls) == [1, 2, 4, 5]


@pytest.mark.parametrize("wrap", [lambda d: d, lambda d: [1, d], lambda d: {"k": d}])
def test_other_dask_collections_are_refused(workdir, wrap):
    @pipex.task
    def f(x):
        return x

    with pytest.raises(TypeError, match="Delayed"):
        f(wrap(dask.delayed(1)))


def test_miscalled_task_names_the_task(workdir):
    @pipex.task
    def resize(img, size):
        return img

    with pytest.raises(TypeError, match="resize") as info:
        resize(1)
    assert "size" in str(info.value)
    with pytest.raises(TypeError, match="resize"):
        resize(1, 2, 3)
    with pytest.raises(TypeError, match="resize"):
        resize(1, size=2, colour=3)
    with pytest.raises(TypeError, match="resize"):
        resize(1, 2, img=3)


def test_keyword_only_and_var_positional_parameters(workdir):
    @pipex.task(target="{path}/{a}-{n}.pkl")
    def f(a, *rest, n=1, **extra):
        return [a, list(rest), n, extra]

    node = f(1, 2, 3, n=4, z=5)
    assert node.target.path == "pipex-out/1-4.pkl"
    assert pipex.compute(node, load=True) == ([1, [2, 3], 4, {"z": 5}],)


# --- suffix checks ---------------------------------------------------------------------------


def test_unknown_literal_suffix_fails_at_decoration():
    with pytest.raises(pipex.SerializerError, match=r"\.weird"):

        @pipex.task(target="{path}/{x}.weird")
        def f(x):
            return x


def test_unknown_rendered_suffix_fails_when_the_target_renders(workdir):
    @pipex.task(target="{path}/{name}")
    def f(name):
        return name

    assert f("ok.json").target.path == "pipex-out/ok.json"
    with pytest.raises(pipex.SerializerError, match=r"\.weird"):
        _ = f("bad.weird").target
    with pytest.raises(pipex.SerializerError, match="no suffix"):
        pipex.compute(f("nosuffix"))
    assert not os.path.exists("pipex-out")


def test_unknown_suffix_from_a_callable_target_fails_when_rendered(workdir):
    @pipex.task(target=lambda x: f"out/{x}")
    def f(x):
        return x

    assert f("a.txt").target.path == "out/a.txt"
    with pytest.raises(pipex.SerializerError):
        _ = f("a.weird").target


def test_same_call_twice_is_one_node_in_a_pipeline(workdir):
    calls = []

    @pipex.task(target="{path}/{x}.pkl")
    def f(x):
        calls.append(x)
        return x

    @pipex.task(target="{path}/sum.pkl")
    def total(items):
        return sum(items)

    assert pipex.compute(total([f(1), f(1), f(2)]), load=True) == (4,)
    assert sorted(calls) == [1, 2]


def test_mode_off_runs_the_function_directly(workdir, monkeypatch):
    calls = []

    @pipex.task
    def f(x):
        calls.append(x)
        return x + 1

    monkeypatch.setenv("PIPEX", "off")
    assert f(1) == 2
    assert calls == [1]
    assert files_under(workdir) == []


def test_a_task_function_sent_by_value_is_rebuilt_once_per_process(workdir):
    import pickle

    import cloudpickle

    def make(suffix):
        @pipex.task(target="{path}/{funcname}/{x}." + suffix)
        def step(x):
            return x

        return step

    first, second = make("pkl"), make("txt")  # local functions: pickled by value
    sent = cloudpickle.dumps(first)
    one, two = pickle.loads(sent), pickle.loads(sent)
    assert one is two  # the receiving side builds it once
    assert one is not first and one.name == "step"
    assert pickle.loads(cloudpickle.dumps(second)) is not one
    assert str(pickle.loads(cloudpickle.dumps(second))(3).target).endswith("step/3.txt")
    assert pipex.compute(one(4), load=True) == (4,)
