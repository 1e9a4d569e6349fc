"""`downslope export RUN`: the ONNX graph of a run takes the raw feature columns (text columns as
strings) and returns what `downslope predict` computes, in the data's own units."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
pytest.importorskip("safetensors")

import downslope as ds  # noqa: E402
from downslope import cli, nn, runs, serialization  # noqa: E402
from downslope.cli.export import run_to_onnx, sample_feeds  # noqa: E402
from downslope.errors import ConfigError  # noqa: E402
from downslope.experiment import DEFAULTS, build_model  # noqa: E402


def run_session(proto: Any, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(None, feeds)))


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def model_out(model: nn.Module, X: np.ndarray) -> np.ndarray:
    model.eval()
    with ds.no_grad():
        return model(ds.tensor(np.asarray(X, np.float32))).numpy()


ENCODER = {
    "columns": ["age", "color", "income"],
    "target": "label",
    "categories": {"color": ["blue", "green", "red"]},
    "task": "classification",
    "classes": ["no", "yes"],
}


def _tabular_state(task: str, n_outputs: int, target_scaler: bool = False) -> dict[str, Any]:
    rng = np.random.default_rng(3)
    pre: dict[str, Any] = {
        "encoder": dict(ENCODER, task=task, classes=ENCODER["classes"] if task == "classification" else []),
        "standardizer": {"mean": rng.normal(size=5).astype(np.float32) * 10, "scale": rng.uniform(0.5, 3, 5).astype(np.float32)},
    }  # fmt: skip
    if target_scaler:
        pre["target_scaler"] = {"mean": np.asarray([2.5e5], np.float32), "scale": np.asarray([4.0e4], np.float32)}
    return {
        "config": dict(DEFAULTS, hidden=[8], batchnorm=True),
        "task": task,
        "n_features": 5,
        "n_outputs": n_outputs,
        "image_shape": None,
        "class_names": ENCODER["classes"] if task == "classification" else [],
        "feature_names": [],
        "preprocess": pre,
    }


def _encode(feeds: dict[str, np.ndarray], state: dict[str, Any]) -> np.ndarray:
    """The one-hot and standardization of training, written out for this test's three columns."""
    color = feeds["color"][:, 0]
    onehot = np.stack([color == c for c in ["blue", "green", "red"]], axis=1).astype(np.float32)
    X = np.concatenate([feeds["age"], onehot, feeds["income"]], axis=1)
    sc = state["preprocess"].get("standardizer")
    return (X - sc["mean"]) / sc["scale"] if sc else X


def _model_for(state: dict[str, Any]) -> nn.Module:
    ds.manual_seed(0)
    model = build_model(state["config"], state["n_features"], state["n_outputs"], state["image_shape"])
    model.train()
    model(ds.randn(16, state["n_features"]))  # BatchNorm running statistics away from their start
    return model.eval()


@pytest.mark.parametrize("standardize", [True, False])
def test_classification_with_a_text_column(standardize: bool) -> None:
    state = _tabular_state("classification", 2)
    if not standardize:  # a run trained with --no-standardize
        del state["preprocess"]["standardizer"]
    model = _model_for(state)
    proto = run_to_onnx(model, state)
    assert [i.name for i in proto.graph.input] == ["age", "color", "income"]
    assert [o.name for o in proto.graph.output] == ["label", "probabilities"]
    feeds = sample_feeds(state, 11, seed=5)  # a batch size the export never saw
    got = run_session(proto, feeds)
    logits = model_out(model, _encode(feeds, state))
    np.testing.assert_allclose(got["probabilities"], softmax(logits), rtol=1e-5, atol=1e-5)
    assert list(got["label"]) == [["no", "yes"][i] for i in logits.argmax(axis=1)]


def test_unseen_category_is_an_error_as_in_predict() -> None:
    state = _tabular_state("classification", 2)
    proto = run_to_onnx(_model_for(state), state)
    feeds = sample_feeds(state, 3)
    feeds["color"] = np.array([["red"], ["purple"], ["blue"]], dtype=object)
    with pytest.raises(Exception, match="(?i)unknown category"):
        run_session(proto, feeds)


