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
