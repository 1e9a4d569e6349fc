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
