"""Keras 3's step options of fit and ModelCheckpoint: ``steps_per_epoch`` (the pass over the data goes on
across epochs, an epoch ending early where the data runs out), ``validation_steps``,
``ModelCheckpoint(initial_value_threshold=..., save_freq=<batches>)``; each against a hand-written torch
loop or Keras 3's rule written out."""

import math
import os
import warnings

import numpy as np
import pytest
import torch

import downslope as ds
from downslope import nn, optim
from downslope.errors import ConfigError
from downslope.train import Callback, ModelCheckpoint, TrainingState, fit


def _data(n, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3)).astype(np.float32)
    return x, (x @ np.array([[1.0], [-2.0], [0.5]], dtype=np.float32) + 0.3).astype(np.float32)


def _pair(seed=0):
    ds.manual_seed(seed)
    model = nn.Linear(3, 1)
    twin = torch.nn.Linear(3, 1)
    with torch.no_grad():
        twin.weight.copy_(torch.tensor(model.weight.detach().numpy()))
        twin.bias.copy_(torch.tensor(model.bias.detach().numpy()))
    return model, twin


def _torch_epochs(twin, x, y, batch, epoch_batches, lr=0.1):
    """A torch loop training the given batch indices per epoch; returns each epoch's size-weighted mean loss."""
    opt = torch.optim.SGD(twin.parameters(), lr=lr)
    losses = []
    for indices in epoch_batches:
        total, count = 0.0, 0
        for b in indices:
            xb, yb = torch.tensor(x[b * batch : (b + 1) * batch]), torch.tensor(y[b * batch : (b + 1) * batch])
            opt.zero_grad()
            loss = torch.nn.functional.mse_loss(twin(xb), yb)
            loss.backward()
            opt.step()
            total, count = total + loss.item() * len(xb), count + len(xb)
        losses.append(total / count)
    return losses


def test_steps_per_epoch_continues_the_pass_and_ends_an_epoch_where_the_data_runs_out():
    x, y = _data(10)  # batches of 2: five per pass
    model, twin = _pair()
    with pytest.warns(UserWarning, match="ran out"):
        history = fit(model, nn.MSELoss(), optim.SGD(model.parameters(), lr=0.1), (x, y), epochs=4, batch_size=2,
                      shuffle=False, steps_per_epoch=3, verbose=0)  # fmt: skip
    # Keras 3's EpochIterator: epoch 1 batches 0-2, epoch 2 batches 3-4 (the data ran out), then a fresh pass
    expected = _torch_epochs(twin, x, y, 2, [[0, 1, 2], [3, 4], [0, 1, 2], [3, 4]])
    np.testing.assert_allclose(history["loss"], expected, rtol=1e-5)
    np.testing.assert_allclose(model.weight.detach().numpy(), twin.weight.detach().numpy(), rtol=1e-5, atol=1e-6)
    assert history.params["steps"] == 3


