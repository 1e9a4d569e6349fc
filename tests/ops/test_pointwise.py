"""Pointwise ops (downslope.ops.pointwise) against PyTorch: result dtypes of mixed categories."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("bounds", [(1.5, 3.5), (1, 3.5), (1.5, None), (None, 0.5), (1, 3), (np.float64(1.5), None)])
@pytest.mark.parametrize("dtype", ["int64", "uint8", "bool"])
def test_clamp_of_an_integer_tensor_with_number_bounds_promotes_like_torch(bounds, dtype):
    data = [5, 2, 0] if dtype != "bool" else [True, False, True]
    lo, hi = bounds
    if dtype == "bool" and isinstance(lo, int) and isinstance(hi, int):
        pytest.skip("torch refuses an integer clamp of bool")
    ref = torch.clamp(torch.tensor(data, dtype=getattr(torch, dtype)), lo, hi)
    got = ds.clamp(ds.tensor(data, dtype=getattr(ds, dtype)), lo, hi)
    assert str(got.dtype) == str(ref.dtype).replace("torch.", "")
    np.testing.assert_array_equal(got.numpy(), ref.numpy())
    got = ds.tensor(data, dtype=getattr(ds, dtype)).clip(lo, hi)
    assert str(got.dtype) == str(ref.dtype).replace("torch.", "")


def test_where_refuses_a_non_boolean_condition_tensor_as_torch() -> None:
    torch = pytest.importorskip("torch")
    cond = np.array([0.5, 0.0, -2.0], np.float32)
    with pytest.raises(RuntimeError):
        torch.where(torch.tensor(cond), torch.ones(3), torch.zeros(3))
    with pytest.raises(ds.errors.ArgumentTypeError, match="where: expected a boolean condition, got dtype float32"):
        ds.where(ds.tensor(cond), ds.ones(3), ds.zeros(3))  # was "nonzero is true"
    with pytest.raises(ds.errors.ArgumentTypeError, match="where"):
        ds.where(None, ds.ones(3), ds.zeros(3))
    np.testing.assert_array_equal(ds.where(ds.tensor(cond) > 0, 1.0, 0.0).numpy(), [1.0, 0.0, 0.0])
    # internal callers pass arrays (NumPy masks): those are still read as truth values
    np.testing.assert_array_equal(ds.where(cond > 0, ds.ones(3), ds.zeros(3)).numpy(), [1.0, 0.0, 0.0])


def _grads(m, fn, values, order=2):
    x = m.tensor(values, dtype=m.float64, requires_grad=True)
    y = fn(m, x)
    (g,) = m.autograd.grad(y.sum(), x, create_graph=True)
    (h,) = m.autograd.grad(g.sum(), x)
    return np.array(y.tolist()), np.array(g.tolist()), np.array(h.tolist())


def test_sinc_derivatives_near_zero_match_torch_and_the_series():
    values = [0.1, 0.159, 0.16, 0.5, 1.0, -0.3, 2.5, 1e-3]
    ours = _grads(ds, lambda m, x: m.sinc(x), values)
    theirs = _grads(torch, lambda m, x: m.sinc(x), values)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=1e-8)
    # at 0 the second derivative is -pi^2/3 (better than torch, which gives NaN there), and near 0
    # the first one keeps its digits (torch's (cos - sinc) / x cancels at x = 1e-8)
    _, g, h = _grads(ds, lambda m, x: m.sinc(x), [0.0, 1e-8, -1e-8])
    np.testing.assert_allclose(h, [-(np.pi**2) / 3] * 3, rtol=1e-14)
    np.testing.assert_allclose(g, [0.0, -(np.pi**2) / 3 * 1e-8, np.pi**2 / 3 * 1e-8], rtol=1e-14)
    assert not np.signbit(g[0])  # +0, as torch's


@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning", "ignore:invalid value:RuntimeWarning")
@pytest.mark.parametrize("eps", [None, 0.0, 0.1, 0.5, 0.6, -0.1])
def test_logit_eps_matches_torch_in_values_and_gradients(eps):
    values = [0.0, 0.3, 0.5, 0.7, 1.0, 2.0, -1.0, float("nan"), 0.1, 0.9]
    ours = _grads(ds, lambda m, x: m.logit(x, eps), values)
    theirs = _grads(torch, lambda m, x: m.logit(x, eps), values)
    np.testing.assert_allclose(ours[0], theirs[0], rtol=1e-13)
    np.testing.assert_allclose(ours[1], theirs[1], rtol=1e-13)
    # second derivatives: torch's are NaN where the gradient is constantly 0 (outside [eps, 1 - eps]);
    # ours are 0 there, and agree elsewhere
    agree = ~np.isnan(theirs[2])
    np.testing.assert_allclose(ours[2][agree], theirs[2][agree], rtol=1e-12)


def test_logit_eps_on_every_spelling():
    x = [0.3, 0.7]
    expected = torch.logit(torch.tensor(x), eps=0.6).tolist()  # eps > 0.5: x < eps reads as eps first
    assert ds.logit(ds.tensor(x), eps=0.6).tolist() == pytest.approx(expected)
    assert ds.logit(ds.tensor(x), 0.6).tolist() == pytest.approx(expected)
    assert ds.special.logit(ds.tensor(x), eps=0.6).tolist() == pytest.approx(expected)
    assert ds.tensor(x).logit(eps=0.6).tolist() == pytest.approx(expected)
    t = ds.tensor(x)
    assert t.logit_(eps=0.6) is t and t.tolist() == pytest.approx(expected)
    assert ds.logit(ds.tensor([1, 0]), eps=0.1).tolist() == pytest.approx(
        torch.logit(torch.tensor([1, 0]), eps=0.1).tolist()
    )
    assert ds.logit(ds.tensor([0.5], requires_grad=True), 0.2).grad_fn.name() == "LogitBackward0"


@pytest.mark.parametrize("name", ["sign", "sgn"])
@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_sign_of_nan_is_zero_as_torch(name: str, dtype: str) -> None:
    vals = [float("nan"), -0.0, 0.0, -2.0, 3.0, float("inf"), -float("inf")]
    want = getattr(torch, name)(torch.tensor(vals, dtype=getattr(torch, dtype))).numpy()
    x = ds.tensor(vals, dtype=getattr(ds, dtype), requires_grad=True)
    y = getattr(ds, name)(x)
    np.testing.assert_array_equal(y.detach().numpy(), want)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.zeros(len(vals), dtype))
