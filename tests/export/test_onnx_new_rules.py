"""ONNX export of ops that became one recorded op with its own gradient rule (cdist for p != 2 on the
host kernels, tril/triu, clamp with tensor bounds, roll, div with a rounding mode, the convolution whose
kernel covers its input): each graph runs in ONNX Runtime on inputs not seen at export and must match
downslope's own output. The ops the exporter cannot write are refused with a message naming them."""

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
from downslope.errors import ExportError  # noqa: E402

# the exporter reads the example's arrays on the host (as the rest of tests/export's ONNX tests)
pytestmark = pytest.mark.host_only


class _Net(ds.nn.Module):
    def __init__(self, forward: Callable[[Any, ds.Tensor], ds.Tensor]) -> None:
        super().__init__()
        self.other = ds.nn.Parameter(ds.randn(5, 4))  # a fixed set of points for cdist
        self.fn = forward

    def forward(self, x: ds.Tensor) -> ds.Tensor:
        return self.fn(self, x)


def _run(path: Path, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def _check(
    forward: Callable[[Any, ds.Tensor], ds.Tensor],
    shape: tuple[int, ...],
    tmp_path: Path,
    dynamic: bool = True,
    model: ds.nn.Module | None = None,
) -> onnx.ModelProto:
    """Export at batch 2; on fresh inputs (batches 3 and 6, or 2 with a fixed batch) ONNX Runtime gives
    downslope's values."""
    ds.manual_seed(0)
    m = (model if model is not None else _Net(forward)).eval()
    rng = np.random.default_rng(0)
    path = tmp_path / "m.onnx"
    ds.onnx.export(m, ds.from_numpy(rng.standard_normal((2, *shape)).astype(np.float32)), path, dynamic_batch=dynamic)
    for n in (3, 6) if dynamic else (2, 2):
        x = rng.standard_normal((n, *shape)).astype(np.float32)
        with ds.no_grad():
            want = m(ds.from_numpy(x)).numpy()
        got = _run(path, x)
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    return onnx.load(str(path))


# ---------------------------------------------------------------------- cdist for p != 2 (host kernels)
P_VALUES = [1.0, math.inf, 0.5, 3.0]


@pytest.mark.parametrize("p", P_VALUES)
def test_cdist_of_batched_point_sets(p: float, tmp_path: Path) -> None:
    # x (B, P, M) against the fixed points (R, M): the batch on the leading dim
    _check(lambda m, x: ds.cdist(x, m.other, p=p), (3, 4), tmp_path)


@pytest.mark.parametrize("p", P_VALUES)
def test_cdist_with_the_batch_as_the_rows_of_either_side(p: float, tmp_path: Path) -> None:
    # x (B, M): the batch on x1's rows P, then on x2's rows R
    _check(lambda m, x: ds.cdist(x, m.other, p=p), (4,), tmp_path)
    _check(lambda m, x: ds.cdist(m.other, x, p=p), (4,), tmp_path)


@pytest.mark.parametrize("p", P_VALUES)
def test_cdist_between_two_values_of_the_input(p: float, tmp_path: Path) -> None:
    _check(lambda m, x: ds.cdist(x, x[:, :2] * 0.5 + 1.0, p=p), (3, 4), tmp_path, dynamic=False)


# ---------------------------------------------------------------------- tril / triu
@pytest.mark.parametrize("diagonal", [-1, 0, 2])
@pytest.mark.parametrize("which", ["tril", "triu"])
def test_triangles(which: str, diagonal: int, tmp_path: Path) -> None:
    _check(lambda m, x: getattr(x, which)(diagonal) * 2.0, (4, 5), tmp_path)


def test_a_triangle_zeroes_nan_and_inf_outside_it(tmp_path: Path) -> None:
    # a product with the mask would keep NaN there; torch (and downslope) give 0
    model = _check(lambda m, x: (ds.log(x) * x.abs().reciprocal()).tril(), (3, 3), tmp_path)
    assert "Where" in {n.op_type for n in model.graph.node}


def test_a_triangle_over_the_batch_dim_is_refused_with_a_dynamic_batch(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="tril/triu's mask"):
        _check(lambda m, x: x.tril(), (4,), tmp_path)
    _check(lambda m, x: x.tril(), (4,), tmp_path, dynamic=False)


# ---------------------------------------------------------------------- clamp with tensor bounds
@pytest.mark.parametrize("bounds", ["both", "min", "max"])
def test_clamp_with_tensor_bounds(bounds: str, tmp_path: Path) -> None:
    def forward(m: Any, x: ds.Tensor) -> ds.Tensor:
        lo = x[:, :1] * 0.1 if bounds != "max" else None
        hi = x[:, 1:2].abs() if bounds != "min" else None
        return x.clamp(min=lo, max=hi)

    _check(forward, (3, 4), tmp_path)


# ---------------------------------------------------------------------- roll
@pytest.mark.parametrize(("shifts", "dims"), [(1, 2), (-3, -1), ((1, 2), (1, 2)), ((5, 1), (1, 1))])
def test_roll(shifts: Any, dims: Any, tmp_path: Path) -> None:
    _check(lambda m, x: x.roll(shifts, dims=dims) + x, (3, 4), tmp_path)


def test_roll_along_the_batch_dim(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="roll along the batch dim 0"):
        _check(lambda m, x: x.roll(1, dims=0), (3,), tmp_path)
    _check(lambda m, x: x.roll(1, dims=0), (3,), tmp_path, dynamic=False)


# ---------------------------------------------------------------------- div(rounding_mode=)
@pytest.mark.parametrize("mode", ["floor", "trunc"])
def test_rounded_division(mode: str, tmp_path: Path) -> None:
    _check(lambda m, x: ds.div(x * 4.0, x[:, :1] + 0.5, rounding_mode=mode), (3,), tmp_path)
    _check(lambda m, x: ds.div(x * 4.0, 0.3, rounding_mode=mode), (3,), tmp_path)


@pytest.mark.parametrize("mode", ["floor", "trunc"])
def test_the_recorded_rounding_mode_is_written_even_where_the_example_cannot_tell(mode: str, tmp_path: Path) -> None:
    # an example of positive quotients rounds the same both ways; the graph must still round negative
    # quotients by the recorded mode
    m = _Net(lambda m, x: ds.div(x * 4.0, 0.3, rounding_mode=mode)).eval()
    rng = np.random.default_rng(0)
    path = tmp_path / "m.onnx"
    ds.onnx.export(m, ds.from_numpy(np.abs(rng.standard_normal((2, 3))).astype(np.float32)), path)
    x = -np.abs(rng.standard_normal((4, 3))).astype(np.float32)
    with ds.no_grad():
        want = m(ds.from_numpy(x)).numpy()
    np.testing.assert_allclose(_run(path, x), want, rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------------- convolution covering its input
def test_a_convolution_whose_kernel_covers_the_input_is_still_a_conv(tmp_path: Path) -> None:
    class Head(ds.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = ds.nn.Conv2d(3, 2, 4)

        def forward(self, x: ds.Tensor) -> ds.Tensor:
            return self.conv(x)

    model = _check(lambda m, x: x, (3, 4, 4), tmp_path, model=Head())
    assert "Conv" in {n.op_type for n in model.graph.node}


# ---------------------------------------------------------------------- still refused, by name
@pytest.mark.parametrize(
    ("name", "forward"),
    [
        ("kthvalue", lambda m, x: x.kthvalue(2, dim=1).values),
    ],
)
def test_ops_the_exporter_cannot_write_are_refused_by_name(name: str, forward: Any, tmp_path: Path) -> None:
    with pytest.raises(ExportError, match=name):
        _check(forward, (4,), tmp_path, dynamic=False)
