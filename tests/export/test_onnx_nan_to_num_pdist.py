"""ONNX export of nan_to_num (Wheres on IsNaN / IsInf with the recorded fills) and pdist (Gathers of the
upper triangle's constant pair indices, reduced by the p-norm): each graph runs in ONNX Runtime on
inputs not seen at export, at two batch sizes, and must match downslope's own output."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

import downslope as ds  # noqa: E402
import downslope.nn.functional as F  # noqa: E402
from downslope.errors import ExportError  # noqa: E402

# the exporter reads the example's arrays on the host (as the rest of tests/export's ONNX tests)
pytestmark = pytest.mark.host_only


class _Net(ds.nn.Module):
    def __init__(self, forward: Callable[[Any, ds.Tensor], ds.Tensor]) -> None:
        super().__init__()
        self.points = ds.nn.Parameter(ds.randn(5, 3))
        self.fn = forward

    def forward(self, x: ds.Tensor) -> ds.Tensor:
        return self.fn(self, x)


def _check(
    forward: Callable[[Any, ds.Tensor], ds.Tensor], shape: tuple[int, ...], tmp_path: Path, dynamic: bool = True
) -> onnx.ModelProto:
    """Export at batch 2; on fresh inputs (batches 3 and 6, or 2 twice with a fixed batch) ONNX Runtime
    gives downslope's values (NaN, inf and signed values exactly where downslope has them)."""
    ds.manual_seed(0)
    m = _Net(forward).eval()
    rng = np.random.default_rng(0)
    path = tmp_path / "m.onnx"
    ds.onnx.export(m, ds.from_numpy(rng.standard_normal((2, *shape)).astype(np.float32)), path, dynamic_batch=dynamic)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for n in (3, 6) if dynamic else (2, 2):
        x = rng.standard_normal((n, *shape)).astype(np.float32)
        with ds.no_grad():
            want = m(ds.from_numpy(x)).numpy()
        got = session.run(None, {session.get_inputs()[0].name: x})[0]
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    return onnx.load(str(path))


def _nonfinite(x: ds.Tensor) -> ds.Tensor:
    # NaN (log of the negatives), +inf and -inf (exp overflows) next to finite values
    return ds.cat([ds.log(x), ds.exp(x * 1000.0), -ds.exp(x * -1000.0), x], dim=1)


@pytest.mark.parametrize(
    "fills",
    [{}, {"nan": 1.5, "posinf": 7.0, "neginf": -3.0}, {"posinf": 2.0}, {"nan": -1.0, "neginf": -1e30}],
)
def test_nan_to_num(fills: dict[str, float], tmp_path: Path) -> None:
    model = _check(lambda m, x: ds.nan_to_num(_nonfinite(x), **fills), (4,), tmp_path)
    ops = [n.op_type for n in model.graph.node]
    assert "IsNaN" in ops and ops.count("IsInf") == 2


def test_nan_to_num_defaults_are_the_dtypes_extremes(tmp_path: Path) -> None:
    # every kind of value present: the defaults (float32's max and lowest) reach the output
    x = np.array([[-1.0, 0.5, 2.0, -0.25]], np.float32)
    with ds.no_grad():
        out = ds.nan_to_num(_nonfinite(ds.from_numpy(x))).numpy()
    assert out.max() == np.finfo(np.float32).max and out.min() == np.finfo(np.float32).min
    _check(lambda m, x: ds.nan_to_num(_nonfinite(x)) / 1e30, (4,), tmp_path)


P_VALUES = [2.0, 1.0, math.inf, 3.0, 0.5, 0.0]


@pytest.mark.parametrize("p", P_VALUES)
def test_pdist_with_the_batch_among_the_features(p: float, tmp_path: Path) -> None:
    # x (B, 4): pdist of x.T's 4 rows, each of B features; the pairs' distances scale each sample
    model = _check(lambda m, x: x.sum(dim=1, keepdim=True) * F.pdist(x.T, p=p), (4,), tmp_path)
    assert "Gather" in {n.op_type for n in model.graph.node}


@pytest.mark.parametrize("p", P_VALUES)
def test_pdist_of_fixed_points_added_to_each_sample(p: float, tmp_path: Path) -> None:
    _check(lambda m, x: x + F.pdist(m.points, p=p)[:4], (4,), tmp_path)


@pytest.mark.parametrize("p", [2.0, 1.0])
def test_pdist_over_the_batch_rows(p: float, tmp_path: Path) -> None:
    # the rows are the samples: exported with a fixed batch, refused with a dynamic one
    _check(lambda m, x: F.pdist(x, p=p), (3,), tmp_path, dynamic=False)
    with pytest.raises(ExportError, match="pdist"):
        _check(lambda m, x: F.pdist(x, p=p), (3,), tmp_path)
