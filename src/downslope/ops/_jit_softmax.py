"""Compiled (numba) softmax and log_softmax over the last dim of C-contiguous float32/float64 rows,
forward and backward, one call per block of rows (each row's steps run while it sits in the
cache); imported only when ``jit_gate.kernels`` says the compiled path applies (numba installed,
not switched off, host arrays). ``reductions.softmax`` and friends keep the NumPy path for
everything else (other dims, strided arrays, devices, the graph of a double backward).

The same arithmetic as the NumPy path, in the same order, so that the same exact cases hold:

* forward: ``m = max(row)``, ``e = exp(row - m)``, ``s = sum(e)``; softmax ``e * (1 / s)``,
  log_softmax ``(row - m) - log(s)``. The shift by the row's max keeps the largest term exactly
  1: a row of equal logits gives exactly ``1 / n``, a dominant class a log-probability of exactly
  0, logits of +-1000 neither overflow nor lose the small terms, and a row of only -inf gives NaN
  (``-inf - -inf``), as torch. The max is ``llvm.maxnum`` (vectorised; a NaN is skipped there, but
  ``exp(NaN - m)`` makes the row's sum, and so the whole row, NaN, as in torch).
* backward: softmax ``(g - dot(g, y)) * y``, log_softmax ``g - exp(y) * sum(g)``.

The sums and the dot product accumulate in float64 (for float32 rows too: a product of two
float32 numbers is exact in float64), in SIMD lanes (reassociated: their own functions, so that
nothing else is reordered), so they are at least as accurate as NumPy's pairwise float32 sums;
each is rounded to the row's dtype before use, as the NumPy path's (so a class whose rivals vanish
in float32 keeps a log-probability of exactly 0, as torch's). ``exp`` is written out (Cephes'
polynomials, float32 and float64; subnormal results rounded once, as libm's): numba calls
libm's scalar ``exp`` per element, which LLVM cannot vectorise without a vector math library,
while this form runs in SIMD lanes. These kernels take and make NumPy arrays only.

Example:
    >>> import numpy as np
    >>> from downslope import jit_gate
    >>> k = jit_gate.kernels("downslope.ops._jit_softmax")
    >>> if k is not None:
    ...     y = k.softmax(np.zeros((1, 4), np.float32))
    ...     assert (y == 0.25).all()
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np
from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic, overload

from .. import parallel as _parallel
from .. import workspace as _workspace

# contract: a * b + c as one fused multiply-add (one rounding fewer); nothing is reassociated
_jit = numba.njit(cache=True, nogil=True, fastmath={"contract"}, error_model="numpy")
# reductions alone may be reassociated: several partial sums in SIMD lanes, as NumPy's and torch's
_jit_sum = numba.njit(cache=True, nogil=True, fastmath={"contract", "reassoc"}, error_model="numpy")

_F = np.float32
# float32: Cephes' expf (relative error below 2.8e-8 on its range)
_LOG2E_F = _F(1.4426950408889634)
_LN2_HI_F = _F(0.693359375)  # ln 2 split so that n * _LN2_HI is exact for the n that occur
_LN2_LO_F = _F(-2.12194440e-4)
_P_F = (_F(1.9875691500e-4), _F(1.3981999507e-3), _F(8.3334519073e-3), _F(4.1665795894e-2),
        _F(1.6666665459e-1), _F(5.0000001201e-1))  # fmt: skip
_LO_F = _F(-104.0)  # e^-104 rounds to 0 (it is under half the smallest subnormal, 2^-150), as all below
_HALF_F = _F(0.5)
_ONE_F = _F(1.0)
_UNBIAS_F = _F(2.0**-64)
# float64: Cephes' exp, a Pade form (relative error below 2.2e-16)
_LOG2E_D = 1.4426950408889634
_C1_D = 6.93145751953125e-1
_C2_D = 1.42860682030941723212e-6
_P_D = (1.26177193074810590878e-4, 3.02994407707441961300e-2, 9.99999999999999999910e-1)
_Q_D = (3.00198505138664455042e-6, 2.52448340349684104192e-3, 2.27265548208155028766e-1, 2.00000000000000000009e0)
_LO_D = -746.0  # e^-746 rounds to 0 (under 2^-1075), as all below
_UNBIAS_D = 2.0**-64
# The kernels take e^x of x <= 0 only (a logit minus its row's max, a log-probability), so 2^n is
# at most 1; it is built from its exponent bits as 2^(n + 64), always a normal number, and the
# result scaled by 2^-64 after: a subnormal result is then rounded once, by that product, as libm's.


@intrinsic
def _maxnum_intrinsic(typingctx, a, b):
    """LLVM's maxnum: the loop vectoriser turns a chain of these into a SIMD max, where it leaves a
    compare-and-select (numba's ``max``) one element at a time."""
    sig = a(a, b)

    def codegen(context, builder, signature, args):
        t = context.get_value_type(signature.args[0])
        name = "llvm.maxnum.f32" if signature.args[0] == types.float32 else "llvm.maxnum.f64"
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(t, [t, t]), name)
        return builder.call(fn, args)

    return sig, codegen


_maxnum: Any = _maxnum_intrinsic  # called as _maxnum(a, b) in compiled code (numba supplies typingctx)


