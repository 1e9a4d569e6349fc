"""fit(steps_per_epoch=...) resumed from a checkpoint: an epoch can end inside a pass over the data, and the
checkpoint records where that pass stands (its order, the batches taken), so the resumed run takes the
batches the uninterrupted one took and ends with its weights, bit for bit."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import downslope as ds
from downslope import nn, optim
from downslope.errors import CheckpointError
from downslope.train import Callback, ModelCheckpoint, fit

RNG = np.random.default_rng(1)
X = RNG.standard_normal((40, 5)).astype(np.float32)  # batches of 8: five per pass
Y = RNG.integers(0, 3, 40)


class Crash(Callback):
    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            raise RuntimeError("crash")


def _model():
    ds.manual_seed(0)  # (dropout draws from the library generator: the resumed run must draw the same)
    model = nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Dropout(0.3), nn.Linear(8, 3))
    return model, optim.Adam(model.parameters(), lr=0.01)


def _fit(model, opt, steps, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (the data runs out in some epochs: said by test_fit_keras_steps)
        return fit(model, nn.CrossEntropyLoss(), opt, (X, Y), batch_size=8, steps_per_epoch=steps, verbose=0, **kw)


def _weights(model):
    return [p.detach().numpy().copy() for p in model.parameters()]


@pytest.mark.parametrize("steps, crash_at", [(2, 1), (2, 2), (2, 3), (3, 1), (3, 2), (7, 2)])
@pytest.mark.parametrize("seed", [5, None])
def test_resuming_inside_a_pass_ends_with_the_uninterrupted_weights(tmp_path, steps, crash_at, seed):
    model, opt = _model()
    want = _fit(model, opt, steps, epochs=5, seed=seed)
    want_weights = _weights(model)
    model, opt = _model()
    with pytest.raises(RuntimeError, match="crash"):
        _fit(model, opt, steps, epochs=5, seed=seed, checkpoint_dir=tmp_path, callbacks=[Crash(crash_at)])
    model, opt = _model()  # a new process would build everything again
    ds.manual_seed(123)  # (and its generator would be elsewhere: the checkpoint puts it back)
    got = _fit(model, opt, steps, epochs=5, seed=seed, checkpoint_dir=tmp_path, resume_from=tmp_path)
    for a, b in zip(_weights(model), want_weights):
        np.testing.assert_array_equal(a, b)
    assert got["loss"] == want["loss"]


def test_a_model_checkpoint_with_steps_per_epoch_holds_the_resumable_state(tmp_path):
    model, opt = _model()
    path = tmp_path / "m.ckpt"
    _fit(model, opt, 2, epochs=1, callbacks=[ModelCheckpoint(path, monitor="loss")])
    state = ds.load(str(path))
    assert state["kind"] == "downslope-training-state" and int(state["steps_pass"]["taken"]) == 2


def test_a_checkpoint_inside_a_pass_resumed_without_steps_per_epoch_warns(tmp_path):
    model, opt = _model()
    _fit(model, opt, 2, epochs=1, checkpoint_dir=tmp_path)
    with pytest.warns(UserWarning, match="2 batches into a pass.*starts a fresh pass"):
        fit(model, nn.CrossEntropyLoss(), opt, (X, Y), batch_size=8, epochs=2, verbose=0, resume_from=tmp_path)


def test_a_pass_position_beyond_this_runs_data_is_refused(tmp_path):
    model, opt = _model()
    _fit(model, opt, 4, epochs=1, checkpoint_dir=tmp_path)  # 4 of 5 batches taken
    with pytest.raises(CheckpointError, match="4 batches into a pass.*3 batches per pass"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (other data: warned, then refused)
        fit(model, nn.CrossEntropyLoss(), opt, (X[:24], Y[:24]), batch_size=8, epochs=2, verbose=0,
            steps_per_epoch=4, resume_from=tmp_path)  # fmt: skip
