"""Templates, root-escape checks and the Target type (pipex/core/templates.py, targets.py)."""

import datetime
import os
import pickle
import posixpath
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pipex
from pipex.core.templates import Template
from pipex.stores.base import Store
from tests.files import files_under

SETTINGS = settings(max_examples=50, deadline=None)


# --- rendering -------------------------------------------------------------------------------


def test_attribute_access_on_a_target():
    up = pipex.Target("out/load/page-001.png", pipex.FileStore("/data"))
    text = Template("{path}/gray/{img.stem}.pkl").render({"path": "out", "img": up})
    assert text == "out/gray/page-001.pkl"


def test_attribute_access_on_an_upstream_node(workdir):
    @pipex.task(target="{path}/load/{name}.pkl")
    def load(name):
        return name

    @pipex.task(target="{path}/gray/{img.stem}{img.suffix}")
    def gray(img):
        return img.upper()

    with pipex.context(path="out"):
        node = gray(load("page-001"))
    assert node.target.path == "out/gray/page-001.pkl"
    pipex.compute(node)
    assert pipex.FileStore(workdir).load("out/gray/page-001.pkl") == "PAGE-001"


def test_index_access_by_key_and_position():
    template = Template("{d[kind]}/{xs[0]}-{xs[2]}.pkl")
    assert template.render({"d": {"kind": "gray"}, "xs": ["a", "b", "c"]}) == "gray/a-c.pkl"


def test_nested_attribute_and_index_access():
    date = datetime.date(2024, 3, 9)
    text = Template("{runs[0].year}/{runs[0].month:02d}.pkl").render({"runs": [date]})
    assert text == "2024/03.pkl"


def test_format_specs():
    template = Template("{n:03d}-{x:.2f}-{s:>4}-{s:_<4}.pkl")
    assert template.render({"n": 7, "x": 3.14159, "s": "ab"}) == "007-3.14-  ab-ab__.pkl"


def test_format_spec_with_a_nested_field():
    assert Template("{n:0{width}d}.pkl").render({"n": 7, "width": 5}) == "00007.pkl"


def test_date_format_spec():
    text = Template("{today:%Y-%m}.pkl").render({"today": datetime.date(2024, 3, 9)})
    assert text == "2024-03.pkl"


def test_conversions():
    class Thing:
        def __str__(self):
            return "str-form"

        def __repr__(self):
            return "repr-form"

        def __format__(self, spec):
            return "format-form"

    fields = {"t": Thing(), "u": "é"}
    assert Template("{t}").render(fields) == "format-form"
    assert Template("{t!s}").render(fields) == "str-form"
    assert Template("{t!r}").render(fields) == "repr-form"
    assert Template("{u!a}").render(fields) == "'\\xe9'"


def test_literal_braces():
    assert Template("{{x}}/{x}.pkl").render({"x": "a"}) == "{x}/a.pkl"


@pytest.mark.parametrize("text", ["{}.pkl", "{0}.pkl", "{path}/{}.pkl", "{1[0]}.pkl"])
def test_positional_fields_are_refused(text):
    with pytest.raises(pipex.TargetError, match="positional"):
        Template(text)


def test_positional_field_refused_at_decoration():
    with pytest.raises(pipex.TargetError, match="positional"):

        @pipex.task(target="{path}/{}.pkl")
        def f(x):
            return x


def test_missing_field_names_the_field_and_how_to_set_it():
    with pytest.raises(pipex.TargetError) as info:
        Template("{path}/{colour}.pkl").render({"path": "out", "size": 1}, "paint")
    message = str(info.value)
    assert "{colour}" in message
    assert "pipex.context(colour=" in message
    assert "paint" in message
    assert "size" in message  # the fields that are available


def test_missing_field_in_a_task(workdir):
    @pipex.task(target="{path}/{colour}.pkl")
    def paint(x):
        return x

    node = paint(1)  # targets render on first use, before anything runs
    with pytest.raises(pipex.TargetError, match=re.escape("pipex.context(colour=")):
        _ = node.target
    with pytest.raises(pipex.TargetError, match=re.escape("pipex.context(colour=")):
        pipex.compute(node)
    assert files_under(workdir) == []
    with pipex.context(colour="red"):
        assert paint(1).target.path == "pipex-out/red.pkl"


