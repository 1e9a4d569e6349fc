"""Sorting and order statistics: sort, argsort, topk, kthvalue, median, nanmedian, mode, quantile,
nanquantile, searchsorted, bucketize, unique_consecutive."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..backend import as_array, namespace_of
from ..devices import like, to_host
from ..errors import ArgumentTypeError, DTypeError, InvalidValueError, OutOfRangeError, ShapeError
from ..tensor import Tensor, record_op, wrap_array
from .indexing import _take_along
from .operands import _dim, _lift
from .pointwise import clone, where
from .reductions import return_types
from .shape import broadcast_to, movedim, reshape, squeeze


def _unordered(x: Tensor, op: str) -> None:
    """Refuse a complex tensor where an op orders values, as torch does (NumPy would sort complex
    numbers lexicographically, an answer torch never gives)."""
    if x.array.dtype.kind == "c":
        raise DTypeError(
            f"{op}: not supported for complex tensors (got {x.array.dtype}): complex numbers have no order, "
            "as in torch; order by .abs() or .real instead"
        )


def _sorted(x: Any, dim: int, descending: bool, stable: bool, op: str = "sort") -> tuple[Tensor, np.ndarray, int]:
    x = _lift(x)
    _unordered(x, op)
    d = _dim(dim, x.ndim, "sort")
    if x.ndim == 0:
        return x, np.zeros_like(x.array, dtype=np.int64), 0
    a = x.array
    if not descending:
        return x, np.argsort(a, axis=d, kind="stable" if stable else None), d
    if not stable and a.shape[d] > _STL_THRESHOLD and type(a) is np.ndarray and a.size:  # host: see below
        return x, _torch_descending_order(a, d), d
    return x, _stable_descending_order(a, d), d


# libstdc++'s std::sort (torch's CPU sort with stable=False) finishes with an insertion sort of runs
# this long, which keeps equal values in index order: only longer rows can leave that order.
_STL_THRESHOLD = 16
# Elements in rows with ties past which the pure-Python std::sort steps (numba missing or switched off)
# would take seconds (~0.3 s at this size): past it such rows keep index order (the stable order).
_PYTHON_STL_MAX = 1 << 16


def _torch_descending_order(a: np.ndarray, d: int) -> np.ndarray:
    """The descending sort order along ``d`` of the host array ``a`` in torch's CPU order among equal
    values: torch's ``sort(descending=True, stable=False)`` is libstdc++'s ``std::sort`` of each row's
    (value, index) pairs (introsort: median-of-three unguarded partitions, then insertion sorts), which
    moves equal values out of index order in rows longer than 16. With numba, every row is sorted by
    those steps (``_jit_stl_sort``: about torch's own time); without it, the stable order, with the rows
    where equal values meet replayed in Python (``_stl_order``) up to ``_PYTHON_STL_MAX`` elements."""
    from .. import jit_gate

    n = a.shape[d]
    moved_shape = np.moveaxis(a, d, -1).shape
    flat = np.moveaxis(a, d, -1).reshape(-1, n)
    floats = flat.dtype.kind == "f"
    keys = _tie_keys(flat, True, floats)
    kernels = jit_gate.kernels("downslope.ops._jit_stl_sort", keys)
    if kernels is not None:
        ranked = np.tile(np.arange(n, dtype=np.int64), (flat.shape[0], 1))  # host: a host array's path
        kernels.sort_rows(keys, ranked)
        return np.moveaxis(ranked.reshape(moved_shape), -1, d)
    order = _stable_descending_order(a, d)
    ranked = np.moveaxis(order, d, -1).reshape(-1, n)
    values = np.take_along_axis(flat, ranked, -1)
    same = values[:, 1:] == values[:, :-1]
    if floats:
        same |= np.isnan(values[:, 1:]) & np.isnan(values[:, :-1])
    rows = np.flatnonzero(same.any(axis=1))
    if not rows.size or rows.size * n > _PYTHON_STL_MAX:
        return order
    from ._stl_order import stl_sort

    ranked = ranked.copy()
    for r in rows.tolist():  # host: row numbers
        row = list(range(n))
        stl_sort(row, _key_less(keys[r].tolist()))  # host: the Python steps compare Python numbers
        ranked[r] = row
    return np.moveaxis(ranked.reshape(moved_shape), -1, d)


def _key_less(key: list[Any]) -> Any:
    """``less(i, j)`` of positions by their keys, for ``_stl_order``'s steps."""

    def less(i: int, j: int) -> bool:
        return bool(key[i] < key[j])  # host: Python numbers from the host keys

    return less


def _stable_descending_order(a: Any, d: int) -> Any:
    """The descending sort order along the non-negative dim ``d``, equal values in their original order,
    NaN first (torch counts NaN as the largest): the reversed stable ascending sort of the reversed
    array (no negation: -x wraps unsigned ints)."""
    rev = (slice(None),) * d + (slice(None, None, -1),)
    return (a.shape[d] - 1) - namespace_of(a).argsort(a[rev], axis=d, kind="stable")[rev]


def sort(x: Any, dim: int = -1, descending: bool = False, stable: bool = False) -> Any:
    """``(values, indices)`` sorted along ``dim`` (torch.sort); the gradient goes back to each value's place.

    Tied values: with ``stable=True`` they come in index order (torch's stable order). A descending
    ``stable=False`` sort gives them in torch's CPU order for host arrays: index order in rows of up to
    16 values, else the order libstdc++'s ``std::sort`` leaves (torch's kernel), run compiled with
    numba (as fast as torch's on 1M values); without numba the rows with ties are replayed in Python
    up to 65536 elements, past that (and for device arrays) ties stay in index order. An ascending
    ``stable=False`` sort keeps NumPy's default sort, whose order among ties is unspecified, as torch's
    is (a stable sort costs 1.2-4.7x more there, measured on 1M floats and rows; torch's order is
    ``std::sort``'s there too)."""
    x, idx, d = _sorted(x, dim, descending, stable)
    if x.ndim == 0:
        return return_types.sort(clone(x), wrap_array(idx))
    return return_types.sort(_take_along(x, idx, d), wrap_array(idx.astype(np.int64)))


def argsort(x: Any, dim: int = -1, descending: bool = False, stable: bool = False) -> Tensor:
    """The indices that sort ``x`` along ``dim`` (tied values as in :func:`sort`)."""
    return wrap_array(_sorted(x, dim, descending, stable, "argsort")[1].astype(np.int64, copy=False))


def topk(x: Any, k: int, dim: int = -1, largest: bool = True, sorted: bool = True) -> Any:
    """``(values, indices)`` of the k largest (or smallest) along ``dim`` (torch.topk), NaN the largest.
    Equal values come in the order torch's CPU kernel gives them (its C++ library's selection and sort;
    for host arrays). ``sorted=False`` gives the k in torch's CPU order too (for host arrays): where
    ``k * 64 > n`` that is not sorted (what libstdc++'s ``std::nth_element`` leaves, torch skipping the
    sort), else sorted (its ``std::partial_sort`` sorts them anyway); device arrays get them sorted."""
    if sorted is True and k.__class__ is int and dim.__class__ is int and isinstance(x, Tensor) and not x.requires_grad:
        # The short path below for a host row of a tensor without grad (sampling from a small model's
        # logits, token by token), without the checks, which such a call passes.
        a = x.array
        n = a.shape[-1] if a.ndim else 0
        if (
            type(a) is np.ndarray  # host: _distinct_topk's own condition
            and (dim == -1 or dim == a.ndim - 1)
            and 0 < k <= n
            and not (n >= _PARTITION_MIN[0] and a.size >= _PARTITION_MIN[1])
        ):
            fast = _distinct_topk(a, k, largest)
            if fast is not None:
                return return_types.topk(wrap_array(fast[1]), wrap_array(fast[0]))
    x = _lift(x)
    _unordered(x, "topk")
    d = _dim(dim, x.ndim, "topk")
    n = x.shape[d] if x.ndim else 1
    if not 0 <= k <= n:
        raise OutOfRangeError(f"topk: k={k} is out of range for dimension {d} of size {n}")
    big = n >= _PARTITION_MIN[0] and x.array.size >= _PARTITION_MIN[1]
    if not big and k and sorted and x.ndim and d == x.ndim - 1:
        fast = _distinct_topk(x.array, k, largest)
        if fast is not None:
            idx, values = fast
            # the values as the sort gave them where no gradient is recorded (as _take_along's would be)
            top = _take_along(x, idx, d) if x.requires_grad else wrap_array(values)
            return return_types.topk(top, wrap_array(idx))
    after: Any = None  # the index after the k chosen (where k < n), for the ties at the k-th place
    if x.ndim and big and 0 < 2 * k <= n and type(x.array) is np.ndarray:
        idx, after = _topk_indices(x.array, k, d, largest)
    else:
        _, idx, d = _sorted(x, d, largest, True)
        if x.ndim == 0:
            return return_types.topk(clone(x), wrap_array(idx))
        if k < n:
            after = idx.take([k], axis=d)
        idx = idx.take(range(k), axis=d)
    if k and type(x.array) is np.ndarray and x.array.size:
        if sorted or k * 64 <= n:
            idx = _torch_tie_order(x.array, idx, after, k, d, largest)
        else:
            idx = _torch_unsorted_order(x.array, k, d, largest)
    return return_types.topk(_take_along(x, idx, d), wrap_array(idx.astype(np.int64, copy=False)))


def _distinct_topk(a: Any, k: int, largest: bool) -> tuple[np.ndarray, np.ndarray] | None:
    """topk's ``(indices, values)`` along the last dim of a small host array when no equal values meet
    among the k chosen or at the k-th place (the common case of sampling from logits), else None. Then
    the order is the same whatever the sort, so one NumPy argsort gives torch's answer, without the tie
    handling (``_torch_tie_order``), whose dozen NumPy calls cost ~100 us on a (1, 65) row against
    torch's ~3 us. Strict comparisons of the k + 1 best also send NaN (no comparison holds) and
    -0.0 == 0.0 to the general path."""
    if type(a) is not np.ndarray or a.dtype.kind not in "fiu":  # host: a host array's fast path
        return None
    n = a.shape[-1]
    # the values sorted by np.sort equal those at the argsort's positions whatever the order of ties
    # (and a tie sends us away below): cheaper than gathering them (np.take_along_axis)
    order, ordered = np.argsort(a, axis=-1), np.sort(a, axis=-1)  # host: as above
    pick = slice(None, -k - 2, -1) if largest else slice(None, k + 1)  # the k + 1 best (k where k == n)
    vals = ordered[..., pick]
    strict = np.greater(vals[..., :-1], vals[..., 1:]) if largest else np.less(vals[..., :-1], vals[..., 1:])
    if not np.logical_and.reduce(strict, axis=None):  # (ndarray.all, without its Python wrapper)
        return None
    keep = slice(None) if k == n else slice(None, k)
    best = np.ascontiguousarray(order[..., pick][..., keep], dtype=np.int64)  # host: as above
    return best, np.ascontiguousarray(vals[..., keep])  # host: as above


def _torch_tie_order(a: np.ndarray, idx: np.ndarray, after: Any, k: int, d: int, largest: bool) -> np.ndarray:
    """topk's indices ``idx`` (equal values in index order) with torch's CPU order where equal values
    meet: torch's kernel picks with libstdc++'s ``std::partial_sort`` (k * 64 <= n) or ``std::nth_element``
    then ``std::sort`` of the first k - 1, whose order among equal values is their algorithms' own. Only
    the rows where equal values sit among the k chosen or at the k-th place are redone, by those steps
    (``_jit_stl_order``, or ``_stl_order`` without numba); the others are the same either way."""
    from .. import jit_gate

    n = a.shape[d]
    flat = np.moveaxis(a, d, -1).reshape(-1, n)
    chosen = np.moveaxis(idx, d, -1).reshape(-1, k)
    values = np.take_along_axis(flat, chosen, -1)
    floats = flat.dtype.kind == "f"
    same = values[:, 1:] == values[:, :-1]
    if floats:
        same |= np.isnan(values[:, 1:]) & np.isnan(values[:, :-1])
    tied = same.any(axis=1)
    if after is not None:  # the best element left out (-1: none) equal to the k-th chosen
        nxt = np.moveaxis(after, d, -1).reshape(-1)
        kth = values[:, -1]
        left = np.take_along_axis(flat, np.maximum(nxt, 0)[:, None], -1)[:, 0]
        equal = left == kth
        if floats:
            equal |= np.isnan(left) & np.isnan(kth)
        tied |= equal & (nxt >= 0)
    rows = np.flatnonzero(tied)
    if not rows.size:
        return idx
    rank = _tie_keys(flat[rows], largest, floats)
    order = np.tile(np.arange(n, dtype=np.int64), (rows.size, 1))  # host: topk sends only host arrays here
    kernels = jit_gate.kernels("downslope.ops._jit_stl_order", order, rank)
    if kernels is not None:
        kernels.select_rows(order, rank, k, True)
    else:
        _select_rows(order, rank, k)
    chosen = chosen.copy()
    chosen[rows] = order[:, :k]
    moved_shape = np.moveaxis(idx, d, -1).shape
    return np.moveaxis(chosen.reshape(moved_shape), -1, d)


def _torch_unsorted_order(a: np.ndarray, k: int, d: int, largest: bool) -> np.ndarray:
    """topk's indices along ``d`` with ``sorted=False`` where torch's CPU kernel selects by
    ``std::nth_element`` (``k * 64 > n``) and skips the sort: the k chosen in the order libstdc++'s
    selection leaves them, replayed for every row (``_jit_stl_order``, or ``_stl_order`` without numba)."""
    from .. import jit_gate

    n = a.shape[d]
    flat = np.moveaxis(a, d, -1).reshape(-1, n)
    rank = _tie_keys(flat, largest, flat.dtype.kind == "f")
    order = np.tile(np.arange(n, dtype=np.int64), (flat.shape[0], 1))  # host: topk sends only host arrays here
    kernels = jit_gate.kernels("downslope.ops._jit_stl_order", order, rank)
    if kernels is not None:
        kernels.select_rows(order, rank, k, False)
    else:
        _select_rows(order, rank, k, sorted_=False)
    moved_shape = np.moveaxis(a, d, -1).shape[:-1] + (k,)
    return np.moveaxis(order[:, :k].reshape(moved_shape), -1, d)


def _tie_keys(block: np.ndarray, largest: bool, floats: bool) -> np.ndarray:
    """Keys of the rows ``block`` that order them best first as torch's topk comparison does (NaN the
    largest; equal values equal keys, -0.0 and 0.0 too): the values themselves in float64 (negated for
    largest, NaN past every number), or dense ranks (one sort) where that cannot hold (a row with both
    NaN and +inf, or integers beyond float64's exact range)."""
    wide = block.astype(np.float64)
    inexact = not floats and block.size and np.abs(wide).max() >= 2.0**53
    if not inexact and not (floats and (np.isnan(wide).any(axis=1) & (wide == np.inf).any(axis=1)).any()):
        keys = -wide if largest else wide
        if floats:
            keys[np.isnan(keys)] = -np.inf if largest else np.inf
        return keys
    ascending = np.argsort(block, axis=1)  # any order of equal values: they share a rank
    ordered = np.take_along_axis(block, ascending, 1)
    step = ordered[:, 1:] != ordered[:, :-1]
    if floats:
        step &= ~(np.isnan(ordered[:, 1:]) & np.isnan(ordered[:, :-1]))
    dense = np.zeros(block.shape, np.int64)  # host: topk sends only host arrays here
    np.cumsum(step, axis=1, out=dense[:, 1:])
    if largest:
        dense = dense[:, -1:] - dense
    rank = np.empty_like(dense)
    np.put_along_axis(rank, ascending, dense, 1)
    return rank


def _select_rows(order: np.ndarray, rank: np.ndarray, k: int, sorted_: bool = True) -> None:
    """``_jit_stl_order.select_rows`` in Python, for when numba is missing or switched off."""
    from ._stl_order import stl_nth_element, stl_partial_sort, stl_sort

    n = order.shape[1]
    for r in range(order.shape[0]):
        key = rank[r].tolist()  # host: the Python steps compare Python ints
        q = list(range(n))

        def less(i: int, j: int, key: list[int] = key) -> bool:
            return key[i] < key[j]

        if k * 64 <= n:
            stl_partial_sort(q, k, less)
        else:
            stl_nth_element(q, k - 1, less)
            if sorted_:
                stl_sort(q, less, 0, k - 1)
        order[r] = q


# the shortest row and the fewest elements for which topk's partition beats the full sort (its ~60 us
# of NumPy calls cost more than sorting a few thousand elements; measured from 16x128 to 1024x64)
_PARTITION_MIN = (32, 4096)


def _topk_indices(a: np.ndarray, k: int, d: int, largest: bool) -> tuple[np.ndarray, np.ndarray]:
    """The stable full sort's first k indices along ``d`` (equal values in index order, NaN the largest)
    of a host array, without that sort: the k-th best of the extremes of 4k to 8k disjoint blocks bounds
    the k-th best value (k distinct elements reach it), so only the elements reaching the bound are
    sorted. An argpartition costs more than torch's whole topk for a small k (its selection runs near
    the row's end), so the bound comes from elementwise passes instead. Also the (k+1)-th index of that
    order along ``d`` (size 1 there), -1 where no element left out reaches the bound (none can tie)."""
    moved = np.moveaxis(a, d, -1)
    n = moved.shape[-1]
    flat = moved.reshape(-1, n)
    rows = flat.shape[0]
    floats = flat.dtype.kind == "f"
    # the blocks' extremes by halving: each pass folds a row's second half onto its first (an odd last
    # column onto column 0), so each final column is the extreme of a disjoint set of the row's
    # elements. Whole-row elementwise passes run at memory speed; a reduction over short blocks would
    # loop per block.
    # np.maximum propagates NaN (a NaN block is the largest); fmin keeps numbers (NaN: all-NaN block)
    fold = np.maximum if largest else (np.fmin if floats else np.minimum)
    ends = flat
    while ends.shape[1] >= 8 * k:
        half = ends.shape[1] // 2
        folded = fold(ends[:, :half], ends[:, half : 2 * half])
        if ends.shape[1] > 2 * half:
            fold(folded[:, 0], ends[:, 2 * half], out=folded[:, 0])
        ends = folded
    blocks = ends.shape[1]
    bound = np.sort(ends, axis=-1)[:, blocks - k if largest else k - 1, None]  # NaN sorts last
    if largest:
        cand = flat >= bound
        if floats and np.isnan(ends).any():  # every element is in a block: its NaN shows there
            cand |= np.isnan(flat)
    else:
        cand = flat <= bound
        if floats and np.isnan(bound).any():  # fewer than k blocks hold a number: all may be chosen
            cand |= np.isnan(bound)
    # the candidates' (row, column): a flat search (NumPy's 2-D nonzero is 6x slower)
    where = np.flatnonzero(cand)
    r = where // n
    c = where - r * n
    count = np.bincount(r, minlength=rows)
    out = np.empty((rows, k), np.int64)  # host: a host array's path (topk sends no other here)
    # rows where many elements reach the bound (ties, constant rows): the stable sort of those rows
    after = np.full(rows, -1, np.int64)  # host: as above; the (k+1)-th of each row, -1: no candidate left
    heavy = count * 4 > n
    if heavy.any():
        hrows = np.flatnonzero(heavy)
        order = _stable_order(flat[hrows], largest)
        out[hrows] = order[:, :k]
        after[hrows] = order[:, k]  # 2k <= n: there is one
        light = np.flatnonzero(~heavy)
        keep = ~heavy[r]
        r = np.searchsorted(light, r[keep])  # the rows numbered among the light rows
        c = c[keep]
        flat, bound, count = flat[light], bound[light], count[light]
    else:
        light = None
    if flat.shape[0]:
        # the candidates of each row packed to the left of a (rows, m) block, in index order; the slots
        # after them hold the bound at index n, behind any candidate equal to it in the stable order
        first = np.cumsum(count) - count
        slot = np.arange(r.size) - first[r]  # host: as above
        m = int(count.max())  # host: the packed block's width (host arrays only come here)
        cols = np.full((flat.shape[0], m), n, np.int64)  # host: as above
        cols[r, slot] = c
        vals = np.repeat(bound, m, axis=-1)
        vals[r, slot] = flat[r, c]
        ranked = _stable_order(vals, largest)
        best = np.take_along_axis(cols, ranked[:, :k], axis=-1)
        # the next candidate (a padding slot, index n, after every real one equal to the bound: none left)
        nxt = np.take_along_axis(cols, ranked[:, k : k + 1], axis=-1)[:, 0] if m > k else cols[:, 0] * 0 + n
        nxt = np.where(nxt == n, -1, nxt)
        if light is None:
            out, after = best, nxt
        else:
            out[light], after[light] = best, nxt
    shape = moved.shape[:-1]
    return np.moveaxis(out.reshape(shape + (k,)), -1, d), np.moveaxis(after.reshape(shape + (1,)), -1, d)


def _stable_order(v: np.ndarray, descending: bool) -> np.ndarray:
    """Each row's stable sort order (descending: equal values still in index order), as _sorted's."""
    if not descending:
        return np.argsort(v, axis=-1, kind="stable")
    return _stable_descending_order(v, v.ndim - 1)


def kthvalue(x: Any, k: int, dim: int = -1, keepdim: bool = False) -> Any:
    """``(values, indices)`` of the k-th smallest along ``dim`` (k from 1).

    Among equal values, the index is the one torch's CPU kernel picks (its quickselect, run again here
    on the host for the slices where the k-th value is tied, up to ``_TIE_RULE_LIMIT`` elements in all);
    on a device, or beyond that, the first in order."""
    return _kthvalue(x, k, dim, keepdim, torch_ties=True)


def _kthvalue(x: Any, k: int, dim: int, keepdim: bool, torch_ties: bool) -> Any:
    x = _lift(x)
    _unordered(x, "kthvalue")
    d = _dim(dim, x.ndim, "kthvalue")
    _check_reduced_size("kthvalue", x, d)
    n = x.shape[d] if x.ndim else 1
    if not 1 <= k <= n:
        raise OutOfRangeError(f"kthvalue: k={k} is out of range for dimension {d} of size {n}")
    if x.ndim and type(x.array) is np.ndarray:
        idx = _kth_stable_index(x.array, k - 1, d)
    else:
        _, idx, d = _sorted(x, d, False, True)
        idx = idx[(slice(None),) * d + (slice(k - 1, k),)] if x.ndim else idx
    if torch_ties and x.ndim and n > 2 and isinstance(x.array, np.ndarray):
        idx = _quickselect_ties(x.array, idx, d, k - 1)
    values = _take_along(x, idx, d) if x.ndim else clone(x)
    if not keepdim and x.ndim:
        values, idx = squeeze(values, d), idx.squeeze(d)
    return return_types.kthvalue(values, wrap_array(as_array(idx).astype(np.int64, copy=False)))


def _kth_stable_index(a: np.ndarray, k: int, d: int) -> np.ndarray:
    """The index (kept as a size-1 dim ``d``) a stable ascending sort along ``d`` puts at place ``k``
    (NaN last): the k-th value from a partition, then the ``(k - #smaller)``-th of the elements equal to
    it, in order. A few passes over ``a`` where a sort costs 5x more (a (512, 1024) float32 tensor)."""
    v = np.take(np.partition(a, k, axis=d), [k], axis=d)
    if a.dtype.kind == "f":  # NaN is the largest, and NaNs are equal
        a_nan, v_nan = np.isnan(a), np.isnan(v)
        smaller = (a < v) | (v_nan & ~a_nan)
        same = (a == v) | (a_nan & v_nan)
    else:
        smaller, same = a < v, a == v
    rank = k - smaller.sum(axis=d, keepdims=True, dtype=np.int64)  # which of the equal ones (from 0)
    return np.argmax(np.cumsum(same, axis=d, dtype=np.int64) > rank, axis=d, keepdims=True)


# The most elements (over all tied slices) kthvalue runs torch's quickselect on, in Python, to pick
# torch's index among ties: about 0.5 s at most
_TIE_RULE_LIMIT = 1 << 20


def _quickselect_ties(a: np.ndarray, idx: np.ndarray, d: int, k: int) -> np.ndarray:
    """``idx`` (the k-th smallest's index along ``d``, kept as a size-1 dim, from a stable sort) with
    the slices where that value is tied given the index torch's CPU kthvalue returns instead."""
    kth = np.take_along_axis(a, idx, d)
    same = a == kth
    if a.dtype.kind in "fc":
        same |= np.isnan(a) & np.isnan(kth)  # torch counts NaN as the largest, and NaNs as equal
    counts = same.sum(axis=d, keepdims=True)
    if not counts.size or counts.max() < 2:  # no ties: the index is the only one
        return idx
    tied = np.flatnonzero(np.moveaxis(counts, d, -1) > 1)
    n = a.shape[d]
    if tied.size * n > _TIE_RULE_LIMIT:
        return idx
    rows = np.moveaxis(a, d, -1).reshape(-1, n)
    out = np.moveaxis(idx, d, -1).copy()
    flat = out.reshape(-1)
    for r in tied:
        flat[r] = _quickselect_index(rows[r].tolist(), k)  # host: only host rows come here (a Python quickselect)
    return np.moveaxis(out, -1, d)


def _quickselect_index(values: list[Any], k: int) -> int:
    """The position in ``values`` of the element torch's quickselect (aten's quick_select_template,
    median-of-three pivots, NaN largest) leaves at place ``k``: which of equal values it is."""
    order = list(range(len(values)))

    def gt(p: Any, q: Any) -> bool:  # p > q, NaN above everything else
        return (p != p and q == q) or p > q

    def swap(i: int, j: int) -> None:
        values[i], values[j] = values[j], values[i]
        order[i], order[j] = order[j], order[i]

    lo, hi = 0, len(values) - 1
    while hi > lo:
        if hi == lo + 1:
            if gt(values[lo], values[hi]):
                swap(lo, hi)
            break
        swap(lo + (hi - lo) // 2, lo + 1)
        if gt(values[lo + 1], values[hi]):
            swap(lo + 1, hi)
        if gt(values[lo], values[hi]):
            swap(lo, hi)
        if gt(values[lo + 1], values[lo]):
            swap(lo + 1, lo)
        i, j, pivot = lo + 1, hi, values[lo]
        while True:
            i += 1
            while gt(pivot, values[i]):
                i += 1
            j -= 1
            while gt(values[j], pivot):
                j -= 1
            if j < i:
                break
            swap(i, j)
        swap(lo, j)
        if j <= k:
            lo = i
        if j >= k:
            hi = j - 1
    return order[k]


def median(x: Any, dim: Any = None, keepdim: bool = False) -> Any:
    """The lower median (torch's): a 0-d tensor, or ``(values, indices)`` along ``dim``. A slice
    with a NaN has median NaN (with the index of its first NaN), as in torch."""
    x = _lift(x)
    _unordered(x, "median")
    if dim is None:
        flat = reshape(x, (-1,))
        if flat.shape[0] == 0 and flat.array.dtype.kind == "f":  # torch: NaN, with a zero-size gradient
            empty = namespace_of(flat.array).full((), np.nan, flat.array.dtype)
            return record_op(empty, (x,), _median_all_vjp)
        if flat.shape[0] == 0:
            # torch fills the result with NaN cast to the dtype (on its CPU): True for bool, the most
            # negative value for int32 and int64, 0 for the narrower integers
            dt = flat.array.dtype
            fill = True if dt.kind == "b" else (np.iinfo(dt).min if dt.kind == "i" and dt.itemsize >= 4 else 0)
            return wrap_array(namespace_of(flat.array).full((), fill, dt))
        if flat.array.dtype.kind != "f":
            return _kthvalue(flat, (flat.shape[0] + 1) // 2, 0, False, torch_ties=False).values
        value = median(flat.detach(), 0).values.array
        return record_op(value, (x,), _median_all_vjp)
    d = _dim(dim, x.ndim, "median")
    _check_reduced_size("median", x, d)
    if x.ndim == 0 or x.array.dtype.kind != "f":
        # torch's median picks among ties by another rule than its kthvalue
        r = _kthvalue(x, (x.shape[d] + 1) // 2 if x.ndim else 1, d, keepdim, torch_ties=False)
        return return_types.median(r.values, r.indices)
    a = x.array
    xp = namespace_of(a)
    n = a.shape[d]
    # the lower median's place in the ascending stable sort, or the first NaN's (NaNs sort last, in order)
    nans = _nan_count(a, d, True)
    if type(a) is np.ndarray:  # a partition and a few passes, not a sort
        first_nan = np.argmax(np.isnan(a), axis=d, keepdims=True)
        idx = np.where(nans > 0, first_nan, _kth_stable_index(a, (n - 1) // 2, d))
    else:
        k = xp.where(nans > 0, n - nans, (n - 1) // 2)
        idx = xp.take_along_axis(xp.argsort(a, axis=d, kind="stable"), k, axis=d)
    values = _take_along(x, idx, d)
    if not keepdim:
        values, idx = squeeze(values, d), idx.squeeze(d)
    return return_types.median(values, wrap_array(as_array(idx).astype(np.int64, copy=False)))


def _nan_count(a: Any, axis: int, keepdims: bool) -> Any:
    return namespace_of(a).isnan(a).sum(axis=axis, keepdims=keepdims)


def _median_all_vjp(g, y, args, saved, needs, xp):
    """The gradient of the median of all elements is shared evenly among the elements equal to it
    (NaNs, when it is NaN), as in torch."""
    x = xp.data(args[0])
    v = xp.data(y)
    hit = (x == v) | ((x != x) & (v != v))
    return (g * (hit / hit.sum()).astype(x.dtype),)


def nanmedian(x: Any, dim: Any = None, keepdim: bool = False) -> Any:
    """The lower median ignoring NaNs (torch.nanmedian): a 0-d tensor, or ``(values, indices)`` along
    ``dim``; a slice of only NaNs gives NaN.

    Example:
        >>> import downslope as ds
        >>> ds.nanmedian(ds.tensor([1.0, float("nan"), 3.0, 2.0]))
        tensor(2.)
    """
    x = _lift(x)
    _unordered(x, "nanmedian")
    if x.array.dtype.kind != "f":
        if dim is not None:
            _check_reduced_size("nanmedian", x, _dim(dim, x.ndim, "nanmedian"))
        return median(x, dim, keepdim)
    if dim is None:
        flat = reshape(x, (-1,))
        if flat.shape[0] == 0:  # torch: NaN
            return record_op(namespace_of(x.array).full((), np.nan, x.array.dtype), (x,), _median_all_vjp)
        value = nanmedian(flat.detach(), 0).values.array
        return record_op(value, (x,), _median_all_vjp)
    d = _dim(dim, x.ndim, "nanmedian")
    if x.ndim == 0:
        return return_types.nanmedian(clone(x), wrap_array(namespace_of(x.array).zeros((), np.int64)))
    a = x.array
    _check_reduced_size("nanmedian", x, d)
    xp = namespace_of(a)
    valid = a.shape[d] - _nan_count(a, d, True)
    # the lower median of the non-NaN values (NaNs sort last); a row of only NaNs takes its first NaN
    k = xp.where(valid > 0, (valid - 1) // 2, 0)
    idx = xp.take_along_axis(xp.argsort(a, axis=d, kind="stable"), k, axis=d)
    values = _take_along(x, idx, d)
    if not keepdim:
        values, idx = squeeze(values, d), idx.squeeze(d)
    return return_types.nanmedian(values, wrap_array(as_array(idx).astype(np.int64, copy=False)))


def mode(x: Any, dim: int = -1, keepdim: bool = False) -> Any:
    """``(values, indices)``: the most frequent value along ``dim`` (the smallest of equally frequent
    ones) and the index of its last occurrence, as torch.mode; the gradient goes to that index. A NaN
    equals nothing, so each NaN counts once.

    Example:
        >>> import downslope as ds
        >>> ds.mode(ds.tensor([3, 1, 1, 3, 2, 3, 1]))
        mode(values=tensor(1), indices=tensor(6))
    """
    x = _lift(x)
    _unordered(x, "mode")
    d = _dim(dim, x.ndim, "mode")
    if x.ndim == 0:
        return return_types.mode(clone(x), wrap_array(namespace_of(x.array).zeros((), np.int64)))
    a = x.array
    _check_reduced_size("mode", x, d)
    moved = np.moveaxis(to_host(a), d, -1)  # host: the run-length search below is host work
    order = np.argsort(moved, axis=-1, kind="stable")  # host: as above
    s = np.take_along_axis(moved, order, axis=-1)  # host: as above
    n = s.shape[-1]
    # a run starts where a value differs from the one before (NaN != NaN: each NaN is a run of its own)
    starts = np.ones(s.shape, bool)  # host: as above
    starts[..., 1:] = s[..., 1:] != s[..., :-1]
    pos = np.arange(n)  # host: as above
    first_of_run = np.where(starts, pos, 0)  # host: as above
    first_of_run = np.maximum.accumulate(first_of_run, axis=-1)  # host: as above
    length = pos - first_of_run + 1  # length of the run so far: the full length at each run's last element
    ends = np.ones(s.shape, bool)  # host: as above
    ends[..., :-1] = starts[..., 1:]
    score = np.where(ends, length, 0)  # host: as above
    # the first maximum in sorted order is the smallest most frequent value; its run's last element
    # holds (with the stable sort) the largest original index
    best = np.argmax(score, axis=-1)[..., None]  # host: as above
    idx = np.take_along_axis(order, best, axis=-1)  # host: as above
    idx = np.moveaxis(idx, -1, d)  # host: as above
    idx = like(as_array(idx), a)  # back on the input's device
    values = _take_along(x, idx, d)
    if not keepdim:
        values, idx = squeeze(values, d), idx.squeeze(d)
    return return_types.mode(values, wrap_array(idx.astype(np.int64, copy=False)))


def _check_reduced_size(name: str, x: Tensor, d: int) -> None:
    """torch's error for a reduction with indices along a dim of size 0 (whatever the other dims)."""
    if x.ndim and x.shape[d] == 0:
        raise OutOfRangeError(
            f"{name}(): expected reduction dim {d} to have non-zero size (input of shape {tuple(x.shape)})"
        )


_INTERPOLATIONS = ("linear", "lower", "higher", "midpoint", "nearest")


def _quantile(name: str, x: Any, q: Any, dim: Any, keepdim: bool, interpolation: str, ignore_nan: bool) -> Tensor:
    x = _lift(x)
    a = x.array
    if a.dtype not in (np.float32, np.float64):
        raise DTypeError(f"{name}: expected a float32 or float64 input tensor, got {a.dtype}")  # torch: RuntimeError
    if a.size == 0:
        raise ShapeError(f"{name}: expected a non-empty input tensor, got shape {tuple(x.shape)}")
    if not isinstance(interpolation, str) or interpolation not in _INTERPOLATIONS:
        raise InvalidValueError(
            f"{name}: interpolation must be one of linear, lower, higher, midpoint or nearest, got {interpolation!r}"
        )
    if isinstance(q, Tensor):
        if q.array.dtype != a.dtype:
            raise DTypeError(f"{name}: q must have the input's dtype {a.dtype}, got {q.array.dtype}")
        if q.ndim > 1:
            raise ShapeError(f"{name}: q must be a number or a 1-D tensor, got shape {tuple(q.shape)}")
        qa = np.asarray(to_host(as_array(q.array)), dtype=a.dtype)  # host: q's values are checked and become ranks
        scalar = q.ndim == 0
    elif isinstance(q, (bool, np.bool_)) or not isinstance(q, (int, float, np.integer, np.floating)):
        raise ArgumentTypeError(f"{name}: q must be a number or a tensor, got {type(q).__name__}")
    else:
        qa, scalar = np.asarray(q, dtype=a.dtype), True  # host: a Python number
    qa = qa.reshape(-1)
    bad = ~((qa >= 0) & (qa <= 1))
    if bad.any():
        raise InvalidValueError(f"{name}: q must be in the range [0, 1], got {qa[bad][0].item()}")  # host: the message
    if dim is None:
        work, d = reshape(x, (-1,)), 0
    else:
        if not isinstance(dim, (int, np.integer)) or isinstance(dim, bool):
            raise ArgumentTypeError(f"{name}: dim must be an int or None, got {dim!r}")
        d = _dim(int(dim), x.ndim, name)
        work = reshape(x, (1,)) if x.ndim == 0 else x
    _, order, _ = _sorted(work, d, False, True)
    srt = movedim(_take_along(work, order, d), d, -1)  # (..., n), NaNs last
    s = srt.array
    n = s.shape[-1]
    k = qa.shape[0]
    qv = like(as_array(qa), s).reshape((k,) + (1,) * s.ndim)  # the checked q on the data's device
    xp = namespace_of(s)
    nans = xp.isnan(s)
    if ignore_nan:
        valid = (n - nans.sum(axis=-1, keepdims=True)).astype(s.dtype)
        ranks = qv * (valid - 1)
        ranks = xp.where(ranks < 0, 0, ranks).astype(s.dtype)
    else:
        ranks = xp.where(nans.any(axis=-1, keepdims=True), s.dtype.type(n - 1), qv * s.dtype.type(n - 1))
    ranks = xp.broadcast_to(ranks, (k,) + s.shape[:-1] + (1,))
    if interpolation == "lower":
        ranks = xp.floor(ranks)
    elif interpolation == "higher":
        ranks = xp.ceil(ranks)
    elif interpolation == "nearest":
        ranks = xp.round(ranks)  # half to even, as torch's round
    full = broadcast_to(srt, (k,) + s.shape)
    below = ranks.astype(np.int64)
    out = _take_along(full, below, full.ndim - 1)
    if interpolation in ("linear", "midpoint"):
        w = xp.full_like(ranks, 0.5) if interpolation == "midpoint" else ranks - below.astype(ranks.dtype)
        above = _take_along(full, xp.ceil(ranks).astype(np.int64), full.ndim - 1)
        # torch's lerp: from the nearer end, so that w = 0 and w = 1 give the ends exactly
        step = above - out
        out = where(wrap_array(w < 0.5), out + wrap_array(w) * step, above - step * wrap_array(1 - w))
    out = squeeze(out, -1)  # (k, *rest)
    if keepdim:
        out = reshape(out, (k,) + (1,) * x.ndim) if dim is None else reshape(out, (k,) + _kept(x.shape, d))
    if scalar:
        out = squeeze(out, 0)
    return out


def _kept(shape: tuple[int, ...], d: int) -> tuple[int, ...]:
    return tuple(1 if i == d else s for i, s in enumerate(shape))


def quantile(x: Any, q: Any, dim: Any = None, keepdim: bool = False, *, interpolation: str = "linear") -> Tensor:
    """The ``q``-th quantiles of ``x`` along ``dim`` (all elements by default), torch.quantile: ``q`` a
    number or a 1-D tensor (whose dim comes first in the result), ``interpolation`` between the two
    nearest ranks 'linear', 'lower', 'higher', 'midpoint' or 'nearest'. A slice with a NaN gives NaN.
    The gradient goes to the one or two sorted values used, with their interpolation weights.

    Example:
        >>> import downslope as ds
        >>> ds.quantile(ds.tensor([1.0, 2.0, 4.0, 5.0]), 0.5)
        tensor(3.)
    """
    return _quantile("quantile", x, q, dim, keepdim, interpolation, False)


def nanquantile(x: Any, q: Any, dim: Any = None, keepdim: bool = False, *, interpolation: str = "linear") -> Tensor:
    """:func:`quantile` ignoring NaNs (torch.nanquantile); a slice of only NaNs gives NaN.

    Example:
        >>> import downslope as ds
        >>> ds.nanquantile(ds.tensor([1.0, float("nan"), 3.0]), 0.5)
        tensor(2.)
    """
    return _quantile("nanquantile", x, q, dim, keepdim, interpolation, True)


def searchsorted(
    sorted_sequence: Any,
    input: Any,
    *,
    out_int32: bool = False,
    right: bool = False,
    side: str | None = None,
    sorter: Any = None,
) -> Tensor:
    """Indices where ``input``'s values would go in ``sorted_sequence`` (sorted along its last dim) to
    keep it sorted (torch.searchsorted): a 1-D sequence serves every value; an N-D one matches
    ``input``'s leading dims. ``right``/``side='right'`` gives the index after equal values; ``sorter``
    holds the indices that sort an unsorted sequence. int64 (int32 with ``out_int32``), no gradient.

    Example:
        >>> import downslope as ds
        >>> ds.searchsorted(ds.tensor([1, 3, 5, 7]), ds.tensor([3, 6, 9]))
        tensor([1, 3, 4])
    """
    seq = _lift(sorted_sequence)
    scalar = not isinstance(input, Tensor)
    values = _lift(input, seq if scalar else None)
    if side is not None:
        if side not in ("left", "right"):
            raise InvalidValueError(f"searchsorted: side can only be 'left' or 'right', got {side!r}")
        if right and side == "left":
            raise InvalidValueError("searchsorted: side and right can't be set to opposites (side='left', right=True)")
        right = side == "right"
    if seq.ndim == 0:
        raise ShapeError("searchsorted: the boundaries tensor must have at least one dimension, got a 0-d tensor")
    s = seq.array
    v = values.array
    if sorter is not None:
        order = to_host(_lift(sorter).array)  # host: checked here, then used by the host search below
        if order.dtype.kind not in "iu" or order.shape != s.shape:
            raise InvalidValueError(
                f"searchsorted: sorter must be an integer tensor of the boundaries' shape {tuple(seq.shape)}, "
                f"got {order.dtype} of shape {tuple(order.shape)}"
            )
        if order.size and (order.min() < 0 or order.max() >= s.shape[-1]):
            raise OutOfRangeError(f"searchsorted: sorter index out of range [0, {s.shape[-1]})")
        s = np.take_along_axis(to_host(s), order, axis=-1)  # host: as above
    if s.ndim > 1 and (v.ndim != s.ndim or v.shape[:-1] != s.shape[:-1]):
        raise ShapeError(
            f"searchsorted: the boundaries tensor must be 1-D or have the input's leading dims, got boundaries "
            f"of shape {tuple(seq.shape)} and input of shape {tuple(values.shape)}"
        )
    host_s, host_v = to_host(s), to_host(v)  # host: np.searchsorted is host work
    # NaN boundaries break NumPy's order (NaN last, above +inf) and torch's search (every comparison
    # with NaN false); only the binary search written out follows torch's path through them
    nan_bounds = host_s.dtype.kind in "fc" and bool(np.isnan(host_s).any())  # host: as above
    how: Any = "right" if right else "left"
    if s.ndim == 1 and not nan_bounds:
        out = np.searchsorted(host_s, host_v, side=how)  # host: as above
    else:
        # rows spelled out, not -1: a sequence or values with no elements still reshape
        rows = math.prod(s.shape[:-1])
        flat_s = host_s.reshape(rows, host_s.shape[-1])
        flat_v = host_v.reshape(rows, host_v.shape[-1]) if s.ndim > 1 else host_v.reshape(1, host_v.size)
        if nan_bounds or flat_v.shape[1] < _ROW_SEARCH_MIN_VALUES:
            out = _binary_search_rows(flat_s, flat_v, right)
        else:  # long rows of values: NumPy's search per row beats the all-rows passes (measured)
            out = np.zeros(flat_v.shape, np.int64)  # host: as above
            for i in range(rows):
                out[i] = np.searchsorted(flat_s[i], flat_v[i], side=how)  # host: as above
        out = out.reshape(v.shape)
    result = np.asarray(out, np.int32 if out_int32 else np.int64)  # host: as above
    return wrap_array(like(as_array(result), v))  # back on the values' device


# values per row from which a loop of np.searchsorted over the rows is faster than searching all rows at
# once (2-core machine: 1000 rows x 16 bounds x 64 values 12 vs 16 ms, 10000 x 100 x 10 90 vs 56 ms)
_ROW_SEARCH_MIN_VALUES = 32


def _binary_search_rows(bounds: np.ndarray, values: np.ndarray, right: bool) -> np.ndarray:
    """torch's binary search (lower bound, or upper bound with ``right``) of each row of ``values``
    (rows, m) in the same row of ``bounds`` (rows, k), all rows at once: a Python loop over rows cost
    ~7 us a row (neural spline flows search one short row per element). ``bounds`` with one row serves
    every row of ``values``. Same midpoints and comparisons as torch, so NaN lands where torch puts it."""
    k = bounds.shape[-1]
    flat = bounds.reshape(-1)
    row = np.arange(bounds.shape[0], dtype=np.int64)  # host: searchsorted searches host copies
    base = row[:, None] * k if bounds.shape[0] > 1 else 0
    lo = np.zeros(values.shape, np.int64)  # host: as above
    hi = np.full(values.shape, k, np.int64)  # host: as above
    # each step at least halves hi - lo (k at the start), so bit_length(k) steps reach lo == hi everywhere
    for _ in range(k.bit_length()):
        mid = (lo + hi) >> 1
        probe = flat[base + np.minimum(mid, k - 1)]  # mid == k only where the search has ended
        # torch's `!(bound > value)` (right) and `!(bound >= value)` (left): NaN comparisons go right
        go_right = ~(probe > values) if right else ~(probe >= values)
        # where the search has ended (lo == hi == mid) both updates keep lo == hi: mid + 1 is clamped to hi
        lo = np.minimum(np.where(go_right, mid + 1, lo), hi)
        hi = np.where(go_right, hi, mid)
    return lo


def bucketize(input: Any, boundaries: Any, *, out_int32: bool = False, right: bool = False) -> Tensor:
    """The bucket of each value of ``input`` between the 1-D sorted ``boundaries`` (torch.bucketize):
    with ``right=False`` bucket i holds boundaries[i-1] < x <= boundaries[i]; with ``right=True``
    boundaries[i-1] <= x < boundaries[i].

    Example:
        >>> import downslope as ds
        >>> ds.bucketize(ds.tensor([1, 5, 7, 9]), ds.tensor([1, 5, 7]), right=True)
        tensor([1, 2, 3, 3])
    """
    b = _lift(boundaries)
    if b.ndim != 1:
        raise ShapeError(f"bucketize: the boundaries tensor must be 1-D, got shape {tuple(b.shape)}")
    return searchsorted(b, input, out_int32=out_int32, right=right)


def unique_consecutive(
    x: Any, return_inverse: bool = False, return_counts: bool = False, dim: int | None = None
) -> Any:
    """Each run of equal consecutive values (or slices along ``dim``) kept once (torch.unique_consecutive);
    with ``return_inverse`` also each element's run number, with ``return_counts`` each run's length.

    Example:
        >>> import downslope as ds
        >>> ds.unique_consecutive(ds.tensor([1, 1, 2, 2, 3, 1]), return_counts=True)
        (tensor([1, 2, 3, 1]), tensor([2, 2, 1, 1]))
    """
    x = _lift(x)
    a = to_host(x.array)  # host: run detection is host work
    if dim is None:
        flat = a.reshape(-1)
        change = flat[1:] != flat[:-1]
        starts = np.concatenate([np.ones(min(flat.size, 1), bool), change])  # host: as above
        out = flat[starts]
        inverse_shape = a.shape
        n = flat.size
    else:
        if x.ndim == 0:
            raise OutOfRangeError(f"unique_consecutive: dimension specified as {dim} but the tensor has no dimensions")
        d = _dim(dim, x.ndim, "unique_consecutive")
        rest = math.prod(a.shape[:d] + a.shape[d + 1 :])
        if a.shape[d] and not rest:
            raise ShapeError(
                f"unique_consecutive: the tensor of shape {tuple(x.shape)} has 0-sized dims other than dim {d}, "
                "so unique cannot be applied along it"
            )
        moved = np.moveaxis(a, d, 0).reshape(a.shape[d], rest)  # host: as above
        change = (moved[1:] != moved[:-1]).any(axis=1)
        starts = np.concatenate([np.ones(min(moved.shape[0], 1), bool), change])  # host: as above
        out = np.compress(starts, a, axis=d)
        inverse_shape = (moved.shape[0],)
        n = moved.shape[0]
    result = [wrap_array(like(as_array(np.ascontiguousarray(out)), x.array))]  # host: as above
    if return_inverse:
        inverse = (np.cumsum(starts) - 1).astype(np.int64)  # host: as above
        result.append(wrap_array(like(as_array(inverse.reshape(inverse_shape)), x.array)))
    if return_counts:
        where_starts = np.flatnonzero(starts)  # host: as above
        counts = np.diff(np.append(where_starts, n)).astype(np.int64)  # host: as above
        result.append(wrap_array(like(as_array(counts), x.array)))
    return result[0] if len(result) == 1 else tuple(result)
