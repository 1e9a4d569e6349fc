"""Keras' fit options and small callbacks: validation_split=0.0, validation_freq, validation_batch_size,
LambdaCallback, LearningRateScheduler (against a torch loop) and the ReduceLROnPlateau callback (against
Keras 3's rule, written out below from keras/src/callbacks/reduce_lr_on_plateau.py)."""

import math
import warnings

import numpy as np
import pytest
import torch

import downslope as ds
from downslope import nn, optim
from downslope.errors import ConfigError
from downslope.train import (
    Callback,
    EarlyStopping,
    LambdaCallback,
    LearningRateScheduler,
    ReduceLROnPlateau,
    fit,
)


def _regression(n=40, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3)).astype(np.float32)
    return x, (x @ np.array([[1.0], [-2.0], [0.5]], np.float32) + 0.3).astype(np.float32)


def test_validation_split_zero_is_kerass_default_no_validation():
    x, y = _regression()
    history = fit(nn.Linear(3, 1), "mse", "sgd", (x, y), validation_split=0.0, epochs=2, verbose=0)
    assert "val_loss" not in history.history and len(history) == 2
    history = fit(
        nn.Linear(3, 1), "mse", "sgd", (x, y), validation_split=0, validation_data=(x, y), epochs=1, verbose=0
    )
    assert "val_loss" in history.history
    with pytest.raises(ConfigError, match="validation_split"):
        fit(nn.Linear(3, 1), "mse", "sgd", (x, y), validation_split=False, epochs=1, verbose=0)


class _TestSizes(Callback):
    def __init__(self):
        self.sizes = []

    def on_test_batch_begin(self, batch, logs=None):
        self.sizes.append(logs["size"])


def test_validation_freq_validates_every_nth_epoch_and_monitors_skip_the_others():
    x, y = _regression()
    ds.manual_seed(0)
    model = nn.Linear(3, 1)
    stopper = EarlyStopping(monitor="val_loss", patience=100)
    seen = []
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "val_loss is not available, monitors loss instead"
        history = fit(
            model, "mse", optim.SGD(model.parameters(), lr=0.05), (x[:30], y[:30]), validation_data=(x[30:], y[30:]),
            epochs=5, verbose=0, validation_freq=2, shuffle=False,
            callbacks=[stopper, LambdaCallback(on_epoch_end=lambda e, logs: seen.append(dict(logs)))],
            scheduler=None,
        )  # fmt: skip
    assert [v is not None for v in history["val_loss"]] == [False, True, False, True, False]
    assert ["val_loss" in logs for logs in seen] == [False, True, False, True, False]
    assert stopper._monitor.key == "val_loss"
    # the numbers logged are the validation loss at those epochs: replay the run without validation
    ds.manual_seed(0)
    twin = nn.Linear(3, 1)
    values = []
    twin_opt = optim.SGD(twin.parameters(), lr=0.05)
    for _ in range(4):
        fit(twin, "mse", twin_opt, (x[:30], y[:30]), epochs=1, verbose=0, shuffle=False)
        values.append(ds.evaluate(twin, "mse", (x[30:], y[30:]))["loss"])
    assert history["val_loss"][1] == pytest.approx(values[1], rel=1e-6)
    assert history["val_loss"][3] == pytest.approx(values[3], rel=1e-6)
    listed = fit(
        nn.Linear(3, 1), "mse", "sgd", (x, y), validation_data=(x, y), epochs=4, verbose=0, validation_freq=[1, 4]
    )
    assert [v is not None for v in listed["val_loss"]] == [True, False, False, True]
    for bad in (0, 1.5, [], [0], True):
        with pytest.raises(ConfigError, match="validation_freq"):
            fit(nn.Linear(3, 1), "mse", "sgd", (x, y), epochs=1, verbose=0, validation_freq=bad)


def test_a_plateau_scheduler_waits_for_the_epochs_that_validate():
    x, y = _regression()
    model = nn.Linear(3, 1)
    opt = optim.SGD(model.parameters(), lr=0.05)
    sched = optim.lr_scheduler.ReduceLROnPlateau(opt, patience=0)
    fit(model, "mse", opt, (x, y), validation_data=(x, y), epochs=4, verbose=0, validation_freq=2, scheduler=sched)
    assert sched.last_epoch == 2  # stepped on epochs 2 and 4 only, with val_loss


