"""float16 tensors with a number, against torch: torch computes in float32 (its "opmath" type) and
rounds once; its add/sub kernel reads the number at its float16 value, its division kernels at its
own value."""

import warnings

import numpy as np
import pytest
import torch

import downslope as ds

# edge values: float16's largest, subnormals, values whose sums round differently in one step or two
VALUES = np.array(
    [1.0, 3.0, 1000.0, 65504.0, -65504.0, 6e-8, 1e-4, 0.1, 2049.0, 2048.0, 300.0, -7.5, 0.0], dtype=np.float16
)

CASES = {
    "h - 0.1": lambda m, h: h - 0.1,
    "h + (-0.1)": lambda m, h: h + (-0.1),
    "h.sub(0.1)": lambda m, h: h.sub(0.1),
    "h.sub(0.1, alpha=3)": lambda m, h: h.sub(0.1, alpha=3),
    "h.add(0.1, alpha=0.3)": lambda m, h: h.add(0.1, alpha=0.3),
    "h + 2049": lambda m, h: h + 2049,
    "h - 1e5": lambda m, h: h - 1e5,
    "h - float64 0-d": lambda m, h: h - m.tensor(0.1, dtype=m.float64),
    "h + int64 0-d": lambda m, h: h + m.tensor(2049),
    "0.1 - h": lambda m, h: 0.1 - h,
    "0.1 / h": lambda m, h: 0.1 / h,
    "h // 0.1": lambda m, h: h // 0.1,
    "floor_divide(h, 3.3)": lambda m, h: m.floor_divide(h, 3.3),
    "div(h, 1e-5, floor)": lambda m, h: m.div(h, 1e-5, rounding_mode="floor"),
    "floor_divide(h, float64 0-d)": lambda m, h: m.floor_divide(h, m.tensor(0.1, dtype=m.float64)),
    "h // 7e4": lambda m, h: h // 7e4,
    # in place: the same kernels, written back into the float16 tensor
    "h.sub_(0.1, alpha=3)": lambda m, h: h.clone().sub_(0.1, alpha=3),
    "h.sub_(float64 0-d)": lambda m, h: h.clone().sub_(m.tensor(0.1, dtype=m.float64)),
    "h.add_(2049)": lambda m, h: h.clone().add_(2049),
    "h.mul_(1e-5)": lambda m, h: h.clone().mul_(1e-5),
    "h.div_(1e5)": lambda m, h: h.clone().div_(1e5),
    "h.abs().pow(-0.5)": lambda m, h: h.abs().pow(-0.5),
}


@pytest.mark.parametrize("name", list(CASES))
def test_half_with_number_as_torch(name):
    f = CASES[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = f(torch, torch.tensor(VALUES)).numpy()
        got = f(ds, ds.tensor(VALUES)).numpy()
    assert got.dtype == expected.dtype
    np.testing.assert_array_equal(got, expected)


def test_half_sub_number_gradient_as_torch():
    x = torch.tensor(VALUES, requires_grad=True)
    y = ds.tensor(VALUES, requires_grad=True)
    (x.sub(0.1, alpha=3) * 2).sum().backward()
    (y.sub(0.1, alpha=3) * 2).sum().backward()
    assert y.grad.dtype == ds.float16
    np.testing.assert_array_equal(y.grad.numpy(), x.grad.numpy())


def test_half_inplace_recorded_sub_alpha_as_torch():
    # recorded in place (a non-leaf in the graph): values and gradient as torch's
    results = []
    for m in (torch, ds):
        x = m.tensor(VALUES, requires_grad=True)
        y = x * 1
        y.sub_(0.1, alpha=3)
        y.sum().backward()
        results.append((y.detach().numpy(), x.grad.numpy()))
    for got, expected in zip(results[1], results[0]):
        np.testing.assert_array_equal(got, expected)


def test_half_tanh_backward_as_torch():
    # torch's tanh_backward: g * (1 - y * y) in float32, rounded once
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(200) * 3).astype(np.float16)
    g = (rng.standard_normal(200) * 3).astype(np.float16)
    grads = []
    for m in (torch, ds):
        t = m.tensor(x, requires_grad=True)
        m.tanh(t).backward(m.tensor(g))
        grads.append(t.grad.numpy())
    assert grads[1].dtype == np.float16
    np.testing.assert_array_equal(grads[1], grads[0])
