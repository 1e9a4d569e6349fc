"""downslope compare: what its names, target, table and plot say."""

from __future__ import annotations

import math

import pytest

from downslope.cli import main

pytest.importorskip("matplotlib")


def _rows(path):
    lines = path.read_text().splitlines()
    header = lines[0].split(",")
    return [dict(zip(header, line.split(","))) for line in lines[1:]]


def _best_val(path):
    best: dict[str, float] = {}
    for row in _rows(path):
        best[row["run"]] = min(best.get(row["run"], math.inf), float(row["val_loss"]))
    return best


def test_every_run_is_named_with_the_learning_rate_it_used(tmp_path, capsys):
    """Without --lrs each optimizer runs at its own default: the names say so."""
    out = tmp_path / "cmp"
    args = ["compare", "--data", "line", "--model", "linear", "--epochs", "2", "--patience", "0"]
    assert main([*args, "--optimizers", "sgd,adam,rmsprop", "--out", str(out)]) == 0
    names = [r["run"] for r in _rows(out / "compare.csv")]
    assert names == ["sgd lr=0.01", "adam lr=0.001", "rmsprop lr=0.01"]
    printed = capsys.readouterr().out
    assert "[2/3] adam lr=0.001" in printed
    assert {r["run"] for r in _rows(out / "histories.csv")} == set(names)


def test_the_default_target_is_reached_by_every_run_that_did_not_diverge(tmp_path, capsys):
    out = tmp_path / "cmp"
    args = ["compare", "--data", "line", "--model", "linear", "--batch-size", "full", "--epochs", "15"]
    args += ["--patience", "0", "--optimizers", "gd", "--lrs", "0.05,0.0501,0.01,3"]
    assert main([*args, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    table = {r["run"]: r for r in _rows(out / "compare.csv")}
    assert table["gd lr=3"]["diverged"] == "True" and not table["gd lr=3"]["epochs_to_target"]
    best = {k: v for k, v in _best_val(out / "histories.csv").items() if k != "gd lr=3"}
    target = max(best.values())
    assert f"val loss target {target:.4g} (the largest of the best validation losses" in printed
    # near-identical runs both get a number (a median of two would leave the worse one without)
    for name in best:
        assert table[name]["epochs_to_target"], name
    assert int(table["gd lr=0.01"]["epochs_to_target"]) == 15  # the slowest reaches it at its best epoch
    assert "val loss to target (epochs)" in printed and "val loss to target (s)" in printed
    assert "diverged: the training loop's divergence guard" in printed  # a run diverged: explained


def test_a_given_target_is_kept_and_nothing_diverged_says_nothing_about_divergence(tmp_path, capsys):
    out = tmp_path / "cmp"
    args = ["compare", "--data", "line", "--model", "linear", "--epochs", "3", "--patience", "0"]
    args += ["--optimizers", "sgd", "--lrs", "0.1", "--batch-sizes", "full,1", "--target-loss", "0.5"]
    assert main([*args, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "val loss target 0.5 (--target-loss)" in printed
    assert "diverged: the training loop" not in printed
    # each run's updates per epoch are in the table: one for full batch, one per training sample for batch 1
    lines = {line.split("  ")[0].strip(): line.split() for line in printed.splitlines() if line.startswith("sgd ")}
    assert lines["sgd lr=0.1 batch=full"][-1] == "1"
    assert int(lines["sgd lr=0.1 batch=1"][-1]) > 50


def test_the_plot_has_panels_against_updates_and_the_updates_per_epoch_in_the_legend(tmp_path, monkeypatch):
    from downslope.viz import curves

    drawn = {}
    real = curves.plot_compare

    def spy(runs, **kwargs):
        drawn.update(kwargs, runs=runs)
        return real(runs, **kwargs)

    monkeypatch.setattr(curves, "plot_compare", spy)
    out = tmp_path / "cmp"
    args = ["compare", "--data", "line", "--model", "linear", "--epochs", "2", "--patience", "0", "--quiet"]
    assert main([*args, "--optimizers", "sgd", "--batch-sizes", "full,16", "--out", str(out)]) == 0
    updates = drawn["updates_per_epoch"]
    assert updates["sgd lr=0.01 batch=full"] == 1 and updates["sgd lr=0.01 batch=16"] > 1
    n = updates["sgd lr=0.01 batch=16"]
    assert drawn["labels"]["sgd lr=0.01 batch=16"] == f"sgd lr=0.01 batch=16 ({n} updates/epoch)"
    assert drawn["labels"]["sgd lr=0.01 batch=full"] == "sgd lr=0.01 batch=full (1 update/epoch)"


def test_a_run_at_chance_level_is_flagged_and_left_out_of_the_default_target(tmp_path, capsys):
    # batch size 1 at lr 0.1 kills the digits MLP's ReLUs: its val loss climbs back to about ln(10), the
    # cross-entropy of always predicting the class frequencies; its best (first-epoch) loss must not be
    # the target, or every other run "reaches" it in one epoch
    out = tmp_path / "cmp"
    args = ["compare", "--data", "digits", "--optimizers", "sgd", "--lrs", "0.1", "--batch-sizes", "16,1"]
    assert main([*args, "--epochs", "6", "--patience", "0", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    table = {r["run"]: r for r in _rows(out / "compare.csv")}
    dead, good = table["sgd lr=0.1 batch=1"], table["sgd lr=0.1 batch=16"]
    assert dead["at_chance"] == "True" and dead["diverged"] == "False" and good["at_chance"] == "False"
    assert float(dead["final_val_loss"]) > 0.95 * math.log(10)  # the claim, checked against ln(classes)
    target = _best_val(out / "histories.csv")["sgd lr=0.1 batch=16"]
    assert f"val loss target {target:.4g} (the largest of the best validation losses" in printed
    assert "or stay at chance level" in printed and "at chance: the run's val loss ended" in printed
    # the warnings for the dead run name the dead ReLUs as the cause of its vanishing gradients
    vanishing = [line for line in printed.splitlines() if "vanishingly small" in line]
    assert vanishing and all("dead ReLUs reported" in line and "sigmoid" not in line for line in vanishing)
