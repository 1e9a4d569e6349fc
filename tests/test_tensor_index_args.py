"""Sizes, dims and shapes given as 0-d integer tensors (``lengths.max()``, ``lengths.sum()``), which torch
reads through ``__index__``: compared with torch. ``x.view(n)`` with such an ``n`` is a size, never a dtype."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds
from downslope.backend import as_dtype, index_value
from downslope.errors import ArgumentTypeError

torch = pytest.importorskip("torch")


def _shape(t):
    return tuple(t.shape)


@pytest.mark.parametrize(
    "size",
    [
        lambda L: L.tensor([5, 7]).sum(),
        lambda L: L.tensor(12),
        lambda L: L.tensor([12]),
        lambda L: np.array(12),
        lambda L: np.int64(12),
    ],
    ids=["sum", "0-d", "one-element", "numpy-0-d", "numpy-int"],
)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_view_with_a_size_given_as_an_integer_tensor_is_a_size_not_a_dtype(size, dtype):
    got = {}
    for L in (torch, ds):
        x = L.arange(12.0, dtype=getattr(L, dtype))
        v = x.view(size(L))
        got[L] = (str(v.dtype).replace("torch.", ""), _shape(v), v.tolist())
    assert got[ds] == got[torch]
    assert got[ds] == (dtype, (12,), list(map(float, range(12))))


def test_view_with_a_float_tensor_is_refused_with_a_type_error_as_in_torch():
    with pytest.raises(TypeError):
        torch.arange(12.0).view(torch.tensor(12.0))
    with pytest.raises(TypeError, match="expected a dtype"):
        ds.arange(12.0).view(ds.tensor(12.0))


def test_view_with_a_dtype_still_reinterprets_the_bytes():
    x = ds.arange(4.0)
    assert x.view(ds.int32).tolist() == torch.arange(4.0).view(torch.int32).tolist()
    assert x.view(dtype=ds.int32).dtype == np.int32


def test_as_dtype_refuses_a_tensor_or_an_array():
    for bad in (ds.tensor(3), np.array(3), np.zeros(2, dtype=np.float32)):
        with pytest.raises(ArgumentTypeError, match="expected a dtype"):
            as_dtype(bad)
    assert as_dtype(np.float32) == np.float32  # a NumPy scalar type has a `shape` attribute too
    assert as_dtype(np.dtype("int16")) == np.int16


def test_index_value_reads_what_torch_reads_through_index():
    assert [index_value(v) for v in (3, np.int32(3), np.array(3), ds.tensor(3), ds.tensor([3]))] == [3] * 5
    assert [index_value(v) for v in (3.0, ds.tensor(3.0), ds.tensor([3, 4]), np.array([3]), "3", None)] == [None] * 6


_N = 3  # the 0-d integer tensor n below
_CASES = {
    "zeros(lens.max())": lambda L, x, n, d: _shape(L.zeros(L.tensor([3, 1, 2]).max())),
    "zeros(n, 2)": lambda L, x, n, d: _shape(L.zeros(n, 2)),
    "ones(l) for l in lens": lambda L, x, n, d: [_shape(L.ones(v)) for v in L.tensor([3, 1, 2])],
    "empty(n)": lambda L, x, n, d: _shape(L.empty(n)),
    "randn(n)": lambda L, x, n, d: _shape(L.randn(n)),
    "rand((n, 2))": lambda L, x, n, d: _shape(L.rand((n, 2))),
    "eye(n)": lambda L, x, n, d: L.eye(n).tolist(),
    "eye(n, n - 1)": lambda L, x, n, d: L.eye(n, n - 1).tolist(),
    "linspace(0, 1, n)": lambda L, x, n, d: L.linspace(0, 1, n).tolist(),
    "new_zeros(n)": lambda L, x, n, d: _shape(x.new_zeros(n)),
    "new_ones(n)": lambda L, x, n, d: _shape(x.new_ones(n)),
    "new_empty((n, 2))": lambda L, x, n, d: _shape(x.new_empty((n, 2))),
    "reshape(T(12))": lambda L, x, n, d: _shape(x.flatten().reshape(L.tensor(12))),
    "reshape(n, -1)": lambda L, x, n, d: _shape(x.reshape(n, -1)),
    "reshape((n, 4))": lambda L, x, n, d: _shape(x.reshape((n, 4))),
    "view(n, 4)": lambda L, x, n, d: _shape(x.view(n, 4)),
    "expand(n)": lambda L, x, n, d: _shape(x.flatten()[:1].expand(n)),
    "expand(2, n, 4)": lambda L, x, n, d: _shape(x.expand(2, n, 4)),
    "repeat(n)": lambda L, x, n, d: x.flatten()[:2].repeat(n).tolist(),
    "tile(n)": lambda L, x, n, d: x.flatten()[:2].tile(n).tolist(),
    "permute(d, 0)": lambda L, x, n, d: _shape(x.permute(d, 0)),
    "flip(d)": lambda L, x, n, d: x.flip(d).tolist(),
    "sum(d)": lambda L, x, n, d: x.sum(d).tolist(),
    "sum((d,))": lambda L, x, n, d: x.sum((d,)).tolist(),
    "mean(d, keepdim)": lambda L, x, n, d: x.mean(d, keepdim=True).tolist(),
    "softmax(d)": lambda L, x, n, d: np.round(x.softmax(d).tolist(), 6).tolist(),
    "movedim(d, 0)": lambda L, x, n, d: _shape(x.movedim(d, 0)),
    "squeeze(T(0))": lambda L, x, n, d: _shape(x[None].squeeze(L.tensor(0))),
    "unsqueeze(d)": lambda L, x, n, d: _shape(x.unsqueeze(d)),
    "split(k)": lambda L, x, n, d: [p.tolist() for p in x.split(L.tensor(2))],
    "split(k, d)": lambda L, x, n, d: [p.tolist() for p in x.split(L.tensor(3), d)],
    "chunk(k)": lambda L, x, n, d: [p.tolist() for p in x.chunk(L.tensor(2))],
    "roll(k, d)": lambda L, x, n, d: x.roll(L.tensor(2), d).tolist(),
    "narrow(0, 0, k)": lambda L, x, n, d: x.narrow(0, 0, L.tensor(2)).tolist(),
}


@pytest.mark.parametrize("name", list(_CASES))
def test_a_zero_d_integer_tensor_is_taken_where_torch_takes_an_int(name):
    fn = _CASES[name]
    expected = fn(torch, torch.arange(12.0).reshape(3, 4), torch.tensor(_N), torch.tensor(1))
    got = fn(ds, ds.arange(12.0).reshape(3, 4), ds.tensor(_N), ds.tensor(1))
    assert got == expected


@pytest.mark.parametrize(
    "call",
    [
        lambda L: L.zeros(L.tensor(3.0)),
        lambda L: L.zeros(L.tensor(3.0), 2),
        lambda L: L.zeros(2.5),
        lambda L: L.arange(6.0).reshape(L.tensor(6.0)),
        lambda L: L.arange(6.0).sum(L.tensor(0.0)),
    ],
    ids=["zeros(float T)", "zeros(float T, 2)", "zeros(2.5)", "reshape(float T)", "sum(float T)"],
)
def test_a_float_tensor_or_number_as_a_size_or_dim_is_refused_with_torchs_error_class(call):
    with pytest.raises(TypeError):
        call(torch)
    with pytest.raises(TypeError):
        call(ds)


def test_a_negative_size_is_still_refused():
    with pytest.raises(ValueError, match="non-negative"):
        ds.zeros(ds.tensor(-1))
