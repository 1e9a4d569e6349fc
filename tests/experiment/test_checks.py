"""A stored run is checked before anything is built from it: the stored config passes the same
validation as a user's, and the shapes it implies are compared with the stored arrays first."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

import downslope as ds
from downslope.cli import main
from downslope.experiment import build_model, normalize_config
from downslope.experiment.checks import check_run_state, expected_parameter_shapes
from downslope.runs import COMPLETE, reserve


@pytest.mark.parametrize(
    "settings, image_shape",
    [
        ({"hidden": [5, 3]}, None),
        ({"hidden": []}, None),
        ({"hidden": [4, 3], "batchnorm": True, "dropout": 0.2, "activation": "gelu"}, None),
        ({"model": "linear"}, None),
        ({"model": "cnn", "channels": [2, 3], "hidden": [5]}, (1, 8, 8)),
        ({"model": "cnn", "channels": [4], "hidden": [6, 2], "batchnorm": True, "dropout": 0.1}, (3, 5, 4)),
    ],
)
def test_expected_shapes_are_those_of_the_built_model(settings, image_shape):
    cfg = normalize_config(settings)
    n_features = int(np.prod(image_shape)) if image_shape else 7
    built = build_model(cfg, n_features, 4, image_shape).state_dict()
    assert expected_parameter_shapes(cfg, n_features, 4, image_shape) == {k: v.shape for k, v in built.items()}


def _run_dir(tmp_path, **config_changes):
    """A run directory as 'downslope train' writes it (a tiny model), with its stored config edited."""
    cfg = normalize_config({"data": "line", "hidden": [4], "verbose": 0})
    ds.manual_seed(0)
    model = build_model(cfg, 1, 1, None)
    run = reserve(tmp_path / "run")
    state = {
        "model": model.state_dict(),
        "config": dict(cfg, **config_changes),
        "task": "regression",
        "n_features": 1,
        "n_outputs": 1,
        "image_shape": None,
        "class_names": [],
        "feature_names": ["x"],
        "preprocess": {"encoder": None},
    }
    ds.save(state, run.staging / "model.ds")
    run.publish(COMPLETE)
    return run.final


@pytest.mark.parametrize(
    "changes, fragment",
    [
        ({"hidden": [20000, 20000]}, "implies parameters the stored arrays do not match"),
        ({"hidden": [300000, 300000]}, "implies parameters the stored arrays do not match"),
        ({"hidden": [300000]}, "implies '0.weight' of shape (300000, 1), the stored array has shape (4, 1)"),
        ({"hidden": [-4]}, "sizes must be positive"),
        ({"optimizer": "evil"}, "unknown optimizer 'evil'"),
        ({"epochs": 0}, "epochs must be >= 1"),
        ({"shell": "rm -rf /"}, "unknown setting(s) ['shell']"),
        ({"model": "cnn"}, "model 'cnn' needs image data"),
    ],
    ids=["20000x20000", "300000x300000", "300000", "negative", "optimizer", "epochs", "unknown key", "cnn"],
)
def test_evaluate_refuses_a_crafted_config_before_allocating(tmp_path, monkeypatch, capsys, changes, fragment):
    run = _run_dir(tmp_path, **changes)
    monkeypatch.chdir(tmp_path)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    tracemalloc.start()
    try:
        status = main(["evaluate", str(run)])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    err = capsys.readouterr().err
    assert status == 2, err
    assert fragment in err and "model.ds" in err
    assert err.count("\n") == 1  # one line, no traceback
    # what a late refusal costs is the model it builds first (1.6 GB for 20000x20000): bounded in bytes
    # allocated (tracemalloc sees NumPy's buffers), not in seconds, which a shared machine makes fail by chance
    assert peak < 100 * 2**20, f"{peak / 2**20:.0f} MB allocated"
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


def test_an_untouched_run_passes_and_its_config_is_normalized(tmp_path):
    run = _run_dir(tmp_path, hidden="4")  # the string form a TOML file may hold
    state = ds.load(run / "model.ds")
    check_run_state(state, "model.ds")
    assert state["config"]["hidden"] == [4]


@pytest.mark.parametrize(
    "edit, fragment",
    [
        (lambda s: s.pop("config"), "missing ['config']"),
        (lambda s: s.update(n_features="1"), "n_features must be a positive integer"),
        (lambda s: s.update(n_outputs=True), "n_outputs must be a positive integer"),
        (lambda s: s.update(task="poetry"), "task must be one of"),
        (lambda s: s.update(image_shape=[1, 2]), "image_shape must be [channels, height, width]"),
        (lambda s: s.update(image_shape=[1, 2, 2]), "holds 4 values, but n_features is 1"),
        (lambda s: s["model"].update({"0.weight": [[1.0]] * 4}), "must map parameter names to arrays"),
        (lambda s: s["model"].pop("2.bias"), "missing ['2.bias']"),
        (lambda s: s["config"].update(hidden=[float("inf")]), "stored config"),
        (
            lambda s: s["preprocess"].update(standardizer={"mean": np.zeros((10**6, 1)), "scale": np.ones(1)}),
            "standardizer's mean must be 1 floats (one per feature), the file has shape (1000000, 1) float64",
        ),
        (lambda s: s["preprocess"].update(standardizer={"mean": np.zeros(1)}), "scale must be 1 floats"),
    ],
)
def test_malformed_run_states_are_refused(tmp_path, edit, fragment):
    state = ds.load(_run_dir(tmp_path) / "model.ds")
    edit(state)
    with pytest.raises(ds.CheckpointError, match="model.ds") as info:
        check_run_state(state, "model.ds")
    assert fragment in str(info.value)


def test_a_run_that_is_not_a_dict_is_refused():
    with pytest.raises(ds.CheckpointError, match="holds a list"):
        check_run_state([1, 2], "x.ds")
