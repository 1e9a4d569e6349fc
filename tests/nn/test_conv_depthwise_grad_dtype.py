"""Depthwise convolutions with stride 2 under a float64 output gradient (a float32 model whose hand-written
loss compares with a NumPy float64 target): the gradients match torch, through a model and when the
depthwise rule is handed the float64 gradient directly (the compiled kernels are planned for float32)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import downslope as ds
from downslope.nn import _conv_kernels

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("dims", [1, 2])
def test_depthwise_stride_2_with_a_float64_target_matches_torch(assert_close: Any, kernels: str, dims: int) -> None:
    rng = np.random.default_rng(0)
    shape = (4, 8, 10, 10) if dims == 2 else (4, 8, 32)
    x = rng.standard_normal(shape).astype(np.float32)
    target = rng.standard_normal((4, 3))  # float64
    torch.manual_seed(0)
    tconv = (
        torch.nn.Conv2d(8, 16, 3, stride=2, padding=1, groups=8)
        if dims == 2
        else torch.nn.Conv1d(8, 8, 3, stride=2, padding=1, groups=8)
    )
    width = tconv(torch.from_numpy(x)).flatten(1).shape[1]
    tm = torch.nn.Sequential(tconv, torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(width, 3))
    dconv = (
        ds.nn.Conv2d(8, 16, 3, stride=2, padding=1, groups=8)
        if dims == 2
        else ds.nn.Conv1d(8, 8, 3, stride=2, padding=1, groups=8)
    )
    dm = ds.nn.Sequential(dconv, ds.nn.ReLU(), ds.nn.Flatten(), ds.nn.Linear(width, 3))
    dm.load_state_dict({k: ds.from_numpy(v.detach().numpy().copy()) for k, v in tm.state_dict().items()})
    xt, xd = torch.from_numpy(x).requires_grad_(), ds.from_numpy(x.copy()).requires_grad_()
    ((tm(xt) - torch.from_numpy(target)) ** 2).mean().backward()
    ((dm(xd) - ds.from_numpy(target)) ** 2).mean().backward()
    assert dm[0].weight.grad.dtype == ds.float32 and xd.grad.dtype == ds.float32
    assert_close(dm[0].weight.grad.numpy(), tm[0].weight.grad.numpy(), np.float32, "weight gradient")
    assert_close(dm[0].bias.grad.numpy(), tm[0].bias.grad.numpy(), np.float32, "bias gradient")
    assert_close(xd.grad.numpy(), xt.grad.numpy(), np.float32, "input gradient")


def test_the_depthwise_rule_handed_a_float64_gradient_computes_in_the_input_dtype(assert_close: Any) -> None:
    """The compiled kernels' plan is made for the input's dtype: a gradient of another dtype is cast first."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 4, 9, 9)).astype(np.float32)
    w = rng.standard_normal((4, 1, 3, 3)).astype(np.float32)
    geometry = ((2, 2), (1, 1, 1, 1), (1, 1), 4, (5, 5))
    found = _conv_kernels._depthwise_jit(x, w, None, geometry)
    if found is None:
        pytest.skip("numba is not installed (the jit extra)")
    jit, plan = found
    g = rng.standard_normal((2, 4, 5, 5))  # float64
    gx, gw = _conv_kernels._depthwise_vjp(jit, g, (x, w), ((5, 5), plan), (True, True))
    xt, wt = torch.from_numpy(x).requires_grad_(), torch.from_numpy(w).requires_grad_()
    torch.nn.functional.conv2d(xt, wt, stride=2, padding=1, groups=4).backward(torch.from_numpy(g).float())
    assert gx.dtype == np.float32 and gw.dtype == np.float32
    assert_close(gx, xt.grad.numpy(), np.float32, "input gradient")
    assert_close(gw, wt.grad.numpy(), np.float32, "weight gradient")
