import csv
import math
import os
import warnings

import pytest

from downslope.errors import ConfigError, DivergenceError
from downslope.serialization import load
from downslope.train.callbacks import (
    Callback,
    CallbackList,
    CSVLogger,
    DivergenceGuard,
    EarlyStopping,
    LearningRateMonitor,
    MaxTime,
    ModelCheckpoint,
    StopAtLoss,
    StopAtTarget,
    TerminateOnNaN,
    TrainingState,
)

from ._scripted import WeightsByEpoch, losses, run


# ---------------------------------------------------------------------- base
def test_base_hooks_are_no_ops_and_stop_sets_flag_and_first_reason():
    cb = Callback()
    state = TrainingState()
    cb.set_trainer(state)
    for hook in ("on_train_begin", "on_train_end"):
        getattr(cb, hook)({})
    for hook in ("on_epoch_begin", "on_epoch_end", "on_batch_begin", "on_batch_end"):
        getattr(cb, hook)(0, {})
    assert not state.stop_training and cb.state_dict() == {}
    cb.stop("first")
    cb.stop("second")
    assert state.stop_training and state.stop_reason == "first"


def test_callback_list_refuses_non_callbacks():
    with pytest.raises(TypeError, match="Callback instances"):
        CallbackList([lambda: None])


# ---------------------------------------------------------------------- EarlyStopping
@pytest.mark.parametrize(
    "patience, stop_index",
    # best 0.8 at index 1; index 2, 3, 4 do not improve; index 5 would.
    [(0, 2), (1, 2), (2, 3), (3, 4), (4, None)],
)
def test_early_stopping_fires_after_patience_epochs_without_improvement(patience, stop_index):
    script = losses(1.0, 0.8, 0.9, 0.85, 0.95, 0.7, key="val_loss")
    state, ran = run([EarlyStopping(patience=patience)], script)
    if stop_index is None:
        assert not state.stop_training and ran == len(script)
    else:
        assert state.stop_training and ran == stop_index + 1
        assert "val_loss did not improve" in state.stop_reason and "best 0.8 at epoch 2" in state.stop_reason


def test_early_stopping_never_stops_at_the_first_epoch():
    state, ran = run([EarlyStopping(monitor="loss", patience=0, baseline=0.1)], losses(1.0, 0.9))
    assert ran == 2


def test_min_delta_counts_small_gains_as_no_improvement():
    script = losses(1.0, 0.95, 0.93, 0.92, key="val_loss")
    assert run([EarlyStopping(min_delta=0.1, patience=2)], script)[1] == 3
    assert run([EarlyStopping(min_delta=0.01, patience=2)], script)[1] == 4


def test_baseline_keeps_the_wait_running_until_beaten():
    script = losses(0.9, 0.8, 0.85, 0.84, key="val_loss")
    assert run([EarlyStopping(patience=2, baseline=0.5)], script)[1] == 3
    assert run([EarlyStopping(patience=2)], script)[1] == 4


def test_mode_auto_maximizes_accuracy():
    script = [{"val_accuracy": a} for a in (0.5, 0.7, 0.6, 0.65, 0.69)]
    stopper = EarlyStopping(monitor="val_accuracy", patience=2)
    assert stopper.mode == "max"
    assert run([stopper], script)[1] == 4 and stopper.best == 0.7