def test_bad_accessor_is_a_target_error():
    with pytest.raises(pipex.TargetError, match="cannot render"):
        Template("{d[missing]}.pkl").render({"d": {}})
    with pytest.raises(pipex.TargetError, match="cannot render"):
        Template("{x.nope}.pkl").render({"x": 1})
    with pytest.raises(pipex.TargetError, match="cannot render"):
        Template("{x:03d}.pkl").render({"x": "text"})


# --- root escape -----------------------------------------------------------------------------

ESCAPES = ["..", "../x", "a/../../x", "a/..", "..\\x", "a\\..\\..\\x"]
ABSOLUTES = ["/x", "\\x", "C:\\x", "c:/x", "s3://bucket/x"]


@pytest.mark.parametrize("value", ESCAPES + ABSOLUTES)
def test_template_refuses_escaping_values(value):
    with pytest.raises(pipex.TargetError, match="outside the folder"):
        Template("{path}/sub/{name}.pkl").render({"path": "out", "name": value})


@pytest.mark.parametrize("value", ["..", "../x", "a/../../x"])
def test_dotdot_in_an_index_or_attribute_is_refused(value):
    with pytest.raises(pipex.TargetError, match=re.escape("'..' component")):
        Template("{path}/{d[k]}.pkl").render({"path": "out", "d": {"k": value}})


@pytest.mark.parametrize("value", ["..x", "x..", "a/..b/c", "a..b", "...", ". ."])
def test_dots_that_are_not_a_component_are_fine(value):
    text = Template("{path}/sub/{name}.pkl").render({"path": "out", "name": value})
    assert posixpath.normpath(text).startswith("out/sub/")


def _setup_escape(workdir, monkeypatch):
    """Work in workdir/work/; return the folder an escaping target would land in."""
    (workdir / "work").mkdir()
    monkeypatch.chdir(workdir / "work")
    return workdir / "outside"


@pytest.mark.parametrize("kind", ["dotdot", "absolute"])
def test_escaping_argument_is_refused_and_nothing_is_written(workdir, monkeypatch, kind):
    outside = _setup_escape(workdir, monkeypatch)
    value = "../outside" if kind == "dotdot" else str(outside)
    calls = []

    @pipex.task(target="{name}/data.pkl")
    def make(name):
        calls.append(name)
        return name

    with pytest.raises(pipex.TargetError, match="outside the folder"):
        pipex.compute(make(value))
    assert calls == []
    assert files_under(workdir) == []
    assert not outside.exists()


@pytest.mark.parametrize("kind", ["dotdot", "absolute", "windows"])
def test_escaping_context_variable_is_refused_and_nothing_is_written(workdir, monkeypatch, kind):
    outside = _setup_escape(workdir, monkeypatch)
    value = {"dotdot": "../../outside/x", "absolute": str(outside / "x"), "windows": "C:\\x"}[kind]
    calls = []

    @pipex.task
    def make(n):
        calls.append(n)
        return n

    with (
        pipex.context(path="out"),
        pipex.context(base=value),
        pytest.raises(pipex.TargetError, match=r"\{base\}"),
    ):
        pipex.compute(make(1))
    assert calls == []
    assert files_under(workdir) == []
    assert not outside.exists()


def test_escaping_upstream_path_through_attribute_is_refused(workdir):
    up = pipex.Target("../elsewhere/x.pkl")

    @pipex.task(target="out/{src.parent}/copy.pkl")
    def copy(src: pipex.Target):
        return src

    with pytest.raises(pipex.TargetError, match=r"\{src\}"):
        _ = copy(up).target
    with pytest.raises(pipex.TargetError, match=r"\{src\}"):
        pipex.compute(copy(up))
    assert files_under(workdir) == []


def test_whole_upstream_target_renders_absolute_and_is_refused(workdir):
    @pipex.task(target="{path}/a/{x}.pkl")
    def a(x):
        return x

    @pipex.task(target="{path}/b/{src}.pkl")
    def b(src):
        return src

    with pytest.raises(pipex.TargetError, match=r"\{src.stem\}"):
        _ = b(a(1)).target
    with pytest.raises(pipex.TargetError, match=r"\{src.stem\}"):
        pipex.compute(b(a(1)))
    assert files_under(workdir) == []


