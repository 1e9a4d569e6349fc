"""The implicit reparameterisation gradient of Gamma samples (ops.special.standard_gamma_grad) is
torch's ``_standard_gamma_grad``: the same approximations, so the same values."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import downslope as ds
from downslope.ops.special import standard_gamma_grad

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_standard_gamma_grad_matches_torch(dtype: type) -> None:
    rng = np.random.default_rng(0)
    n = 20000
    alpha = np.exp(rng.uniform(-6, 7, n))
    # samples (every approximation's region: x < 0.8, alpha > 8 near and away from the mode, the
    # rational one) and far tails
    x = np.concatenate([rng.gamma(alpha[: n // 2]), np.exp(rng.uniform(-20, 8, n - n // 2))])
    a, v = alpha.astype(dtype), np.maximum(x.astype(dtype), np.finfo(dtype).tiny)
    got = standard_gamma_grad(a.astype(np.float64), v.astype(np.float64)).astype(dtype)
    want = torch._standard_gamma_grad(torch.tensor(a), torch.tensor(v)).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-11 if dtype == np.float64 else 1e-6)


def test_standard_gamma_grad_edges_match_torch() -> None:
    values = [0.0, 1e-300, 1e-10, 0.5, 0.8, 0.79999999, 1.0, 7.9, 8.0, 8.1, 9.0, 100.0, 1e10, 1e300, np.inf, np.nan]
    a, x = np.array(list(itertools.product(values, values))).T
    want = torch._standard_gamma_grad(torch.tensor(a), torch.tensor(x)).numpy()
    np.testing.assert_allclose(standard_gamma_grad(a, x), want, rtol=1e-12, equal_nan=True)


def test_standard_gamma_grad_broadcasts() -> None:
    got = standard_gamma_grad(np.array([[2.0], [30.0]]), np.array([0.5, 2.0, 31.0]))
    assert got.shape == (2, 3)
    want = torch._standard_gamma_grad(
        torch.tensor([[2.0], [30.0]], dtype=torch.float64).expand(2, 3),
        torch.tensor([0.5, 2.0, 31.0], dtype=torch.float64).expand(2, 3),
    )
    np.testing.assert_allclose(got, want.numpy(), rtol=1e-12)


@pytest.mark.parametrize("family", ["Gamma", "Chi2"])
def test_rsample_gradient_is_torchs_at_the_drawn_sample(family: str) -> None:
    c = ds.tensor([0.3, 2.0, 12.0], requires_grad=True)
    dist = ds.distributions.Gamma(c, 1.0) if family == "Gamma" else ds.distributions.Chi2(c)
    sample = dist.rsample((500,))
    sample.sum().backward()
    assert c.grad is not None
    tc = torch.tensor([0.3, 2.0, 12.0])
    x = sample.detach().numpy()
    if family == "Gamma":
        want = torch._standard_gamma_grad(tc.expand(500, 3), torch.tensor(x)).sum(0)
    else:  # Chi2(k) is Gamma(k / 2, 1 / 2): x = 2 g, dx/dk = dg/d(k/2)
        want = torch._standard_gamma_grad((tc / 2).expand(500, 3), torch.tensor(x) / 2).sum(0)
    np.testing.assert_allclose(c.grad.numpy(), want.numpy(), rtol=2e-5)
