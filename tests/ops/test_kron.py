"""kron as one recorded op (its own buffer, its own rule): values and both gradients against torch for
operands of equal and of different ndims, long and short last dims (both forward strategies),
float64 gradcheck and gradgradcheck, and the integer/complex/empty cases that keep the composite path."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds
from downslope import jit_gate

torch = pytest.importorskip("torch")

SHAPES = [
    ((32, 32), (32, 32)),  # the compiled kernel (1-d and 2-d, 4096 elements and more)
    ((64,), (100,)),
    ((70, 3), (2, 40)),
    ((2, 3, 4), (4, 2, 33)),  # 3-d: short rows, repeat and tile
    ((3,), (5,)),
    ((4, 3), (200,)),  # a long last dim of b: the broadcast multiply
    ((5,), (2, 3, 4)),
    ((2, 3, 2), (3, 1, 4)),
    ((1, 1, 3), (2, 5)),  # prod of a's leading dims below 4
    ((2, 2, 2), (2, 2, 130)),
]


def _kron_and_grads(lib, a, b, g):
    ta, tb = (lib.from_numpy(v.copy()).requires_grad_() for v in (a, b))
    y = lib.kron(ta, tb)
    y.backward(lib.from_numpy(g.copy()))
    return y.detach().numpy(), ta.grad.numpy(), tb.grad.numpy()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("sa, sb", SHAPES)
def test_kron_values_and_gradients_match_torch(sa, sb, dtype):
    rng = np.random.default_rng(1)
    a, b = (rng.standard_normal(s).astype(dtype) for s in (sa, sb))
    g = rng.standard_normal(tuple(torch.kron(torch.from_numpy(a), torch.from_numpy(b)).shape)).astype(dtype)
    ours, theirs = _kron_and_grads(ds, a, b, g), _kron_and_grads(torch, a, b, g)
    np.testing.assert_array_equal(ours[0], theirs[0])  # one product per element: exact
    # each gradient element is a sum of products that cancel: its rounding error scales with the
    # largest gradient, not with the element (the summation order differs with the SIMD width)
    unit = np.finfo(dtype).eps * 8
    for o, t in zip(ours[1:], theirs[1:]):
        np.testing.assert_allclose(o, t, rtol=unit, atol=unit * max(1.0, float(np.abs(t).max())))
        assert o.dtype == t.dtype and o.shape == t.shape


@pytest.mark.parametrize("sa, sb", [((2, 3), (3, 2)), ((3,), (2, 2)), ((2, 1, 2), (2, 3))])
def test_kron_passes_gradcheck_and_gradgradcheck_in_float64(sa, sb):
    rng = np.random.default_rng(4)
    a, b = (ds.from_numpy(rng.standard_normal(s)).requires_grad_() for s in (sa, sb))
    assert ds.autograd.gradcheck(ds.kron, (a, b))
    assert ds.autograd.gradgradcheck(ds.kron, (a, b))


def test_kron_of_a_transposed_view_and_with_one_operand_not_requiring_grad():
    rng = np.random.default_rng(2)
    a = rng.standard_normal((6, 5)).astype(np.float32)
    b = rng.standard_normal((4, 3)).astype(np.float32)
    ta = ds.from_numpy(a.copy()).requires_grad_()
    y = ds.kron(ta.T, ds.from_numpy(b))
    np.testing.assert_array_equal(y.detach().numpy(), np.kron(a.T, b))
    y.sum().backward()
    np.testing.assert_allclose(ta.grad.numpy(), np.full((6, 5), b.sum()), rtol=1e-5)


@pytest.mark.parametrize(
    "a, b",
    [(np.array([[1, 2], [3, 4]]), np.array([[0, 5], [6, 7]])), (np.array([True, False]), np.array([[True], [True]])),
     (np.array([1.0 + 2.0j, 3.0]), np.array([2.0, 1.0j])), (np.zeros((0, 2)), np.ones((2, 3))),
     (np.array(2.0), np.array([1.0, 3.0]))],
)  # fmt: skip
def test_kron_of_other_dtypes_and_sizes_matches_torch(a, b):
    ours = ds.kron(ds.tensor(a), ds.tensor(b))
    theirs = torch.kron(torch.tensor(a), torch.tensor(b))
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    assert ours.shape == tuple(theirs.shape)


@pytest.mark.parametrize("sa, sb", [((32, 32), (32, 32)), ((64,), (100,)), ((40, 7), (3, 50))])
def test_kron_compiled_kernel_gives_the_numpy_paths_bits(sa, sb):
    rng = np.random.default_rng(6)
    a = rng.standard_normal(sa).astype(np.float32)
    b = rng.standard_normal(sb).astype(np.float32)
    a.reshape(-1)[:3] = [np.nan, np.inf, -0.0]
    ours = ds.kron(ds.from_numpy(a).T if a.ndim == 2 else ds.from_numpy(a), ds.from_numpy(b)).numpy()
    with jit_gate.disabled():
        numpy_path = ds.kron(ds.from_numpy(a).T if a.ndim == 2 else ds.from_numpy(a), ds.from_numpy(b)).numpy()
    np.testing.assert_array_equal(ours, numpy_path)
    np.testing.assert_array_equal(ours, np.kron(a.T if a.ndim == 2 else a, b))
