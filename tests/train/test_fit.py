import math
import os
import signal

import numpy as np
import pytest

import downslope as ds
from downslope import nn, optim
from downslope.errors import CheckpointError, ConfigError
from downslope.train import (
    Callback,
    DivergenceGuard,
    EarlyStopping,
    History,
    LearningRateMonitor,
    ModelCheckpoint,
    StopAtLoss,
    evaluate,
    fit,
    predict,
)


def _regression(n=64, noise=0.1, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    y = x @ np.array([[1.5], [-2.0], [0.5]]) + 0.7 + noise * rng.normal(size=(n, 1))
    return x, y


def _least_squares(x, y):
    design = np.hstack([x, np.ones((len(x), 1))])
    return np.linalg.lstsq(design, y, rcond=None)[0].ravel()


def _weights(model):
    return np.concatenate([model.weight.array.ravel(), model.bias.array.ravel()])


class CountUpdates(Callback):
    def on_train_begin(self, logs=None):
        self.per_epoch = []

    def on_epoch_begin(self, epoch, logs=None):
        self.per_epoch.append(0)

    def on_batch_end(self, batch, logs=None):
        self.per_epoch[-1] += 1


class RecordWeights(Callback):
    def on_train_begin(self, logs=None):
        self.states = []

    def on_epoch_end(self, epoch, logs=None):
        self.states.append(self.model.state_dict())


# ---------------------------------------------------------------------- the three batch modes
@pytest.mark.parametrize(
    "batch_size, lr, epochs, noise, updates",
    [
        (None, 0.5, 300, 0.1, 1),  # full-batch GD, noisy data: the least-squares fit
        (1, 0.02, 40, 0.0, 64),  # stochastic GD: exact data, so the noise of SGD vanishes at the solution
        (16, 0.1, 150, 0.0, 4),  # mini-batch
    ],
)
def test_linear_regression_reaches_least_squares(batch_size, lr, epochs, noise, updates):
    x, y = _regression(noise=noise)
    ds.manual_seed(0)
    model = nn.Linear(3, 1)
    counter = CountUpdates()
    history = fit(
        model, nn.MSELoss(), optim.SGD(model.parameters(), lr=lr), (x, y),
        epochs=epochs, batch_size=batch_size, callbacks=[counter], seed=0,
    )  # fmt: skip
    np.testing.assert_allclose(_weights(model), _least_squares(x, y), atol=1e-4)
    assert counter.per_epoch == [updates] * epochs
    assert len(history) == epochs and history.stop_reason == f"reached the epoch limit ({epochs})"


def test_mini_batch_counts_round_up_and_drop_last_rounds_down():
    x, y = _regression(n=50)
    model = nn.Linear(3, 1)
    counter = CountUpdates()
    fit(
        model,
        nn.MSELoss(),
        optim.SGD(model.parameters(), lr=0.01),
        (x, y),
        epochs=2,
        batch_size=16,
        callbacks=[counter],
    )
    assert counter.per_epoch == [4, 4]
    loader = ds.data.DataLoader((x, y), batch_size=16, drop_last=True, shuffle=True, seed=0)
    fit(model, nn.MSELoss(), optim.SGD(model.parameters(), lr=0.01), loader, epochs=2, callbacks=[counter])
    assert counter.per_epoch == [3, 3]


# ---------------------------------------------------------------------- logs, history, validation
def test_history_records_losses_metrics_validation_lr_and_time(tmp_path):
    x, y = _regression(n=80)
    ds.manual_seed(1)
    model = nn.Linear(3, 1)
    history = fit(
        model, nn.MSELoss(), optim.SGD(model.parameters(), lr=0.1), (x, y),
        validation_split=0.25, epochs=3, batch_size=10, metrics=["mae", "r2"], seed=3,
    )  # fmt: skip
    assert history.keys() == [
        "epoch", "loss", "mae", "r2", "val_loss", "val_mae", "val_r2", "lr", "learning_rate", "epoch_time", "time"
    ]  # fmt: skip
    assert history["epoch"] == [1, 2, 3] and history["lr"] == history["learning_rate"] == [0.1, 0.1, 0.1]
    assert all(t > 0 for t in history["epoch_time"]) and history["time"] == sorted(history["time"])
    assert history.best_epoch == 1 + int(np.argmin(history["val_loss"]))
    text = history.to_csv(tmp_path / "h.csv")
    assert open(tmp_path / "h.csv").read() == text and text.splitlines()[0].startswith("epoch,loss,mae")


def test_validation_loss_equals_evaluate_after_training():
    x, y = _regression(n=60)
    xv, yv = _regression(n=30, seed=9)
    model = nn.Linear(3, 1)
    history = fit(
        model, nn.MSELoss(), optim.SGD(model.parameters(), lr=0.05), (x, y), (xv, yv), epochs=2, metrics=["mse"]
    )
    pred = model.weight.array.astype(np.float64) @ xv.T.astype(np.float32).astype(np.float64)
    direct = np.mean((pred.T + model.bias.array - yv.astype(np.float32)) ** 2)
    assert history["val_loss"][-1] == pytest.approx(direct, rel=1e-5)
    assert history["val_mse"][-1] == pytest.approx(direct, rel=1e-5)
    assert evaluate(model, nn.MSELoss(), (xv, yv), batch_size=7)["loss"] == pytest.approx(direct, rel=1e-5)


def test_evaluate_and_predict_use_eval_mode_no_grad_and_restore_the_mode():
    ds.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 16), nn.Dropout(0.5), nn.Linear(16, 2))
    x = np.random.default_rng(0).normal(size=(9, 4))
    model.train()
    a = predict(model, x, batch_size=4)
    b = predict(model, x, batch_size=None)
    assert model.training and not a.requires_grad
    np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6)  # dropout off: deterministic
    model.eval()
    evaluate(model, nn.CrossEntropyLoss(), (x, np.zeros(9, int)))
    assert not model.training


