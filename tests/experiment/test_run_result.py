"""What a run records beside its history: the epoch whose weights early stopping restored."""

from __future__ import annotations

from downslope.experiment import normalize_config
from downslope.experiment.run import run_training


def _cfg(**overrides):
    base = {"data": "line", "model": "linear", "optimizer": "sgd", "seed": 0, "verbose": 0, "epochs": 300}
    return normalize_config(dict(base, **overrides), "test")


def test_early_stopping_records_the_restored_epoch():
    result = run_training(_cfg(lr=0.05, batch_size="1", patience=2))
    assert result.history.stop_kind == "early_stopping"
    val = result.history.as_dict()["val_loss"]
    assert result.weights_epoch == 1 + min(range(len(val)), key=val.__getitem__)
    assert result.weights_epoch < len(val)


def test_without_early_stopping_no_epoch_is_recorded():
    assert run_training(_cfg(lr=0.05, batch_size="full", patience=0, epochs=3)).weights_epoch is None


def test_a_regression_no_better_than_the_mean_is_noted(tmp_path):
    import numpy as np

    rng = np.random.default_rng(0)
    p = tmp_path / "noise.csv"
    p.write_text("a,y\n" + "\n".join(f"{rng.normal():.4f},{rng.normal():.4f}" for _ in range(80)) + "\n")
    result = run_training(_cfg(data=str(p), target="y", model="mlp", optimizer="adam", epochs=30, patience=0))
    assert result.metrics["test_r2"] <= 0
    said = [n for n in result.diagnostics if "no better than 0" in n]
    assert len(said) == 1 and "training split's mean" in said[0]


def test_a_constant_target_reports_standard_deviation_0(tmp_path):
    p = tmp_path / "const.csv"
    p.write_text("a,y\n" + "\n".join(f"{i},7.5" for i in range(40)) + "\n")
    result = run_training(_cfg(data=str(p), target="y", epochs=2, patience=0))
    assert "standard deviation 0;" in result.metrics["loss_units"]
    assert any("single value (7.5)" in n for n in result.diagnostics)
    assert not any("no better than 0" in n for n in result.diagnostics)  # r2 of a constant says nothing
