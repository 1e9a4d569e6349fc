"""The direct path of small 1-D convolutions (a stencil over a short signal) against torch in float64:
values, gradients of input, weight and bias, and double backward; sizes and settings it does not
take still give torch's results through the general path."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import downslope as ds
from downslope.nn import _small_conv1d


def _run(lib, x, w, b, create_graph=False, **kw):
    xt = lib.tensor(x, dtype=lib.float64, requires_grad=True)
    wt = lib.tensor(w, dtype=lib.float64, requires_grad=True)
    bt = None if b is None else lib.tensor(b, dtype=lib.float64, requires_grad=True)
    y = lib.nn.functional.conv1d(xt, wt, bt, **kw)
    g = lib.tensor(np.cos(np.arange(int(np.prod(tuple(y.shape))))).reshape(tuple(y.shape)), dtype=lib.float64)
    leaves = [xt, wt] + ([bt] if bt is not None else [])
    grads = lib.autograd.grad((y * g).sum(), leaves, create_graph=create_graph)
    out = [y.detach().numpy()] + [gr.detach().numpy() for gr in grads]
    if create_graph:
        second = lib.autograd.grad(sum((gr**2).sum() for gr in grads[:2]), leaves[:2])
        out += [gr.detach().numpy() for gr in second]
    return out


@pytest.mark.parametrize(
    "x_shape, w_shape, bias, padding",
    [
        ((1, 1, 64), (1, 1, 3), False, 0),
        ((2, 3, 20), (4, 3, 5), True, 0),
        ((2, 3, 20), (4, 3, 5), True, 2),
        ((3, 17), (2, 3, 4), True, 1),  # unbatched
        ((1, 2, 9), (1, 2, 3), False, "valid"),
        ((1, 2, 9), (1, 2, 3), True, "same"),  # a string the direct path leaves to the general one
    ],
)
def test_small_conv1d_matches_torch(x_shape, w_shape, bias, padding):
    r = np.random.default_rng(len(x_shape) + w_shape[-1])
    x, w = r.normal(size=x_shape), r.normal(size=w_shape)
    b = r.normal(size=w_shape[0]) if bias else None
    for t, d in zip(_run(torch, x, w, b, padding=padding), _run(ds, x, w, b, padding=padding)):
        assert t.shape == d.shape
        np.testing.assert_allclose(d, t, rtol=1e-13, atol=1e-13)


def test_small_conv1d_double_backward_matches_torch():
    r = np.random.default_rng(0)
    x, w, b = r.normal(size=(2, 2, 12)), r.normal(size=(3, 2, 3)), r.normal(size=3)
    for t, d in zip(_run(torch, x, w, b, True, padding=1), _run(ds, x, w, b, True, padding=1)):
        np.testing.assert_allclose(d, t, rtol=1e-12, atol=1e-12)


@pytest.mark.host_only  # the direct path is the host arrays'
def test_small_conv1d_takes_the_direct_path(monkeypatch):
    """A 3-tap stencil over 64 samples does not go through the 2-D convolution."""
    from downslope.nn import convolution

    def refuse(*args, **kwargs):
        raise AssertionError("the general 2-D path was taken")

    monkeypatch.setattr(convolution, "_conv2d", refuse)
    u = ds.rand(1, 1, 64, dtype=ds.float64, requires_grad=True)
    y = ds.nn.functional.conv1d(u, ds.tensor([[[1.0, -2.0, 1.0]]], dtype=ds.float64))
    y.sum().backward()
    assert tuple(y.shape) == (1, 1, 62) and tuple(u.grad.shape) == (1, 1, 64)


@pytest.mark.parametrize("kw", [{"stride": 2}, {"dilation": 2}, {"groups": 2}])
def test_settings_the_direct_path_leaves_match_torch(kw, monkeypatch):
    monkeypatch.setattr(_small_conv1d, "SMALL_CONV1D_WORK", 1 << 20)
    r = np.random.default_rng(1)
    x, w = r.normal(size=(2, 4, 16)), r.normal(size=(4, 4 // kw.get("groups", 1), 3))
    for t, d in zip(_run(torch, x, w, None, **kw), _run(ds, x, w, None, **kw)):
        np.testing.assert_allclose(d, t, rtol=1e-13, atol=1e-13)


def test_float32_and_mixed_dtypes():
    r = np.random.default_rng(2)
    x, w = r.normal(size=(1, 1, 30)).astype(np.float32), r.normal(size=(1, 1, 3)).astype(np.float32)
    y = ds.nn.functional.conv1d(ds.from_numpy(x), ds.from_numpy(w))
    expected = torch.nn.functional.conv1d(torch.from_numpy(x), torch.from_numpy(w)).numpy()
    assert y.dtype == ds.float32
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-6, atol=1e-6)
    with pytest.raises((RuntimeError, TypeError)):  # torch refuses mixed dtypes; so does the general path
        ds.nn.functional.conv1d(ds.from_numpy(x.astype(np.float64)), ds.from_numpy(w))
