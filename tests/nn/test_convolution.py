"""Convolution and pooling (downslope.nn.convolution) against PyTorch and finite differences."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import downslope as ds
from downslope import parallel as _parallel
from downslope.nn import _conv_kernels, _jit
from downslope.nn import convolution as C

torch = pytest.importorskip("torch")
TF = torch.nn.functional

SETTINGS = settings(max_examples=25, deadline=None)
# Every test runs with float32 products on NumPy and again on oneDNN's GEMM (when installed).
pytestmark = pytest.mark.usefixtures("gemm_path")


@pytest.fixture(scope="module", autouse=True, params=["numpy", "jit"])
def kernels(request):
    """Every test runs on the NumPy kernels and again on the compiled ones at every size (when numba is
    installed): the "jit" run opens the layers' size gates, below which calls take NumPy."""
    if request.param == "numpy":
        with _jit.disabled():
            yield request.param
        return
    if _jit.kernels() is None:
        pytest.skip("numba is not installed (the jit extra)")
    from downslope.nn import _conv_kernels, normalization, pooling

    with pytest.MonkeyPatch.context() as patch:
        for module, gate in (
            (_conv_kernels, "JIT_CONV_MIN_MACS"),
            (_conv_kernels, "JIT_BIAS_GRADIENT_MIN_SIZE"),
            (normalization, "JIT_BATCH_NORM_MIN_SIZE"),
            (normalization, "JIT_LAYER_NORM_MIN_SIZE"),
            (pooling, "JIT_POOL_MIN_SIZE"),
        ):
            patch.setattr(module, gate, 0)
        yield request.param


def _randn(rng: np.random.Generator, *shape: int, dtype=np.float32) -> np.ndarray:
    return rng.standard_normal(shape).astype(dtype)


# ---------------------------------------------------------------------- conv2d
@st.composite
def conv2d_cases(draw):
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    c_in = groups * draw(st.integers(1, 3))
    c_out = groups * draw(st.integers(1, 3))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    dh, dw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    padding = draw(
        st.one_of(
            st.integers(0, 2), st.tuples(st.integers(0, 2), st.integers(0, 3)), st.sampled_from(["same", "valid"])
        )
    )
    stride = (1, 1) if padding == "same" else (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    min_h, min_w = dh * (kh - 1) + 1, dw * (kw - 1) + 1
    h = draw(st.integers(min_h, min_h + 6))
    w = draw(st.integers(min_w, min_w + 6))
    n = draw(st.integers(1, 3))
    bias = draw(st.booleans())
    seed = draw(st.integers(0, 2**16))
    return n, c_in, c_out, (h, w), (kh, kw), stride, padding, (dh, dw), groups, bias, seed


@SETTINGS
@given(conv2d_cases())
def test_conv2d_matches_torch(check_op, case):
    n, c_in, c_out, (h, w), (kh, kw), stride, padding, dilation, groups, bias, seed = case
    rng = np.random.default_rng(seed)
    arrays = [_randn(rng, n, c_in, h, w), _randn(rng, c_out, c_in // groups, kh, kw)]
    if bias:
        arrays.append(_randn(rng, c_out))
    check_op(
        lambda *a: C.conv2d(*a[:2], a[2] if bias else None, stride, padding, dilation, groups),
        lambda *a: TF.conv2d(*a[:2], a[2] if bias else None, stride, padding, dilation, groups),
        arrays,
        seed=seed,
    )


@pytest.mark.parametrize(
    "shape, kernel, kwargs",
    [
        ((4, 3, 28, 28), (8, 3, 3, 3), dict(padding=1)),
        ((2, 8, 13, 11), (16, 8, 5, 5), dict(stride=2, padding=2)),
        ((2, 6, 9, 10), (6, 1, 3, 3), dict(padding="same", groups=6)),  # depthwise
        ((3, 4, 7, 12), (6, 2, 2, 3), dict(stride=(2, 1), padding=(0, 2), dilation=(2, 3), groups=2)),
        ((1, 2, 6, 6), (3, 2, 4, 4), dict(padding="same", dilation=1)),  # even kernel: asymmetric 'same'
    ],
)
def test_conv2d_larger_cases_match_torch(check_op, shape, kernel, kwargs):
    rng = np.random.default_rng(1)
    arrays = [_randn(rng, *shape), _randn(rng, *kernel), _randn(rng, kernel[0])]
    check_op(lambda x, w, b: C.conv2d(x, w, b, **kwargs), lambda x, w, b: TF.conv2d(x, w, b, **kwargs), arrays)


def test_conv2d_with_frozen_weights_gives_only_the_input_gradient(check_op):
    rng = np.random.default_rng(15)
    arrays = [_randn(rng, 2, 4, 7, 6), _randn(rng, 6, 2, 3, 3), _randn(rng, 6)]
    check_op(
        lambda x, w, b: C.conv2d(x, w, b, stride=2, padding=1, groups=2),
        lambda x, w, b: TF.conv2d(x, w, b, stride=2, padding=1, groups=2),
        arrays,
        grad_inputs=[0],
    )


def test_conv_and_pool_read_non_contiguous_inputs(check_op):
    # im2col reads through the input's own strides, so transposed views need no copy and no care.
    rng = np.random.default_rng(16)
    arrays = [_randn(rng, 7, 2, 3, 6), _randn(rng, 4, 3, 3, 2)]  # input stored as (W, N, C, H)
    check_op(
        lambda x, w: C.max_pool2d(C.conv2d(x.permute(1, 2, 3, 0), w, padding=1), 2),
        lambda x, w: TF.max_pool2d(TF.conv2d(x.permute(1, 2, 3, 0), w, padding=1), 2),
        arrays,
    )


def test_conv2d_output_layout_is_a_view_of_one_gemm_result():
    # The output is the GEMM result (C_out, N*OH*OW) seen as (N, C_out, OH, OW): no copy after the GEMM.
    y = C.conv2d(ds.randn(2, 3, 5, 5), ds.randn(4, 3, 3, 3), ds.randn(4), padding=1)
    assert y.array.base is not None and y.dtype == np.float32  # y.array: the data itself, on any device


def test_conv2d_gradcheck_float64():
    rng = np.random.default_rng(2)
    x, w, b = _randn(rng, 2, 4, 5, 6, dtype=np.float64), _randn(rng, 4, 2, 3, 2, dtype=np.float64), _randn(rng, 4)
    ds.gradcheck(lambda x, w, b: C.conv2d(x, w, b, stride=(2, 1), padding=(1, 2), dilation=(1, 2), groups=2), [x, w, b])


def test_conv2d_unbatched_input_matches_torch(check_op):
    rng = np.random.default_rng(3)
    check_op(lambda x, w: C.conv2d(x, w, padding=1), lambda x, w: TF.conv2d(x, w, padding=1), [
        _randn(rng, 3, 6, 5),
        _randn(rng, 2, 3, 3, 3),
    ])  # fmt: skip


def test_conv2d_float64_stays_float64(check_op):
    rng = np.random.default_rng(4)
    arrays = [_randn(rng, 2, 3, 6, 6, dtype=np.float64), _randn(rng, 4, 3, 3, 3, dtype=np.float64)]
    out = check_op(lambda x, w: C.conv2d(x, w, stride=2), lambda x, w: TF.conv2d(x, w, stride=2), arrays)
    assert out.dtype == np.float64


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: C.conv2d(ds.randn(1, 3, 5, 5), ds.randn(4, 2, 3, 3)), "input has 3 channels"),
        (lambda: C.conv2d(ds.randn(3, 5), ds.randn(4, 3, 3, 3)), "expected input of shape"),
        (lambda: C.conv2d(ds.randn(1, 3, 2, 2), ds.randn(4, 3, 3, 3)), "smaller than the dilated kernel"),
        (lambda: C.conv2d(ds.randn(1, 3, 5, 5), ds.randn(4, 3, 3, 3), stride=2, padding="same"), "stride 1"),
        (lambda: C.conv2d(ds.randn(1, 3, 5, 5), ds.randn(4, 3, 3, 3), padding="full"), "'same' or 'valid'"),
        (lambda: C.conv2d(ds.randn(1, 3, 5, 5), ds.randn(4, 3, 3, 3), ds.randn(3)), "bias of shape"),
        (lambda: C.conv2d(ds.randn(1, 3, 5, 5), ds.randn(4, 3, 3, 3), stride=0), "stride must be >= 1"),
        (lambda: C.conv2d(ds.randn(1, 4, 5, 5), ds.randn(3, 2, 3, 3), groups=2), "divisible by groups"),
        (lambda: C.conv2d(ds.randn(1, 3, 5, 5).double(), ds.randn(4, 3, 3, 3)), "does not match weight dtype"),
        (lambda: C.conv1d(ds.randn(1, 3, 5), ds.randn(4, 3, 3, 3)), "(C_out, C_in / groups, k)"),
    ],
)
def test_conv_bad_arguments_raise_clear_errors(call, message):
    with pytest.raises((ValueError, TypeError), match=_escape(message)):
        call()


