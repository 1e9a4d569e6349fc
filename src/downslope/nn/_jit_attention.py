"""Compiled (numba) softmax of attention scores: scale, the causal mask and the softmax of each
row in one pass over the row while it sits in the cache; imported only when ``_jit.kernels``
says the compiled path applies (numba installed, not switched off, host float32/float64 arrays).

NumPy takes eight passes over the (..., L, S) scores for this (scale, mask, max, the non-finite
max, subtract, exp, sum, divide), each a full sweep through memory; for the causal mask it also
works on the masked upper triangle, which this kernel only zeroes. Row ``i`` of a causal matrix
has the keys ``j <= i`` (PyTorch's top-left alignment, also for L != S).

The arithmetic is the NumPy path's: ``m = max(row)`` (a row whose max is not finite shifts by 0:
one masked out entirely, all -inf, gives zeros, as PyTorch's "safe softmax"), ``e = exp(row - m)``,
``s = sum(e)`` (a sum of 0 counts as 1), then ``e * (1 / s)``. ``exp`` is ``jit_math.exp_flush``
(written out to run in SIMD lanes; results that would be subnormal are 0, which keeps rows of
masked keys fast). It takes ``x <= 0`` (a score minus its row's max): a row whose max is +inf is
left to the NumPy path (:func:`softmax_rows` answers False).

Example:
    >>> import numpy as np
    >>> from downslope.nn import _jit
    >>> k = _jit.kernels()
    >>> if k is not None:
    ...     from downslope.nn import _jit_attention as a
    ...     s = np.zeros((1, 2, 2), np.float32)
    ...     assert a.softmax_rows(s, 1.0, True)
    ...     assert s.tolist() == [[[1.0, 0.0], [0.5, 0.5]]]
"""

from __future__ import annotations

import numba
import numpy as np

from .. import parallel as _parallel
from ..jit_math import cast, exp_flush, maxnum

# contract: a * b + c as one fused multiply-add; nothing else is relaxed
_jit = numba.njit(cache=True, nogil=True, fastmath={"contract"}, error_model="numpy")
# the row sums alone may be reassociated (several partial sums in SIMD lanes, as NumPy's)
_jit_sum = numba.njit(cache=True, nogil=True, fastmath={"contract", "reassoc"}, error_model="numpy")

# LLVM vectorises these loops 64 elements per iteration (four 16-lane registers) and runs the
# rest one element at a time: 1.6 ns per element for rows of 16 to 56 keys, 0.66 for 64, 0.35 for
# 256 (float32, AVX-512). A causal row's keys end at a different place in each row, so its loops
# run to ``stop``, the count rounded up to a multiple of _BLOCK, and the keys from ``n`` on are
# selected away (-inf for the max, 0 after exp): 8,192 causal rows of 64 keys took 0.37 ms so,
# against 0.62 with the exact counts and 0.78 with the extra keys first set to -inf.
_BLOCK = 64


@_jit
def _scaled_max(x, n, stop, scale):
    """The max of ``x[:n] * scale`` (NaN skipped), looping to ``stop``; ``x`` is only read."""
    m = x[0] * scale
    low = cast(-np.inf, scale)
    for j in range(stop):
        v = x[j] * scale
        m = maxnum(m, v if j < n else low)
    return m


@_jit_sum
def _exp_sum(x, n, stop, scale, m):
    """``x[:n] = exp(x[:n] * scale - m)`` and ``x[n:stop] = 0``; returns their sum (in SIMD lanes of
    the row's dtype, as PyTorch's CPU kernels accumulate)."""
    s = cast(0.0, m)
    zero = cast(0.0, m)
    for j in range(stop):
        e = exp_flush(x[j] * scale - m)
        e = e if j < n else zero
        x[j] = e
        s += e
    return s


@_jit
def _normalize(x, stop, inv):
    """``x[:stop] *= inv``; the rest of the row (keys masked out by the causal mask) 0."""
    for j in range(stop):
        x[j] *= inv
    for j in range(stop, x.shape[0]):
        x[j] = 0


@_jit
def _rows(s, scale, causal, lo, hi):
    """Rows [lo, hi) of the (R, S) scores ``s`` (the rows of (..., L, S) matrices: ``causal`` is L
    for the causal mask, else 0), in place; returns the number of rows whose max was +inf (left as
    they were, for the NumPy path)."""
    width = s.shape[1]
    odd = 0
    for r in range(lo, hi):
        row = s[r]
        n = width
        if causal > 0:
            n = min(r % causal + 1, width)
        stop = min(n + (-n) % _BLOCK, width)
        m = _scaled_max(row, n, stop, scale)
        if m == np.inf:
            odd += 1
            continue
        if not m > -np.inf:  # every entry -inf (or NaN): shift by 0, as the NumPy path
            m = cast(0.0, m)
        total = _exp_sum(row, n, stop, scale, m)
        one = cast(1.0, m)
        _normalize(row, stop, one / (total if total != 0 else one))  # a sum of 0: the row stays 0
    return odd


def softmax_rows(s: np.ndarray, scale: float, causal: bool) -> bool:
    """The attention probabilities of the C-contiguous scores ``s`` (..., L, S), in place: scaled by
    ``scale``, keys ``j > i`` masked out when ``causal``, softmax over the last dim. False (and
    ``s`` to be recomputed) where a row's max was +inf."""
    length, width = s.shape[-2], s.shape[-1]
    flat = s.reshape(-1, width)
    value = s.dtype.type(scale)
    rows_causal = length if causal else 0

    def part(lo: int, hi: int) -> int:
        return int(_rows(flat, value, rows_causal, lo, hi))

    odd = _parallel.over_parts(s, flat.shape[0], s.size, part)
    return sum(odd) == 0
