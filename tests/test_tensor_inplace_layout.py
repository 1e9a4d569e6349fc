"""squeeze_/unsqueeze_/t_/transpose_/swapdims_ on tensors in the graph: recorded as torch records them
(gradients, double backward, views taken before the change, writes after it), refused on a leaf."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")


def _program(lib, k):  # type: ignore[no-untyped-def]
    w = lib.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=lib.float64, requires_grad=True)
    c = lib.tensor([[1.0, -2.0], [0.5, 3.0]], dtype=lib.float64)
    v = w * w
    if k == "t_":
        v.t_()
        loss = (v * c).sum()
    elif k == "unsqueeze_transpose_":
        v.unsqueeze_(0)
        v.transpose_(0, 2)
        loss = (v.squeeze(1) * c * w).sum()
    elif k == "squeeze_chain":
        v.unsqueeze_(-1)
        v.squeeze_()
        v.swapdims_(0, 1)
        loss = (v.exp() * c).sum()
    elif k == "write_after":  # an in-place write after the layout change, a consumer recorded before
        y = v * 2
        v.t_()
        v.mul_(c)
        loss = (v**2).sum() + y.sum()
    elif k == "views_before":  # views taken before index the old layout
        a, b = v[0], v[:, 1:]
        v.t_()
        loss = (v * c).sum() + (a**2).sum() + (b * b).sum()
    elif k == "views_before_write_after":
        a, b = v[0], v[:, 1:]
        v.t_()
        v.unsqueeze_(0)
        v.mul_(3)
        v.squeeze_(0)
        v[0, 1] = 0
        loss = (v * c).sum() + (a**2).sum() + (b * b).sum()
    else:
        raise AssertionError(k)
    (g,) = lib.autograd.grad(loss, w, create_graph=True)
    (gg,) = lib.autograd.grad((g**2).sum(), w)
    return tuple(v.shape), g.detach().numpy(), gg.numpy()


CASES = ["t_", "unsqueeze_transpose_", "squeeze_chain", "write_after", "views_before", "views_before_write_after"]


@pytest.mark.parametrize("k", CASES)
def test_layout_in_place_ops_on_a_non_leaf_match_torch(k: str) -> None:
    shape, g, gg = _program(ds, k)
    t_shape, t_g, t_gg = _program(torch, k)
    assert shape == t_shape
    np.testing.assert_allclose(g, t_g, rtol=1e-12)
    np.testing.assert_allclose(gg, t_gg, rtol=1e-12)


def test_squeeze_in_place_on_a_critic_output_as_torch() -> None:
    grads = []
    for lib in (ds, torch):
        w = lib.tensor([[1.0], [2.0]], requires_grad=True)
        v = w * 3
        v.squeeze_(-1)
        (v**2).sum().backward()
        grads.append((tuple(v.shape), w.grad.numpy().tolist()))
    assert grads[0] == grads[1]


def test_an_op_that_saved_the_values_refuses_after_a_layout_change_as_torch() -> None:
    for lib, error in ((ds, ds.errors.StateError), (torch, RuntimeError)):
        w = lib.tensor([[1.0], [2.0]], requires_grad=True)
        v = w * 3
        y = v**2  # saves v
        v.squeeze_(-1)
        with pytest.raises(error, match="modified by an inplace operation"):
            y.sum().backward()


@pytest.mark.parametrize("op,args", [("squeeze_", ()), ("unsqueeze_", (0,)), ("t_", ()), ("transpose_", (0, 1))])
def test_layout_in_place_ops_on_a_leaf_that_requires_grad_are_refused_as_torch(op: str, args: tuple) -> None:
    with pytest.raises(RuntimeError, match="a leaf Variable that requires grad is being used in an in-place"):
        getattr(torch.ones(1, 2, requires_grad=True), op)(*args)
    with pytest.raises(ds.errors.StateError, match=f"{op}: a leaf Variable that requires grad is being used"):
        getattr(ds.ones(1, 2, requires_grad=True), op)(*args)
    w = ds.ones(1, 2, requires_grad=True)
    with ds.no_grad():  # allowed there, as torch
        getattr(w, op)(*args)
    assert w.requires_grad


def test_layout_in_place_op_on_a_view_in_the_graph_is_refused_clearly() -> None:
    u = (ds.ones(2, 2, requires_grad=True) * 2)[0:1]
    with pytest.raises(ds.errors.StateError, match="squeeze_: not supported on a view .* x.squeeze"):
        u.squeeze_(0)
