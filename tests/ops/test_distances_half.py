"""float16 pdist and cdist computed in float32 and rounded once, on every device (torch's CPU refuses
float16 here; its CUDA kernels compute in float32): coordinates near 300 overflow float16's squares and
cubes, which recorded float16 ops would turn into inf and NaN gradients."""

from __future__ import annotations

import math

import numpy as np
import pytest

import downslope as ds
import downslope.nn.functional as F

POINTS = np.array([[300, 0], [0, 400], [10, 20]], np.float16)
OTHERS = np.array([[200, 100], [-300, 50]], np.float16)


def _grads(fn, arrays: tuple[np.ndarray, ...], dtype) -> tuple[np.ndarray, list[np.ndarray]]:
    inputs = [ds.tensor(a.astype(dtype), requires_grad=True) for a in arrays]
    out = fn(*inputs)
    (out * ds.arange(1.0, out.numel() + 1.0).reshape(out.shape).to(out.dtype)).sum().backward()
    return out.detach().cpu().numpy(), [t.grad.cpu().numpy() for t in inputs]


@pytest.mark.parametrize("p", [2.0, 3.0, 0.5, 1.0, math.inf])
@pytest.mark.parametrize("op", ["pdist", "cdist"])
def test_float16_distances_are_float32_rounded_once(op: str, p: float) -> None:
    if op == "pdist":
        fn, arrays = (lambda x: F.pdist(x, p)), (POINTS,)
    else:
        fn, arrays = (lambda x, y: ds.cdist(x, y, p)), (POINTS, OTHERS)
    half, half_grads = _grads(fn, arrays, np.float16)
    wide, wide_grads = _grads(fn, arrays, np.float32)
    assert half.dtype == np.float16
    np.testing.assert_array_equal(half, wide.astype(np.float16))
    for got, want in zip(half_grads, wide_grads):
        assert got.dtype == np.float16 and np.isfinite(got).all()
        # each gradient rounded once from float32 (the float16 weights, exact in both, are the same)
        np.testing.assert_allclose(got, want, rtol=2e-3, atol=2e-3)