def test_validation_batch_size_sets_the_validation_batches():
    x, y = _regression()
    sizes = _TestSizes()
    fit(nn.Linear(3, 1), "mse", "sgd", (x, y), validation_split=0.25, epochs=1, verbose=0,
        validation_batch_size=4, callbacks=[sizes])  # fmt: skip
    assert sizes.sizes == [4, 4, 2]
    loader = ds.utils.data.DataLoader(ds.utils.data.TensorDataset(ds.tensor(x), ds.tensor(y)), batch_size=8)
    with pytest.raises(ConfigError, match="validation_batch_size"):
        fit(nn.Linear(3, 1), "mse", "sgd", (x, y), validation_data=loader, epochs=1, verbose=0, validation_batch_size=4)


def test_lambda_callback_calls_each_function_with_kerass_arguments():
    x, y = _regression(n=10)
    calls = []
    cb = LambdaCallback(
        on_train_begin=lambda logs: calls.append(("train_begin",)),
        on_epoch_begin=lambda epoch, logs: calls.append(("epoch_begin", epoch)),
        on_batch_begin=lambda batch, logs: calls.append(("batch_begin", batch)),
        on_batch_end=lambda batch, logs: calls.append(("batch_end", batch, round(float(logs["loss"]), 6) >= 0)),
        on_epoch_end=lambda epoch, logs: calls.append(("epoch_end", epoch, "loss" in logs)),
        on_train_end=lambda logs: calls.append(("train_end",)),
        on_test_end=lambda logs: calls.append(("test_end", "loss" in logs)),
    )
    fit(
        nn.Linear(3, 1), "mse", "sgd", (x, y), validation_data=(x, y), epochs=2, batch_size=5, verbose=0, callbacks=[cb]
    )
    epoch = [("batch_begin", 0), ("batch_end", 0, True), ("batch_begin", 1), ("batch_end", 1, True), ("test_end", True)]
    assert calls == [
        ("train_begin",),
        ("epoch_begin", 0), *epoch, ("epoch_end", 0, True),
        ("epoch_begin", 1), *epoch, ("epoch_end", 1, True),
        ("train_end",),
    ]  # fmt: skip
    overridden = []
    cb = LambdaCallback(on_train_batch_end=lambda batch, logs: overridden.append(batch))
    fit(nn.Linear(3, 1), "mse", "sgd", (x, y), epochs=1, batch_size=5, verbose=0, callbacks=[cb])
    assert overridden == [0, 1]
    with pytest.raises(ConfigError, match="not a callback hook"):
        LambdaCallback(on_epoch_ends=print)


@pytest.mark.parametrize("two_arguments", [True, False])
def test_learning_rate_scheduler_trains_as_a_torch_loop_setting_the_rate_each_epoch(two_arguments):
    x, y = _regression()
    ds.manual_seed(1)
    model = nn.Linear(3, 1)
    twin = torch.nn.Linear(3, 1)
    with torch.no_grad():
        twin.weight.copy_(torch.tensor(model.weight.detach().numpy()))
        twin.bias.copy_(torch.tensor(model.bias.detach().numpy()))
    if two_arguments:
        schedule = lambda epoch, lr: lr if epoch < 2 else lr * 0.5  # noqa: E731
    else:
        schedule = lambda epoch: 0.1 / (1 + epoch)  # noqa: E731
    history = fit(model, "mse", optim.SGD(model.parameters(), lr=0.1), (x, y), epochs=5, batch_size=None,
                  verbose=0, callbacks=[LearningRateScheduler(schedule)])  # fmt: skip
    topt = torch.optim.SGD(twin.parameters(), lr=0.1)
    rates = []
    for epoch in range(5):
        lr = schedule(epoch, topt.param_groups[0]["lr"]) if two_arguments else schedule(epoch)
        topt.param_groups[0]["lr"] = lr
        rates.append(lr)
        topt.zero_grad()
        loss = torch.nn.functional.mse_loss(twin(torch.tensor(x)), torch.tensor(y))
        loss.backward()
        topt.step()
    assert history["lr"] == pytest.approx(rates)
    assert history["learning_rate"] == pytest.approx(rates)
    np.testing.assert_allclose(model.weight.detach().numpy(), twin.weight.detach().numpy(), rtol=1e-5, atol=1e-6)
    with pytest.raises(ConfigError, match="must return a number"):
        fit(nn.Linear(3, 1), "mse", "sgd", (x, y), epochs=1, verbose=0,
            callbacks=[LearningRateScheduler(lambda e, lr: "fast")])  # fmt: skip