# ---------------------------------------------------------------------- stopping rules inside fit
def _keras_stop_epoch(values, patience, min_delta=0.0):
    """Reference rule (Keras 3, mode min): index of the epoch where training stops, or None."""
    best, wait = None, 0
    for epoch, v in enumerate(values):
        wait += 1
        if best is None or v + min_delta < best:
            best, wait = v, 0
            continue
        if wait >= patience and epoch > 0:
            return epoch
    return None


def test_early_stopping_in_fit_stops_at_the_right_epoch_and_not_before():
    x, y = _regression(n=64)
    ds.manual_seed(0)
    model = nn.Linear(3, 1)
    history = fit(
        model, nn.MSELoss(), optim.SGD(model.parameters(), lr=0.05), (x, y),
        epochs=500, batch_size=8, seed=0, callbacks=[EarlyStopping(monitor="loss", min_delta=1e-4, patience=3)],
    )  # fmt: skip
    stop = _keras_stop_epoch(history["loss"], patience=3, min_delta=1e-4)
    assert stop is not None and len(history) == stop + 1 < 500
    assert "early stopping" in history.stop_reason


def test_max_epochs_runs_exactly_that_many():
    x, y = _regression()
    model = nn.Linear(3, 1)
    history = fit(model, nn.MSELoss(), optim.SGD(model.parameters(), lr=0.01), (x, y), epochs=7)
    assert len(history) == 7 and history.stop_reason == "reached the epoch limit (7)"


def test_stop_at_loss_fires_at_the_first_epoch_below_target():
    x, y = _regression(noise=0.0)
    model = nn.Linear(3, 1)
    history = fit(
        model, nn.MSELoss(), optim.SGD(model.parameters(), lr=0.1), (x, y),
        epochs=300, batch_size=None, callbacks=[StopAtLoss(1e-3)],
    )  # fmt: skip
    losses = history["loss"]
    assert losses[-1] <= 1e-3 and all(v > 1e-3 for v in losses[:-1]) and len(losses) < 300


def test_divergence_is_caught_at_the_right_epoch_with_a_hint():
    x, y = _regression()
    ds.manual_seed(0)
    model = nn.Linear(3, 1)
    history = fit(
        model, nn.MSELoss(), optim.SGD(model.parameters(), lr=3.0), (x, y),
        epochs=100, batch_size=None, callbacks=[DivergenceGuard(factor=100)],
    )  # fmt: skip
    losses = history["loss"]
    first = next(i for i in range(1, len(losses)) if losses[i] > 100 * min(losses[:i]))
    assert len(losses) == first + 1
    assert "diverged: loss rose from" in history.stop_reason and "at lr=3; " in history.stop_reason
    assert "try lr=0.3" in history.stop_reason