def _escape(text: str) -> str:
    import re

    return re.escape(text)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_conv2d_double_backward_matches_torch_on_every_path(dtype):
    # whichever kernel ran forward (im2col, oneDNN, Winograd for float32 3x3), create_graph=True
    # records the gradient; torch runs in float64 as the reference
    rng = np.random.default_rng(0)
    xa, wa = rng.standard_normal((2, 4, 8, 8)), rng.standard_normal((8, 4, 3, 3)) * 0.3
    grads = []
    for lib, conv in ((ds, C.conv2d), (torch, torch.nn.functional.conv2d)):
        kind = getattr(lib, dtype) if lib is ds else torch.float64
        x = lib.tensor(xa, dtype=kind, requires_grad=True)
        w = lib.tensor(wa, dtype=kind, requires_grad=True)
        (g,) = lib.autograd.grad(conv(x, w, padding=1).tanh().sum(), [x], create_graph=True)
        (g**2).sum().backward()
        grads.append((x.grad.numpy(), w.grad.numpy()))
    tolerance = dict(rtol=1e-9, atol=1e-12) if dtype == "float64" else dict(rtol=1e-4, atol=1e-4)
    for ours, theirs in zip(*grads):
        np.testing.assert_allclose(ours, theirs, **tolerance)


@pytest.mark.parametrize(
    ("size", "kernel", "stride", "padding", "dilation", "groups"),
    [
        (9, 4, 2, 1, 1, 1),  # WGAN-GP's critic layer; 9 leaves a row over: output_padding 1
        (8, 3, 2, 1, 1, 2),  # output_padding 1, groups
        (10, 3, 3, 0, 2, 1),  # stride below the dilated kernel
        (8, 4, 1, "same", 1, 1),  # asymmetric padding: the unfold/fold composite
    ],
)
def test_gradient_penalty_through_conv2d_matches_torch(size, kernel, stride, padding, dilation, groups):
    # create_graph=True records the input gradient as a transposed convolution (or, for asymmetric
    # padding, a product folded back); only the input's gradient is asked of grad(), as torch does
    rng = np.random.default_rng(1)
    xa = rng.standard_normal((2, 2 * groups, size, size))
    wa = rng.standard_normal((3 * groups, 2, kernel, kernel)) * 0.3
    ba = rng.standard_normal(3 * groups)
    grads = []
    for lib, conv in ((ds, C.conv2d), (torch, torch.nn.functional.conv2d)):
        x, w, b = (lib.tensor(a, dtype=lib.float64, requires_grad=True) for a in (xa, wa, ba))
        y = conv(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)
        (g,) = lib.autograd.grad(_leaky_times_input(lib, y).sum(), [x], create_graph=True)
        assert w.grad is None and b.grad is None
        ((g.reshape(2, -1).norm(2, dim=1) - 1) ** 2).sum().backward()
        grads.append((g.detach().numpy(), x.grad.numpy(), w.grad.numpy(), b.grad.numpy()))
    for ours, theirs in zip(*grads):
        np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-12)


def _leaky_times_input(lib, y):
    return lib.nn.functional.leaky_relu(y, 0.2) * y


# ---------------------------------------------------------------------- conv1d
@SETTINGS
@given(
    groups=st.sampled_from([1, 2]),
    k=st.integers(1, 5),
    stride=st.integers(1, 3),
    dilation=st.integers(1, 3),
    padding=st.one_of(st.integers(0, 3), st.sampled_from(["same", "valid"])),
    extra=st.integers(0, 7),
    seed=st.integers(0, 2**16),
)
def test_conv1d_matches_torch(check_op, groups, k, stride, dilation, padding, extra, seed):
    if padding == "same":
        stride = 1
    rng = np.random.default_rng(seed)
    length = dilation * (k - 1) + 1 + extra
    arrays = [_randn(rng, 2, 2 * groups, length), _randn(rng, 3 * groups, 2, k), _randn(rng, 3 * groups)]
    check_op(
        lambda x, w, b: C.conv1d(x, w, b, stride, padding, dilation, groups),
        lambda x, w, b: TF.conv1d(x, w, b, stride, padding, dilation, groups),
        arrays,
        seed=seed,
    )


def test_conv1d_gradcheck_float64():
    rng = np.random.default_rng(5)
    x, w = _randn(rng, 2, 3, 9, dtype=np.float64), _randn(rng, 2, 3, 3, dtype=np.float64)
    ds.gradcheck(lambda x, w: C.conv1d(x, w, stride=2, padding=2, dilation=2), [x, w])


# ---------------------------------------------------------------------- conv modules
def _copy_params(ours, theirs) -> None:
    for name, p in theirs.named_parameters():
        dict(ours.named_parameters())[name].array[...] = p.detach().numpy()


def _compare_module(ours, theirs, x: np.ndarray, assert_close) -> None:
    _copy_params(ours, theirs)
    xd = ds.tensor(x, requires_grad=True)
    xt = torch.tensor(x, requires_grad=True)
    yd, yt = ours(xd), theirs(xt)
    assert_close(yd.detach().numpy(), yt.detach().numpy(), np.float32, "forward")
    proj = np.random.default_rng(0).standard_normal(yd.shape).astype(np.float32)
    (yd * ds.tensor(proj)).sum().backward()
    (yt * torch.tensor(proj)).sum().backward()
    assert_close(xd.grad.numpy(), xt.grad.numpy(), np.float32, "input gradient")
    ours_params = dict(ours.named_parameters())
    for name, p in theirs.named_parameters():
        assert_close(ours_params[name].grad.numpy(), p.grad.numpy(), np.float32, f"gradient of {name}")


@pytest.mark.parametrize("padding_mode", ["zeros", "reflect", "replicate", "circular"])
@pytest.mark.parametrize("padding", [1, (2, 1), "same"])
def test_conv2d_module_matches_torch(assert_close, padding_mode, padding):
    kwargs = dict(stride=1 if padding == "same" else 2, padding=padding, padding_mode=padding_mode, groups=2)
    ours, theirs = C.Conv2d(4, 6, (3, 2), **kwargs), torch.nn.Conv2d(4, 6, (3, 2), **kwargs)
    _compare_module(
        ours, theirs, np.random.default_rng(6).standard_normal((2, 4, 9, 8)).astype(np.float32), assert_close
    )


@pytest.mark.parametrize("padding_mode", ["zeros", "reflect", "circular"])
def test_conv1d_module_matches_torch(assert_close, padding_mode):
    kwargs = dict(padding="same", dilation=2, padding_mode=padding_mode, bias=False)
    ours, theirs = C.Conv1d(3, 5, 4, **kwargs), torch.nn.Conv1d(3, 5, 4, **kwargs)
    assert ours.bias is None
    _compare_module(ours, theirs, np.random.default_rng(7).standard_normal((2, 3, 12)).astype(np.float32), assert_close)


def test_conv_module_parameter_shapes_and_default_init_bounds():
    ds.manual_seed(0)
    conv = C.Conv2d(16, 64, kernel_size=(3, 5), groups=4)
    ref = torch.nn.Conv2d(16, 64, kernel_size=(3, 5), groups=4)
    assert conv.weight.shape == tuple(ref.weight.shape) == (64, 4, 3, 5)
    assert conv.bias is not None and conv.bias.shape == (64,)
    assert [n for n, _ in conv.named_parameters()] == [n for n, _ in ref.named_parameters()]
    bound = 1 / math.sqrt(4 * 3 * 5)  # kaiming_uniform(a=sqrt(5)) over fan_in = C_in/groups * kh * kw
    w, b = conv.weight.detach().numpy(), conv.bias.detach().numpy()
    assert w.dtype == np.float32 and np.abs(w).max() <= bound and np.abs(w).max() > 0.95 * bound
    assert np.abs(b).max() <= bound
    # U(-a, a) has standard deviation a / sqrt(3).
    assert abs(w.std() - bound / math.sqrt(3)) < 0.05 * bound
    ds.manual_seed(0)
    again = C.Conv2d(16, 64, kernel_size=(3, 5), groups=4)
    assert np.array_equal(again.weight.detach().numpy(), w), "initialization must follow ds.manual_seed"


