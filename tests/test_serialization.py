"""Checkpoint files: round trip, atomic replacement, corruption and pickle refusal."""

from __future__ import annotations

import functools
import io
import math
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import downslope as ds
from downslope.errors import CheckpointError
from downslope.serialization import atomic_write_bytes


def _state() -> dict:
    return {
        "model": {"fc.weight": np.arange(6, dtype=np.float32).reshape(2, 3), "fc.bias": np.zeros(2, np.float32)},
        "optimizer": {"state": {0: {"step": 3, "exp_avg": np.ones(3)}}, "param_groups": [{"lr": 0.1, "params": [0]}]},
        "epoch": 7,
        "pair": (1, "two"),
        "rng": ds.get_rng_state(),
        "nan": float("nan"),
    }


def test_round_trip_keeps_values_types_and_int_keys(tmp_path):
    path = tmp_path / "ckpt.ds"
    state = _state()
    ds.save(state, path)
    loaded = ds.load(path)
    np.testing.assert_array_equal(loaded["model"]["fc.weight"], state["model"]["fc.weight"])
    assert loaded["model"]["fc.weight"].dtype == np.float32
    assert loaded["optimizer"]["state"][0]["step"] == 3  # int key survives JSON
    assert loaded["optimizer"]["state"][0]["exp_avg"].dtype == np.float64
    assert loaded["pair"] == (1, "two")
    np.testing.assert_array_equal(loaded["rng"], state["rng"].numpy())
    assert np.isnan(loaded["nan"])


def test_tensors_are_saved_as_arrays(tmp_path):
    ds.save({"t": ds.tensor([1.0, 2.0])}, tmp_path / "t.ds")
    np.testing.assert_array_equal(ds.load(tmp_path / "t.ds")["t"], np.array([1.0, 2.0], np.float32))


@pytest.mark.parametrize("cut", [0.1, 0.5, 0.9, 0.999])
def test_truncated_file_fails_clearly(tmp_path, cut):
    path = tmp_path / "ckpt.ds"
    ds.save(_state(), path)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * cut)])
    with pytest.raises(ds.CheckpointError, match="ckpt.ds") as caught:
        ds.load(path)
    # the file's start is intact, so the message says what happened: the end is missing
    assert "is truncated or damaged" in str(caught.value), caught.value


def test_flipped_byte_in_an_array_is_detected(tmp_path):
    path = tmp_path / "ckpt.ds"
    ds.save({"w": np.zeros(1000, np.float32)}, path)
    data = bytearray(path.read_bytes())
    offset = data.index(b"\x00" * 64, 200)  # somewhere inside the array payload
    data[offset + 10] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ds.CheckpointError, match="corrupted|not a readable"):
        ds.load(path)


def test_pickled_object_arrays_are_refused_on_save_and_load(tmp_path):
    with pytest.raises(ds.CheckpointError, match="dtype object"):
        ds.save({"x": np.array([{"a": 1}], dtype=object)}, tmp_path / "bad.ds")
    # Hand-craft a file whose array entry is a pickled object array with a matching checksum.
    import hashlib
    import json

    blob = io.BytesIO()
    np.lib.format.write_array(blob, np.array([object()], dtype=object), allow_pickle=True)
    raw = blob.getvalue()
    meta = json.dumps(
        {
            "format": "downslope-checkpoint",
            "version": 1,
            "tree": {"__array__": "a0"},
            "checksums": {"a0": hashlib.sha256(raw).hexdigest()},
        }
    ).encode()
    path = tmp_path / "evil.ds"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("meta.json", meta)
        z.writestr("meta.sha256", hashlib.sha256(meta).hexdigest())
        z.writestr("a0.npy", raw)
    with pytest.raises(ds.CheckpointError, match="pickle|not a readable"):
        ds.load(path)


def test_missing_file_and_wrong_format(tmp_path):
    with pytest.raises(ds.CheckpointError, match="no checkpoint file"):
        ds.load(tmp_path / "nope.ds")
    (tmp_path / "x.npz").write_bytes(b"PK\x05\x06" + b"\x00" * 18)  # an empty zip
    with pytest.raises(ds.CheckpointError, match="not a downslope checkpoint"):
        ds.load(tmp_path / "x.npz")