def _keras_plateau(values, *, patience, factor, min_delta, cooldown, min_lr, mode, lr=1.0):
    """Keras 3's ReduceLROnPlateau.on_epoch_end over ``values``: the rate after each epoch."""
    less = mode == "min"
    best = math.inf if less else -math.inf
    wait = cooldown_counter = 0
    rates = []
    for current in values:
        if cooldown_counter > 0:
            cooldown_counter -= 1
            wait = 0
        if (current < best - min_delta) if less else (current > best + min_delta):
            best = current
            wait = 0
        elif not cooldown_counter > 0:
            wait += 1
            if wait >= patience:
                if lr > np.float32(min_lr):
                    lr = max(lr * factor, min_lr)
                    cooldown_counter = cooldown
                    wait = 0
        rates.append(lr)
    return rates


@pytest.mark.parametrize("seed", range(40))
def test_reduce_lr_on_plateau_callback_follows_keras3_rule(seed):
    rng = np.random.default_rng(seed)
    settings = dict(
        patience=int(rng.integers(0, 4)), factor=float(rng.choice([0.1, 0.5])), min_delta=float(rng.choice([0, 0.05])),
        cooldown=int(rng.integers(0, 3)), min_lr=float(rng.choice([0.0, 0.02])), mode=str(rng.choice(["min", "max"])),
    )  # fmt: skip
    values = np.round(rng.normal(size=25).cumsum() * 0.1, 2).tolist()  # ties and small steps
    expected = _keras_plateau(values, **settings)
    model = nn.Linear(1, 1)
    opt = optim.SGD(model.parameters(), lr=1.0)
    cb = ReduceLROnPlateau(monitor="val_score", **settings)
    cb.set_trainer(ds.train.TrainingState(model, opt))
    cb.on_train_begin({})
    got = []
    for epoch, value in enumerate(values):
        cb.on_epoch_end(epoch, {"val_score": value})
        got.append(opt.param_groups[0]["lr"])
    assert got == pytest.approx(expected)


def test_reduce_lr_on_plateau_callback_in_fit_reads_auto_mode_and_keeps_its_state_on_resume(tmp_path):
    x, y = _regression()
    model = nn.Linear(3, 1)
    cb = ReduceLROnPlateau(monitor="val_loss", patience=1, factor=0.5, verbose=1)
    history = fit(model, "mse", optim.SGD(model.parameters(), lr=1e-6), (x, y), validation_data=(x, y), epochs=6,
                  verbose=0, callbacks=[cb])  # fmt: skip
    assert cb._direction == "min"
    assert history["lr"][0] == pytest.approx(1e-6)
    acc = ReduceLROnPlateau(monitor="val_accuracy")
    acc.set_trainer(ds.train.TrainingState(model, optim.SGD(model.parameters(), lr=0.1)))
    acc.on_train_begin({})
    assert acc._direction == "max"
    state = cb.state_dict()
    fresh = ReduceLROnPlateau(monitor="val_loss", patience=1, factor=0.5)
    fresh.set_trainer(ds.train.TrainingState(model, optim.SGD(model.parameters(), lr=0.1)))
    fresh.on_train_begin({})
    fresh.load_state_dict(state)
    assert (fresh.best, fresh.wait, fresh.cooldown_counter) == (cb.best, cb.wait, cb.cooldown_counter)
    with pytest.raises(ConfigError, match="factor"):
        ReduceLROnPlateau(factor=1.0)


def test_learning_rate_scheduler_names_the_groups_rates_in_group_order():
    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 1))
    opt = optim.SGD([{"params": model[0].parameters(), "lr": 0.3}, {"params": model[1].parameters()}], lr=0.1)
    x, y = _regression()
    with pytest.raises(ConfigError) as info:
        fit(model, "mse", opt, (x, y), epochs=1, verbose=0, callbacks=[LearningRateScheduler(lambda epoch, lr: lr)])
    assert "param groups have different rates [0.3, 0.1] (in group order)" in str(info.value)