@pytest.mark.parametrize("path", ["/abs/out", "../up", "a/../../b", "C:\\out"])
def test_path_field_may_point_anywhere(path):
    text = Template("{path}/sub/{name}.pkl").render({"path": path, "name": "x"})
    assert text == f"{path}/sub/x.pkl"


def test_path_context_may_be_absolute_or_go_up(workdir, monkeypatch):
    (workdir / "work").mkdir()
    monkeypatch.chdir(workdir / "work")

    @pipex.task(target="{path}/{x}.pkl")
    def make(x):
        return x * 2

    with pipex.context(path="../up"):
        node = make(1)
    assert node.target.path == "../up/1.pkl"
    with pipex.context(path=str(workdir / "abs")):
        absolute = make(2)
    assert absolute.target.path == str(workdir / "abs" / "2.pkl")
    pipex.compute(node, absolute)
    assert pipex.FileStore(workdir).load("up/1.pkl") == 2
    assert pipex.FileStore(workdir).load("abs/2.pkl") == 4


@pytest.mark.parametrize("template", ["{path}/x/{name}.pkl", "{path}/x/{name}", "{path}/{name}"])
def test_root_above_the_working_directory_writes_and_skips(workdir, monkeypatch, template):
    """A relative root starting with `..`: the suffix is read from the file name alone."""
    (workdir / "work").mkdir()
    monkeypatch.chdir(workdir / "work")
    calls = []

    @pipex.task(target=template)
    def make(name):
        calls.append(name)
        return name.upper()

    name = "a" if template.endswith(".pkl") else "a.pkl"
    for _ in range(2):
        with pipex.context(path="../shared_out"):
            node = make(name)
        (target,) = pipex.compute(node)
    assert calls == [name]
    assert target.load() == name.upper()
    written = workdir / "shared_out" / template.split("/", 1)[1].format(name=name)
    assert pickle.loads(written.read_bytes()) == name.upper()


def _is_safe(value):
    return (
        ".." not in re.split(r"[\\/]", value)
        and not value.startswith(("/", "\\"))
        and not re.match(r"^[A-Za-z]:[\\/]", value)
        and "://" not in value
    )


SAFE_TEXT = st.text(alphabet=st.sampled_from("ab./\\:~ -_é"), max_size=12).filter(_is_safe)


@SETTINGS
@given(value=SAFE_TEXT)
def test_safe_field_values_render_inside_the_template_folder(value):
    text = Template("{path}/sub/{name}.pkl").render({"path": "out", "name": value})
    assert posixpath.normpath(text).startswith("out/sub/")


@SETTINGS
@given(value=SAFE_TEXT)
def test_safe_leading_field_values_stay_relative(value):
    """A leading field renders relative, or is refused: an empty one would make the location
    absolute, and a drive-like one (``a:``) would on Windows."""
    try:
        text = Template("{name}/data.pkl").render({"name": value})
    except pipex.TargetError:
        assert value in ("", ".") or re.fullmatch(r"[A-Za-z]:", value)
        return
    normalized = posixpath.normpath(text)
    assert not posixpath.isabs(normalized)
    assert not normalized.startswith("../")


@SETTINGS
@given(a=SAFE_TEXT, b=SAFE_TEXT)
def test_adjacent_field_values_cannot_combine_into_an_escape(a, b):
    """Each value alone is safe; joined they must not climb out of the folder either."""
    try:
        text = Template("{path}/sub/{a}{b}/x.pkl").render({"path": "out", "a": a, "b": b})
    except pipex.TargetError:
        return
    assert posixpath.normpath(text).startswith("out/sub/")


def test_two_single_dots_do_not_make_a_parent_reference(workdir):
    """`.` and `.` are both harmless alone, but `{a}{b}` must not become `..`."""

    @pipex.task(target="{path}/sub/{a}{b}/x.pkl")
    def make(a, b):
        return a + b

    node = make(".", ".")
    try:
        target = node.target
    except pipex.TargetError:
        return
    assert target.path.startswith("pipex-out/sub/")


def test_empty_leading_field_does_not_make_the_target_absolute(workdir):
    """`{user}/data.pkl` with user="" must not become `/data.pkl` (the filesystem root)."""

    @pipex.task(target="{user}/data.pkl")
    def make(user):
        return user

    node = make("")
    try:
        _ = node.target
    except pipex.TargetError:
        return
    assert not os.path.isabs(node.target.path)
    assert os.fspath(node.target).startswith(str(workdir))


