"""The convolution's special paths against PyTorch: 1x1 convolutions as one GEMM (no im2col), the
direct kernels for few output channels, and the Winograd weight transform reused across calls with
gradients on (never a stale one). Each runs on the compiled kernels and on NumPy alone, and on the
strict stand-in for a GPU (device arrays take the NumPy-formulated path)."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds
from downslope.nn import _conv_kernels, _jit
from downslope.nn import convolution as C

torch = pytest.importorskip("torch")
TF = torch.nn.functional


def _compare(assert_close, x, w, b, kwargs, dtype, channel_major=False, needs=(True, True)):
    """Output and gradients against torch for a random output gradient. ``channel_major``: the input
    first goes through an identity 1x1 convolution, so it arrives laid out as a layer's output."""
    xd = ds.tensor(x, dtype=dtype, requires_grad=needs[0])
    wd = ds.tensor(w, dtype=dtype, requires_grad=needs[1])
    xt, wt = torch.tensor(x, requires_grad=needs[0]), torch.tensor(w, requires_grad=needs[1])
    bd = None if b is None else ds.tensor(b, dtype=dtype, requires_grad=True)
    bt = None if b is None else torch.tensor(b, requires_grad=True)
    source = xd
    if channel_major:
        eye = np.eye(x.shape[1]).reshape(x.shape[1], x.shape[1], 1, 1)
        source = C.conv2d(xd, ds.tensor(eye, dtype=dtype))
    out_d = C.conv2d(source, wd, bd, **kwargs)
    out_t = TF.conv2d(xt, wt, bt, **kwargs)
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


# ---------------------------------------------------------------------- 1x1 convolutions
@pytest.mark.parametrize("shape, c_out", [((3, 5, 4, 6), 7), ((1, 8, 3, 3), 2), ((4, 3, 1, 9), 16)])
@pytest.mark.parametrize("channel_major", [False, True])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_pointwise_conv_matches_torch(kernels, assert_close, shape, c_out, channel_major, bias, dtype):
    rng = np.random.default_rng(3)
    x = rng.standard_normal(shape)
    w = rng.standard_normal((c_out, shape[1], 1, 1))
    b = rng.standard_normal(c_out) if bias else None
    _compare(assert_close, x, w, b, {}, dtype, channel_major)


@pytest.mark.parametrize("needs", [(True, False), (False, True)])
def test_pointwise_conv_gives_only_the_gradients_asked_for(kernels, assert_close, needs):
    rng = np.random.default_rng(4)
    x, w = rng.standard_normal((2, 4, 5, 5)), rng.standard_normal((3, 4, 1, 1))
    _compare(assert_close, x, w, rng.standard_normal(3), {}, np.float64, needs=needs)


def test_pointwise_conv_reads_a_non_contiguous_input(kernels, check_op):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 4, 6, 10)).astype(np.float32)
    w, b = rng.standard_normal((5, 4, 1, 1)).astype(np.float32), rng.standard_normal(5).astype(np.float32)
    check_op(
        lambda x, w, b: C.conv2d(x[:, :, :, ::2], w, b), lambda x, w, b: TF.conv2d(x[:, :, :, ::2], w, b), [x, w, b]
    )