@pytest.mark.parametrize("scaled", [True, False])
def test_regression_in_the_targets_units(scaled: bool) -> None:
    state = _tabular_state("regression", 1, target_scaler=scaled)
    model = _model_for(state)
    proto = run_to_onnx(model, state)
    assert [o.name for o in proto.graph.output] == ["prediction"]
    feeds = sample_feeds(state, 9, seed=6)
    got = run_session(proto, feeds)["prediction"]
    expected = model_out(model, _encode(feeds, state))
    if scaled:
        expected = expected * np.float32(4.0e4) + np.float32(2.5e5)
        assert np.abs(expected).min() > 1e4  # really in the target's units
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_image_run_takes_flat_pixels() -> None:
    state = {
        "config": dict(DEFAULTS, model="cnn", channels=[4, 6], hidden=[10], dropout=0.2),
        "task": "classification",
        "n_features": 64,
        "n_outputs": 10,
        "image_shape": [1, 8, 8],
        "class_names": [],
        "preprocess": {"encoder": None, "standardizer": {"mean": np.full(64, 4, np.float32), "scale": np.full(64, 6, np.float32)}},
    }  # fmt: skip
    ds.manual_seed(0)
    model = build_model(state["config"], 64, 10, (1, 8, 8))
    proto = run_to_onnx(model, state)
    feeds = sample_feeds(state, 13)
    got = run_session(proto, feeds)
    logits = model_out(model, (feeds["features"] - 4) / 6)
    np.testing.assert_allclose(got["probabilities"], softmax(logits), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(got["label"], logits.argmax(axis=1))


# ---------------------------------------------------------------------- the command, on real runs
def _train(tmp_path: Path, name: str, *flags: str) -> Path:
    out = tmp_path / name
    assert cli.main(["train", *flags, "--epochs", "2", "--quiet", "--out", str(out)]) == 0
    return out


def _export(run: Path, tmp_path: Path) -> tuple[Any, dict[str, np.ndarray]]:
    path, weights = tmp_path / f"{run.name}.onnx", tmp_path / f"{run.name}.safetensors"
    assert cli.main(["export", str(run), "--onnx", str(path), "--safetensors", str(weights)]) == 0
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)
    return proto, ds.load_safetensors(weights)


def _csv_feeds(path: Path, columns: list[str], text: set[str]) -> dict[str, np.ndarray]:
    header, *rows = [line.split(",") for line in path.read_text().splitlines()]
    cols = {h: [r[i] for r in rows] for i, h in enumerate(header)}
    return {
        c: np.array(cols[c], dtype=object)[:, None] if c in text else np.array(cols[c], np.float32)[:, None]
        for c in columns
    }


def _write_csv(path: Path, regression: bool) -> None:
    rng = np.random.default_rng(0)
    lines = ["age,color,income," + ("price" if regression else "label")]
    for _ in range(97):
        age, color, income = rng.normal(40, 10), rng.choice(["red", "green", "blue"]), rng.normal(5e4, 1e4)
        target = f"{3e5 + 2e3 * age + (5e4 if color == 'red' else 0):.1f}" if regression else (
            "yes" if (age > 40) != (color == "red") else "no"
        )  # fmt: skip
        lines.append(f"{age:.3f},{color},{income:.1f},{target}")
    path.write_text("\n".join(lines) + "\n")


def test_cli_tabular_classification(tmp_path: Path) -> None:
    data = tmp_path / "cls.csv"
    _write_csv(data, regression=False)
    run = _train(tmp_path, "cls", "--data", str(data), "--target", "label", "--hidden", "8", "--batchnorm")
    proto, weights = _export(run, tmp_path)
    assert [i.name for i in proto.graph.input] == ["age", "color", "income"]
    model, state = runs.load_run(str(run))
    assert set(weights) == set(state["model"])
    X, _ = cli._features_for(state, str(data), None, need_target=False)  # what `downslope predict` feeds
    got = run_session(proto, _csv_feeds(data, ["age", "color", "income"], {"color"}))
    logits = model_out(model, X)
    np.testing.assert_allclose(got["probabilities"], softmax(logits), rtol=1e-5, atol=1e-5)
    assert list(got["label"]) == [state["class_names"][i] for i in logits.argmax(axis=1)]


