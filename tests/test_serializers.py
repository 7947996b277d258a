"""Serializers chosen by suffix (pipex/serializers.py), in memory and through a FileStore."""

import io
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pipex
from pipex.serializers import SUFFIXES, for_suffix

SETTINGS = settings(max_examples=50, deadline=None)


def round_trip(suffix, obj):
    serializer = for_suffix(suffix)
    buffer = io.BytesIO()
    serializer.dump(obj, buffer)
    buffer.seek(0)
    return serializer.load(buffer)


def store_round_trip(tmp_path, name, obj):
    store = pipex.FileStore(tmp_path)
    store.save(name, obj)
    assert (tmp_path / name).stat().st_size > 0
    return store.load(name)


# --- pickle ----------------------------------------------------------------------------------

FLOATS = st.floats(allow_nan=False)
SCALARS = st.none() | st.booleans() | st.integers() | FLOATS | st.text() | st.binary()
PICKLABLE = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(max_size=5) | st.integers(), inner, max_size=4)
        | st.frozensets(st.integers() | st.text(max_size=5), max_size=4)
    ),
    max_leaves=12,
)


@SETTINGS
@given(obj=PICKLABLE)
def test_pickle_round_trip(obj):
    assert round_trip(".pkl", obj) == obj


def test_pickle_round_trips_a_lambda_and_a_local_class(tmp_path):
    offset = 10

    class Local:
        def __init__(self, value):
            self.value = value

    loaded = store_round_trip(tmp_path, "f.pkl", {"f": lambda x: x + offset, "obj": Local(3)})
    assert loaded["f"](1) == 11
    assert loaded["obj"].value == 3
    assert type(loaded["obj"]).__name__ == "Local"


def test_pickle_suffix_alias_and_case(tmp_path):
    assert store_round_trip(tmp_path, "a.pickle", [1, "x"]) == [1, "x"]
    assert store_round_trip(tmp_path, "b.PKL", {"k": 2}) == {"k": 2}


# --- json ------------------------------------------------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | FLOATS | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


@SETTINGS
@given(obj=JSON)
def test_json_round_trip(obj):
    assert round_trip(".json", obj) == obj


def test_json_file_is_utf8_json(tmp_path):
    obj = {"name": "café", "values": [1, 2.5, None, True]}
    assert store_round_trip(tmp_path, "a.json", obj) == obj
    assert (tmp_path / "a.json").read_bytes().decode("utf-8").startswith("{")
    assert "caf" in (tmp_path / "a.json").read_text(encoding="utf-8")


def test_json_leaves_the_file_usable():
    """Dumping must not close (or detach) the caller's file object."""
    buffer = io.BytesIO()
    for_suffix(".json").dump([1, 2], buffer)
    assert not buffer.closed
    buffer.write(b"")
    assert buffer.getvalue() == b"[1, 2]"


def test_json_refuses_what_it_cannot_encode(tmp_path):
    with pytest.raises(TypeError):
        pipex.FileStore(tmp_path).save("a.json", {1, 2})
    assert list(tmp_path.iterdir()) == []


# --- text ------------------------------------------------------------------------------------


@SETTINGS
@given(text=st.text())
def test_text_round_trip(text):
    assert round_trip(".txt", text) == text


def test_text_is_written_as_utf8(tmp_path):
    text = "line one\r\nligne deux: é\n"
    assert store_round_trip(tmp_path, "a.txt", text) == text
    assert (tmp_path / "a.txt").read_bytes() == text.encode("utf-8")


@pytest.mark.parametrize("obj", [b"bytes", 1, ["a"], None])
def test_text_refuses_non_str(obj):
    with pytest.raises(pipex.SerializerError, match="str"):
        for_suffix(".txt").dump(obj, io.BytesIO())


def test_text_refusal_through_a_store_writes_nothing(tmp_path):
    with pytest.raises(pipex.SerializerError):
        pipex.FileStore(tmp_path).save("out/a.txt", 42)
    assert list((tmp_path / "out").iterdir()) == []


# --- numpy -----------------------------------------------------------------------------------

np = pytest.importorskip("numpy")
hnp = pytest.importorskip("hypothesis.extra.numpy")

DTYPES = (
    hnp.integer_dtypes()
    | hnp.unsigned_integer_dtypes()
    | hnp.floating_dtypes()
    | hnp.complex_number_dtypes()
    | hnp.boolean_dtypes()
    | hnp.datetime64_dtypes()
    | hnp.unicode_string_dtypes()
)


@SETTINGS
@given(array=hnp.arrays(dtype=DTYPES, shape=hnp.array_shapes(min_dims=0, max_dims=3)))
def test_npy_round_trip(array):
    loaded = round_trip(".npy", array)
    assert isinstance(loaded, np.ndarray)
    assert loaded.dtype == array.dtype
    assert loaded.shape == array.shape
    assert loaded.tobytes() == array.tobytes()


def test_npy_file_is_a_real_npy(tmp_path):
    array = np.arange(12, dtype=np.float32).reshape(3, 4)
    loaded = store_round_trip(tmp_path, "a.npy", array)
    np.testing.assert_array_equal(loaded, array)
    np.testing.assert_array_equal(np.load(tmp_path / "a.npy"), array)


def test_npy_accepts_array_likes():
    loaded = round_trip(".npy", [[1, 2], [3, 4]])
    np.testing.assert_array_equal(loaded, np.array([[1, 2], [3, 4]]))


def test_npy_refuses_object_arrays():
    with pytest.raises(ValueError):
        for_suffix(".npy").dump(np.array([{"a": 1}, None], dtype=object), io.BytesIO())


# --- suffix lookup ---------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".xyz", ".gz", "", "pkl"])
def test_unknown_suffix_lists_the_known_ones(suffix):
    with pytest.raises(pipex.SerializerError) as info:
        for_suffix(suffix)
    message = str(info.value)
    for known in (".pkl", ".json", ".txt", ".npy"):
        assert known in message
    assert "save=False" in message


def test_unknown_suffix_through_a_store(tmp_path):
    with pytest.raises(pipex.SerializerError, match=r"\.pkl"):
        pipex.FileStore(tmp_path).save("a.weird", 1)
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "b.weird").write_bytes(b"x")
    with pytest.raises(pipex.SerializerError):
        pipex.FileStore(tmp_path).load("b.weird")


def test_known_suffixes():
    assert {".pkl", ".pickle", ".json", ".txt", ".npy"} <= set(SUFFIXES)


def test_serializer_error_is_a_value_error():
    with pytest.raises(ValueError):
        for_suffix(".nope")
    assert issubclass(pipex.SerializerError, pipex.PipexError)


def test_pickle_keeps_float_specials():
    loaded = round_trip(".pkl", [math.inf, -math.inf, math.nan])
    assert loaded[:2] == [math.inf, -math.inf]
    assert math.isnan(loaded[2])
