"""grid_sample's and affine_grid's per-call fast paths give the slower forms' numbers: the compiled
unnormalisation pads 'border' and 'reflection' coordinates bit for bit as the NumPy form
(``_unnormalized`` then ``_padded``), derivatives, NaN, infinities and -0.0 included; affine_grid's
one recorded op (its base grid made once per size) matches torch's values and its first and second
derivatives, and hands out a fresh grid each call."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

import downslope as ds
from downslope import jit_gate
from downslope.nn import sampling


@pytest.fixture
def kernels() -> Any:
    k = jit_gate.kernels(sampling._KERNELS, np.zeros(1), np.zeros(1))
    if k is None:
        pytest.skip("numba kernels are not available here")
    return k


def _awkward_grid(dtype: Any, corners: bool) -> np.ndarray:
    r = np.random.default_rng(0)
    g = (r.normal(size=(4, 33, 31, 2)) * 1.3).astype(dtype)
    g[0, 0, 0, 0], g[0, 0, 1, 1], g[0, 0, 2, 0], g[0, 0, 3, 1] = np.nan, np.inf, -np.inf, -np.inf
    g[1] = np.round(g[1] * 4) / 4  # -1, 1 and the image's edges exactly
    g[1, 2, 3, 0] = np.finfo(dtype).max / 4
    g[3] *= 4  # several reflections
    # pixel centres (an identity affine grid), where one ulp flips the one-sided gradient
    g[2, :, :, 0] = sampling._base_coords(31, corners, dtype, np)[None]
    g[2, :, :, 1] = sampling._base_coords(33, corners, dtype, np)[:, None]
    return g


@pytest.mark.parametrize("sizes", [(11, 13), (1, 7), (7, 1), (2, 2)])
@pytest.mark.parametrize("padding_mode", ["zeros", "border", "reflection"])
@pytest.mark.parametrize("corners", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_compiled_padding_is_bit_identical(kernels: Any, dtype: Any, corners: bool, padding_mode: str, sizes: Any):
    g = _awkward_grid(dtype, corners)
    got = sampling._unnormalized2d(kernels, g, sizes, corners, padding_mode)
    assert got is not None
    for d in range(2):
        want, scale = sampling._unnormalized(g[..., 1 - d], sizes[d], corners, True)
        slope = None
        if padding_mode != "zeros":
            want, slope = sampling._padded(want, sizes[d], padding_mode, corners, True)
        position, got_scale, got_slope = got[d]
        assert position.dtype == want.dtype and got_scale == scale
        np.testing.assert_array_equal(position, want)
        assert np.array_equal(np.signbit(position), np.signbit(want))  # -0.0 kept where NumPy's clip keeps it
        if slope is None:
            assert got_slope is None
        else:
            assert got_slope is not None and got_slope.dtype == slope.dtype
            np.testing.assert_array_equal(got_slope, slope)
            assert np.array_equal(np.signbit(got_slope), np.signbit(slope))


@pytest.mark.parametrize("padding_mode", ["border", "reflection"])
@pytest.mark.parametrize("corners", [False, True])
def test_padded_grid_sample_matches_torch_on_both_paths(padding_mode: str, corners: bool) -> None:
    r = np.random.default_rng(3)
    img = r.normal(size=(2, 3, 9, 11)).astype(np.float32)
    grid = (r.uniform(-1.6, 1.6, size=(2, 7, 5, 2))).astype(np.float32)
    weights = np.cos(np.arange(2 * 3 * 7 * 5)).reshape(2, 3, 7, 5).astype(np.float32)
    results = {}
    for name, lib in (("torch", torch), ("compiled", ds), ("numpy", ds)):
        x, gt = lib.tensor(img, requires_grad=True), lib.tensor(grid, requires_grad=True)
        with jit_gate.disabled() if name == "numpy" else _nothing():
            y = lib.nn.functional.grid_sample(x, gt, padding_mode=padding_mode, align_corners=corners)
            (y * lib.tensor(weights)).sum().backward()
        results[name] = (y.detach().numpy(), x.grad.numpy(), gt.grad.numpy())
    for name in ("compiled", "numpy"):
        for ours, theirs in zip(results[name], results["torch"]):
            np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5)


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: Any) -> None:
        return None


@pytest.mark.parametrize("size", [[2, 3, 5, 7], [2, 1, 3, 4, 5], [1, 1, 1, 1]])
@pytest.mark.parametrize("corners", [False, True])
def test_affine_grid_gradients_match_torch_to_second_order(size: list[int], corners: bool) -> None:
    spatial = len(size) - 2
    r = np.random.default_rng(4)
    theta = r.normal(size=(size[0], spatial, spatial + 1))
    weights = r.normal(size=(size[0], *size[2:], spatial))
    results = []
    for lib in (torch, ds):
        th = lib.tensor(theta, dtype=lib.float64, requires_grad=True)
        grid = lib.nn.functional.affine_grid(th, size, align_corners=corners)
        # a loss quadratic in theta, so its second derivative is not zero
        loss = ((grid * lib.tensor(weights, dtype=lib.float64)) ** 2).sum()
        (first,) = lib.autograd.grad(loss, th, create_graph=True)
        (second,) = lib.autograd.grad((first * first).sum(), th)
        results.append([grid.detach().numpy(), first.detach().numpy(), second.numpy()])
    for ours, theirs in zip(results[1], results[0]):
        np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-12)


def test_affine_grid_hands_out_a_fresh_grid_each_call() -> None:
    theta = ds.tensor([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]])
    first = ds.nn.functional.affine_grid(theta, [1, 1, 3, 4], align_corners=False)
    want = first.numpy().copy()
    first.array[...] = 7.0  # writing into one call's grid leaves the next call's alone
    second = ds.nn.functional.affine_grid(theta, [1, 1, 3, 4], align_corners=False)
    np.testing.assert_array_equal(second.numpy(), want)
    reference = torch.nn.functional.affine_grid(torch.tensor(theta.numpy()), [1, 1, 3, 4], align_corners=False)
    np.testing.assert_array_equal(second.numpy(), reference.numpy())


@pytest.mark.host_only  # the compiled calls are the host arrays' (on a device both sides differ in path)
@pytest.mark.parametrize("mode", ["bilinear", "nearest"])
@pytest.mark.parametrize("padding_mode", ["zeros", "border", "reflection"])
@pytest.mark.parametrize("corners", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_one_call_2d_sampling_is_bit_identical_to_the_separate_calls(
    kernels: Any, dtype: Any, corners: bool, padding_mode: str, mode: str
) -> None:
    """A 2-D bilinear/nearest grid_sample runs as one compiled call (``sample2d``); its values and both
    gradients equal the separate compiled calls' (``_compiled_sample``) bit for bit, NaN, infinities,
    exact edges, pixel centres (nearest's half-to-even ties) and several reflections included."""
    g = _awkward_grid(dtype, corners)
    img = np.random.default_rng(5).normal(size=(4, 3, 12, 10)).astype(dtype)
    weights = np.sin(np.arange(4 * 3 * 33 * 31)).reshape(4, 3, 33, 31).astype(dtype)
    results = []
    for one_call in (True, False):
        x = ds.tensor(img, dtype=img.dtype, requires_grad=True)
        grid = ds.tensor(g, dtype=g.dtype, requires_grad=True)
        if one_call:
            y = ds.nn.functional.grid_sample(x, grid, mode=mode, padding_mode=padding_mode, align_corners=corners)
        else:
            y = sampling._compiled_sample(kernels, x, grid, mode, padding_mode, corners)
        (y * ds.tensor(weights, dtype=weights.dtype)).sum().backward()
        assert x.grad is not None and grid.grad is not None
        results.append((y.detach().numpy(), x.grad.numpy(), grid.grad.numpy()))
    for got, want in zip(*results):
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)
