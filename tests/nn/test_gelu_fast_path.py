"""Exact GELU of float32 input on both paths (the compiled one-pass kernels and the NumPy
erfc fit) against PyTorch in float64 (the exact value) and float32, special values included; and
the tanh form at the float's extremes."""

from __future__ import annotations

import math

import numpy as np
import pytest

import downslope as ds
import downslope.nn.functional as F

torch = pytest.importorskip("torch")
TF = torch.nn.functional

SPECIAL = [np.inf, -np.inf, np.nan, 0.0, -0.0, 3e38, -3e38, 1e20, -1e20, 1e-40, -1e-40, 40.0, -40.0, -13.0, 5.5]


def _grid() -> np.ndarray:
    rng = np.random.default_rng(0)
    return np.concatenate([np.linspace(-10, 10, 20_001), rng.standard_normal(5_000) * 3]).astype(np.float32)


def _ours(a: np.ndarray, **kw: object) -> tuple[np.ndarray, np.ndarray]:
    x = ds.tensor(a, requires_grad=True)
    y = F.gelu(x, **kw)
    y.backward(ds.ones_like(y))
    return y.detach().numpy(), x.grad.numpy()


def _torch(a: np.ndarray, dtype: object, **kw: object) -> tuple[np.ndarray, np.ndarray]:
    t = torch.tensor(a, dtype=dtype, requires_grad=True)
    y = TF.gelu(t, **kw)
    y.backward(torch.ones_like(y))
    return y.detach().numpy(), t.grad.numpy()


def _exact(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """x Phi(x) and its derivative in float64 from erfc (torch's float64 1 + erf(x / sqrt 2) loses the
    lower tail: half its value at x = -10)."""
    x = a.astype(np.float64)
    cdf = 0.5 * np.array([math.erfc(-v / math.sqrt(2)) for v in x.tolist()])
    with np.errstate(invalid="ignore", over="ignore"):  # at +-inf: inf * 0, NaN
        return x * cdf, cdf + x * np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)


def test_gelu_float32_is_close_to_the_exact_value(kernels: str) -> None:
    a = _grid()
    y, gx = _ours(a)
    want, want_g = _exact(a)
    assert y.dtype == np.float32 and gx.dtype == np.float32
    big = np.abs(want) > 1e-30
    rel = np.abs(y - want)[big] / np.abs(want[big])
    # the erfc fit and the rounding of the float32 argument, growing with x^2 in the lower tail
    assert rel.max() < 1e-5
    assert rel[a[big] > -8].max() < 6e-6
    assert rel[np.abs(a[big]) < 3].max() < 1.5e-6
    np.testing.assert_allclose(gx, want_g, rtol=2e-6, atol=3e-7)
    # PyTorch's float32 GELU: 1 + erf(x / sqrt 2) loses the lower tail, so compare near its own error
    t_y, t_g = _torch(a, torch.float32)
    np.testing.assert_allclose(y, t_y, rtol=1e-5, atol=2e-6)
    np.testing.assert_allclose(gx, t_g, rtol=1e-5, atol=1e-6)


def test_gelu_paths_agree_and_special_values() -> None:
    a = np.concatenate([_grid(), np.array(SPECIAL, np.float32)])
    from downslope.nn import _jit

    with _jit.disabled():
        y_np, g_np = _ours(a)
    y, gx = _ours(a)
    near = np.abs(a) < 3  # (in the lower tail the two round x^2 / 2 differently: a few ulps of its size)
    np.testing.assert_allclose(y[near], y_np[near], rtol=1.5e-6, atol=1e-30)
    np.testing.assert_allclose(y, y_np, rtol=6e-6, atol=1e-30)
    np.testing.assert_allclose(gx, g_np, rtol=1e-5, atol=1e-7)  # (atol: where the gradient crosses 0)
    s = np.array(SPECIAL, np.float32)
    ys, gs = _ours(s)
    t_y, t_g = _exact(s)
    assert np.isnan(ys[2]) and np.isnan(ys[1]) and np.isnan(gs[2])  # NaN and -inf * Phi(-inf) = -inf * 0
    assert ys[0] == np.inf and gs[0] == 1.0 or np.isnan(gs[0])
    finite = np.isfinite(s)
    np.testing.assert_allclose(ys[finite], t_y[finite].astype(np.float32), rtol=2e-6, atol=1e-37)
    np.testing.assert_array_equal(np.signbit(ys[finite]), np.signbit(t_y[finite]))
    finite_g = np.abs(s) < 1e19  # (past that x^2 overflows float32: NaN, as torch's float32 gradient)
    np.testing.assert_allclose(gs[finite_g], t_g[finite_g], rtol=2e-6, atol=1e-30)