def test_cli_regression_with_scaled_target(tmp_path: Path) -> None:
    data = tmp_path / "reg.csv"
    _write_csv(data, regression=True)
    run = _train(tmp_path, "reg", "--data", str(data), "--target", "price", "--hidden", "8")
    state = serialization.load(run / "model.ds")
    if "target_scaler" not in state["preprocess"]:  # written by hand where training does not scale targets yet
        state["preprocess"]["target_scaler"] = {
            "mean": np.asarray([3.8e5], np.float32),
            "scale": np.asarray([3e4], np.float32),
        }
        serialization.save(state, run / "model.ds")
    proto, _ = _export(run, tmp_path)
    model, state = runs.load_run(str(run))
    X, _ = cli._features_for(state, str(data), None, need_target=False)
    scaler = state["preprocess"]["target_scaler"]
    expected = model_out(model, X) * np.asarray(scaler["scale"], np.float32) + np.asarray(scaler["mean"], np.float32)
    got = run_session(proto, _csv_feeds(data, ["age", "color", "income"], {"color"}))["prediction"]
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_cli_digits_cnn(tmp_path: Path) -> None:
    pytest.importorskip("sklearn")
    run = _train(tmp_path, "digits", "--data", "digits", "--model", "cnn", "--channels", "4", "--hidden", "16")
    proto, weights = _export(run, tmp_path)
    model, state = runs.load_run(str(run))
    np.testing.assert_array_equal(weights["body.0.weight"], state["model"]["body.0.weight"])
    X, _ = cli._features_for(state, "digits", None, need_target=False)
    raw = serialization.load(run / "model.ds")["preprocess"]["standardizer"]
    pixels = (X[:37] * raw["scale"] + raw["mean"]).astype(np.float32)  # back to raw pixels for the graph's input
    got = run_session(proto, {"features": pixels})
    logits = model_out(model, X[:37])
    np.testing.assert_allclose(got["probabilities"], softmax(logits), rtol=1e-5, atol=1e-5)


def test_export_needs_something_to_write(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--onnx"):
        from downslope.cli.export import export_run

        export_run(tmp_path)
    assert cli.main(["export", str(tmp_path / "nope"), "--onnx", str(tmp_path / "m.onnx")]) == 2


def test_cli_regression_far_from_zero_keeps_its_units_in_float64(tmp_path: Path) -> None:
    # a target around 1e9: float32 would keep only about 100 of its units; the graph undoes the
    # target scaling in float64, as predict computes
    data = tmp_path / "far.csv"
    rng = np.random.default_rng(1)
    lines = ["age,color,income,price"]
    for _ in range(97):
        age, color, income = rng.normal(40, 10), rng.choice(["red", "blue"]), rng.normal(5e4, 1e4)
        lines.append(f"{age:.3f},{color},{income:.1f},{1e9 + 37.0 * age:.3f}")
    data.write_text("\n".join(lines) + "\n")
    run = _train(tmp_path, "far", "--data", str(data), "--target", "price", "--hidden", "8")
    proto, _ = _export(run, tmp_path)
    model, state = runs.load_run(str(run))
    X, _ = cli._features_for(state, str(data), None, need_target=False)
    scaler = state["preprocess"]["target_scaler"]
    expected = model_out(model, X).astype(np.float64) * np.asarray(scaler["scale"], np.float64) + np.asarray(
        scaler["mean"], np.float64
    )
    got = run_session(proto, _csv_feeds(data, ["age", "color", "income"], {"color"}))["prediction"]
    assert got.dtype == np.float64
    np.testing.assert_allclose(got - 1e9, expected - 1e9, rtol=1e-4, atol=1e-2)
