"""Compiled (numba) libstdc++ ``std::nth_element``, ``std::partial_sort`` and ``std::sort`` over an array
of positions ordered by keys (``less(a, b)`` is ``rank[a] < rank[b]``: integer ranks or float keys): the steps of
``ops._stl_order`` (see there), for ``topk``'s rows with ties, where the Python steps cost about 10 ms
for a row of 1000 elements. Imported only through ``jit_gate.kernels``.

Example:
    >>> import numpy as np
    >>> from downslope import jit_gate
    >>> k = jit_gate.kernels("downslope.ops._jit_stl_order", np.zeros(1))
    >>> if k is not None:
    ...     q = np.arange(4)
    ...     k.select_rows(q[None].copy(), np.array([[1, 0, 1, 0]]), 2, True)
"""

from __future__ import annotations

import numba

_jit = numba.njit(cache=True, nogil=True)
_THRESHOLD = 16


@_jit
def lg(n):
    """floor(log2(n)) for n >= 1 (libstdc++'s __lg: introsort's depth limit is twice it). Shared with
    ``_jit_stl_sort``."""
    r = 0
    while n > 1:
        n >>= 1
        r += 1
    return r


@_jit
def _less(q, rank, i, j):
    return rank[q[i]] < rank[q[j]]


@_jit
def median_position(x, y, z, a, b, c):
    """Which of the positions ``a``, ``b``, ``c`` holding keys ``x``, ``y``, ``z`` libstdc++'s
    ``__move_median_to_first`` picks (its comparisons in its order, so ties pick as it does). Shared with
    ``_jit_stl_sort``."""
    if x < y:
        if y < z:
            return b
        return c if x < z else a
    if x < z:
        return a
    return c if y < z else b


@_jit
def _move_median_to_first(q, rank, result, a, b, c):
    pick = median_position(rank[q[a]], rank[q[b]], rank[q[c]], a, b, c)
    q[result], q[pick] = q[pick], q[result]


@_jit
def _partition_pivot(q, rank, first, last):
    mid = first + (last - first) // 2
    _move_median_to_first(q, rank, first, first + 1, mid, last - 1)
    pivot = first
    first += 1
    while True:
        while _less(q, rank, first, pivot):
            first += 1
        last -= 1
        while _less(q, rank, pivot, last):
            last -= 1
        if not first < last:
            return first
        q[first], q[last] = q[last], q[first]
        first += 1


@_jit
def _linear_insert(q, rank, last):
    value = q[last]
    prev = last - 1
    while prev >= 0 and rank[value] < rank[q[prev]]:
        q[last] = q[prev]
        last = prev
        prev -= 1
    q[last] = value


@_jit
def _insertion_sort(q, rank, first, last):
    if first == last:
        return
    for i in range(first + 1, last):
        if _less(q, rank, i, first):
            value = q[i]
            for j in range(i, first, -1):
                q[j] = q[j - 1]
            q[first] = value
        else:
            _linear_insert(q, rank, i)


@_jit
def _adjust_heap(q, rank, first, hole, length, value):
    top = hole
    child = hole
    while child < (length - 1) // 2:
        child = 2 * (child + 1)
        if rank[q[first + child]] < rank[q[first + child - 1]]:
            child -= 1
        q[first + hole] = q[first + child]
        hole = child
    if length & 1 == 0 and child == (length - 2) // 2:
        child = 2 * (child + 1)
        q[first + hole] = q[first + child - 1]
        hole = child - 1
    parent = (hole - 1) // 2
    while hole > top and rank[q[first + parent]] < rank[value]:
        q[first + hole] = q[first + parent]
        hole = parent
        parent = (hole - 1) // 2
    q[first + hole] = value


@_jit
def _pop_heap(q, rank, first, last, result):
    value = q[result]
    q[result] = q[first]
    _adjust_heap(q, rank, first, 0, last - first, value)


@_jit
def _heap_select(q, rank, first, middle, last):
    length = middle - first
    if length >= 2:
        parent = (length - 2) // 2
        while True:
            _adjust_heap(q, rank, first, parent, length, q[first + parent])
            if parent == 0:
                break
            parent -= 1
    for i in range(middle, last):
        if _less(q, rank, i, first):
            _pop_heap(q, rank, first, middle, i)


@_jit
def _sort_heap(q, rank, first, last):
    while last - first > 1:
        last -= 1
        _pop_heap(q, rank, first, last, last)


@_jit
def _sort(q, rank, first, last):
    if last - first <= 1:
        return
    # introsort: each range's recursion runs on a disjoint range, so a stack keeps the result
    stack = [(first, last, lg(last - first) * 2)]
    while stack:
        lo, hi, depth = stack.pop()
        while hi - lo > _THRESHOLD:
            if depth == 0:
                _heap_select(q, rank, lo, hi, hi)
                _sort_heap(q, rank, lo, hi)
                break
            depth -= 1
            cut = _partition_pivot(q, rank, lo, hi)
            stack.append((cut, hi, depth))
            hi = cut
    if last - first > _THRESHOLD:
        _insertion_sort(q, rank, first, first + _THRESHOLD)
        for i in range(first + _THRESHOLD, last):
            _linear_insert(q, rank, i)
    else:
        _insertion_sort(q, rank, first, last)


@_jit
def _nth_element(q, rank, nth):
    first, last = 0, q.shape[0]
    if first == last or nth == last:
        return
    depth = lg(last - first) * 2
    while last - first > 3:
        if depth == 0:
            _heap_select(q, rank, first, nth + 1, last)
            q[first], q[nth] = q[nth], q[first]
            return
        depth -= 1
        cut = _partition_pivot(q, rank, first, last)
        if cut <= nth:
            first = cut
        else:
            last = cut
    _insertion_sort(q, rank, first, last)


@_jit
def select_rows(q, rank, k, sorted_):
    """torch's CPU topk order for each row: ``q`` (rows, n) holds 0..n-1 per row and is permuted in place;
    ``rank`` (rows, n) ranks each element, best first (equal values equal ranks)."""
    n = q.shape[1]
    for r in range(q.shape[0]):
        row, key = q[r], rank[r]
        if k * 64 <= n:
            _heap_select(row, key, 0, k, n)
            _sort_heap(row, key, 0, k)
        else:
            _nth_element(row, key, k - 1)
            if sorted_:
                _sort(row, key, 0, k - 1)
