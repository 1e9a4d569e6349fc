"""Pooling whose windows tile the input (stride = kernel dividing the size, no padding): short 1-D
max windows (``MaxPool1d(2)``) and 1-D average windows of 8-63 block by block, long windows (64 elements
and more: global pooling, ``AvgPool2d(7)`` on 7x7, 8x8 windows) one row each; against torch across block
boundaries, at ties, NaN and -inf, for a channel-major input, with indices, and through the double
backward; and the routing away from the paths that took 10-200x torch's time there."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import downslope as ds
import downslope.nn.functional as F
from downslope.nn import pooling, pooling_windows

torch = pytest.importorskip("torch")


def _signal(shape: tuple[int, ...], dtype: Any, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.integers(-3, 4, shape).astype(dtype)  # few values: many tied maxima in a window
    flat = x.reshape(-1, shape[-1])
    flat[0, 1] = flat[0, 2] = np.nan  # NaN windows: torch's gradient goes to the window's last NaN
    flat[-1, :] = -np.inf
    return x


def _compare(x: np.ndarray, kernel: int, w: np.ndarray) -> None:
    ours = ds.tensor(x, dtype=x.dtype, requires_grad=True)
    theirs = torch.tensor(x, requires_grad=True)
    out, idx = F.max_pool1d(ours, kernel, return_indices=True)
    ref, ref_idx = torch.nn.functional.max_pool1d(theirs, kernel, return_indices=True)
    (out * ds.tensor(w, dtype=x.dtype)).sum().backward()
    (ref * torch.tensor(w)).sum().backward()
    np.testing.assert_array_equal(out.detach().numpy(), ref.detach().numpy())
    np.testing.assert_array_equal(idx.numpy(), ref_idx.numpy())
    assert idx.numpy().dtype == np.int64
    np.testing.assert_array_equal(ours.grad.numpy(), theirs.grad.numpy())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("shape", "kernel"), [((3, 5, 12), 2), ((3, 5, 12), 3), ((2, 4, 126), 63), ((6, 40), 5)])
@pytest.mark.parametrize("block", [7, 1 << 16])  # several blocks (and a ragged last one), or one
def test_short_tiling_windows_match_torch(
    monkeypatch: pytest.MonkeyPatch, dtype: Any, shape: Any, kernel: int, block: int
) -> None:
    monkeypatch.setattr(pooling, "TILED_BLOCK_ELEMENTS", block)
    x = _signal(shape, dtype, kernel)
    w = np.random.default_rng(1).standard_normal(shape[:-1] + (shape[-1] // kernel,)).astype(dtype)
    _compare(x, kernel, w)


def test_short_tiling_windows_of_a_channel_major_input_match_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pooling, "TILED_BLOCK_ELEMENTS", 16)
    x = np.ascontiguousarray(_signal((5, 3, 12), np.float32, 2)).transpose(1, 0, 2)  # a convolution's layout
    w = np.random.default_rng(3).standard_normal((3, 5, 6)).astype(np.float32)
    _compare(x, 2, w)


@pytest.mark.parametrize("shape", [(4, 8, 64), (8, 64)])  # batched and unbatched
def test_short_tiling_windows_no_grad_and_module_match_torch(shape: tuple[int, ...]) -> None:
    x = np.random.default_rng(4).standard_normal(shape).astype(np.float32)
    with ds.no_grad():
        got = ds.nn.MaxPool1d(4)(ds.tensor(x))
    assert not got.requires_grad
    np.testing.assert_array_equal(got.numpy(), torch.nn.MaxPool1d(4)(torch.from_numpy(x)).numpy())
    ours = ds.tensor(x, requires_grad=True)
    theirs = torch.tensor(x, requires_grad=True)
    F.max_pool1d(ours, 2).sum().backward()
    torch.nn.functional.max_pool1d(theirs, 2).sum().backward()
    np.testing.assert_array_equal(ours.grad.numpy(), theirs.grad.numpy())


def test_short_tiling_windows_double_backward_matches_torch() -> None:
    x = np.random.default_rng(5).standard_normal((2, 3, 8))
    ours, theirs = ds.tensor(x, dtype=ds.float64, requires_grad=True), torch.tensor(x, requires_grad=True)
    (g,) = ds.autograd.grad(F.max_pool1d(ours, 2).pow(2).sum(), ours, create_graph=True)
    (ref_g,) = torch.autograd.grad(torch.nn.functional.max_pool1d(theirs, 2).pow(2).sum(), theirs, create_graph=True)
    np.testing.assert_allclose(g.detach().numpy(), ref_g.detach().numpy(), rtol=1e-12)
    (gg,) = ds.autograd.grad((g * ds.tensor(x, dtype=ds.float64)).sum(), ours)
    (ref_gg,) = torch.autograd.grad((ref_g * torch.tensor(x)).sum(), theirs)
    np.testing.assert_allclose(gg.numpy(), ref_gg.numpy(), rtol=1e-12)


@pytest.mark.host_only  # the routing of host arrays (device arrays take the stacked windows)
def test_short_tiling_windows_do_not_take_the_global_pooling_argmax(monkeypatch: pytest.MonkeyPatch) -> None:
    # the argmax along a last axis of 2 costs a per-row overhead: MaxPool1d(2) was 20-200x torch through it
    def refuse(*args: Any) -> Any:
        raise AssertionError("short windows went through adaptive_max_last")

    monkeypatch.setattr(pooling_windows, "adaptive_max_last", refuse)
    x = ds.tensor(np.random.default_rng(6).standard_normal((2, 3, 16)).astype(np.float32))
    for kernel in (2, 4, 8):
        F.max_pool1d(x, kernel)


def _pair(x: np.ndarray) -> tuple[Any, Any]:
    return ds.tensor(x, dtype=x.dtype, requires_grad=True), torch.tensor(x, requires_grad=True)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    ("shape", "kernel"),
    [
        ((2, 3, 32, 32), 16),  # 256 elements a window: rows
        ((2, 3, 16, 32), (16, 16)),
        ((1, 2, 4, 256), (2, 128)),
        ((2, 3, 8, 8), 8),  # global: rows from 64 elements
        ((3, 32, 32), 32),
        ((2, 3, 16, 16), 8),  # 64 elements, not global: the stacked windows (either way the same answers)
    ],
)
def test_long_tiling_2d_max_windows_match_torch(dtype: Any, shape: Any, kernel: Any) -> None:
    x = np.random.default_rng(7).integers(-3, 4, shape).astype(dtype)  # ties in every window
    x.reshape(-1)[5] = x.reshape(-1)[40] = np.nan
    ours, theirs = _pair(x)
    out, idx = F.max_pool2d(ours, kernel, return_indices=True)
    ref, ref_idx = torch.nn.functional.max_pool2d(theirs, kernel, return_indices=True)
    w = np.random.default_rng(8).standard_normal(ref.shape).astype(dtype)
    (out * ds.tensor(w, dtype=x.dtype)).sum().backward()
    (ref * torch.tensor(w)).sum().backward()
    np.testing.assert_array_equal(out.detach().numpy(), ref.detach().numpy())
    np.testing.assert_array_equal(idx.numpy(), ref_idx.numpy())
    np.testing.assert_array_equal(ours.grad.numpy(), theirs.grad.numpy())


@pytest.mark.parametrize(
    ("shape", "kernel", "divisor"),
    [
        ((2, 3, 16, 16), 8, None),
        ((2, 3, 7, 7), 7, None),
        ((3, 32, 32), 32, 100),
        ((2, 3, 16, 24), (8, 12), None),
        ((2, 3, 12, 16), (4, 8), None),  # 32 elements: rows
        ((2, 5, 4, 4), 4, None),  # global: rows from 4 elements
        ((2, 3, 8, 8), 4, 7),  # 16 elements, not global: the stacked windows
    ],
)
def test_long_tiling_2d_avg_windows_match_torch(shape: Any, kernel: Any, divisor: Any) -> None:
    x = np.random.default_rng(9).standard_normal(shape)
    ours, theirs = _pair(x)
    out = F.avg_pool2d(ours, kernel, divisor_override=divisor)
    ref = torch.nn.functional.avg_pool2d(theirs, kernel, divisor_override=divisor)
    w = np.random.default_rng(10).standard_normal(ref.shape)
    (out * ds.tensor(w, dtype=ds.float64)).sum().backward()
    (ref * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(out.detach().numpy(), ref.detach().numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize(("length", "kernel"), [(128, 64), (256, 256), (192, 96)])
def test_long_tiling_1d_avg_windows_match_torch(length: int, kernel: int) -> None:
    x = np.random.default_rng(11).standard_normal((2, 3, length)).astype(np.float32)
    ours, theirs = _pair(x)
    out, ref = F.avg_pool1d(ours, kernel), torch.nn.functional.avg_pool1d(theirs, kernel)
    out.pow(2).sum().backward()
    ref.pow(2).sum().backward()
    np.testing.assert_allclose(out.detach().numpy(), ref.detach().numpy(), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=1e-6, atol=1e-7)


def test_long_tiling_windows_of_a_channel_major_input_and_double_backward_match_torch() -> None:
    x = np.ascontiguousarray(np.random.default_rng(12).standard_normal((3, 2, 8, 8))).transpose(1, 0, 2, 3)
    for pool, ref_pool in (
        (F.max_pool2d, torch.nn.functional.max_pool2d),
        (F.avg_pool2d, torch.nn.functional.avg_pool2d),
    ):
        ours, theirs = _pair(x)
        (g,) = ds.autograd.grad(pool(ours, 8).pow(2).sum(), ours, create_graph=True)
        (ref_g,) = torch.autograd.grad(ref_pool(theirs, 8).pow(2).sum(), theirs, create_graph=True)
        np.testing.assert_allclose(g.detach().numpy(), ref_g.detach().numpy(), rtol=1e-12)
        (gg,) = ds.autograd.grad((g * ds.tensor(x, dtype=ds.float64)).sum(), ours)
        (ref_gg,) = torch.autograd.grad((ref_g * torch.tensor(x)).sum(), theirs)
        np.testing.assert_allclose(gg.numpy(), ref_gg.numpy(), rtol=1e-12, atol=1e-14)


@pytest.mark.host_only  # the routing of host arrays (device arrays take the stacked windows)
def test_long_tiling_2d_windows_do_not_take_the_stacked_windows_copy(monkeypatch: pytest.MonkeyPatch) -> None:
    # global pooling through the stacked windows copied with an inner loop across images: 50x torch
    def refuse(*args: Any) -> Any:
        raise AssertionError("long tiling windows went through _stacked_windows")

    monkeypatch.setattr(pooling, "_stacked_windows", refuse)
    x = ds.tensor(np.random.default_rng(13).standard_normal((2, 3, 16, 16)).astype(np.float32))
    F.max_pool2d(x, 16)
    F.avg_pool2d(x, 8)
    F.avg_pool1d(ds.tensor(np.ones((2, 3, 128), np.float32)), 64)
    F.avg_pool1d(ds.tensor(np.ones((2, 3, 128), np.float32)), 16)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("shape", "kernel"), [((3, 5, 64), 8), ((2, 4, 96), 32), ((6, 126), 63), ((2, 3, 48), 16)])
@pytest.mark.parametrize("block", [40, 1 << 16])  # several blocks (a ragged last one), or one
def test_mid_tiling_1d_avg_windows_match_torch(
    monkeypatch: pytest.MonkeyPatch, dtype: Any, shape: Any, kernel: int, block: int
) -> None:
    monkeypatch.setattr(pooling, "TILED_BLOCK_ELEMENTS", block)
    x = np.random.default_rng(kernel).standard_normal(shape).astype(dtype)
    ours, theirs = _pair(x)
    out, ref = F.avg_pool1d(ours, kernel), torch.nn.functional.avg_pool1d(theirs, kernel)
    w = np.random.default_rng(14).standard_normal(ref.shape).astype(dtype)
    (out * ds.tensor(w, dtype=x.dtype)).sum().backward()
    (ref * torch.tensor(w)).sum().backward()
    tol = 1e-6 if dtype == np.float32 else 1e-14
    np.testing.assert_allclose(out.detach().numpy(), ref.detach().numpy(), rtol=tol, atol=tol)
    np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=tol, atol=tol)


def test_mid_tiling_1d_avg_windows_of_a_channel_major_input_and_double_backward_match_torch() -> None:
    x = np.ascontiguousarray(np.random.default_rng(15).standard_normal((3, 2, 32))).transpose(1, 0, 2)
    ours, theirs = _pair(x)
    (g,) = ds.autograd.grad(F.avg_pool1d(ours, 16).pow(2).sum(), ours, create_graph=True)
    (ref_g,) = torch.autograd.grad(torch.nn.functional.avg_pool1d(theirs, 16).pow(2).sum(), theirs, create_graph=True)
    np.testing.assert_allclose(g.detach().numpy(), ref_g.detach().numpy(), rtol=1e-12)
    (gg,) = ds.autograd.grad((g * ds.tensor(x, dtype=ds.float64)).sum(), ours)
    (ref_gg,) = torch.autograd.grad((ref_g * torch.tensor(x)).sum(), theirs)
    np.testing.assert_allclose(gg.numpy(), ref_gg.numpy(), rtol=1e-12, atol=1e-14)