def test_unsupported_values_name_where_they_are(tmp_path):
    with pytest.raises(ds.CheckpointError, match=r"state\['model'\]\['f'\] is a function"):
        ds.save({"model": {"f": lambda: 0}}, tmp_path / "f.ds")


def test_atomic_write_keeps_old_file_when_the_write_fails(tmp_path, monkeypatch):
    path = tmp_path / "file.bin"
    atomic_write_bytes(path, b"old")

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("os.replace", boom)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_bytes(path, b"new")
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["file.bin"]  # no temp file left behind


def test_atomic_write_gives_the_usual_file_mode(tmp_path):
    """Not mkstemp's private 0600: the mode open() would give (0666 less the umask)."""
    import os
    import stat

    from downslope.serialization import atomic_write_bytes

    old = os.umask(0o022)
    try:
        atomic_write_bytes(tmp_path / "m.json", b"{}")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "m.json").stat().st_mode) == 0o644


# ---------------------------------------------------------------------- crafted files
# Each file below is built by hand to attack the reader. Loading each must fail with a
# CheckpointError within 100 MB of allocations (tracemalloc sees NumPy's buffers too), reading no
# more bytes out of its members than the file holds (nothing inflated) and running a bounded number
# of Python lines (no walk over 100 000 containers), and write nothing. Work is counted, not timed:
# a wall-clock bound on a shared machine fails by chance.
BOUND_BYTES, BOUND_LINES = 100 * 2**20, 20_000


def _npy_header(descr: str, shape: tuple, fortran: bool = False) -> bytes:
    """A valid .npy version 1.0 header declaring ``descr`` and ``shape`` (no data)."""
    header = repr({"descr": descr, "fortran_order": fortran, "shape": shape}).encode()
    pad = 64 - (10 + len(header) + 1) % 64
    header += b" " * pad + b"\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header


def _craft(path, blobs, *, tree=None, version=1, compress=zipfile.ZIP_STORED, extra=(), checksums=None):
    """A checkpoint with the given array members (name -> bytes), checksums that match them.

    Version 1 by default: both versions share the container and every check below, and version 1
    is what older readers accepted too."""
    import hashlib
    import json

    digests = {k: hashlib.sha256(b).hexdigest() for k, b in blobs.items()} if checksums is None else checksums
    meta = json.dumps(
        {
            "format": "downslope-checkpoint",
            "version": version,
            "tree": tree if tree is not None else {k: {"__array__": k} for k in blobs},
            "checksums": digests,
        }
    ).encode()
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as z:
        z.writestr("meta.json", meta)
        z.writestr("meta.sha256", hashlib.sha256(meta).hexdigest())
        for k, b in blobs.items():
            z.writestr(zipfile.ZipInfo(f"{k}.npy"), b, compress_type=compress)
        for name, data in extra:
            with pytest.warns(UserWarning, match="Duplicate"):
                z.writestr(name, data)
    return path


