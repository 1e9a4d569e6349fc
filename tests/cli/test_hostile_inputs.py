"""Hostile inputs to ``downslope train`` and the loaders: each is refused in one line that says what
is wrong (no traceback, no misleading advice), before anything is trained or allocated."""

from __future__ import annotations

import gzip
import io
import os
import struct
import zipfile

import numpy as np
import pytest

import downslope as ds
from downslope import runs
from downslope.cli import main
from downslope.errors import CheckpointError

FAST = ["--hidden", "4", "--epochs", "1", "--patience", "0", "--quiet"]


@pytest.fixture
def no_plots(monkeypatch):
    from downslope.cli import results

    monkeypatch.setattr(results, "_plots", lambda result, run: ({}, []))


def _train_error(capsys, *argv: str) -> str:
    code = main(["train", *FAST, *argv])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, (code, err)
    return err


@pytest.mark.parametrize("suffix", [".npy", ".npz"])
def test_a_file_of_zero_rows_says_so(tmp_path, capsys, suffix):
    path = tmp_path / f"empty{suffix}"
    if suffix == ".npy":
        np.save(path, np.zeros((0, 4), np.float32))
    else:
        np.savez(path, X=np.zeros((0, 3), np.float32), y=np.zeros(0, np.int64))
    err = _train_error(capsys, "--data", str(path), "--out", str(tmp_path / "r"))
    assert "no rows" in err and "IndexError" not in err, err
    assert not any(p.name.startswith((".r", "r")) for p in tmp_path.iterdir())


def test_an_npy_whose_header_claims_more_than_the_file_holds_is_called_corrupt(tmp_path, capsys):
    path = tmp_path / "lying.npy"
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (100000000000, 4), }"
    header += " " * (118 - len(header)) + "\n"
    path.write_bytes(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + bytes(64))
    err = _train_error(capsys, "--data", str(path), "--out", str(tmp_path / "r"))
    assert "corrupt or truncated" in err and "(100000000000, 4)" in err and "memory" not in err, err
    truncated = tmp_path / "short.npz"
    np.savez(truncated, X=np.ones((50, 3), np.float32), y=np.zeros(50))
    with open(truncated, "r+b") as f:  # the member's header says 50 rows; rewrite it to say 5000
        data = f.read().replace(b"(50, 3)", b"(5000, 3)", 1)
        f.seek(0)
        f.write(data)
    err = _train_error(capsys, "--data", str(truncated), "--out", str(tmp_path / "r"))
    assert "corrupt or truncated" in err or "damaged" in err, err


def test_an_npy_whose_header_claims_fewer_rows_than_the_file_holds_is_refused(tmp_path, capsys):
    """np.load reads the rows the header declares and drops the rest unseen: refused instead."""
    path = tmp_path / "short_header.npy"
    np.save(path, np.arange(20.0, dtype=np.float32).reshape(5, 4))
    path.write_bytes(path.read_bytes().replace(b"(5, 4)", b"(2, 4)", 1))
    err = _train_error(capsys, "--data", str(path), "--out", str(tmp_path / "r"))
    assert "corrupt NumPy file" in err and "(2, 4)" in err and "32 bytes" in err and "80" in err, err
    archive = tmp_path / "short_header.npz"
    member = io.BytesIO()
    np.save(member, np.ones((50, 3), np.float32))
    with zipfile.ZipFile(archive, "w") as zf:  # a well-formed archive (right CRC) around a lying member
        zf.writestr("X.npy", member.getvalue().replace(b"(50, 3)", b"(5, 3) ", 1))
        y = io.BytesIO()
        np.save(y, np.zeros(50))
        zf.writestr("y.npy", y.getvalue())
    err = _train_error(capsys, "--data", str(archive), "--out", str(tmp_path / "r"))
    assert "corrupt NumPy file" in err and "array 'X'" in err, err


def test_an_npz_without_a_target_says_only_that(tmp_path, capsys):
    path = tmp_path / "no_y.npz"
    np.savez(path, X=np.ones((4, 3), np.float32))
    err = _train_error(capsys, "--data", str(path), "--out", str(tmp_path / "r"))
    assert "needs arrays named 'X' and 'y', found ['X']" in err, err
    assert "pickle" not in err and err.count("no_y.npz") == 1, err


def test_a_model_too_big_for_memory_names_its_layer_sizes(tmp_path, capsys):
    err = _train_error(capsys, "--data", "iris", "--out", str(tmp_path / "r"), "--hidden", "3000000000")
    assert "the model is too big" in err and "4 -> 3000000000 -> 3" in err and "--drop" not in err, err
    assert not list(tmp_path.iterdir())