def test_pointwise_conv_is_one_gemm_without_im2col(kernels, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a 1x1 stride-1 convolution built im2col columns")

    monkeypatch.setattr(_conv_kernels, "_im2col", refuse)
    x = ds.randn(2, 4, 3, 3, requires_grad=True)
    conv = ds.nn.Conv2d(4, 6, 1)
    conv(conv(ds.nn.Conv2d(4, 4, 1)(x))[:, :4]).sum().backward()
    assert x.grad.shape == x.shape


# ---------------------------------------------------------------------- a kernel covering its input
COVERING = [
    ((3, 8, 4, 4), 1, (4, 4), {}),  # DCGAN's discriminator head
    ((2, 6, 3, 5), 5, (3, 5), {}),  # convolution as a fully connected layer, not square
    ((4, 7, 1, 1), 3, (1, 1), dict(stride=2)),  # 1x1 on 1x1 maps with a stride (not the pointwise path)
    ((2, 3, 2, 2), 4, (2, 2), dict(stride=3)),
    ((3, 5, 1, 3), 2, (1, 3), dict(dilation=(2, 1))),  # a dilation along a kernel dim of 1
    ((1, 9, 4, 4), 2, (4, 4), {}),  # one image
]


@pytest.mark.parametrize("shape, c_out, kernel, kwargs", COVERING)
@pytest.mark.parametrize("channel_major", [False, True])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kernel_covering_the_input_matches_torch(
    kernels, assert_close, shape, c_out, kernel, kwargs, channel_major, bias, dtype
):
    rng = np.random.default_rng(11)
    x = rng.standard_normal(shape)
    w = rng.standard_normal((c_out, shape[1]) + kernel)
    b = rng.standard_normal(c_out) if bias else None
    _compare(assert_close, x, w, b, kwargs, dtype, channel_major)


def test_conv1d_kernel_covering_the_input_matches_torch(kernels, check_op):
    rng = np.random.default_rng(15)
    arrays = [rng.standard_normal((3, 6, 7)), rng.standard_normal((4, 6, 7)), rng.standard_normal(4)]
    check_op(lambda x, w, b: C.conv1d(x, w, b, stride=2), lambda x, w, b: TF.conv1d(x, w, b, stride=2), arrays)


@pytest.mark.parametrize("needs", [(True, False), (False, True)])
@pytest.mark.parametrize("c_out", [1, 3])
def test_kernel_covering_the_input_gives_only_the_gradients_asked_for(kernels, assert_close, needs, c_out):
    rng = np.random.default_rng(12)
    x, w = rng.standard_normal((2, 4, 3, 3)), rng.standard_normal((c_out, 4, 3, 3))
    _compare(assert_close, x, w, rng.standard_normal(c_out), {}, np.float64, needs=needs)


@pytest.mark.parametrize(
    "shape, c_out, kernel, kwargs, covering",
    [
        ((2, 8, 4, 4), 1, (4, 4), {}, True),
        ((2, 8, 4, 4), 16, (4, 4), dict(stride=2), True),
        ((2, 8, 2, 2), 16, (4, 4), dict(padding=1), False),  # one output pixel that reads the padding
        ((2, 8, 5, 4), 1, (4, 4), dict(stride=2), False),  # one output pixel, a row of the input unread
        ((2, 8, 4, 4), 1, (3, 3), {}, False),  # 2x2 outputs
        ((2, 8, 4, 4), 4, (4, 4), dict(groups=2), False),
        ((2, 8, 1, 1), 4, (1, 1), {}, False),  # 1x1 stride 1: the pointwise path
    ],
)
def test_kernel_covering_the_input_is_one_gemm_without_im2col(
    kernels, monkeypatch, shape, c_out, kernel, kwargs, covering
):
    """The covering path (forward and gradients) runs exactly for a kernel as large as the unpadded
    input in one group, and then builds no im2col columns; its neighbours take the other paths."""
    calls = []
    forward, vjp = _conv_kernels._covering_forward, _conv_kernels._covering_vjp
    monkeypatch.setattr(_conv_kernels, "_covering_forward", lambda *a: calls.append("forward") or forward(*a))
    monkeypatch.setattr(_conv_kernels, "_covering_vjp", lambda *a: calls.append("vjp") or vjp(*a))
    if covering:
        monkeypatch.setattr(_conv_kernels, "_im2col", lambda *a, **k: pytest.fail("im2col columns were built"))
    x = ds.randn(*shape, requires_grad=True)
    w = ds.randn(c_out, shape[1] // kwargs.get("groups", 1), *kernel, requires_grad=True)
    C.conv2d(x, w, **kwargs).square().sum().backward()
    assert calls == (["forward", "vjp"] if covering else [])
    assert x.grad.shape == x.shape and w.grad.shape == w.shape


def test_kernel_covering_the_input_double_backward_matches_torch(kernels, assert_close):
    """A gradient penalty through a DCGAN-style head differentiates its gradient again."""
    rng = np.random.default_rng(13)
    x, w = rng.standard_normal((3, 4, 4, 4)), rng.standard_normal((1, 4, 4, 4))
    xd, wd = ds.tensor(x, dtype=ds.float64, requires_grad=True), ds.tensor(w, dtype=ds.float64, requires_grad=True)
    xt, wt = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    (gd,) = ds.autograd.grad(C.conv2d(xd, wd).square().sum(), [xd], create_graph=True)
    (gt,) = torch.autograd.grad(TF.conv2d(xt, wt).square().sum(), [xt], create_graph=True)
    gd.square().sum().backward()
    gt.square().sum().backward()
    assert_close(wd.grad.numpy(), wt.grad.numpy(), np.float64, "weight gradient of the gradient penalty")


@pytest.mark.parametrize("c_out", [1, 3])
def test_kernel_covering_the_input_on_the_strict_device_matches_torch(check_op, c_out):
    rng = np.random.default_rng(14)
    arrays = [rng.standard_normal((2, 5, 3, 3)).astype(np.float32),
              rng.standard_normal((c_out, 5, 3, 3)).astype(np.float32), rng.standard_normal(c_out).astype(np.float32)]  # fmt: skip
    check_op(lambda x, w, b: C.conv2d(x, w, b), lambda x, w, b: TF.conv2d(x, w, b), arrays, device="strict")


# ---------------------------------------------------------------------- few output channels
@pytest.mark.parametrize(
    "shape, c_out, kernel, kwargs",
    [
        ((3, 16, 9, 11), 1, (3, 3), dict(padding=1)),  # a segmentation head
        ((2, 3, 10, 7), 2, (3, 3), dict(padding=1)),
        ((2, 5, 12, 13), 4, (3, 5), dict(padding=(0, 2), dilation=(1, 2))),
        ((2, 4, 7, 7), 1, (1, 1), dict(padding=1)),  # 1x1 with padding: not the pointwise path
        ((2, 2, 6, 6), 3, (5, 5), dict(padding=4)),  # padding wider than half the kernel
        ((2, 2, 9, 6), 3, (3, 3), dict(padding=(0, 1), dilation=2)),
        ((2, 3, 5, 8), 1, (2, 2), dict(padding="same")),  # asymmetric padding
        ((2, 3, 6, 6), 6, (3, 3), dict(padding=1)),  # the GEMM's forward, the direct gradients
        ((2, 3, 6, 6), 8, (3, 3), dict()),
        ((2, 3, 9, 9), 1, (3, 3), dict(stride=2, padding=1)),  # strided: im2col
    ],
)
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_few_output_channels_match_torch(kernels, assert_close, shape, c_out, kernel, kwargs, bias, dtype):
    rng = np.random.default_rng(6)
    x = rng.standard_normal(shape)
    w = rng.standard_normal((c_out, shape[1]) + kernel)
    b = rng.standard_normal(c_out) if bias else None
    _compare(assert_close, x, w, b, kwargs, dtype)
    _compare(assert_close, x, w, b, kwargs, dtype, channel_major=True)


@pytest.mark.parametrize("needs", [(True, False), (False, True)])
def test_few_output_channels_give_only_the_gradients_asked_for(kernels, assert_close, needs):
    rng = np.random.default_rng(8)
    x, w = rng.standard_normal((2, 3, 6, 7)), rng.standard_normal((1, 3, 3, 3))
    _compare(assert_close, x, w, rng.standard_normal(1), dict(padding=1), np.float64, needs=needs)


@pytest.mark.host_only  # which compiled kernels ran: the compiled paths take host arrays only
def test_few_output_channels_take_the_direct_kernels(monkeypatch):
    """With the compiled kernels, a 16 -> 1 layer runs no im2col at all (forward and backward)."""
    if _jit.kernels() is None:
        pytest.skip("numba is not installed (the jit extra)")

    def refuse(*args, **kwargs):
        raise AssertionError("im2col columns were built")

    monkeypatch.setattr(_conv_kernels, "JIT_CONV_MIN_MACS", 0)  # a small layer: open the size gate
    monkeypatch.setattr(_conv_kernels, "_im2col", refuse)
    x = ds.randn(2, 16, 7, 7, requires_grad=True)
    conv = ds.nn.Conv2d(16, 1, 3, padding=1)
    conv(x).square().sum().backward()
    assert x.grad.shape == x.shape and conv.weight.grad.shape == conv.weight.shape


@pytest.mark.parametrize("c_out, kernel", [(1, 3), (7, 1)])
def test_fast_paths_double_backward_match_torch(kernels, assert_close, c_out, kernel):
    """A gradient penalty differentiates the gradient again (the recorded rule, on every path)."""
    rng = np.random.default_rng(9)
    x, w = rng.standard_normal((2, 3, 5, 5)), rng.standard_normal((c_out, 3, kernel, kernel))
    pad = kernel // 2
    xd, wd = ds.tensor(x, dtype=ds.float64, requires_grad=True), ds.tensor(w, dtype=ds.float64, requires_grad=True)
    xt, wt = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    (gd,) = ds.autograd.grad(C.conv2d(xd, wd, padding=pad).square().sum(), [xd], create_graph=True)
    (gt,) = torch.autograd.grad(TF.conv2d(xt, wt, padding=pad).square().sum(), [xt], create_graph=True)
    gd.square().sum().backward()
    gt.square().sum().backward()
    assert_close(wd.grad.numpy(), wt.grad.numpy(), np.float64, "weight gradient of the gradient penalty")


@pytest.mark.parametrize("shape, c_out, kwargs", [((2, 4, 5, 5), 6, {}), ((2, 5, 6, 6), 1, dict(padding=1))])
def test_fast_paths_on_the_strict_device_match_torch(check_op, shape, c_out, kwargs):
    """Device arrays take the NumPy-formulated path (the compiled kernels read host arrays only)."""
    rng = np.random.default_rng(10)
    k = 1 if not kwargs else 3
    arrays = [rng.standard_normal(shape).astype(np.float32), rng.standard_normal((c_out, shape[1], k, k)).astype(np.float32),
              rng.standard_normal(c_out).astype(np.float32)]  # fmt: skip
    check_op(
        lambda x, w, b: C.conv2d(x, w, b, **kwargs),
        lambda x, w, b: TF.conv2d(x, w, b, **kwargs),
        arrays,
        device="strict",
    )


# ---------------------------------------------------------------------- Winograd weight reuse with gradients on
@pytest.mark.host_only  # the compiled Winograd path takes host arrays only
def test_winograd_weight_reuse_with_gradients_on_is_never_stale(monkeypatch):
    """With gradients on, a Winograd layer's transformed weight is reused while its bytes are the same;
    training steps (Adam writing the weights in place through its flat buffer, unseen by any version
    counter) and in-place writes give fresh transforms: every step's gradients and every output equal
    torch's with the current weights."""
    jit = _jit.kernels()
    if jit is None:
        pytest.skip("numba is not installed (the jit extra)")
    monkeypatch.setattr(_conv_kernels, "JIT_CONV_MIN_MACS", 0)  # small layers: open the size gate
    calls = []
    real = jit.winograd_weight
    monkeypatch.setattr(jit, "winograd_weight", lambda w: calls.append(1) or real(w))
    rng = np.random.default_rng(11)
    x = rng.standard_normal((2, 16, 6, 6)).astype(np.float32)
    ours = ds.nn.Sequential(ds.nn.Conv2d(16, 16, 3, padding=1), ds.nn.ReLU(), ds.nn.Conv2d(16, 16, 3))
    theirs = torch.nn.Sequential(torch.nn.Conv2d(16, 16, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(16, 16, 3))
    theirs.load_state_dict({k: torch.tensor(v.detach().numpy().copy()) for k, v in ours.state_dict().items()})
    opt_d = ds.optim.Adam(ours.parameters(), lr=0.05)
    opt_t = torch.optim.Adam(theirs.parameters(), lr=0.05)

    def close(a, b, what):
        np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-4, err_msg=what)

    for step in range(3):
        for opt in (opt_d, opt_t):
            opt.zero_grad()
        ours(ds.tensor(x)).square().sum().backward()
        theirs(torch.tensor(x)).square().sum().backward()
        for (name, p), q in zip(ours.named_parameters(), theirs.parameters()):
            close(p.grad.numpy(), q.grad.numpy(), f"step {step}: {name}.grad")
        opt_d.step()
        opt_t.step()
    calls.clear()
    out = ours(ds.tensor(x))  # gradients on, no optimizer step between: transformed once
    again = ours(ds.tensor(x))
    assert len(calls) == 2
    expected = theirs(torch.tensor(x)).detach().numpy()
    close(out.detach().numpy(), expected, "output")
    close(again.detach().numpy(), expected, "output of the reused transform")
    with ds.no_grad():
        ours[0].weight.mul_(-1.0)  # in place, through the tensor
    with torch.no_grad():
        theirs[0].weight.mul_(-1.0)
    ours[2].weight.detach().numpy()[0, 0, 0, 0] += 1.0  # through NumPy, behind the tensor's back
    with torch.no_grad():
        theirs[2].weight[0, 0, 0, 0] += 1.0
    calls.clear()
    close(ours(ds.tensor(x)).detach().numpy(), theirs(torch.tensor(x)).detach().numpy(), "after in-place writes")
    assert len(calls) == 2


def test_the_weight_cache_stays_within_its_byte_budget(monkeypatch):
    jit = _jit.kernels()
    if jit is None:
        pytest.skip("numba is not installed (the jit extra)")
    monkeypatch.setattr(_conv_kernels, "WEIGHT_CACHE_BYTES", 120_000)
    monkeypatch.setattr(_conv_kernels, "_weight_cache", type(_conv_kernels._weight_cache)())
    weights = [np.random.default_rng(i).standard_normal((16, 16, 3, 3)).astype(np.float32) for i in range(6)]
    for w in weights:
        np.testing.assert_array_equal(_conv_kernels._transformed_weight(jit, w), jit.winograd_weight(w))
    assert _conv_kernels._cache_bytes() <= 120_000
    assert 0 < len(_conv_kernels._weight_cache) < len(weights)