@functools.cache
def _deflated_zeros(megabytes):
    import zlib

    header = _npy_header("<f4", (megabytes * 2**20 // 4,))
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    chunk = bytes(2**20)
    blob = b"".join([packer.compress(header)] + [packer.compress(chunk) for _ in range(megabytes)] + [packer.flush()])
    return header, blob


def _deflate_bomb(path, megabytes=160, lie=False):
    """An array member of ``megabytes`` MB of zeros deflated to about 1/1000 of that; with ``lie``,
    its headers declare 64 bytes instead."""
    header, blob = _deflated_zeros(megabytes)
    _craft(path, {}, tree={"__array__": "a0"}, checksums={"a0": "0" * 64})
    declared = 64 if lie else len(header) + megabytes * 2**20
    return _splice_member(path, "a0.npy", blob, zipfile.ZIP_DEFLATED, declared)


def _splice_member(path, name, payload, method, declared):
    """Rewrite ``path`` so member ``name`` holds ``payload`` (already encoded by ``method``) and its
    headers declare ``declared`` uncompressed bytes: how an attacker writes a zip by hand."""
    import struct
    import zlib

    with zipfile.ZipFile(path) as z:
        others = [(i, z.read(i.filename)) for i in z.infolist() if i.filename != name]
    out = bytearray()
    central = bytearray()
    entries = [(i.filename, data, zipfile.ZIP_STORED, len(data), zlib.crc32(data)) for i, data in others]
    entries.append((name, payload, method, declared, 0))
    for fname, data, meth, size, crc in entries:
        offset = len(out)
        encoded = fname.encode()
        out += struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, meth, 0, 0, crc, len(data), size, len(encoded), 0)
        out += encoded + data
        central += struct.pack(
            "<4s6H3L5H2L",
            b"PK\x01\x02",
            20,
            20,
            0,
            meth,
            0,
            0,
            crc,
            len(data),
            size,
            len(encoded),
            0,
            0,
            0,
            0,
            0,
            offset,
        )
        central += encoded
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(entries), len(entries), len(central), len(out), 0)
    path.write_bytes(bytes(out + central + end))
    return path


def _with_central_size(path, name, size):
    """Patch the central directory so ``name`` declares ``size`` bytes (both sizes): a lying header."""
    import struct

    raw = bytearray(path.read_bytes())
    start = raw.find(b"PK\x01\x02")
    while raw[start + 46 : start + 46 + len(name)] != name.encode():
        start = raw.find(b"PK\x01\x02", start + 1)
        assert start >= 0, name
    struct.pack_into("<2L", raw, start + 20, size, size)
    path.write_bytes(bytes(raw))
    return path


def _crafted_files(tmp):
    f32 = np.arange(10, dtype=np.float32)
    good = _npy_header("<f4", (10,)) + f32.tobytes()
    return {
        "deflate bomb (honest sizes)": lambda: _deflate_bomb(tmp / "bomb.ds"),
        "deflate bomb (lying sizes)": lambda: _deflate_bomb(tmp / "bomb_lie.ds", lie=True),
        "central directory declares 4 GB": lambda: _with_central_size(
            _craft(tmp / "big.ds", {"a0": good}), "a0.npy", 2**32 - 1
        ),
        "central directory declares fewer bytes": lambda: _with_central_size(
            _craft(tmp / "small.ds", {"a0": good}), "a0.npy", len(good) - 8
        ),
        "huge declared shape": lambda: _craft(tmp / "shape.ds", {"a0": _npy_header("<f4", (2**40,)) + f32.tobytes()}),
        "huge 2-d shape": lambda: _craft(tmp / "shape2.ds", {"a0": _npy_header("<f8", (300000, 300000)) + bytes(64)}),
        "shape x dtype larger than the data": lambda: _craft(
            tmp / "short.ds", {"a0": _npy_header("<f8", (10,)) + f32.tobytes()}
        ),
        "shape x dtype smaller than the data": lambda: _craft(
            tmp / "long.ds", {"a0": _npy_header("<f4", (5,)) + f32.tobytes()}
        ),
        "object dtype (pickle)": lambda: _craft(tmp / "obj.ds", {"a0": _npy_header("|O", (1,)) + bytes(8)}),
        "datetime dtype": lambda: _craft(tmp / "date.ds", {"a0": _npy_header("<M8[D]", (10,)) + bytes(80)}),
        "string dtype": lambda: _craft(tmp / "str.ds", {"a0": _npy_header("<U4", (10,)) + bytes(160)}),
        "big-endian dtype": lambda: _craft(tmp / "be.ds", {"a0": _npy_header(">f4", (10,)) + bytes(40)}),
        "record dtype": lambda: _craft(tmp / "rec.ds", {"a0": _npy_header("[('x', '<f4')]", (10,)) + bytes(40)}),
        "duplicate member": lambda: _craft(tmp / "dup.ds", {"a0": good}, extra=[("a0.npy", good)]),
        "extra member": lambda: (
            _craft(tmp / "extra.ds", {"a0": good}, tree={"w": {"__array__": "a0"}})
            and _add_member(tmp / "extra.ds", "payload.py", b"import os\n")
        ),
        "missing member": lambda: _craft(tmp / "missing.ds", {"a0": good}, checksums={"a0": "0" * 64, "a1": "0" * 64}),
        "reference to an array not in the file": lambda: _craft(tmp / "ref.ds", {"a0": good}, tree={"__array__": "a9"}),
        "malformed tag": lambda: _craft(tmp / "tag.ds", {"a0": good}, tree={"x": {"__tuple__": 5}}),
        "unknown format version": lambda: _craft(tmp / "v99.ds", {"a0": good}, version=99),
        # Parsed in full before its version is refused: 100 000 empty dicts from 400 KB of JSON stay cheap.
        "meta.json packed with containers": lambda: _craft(
            tmp / "dicts.ds", {"a0": good}, tree=[{}] * 100_000 + [{"__array__": "a0"}], version=99
        ),
    }


