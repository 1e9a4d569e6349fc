"""The error for differentiating a tensor with no graph names the call made, and, when the tensor is a
gradient an earlier autograd.grad computed without create_graph=True, says so (the PINN mistake)."""

from __future__ import annotations

import pytest

import downslope as ds
from downslope.errors import StateError

torch = pytest.importorskip("torch")


def test_second_derivative_of_a_plain_gradient_names_the_missing_create_graph() -> None:
    for lib, error in ((torch, RuntimeError), (ds, StateError)):
        x = lib.linspace(0, 1, 5).reshape(-1, 1).requires_grad_(True)
        u = lib.sin(x) * x
        (ux,) = lib.autograd.grad(u, x, lib.ones_like(u))  # create_graph=True forgotten
        assert not ux.requires_grad
        with pytest.raises(error, match="does not require grad") as info:
            lib.autograd.grad(ux, x, lib.ones_like(ux))
    message = str(info.value)
    assert message.startswith("autograd.grad(): output 0")
    assert "earlier autograd.grad() call computed without create_graph=True" in message
    u = ds.sin(x) * x
    (good,) = ds.autograd.grad(u, x, ds.ones_like(u), create_graph=True)
    ds.autograd.grad(good, x, ds.ones_like(good))  # the fix the message names works


def test_a_tensor_without_graph_is_named_by_the_call_made() -> None:
    y = ds.tensor([1.0, 2.0]) * 2
    with pytest.raises(StateError, match=r"^backward\(\): this tensor does not require grad.*requires_grad=True"):
        y.sum().backward()
    w = ds.tensor(1.0, requires_grad=True)
    with pytest.raises(StateError, match=r"^autograd.grad\(\): output 1 does not require grad.*element 1"):
        ds.autograd.grad([w * 2, y.sum()], [w])
    with pytest.raises(RuntimeError, match="element 1 of tensors does not require grad"):
        tw = torch.tensor(1.0, requires_grad=True)
        torch.autograd.grad([tw * 2, torch.tensor([1.0, 2.0]).sum()], [tw])
