"""Sparse COO index_select and bmm of a batch of sparse matrices, against torch 2.13: the same indices,
values, size and coalesced flag (index_select), the same products and gradients (bmm), and torch's
refusals as RuntimeErrors / IndexErrors. sparse @ sparse is in test_sparse_gcn.py."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")

_I = [[0, 1, 1, 2, 0], [2, 0, 2, 1, 2]]  # (0, 2) twice: an uncoalesced tensor, as torch keeps it
_V = [1.0, 2.0, 3.0, 4.0, 5.0]


def _both(indices, values, size, coalesce: bool = False):  # type: ignore[no-untyped-def]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's note on its invariant checks
        theirs = torch.sparse_coo_tensor(torch.tensor(indices), torch.tensor(values), size)
    ours = ds.sparse_coo_tensor(ds.tensor(indices, dtype=ds.int64), ds.tensor(values), size)
    return (ours.coalesce(), theirs.coalesce()) if coalesce else (ours, theirs)


@pytest.mark.parametrize("coalesce", [False, True])
@pytest.mark.parametrize(
    ("dim", "index"), [(0, [2, 0, 0]), (1, [1, 2]), (0, []), (1, [2, 2, 0]), (0, [-1, 1]), (1, [0]), (-1, [2])]
)
def test_index_select_matches_torch_entry_for_entry(dim: int, index: list[int], coalesce: bool) -> None:
    ours, theirs = _both(_I, _V, (3, 3), coalesce)
    got = ours.index_select(dim, ds.tensor(index, dtype=ds.int64))
    want = theirs.index_select(dim, torch.tensor(index, dtype=torch.long))
    assert got.is_sparse and tuple(got.shape) == tuple(want.shape)
    assert got._indices().tolist() == want._indices().tolist()
    assert got._values().tolist() == want._values().tolist()
    assert got.is_coalesced() == want.is_coalesced()
    # the function form too
    np.testing.assert_array_equal(
        ds.index_select(ours, dim, ds.tensor(index, dtype=ds.int64)).to_dense().numpy(), want.to_dense().numpy()
    )


def test_index_select_along_a_dense_dim_of_a_hybrid_tensor() -> None:
    values = np.arange(6, dtype=np.float32).reshape(2, 3)
    ours, theirs = _both([[0, 2]], values, (4, 3))
    got, want = ours.index_select(1, ds.tensor([2, 0])), theirs.index_select(1, torch.tensor([2, 0]))
    assert got.is_sparse and got.is_coalesced() == want.is_coalesced()
    np.testing.assert_array_equal(got.to_dense().numpy(), want.to_dense().numpy())


def test_index_select_gradient_reaches_the_values() -> None:
    """torch's backward of a sparse index_select raises (no sparse index_add_); here the selected values are a
    gather of S's values, so each value's gradient is the sum of its copies' (checked by finite differences)."""
    values = ds.tensor(_V, dtype=ds.float64, requires_grad=True)
    weights = ds.tensor(np.arange(9.0).reshape(3, 3))

    def f(v):  # type: ignore[no-untyped-def]
        s = ds.sparse_coo_tensor(ds.tensor(_I, dtype=ds.int64), v, (3, 3)).index_select(0, ds.tensor([2, 0, 0]))
        return (s.to_dense() * weights).sum()

    assert ds.autograd.gradcheck(f, (values,))
    f(values).backward()
    # (2, 1) lands at output row 0: weight 1; each (0, 2) lands at rows 1 and 2: weights 5 + 8
    np.testing.assert_array_equal(values.grad.numpy(), [13.0, 0.0, 0.0, 1.0, 13.0])


def test_index_select_refusals_as_torch() -> None:
    ours, theirs = _both(_I, _V, (3, 3))
    for s, lib in ((ours, ds), (theirs, torch)):
        with pytest.raises(IndexError, match=r"index contains 3 that is out of range for tensor of size \[3, 3\]"):
            s.index_select(0, lib.tensor([3]))
        for bad in (lib.tensor([[0]]), lib.tensor([0.0])):
            with pytest.raises(IndexError, match=r"argument index must be 1-D strided \(non-sparse\) long-tensor"):
                s.index_select(0, bad)


_BI = [[0, 0, 1, 1, 0], [0, 1, 2, 0, 0], [1, 0, 1, 2, 1]]  # (0, 0, 1) twice: uncoalesced
_BV = [1.0, 2.0, 3.0, 4.0, -1.5]


@pytest.mark.parametrize("coalesce", [False, True])
@pytest.mark.parametrize("how", ["bmm", "method"])
def test_bmm_of_a_batched_sparse_tensor_matches_torch_with_gradients(coalesce: bool, how: str) -> None:
    rng = np.random.default_rng(0)
    dense, weights = rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 3, 4))
    tv, td = torch.tensor(_BV, dtype=torch.float64, requires_grad=True), torch.tensor(dense, requires_grad=True)
    dv = ds.tensor(_BV, dtype=ds.float64, requires_grad=True)
    dd = ds.tensor(dense, dtype=ds.float64, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ts = torch.sparse_coo_tensor(torch.tensor(_BI), tv, (2, 3, 3))
    ss = ds.sparse_coo_tensor(ds.tensor(_BI, dtype=ds.int64), dv, (2, 3, 3))
    if coalesce:
        ts, ss = ts.coalesce(), ss.coalesce()
    want = torch.bmm(ts, td) if how == "bmm" else ts.bmm(td)
    got = ds.bmm(ss, dd) if how == "bmm" else ss.bmm(dd)
    assert not want.is_sparse and isinstance(got, ds.Tensor) and got.shape == tuple(want.shape)
    np.testing.assert_allclose(got.detach().numpy(), want.detach().numpy(), rtol=1e-12, atol=1e-12)
    (want * torch.tensor(weights)).sum().backward()
    (got * ds.tensor(weights, dtype=ds.float64)).sum().backward()
    np.testing.assert_allclose(dv.grad.numpy(), tv.grad.numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dd.grad.numpy(), td.grad.numpy(), rtol=1e-12, atol=1e-12)


def test_bmm_float32_matches_torch() -> None:
    rng = np.random.default_rng(1)
    dense = rng.standard_normal((2, 3, 5)).astype(np.float32)
    ours, theirs = _both(_BI, _BV, (2, 3, 3))
    got = ds.bmm(ours, ds.tensor(dense))
    assert got.dtype == ds.float32
    np.testing.assert_allclose(got.numpy(), torch.bmm(theirs, torch.tensor(dense)).numpy(), rtol=1e-6, atol=1e-6)


def test_bmm_refusals_are_runtime_errors_as_torchs() -> None:
    ours, theirs = _both(_BI, _BV, (2, 3, 3))
    flat_ours, flat_theirs = _both(_I, _V, (3, 3))
    cases = [
        (lambda s, f, lib: lib.bmm(s, s), "must be dense"),
        (lambda s, f, lib: lib.bmm(f, lib.ones(3, 4)), "3 sparse dims"),
        (lambda s, f, lib: lib.bmm(s, lib.ones(3, 3, 4)), None),
        (lambda s, f, lib: lib.bmm(s, lib.ones(2, 4, 4)), None),
        (lambda s, f, lib: lib.bmm(s, lib.ones(2, 3, 4, dtype=lib.float64)), "same dtype"),
        (lambda s, f, lib: s @ lib.ones(2, 3, 4), None),  # torch: no expand of a sparse tensor
    ]
    for call, message in cases:
        with pytest.raises(RuntimeError):
            call(theirs, flat_theirs, torch)
        with pytest.raises(RuntimeError, match=message):
            call(ours, flat_ours, ds)