@pytest.mark.skipif(os.name != "posix", reason="surrogate-escaped names are POSIX file names")
def test_an_out_name_that_is_not_utf8_is_refused_before_training(tmp_path, capsys):
    out = os.fsdecode(os.fsencode(str(tmp_path)) + b"/run\xff\xfe")
    err = _train_error(capsys, "--data", "iris", "--out", out)
    assert "not valid UTF-8" in err and "0xff" in err, err
    assert not list(tmp_path.iterdir())


def test_an_out_under_a_file_says_the_parent_is_not_a_directory(tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    err = _train_error(capsys, "--data", "iris", "--out", str(tmp_path / "afile" / "sub"))
    assert "is a file, not a directory" in err and "File exists" not in err, err


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_a_pipe_or_a_device_as_data_is_not_a_regular_file(tmp_path, capsys):
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    err = _train_error(capsys, "--data", str(fifo), "--out", str(tmp_path / "r"))
    assert "not a regular file (a named pipe (FIFO))" in err and "no such file" not in err, err
    if os.path.exists("/dev/null"):
        (tmp_path / "null.npy").symlink_to("/dev/null")
        err = _train_error(capsys, "--data", str(tmp_path / "null.npy"), "--out", str(tmp_path / "r"))
        assert "not a regular file (a character device)" in err, err
    err = _train_error(capsys, "--data", str(tmp_path / "absent.csv"), "--out", str(tmp_path / "r"))
    assert "no such file" in err, err


def test_a_gzip_file_named_csv_is_called_gzip_not_a_legacy_encoding(tmp_path, capsys):
    path = tmp_path / "data.csv"
    path.write_bytes(gzip.compress(b"a,b,y\n" + b"".join(b"%d,%d,%d\n" % (i, i * 2, i % 2) for i in range(40))))
    err = _train_error(capsys, "--data", str(path), "--out", str(tmp_path / "r"))
    assert "gzip-compressed" in err and "data.csv.gz" in err and "Windows-1252" not in err, err


def test_an_onnx_file_given_as_a_checkpoint_is_named_onnx(tmp_path):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    model = helper.make_model(graph, producer_name="someone")
    for name in ("model.onnx", "weights.ckpt"):  # by its name, and by its first bytes
        (tmp_path / name).write_bytes(model.SerializeToString())
        with pytest.raises(CheckpointError, match="is an ONNX model, not a downslope checkpoint"):
            ds.load(tmp_path / name)
    del onnx


def test_stale_checkpoint_temporaries_are_cleared_on_resume_and_publish(tmp_path, no_plots):
    out = tmp_path / "r"
    run = runs.reserve(out)
    run.write_text(runs.CONFIG_FILE, "seed = 1\n")
    stale = [".checkpoint.ckpt.k3_9xq0a.tmp", ".report.html.ab12cd34.html", ".model.ds.zz99yy88.tmp"]
    kept = [".keep.tmp", "notes.tmp", ".checkpoint.ckpt.short.tmp"]  # not the writers' own names
    for name in stale + kept:
        (run.staging / name).write_text("half")
    run._unlock()  # killed mid-write
    again = runs.resume(out)
    names = {p.name for p in again.staging.iterdir()}
    assert not names & set(stale) and set(kept) <= names
    (again.staging / stale[0]).write_text("half")  # one more, left during the resumed run
    again.publish()
    names = {p.name for p in out.iterdir()}
    assert stale[0] not in names and set(kept) <= names


def test_a_killed_run_resumed_by_the_cli_keeps_no_temporary(tmp_path, no_plots):
    out = tmp_path / "r"
    assert main(["train", "--data", "iris", *FAST, "--epochs", "2", "--out", str(out)]) == 0
    os.rename(out, runs.staging_path(out))  # as if killed after its last checkpoint
    staging = runs.staging_path(out)
    (staging / "status.json").write_bytes(runs.json_bytes({"status": "running", "pid": 1, "time": "t"}))
    (staging / ".checkpoint.ckpt.abcd_123.tmp").write_bytes(b"\0" * 100)
    assert main(["train", "--resume", str(out), "--quiet"]) == 0
    assert not [p.name for p in out.iterdir() if p.name.endswith(".tmp")]


def test_a_full_disk_names_the_file_being_written(tmp_path, monkeypatch):
    import errno

    from downslope import serialization

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(serialization.os, "fsync", full)
    target = tmp_path / "preds.csv"
    with pytest.raises(OSError) as caught:
        serialization.atomic_write_bytes(target, b"x")
    assert caught.value.errno == errno.ENOSPC and str(target) in str(caught.value)
    assert list(tmp_path.iterdir()) == []  # the temporary file was removed
