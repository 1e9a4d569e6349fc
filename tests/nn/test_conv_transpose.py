"""Transposed convolution against torch: values and gradients of input, weight and bias."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import downslope as ds
import downslope.nn.functional as F
from downslope import nn
from downslope.errors import ShapeError

torch = pytest.importorskip("torch")

CASES_2D = [
    # (C_in, C_out, groups, kernel, stride, padding, output_padding, dilation, (H, W))
    (3, 2, 1, 4, 2, 1, 0, 1, (4, 4)),
    (4, 6, 2, 3, 2, 1, 1, 1, (5, 6)),
    (2, 4, 1, 3, 3, 2, 2, 2, (5, 3)),
    (2, 2, 1, 5, 1, 4, 0, 1, (7, 7)),
    (2, 3, 1, (2, 3), (1, 2), (0, 1), 0, 1, (3, 4)),
]


@pytest.fixture(autouse=True)
def _seed_torch() -> None:
    torch.manual_seed(0)  # PyTorch's layers initialize at random: the same weights on every run


@pytest.mark.parametrize(("cin", "cout", "g", "k", "s", "p", "op", "d", "hw"), CASES_2D)
def test_conv_transpose2d_matches_torch(check_op: Any, cin, cout, g, k, s, p, op, d, hw) -> None:
    rng = np.random.default_rng(0)
    kk = (k, k) if isinstance(k, int) else k
    x = rng.standard_normal((2, cin, *hw)).astype(np.float32)
    w = rng.standard_normal((cin, cout // g, *kk)).astype(np.float32)
    b = rng.standard_normal(cout).astype(np.float32)
    check_op(
        lambda x, w, b: F.conv_transpose2d(x, w, b, s, p, op, g, d),
        lambda x, w, b: torch.nn.functional.conv_transpose2d(x, w, b, s, p, op, g, d),
        [x, w, b],
    )


def test_conv_transpose1d_and_unbatched_inputs_match_torch(check_op: Any) -> None:
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal((2, 3, 6)).astype(np.float32), rng.standard_normal((3, 4, 3)).astype(np.float32)
    check_op(
        lambda x, w: F.conv_transpose1d(x, w, stride=2, padding=1, output_padding=1),
        lambda x, w: torch.nn.functional.conv_transpose1d(x, w, stride=2, padding=1, output_padding=1),
        [x, w],
    )
    check_op(lambda x, w: F.conv_transpose1d(x, w), lambda x, w: torch.nn.functional.conv_transpose1d(x, w), [x[0], w])


@pytest.mark.parametrize("dims", [1, 2])
def test_conv_transpose_modules_match_torch_after_loading_its_weights(dims: int) -> None:
    ours = getattr(nn, f"ConvTranspose{dims}d")(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2)
    theirs = getattr(torch.nn, f"ConvTranspose{dims}d")(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2)
    assert ours.weight.shape == tuple(theirs.weight.shape) and ours.bias.shape == tuple(theirs.bias.shape)
    bound = 1 / np.sqrt(3 * 3**dims)  # PyTorch's default init: fan_in = C_out / groups * prod(kernel)
    assert (
        np.abs(ours.weight.detach().numpy()).max() <= bound + 1e-6
        and np.abs(ours.bias.detach().numpy()).max() <= bound + 1e-6
    )
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    x = np.random.default_rng(2).standard_normal((2, 4) + (5,) * dims).astype(np.float32)
    np.testing.assert_allclose(ours(ds.tensor(x)).detach().numpy(), theirs(torch.tensor(x)).detach().numpy(), atol=1e-5)


def test_conv_transpose_errors_are_clear() -> None:
    with pytest.raises(ValueError, match="output_padding"):
        F.conv_transpose2d(ds.ones(1, 1, 3, 3), ds.ones(1, 1, 3, 3), stride=1, output_padding=1)
    with pytest.raises(ValueError, match="input has 2 channels"):
        F.conv_transpose2d(ds.ones(1, 2, 3, 3), ds.ones(1, 1, 3, 3))
    with pytest.raises(ValueError, match="padding_mode='zeros'"):
        nn.ConvTranspose2d(1, 1, 3, padding_mode="reflect")


# ---------------------------------------------------------------------- the fused op (GEMM + fold)
# (dims, C_in, C_out, groups, kernel, stride, padding, output_padding, dilation, spatial size)
FUSED_CASES = [
    (2, 3, 2, 1, 3, 2, 1, 1, 1, (5, 4)),
    (2, 4, 6, 2, (2, 3), (3, 1), (2, 0), (1, 0), (1, 2), (4, 5)),
    (2, 4, 4, 4, 4, 1, 2, 0, 1, (5, 4)),  # depthwise, padding wider than 'same'
    (2, 4, 4, 4, 1, 1, 1, 0, 1, (5, 4)),  # a 1x1 kernel with padding: every border row cut off
    (2, 2, 3, 1, 3, 1, 2, 1, 2, (4, 4)),  # output padding past the stride (dilation 2)
    (2, 16, 16, 1, 3, 1, 1, 0, 1, (6, 5)),  # the input gradient may take the Winograd kernel
    (2, 3, 2, 1, 4, 3, 3, 2, 1, (3, 3)),
    (1, 3, 4, 1, 4, 2, 1, 1, 1, (7,)),
    (1, 4, 6, 2, 3, 3, 0, 2, 2, (5,)),
]


def _fused_case(case: tuple, n: int, dtype: Any) -> tuple[list[np.ndarray], Any, Any]:
    dims, cin, cout, g, k, s, p, op, d, size = case
    kk = (k,) * dims if isinstance(k, int) else k
    rng = np.random.default_rng(cin * 7 + cout)
    arrays = [
        rng.standard_normal((n, cin, *size)).astype(dtype),
        rng.standard_normal((cin, cout // g, *kk)).astype(dtype),
        rng.standard_normal(cout).astype(dtype),
    ]
    ours = getattr(F, f"conv_transpose{dims}d")
    theirs = getattr(torch.nn.functional, f"conv_transpose{dims}d")
    return arrays, lambda x, w, b: ours(x, w, b, s, p, op, g, d), lambda x, w, b: theirs(x, w, b, s, p, op, g, d)


@pytest.mark.parametrize("jit", [True, False], ids=["jit", "numpy"])
@pytest.mark.parametrize("n", [2, 9], ids=["batch2", "batch9"])  # 9 images: the compiled fold's layout
@pytest.mark.parametrize("case", FUSED_CASES, ids=str)
def test_fused_transposed_convolution_matches_torch_in_float64(check_op: Any, case: tuple, n: int, jit: bool) -> None:
    from downslope.nn import _jit

    arrays, ours, theirs = _fused_case(case, n, np.float64)
    with _jit.disabled() if not jit else _nothing():
        check_op(ours, theirs, arrays)


def _nothing() -> Any:
    import contextlib

    return contextlib.nullcontext()


@pytest.mark.parametrize("case", FUSED_CASES[:2] + FUSED_CASES[4:5] + FUSED_CASES[-1:], ids=str)
def test_transposed_convolution_second_derivatives_match_torch(case: tuple) -> None:
    """A gradient penalty: the input and weight gradients, differentiated again (create_graph)."""
    arrays, ours, theirs = _fused_case(case, 3, np.float64)
    grads = []
    for lib, fn in ((ds, ours), (torch, theirs)):
        x, w, b = (lib.tensor(a, dtype=lib.float64, requires_grad=True) for a in arrays)
        y = fn(x, w, b)
        gx, gw = (torch.autograd.grad if lib is torch else ds.autograd.grad)((y * y).sum(), (x, w), create_graph=True)
        ((gx * gx).sum() + (gw * gw * gw).sum()).backward()
        grads.append([t.grad.detach().cpu().numpy() for t in (x, w, b)])
    for a, b in zip(*grads):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-9)


def test_float32_layer_of_a_decoder_matches_torch_and_its_output_views_like_torch() -> None:
    torch.manual_seed(0)
    theirs = torch.nn.ConvTranspose2d(32, 16, 4, stride=2, padding=1)
    ours = nn.ConvTranspose2d(32, 16, 4, stride=2, padding=1)
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    x = np.random.default_rng(3).standard_normal((16, 32, 7, 7)).astype(np.float32)
    xd, xt = ds.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    yd, yt = ours(xd), theirs(xt)
    assert yd.is_contiguous() and yd.view(16, -1).shape == (16, 16 * 14 * 14)
    (yd * yd).sum().backward()
    (yt * yt).sum().backward()
    for a, b in [
        (yd.detach().numpy(), yt.detach().numpy()),
        (xd.grad.numpy(), xt.grad.numpy()),
        (ours.weight.grad.numpy(), theirs.weight.grad.numpy()),
        (ours.bias.grad.numpy(), theirs.bias.grad.numpy()),
    ]:
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5 * np.abs(b).max())


def test_output_size_and_unbatched_input_of_the_layers_match_torch() -> None:
    torch.manual_seed(0)
    theirs = torch.nn.ConvTranspose2d(3, 2, 3, stride=3, padding=1)
    ours = nn.ConvTranspose2d(3, 2, 3, stride=3, padding=1)
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    x = np.random.default_rng(4).standard_normal((3, 4, 5)).astype(np.float32)
    want = theirs(torch.tensor(x), output_size=(11, 15)).detach().numpy()
    got = ours(ds.tensor(x), output_size=(11, 15))
    assert got.shape == want.shape == (2, 11, 15)
    np.testing.assert_allclose(got.detach().numpy(), want, rtol=1e-5, atol=1e-6)


def test_transposed_convolution_runs_on_a_device_and_matches_the_host() -> None:
    """The strict stand-in (NumPy behind a device wall): no host conversion, the host's values."""
    arrays, ours, _ = _fused_case(FUSED_CASES[1], 3, np.float32)
    results = []
    for device in ("cpu", "strict"):
        x, w, b = (ds.tensor(a, device=device, requires_grad=True) for a in arrays)
        y = ours(x, w, b)
        (y * y).sum().backward()
        results.append([t.detach().cpu().numpy() for t in (y, x.grad, w.grad, b.grad)])
        assert str(y.device) == device and str(w.grad.device) == device
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_bias_and_dtype_errors_are_clear() -> None:
    with pytest.raises(ValueError, match=r"expected bias of shape \(2,\)"):
        F.conv_transpose2d(ds.ones(1, 1, 3, 3), ds.ones(1, 2, 3, 3), ds.ones(3))
    with pytest.raises(TypeError, match="does not match weight dtype"):
        F.conv_transpose2d(ds.ones(1, 1, 3, 3), ds.ones(1, 2, 3, 3, dtype=ds.float64))
    with pytest.raises(ValueError, match="leaves no output"):
        F.conv_transpose2d(ds.ones(1, 1, 1, 1), ds.ones(1, 1, 1, 1), padding=1)


