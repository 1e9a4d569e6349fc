"""Sorting and order statistics (downslope.ops.sorting) against PyTorch: NaN counts as the largest value."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")

nan = float("nan")
_X = np.array([[1.0, nan, 3.0, nan], [4.0, 2.0, 1.0, 0.0], [nan, 5.0, nan, 1.0], [2.0, 2.0, 1.0, 2.0]])


def _same(ours, theirs):
    np.testing.assert_array_equal(ours.detach().cpu().numpy(), theirs.detach().numpy())


@pytest.mark.parametrize("device", ["cpu", "strict"])
@pytest.mark.parametrize("stable", [False, True])
def test_descending_sort_puts_nan_first_like_torch(check_op, device, stable):
    check_op(
        lambda t: t.sort(dim=1, descending=True, stable=stable).values,
        lambda t: t.sort(dim=1, descending=True, stable=stable).values,
        [_X],
        device=device,
    )
    x, t = ds.tensor(_X, device=device), torch.tensor(_X)
    _same(x.sort(dim=1, descending=True, stable=stable).indices, t.sort(dim=1, descending=True, stable=stable).indices)
    _same(x.argsort(dim=1, descending=True), t.argsort(dim=1, descending=True))
    _same(x.sort(dim=0, descending=True).indices, t.sort(dim=0, descending=True).indices)


@pytest.mark.parametrize("dtype", ["uint8", "int8", "bool"])
def test_descending_sort_of_integers_and_booleans_matches_torch(dtype):
    data = [0, 1, 2, 1, 0] if dtype != "bool" else [True, False, True]
    x, t = ds.tensor(data, dtype=getattr(ds, dtype)), torch.tensor(data, dtype=getattr(torch, dtype))
    _same(x.sort(descending=True).values, t.sort(descending=True).values)
    _same(x.sort(descending=True).indices, t.sort(descending=True).indices)


@pytest.mark.parametrize("largest", [True, False])
def test_topk_counts_nan_as_the_largest_like_torch(check_op, largest):
    a = _X[:3]  # (torch's order of tied values in topk and kthvalue is unspecified)
    check_op(lambda t: t.topk(2, 1, largest=largest).values, lambda t: t.topk(2, 1, largest=largest).values, [a])
    _same(ds.tensor(a).topk(2, 1, largest=largest).indices, torch.tensor(a).topk(2, 1, largest=largest).indices)


@pytest.mark.parametrize("device", ["cpu", "strict"])
@pytest.mark.parametrize("keepdim", [False, True])
def test_median_along_a_dim_gives_nan_and_its_first_index_like_torch(check_op, device, keepdim):
    check_op(lambda t: t.median(1, keepdim).values, lambda t: t.median(1, keepdim).values, [_X], device=device)
    _same(ds.tensor(_X, device=device).median(1, keepdim).indices, torch.tensor(_X).median(1, keepdim).indices)
    check_op(lambda t: t.median(0).values, lambda t: t.median(0).values, [_X], device=device)


@pytest.mark.parametrize("rows", [slice(None), slice(1, 2), slice(3, 4)])
def test_median_of_all_elements_is_nan_with_a_nan_and_shares_ties_like_torch(check_op, rows):
    check_op(lambda t: t.median(), lambda t: t.median(), [_X[rows]])


@pytest.mark.parametrize("k", [1, 2, 3])
def test_kthvalue_sorts_nan_last_like_torch(check_op, k):
    # values only: torch picks among several NaNs in no documented order
    check_op(lambda t: t.kthvalue(k, 1).values, lambda t: t.kthvalue(k, 1).values, [_X[:3]], grad=False)


def _outcome(fn, m):
    try:
        result = fn(m)
    except (IndexError, RuntimeError, ValueError) as error:
        return _torch_kind(error)
    parts = result if isinstance(result, tuple) else (result,)
    return [(tuple(p.shape), str(p.dtype).replace("torch.", ""), np.asarray(p.tolist()).tolist()) for p in parts]


def _torch_kind(error):
    # downslope's errors subclass the built-in torch raises: name that one
    return "IndexError" if isinstance(error, IndexError) else "RuntimeError" if isinstance(error, RuntimeError) else "?"


@pytest.mark.parametrize(
    ("seq_shape", "values_shape"),
    [
        ((4, 0), (4, 2)),
        ((2, 4), (2, 0)),
        ((0, 4), (0, 2)),
        ((0,), (3,)),
        ((4,), (0,)),
        ((2, 0), (2, 0)),
        ((2, 3, 4), (2, 3, 5)),
    ],
)
@pytest.mark.parametrize("right", [False, True])
def test_searchsorted_with_empty_sequences_or_values_matches_torch(seq_shape, values_shape, right):
    rng = np.random.default_rng(0)
    seq, values = np.sort(rng.random(seq_shape), -1), rng.random(values_shape)

    def call(m):
        return m.searchsorted(m.tensor(seq), m.tensor(values), right=right)

    assert _outcome(call, ds) == _outcome(call, torch)
    assert ds.searchsorted(ds.tensor(seq), ds.tensor(values), out_int32=True).dtype == ds.int32


@pytest.mark.parametrize(
    ("shape", "dim"),
    [((0, 1, 2), 0), ((0, 1, 2), 1), ((2, 0), 0), ((2, 0), 1), ((0,), 0), ((0,), None), ((), 0), ((), -1), ((), None)],
)
def test_unique_consecutive_of_empty_and_0d_tensors_matches_torch(shape, dim):
    def call(m):
        return m.unique_consecutive(m.zeros(shape), return_inverse=True, return_counts=True, dim=dim)

    assert _outcome(call, ds) == _outcome(call, torch)


@pytest.mark.parametrize("name", ["median", "nanmedian", "mode", "kthvalue"])
@pytest.mark.parametrize(
    ("shape", "dim"), [((2, 0), 1), ((0, 2), 0), ((0, 0), 1), ((0,), 0), ((0, 3, 0), 1), ((2, 0, 0), 0)]
)
@pytest.mark.parametrize("dtype", ["float32", "int64"])
def test_order_statistics_along_an_empty_dim_fail_as_torch(name, shape, dim, dtype):
    def call(m):
        x = m.zeros(shape, dtype=getattr(m, dtype))
        return m.kthvalue(x, 1, dim) if name == "kthvalue" else getattr(m, name)(x, dim)

    assert _outcome(call, ds) == _outcome(call, torch)
    if shape == (2, 0):
        with pytest.raises(ds.errors.OutOfRangeError, match="reduction dim 1 to have non-zero size"):
            call(ds)
