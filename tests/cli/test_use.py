"""evaluate's --target: the column holding the values the run predicts, whatever the file calls it;
a column the model reads as an input is refused (its score would be meaningless)."""

from __future__ import annotations

import numpy as np
import pytest

from downslope.cli import main

pytest.importorskip("matplotlib")

FAST = ["--hidden", "8", "--epochs", "2", "--patience", "0", "--quiet"]


def _trained(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 2))
    price = 3.0 * X[:, 0] - X[:, 1]
    lines = ["a,b,price"] + [f"{a:.4f},{b:.4f},{p:.4f}" for (a, b), p in zip(X, price)]
    data = tmp_path / "my.csv"
    data.write_text("\n".join(lines) + "\n")
    run = tmp_path / "run"
    assert main(["train", "--data", str(data), "--target", "price", "--out", str(run), *FAST]) == 0
    return data, run


def test_evaluate_refuses_an_input_column_as_the_target_and_notes_a_renamed_one(tmp_path, capsys):
    data, run = _trained(tmp_path)
    capsys.readouterr()
    assert main(["evaluate", str(run), "--data", str(data), "--target", "a"]) == 2
    assert "--target 'a' is one of the model's input columns" in capsys.readouterr().err
    renamed = tmp_path / "renamed.csv"
    renamed.write_text(data.read_text().replace("price", "cost", 1))
    assert main(["evaluate", str(run), "--data", str(renamed), "--target", "cost"]) == 0
    assert "scoring the run's predictions of 'price' against column 'cost'" in capsys.readouterr().err
    assert main(["evaluate", str(run), "--data", str(data), "--target", "price"]) == 0
    assert "note" not in capsys.readouterr().err


def test_evaluate_scores_the_runs_own_test_split_as_training_did_with_categories_only_test_rows_hold(tmp_path, capsys):
    """Categories come from the training rows; a test-only one is all zeros in the metrics that
    training reports, and evaluate of the run's own split gives the same numbers instead of refusing."""
    import json

    rng = np.random.default_rng(1)
    n = 120
    kinds = [f"k{i}" for i in range(n)]  # one category per row: most of the test rows' are unseen
    x = rng.normal(size=n)
    lines = ["x,kind,y"] + [f"{a:.4f},{k},{2 * a:.4f}" for a, k in zip(x, kinds)]
    data = tmp_path / "cats.csv"
    data.write_text("\n".join(lines) + "\n")
    run = tmp_path / "run"
    args = ["train", "--data", str(data), "--target", "y", "--out", str(run), "--max-categories", "1000", *FAST]
    assert main(args) == 0
    capsys.readouterr()
    assert main(["evaluate", str(run)]) == 0
    scored = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    reported = json.loads((run / "metrics.json").read_text())
    assert abs(scored["r2"] - reported["test_r2"]) < 1e-5
