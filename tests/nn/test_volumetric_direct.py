"""The direct 3-D layers (one recorded op per call: vol2col and GEMMs for the convolutions, compiled
pooling kernels) against torch in float64: values, every gradient, indices, and second derivatives
(a gradient penalty), on the NumPy formulation and on the compiled kernels (the ``kernels`` fixture)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import downslope as ds
import downslope.nn.functional as F
from downslope.nn import _jit

torch = pytest.importorskip("torch")
TF = torch.nn.functional


def _grads(ours_fn: Any, theirs_fn: Any, arrays: list[np.ndarray], seed: int = 0) -> bool:
    """Run both on float64 copies of ``arrays``; compare the output and every input's gradient of a
    random projection of it (to 1e-10 relative); return whether ours was recorded as one op."""
    ours = [ds.tensor(a, dtype=ds.float64, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in arrays]
    out, ref = ours_fn(*ours), theirs_fn(*theirs)
    assert out.shape == tuple(ref.shape)
    np.testing.assert_allclose(out.detach().numpy(), ref.detach().numpy(), rtol=1e-10, atol=1e-12)
    one_op = _is_one_op(out)  # read before backward, which releases the graph
    projection = np.random.default_rng(seed).standard_normal(ref.shape)
    (out * ds.tensor(projection, dtype=ds.float64)).sum().backward()
    (ref * torch.tensor(projection)).sum().backward()
    for i, (a, t) in enumerate(zip(ours, theirs)):
        np.testing.assert_allclose(a.grad.numpy(), t.grad.numpy(), rtol=1e-10, atol=1e-12, err_msg=f"input {i}")
    return one_op


def _is_one_op(out: Any) -> bool:
    """Whether ``out`` was recorded as ONE op straight from its leaf inputs."""
    return all(type(node).__name__ == "AccumulateGrad" for node, _ in out.grad_fn.next_functions)


CONV3D = [
    dict(),
    dict(stride=2, padding=1),
    dict(stride=(1, 2, 1), padding=(1, 0, 2), dilation=(2, 1, 1)),
    dict(padding="same", dilation=(1, 2, 1)),
    dict(groups=2, stride=(2, 1, 1)),
    dict(groups=2, padding=1),
    dict(padding="valid", dilation=2),
]


@pytest.mark.parametrize("kwargs", CONV3D, ids=str)
@pytest.mark.parametrize("kernel", [(3, 3, 3), (2, 3, 2)], ids=str)
def test_conv3d_matches_torch_in_float64(kernels: str, kwargs: dict[str, Any], kernel: tuple[int, ...]) -> None:
    rng = np.random.default_rng(0)
    g = kwargs.get("groups", 1)
    x = rng.standard_normal((2, 4, 6, 7, 5))
    w = rng.standard_normal((6, 4 // g, *kernel))
    b = rng.standard_normal(6)
    one_op = _grads(
        lambda x, w, b: F.conv3d(x, w, b, **kwargs), lambda x, w, b: TF.conv3d(x, w, b, **kwargs), [x, w, b]
    )
    assert one_op or kwargs.get("padding") == "same"  # an even 'same' pads first (a recorded pad)


@pytest.mark.parametrize("bias", [True, False])
def test_conv3d_pointwise_and_without_bias_match_torch(kernels: str, bias: bool) -> None:
    rng = np.random.default_rng(1)
    x, w, b = rng.standard_normal((3, 5, 4, 3, 6)), rng.standard_normal((2, 5, 1, 1, 1)), rng.standard_normal(2)
    arrays = [x, w, b] if bias else [x, w]
    _grads(lambda *a: F.conv3d(*a), lambda *a: TF.conv3d(*a), arrays)


@pytest.mark.parametrize(
    "kwargs", [dict(padding=1), dict(stride=(2, 1, 2), padding=(2, 1, 0), dilation=(2, 1, 1))], ids=str
)
def test_convolutions_in_chunks_of_one_output_depth_match_torch(
    kernels: str, kwargs: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chunks smaller than an image (a large volume's), split at every output depth plane."""
    from downslope.nn import _vol_kernels

    monkeypatch.setattr(_vol_kernels, "CHUNK_BYTES", 1)
    monkeypatch.setattr(_vol_kernels, "SHIFTED_MIN_SLABS", 1)
    rng = np.random.default_rng(11)
    x, w, b = rng.standard_normal((2, 3, 7, 5, 6)), rng.standard_normal((4, 3, 3, 2, 3)), rng.standard_normal(4)
    _grads(lambda x, w, b: F.conv3d(x, w, b, **kwargs), lambda x, w, b: TF.conv3d(x, w, b, **kwargs), [x, w, b])
    wt = rng.standard_normal((3, 4, 3, 2, 3))
    _grads(
        lambda x, w: F.conv_transpose3d(x, w, None, 2, 1, 1),
        lambda x, w: TF.conv_transpose3d(x, w, None, 2, 1, 1),
        [x, wt],
    )


