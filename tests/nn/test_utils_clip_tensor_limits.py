"""Clipping limits given as one-element tensors (PyTorch accepts them: a schedule's or a config's
value), and the errors a bad limit gets."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds
from downslope.errors import ArgumentError, ArgumentTypeError

torch = pytest.importorskip("torch")

GRAD = [3.0, -4.0, 0.5]


def _param(L):
    p = L.nn.Parameter(L.ones(3, dtype=L.float64))
    p.grad = L.tensor(GRAD, dtype=L.float64)
    return p


@pytest.mark.parametrize("max_norm", [1.0, 0.25, 7.0])
@pytest.mark.parametrize("shape", [(), (1,)])
@pytest.mark.parametrize("norm_type", [2.0, float("inf"), 1.0])
def test_clip_grad_norm_takes_a_tensor_max_norm_as_torch(max_norm, shape, norm_type):
    results = []
    for L in (ds, torch):
        p = _param(L)
        limit = L.tensor(max_norm, dtype=L.float32).reshape(shape)
        total = L.nn.utils.clip_grad_norm_([p], limit, norm_type=L.tensor(norm_type))
        results.append((total.item(), p.grad.tolist()))
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-12)
    np.testing.assert_allclose(results[0][1], results[1][1], rtol=1e-6)  # the float32 limit's rounding


def test_clip_grads_with_norm_and_clip_grad_value_take_tensors_as_torch():
    results = []
    for L in (ds, torch):
        p, q = _param(L), _param(L)
        L.nn.utils.clip_grads_with_norm_([p], L.tensor(2.0), L.tensor(10.0))
        L.nn.utils.clip_grad_value_([q], L.tensor(1.5))
        results.append((p.grad.tolist(), q.grad.tolist()))
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-6)
    np.testing.assert_allclose(results[0][1], results[1][1], rtol=1e-12)


@pytest.mark.parametrize(
    ("value", "error", "message"),
    [
        (-1.0, ArgumentError, r"expected max_norm >= 0, got -1.0 \(it would flip or NaN the gradients\)"),
        (float("nan"), ArgumentError, r"expected max_norm >= 0, got nan"),
        ("1.0", ArgumentTypeError, r"expected max_norm to be a number or a one-element tensor, got a str"),
        (ds.tensor([1.0, 2.0]), ArgumentTypeError, r"expected max_norm to be .* got a Tensor of shape \(2,\)"),
        (ds.tensor(True), ArgumentTypeError, r"expected max_norm to be .* got a Tensor of shape \(\) and dtype bool"),
    ],
)
def test_bad_max_norm_says_what_is_wrong(value, error, message):
    p = _param(ds)
    with pytest.raises(error, match="clip_grad_norm_: " + message):
        ds.nn.utils.clip_grad_norm_([p], value)
    np.testing.assert_array_equal(p.grad.numpy(), GRAD)  # untouched


def test_bad_clip_value_says_what_is_wrong():
    p = _param(ds)
    with pytest.raises(ArgumentError, match=r"clip_grad_value_: expected clip_value >= 0, got -1.0"):
        ds.nn.utils.clip_grad_value_([p], ds.tensor(-1.0))
    with pytest.raises(ArgumentTypeError, match=r"clip_grad_value_: .* got a Tensor of shape \(2,\)"):
        ds.nn.utils.clip_grad_value_([p], ds.tensor([1.0, 2.0]))
