"""A custom autograd.Function whose backward returns a gradient of the wrong shape raises a
RuntimeError, as torch's ("returned an invalid gradient"), naming the Function, the argument and
both shapes; a gradient of a shape that sums back by broadcasting is accepted, as in torch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import downslope as ds


def _function(L, make_grad):
    class Double(L.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, g):
            return make_grad(g)

    return Double


WRONG = {
    "smaller (3,)": lambda g: g.sum(0),
    "(2, 1, 3)": lambda g: (g * 2).unsqueeze(1),
}


@pytest.mark.parametrize("name", list(WRONG))
def test_wrong_gradient_shape_is_a_runtime_error_as_torch(name):
    with pytest.raises(RuntimeError):
        _function(torch, WRONG[name]).apply(torch.ones(2, 3, requires_grad=True)).sum().backward()
    with pytest.raises(RuntimeError, match=r"Double\.backward: the gradient for argument 0 has shape") as info:
        _function(ds, WRONG[name]).apply(ds.ones(2, 3, requires_grad=True)).sum().backward()
    assert "(2, 3)" in str(info.value)
    assert isinstance(info.value, ValueError)  # still caught by the ValueError it was before


def test_broadcastable_gradient_is_summed_back_as_torch():
    grads = []
    for L in (torch, ds):
        x = L.ones(2, 3, requires_grad=True)
        _function(L, lambda g: (g * 2).unsqueeze(0)).apply(x).sum().backward()
        grads.append(x.grad.numpy())
    np.testing.assert_array_equal(grads[1], grads[0])
