"""metrics.json of a run whose saved model is its best epoch's (--patience restores it), not its last: it
says which epoch the saved model is and that epoch's losses, beside the last epoch's final_* ones."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from downslope.cli import main

pytest.importorskip("matplotlib")


def test_metrics_json_names_the_saved_epoch_and_its_losses(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 4))
    y = 2.5e5 + 6e4 * X[:, 0] - 3e4 * X[:, 1] ** 2 + 5e3 * rng.normal(size=300)
    data = tmp_path / "houses.csv"
    np.savetxt(data, np.c_[X, y], delimiter=",", header="rooms,age,distance,size,price", comments="", fmt="%.2f")
    run = tmp_path / "run"
    args = ["train", "--data", str(data), "--target", "price", "--out", str(run), "--patience", "5", "--quiet"]
    assert main([*args, "--epochs", "200"]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    rows = list(csv.DictReader(open(run / "history.csv")))
    val = [float(r["val_loss"]) for r in rows]
    best = int(np.argmin(val))
    assert best < len(val) - 1, "the test needs a run whose last epoch is not its best"
    assert metrics["model_epoch"] == metrics["best_epoch"] == best + 1
    assert metrics["best_val_loss"] == pytest.approx(val[best], rel=1e-6)
    assert metrics["best_loss"] == pytest.approx(float(rows[best]["loss"]), rel=1e-6)
    assert metrics["final_val_loss"] == pytest.approx(val[-1], rel=1e-6) and metrics["epochs"] == len(val)


def test_metrics_json_of_a_run_kept_at_its_last_epoch(tmp_path):
    run = tmp_path / "run"
    assert main(["train", "--data", "iris", "--hidden", "8", "--epochs", "3", "--out", str(run), "--quiet"]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["model_epoch"] == 3 and "best_epoch" not in metrics
