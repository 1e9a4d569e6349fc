"""fit's checks for common training mistakes: a class where an instance belongs, an optimizer built on
another model, a per-batch schedule shorter than the training, and a loss that rises steadily to the end;
and the LearningRateMonitor, which records the rates without shifting the History's ``lr``."""

import math
import warnings

import numpy as np
import pytest
import torch

import downslope as ds
from downslope import nn, optim
from downslope.errors import ConfigError
from downslope.train import LearningRateMonitor, fit
from downslope.train.diagnostics import RisingLossWarning


def _data(n=50, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 2)).astype(np.float32)
    return x, x.sum(1, keepdims=True)


def _fit_quietly(*args, **kwargs):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = fit(*args, verbose=0, **kwargs)
    return history, caught


# ---------------------------------------------------------------------- LearningRateMonitor
def _torch_step_lr_rates(x, y, epochs, batch):
    """The rate each epoch trains with in PyTorch's loop: get_last_lr() read before scheduler.step()."""
    model = torch.nn.Linear(2, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.StepLR(opt, 1, 0.5)
    used = []
    for _ in range(epochs):
        used.append(sched.get_last_lr()[0])
        for i in range(0, len(x), batch):
            opt.zero_grad()
            torch.nn.functional.mse_loss(
                model(torch.tensor(x[i : i + batch])), torch.tensor(y[i : i + batch])
            ).backward()
            opt.step()
        sched.step()
    return used


@pytest.mark.parametrize("interval", ["epoch", "step"])
def test_learning_rate_monitor_does_not_shift_history_lr(interval):
    x, y = _data(64)
    expected = _torch_step_lr_rates(x, y, epochs=4, batch=16)

    def run(callbacks):
        model = nn.Linear(2, 1)
        opt = optim.SGD(model.parameters(), lr=0.1)
        sched = optim.lr_scheduler.StepLR(opt, 1, 0.5)
        return fit(model, nn.MSELoss(), opt, (x, y), epochs=4, batch_size=16, scheduler=sched, callbacks=callbacks,
                   verbose=0)  # fmt: skip

    monitor = LearningRateMonitor(interval)
    plain, monitored = run([]), run([monitor])
    np.testing.assert_allclose(plain["lr"], expected, rtol=1e-12)
    np.testing.assert_allclose(monitored["lr"], expected, rtol=1e-12)
    per_epoch = expected if interval == "epoch" else [r for r in expected for _ in range(4)]
    np.testing.assert_allclose(monitor.rates(), per_epoch, rtol=1e-12)
    assert monitor.lrs == [[r] for r in monitor.rates()]


def test_learning_rate_monitor_records_the_rate_a_keras_callback_sets_at_epoch_begin():
    x, y = _data(32)
    model = nn.Linear(2, 1)
    opt = optim.SGD(model.parameters(), lr=1.0)
    monitor = LearningRateMonitor()
    schedule = ds.train.LearningRateScheduler(lambda epoch, lr: 0.1 / (epoch + 1))
    history = fit(model, nn.MSELoss(), opt, (x, y), epochs=3, batch_size=16, callbacks=[monitor, schedule], verbose=0)
    np.testing.assert_allclose(monitor.rates(), [0.1, 0.05, 0.1 / 3], rtol=1e-12)
    np.testing.assert_allclose(history["lr"], monitor.rates(), rtol=1e-12)


def test_learning_rate_monitor_rates_per_group_for_plotting():
    x, y = _data(32)
    model = nn.Linear(2, 1)
    opt = optim.SGD([{"params": [model.weight]}, {"params": [model.bias], "lr": 0.01}], lr=0.1)
    monitor = LearningRateMonitor("step")
    history = fit(model, nn.MSELoss(), opt, (x, y), epochs=2, batch_size=16, callbacks=[monitor], verbose=0,
                  scheduler=optim.lr_scheduler.StepLR(opt, 1, 0.5))  # fmt: skip
    assert monitor.rates(0) == [0.1, 0.1, 0.05, 0.05]
    assert monitor.rates(1) == [0.01, 0.01, 0.005, 0.005]
    assert history["lr_group1"] == [0.01, 0.005]
    fig = ds.viz.plot_learning_rate(monitor.rates(1), x_label="step")
    assert fig.axes[0].lines[0].get_ydata().tolist() == [0.01, 0.01, 0.005, 0.005]
    with pytest.raises(ConfigError, match="group 2 is out of range; the optimizer has 2"):
        monitor.rates(2)


# ---------------------------------------------------------------------- a class for an instance
def test_fit_refuses_a_loss_class_naming_the_instance_to_pass():
    x, y = _data()
    model = nn.Linear(2, 1)
    with pytest.raises(ConfigError, match=r"fit: loss_fn is the class nn\.MSELoss; pass an instance: nn\.MSELoss\(\)"):
        fit(model, nn.MSELoss, optim.SGD(model.parameters(), lr=0.1), (x, y), epochs=1, verbose=0)


def test_fit_refuses_an_optimizer_class_naming_model_parameters():
    x, y = _data()
    model = nn.Linear(2, 1)
    before = model.weight.tolist()
    with pytest.raises(
        ConfigError, match=r"optimizer is the class optim\.SGD; pass an instance: optim\.SGD\(model\.parameters\(\)"
    ):
        fit(model, nn.MSELoss(), optim.SGD, (x, y), epochs=1, verbose=0)
    assert model.weight.tolist() == before


# ---------------------------------------------------------------------- an optimizer on another model
def test_fit_warns_when_the_optimizer_holds_none_of_the_models_parameters():
    x, y = _data(30)
    model = nn.Linear(2, 1)
    opt = optim.SGD(model.parameters(), lr=0.1)
    model = nn.Linear(2, 1)  # created again after the optimizer, as re-running a notebook cell does
    history, caught = _fit_quietly(model, nn.MSELoss(), opt, (x, y), epochs=3)
    said = [str(w.message) for w in caught if "holds none of the model's" in str(w.message)]
    assert len(said) == 1 and "2 trainable parameters (it holds 2 others)" in said[0]
    assert all(issubclass(w.category, UserWarning) for w in caught)
    assert history["loss"][0] == history["loss"][-1]  # nothing trained: what the warning is about


def test_fit_does_not_warn_when_the_optimizer_holds_the_model_and_more():
    x, y = _data(30)
    model = nn.Linear(2, 1)
    extra = ds.nn.Parameter(ds.zeros(1))
    opt = optim.SGD([*model.parameters(), extra], lr=0.1)
    _, caught = _fit_quietly(model, nn.MSELoss(), opt, (x, y), epochs=2)
    assert not [w for w in caught if "holds none" in str(w.message)]


# ---------------------------------------------------------------------- a schedule shorter than training
def test_fit_refuses_a_one_cycle_schedule_shorter_than_the_updates_before_training():
    x, y = _data(50)
    model = nn.Linear(2, 1)
    opt = optim.SGD(model.parameters(), lr=0.1)
    before = model.weight.tolist()
    sched = optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, epochs=5, steps_per_epoch=len(x) // 16)
    with pytest.raises(ConfigError) as raised:
        fit(model, nn.MSELoss(), opt, (x, y), epochs=5, batch_size=16, scheduler=sched, verbose=0)
    message = str(raised.value)
    assert "total_steps=15" in message and "4 batches per epoch x 5 epochs = 20 updates" in message
    assert "len(X) // batch_size (50 // 16)" in message and "math.ceil(len(X) / batch_size) = 4" in message
    assert model.weight.tolist() == before  # refused before the first update


def test_fit_accepts_a_one_cycle_schedule_that_fits_with_ceil_or_drop_last():
    x, y = _data(50)
    model = nn.Linear(2, 1)
    opt = optim.SGD(model.parameters(), lr=0.1)
    sched = optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, epochs=5, steps_per_epoch=math.ceil(len(x) / 16))
    assert len(fit(model, nn.MSELoss(), opt, (x, y), epochs=5, batch_size=16, scheduler=sched, verbose=0)) == 5
    model = nn.Linear(2, 1)
    opt = optim.SGD(model.parameters(), lr=0.1)
    sched = optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, epochs=5, steps_per_epoch=len(x) // 16)
    loader = ds.utils.data.DataLoader(ds.utils.data.TensorDataset(ds.tensor(x), ds.tensor(y)), batch_size=16,
                                      drop_last=True)  # fmt: skip
    assert len(fit(model, nn.MSELoss(), opt, loader, epochs=5, scheduler=sched, verbose=0)) == 5