def test_conv_module_repr_and_input_check():
    conv = C.Conv2d(3, 8, 3, stride=2, padding=1, bias=False)
    assert repr(conv).startswith("Conv2d(3, 8, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), bias=False)")
    with pytest.raises(ValueError, match=_escape("expected input of shape (N, 3, H, W)")):
        conv(ds.randn(1, 4, 8, 8))
    with pytest.raises(ValueError, match="divisible by groups"):
        C.Conv2d(3, 8, 3, groups=2)
    with pytest.raises(ValueError, match="stride 1"):
        C.Conv1d(3, 8, 3, stride=2, padding="same")


# ---------------------------------------------------------------------- pooling
@st.composite
def pool_cases(draw):
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    stride = draw(st.one_of(st.none(), st.tuples(st.integers(1, 3), st.integers(1, 3))))
    padding = (draw(st.integers(0, kh // 2)), draw(st.integers(0, kw // 2)))
    ceil_mode = draw(st.booleans())
    h, w = draw(st.integers(kh + 2 * padding[0], 12)), draw(st.integers(kw + 2 * padding[1], 12))
    return (kh, kw), stride, padding, ceil_mode, (h, w), draw(st.integers(0, 2**16))


@SETTINGS
@given(pool_cases(), st.integers(1, 2), st.booleans())
def test_max_pool2d_matches_torch(check_op, case, dilation, with_indices):
    kernel, stride, padding, ceil_mode, (h, w), seed = case
    h, w = h + (dilation - 1) * (kernel[0] - 1), w + (dilation - 1) * (kernel[1] - 1)
    x = _randn(np.random.default_rng(seed), 2, 3, h, w)
    kwargs = dict(stride=stride, padding=padding, dilation=dilation, ceil_mode=ceil_mode)
    out = check_op(lambda x: C.max_pool2d(x, kernel, **kwargs), lambda x: TF.max_pool2d(x, kernel, **kwargs), [x])
    if with_indices:
        _, idx = C.max_pool2d(ds.tensor(x), kernel, return_indices=True, **kwargs)
        _, ref = TF.max_pool2d(torch.tensor(x), kernel, return_indices=True, **kwargs)
        assert idx.dtype == np.int64 and idx.shape == out.shape
        np.testing.assert_array_equal(idx.detach().numpy(), ref.detach().numpy())


def test_max_pool2d_ties_send_the_gradient_to_the_first_maximum_like_torch(check_op):
    x = np.round(np.random.default_rng(8).standard_normal((2, 2, 6, 6))).astype(np.float32)  # many ties
    check_op(lambda x: C.max_pool2d(x, 3, 1, 1), lambda x: TF.max_pool2d(x, 3, 1, 1), [x])


def test_max_pool2d_propagates_nan_like_torch():
    x = np.arange(32, dtype=np.float32).reshape(1, 2, 4, 4)
    x[0, 0, 0, 1] = x[0, 0, 1, 1] = x[0, 1, 2, 2] = np.nan  # two NaNs share a window: the last one wins
    xd, xt = ds.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    ours, idx = C.max_pool2d(xd, 2, return_indices=True)
    ref, ref_idx = TF.max_pool2d(xt, 2, return_indices=True)
    np.testing.assert_array_equal(ours.detach().numpy(), ref.detach().numpy())  # NaNs compare equal here
    np.testing.assert_array_equal(idx.detach().numpy(), ref_idx.detach().numpy())
    ours.sum().backward()
    ref.sum().backward()
    np.testing.assert_array_equal(xd.grad.numpy(), xt.grad.numpy())


@SETTINGS
@given(pool_cases(), st.booleans())
def test_avg_pool2d_matches_torch(check_op, case, count_include_pad):
    kernel, stride, padding, ceil_mode, (h, w), seed = case
    x = _randn(np.random.default_rng(seed), 2, 3, h, w)
    kwargs = dict(stride=stride, padding=padding, ceil_mode=ceil_mode, count_include_pad=count_include_pad)
    check_op(lambda x: C.avg_pool2d(x, kernel, **kwargs), lambda x: TF.avg_pool2d(x, kernel, **kwargs), [x])


def test_avg_pool2d_divisor_override_matches_torch(check_op):
    x = _randn(np.random.default_rng(9), 1, 2, 7, 7)
    check_op(
        lambda x: C.avg_pool2d(x, 3, 2, 1, divisor_override=5),
        lambda x: TF.avg_pool2d(x, 3, 2, 1, divisor_override=5),
        [x],
    )


@pytest.mark.parametrize("kwargs", [dict(), dict(stride=1, padding=1), dict(stride=2, padding=1, ceil_mode=True)])
def test_pool1d_matches_torch(check_op, kwargs):
    x = _randn(np.random.default_rng(10), 3, 4, 11)
    check_op(lambda x: C.max_pool1d(x, 3, **kwargs), lambda x: TF.max_pool1d(x, 3, **kwargs), [x])
    check_op(lambda x: C.max_pool1d(x, 2, dilation=2), lambda x: TF.max_pool1d(x, 2, dilation=2), [x])
    check_op(lambda x: C.avg_pool1d(x, 3, **kwargs), lambda x: TF.avg_pool1d(x, 3, **kwargs), [x])
    check_op(
        lambda x: C.avg_pool1d(x[0], 3, count_include_pad=False, **kwargs),
        lambda x: TF.avg_pool1d(x[0], 3, count_include_pad=False, **kwargs),
        [x],
    )


@pytest.mark.parametrize(
    "size, out", [((8, 8), (4, 4)), ((7, 9), (3, 4)), ((5, 5), 1), ((6, 7), (6, None)), ((4, 5), (7, 8))]
)
def test_adaptive_avg_pool2d_matches_torch(check_op, size, out):
    x = _randn(np.random.default_rng(11), 2, 3, *size)
    check_op(lambda x: C.adaptive_avg_pool2d(x, out), lambda x: TF.adaptive_avg_pool2d(x, out), [x])


@pytest.mark.parametrize("length, out", [(10, 5), (10, 3), (7, 1), (3, 5)])
def test_adaptive_avg_pool1d_matches_torch(check_op, length, out):
    x = _randn(np.random.default_rng(12), 2, 3, length)
    check_op(lambda x: C.adaptive_avg_pool1d(x, out), lambda x: TF.adaptive_avg_pool1d(x, out), [x])


def test_pooling_gradcheck_float64():
    rng = np.random.default_rng(13)
    x = rng.standard_normal((1, 2, 7, 6))  # continuous values: no ties, so max pooling is differentiable
    ds.gradcheck(lambda x: C.max_pool2d(x, 3, stride=2, padding=1, ceil_mode=True), [x])
    ds.gradcheck(lambda x: C.avg_pool2d(x, (3, 2), stride=(2, 1), padding=1, count_include_pad=False), [x])
    ds.gradcheck(lambda x: C.adaptive_avg_pool2d(x, (4, 5)), [x])


def test_pool_modules_match_torch(check_op):
    x = _randn(np.random.default_rng(14), 2, 3, 9, 8)
    pairs = [
        (C.MaxPool2d(3, 2, 1), torch.nn.MaxPool2d(3, 2, 1)),
        (C.AvgPool2d(2, count_include_pad=False), torch.nn.AvgPool2d(2, count_include_pad=False)),
        (C.AdaptiveAvgPool2d((3, 2)), torch.nn.AdaptiveAvgPool2d((3, 2))),
    ]
    for ours, theirs in pairs:
        check_op(ours, theirs, [x])
    x1 = x[:, 0]
    for ours, theirs in [
        (C.MaxPool1d(2), torch.nn.MaxPool1d(2)),
        (C.AvgPool1d(3, 1), torch.nn.AvgPool1d(3, 1)),
        (C.AdaptiveAvgPool1d(4), torch.nn.AdaptiveAvgPool1d(4)),
    ]:
        check_op(ours, theirs, [x1])
    out, idx = C.MaxPool2d(2, return_indices=True)(ds.tensor(x))
    np.testing.assert_array_equal(
        idx.detach().numpy(), torch.nn.MaxPool2d(2, return_indices=True)(torch.tensor(x))[1].detach().numpy()
    )


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: C.max_pool2d(ds.randn(1, 1, 5, 5), 2, padding=2), "at most half of the kernel"),
        (lambda: C.max_pool2d(ds.randn(1, 1, 2, 2), 3), "smaller than the (dilated) kernel"),
        (lambda: C.avg_pool2d(ds.randn(5, 5), 2), "expected input of shape"),
        (
            lambda: C.max_pool2d(ds.tensor(np.ones((1, 1, 4, 4), dtype=bool)), 2),
            "floating-point",
        ),  # ints pool, as torch
        (lambda: C.adaptive_avg_pool2d(ds.randn(1, 1, 4, 4), (-1, 2)), "greater than or equal to 0"),
        (lambda: C.max_pool1d(ds.randn(1, 1, 4), (2, 2)), "kernel_size must be an int or a tuple of 1"),
    ],
)
def test_pool_bad_arguments_raise_clear_errors(call, message):
    with pytest.raises((ValueError, TypeError), match=_escape(message)):
        call()