EMPTY_SEGMENT_CASES = [
    ("{path}/x/{name}.pkl", "."),
    ("{path}/x/{name}.{name}.pkl", ""),
    ("{path}/{name}/x.pkl", ""),
    ("{path}/{name}/x.pkl", "."),
    ("{path}/x/a{name}.pkl", ""),
    ("{path}/{name}/x.pkl", "a/./b"),
    ("{path}/{name}/x.pkl", "a//b"),
    ("{path}/{name}/x.pkl", "a/"),
    ("{name}/x.pkl", "."),
    ("{path}/x/{name}.pkl", "./a"),
]


@pytest.mark.parametrize(("template", "value"), EMPTY_SEGMENT_CASES)
def test_empty_or_dot_segment_in_an_argument_is_refused_before_running(workdir, template, value):
    calls = []

    @pipex.task(target=template)
    def make(name):
        calls.append(name)
        return name

    with pytest.raises(pipex.TargetError, match=r"\{name\}.*empty or '\.'") as info:
        pipex.compute(make(value))
    assert "make" in str(info.value) and repr(value) in str(info.value)
    assert calls == []
    assert files_under(workdir) == []


@pytest.mark.parametrize("value", ["", ".", "a/./b"])
def test_empty_or_dot_segment_in_an_argument_is_refused_for_a_callable_target(workdir, value):
    calls = []

    @pipex.task(target=lambda path, name: f"{path}/{name}/x.pkl")
    def make(name):
        calls.append(name)
        return name

    with pytest.raises(pipex.TargetError, match=r"\{name\}.*empty or '\.'"):
        pipex.compute(make(value))
    assert calls == []
    assert files_under(workdir) == []


def test_a_file_name_of_dots_before_its_suffix_is_refused(workdir):
    """A context variable (not checked like an argument) still cannot name `..pkl`."""
    calls = []

    @pipex.task
    def make(x):
        calls.append(x)
        return x

    with pipex.context(base="."), pytest.raises(pipex.TargetError, match="empty file name"):
        pipex.compute(make(1))
    assert calls == []


def test_dots_inside_argument_values_are_fine(workdir):
    @pipex.task(target="{path}/{name}/{file}.pkl")
    def make(name, file):
        return file

    node = make("v1.2", ".hidden")
    assert node.target.path == "pipex-out/v1.2/.hidden.pkl"
    assert pipex.compute(node, load=True) == (".hidden",)


# --- Target ----------------------------------------------------------------------------------


def test_target_path_store_exists_load(tmp_path):
    store = pipex.FileStore(tmp_path)
    target = pipex.Target("out/a.pkl", store)
    assert target.path == "out/a.pkl"
    assert target.store is store
    assert not target.exists()
    store.save("out/a.pkl", {"k": [1, 2]})
    assert target.exists()
    assert target.load() == {"k": [1, 2]}


def test_target_defaults_to_a_file_store_in_the_working_directory(workdir):
    target = pipex.Target("a.txt")
    assert target.store == pipex.FileStore(workdir)
    (workdir / "a.txt").write_text("hello")
    assert target.load() == "hello"


def test_fspath_and_str_are_the_full_location(tmp_path):
    target = pipex.Target("out/a.txt", pipex.FileStore(tmp_path))
    assert os.fspath(target) == str(tmp_path / "out" / "a.txt")
    assert str(target) == str(tmp_path / "out" / "a.txt")
    pipex.FileStore(tmp_path).save("out/a.txt", "content")
    with open(target) as file:  # usable wherever a path is
        assert file.read() == "content"


class _DictStore(Store):
    """A non-local store: targets live in a dict."""

    def __init__(self):
        self.data = {}

    def exists_many(self, paths):
        return [p in self.data for p in paths]

    def load(self, path):
        return self.data[path]

    def save(self, path, obj):
        self.data[path] = obj

    def delete(self, path):
        self.data.pop(path, None)

    def temporary(self, path):
        raise NotImplementedError

    def location(self, path):
        return f"dict://{path}"


def test_non_local_target_str_is_its_location_and_fspath_fails():
    store = _DictStore()
    target = pipex.Target("out/a.pkl", store)
    assert str(target) == "dict://out/a.pkl"
    with pytest.raises(TypeError):
        os.fspath(target)
    store.save("out/a.pkl", 5)
    assert target.exists()
    assert target.load() == 5


