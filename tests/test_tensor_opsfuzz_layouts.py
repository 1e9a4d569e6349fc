"""Views, writes and output layouts found by a differential fuzzer against torch: 0-d views, empty
views of expanded tensors, writes into views that repeat no element, C-order outputs of the ops torch
returns contiguous, and the convolution-layout notion kept to convolution outputs."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

import downslope as ds
import downslope.nn.functional as F


@pytest.mark.parametrize(
    "make",
    [
        lambda m: m.tensor(2.0).view_as(m.tensor(1.0)),
        lambda m: m.tensor(2.0).view(()),
        lambda m: m.ones(1).view([]),
        lambda m: m.ones(1).view_as(m.tensor(1.0)),
        lambda m: m.ones(1, 1).view(size=()),
    ],
)
def test_view_as_a_0d_shape(make):
    assert tuple(make(torch).shape) == tuple(make(ds).shape) == ()


def test_view_as_0d_shares_memory():
    x = ds.ones(1)
    x.view(()).fill_(5.0)
    assert x.tolist() == [5.0]


def test_fill_of_an_empty_view_of_an_expanded_non_leaf_does_nothing():
    for m in (torch, ds):
        leaf = m.tensor(2.0, requires_grad=True)
        h = leaf * 1
        e = h.expand(2)[:0]
        e.fill_(3.0)
        assert tuple(e.shape) == (0,)
        h.backward()
        assert leaf.grad.item() == 1.0


def test_inplace_on_an_empty_view_in_the_graph_keeps_the_gradient():
    grads = []
    for m in (torch, ds):
        leaf = m.tensor([2.0, 3.0], requires_grad=True)
        h = leaf * 1
        h[:0].mul_(3)
        h.sum().backward()
        grads.append(leaf.grad.tolist())
    assert grads[0] == grads[1] == [1.0, 1.0]


@pytest.mark.host_only  # NumPy's read-only flags: device arrays have none
def test_write_into_the_diagonal_of_overlapping_windows():
    out = []
    for m in (torch, ds):
        a = m.arange(5.0)
        a.unfold(0, 2, 1).diagonal().copy_(m.tensor([7.0, 8.0]))
        out.append(a.tolist())
    assert out[0] == out[1] == [7.0, 1.0, 8.0, 3.0, 4.0]


@pytest.mark.host_only  # NumPy's read-only flags: device arrays have none
def test_diagonal_that_repeats_elements_stays_read_only():
    with pytest.raises(RuntimeError):
        torch.zeros(1, 3, 3).expand(2, 3, 3).diagonal(0, 1, 2).mul_(2)
    with pytest.raises(ds.errors.StateError):  # repeated along the broadcast dim 0
        ds.zeros(1, 3, 3).expand(2, 3, 3).diagonal(0, 1, 2).mul_(2)
    y = ds.zeros(3, 3, dtype=ds.complex64)
    y.real.diagonal().fill_(1.0)  # .real writes through into the complex tensor, as torch's view
    np.testing.assert_array_equal(y.numpy(), np.eye(3))


@pytest.mark.parametrize("shape", [(2, 2), (1, 2, 2)])
def test_broadcast_to_that_repeats_nothing_is_writable(shape):
    out = []
    for m in (torch, ds):
        x = m.zeros(2, 2)
        m.broadcast_to(x, shape).fill_(1.0)
        out.append(x.tolist())
    assert out[0] == out[1] == [[1.0, 1.0], [1.0, 1.0]]


def test_broadcast_to_that_repeats_stays_read_only():
    with pytest.raises(ds.errors.StateError):
        ds.broadcast_to(ds.zeros(2), (3, 2)).fill_(1.0)


def _layouts(op):
    a = np.random.default_rng(0).standard_normal((3, 4, 5)).astype(np.float32)
    res = []
    for m in (torch, ds):
        b = m.tensor(a)
        inputs = {"perm": b.permute(2, 0, 1), "T12": b.transpose(1, 2), "expand": b[:, :1].expand(3, 4, 5)}
        res.append({k: (tuple(op(m, v).stride()), op(m, v).is_contiguous()) for k, v in inputs.items()})
    return res


C_ORDER_OPS = {
    "cat1": lambda m, x: m.cat([x, x], 1),
    "cat0": lambda m, x: m.cat([x, x], 0),
    "stack": lambda m, x: m.stack([x, x]),
    "hstack": lambda m, x: m.hstack([x, x]),
    "vstack": lambda m, x: m.vstack([x, x]),
    "cumsum": lambda m, x: m.cumsum(x, 2),
    "cumprod": lambda m, x: m.cumprod(x, 1),
    "cummax": lambda m, x: m.cummax(x, 1)[0],
    "cummin_indices": lambda m, x: m.cummin(x, 1)[1],
    "logcumsumexp": lambda m, x: m.logcumsumexp(x, 2),
    "index_select": lambda m, x: x.index_select(1, m.tensor([0, 2])),
    "repeat_interleave": lambda m, x: m.repeat_interleave(x, 2, 1),
}


@pytest.mark.parametrize("name", sorted(C_ORDER_OPS))
def test_outputs_torch_returns_contiguous_are_contiguous(name):
    t, d = _layouts(C_ORDER_OPS[name])
    assert t == d
    assert all(c for _, c in d.values())


@pytest.mark.parametrize("name", sorted(C_ORDER_OPS))
def test_a_view_of_their_output_writes_through_when_shared(name):
    # another tensor sharing the output's memory (a kept detach()): view() must be a view, not a copy
    seen = []
    for m in (torch, ds):
        x = m.arange(60.0).reshape(3, 4, 5).permute(2, 0, 1)
        y = C_ORDER_OPS[name](m, x)
        keep = y.detach()
        y.view(-1)[0] = 123
        seen.append(keep.flatten()[0].item())
    assert seen[0] == seen[1] == 123


def test_reshape_of_a_cat_of_transposed_inputs_is_a_view():
    out = []
    for m in (torch, ds):
        x = m.arange(12.0).reshape(3, 4)
        c = m.cat([x.t(), x.t()], 1)
        c.reshape(-1).add_(100)
        c.view(-1)[1] = -1.0
        out.append((c[0, 0].item(), c[0, 1].item()))
    assert out[0] == out[1] == (100.0, -1.0)


def test_a_gather_of_a_contiguous_tensor_is_contiguous():
    out = []
    for m in (torch, ds):
        x = m.arange(60.0).reshape(3, 4, 5)
        y = x[:, m.tensor([0, 2])]
        keep = y.detach()  # another tensor sharing the memory: a view must not be a silent copy
        y.view(-1)[0] = -1.0
        out.append((tuple(y.stride()), keep[0, 0, 0].item()))
    assert out[0] == out[1]


def test_repeat_interleave_of_windows_reports_its_strides_and_views():
    # not a convolution's output: its strides are its own, and a view writes through
    out = []
    for m in (torch, ds):
        w = m.arange(12.0).reshape(3, 4).unfold(1, 2, 2)
        r = m.repeat_interleave(w, 2, dim=-1)
        keep = r.detach()
        r.view(-1)[0] = -1.5
        out.append((tuple(r.stride()), keep[0, 0, 0].item()))
    assert out[0] == out[1]


@pytest.mark.parametrize("op", ["mul", "exp", "relu", "sigmoid"])
def test_elementwise_of_a_permuted_input_is_refused_a_view_as_torch(op):
    def run(m):
        x = m.arange(24.0).reshape(1, 2, 3, 4).permute(0, 3, 1, 2)
        y = x * 2 if op == "mul" else getattr(m, op)(x)
        keep = y.detach()  # shared: no re-layout in place
        try:
            y.view(-1)
        except RuntimeError:
            return "refused", tuple(y.stride()), keep is not None
        return "viewed", tuple(y.stride()), keep is not None

    assert run(torch) == run(ds)


def test_convolution_outputs_still_view_as_in_torch():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 6, 6)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    out = []
    for m in (torch, ds):
        y = m.nn.functional.conv2d(m.tensor(x), m.tensor(w))
        z = m.relu(y)
        cat = m.cat([z, z], 1)
        out.append((tuple(y.stride()), tuple(z.stride()), tuple(z.view(2, -1).shape), tuple(cat.view(2, -1).shape)))
    assert out[0] == out[1]


def test_pad_of_a_0d_tensor_with_no_pads_is_a_copy():
    for m in (torch, ds):
        x = m.tensor(1.0, requires_grad=True)
        y = m.nn.functional.pad(x, [])
        assert y.item() == 1.0 and y is not x
        y.backward()
        assert x.grad.item() == 1.0


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
def test_copying_pad_modes_refuse_an_empty_pad(mode):
    with pytest.raises(RuntimeError):
        torch.nn.functional.pad(torch.ones(2, 3), [], mode=mode)
    with pytest.raises(ds.errors.ShapeError):
        F.pad(ds.ones(2, 3), [], mode=mode)


def test_cdist_and_pdist_p0_propagate_nan():
    a = np.array([[0.0, np.nan, 3.0], [1.0, 2.0, 3.0], [1.0, 2.0, np.inf]])
    b = np.array([[1.0, 1.0, 3.0], [1.0, 2.0, 3.0]])
    res = []
    for m in (torch, ds):
        A, B = m.tensor(a, dtype=m.float32), m.tensor(b, dtype=m.float32)
        res.append((m.cdist(A, B, p=0).tolist(), m.nn.functional.pdist(A, p=0).tolist()))
    np.testing.assert_equal(res[0], res[1])


@pytest.mark.parametrize(
    "make",
    [
        lambda M, a: M.tensor(a)[0].expand(2, 3, 4),  # repeated elements (a stride of 0)
        lambda M, a: M.tensor(a)[:, None, None, :].expand(3, 1, 4, 4),  # an attention mask's expansion
        lambda M, a: M.tensor(a)[:, ::2],  # gaps between the elements
        lambda M, a: M.tensor(a).reshape(2, 2, 3).permute(2, 0, 1),  # dense, permuted: its order kept
        lambda M, a: M.tensor(a).t(),
    ],
)
def test_a_cast_lays_its_output_out_as_torch(make: Any) -> None:
    """A cast keeps a dense input's layout and makes anything else contiguous, as torch's: NumPy's
    order='K' followed an expanded input's zero strides (view(-1) then refused, reshape copied)."""
    a = np.arange(12).reshape(3, 4)
    want = make(torch, a).float()
    got = make(ds, a).float()
    assert got.stride() == want.stride() and got.is_contiguous() == want.is_contiguous()
    np.testing.assert_array_equal(got.numpy(), want.numpy())
