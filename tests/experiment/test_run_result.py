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


def test_the_runs_divergence_guard_ignores_a_bounce_near_a_minimum_and_catches_a_climb():
    from downslope.experiment.run import _stopping_rules
    from downslope.train.callbacks import CallbackList, DivergenceGuard, TrainingState

    def stopped(values):
        cfg = _cfg(patience=0, target_loss=0, max_time=0)
        guard = [cb for cb in _stopping_rules(cfg, has_val=False) if isinstance(cb, DivergenceGuard)]
        state = TrainingState()
        callbacks = CallbackList(guard)
        callbacks.set_trainer(state)
        callbacks.on_train_begin({})
        for epoch, value in enumerate(values):
            callbacks.on_epoch_end(epoch, {"loss": value})
            if state.stop_training:
                return state.stop_kind
        return None

    # a mini-batch loss from 1 down to 0.0023 that bounces to 0.246 (still 4x below its start): healthy
    assert stopped([1.0, 0.2, 0.0023, 0.246, 0.01]) is None
    assert stopped([1.0, 0.2, 0.0023, 0.246, 3.0]) == "diverged"  # back above its start: diverged
    assert stopped([1.0, 3.0, 30.0, 300.0, 3000.0, 3e4]) == "diverged"  # slowly, 10^4 above its start


def test_a_test_r2_at_most_0_mentions_extreme_target_values_in_the_test_split():
    import numpy as np

    from downslope.experiment.inputs import Prepared
    from downslope.experiment.run import regression_warnings

    rng = np.random.default_rng(0)
    z = np.zeros((1, 1), np.float32)
    train = rng.normal(2e5, 5e4, (200, 1))
    test = np.r_[rng.normal(2e5, 5e4, (19, 1)), [[7e6]]]
    data = Prepared(z, train, None, None, z, test, "regression", 1, 1, "d")
    said = regression_warnings(data, {"test_r2": -0.02})
    assert len(said) == 1 and "extreme values" in said[0] and "1 in the test split" in said[0]
    assert "--loss huber" in said[0]
    clean = Prepared(z, train, None, None, z, test[:-1], "regression", 1, 1, "d")
    assert "extreme values" not in regression_warnings(clean, {"test_r2": -0.02})[0]