def test_mode_auto_takes_the_direction_from_the_metrics_fit_computes():
    import numpy as np

    import downslope as ds
    from downslope import nn, optim
    from downslope.train import Metric

    def hits(preds, target):
        return float(np.mean(np.abs(np.asarray(preds) - np.asarray(target)) < 0.5))

    def my_accuracy(preds, target):  # a plain function whose name says larger is better
        return hits(preds, target)

    x = np.linspace(-1, 1, 16, dtype=np.float32).reshape(-1, 1)

    def train(metric, monitor):  # type: ignore[no-untyped-def]
        stopper = EarlyStopping(monitor=monitor, patience=100)
        target = StopAtTarget(monitor, 2.0)
        # no trainer yet: only the name speaks (History's rule: 'hits' says nothing, an accuracy's ending does)
        assert stopper.mode == target.mode == ("max" if monitor.endswith("accuracy") else "min")
        model = nn.Linear(1, 1)
        history = ds.fit(model, nn.MSELoss(), optim.SGD(model.parameters(), lr=0.1), (x, 2 * x), (x, 2 * x),
                         epochs=2, metrics=[metric], callbacks=[stopper, target], verbose=0, seed=0)  # fmt: skip
        return stopper, target, history

    for metric, monitor in ((Metric(hits, greater_is_better=True), "val_hits"), (my_accuracy, "val_my_accuracy")):
        stopper, target, history = train(metric, monitor)
        saver = ModelCheckpoint(os.devnull, monitor=monitor, save_best_only=True)
        saver.set_trainer(TrainingState(metrics=[ds.train.as_metric(metric)]))
        saver.on_train_begin()
        assert stopper.mode == target.mode == saver.mode == "max"
        assert history.best(monitor)[1] == max(history[monitor])
    # a plain function whose name does not say which way is better: asked for, not guessed (as Keras 3)
    with pytest.raises(ds.ConfigError, match="cannot tell whether 'val_hits'.*mode='max'"):
        train(hits, "val_hits")


def test_start_from_epoch_ignores_warm_up():
    script = losses(0.1, 5.0, 4.0, 4.5, 4.6, key="val_loss")
    state, ran = run([EarlyStopping(patience=2, start_from_epoch=1)], script)
    assert ran == 5 and state.stop_training  # best 4.0 at index 2, stop at index 4


@pytest.mark.parametrize("script, best", [([1.0, 0.5, 0.7, 0.9], 1), ([1.0, 0.6, 0.3, 0.4], 2)])
def test_restore_best_weights_on_stop_and_at_natural_end(script, best):
    model = WeightsByEpoch()
    stopper = EarlyStopping(patience=2, restore_best_weights=True)
    run([stopper], losses(*script, key="val_loss"), model=model)
    assert stopper.best_epoch == best and model.w[0] == best


def test_falls_back_to_training_loss_with_a_warning():
    stopper = EarlyStopping(patience=1)
    with pytest.warns(UserWarning, match="'val_loss' is not available.*'loss'"):
        state, ran = run([stopper], losses(1.0, 1.1))
    assert state.stop_training and ran == 2


def test_callbacks_reset_in_on_train_begin():
    stopper = EarlyStopping(patience=1, monitor="loss")
    assert run([stopper], losses(1.0, 2.0))[1] == 2
    assert run([stopper], losses(3.0, 2.0, 1.0))[1] == 3  # the old best 1.0 must be forgotten


def test_early_stopping_state_dict_resumes_identically():
    script = losses(1.0, 0.8, 0.9, 0.85, 0.95, key="val_loss")
    first = EarlyStopping(patience=3)
    run([first], script[:3])
    second = EarlyStopping(patience=3)
    second.on_train_begin()
    second.load_state_dict(first.state_dict())
    state = TrainingState()
    second.set_trainer(state)
    second.on_epoch_end(3, dict(script[3]))
    assert not state.stop_training
    second.on_epoch_end(4, dict(script[4]))
    assert state.stop_training


def test_bad_settings_are_explained():
    with pytest.raises(ConfigError, match="mode must be"):
        EarlyStopping(mode="smallest")
    with pytest.raises(ConfigError, match="patience"):
        EarlyStopping(patience=-1)


# ---------------------------------------------------------------------- targets, time, NaN
def test_stop_at_loss_fires_at_the_first_epoch_reaching_the_target():
    state, ran = run([StopAtLoss(0.1)], losses(0.5, 0.2, 0.11, 0.1, 0.05))
    assert ran == 4 and "loss 0.1 <= 0.1 at epoch 4" in state.stop_reason


def test_stop_at_target_on_accuracy():
    state, ran = run([StopAtTarget("val_accuracy", 0.95)], [{"val_accuracy": a} for a in (0.9, 0.94, 0.96)])
    assert ran == 3 and state.stop_training


def test_max_time_fires_on_the_epoch_that_crosses_the_limit():
    ticks = iter([0.0, 3.0, 6.0, 9.0, 12.0, 15.0])
    state, ran = run([MaxTime(10.0, clock=lambda: next(ticks))], losses(1, 1, 1, 1, 1))
    assert ran == 4 and "12 s >= 10 s" in state.stop_reason


