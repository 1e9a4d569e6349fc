"""Regressions from a differential fuzz of the special functions against torch."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("x", [2e99, 5e99, 1e100, 1e200, 1e300])
@pytest.mark.parametrize("a", [0.5, 2.0, 30.0, 1e6])
def test_incomplete_gamma_at_huge_x_is_one_and_zero(a: float, x: float) -> None:
    big_a = ds.tensor([a], dtype=ds.float64)
    big_x = ds.tensor([x], dtype=ds.float64)
    assert ds.special.gammainc(big_a, big_x).item() == 1.0
    assert ds.special.gammaincc(big_a, big_x).item() == 0.0
    t_a, t_x = torch.tensor([a], dtype=torch.float64), torch.tensor([x], dtype=torch.float64)
    assert torch.special.gammainc(t_a, t_x).item() == 1.0


def test_gamma_cdf_at_huge_x_is_one() -> None:
    gamma = ds.distributions.Gamma(ds.tensor([2.0], dtype=ds.float64), ds.tensor([1.0], dtype=ds.float64))
    assert gamma.cdf(ds.tensor([1e100], dtype=ds.float64)).item() == 1.0


def test_incomplete_gamma_matches_torch_over_a_wide_range_of_x() -> None:
    rng = np.random.default_rng(0)
    a = np.exp(rng.uniform(-3, 6, 2000))
    x = np.exp(rng.uniform(-3, 700, 2000))
    for name in ("gammainc", "gammaincc"):
        got = getattr(ds.special, name)(ds.tensor(a, dtype=ds.float64), ds.tensor(x, dtype=ds.float64)).numpy()
        want = getattr(torch.special, name)(torch.tensor(a), torch.tensor(x)).numpy()
        assert not np.isnan(got).any()
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-300)


@pytest.mark.parametrize("size", [1, 5000])  # the compiled kernels take arrays from 4096 elements
@pytest.mark.parametrize("value", [-1e20, -3e38, -1e300])
def test_digamma_at_huge_negative_integers_is_nan_at_every_size(size: int, value: float) -> None:
    x = np.full(size, value)
    want = torch.special.digamma(torch.tensor(x)).numpy()
    assert np.isnan(want).all()
    np.testing.assert_array_equal(ds.special.digamma(ds.tensor(x, dtype=ds.float64)).numpy(), want)
    np.testing.assert_array_equal(ds.special.polygamma(0, ds.tensor(x, dtype=ds.float64)).numpy(), want)
    leaf = ds.tensor(x, dtype=ds.float64, requires_grad=True)
    ds.lgamma(leaf).sum().backward()
    assert leaf.grad is not None
    np.testing.assert_array_equal(leaf.grad.numpy(), want)
    for order in (2, 3):
        np.testing.assert_array_equal(
            ds.special.polygamma(order, ds.tensor(x, dtype=ds.float64)).numpy(),
            torch.special.polygamma(order, torch.tensor(x)).numpy(),
        )


def _zeta_by_direct_sum(x: int, q: float) -> float:
    """sum_k (q + k)^-x in 250 digits (the terms cancel to 1e-169 at (51, -2213.5)): the negative terms one
    by one, the rest by mpmath's zeta."""
    mpmath = pytest.importorskip("mpmath")
    with mpmath.workdps(250):
        qm = mpmath.mpf(q)
        m = int(mpmath.ceil(-qm))
        return float(mpmath.fsum((qm + k) ** -x for k in range(m)) + mpmath.zeta(x, qm + m))


def test_zeta_far_below_zero_matches_torch() -> None:
    rng = np.random.default_rng(0)
    q = -np.exp(rng.uniform(np.log(65.0), np.log(2e5), 300))
    x = rng.choice([2.0, 3.0, 4.0, 5.0, 10.0, 51.0, 1e16, 1e16 + 2, 1e15 + 1, 2.5], 300)
    got = ds.special.zeta(ds.tensor(x, dtype=ds.float64), ds.tensor(q, dtype=ds.float64)).numpy()
    want = torch.special.zeta(torch.tensor(x), torch.tensor(q)).numpy()
    # NaN (x not an integer; odd huge x: inf - inf) and inf where torch has them, else its values
    np.testing.assert_allclose(got, want, rtol=1e-12)


@pytest.mark.parametrize(("x", "q"), [(5, -114.48174452718739), (2, -5694.087350716571), (3, -100.3), (4, -70.9)])
def test_zeta_far_below_zero_is_the_sum_of_its_terms(x: int, q: float) -> None:
    got = ds.special.zeta(ds.tensor([float(x)], dtype=ds.float64), ds.tensor([q], dtype=ds.float64)).item()
    assert got == pytest.approx(_zeta_by_direct_sum(x, q), rel=1e-13, abs=0.0)


@pytest.mark.parametrize(("x", "q"), [(3, -20000.5), (7, -1000.5), (51, -2213.5)])
def test_zeta_at_negative_half_integers_keeps_its_digits(x: int, q: float) -> None:
    # the terms below 0 cancel those above exactly in pairs: torch's running sum keeps their rounding
    # (3e-8 relative at (3, -20000.5), every digit lost at (51, -2213.5)); the value is the tail's
    got = ds.special.zeta(ds.tensor([float(x)], dtype=ds.float64), ds.tensor([q], dtype=ds.float64)).item()
    assert got == pytest.approx(_zeta_by_direct_sum(x, q), rel=1e-8, abs=0.0)


def test_zeta_far_below_zero_gradient_in_q_is_minus_x_zeta_of_x_plus_one() -> None:
    q = ds.tensor([-1000.3, -80.7], dtype=ds.float64, requires_grad=True)
    x = ds.tensor([3.0, 4.0], dtype=ds.float64)
    ds.special.zeta(x, q).sum().backward()
    tq = torch.tensor([-1000.3, -80.7], dtype=torch.float64, requires_grad=True)
    torch.special.zeta(torch.tensor([3.0, 4.0], dtype=torch.float64), tq).sum().backward()
    assert q.grad is not None and tq.grad is not None
    np.testing.assert_allclose(q.grad.numpy(), tq.grad.numpy(), rtol=1e-12)
