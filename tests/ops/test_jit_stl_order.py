"""The compiled steps shared by ``_jit_stl_order`` and ``_jit_stl_sort``: libstdc++'s median-of-three
choice (``__move_median_to_first``, ties included) and ``__lg``, against their C++ definitions written
out in Python."""

from __future__ import annotations

import itertools

import pytest

pytest.importorskip("numba")

from downslope.ops import _jit_stl_order  # noqa: E402


def _libstdcxx_median(x: int, y: int, z: int, a: int, b: int, c: int) -> int:
    # std::__move_median_to_first, comparison for comparison
    if x < y:
        if y < z:
            return b
        elif x < z:
            return c
        else:
            return a
    elif x < z:
        return a
    elif y < z:
        return c
    else:
        return b


def test_median_position_is_libstdcxx_choice_for_every_order_and_tie() -> None:
    for x, y, z in itertools.product(range(3), repeat=3):
        for keys in ((x, y, z), (float(x), float(y), float(z))):
            assert _jit_stl_order.median_position(*keys, 10, 20, 30) == _libstdcxx_median(x, y, z, 10, 20, 30)


def test_lg_is_floor_log2() -> None:
    for n in [1, 2, 3, 4, 5, 15, 16, 17, 1023, 1024, 10**6]:
        assert _jit_stl_order.lg(n) == n.bit_length() - 1
