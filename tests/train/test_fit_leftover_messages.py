"""fit's messages for two hostile setups: a checkpoint_dir that is a file is called a file (not the
bare "File exists" of mkdir), and resuming from a checkpoint that has no record of its training data
says the data cannot be checked rather than skipping the check without a word."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import downslope as ds
from downslope import nn, optim
from downslope.errors import ConfigError


def _data(n=64):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, 5)).astype(np.float32)
    return X, (X[:, 0] > 0).astype(np.int64)


def _fit(X, y, epochs, **kw):
    ds.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 2))
    opt = optim.SGD(model.parameters(), 0.1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds.fit(model, nn.CrossEntropyLoss(), opt, (X, y), epochs=epochs, batch_size=16, verbose=0, seed=0, **kw)
    return [str(w.message) for w in caught]


def test_a_checkpoint_dir_that_is_a_file_is_called_a_file(tmp_path):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("not a directory")
    X, y = _data()
    with pytest.raises(ConfigError) as caught:
        _fit(X, y, 1, checkpoint_dir=a_file)
    said = str(caught.value)
    assert "is a file, not a directory" in said and str(a_file) in said, said
    assert "File exists" not in said
    assert a_file.read_text() == "not a directory"


def test_a_checkpoint_below_a_file_is_called_so(tmp_path):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("x")
    X, y = _data()
    with pytest.raises(ConfigError, match="is a file, not a directory"):
        _fit(X, y, 1, checkpoint_dir=a_file / "sub")


def test_resuming_a_checkpoint_without_its_data_entry_warns_the_data_cannot_be_checked(tmp_path):
    X, y = _data()
    ckpt = tmp_path / "ck"
    _fit(X, y, 1, checkpoint_dir=ckpt)
    state = ds.load(ckpt / "last.ckpt")
    assert "data" in state
    full = [m for m in _fit(X, y, 2, resume_from=ckpt / "last.ckpt") if "data" in m]
    assert full == [], full  # the same data with its record: nothing to say
    del state["data"]
    ds.save(state, tmp_path / "no_data.ckpt")
    said = [m for m in _fit(X * 3, y, 2, resume_from=tmp_path / "no_data.ckpt") if "cannot be checked" in m]
    assert len(said) == 1 and "'data'" in said[0] and "no_data.ckpt" in said[0], said