def test_conv3d_is_one_recorded_op() -> None:
    x = ds.randn(2, 3, 5, 5, 5, requires_grad=True)
    w, b = ds.randn(4, 3, 3, 3, 3, requires_grad=True), ds.randn(4, requires_grad=True)
    out = F.conv3d(x, w, b, padding=1)
    assert _is_one_op(out) and len(out.grad_fn.next_functions) == 3
    assert _is_one_op(F.conv3d(x, w, None, stride=2))


def test_conv3d_of_a_convolution_output_and_its_layers_match_torch(kernels: str) -> None:
    """A stack (channel-major activations between the layers), with padding modes, against torch."""
    torch.manual_seed(0)
    layers = [
        dict(padding=1),
        dict(padding=1, padding_mode="reflect"),
        dict(padding=(1, 0, 1), padding_mode="circular"),
    ]
    theirs = torch.nn.Sequential(*(torch.nn.Conv3d(3, 3, 3, **kw) for kw in layers), torch.nn.ReLU()).double()
    ours = ds.nn.Sequential(*(ds.nn.Conv3d(3, 3, 3, **kw) for kw in layers), ds.nn.ReLU()).double()
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    x = np.random.default_rng(2).standard_normal((2, 3, 5, 6, 4))
    a, t = ds.tensor(x, dtype=ds.float64, requires_grad=True), torch.tensor(x, requires_grad=True)
    out, ref = ours(a), theirs(t)
    np.testing.assert_allclose(out.detach().numpy(), ref.detach().numpy(), rtol=1e-10, atol=1e-12)
    (out**2).sum().backward()
    (ref**2).sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), t.grad.numpy(), rtol=1e-10, atol=1e-12)
    for (name, p), q in zip(theirs.named_parameters(), ours.parameters()):
        np.testing.assert_allclose(q.grad.numpy(), p.grad.numpy(), rtol=1e-10, atol=1e-12, err_msg=name)


def test_conv3d_float32_runs_on_the_gemm_and_matches_torch(kernels: str) -> None:
    rng = np.random.default_rng(3)
    x, w = rng.standard_normal((2, 8, 6, 6, 6)).astype(np.float32), rng.standard_normal((8, 8, 3, 3, 3))
    w = w.astype(np.float32)
    a, wa = ds.tensor(x, requires_grad=True), ds.tensor(w, requires_grad=True)
    t, wt = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    out, ref = F.conv3d(a, wa, padding=1), TF.conv3d(t, wt, padding=1)
    np.testing.assert_allclose(out.detach().numpy(), ref.detach().numpy(), rtol=1e-4, atol=1e-4)
    out.sum().backward()
    ref.sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), t.grad.numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(wa.grad.numpy(), wt.grad.numpy(), rtol=1e-4, atol=1e-3)


def test_conv3d_of_an_empty_batch(kernels: str) -> None:
    x = ds.zeros(0, 2, 4, 4, 4, requires_grad=True)
    w = ds.randn(3, 2, 3, 3, 3, requires_grad=True)
    out = F.conv3d(x, w, padding=1)
    assert out.shape == (0, 3, 4, 4, 4)
    out.sum().backward()
    assert x.grad.shape == x.shape and not w.grad.numpy().any()


CONV_T3D = [(3, 2, 1, 1, 1, 1), (2, (1, 2, 3), 0, 0, 1, 2), (3, 1, 2, 0, 2, 1), (3, 1, 0, 1, 2, 1), (2, 2, 0, 0, 1, 1)]


