"""maximum/minimum route an inf or NaN gradient as torch's where/masked_fill does: the losing side
gets 0 (not g * 0 = NaN), a tie gets g / 2 on each side, and where a NaN is compared both sides get
all of g. The neighbours built on other rules (fmax/fmin, amax/amin, max(dim), clamp) are checked
alongside with the same upstream gradients."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import downslope as ds

A0 = np.array([0.3, -1.2, 2.0, 0.1, 0.5, np.nan, -0.7, 0.2, 1.0])
B0 = np.array([0.3, 0.5, -1.0, 0.1, np.nan, 1.0, 2.0, -3.0, 1.0])
UPSTREAM = np.array([np.inf, np.nan, -np.inf, np.inf, 2.0, np.nan, np.inf, np.nan, 3.0])

BINARY = {
    "maximum": lambda L, a, b: L.maximum(a, b),
    "minimum": lambda L, a, b: L.minimum(a, b),
    "fmax": lambda L, a, b: L.fmax(a, b),
    "fmin": lambda L, a, b: L.fmin(a, b),
    "maximum scalar-tensor b": lambda L, a, b: L.maximum(a, b[2]),
    "minimum scalar-tensor b": lambda L, a, b: L.minimum(a, b[0]),
    "clamp tensor bounds": lambda L, a, b: L.clamp(a, min=b),
}


def _grads(L, f, create_graph=False):
    a = L.tensor(A0, dtype=L.float64, requires_grad=True)
    b = L.tensor(B0, dtype=L.float64, requires_grad=True)
    y = f(L, a, b)
    g = L.tensor(UPSTREAM[: y.numel()].reshape(tuple(y.shape)), dtype=L.float64)
    ga, gb = L.autograd.grad(y, (a, b), g, allow_unused=True, create_graph=create_graph)
    return [None if t is None else t.detach().numpy() for t in (ga, gb)]


@pytest.mark.parametrize("create_graph", [False, True])
@pytest.mark.parametrize("name", list(BINARY))
def test_binary_extremum_routes_nonfinite_gradients_as_torch(name, create_graph):
    expected = _grads(torch, BINARY[name], create_graph)
    got = _grads(ds, BINARY[name], create_graph)
    for e, d in zip(expected, got):
        if e is None:
            assert d is None or not d.any()
        else:
            np.testing.assert_array_equal(d, e)


REDUCTIONS = {
    "amax": lambda L, x: L.amax(x, dim=1),
    "amin": lambda L, x: L.amin(x, dim=1),
    "max(dim)": lambda L, x: x.max(dim=1).values,
    "min(dim)": lambda L, x: x.min(dim=1).values,
    "clamp(min=)": lambda L, x: L.clamp(x, min=0.5),
    "max pair float16": lambda L, x: L.maximum(x.half(), x.flip(1).half()).double(),
}


@pytest.mark.parametrize("name", list(REDUCTIONS))
def test_ties_and_nonfinite_gradients_of_neighbouring_ops(name):
    x0 = np.array([[1.0, 2.0, 2.0, 0.5], [3.0, 3.0, 3.0, -1.0], [0.5, 0.5, 0.5, 0.5]])
    results = []
    for L in (torch, ds):
        x = L.tensor(x0, dtype=L.float64, requires_grad=True)
        y = REDUCTIONS[name](L, x)
        g = np.full(tuple(y.shape), 2.0)
        g.reshape(-1)[0] = np.inf
        g.reshape(-1)[-1] = np.nan
        y.backward(L.tensor(g, dtype=L.float64))
        results.append(x.grad.numpy())
    np.testing.assert_array_equal(results[1], results[0])
