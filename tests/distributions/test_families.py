"""families.py's distributions against torch.distributions: Weibull's log density at 0."""

from __future__ import annotations

import math

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")


def test_weibull_log_prob_at_zero_is_exact_and_its_gradients_match_torch_elsewhere():
    # exact limits at 0 (torch gives NaN for every k): +inf for k < 1, the exponential's log(k / scale)
    # for k = 1 (0 * log 0 used to give NaN), -inf for k > 1
    values = [
        float(ds.distributions.Weibull(2.0, k, validate_args=False).log_prob(ds.tensor(0.0))) for k in (0.5, 1.0, 3.0)
    ]
    assert values == [math.inf, pytest.approx(math.log(1 / 2.0), rel=1e-7), -math.inf]
    # at k = 1 the gradient in k keeps its log z term
    rng = np.random.default_rng(0)
    scale, k, x = rng.uniform(0.5, 2, 8), np.r_[rng.uniform(0.3, 3, 7), 1.0], rng.uniform(0.01, 4, 8)
    ours = [ds.tensor(v, dtype=ds.float64, requires_grad=True) for v in (scale, k)]
    theirs = [torch.tensor(v, requires_grad=True) for v in (scale, k)]
    lp = ds.distributions.Weibull(*ours).log_prob(ds.tensor(x, dtype=ds.float64))
    tlp = torch.distributions.Weibull(*theirs).log_prob(torch.tensor(x))
    np.testing.assert_allclose(lp.detach().numpy(), tlp.detach().numpy(), rtol=1e-13)
    lp.sum().backward()
    tlp.sum().backward()
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-12)