@pytest.mark.parametrize(("k", "s", "p", "op", "d", "g"), CONV_T3D, ids=str)
def test_conv_transpose3d_matches_torch_in_float64(
    kernels: str, k: int, s: Any, p: int, op: int, d: int, g: int
) -> None:
    rng = np.random.default_rng(4)
    x, w, b = rng.standard_normal((2, 4, 3, 4, 3)), rng.standard_normal((4, 6 // g, k, k, k)), rng.standard_normal(6)
    assert _grads(
        lambda x, w, b: F.conv_transpose3d(x, w, b, s, p, op, g, d),
        lambda x, w, b: TF.conv_transpose3d(x, w, b, s, p, op, g, d),
        [x, w, b],
    )


POOLS = [
    dict(kernel_size=2),
    dict(kernel_size=3, stride=2, padding=1),
    dict(kernel_size=(2, 3, 3), stride=(1, 2, 2), padding=(1, 1, 0), dilation=(2, 1, 1)),
    dict(kernel_size=2, ceil_mode=True),
    dict(kernel_size=3, stride=2, padding=1, ceil_mode=True, dilation=2),
]


@pytest.mark.parametrize("kwargs", POOLS, ids=str)
def test_max_pool3d_values_indices_and_gradient_match_torch(kernels: str, kwargs: dict[str, Any]) -> None:
    x = np.random.default_rng(5).standard_normal((2, 3, 5, 6, 7))
    x[0, 0, 0, 0, :3] = np.nan  # a window holding NaNs: the last NaN wins
    x[1, 1, 2, 2, 2] = x[1, 1, 2, 2, 3]  # a tie: the first wins
    x[1, 2] = -np.inf  # windows where nothing beats -inf keep their first tap
    a, t = ds.tensor(x, dtype=ds.float64, requires_grad=True), torch.tensor(x, requires_grad=True)
    out, idx = F.max_pool3d(a, return_indices=True, **kwargs)
    assert _is_one_op(out) or kernels == "numpy" or type(out.array) is not np.ndarray  # compiled: host arrays
    ref, ref_idx = TF.max_pool3d(t, return_indices=True, **kwargs)
    np.testing.assert_array_equal(out.detach().numpy(), ref.detach().numpy())
    np.testing.assert_array_equal(idx.numpy(), ref_idx.numpy())
    assert idx.dtype == np.int64
    projection = np.random.default_rng(6).standard_normal(ref.shape)
    (out * ds.tensor(projection, dtype=ds.float64)).sum().backward()
    (ref * torch.tensor(projection)).sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), t.grad.numpy())


AVG_POOLS = [
    dict(kernel_size=2),
    dict(kernel_size=3, stride=2, padding=1),
    dict(kernel_size=3, stride=2, padding=1, count_include_pad=False),
    dict(kernel_size=2, ceil_mode=True),
    dict(kernel_size=3, stride=2, padding=1, ceil_mode=True, count_include_pad=False),
    dict(kernel_size=(2, 3, 3), divisor_override=5, ceil_mode=True),
]


@pytest.mark.parametrize("kwargs", AVG_POOLS, ids=str)
def test_avg_pool3d_matches_torch_in_float64(kernels: str, kwargs: dict[str, Any]) -> None:
    x = np.random.default_rng(7).standard_normal((2, 3, 5, 6, 7))
    _grads(lambda x: F.avg_pool3d(x, **kwargs), lambda x: TF.avg_pool3d(x, **kwargs), [x])


def test_unbatched_pooling_matches_torch(kernels: str) -> None:
    x = np.random.default_rng(8).standard_normal((3, 4, 5, 6))
    out, idx = F.max_pool3d(ds.tensor(x, dtype=ds.float64), 2, return_indices=True)
    ref, ref_idx = TF.max_pool3d(torch.tensor(x), 2, return_indices=True)
    np.testing.assert_array_equal(out.numpy(), ref.numpy())
    np.testing.assert_array_equal(idx.numpy(), ref_idx.numpy())
    _grads(lambda x: F.avg_pool3d(x, 2, ceil_mode=True), lambda x: TF.avg_pool3d(x, 2, ceil_mode=True), [x])


@pytest.mark.host_only  # the compiled kernels serve host arrays; a device runs the NumPy formulation
def test_the_compiled_poolings_are_one_recorded_op() -> None:
    if _jit.kernels() is None:
        pytest.skip("numba is not installed (the jit extra)")
    x = ds.randn(1, 2, 4, 4, 4, requires_grad=True)
    assert _is_one_op(F.max_pool3d(x, 2))
    assert _is_one_op(F.max_pool3d(x, 3, 2, 1, ceil_mode=True, return_indices=True)[0])
    assert _is_one_op(F.avg_pool3d(x, 2))
    assert _is_one_op(F.avg_pool3d(x, 3, 2, 1, count_include_pad=False))


