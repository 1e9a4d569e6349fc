"""Depthwise convolutions (groups = C_in) against PyTorch: strides, padding, odd and even sizes,
dilation, channel multipliers, with and without bias, on the compiled kernels and on NumPy alone."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds
from downslope.nn import _conv_kernels
from downslope.nn import convolution as C

torch = pytest.importorskip("torch")
TF = torch.nn.functional


def _compare(assert_close, x, w, b, kwargs, dtype, what="", g=None):
    """Output and the gradients of every input against torch, for the output gradient ``g`` (random
    when None)."""
    xd, wd = ds.tensor(x, dtype=dtype, requires_grad=True), ds.tensor(w, dtype=dtype, requires_grad=True)
    xt, wt = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    bd = None if b is None else ds.tensor(b, dtype=dtype, requires_grad=True)
    bt = None if b is None else torch.tensor(b, requires_grad=True)
    groups = x.shape[1]
    out_d = C.conv2d(xd, wd, bd, groups=groups, **kwargs)
    out_t = TF.conv2d(xt, wt, bt, groups=groups, **kwargs)
    assert out_d.shape == tuple(out_t.shape)
    assert_close(out_d.detach().numpy(), out_t.detach().numpy(), dtype, what + "output")
    if g is None:
        g = np.random.default_rng(7).standard_normal(out_d.shape).astype(dtype)
    out_d.backward(ds.tensor(g, dtype=dtype))
    out_t.backward(torch.tensor(g))
    assert_close(xd.grad.numpy(), xt.grad.numpy(), dtype, what + "input gradient")
    assert_close(wd.grad.numpy(), wt.grad.numpy(), dtype, what + "weight gradient")
    if b is not None:
        assert_close(bd.grad.numpy(), bt.grad.numpy(), dtype, what + "bias gradient")


@pytest.mark.parametrize(
    "shape, multiplier, kernel, kwargs",
    [
        ((3, 4, 16, 16), 1, (3, 3), dict(stride=2, padding=1)),  # MobileNet's downsampling layer
        ((2, 3, 17, 15), 1, (3, 3), dict(stride=2, padding=1)),  # odd sizes
        ((2, 3, 16, 14), 2, (3, 3), dict(stride=2, padding=0)),  # even sizes, a row and column never read
        ((2, 3, 17, 17), 3, (3, 3), dict(stride=2, padding=0)),
        ((2, 2, 15, 16), 1, (3, 3), dict(stride=2, padding=2, dilation=2)),
        ((2, 2, 12, 13), 2, (5, 5), dict(stride=2, padding=2)),
        ((1, 3, 9, 12), 1, (3, 3), dict(stride=3, padding=1)),
        ((2, 2, 10, 9), 1, (3, 2), dict(stride=(2, 3), padding=(1, 0), dilation=(1, 2))),
        ((2, 2, 7, 8), 1, (3, 3), dict(stride=1, padding=1)),
        ((2, 2, 5, 4), 1, (7, 7), dict(stride=2, padding=3)),  # the kernel wider than the image
        ((2, 2, 2, 2), 1, (3, 3), dict(stride=2, padding=2)),  # padding as wide as the input: im2col
        ((1, 2, 1, 2), 1, (1, 1), dict(stride=1, padding=1)),  # output rows longer than the input's: im2col
        ((2, 2, 6, 5), 1, (1, 3), dict(stride=(2, 1), padding=(0, 2))),
        ((3, 3, 9, 6), 2, (1, 2), dict(stride=(3, 1), padding=1)),  # the last output row past the rows
    ],
)
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_depthwise_values_and_gradients_match_torch(
    assert_close, kernels, shape, multiplier, kernel, kwargs, bias, dtype
):
    rng = np.random.default_rng(sum(shape) + multiplier)
    c = shape[1]
    x = rng.standard_normal(shape).astype(dtype)
    w = rng.standard_normal((c * multiplier, 1) + kernel).astype(dtype)
    b = rng.standard_normal(c * multiplier).astype(dtype) if bias else None
    _compare(assert_close, x, w, b, kwargs, dtype)


@pytest.mark.parametrize("multiplier", [1, 2])
def test_depthwise_stride_2_over_many_chunks_of_images_matches_torch(assert_close, kernels, multiplier):
    """More images than one chunk of the compiled kernels holds (the last chunk part full)."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((61, 3, 16, 16)).astype(np.float32)
    w = rng.standard_normal((3 * multiplier, 1, 3, 3)).astype(np.float32)
    b = rng.standard_normal(3 * multiplier).astype(np.float32)
    _compare(assert_close, x, w, b, dict(stride=2, padding=1), np.float32)