def _add_member(path, name, data):
    with zipfile.ZipFile(path, "a") as z:
        z.writestr(name, data)
    return path


CRAFTED = list(_crafted_files(__import__("pathlib").Path(".")))


@pytest.mark.parametrize("case", CRAFTED)
def test_crafted_checkpoints_fail_fast_in_bounded_memory_writing_nothing(tmp_path, monkeypatch, case):
    import os
    import tracemalloc

    from ._counting import lines_run

    path = _crafted_files(tmp_path)[case]()
    before = sorted(os.listdir(tmp_path)), sorted(os.listdir("."))
    read_out = [0]  # bytes read out of the zip's members (inflated ones included)

    def counted(method):
        def read(self, *args, **kwargs):
            data = method(self, *args, **kwargs)
            read_out[0] += len(data)
            return data

        return read

    monkeypatch.setattr(zipfile.ZipExtFile, "read", counted(zipfile.ZipExtFile.read))
    monkeypatch.setattr(zipfile.ZipExtFile, "read1", counted(zipfile.ZipExtFile.read1))

    def load():
        with pytest.raises(ds.CheckpointError, match=path.name) as info:
            ds.load(path)
        return info

    tracemalloc.start()
    try:
        info, lines = lines_run(load, inside="")  # every Python line: zipfile's and json's too
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "\n" not in str(info.value)
    assert peak < BOUND_BYTES, f"{case}: {peak / 2**20:.0f} MB allocated"
    assert read_out[0] <= path.stat().st_size, (
        f"{case}: {read_out[0]} bytes read out of a {path.stat().st_size}-byte file"
    )
    assert lines < BOUND_LINES, f"{case}: {lines} Python lines"
    assert (sorted(os.listdir(tmp_path)), sorted(os.listdir("."))) == before


def test_a_zip_announcing_too_many_members_is_refused_before_they_are_listed(tmp_path, monkeypatch):
    from downslope import serialization

    path = _craft(tmp_path / "many.ds", {f"a{i}": _npy_header("<f4", (0,)) for i in range(20)})
    assert len(ds.load(path)) == 20
    monkeypatch.setattr(serialization, "MAX_MEMBERS", 10)
    monkeypatch.setattr(zipfile.ZipFile, "_RealGetContents", None)  # listing the members would fail
    with pytest.raises(ds.CheckpointError, match="announces 22 members, more than the limit of 10"):
        ds.load(path)


def test_the_reasons_are_named(tmp_path):
    files = _crafted_files(tmp_path)
    expected = {
        "deflate bomb (honest sizes)": "is compressed",
        "deflate bomb (lying sizes)": "is compressed",
        "central directory declares 4 GB": "refused before reading",
        "huge declared shape": "refused before allocating",
        "object dtype (pickle)": "never object arrays (pickle)",
        "datetime dtype": "'<M8[D]'",
        "duplicate member": "duplicate member(s) ['a0.npy']",
        "extra member": "['payload.py']",
        "missing member": "['a1.npy'] missing",
        "unknown format version": "format version 99; this downslope reads versions 1, 2, 3",
    }
    for case, fragment in expected.items():
        with pytest.raises(ds.CheckpointError) as info:
            ds.load(files[case]())
        assert fragment in str(info.value), (case, str(info.value))


