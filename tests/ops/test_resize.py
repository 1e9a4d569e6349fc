"""Tensor.resize_ / resize_as_ (and ds.resize_as_) against torch where a tensor that owns one array
can do them: pre-1.0 code's ``y = x.data.new(); y.resize_as_(x); y.fill_(1)``, a reshape of the same
number of elements, growing and shrinking a tensor nothing else shares; refused, with the reason,
for tensors that require grad and tensors whose memory another tensor sees."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")


def test_new_then_resize_as_then_fill_as_open_reid():
    out = {}
    for lib in (torch, ds):
        dist_an = lib.tensor([0.5, 1.5, 2.0, 3.0])
        y = dist_an.data.new()
        y.resize_as_(dist_an.data)
        out[lib] = y.fill_(1)
    assert tuple(out[ds].shape) == tuple(out[torch].shape)
    np.testing.assert_array_equal(out[ds].numpy(), out[torch].numpy())
    assert out[ds].dtype == ds.float32


@pytest.mark.parametrize("start, sizes", [(6, (2, 3)), (6, (3, 2, 1)), (6, ((6,),)), (4, (6,)), (6, (2,)), (0, (2, 2))])
def test_kept_elements_match_torch(start, sizes):
    t = torch.arange(float(start))
    d = ds.arange(float(start))
    before = d._version
    assert t.resize_(*sizes) is t and d.resize_(*sizes) is d
    assert tuple(d.shape) == tuple(t.shape)
    kept = min(start, t.numel())  # torch's added memory is uninitialized: compare what it keeps
    np.testing.assert_array_equal(d.numpy().reshape(-1)[:kept], t.numpy().reshape(-1)[:kept])
    assert d._version - before == t._version  # an in-place write, as torch counts it (none to its own shape)


def test_same_count_reshape_keeps_sharing_memory():
    base = ds.arange(6.0)
    alias = base.detach()
    alias.resize_(2, 3)
    alias[0, 0] = 10.0
    assert float(base[0]) == 10.0


def test_top_level_resize_as_():
    y = ds.resize_as_(ds.tensor([]), ds.ones(2, 3))
    assert tuple(y.shape) == (2, 3)


def test_a_tensor_that_requires_grad_is_refused_as_in_torch():
    w = ds.ones(3, requires_grad=True)
    with pytest.raises(ds.errors.StateError, match="requires grad"):
        w.resize_(4)
    with pytest.raises(RuntimeError, match="require grad"):
        torch.ones(3, requires_grad=True).resize_(4)


@pytest.mark.host_only  # a view's place in its base's memory is read from host arrays
def test_a_shared_array_cannot_grow_past_its_memory():
    base = ds.arange(6.0)
    alias = base.detach()  # shares base's memory, which would not grow with it
    with pytest.raises(RuntimeError, match="Trying to resize storage that is not resizable") as info:
        alias.resize_(8)
    assert "(6,) to (8,)" in str(info.value)
    assert tuple(alias.shape) == (6,)
    view = base[1:4]
    view.resize_(5)  # fits in base's memory from its place: torch's layout there
    assert view.tolist() == [1.0, 2.0, 3.0, 4.0, 5.0]
    with pytest.raises(RuntimeError, match="Trying to resize storage that is not resizable"):
        view.resize_(6)


@pytest.mark.host_only  # as above
def test_a_non_contiguous_view_takes_the_storage_order_as_torch():
    t = ds.arange(6.0).reshape(2, 3).t()
    t.resize_(3, 2, 1)
    assert t.flatten().tolist() == torch.arange(6.0).reshape(2, 3).t().resize_(3, 2, 1).flatten().tolist()


def test_bad_sizes_say_what_was_expected():
    with pytest.raises(TypeError, match="non-negative ints"):
        ds.ones(2).resize_(-1)
    with pytest.raises(TypeError, match="expected a Tensor"):
        ds.ones(2).resize_as_((2, 2))
