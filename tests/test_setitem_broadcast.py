"""``t[index] = value`` broadcasts the value as torch does: its leading size-1 dims are dropped before
it is broadcast to the indexed shape (a value of shape (1, 1) into one element, or under a boolean
mask), with and without gradients, compared with torch."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import downslope as ds
from downslope.errors import ShapeError

_KINDS = ("int", "slice", "element", "mask", "mask_rows", "int_array", "view")


@st.composite
def _cases(draw: st.DrawFn) -> tuple:
    shape = tuple(draw(st.lists(st.integers(1, 4), min_size=1, max_size=3)))
    kind = draw(st.sampled_from(_KINDS))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    if kind == "int":
        index: object = int(rng.integers(-shape[0], shape[0]))
    elif kind == "slice":
        start = int(rng.integers(0, shape[0]))
        index = slice(start, None)
    elif kind == "element":
        index = tuple(int(rng.integers(0, n)) for n in shape)
    elif kind == "mask":
        index = rng.random(shape) < 0.5
    elif kind == "mask_rows":
        index = rng.random(shape[:1]) < 0.5
    elif kind == "int_array":  # distinct rows: which of two writes to one row wins is not defined
        index = rng.permutation(shape[0])[: int(rng.integers(1, shape[0] + 1))]
    else:  # an assignment into a view of the target
        index = None
    if kind == "view":  # (t[:, 0] or t)[0] = v
        target = (shape[:1] + shape[2:] if len(shape) > 1 else shape)[1:]
    else:
        target = np.zeros(shape)[index].shape
    # a value torch accepts: a suffix of the indexed shape, some dims 1, and extra leading 1s
    keep = draw(st.integers(0, len(target)))
    suffix = [1 if draw(st.booleans()) else n for n in target[len(target) - keep :]]
    value_shape = (1,) * draw(st.integers(0, 2)) + tuple(suffix)
    return shape, kind, index, value_shape, draw(st.booleans()), draw(st.booleans()), rng.standard_normal(value_shape)


def _run(lib: object, shape: tuple, kind: str, index: object, value: np.ndarray, grad_x: bool, grad_v: bool) -> list:
    L: object = lib
    base = np.arange(float(np.prod(shape))).reshape(shape)
    x = L.tensor(base, dtype=L.float64, requires_grad=grad_x)
    v = L.tensor(value, dtype=L.float64, requires_grad=grad_v)
    t = x * 1 if grad_x else x.clone()
    idx = L.tensor(index) if isinstance(index, np.ndarray) else index
    if kind == "view":
        (t[:, 0] if len(shape) > 1 else t)[0] = v
    else:
        t[idx] = v
    out = [t.detach().numpy().copy()]
    if grad_x or grad_v:
        weights = L.tensor(np.cos(base) + 2.0, dtype=L.float64)
        (t * weights).sum().backward()
        out += [a.grad.numpy().copy() if a.grad is not None else None for a in (x, v)]
    return out


@settings(max_examples=150, deadline=None)
@given(_cases())
def test_assignment_broadcasts_as_torch(case: tuple) -> None:
    shape, kind, index, _, grad_x, grad_v, value = case
    got = _run(ds, shape, kind, index, value, grad_x, grad_v)
    want = _run(torch, shape, kind, index, value, grad_x, grad_v)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert (g is None) == (w is None)
        if g is not None:
            np.testing.assert_allclose(g, w, rtol=1e-12, atol=0)


@pytest.mark.parametrize(
    ("shape", "index", "value_shape"),
    [((5,), 2, (1, 1)), ((2, 3), (1, 1), (1, 1, 1)), ((2, 2), (0, 1), (1,)), ((2, 3), 0, (1, 3))],
)
@pytest.mark.parametrize("grad", [False, True])
def test_one_element_takes_a_value_of_leading_ones(shape: tuple, index: object, value_shape: tuple, grad: bool) -> None:
    """d2l's ``preds[i] = net(x.reshape((1, -1)))``: a (1, 1) value into one element."""
    value = np.full(value_shape, 7.0)
    assert all(
        np.array_equal(g, w)
        for g, w in zip(
            _run(ds, shape, "x", index, value, grad, grad), _run(torch, shape, "x", index, value, grad, grad)
        )
    )


@pytest.mark.parametrize("grad", [False, True])
def test_mask_takes_a_value_of_shape_1x1(grad: bool) -> None:
    mask = np.arange(6).reshape(2, 3) > 3
    value = np.full((1, 1), 7.0)
    got, want = _run(ds, (2, 3), "mask", mask, value, grad, grad), _run(torch, (2, 3), "mask", mask, value, grad, grad)
    assert all(np.array_equal(g, w) for g, w in zip(got, want))


@pytest.mark.parametrize(
    ("shape", "index", "value_shape"),
    [((5,), 2, (2,)), ((2, 3), 0, (2, 3)), ((2, 3), np.array([[True, False, True], [False, True, False]]), (2, 2)),
     ((4, 3), slice(0, 2), (3, 3)), ((4, 3), np.array([0, 2]), (3, 3))],
)  # fmt: skip
@pytest.mark.parametrize("grad", [False, True])
def test_a_value_that_does_not_fit_raises_a_shape_error_naming_both_shapes(
    shape: tuple, index: object, value_shape: tuple, grad: bool
) -> None:
    with pytest.raises(RuntimeError):  # torch refuses it too
        _run(torch, shape, "x", index, np.ones(value_shape), grad, grad)
    with pytest.raises(ShapeError, match=rf"(?s){re.escape(str(value_shape))}.*{re.escape(str(shape))}"):
        _run(ds, shape, "x", index, np.ones(value_shape), grad, grad)