def _penalty(ours: Any, theirs: Any, x: np.ndarray) -> None:
    """Differentiate sum(sin(d loss / d input)^2) in both libraries (float64); compare the input's and
    every parameter's gradient."""
    a = ds.tensor(x, dtype=ds.float64, requires_grad=True)
    t = torch.tensor(x, requires_grad=True)
    (g,) = ds.autograd.grad((ours(a * 1.5).tanh() ** 2).sum(), [a], create_graph=True)
    (g.sin() ** 2).sum().backward()
    (tg,) = torch.autograd.grad((theirs(t * 1.5).tanh() ** 2).sum(), [t], create_graph=True)
    (tg.sin() ** 2).sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), t.grad.numpy(), rtol=1e-9, atol=1e-11)
    mine = dict(ours.named_parameters())
    for name, p in theirs.named_parameters():
        np.testing.assert_allclose(mine[name].grad.numpy(), p.grad.numpy(), rtol=1e-9, atol=1e-11, err_msg=name)


SECOND = [
    ("Conv3d", (4, 6, 3), dict(padding=1)),
    ("Conv3d", (4, 6, (2, 3, 2)), dict(stride=(2, 1, 2), dilation=(1, 2, 1), groups=2)),
    ("Conv3d", (4, 2, 2), dict(padding="same", bias=False)),
    ("Conv3d", (4, 3, 1), {}),
    ("ConvTranspose3d", (4, 2, 3), dict(stride=2, padding=1, output_padding=1)),
    ("ConvTranspose3d", (4, 4, 2), dict(groups=2, dilation=2, output_padding=1)),
    ("MaxPool3d", (3,), dict(stride=2, padding=1, ceil_mode=True)),
    ("AvgPool3d", (2,), dict(ceil_mode=True, count_include_pad=False)),
    ("AvgPool3d", (3,), dict(stride=2, padding=1, divisor_override=4)),
]


@pytest.mark.parametrize(("name", "args", "kwargs"), SECOND, ids=str)
def test_second_derivatives_match_torch(kernels: str, name: str, args: Any, kwargs: dict[str, Any]) -> None:
    torch.manual_seed(0)
    theirs = getattr(torch.nn, name)(*args, **kwargs).double()
    ours = getattr(ds.nn, name)(*args, **kwargs).double()
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    channels = 4 if name.startswith("Conv") else 2
    _penalty(ours, theirs, np.random.default_rng(9).standard_normal((2, channels, 5, 6, 6)))


def test_a_gradient_penalty_through_a_3d_unet_block_matches_torch(kernels: str) -> None:
    """Conv3d, ReLU, MaxPool3d, ConvTranspose3d and a skip connection, differentiated twice."""

    def block(lib: Any) -> Any:
        nn = lib.nn

        class Block(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.conv, self.pool = nn.Conv3d(2, 4, 3, padding=1), nn.MaxPool3d(2)
                self.up = nn.ConvTranspose3d(4, 2, 2, stride=2)

            def forward(self, x: Any) -> Any:
                return lib.cat([self.up(self.pool(self.conv(x).relu())), x], 1)

        return Block().double()

    torch.manual_seed(0)
    theirs, ours = block(torch), block(ds)
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    _penalty(ours, theirs, np.random.default_rng(10).standard_normal((2, 2, 4, 6, 4)))


def _node_names(lib: Any, pooling: bool) -> list[str]:
    x = np.random.default_rng(0).standard_normal((1, 2, 4, 4, 4))
    w = np.random.default_rng(1).standard_normal((3, 2, 3, 3, 3))
    f = lib.nn.functional
    xt, wt = lib.tensor(x, requires_grad=True), lib.tensor(w, requires_grad=True)
    if pooling:
        outs = [f.max_pool3d(xt, 2), f.avg_pool3d(xt, 2)]
    else:
        outs = [f.conv3d(xt, wt), f.conv_transpose3d(xt, wt.transpose(0, 1))]
    return [out.grad_fn.name() for out in outs]


def test_convolution_node_names_are_torchs() -> None:
    assert _node_names(ds, pooling=False) == _node_names(torch, pooling=False)


@pytest.mark.host_only  # the compiled poolings are one op with torch's name; the NumPy formulation is composed
def test_compiled_pooling_node_names_are_torchs() -> None:
    if _jit.kernels() is None:
        pytest.skip("numba is not installed (the jit extra)")
    assert _node_names(ds, pooling=True) == _node_names(torch, pooling=True)
