"""What backward hooks may return: errors of PyTorch's class that name the hook and what it returned."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")

X = np.array([[1.0, -2.0]], dtype=np.float32)  # one row: a bare (1, 2) tensor has one "entry"


def _backward(lib: Any, register: Any) -> None:
    lin = lib.nn.Linear(2, 2)
    register(lin)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lin(lib.tensor(X, requires_grad=True)).sum().backward()


def times_three(module: Any, grad_input: Any, grad_output: Any) -> Any:
    return grad_input[0] * 3  # a bare tensor, not a tuple of gradients


def test_a_backward_hook_returning_a_bare_tensor_raises_runtime_error_naming_it() -> None:
    with pytest.raises(RuntimeError, match="changed the size"):
        _backward(torch, lambda m: m.register_full_backward_hook(times_three))
    with pytest.raises(RuntimeError) as info:
        _backward(ds, lambda m: m.register_full_backward_hook(times_three))
    message = str(info.value)
    assert "'times_three'" in message and "Linear" in message and "returned a Tensor of shape (1, 2)" in message
    assert "_HookIdentity" not in message


def test_a_backward_pre_hook_returning_a_bare_tensor_raises_runtime_error() -> None:
    def doubled(module: Any, grad_output: Any) -> Any:
        return grad_output[0] * 2

    for lib in (torch, ds):
        with pytest.raises(RuntimeError):
            _backward(lib, lambda m: m.register_full_backward_pre_hook(doubled))


def test_a_hook_changing_a_gradient_shape_raises_runtime_error_as_torch() -> None:
    def wrong_shape(lib: Any) -> Any:
        def hook(module: Any, grad_input: Any, grad_output: Any) -> Any:
            return (lib.ones(3),)

        return hook

    for lib in (torch, ds):
        with pytest.raises(RuntimeError, match="changed the size of value"):
            _backward(lib, lambda m, lib=lib: m.register_full_backward_hook(wrong_shape(lib)))


def test_a_hook_returning_a_list_is_taken_as_torch() -> None:
    grads = []
    for lib in (torch, ds):
        lin = lib.nn.Linear(2, 2)
        lin.register_full_backward_hook(lambda m, gi, go: [gi[0] * 2])
        x = lib.tensor(X, requires_grad=True)
        with lib.no_grad():
            lin.weight.copy_(lib.tensor([[1.0, 2.0], [3.0, 4.0]]))
        lin(x).sum().backward()
        grads.append(x.grad.numpy())
    np.testing.assert_allclose(grads[1], grads[0])