def test_non_finite_loss_stops_by_default():
    x, y = _regression()
    model = nn.Linear(3, 1)
    history = fit(model, nn.MSELoss(), optim.SGD(model.parameters(), lr=50.0), (x, y), epochs=500, batch_size=None)
    # stopped by default: here once the loss is 10^4 times its start, before it overflows
    assert len(history) < 500 and "diverged: loss rose from" in history.stop_reason
    model = nn.Linear(3, 1)
    guard = DivergenceGuard(factor=math.inf)  # NaN/inf only, as a user may ask
    history = fit(model, nn.MSELoss(), optim.SGD(model.parameters(), lr=50.0), (x, y), epochs=500, batch_size=None,
                  callbacks=[guard])  # fmt: skip
    assert len(history) < 500 and "diverged: loss became" in history.stop_reason
    assert not math.isfinite(history["loss"][-1])


def test_restore_best_weights_loads_the_best_epochs_weights():
    x, y = _regression(n=40, noise=1.0, seed=1)
    xv, yv = _regression(n=40, noise=1.0, seed=2)
    ds.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 64), nn.ReLU(), nn.Linear(64, 1))
    recorder = RecordWeights()
    stopper = EarlyStopping(patience=5, restore_best_weights=True)
    history = fit(
        model, nn.MSELoss(), optim.Adam(model.parameters(), lr=0.03), (x, y), (xv, yv),
        epochs=60, batch_size=8, callbacks=[recorder, stopper], seed=0,
    )  # fmt: skip
    best = int(np.argmin(history["val_loss"]))
    assert stopper.best_epoch == best and best < len(history) - 1
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(value, recorder.states[best][key])


# ---------------------------------------------------------------------- checkpoints and resume
def _resume_setup():
    ds.manual_seed(123)
    model = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Dropout(0.2), nn.Linear(8, 1))
    opt = optim.Adam(model.parameters(), lr=0.01)
    sched = optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    return model, opt, sched


class InterruptAt(Callback):
    """Sends SIGINT to this process in the middle of epoch ``epoch`` (0-based)."""

    def __init__(self, epoch):
        self.epoch = epoch

    def on_batch_end(self, batch, logs=None):
        if self.trainer.epoch == self.epoch and batch == 1:
            os.kill(os.getpid(), signal.SIGINT)


@pytest.mark.parametrize("split", [False, True])
def test_interrupted_and_resumed_run_is_bit_identical(tmp_path, split):
    x, y = _regression(n=40)
    xv, yv = _regression(n=20, seed=5)
    kwargs = dict(epochs=6, batch_size=8, metrics=["mae"])
    if split:  # the held-out part is drawn with a seed from the library generator: it must be the same
        kwargs["validation_split"] = 0.25
        xv = yv = None

    model, opt, sched = _resume_setup()
    full = fit(
        model,
        nn.MSELoss(),
        opt,
        (x, y),
        None if split else (xv, yv),
        scheduler=sched,
        callbacks=[EarlyStopping(patience=50, restore_best_weights=True)],
        **kwargs,
    )
    expected = model.state_dict()

    model, opt, sched = _resume_setup()
    part = fit(
        model, nn.MSELoss(), opt, (x, y), None if split else (xv, yv), scheduler=sched,
        callbacks=[EarlyStopping(patience=50, restore_best_weights=True), InterruptAt(2)], checkpoint_dir=tmp_path, **kwargs,
    )  # fmt: skip
    assert len(part) == 3 and "interrupted by SIGINT: finished epoch 3" in part.stop_reason
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler

    ds.manual_seed(999)  # a different start: everything must come from the checkpoint
    model = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Dropout(0.2), nn.Linear(8, 1))
    opt = optim.Adam(model.parameters(), lr=0.5)
    sched = optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    resumed = fit(
        model, nn.MSELoss(), opt, (x, y), None if split else (xv, yv), scheduler=sched,
        callbacks=[EarlyStopping(patience=50, restore_best_weights=True), Callback()], resume_from=tmp_path, **kwargs,
    )  # fmt: skip
    for key, value in expected.items():
        np.testing.assert_array_equal(model.state_dict()[key], value)
    for key in ("loss", "val_loss", "mae", "val_mae", "lr"):
        assert resumed[key] == full[key], key
    assert resumed.stop_reason == full.stop_reason == "reached the epoch limit (6)"


