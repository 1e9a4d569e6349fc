"""One run from a flat config: the settings it records reproduce it, and the preprocessing it fits
(imputer, standardizer, target scaler) comes from the training split only."""

from __future__ import annotations

import numpy as np
import pytest

from downslope.errors import ConfigError
from downslope.experiment import (
    data_units,
    model_from_state,
    model_targets,
    normalize_config,
    prepare,
    row_hashes,
    run_state,
    run_training,
    to_toml,
)


def tiny(**extra):
    return normalize_config({"data": "line", "hidden": [4], "epochs": 3, "patience": 0, "verbose": 0, **extra})


@pytest.mark.parametrize(
    "extra",
    [{}, {"optimizer": "momentum"}, {"optimizer": "sgd", "lr": 0.05}, {"model": "linear"}, {"scale_target": False}],
)
def test_the_recorded_config_is_what_was_used_and_repeats_the_run(extra):
    import tomllib

    first = run_training(tiny(**extra))
    used = first.cfg
    assert used["lr"] > 0 and "verbose" not in used and "channels" not in used
    if extra.get("optimizer") == "momentum":
        assert used["momentum"] == 0.9
    if extra.get("model") == "linear":
        assert "hidden" not in used and "activation" not in used
    again = run_training(normalize_config(dict(tomllib.loads(to_toml(used)), verbose=0)))
    assert again.cfg == used
    for a, b in zip(first.model.state_dict().values(), again.model.state_dict().values()):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_target_scaler_comes_from_the_training_rows_and_round_trips():
    data = prepare(tiny())
    state = data.preprocess["target_scaler"]
    np.testing.assert_allclose(state["mean"], data.y_train.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(state["scale"], data.y_train.std(axis=0), rtol=1e-4)
    scaled = model_targets(data.y_test, data.preprocess)
    np.testing.assert_allclose(data_units(scaled, data.preprocess), data.y_test, rtol=1e-5, atol=1e-5)
    assert "target_scaler" not in prepare(tiny(scale_target=False)).preprocess
    assert "target_scaler" not in prepare(tiny(data="moons")).preprocess  # classification: labels are not scaled


def test_split_is_stored_and_training_rows_are_recognised_by_hash():
    from downslope.data import datasets

    data = prepare(tiny(data="moons"))
    X = datasets.load("moons", seed=0).X
    test = data.split["test_indices"]
    assert data.split["n_rows"] == len(X) and len(test) == len(data.X_test)
    seen = np.isin(row_hashes(X), data.split["train_row_hashes"])
    assert not seen[test].any() and seen.sum() == len(X) - len(test)


def test_model_from_state_refuses_checkpoints_and_incomplete_files_in_one_line():
    result = run_training(tiny())
    state = run_state(result)
    model, checked = model_from_state(state, "run/model.ds")
    assert checked["config"]["hidden"] == [4]
    with pytest.raises(ConfigError, match="training checkpoint"):
        model_from_state({"kind": "downslope-training-state", "epoch": 2}, "x.ckpt")
    with pytest.raises(ConfigError, match=r"lacks \['n_outputs'\]"):
        model_from_state({k: v for k, v in state.items() if k != "n_outputs"}, "run/model.ds")
    with pytest.raises(ConfigError, match=r"stored config lacks \['activation'\]"):
        model_from_state(dict(state, config={k: v for k, v in state["config"].items() if k != "activation"}), "m")


@pytest.mark.parametrize(
    "value, expected", [("CPU", "cpu"), ("auto", "auto"), ("cuda:1", "cuda:1"), ("strict", "strict")]
)
def test_the_device_setting_is_checked_and_normalized(value, expected):
    assert normalize_config({"device": value})["device"] == expected


@pytest.mark.parametrize("value", ["gpu", "cuda:x", "mps"])
def test_an_unknown_device_is_a_one_line_config_error(value):
    with pytest.raises(ConfigError, match="unknown device .*cpu, cuda, auto"):
        normalize_config({"device": value})


def test_a_run_on_the_strict_device_trains_as_on_the_cpu_and_records_its_device(monkeypatch):
    # The compiled host kernels (numba: the cross-entropy/softmax passes) sum in another order than the
    # NumPy formulation a device runs; bit-identity is a property of the latter, so the CPU takes it too.
    monkeypatch.setenv("DOWNSLOPE_JIT", "0")
    import warnings

    cfg = normalize_config({"data": "moons", "hidden": [8], "epochs": 3, "patience": 2, "verbose": 0})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        cpu = run_training(cfg)
        dev = run_training(dict(cfg, device="strict"))
    assert cpu.cfg["device"] == "cpu" and dev.cfg["device"] == "strict" and str(dev.model[0].weight.device) == "cpu"
    assert dev.metrics["test_accuracy"] == cpu.metrics["test_accuracy"]
    assert dev.history.as_dict()["val_loss"] == cpu.history.as_dict()["val_loss"]
    assert dev.gradients.history == cpu.gradients.history  # the diagnostics' device sums, read once per epoch
    for a, b in zip(cpu.model.state_dict().values(), dev.model.state_dict().values()):
        np.testing.assert_array_equal(a, b)  # the trained model comes back to the host


def test_auto_resolves_to_the_cpu_without_a_gpu_and_cuda_names_the_extra():
    import downslope as ds

    if ds.cuda.is_available():
        pytest.skip("a GPU is usable here")
    assert run_training(tiny(device="auto")).cfg["device"] == "cpu"
    with pytest.raises(ConfigError, match=r"device 'cuda'.*pip install \"downslope\[cuda\]\""):
        run_training(tiny(device="cuda"))


def test_the_epoch_logs_mae_is_in_the_targets_units_like_the_test_metrics(tmp_path):
    """The model learns a standardized target; the logged mae is read as an error in the data's units
    (an mae of 0.18 for prices around 2.4e5 was the standardized one)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 2))
    y = 2.4e5 + 3e4 * x[:, 0] - 1e4 * x[:, 1] + rng.normal(scale=5e3, size=300)
    data = tmp_path / "prices.csv"
    data.write_text("a,b,price\n" + "\n".join(f"{a:.4f},{b:.4f},{c:.2f}" for (a, b), c in zip(x, y)) + "\n")
    result = run_training(normalize_config({"data": str(data), "target": "price", "epochs": 20, "verbose": 0}))
    logged = result.history.as_dict()
    assert 0.5 < logged["val_mae"][-1] / result.metrics["test_mae"] < 2
    assert logged["val_loss"][-1] < 1  # the loss stays on the standardized target (metrics.json says so)
