"""Beta and Dirichlet ``rsample`` gradients are torch's implicit reparameterisation gradient: at the
same draw, d x / d concentration equals torch's ``_Dirichlet`` backward (ATen's ``dirichlet_grad_one``)
and, for Beta, the implicit-CDF value -(dF/dalpha) / pdf computed from scipy's Beta CDF in float64
(to the accuracy of torch's approximation of it)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import downslope as ds
from downslope.distributions._beta_grad import dirichlet_grad

torch = pytest.importorskip("torch")
from torch.distributions.dirichlet import _Dirichlet_backward  # noqa: E402  (after the importorskip)


def _torch_backward(x: np.ndarray, concentration: np.ndarray, upstream: np.ndarray) -> np.ndarray:
    """torch's gradient of sum(upstream * x) in the concentration, at the draw ``x``, in float64."""
    t = [torch.tensor(a, dtype=torch.float64) for a in (x, concentration, upstream)]
    return _Dirichlet_backward(*t).numpy()


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize(
    "concentration",
    [[0.5, 1.5, 3.0, 0.2], [8.0, 12.0, 9.0, 30.0], [0.05, 0.3, 60.0, 2.0]],
    ids=["small", "large", "mixed"],
)
def test_dirichlet_rsample_gradient_is_torchs_at_the_same_draw(concentration: list[float], dtype: str) -> None:
    ds.manual_seed(0)
    c = np.tile(np.array(concentration), (500, 1))
    upstream = np.random.default_rng(1).normal(size=c.shape)
    alpha = ds.tensor(c, dtype=getattr(ds, dtype), requires_grad=True)
    x = ds.distributions.Dirichlet(alpha).rsample()
    (x * ds.tensor(upstream, dtype=alpha.dtype)).sum().backward()
    want = _torch_backward(x.detach().numpy().astype(np.float64), c, upstream)
    scale = np.abs(want).max(axis=-1, keepdims=True)  # relative to each draw's largest component
    np.testing.assert_allclose(alpha.grad.numpy() / scale, want / scale, rtol=0, atol=1e-4)


@pytest.mark.parametrize("a, b", [(0.5, 1.5), (2.0, 3.0), (12.0, 20.0), (0.3, 0.3), (40.0, 2.0)])
def test_beta_rsample_gradient_is_the_implicit_cdf_value(a: float, b: float) -> None:
    st = pytest.importorskip("scipy.stats")
    ds.manual_seed(0)
    c1 = ds.tensor([a] * 400, dtype=ds.float64, requires_grad=True)
    c0 = ds.tensor([b] * 400, dtype=ds.float64, requires_grad=True)
    x = ds.distributions.Beta(c1, c0).rsample()
    x.sum().backward()
    xx = x.detach().numpy()
    h = 1e-6
    pdf = st.beta.pdf(xx, a, b)
    for grad, (lo, hi) in ((c1.grad, ((a - h, b), (a + h, b))), (c0.grad, ((a, b - h), (a, b + h)))):
        implicit = -(st.beta.cdf(xx, *hi) - st.beta.cdf(xx, *lo)) / (2 * h) / pdf
        ok = np.isfinite(implicit) & (pdf > 1e-8)  # the finite difference itself is meaningless in the far tails
        assert ok.mean() > 0.95
        # torch's kernel approximates this value (its rational and saddle-point branches to about 1e-3
        # relative; torch's own per-sample gradients are that far from it too); the gamma ratio's
        # derivative, the rule this replaces, was up to 240% off at the same draws
        np.testing.assert_allclose(grad.numpy()[ok], implicit[ok], rtol=2e-3, atol=0)
    # and torch's rule at the same draws (the draw's second component is 1 - x only to rounding, which
    # the gradient's steep dependence on x near 0 and 1 turns into relative differences of about 1e-7)
    upstream = np.stack([np.ones_like(xx), np.zeros_like(xx)], -1)
    want = _torch_backward(np.stack([xx, 1 - xx], -1), np.tile([a, b], (400, 1)), upstream)
    np.testing.assert_allclose(np.stack([c1.grad.numpy(), c0.grad.numpy()], -1), want, rtol=1e-6, atol=0)


def test_dirichlet_grad_matches_torchs_kernel_over_its_branches() -> None:
    rng = np.random.default_rng(0)
    for lo, hi in ((0.01, 0.5), (0.05, 2.0), (0.1, 20.0), (5.0, 60.0)):  # every branch of dirichlet_grad_one
        a, b = rng.uniform(lo, hi, 5000), rng.uniform(lo, hi, 5000)
        x = np.clip(rng.beta(a, b), 1e-300, 1 - 1e-16)
        want = torch._dirichlet_grad(*(torch.tensor(v) for v in (x, a, a + b))).numpy()
        np.testing.assert_allclose(dirichlet_grad(x, a, a + b), want, rtol=1e-10, atol=0)


def test_beta_rsample_gradient_variance_is_torchs() -> None:
    """The estimator's per-sample variance (what a Beta VAE's training noise feels) is the implicit
    gradient's, 0.041 at Beta(0.5, 1.5), not the gamma ratio's 0.067."""
    variances = []
    for lib in (ds, torch):
        lib.manual_seed(1)
        a = lib.tensor([0.5] * 100_000, dtype=lib.float64, requires_grad=True)
        lib.distributions.Beta(a, lib.tensor(1.5, dtype=lib.float64)).rsample().sum().backward()
        grad: Any = a.grad
        variances.append(float(np.var(grad.numpy())))
    assert variances[0] == pytest.approx(variances[1], rel=0.05)