@pytest.mark.parametrize("interval", ["epoch", "step"])
def test_learning_rate_monitor_series_survives_a_resume(tmp_path, interval):
    x, y = _regression(n=40)
    kwargs = dict(epochs=5, batch_size=8)
    model, opt, sched = _resume_setup()
    full = LearningRateMonitor(interval)
    fit(model, nn.MSELoss(), opt, (x, y), scheduler=sched, callbacks=[full], **kwargs)

    model, opt, sched = _resume_setup()
    fit(model, nn.MSELoss(), opt, (x, y), scheduler=sched, callbacks=[LearningRateMonitor(interval), InterruptAt(2)],
        checkpoint_dir=tmp_path, **kwargs)  # fmt: skip
    model, opt, sched = _resume_setup()
    resumed = LearningRateMonitor(interval)
    fit(model, nn.MSELoss(), opt, (x, y), scheduler=sched, callbacks=[resumed], resume_from=tmp_path, **kwargs)
    assert len(set(r[0] for r in full.lrs)) > 1  # StepLR changed the rate: the series has something to lose
    assert resumed.lrs == full.lrs


def test_resume_refuses_a_wrong_model_or_file(tmp_path):
    x, y = _regression(n=20)
    model = nn.Linear(3, 1)
    fit(model, nn.MSELoss(), optim.SGD(model.parameters(), lr=0.01), (x, y), epochs=1, checkpoint_dir=tmp_path)
    other = nn.Linear(3, 2)
    with pytest.raises(CheckpointError, match=r"(?s)does not fit this model.*weight"):
        fit(other, nn.MSELoss(), optim.SGD(other.parameters(), lr=0.01), (x, y), epochs=2, resume_from=tmp_path)
    with pytest.raises(CheckpointError, match=r"optimizer state does not fit this optimizer.*different optimizer"):
        fit(model, nn.MSELoss(), optim.Adam(model.parameters()), (x, y), epochs=2, resume_from=tmp_path)
    ds.save({"model": model.state_dict()}, tmp_path / "weights.ckpt")
    with pytest.raises(CheckpointError, match="not a training checkpoint"):
        fit(model, nn.MSELoss(), optim.SGD(model.parameters(), lr=0.01), (x, y), resume_from=tmp_path / "weights.ckpt")


def test_resuming_on_other_data_or_batches_warns_and_on_the_same_does_not(tmp_path):
    import warnings

    from downslope.train.resume import hold_checkpoint_dir, release_checkpoint_dir

    x, y = _regression(n=40)
    model = nn.Linear(3, 1)
    opt = optim.SGD(model.parameters(), lr=0.01)
    fit(model, nn.MSELoss(), opt, (x, y), epochs=1, batch_size=8, checkpoint_dir=tmp_path, verbose=0)

    def resumed(data, **kw):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            fit(model, nn.MSELoss(), opt, data, epochs=2, resume_from=tmp_path, verbose=0, **{"batch_size": 8, **kw})
        return " ".join(str(w.message) for w in caught if "resume_from" in str(w.message))

    assert resumed((x, y)) == ""
    assert "other values" in resumed((x * 10, y * 10))
    assert "40 training samples, now 20" in resumed((x[:20], y[:20]))
    assert "batch_size 8, now 7" in resumed((x, y), batch_size=7)

    held = hold_checkpoint_dir(tmp_path)  # as another process training into the directory would
    try:
        with pytest.raises(ds.DownslopeError, match="another process is training into this directory"):
            fit(model, nn.MSELoss(), opt, (x, y), epochs=1, checkpoint_dir=tmp_path, verbose=0)
    finally:
        release_checkpoint_dir(held)
    stale = tmp_path / ".last.ckpt.k9x2.tmp"  # what a writer killed mid-write leaves
    stale.write_bytes(b"half a checkpoint")
    fit(model, nn.MSELoss(), opt, (x, y), epochs=1, checkpoint_dir=tmp_path, verbose=0)
    assert not stale.exists() and (tmp_path / "last.ckpt").exists()


def test_resuming_a_run_that_a_stopping_rule_ended_keeps_its_stop_kind(tmp_path):
    x, y = _regression(n=20)
    model = nn.Linear(3, 1)
    opt = optim.SGD(model.parameters(), lr=0.01)
    first = fit(model, nn.MSELoss(), opt, (x, y), epochs=5, callbacks=[StopAtLoss(1e9)], checkpoint_dir=tmp_path,
                verbose=0)  # fmt: skip
    assert len(first) == 1 and first.stop_kind == "target"
    again = fit(model, nn.MSELoss(), opt, (x, y), epochs=5, resume_from=tmp_path, verbose=0)
    assert len(again) == 1 and again.stop_reason == first.stop_reason and again.stop_kind == "target"