def test_steps_per_epoch_that_divides_the_pass_does_not_warn_and_a_shuffled_pass_covers_the_data():
    x, y = _data(8)
    seen: list[list[float]] = []

    class Record(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = nn.Linear(3, 1)

        def forward(self, inputs):
            seen[-1].extend(inputs.detach().numpy()[:, 0].tolist())
            return self.inner(inputs)

    class EpochMark(Callback):
        def on_epoch_begin(self, epoch, logs=None):
            seen.append([])

    model = Record()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit(model, "mse", optim.SGD(model.parameters(), lr=0.01), (x, y), epochs=4, batch_size=2, seed=1,
            steps_per_epoch=2, callbacks=[EpochMark()], verbose=0)  # fmt: skip
    assert [len(s) for s in seen] == [4, 4, 4, 4]
    for first, second in ((0, 1), (2, 3)):  # two epochs make one pass: every sample once
        assert sorted(seen[first] + seen[second]) == sorted(x[:, 0].tolist())
    assert sorted(seen[0] + seen[1]) == sorted(seen[2] + seen[3]) and seen[0] + seen[1] != seen[2] + seen[3]


def test_validation_steps_reads_only_the_first_batches():
    x, y = _data(12)
    vx, vy = _data(10, seed=1)
    model, twin = _pair()
    history = fit(model, "mse", optim.SGD(model.parameters(), lr=0.1), (x, y), validation=(vx, vy), epochs=1,
                  batch_size=4, shuffle=False, validation_batch_size=4, validation_steps=2, verbose=0)  # fmt: skip
    _torch_epochs(twin, x, y, 4, [[0, 1, 2]])
    with torch.no_grad():
        expected = torch.nn.functional.mse_loss(twin(torch.tensor(vx[:8])), torch.tensor(vy[:8])).item()
    assert history["val_loss"][0] == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("bad", [{"steps_per_epoch": 0}, {"validation_steps": 1.5}, {"steps_per_epoch": True}])
def test_step_counts_must_be_positive_integers(bad):
    x, y = _data(4)
    model = nn.Linear(3, 1)
    with pytest.raises(ConfigError, match=next(iter(bad))):
        fit(model, "mse", "sgd", (x, y), epochs=1, verbose=0, **bad)


def _keras_saves(values, threshold, mode):
    """Keras 3's ModelCheckpoint(save_best_only=True, initial_value_threshold=...): the epochs saved."""
    best = threshold if threshold is not None else (math.inf if mode == "min" else -math.inf)
    better = np.less if mode == "min" else np.greater
    saved = []
    for epoch, value in enumerate(values):
        if better(value, best):
            best = value
            saved.append(epoch)
    return saved


@pytest.mark.parametrize("mode", ["min", "max"])
def test_initial_value_threshold_saves_only_once_the_value_beats_it(tmp_path, mode):
    rng = np.random.default_rng(3)
    for trial in range(200):
        values = rng.integers(0, 6, size=8).astype(float).tolist()  # ties included
        threshold = [None, 2.0, 3.0, 4.0][trial % 4]
        saver = ModelCheckpoint(tmp_path / "m.ckpt", monitor="score", mode=mode, save_best_only=True,
                                initial_value_threshold=threshold)  # fmt: skip
        saver.set_trainer(TrainingState(model=nn.Linear(1, 1)))
        saver.on_train_begin()
        saved = []
        for epoch, value in enumerate(values):
            saver.last_saved = None
            saver.on_epoch_end(epoch, {"score": value})
            if saver.last_saved is not None:
                saved.append(epoch)
        assert saved == _keras_saves(values, threshold, mode), (values, threshold)


def test_save_freq_counts_batches_across_epochs_and_saves_the_weights_after_that_batch(tmp_path):
    x, y = _data(10)  # batches of 2: five per epoch
    model, twin = _pair()
    saver = ModelCheckpoint(str(tmp_path / "e{epoch}-b{batch}-{loss:.3f}.ckpt"), save_freq=4)
    fit(model, "mse", optim.SGD(model.parameters(), lr=0.1), (x, y), epochs=3, batch_size=2, shuffle=False,
        callbacks=[saver], verbose=0)  # fmt: skip
    # Keras 3: saves after the 4th, 8th and 12th batch: epoch 1 batch 4, epoch 2 batch 3, epoch 3 batch 2
    names = sorted(os.listdir(tmp_path))
    assert [n.split("-")[:2] for n in names] == [["e1", "b4"], ["e2", "b3"], ["e3", "b2"]], names
    _torch_epochs(twin, x, y, 2, [[0, 1, 2, 3, 4], [0, 1, 2, 3, 4], [0, 1]])  # 12 updates
    state = ds.load(str(tmp_path / names[-1]))
    assert sorted(state) == ["model"]  # (a state inside an epoch is not resumable: the weights only)
    np.testing.assert_allclose(np.asarray(state["model"]["weight"].numpy()), twin.weight.detach().numpy(),
                               rtol=1e-5, atol=1e-6)  # fmt: skip


def test_save_freq_is_checked():
    with pytest.raises(ConfigError, match="save_freq must be 'epoch' or a positive integer"):
        ModelCheckpoint("m.ckpt", save_freq=0)
    with pytest.raises(ConfigError, match="initial_value_threshold must be a number"):
        ModelCheckpoint("m.ckpt", initial_value_threshold=float("nan"))


def test_save_freq_count_continues_across_a_resume(tmp_path):
    x, y = _data(10)  # five batches per epoch
    model = nn.Linear(3, 1)
    opt = optim.SGD(model.parameters(), lr=0.1)
    saves = tmp_path / "saves"

    def run(epochs, **kw):
        saver = ModelCheckpoint(str(saves / "e{epoch}-b{batch}.ckpt"), save_freq=4)
        fit(model, "mse", opt, (x, y), epochs=epochs, batch_size=2, callbacks=[saver], checkpoint_dir=tmp_path / "c",
            verbose=0, **kw)  # fmt: skip

    run(1)
    run(3, resume_from=tmp_path / "c")
    # as one run of 15 batches: saves after the 4th, 8th and 12th
    assert sorted(os.listdir(saves)) == ["e1-b4.ckpt", "e2-b3.ckpt", "e3-b2.ckpt"]


def test_steps_per_epoch_and_validation_steps_on_a_device_match_the_host():
    rng = np.random.default_rng(0)
    x, y = rng.random((50, 3)), rng.random((50, 1))
    vx, vy = rng.random((30, 3)), rng.random((30, 1))

    def run(device):
        ds.manual_seed(0)
        model = nn.Linear(3, 1).double()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # (the data runs out in some epochs: said by the other tests)
            history = fit(model, "mse", optim.SGD(model.parameters(), lr=0.1), (x, y), validation=(vx, vy),
                          epochs=4, batch_size=8, seed=1, steps_per_epoch=5, validation_batch_size=8,
                          validation_steps=2, device=device, verbose=0)  # fmt: skip
        return [ds.devices.to_host(p.array) for p in model.parameters()], history

    host_params, host_history = run(None)
    device_params, device_history = run("strict")
    for a, b in zip(host_params, device_params):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(device_history["val_loss"], host_history["val_loss"], rtol=1e-12)
