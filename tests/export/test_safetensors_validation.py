"""``ds.load_safetensors`` accepts exactly the files the safetensors library accepts: a lying header
length, overlapping or gapped byte ranges, sizes that do not match dtype x shape, or metadata that is
not a map of strings are refused with a one-line error naming the file and what is wrong, whatever
the tensors' dtypes (bfloat16 files are read by downslope's own reader, which checks the same)."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest

import downslope as ds
from downslope.errors import CheckpointError

safetensors = pytest.importorskip("safetensors")
pytestmark = pytest.mark.host_only


def _file(header: object, data: bytes = b"", raw_header: bytes | None = None) -> bytes:
    h = raw_header if raw_header is not None else json.dumps(header).encode()
    return struct.pack("<Q", len(h)) + h + data


def _library_accepts(raw: bytes) -> bool:
    try:
        safetensors.deserialize(raw)
    except Exception:
        return False
    return True


F32x4 = {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}
REFUSED = {
    "header length past the file": (struct.pack("<Q", 2**60) + b"{}", "header length"),
    "header length beyond the file": (struct.pack("<Q", 100) + b"{}", "only 2 bytes after it"),
    "shorter than 8 bytes": (b"\x01\x00", "fewer than the 8"),
    "not JSON": (struct.pack("<Q", 5) + b"{abc}", "not JSON"),
    "not UTF-8": (_file(None, raw_header=b'{"\xff": 1}'), "not UTF-8"),
    "a JSON list": (_file([1]), "not an object"),
    "overlapping": (_file({"a": F32x4, "b": F32x4}, bytes(16)), "overlaps"),
    "gap": (_file({"a": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]}}, bytes(16)), "gap of 8 bytes"),
    "reversed": (_file({"a": {"dtype": "F32", "shape": [0], "data_offsets": [16, 0]}}, bytes(16)), "ends before"),
    "past the end": (_file({"w": {"dtype": "F32", "shape": [10], "data_offsets": [0, 40]}}, bytes(8)), "truncated"),
    "trailing bytes": (_file({"a": F32x4}, bytes(20)), "no tensor accounts for"),
    "size mismatch": (_file({"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 16]}}, bytes(16)), "12 bytes"),
    "huge shape": (_file({"w": {"dtype": "F32", "shape": [2**31, 2**31], "data_offsets": [0, 16]}}, bytes(16)), "hold"),
    "negative dim": (_file({"w": {"dtype": "F32", "shape": [-4], "data_offsets": [0, 16]}}, bytes(16)), "non-negative"),
    "float dim": (_file({"w": {"dtype": "F32", "shape": [4.0], "data_offsets": [0, 16]}}, bytes(16)), "non-negative"),
    "bool offset": (_file({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, True]}}, bytes(16)), "offsets"),
    "three offsets": (_file({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16, 16]}}, bytes(16)), "offsets"),
    "unknown dtype": (_file({"a": {"dtype": "XYZ", "shape": [4], "data_offsets": [0, 16]}}, bytes(16)), "'XYZ'"),
    "metadata int": (_file({"__metadata__": {"x": 1}, "a": F32x4}, bytes(16)), "__metadata__"),
    "metadata list": (_file({"__metadata__": [1], "a": F32x4}, bytes(16)), "__metadata__"),
    "entry not an object": (_file({"a": 5}), "not an object"),
    # the same faults beside a bfloat16 tensor, which downslope reads itself
    "bf16 overlapping": (
        _file({"a": {"dtype": "BF16", "shape": [4], "data_offsets": [0, 8]}, "b": F32x4}, bytes(16)),
        "overlaps",
    ),
    "bf16 gap": (_file({"a": {"dtype": "BF16", "shape": [2], "data_offsets": [4, 8]}}, bytes(8)), "gap"),
    "bf16 metadata": (
        _file({"__metadata__": {"x": None}, "a": {"dtype": "BF16", "shape": [4], "data_offsets": [0, 8]}}, bytes(8)),
        "__metadata__",
    ),
    "bf16 mismatch": (_file({"a": {"dtype": "BF16", "shape": [3], "data_offsets": [0, 8]}}, bytes(8)), "6 bytes"),
    "bf16 header length": (
        struct.pack("<Q", 2**40) + json.dumps({"a": {"dtype": "BF16", "shape": [0], "data_offsets": [0, 0]}}).encode(),
        "header length",
    ),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_what_the_library_refuses_is_refused_with_what_is_wrong(tmp_path, case):
    raw, expected = REFUSED[case]
    assert not _library_accepts(raw)
    path = tmp_path / "w.safetensors"
    path.write_bytes(raw)
    with pytest.raises(CheckpointError) as caught:
        ds.load_safetensors(path)
    message = str(caught.value)
    assert "\n" not in message and str(path) in message and expected in message, message


ACCEPTED = {
    "out of order offsets": _file(
        {
            "b": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]},
            "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
        },
        np.arange(4, dtype="<f4").tobytes(),
    ),
    "padded header": _file(None, bytes(16), raw_header=json.dumps({"a": F32x4}).encode() + b"    "),
    "empty": _file({}),
    "metadata only": _file({"__metadata__": {"format": "pt"}}),
    "metadata null": _file({"__metadata__": None, "a": F32x4}, bytes(16)),
    "zero-size and scalar": _file(
        {
            "z": {"dtype": "F32", "shape": [0, 3], "data_offsets": [0, 0]},
            "s": {"dtype": "I64", "shape": [], "data_offsets": [0, 8]},
        },
        struct.pack("<q", -7),
    ),
    "extra entry field": _file({"a": {**F32x4, "note": "x"}}, bytes(16)),
}


@pytest.mark.parametrize("case", sorted(ACCEPTED))
def test_what_the_library_accepts_loads_with_its_values(tmp_path, case):
    raw = ACCEPTED[case]
    assert _library_accepts(raw)
    path = tmp_path / "w.safetensors"
    path.write_bytes(raw)
    got = ds.load_safetensors(path)
    expected = pytest.importorskip("safetensors.numpy").load(raw)
    assert sorted(got) == sorted(expected)  # (the library's order of equal offsets varies between calls)
    for name, value in expected.items():
        assert got[name].dtype == value.dtype and got[name].shape == value.shape
        np.testing.assert_array_equal(got[name].numpy(), value)


def test_bfloat16_is_widened_after_the_same_checks(tmp_path):
    torch = pytest.importorskip("torch")
    st_torch = pytest.importorskip("safetensors.torch")
    values = torch.tensor([[1.5, -2.0, 3.25], [0.0, 1e30, -1e-3]], dtype=torch.bfloat16)
    raw = st_torch.save({"w": values, "b": torch.arange(3, dtype=torch.int64)})
    path = tmp_path / "bf.safetensors"
    path.write_bytes(raw)
    got = ds.load_safetensors(path)
    assert got["w"].dtype == np.float32 and got["b"].dtype == np.int64
    np.testing.assert_array_equal(got["w"].numpy(), values.float().numpy())
    np.testing.assert_array_equal(got["b"].numpy(), [0, 1, 2])


def test_float8_is_refused_by_name(tmp_path):
    path = tmp_path / "f8.safetensors"
    path.write_bytes(_file({"a": {"dtype": "F8_E4M3", "shape": [4], "data_offsets": [0, 4]}}, bytes(4)))
    with pytest.raises(CheckpointError, match="dtype F8_E4M3, which NumPy cannot hold"):
        ds.load_safetensors(path)


def test_random_header_faults_agree_with_the_library(tmp_path):
    """Mutations of a valid two-tensor file (one bfloat16): downslope accepts exactly what the library does."""
    rng = np.random.default_rng(0)
    path = tmp_path / "m.safetensors"
    for trial in range(300):
        dtype_a = ["BF16", "F16", "I16"][trial % 3]
        header = {
            "a": {"dtype": dtype_a, "shape": [2, 2], "data_offsets": [0, 8]},
            "b": {"dtype": "F32", "shape": [3], "data_offsets": [8, 20]},
        }
        data = bytearray(rng.integers(0, 256, 20, dtype=np.uint8).tobytes())
        for _ in range(int(rng.integers(1, 3))):
            name = ["a", "b"][int(rng.integers(2))]
            what = int(rng.integers(5))
            if what == 0:
                header[name]["data_offsets"][int(rng.integers(2))] += int(rng.integers(-8, 9))
            elif what == 1:
                header[name]["shape"][0] += int(rng.integers(-2, 3))
            elif what == 2:
                header[name]["dtype"] = ["F32", "BF16", "U8", "F64", "BOOL"][int(rng.integers(5))]
            elif what == 3:
                data = data[: len(data) + int(rng.integers(-6, 7))] if rng.random() < 0.5 else data + bytes(4)
            else:
                header["__metadata__"] = {"k": ["v", 1, None][int(rng.integers(3))]}
        raw = _file(header, bytes(data))
        path.write_bytes(raw)
        try:
            ds.load_safetensors(path)
            ours = True
        except CheckpointError:
            ours = False
        assert ours == _library_accepts(raw), (trial, header, len(data))


def test_a_tensor_named_twice_in_the_header_is_said_so(tmp_path):
    # json keeps the last of two equal keys silently; the safetensors library refuses the header
    text = (
        b'{"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"x":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}'
    )
    path = tmp_path / "dup.safetensors"
    path.write_bytes(_file(None, bytes(8), raw_header=text))
    with pytest.raises(CheckpointError, match="its header names the tensor 'x' twice"):
        ds.load_safetensors(path)


def test_other_formats_are_named_not_read_as_a_header_length(tmp_path):
    # a ds.save checkpoint (truncated or not), an .npz and an .npy start with bytes that would read as a
    # header length of tens of gigabytes: the file's format is named instead
    path = tmp_path / "m.ds"
    ds.save({"w": ds.ones(3)}, path)
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="is a zip archive"):
        ds.load_safetensors(path)
    npz = tmp_path / "a.npz"
    np.savez(npz, x=np.ones(3))
    with pytest.raises(CheckpointError, match="is a zip archive"):
        ds.load_safetensors(npz)
    npy = tmp_path / "a.npy"
    np.save(npy, np.ones(3))
    with pytest.raises(CheckpointError, match=r"is a NumPy \.npy array"):
        ds.load_safetensors(npy)
