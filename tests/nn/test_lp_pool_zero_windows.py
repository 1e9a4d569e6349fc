"""LPPool over windows whose values are all zero (a black image region, a ReLU's zeros): the output is 0 and
its gradient is 0, as torch's (the derivative of s ** (1/p) at s = 0 is infinite, and must not become NaN)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")


def _run(lib: Any, make: Any, dims: int, x: np.ndarray, p: float) -> tuple[np.ndarray, np.ndarray]:
    t = make(x.copy()).requires_grad_()
    layer = {1: lib.nn.LPPool1d, 2: lib.nn.LPPool2d, 3: lib.nn.LPPool3d}[dims](p, 2)
    y = layer(t)
    y.sum().backward()
    return y.detach().numpy(), t.grad.numpy()


@pytest.mark.parametrize("dims", [1, 2, 3])
@pytest.mark.parametrize("p", [2.0, 3.0, 1.5])
def test_lp_pool_on_all_zero_windows_matches_torch(dims: int, p: float) -> None:
    rng = np.random.default_rng(dims)
    x = np.abs(rng.standard_normal((2, 2) + (4,) * dims))
    x[:, :, :2] = 0.0  # the first windows along the first pooled dim are all zero
    if p == 3.0:
        x[1] *= -1.0  # odd p: the windows of negative values have a negative sum, NaN for torch and us
    ty, tg = _run(torch, torch.from_numpy, dims, x, p)
    dy, dg = _run(ds, ds.from_numpy, dims, x, p)
    np.testing.assert_allclose(dy, ty, rtol=1e-12, atol=1e-12, equal_nan=True)
    np.testing.assert_allclose(dg, tg, rtol=1e-12, atol=1e-12, equal_nan=True)
    assert not np.isnan(dg[0]).any()


def test_lp_pool_gradient_matches_finite_differences_away_from_zero() -> None:
    rng = np.random.default_rng(3)
    x = ds.from_numpy(rng.uniform(0.5, 1.5, (1, 2, 4, 4))).requires_grad_()
    assert ds.autograd.gradcheck(lambda t: ds.nn.functional.lp_pool2d(t, 2.5, 2), (x,))


def test_a_conv_before_lp_pool_on_a_black_region_gets_no_nan_gradient() -> None:
    rng = np.random.default_rng(0)
    image = rng.standard_normal((2, 1, 8, 8)).astype(np.float32)
    image[:, :, :4] = 0.0
    torch.manual_seed(0)
    tconv = torch.nn.Conv2d(1, 4, 3, bias=False)
    dconv = ds.nn.Conv2d(1, 4, 3, bias=False)
    dconv.load_state_dict({k: ds.from_numpy(v.detach().numpy().copy()) for k, v in tconv.state_dict().items()})
    torch.nn.LPPool2d(2, 2)(tconv(torch.from_numpy(image))).sum().backward()
    ds.nn.LPPool2d(2, 2)(dconv(ds.from_numpy(image))).sum().backward()
    assert not np.isnan(dconv.weight.grad.numpy()).any()
    np.testing.assert_allclose(dconv.weight.grad.numpy(), tconv.weight.grad.numpy(), rtol=1e-4, atol=1e-4)