@pytest.mark.parametrize("case", FUSED_CASES[2:6], ids=str)
def test_input_gradient_alone_takes_the_convolution_kernels_and_matches_torch(check_op: Any, case: tuple) -> None:
    """A frozen weight: the input gradient is the convolution's forward pass (Winograd, depthwise)."""
    arrays, ours, theirs = _fused_case(case, 9, np.float32)
    check_op(ours, theirs, arrays, grad_inputs=[0])


# ------------------------------------------------- 3-D: one fused 2-D op of the depth slices, then a fold over depth
FUSED_CASES_3D = [
    (3, 3, 4, 1, 3, 2, 1, 1, 1, (3, 4, 3)),
    (3, 4, 6, 2, 2, (1, 2, 3), 0, 0, 1, (3, 4, 3)),
    (3, 4, 6, 1, 3, 1, 2, 0, 2, (3, 4, 3)),
    (3, 2, 3, 1, (2, 3, 1), (3, 1, 2), (1, 0, 0), (2, 0, 1), (1, 2, 1), (3, 3, 4)),  # output padding in depth
    (3, 3, 3, 3, 3, 2, 2, 1, 1, (2, 3, 3)),  # depthwise
    (3, 3, 2, 1, 4, 2, 1, 0, 1, (4, 4, 4)),
    (3, 2, 2, 1, 1, 1, 0, 0, 1, (3, 3, 3)),
]


