"""The host im2col (downslope.nn._conv_kernels._im2col) on both of its paths against torch's unfold.

Small inputs copy every receptive field at once from a padded copy (``_im2col_view``); larger ones
run the per-kernel-offset loop. Both must give torch's columns for any stride, dilation and padding
(asymmetric too), from N-major and channel-major inputs, and geometries whose fields pass the
padded input's border (conv_transpose's) must read zeros there.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import downslope as ds
from downslope.nn import _conv_kernels as K

pytestmark = pytest.mark.host_only  # the host paths of _im2col (devices take _im2col_strided)

CASES = [
    # (N, C, H, W), (kh, kw), stride, dilation, (top, bottom, left, right)
    ((1, 1, 28, 28), (5, 5), (1, 1), (1, 1), (2, 2, 2, 2)),
    ((1, 6, 14, 14), (5, 5), (1, 1), (1, 1), (0, 0, 0, 0)),
    ((2, 3, 9, 11), (3, 2), (2, 1), (1, 2), (1, 0, 2, 1)),
    ((3, 4, 8, 7), (3, 3), (2, 3), (2, 1), (1, 2, 0, 3)),
    ((2, 5, 6, 6), (1, 3), (1, 2), (1, 1), (0, 0, 1, 1)),
]


def _out_size(size: int, k: int, s: int, d: int, lo: int, hi: int) -> int:
    return (size + lo + hi - d * (k - 1) - 1) // s + 1


def _torch_columns(x: np.ndarray, kernel, stride, dilation, pads) -> np.ndarray:
    top, bottom, left, right = pads
    padded = torch.nn.functional.pad(torch.from_numpy(x), (left, right, top, bottom))
    cols = torch.nn.functional.unfold(padded, kernel, dilation=dilation, stride=stride)  # (N, C*kh*kw, L)
    return cols.numpy().transpose(1, 0, 2).reshape(cols.shape[1], -1)  # ours: (C*kh*kw, N*OH*OW)


@pytest.mark.parametrize("path", ["view", "loop"])
@pytest.mark.parametrize("channel_major", [False, True])
@pytest.mark.parametrize("case", CASES)
def test_im2col_matches_torch_unfold_on_both_paths(case, channel_major, path, monkeypatch):
    shape, kernel, stride, dilation, pads = case
    monkeypatch.setattr(K, "IM2COL_VIEW_MAX_BLOCK", 10**9 if path == "view" else 0)
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    if channel_major:
        x = np.ascontiguousarray(x.transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3)
    oh = _out_size(shape[2], kernel[0], stride[0], dilation[0], pads[0], pads[1])
    ow = _out_size(shape[3], kernel[1], stride[1], dilation[1], pads[2], pads[3])
    geometry = (stride, pads, dilation, 1, (oh, ow))
    want = _torch_columns(x, kernel, stride, dilation, pads)
    out = np.full(want.size, np.nan, dtype=np.float32)  # every value must be written
    got = K._im2col(x, kernel, geometry, out).reshape(want.shape)
    np.testing.assert_array_equal(got, want)


def test_im2col_reads_zeros_past_a_border_the_geometry_does_not_pad():
    """conv_transpose's geometry pads the bottom/right only as far as it needs: fields that pass
    the padded input read zeros (the view path must not read past the padded copy)."""
    x = np.random.default_rng(1).standard_normal((1, 2, 5, 5)).astype(np.float32)
    geometry = ((1, 1), (1, 0, 1, 0), (1, 1), 1, (5, 5))  # 3x3 fields at rows/columns -1..5
    want = _torch_columns(x, (3, 3), (1, 1), (1, 1), (1, 1, 1, 1))
    out = np.full(want.size, np.nan, dtype=np.float32)
    got = K._im2col(x, (3, 3), geometry, out).reshape(want.shape)
    np.testing.assert_array_equal(got, want)


def test_small_im2col_is_one_copy_not_a_loop_over_kernel_offsets(monkeypatch):
    """The batch-1 LeNet layers spent most of an eval pass in the loop's ~5 NumPy calls per kernel
    offset (25 offsets): small builds copy a strided view of the padded input instead."""

    def loop_used(*args):
        raise AssertionError("the per-offset loop ran for a small im2col")

    monkeypatch.setattr(K, "_valid_range", loop_used)
    for shape, kernel, pads in (((1, 1, 28, 28), (5, 5), (2, 2, 2, 2)), ((1, 6, 14, 14), (5, 5), (0, 0, 0, 0))):
        x = np.random.default_rng(2).standard_normal(shape).astype(np.float32)
        oh, ow = (_out_size(shape[2 + i], 5, 1, 1, pads[2 * i], pads[2 * i + 1]) for i in range(2))
        want = _torch_columns(x, kernel, (1, 1), (1, 1), pads)
        got = K._im2col(x, kernel, ((1, 1), pads, (1, 1), 1, (oh, ow)), np.empty(want.size, np.float32))
        np.testing.assert_array_equal(got.reshape(want.shape), want)


def test_lenet_at_batch_one_matches_torch_forward_and_backward():
    torch.manual_seed(0)

    def make(nn):
        return nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.Tanh(), nn.AvgPool2d(2), nn.Conv2d(6, 16, 5), nn.Tanh())

    theirs, ours = make(torch.nn), make(ds.nn)
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    x = np.random.default_rng(3).standard_normal((1, 1, 28, 28)).astype(np.float32)
    xt, xd = torch.tensor(x, requires_grad=True), ds.tensor(x, requires_grad=True)
    yt, yd = theirs(xt), ours(xd)
    np.testing.assert_allclose(yd.detach().numpy(), yt.detach().numpy(), rtol=1e-5, atol=1e-6)
    yt.square().sum().backward()
    yd.square().sum().backward()
    np.testing.assert_allclose(xd.grad.numpy(), xt.grad.numpy(), rtol=1e-5, atol=1e-5)
    for (name, p), q in zip(ours.named_parameters(), theirs.parameters()):
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=1e-5, atol=1e-5, err_msg=name)


GRADIENT_CASES = [
    # (N, C, H, W), Conv2d arguments
    ((5, 6, 14, 14), dict(in_channels=6, out_channels=16, kernel_size=5)),
    ((3, 4, 9, 8), dict(in_channels=4, out_channels=6, kernel_size=3, stride=2, padding=1, dilation=(1, 2))),
    ((2, 6, 8, 8), dict(in_channels=6, out_channels=4, kernel_size=3, padding=(2, 1), groups=2)),
    ((4, 16, 7, 7), dict(in_channels=16, out_channels=8, kernel_size=4, stride=2, padding=1)),
]


@pytest.mark.parametrize("weights_from", ["rows", "columns"])
@pytest.mark.parametrize("case", GRADIENT_CASES)
def test_im2col_gradients_match_torch_with_rows_or_columns(case, weights_from, monkeypatch):
    """The weight gradient from the compiled rows kernel (``g @ rows``) or from the im2col columns
    (``cols @ g.T``, accumulated transposed): both give torch's gradients."""
    shape, kwargs = case
    monkeypatch.setattr(K, "WEIGHT_GRADIENT_ROWS_MAX_K", 10**9 if weights_from == "rows" else 0)
    torch.manual_seed(0)
    theirs = torch.nn.Conv2d(**kwargs)
    ours = ds.nn.Conv2d(**kwargs)
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    x = np.random.default_rng(4).standard_normal(shape).astype(np.float32)
    xt, xd = torch.tensor(x, requires_grad=True), ds.tensor(x, requires_grad=True)
    yt, yd = theirs(xt), ours(xd)
    proj = np.random.default_rng(5).standard_normal(tuple(yt.shape)).astype(np.float32)
    (yt * torch.from_numpy(proj)).sum().backward()
    (yd * ds.tensor(proj)).sum().backward()
    # float32 sums of hundreds of terms: an absolute error on the scale of the largest value
    for got, want in ((xd.grad, xt.grad), (ours.weight.grad, theirs.weight.grad), (ours.bias.grad, theirs.bias.grad)):
        want = want.numpy()
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-5, atol=1e-6 * np.abs(want).max())


def test_wide_fields_take_the_weight_gradient_from_columns(monkeypatch):
    """Conv2d(6, 16, 5) (150 values a field) in training: the compiled rows kernel scattered its
    rows 3-7x slower than im2col builds columns, and was a third of the step; wide fields skip it."""
    from downslope.nn import _jit

    x = np.random.default_rng(6).standard_normal((8, 6, 14, 14)).astype(np.float32)
    compiled = _jit.kernels(x, x)
    if compiled is None:
        pytest.skip("numba is not installed (the jit extra) or the compiled kernels are off")

    def refuse(*args):
        raise AssertionError("the rows kernel ran for a wide field")

    monkeypatch.setattr(compiled, "im2col_rows", refuse)
    torch.manual_seed(1)
    theirs = torch.nn.Conv2d(6, 16, 5)
    ours = ds.nn.Conv2d(6, 16, 5)
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    theirs(torch.tensor(x)).square().sum().backward()
    ours(ds.tensor(x)).square().sum().backward()
    want = theirs.weight.grad.numpy()
    np.testing.assert_allclose(ours.weight.grad.numpy(), want, rtol=1e-5, atol=1e-6 * np.abs(want).max())
