"""History: as_dict, to_csv, best epoch, state_dict round trip and the error for a missing key."""

import csv
import io
import math

import pytest

from downslope.errors import StateDictError
from downslope.train import History


def _history() -> History:
    h = History()
    h.append(0, {"loss": 1.0, "lr": 0.1})
    h.append(1, {"loss": 0.5, "val_loss": 0.7, "accuracy": 0.8, "lr": 0.1})  # validation starts late
    h.append(2, {"loss": 1 / 3, "val_loss": 0.9, "accuracy": 0.85, "lr": 0.05, "note": "text is skipped"})
    return h


def test_as_dict_holds_every_column_with_none_where_an_epoch_lacks_it_and_is_a_copy():
    h = _history()
    table = h.as_dict()
    assert table == {
        "epoch": [1, 2, 3],
        "loss": [1.0, 0.5, 1 / 3],
        "lr": [0.1, 0.1, 0.05],
        "learning_rate": [0.1, 0.1, 0.05],  # Keras 3's name for the same numbers
        "val_loss": [None, 0.7, 0.9],
        "accuracy": [None, 0.8, 0.85],
    }
    table["loss"].append(99.0)
    table["epoch"].clear()
    assert h["loss"] == [1.0, 0.5, 1 / 3] and h["epoch"] == [1, 2, 3]


def test_to_csv_reads_back_to_the_same_numbers(tmp_path):
    h = _history()
    path = tmp_path / "history.csv"
    text = h.to_csv(path)
    assert path.read_text() == text
    rows = list(csv.DictReader(io.StringIO(text)))
    assert list(rows[0]) == h.keys()
    table = h.as_dict()
    for key in h.keys():
        back = [None if r[key] == "" else float(r[key]) for r in rows]
        assert back == table[key], key  # repr() round-trips floats exactly
    assert not list(tmp_path.glob(".*tmp"))  # written atomically: no temporary file left behind


def test_best_epoch_uses_val_loss_then_loss_and_max_for_accuracy():
    h = _history()
    assert h.best_epoch == 2 and h.best() == (2, 0.7)
    assert h.best("loss") == (3, 1 / 3)
    assert h.best("accuracy") == (3, 0.85)
    assert h.best("accuracy", mode="min") == (2, 0.8)
    only_nan = History()
    only_nan.append(0, {"loss": math.nan})
    assert only_nan.best() == (None, None)


def test_state_dict_round_trip_and_missing_key_error():
    h = _history()
    h.stop_reason = "early stopping"
    again = History()
    again.load_state_dict(h.state_dict())
    assert again.as_dict() == h.as_dict() and again.stop_reason == "early stopping" and len(again) == 3
    with pytest.raises(
        StateDictError, match=r"History has no 'val_acc'; recorded: epoch, loss, lr, learning_rate, val_loss"
    ):
        h["val_acc"]


def _moons_run(callback):
    """A small MLP on noisy moons whose best val_accuracy and best val_loss fall on different epochs."""
    import numpy as np

    import downslope as ds
    from downslope import nn, optim

    rng = np.random.default_rng(0)
    t = rng.uniform(0, np.pi, 240)
    upper = rng.random(240) < 0.5
    x = np.where(upper[:, None], np.c_[np.cos(t), np.sin(t)], np.c_[1 - np.cos(t), 0.5 - np.sin(t)])
    x = (x + 0.3 * rng.normal(size=x.shape)).astype(np.float32)
    y = upper.astype(np.int64)
    ds.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 32), nn.ReLU(), nn.Linear(32, 2))
    history = ds.fit(
        model, nn.CrossEntropyLoss(), optim.Adam(model.parameters(), lr=0.02), (x, y), epochs=40, verbose=0,
        validation_split=0.3, metrics=["accuracy"], callbacks=[callback],
    )  # fmt: skip
    return model, history


def test_the_best_epoch_is_the_one_early_stopping_kept_with_restore_best_weights():
    from downslope.train import EarlyStopping

    stopper = EarlyStopping(monitor="val_accuracy", patience=8, restore_best_weights=True)
    model, history = _moons_run(stopper)
    assert history.monitor == "val_accuracy" and history.monitor_source == "EarlyStopping"
    # the epoch whose weights the model holds, not the lowest val_loss (a different epoch in this run)
    assert history.best_epoch_index == stopper.best_epoch
    by_val_loss = history.best("val_loss")[0]
    assert by_val_loss is not None and by_val_loss - 1 != stopper.best_epoch
    assert history.best() == (stopper.best_epoch + 1, history["val_accuracy"][stopper.best_epoch])
    assert history.maximizes()


def test_the_best_epoch_follows_a_model_checkpoint_saving_the_best_only(tmp_path):
    from downslope.train import ModelCheckpoint

    saver = ModelCheckpoint(str(tmp_path / "best.ckpt"), monitor="val_accuracy", save_best_only=True)
    _, history = _moons_run(saver)
    assert history.monitor_source == "ModelCheckpoint"
    assert history.best_epoch_index == saver.best_epoch


def test_the_best_epoch_is_judged_as_early_stopping_judges_it_min_delta_start_and_mode_included():
    import numpy as np

    from downslope.train import EarlyStopping

    rng = np.random.default_rng(1)
    for trial in range(200):
        mode = ("min", "max", "auto")[trial % 3]
        monitor = "val_accuracy" if mode == "auto" else "val_score"
        stopper = EarlyStopping(
            monitor=monitor, mode=mode, min_delta=float(rng.choice([0.0, 0.05, 0.2])), patience=10**6,
            start_from_epoch=int(rng.integers(0, 3)),
        )  # fmt: skip
        history = History()
        history.follow_monitor([stopper])
        values = rng.random(int(rng.integers(4, 12)))
        for epoch, value in enumerate(values):
            stopper.on_epoch_end(epoch, {monitor: float(value)})
            history.append(epoch, {"loss": 1.0, monitor: float(value)})
        if stopper.best is None:  # nothing tracked yet (start_from_epoch past the end)
            continue
        assert history.best_epoch_index == stopper.best_epoch, (trial, values.tolist())


def test_auto_mode_reads_whole_metric_names_not_parts_of_them():
    from downslope.train.history import higher_is_better_name

    h = History()
    for epoch, (brier, f1) in enumerate([(0.25, 0.5), (0.15, 0.7), (0.10, 0.6), (0.12, 0.65)]):
        h.append(epoch, {"loss": 1.0, "val_brier_score": brier, "val_f1_macro": f1})
    assert h.best("val_brier_score") == (3, 0.10)  # lower is better: 'score' inside the name says nothing
    assert h.best("val_f1_macro") == (2, 0.7)
    assert [higher_is_better_name(n) for n in ("val_acc", "AUC", "top5_accuracy", "r2", "val_precision")] == [True] * 5
    assert not any(higher_is_better_name(n) for n in ("val_brier_score", "accuracy_error", "val_loss", "my_metric"))


def test_without_a_monitoring_callback_the_best_epoch_is_the_lowest_val_loss():
    h = History()
    h.follow_monitor([])
    h.append(0, {"loss": 1.0, "val_loss": 0.9, "val_accuracy": 0.9})
    h.append(1, {"loss": 0.5, "val_loss": 0.7, "val_accuracy": 0.8})
    assert h.monitor is None and h.best_epoch == 2