def test_terminate_on_nan_stops_at_the_bad_batch():
    batches = [[{"loss": 1.0}] * 3, [{"loss": 1.0}, {"loss": math.inf}, {"loss": 1.0}]]
    state, ran = run([TerminateOnNaN()], losses(1.0, 1.0, 1.0), batch_logs=batches + [[]])
    assert ran == 2 and state.stop_reason == "loss became inf at batch 2"


# ---------------------------------------------------------------------- divergence
def test_divergence_guard_names_cause_and_hint_at_the_right_epoch():
    script = [{"loss": v, "lr": 1.0} for v in (0.41, 0.5, 3.0, 30.0, 3e8, 1e9)]
    state, ran = run([DivergenceGuard(factor=100)], script)
    assert ran == 5
    assert state.stop_reason == (
        "diverged: loss rose from 0.41 to 3e+08 in 4 epochs at lr=1; the step size is probably too large, "
        "try lr=0.07 or lower (an estimate from the loss growing about 164-fold per epoch)"
    )
    # (3e8 / 0.41) ** (1 / 4) = 164 per epoch: overshooting by sqrt(164) = 12.8 means lr * curvature = 13.8,
    # and lr / 13.8 = 0.072, rounded down
    rate = (3e8 / 0.41) ** (1 / 4)
    assert math.floor(100 / (1 + math.sqrt(rate))) / 100 == 0.07


def test_divergence_guard_ignores_a_bounce_that_stays_below_where_the_loss_started():
    # mini-batch noise near a minimum: 1 -> 0.0023 -> 0.246 rose 100-fold, but stays 4x below the start
    state, ran = run([DivergenceGuard(factor=100)], losses(1.0, 0.05, 0.0023, 0.246, 0.01, 0.3))
    assert not state.stop_training and ran == 6
    # the same rise that climbs back above the start is a divergence
    state, ran = run([DivergenceGuard(factor=100)], losses(1.0, 0.05, 0.0023, 0.246, 1.5, 0.3))
    assert ran == 5 and state.stop_kind == "diverged"
    assert state.stop_reason.startswith("diverged: loss rose from 0.0023 to 1.5 in 2 epochs")
    # the start is the first batch's loss (before any update) when batch losses are seen
    batches = [[{"loss": 2.0}, {"loss": 1.0}], [{"loss": 0.002}], [{"loss": 0.5}], [{"loss": 2.5}]]
    state, ran = run([DivergenceGuard(factor=100)], losses(1.5, 0.002, 0.5, 2.5), batch_logs=batches)
    assert ran == 4 and state.stop_kind == "diverged"


def test_divergence_guard_does_not_fire_on_noise_below_the_factor():
    script = losses(1.0, 0.5, 4.0, 0.3, 20.0, 0.2)
    state, ran = run([DivergenceGuard(factor=100)], script)
    assert not state.stop_training and ran == 6


def test_divergence_guard_stops_on_a_non_finite_batch_and_reads_lr_from_the_optimizer():
    class Opt:
        param_groups = [{"lr": 0.5}]

    batches = [[{"loss": 1.0}], [{"loss": 2.0}, {"loss": math.nan}, {"loss": 1.0}], []]
    state, ran = run([DivergenceGuard()], losses(1.0, 1.0, 1.0), batch_logs=batches, optimizer=Opt())
    assert ran == 2
    assert "loss became nan at batch 2 of epoch 2 at lr=0.5" in state.stop_reason and "try lr=0.05" in state.stop_reason


def test_divergence_guard_counts_the_loss_before_the_first_update():
    # the first batch's loss is 2.3; the first epoch averages 5000 and later epochs come down again
    batches = [[{"loss": 2.3}, {"loss": 9000.0}], [{"loss": 900.0}], [{"loss": 20.0}]]
    state, ran = run([DivergenceGuard(factor=100)], losses(5000.0, 900.0, 20.0), batch_logs=batches)
    assert ran == 1 and state.stop_reason.startswith("diverged: loss rose from 2.3 to 5e+03 in 1 epoch")
    assert state.stop_kind == "diverged"


