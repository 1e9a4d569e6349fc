"""`downslope export` into a place it cannot write: one line as predict's (the path given, the reason, what to
do), never a raw OSError naming a hidden temporary file, and the files already written named."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from downslope import cli, serialization  # noqa: E402
from downslope.export import safetensors as st  # noqa: E402


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    where = tmp_path_factory.mktemp("export_errors")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 3))
    np.savetxt(where / "d.csv", np.c_[x, x @ [1.0, 2.0, 3.0]], delimiter=",", header="a,b,c,y", comments="")
    out = where / "r"
    assert cli.main(["train", "--data", str(where / "d.csv"), "--target", "y", "--epochs", "1", "--hidden", "8",
                     "--quiet", "--out", str(out)]) == 0  # fmt: skip
    return out


def _failing(code: int):
    def write(path, data, **kw):  # as the kernel says it: the temporary file's name, not the path given
        raise OSError(code, os.strerror(code), os.path.join(os.path.dirname(path), ".m.onnx.abcd1234.tmp"))

    return write


def test_read_only_target_is_said_in_one_line(run, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(serialization, "atomic_write_bytes", _failing(errno.EROFS))
    target = tmp_path / "ro" / "m.onnx"
    assert cli.main(["export", str(run), "--onnx", str(target)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert (
        f"could not write --onnx {target} (Read-only file system): the file system holding it is read-only; choose a writable path"
        in err
    )
    assert ".tmp" not in err and "already" not in err


def test_a_full_disk_after_the_onnx_file_says_that_file_was_written(run, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(st, "atomic_write_bytes", _failing(errno.ENOSPC))
    onnx_path, weights = tmp_path / "m.onnx", tmp_path / "m.safetensors"
    assert cli.main(["export", str(run), "--onnx", str(onnx_path), "--safetensors", str(weights)]) == 2
    err = capsys.readouterr().err
    assert (
        f"could not write --safetensors {weights} (No space left on device): the device holding it is full; make room"
        in err
    ), err
    assert f"already wrote {run} as ONNX to {onnx_path}" in err and "that file is complete" in err, err
    assert onnx_path.is_file() and not weights.exists()
