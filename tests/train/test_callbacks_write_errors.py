"""CSVLogger and ModelCheckpoint on a path they cannot write: said before training (CSVLogger, as Keras opens
its file at on_train_begin), naming the file asked for (never the temporary one beside it), with the true
cause: a full disk is not an unwritable path."""

from __future__ import annotations

import errno
import os
import tempfile

import numpy as np
import pytest

import downslope as ds
from downslope import nn, serialization
from downslope.errors import CheckpointError
from downslope.train import Callback, CSVLogger, ModelCheckpoint

X = np.zeros((8, 3), np.float32)
Y = np.zeros((8, 1), np.float32)


class _Epochs(Callback):
    def __init__(self) -> None:
        self.seen = 0

    def on_epoch_end(self, epoch, logs=None):
        self.seen += 1


def _refusing(code):
    def refuse(*args, **kwargs):
        raise OSError(code, os.strerror(code), os.path.join(kwargs.get("dir", "."), ".log.csv.ab12cd34.tmp"))

    return refuse


@pytest.mark.parametrize("code", [errno.EROFS, errno.EACCES])
def test_csvlogger_refuses_an_unwritable_directory_before_training(tmp_path, monkeypatch, code):
    monkeypatch.setattr(tempfile, "mkstemp", _refusing(code))  # what a read-only mount answers
    counter = _Epochs()
    path = tmp_path / "ro" / "log.csv"
    with pytest.raises(OSError) as caught:
        ds.fit(nn.Linear(3, 1), "mse", "sgd", (X, Y), epochs=2, verbose=0, callbacks=[counter, CSVLogger(path)])
    message = str(caught.value)
    assert counter.seen == 0, "an epoch was trained before the unwritable log was noticed"
    assert caught.value.errno == code
    assert f"CSVLogger: cannot write {path} ({os.strerror(code)})" in message, message
    assert ".tmp" not in message, message
    assert ("read-only" in message) == (code == errno.EROFS), message


def test_csvlogger_full_disk_names_the_log_and_the_cause(tmp_path, monkeypatch):
    def full(path, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp_path / ".log.csv.ab12cd34.tmp"))

    monkeypatch.setattr(serialization, "atomic_write_bytes", full)
    path = tmp_path / "log.csv"
    with pytest.raises(OSError, match=r"the device holding it is full; make room") as caught:
        ds.fit(nn.Linear(3, 1), "mse", "sgd", (X, Y), epochs=1, verbose=0, callbacks=[CSVLogger(path)])
    assert str(path) in str(caught.value) and ".tmp" not in str(caught.value)


def test_modelcheckpoint_full_disk_says_full_not_unwritable(tmp_path, monkeypatch):
    def full(path, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(serialization, "atomic_write_bytes", full)
    path = tmp_path / "m.ckpt"
    with pytest.raises(CheckpointError) as caught:
        ds.fit(nn.Linear(3, 1), "mse", "sgd", (X, Y), epochs=1, verbose=0, callbacks=[ModelCheckpoint(path, "loss")])
    message = str(caught.value)
    assert f"cannot write {path} (No space left on device): the device holding it is full; make room" in message
    assert "choose a writable path" not in message
    assert caught.value.errno == errno.ENOSPC