def test_divergence_guard_is_not_fooled_by_an_easy_first_batch():
    # a target that is 99% zeros: the first batch is all zeros (loss 0.003), most batches stay there,
    # a few hold a large value; the epoch's loss (1.0) is 300 times the first batch's with nothing wrong
    easy = [{"loss": 0.003}] + [{"loss": 30.0 if b % 30 == 0 else 0.004} for b in range(1, 50)]
    batches = [easy, easy[1:], [{"loss": 1e4}] * 49]
    guard = DivergenceGuard(factor=100)
    state, ran = run([guard], [{"loss": 1.0, "lr": 1e-5}, {"loss": 1.1, "lr": 1e-5}, {"loss": 1e4}], batches)
    assert ran == 3 and state.stop_kind == "diverged"  # a real divergence later is still caught
    assert state.stop_reason.startswith("diverged: loss rose from 1 to 1e+04 in 2 epochs")
    state, ran = run([DivergenceGuard(factor=100)], [{"loss": 1.0, "lr": 1e-5}] * 3, [easy, easy[1:], easy[1:]])
    assert not state.stop_training and ran == 3


def test_fit_with_a_tiny_step_on_a_zero_inflated_target_does_not_diverge():
    import numpy as np

    import downslope as ds
    from downslope import nn, optim

    rng = np.random.default_rng(0)
    X = rng.normal(size=(1600, 4)).astype(np.float32)
    y = np.where(rng.random(1600) < 0.99, 0.0, 5 + 10 * np.abs(X[:, :1].sum(1))).reshape(-1, 1)
    y[:32] = 0.0  # the first batch (unshuffled) holds only zeros
    y = ((y - y.mean()) / y.std()).astype(np.float32)
    model = nn.Linear(4, 1)
    with ds.no_grad():  # a model that starts near the zeros' value, as a trained-looking MLP can
        model.weight.zero_()
        model.bias.fill_(float(y[0, 0]) + 0.05)
    history = ds.fit(model, nn.MSELoss(), optim.Adam(model.parameters(), lr=1e-5), (X, y), epochs=3, batch_size=32,
                     shuffle=False, callbacks=[DivergenceGuard()], verbose=0)  # fmt: skip
    assert history.stop_kind != "diverged", history.stop_reason
    assert len(history) == 3


def test_divergence_guard_confirms_a_loss_multiplying_inside_an_epoch():
    # a step too large: each batch's loss 4x the one before from the first batch on (as the raw house sizes
    # under SGD lr=3e-7); epoch 2's mean is 10^4.5 times the first batch's, most of its batches below that
    first = 1.0
    seen = [first * 4.0**k for k in range(10)]
    batches = [[{"loss": v} for v in seen[:5]], [{"loss": v} for v in seen[5:]]]
    epoch_losses = [sum(seen[:5]) / 5, sum(seen[5:]) / 5]
    guard = DivergenceGuard(factor=math.inf, initial_factor=1e4)
    state, ran = run([guard], [{"loss": v, "lr": 1e-7} for v in epoch_losses], batches)
    limit = 1e4 * first
    assert epoch_losses[0] < limit < epoch_losses[1]
    assert sum(v > limit for v in seen[5:]) < 0.9 * 5  # the old 9-in-10 rule left it unconfirmed
    assert ran == 2 and state.stop_kind == "diverged"
    assert state.stop_reason.startswith(f"diverged: loss rose from {first:g} before training to {epoch_losses[1]:.3g}")


def test_divergence_guard_is_not_fooled_by_a_run_of_ever_harder_batches():
    # a target that is mostly zeros: the typical batch stays at the first one's loss, and three ever harder
    # batches in a row (each at least twice the one before) lift the epoch's mean 100-fold: no divergence
    easy = [{"loss": 0.0025}] * 20
    climb = [{"loss": 0.3}, {"loss": 1.2}, {"loss": 11.0}]
    epoch = easy[:1] + easy[:10] + climb + easy[:6] + [{"loss": 30.0}] * 3
    mean = sum(b["loss"] for b in epoch) / len(epoch)
    assert mean > 100 * 0.0025
    state, ran = run([DivergenceGuard(factor=100)], [{"loss": mean, "lr": 1e-5}] * 2, [epoch, epoch[1:]])
    assert not state.stop_training and ran == 2