def test_model_checkpoint_keeps_best_and_last_and_last_resumes_bit_identically(tmp_path):
    x, y = _regression(n=40, noise=1.0)
    xv, yv = _regression(n=20, noise=1.0, seed=5)
    kwargs = dict(batch_size=8, metrics=["mae"])

    model, opt, sched = _resume_setup()
    full = fit(model, nn.MSELoss(), opt, (x, y), (xv, yv), epochs=6, scheduler=sched, **kwargs)
    expected = model.state_dict()

    model, opt, sched = _resume_setup()
    best = ModelCheckpoint(tmp_path / "best.ckpt", save_best_only=True)
    last = ModelCheckpoint(tmp_path / "last.ckpt")
    part = fit(model, nn.MSELoss(), opt, (x, y), (xv, yv), epochs=3, scheduler=sched, callbacks=[best, last], **kwargs)
    assert ds.load(tmp_path / "last.ckpt")["epoch"] == 3
    assert ds.load(tmp_path / "best.ckpt")["epoch"] == part.best_epoch == best.best_epoch + 1
    np.testing.assert_array_equal(
        ds.load(tmp_path / "best.ckpt")["history"]["history"]["val_loss"], part["val_loss"][: part.best_epoch]
    )

    ds.manual_seed(7)  # a different start: everything must come from the checkpoint
    model = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Dropout(0.2), nn.Linear(8, 1))
    opt = optim.Adam(model.parameters(), lr=0.5)
    sched = optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    resumed = fit(
        model, nn.MSELoss(), opt, (x, y), (xv, yv), epochs=6, scheduler=sched,
        resume_from=tmp_path / "last.ckpt", **kwargs,
    )  # fmt: skip
    for key, value in expected.items():
        np.testing.assert_array_equal(model.state_dict()[key], value)
    for key in ("loss", "val_loss", "mae", "lr"):
        assert resumed[key] == full[key], key


def test_a_crash_while_saving_leaves_the_previous_checkpoint_intact(tmp_path, monkeypatch):
    x, y = _regression(n=20)
    model = nn.Linear(3, 1)
    real_replace, calls = os.replace, []

    def crash_on_second_save(src, dst):  # type: ignore[no-untyped-def]
        calls.append(dst)
        if len(calls) == 2:
            raise OSError("disk full (simulated)")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", crash_on_second_save)
    with pytest.raises(CheckpointError, match="cannot write .*last.ckpt .disk full"):
        fit(
            model, nn.MSELoss(), optim.SGD(model.parameters(), lr=0.01), (x, y),
            epochs=3, callbacks=[ModelCheckpoint(tmp_path / "last.ckpt")], verbose=0,
        )  # fmt: skip
    monkeypatch.undo()
    assert ds.load(tmp_path / "last.ckpt")["epoch"] == 1  # the first epoch's file, whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt"]  # no temporary file left


# ---------------------------------------------------------------------- bad input
def test_bad_arguments_are_explained():
    x, y = _regression(n=10)
    model = nn.Linear(3, 1)
    opt = optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ConfigError, match="epochs must be a positive integer, got 0"):
        fit(model, nn.MSELoss(), opt, (x, y), epochs=0)
    with pytest.raises(ConfigError, match="either validation"):
        fit(model, nn.MSELoss(), opt, (x, y), (x, y), validation_split=0.2)
    with pytest.raises(ConfigError, match="unknown metric 'acuracy'"):
        fit(model, nn.MSELoss(), opt, (x, y), metrics=["acuracy"])
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        fit(model, nn.MSELoss(), opt, (x, y), batch_size=0)
    with pytest.raises(ConfigError, match="expected a DataLoader, a Dataset or a tuple"):
        fit(model, nn.MSELoss(), opt, x)
    loader = ds.data.DataLoader((x, y), batch_size=2)
    with pytest.raises(ConfigError, match="give batch_size to the DataLoader"):
        fit(model, nn.MSELoss(), opt, loader, batch_size=4)


def test_fit_is_reachable_from_the_top_level():
    assert ds.fit is fit and isinstance(History(), History)


# ---------------------------------------------------------------------- schedulers
def _lr_sequence(make_scheduler, steps, metrics=None):
    """The lr before each step of a standalone scheduler over a throwaway optimizer."""
    opt = optim.SGD([ds.zeros(1, requires_grad=True)], lr=0.1)
    sched = make_scheduler(opt)
    seq = []
    for i in range(steps):
        seq.append(opt.param_groups[0]["lr"])
        sched.step(metrics[i]) if metrics is not None else sched.step()
    return seq