# ---------------------------------------------------------------------- a loss rising to the end
def _slow_divergence():
    """Full-batch GD on least squares at 1.01 x the stability limit 2/L: each step overshoots a little more."""
    rng = np.random.default_rng(0)
    x = rng.uniform(-3, 3, (100, 1)).astype(np.float32)
    y = (3 * x + 2 + 0.5 * rng.normal(size=(100, 1))).astype(np.float32)
    design = np.hstack([x, np.ones((100, 1))]).astype(np.float64)
    lr = 1.01 * 2 / np.linalg.eigvalsh(2 * design.T @ design / 100).max()
    return x, y, float(lr)


def test_fit_warns_when_the_loss_rises_steadily_to_the_end():
    x, y, lr = _slow_divergence()
    model = nn.Linear(1, 1)
    with ds.no_grad():
        model.weight.fill_(0.5)
        model.bias.fill_(0.0)
    history, caught = _fit_quietly(model, nn.MSELoss(), optim.SGD(model.parameters(), lr=lr), (x, y), epochs=100,
                                   batch_size="full")  # fmt: skip
    losses = history["loss"]
    assert all(b > a for a, b in zip(losses[-11:], losses[-10:])) and losses[-1] > 10 * min(losses)
    rising = [w for w in caught if issubclass(w.category, RisingLossWarning)]
    assert len(rising) == 1 and issubclass(rising[0].category, UserWarning)
    lowest = int(np.argmin(losses))
    message = str(rising[0].message)
    assert "rose in each of the last 10 epochs" in message and "learning rate may be too large" in message
    assert f"{losses[lowest]:.4g} (epoch {lowest + 1})" in message and f"{losses[-1]:.4g} (epoch 100" in message
    assert history.stop_kind == "max_epochs"