def test_divergence_guard_names_a_reference_that_is_no_loss_before_training():
    # an easy first batch: the first epoch's loss becomes the reference, and a later message says so
    easy = [{"loss": 0.003}] + [{"loss": 30.0 if b % 30 == 0 else 0.004} for b in range(1, 50)]
    batches = [easy, [{"loss": 1e6}] * 49]
    state, ran = run([DivergenceGuard(factor=100, initial_factor=1e4)], losses(1.0, 1e6), batches)
    assert ran == 2 and state.stop_kind == "diverged"
    assert state.stop_reason.startswith("diverged: loss rose from 1 in epoch 1 to 1e+06 by epoch 2")
    assert "before training" not in state.stop_reason


def test_divergence_guard_keeps_the_loss_before_training_and_its_reference_epoch_across_a_resume():
    easy = [{"loss": 0.003}] + [{"loss": 30.0 if b % 30 == 0 else 0.004} for b in range(1, 50)]
    first = DivergenceGuard(factor=100)
    run([first], losses(1.0), [easy])
    assert (first.before_training, first.initial, first.initial_epoch) == (0.003, 1.0, 0)
    second = DivergenceGuard(factor=100)
    second.load_state_dict(first.state_dict())
    assert (second.before_training, second.initial, second.initial_epoch) == (0.003, 1.0, 0)


def test_divergence_guard_can_raise():
    with pytest.raises(DivergenceError, match="became inf at epoch 2"):
        run([DivergenceGuard(raise_error=True)], losses(1.0, math.inf))


# ---------------------------------------------------------------------- files
def test_model_checkpoint_best_only_keeps_the_best_epoch(tmp_path):
    model = WeightsByEpoch()
    path = tmp_path / "best.ckpt"
    saver = ModelCheckpoint(path, save_best_only=True)
    run([saver], losses(1.0, 0.4, 0.6, 0.5, key="val_loss"), model=model)
    assert saver.best_epoch == 1
    assert load(path)["model"]["w"][0] == 1


def test_model_checkpoint_formats_names_and_every_n_epochs(tmp_path):
    saver = ModelCheckpoint(tmp_path / "e{epoch:02d}-{loss:.1f}.ckpt", every_n_epochs=2)
    run([saver], losses(1.0, 0.5, 0.25, 0.2), model=WeightsByEpoch())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e02-0.5.ckpt", "e04-0.2.ckpt"]
    bad = ModelCheckpoint(tmp_path / "{nope}.ckpt")
    with pytest.raises(ConfigError, match="cannot fill the file name"):
        run([bad], losses(1.0), model=WeightsByEpoch())


def test_model_checkpoint_creates_its_directory_as_keras_does(tmp_path):
    # ds.save refuses a missing directory (as torch.save); the callback makes it, as Keras' does
    saver = ModelCheckpoint(tmp_path / "runs" / "a" / "e{epoch}.ckpt")
    run([saver], losses(1.0, 0.5), model=WeightsByEpoch())
    assert sorted(p.name for p in (tmp_path / "runs" / "a").iterdir()) == ["e1.ckpt", "e2.ckpt"]


def test_csv_logger_writes_all_columns_and_appends(tmp_path):
    path = tmp_path / "log.csv"
    script = [{"loss": 1.0}, {"loss": 0.5, "val_loss": 0.7}]
    run([CSVLogger(path)], script)
    rows = list(csv.DictReader(open(path)))
    assert rows == [
        {"epoch": "0", "loss": "1.0", "val_loss": ""},  # Keras' 0-based epoch index
        {"epoch": "1", "loss": "0.5", "val_loss": "0.7"},
    ]
    run([CSVLogger(path, append=True)], [{"loss": 0.25, "val_loss": 0.3}])
    assert [r["loss"] for r in csv.DictReader(open(path))] == ["1.0", "0.5", "0.25"]
    assert not list(tmp_path.glob(".*tmp"))


def test_learning_rate_monitor_per_step_and_per_epoch():
    class Opt:
        param_groups = [{"lr": 0.1}, {"lr": 0.2}]

    opt = Opt()
    per_step = LearningRateMonitor("step")
    per_epoch = LearningRateMonitor()
    state, _ = run([per_step, per_epoch], losses(1.0, 1.0), batch_logs=[[{"loss": 1}] * 3] * 2, optimizer=opt)
    assert len(per_step.lrs) == 6 and per_epoch.lrs == [[0.1, 0.2], [0.1, 0.2]]
    with pytest.raises(ConfigError):
        LearningRateMonitor("batch")


