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
    assert still_improving_note({"loss": falling, "val_loss": rising_val}, 100, 0.001) == []
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
