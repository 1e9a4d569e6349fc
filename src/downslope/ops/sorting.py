"""Sorting and order statistics: sort, argsort, topk, kthvalue, median."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..backend import as_array, namespace_of
from ..errors import OutOfRangeError
from ..tensor import Tensor, record_op, wrap_array
from .indexing import _take_along
from .operands import _dim, _lift
from .pointwise import clone
from .reductions import return_types
from .shape import reshape, squeeze


def _sorted(x: Any, dim: int, descending: bool, stable: bool) -> tuple[Tensor, np.ndarray, int]:
    x = _lift(x)
    d = _dim(dim, x.ndim, "sort")
    if x.ndim == 0:
        return x, np.zeros_like(x.array, dtype=np.int64), 0
    a = x.array
    if not descending:
        return x, np.argsort(a, axis=d, kind="stable" if stable else None), d
    # Descending, equal values in their original order, NaN first (torch counts NaN as the largest):
    # the reversed stable ascending sort of the reversed array (no negation: -x wraps unsigned ints).
    xp = namespace_of(a)
    rev = (slice(None),) * d + (slice(None, None, -1),)
    idx = xp.argsort(a[rev], axis=d, kind="stable")[rev]
    return x, (a.shape[d] - 1) - idx, d


def sort(x: Any, dim: int = -1, descending: bool = False, stable: bool = False) -> Any:
    """``(values, indices)`` sorted along ``dim`` (torch.sort); the gradient goes back to each value's place."""
    x, idx, d = _sorted(x, dim, descending, stable)
    if x.ndim == 0:
        return return_types.sort(clone(x), wrap_array(idx))
    return return_types.sort(_take_along(x, idx, d), wrap_array(idx.astype(np.int64)))


def argsort(x: Any, dim: int = -1, descending: bool = False, stable: bool = False) -> Tensor:
    """The indices that sort ``x`` along ``dim``."""
    return wrap_array(_sorted(x, dim, descending, stable)[1].astype(np.int64))


def topk(x: Any, k: int, dim: int = -1, largest: bool = True, sorted: bool = True) -> Any:
    """``(values, indices)`` of the k largest (or smallest) along ``dim`` (torch.topk)."""
    x = _lift(x)
    d = _dim(dim, x.ndim, "topk")
    n = x.shape[d] if x.ndim else 1
    if not 0 <= k <= n:
        raise OutOfRangeError(f"topk: k={k} is out of range for dimension {d} of size {n}")
    _, idx, d = _sorted(x, d, largest, True)
    if x.ndim == 0:
        return return_types.topk(clone(x), wrap_array(idx))
    idx = idx.take(range(k), axis=d)
    return return_types.topk(_take_along(x, idx, d), wrap_array(idx.astype(np.int64)))


def kthvalue(x: Any, k: int, dim: int = -1, keepdim: bool = False) -> Any:
    """``(values, indices)`` of the k-th smallest along ``dim`` (k from 1)."""
    x = _lift(x)
    d = _dim(dim, x.ndim, "kthvalue")
    n = x.shape[d] if x.ndim else 1
    if not 1 <= k <= n:
        raise OutOfRangeError(f"kthvalue: k={k} is out of range for dimension {d} of size {n}")
    _, idx, d = _sorted(x, d, False, True)
    idx = idx[(slice(None),) * d + (slice(k - 1, k),)] if x.ndim else idx
    values = _take_along(x, idx, d) if x.ndim else clone(x)
    if not keepdim and x.ndim:
        values, idx = squeeze(values, d), idx.squeeze(d)
    return return_types.kthvalue(values, wrap_array(as_array(idx).astype(np.int64, copy=False)))


def median(x: Any, dim: Any = None, keepdim: bool = False) -> Any:
    """The lower median (torch's): a 0-d tensor, or ``(values, indices)`` along ``dim``. A slice
    with a NaN has median NaN (with the index of its first NaN), as in torch."""
    x = _lift(x)
    if dim is None:
        flat = reshape(x, (-1,))
        if flat.shape[0] == 0 or flat.array.dtype.kind != "f":
            return kthvalue(flat, (flat.shape[0] + 1) // 2, 0).values
        value = median(flat.detach(), 0).values.array
        return record_op(value, (x,), _median_all_vjp)
    d = _dim(dim, x.ndim, "median")
    if x.ndim == 0 or x.array.dtype.kind != "f":
        r = kthvalue(x, (x.shape[d] + 1) // 2 if x.ndim else 1, d, keepdim)
        return return_types.median(r.values, r.indices)
    a = x.array
    xp = namespace_of(a)
    n = a.shape[d]
    # the lower median's place in the ascending stable sort, or the first NaN's (NaNs sort last, in order)
    nans = _nan_count(a, d, True)
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
