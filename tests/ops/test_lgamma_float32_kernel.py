"""The compiled float32 lgamma (ops._jit_special.lgamma_float32, computed in float64 with SIMD loops):
its error in float32 ulps against an exact float64 reference on dense grids (negatives, around the
poles, the floats next to the zeros at 1 and 2, huge and subnormal x), its special values, and its
agreement with torch and with the NumPy path."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds
from downslope import jit_gate
from downslope.ops import special

torch = pytest.importorskip("torch")
scipy_special = pytest.importorskip("scipy.special")


def _kernels():
    k = jit_gate.kernels("downslope.ops._jit_special", np.zeros(1, np.float32))
    if k is None:
        pytest.skip("numba is not installed or the compiled path is switched off")
    return k


def _neighbours(center: float, count: int) -> np.ndarray:
    """The ``count`` float32 values on each side of ``center``."""
    c = np.float32(center)
    below = c - np.spacing(c) * np.arange(1, count + 1, dtype=np.float32) / (2 if center in (1.0, 2.0) else 1)
    above = c + np.spacing(c) * np.arange(1, count + 1, dtype=np.float32)
    return np.concatenate([below, above]).astype(np.float32)


def _grid() -> np.ndarray:
    rng = np.random.default_rng(0)
    parts = [
        np.linspace(-60, 60, 240_001),
        np.linspace(0.5, 2.5, 100_001),
        np.exp(rng.uniform(-100, 88, 100_000)),  # 4e-44 .. 1.6e38: subnormals and huge x
        -np.exp(rng.uniform(-100, 15, 50_000)),  # negatives up to where every float32 is an integer
        _neighbours(1.0, 3000),
        _neighbours(2.0, 3000),
        *(_neighbours(-k + 0.5, 50) for k in range(0, 30)),
        *(_neighbours(-k, 200) for k in range(1, 30)),  # next to the poles
        np.array([1e-45, -1e-45, 3.4028235e38, 1e30, 8.0, 7.9999995, 8.000001, 0.5, -0.5]),
    ]
    return np.concatenate(parts).astype(np.float32)


def _ulp_errors(got: np.ndarray, x: np.ndarray) -> np.ndarray:
    exact = scipy_special.gammaln(x.astype(np.float64))  # float64: exact to far below a float32 ulp
    with np.errstate(over="ignore"):
        ulp = np.spacing(np.abs(exact.astype(np.float32))).astype(np.float64)
    finite = np.isfinite(exact) & np.isfinite(ulp)
    return np.abs(got[finite].astype(np.float64) - exact[finite]) / ulp[finite]


def test_float32_kernel_is_within_one_ulp_on_dense_grids_and_beats_the_c_library():
    k = _kernels()
    x = _grid()
    ours, libm = np.empty_like(x), np.empty_like(x)
    k.lgamma_float32(x, ours)
    k.lgamma(x, libm)  # the C library, per element
    errors = _ulp_errors(ours, x)
    assert errors.max() <= 1.0, f"max error {errors.max():.3f} ulp at x = {x[np.argmax(errors)]!r}"
    theirs = torch.lgamma(torch.from_numpy(x)).numpy()
    positive = x > 0
    # torch's lgammaf is within about 1 ulp for x > 0 and far off near the zeros of x < 0: compare there
    assert errors.max() <= _ulp_errors(theirs[positive], x[positive]).max() + 0.5
    assert errors.max() <= _ulp_errors(libm, x).max()


def test_float32_kernel_special_values():
    k = _kernels()
    x = np.array([1.0, 2.0, 0.0, -0.0, -1.0, -7.0, -8388608.0, np.inf, -np.inf, np.nan, 3.4028235e38, 1.0e-45],
                 dtype=np.float32)  # fmt: skip
    out = np.empty_like(x)
    k.lgamma_float32(x, out)
    assert out[:2].tolist() == [0.0, 0.0] and not np.signbit(out[:2]).any()  # exactly 0, as torch
    assert np.isposinf(out[2:9]).all()  # the poles and +-inf
    assert np.isnan(out[9])
    assert np.isposinf(out[10])  # 2.6e40 is past float32's range
    np.testing.assert_allclose(out[11], scipy_special.gammaln(float(x[11])), rtol=1e-7)  # x[11] is 1.4e-45
    theirs = torch.lgamma(torch.from_numpy(x)).numpy()
    np.testing.assert_array_equal(out, theirs)


@pytest.mark.parametrize("scale, shift", [(1.0, 0.0), (10.0, 5.0), (1e3, 0.0)])
def test_large_float32_lgamma_matches_torch_and_the_numpy_path(scale, shift):
    _kernels()
    rng = np.random.default_rng(1)
    x = (rng.standard_normal((300, 70)) * scale + shift).astype(np.float32)  # past JIT_SPECIAL_MIN_SIZE
    x[0, :5] = [1.0, 2.0, -3.0, 0.0, np.nan]
    assert x.size >= special.JIT_SPECIAL_MIN_SIZE
    ours = ds.lgamma(ds.from_numpy(x)).numpy()
    with jit_gate.disabled():
        numpy_path = ds.lgamma(ds.from_numpy(x)).numpy()
    theirs = torch.lgamma(torch.from_numpy(x)).numpy()
    exact = scipy_special.gammaln(x.astype(np.float64))
    with np.errstate(invalid="ignore"):
        away_from_zeros = np.abs(exact) > 1e-3
    for other in (numpy_path, theirs):
        np.testing.assert_allclose(ours[away_from_zeros], other[away_from_zeros], rtol=2e-6)
        np.testing.assert_array_equal(np.isfinite(ours), np.isfinite(other))
    assert _ulp_errors(ours.reshape(-1), x.reshape(-1)).max() <= 1.0
