"""The compiled unnormalisation of grid_sample's 2-D grid gives the NumPy form's coordinates bit for
bit (its emulated FMA), NaN and infinities included, and grid_sample still matches torch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import downslope as ds
from downslope import jit_gate
from downslope.nn import sampling


@pytest.fixture
def kernels():
    k = jit_gate.kernels(sampling._KERNELS, np.zeros(1), np.zeros(1))
    if k is None:
        pytest.skip("numba kernels are not available here")
    return k


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("corners", [False, True])
def test_compiled_unnormalize_is_bit_identical(kernels, dtype, corners):
    r = np.random.default_rng(0)
    g = (r.normal(size=(4, 33, 31, 2)) * 1.3).astype(dtype)
    g[0, 0, 0, 0], g[0, 0, 1, 1], g[0, 0, 2, 0] = np.nan, np.inf, -np.inf
    g[1, 2, 3, 0] = np.finfo(dtype).max / 4
    # pixel centres (an identity affine grid), where one ulp flips the one-sided gradient
    g[2, :, :, 0] = sampling._base_coords(31, corners, dtype, np)[None]
    g[2, :, :, 1] = sampling._base_coords(33, corners, dtype, np)[:, None]
    got = sampling._unnormalized2d(kernels, g, (11, 13), corners)
    assert got is not None
    for d in range(2):
        want, scale = sampling._unnormalized(g[..., 1 - d], (11, 13)[d], corners, True)
        assert got[d][0].dtype == want.dtype and got[d][1] == scale
        np.testing.assert_array_equal(got[d][0], want)
        assert np.array_equal(np.signbit(got[d][0]), np.signbit(want))


@pytest.mark.parametrize("padding_mode", ["zeros", "border", "reflection"])
@pytest.mark.parametrize("mode", ["bilinear", "bicubic", "nearest"])
def test_grid_sample_matches_torch_float64(padding_mode, mode):
    r = np.random.default_rng(1)
    img = r.normal(size=(2, 3, 9, 11))
    theta = np.tile(np.array([[0.9, 0.1, 0.05], [-0.1, 1.1, 0.0]]), (2, 1, 1))
    outs = []
    for lib in (torch, ds):
        x = lib.tensor(img, dtype=lib.float64, requires_grad=True)
        th = lib.tensor(theta, dtype=lib.float64, requires_grad=True)
        grid = lib.nn.functional.affine_grid(th, [2, 3, 9, 11], align_corners=False)
        y = lib.nn.functional.grid_sample(x, grid, mode=mode, padding_mode=padding_mode, align_corners=False)
        (y * lib.tensor(np.cos(np.arange(y.numel())).reshape(tuple(y.shape)), dtype=lib.float64)).sum().backward()
        outs.append([y.detach().numpy(), x.grad.numpy(), th.grad.numpy()])
    for t, d in zip(*outs):
        np.testing.assert_allclose(d, t, rtol=1e-12, atol=1e-12)