@pytest.mark.parametrize("kernel", [2, 3, (2, 3)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("channel_major", [False, True])
def test_max_pool2d_tiling_windows_match_torch_with_ties(check_op, kernel, dtype, channel_major):
    """Windows that tile the input exactly (stride == kernel) take a two-stage path; rounded
    values make ties common, whose gradient must go to the first maximum in scan order."""
    x = np.round(np.random.default_rng(3).standard_normal((3, 4, 6, 12)) * 1.5).astype(dtype)
    # A 1x1 identity convolution first hands pooling the layout a convolution returns: (C, N, H, W) memory.
    eye = np.eye(4, dtype=dtype).reshape(4, 4, 1, 1)

    def ours(t):
        return C.max_pool2d(C.conv2d(t, ds.tensor(eye, dtype=dtype)) if channel_major else t, kernel)

    def theirs(t):
        return TF.max_pool2d(TF.conv2d(t, torch.tensor(eye)) if channel_major else t, kernel)

    check_op(ours, theirs, [x])


def test_max_pool2d_tiling_windows_with_nan_match_torch():
    x = np.arange(32, dtype=np.float32).reshape(1, 2, 4, 4)
    x[0, 0, 0, 1] = x[0, 0, 1, 1] = x[0, 1, 2, 2] = np.nan
    xd, xt = ds.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    ours, ref = C.max_pool2d(xd, 2), TF.max_pool2d(xt, 2)
    np.testing.assert_array_equal(ours.detach().numpy(), ref.detach().numpy())
    ours.sum().backward()
    ref.sum().backward()
    np.testing.assert_array_equal(xd.grad.numpy(), xt.grad.numpy())


# ---------------------------------------------------------------------- layers chained (channel-major)
def test_cnn_block_chain_matches_torch(assert_close):
    """Conv -> BatchNorm -> ReLU -> MaxPool -> Conv -> AvgPool -> Flatten -> Linear: a convolution
    returns channel-major (C, N, H, W) memory and the layers after it keep that layout (pooling,
    batch norm, the next convolution), while the gradient flows back through the same layouts."""
    rng = np.random.default_rng(7)
    x = _randn(rng, 5, 3, 10, 10)
    torch.manual_seed(0)
    theirs = torch.nn.Sequential(
        torch.nn.Conv2d(3, 6, 3, padding=1), torch.nn.BatchNorm2d(6), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(6, 4, 3, padding=1, bias=False), torch.nn.AvgPool2d(2, ceil_mode=True),
        torch.nn.Flatten(), torch.nn.Linear(36, 3),
    )  # fmt: skip
    ours = ds.nn.Sequential(
        ds.nn.Conv2d(3, 6, 3, padding=1), ds.nn.BatchNorm2d(6), ds.nn.ReLU(), ds.nn.MaxPool2d(2),
        ds.nn.Conv2d(6, 4, 3, padding=1, bias=False), ds.nn.AvgPool2d(2, ceil_mode=True),
        ds.nn.Flatten(), ds.nn.Linear(36, 3),
    )  # fmt: skip
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    xd, xt = ds.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    for step in range(2):  # the second step runs on workspace buffers the first one gave back
        out_d, out_t = ours(xd), theirs(xt)
        assert_close(out_d.detach().numpy(), out_t.detach().numpy(), np.float32, f"output, step {step}")
        proj = rng.standard_normal(out_d.shape).astype(np.float32)
        (out_d * ds.tensor(proj)).sum().backward()
        (out_t * torch.tensor(proj)).sum().backward()
        assert_close(xd.grad.numpy(), xt.grad.numpy(), np.float32, f"input gradient, step {step}")
        mine = dict(ours.named_parameters())
        for name, p in theirs.named_parameters():
            assert_close(mine[name].grad.numpy(), p.grad.numpy(), np.float32, f"{name}.grad, step {step}")
        xd.grad = None
        xt.grad = None
        ours.zero_grad()
        theirs.zero_grad()


def test_max_pool_indices_of_a_channel_major_input_match_torch():
    rng = np.random.default_rng(8)
    x, w = _randn(rng, 3, 2, 6, 6), _randn(rng, 4, 2, 3, 3)
    y = C.conv2d(ds.tensor(x), ds.tensor(w), padding=1)
    assert not y.array.flags.c_contiguous, "a convolution's output is channel-major"
    out, idx = C.max_pool2d(y, 2, return_indices=True)
    ref, ref_idx = TF.max_pool2d(TF.conv2d(torch.tensor(x), torch.tensor(w), padding=1), 2, return_indices=True)
    np.testing.assert_allclose(out.detach().numpy(), ref.detach().numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(idx.detach().numpy(), ref_idx.detach().numpy())


def test_conv2d_retained_graph_gives_the_same_gradients_twice():
    """The im2col matrix kept for the weight gradient is leased from the workspace: a graph kept
    with retain_graph=True must still read it intact on the second backward pass."""
    rng = np.random.default_rng(9)
    x = ds.tensor(_randn(rng, 2, 3, 7, 7))
    w = ds.tensor(_randn(rng, 4, 3, 3, 3), requires_grad=True)
    loss = (C.conv2d(x, w, padding=1) ** 2).sum()
    loss.backward(retain_graph=True)
    first = w.grad.numpy().copy()
    # Other convolutions of the same shapes borrow and give back workspace arrays in between.
    for _ in range(2):
        (C.conv2d(ds.tensor(_randn(rng, 2, 3, 7, 7)), w, padding=1) ** 2).sum().backward()
    w.grad = None
    loss.backward()
    np.testing.assert_array_equal(w.grad.numpy(), first)


@pytest.mark.parametrize("chunk_bytes", [1, 2000])
@pytest.mark.parametrize("groups, stride, padding", [(1, 1, 1), (2, 2, (0, 2))])
def test_conv2d_over_batch_chunks_matches_torch(check_op, monkeypatch, chunk_bytes, groups, stride, padding):
    """Large batches run in chunks of the batch (bounded im2col memory); a tiny chunk budget makes
    these small cases run one image (or a few) at a time, uneven last chunk included."""
    monkeypatch.setattr(_conv_kernels, "CHUNK_BYTES", chunk_bytes)
    rng = np.random.default_rng(10)
    arrays = [_randn(rng, 7, 4, 6, 5), _randn(rng, 6, 4 // groups, 3, 2), _randn(rng, 6)]
    kwargs = dict(stride=stride, padding=padding, groups=groups)
    check_op(lambda x, w, b: C.conv2d(x, w, b, **kwargs), lambda x, w, b: TF.conv2d(x, w, b, **kwargs), arrays)


# ---------------------------------------------------------------------- grouped convolutions on the direct kernels
def _spy_grouped(monkeypatch) -> list[str]:
    """The names of the compiled grouped kernels called from now on (none without numba)."""
    calls: list[str] = []
    jit = _jit.kernels()
    if jit is not None:
        for name in ("grouped_forward", "grouped_weight_gradient"):
            real = getattr(jit, name)
            monkeypatch.setattr(jit, name, lambda *a, real=real, name=name: calls.append(name) or real(*a))
    return calls


@pytest.mark.parametrize(
    "n, c_in, c_out, groups, size, kernel, padding, dilation, bias",
    [
        (3, 8, 12, 4, (7, 9), 3, 1, 1, True),
        (2, 6, 6, 3, (5, 5), 3, (1, 0), (1, 2), False),  # dilation, padding on one axis only
        (1, 10, 15, 5, (9, 4), (2, 3), (1, 0), 1, True),  # one image, an even kernel height, 3 outputs a group
        (2, 8, 8, 2, (4, 4), 1, 0, 1, True),  # 1x1
        (2, 64, 64, 2, (3, 5), 3, "same", 1, True),  # 32 channels a group: the widest groups taken
        (5, 12, 6, 3, (6, 5), 3, 1, 1, True),  # 5 images, 2 a chunk (see below): a partial last chunk
    ],
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_grouped_conv2d_matches_torch(
    check_op, kernels, monkeypatch, n, c_in, c_out, groups, size, kernel, padding, dilation, bias, dtype
):
    """Stride-1 grouped convolutions with at most GROUPED_MAX_CHANNELS channels a group (not depthwise):
    with numba installed, the forward pass and the input gradient run the compiled direct kernel and
    the weight gradient its own; output and every gradient against torch."""
    rng = np.random.default_rng(c_in * c_out + n)
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    arrays = [_randn(rng, n, c_in, *size, dtype=dtype), _randn(rng, c_out, c_in // groups, kh, kw, dtype=dtype)]
    if bias:
        arrays.append(_randn(rng, c_out, dtype=dtype))
    if kernels == "jit":  # 2 images a chunk of the compiled kernels' padded (stride-1) planes
        dh, dw = (dilation, dilation) if isinstance(dilation, int) else dilation
        zeros = torch.zeros(1, c_in, *size, dtype=torch.float64), torch.zeros(c_out, c_in // groups, kh, kw).double()
        oh, ow = TF.conv2d(*zeros, padding=padding, dilation=dilation, groups=groups).shape[2:]
        monkeypatch.setattr(_jit.kernels(), "GROUPED_CHUNK_VALUES", 2 * (oh + (kh - 1) * dh) * (ow + (kw - 1) * dw))
    calls = _spy_grouped(monkeypatch)
    out = check_op(
        lambda *a: C.conv2d(*a[:2], a[2] if bias else None, padding=padding, dilation=dilation, groups=groups),
        lambda *a: TF.conv2d(*a[:2], a[2] if bias else None, padding=padding, dilation=dilation, groups=groups),
        arrays,
    )
    compiled = kernels == "jit" and type(out.array) is np.ndarray  # host data: device arrays take im2col
    want = ["grouped_forward", "grouped_forward", "grouped_weight_gradient"] if compiled else []
    assert sorted(calls) == want  # the jit run really takes the direct path (input gradient included)


@pytest.mark.parametrize(
    "c_in, c_out, groups, kernel, stride, padding",
    [
        (8, 8, 2, 3, 2, 1),  # stride 2
        (8, 8, 2, 3, 1, 3),  # padding wider than the kernel's reach
        (4, 4, 4, 3, 1, 1),  # depthwise: kernels of its own
        (128, 128, 2, 1, 1, 0),  # 64 channels a group: im2col's GEMMs pay
    ],
)
def test_grouped_conv2d_outside_the_direct_kernels_matches_torch(
    check_op, kernels, monkeypatch, c_in, c_out, groups, kernel, stride, padding
):
    """Grouped layers the direct kernels do not take run as before (values against torch)."""
    rng = np.random.default_rng(c_in + stride + padding)
    arrays = [
        _randn(rng, 2, c_in, 6, 5, dtype=np.float64),
        _randn(rng, c_out, c_in // groups, kernel, kernel, dtype=np.float64),
    ]
    calls = _spy_grouped(monkeypatch)
    check_op(
        lambda x, w: C.conv2d(x, w, stride=stride, padding=padding, groups=groups),
        lambda x, w: TF.conv2d(x, w, stride=stride, padding=padding, groups=groups),
        arrays,
    )
    assert calls == []


# ---------------------------------------------------------------------- 3x3 convolutions wide enough for Winograd
@pytest.mark.parametrize(
    "n, c_in, c_out, size, padding, bias",
    [
        (3, 16, 16, (6, 6), 1, True),
        (2, 17, 20, (7, 5), 0, False),
        (2, 16, 18, (5, 9), 2, True),
        (1, 20, 16, (8, 8), "same", True),
        (4, 16, 16, (3, 3), 0, True),
        (2, 16, 16, (1, 4), (1, 0), False),
        (2, 8, 8, (6, 7), 1, True),  # the narrowest layers Winograd runs: measured faster than the others
        (1, 12, 9, (5, 5), 1, False),
        (1, 3, 16, (7, 6), 1, True),  # one image: Winograd from 3 input channels (an RGB input layer)
    ],
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_wide_3x3_conv2d_matches_torch(check_op, kernels, n, c_in, c_out, size, padding, bias, dtype):
    """Stride-1 3x3 convolutions with >= WINOGRAD_MIN_CHANNELS (8) channels each: with numba installed
    they run as Winograd F(2x2, 3x3) (odd sizes leave partial tiles), else as im2col."""
    rng = np.random.default_rng(c_in + c_out)
    arrays = [_randn(rng, n, c_in, *size, dtype=dtype), _randn(rng, c_out, c_in, 3, 3, dtype=dtype)]
    geometry = ((1, 1), (0, 0, 0, 0), (1, 1), 1, (1, 1))
    chosen = _conv_kernels._winograd_jit(arrays[0], arrays[1], geometry)
    assert (chosen is not None) == (kernels == "jit")  # the jit run really takes the Winograd path
    if bias:
        arrays.append(_randn(rng, c_out, dtype=dtype))
    check_op(
        lambda *a: C.conv2d(*a[:2], a[2] if bias else None, padding=padding),
        lambda *a: TF.conv2d(*a[:2], a[2] if bias else None, padding=padding),
        arrays,
    )


@pytest.mark.host_only  # the compiled chunks take host arrays; on a device the products go through gemm.matmul
@pytest.mark.parametrize("grad_inputs", [None, (0,), (1, 2)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_winograd_chunks_run_in_one_compiled_call_with_onednn(
    check_op, kernels, gemm_path, monkeypatch, dtype, grad_inputs
):
    """float32 with oneDNN: each chunk's transforms and 16 products are one compiled call (forward,
    and backward with all gradients, only the input's, or only the weight's and bias'); otherwise the products go through gemm.matmul. Both agree
    with torch, several chunks and a partial last chunk included."""
    if kernels != "jit":
        pytest.skip("Winograd is part of the compiled path")
    monkeypatch.setattr(_conv_kernels, "WINOGRAD_CHUNK_BYTES", 16 * 18 * 9 * 4 * 2)  # 2 images a chunk
    jit = _jit.kernels()
    calls = []
    for name in ("winograd_forward_chunk", "winograd_backward_chunk"):
        real = getattr(jit, name)
        monkeypatch.setattr(jit, name, lambda *a, real=real, name=name: calls.append(name) or real(*a))
    rng = np.random.default_rng(13)
    arrays = [
        _randn(rng, 5, 16, 6, 5, dtype=dtype),
        _randn(rng, 18, 16, 3, 3, dtype=dtype),
        _randn(rng, 18, dtype=dtype),
    ]
    check_op(
        lambda x, w, b: C.conv2d(x, w, b, padding=1),
        lambda x, w, b: TF.conv2d(x, w, b, padding=1),
        arrays,
        grad_inputs=grad_inputs,
    )
    compiled = gemm_path == "onednn" and dtype == np.float32
    assert calls == (["winograd_forward_chunk"] * 3 + ["winograd_backward_chunk"] * 3 if compiled else [])


def test_wide_3x3_conv_chain_over_batch_chunks_matches_torch(assert_close, monkeypatch):
    """Conv(16->32)-ReLU-MaxPool(2)-Conv(32->16) on channel-major activations, the batch split into
    several chunks of transformed tiles, values and every gradient against torch."""
    monkeypatch.setattr(_conv_kernels, "WINOGRAD_CHUNK_BYTES", 16 * 32 * 16 * 4 * 3)  # 3 images a chunk
    rng = np.random.default_rng(11)
    x = _randn(rng, 7, 16, 10, 10)
    torch.manual_seed(1)
    theirs = torch.nn.Sequential(
        torch.nn.Conv2d(16, 32, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2), torch.nn.Conv2d(32, 16, 3)
    )
    ours = ds.nn.Sequential(
        ds.nn.Conv2d(16, 32, 3, padding=1), ds.nn.ReLU(), ds.nn.MaxPool2d(2), ds.nn.Conv2d(32, 16, 3)
    )
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    xd, xt = ds.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    out_d, out_t = ours(xd), theirs(xt)
    assert_close(out_d.detach().numpy(), out_t.detach().numpy(), np.float32, "output")
    proj = rng.standard_normal(out_d.shape).astype(np.float32)
    (out_d * ds.tensor(proj)).sum().backward()
    (out_t * torch.tensor(proj)).sum().backward()
    assert_close(xd.grad.numpy(), xt.grad.numpy(), np.float32, "input gradient")
    mine = dict(ours.named_parameters())
    for name, p in theirs.named_parameters():
        assert_close(mine[name].grad.numpy(), p.grad.numpy(), np.float32, f"{name}.grad")


@pytest.mark.parametrize("groups, stride, c_in", [(1, 1, 16), (2, 2, 16), (1, 1, 3)])
def test_conv2d_over_parts_of_the_batch_on_two_threads_matches_torch(check_op, monkeypatch, groups, stride, c_in):
    """With oneDNN's GEMM on two threads, the batch runs as two parts at once (each with its own
    weight- and bias-gradient sums, added after): Winograd (16 channels, stride 1) or im2col,
    uneven parts and several chunks per part included."""
    from downslope import gemm

    if not gemm.available():
        pytest.skip("oneDNN's GEMM is not installed (the onednn extra) or is switched off")
    monkeypatch.setattr(_parallel, "MIN_WORK", 0)
    monkeypatch.setattr(_conv_kernels, "CHUNK_BYTES", 2000)
    monkeypatch.setattr(_conv_kernels, "WINOGRAD_CHUNK_BYTES", 16 * 16 * 25 * 4 * 2)  # 2 images a chunk
    threads = gemm.get_num_threads()
    gemm.set_num_threads(2)
    try:
        assert _parallel.parts(np.zeros(1, np.float32), 7, 1) == 2
        rng = np.random.default_rng(12)
        arrays = [_randn(rng, 7, c_in, 9, 9), _randn(rng, 16, c_in // groups, 3, 3), _randn(rng, 16)]
        kwargs = dict(stride=stride, padding=1, groups=groups)
        check_op(lambda x, w, b: C.conv2d(x, w, b, **kwargs), lambda x, w, b: TF.conv2d(x, w, b, **kwargs), arrays)
    finally:
        gemm.set_num_threads(threads or 1)


@pytest.mark.parametrize(
    "shape, kernel, stride, pads, dilation",
    [
        ((3, 3, 8, 7), (3, 3), (1, 1), (1, 1, 1, 1), (1, 1)),
        ((2, 2, 9, 10), (2, 3), (2, 1), (0, 1, 2, 0), (2, 2)),
        ((2, 1, 5, 5), (5, 5), (1, 3), (3, 3, 0, 0), (1, 1)),
        ((1, 4, 11, 6), (3, 1), (3, 2), (0, 0, 0, 0), (1, 1)),  # rows and columns the windows never reach
    ],
)
def test_im2col_rows_is_the_transpose_of_the_im2col_columns(kernels, shape, kernel, stride, pads, dilation):
    """The compiled kernel behind the weight gradient lays out each receptive field as a row: the
    transpose of the NumPy kernel's columns, for any stride, dilation and (asymmetric) padding."""
    if kernels != "jit":
        pytest.skip("the rows kernel is part of the compiled path")
    rng = np.random.default_rng(3)
    x = _randn(rng, *shape)
    n, c, h, w = shape
    top, bottom, left, right = pads
    oh = (h + top + bottom - dilation[0] * (kernel[0] - 1) - 1) // stride[0] + 1
    ow = (w + left + right - dilation[1] * (kernel[1] - 1) - 1) // stride[1] + 1
    cols = np.full((c * kernel[0] * kernel[1], n * oh * ow), np.nan, np.float32)
    _conv_kernels._im2col(x, kernel, (stride, pads, dilation, 1, (oh, ow)), cols)
    rows = np.full(cols.T.shape, np.nan, np.float32)
    _jit.kernels().im2col_rows(x, (*stride, *dilation, top, left, oh, ow), kernel, rows)
    np.testing.assert_array_equal(rows, cols.T)


def test_the_float64_row_sums_of_the_compiled_path_match_numpy(kernels):
    if kernels != "jit":
        pytest.skip("the row sums kernel is part of the compiled path")
    a = _randn(np.random.default_rng(4), 5, 1001).reshape(5, 1001)[:, 3:]  # rows apart by more than their length
    out = np.ones(5)
    _jit.kernels().add_row_sums(a, out)
    np.testing.assert_allclose(out, 1 + a.sum(axis=1, dtype=np.float64), rtol=1e-12)


# ---------------------------------------------------------------------- ReLU then 2x2 max pooling, fused in Sequential
def _relu_pool_input(dtype, channel_major: bool) -> np.ndarray:
    """Rounded values (ties, zeros and all-negative windows are common) and a few NaN, laid out
    (C, N, H, W) in memory when ``channel_major`` (as a convolution returns)."""
    x = np.round(np.random.default_rng(5).standard_normal((3, 4, 6, 8)) * 1.5).astype(dtype)
    x[0, 0, 0, 1] = x[1, 2, 3, 3] = x[2, 3, 4, 5] = np.nan
    x[2, 1, 2:4, 2:4] = -0.0
    return np.ascontiguousarray(x.transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3) if channel_major else x


@pytest.mark.host_only  # the fused pass takes host arrays; on a device the two layers run (their parity tests)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("channel_major", [False, True])
def test_relu_then_max_pool_in_sequential_matches_torch(kernels, dtype, channel_major):
    """Sequential runs ReLU -> MaxPool2d(2) as one pass with the compiled kernels: the same values
    and input gradient as the two layers run one after the other (the first maximum of max(x, 0),
    or the last NaN; no gradient where it is 0) and as PyTorch's, NaN included, on the host kernels
    and the compiled ones."""
    x = _relu_pool_input(dtype, channel_major)
    xd, xs = ds.tensor(x, dtype=dtype, requires_grad=True), ds.tensor(x, dtype=dtype, requires_grad=True)
    xt = torch.tensor(x, requires_grad=True)
    ours = ds.nn.Sequential(ds.nn.ReLU(), ds.nn.MaxPool2d(2))(xd)
    separate = ds.nn.MaxPool2d(2)(ds.nn.ReLU()(xs))
    ref = torch.nn.Sequential(torch.nn.ReLU(), torch.nn.MaxPool2d(2))(xt)
    assert ours.dtype == dtype
    assert (ours._parents[0] is xd) == (kernels == "jit")  # fused: no ReLU node between
    np.testing.assert_array_equal(ours.detach().numpy(), ref.detach().numpy())
    np.testing.assert_array_equal(ours.detach().numpy(), separate.detach().numpy())
    proj = np.random.default_rng(6).standard_normal(ours.shape).astype(dtype)
    (ours * ds.tensor(proj, dtype=dtype)).sum().backward()
    (separate * ds.tensor(proj, dtype=dtype)).sum().backward()
    (ref * torch.tensor(proj)).sum().backward()
    np.testing.assert_array_equal(xd.grad.numpy(), xs.grad.numpy())
    np.testing.assert_array_equal(xd.grad.numpy(), xt.grad.numpy())
    assert np.isnan(x).any() and np.count_nonzero(xd.grad.numpy()[np.isnan(x)])  # a NaN winner gets it
    assert np.count_nonzero(xd.grad.numpy()) > 10  # gradients reach the winners


@pytest.mark.host_only  # the fused pass takes host arrays only
def test_relu_then_max_pool_fuses_only_plain_layers_that_suit_it(kernels, monkeypatch):
    """The fused op stands in only for hook-free layers whose pooling it computes; otherwise (odd
    sizes, a 3x3 window, a forward hook on the ReLU) both layers run as usual and agree with torch."""
    from downslope.nn import pooling

    calls = []
    fused = pooling._relu_then_max_pool
    monkeypatch.setitem(
        ds.nn.module.containers.FUSED_PAIRS,
        (ds.nn.ReLU, ds.nn.MaxPool2d),
        lambda *a: calls.append(1) or fused(*a),
    )
    x = np.random.default_rng(7).standard_normal((2, 3, 6, 8)).astype(np.float32)
    odd = np.random.default_rng(8).standard_normal((2, 3, 7, 8)).astype(np.float32)
    hooked = ds.nn.ReLU()
    seen = []
    hooked.register_forward_hook(lambda m, args, out: seen.append(out.shape))
    cases = [
        (ds.nn.Sequential(ds.nn.ReLU(), ds.nn.MaxPool2d(2)), torch.nn.MaxPool2d(2), x, 1),
        (ds.nn.Sequential(ds.nn.ReLU(), ds.nn.MaxPool2d(2)), torch.nn.MaxPool2d(2), odd, 1),
        (ds.nn.Sequential(ds.nn.ReLU(), ds.nn.MaxPool2d(3)), torch.nn.MaxPool2d(3), x, 1),
        (ds.nn.Sequential(hooked, ds.nn.MaxPool2d(2)), torch.nn.MaxPool2d(2), x, 0),
    ]
    for ours, pool, data, asked in cases:
        calls.clear()
        out = ours(ds.tensor(data))
        np.testing.assert_array_equal(out.detach().numpy(), pool(torch.relu(torch.tensor(data))).detach().numpy())
        assert len(calls) == asked
    assert seen == [(2, 3, 6, 8)]  # the hooked ReLU ran on its own


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_winograd_weight_transform_and_its_adjoint(kernels, dtype):
    """U = G w G^T of every kernel (against NumPy's products in float64), and dw = G^T dU G is its
    adjoint: <U(w), dU> = <w, dw(dU)>."""
    if kernels != "jit":
        pytest.skip("Winograd is part of the compiled path")
    jit = _jit.kernels()
    rng = np.random.default_rng(14)
    w, du = _randn(rng, 5, 3, 3, 3, dtype=dtype), _randn(rng, 16, 5, 3, dtype=dtype)
    g = jit._G
    want = np.matmul(np.matmul(g, w.astype(np.float64)), g.T).reshape(5, 3, 16).transpose(2, 0, 1)
    u = jit.winograd_weight(w)
    assert u.dtype == dtype and u.shape == (16, 5, 3)
    rtol = 1e-6 if dtype == np.float32 else 1e-14
    np.testing.assert_allclose(u, want, rtol=rtol, atol=rtol)
    dw = jit.winograd_weight_adjoint(du, 5, 3)
    assert dw.dtype == dtype and dw.shape == (5, 3, 3, 3)
    lhs = float(np.sum(want * du.astype(np.float64)))
    rhs = float(np.sum(w.astype(np.float64) * dw.astype(np.float64)))
    assert lhs == pytest.approx(rhs, rel=1e-5 if dtype == np.float32 else 1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_winograd_weight_transforms_span_blocks_of_input_channels(kernels, dtype):
    """The transforms run a block of input channels at a time: channel counts past one block, not a
    multiple of it, exactly one block and a single channel all give U = G w G^T and dw = G^T dU G of
    every kernel (against NumPy's products in float64)."""
    if kernels != "jit":
        pytest.skip("Winograd is part of the compiled path")
    jit = _jit.kernels()
    block = jit.WINOGRAD_WEIGHT_BLOCK
    g = jit._G
    rng = np.random.default_rng(15)
    rtol = 1e-6 if dtype == np.float32 else 1e-14
    for c_out, c_in in ((3, 2 * block + 5), (2, block), (4, 1)):
        w, du = _randn(rng, c_out, c_in, 3, 3, dtype=dtype), _randn(rng, 16, c_out, c_in, dtype=dtype)
        want_u = np.matmul(np.matmul(g, w.astype(np.float64)), g.T).reshape(c_out, c_in, 16).transpose(2, 0, 1)
        np.testing.assert_allclose(jit.winograd_weight(w), want_u, rtol=rtol, atol=rtol)
        d = du.astype(np.float64).transpose(1, 2, 0).reshape(c_out, c_in, 4, 4)
        want_dw = np.matmul(np.matmul(g.T, d), g)
        dw = jit.winograd_weight_adjoint(du, c_out, c_in)
        assert dw.dtype == dtype
        np.testing.assert_allclose(dw, want_dw, rtol=rtol, atol=rtol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_winograd_conv_wider_than_a_weight_block_matches_torch(check_op, kernels, dtype):
    """A Winograd layer whose input channels span two blocks of the weight transforms: output and
    every gradient against torch."""
    rng = np.random.default_rng(16)
    c_in = 131  # past the compiled transforms' block of 128 input channels
    arrays = [
        _randn(rng, 2, c_in, 5, 6, dtype=dtype),
        _randn(rng, 9, c_in, 3, 3, dtype=dtype),
        _randn(rng, 9, dtype=dtype),
    ]
    geometry = ((1, 1), (1, 1, 1, 1), (1, 1), 1, (5, 6))
    assert (_conv_kernels._winograd_jit(arrays[0], arrays[1], geometry) is not None) == (kernels == "jit")
    check_op(lambda x, w, b: C.conv2d(x, w, b, padding=1), lambda x, w, b: TF.conv2d(x, w, b, padding=1), arrays)


def test_a_replaced_module_call_sees_every_layer_of_a_fusable_pair(kernels, monkeypatch):
    """A tracer that replaces Module.__call__ (as the ONNX exporter does) sees the ReLU and the
    pooling called one by one: Sequential fuses only layers called through Module's own __call__."""
    seen = []
    original = ds.nn.Module.__call__

    def traced(self, *args, **kwargs):
        seen.append(type(self).__name__)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(ds.nn.Module, "__call__", traced)
    x = np.random.default_rng(9).standard_normal((2, 3, 6, 8)).astype(np.float32)
    out = ds.nn.Sequential(ds.nn.ReLU(), ds.nn.MaxPool2d(2))(ds.tensor(x))
    assert seen == ["Sequential", "ReLU", "MaxPool2d"]
    np.testing.assert_array_equal(
        out.detach().numpy(), torch.nn.MaxPool2d(2)(torch.relu(torch.tensor(x))).detach().numpy()
    )


def test_relu_then_max_pool_over_parts_on_two_threads_matches_the_two_layers(kernels, monkeypatch):
    """With oneDNN's GEMM on two threads the fused pass splits its input's first memory axis into
    two parts run at once (an uneven split included): the same values and gradient as the layers."""
    from downslope import gemm

    if kernels != "jit" or not gemm.available():
        pytest.skip("the fused pass needs the compiled kernels; two parts need oneDNN's threads")
    monkeypatch.setattr(_parallel, "MIN_WORK", 0)
    threads = gemm.get_num_threads()
    gemm.set_num_threads(2)
    try:
        x = _relu_pool_input(np.float32, channel_major=True)[:, :3]  # 3 channels: parts of 1 and 2
        xd, xs = ds.tensor(x, requires_grad=True), ds.tensor(x, requires_grad=True)
        ours = ds.nn.Sequential(ds.nn.ReLU(), ds.nn.MaxPool2d(2))(xd)
        with _jit.disabled():
            separate = ds.nn.MaxPool2d(2)(ds.nn.ReLU()(xs))
        np.testing.assert_array_equal(ours.detach().numpy(), separate.detach().numpy())
        proj = np.random.default_rng(10).standard_normal(ours.shape).astype(np.float32)
        (ours * ds.tensor(proj)).sum().backward()
        (separate * ds.tensor(proj)).sum().backward()
        np.testing.assert_array_equal(xd.grad.numpy(), xs.grad.numpy())
    finally:
        gemm.set_num_threads(threads or 1)


# ---------------------------------------------------------------------- depthwise (direct compiled kernel)
@pytest.mark.parametrize(
    "shape, multiplier, kernel, kwargs",
    [
        ((3, 5, 9, 8), 1, (3, 3), dict(padding=1)),
        ((2, 4, 10, 11), 1, (3, 3), dict(stride=2, padding=1)),
        ((2, 3, 9, 9), 2, (3, 3), dict(stride=2, padding=1, dilation=2)),
        ((2, 4, 8, 13), 1, (3, 5), dict(stride=(2, 1), padding=(0, 2), dilation=(1, 2))),
        ((1, 3, 7, 7), 3, (2, 3), dict(stride=(1, 3), padding=(2, 0))),
        ((2, 2, 11, 10), 1, (3, 3), dict(stride=3)),  # rows and columns the windows never reach
        ((2, 6, 9, 10), 1, (3, 3), dict(padding="same")),
    ],
)
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_depthwise_conv2d_matches_torch(check_op, kernels, shape, multiplier, kernel, kwargs, bias, dtype):
    """groups = C_in (one input channel per group, channel multiplier 1 or more): with numba installed
    the direct depthwise kernels compute it (strides, dilation, asymmetric padding), else im2col;
    values and every gradient against torch."""
    rng = np.random.default_rng(sum(shape) + multiplier)
    c = shape[1]
    arrays = [_randn(rng, *shape, dtype=dtype), _randn(rng, c * multiplier, 1, *kernel, dtype=dtype)]
    geometry = ((1, 1), (0, 0, 0, 0), (1, 1), c, (1, 1))
    chosen = _conv_kernels._depthwise_jit(arrays[0], arrays[1], None, geometry)
    assert (chosen is not None) == (kernels == "jit")  # the jit run really takes the depthwise path
    if bias:
        arrays.append(_randn(rng, c * multiplier, dtype=dtype))
    check_op(
        lambda *a: C.conv2d(*a[:2], a[2] if bias else None, groups=c, **kwargs),
        lambda *a: TF.conv2d(*a[:2], a[2] if bias else None, groups=c, **kwargs),
        arrays,
    )


@pytest.mark.parametrize("grad_inputs", [(0,), (1,), (1, 2)])
def test_depthwise_conv2d_partial_gradients_match_torch(check_op, grad_inputs):
    rng = np.random.default_rng(21)
    arrays = [_randn(rng, 3, 4, 7, 6), _randn(rng, 4, 1, 3, 3), _randn(rng, 4)]
    check_op(
        lambda x, w, b: C.conv2d(x, w, b, stride=2, padding=1, groups=4),
        lambda x, w, b: TF.conv2d(x, w, b, stride=2, padding=1, groups=4),
        arrays,
        grad_inputs=grad_inputs,
    )


def test_depthwise_block_on_channel_major_activations_matches_torch(assert_close):
    """Conv -> BN -> ReLU -> depthwise (stride 1 and 2) -> pointwise, the depthwise layers reading the
    channel-major activations a convolution returns; values and every gradient against torch."""
    rng = np.random.default_rng(22)
    x = _randn(rng, 5, 3, 12, 12)
    torch.manual_seed(2)

    def net(nn):
        return nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
            nn.Conv2d(8, 8, 3, padding=1, groups=8), nn.ReLU(),
            nn.Conv2d(8, 16, 3, stride=2, padding=1, groups=8, bias=False), nn.Conv2d(16, 4, 1),
        )  # fmt: skip

    theirs, ours = net(torch.nn), net(ds.nn)
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    xd, xt = ds.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    out_d, out_t = ours(xd), theirs(xt)
    assert_close(out_d.detach().numpy(), out_t.detach().numpy(), np.float32, "output")
    proj = rng.standard_normal(out_d.shape).astype(np.float32)
    (out_d * ds.tensor(proj)).sum().backward()
    (out_t * torch.tensor(proj)).sum().backward()
    assert_close(xd.grad.numpy(), xt.grad.numpy(), np.float32, "input gradient")
    mine = dict(ours.named_parameters())
    weight_scale = float(np.abs(theirs[0].weight.grad.numpy()).max())
    for name, p in theirs.named_parameters():
        if name == "0.bias":
            # a bias right before a training-mode BatchNorm has an exact zero gradient (the batch mean takes
            # it away): both libraries return rounding noise there, torch's up to 1e-6 on an AVX2 machine,
            # so each is held to zero against the conv weight's gradient instead of to the other's noise
            for grad in (mine[name].grad.numpy(), p.grad.numpy()):
                assert np.abs(grad).max() <= 1e-5 * weight_scale, (name, grad, weight_scale)
            continue
        assert_close(mine[name].grad.numpy(), p.grad.numpy(), np.float32, f"{name}.grad")


# ---------------------------------------------------------------------- Winograd weight reuse in inference
@pytest.mark.host_only  # the compiled Winograd path takes host arrays only
def test_inference_reuses_the_winograd_weight_and_never_a_stale_one(kernels, monkeypatch):
    """Under no_grad the transformed weight of a Winograd layer is computed once and reused while the
    weight's values are unchanged; an optimizer step (which writes the weights in place through its
    flat buffer, unseen by any version counter), a NumPy write into the weight, and a new weight array
    all give a fresh transform: every output equals torch's with the current weights."""
    if kernels != "jit":
        pytest.skip("Winograd is part of the compiled path")
    jit = _jit.kernels()
    calls = []
    real = jit.winograd_weight
    monkeypatch.setattr(jit, "winograd_weight", lambda w: calls.append(1) or real(w))
    rng = np.random.default_rng(23)
    x = _randn(rng, 2, 16, 6, 6)
    model = ds.nn.Sequential(ds.nn.Conv2d(16, 16, 3, padding=1), ds.nn.ReLU(), ds.nn.Conv2d(16, 16, 3))
    opt = ds.optim.Adam(model.parameters(), lr=0.1)

    def expected():
        ref = torch.nn.Sequential(torch.nn.Conv2d(16, 16, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(16, 16, 3))
        ref.load_state_dict({k: torch.tensor(v.detach().numpy().copy()) for k, v in model.state_dict().items()})
        with torch.no_grad():
            return ref(torch.tensor(x)).detach().numpy()

    def infer():
        model.eval()
        with ds.no_grad():
            out = model(ds.tensor(x)).detach().numpy()
        model.train()
        np.testing.assert_allclose(out, expected(), rtol=1e-4, atol=1e-4)

    infer()
    infer()
    assert len(calls) == 2  # two layers, each transformed once
    for _ in range(2):  # a training step (transforms every forward), then inference with the new weights
        opt.zero_grad()
        model(ds.tensor(x)).square().sum().backward()
        opt.step()
        calls.clear()
        infer()
        assert len(calls) == 2
    model[0].weight.array[0, 0, 0, 0] += 1.0  # written through NumPy, behind the tensor's back
    calls.clear()
    infer()
    assert len(calls) == 1
    model[2].weight = ds.nn.Parameter(ds.tensor(model[2].weight.detach().numpy() * 2))
    calls.clear()
    infer()
    assert len(calls) == 1
    calls.clear()
    with ds.no_grad():  # with gradients on or off, unchanged weights are transformed once
        model(ds.tensor(x))
    model(ds.tensor(x))
    assert len(calls) == 0


def test_the_weight_cache_compares_bytes():
    a = np.array([0.0, np.nan, 1.0], dtype=np.float32)
    assert _conv_kernels._same_bytes(a, a.copy())
    assert not _conv_kernels._same_bytes(a, np.array([-0.0, np.nan, 1.0], dtype=np.float32))
    assert not _conv_kernels._same_bytes(a, a.astype(np.float64))


@pytest.mark.parametrize("dilation", [1, 2])
def test_conv1d_over_batch_chunks_matches_torch(check_op, monkeypatch, dilation):
    """A 1-D convolution takes larger batch chunks (CHUNK_BYTES_1D) and its weight gradient from the
    columns; several chunks and a partial last one against torch."""
    monkeypatch.setattr(_conv_kernels, "CHUNK_BYTES_1D", 4 * 7 * 20 * 4 * 2)  # 2 sequences a chunk
    rng = np.random.default_rng(24)
    arrays = [_randn(rng, 5, 4, 20), _randn(rng, 6, 4, 7), _randn(rng, 6)]
    kwargs = dict(padding=3 * dilation, dilation=dilation)
    check_op(lambda x, w, b: C.conv1d(x, w, b, **kwargs), lambda x, w, b: TF.conv1d(x, w, b, **kwargs), arrays)


def test_convolutions_of_an_empty_batch_are_empty_as_torch() -> None:
    torch = pytest.importorskip("torch")
    for name, shape in [("Conv1d", (0, 3, 8)), ("Conv2d", (0, 3, 8, 8)), ("Conv3d", (0, 3, 5, 5, 5)),
                        ("ConvTranspose1d", (0, 3, 8)), ("ConvTranspose2d", (0, 3, 8, 8)), ("ConvTranspose3d", (0, 3, 4, 4, 4))]:  # fmt: skip
        mine, theirs = getattr(ds.nn, name)(3, 4, 3), getattr(torch.nn, name)(3, 4, 3)
        x = ds.randn(*shape, requires_grad=True)
        y = mine(x)
        assert y.shape == tuple(theirs(torch.randn(shape)).shape), name
        y.sum().backward()
        assert x.grad.shape == shape
        np.testing.assert_array_equal(mine.weight.grad.numpy(), 0.0)


@pytest.mark.parametrize("pad", [0, 1, 3])
def test_conv_tbc_matches_torch(pad: int) -> None:
    rng = np.random.default_rng(pad)
    x, w, b = (rng.standard_normal(s) for s in ((7, 3, 4), (3, 4, 5), (5,)))
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    dx, dw, db = (ds.from_numpy(a.copy()).requires_grad_(True) for a in (x, w, b))
    theirs, ours = torch.conv_tbc(tx, tw, tb, pad), ds.nn.functional.conv_tbc(dx, dw, db, pad)
    g = rng.standard_normal(tuple(theirs.shape))
    (theirs * torch.from_numpy(g)).sum().backward()
    (ours * ds.from_numpy(g)).sum().backward()
    np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=1e-10, atol=1e-12)
    for o, t in ((dx, tx), (dw, tw), (db, tb)):
        np.testing.assert_allclose(o.grad.numpy(), t.grad.numpy(), rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match="conv_tbc: input channels 4 .* weight's 2"):
        ds.nn.functional.conv_tbc(dx, ds.ones(3, 2, 5, dtype=ds.float64), db)
