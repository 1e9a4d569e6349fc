"""The short path of ``x.var(dim)`` / ``x.std(dim)`` on small host tensors (``functional._small_rows``):
the same values as the general steps (the corrected two-pass formula, NumPy's reductions) bit for bit,
torch's values and gradients, and every other call form left to the general path."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import downslope as ds
from downslope import functional

torch = pytest.importorskip("torch")


def _general_steps(a: np.ndarray, axis: int, keep: bool, root: bool, corr: int = 1) -> np.ndarray:
    """The general path's steps (``functional._corrected_variance`` for arrays too large for the short one)."""
    n = a.shape[axis]
    d = a - np.add.reduce(a, (axis,), keepdims=True) / n
    s1 = np.add.reduce(d, (axis,), keepdims=keep)
    ss = np.add.reduce(d * d, (axis,), keepdims=keep) - s1 * s1 / n
    out = np.maximum(ss, 0) / (n - corr)
    return np.sqrt(out) if root else out


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("shape", "dim"), [((8, 16), 1), ((8, 16), 0), ((8, 16), -1), ((3, 4, 5), 1), ((2, 50), 1)])
@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("unbiased", [None, False, True])
@pytest.mark.parametrize("name", ["var", "std"])
def test_short_path_gives_the_general_steps_bits_and_torchs_values(name, dtype, shape, dim, keepdim, unbiased):
    rng = np.random.default_rng(11)
    a = (rng.standard_normal(shape) * 3 + 1e3).astype(dtype)  # far from 0: the correction term matters
    ours = getattr(ds.from_numpy(a), name)(dim, unbiased, keepdim=keepdim).numpy()
    expected = _general_steps(a, dim % a.ndim, keepdim, name == "std", 0 if unbiased is False else 1)
    assert ours.dtype == dtype and ours.shape == expected.shape
    np.testing.assert_array_equal(ours.view(np.uint8), expected.view(np.uint8))
    theirs = getattr(torch.from_numpy(a), name)(dim, unbiased is not False, keepdim=keepdim).numpy()
    np.testing.assert_allclose(ours, theirs, rtol=2e-5 if dtype == np.float32 else 1e-12)


@pytest.mark.parametrize("name", ["var", "std"])
def test_short_path_gradients_match_torch(name):
    a = np.random.default_rng(2).standard_normal((8, 16)).astype(np.float64)
    a[3] = 2.0  # a constant row: std's gradient is 0 there, as torch's
    xd = ds.from_numpy(a.copy()).requires_grad_(True)
    getattr(xd, name)(1).pow(2).sum().backward()
    xt = torch.from_numpy(a.copy()).requires_grad_(True)
    getattr(xt, name)(1).pow(2).sum().backward()
    np.testing.assert_allclose(xd.grad.numpy(), xt.grad.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.host_only  # the short path is for host arrays
def test_short_path_is_taken_only_for_the_plain_call(monkeypatch):
    calls: list[int] = []
    short = functional._small_rows_variance
    monkeypatch.setattr(functional, "_small_rows_variance", lambda *a: (calls.append(1), short(*a))[1])
    x = ds.randn(8, 16)
    x.var(1)
    x.std(1)
    x.std(1, False)
    assert len(calls) == 3
    # other corrections, a tuple of dims, a long or 1-d tensor: the general path (the same steps otherwise)
    ours = x.var(1, correction=0).numpy()
    a = x.numpy()
    np.testing.assert_allclose(ours, a.var(1), rtol=1e-5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        x.var((0, 1))
        ds.randn(16).var(0)
        ds.randn(64, 64).std(1)
    with pytest.warns(UserWarning, match="degrees of freedom"):
        y = ds.randn(8, 1).var(1)  # one element per row: torch's warning, NaN
    assert np.isnan(y.numpy()).all()


@pytest.mark.host_only  # (the float64 redo of an overflowing float32 std is the host's)
def test_short_path_keeps_nan_and_inf_as_torch():
    a = np.ones((4, 6), np.float32)
    a[0, 1] = np.nan
    a[1, 2] = np.inf
    a[2] = 3e25  # a float32 square sum past its range: std redone in float64, as torch accumulates
    a[2, 0] = -3e25
    with np.errstate(all="ignore"):
        for name in ("var", "std"):
            ours = getattr(ds.from_numpy(a), name)(1).numpy()
            theirs = getattr(torch.from_numpy(a), name)(1).numpy()
            np.testing.assert_allclose(ours, theirs, rtol=1e-5)