def test_reduce_lr_on_plateau_is_given_the_validation_loss():
    x, y = _regression(n=64, noise=0.5)
    xv, yv = _regression(n=32, noise=0.5, seed=4)
    ds.manual_seed(0)
    model = nn.Linear(3, 1)
    opt = optim.SGD(model.parameters(), lr=0.1)
    make = lambda o: optim.lr_scheduler.ReduceLROnPlateau(o, patience=1, factor=0.5)  # noqa: E731
    history = fit(model, nn.MSELoss(), opt, (x, y), (xv, yv), epochs=25, batch_size=16, scheduler=make(opt), seed=0)
    assert history["lr"] == _lr_sequence(make, 25, history["val_loss"])
    assert min(history["lr"]) < 0.1  # it did reduce


def test_one_cycle_steps_per_batch():
    x, y = _regression(n=40)
    model = nn.Linear(3, 1)
    opt = optim.SGD(model.parameters(), lr=0.1)
    make = lambda o: optim.lr_scheduler.OneCycleLR(o, max_lr=0.1, epochs=3, steps_per_epoch=5)  # noqa: E731
    monitor = ds.train.LearningRateMonitor("step")
    fit(model, nn.MSELoss(), opt, (x, y), epochs=3, batch_size=8, scheduler=make(opt), callbacks=[monitor])
    assert [r[0] for r in monitor.lrs] == _lr_sequence(make, 15)


def test_a_second_interrupt_aborts_at_once_and_restores_the_handlers(tmp_path):
    class InterruptTwice(Callback):
        def on_batch_end(self, batch, logs=None):
            if self.trainer.epoch == 1 and batch in (0, 1):
                os.kill(os.getpid(), signal.SIGINT)

    x, y = _regression(n=40)
    model = nn.Linear(3, 1)
    with pytest.raises(KeyboardInterrupt, match="second SIGINT"):
        fit(
            model, nn.MSELoss(), optim.SGD(model.parameters(), lr=0.01), (x, y),
            epochs=5, batch_size=8, callbacks=[InterruptTwice()], checkpoint_dir=tmp_path,
        )  # fmt: skip
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    assert ds.load(tmp_path / "last.ckpt")["epoch"] == 1  # the last finished epoch's checkpoint is intact


def test_sum_reduced_losses_are_logged_per_sample():
    x, y = _regression(n=30)
    model = nn.Linear(3, 1)
    mean_logs = evaluate(model, nn.MSELoss(), (x, y), batch_size=7)
    sum_logs = evaluate(model, nn.MSELoss(reduction="sum"), (x, y), batch_size=7)
    assert sum_logs["loss"] == pytest.approx(mean_logs["loss"], rel=1e-5)


def test_an_error_inside_a_step_says_where_it_happened():
    x, y = _regression(n=20)
    model = nn.Linear(3, 2)  # two outputs for one target column: the loss refuses
    with pytest.raises(ValueError) as info:
        fit(model, nn.MSELoss(), optim.SGD(model.parameters(), lr=0.1), (x, y), epochs=1, batch_size=8)
    assert "(in fit: epoch 1, batch 1; inputs (8, 3), targets (8, 1))" in getattr(info.value, "__notes__", [""])[0]


def test_a_scheduler_says_itself_whether_it_steps_per_batch_or_needs_a_metric():
    """fit asks the scheduler (steps_per_batch, needs_metric), so a user's own scheduler class works
    like the built-in ones without a name fit has to know."""

    class Counting(optim.lr_scheduler.LRScheduler):
        steps_per_batch = True

        def get_lr(self):
            return [group["lr"] for group in self.optimizer.param_groups]

    class Watching(optim.lr_scheduler.LRScheduler):
        needs_metric = True

        def __init__(self, optimizer):
            self.seen = []
            super().__init__(optimizer)

        def step(self, metric=None):
            if metric is not None:
                self.seen.append(metric)
            super().step()

        def get_lr(self):
            return [group["lr"] for group in self.optimizer.param_groups]

    x, y = np.ones((8, 1), np.float32), np.ones((8, 1), np.float32)
    model = nn.Linear(1, 1)
    opt = optim.SGD(model.parameters(), lr=0.01)
    per_batch = Counting(opt)
    fit(model, nn.MSELoss(), opt, (x, y), epochs=3, batch_size=2, scheduler=per_batch, verbose=0)
    assert per_batch.last_epoch == 3 * 4  # 4 batches a epoch, stepped after each
    watching = Watching(opt)
    history = fit(model, nn.MSELoss(), opt, (x, y), epochs=3, batch_size=2, scheduler=watching, verbose=0)
    assert watching.seen == pytest.approx(history["loss"])


