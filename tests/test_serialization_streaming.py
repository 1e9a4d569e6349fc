"""ds.save streams its arrays into the file and ds.load reads them straight from it, hashing each byte once."""

from __future__ import annotations

import io
import json
import tracemalloc
import zipfile
import zlib

import numpy as np
import pytest

import downslope as ds
from downslope import serialization as ser


def test_save_streams_arrays_without_a_copy_of_the_file_in_memory(tmp_path):
    big = np.arange(4 * 2**20, dtype=np.float32)  # 16 MB
    tracemalloc.start()
    try:
        ds.save({"w": big, "t": ds.tensor(big[:10])}, tmp_path / "big.ds")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # a zip built in memory holds the whole file (and its .npy copies) at once; a stream holds one block
    assert peak < 0.25 * big.nbytes, peak
    np.testing.assert_array_equal(ds.load(tmp_path / "big.ds")["w"], big)


def test_a_saved_file_is_a_valid_zip_whose_members_are_npy_files(tmp_path):
    arrays = {"a": np.arange(3 * 2**19 + 7, dtype=np.float64), "z": np.zeros(()), "e": np.ones((0, 3), np.int8)}
    ds.save(arrays, tmp_path / "c.ds")
    with zipfile.ZipFile(tmp_path / "c.ds") as archive:
        assert archive.testzip() is None  # every CRC-32 right: any zip tool reads the file
        members = {info.filename: info for info in archive.infolist()}
        assert all(info.compress_type == zipfile.ZIP_STORED for info in members.values())
        tree = json.loads(archive.read("meta.json"))["tree"]
        for key, ref in tree.items():
            np.testing.assert_array_equal(np.load(io.BytesIO(archive.read(ref["__array__"] + ".npy"))), arrays[key])
    assert all(np.array_equal(ds.load(tmp_path / "c.ds")[k], v) for k, v in arrays.items())


def test_files_written_the_old_way_meta_first_still_load(tmp_path):
    # what earlier versions wrote: meta.json, meta.sha256, then each array, all through zipfile.writestr
    arrays = {"a0": np.arange(12, dtype=np.float32).reshape(3, 4), "a1": np.array(5, dtype=np.int64)}
    blobs = {k: ser._npy_bytes(v) for k, v in arrays.items()}
    meta = {
        "format": ser.FORMAT,
        "version": 3,
        "tree": {"w": {"__array__": "a0"}, "n": {"__array__": "a1"}},
        "checksums": {k: ser._digest(b) for k, b in blobs.items()},
    }
    raw = json.dumps(meta).encode()
    with zipfile.ZipFile(tmp_path / "old.ds", "w") as archive:
        archive.writestr("meta.json", raw)
        archive.writestr("meta.sha256", ser._digest(raw))
        for k, b in blobs.items():
            archive.writestr(f"{k}.npy", b)
    loaded = ds.load(tmp_path / "old.ds")
    np.testing.assert_array_equal(loaded["w"], arrays["a0"])
    assert loaded["n"].shape == () and loaded["n"] == 5


def test_load_hashes_each_byte_once_and_still_finds_a_flipped_bit(tmp_path, monkeypatch):
    data = np.arange(2**20, dtype=np.float32)
    ds.save({"w": data}, tmp_path / "c.ds")
    crc_bytes = []
    real_crc = zlib.crc32
    monkeypatch.setattr(zipfile, "crc32", lambda b, v=0: crc_bytes.append(len(b)) or real_crc(b, v))
    np.testing.assert_array_equal(ds.load(tmp_path / "c.ds")["w"], data)
    assert sum(crc_bytes) < 2**16, sum(crc_bytes)  # the arrays' SHA-256 only, not zipfile's CRC-32 beside it
    raw = bytearray((tmp_path / "c.ds").read_bytes())
    at = raw.index(data[1000:1004].tobytes())
    raw[at] ^= 0x10
    (tmp_path / "c.ds").write_bytes(bytes(raw))
    with pytest.raises(ds.CheckpointError, match="checksum mismatch"):
        ds.load(tmp_path / "c.ds")


def test_a_local_header_that_disagrees_with_the_directory_is_refused(tmp_path):
    ds.save({"w": np.arange(10.0)}, tmp_path / "c.ds")
    raw = bytearray((tmp_path / "c.ds").read_bytes())
    at = raw.index(b"PK\x03\x04")  # the first member's local header: rename it there only
    name_at = at + 30  # the local header's fixed part
    raw[name_at] = ord("b")
    (tmp_path / "c.ds").write_bytes(bytes(raw))
    with pytest.raises(ds.CheckpointError, match="local header names"):
        ds.load(tmp_path / "c.ds")


def test_save_to_a_file_object_that_cannot_seek(tmp_path):
    class Pipe(io.RawIOBase):
        def __init__(self) -> None:
            self.chunks: list[bytes] = []

        def writable(self) -> bool:
            return True

        def write(self, b) -> int:  # type: ignore[override]
            self.chunks.append(bytes(b))
            return len(b)

    pipe = Pipe()
    ds.save({"w": np.arange(5.0)}, pipe)
    np.testing.assert_array_equal(ds.load(io.BytesIO(b"".join(pipe.chunks)))["w"], np.arange(5.0))
