"""Checkpoint files: round trip, atomic replacement, corruption and pickle refusal."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest

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
    assert loaded["rng"] == state["rng"]
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
    with pytest.raises(ds.CheckpointError, match="ckpt.ds"):
        ds.load(path)


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
    with pytest.raises(StateError, match="'cuda' is not available"):
        ds.load(buffer, map_location="cuda")
    with pytest.raises(CheckpointError, match="BytesIO given is not a readable downslope checkpoint"):
        ds.load(io.BytesIO(b"not a zip"))
