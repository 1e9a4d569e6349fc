"""An inf or NaN gradient arriving at a max pooling's output reaches only the element its window
selected, as in torch: the window's other elements get 0, not NaN (a product of the gradient with
the 0/1 winner mask would give inf * 0 = NaN there). Every path is compared with torch: the tiled
1-D path, the stacked-windows path, the compiled 2x2 kernel, 3-D, adaptive, and create_graph."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import downslope as ds

X0 = np.array([0.3, -1.2, 2.0, 0.1, 0.5, 1.5, -0.7, 0.2])

CASES = {
    "max_pool1d tiled k2": lambda L, x: L.nn.functional.max_pool1d(x.view(1, 1, 8), 2),
    "max_pool1d 3,1,1": lambda L, x: L.nn.functional.max_pool1d(x.view(1, 1, 8), 3, 1, 1),
    "max_pool2d 2": lambda L, x: L.nn.functional.max_pool2d(x.view(1, 1, 2, 4), 2),
    "MaxPool2d(3, 2, 1)": lambda L, x: L.nn.MaxPool2d(3, 2, 1)(x.view(1, 1, 2, 4)),
    "max_pool3d 2": lambda L, x: L.nn.functional.max_pool3d(x.view(1, 1, 2, 2, 2), 2),
    "adaptive_max_pool1d 3": lambda L, x: L.nn.functional.adaptive_max_pool1d(x.view(1, 1, 8), 3),
    "adaptive_max_pool2d 1": lambda L, x: L.nn.functional.adaptive_max_pool2d(x.view(1, 1, 2, 4), 1),
}


def _input_grad(L, f, bad: float, create_graph: bool = False) -> np.ndarray:
    x = L.tensor(X0, dtype=L.float64, requires_grad=True)
    y = f(L, x)
    g = np.ones(tuple(y.shape))
    g.reshape(-1)[0] = bad
    (gx,) = L.autograd.grad(y, x, L.tensor(g, dtype=L.float64), create_graph=create_graph)
    return gx.detach().numpy()


@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan])
@pytest.mark.parametrize("name", list(CASES))
def test_nonfinite_gradient_reaches_only_the_winner(kernels, name, bad):
    expected = _input_grad(torch, CASES[name], bad)
    np.testing.assert_array_equal(_input_grad(ds, CASES[name], bad), expected)


@pytest.mark.parametrize("bad", [np.inf, np.nan])
@pytest.mark.parametrize("name", ["max_pool1d 3,1,1", "max_pool2d 2", "MaxPool2d(3, 2, 1)", "max_pool1d tiled k2"])
def test_nonfinite_gradient_under_create_graph(kernels, name, bad):
    expected = _input_grad(torch, CASES[name], bad, create_graph=True)
    np.testing.assert_array_equal(_input_grad(ds, CASES[name], bad, create_graph=True), expected)


@pytest.mark.parametrize("args", [(2,), (3, 2, 1)])
def test_nonfinite_gradients_on_a_batch_match_torch(kernels, args):
    """A larger float32 batch (channel-major too, the layout a convolution leaves) with inf and NaN
    scattered over the upstream gradient: the input gradient is torch's, element for element."""
    rng = np.random.default_rng(3)
    x0 = rng.standard_normal((3, 4, 8, 10)).astype(np.float32)
    results = []
    for L in (torch, ds):
        x = L.tensor(x0, requires_grad=True)
        source = x.transpose(0, 1).contiguous().transpose(0, 1)  # (N, C) swapped in memory
        y = L.nn.functional.max_pool2d(source, *args)
        g = np.ones(tuple(y.shape), dtype=np.float32)
        g.reshape(-1)[::7] = np.inf
        g.reshape(-1)[3::11] = np.nan
        y.backward(L.tensor(g))
        results.append(x.grad.numpy())
    np.testing.assert_array_equal(results[1], results[0])