@pytest.mark.parametrize("jit", [True, False], ids=["jit", "numpy"])
@pytest.mark.parametrize("n", [1, 3], ids=["batch1", "batch3"])
@pytest.mark.parametrize("case", FUSED_CASES_3D, ids=str)
def test_transposed_3d_convolution_matches_torch_in_float64(check_op: Any, case: tuple, n: int, jit: bool) -> None:
    from downslope.nn import _jit

    arrays, ours, theirs = _fused_case(case, n, np.float64)
    with _jit.disabled() if not jit else _nothing():
        check_op(ours, theirs, arrays)
        check_op(ours, theirs, [arrays[0][0], *arrays[1:]])  # unbatched
        check_op(lambda x, w: ours(x, w, None), lambda x, w: theirs(x, w, None), arrays[:2])


@pytest.mark.parametrize("case", FUSED_CASES_3D[:4], ids=str)
def test_transposed_3d_convolution_second_derivatives_match_torch(case: tuple) -> None:
    arrays, ours, theirs = _fused_case(case, 2, np.float64)
    grads = []
    for lib, fn in ((ds, ours), (torch, theirs)):
        x, w, b = (lib.tensor(a, dtype=lib.float64, requires_grad=True) for a in arrays)
        y = fn(x, w, b)
        gx, gw, gb = (torch.autograd.grad if lib is torch else ds.autograd.grad)(
            (y * y * y).sum(), (x, w, b), create_graph=True
        )
        ((gx * gx).sum() + (gw * gw * gw).sum() + (gb * gb).sum()).backward()
        grads.append([t.grad.detach().cpu().numpy() for t in (x, w, b)])
    for a, b in zip(*grads):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-9)