def test_arrays_stream_into_one_buffer_of_their_own_size(tmp_path):
    import tracemalloc

    big = np.arange(4 * 2**20, dtype=np.float32)  # 16 MB
    ds.save({"w": big}, tmp_path / "big.ds")
    tracemalloc.start()
    try:
        loaded = ds.load(tmp_path / "big.ds")["w"]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    np.testing.assert_array_equal(loaded, big)
    assert peak < 1.25 * big.nbytes  # the array plus one 1 MB read chunk, not two copies of it


def test_fortran_ordered_members_load(tmp_path):
    a = np.asfortranarray(np.arange(6, dtype=np.float64).reshape(2, 3))
    raw = _npy_header("<f8", (2, 3), fortran=True) + a.tobytes(order="F")
    loaded = ds.load(_craft(tmp_path / "f.ds", {"a0": raw}, tree={"__array__": "a0"}))
    np.testing.assert_array_equal(loaded, a)


def test_files_of_format_version_1_still_load(tmp_path):
    """Version 1 wrote user keys verbatim; its files still read as they did."""
    raw = _npy_header("<f4", (10,)) + np.arange(10, dtype=np.float32).tobytes()
    tree = {"w": {"__array__": "a0"}, "pair": {"__tuple__": [1, "two"]}, "state": {"__items__": [[0, 3]]}}
    loaded = ds.load(_craft(tmp_path / "v1.ds", {"a0": raw}, tree=tree, version=1))
    np.testing.assert_array_equal(loaded["w"], np.arange(10, dtype=np.float32))
    assert loaded["pair"] == (1, "two") and loaded["state"] == {0: 3}


def test_files_of_format_version_2_read_a_tensor_tag_as_the_users_key(tmp_path):
    """Version 2 had no tensor tag: a dict whose only key is "__tensor__" there is a user's dict (escaped
    keys start with "___"), and a user's key "__tensor__" written now still round-trips."""
    raw = _npy_header("<f4", (2,)) + np.ones(2, np.float32).tobytes()
    tree = {"w": {"__array__": "a0"}, "d": {"___tensor__": 1}}
    loaded = ds.load(_craft(tmp_path / "v2.ds", {"a0": raw}, tree=tree, version=2))
    assert type(loaded["w"]) is np.ndarray and loaded["d"] == {"__tensor__": 1}
    with pytest.raises(ds.CheckpointError, match="neither a type tag alone nor an escaped key"):
        ds.load(_craft(tmp_path / "bad.ds", {"a0": raw}, tree={"w": {"__tensor__": "a0"}}, version=2))


def test_a_state_dict_loads_back_as_tensors_and_into_a_model(tmp_path):
    model = ds.nn.Sequential(ds.nn.Linear(3, 2), ds.nn.BatchNorm1d(2))
    ds.save(model.state_dict(), tmp_path / "m.ds")
    loaded = ds.load(tmp_path / "m.ds")
    assert all(isinstance(v, ds.Tensor) and not v.requires_grad for v in loaded.values())
    assert loaded["1.num_batches_tracked"].dtype == np.int64
    twin = ds.nn.Sequential(ds.nn.Linear(3, 2), ds.nn.BatchNorm1d(2))
    twin.load_state_dict(loaded)
    np.testing.assert_array_equal(twin[0].weight.detach().numpy(), model[0].weight.detach().numpy())


# ---------------------------------------------------------------------- exact round trips
def test_a_key_that_looks_like_a_type_tag_round_trips(tmp_path):
    for value in (
        {"n": {"__tuple__": [1, 2], "other": 1}},
        {"n": {"__tuple__": [1, 2]}},
        {"__array__": "a0"},
        {"__items__": [[1, 2]], "___x": 3, "__": 4, "_": 5},
    ):
        ds.save(value, tmp_path / "k.ds")
        assert ds.load(tmp_path / "k.ds") == value


