"""adaptive_max_pool2d's compiled kernel (and the NumPy path beside it) against torch: values and
gradients at small, non-divisible sizes, ties and NaN (torch's winner: the first maximum in
row-major order, or the last NaN), create_graph, and one op per call."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import downslope as ds
import downslope.nn.functional as F
from downslope import jit_gate

torch = pytest.importorskip("torch")
TF = torch.nn.functional


def _compare(x: np.ndarray, size: Any, dtype: str) -> None:
    r = np.random.default_rng(9).standard_normal(TF.adaptive_max_pool2d(torch.tensor(x), size).shape)
    results = []
    for lib in (torch, ds):
        xt = lib.tensor(x, dtype=getattr(lib, dtype), requires_grad=True)
        out = lib.nn.functional.adaptive_max_pool2d(xt, size)
        (out * lib.tensor(r, dtype=getattr(lib, dtype))).sum().backward()
        results.append((out.detach().numpy(), xt.grad.numpy()))
    (want_out, want_grad), (got_out, got_grad) = results
    np.testing.assert_array_equal(got_out, want_out)
    # overlapping windows add into one place: the NumPy path sums in another order than torch's
    np.testing.assert_allclose(got_grad, want_grad, rtol=1e-6 if dtype == "float32" else 1e-14, atol=0)


@pytest.mark.parametrize(
    "shape,size", [((1, 4, 30, 25), 7), ((2, 3, 9, 7), (4, 5)), ((3, 8, 8), 3), ((1, 2, 5, 6), (5, 6))]
)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_adaptive_max_pool2d_matches_torch(resample_path: str, shape: Any, size: Any, dtype: str) -> None:
    _compare(np.random.default_rng(0).standard_normal(shape), size, dtype)


def test_adaptive_max_pool2d_ties_and_nan_match_torch(resample_path: str) -> None:
    x = np.random.default_rng(1).integers(0, 3, (2, 3, 11, 9)).astype(np.float64)  # many ties
    x[0, 0, 2, 3] = x[0, 0, 4, 4] = np.nan  # two NaNs in overlapping windows
    x[1, 2, :, :] = -np.inf
    _compare(x, (4, 3), "float64")


def test_adaptive_max_pool2d_create_graph_matches_numpy_path() -> None:
    if jit_gate.kernels("downslope.nn._jit_resample", np.zeros(1)) is None:
        pytest.skip("numba is not installed (the jit extra)")
    x = np.random.default_rng(2).standard_normal((2, 3, 10, 7))

    def second(compiled: bool) -> np.ndarray:
        xt = ds.tensor(x, dtype=ds.float64, requires_grad=True)
        if compiled:
            out = F.adaptive_max_pool2d(xt, (3, 4))
        else:
            with jit_gate.disabled():
                out = F.adaptive_max_pool2d(xt, (3, 4))
        (gx,) = ds.autograd.grad((out * out * out).sum(), [xt], create_graph=True)
        return ds.autograd.grad((gx * xt).sum(), [xt])[0].numpy()

    np.testing.assert_allclose(second(True), second(False), rtol=1e-13, atol=0)  # overlaps: another sum order


def test_adaptive_max_pool2d_is_one_op() -> None:
    # the NumPy formulation pools each non-divisible window with its own slice and reduction (a
    # Python op per window: 26x torch's time at 30x25 -> 7x7); the kernel is one recorded op
    x = ds.randn(1, 4, 30, 25, requires_grad=True)
    if jit_gate.kernels("downslope.nn._jit_resample", x.array) is None:
        pytest.skip("no numba (the jit extra), or the data is not on the host")
    out = F.adaptive_max_pool2d(x, 7)
    assert out._parents == (x,)
