"""A unix-seconds feature trained, predicted and exported without float32 rounding (the encoder shifts
it in float64 before the cast): predictions match float64 least squares."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from downslope.cli import main

pytest.importorskip("matplotlib")


def _run(tmp_path):
    rng = np.random.default_rng(3)
    t = 1.7e9 + rng.uniform(0, 3600, 600)
    x = rng.normal(size=600)
    y = 0.01 * (t - 1.7e9) + 2 * x
    data = tmp_path / "tr.csv"
    np.savetxt(data, np.c_[t, x, y], delimiter=",", header="ts,x,y", comments="", fmt="%.4f")
    run = tmp_path / "run"
    args = ["train", "--data", str(data), "--model", "linear", "--lr", "0.05", "--epochs", "300", "--patience", "0"]
    assert main([*args, "--out", str(run), "--quiet"]) == 0
    rows = np.loadtxt(data, delimiter=",", skiprows=1)
    # float64 least squares, the seconds counted from 1.7e9 (the raw column would be ill-conditioned)
    design = np.c_[rows[:, 0] - 1.7e9, rows[:, 1], np.ones(len(rows))]
    coef = np.linalg.lstsq(design, rows[:, 2], rcond=None)[0]
    return run, coef


def test_predictions_of_rows_40_seconds_apart_follow_least_squares(tmp_path):
    run, coef = _run(tmp_path)
    new = np.c_[1.7e9 + 1000 + np.arange(0, 200, 40.0), np.zeros(5)]
    path = tmp_path / "new.csv"
    np.savetxt(path, new, delimiter=",", header="ts,x", comments="", fmt="%.1f")
    assert main(["predict", str(run), "--data", str(path), "--out", str(tmp_path / "p.csv")]) == 0
    with open(tmp_path / "p.csv") as f:
        got = np.array([float(r[-1]) for r in list(csv.reader(f))[1:]])
    # 10.0, 10.4, ...: float32 inputs gave steps of 128 s (1.28 in y)
    expected = np.c_[new[:, 0] - 1.7e9, new[:, 1], np.ones(5)] @ coef
    np.testing.assert_allclose(got, expected, atol=0.01)
    onnxruntime = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    onnx_path = tmp_path / "m.onnx"
    assert main(["export", str(run), "--onnx", str(onnx_path)]) == 0
    session = onnxruntime.InferenceSession(str(onnx_path))
    kinds = {i.name: i.type for i in session.get_inputs()}
    assert kinds == {"ts": "tensor(double)", "x": "tensor(float)"}
    (out,) = session.run(None, {"ts": new[:, :1], "x": new[:, 1:].astype(np.float32)})
    np.testing.assert_allclose(out[:, 0], got, rtol=1e-6)
