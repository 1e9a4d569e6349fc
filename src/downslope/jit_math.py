"""Scalar building blocks shared by the compiled (numba) kernels of every package: the core's softmax
(``ops._jit_softmax``) and nn's attention softmax and GELU (``nn._jit_attention``,
``nn._jit_activation_kernels``). Imported only by those kernel modules, themselves imported only
when ``jit_gate.kernels`` says the compiled path applies (this module imports numba).

* :func:`maxnum` is LLVM's ``maxnum`` (a NaN operand is skipped): the loop vectoriser turns a chain
  of these into a SIMD max, where it leaves a compare-and-select (numba's ``max``) one element at a
  time.
* :func:`cast` rounds a value to the float type of another.
* :func:`exp` and :func:`exp_flush` are ``e^x`` written out (Cephes' polynomials: float32's relative
  error below 2.8e-8, float64's a Pade form below 2.2e-16): numba calls libm's scalar ``exp`` per
  element, which LLVM cannot vectorise without a vector math library, while this form runs in SIMD
  lanes. Both take ``x <= 0`` (a logit minus its row's max, a log-probability); :func:`exp_flush`
  is also right up to about 88 (float32; 2^n from the exponent bits overflows past that). They
  differ below the normal range: :func:`exp` builds 2^n as 2^(n + 64), always a normal number, and
  scales the result by 2^-64 after, so a subnormal result is rounded once, by that product, as
  libm's (the softmax kernels, held to NumPy's numbers); :func:`exp_flush` gives 0 for results that
  would be subnormal (under 1.2e-38 in float32), because arithmetic on subnormal numbers takes a
  slow microcode path on x86 (a row of masked attention keys, each e^-inf, ran 2.5 times as long)
  and such a term is 0 in every later product anyway. A NaN stays NaN in both.

All four are inlined into the calling kernel (numba's ``inline="always"``), so they compile under
the caller's fastmath flags and vectorise with its loop. numba's on-disk cache does not notice
edits here (it tracks the calling kernel's own file only): after changing this module, clear the
``__pycache__`` ``*.nbi``/``*.nbc`` files of the kernel modules above, or set ``NUMBA_CACHE_DIR``
to a fresh folder.

Example:
    >>> import numba, numpy as np
    >>> from downslope import jit_math
    >>> f = numba.njit(lambda x: (jit_math.exp(x), jit_math.exp_flush(x)))
    >>> [round(float(e), 6) for e in f(np.float32(-1.0))]
    [0.367879, 0.367879]
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np
from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic, overload

__all__ = ["cast", "exp", "exp_flush", "maxnum"]

# the callers' own flags: contract (a * b + c as one fused multiply-add), nothing reassociated
_inline = numba.njit(cache=True, nogil=True, fastmath={"contract"}, error_model="numpy", inline="always")

_F = np.float32
# float32: Cephes' expf
_LOG2E_F = _F(1.4426950408889634)
_LN2_HI_F = _F(0.693359375)  # ln 2 split so that n * _LN2_HI is exact for the n that occur
_LN2_LO_F = _F(-2.12194440e-4)
_P_F = (_F(1.9875691500e-4), _F(1.3981999507e-3), _F(8.3334519073e-3), _F(4.1665795894e-2),
        _F(1.6666665459e-1), _F(5.0000001201e-1))  # fmt: skip
_HALF_F = _F(0.5)
_ONE_F = _F(1.0)
_ZERO_F = _F(0.0)
# float64: Cephes' exp, a Pade form
_LOG2E_D = 1.4426950408889634
_C1_D = 6.93145751953125e-1
_C2_D = 1.42860682030941723212e-6
_P_D = (1.26177193074810590878e-4, 3.02994407707441961300e-2, 9.99999999999999999910e-1)
_Q_D = (3.00198505138664455042e-6, 2.52448340349684104192e-3, 2.27265548208155028766e-1, 2.00000000000000000009e0)
# exp: e^-104 (float32) and e^-746 (float64) round to 0 (under half the smallest subnormal), as all below
_LO_F = _F(-104.0)
_LO_D = -746.0
_UNBIAS_F = _F(2.0**-64)
_UNBIAS_D = 2.0**-64
# exp_flush: e^x below these is taken as 0 (under 1.7e-38 and 3.3e-308: at most a subnormal)
_FLUSH_F = _F(-87.0)
_FLUSH_D = -708.0


@intrinsic
def _maxnum_intrinsic(typingctx, a, b):
    sig = a(a, b)

    def codegen(context, builder, signature, args):
        t = context.get_value_type(signature.args[0])
        name = "llvm.maxnum.f32" if signature.args[0] == types.float32 else "llvm.maxnum.f64"
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(t, [t, t]), name)
        return builder.call(fn, args)

    return sig, codegen


maxnum: Any = _maxnum_intrinsic
"""``maxnum(a, b)`` of two float32 or two float64 numbers in compiled code: the larger, a NaN operand
skipped (numba supplies the intrinsic's typing context)."""


@_inline
def _exp32_parts(c):
    """(n, p) with e^c = p * 2^n, p in [0.7, 1.5], for a float32 c."""
    n = np.floor(c * _LOG2E_F + _HALF_F)
    r = c - n * _LN2_HI_F
    r = r - n * _LN2_LO_F
    p = _P_F[0] * r + _P_F[1]
    p = p * r + _P_F[2]
    p = p * r + _P_F[3]
    p = p * r + _P_F[4]
    p = p * r + _P_F[5]
    p = p * (r * r) + r + _ONE_F
    return n, p


@_inline
def _exp64_parts(c):
    """(n, p) with e^c = p * 2^n for a float64 c."""
    n = np.floor(c * _LOG2E_D + 0.5)
    r = c - n * _C1_D
    r = r - n * _C2_D
    rr = r * r
    px = r * ((_P_D[0] * rr + _P_D[1]) * rr + _P_D[2])
    qx = ((_Q_D[0] * rr + _Q_D[1]) * rr + _Q_D[2]) * rr + _Q_D[3]
    return n, 1.0 + 2.0 * (px / (qx - px))


def _exp32(x):
    n, p = _exp32_parts(maxnum(x, _LO_F))  # NaN: the bound (the NaN is returned below)
    scale = np.int32((np.int32(n) + (127 + 64)) << 23).view(np.float32)
    e = (p * scale) * _UNBIAS_F
    return e if x == x else x


def _exp64(x):
    n, p = _exp64_parts(maxnum(x, _LO_D))
    scale = np.int64((np.int64(n) + (1023 + 64)) << 52).view(np.float64)
    e = (p * scale) * _UNBIAS_D
    return e if x == x else x


def _exp32_flush(x):
    n, p = _exp32_parts(maxnum(x, _FLUSH_F))
    e = p * np.int32((np.int32(n) + 127) << 23).view(np.float32)
    zero = _ZERO_F if x == x else x  # NaN stays NaN
    return e if x >= _FLUSH_F else zero


def _exp64_flush(x):
    n, p = _exp64_parts(maxnum(x, _FLUSH_D))
    e = p * np.int64((np.int64(n) + 1023) << 52).view(np.float64)
    zero = 0.0 if x == x else x  # NaN stays NaN
    return e if x >= _FLUSH_D else zero


def exp(x: Any) -> Any:
    """e^x of a float32 or float64 ``x <= 0`` (or -inf, or NaN) in its own precision, subnormal
    results rounded once as libm's; compiled code only (the overload below picks the precision)."""
    raise NotImplementedError("jit_math.exp runs in numba-compiled code only")


def exp_flush(x: Any) -> Any:
    """e^x of a float32 or float64 ``x`` (at most about 88 in float32), in its own precision, 0 where
    the result would be subnormal; compiled code only."""
    raise NotImplementedError("jit_math.exp_flush runs in numba-compiled code only")


def cast(v: Any, like: Any) -> Any:
    """``v`` rounded to the float type (float32 or float64) of ``like``; compiled code only."""
    raise NotImplementedError("jit_math.cast runs in numba-compiled code only")


@overload(exp, inline="always", jit_options={"fastmath": {"contract"}, "error_model": "numpy"})
def _exp_overload(x):
    if x == types.float32:
        return _exp32
    if x == types.float64:
        return _exp64
    return None


@overload(exp_flush, inline="always", jit_options={"fastmath": {"contract"}, "error_model": "numpy"})
def _exp_flush_overload(x):
    if x == types.float32:
        return _exp32_flush
    if x == types.float64:
        return _exp64_flush
    return None


@overload(cast, inline="always")
def _cast_overload(v, like):
    if like == types.float32:
        return lambda v, like: np.float32(v)
    if like == types.float64:
        return lambda v, like: np.float64(v)
    return None
