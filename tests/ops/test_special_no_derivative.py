"""torch.special's functions without a derivative (the Bessel and Airy functions of the second
generation, the orthogonal polynomials, and modified_bessel_i0/i1) give outputs that do not require
grad, so a loss that adds such a term backpropagates through its other terms only; the spellings
with a derivative (i0, special.i0/i1/i0e/i1e) keep it. Each name is checked against torch 2.13."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import downslope as ds

UNARY = [
    "airy_ai", "bessel_j0", "bessel_j1", "bessel_y0", "bessel_y1", "modified_bessel_i0", "modified_bessel_i1",
    "modified_bessel_k0", "modified_bessel_k1", "scaled_modified_bessel_k0", "scaled_modified_bessel_k1",
    "spherical_bessel_j0", "i0", "i1", "i0e", "i1e",
]  # fmt: skip
POLYNOMIALS = [
    "chebyshev_polynomial_t", "chebyshev_polynomial_u", "chebyshev_polynomial_v", "chebyshev_polynomial_w",
    "hermite_polynomial_h", "hermite_polynomial_he", "laguerre_polynomial_l", "legendre_polynomial_p",
    "shifted_chebyshev_polynomial_t", "shifted_chebyshev_polynomial_u", "shifted_chebyshev_polynomial_v",
    "shifted_chebyshev_polynomial_w",
]  # fmt: skip


def _loss_and_grad(L, name: str):
    w = L.tensor([0.5, 2.0], dtype=L.float64, requires_grad=True)
    f = getattr(L.special, name)
    y = f(w, 3) if name in POLYNOMIALS else f(w)
    (w**2).sum().add(y.sum()).backward()
    return y.requires_grad, y.detach().numpy(), w.grad.numpy()


@pytest.mark.parametrize("name", UNARY + POLYNOMIALS)
def test_requires_grad_and_gradient_follow_torch(name):
    t_requires, t_values, t_grad = _loss_and_grad(torch, name)
    d_requires, d_values, d_grad = _loss_and_grad(ds, name)
    assert d_requires == t_requires
    np.testing.assert_allclose(d_values, t_values, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(d_grad, t_grad, rtol=1e-12)


def test_top_level_i0_keeps_its_derivative():
    x = ds.tensor([0.5, 2.0], dtype=ds.float64, requires_grad=True)
    ds.i0(x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), ds.special.i1(x.detach()).numpy(), rtol=1e-14)


def test_modified_bessel_i0_out_and_float32():
    out = ds.empty(2)
    x = ds.tensor([0.5, 2.0], requires_grad=True)
    assert ds.special.modified_bessel_i0(x, out=out) is out
    expected = torch.special.modified_bessel_i0(torch.tensor([0.5, 2.0])).numpy()
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-6)
    assert out.dtype == ds.float32 and not out.requires_grad
