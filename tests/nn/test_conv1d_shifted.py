"""1-D convolutions computed as shifted GEMMs (no im2col, no fold) against PyTorch: outputs and all
three gradients in float64 (tight) and float32, N-major and channel-major inputs, dilation, asymmetric
'same' padding, batches split over several chunks, the compiled kernels and NumPy alone, double
backward, and the strict stand-in for a GPU."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds
from downslope.nn import _conv_kernels
from downslope.nn import convolution as C

torch = pytest.importorskip("torch")
TF = torch.nn.functional


def _compare(assert_close, x, w, b, kwargs, dtype, channel_major=False, needs=(True, True)):
    """conv1d's output and gradients against torch for a random output gradient. ``channel_major``:
    the input first goes through an identity 1x1 convolution, so it arrives laid out as a layer's output."""
    xd = ds.tensor(x, dtype=dtype, requires_grad=needs[0])
    wd = ds.tensor(w, dtype=dtype, requires_grad=needs[1])
    xt, wt = torch.tensor(x, requires_grad=needs[0]), torch.tensor(w, requires_grad=needs[1])
    bd = None if b is None else ds.tensor(b, dtype=dtype, requires_grad=True)
    bt = None if b is None else torch.tensor(b, requires_grad=True)
    source = xd
    if channel_major:
        source = C.conv1d(xd, ds.tensor(np.eye(x.shape[1])[:, :, None], dtype=dtype))
    out_d = C.conv1d(source, wd, bd, **kwargs)
    out_t = TF.conv1d(xt, wt, bt, **kwargs)
    assert out_d.shape == tuple(out_t.shape)
    assert_close(out_d.detach().numpy(), out_t.detach().numpy(), dtype, "output")
    g = np.random.default_rng(7).standard_normal(out_d.shape)
    out_d.backward(ds.tensor(g, dtype=dtype))
    out_t.backward(torch.tensor(g))
    if needs[0]:
        assert_close(xd.grad.numpy(), xt.grad.numpy(), dtype, "input gradient")
    if needs[1]:
        assert_close(wd.grad.numpy(), wt.grad.numpy(), dtype, "weight gradient")
    else:
        assert wd.grad is None
    if b is not None:
        assert_close(bd.grad.numpy(), bt.grad.numpy(), dtype, "bias gradient")


GEOMETRIES = [
    ((3, 16, 20), 16, 3, dict(padding=1)),
    ((2, 32, 9), 24, 5, dict(dilation=2)),  # no padding: every column of the last image is kept
    ((4, 32, 30), 16, 7, dict(padding=6, dilation=2)),
    ((1, 16, 5), 16, 3, dict(padding=4, dilation=3)),  # padding wider than the input
    ((5, 17, 13), 19, 4, dict(padding="same")),  # asymmetric padding (1 left, 2 right)
    ((2, 16, 8), 33, 2, dict(padding="same")),
    ((2, 40, 3), 16, 3, dict(padding=2)),  # shorter than the kernel's span without the padding
]


