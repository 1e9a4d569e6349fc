"""The second derivative of ELU, CELU and SELU at exactly x = 0 (nn/functional.py ``_elu_vjp`` under
create_graph): torch's double backward differentiates the exponential branch only for x < 0, so at 0
the first derivative takes the x <= 0 value and the second is 0. Compared with PyTorch in float64."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")

POINTS = [0.0, -0.0, 1e-300, -1e-300, -0.5, 0.5]


def _derivatives(lib: Any, name: str, alpha: float) -> tuple[list[float], list[float]]:
    f = lib.nn.functional
    fn = {"elu": lambda x: f.elu(x, alpha), "celu": lambda x: f.celu(x, alpha), "selu": f.selu}[name]
    x = lib.tensor(POINTS, dtype=lib.float64, requires_grad=True)
    (g,) = lib.autograd.grad(fn(x).sum(), x, create_graph=True)
    (h,) = lib.autograd.grad(g.sum(), x)
    return g.tolist(), h.tolist()


@pytest.mark.parametrize(("name", "alpha"), [("elu", 1.0), ("elu", 0.5), ("celu", 2.0), ("selu", 1.0)])
def test_first_and_second_derivatives_at_zero_match_torch(name: str, alpha: float) -> None:
    (g, h), (gt, ht) = _derivatives(ds, name, alpha), _derivatives(torch, name, alpha)
    np.testing.assert_allclose(g, gt, rtol=1e-14)
    np.testing.assert_allclose(h, ht, rtol=1e-14)