def test_gelu_layouts_shapes_dtypes_and_no_grad(kernels: str) -> None:
    rng = np.random.default_rng(1)
    base = rng.standard_normal((6, 10)).astype(np.float32)
    x = ds.tensor(base, requires_grad=True)
    y = F.gelu(x.T[::2])  # a strided view
    y.backward(ds.tensor(np.arange(30, dtype=np.float32).reshape(5, 6) * 0.1))
    tx = torch.tensor(base, requires_grad=True)
    ty = TF.gelu(tx.T[::2])
    ty.backward(torch.arange(30, dtype=torch.float32).reshape(5, 6) * 0.1)
    np.testing.assert_allclose(y.detach().numpy(), ty.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-5, atol=1e-6)
    assert F.gelu(ds.tensor(1.0)).shape == () and abs(F.gelu(ds.tensor(1.0)).item() - 0.8413447) < 1e-6
    assert F.gelu(ds.zeros(0, 3)).shape == (0, 3)
    with ds.no_grad():
        z = F.gelu(ds.tensor(base, requires_grad=True))
    assert not z.requires_grad
    np.testing.assert_allclose(z.numpy(), TF.gelu(torch.from_numpy(base)).numpy(), rtol=1e-5, atol=1e-6)
    h = F.gelu(ds.tensor(base, dtype=ds.float16))
    assert h.dtype == ds.float16
    np.testing.assert_allclose(
        h.numpy(), TF.gelu(torch.tensor(base, dtype=torch.float16)).numpy(), rtol=2e-3, atol=1e-3
    )


def test_gelu_double_backward_matches_torch(kernels: str) -> None:
    a = np.random.default_rng(2).standard_normal(40).astype(np.float32)
    x, tx = ds.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    (gx,) = ds.autograd.grad(F.gelu(x).sum(), (x,), create_graph=True)
    (gx * gx).sum().backward()
    (tgx,) = torch.autograd.grad(TF.gelu(tx).sum(), (tx,), create_graph=True)
    (tgx * tgx).sum().backward()
    np.testing.assert_allclose(gx.detach().numpy(), tgx.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16"])
def test_gelu_tanh_at_the_extremes_matches_torch(dtype: str) -> None:
    big = {"float32": 3e38, "float64": 1e300, "float16": 6e4}[dtype]
    a = np.array([big, -big, big / 2, -big / 2, 1e-40, 3.0, -3.0, np.inf, -np.inf], dtype=dtype)
    x = ds.tensor(a, dtype=getattr(ds, dtype), requires_grad=True)
    y = F.gelu(x, approximate="tanh")
    y.backward(ds.ones_like(y))
    t = torch.tensor(a, requires_grad=True)
    ty = TF.gelu(t, approximate="tanh")
    ty.backward(torch.ones_like(ty))
    ours, theirs = y.detach().numpy(), ty.detach().numpy()
    assert ours[0] == a[0] and ours[2] == a[2]  # x itself: tanh saturates to 1, no overflow
    np.testing.assert_allclose(ours, theirs, rtol=1e-3 if dtype == "float16" else 1e-6, atol=1e-6)
    np.testing.assert_array_equal(np.signbit(ours), np.signbit(theirs))  # -huge: -0.0 as torch
    np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), rtol=1e-3 if dtype == "float16" else 1e-6, atol=1e-6)