_TAG_LIKE_KEYS = st.sampled_from(
    ["__tuple__", "__array__", "__items__", "__tensor__", "___tuple__", "__", "___", "_", "", "__x"]
)
_DTYPES = st.sampled_from(["bool", "int8", "int16", "int32", "int64", "uint8", "uint32", "uint64"] + ["float16", "float32", "float64"])  # fmt: skip


@st.composite
def _arrays(draw):
    dtype = np.dtype(draw(_DTYPES))
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4))
    return draw(hnp.arrays(dtype, shape))  # floats include nan, inf and -0.0


_LEAVES = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text()
    | _arrays()
    | _arrays().map(ds.from_numpy)  # a Tensor comes back a Tensor (its dtype kept), as torch.load gives
)
_VALUES = st.recursive(
    _LEAVES,
    lambda children: (
        st.lists(children, max_size=4)
        | st.lists(children, max_size=4).map(tuple)
        | st.dictionaries(st.text() | _TAG_LIKE_KEYS, children, max_size=4)
        | st.dictionaries(st.integers() | st.text(max_size=3), children, max_size=3)
    ),
    max_leaves=12,
)


def _same(a, b) -> bool:
    """Exactly equal: same types all the way down, nan == nan, -0.0 != 0.0, arrays by dtype and bits."""
    if type(a) is not type(b):
        return False
    if isinstance(a, np.ndarray):
        return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()
    if isinstance(a, ds.Tensor):
        return type(a.array) is type(b.array) and _same(a.array, b.array)
    if isinstance(a, float):
        return a == b and math.copysign(1, a) == math.copysign(1, b) or (math.isnan(a) and math.isnan(b))
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return (
            list(a) == list(b) and all(type(k) is type(j) for k, j in zip(a, b)) and all(_same(a[k], b[k]) for k in a)
        )
    return a == b


def _round_trip(tmp_path, value):
    from unittest import mock

    path = tmp_path / "value.ds"
    with mock.patch("os.fsync"):  # durability is tested above; 500 fsyncs would dominate the run
        ds.save(value, path)
    assert _same(ds.load(path), value)


@pytest.mark.slow  # about 10 s: 500 generated structures
@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=_VALUES)
def test_any_nested_value_round_trips_exactly(tmp_path, value):
    _round_trip(tmp_path, value)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=_VALUES)
def test_nested_values_round_trip_exactly_quick(tmp_path, value):
    """The same property on fewer examples, for the everyday (not slow) run."""
    _round_trip(tmp_path, value)


def test_save_and_load_through_file_objects(tmp_path):
    import io

    state = {"w": np.arange(6, dtype=np.float32).reshape(2, 3), "step": 4, "names": ["a", "b"]}
    buffer = io.BytesIO()
    ds.save(state, buffer)
    buffer.seek(0)
    back = ds.load(buffer, map_location="cpu", weights_only=True)
    np.testing.assert_array_equal(back["w"], state["w"])
    assert back["step"] == 4 and back["names"] == ["a", "b"]
    path = tmp_path / "ckpt.pt"
    with open(path, "wb") as f:
        ds.save(state, f)
    with open(path, "rb") as f:
        np.testing.assert_array_equal(ds.load(f, map_location=lambda storage, loc: storage)["w"], state["w"])
    assert ds.load(str(path), weights_only=False)["step"] == 4  # never unpickles, whatever the flag says


def test_a_whole_module_or_optimizer_is_refused_in_one_line(tmp_path):
    import io

    model = ds.nn.Linear(2, 2)
    for obj in (model, ds.optim.SGD(model.parameters(), lr=0.1)):
        with pytest.raises(CheckpointError, match=r"cannot save a whole \w+.*pickle.*state_dict\(\)") as info:
            ds.save(obj, io.BytesIO())
        assert "\n" not in str(info.value)
    assert not (tmp_path / "m.pt").exists()


