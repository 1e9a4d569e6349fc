"""Compiled (numba) libstdc++ ``std::sort`` of (key, index) pairs, row by row: torch's CPU
``sort(stable=False)`` sorts each row's values and indices together with it, so its order among equal
values is this algorithm's (introsort: median-of-three unguarded partitions, the heap sort at the
depth limit, then an insertion sort of the first 16 elements and a linear insertion of the rest).

The same steps as ``_jit_stl_order._sort`` and ``_stl_order.stl_sort`` (see there), which order an
array of positions through a ``rank`` lookup; here the keys move with the indices, as in torch's
kernel, so that a long row is read in order (the lookups' random reads cost 2-4x the sort on rows of
a million). Imported only through ``jit_gate.kernels``.

Example:
    >>> import numpy as np
    >>> from downslope import jit_gate
    >>> keys = np.zeros((1, 19))
    >>> idx = np.arange(19)[None].copy()
    >>> k = jit_gate.kernels("downslope.ops._jit_stl_sort", keys, idx)
    >>> if k is not None:
    ...     k.sort_rows(keys, idx)
    ...     assert idx[0, :3].tolist() == [9, 18, 17]
"""

from __future__ import annotations

import numba

# numba's on-disk cache tracks this file only: after editing these shared steps in _jit_stl_order, clear
# the __pycache__ *.nbi/*.nbc files of this module (or set NUMBA_CACHE_DIR to a fresh folder)
from ._jit_stl_order import lg, median_position

_jit = numba.njit(cache=True, nogil=True)
_THRESHOLD = 16  # libstdc++'s _S_threshold


@_jit
def _swap(k, v, i, j):
    k[i], k[j] = k[j], k[i]
    v[i], v[j] = v[j], v[i]


@_jit
def _move_median_to_first(k, v, result, a, b, c):
    _swap(k, v, result, median_position(k[a], k[b], k[c], a, b, c))


@_jit
def _partition_pivot(k, v, first, last):
    mid = first + (last - first) // 2
    _move_median_to_first(k, v, first, first + 1, mid, last - 1)
    pivot = k[first]  # the pivot stays at `first` through the partition below
    first += 1
    while True:
        while k[first] < pivot:
            first += 1
        last -= 1
        while pivot < k[last]:
            last -= 1
        if not first < last:
            return first
        _swap(k, v, first, last)
        first += 1


@_jit
def _linear_insert(k, v, last):
    key, value = k[last], v[last]
    prev = last - 1
    while prev >= 0 and key < k[prev]:  # libstdc++'s is unguarded (the minimum sits in the first 16)
        k[last], v[last] = k[prev], v[prev]
        last = prev
        prev -= 1
    k[last], v[last] = key, value


@_jit
def _insertion_sort(k, v, first, last):
    if first == last:
        return
    for i in range(first + 1, last):
        if k[i] < k[first]:
            key, value = k[i], v[i]
            for j in range(i, first, -1):
                k[j], v[j] = k[j - 1], v[j - 1]
            k[first], v[first] = key, value
        else:
            _linear_insert(k, v, i)


@_jit
def _adjust_heap(k, v, first, hole, length, key, value):
    top = hole
    child = hole
    while child < (length - 1) // 2:
        child = 2 * (child + 1)
        if k[first + child] < k[first + child - 1]:
            child -= 1
        k[first + hole], v[first + hole] = k[first + child], v[first + child]
        hole = child
    if length & 1 == 0 and child == (length - 2) // 2:
        child = 2 * (child + 1)
        k[first + hole], v[first + hole] = k[first + child - 1], v[first + child - 1]
        hole = child - 1
    parent = (hole - 1) // 2
    while hole > top and k[first + parent] < key:
        k[first + hole], v[first + hole] = k[first + parent], v[first + parent]
        hole = parent
        parent = (hole - 1) // 2
    k[first + hole], v[first + hole] = key, value


@_jit
def _pop_heap(k, v, first, last, result):
    key, value = k[result], v[result]
    k[result], v[result] = k[first], v[first]
    _adjust_heap(k, v, first, 0, last - first, key, value)


@_jit
def _heap_sort(k, v, first, last):
    """std::partial_sort(first, last, last): make_heap (by heap_select over an empty rest), sort_heap."""
    length = last - first
    if length >= 2:
        parent = (length - 2) // 2
        while True:
            _adjust_heap(k, v, first, parent, length, k[first + parent], v[first + parent])
            if parent == 0:
                break
            parent -= 1
    while last - first > 1:
        last -= 1
        _pop_heap(k, v, first, last, last)


@_jit
def _sort(k, v):
    n = k.shape[0]
    if n <= 1:
        return
    # introsort: each range's recursion runs on a disjoint range, so a stack keeps the result
    stack = [(0, n, lg(n) * 2)]
    while stack:
        lo, hi, depth = stack.pop()
        while hi - lo > _THRESHOLD:
            if depth == 0:
                _heap_sort(k, v, lo, hi)
                break
            depth -= 1
            cut = _partition_pivot(k, v, lo, hi)
            stack.append((cut, hi, depth))
            hi = cut
    if n > _THRESHOLD:
        _insertion_sort(k, v, 0, _THRESHOLD)
        for i in range(_THRESHOLD, n):
            _linear_insert(k, v, i)
    else:
        _insertion_sort(k, v, 0, n)


@_jit
def sort_rows(keys, idx):
    """Sort each row of ``keys`` (rows, n) ascending in place by libstdc++'s ``std::sort``, moving the
    same row of ``idx`` (rows, n) along; keys must be a strict weak order (no NaN)."""
    for r in range(keys.shape[0]):
        _sort(keys[r], idx[r])
