"""Compiled (numba) softmax of attention scores: scale, the causal mask and the softmax of each
row in one pass over the row while it sits in the cache; imported only when ``_jit.kernels``
says the compiled path applies (numba installed, not switched off, host float32/float64 arrays).

NumPy takes eight passes over the (..., L, S) scores for this (scale, mask, max, the non-finite
max, subtract, exp, sum, divide), each a full sweep through memory; for the causal mask it also
works on the masked upper triangle, which this kernel only zeroes. Row ``i`` of a causal matrix
has the keys ``j <= i`` (PyTorch's top-left alignment, also for L != S).

The arithmetic is the NumPy path's: ``m = max(row)`` (a row whose max is not finite shifts by 0:
one masked out entirely, all -inf, gives zeros, as PyTorch's "safe softmax"), ``e = exp(row - m)``,
``s = sum(e)`` (a sum of 0 counts as 1), then ``e * (1 / s)``. ``exp`` is written out (Cephes'
polynomials for float32 and float64, relative error below 2.8e-8 and 2.2e-16) because numba
calls libm's scalar ``exp`` per element, which LLVM cannot vectorise without a vector math
library, while this form runs in SIMD lanes. It takes ``x <= 0`` (a score minus its row's max):
a row whose max is +inf is left to the NumPy path (:func:`softmax_rows` answers False).

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

from typing import Any

import numba
import numpy as np
from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic, overload

from .. import parallel as _parallel

# contract: a * b + c as one fused multiply-add; nothing else is relaxed
_jit = numba.njit(cache=True, nogil=True, fastmath={"contract"}, error_model="numpy")
# the row sums alone may be reassociated (several partial sums in SIMD lanes, as NumPy's)
_jit_sum = numba.njit(cache=True, nogil=True, fastmath={"contract", "reassoc"}, error_model="numpy")

_F = np.float32
_LOG2E_F = _F(1.4426950408889634)
_LN2_HI_F = _F(0.693359375)  # ln 2 split so that n * _LN2_HI is exact for the n that occur
_LN2_LO_F = _F(-2.12194440e-4)
_P_F = (_F(1.9875691500e-4), _F(1.3981999507e-3), _F(8.3334519073e-3), _F(4.1665795894e-2),
        _F(1.6666665459e-1), _F(5.0000001201e-1))  # fmt: skip
_LO_F = _F(-87.0)  # e^x of x below this is taken as 0 (it is under 1.7e-38: at most a subnormal)
_HALF_F = _F(0.5)
_ONE_F = _F(1.0)
_LOG2E_D = 1.4426950408889634
_C1_D = 6.93145751953125e-1
_C2_D = 1.42860682030941723212e-6
_P_D = (1.26177193074810590878e-4, 3.02994407707441961300e-2, 9.99999999999999999910e-1)
_Q_D = (3.00198505138664455042e-6, 2.52448340349684104192e-3, 2.27265548208155028766e-1, 2.00000000000000000009e0)
_LO_D = -708.0  # e^x of x below this is taken as 0 (it is under 3.3e-308: at most a subnormal)
# x <= 0, so 2^n is at most 1, and at least the smallest normal number for x >= _LO. Results that
# would be subnormal are 0 here (libm's would be under 1.2e-38 in float32, beside a row's largest
# term of 1): arithmetic on subnormal numbers takes a slow microcode path on x86 (a row of masked
# keys, each e^-inf, ran 2.5 times as long), and an attention probability that small is 0 in
# every later product anyway.


@intrinsic
def _maxnum_intrinsic(typingctx, a, b):
    """LLVM's maxnum (a NaN operand is skipped): the loop vectoriser turns a chain of these into a
    SIMD max."""
    sig = a(a, b)

    def codegen(context, builder, signature, args):
        t = context.get_value_type(signature.args[0])
        name = "llvm.maxnum.f32" if signature.args[0] == types.float32 else "llvm.maxnum.f64"
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(t, [t, t]), name)
        return builder.call(fn, args)

    return sig, codegen


_maxnum: Any = _maxnum_intrinsic  # called as _maxnum(a, b) in compiled code (numba supplies typingctx)


def _exp32(x):
    c = _maxnum(x, _LO_F)
    n = np.floor(c * _LOG2E_F + _HALF_F)
    r = c - n * _LN2_HI_F
    r = r - n * _LN2_LO_F
    p = _P_F[0] * r + _P_F[1]
    p = p * r + _P_F[2]
    p = p * r + _P_F[3]
    p = p * r + _P_F[4]
    p = p * r + _P_F[5]
    p = p * (r * r) + r + _ONE_F
    e = p * np.int32((np.int32(n) + 127) << 23).view(np.float32)
    zero = _F(0.0) if x == x else x  # NaN stays NaN
    return e if x >= _LO_F else zero


def _exp64(x):
    c = _maxnum(x, _LO_D)
    n = np.floor(c * _LOG2E_D + 0.5)
    r = c - n * _C1_D
    r = r - n * _C2_D
    rr = r * r
    px = r * ((_P_D[0] * rr + _P_D[1]) * rr + _P_D[2])
    qx = ((_Q_D[0] * rr + _Q_D[1]) * rr + _Q_D[2]) * rr + _Q_D[3]
    p = 1.0 + 2.0 * (px / (qx - px))
    e = p * np.int64((np.int64(n) + 1023) << 52).view(np.float64)
    zero = 0.0 if x == x else x  # NaN stays NaN
    return e if x >= _LO_D else zero


def _exp(x):
    """e^x of a float32 or float64 x <= 0 (or -inf, or NaN), in its own precision."""
    raise NotImplementedError  # compiled code only


@overload(_exp, inline="always", jit_options={"fastmath": {"contract"}, "error_model": "numpy"})
def _exp_overload(x):
    if x == types.float32:
        return _exp32
    if x == types.float64:
        return _exp64
    return None


def _cast(v, like):
    """``v`` rounded to the type of ``like`` (float32 or float64)."""
    raise NotImplementedError  # compiled code only


@overload(_cast, inline="always")
def _cast_overload(v, like):
    if like == types.float32:
        return lambda v, like: np.float32(v)
    if like == types.float64:
        return lambda v, like: np.float64(v)
    return None


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
    low = _cast(-np.inf, scale)
    for j in range(stop):
        v = x[j] * scale
        m = _maxnum(m, v if j < n else low)
    return m


@_jit_sum
def _exp_sum(x, n, stop, scale, m):
    """``x[:n] = exp(x[:n] * scale - m)`` and ``x[n:stop] = 0``; returns their sum (in SIMD lanes of
    the row's dtype, as PyTorch's CPU kernels accumulate)."""
    s = _cast(0.0, m)
    zero = _cast(0.0, m)
    for j in range(stop):
        e = _exp(x[j] * scale - m)
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
            m = _cast(0.0, m)
        total = _exp_sum(row, n, stop, scale, m)
        one = _cast(1.0, m)
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