def test_load_refuses_another_device_and_reports_a_damaged_buffer():
    import io

    from downslope.errors import StateError

    buffer = io.BytesIO()
    ds.save({"a": 1}, buffer)
    buffer.seek(0)
    if not ds.cuda.is_available():
        with pytest.raises(StateError, match="'cuda' is not available"):
            ds.load(buffer, map_location="cuda")
    with pytest.raises(CheckpointError, match="BytesIO given is not a readable downslope checkpoint"):
        ds.load(io.BytesIO(b"not a zip"))


def test_device_arrays_are_saved_as_host_arrays_and_load_onto_the_cpu_or_map_location():
    from downslope.devices.strict import StrictArray

    w = ds.randn(3, 2, device="strict")
    state = {"w": w, "nested": [w.array, {"b": ds.ones(2, device="strict")}], "step": 4}
    buffer = io.BytesIO()
    ds.save(state, buffer)
    buffer.seek(0)
    host = ds.load(buffer)  # a Tensor comes back a Tensor (as torch.load gives), an array an array
    assert isinstance(host["w"], ds.Tensor) and type(host["w"].array) is np.ndarray
    assert type(host["nested"][0]) is np.ndarray and isinstance(host["nested"][1]["b"], ds.Tensor)
    np.testing.assert_array_equal(host["w"].numpy(), w.cpu().numpy())
    buffer.seek(0)
    placed = ds.load(buffer, map_location="strict")
    assert isinstance(placed["w"].array, StrictArray) and isinstance(placed["nested"][1]["b"].array, StrictArray)
    assert isinstance(placed["nested"][0], StrictArray)
    np.testing.assert_array_equal(placed["nested"][0].get(), w.cpu().numpy())
    assert placed["step"] == 4
    buffer.seek(0)
    assert type(ds.load(buffer, map_location=ds.device("cpu"))["w"].array) is np.ndarray


def test_a_pytorch_checkpoint_is_refused_with_how_to_convert_it(tmp_path) -> None:
    import pickle

    torch = pytest.importorskip("torch")
    state = torch.nn.Linear(2, 2).state_dict()
    torch.save(state, tmp_path / "new.pt")
    torch.save(state, tmp_path / "old.pt", _use_new_zipfile_serialization=False)
    marker = tmp_path / "ran"
    (tmp_path / "evil.pkl").write_bytes(pickle.dumps(_Marker(str(marker))))
    for name, kind in (
        ("new.pt", "a PyTorch checkpoint"),
        ("old.pt", "a Python pickle"),
        ("evil.pkl", "a Python pickle"),
    ):
        with pytest.raises(ds.CheckpointError, match=f"{kind}.*never unpickles.*safetensors"):
            ds.load(tmp_path / name)
    assert not marker.exists()


def test_a_safetensors_file_is_refused_pointing_to_load_safetensors(tmp_path) -> None:
    pytest.importorskip("safetensors")
    ds.save_safetensors({"w": np.ones(2, np.float32)}, tmp_path / "w.safetensors")
    (tmp_path / "w.bin").write_bytes((tmp_path / "w.safetensors").read_bytes())  # known by its bytes too
    (tmp_path / "model.safetensors.index.json").write_text('{"weight_map": {"w": "w.safetensors"}}')
    for name, kind in (
        ("w.safetensors", "a safetensors file"),
        ("w.bin", "a safetensors file"),
        ("model.safetensors.index.json", "a safetensors shard index"),
    ):
        with pytest.raises(
            CheckpointError, match=f"{kind}, not a ds.save checkpoint; read it with ds.load_safetensors"
        ):
            ds.load(tmp_path / name)
    with open(tmp_path / "w.bin", "rb") as handle:
        with pytest.raises(CheckpointError, match="a safetensors file"):
            ds.load(handle)


class _Marker:
    """Unpickling it would create a file: proof that nothing was unpickled if the file is absent."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (open, (self.path, "w"))


@pytest.mark.parametrize("lib_name", ["torch", "downslope"])
def test_a_missing_file_is_caught_by_except_file_not_found_as_torchs(lib_name, tmp_path):
    """Resume code's `try: torch.load(path) except FileNotFoundError: start afresh`."""
    lib = pytest.importorskip("torch") if lib_name == "torch" else ds
    missing = tmp_path / "no_such_checkpoint.pt"
    with pytest.raises(FileNotFoundError) as caught:
        lib.load(missing, map_location="cpu", weights_only=True)
    assert caught.value.filename == str(missing)
    if lib is ds:
        assert isinstance(caught.value, CheckpointError) and "no checkpoint file" in str(caught.value)