def test_monitor_missing_warns_once_and_does_nothing():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        state, ran = run([EarlyStopping(monitor="val_f1")], losses(1.0, 2.0, 3.0))
    assert ran == 3 and not state.stop_training
    assert sum("'val_f1' is not in the logs" in str(w.message) for w in caught) == 1


def test_early_stopping_never_takes_a_nan_for_the_best_value():
    """Keras starts from +-inf, so a NaN epoch is never the best: [nan, 1, 2, 3] with patience 1 keeps 1
    as the best and stops at the third epoch (taking nan as best stopped at the second, best nan)."""
    stopper = EarlyStopping(monitor="loss", patience=1)
    state = TrainingState()
    stopper.set_trainer(state)
    stopper.on_train_begin()
    for epoch, loss in enumerate([float("nan"), 1.0, 2.0, 3.0]):
        stopper.on_epoch_end(epoch, {"loss": loss})
        if state.stop_training:
            break
    assert epoch == 2 and stopper.best == 1.0 and stopper.best_epoch == 1
    assert "best 1 at epoch 2" in state.stop_reason


def test_model_checkpoint_to_an_unwritable_place_says_so_in_one_line(tmp_path):
    import numpy as np

    from downslope import nn, optim
    from downslope.errors import CheckpointError
    from downslope.train import fit

    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    model = nn.Linear(2, 1)
    with pytest.raises(CheckpointError, match="cannot write .*a_file/x.ckpt"):
        fit(model, nn.MSELoss(), optim.SGD(model.parameters(), lr=0.1), (np.zeros((4, 2)), np.zeros((4, 1))),
            epochs=1, verbose=0, callbacks=[ModelCheckpoint(str(blocker / "x.ckpt"))])  # fmt: skip


def test_a_torch_style_scheduler_in_callbacks_is_sent_to_scheduler_without_its_repr():
    import numpy as np

    from downslope import nn, optim
    from downslope.errors import ArgumentTypeError
    from downslope.train import fit

    model = nn.Linear(2, 1)
    opt = optim.SGD(model.parameters(), lr=0.1)
    data = (np.zeros((4, 2), np.float32), np.zeros((4, 1), np.float32))
    plateau = optim.lr_scheduler.ReduceLROnPlateau(opt)
    with pytest.raises(ArgumentTypeError) as info:
        fit(model, nn.MSELoss(), opt, data, epochs=1, verbose=0, callbacks=[EarlyStopping(), plateau])
    message = str(info.value)
    assert message.startswith("callbacks[1] is a learning-rate scheduler (ReduceLROnPlateau), not a Callback")
    assert "pass it as fit(..., scheduler=...)" in message and "ds.train.ReduceLROnPlateau(...)" in message
    assert repr(plateau) not in message and " at 0x" not in message
    # one scheduler given as callbacks= (not in a list), and a per-batch one: each told where it goes
    one_cycle = optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=10)
    with pytest.raises(
        ArgumentTypeError, match=r"^callbacks is a learning-rate scheduler \(OneCycleLR\).*after each batch$"
    ):
        fit(model, nn.MSELoss(), opt, data, epochs=1, verbose=0, callbacks=one_cycle)


def test_something_not_a_callback_is_named_by_its_class_not_its_repr():
    from downslope.errors import ArgumentTypeError
    from downslope.train.callbacks import as_callback_list

    class Noisy:
        def __repr__(self):
            return "Noisy(" + "x" * 500 + ")"

    with pytest.raises(ArgumentTypeError) as info:
        as_callback_list([Callback(), Noisy()])
    kind = f"{Noisy.__module__}.{Noisy.__qualname__}"
    assert str(info.value) == f"callbacks: expected Callback instances, got {kind} as callbacks[1]"
    with pytest.raises(ArgumentTypeError, match=r"got one EarlyStopping; wrap it in a list: callbacks=\[EarlyStopping"):
        as_callback_list(EarlyStopping())
