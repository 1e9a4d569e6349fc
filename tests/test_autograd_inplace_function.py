"""``torch.autograd.function.InplaceFunction``: Function under its legacy name, as torch's."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")


def _cube(lib: Any) -> Any:
    module = ds.autograd.function if lib is ds else torch.autograd.function

    class Cube(module.InplaceFunction):  # type: ignore[misc,name-defined]
        @staticmethod
        def forward(ctx: Any, x: Any) -> Any:
            ctx.save_for_backward(x)
            return x**3

        @staticmethod
        def backward(ctx: Any, g: Any) -> Any:
            (x,) = ctx.saved_tensors
            return g * 3 * x**2

    return Cube


def test_inplace_function_is_a_function_as_torchs() -> None:
    from downslope.autograd.function import Function, InplaceFunction

    assert issubclass(InplaceFunction, Function)
    grads = []
    for lib in (ds, torch):
        x = lib.tensor([1.0, -2.0], dtype=lib.float64, requires_grad=True)
        _cube(lib).apply(x).sum().backward()
        grads.append(x.grad.numpy())
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-14)
