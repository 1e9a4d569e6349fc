"""The short paths of a small model's forward (Linear on (..., in) input with nothing to record,
LayerNorm, causal scaled_dot_product_attention, Tensor.view and transpose with plain int sizes):
the same values, bit for bit, as the fully checked paths they skip, the gradients still flowing
when an input requires grad, and the errors of the checked paths kept."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import downslope as ds
import downslope.nn.functional as F
from downslope import ops
from downslope.errors import ShapeError
from downslope.nn import attention, normalization


def _host(t: ds.Tensor) -> bool:
    return type(t.array) is np.ndarray


# ---------------------------------------------------------------------- Linear
@pytest.mark.parametrize("shape", [(1, 5, 8), (2, 3, 4, 8)])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("dtype", [ds.float32, ds.float64])
def test_linear_nd_no_grad_same_bits_as_recorded_path(shape, bias, dtype):
    ds.manual_seed(0)
    lin = ds.nn.Linear(8, 6, bias=bias).to(dtype)
    x = ds.randn(*shape, dtype=dtype)
    with ds.no_grad():
        fast = lin(x)
    recorded = lin(x.detach().requires_grad_(True))
    assert recorded.requires_grad and not fast.requires_grad
    assert fast.shape == recorded.shape == shape[:-1] + (6,)
    assert fast.dtype == recorded.dtype
    np.testing.assert_array_equal(fast.numpy(), recorded.detach().numpy())
    ref = torch.nn.functional.linear(
        torch.tensor(x.numpy()),
        torch.tensor(lin.weight.detach().numpy()),
        None if lin.bias is None else torch.tensor(lin.bias.detach().numpy()),
    )
    tol = 1e-6 if dtype == ds.float32 else 1e-12
    np.testing.assert_allclose(fast.numpy(), ref.numpy(), rtol=tol, atol=tol)


@pytest.mark.host_only
def test_linear_nd_no_grad_skips_the_reshape_nodes(monkeypatch):
    lin = ds.nn.Linear(8, 6)
    x = ds.randn(1, 5, 8)
    if not _host(x):
        pytest.skip("the short path is for host arrays")
    calls = []
    real = ops.reshape
    monkeypatch.setattr(ops, "reshape", lambda *a, **k: calls.append(1) or real(*a, **k))
    with ds.no_grad():
        y = lin(x)
    assert calls == []
    assert y._parents == () and y._vjp is None
    lin(x.requires_grad_(True))  # recorded: flattened and unflattened by reshape nodes, as before
    assert len(calls) == 2


def test_linear_nd_grads_flow_as_torch():
    ds.manual_seed(1)
    lin = ds.nn.Linear(8, 6)
    x = ds.randn(2, 5, 8, requires_grad=True)
    lin(x).square().sum().backward()
    tl = torch.nn.Linear(8, 6)
    with torch.no_grad():
        tl.weight.copy_(torch.tensor(lin.weight.detach().numpy()))
        tl.bias.copy_(torch.tensor(lin.bias.detach().numpy()))
    tx = torch.tensor(x.detach().numpy(), requires_grad=True)
    tl(tx).square().sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(lin.weight.grad.numpy(), tl.weight.grad.numpy(), rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(lin.bias.grad.numpy(), tl.bias.grad.numpy(), rtol=1e-5, atol=1e-4)


def test_linear_nd_no_grad_keeps_the_checked_paths_errors():
    lin = ds.nn.Linear(8, 6)
    with ds.no_grad():
        with pytest.raises(ShapeError, match="in_features"):
            lin(ds.randn(1, 5, 7))
        with pytest.raises(ds.errors.DTypeError):
            lin(ds.randn(1, 5, 8, dtype=ds.float64))
        # a non-contiguous input takes the checked path: same values as its contiguous copy
        x = ds.randn(5, 1, 8).transpose(0, 1)
        np.testing.assert_array_equal(lin(x).numpy(), lin(x.contiguous()).numpy())


# ---------------------------------------------------------------------- LayerNorm
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("dtype", [ds.float32, ds.float64])
def test_layer_norm_short_path_same_bits_as_checked_path(affine, dtype):
    ds.manual_seed(2)
    ln = ds.nn.LayerNorm(16, elementwise_affine=affine).to(dtype)
    if affine:
        with ds.no_grad():
            ln.weight.copy_(ds.randn(16, dtype=dtype))
            ln.bias.copy_(ds.randn(16, dtype=dtype))
    x = ds.randn(2, 7, 16, dtype=dtype) * 3 + 100  # far from zero: the shift correction matters
    with ds.no_grad():
        fast = ln(x)
        checked = F.layer_norm(x, [16], ln.weight, ln.bias, ln.eps)  # a list: the checked path
    np.testing.assert_array_equal(fast.numpy(), checked.numpy())
    ref = torch.nn.functional.layer_norm(
        torch.tensor(x.numpy()),
        (16,),
        None if ln.weight is None else torch.tensor(ln.weight.detach().numpy()),
        None if ln.bias is None else torch.tensor(ln.bias.detach().numpy()),
        ln.eps,
    )
    tol = 1e-5 if dtype == ds.float32 else 1e-12
    np.testing.assert_allclose(fast.numpy(), ref.numpy(), rtol=tol, atol=tol)


@pytest.mark.host_only
def test_layer_norm_short_path_skips_the_checks(monkeypatch):
    x = ds.randn(1, 5, 16)
    if not _host(x):
        pytest.skip("the short path is for host arrays")
    ln = ds.nn.LayerNorm(16)
    calls = []
    real = normalization._check_dtypes
    monkeypatch.setattr(normalization, "_check_dtypes", lambda *a, **k: calls.append(1) or real(*a, **k))
    with ds.no_grad():
        ln(x)
    assert calls == []
    F.layer_norm(x, [16])  # a list shape takes the checks
    assert calls == [1]


def test_layer_norm_averaging_vector_is_kept_read_only():
    rows = np.ones((3, 24), np.float32)  # host: a private host helper
    normalization._row_stats(rows, 1e-5)
    avg = normalization._AVERAGING[(24, np.dtype(np.float32))][0]
    assert not avg.flags.writeable
    np.testing.assert_array_equal(avg, np.full(24, 1 / 24, np.float32))


def test_layer_norm_short_path_grads_as_torch():
    ds.manual_seed(3)
    ln = ds.nn.LayerNorm(16)
    x = ds.randn(2, 5, 16, requires_grad=True)
    (ln(x) * ds.arange(16.0)).sum().backward()
    tx = torch.tensor(x.detach().numpy(), requires_grad=True)
    tln = torch.nn.LayerNorm(16)
    (tln(tx) * torch.arange(16.0)).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(ln.weight.grad.numpy(), tln.weight.grad.numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(ln.bias.grad.numpy(), tln.bias.grad.numpy(), rtol=1e-4, atol=1e-4)


def test_layer_norm_short_path_keeps_errors():
    ln = ds.nn.LayerNorm(16)
    with pytest.raises(ds.errors.InvalidValueError):
        ln(ds.randn(2, 15))
    with pytest.raises(ds.errors.DTypeError):
        ln(ds.randn(2, 16, dtype=ds.float64))


# ---------------------------------------------------------------------- attention
def _heads(b, t, h, d, dtype=ds.float32, requires_grad=False):
    # split from a projection as in nanoGPT: (B, T, H, D) in memory, viewed as (B, H, T, D)
    return ds.randn(b, t, h, d, dtype=dtype).transpose(1, 2).detach().requires_grad_(requires_grad)


@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("layout", ["heads_split", "in_order"])
@pytest.mark.parametrize("dtype", [ds.float32, ds.float64])
def test_sdpa_short_path_same_bits_as_checked_path(causal, layout, dtype):
    ds.manual_seed(4)
    if layout == "heads_split":
        q, k, v = (_heads(2, 6, 4, 8, dtype) for _ in range(3))
    else:
        q, k, v = (ds.randn(2, 4, 6, 8, dtype=dtype) for _ in range(3))
    with ds.no_grad():
        fast = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
        # enable_gqa with equal heads takes the checked path through the same node
        checked = F.scaled_dot_product_attention(q, k, v, is_causal=causal, enable_gqa=True)
    np.testing.assert_array_equal(fast.numpy(), checked.numpy())
    assert fast.stride() == checked.stride()
    ref = torch.nn.functional.scaled_dot_product_attention(
        *(torch.tensor(t.numpy()) for t in (q, k, v)), is_causal=causal
    )
    tol = 1e-5 if dtype == ds.float32 else 1e-12
    np.testing.assert_allclose(fast.numpy(), ref.numpy(), rtol=tol, atol=tol)


def test_sdpa_short_path_grads_as_torch():
    ds.manual_seed(5)
    q, k, v = (_heads(1, 5, 2, 4, requires_grad=True) for _ in range(3))
    y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    (y * ds.arange(4.0)).sum().backward()
    tq, tk, tv = (torch.tensor(t.detach().numpy(), requires_grad=True) for t in (q, k, v))
    ty = torch.nn.functional.scaled_dot_product_attention(tq, tk, tv, is_causal=True)
    (ty * torch.arange(4.0)).sum().backward()
    for ours, theirs in ((q, tq), (k, tk), (v, tv)):
        np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.host_only
def test_causal_mask_is_kept_by_size_and_read_only():
    mask = attention._causal_future(5, 7)
    assert mask is attention._causal_future(5, 7)
    assert not mask.flags.writeable
    np.testing.assert_array_equal(mask, np.triu(np.ones((5, 7), bool), k=1))


def test_sdpa_short_path_keeps_errors():
    q = ds.randn(1, 2, 5, 8)
    with pytest.raises(ShapeError):
        F.scaled_dot_product_attention(q, ds.randn(1, 2, 5, 7), ds.randn(1, 2, 5, 8))
    with pytest.raises(ds.errors.ArgumentTypeError):
        F.scaled_dot_product_attention(q, q.double(), q)
    with pytest.raises(ds.errors.ArgumentError):
        F.scaled_dot_product_attention(q, q, q, dropout_p=False)


# ---------------------------------------------------------------------- view and transpose
def test_view_with_plain_ints_same_as_parsed_sizes():
    x = ds.randn(2, 12, requires_grad=True)
    a = x.view(2, 3, 4)
    b = x.view((2, 3, 4))
    c = x.view(size=(2, 3, 4))
    d = x.view(ds.tensor(2), np.int64(3), -1)  # read through __index__: the parsed path
    for t in (a, b, c, d):
        assert t.shape == (2, 3, 4)
        np.testing.assert_array_equal(t.detach().numpy(), a.detach().numpy())
    a.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.ones((2, 12), np.float32))
    with ds.no_grad():
        v = x.view(24)
        v[0] = 5.0  # a view: the write reaches x
    assert x[0, 0].item() == 5.0
    assert x.view(ds.int32).dtype == ds.int32
    with pytest.raises(ShapeError):
        ds.randn(3, 4).t().view(12)


def test_transpose_with_plain_ints_same_as_checked_path():
    x = ds.randn(2, 3, 4, requires_grad=True)
    a = x.transpose(1, -1)
    b = x.transpose(np.int64(1), np.int64(2))  # the checked path
    np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())
    np.testing.assert_array_equal(a.detach().numpy(), np.swapaxes(x.detach().numpy(), 1, 2))
    (a * ds.arange(3.0)).sum().backward()
    tx = torch.tensor(x.detach().numpy(), requires_grad=True)
    (tx.transpose(1, -1) * torch.arange(3.0)).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), tx.grad.numpy())
    with ds.no_grad():
        a[0, 0, 0] = 7.0  # a view: the write reaches x
    assert x[0, 0, 0].item() == 7.0
    with pytest.raises(ds.errors.OutOfRangeError):
        x.transpose(0, 3)
    assert ds.tensor(1.0).transpose(0, -1).shape == ()


@pytest.mark.host_only
def test_short_paths_skip_the_parsing_and_checks(monkeypatch):
    import sys

    shape_ops = sys.modules["downslope.ops.shape"]
    tensor_module = sys.modules["downslope.tensor"]  # (ds.tensor is the factory function)

    x = ds.randn(1, 6, 8)
    if not _host(x):
        pytest.skip("the short paths are for host arrays")
    calls = []

    def counting(module, name):
        real = getattr(module, name)
        monkeypatch.setattr(module, name, lambda *a, **k: calls.append(name) or real(*a, **k))

    counting(tensor_module, "_sizes_arg")
    counting(shape_ops, "permute")
    counting(attention, "_prepare_mask")
    q = x.view(1, 6, 2, 4).transpose(1, 2)
    with ds.no_grad():
        F.scaled_dot_product_attention(q, q, q, is_causal=True)
    assert calls == []
    x.view(ds.tensor(1), 6, 2, 4).transpose(np.int64(1), 2)  # parsed and checked
    F.scaled_dot_product_attention(q, q, q, enable_gqa=True)
    assert calls == ["_sizes_arg", "permute", "_prepare_mask"]
