"""softshrink, hardshrink, threshold and hardsigmoid at NaN, inf and the band edges, against torch."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")

VALUES = [float("nan"), 2.0, 0.3, -0.3, -2.0, 0.5, -0.5, float("inf"), -float("inf"), 0.0, -0.0]

FUNCS: dict[str, Callable[[Any, Any], Any]] = {
    "softshrink": lambda L, x: L.nn.functional.softshrink(x, 0.5),
    "hardshrink": lambda L, x: L.nn.functional.hardshrink(x, 0.5),
    "tensor.hardshrink": lambda L, x: x.hardshrink(0.5),
    "top.hardshrink": lambda L, x: L.hardshrink(x, 0.5),
    "threshold": lambda L, x: L.nn.functional.threshold(x, 0.5, -2.0),
    "nn.Threshold": lambda L, x: L.nn.Threshold(0.1, 20.0)(x),
}


@pytest.mark.parametrize("name", list(FUNCS))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_values_signs_and_gradients_match_torch(name: str, dtype: str) -> None:
    f = FUNCS[name]
    outs, grads = [], []
    for L in (ds, torch):
        x = L.tensor(VALUES, dtype=getattr(L, dtype), requires_grad=True)
        y = f(L, x)
        y.backward(L.arange(1.0, len(VALUES) + 1, dtype=getattr(L, dtype)))
        outs.append(np.asarray(y.detach().tolist()))
        grads.append(np.asarray(x.grad.tolist()))
        assert str(y.dtype).endswith(dtype)
    np.testing.assert_array_equal(outs[0], outs[1])
    if dtype == "float32":  # the sign of torch's zeros, as its gradient at NaN, depends on its kernel
        np.testing.assert_array_equal(np.signbit(outs[0]), np.signbit(outs[1]))
    # at NaN torch's own answer depends on its kernel (its float32 shrink passes the gradient, its
    # float64 vector loop blocks it): downslope always passes it, as torch's scalar rule does
    finite = ~np.isnan(VALUES)
    np.testing.assert_array_equal(grads[0][finite], grads[1][finite])
    assert grads[0][0] == 1.0
    if dtype == "float32":
        np.testing.assert_array_equal(grads[0], grads[1])


def test_hardsigmoid_keeps_float16() -> None:
    x = ds.tensor([-4.0, -1.0, 0.0, 2.0, 5.0], dtype=ds.float16)
    y = ds.nn.functional.hardsigmoid(x)
    assert y.dtype == ds.float16
    t = torch.nn.functional.hardsigmoid(torch.tensor(x.tolist(), dtype=torch.float16))
    np.testing.assert_array_equal(np.asarray(y.tolist()), np.asarray(t.tolist()))


def test_threshold_integers_keep_dtype() -> None:
    y = ds.nn.functional.threshold(ds.tensor([1, 5, 3]), 2, -1)
    t = torch.nn.functional.threshold(torch.tensor([1, 5, 3]), 2, -1)
    assert y.dtype == ds.int64 and y.tolist() == t.tolist()


def test_softshrink_refuses_negative_lambda() -> None:
    with pytest.raises(ValueError, match="lambda"):
        ds.nn.functional.softshrink(ds.ones(2), -1.0)


def test_second_order_through_shrink() -> None:
    x = ds.tensor([-2.0, 0.1, 3.0], dtype=ds.float64, requires_grad=True)
    (g,) = ds.autograd.grad((ds.nn.functional.softshrink(x, 0.5) ** 2).sum(), x, create_graph=True)
    g.sum().backward()
    tx = torch.tensor([-2.0, 0.1, 3.0], dtype=torch.float64, requires_grad=True)
    (tg,) = torch.autograd.grad((torch.nn.functional.softshrink(tx, 0.5) ** 2).sum(), tx, create_graph=True)
    tg.sum().backward()
    np.testing.assert_allclose(g.tolist(), tg.tolist())
    np.testing.assert_allclose(x.grad.tolist(), tx.grad.tolist())
