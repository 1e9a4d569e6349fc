"""The orders of GCC's C++ standard library (libstdc++) ``std::sort``, ``std::nth_element`` and
``std::partial_sort`` for a given ``less(a, b)``, step by step, for the results of torch's CPU kernels
that depend on them where equal elements meet: which of equal values ``topk`` lists first, and the
order of ``unique(dim=...)``'s slices when NaN makes its row comparison no strict weak order. torch's
Linux builds use libstdc++; these are its algorithms (introsort and introselect: median-of-three
pivots, unguarded partitions, the heap fallback at the depth limit, insertion sorts of 16 elements).

Pure Python on a list, so the callers keep their fast paths and come here only where equal elements
make the order matter.

Example:
    >>> items = [(1, 0), (0, 1), (1, 2), (0, 3)]
    >>> stl_sort(items, lambda a, b: a[0] < b[0])
    >>> [i for _, i in items]
    [1, 3, 0, 2]
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["stl_nth_element", "stl_partial_sort", "stl_sort"]

Less = Callable[[Any, Any], bool]
_THRESHOLD = 16  # libstdc++'s _S_threshold


def _lg(n: int) -> int:
    return n.bit_length() - 1


def stl_sort(q: list[Any], less: Less, first: int = 0, last: int | None = None) -> None:
    """``std::sort(q.begin() + first, q.begin() + last, less)`` in place."""
    last = len(q) if last is None else last
    if last - first > 1:
        _introsort_loop(q, first, last, _lg(last - first) * 2, less)
        _final_insertion_sort(q, first, last, less)


def stl_nth_element(q: list[Any], nth: int, less: Less) -> None:
    """``std::nth_element(q.begin(), q.begin() + nth, q.end(), less)`` in place."""
    first, last = 0, len(q)
    if first == last or nth == last:
        return
    depth = _lg(last - first) * 2
    while last - first > 3:
        if depth == 0:
            _heap_select(q, first, nth + 1, last, less)
            q[first], q[nth] = q[nth], q[first]
            return
        depth -= 1
        cut = _partition_pivot(q, first, last, less)
        if cut <= nth:
            first = cut
        else:
            last = cut
    _insertion_sort(q, first, last, less)


def stl_partial_sort(q: list[Any], middle: int, less: Less) -> None:
    """``std::partial_sort(q.begin(), q.begin() + middle, q.end(), less)`` in place."""
    _heap_select(q, 0, middle, len(q), less)
    _sort_heap(q, 0, middle, less)


def _introsort_loop(q: list[Any], first: int, last: int, depth: int, less: Less) -> None:
    while last - first > _THRESHOLD:
        if depth == 0:
            _heap_select(q, first, last, last, less)
            _sort_heap(q, first, last, less)
            return
        depth -= 1
        cut = _partition_pivot(q, first, last, less)
        _introsort_loop(q, cut, last, depth, less)
        last = cut


def _partition_pivot(q: list[Any], first: int, last: int, less: Less) -> int:
    mid = first + (last - first) // 2
    _move_median_to_first(q, first, first + 1, mid, last - 1, less)
    return _unguarded_partition(q, first + 1, last, first, less)


def _move_median_to_first(q: list[Any], result: int, a: int, b: int, c: int, less: Less) -> None:
    if less(q[a], q[b]):
        if less(q[b], q[c]):
            pick = b
        elif less(q[a], q[c]):
            pick = c
        else:
            pick = a
    elif less(q[a], q[c]):
        pick = a
    elif less(q[b], q[c]):
        pick = c
    else:
        pick = b
    q[result], q[pick] = q[pick], q[result]


def _unguarded_partition(q: list[Any], first: int, last: int, pivot: int, less: Less) -> int:
    # "unguarded": the median of three stops both scans in a strict weak order; an order that is none
    # (NaN) could run them off the ends, which C++ leaves undefined: stopped at the ends here
    end = len(q)
    while True:
        while first < end - 1 and less(q[first], q[pivot]):
            first += 1
        last -= 1
        while last > 0 and less(q[pivot], q[last]):
            last -= 1
        if not first < last:
            return first
        q[first], q[last] = q[last], q[first]
        first += 1


def _insertion_sort(q: list[Any], first: int, last: int, less: Less) -> None:
    if first == last:
        return
    for i in range(first + 1, last):
        if less(q[i], q[first]):
            value = q[i]
            q[first + 1 : i + 1] = q[first:i]
            q[first] = value
        else:
            _unguarded_linear_insert(q, i, less)


def _unguarded_linear_insert(q: list[Any], last: int, less: Less) -> None:
    value = q[last]
    prev = last - 1
    while prev >= 0 and less(value, q[prev]):
        q[last] = q[prev]
        last = prev
        prev -= 1
    q[last] = value


def _final_insertion_sort(q: list[Any], first: int, last: int, less: Less) -> None:
    if last - first > _THRESHOLD:
        _insertion_sort(q, first, first + _THRESHOLD, less)
        for i in range(first + _THRESHOLD, last):
            _unguarded_linear_insert(q, i, less)
    else:
        _insertion_sort(q, first, last, less)


def _heap_select(q: list[Any], first: int, middle: int, last: int, less: Less) -> None:
    _make_heap(q, first, middle, less)
    for i in range(middle, last):
        if less(q[i], q[first]):
            _pop_heap(q, first, middle, i, less)


def _sort_heap(q: list[Any], first: int, last: int, less: Less) -> None:
    while last - first > 1:
        last -= 1
        _pop_heap(q, first, last, last, less)


def _make_heap(q: list[Any], first: int, last: int, less: Less) -> None:
    length = last - first
    if length < 2:
        return
    parent = (length - 2) // 2
    while True:
        _adjust_heap(q, first, parent, length, q[first + parent], less)
        if parent == 0:
            return
        parent -= 1


def _pop_heap(q: list[Any], first: int, last: int, result: int, less: Less) -> None:
    value = q[result]
    q[result] = q[first]
    _adjust_heap(q, first, 0, last - first, value, less)


def _adjust_heap(q: list[Any], first: int, hole: int, length: int, value: Any, less: Less) -> None:
    top = hole
    child = hole
    while child < (length - 1) // 2:
        child = 2 * (child + 1)
        if less(q[first + child], q[first + child - 1]):
            child -= 1
        q[first + hole] = q[first + child]
        hole = child
    if length & 1 == 0 and child == (length - 2) // 2:
        child = 2 * (child + 1)
        q[first + hole] = q[first + child - 1]
        hole = child - 1
    parent = (hole - 1) // 2
    while hole > top and less(q[first + parent], value):
        q[first + hole] = q[first + parent]
        hole = parent
        parent = (hole - 1) // 2
    q[first + hole] = value
