"""A run that ends at its epoch limit while its loss is still falling fast is told to train longer or
faster; a converged (or overfitting) run is not."""

from __future__ import annotations

import numpy as np
import pytest

from downslope.cli import main
from downslope.experiment.run import still_improving_note

pytest.importorskip("matplotlib")


def test_the_rule_on_histories():
    falling = [1.0 / (1 + 0.02 * e) for e in range(100)]
    assert "--epochs 200" in still_improving_note({"loss": falling}, 100, 0.001)[0]
    flat = [0.1 + 1e-4 * np.sin(e) for e in range(100)]
    assert still_improving_note({"loss": flat}, 100, 0.001) == []
    rising_val = [0.5 + 0.01 * e for e in range(100)]  # overfitting: more epochs would not help
    said = still_improving_note({"loss": falling, "val_loss": rising_val}, 100, 0.001)
    assert len(said) == 1 and "overfitting" in said[0] and "train longer" not in said[0]
    assert still_improving_note({"loss": falling[:8]}, 8, 0.001) == []  # too short to judge


def _data(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 2))
    y = 3 * X[:, 0] - X[:, 1] + 0.1 * rng.normal(size=300)
    path = tmp_path / "t.csv"
    np.savetxt(path, np.c_[X, y], delimiter=",", header="a,b,y", comments="", fmt="%.4f")
    return str(path)


def test_advice_when_the_linear_model_stops_short_and_none_once_converged(tmp_path, capsys):
    data = _data(tmp_path)
    assert main(["train", "--data", data, "--model", "linear", "--out", str(tmp_path / "a"), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "training was still improving when it reached the epoch limit (100)" in err
    assert "--epochs 200" in err and "--lr, now 0.001" in err
    args = ["train", "--data", data, "--model", "linear", "--lr", "0.05", "--patience", "0"]
    assert main([*args, "--out", str(tmp_path / "b"), "--quiet"]) == 0
    out = capsys.readouterr()
    assert "reached the epoch limit (100)" in out.out  # it ran every epoch, converged
    assert "still improving" not in out.err + out.out


def _recorded_overfit_history():
    """An MLP trained 300 epochs with --patience 0 on a small regression file (the shape of a real run's
    history.csv): validation loss best at epoch 9, then 44% above it and flat; training loss at 1e-8 with
    noise of +-50% from epoch to epoch."""
    rng = np.random.default_rng(0)
    e = np.arange(300)
    val = np.where(e < 9, 0.73 - (0.73 - 0.5733) / 8 * e, 0.5733 + 0.2519 * (1 - np.exp(-(e - 8) / 40.0)))
    val = val + 1e-4 * rng.standard_normal(300)
    loss = np.where(e < 200, 0.87 * np.exp(-e / 12.0), 3e-8 * (1 + 0.5 * rng.uniform(-1, 1, 300)))
    return list(loss), list(val)


def test_an_overfitting_run_is_told_so_not_to_train_longer():
    loss, val = _recorded_overfit_history()
    said = still_improving_note({"loss": loss, "val_loss": val}, 300, 0.001)
    assert len(said) == 1 and said[0].startswith("the model is overfitting"), said
    assert "at epoch 9" in said[0] and "--patience" in said[0] and "--epochs 600" not in said[0]


def test_a_training_loss_at_its_floor_or_a_flat_validation_loss_is_no_progress():
    # halved over the last 10 epochs, but at 1e-8 of where it started: the floor's noise, not progress
    floor = [1.0] * 5 + [4e-8] * 85 + [2e-8] * 10
    assert still_improving_note({"loss": floor}, 100, 0.001) == []
    falling = [1.0 / (1 + 0.02 * e) for e in range(100)]
    flat_val = [0.8 - 1e-7 * e for e in range(100)]  # its windows 1e-6 apart: flat, not falling
    assert still_improving_note({"loss": falling, "val_loss": flat_val}, 100, 0.001) == []
    falling_val = [0.8 / (1 + 0.02 * e) for e in range(100)]
    assert "--epochs 200" in still_improving_note({"loss": falling, "val_loss": falling_val}, 100, 0.001)[0]


def test_the_fall_is_a_fraction_of_where_it_started():
    """0.5 -> 0.2 fell 60% (of 0.5), not 150% (of 0.2): a fall is at most 100%."""
    loss = [1.0] * 10 + [0.5] * 5 + [0.2] * 5
    said = still_improving_note({"loss": loss}, 20, 0.001)
    assert len(said) == 1 and "fell 60% over the last 5 epochs" in said[0], said


def _overfitting_history():
    falling = [1.0 / (1 + 0.02 * e) for e in range(30)]
    return {"loss": falling, "val_loss": [1.0 - 0.02 * e for e in range(10)] + [0.8 + 0.02 * e for e in range(20)]}


def test_overfitting_advice_builds_on_the_runs_own_patience():
    without = still_improving_note(_overfitting_history(), 30, 0.001)
    assert len(without) == 1 and "early stopping (--patience 10)" in without[0], without
    said = still_improving_note(_overfitting_history(), 30, 0.001, patience=12)
    assert len(said) == 1 and "overfitting" in said[0], said
    assert "--patience 10" not in said[0] and "--patience 12" in said[0], said


class _History:
    def __init__(self, losses):
        self.losses = losses

    def as_dict(self):
        return {"loss": self.losses}


class _Data:
    task = "classification"
    n_outputs = 2
    X_train = np.zeros((4, 2), np.float32)


def test_divergence_advice_keeps_the_guards_estimate_and_its_reason_together():
    from downslope.experiment.run import _divergence_advice

    estimated = (
        "diverged: loss became inf at batch 4 of epoch 1 at lr=5; the step size is probably too large, try "
        "lr=0.002 or lower (an estimate from the loss growing about 3.4e+06-fold per update)"
    )
    cfg = {"model": "mlp"}
    # the "Stopped:" line said this estimate: the final line says the same
    assert _divergence_advice(estimated, cfg, _Data(), 5.0, _History([float("inf")])) == estimated
    tenth = "diverged: loss became inf at batch 4 of epoch 1 at lr=5; the step size is probably too large, try lr=0.5 or lower"
    replaced = _divergence_advice(tenth, cfg, _Data(), 5.0, _History([float("inf")]))
    assert "lr-find" in replaced and "try lr=0.5" not in replaced and "an estimate" not in replaced