def _exp32(x):
    c = _maxnum(x, _LO_F)  # NaN: the bound (the NaN is returned below)
    n = np.floor(c * _LOG2E_F + _HALF_F)
    r = c - n * _LN2_HI_F
    r = r - n * _LN2_LO_F
    p = _P_F[0] * r + _P_F[1]
    p = p * r + _P_F[2]
    p = p * r + _P_F[3]
    p = p * r + _P_F[4]
    p = p * r + _P_F[5]
    p = p * (r * r) + r + _ONE_F
    scale = np.int32((np.int32(n) + (127 + 64)) << 23).view(np.float32)
    e = (p * scale) * _UNBIAS_F
    return e if x == x else x


def _exp64(x):
    c = _maxnum(x, _LO_D)
    n = np.floor(c * _LOG2E_D + 0.5)
    r = c - n * _C1_D
    r = r - n * _C2_D
    rr = r * r
    px = r * ((_P_D[0] * rr + _P_D[1]) * rr + _P_D[2])
    qx = ((_Q_D[0] * rr + _Q_D[1]) * rr + _Q_D[2]) * rr + _Q_D[3]
    p = 1.0 + 2.0 * (px / (qx - px))
    scale = np.int64((np.int64(n) + (1023 + 64)) << 52).view(np.float64)
    e = (p * scale) * _UNBIAS_D
    return e if x == x else x


def _exp(x):
    """e^x of a float32 or float64 x <= 0 (or -inf, or NaN), in its own precision (the overload below
    picks)."""
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


@_jit
def _row_max(x):
    m = x[0]
    for j in range(x.shape[0]):  # from 0, not 1: a trip count of n keeps whole SIMD blocks for n = 64
        m = _maxnum(m, x[j])
    return m


@_jit_sum
def _row_sum(x):
    s = 0.0
    for j in range(x.shape[0]):
        s += np.float64(x[j])
    return s


@_jit_sum
def _row_dot(a, b):
    s = 0.0
    for j in range(a.shape[0]):
        s += np.float64(a[j]) * np.float64(b[j])
    return s


@_jit
def _softmax_rows(x, out):
    n = x.shape[1]
    for i in range(x.shape[0]):
        xi, oi = x[i], out[i]
        m = _row_max(xi)
        for j in range(n):
            oi[j] = _exp(xi[j] - m)
        one = _cast(1.0, m)
        inv = one / _cast(_row_sum(oi), m)  # one division per row, then a product per element (as torch)
        for j in range(n):
            oi[j] *= inv


@_jit
def _log_softmax_rows(x, out):
    n = x.shape[1]
    for i in range(x.shape[0]):
        xi, oi = x[i], out[i]
        m = _row_max(xi)
        for j in range(n):
            oi[j] = _exp(xi[j] - m)
        log_total = np.log(_cast(_row_sum(oi), m))  # the total rounded first, as the NumPy path's and torch's
        for j in range(n):
            oi[j] = (xi[j] - m) - log_total


@_jit
def _softmax_backward_rows(g, y, gx):
    n = g.shape[1]
    for i in range(g.shape[0]):
        gi, yi, oi = g[i], y[i], gx[i]
        dot = _cast(_row_dot(gi, yi), gi[0])
        for j in range(n):
            oi[j] = (gi[j] - dot) * yi[j]


@_jit
def _log_softmax_backward_rows(g, y, gx):
    n = g.shape[1]
    for i in range(g.shape[0]):
        gi, yi, oi = g[i], y[i], gx[i]
        total = _cast(_row_sum(gi), gi[0])
        for j in range(n):
            oi[j] = gi[j] - _exp(yi[j]) * total


def _fresh(shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """An uninitialised C-contiguous array: a lent one when large (its pages come back warm, see
    ``workspace.lend``), else NumPy's own."""
    if int(np.prod(shape)) * dtype.itemsize >= _workspace.LEND_MIN_BYTES:  # host: a shape's size
        return _workspace.lend(shape, dtype)
    return np.empty(shape, dtype=dtype)  # host: numba path


def _over_rows(kernel: Any, arrays: tuple[np.ndarray, ...]) -> np.ndarray:
    """``kernel(*rows_of_arrays, rows_of_out)`` on the (rows, n) views of ``arrays``, the rows split
    over the threads of ``parallel.over_parts``; the new output, shaped as ``arrays[0]``."""
    first = arrays[0]
    n = first.shape[-1]
    flat = [a.reshape(-1, n) for a in arrays]
    out = _fresh(first.shape, first.dtype)
    out_flat = out.reshape(-1, n)

    def part(lo: int, hi: int) -> None:
        kernel(*[a[lo:hi] for a in flat], out_flat[lo:hi])

    _parallel.over_parts(first, flat[0].shape[0], first.size, part)  # about a nanosecond an element
    return out


def softmax(x: np.ndarray) -> np.ndarray:
    """softmax over the last dim of the C-contiguous float32/float64 ``x`` (no empty dims)."""
    return _over_rows(_softmax_rows, (x,))


def log_softmax(x: np.ndarray) -> np.ndarray:
    """log_softmax over the last dim of the C-contiguous float32/float64 ``x`` (no empty dims)."""
    return _over_rows(_log_softmax_rows, (x,))


def softmax_backward(g: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``(g - sum(g * y)) * y`` over the last dim of C-contiguous ``g`` and ``y`` of one shape and dtype."""
    return _over_rows(_softmax_backward_rows, (g, y))


def log_softmax_backward(g: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``g - exp(y) * sum(g)`` over the last dim of C-contiguous ``g`` and ``y`` of one shape and dtype."""
    return _over_rows(_log_softmax_backward_rows, (g, y))