@pytest.mark.parametrize("lib_name", ["torch", "downslope"])
@pytest.mark.parametrize("missing", ["no_dir/sub", "a_file"])
def test_save_into_a_missing_directory_raises_a_runtime_error_as_torchs(lib_name, missing, tmp_path):
    lib = pytest.importorskip("torch") if lib_name == "torch" else ds
    (tmp_path / "a_file").write_text("not a directory")
    parent = tmp_path / missing
    with pytest.raises(RuntimeError, match=r"(?i)parent directory .*does not exist") as caught:
        lib.save({"a": 1}, parent / "ck.pt")
    assert str(parent) in str(caught.value)
    assert not (tmp_path / "no_dir").exists()
    if lib is ds:
        assert isinstance(caught.value, FileNotFoundError) and caught.value.filename == str(parent)


def test_a_text_file_named_onnx_is_not_called_an_onnx_model(tmp_path):
    path = tmp_path / "notes.onnx"
    path.write_text("these are my notes, not a model\n")
    with pytest.raises(CheckpointError, match=r"notes\.onnx is not an ONNX model: its name ends in \.onnx"):
        ds.load(path)


def test_a_loop_of_symbolic_links_is_named_as_such(tmp_path):
    import os

    os.symlink(tmp_path / "loopB", tmp_path / "loopA")
    os.symlink(tmp_path / "loopA", tmp_path / "loopB")
    with pytest.raises(CheckpointError, match="loopA is a loop of symbolic links"):
        ds.load(tmp_path / "loopA")
    os.symlink(tmp_path / "absent.ckpt", tmp_path / "dangling")
    with pytest.raises(FileNotFoundError, match=r"no checkpoint file at .*dangling \(a symbolic link to"):
        ds.load(tmp_path / "dangling")


def test_a_save_sweeps_the_temporary_files_of_killed_saves_of_that_target_only(tmp_path):
    # a kill -9 during ds.save leaves ".NAME.p<pid>.<8>.tmp"; a later save of NAME removes those whose
    # writer is gone and that nobody touched for an hour, and nothing else
    import os
    import subprocess
    import sys
    import time

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    gone, alive = int(dead.stdout), os.getppid()
    names = {
        f".w.ds.p{gone}.abcd1234.tmp": False,  # writer gone, old: removed
        f".w.ds.p{alive}.abcd1234.tmp": True,  # a live process: kept
        ".w.ds.abcd1234.tmp": True,  # an older version's name (no pid): kept
        f".other.ds.p{gone}.abcd1234.tmp": True,  # another target's
        f".w.ds.p{gone}.abcd1234.tmp.keep": True,  # not the exact pattern
    }
    hour_ago = time.time() - 3700
    for name in names:
        (tmp_path / name).write_bytes(b"half a checkpoint")
        os.utime(tmp_path / name, (hour_ago, hour_ago))
    young = tmp_path / f".w.ds.p{gone}.young123.tmp"
    young.write_bytes(b"written a moment ago")  # maybe a writer of another pid namespace: kept
    ds.save({"w": np.ones(2, np.float32)}, tmp_path / "w.ds")
    left = {p.name for p in tmp_path.iterdir()}
    assert {name for name, kept in names.items() if kept} | {young.name, "w.ds"} == left


def test_an_npz_archive_is_named_as_numpys_by_load(tmp_path):
    from downslope.errors import CheckpointError

    npz = tmp_path / "a.npz"
    np.savez(npz, x=np.ones(3), y=np.zeros(2))
    with pytest.raises(CheckpointError, match=r"is a NumPy \.npz archive \(arrays x\.npy, y\.npy\).*np\.load"):
        ds.load(npz)
