"""A file-size limit (EFBIG, ``ulimit -f``) hit by the first checkpoint keeps the run and says how to go
on, as a full disk does; no internal class name, no 'choose a writable path'."""

from __future__ import annotations

import errno
import os

import pytest

from downslope import runs, serialization
from downslope.cli import main

pytest.importorskip("matplotlib")


@pytest.mark.parametrize("code", [errno.EFBIG, errno.ENOSPC])
def test_the_first_checkpoint_failing_keeps_the_run(tmp_path, monkeypatch, capsys, code):
    real = serialization.atomic_write_bytes

    def refused(path, data):
        if os.path.basename(path) == runs.CHECKPOINT_FILE:
            raise OSError(code, os.strerror(code), str(path))
        real(path, data)

    monkeypatch.setattr(serialization, "atomic_write_bytes", refused)
    out = tmp_path / "r"
    args = ["train", "--data", "iris", "--hidden", "8", "--epochs", "3", "--patience", "0", "--quiet"]
    capsys.readouterr()
    assert main([*args, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert (
        f"could not write the checkpoint {runs.staging_path(out) / runs.CHECKPOINT_FILE} ({os.strerror(code)})" in err
    )
    assert f"downslope train --resume {out}" in err, err
    assert "ModelCheckpoint" not in err and "choose a writable path" not in err, err
    assert ("ulimit -f" in err) == (code == errno.EFBIG), err
    # the true cause: the path is writable, the device is full (or the file-size limit is reached)
    cause = "the device holding it is full" if code == errno.ENOSPC else "it would exceed the file-size limit"
    assert cause in err, err
    assert runs.read_status(runs.staging_path(out))["status"] == runs.INTERRUPTED