def test_fit_does_not_warn_for_a_noisy_but_falling_loss():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(64, 2)).astype(np.float32)
    y = (x.sum(1, keepdims=True) + rng.normal(size=(64, 1))).astype(np.float32)
    model = nn.Linear(2, 1)
    # mini-batch SGD at a large rate on noisy targets: the epoch losses go up and down on their way down
    history, caught = _fit_quietly(model, nn.MSELoss(), optim.SGD(model.parameters(), lr=0.3), (x, y), epochs=30,
                                   batch_size=4, seed=0)  # fmt: skip
    losses = history["loss"]
    assert losses[-1] < losses[0]
    assert any(b > a for a, b in zip(losses, losses[1:]))  # noisy: some epochs rose
    assert not [w for w in caught if issubclass(w.category, RisingLossWarning)]


def test_rising_loss_rule_needs_every_epoch_rising_and_a_tenfold_rise():
    from downslope.train.diagnostics import rising_loss_note

    up = [1.0 * 2**i for i in range(8)]  # rises in all 7 steps, 128x the lowest
    assert rising_loss_note(up) is not None
    assert rising_loss_note(up[:-1] + [up[-2] * 0.99]) is None  # the last epoch fell
    assert rising_loss_note([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]) is None  # 8x the lowest: not 10x
    assert rising_loss_note([1.0, 20.0, 40.0]) is None  # too few epochs to call a trend
    assert "last 3 epochs" in rising_loss_note([5.0, 1.0, 2.0, 4.0, 8.0, 16.0])  # k = max(3, 6 // 2)