def test_depthwise_stride_2_takes_the_compiled_kernels(kernels):
    x, w = np.zeros((2, 4, 16, 16), np.float32), np.zeros((4, 1, 3, 3), np.float32)
    geometry = ((2, 2), (1, 1, 1, 1), (1, 1), 4, (8, 8))
    assert (_conv_kernels._depthwise_jit(x, w, None, geometry) is not None) == (kernels == "jit")
    wide = ((2, 2), (2, 2, 2, 2), (1, 1), 4, (2, 2))  # padding as wide as a 2x2 input: im2col
    assert _conv_kernels._depthwise_jit(x[:, :, :2, :2], w, None, wide) is None


def test_depthwise_reads_an_unaligned_float32_input(assert_close, kernels):
    """A C-contiguous float32 input 4 bytes off an 8-byte boundary (the kernels read pairs of float32
    as 64-bit words)."""
    rng = np.random.default_rng(4)
    raw = np.zeros(2 * 3 * 8 * 8 + 1, np.float32)
    x = raw[1:].reshape(2, 3, 8, 8)
    x[...] = rng.standard_normal(x.shape)
    assert x.ctypes.data % 8
    w = rng.standard_normal((3, 1, 3, 3)).astype(np.float32)
    _compare(assert_close, x, w, None, dict(stride=2, padding=1), np.float32)


def test_depthwise_stride_2_on_channel_major_activations_and_a_broadcast_gradient(assert_close, kernels):
    """The input a convolution returns (channel-major memory), and ``sum().backward()``'s gradient
    (a broadcast array, no memory of its own)."""
    rng = np.random.default_rng(5)
    x0 = rng.standard_normal((4, 3, 12, 12)).astype(np.float32)
    w0 = rng.standard_normal((6, 3, 1, 1)).astype(np.float32)
    w = rng.standard_normal((6, 1, 3, 3)).astype(np.float32)
    b = rng.standard_normal(6).astype(np.float32)
    xd, xt = ds.tensor(x0, requires_grad=True), torch.tensor(x0, requires_grad=True)
    wd, wt = ds.tensor(w, requires_grad=True), torch.tensor(w, requires_grad=True)
    bd, bt = ds.tensor(b, requires_grad=True), torch.tensor(b, requires_grad=True)
    hd = C.conv2d(xd, ds.tensor(w0), padding=0)
    ht = TF.conv2d(xt, torch.tensor(w0), padding=0)
    C.conv2d(hd, wd, bd, stride=2, padding=1, groups=6).sum().backward()
    TF.conv2d(ht, wt, bt, stride=2, padding=1, groups=6).sum().backward()
    for ours, theirs, what in ((xd, xt, "input"), (wd, wt, "weight"), (bd, bt, "bias")):
        assert_close(ours.grad.numpy(), theirs.grad.numpy(), np.float32, what + " gradient")


@pytest.mark.parametrize("padding", [0, 1])
def test_depthwise_stride_2_double_backward_matches_torch(assert_close, kernels, padding):
    """A gradient penalty: the input gradient's norm differentiated again (create_graph=True)."""
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 3, 9, 8))
    w = rng.standard_normal((6, 1, 3, 3))
    results = []
    for lib, conv in ((ds, C.conv2d), (torch, TF.conv2d)):
        xs, ws = (
            lib.tensor(x, dtype=lib.float64, requires_grad=True),
            lib.tensor(w, dtype=lib.float64, requires_grad=True),
        )
        out = conv(xs, ws, None, stride=2, padding=padding, groups=3)
        (gx,) = lib.autograd.grad((out * out).sum(), xs, create_graph=True)
        (gx * gx).sum().backward()
        results.append((xs.grad.detach().numpy(), ws.grad.detach().numpy()))
    (ours_x, ours_w), (theirs_x, theirs_w) = results
    assert_close(ours_x, theirs_x, np.float64, "input")
    assert_close(ours_w, theirs_w, np.float64, "weight")
