"""fit(resume_from=...) gives each callback the saved state of its class and settings, not of its position:
a reordered or extended callback list resumes exactly as the uninterrupted run; changed settings start fresh
with a warning; old checkpoints (states keyed by position) still load where that is unambiguous."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import downslope as ds
from downslope import nn
from downslope.train import CSVLogger, EarlyStopping, ModelCheckpoint
from downslope.train.callbacks import CallbackList

rng = np.random.default_rng(0)
X = rng.normal(size=(150, 6)).astype(np.float32)
Y = (X[:, 0] + X[:, 1] * X[:, 2] + 0.8 * rng.normal(size=150) > 0).astype(np.int64)


def _fit(epochs, callbacks, checkpoint_dir, resume=None):
    ds.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 64), nn.ReLU(), nn.Linear(64, 2))
    return ds.fit(
        model,
        "cross_entropy",
        ds.optim.Adam(model.parameters(), lr=1e-2),
        (X, Y),
        validation_split=0.3,
        metrics=["accuracy"],
        epochs=epochs,
        batch_size=8,
        verbose=0,
        callbacks=callbacks,
        checkpoint_dir=checkpoint_dir,
        resume_from=resume,
    )


def _stoppers():
    return EarlyStopping(monitor="val_accuracy", patience=6, min_delta=0.001), EarlyStopping(
        monitor="val_loss", patience=3
    )


def test_reordered_callbacks_resume_as_the_uninterrupted_run(tmp_path):
    whole = _fit(60, list(_stoppers()), tmp_path / "a")
    _fit(3, list(_stoppers()), tmp_path / "b")
    acc, loss = _stoppers()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing changed but the order: nothing to warn about
        resumed = _fit(60, [loss, acc], tmp_path / "b", resume=tmp_path / "b")
    assert loss._monitor.key == "val_loss" and acc._monitor.key == "val_accuracy"
    assert resumed.stop_reason == whole.stop_reason and len(resumed) == len(whole)
    np.testing.assert_array_equal(resumed.history["val_loss"], whole.history["val_loss"])


def test_inserted_callback_does_not_cost_the_others_their_state(tmp_path):
    whole = _fit(60, [EarlyStopping(patience=3)], tmp_path / "a")
    _fit(4, [EarlyStopping(patience=3)], tmp_path / "b")
    resumed = _fit(
        60, [CSVLogger(tmp_path / "log.csv"), EarlyStopping(patience=3)], tmp_path / "b", resume=tmp_path / "b"
    )
    assert len(resumed) == len(whole) and resumed.stop_reason == whole.stop_reason


def test_changed_monitor_keeps_the_new_setting_and_starts_fresh_with_a_warning(tmp_path):
    _fit(2, [EarlyStopping(monitor="val_loss", patience=50)], tmp_path)
    stopper = EarlyStopping(monitor="val_accuracy", patience=50)
    with pytest.warns(RuntimeWarning, match=r"EarlyStopping\(mode='auto', monitor='val_accuracy'\) starts fresh"):
        _fit(3, [stopper], tmp_path, resume=tmp_path)
    assert stopper._monitor.key == "val_accuracy"
    assert stopper.best_epoch == 2  # its best is its own, from the one epoch it saw (0-based index 2)


def test_saved_state_no_callback_matches_is_named_in_a_warning(tmp_path):
    _fit(2, [EarlyStopping(monitor="val_loss", patience=50)], tmp_path)
    with pytest.warns(RuntimeWarning, match=r"holds the state of EarlyStopping\(mode='auto', monitor='val_loss'\)"):
        _fit(3, [], tmp_path, resume=tmp_path)


def _old_format(stoppers):
    """A checkpoint's callback states as versions before the identity wrote them: keyed by position."""
    return {f"{i}:{type(cb).__name__}": cb.state_dict() for i, cb in enumerate(stoppers)}


def _stopper_with(best, monitor="val_loss"):
    es = EarlyStopping(monitor=monitor)
    es.best, es.best_epoch, es.wait = best, 4, 2
    es._monitor.key = monitor
    return es


def test_old_positional_checkpoint_still_loads_where_unambiguous():
    saved = _old_format([ModelCheckpoint("m.ckpt"), _stopper_with(0.5)])
    fresh = EarlyStopping(monitor="val_loss")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        CallbackList([fresh, ModelCheckpoint("m.ckpt")]).load_state_dict(saved)  # one of each class: moved is fine
    assert (fresh.best, fresh.best_epoch, fresh.wait) == (0.5, 4, 2)
    # the same list as saved: by position, as before
    saved = _old_format([_stopper_with(0.5), _stopper_with(0.9, "val_accuracy")])
    first, second = EarlyStopping(monitor="val_loss"), EarlyStopping(monitor="val_accuracy")
    CallbackList([first, second]).load_state_dict(saved)
    assert (first.best, second.best) == (0.5, 0.9)


def test_old_positional_checkpoint_refuses_to_guess():
    saved = _old_format([_stopper_with(0.5), _stopper_with(0.9, "val_accuracy")])
    first, second, third = EarlyStopping(), EarlyStopping(monitor="val_accuracy"), EarlyStopping(monitor="loss")
    with pytest.warns(RuntimeWarning, match="cannot be told"):
        CallbackList([third, second, first]).load_state_dict(saved)
    assert first.best is None and second.best is None
    # one saved, one present, but for another quantity: not taken
    lone = EarlyStopping(monitor="val_accuracy")
    with pytest.warns(RuntimeWarning, match="saved for other settings"):
        CallbackList([lone]).load_state_dict(_old_format([_stopper_with(0.5)]))
    assert lone.best is None and lone._monitor.key == "val_accuracy"
