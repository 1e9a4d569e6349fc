"""``Tensor.shape`` is a ``downslope.Size``, as torch's ``tensor.shape`` is a ``torch.Size``: the same
value as ``size()``, through views, in-place resizes and parameters, and accepted back wherever a
shape is (factories, views, expand...), checked against torch 2.13 on the CPU."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")


def _shape_of(t: Any) -> tuple[str, tuple[int, ...]]:
    shape = t.shape
    return ("Size" if type(shape).__name__ == "Size" else type(shape).__name__, tuple(shape))


def test_shape_is_a_size_as_torch() -> None:
    x, xt = ds.zeros(2, 3), torch.zeros(2, 3)
    assert isinstance(x.shape, ds.Size) and isinstance(xt.shape, torch.Size)
    assert x.shape == x.size() == (2, 3) and x.shape.numel() == xt.shape.numel() == 6
    assert repr(x.shape) == repr(xt.shape).replace("torch.", "downslope.")
    assert f"{x.shape}" == f"{xt.shape}".replace("torch.", "downslope.")
    assert type(x.shape[1:]) is ds.Size and type(x.shape + (1,)) is ds.Size and type(x.shape[0]) is int
    assert type(ds.tensor(1.0).shape) is ds.Size and ds.tensor(1.0).shape == ()


def test_parameter_and_grad_shapes_are_sizes() -> None:
    p = ds.nn.Parameter(ds.zeros(4, 2))
    (p * 2).sum().backward()
    assert type(p.shape) is ds.Size and type(p.grad.shape) is ds.Size
    layer = ds.nn.Linear(3, 2)
    assert sum(q.shape.numel() for q in layer.parameters()) == sum(
        q.shape.numel() for q in torch.nn.Linear(3, 2).parameters()
    )


def test_shape_follows_in_place_changes_and_views() -> None:
    x = ds.zeros(2, 3)
    v = x.view(3, 2)
    assert v.shape == (3, 2) and x.shape == (2, 3)
    x.unsqueeze_(0)
    assert x.shape == (1, 2, 3) and type(x.shape) is ds.Size
    x.resize_(6)
    assert x.shape == (6,)
    x.data = ds.zeros(7)
    assert x.shape == (7,)
    y = ds.arange(6.0).as_strided((2, 2), (1, 2))
    assert type(y.shape) is ds.Size and y.shape == (2, 2)


def test_a_shape_stays_data_for_tensor_and_a_shape_for_legacy_constructors() -> None:
    x, xt = ds.zeros(2, 3), torch.zeros(2, 3)
    assert ds.tensor(x.shape).tolist() == torch.tensor(xt.shape).tolist()
    assert ds.FloatTensor(x.shape).shape == torch.FloatTensor(xt.shape).shape
    assert np.zeros(x.shape).shape == (2, 3) and np.asarray(x.shape).tolist() == [2, 3]


CONSUMERS: dict[str, Callable[[Any, Any], Any]] = {
    "zeros(s)": lambda L, s: L.zeros(s),
    "zeros(*s)": lambda L, s: L.zeros(*s),
    "zeros(size=s)": lambda L, s: L.zeros(size=s),
    "ones(s)": lambda L, s: L.ones(s),
    "empty(s)": lambda L, s: L.empty(s),
    "empty(*s)": lambda L, s: L.empty(*s),
    "full(s)": lambda L, s: L.full(s, 2.0),
    "randn(s)": lambda L, s: L.randn(s),
    "randn(*s)": lambda L, s: L.randn(*s),
    "rand(s)": lambda L, s: L.rand(s),
    "randint(size=s)": lambda L, s: L.randint(0, 5, s),
    "normal(size=s)": lambda L, s: L.normal(0.0, 1.0, size=s),
    "reshape(s)": lambda L, s: L.arange(6.0).reshape(s),
    "reshape(*s)": lambda L, s: L.arange(6.0).reshape(*s),
    "view(s)": lambda L, s: L.arange(6.0).view(s),
    "view(*s)": lambda L, s: L.arange(6.0).view(*s),
    "view(-1 sized)": lambda L, s: L.arange(6.0).view(L.Size([-1, s[1]])),
    "expand(s)": lambda L, s: L.ones(1, 3).expand(s),
    "expand(*s)": lambda L, s: L.ones(1, 3).expand(*s),
    "broadcast_to(s)": lambda L, s: L.broadcast_to(L.ones(3), s),
    "new_zeros(s)": lambda L, s: L.ones(1).new_zeros(s),
    "new_ones(s)": lambda L, s: L.ones(1).new_ones(s),
    "new_empty(s)": lambda L, s: L.ones(1).new_empty(s),
    "new_full(s)": lambda L, s: L.ones(1).new_full(s, 3.0),
    "repeat(s)": lambda L, s: L.ones(1, 1).repeat(s),
    "tile(s)": lambda L, s: L.ones(1, 1).tile(s),
    "unflatten(s)": lambda L, s: L.ones(6).unflatten(0, s),
    "resize_(s)": lambda L, s: L.ones(6).resize_(s),
    "empty_strided(s)": lambda L, s: L.empty_strided(s, (3, 1)),
    "zeros(shape[1:])": lambda L, s: L.zeros(L.zeros(s).shape[1:]),
    "zeros(shape + (1,))": lambda L, s: L.zeros(L.zeros(s).shape + (1,)),
    "LayerNorm(shape[1:])": lambda L, s: L.nn.LayerNorm(L.zeros(s).shape[1:])(L.ones(s)),
    "interpolate(size=)": lambda L, s: L.nn.functional.interpolate(L.ones(1, 1, 1, 1), size=s),
    "Tensor(s)": lambda L, s: L.Tensor(s),
    "BoolTensor(s)": lambda L, s: L.BoolTensor(s),
}


@pytest.mark.parametrize("name", list(CONSUMERS))
def test_a_size_is_taken_wherever_a_shape_is_as_torch(name: str) -> None:
    make = CONSUMERS[name]
    ours, theirs = make(ds, ds.Size([2, 3])), make(torch, torch.Size([2, 3]))
    assert _shape_of(ours) == _shape_of(theirs)
    # and the tensor's own shape, handed back, makes the same
    again = make(ds, ds.zeros(2, 3).shape)
    assert _shape_of(again) == _shape_of(theirs)


def test_shape_arithmetic_used_by_ported_code() -> None:
    x, xt = ds.zeros(4, 3, 2), torch.zeros(4, 3, 2)
    for op in (
        lambda t: t.shape[:-1] + (5,),
        lambda t: (1,) + t.shape[1:],
        lambda t: t.shape[::-1],
        lambda t: t.shape * 2,
    ):
        assert _shape_of(type("T", (), {"shape": op(x)})) == _shape_of(type("T", (), {"shape": op(xt)}))
    batch, *rest = x.shape
    assert (batch, rest) == (4, [3, 2])
    assert {x.shape: 1}[(4, 3, 2)] == 1 and x.shape == xt.shape and x.shape != (4, 3)
    assert int(np.prod(x.shape)) == x.shape.numel() == xt.numel()