@pytest.mark.parametrize(
    ("path", "name", "stem", "suffix", "parent"),
    [
        ("out/gray/page-001.pkl", "page-001.pkl", "page-001", ".pkl", "out/gray"),
        ("a.tar.gz", "a.tar.gz", "a.tar", ".gz", ""),
        ("v1.0/data", "data", "data", "", "v1.0"),
        ("/abs/x.json", "x.json", "x", ".json", "/abs"),
    ],
)
def test_name_stem_suffix_parent(tmp_path, path, name, stem, suffix, parent):
    target = pipex.Target(path, pipex.FileStore(tmp_path))
    assert (target.name, target.stem, target.suffix, target.parent) == (
        name,
        stem,
        suffix,
        parent,
    )


def test_equality_and_hash(tmp_path):
    a = pipex.Target("out/a.pkl", pipex.FileStore(tmp_path))
    same = pipex.Target("out/a.pkl", pipex.FileStore(str(tmp_path)))
    other_path = pipex.Target("out/b.pkl", pipex.FileStore(tmp_path))
    other_store = pipex.Target("out/a.pkl", pipex.FileStore(tmp_path / "elsewhere"))
    assert a == same
    assert hash(a) == hash(same)
    assert a != other_path
    assert a != other_store
    assert a != "out/a.pkl"
    assert len({a, same, other_path, other_store}) == 3


def test_pickle_round_trip(tmp_path):
    target = pipex.Target("out/a.pkl", pipex.FileStore(tmp_path))
    copy = pickle.loads(pickle.dumps(target))
    assert copy == target
    assert copy.path == "out/a.pkl"
    assert copy.store.root == str(tmp_path)
    pipex.FileStore(tmp_path).save("out/a.pkl", [1, 2, 3])
    assert copy.load() == [1, 2, 3]


SECRET_URLS = [
    ("s3://AKIAKEY:s3cr3t@bucket/run/x.pkl", "s3://***@bucket/run/x.pkl"),
    ("https://user:pa55@host.example/data/x.pkl", "https://***@host.example/data/x.pkl"),
    ("https://host/x.pkl?sig=abc%2Fdef&sv=2024", "https://host/x.pkl?sig=***&sv=2024"),
    ("https://host/x.pkl?se=1&token=t0k3n", "https://host/x.pkl?se=1&token=***"),
    (
        "https://b.s3.amazonaws.com/x?X-Amz-Credential=AK%2F1&X-Amz-Signature=ff00",
        "https://b.s3.amazonaws.com/x?X-Amz-Credential=***&X-Amz-Signature=***",
    ),
    (
        "failed on 'gs://tok@bucket/a' and s3://k:s@b",
        "failed on 'gs://***@bucket/a' and s3://***@b",
    ),
    ("out/plain/x.pkl", "out/plain/x.pkl"),
    ("https://host/a@b/x.pkl?page=2", "https://host/a@b/x.pkl?page=2"),
]


@pytest.mark.parametrize(("text", "shown"), SECRET_URLS)
def test_redact_hides_credentials_in_urls(text, shown):
    from pipex.redact import redact

    assert redact(text) == shown


def test_a_target_under_a_url_with_credentials_never_shows_them(workdir):
    with pipex.context(path="memory://AKIAKEY:s3cr3t@creds-bucket/run"):
        node = make_named("a")
    target = node.target
    for shown in (str(target), repr(target), node.key, repr(node), repr(target.store)):
        assert "s3cr3t" not in shown and "AKIAKEY" not in shown, shown
    assert str(target) == "memory://***@creds-bucket/run/x/a.pkl"
    assert pipex.compute(node, load=True, progress=False) == ("a",)  # the real location works
    assert target.store.location(target.path).startswith("memory://AKIAKEY:s3cr3t@")
    assert target.exists()
    assert pipex.compute(node, load=True, progress=False) == ("a",)


@pipex.task(target="{path}/x/{name}.pkl")
def make_named(name):
    return name


def test_repr_shows_path_and_store(tmp_path):
    text = repr(pipex.Target("out/a.pkl", pipex.FileStore(tmp_path)))
    assert "out/a.pkl" in text
    assert str(tmp_path) in text