@pytest.mark.parametrize("shape, c_out, k, kwargs", GEOMETRIES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_shifted_conv1d_matches_torch(kernels, assert_close, shape, c_out, k, kwargs, dtype):
    rng = np.random.default_rng(3)
    x = rng.standard_normal(shape)
    w = rng.standard_normal((c_out, shape[1], k))
    b = rng.standard_normal(c_out)
    _compare(assert_close, x, w, b, kwargs, dtype)
    _compare(assert_close, x, w, None, kwargs, dtype, channel_major=True)


@pytest.mark.parametrize("needs", [(True, False), (False, True)])
def test_shifted_conv1d_gives_only_the_gradients_asked_for(kernels, assert_close, needs):
    rng = np.random.default_rng(4)
    x, w = rng.standard_normal((3, 16, 11)), rng.standard_normal((20, 16, 5))
    _compare(assert_close, x, w, rng.standard_normal(20), dict(padding=2), np.float64, needs=needs)


def test_shifted_conv1d_over_many_chunks_matches_torch(kernels, assert_close, monkeypatch):
    """A batch split into several runs of images (and over threads' parts) gives the same results."""
    monkeypatch.setattr(_conv_kernels, "CHUNK_BYTES_1D", 3000)  # a few images per chunk
    rng = np.random.default_rng(5)
    x, w = rng.standard_normal((11, 16, 9)), rng.standard_normal((16, 16, 3))
    for dtype in (np.float32, np.float64):
        _compare(assert_close, x, w, rng.standard_normal(16), dict(padding=1, dilation=2), dtype)
        _compare(assert_close, x, w, None, dict(padding=1), dtype, channel_major=True)


def test_shifted_conv1d_builds_no_im2col_columns(kernels, monkeypatch):
    """From 32 input channels neither pass builds im2col columns nor folds them back."""

    def refuse(*args, **kwargs):
        raise AssertionError("im2col columns were built")

    monkeypatch.setattr(_conv_kernels, "_im2col", refuse)
    x = ds.randn(4, 32, 50, requires_grad=True)
    conv = ds.nn.Conv1d(32, 48, 7, padding=3, dilation=1)
    conv(conv(x)[:, :32]).square().sum().backward()
    assert x.grad.shape == x.shape and conv.weight.grad.shape == conv.weight.shape


def test_narrow_input_takes_im2col_forward_and_shifted_gradients(monkeypatch):
    """16 input channels: the forward pass is im2col's one GEMM, the gradients the shifted products."""
    x = np.random.default_rng(6).standard_normal((2, 16, 1, 10)).astype(np.float32)
    w = np.random.default_rng(7).standard_normal((16, 16, 1, 3)).astype(np.float32)
    geometry = ((1, 1), (0, 0, 1, 1), (1, 1), 1, (1, 10))
    _, saved = _conv_kernels.conv2d_forward(x, w, None, geometry)
    assert saved[1] == ("shifted",)
    _, saved = _conv_kernels.conv2d_forward(x[:, :8], w[:, :8], None, geometry)  # 8 channels: im2col
    assert saved[1] is None
    strided = ((1, 2), (0, 0, 1, 1), (1, 1), 1, (1, 5))  # strided: im2col
    assert _conv_kernels.conv2d_forward(x, w, None, strided)[1][1] is None


def test_shifted_conv1d_double_backward_matches_torch(kernels, assert_close):
    """A gradient penalty differentiates the gradient again (the recorded rule)."""
    rng = np.random.default_rng(9)
    x, w = rng.standard_normal((2, 16, 9)), rng.standard_normal((16, 16, 3))
    xd, wd = ds.tensor(x, dtype=ds.float64, requires_grad=True), ds.tensor(w, dtype=ds.float64, requires_grad=True)
    xt, wt = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    (gd,) = ds.autograd.grad(C.conv1d(xd, wd, padding=1, dilation=2).square().sum(), [xd], create_graph=True)
    (gt,) = torch.autograd.grad(TF.conv1d(xt, wt, padding=1, dilation=2).square().sum(), [xt], create_graph=True)
    gd.square().sum().backward()
    gt.square().sum().backward()
    assert_close(gd.detach().numpy(), gt.detach().numpy(), np.float64, "input gradient")
    assert_close(wd.grad.numpy(), wt.grad.numpy(), np.float64, "weight gradient of the gradient penalty")


def test_shifted_conv1d_module_trains_like_torch(kernels, assert_close):
    """Conv1d layers stacked (the second reads the first's channel-major output), two SGD steps."""
    rng = np.random.default_rng(11)
    x = rng.standard_normal((4, 16, 24)).astype(np.float32)
    torch.manual_seed(0)
    theirs = torch.nn.Sequential(torch.nn.Conv1d(16, 32, 5, padding=2), torch.nn.ReLU(), torch.nn.Conv1d(32, 32, 3))
    ours = ds.nn.Sequential(ds.nn.Conv1d(16, 32, 5, padding=2), ds.nn.ReLU(), ds.nn.Conv1d(32, 32, 3))
    ours.load_state_dict({k: ds.tensor(v.detach().numpy()) for k, v in theirs.state_dict().items()})
    opt_t = torch.optim.SGD(theirs.parameters(), lr=0.01)
    opt_d = ds.optim.SGD(ours.parameters(), lr=0.01)
    for _ in range(2):
        opt_t.zero_grad()
        opt_d.zero_grad()
        theirs(torch.tensor(x)).square().mean().backward()
        ours(ds.tensor(x)).square().mean().backward()
        opt_t.step()
        opt_d.step()
    for (name, p_t), p_d in zip(theirs.named_parameters(), ours.parameters()):
        assert_close(p_d.detach().numpy(), p_t.detach().numpy(), np.float32, name)


@pytest.mark.parametrize("kwargs", [dict(padding=1), dict(padding="same", dilation=2)])
def test_shifted_conv1d_on_the_strict_device_matches_torch(check_op, kwargs):
    """Device arrays run the same shifted products through their own namespace."""
    rng = np.random.default_rng(10)
    arrays = [rng.standard_normal((3, 32, 12)).astype(np.float32), rng.standard_normal((16, 32, 4)).astype(np.float32),
              rng.standard_normal(16).astype(np.float32)]  # fmt: skip
    check_op(
        lambda x, w, b: C.conv1d(x, w, b, **kwargs),
        lambda x, w, b: TF.conv1d(x, w, b, **kwargs),
        arrays,
        device="strict",
    )
