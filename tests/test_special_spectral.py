"""torch.special's orthogonal polynomials, Bessel/Airy functions and Hurwitz's zeta against PyTorch: values
over wide ranges (ends of the interval, |x| > 1, NaN/inf), torch's conventions for the degree n (a tensor,
negative, non-integer, NaN), result dtypes, and gradients (none in torch but zeta's in q)."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")

POLYNOMIALS = [
    "chebyshev_polynomial_t", "chebyshev_polynomial_u", "chebyshev_polynomial_v", "chebyshev_polynomial_w",
    "shifted_chebyshev_polynomial_t", "shifted_chebyshev_polynomial_u", "shifted_chebyshev_polynomial_v",
    "shifted_chebyshev_polynomial_w", "legendre_polynomial_p", "hermite_polynomial_h", "hermite_polynomial_he",
    "laguerre_polynomial_l",
]  # fmt: skip
UNARY = [
    "bessel_j0", "bessel_j1", "bessel_y0", "bessel_y1", "modified_bessel_k0", "modified_bessel_k1",
    "scaled_modified_bessel_k0", "scaled_modified_bessel_k1", "spherical_bessel_j0", "airy_ai",
]  # fmt: skip
F32_EPS = float(np.finfo(np.float32).eps)


def _points(rng: np.random.Generator) -> np.ndarray:
    special = [-1.0, 1.0, 0.0, 0.5, -0.5, 2.0, -2.0, 1 - 2.0**-40, np.inf, -np.inf, np.nan]
    return np.concatenate([rng.uniform(-1, 1, 150), rng.uniform(-3, 3, 80), special])


def _same_non_finite(got: np.ndarray, want: np.ndarray) -> None:
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_array_equal(np.where(np.isinf(want), got, 0), np.where(np.isinf(want), want, 0))


DEGREES = np.array([-3, -1.5, 0, 0.9, 1, 2, 2.7, 3, 5, 7, 8, 9, 12, 20, 60, 129, 600, np.nan, np.inf, -np.inf])


@pytest.mark.parametrize("name", POLYNOMIALS)
def test_polynomial_float64_matches_torch(name: str) -> None:
    x = _points(np.random.default_rng(0))[:, None]
    want = getattr(torch.special, name)(torch.tensor(x), torch.tensor(DEGREES)[None]).numpy()
    got = getattr(ds.special, name)(ds.tensor(x, dtype=ds.float64), ds.tensor(DEGREES, dtype=ds.float64)[None])
    assert got.dtype == ds.float64
    got = got.numpy()
    _same_non_finite(got, want)
    finite = np.isfinite(want)
    # relative to the value, or to 1 where the polynomial is small (its terms are O(1) there)
    scale = np.maximum(np.abs(want[finite]), 1.0)
    assert np.max(np.abs(got[finite] - want[finite]) / scale) < 1e-11


@pytest.mark.parametrize("name", POLYNOMIALS)
def test_polynomial_float32_as_accurate_as_torch(name: str) -> None:
    x = _points(np.random.default_rng(1)).astype(np.float32)[:, None]
    n = DEGREES.astype(np.float32)[None]
    fn = getattr(torch.special, name)
    want32 = fn(torch.tensor(x), torch.tensor(n)).numpy()
    exact = fn(torch.tensor(x, dtype=torch.float64), torch.tensor(n, dtype=torch.float64)).numpy()
    got = getattr(ds.special, name)(ds.tensor(x), ds.tensor(n))
    assert got.dtype == ds.float32
    got = got.numpy()
    # float32 overflow included (torch's recurrence goes on to inf - inf = NaN), but not within 2^10 of the
    # overflow threshold, where it depends on whether the compiler fused torch's multiply-adds
    top = float(np.finfo(np.float32).max)
    clear = (np.abs(exact) < top / 2**10) | (np.abs(exact) > top * 2**10) | np.isnan(exact)
    _same_non_finite(got[clear], want32[clear])
    both = np.isfinite(want32) & np.isfinite(exact)
    # no further from the float64 values than torch's own float32 kernel, give or take a few roundings
    torch_error = np.abs(want32[both] - exact[both])
    bound = 2 * torch_error + 4 * F32_EPS * np.maximum(np.abs(exact[both]), 1.0)
    assert np.all(np.abs(got[both] - exact[both]) <= bound)


def test_polynomial_degree_conventions_and_dtypes() -> None:
    f, t = ds.special.chebyshev_polynomial_t, torch.special.chebyshev_polynomial_t
    for x, n in [(0.3, ds.tensor([2.7, -1.0, 3.0])), (ds.tensor([0.5, 2.0]), 3), (ds.tensor([1, 2]), 3)]:
        tx = torch.tensor(x.numpy()) if isinstance(x, ds.Tensor) else x
        tn = torch.tensor(n.numpy()) if isinstance(n, ds.Tensor) else n
        want = t(tx, tn)
        got = f(x, n)
        assert str(got.dtype).replace("ds.", "") in str(want.dtype)
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-6)
    mixed = f(ds.tensor([0.5]), ds.tensor([3.0], dtype=ds.float64))
    assert mixed.dtype == ds.float64  # torch promotes float32 with a float64 tensor n
    out = ds.empty(2)
    assert ds.special.legendre_polynomial_p(ds.tensor([0.5, 0.25]), 2, out=out) is out


@pytest.mark.parametrize("name", ["legendre_polynomial_p", "hermite_polynomial_h", "chebyshev_polynomial_w"])
def test_polynomial_has_no_derivative_as_torch(name: str) -> None:
    # torch's output does not require grad: a loss that adds it backpropagates through the rest
    x = ds.tensor([0.3, 0.6], requires_grad=True)
    y = getattr(ds.special, name)(x, 3)
    assert y.requires_grad is False
    ((x * x).sum() + y.sum()).backward()
    np.testing.assert_allclose(x.grad.numpy(), [0.6, 1.2])


def _unary_points(rng: np.random.Generator) -> np.ndarray:
    special = [0.0, -0.0, 1e-6, 5.0, -5.0, 2.0, -2.0, 2.09, -2.09, 8.3203353, 103.892, 104.0, -104.0, 1e-300]
    return np.concatenate([
        rng.uniform(-10, 10, 300), rng.uniform(-200, 200, 100), 10 ** rng.uniform(-12, 3, 100), special,
        [np.inf, -np.inf, np.nan],
    ])  # fmt: skip


@pytest.mark.parametrize("name", UNARY)
def test_bessel_and_airy_float64_match_torch(name: str) -> None:
    x = _unary_points(np.random.default_rng(2))
    want = getattr(torch.special, name)(torch.tensor(x)).numpy()
    got = getattr(ds.special, name)(ds.tensor(x, dtype=ds.float64)).numpy()
    _same_non_finite(got, want)
    finite = np.isfinite(want) & (want != 0)
    assert np.max(np.abs(got[finite] - want[finite]) / np.abs(want[finite])) < 1e-13
    np.testing.assert_array_equal(got[want == 0], 0.0)


@pytest.mark.parametrize("name", UNARY)
def test_bessel_and_airy_float32_round_the_float64_values(name: str) -> None:
    x = _unary_points(np.random.default_rng(3)).astype(np.float32)
    exact = getattr(torch.special, name)(torch.tensor(x, dtype=torch.float64)).numpy().astype(np.float32)
    got = getattr(ds.special, name)(ds.tensor(x))
    assert got.dtype == ds.float32
    got = got.numpy()
    _same_non_finite(got, exact)
    finite = np.isfinite(exact)
    np.testing.assert_array_max_ulp(got[finite], exact[finite], maxulp=1)


def test_bessel_has_no_derivative_as_torch() -> None:
    x = ds.tensor([0.5], requires_grad=True)
    assert ds.special.bessel_j0(x).requires_grad is False
    ((x * x).sum() + ds.special.bessel_j0(x).sum()).backward()
    np.testing.assert_allclose(x.grad.numpy(), [1.0])


def test_zeta_matches_torch() -> None:
    rng = np.random.default_rng(4)
    xs = np.concatenate([rng.uniform(0.5, 10, 40), [1.0, 2.0, 3.0, 4.0, 1.0000001, 40.0, 80.0, 0.9, np.nan, np.inf]])
    qs = np.concatenate([rng.uniform(-10, 10, 30), 10 ** rng.uniform(-5, 4, 15)])
    qs = np.concatenate([qs, [0.0, -1.0, -2.5, 1.0, 2.0, 1e-8, np.nan, np.inf, -np.inf]])
    x, q = np.meshgrid(xs, qs)
    want = torch.special.zeta(torch.tensor(x), torch.tensor(q)).numpy()
    got = ds.special.zeta(ds.tensor(x, dtype=ds.float64), ds.tensor(q, dtype=ds.float64)).numpy()
    _same_non_finite(got, want)
    finite = np.isfinite(want) & (want != 0)
    assert np.max(np.abs(got[finite] - want[finite]) / np.abs(want[finite])) < 1e-13
    np.testing.assert_allclose(ds.special.zeta(2.0, ds.tensor([1.0])).numpy(), [np.pi**2 / 6], rtol=1e-7)


def test_zeta_gradient_in_q_and_none_in_x() -> None:
    x = np.array([2.3, 4.0, 1.5])
    q = np.array([1.5, 3.0, 0.25])
    tq = torch.tensor(q, requires_grad=True)
    torch.special.zeta(torch.tensor(x), tq).sum().backward()
    dq = ds.tensor(q, dtype=ds.float64, requires_grad=True)
    ds.special.zeta(ds.tensor(x, dtype=ds.float64), dq).sum().backward()
    np.testing.assert_allclose(dq.grad.numpy(), tq.grad.numpy(), rtol=1e-13)
    # second derivative through create_graph: x (x + 1) zeta(x + 2, q), the closed form
    dq2 = ds.tensor(q, dtype=ds.float64, requires_grad=True)
    (g,) = ds.autograd.grad(ds.special.zeta(ds.tensor(x, dtype=ds.float64), dq2).sum(), dq2, create_graph=True)
    (h,) = ds.autograd.grad(g.sum(), dq2)
    closed = x * (x + 1) * torch.special.zeta(torch.tensor(x + 2), torch.tensor(q)).numpy()
    np.testing.assert_allclose(h.numpy(), closed, rtol=1e-12)
    dx = ds.tensor(x, dtype=ds.float64, requires_grad=True)
    with pytest.raises(NotImplementedError, match="zeta with respect to input"):
        ds.special.zeta(dx, 1.0).sum().backward()