def test_transposed_3d_convolution_runs_on_a_device_and_matches_the_host() -> None:
    arrays, ours, _ = _fused_case(FUSED_CASES_3D[1], 3, np.float32)
    results = []
    for device in ("cpu", "strict"):
        x, w, b = (ds.tensor(a, device=device, requires_grad=True) for a in arrays)
        y = ours(x, w, b)
        (y * y).sum().backward()
        results.append([t.detach().cpu().numpy() for t in (y, x.grad, w.grad, b.grad)])
        assert str(y.device) == device and str(x.grad.device) == device
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_conv_transpose3d_layer_output_size_and_layout_match_torch() -> None:
    theirs = torch.nn.ConvTranspose3d(4, 6, 3, stride=(2, 3, 1), padding=1, groups=2)
    ours = nn.ConvTranspose3d(4, 6, 3, stride=(2, 3, 1), padding=1, groups=2)
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    x = np.random.default_rng(5).standard_normal((2, 4, 3, 4, 5)).astype(np.float32)
    for size in [None, (6, 11, 5), (2, 6, 5, 12, 5)]:
        want = theirs(torch.tensor(x), output_size=size).detach().numpy()
        got = ours(ds.tensor(x), output_size=size)
        assert got.shape == want.shape and got.is_contiguous() and got.stride() == tuple(s // 4 for s in want.strides)
        np.testing.assert_allclose(got.detach().numpy(), want, rtol=1e-5, atol=1e-5)
    assert ours(ds.tensor(x[0])).shape == tuple(theirs(torch.tensor(x[0])).shape)


def test_conv_transpose3d_errors_are_clear() -> None:
    with pytest.raises(ValueError, match="expected weight of shape"):
        F.conv_transpose3d(ds.ones(1, 1, 2, 2, 2), ds.ones(1, 1, 2, 2))
    with pytest.raises(ValueError, match="input has 2 channels"):
        F.conv_transpose3d(ds.ones(1, 2, 2, 2, 2), ds.ones(1, 1, 2, 2, 2))
    with pytest.raises(ValueError, match=r"expected bias of shape \(3,\)"):
        F.conv_transpose3d(ds.ones(1, 1, 2, 2, 2), ds.ones(1, 3, 2, 2, 2), ds.ones(2))
    with pytest.raises(TypeError, match="does not match weight dtype"):
        F.conv_transpose3d(ds.ones(1, 1, 2, 2, 2), ds.ones(1, 1, 2, 2, 2, dtype=ds.float64))
    with pytest.raises(ValueError, match="leaves no output"):
        F.conv_transpose3d(ds.ones(1, 1, 1, 1, 1), ds.ones(1, 1, 1, 1, 1), padding=(1, 0, 0))
    with pytest.raises(ValueError, match="output_padding"):
        F.conv_transpose3d(ds.ones(1, 1, 2, 2, 2), ds.ones(1, 1, 2, 2, 2), output_padding=1)


def test_conv_transpose1d_errors_name_the_1d_op() -> None:
    """The 1-D layer runs as a height-1 2-D op; its errors still name conv_transpose1d and 1-D shapes."""
    with pytest.raises(ShapeError, match=r"^conv_transpose1d: padding 2 leaves no output .* input length 3"):
        ds.nn.ConvTranspose1d(2, 2, 1, padding=2)(ds.randn(1, 2, 3))
    with pytest.raises(ShapeError, match=r"^conv_transpose1d: input has 3 channels but the weight \(2, 2, 1\)"):
        ds.nn.ConvTranspose1d(2, 2, 1)(ds.randn(1, 3, 3))
    with pytest.raises(TypeError, match=r"^conv_transpose1d: input dtype float32 does not match weight dtype float64"):
        ds.nn.ConvTranspose1d(2, 2, 1).double()(ds.randn(1, 2, 3))
    with pytest.raises(RuntimeError):  # torch refuses the first too (its message has no op name)
        torch.nn.ConvTranspose1d(2, 2, 1, padding=2)(torch.randn(1, 2, 3))
