"""fit(resume_from=...) on a training checkpoint of another layout (an entry missing, or of another
kind): one CheckpointError naming the file and the entry, before anything is put back."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds
from downslope import nn, optim
from downslope.errors import CheckpointError

X = np.random.default_rng(0).normal(size=(64, 4)).astype(np.float32)
Y = (X[:, 0] > 0).astype(np.int64)


def _model():
    ds.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 2))
    return model, optim.SGD(model.parameters(), lr=0.1)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    where = tmp_path_factory.mktemp("ckpt")
    model, opt = _model()
    ds.fit(model, nn.CrossEntropyLoss(), opt, (X, Y), epochs=2, verbose=0, checkpoint_dir=where)
    return ds.load(where / "last.ckpt")


@pytest.mark.parametrize(
    ("key", "value", "said"),
    [
        ("epoch", None, "lacks the entry 'epoch'"),
        ("scheduler", None, "lacks the entry 'scheduler'"),
        ("rng", None, "lacks the entry 'rng'"),
        ("history", None, "lacks the entry 'history'"),
        ("seed", None, "lacks the entry 'seed'"),
        ("epoch", -3, "entry 'epoch' must be a whole number >= 0.*-3"),
        ("epoch", 2.5, "entry 'epoch' must be a whole number"),
        ("history", [1, 2], "entry 'history' must be History's record"),
        ("model", "weights", "entry 'model' must be a table"),
    ],
)
def test_another_layout_is_one_checkpoint_error_naming_file_and_entry(checkpoint, tmp_path, key, value, said):
    changed = dict(checkpoint)
    if value is None:
        changed.pop(key)
    else:
        changed[key] = value
    path = tmp_path / "other.ckpt"
    ds.save(changed, path)
    model, opt = _model()
    with pytest.raises(CheckpointError, match=rf"other\.ckpt.*{said}"):
        ds.fit(model, nn.CrossEntropyLoss(), opt, (X, Y), epochs=4, verbose=0, resume_from=path)


def test_a_checkpoint_of_this_layout_resumes(checkpoint, tmp_path):
    path = tmp_path / "same.ckpt"
    ds.save(checkpoint, path)
    model, opt = _model()
    history = ds.fit(model, nn.CrossEntropyLoss(), opt, (X, Y), epochs=4, verbose=0, resume_from=path)
    assert len(history["loss"]) == 4