@pytest.mark.parametrize(
    ("make_callback", "lr", "kind"),
    [
        (lambda: None, 0.01, "max_epochs"),
        (lambda: EarlyStopping(monitor="loss", patience=1, min_delta=1e9), 0.01, "early_stopping"),
        (lambda: StopAtLoss(1e9), 0.01, "target"),
        (lambda: DivergenceGuard(), 1e6, "diverged"),
    ],
)
def test_history_records_why_training_stopped_as_a_kind(make_callback, lr, kind):
    ds.manual_seed(0)
    x = np.linspace(-1, 1, 32, dtype=np.float32)[:, None]
    model = nn.Linear(1, 1)
    opt = optim.SGD(model.parameters(), lr=lr)
    callback = make_callback()
    history = fit(
        model,
        nn.MSELoss(),
        opt,
        (x, 3 * x),
        epochs=5,
        batch_size=4,
        callbacks=[callback] if callback else [],
        verbose=0,
    )
    assert history.stop_kind == kind
    assert history.diverged == (kind == "diverged")
    assert (history.stop_reason == "reached the epoch limit (5)") == (kind == "max_epochs")
    restored = History()
    restored.load_state_dict(history.state_dict())
    assert restored.stop_kind == kind


def test_a_user_callback_names_a_stop_kind_from_the_list():
    class Stopper(Callback):
        def on_epoch_end(self, epoch, logs=None):
            self.stop("enough", kind="no such kind")

    x = np.ones((4, 1), np.float32)
    model = nn.Linear(1, 1)
    with pytest.raises(ValueError, match="kind must be one of max_epochs, early_stopping"):
        fit(
            model,
            nn.MSELoss(),
            optim.SGD(model.parameters(), lr=0.1),
            (x, x),
            epochs=2,
            callbacks=[Stopper()],
            verbose=0,
        )


def test_a_last_batch_of_one_sample_is_dropped_only_for_a_model_with_batch_norm_1d():
    """BatchNorm1d cannot train on one sample (PyTorch refuses it too); with 9 samples in batches of 4,
    fit's loader drops the ninth (another one each shuffled epoch) instead of failing in the last batch."""

    x, y = np.zeros((9, 3), np.float32), np.zeros((9, 1), np.float32)
    for model, expected in (
        (nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 1)), 2),
        (nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 1)), 3),
    ):
        counter = CountUpdates()
        fit(model, nn.MSELoss(), optim.SGD(model.parameters(), lr=0.1), (x, y), batch_size=4, epochs=2,
            callbacks=[counter], verbose=0)  # fmt: skip
        assert counter.per_epoch == [expected, expected]
    bn = nn.BatchNorm1d(4)
    with pytest.raises(ds.DownslopeError, match="drop_last=True"):
        bn(ds.zeros(1, 4))


def test_keras_spellings_validation_data_and_iterating_the_history():
    x, y = _regression(n=20)
    model = nn.Linear(3, 1)
    history = fit(model, nn.MSELoss(), optim.SGD(model.parameters(), lr=0.01), (x, y), validation_data=(x, y),
                  epochs=2, verbose=0)  # fmt: skip
    assert list(history) == history.keys() and "val_loss" in dict(history.as_dict())
    assert len(history["val_loss"]) == 2
    with pytest.raises(ConfigError, match="validation_data"):
        fit(model, nn.MSELoss(), optim.SGD(model.parameters(), lr=0.01), (x, y), (x, y), validation_data=(x, y))


# ---------------------------------------------------------------------- what Keras users do
def _line(n=40):
    x = np.linspace(-1, 1, n, dtype=np.float32).reshape(-1, 1)
    return x, 3 * x + 1


def test_a_nan_loss_with_reduce_on_plateau_stops_cleanly_and_restores():
    x, y = _line()
    model = nn.Linear(1, 1)
    opt = optim.SGD(model.parameters(), lr=1e6)  # diverges at once
    sched = optim.lr_scheduler.ReduceLROnPlateau(opt)
    stopper = ds.train.EarlyStopping(patience=10, restore_best_weights=True)
    history = ds.fit(model, nn.MSELoss(), opt, (x, y), validation_split=0.25, epochs=5, scheduler=sched,
                     callbacks=[stopper], verbose=0, seed=0)  # fmt: skip
    assert history.stop_kind == "diverged"
    assert np.isfinite(model.weight.detach().numpy()).all()


