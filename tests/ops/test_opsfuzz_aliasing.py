"""Results that must be new tensors (never the input itself), and exact zero gradients of the
piecewise-constant ops, against torch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import downslope as ds


def _writes_reach_input(mod, make, op) -> bool:
    x = make(mod)
    before = x.clone()
    y = op(mod, x)
    y.fill_(True if x.dtype == mod.bool else 7)
    return not mod.equal(x, before)


def _int64(m):
    return m.tensor([1, 0, 1])


@pytest.mark.parametrize("dtype", ["int64", "uint8", "bool"])
@pytest.mark.parametrize("method", [False, True])
def test_nan_to_num_of_integers_is_a_copy(dtype, method):
    def make(m):
        return m.tensor(np.array([1, 0, 1]).astype(bool if dtype == "bool" else dtype), dtype=getattr(m, dtype))

    def op(m, x):
        return x.nan_to_num(nan=0.0) if method else m.nan_to_num(x)

    assert _writes_reach_input(torch, make, op) is False
    assert _writes_reach_input(ds, make, op) is False


CASES = {
    "cumsum_0d_int64": (lambda m: m.tensor(-9), lambda m, x: m.cumsum(x, 0)),
    "cumprod_0d_int64": (lambda m: m.tensor(-9), lambda m, x: m.cumprod(x, 0)),
    "prod_0d_int64": (lambda m: m.tensor(-9), lambda m, x: m.prod(x, 0)),
    "tile_0d": (lambda m: m.tensor(3.0), lambda m, x: m.tile(x, ())),
    "repeat_0d": (lambda m: m.tensor(3.0), lambda m, x: x.repeat(())),
    "matrix_power_1": (lambda m: m.tensor([[1.0, 2.0], [3.0, 4.0]]), lambda m, x: m.linalg.matrix_power(x, 1)),
    "matrix_power_1_top": (lambda m: m.tensor([[1.0, 2.0], [3.0, 4.0]]), lambda m, x: m.matrix_power(x, 1)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_op_returns_a_new_tensor(name):
    make, op = CASES[name]
    assert _writes_reach_input(torch, make, op) is False
    assert _writes_reach_input(ds, make, op) is False


def test_matrix_power_1_keeps_the_gradient():
    a = ds.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    ds.linalg.matrix_power(a, 1).sum().backward()
    assert a.grad.tolist() == [[1.0, 1.0], [1.0, 1.0]]


@pytest.mark.parametrize("name", ["sign", "floor", "ceil", "round", "trunc"])
def test_stepwise_gradients_are_exact_zeros_whatever_the_upstream(name):
    grads = []
    for m in (torch, ds):
        x = m.tensor([1.5, -2.5], requires_grad=True)
        (getattr(m, name)(x) * m.tensor([float("inf"), 1.0])).sum().backward()
        grads.append(x.grad.tolist())
    assert grads[0] == grads[1] == [0.0, 0.0]


def test_angle_of_a_real_tensor_has_exact_zero_gradients():
    grads = []
    for m in (torch, ds):
        x = m.tensor([1.5, -2.5], requires_grad=True)
        m.angle(x).backward(m.tensor([float("nan"), float("inf")]))
        grads.append(x.grad.tolist())
    assert grads[0] == grads[1] == [0.0, 0.0]


def test_std_of_one_sign_has_a_zero_gradient():
    x = ds.tensor([0.7], requires_grad=True)
    with pytest.warns(UserWarning):
        ds.std(ds.sign(x), correction=1).backward()
    assert x.grad.tolist() == [0.0]


def test_stepwise_zero_gradient_under_create_graph():
    x = ds.tensor([1.5, -2.0], requires_grad=True)
    (g,) = ds.autograd.grad((ds.floor(x) * x).sum(), x, create_graph=True)
    assert g.tolist() == [1.0, -2.0]
    (h,) = ds.autograd.grad(g.sum(), x)
    assert h.tolist() == [0.0, 0.0]


@pytest.mark.parametrize(
    ("xd", "t1d", "t2d", "xshape"),
    [
        ("complex64", "uint8", "uint8", (2,)),
        ("complex64", "float64", "uint8", (2,)),
        ("float32", "complex128", "uint8", (2,)),
        ("complex64", "uint8", "uint8", ()),
    ],
)
def test_addcmul_promotes_before_multiplying(xd, t1d, t2d, xshape):
    out = []
    for m in (torch, ds):
        x = m.ones(xshape, dtype=getattr(m, xd))
        t1 = m.tensor([16, 200]).to(getattr(m, t1d))
        t2 = m.tensor([16, 200]).to(getattr(m, t2d))
        r = m.addcmul(x, t1, t2, value=2)
        out.append((str(r.dtype).split(".")[-1], r.tolist()))
    assert out[0] == out[1]
