"""addcmul/addcdiv (and their in-place forms) of float16 tensors against torch: torch computes
``x + value * t1 * t2`` (or ``/ t2``) in float32 and rounds once, so ``h * h`` past 256 does not overflow."""

import warnings

import numpy as np
import pytest
import torch

import downslope as ds

VALUES = np.array([1.0, 3.0, 1000.0, 65504.0, -65504.0, 6e-8, 1e-4, 0.1, 2049.0, 300.0, -7.5], dtype=np.float16)
DIVISORS = np.array([1e-4, 3.0, 7e-3, 2.0, 0.5, 1.0, 1e-3, 6e-5, 0.1, 3e-3, -1.5], dtype=np.float16)

CASES = {
    "addcmul 1e-3": lambda m, x, a, b: m.addcmul(x, a, a, value=1e-3),
    "addcmul 0.1": lambda m, x, a, b: m.addcmul(x, a, b, value=0.1),
    "addcdiv 1e-3": lambda m, x, a, b: m.addcdiv(x, a, b, value=1e-3),
    "addcdiv 1": lambda m, x, a, b: m.addcdiv(x, a, b),
    "addcmul_": lambda m, x, a, b: x.clone().addcmul_(a, a, value=1e-3),
    "addcdiv_": lambda m, x, a, b: x.clone().addcdiv_(a, b, value=1e-3),
}


GRAD = np.linspace(-3.0, 3.0, VALUES.size).astype(np.float16)


def _run(m, name, grad):
    x, a, b = (m.tensor(v, requires_grad=grad) for v in (VALUES, VALUES[::-1].copy(), DIVISORS))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = CASES[name](m, x, a, b)
        if grad:
            out.backward(m.tensor(GRAD))
            return [None if t.grad is None else t.grad.numpy() for t in (x, a, b)]
    return [out.numpy()]


@pytest.mark.parametrize("name", list(CASES))
def test_addc_half_values_as_torch(name):
    for got, expected in zip(_run(ds, name, False), _run(torch, name, False)):
        assert got.dtype == expected.dtype
        np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("name", list(CASES))
def test_addc_half_gradients_as_torch(name):
    # torch's formulas, each step a float16 op (value / tensor2 with value read in float16)
    got, expected = _run(ds, name, True), _run(torch, name, True)
    assert [g is None for g in got] == [e is None for e in expected]
    for g, e in zip(got, expected):
        if e is not None:
            assert g.dtype == e.dtype
            np.testing.assert_array_equal(g, e)


@pytest.mark.parametrize("op", ["addcmul", "addcdiv"])
def test_addc_half_second_order_as_torch(op):
    # the rule recorded under create_graph (TensorRules) gives the same steps as torch's double backward
    results = []
    for m in (torch, ds):
        x, a, b = (m.tensor(np.array(v, dtype=np.float16), requires_grad=True) for v in ([1, 2], [3, 40], [0.5, 7]))
        ga, gb = m.autograd.grad(getattr(m, op)(x, a, b, value=0.1).sum(), (a, b), create_graph=True)
        (ga.sum() + gb.sum()).backward()
        results.append([t.detach().numpy() for t in (ga, gb, a.grad, b.grad)])
    for got, expected in zip(*results):
        np.testing.assert_array_equal(got, expected)