def test_validation_split_with_a_dataloader_is_refused():
    x, y = _line()
    model = nn.Linear(1, 1)
    loader = ds.utils.data.DataLoader(ds.utils.data.TensorDataset(ds.tensor(x), ds.tensor(y)), batch_size=8)
    with pytest.raises(ConfigError, match="validation_split cannot hold rows out"):
        ds.fit(model, nn.MSELoss(), optim.SGD(model.parameters(), lr=0.1), loader, validation_split=0.2, verbose=0)


def test_stops_asked_by_callbacks_or_by_the_model_flag_are_reported():
    x, y = _line()

    class StopAfterTwo(ds.train.Callback):
        def __init__(self, how):  # type: ignore[no-untyped-def]
            self.how = how

        def on_epoch_end(self, epoch, logs=None):  # type: ignore[no-untyped-def]
            if epoch == 1:
                if self.how == "trainer":
                    self.trainer.stop_training = True
                else:
                    self.trainer.model.stop_training = True  # Keras' self.model.stop_training

    for how in ("trainer", "model"):
        model = nn.Linear(1, 1)
        history = ds.fit(model, "mse", optim.SGD(model.parameters(), lr=0.1), (x, y), epochs=10,
                         callbacks=[StopAfterTwo(how)], verbose=0, seed=0)  # fmt: skip
        assert len(history) == 2 and history.stop_kind == "callback" and history.stop_reason


def test_validation_split_without_shuffle_holds_out_the_last_rows_in_order():
    from downslope.train.inputs import split_validation

    x = np.arange(20, dtype=np.float32).reshape(-1, 1)
    train, val = split_validation(ds.utils.data.TensorDataset(ds.tensor(x), ds.tensor(x)), 0.25, seed=0, shuffle=False)
    assert [float(train[i][0][0]) for i in range(len(train))] == list(range(15))
    assert [float(val[i][0][0]) for i in range(len(val))] == list(range(15, 20))


def test_losses_by_keras_name():
    x, y = _line()
    model = nn.Linear(1, 1)
    history = ds.fit(model, "mean_squared_error", optim.SGD(model.parameters(), lr=0.1), (x, y), epochs=3, verbose=0)
    assert history["loss"][-1] < history["loss"][0]
    with pytest.raises(ConfigError, match="unknown loss 'msee'"):
        ds.fit(model, "msee", optim.SGD(model.parameters(), lr=0.1), (x, y), verbose=0)


def test_a_stop_agreed_from_another_ranks_interrupt_resumes(tmp_path):
    # Under MPI, the rank that writes the checkpoint learns of another rank's SIGTERM through the
    # ranks' agreement, as a stop of kind 'interrupted' its own signal handler never saw.
    class AgreedInterrupt(Callback):
        def on_epoch_end(self, epoch, logs=None):  # type: ignore[no-untyped-def]
            if epoch == 1:
                self.stop("interrupted by SIGTERM: finished epoch 2 and stopped (on rank 1)", "interrupted")

    x, y = _regression(n=40)
    model, opt, sched = _resume_setup()
    part = fit(model, nn.MSELoss(), opt, (x, y), epochs=5, batch_size=8, scheduler=sched,
               callbacks=[AgreedInterrupt()], checkpoint_dir=tmp_path, verbose=0)  # fmt: skip
    assert len(part) == 2 and part.stop_kind == "interrupted"
    model, opt, sched = _resume_setup()
    resumed = fit(model, nn.MSELoss(), opt, (x, y), epochs=5, batch_size=8, scheduler=sched,
                  resume_from=tmp_path, verbose=0)  # fmt: skip
    assert len(resumed) == 5  # trained on, instead of stopping again at once


def test_a_dataloader_takes_batch_size_none_as_not_given():
    """batch_size=None with a DataLoader means "the loader's own" (its batches of 2 here), as Keras' fit
    takes it with a dataset; another number is still refused."""
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(6, 2)).astype(np.float32), rng.normal(size=(6, 1)).astype(np.float32)
    ds.manual_seed(0)
    model = nn.Linear(2, 1)
    loader = ds.data.DataLoader((x, y), batch_size=2)
    seen = []
    model.register_forward_hook(lambda m, args, out: seen.append(out.shape[0]))
    fit(model, nn.MSELoss(), optim.SGD(model.parameters(), lr=0.01), loader, batch_size=None, epochs=1, verbose=0)
    assert seen[:3] == [2, 2, 2]
