"""Compiled (numba) special functions of contiguous float32/float64 arrays (lgamma, digamma,
polygamma, erf, erfc, i0e, i1e), and a few one-pass elementwise kernels (nan_to_num, clamp with tensor
bounds, kron, outer products, the float32 division family);
imported only when ``jit_gate.kernels`` says the compiled path applies (numba installed, not
switched off, host arrays). ``special.lgamma_array`` and ``special.digamma_array`` keep the NumPy
path for everything else (small arrays, float16, devices).

* ``lgamma``: the C library's ``lgamma`` per element (float64 arrays), which is what torch's CPU
  kernel calls too (``std::lgamma``): +inf at 0 and the non-positive integers and at +-inf.
* ``lgamma_float32``: float32 arrays, computed in float64 by loops that compile to SIMD code (``lgamma``
  above, one library call per element, took 4x torch's time): x below 8 shifted up by the
  recurrence, the Stirling series, the reflection for x < 0, and a logarithm of its own (fdlibm's,
  from the float's bits) because a call into the C library's ``log`` stops the vectorisation.
  Within one float32 ulp of the exact value (0.94 at most on dense grids; the per-element path is
  off by up to 2.3 ulps for x > 0 and 5.2 for x < 0, torch's lgammaf by 0.83 for x > 0 and about
  120 near the zeros of lgamma for x < 0); exactly 0 at 1 and 2, as torch.
* ``clamp_rows`` (clamp with tensor bounds) and ``kron_rows`` (kron of 1-d and 2-d arrays): one
  pass over the output each, for large arrays, where NumPy's steps read and write it twice (clamp)
  or pay per short row of a broadcast multiply (kron); the same values as the NumPy paths.
* ``digamma``: the NumPy path's formula per element in float64 (reflection below 1/2, the
  recurrence up to 10, then the asymptotic series), whose loop stops as soon as x reaches 10
  instead of masking all ten steps over the whole array.

* ``polygamma`` (n >= 1; trigamma in SIMD blocks), ``i0e``/``i1e``: the NumPy path's formulas per
  element, each range's formula on every element and a select keeping one (the NumPy path gathers each
  range's elements).
* ``erf_float64``, ``erfc_float64``, ``erfinv_float64``: the NumPy path's formulas (fdlibm's; Acklam's
  and one Halley step) per element with an exponential of their own inlined (a Taylor polynomial after
  an exact reduction): erf within 0.8 ulps of the exact value, erfc within 1.9 and erfinv within 1.6
  (the NumPy path's: 0.81, 2.6 and 1.65; torch's 0.74, 0.79, 0.51).
* ``erf_float32`` (float32 arithmetic, within 1.5 ulps), ``erfc_float32`` and ``erfinv_float32`` (the
  NumPy path's float64 formulas, the same values): one kernel each, jit_math's exp and a logarithm
  from the float's bits inlined, over chunks that skip the tail formulas where no element needs them.
* ``outer_rows`` (einsum's batched outer products) and the float32 ``fmod``/``remainder``/
  ``floor_divide``: one pass over the output each.

These kernels take and make NumPy arrays only.

Example:
    >>> import numpy as np
    >>> from downslope import jit_gate
    >>> k = jit_gate.kernels("downslope.ops._jit_special")
    >>> if k is not None:
    ...     out = np.empty(2)
    ...     k.lgamma(np.array([1.0, 3.0]), out)
    ...     assert out.tolist() == [0.0, float(np.log(2.0))]
"""

from __future__ import annotations

import math

import numba
import numpy as np

from ..jit_math import exp_flush, maxnum
from ._erf import (
    _ERFC_ZERO_FROM,
    _ERX,
    _P_SINGLE,
    _PA,
    _PP,
    _QA,
    _QQ,
    _R_SINGLE,
    _RA,
    _RB,
    _SA,
    _SB,
    _T_SINGLE,
)
from .special import (
    _ACKLAM_A,
    _ACKLAM_B,
    _ACKLAM_C,
    _ACKLAM_D,
    _ACKLAM_LOW,
    _EULER_GAMMA,
    _I0_A,
    _I0_B,
    _I1_A,
    _I1_B,
    _IGAM_MAXITER,
    _LANCZOS_DEN,
    _LANCZOS_G,
    _LANCZOS_NUM,
    _MACHEP,
    _TEMME_D,
    _ZETA_MINUS_ONE,
    _single_precision_terms,
)

# the Bessel series shortened to float32's precision, as ``special._SERIES_SINGLE``
_I0_A_SINGLE, _I0_B_SINGLE, _I1_A_SINGLE, _I1_B_SINGLE = (
    tuple(_single_precision_terms(c)) for c in (_I0_A, _I0_B, _I1_A, _I1_B)
)

# no fastmath: each step rounds as the NumPy path's; the numpy error model gives inf/NaN, never raises
_jit = numba.njit(cache=True, nogil=True, error_model="numpy")
# helpers of the SIMD loops, inlined by numba itself: LLVM leaves a large one a call, which stops the vectorisation
_inline = numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")

_SHIFT = 10.0
# B_2k / (2k) for k = 1..8, highest first (Horner in 1/z^2)
_DIGAMMA_SERIES = (
    -3617.0 / 510.0 / 16.0,
    7.0 / 6.0 / 14.0,
    -691.0 / 2730.0 / 12.0,
    5.0 / 66.0 / 10.0,
    -1.0 / 30.0 / 8.0,
    1.0 / 42.0 / 6.0,
    -1.0 / 30.0 / 4.0,
    1.0 / 6.0 / 2.0,
)
_C0, _C1, _C2, _C3, _C4, _C5, _C6, _C7 = _DIGAMMA_SERIES


@_jit
def lgamma(x, out):
    """``out[i] = lgamma(x[i])`` (flat arrays of one dtype), in the input's own precision."""
    for i in range(x.shape[0]):
        out[i] = math.lgamma(x[i])


# lgamma_float32's constants. Stirling's series: B_2k / (2k (2k - 1)) for k = 1..8, as Horner in 1/z^2
# (its next term is below 1e-16 relative at z >= 8)
_STIRLING = tuple(b / ((2 * k + 2) * (2 * k + 1)) for k, b in enumerate(
    (1.0 / 6.0, -1.0 / 30.0, 1.0 / 42.0, -1.0 / 30.0, 5.0 / 66.0, -691.0 / 2730.0, 7.0 / 6.0, -3617.0 / 510.0)))  # fmt: skip
_G0, _G1, _G2, _G3, _G4, _G5, _G6, _G7 = _STIRLING
_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)
_LOG_PI = math.log(math.pi)
_STIRLING_FROM = 8.0
# sin(t) = t (1 + S3 t^2 + S5 t^4 + ...) for |t| <= pi / 2, to t^23: its error is below 1e-20
_S3, _S5, _S7, _S9, _S11, _S13, _S15, _S17, _S19, _S21, _S23 = (
    (-1.0) ** k / math.factorial(2 * k + 1) for k in range(1, 12)
)
# fdlibm's e_log.c: ln 2 split in two, and the minimax polynomial of log(1 + f) in s = f / (2 + f)
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
_LG1, _LG2, _LG3, _LG4, _LG5, _LG6, _LG7 = (
    6.666666666666735130e-01, 3.999999999940941908e-01, 2.857142874366239149e-01, 2.222219843214978396e-01,
    1.818357216161805012e-01, 1.531383769920937332e-01, 1.479819860511658591e-01,
)  # fmt: skip
_MANTISSA = np.uint64((1 << 52) - 1)
_EXPONENT_SHIFT = np.uint64(52)
_ONE_BITS = np.uint64(1023 << 52)  # the exponent of [1, 2)
_HALF_BITS = np.uint64(1022 << 52)  # the exponent of [1/2, 1)
_SQRT2_MANTISSA = np.uint64(0x6A09E667F3BCD)  # sqrt(2)'s mantissa bits: above it, m is halved
_BLOCK = 512  # elements per pass through the three loops (their float64 scratch stays in L1)


@_jit
def _log_of_parts(m, k):
    """log(m 2^k) for m in [sqrt(2)/2, sqrt(2)) (fdlibm's __ieee754_log after its reduction: < 1 ulp)."""
    f = m - 1.0
    hfsq = 0.5 * f * f
    s = f / (2.0 + f)
    z = s * s
    w = z * z
    r = z * (_LG1 + w * (_LG3 + w * (_LG5 + w * _LG7))) + w * (_LG2 + w * (_LG4 + w * _LG6))
    return k * _LN2_HI - ((hfsq - (s * (hfsq + r) + k * _LN2_LO)) - f)


@_jit
def lgamma_float32(x, out):
    """``out[i] = lgamma(x[i])`` of flat float32 arrays, computed in float64, one block at a time in
    three loops without calls or data-dependent branches (each compiles to SIMD code):

    1. a = |x|; z = a + 8 and p = a (a + 1) ... (a + 7) below 8 (lgamma(a) = lgamma(z) - log p), else
       z = a and p = 1; for x < 0 the reflection lgamma(x) = log pi - lgamma(a) - log(a |sin(pi a)|)
       folds a |sin(pi a)| into the same logarithm: q = p / (a |sin(pi a)|), with sin(pi r) of the
       exactly reduced r = a - round(a);
    2. z and q split into mantissa and exponent from their bits;
    3. lgamma(a) = (z - 1/2) log z - z + log(2 pi) / 2 + series(1/z) - log q, then the reflection's
       sign and the special values selected: 0 at 1 and 2 (exactly, as torch), +inf at the poles (0
       and the negative integers) and at +-inf, NaN at NaN.
    """
    n = x.shape[0]
    parts = np.empty(2 * _BLOCK, np.float64)  # host: numba's scratch (z, then q); kernels run on the host
    part_bits = parts.view(np.uint64)
    mantissa_bits = np.empty(2 * _BLOCK, np.uint64)  # host: numba's scratch
    mantissa = mantissa_bits.view(np.float64)
    exponent = np.empty(2 * _BLOCK, np.float64)  # host: numba's scratch
    for start in range(0, n, _BLOCK):
        count = min(_BLOCK, n - start)
        for j in range(count):
            v = np.float64(x[start + j])
            a = abs(v)
            small = a < _STIRLING_FROM
            parts[j] = a + _STIRLING_FROM if small else a
            p = ((a * (a + 1.0)) * ((a + 2.0) * (a + 3.0))) * (((a + 4.0) * (a + 5.0)) * ((a + 6.0) * (a + 7.0)))
            t = math.pi * (a - np.round(a))
            t2 = t * t
            sin = t * (1.0 + t2 * (_S3 + t2 * (_S5 + t2 * (_S7 + t2 * (_S9 + t2 * (_S11 + t2 * (_S13 + t2 * (
                _S15 + t2 * (_S17 + t2 * (_S19 + t2 * (_S21 + t2 * _S23)))))))))))  # fmt: skip
            parts[_BLOCK + j] = (p if small else 1.0) / (abs(sin) * a if v < 0.0 else 1.0)
        for j in range(2 * _BLOCK):
            bits = part_bits[j]
            top = bits & _MANTISSA
            halved = top > _SQRT2_MANTISSA
            mantissa_bits[j] = top | (_HALF_BITS if halved else _ONE_BITS)
            exponent[j] = np.float64(np.int64(bits >> _EXPONENT_SHIFT)) - (1022.0 if halved else 1023.0)
        for j in range(count):
            z = parts[j]
            inv = 1.0 / z
            inv2 = inv * inv
            series = (((((((_G7 * inv2 + _G6) * inv2 + _G5) * inv2 + _G4) * inv2 + _G3) * inv2 + _G2) * inv2 + _G1)
                      * inv2 + _G0) * inv  # fmt: skip
            lg = (z - 0.5) * _log_of_parts(mantissa[j], exponent[j]) - z + _HALF_LOG_2PI + series
            lg -= _log_of_parts(mantissa[_BLOCK + j], exponent[_BLOCK + j])
            v = np.float64(x[start + j])
            lg = _LOG_PI - lg if v < 0.0 else lg
            lg = 0.0 if (v == 1.0) | (v == 2.0) else lg
            lg = np.inf if (abs(v) == np.inf) | ((v <= 0.0) & (v == np.floor(v))) else lg
            out[start + j] = v if v != v else lg


@_jit
def _digamma_positive(x):
    acc = 0.0
    while x < _SHIFT:
        acc += 1.0 / x
        x += 1.0
    inv2 = 1.0 / (x * x)
    series = ((((((((_C0 * inv2 + _C1) * inv2 + _C2) * inv2 + _C3) * inv2 + _C4) * inv2 + _C5) * inv2 + _C6) * inv2
               + _C7) * inv2)  # fmt: skip
    return math.log(x) - 0.5 / x - series - acc


@_jit
def _cot_pi(x):
    """cot(pi x) through the exact reduction r = x - round(x) (as ``special._cot_pi``)."""
    r = x - np.round(x)
    if r >= 0.25 or r <= -0.25:
        return math.tan(math.pi * (0.5 - abs(r))) * math.copysign(1.0, r)
    return 1.0 / math.tan(math.pi * r)


@_jit
def digamma(x, out):
    """``out[i] = digamma(x[i])`` (flat arrays), computed in float64: -inf at +0, +inf at -0, NaN at
    the negative integers and -inf, 0... at +inf (log(inf) = inf, as the NumPy path)."""
    for i in range(x.shape[0]):
        v = np.float64(x[i])
        if v == 0.0:
            out[i] = math.copysign(math.inf, -1.0 if math.copysign(1.0, v) > 0 else 1.0)
        elif v < 0.5:
            # np.floor, not math.floor: numba's math.floor returns an int64, which wraps above 2^63
            if v == np.floor(v) or v == -math.inf:
                out[i] = math.nan
            else:
                out[i] = _digamma_positive(1.0 - v) - math.pi * _cot_pi(v)
        elif v != v:
            out[i] = v
        else:
            out[i] = _digamma_positive(v)


@_jit
def nan_to_num(x, out, nan, posinf, neginf):
    """``out[i] = x[i]`` with NaN, +inf and -inf replaced by ``nan``, ``posinf``, ``neginf`` (flat arrays
    of one dtype, the fills already in it): one pass, where NumPy's takes one per kind of value."""
    for i in range(x.shape[0]):
        v = x[i]
        if v != v:
            out[i] = nan
        elif v == np.inf:
            out[i] = posinf
        elif v == -np.inf:
            out[i] = neginf
        else:
            out[i] = v


@_jit
def clamp_rows(x, lo, hi, out):
    """``out = minimum(maximum(x, lo), hi)`` in one pass, torch's clamp with tensor bounds: NaN where x
    or a bound is NaN, ``hi`` where lo > hi, and x kept on a tie (a zero against a zero of the other
    sign stays x's). All four are C-contiguous 2-D arrays of out's row length; x, lo and hi have either
    out's rows or one row, read for every row (a bound broadcast down the rows). The branch-free
    selects compile to SIMD code."""
    rows, cols = out.shape
    x_rows, lo_rows, hi_rows = x.shape[0] > 1, lo.shape[0] > 1, hi.shape[0] > 1
    for i in range(rows):
        xr = x[i if x_rows else 0]
        lr = lo[i if lo_rows else 0]
        hr = hi[i if hi_rows else 0]
        o = out[i]
        for j in range(cols):
            v = xr[j]
            low = lr[j]
            high = hr[j]
            v = low if (low > v) | (low != low) else v
            o[j] = high if (high < v) | (high != high) else v


@_jit
def kron_rows(a, b, out):
    """``out = kron(a, b)`` of C-contiguous 2-D arrays (out of shape (ra rb, ca cb)): each output row
    segment a[i, k] * b[j, :] written in one go, where NumPy's broadcast multiply pays per short row."""
    ra, ca = a.shape
    rb, cb = b.shape
    for i in range(ra):
        for j in range(rb):
            o = out[i * rb + j]
            br = b[j]
            for k in range(ca):
                v = a[i, k]
                base = k * cb
                for m in range(cb):
                    o[base + m] = v * br[m]


# trigamma's asymptotic series: B_2k for k = 8 down to 1 (B_2k (2k + n - 1)! / (2k)! at n = 1)
_PI2 = math.pi**2
_T8, _T7, _T6, _T5, _T4, _T3, _T2, _T1 = (-3617.0 / 510.0, 7.0 / 6.0, -691.0 / 2730.0, 5.0 / 66.0, -1.0 / 30.0,
                                          1.0 / 42.0, -1.0 / 30.0, 1.0 / 6.0)  # fmt: skip


@_jit
def _trigamma_block(x, start, count, pos):
    """``pos[j] = polygamma(1, x[start + j])`` for j < count: ten masked steps of the recurrence (x, or
    1 - x for x < 0, lifted to at least 10), the asymptotic series and the reflection, in a loop without
    calls or data-dependent branches (it compiles to SIMD code; a loop that stops at 10 does not)."""
    for j in range(count):
        v = np.float64(x[start + j])
        z = 1.0 - v if v < 0.0 else v
        acc = 0.0
        for _ in range(10):
            small = z < _SHIFT
            term = 1.0 / (z * z)
            acc += term if small else 0.0
            z = z + 1.0 if small else z
        inv = 1.0 / z
        inv2 = inv * inv
        t = (((((((_T8 * inv2 + _T7) * inv2 + _T6) * inv2 + _T5) * inv2 + _T4) * inv2 + _T3) * inv2 + _T2) * inv2
             + _T1) * inv2  # fmt: skip
        value = inv * (1.0 + 0.5 * inv + t) + acc
        # x < 0: psi1(x) = pi^2 / sin^2(pi x) - psi1(1 - x), sin(pi r) of the exactly reduced r = x - round(x)
        # by its series (as lgamma_float32), where a call to a tangent would stop the vectorisation
        r = v - np.round(v)
        u = math.pi * r
        u2 = u * u
        sin = u * (1.0 + u2 * (_S3 + u2 * (_S5 + u2 * (_S7 + u2 * (_S9 + u2 * (_S11 + u2 * (_S13 + u2 * (
            _S15 + u2 * (_S17 + u2 * (_S19 + u2 * (_S21 + u2 * _S23)))))))))))  # fmt: skip
        reflected = _PI2 / (sin * sin) - value
        value = reflected if v < 0.0 else value
        pole = (v <= 0.0) & (v == np.floor(v))
        pole_value = np.nan if v == -np.inf else np.inf
        pos[j] = v if v != v else (pole_value if pole else value)


@_jit
def polygamma(n, x, tail, cot_coefficients, out):
    """``out[i] = polygamma(n, x[i])`` for n >= 1 (flat arrays), computed in float64 by the NumPy
    path's formulas (``special.polygamma_array``): the recurrence up to x >= 10, the asymptotic series
    whose Bernoulli coefficients B_2k (2k+n-1)! / (2k)! are ``tail`` (k = 8 first), and for x < 0 the
    reflection (-1)^n psi^(n)(1 - x) - pi^(n+1) P_n(cot(pi x)), P_n's integer coefficients lowest degree
    first in ``cot_coefficients``. n = 1 (trigamma, digamma's derivative) runs on blocks in SIMD code,
    its reflection as pi^2 / sin^2(pi x) - psi1(1 - x); the other orders stop it per element as soon as x reaches 10, where the
    NumPy path masks all ten steps over the whole array. +inf at the poles for odd n, -inf for even
    n, 0 at +inf, NaN at -inf and NaN."""
    power = n + 1
    fact_n = math.gamma(n + 1.0)
    fact_n_1 = math.gamma(n * 1.0)
    sign = 1.0 if n % 2 else -1.0  # (-1)^(n+1)
    pi_power = math.pi**power
    degree = cot_coefficients.shape[0]
    size = x.shape[0]
    pos = np.empty(_BLOCK, np.float64)  # host: numba's scratch; kernels run on the host
    for start in range(0, size, _BLOCK):
        count = min(_BLOCK, size - start)
        if n == 1:
            _trigamma_block(x, start, count, pos)
            for j in range(count):
                out[start + j] = pos[j]
            continue
        else:
            for j in range(count):
                v = np.float64(x[start + j])
                z = 1.0 - v if v < 0.0 else v
                acc = 0.0
                while z < _SHIFT:
                    acc += 1.0 / z**power
                    z += 1.0
                inv = 1.0 / z
                inv2 = inv * inv
                t = 0.0
                for k in range(tail.shape[0]):
                    t = (t + tail[k]) * inv2
                scale = inv * inv if n == 2 else inv**n
                pos[j] = sign * (scale * (fact_n_1 + fact_n / 2.0 * inv + t) + fact_n * acc)
        for j in range(count):
            v = np.float64(x[start + j])
            value = pos[j]
            if v != v:
                value = v
            elif v <= 0.0 and v == np.floor(v):  # the poles, and -inf (NaN there); np.floor as in digamma
                value = math.nan if v == -math.inf else (math.inf if n % 2 else -math.inf)
            elif v < 0.0:
                cot = _cot_pi(v)
                poly = 0.0
                for k in range(degree - 1, -1, -1):
                    poly = poly * cot + cot_coefficients[k]
                value = -sign * value - pi_power * poly
            out[start + j] = value


@_inline
def _horner(t, c):
    """Horner's rule over the tuple ``c``, highest degree first (Cephes' polevl)."""
    out = c[0]
    for k in range(1, len(c)):
        out = out * t + c[k]
    return out


# erf and erfc: the NumPy path's formulas (``_erf.erf64``, ``_erf.erfc64``) per element, each range's
# formula on every element (of a chunk that has elements of that range) and a select keeping one, so
# that the loops compile to SIMD code (the NumPy path gathers each range's elements; a branch per
# element mispredicts on mixed inputs). A call to the C library's exp would stop the vectorisation:
# the kernels inline an exponential of their own (jit_math's for float32, :func:`_exp_reduced` below
# for float64). A value a select keeps must be computed before it, not in a branch of the conditional
# expression (numba's ``a if c else f(x)`` is a branch, which LLVM does not turn into a select when f
# is large, and the loop stays scalar).


# erf and erfc of float32 arrays in one SIMD loop each, with jit_math's exp inlined (no NumPy exp
# between two kernels). The loop runs over chunks: a chunk whose elements all lie in |x| <= 1 (the
# common case: activations, the fuzzer's inputs) skips the tail formula, which costs twice the rest.
_CHUNK = 512
_F32 = np.float32
_ONE_F = _F32(1.0)
# erf(x) = x + x T1(x^2) for |x| <= 1, T1 = T - 1 (Cephes' single-precision T with its constant term
# less 1): the last step is one fused multiply-add onto x, so T's own rounding (up to half an ulp of
# about 1.1) no longer lands whole on the result (x T(x^2) was off by 2.4 ulps at x = 0.46)
_T1_F = tuple(_F32(c) for c in _T_SINGLE[:-1] + (_T_SINGLE[-1] - 1.0,))
_P_F = tuple(_F32(c) for c in _P_SINGLE)
_R_F = tuple(_F32(c) for c in _R_SINGLE)
# erfc(3.92) = 2.9e-8 < half an ulp below 1: erf rounds to +-1 from there on, so the tail's argument
# stops at 4, where exp(-16) is far from float32's underflow
_ERF_F_SATURATES = _F32(4.0)
_QUARTER_F = _F32(0.25)
# erfc(10.5) = 1e-49 rounds to 0 in float32 as any smaller value does: the tail's argument stops there
_SINGLE_TAIL_TO = 10.5
# float32 arithmetic fused where written as a * b + c (fdlibm-style formulas rely on it, see _T1_F)
_jit_fused = numba.njit(cache=True, nogil=True, error_model="numpy", fastmath={"contract"})


@_inline
def _erf_float32_tail(v):
    """erf(v) for |v| > 1 (or NaN) in float32: 1 - erfc(|v|) with erfc(a) = exp(-a^2) / a R(1/a^2)
    (Cephes' erfcf), the sign copied. exp(-a^2) from a^2 rounded is off by a^2 times float32's
    rounding (1e-6 relative at a = 4), but erfc(4) = 1.5e-8 is itself below erf's ulp there."""
    a = min(maxnum(abs(v), _ONE_F), _ERF_F_SATURATES)
    inverse = _ONE_F / a
    z = inverse * inverse
    ratio = _horner(z, _P_F) if z > _QUARTER_F else _horner(z, _R_F)
    large = _ONE_F - exp_flush(-(a * a)) * inverse * ratio
    large = -large if v < 0 else large
    return large if v == v else v


@_jit_fused
def erf_float32(x, out):
    """``out[i] = erf(x[i])`` (flat float32 arrays) in float32 arithmetic: x + x T1(x^2) for |x| <= 1
    (:data:`_T1_F`), :func:`_erf_float32_tail` beyond. Within 1.5 float32 ulps of the exact value
    (torch's: 1.0)."""
    for start in range(0, x.shape[0], _CHUNK):
        # views, each inner loop over 0..m: LLVM then sees contiguous steps (with the chunk's own
        # index it fell back to gathers and scatters)
        xs = x[start : start + _CHUNK]
        outs = out[start : start + _CHUNK]
        outside = 0
        for i in range(xs.shape[0]):
            outside += not abs(xs[i]) <= _ONE_F  # NaN counts: the tail's select passes it through
        if outside:
            for i in range(xs.shape[0]):
                v = xs[i]
                small = v * _horner(v * v, _T1_F) + v
                outs[i] = small if abs(v) <= _ONE_F else _erf_float32_tail(v)
        else:
            for i in range(xs.shape[0]):
                v = xs[i]
                outs[i] = v * _horner(v * v, _T1_F) + v


@_inline
def _erfc_large_single(a):
    """erfc(a) for a in [1, 10.5] to float32's precision, in float64 (``_erf._erfc_large_single``):
    exp(-a^2) / a times Cephes' P or R of 1/a^2, with jit_math's exp (a^2 is exact for a float32 a)."""
    inverse = 1.0 / a
    z = inverse * inverse
    ratio = _horner(z, _P_SINGLE) if z > 0.25 else _horner(z, _R_SINGLE)
    return exp_flush(-(a * a)) * inverse * ratio


@_jit
def erfc_float32(x, out):
    """``out[i] = erfc(x[i])`` (flat float32 arrays), in float64 and rounded once (``_erf.erfc64(single=True)``):
    1 - x T(x^2) for |x| < 1, else erfc(|x|), 2 - erfc(|x|) for x < 0. In float64 because float32's
    1 - erf(x) would keep only a few bits of erfc near x = 1 and its exp(-x^2) the rounding of x^2
    magnified by x^2 (a hundred ulps at x = 9). Chunks as :func:`erf_float32`."""
    for start in range(0, x.shape[0], _CHUNK):
        xs = x[start : start + _CHUNK]
        outs = out[start : start + _CHUNK]
        outside = 0
        for i in range(xs.shape[0]):
            outside += not abs(xs[i]) < _ONE_F
        if outside:
            for i in range(xs.shape[0]):
                v = np.float64(xs[i])
                a = abs(v)
                small = 1.0 - v * _horner(v * v, _T_SINGLE)
                tail = _erfc_large_single(min(max(a, 1.0), _SINGLE_TAIL_TO))
                large = 2.0 - tail if v < 0.0 else tail
                outs[i] = small if a < 1.0 else (large if a == a else v)
        else:
            for i in range(xs.shape[0]):
                v = np.float64(xs[i])
                outs[i] = 1.0 - v * _horner(v * v, _T_SINGLE)


# erfinv of float32 arrays: the NumPy path's formulas (``special._erfinv64`` without a Halley step:
# Acklam's approximation is within float32's precision as it is) per element in float64, both ranges'
# formulas on every element of a chunk that has tail elements, and a logarithm of its own from the
# float's bits (fdlibm's, as in lgamma_float32; a call to the C library's log stops the vectorisation)
_CENTRE_TO = 1.0 - 2.0 * _ACKLAM_LOW
_SQRT_HALF = math.sqrt(0.5)


@_inline
def _log_normal(v):
    """log(v) of a positive normal float64 (fdlibm's __ieee754_log: < 1 ulp), from its bits, in SIMD lanes."""
    bits = np.float64(v).view(np.uint64)
    mantissa = bits & _MANTISSA
    halve = mantissa > _SQRT2_MANTISSA  # m in [sqrt(2)/2, sqrt(2)): above sqrt(2) the exponent goes up one
    k = np.float64(np.int64(bits >> _EXPONENT_SHIFT) - 1023) + (1.0 if halve else 0.0)
    m = np.uint64(mantissa | (_HALF_BITS if halve else _ONE_BITS)).view(np.float64)
    return _log_of_parts(m, k)


@_inline
def _erfinv_centre(m):
    """erfinv(m) for 0 <= m <= _CENTRE_TO: ndtri(1/2 + m/2) / sqrt(2), Acklam's central rational function."""
    u = m * 0.5
    s = u * u
    return u * _horner(s, _ACKLAM_A) / (_horner(s, _ACKLAM_B) * s + 1.0) * _SQRT_HALF


@_jit
def erfinv_float32(y, out):
    """``out[i] = erfinv(y[i])`` (flat float32 arrays), in float64 and rounded once: Acklam's centre for
    |y| <= 1 - 2 * 0.02425, its tail (with sqrt(-2 log((1 - |y|) / 2))) to 1, +-inf at +-1, NaN beyond
    and at NaN; the sign copied (-0.0 at -0.0). Per chunk: the centre's formula on every element (one
    SIMD loop), then the positions of the others gathered and only those redone (the tail's log, sqrt
    and divisions cost 3x the centre, on some 5% of uniform inputs)."""
    others = np.empty(_CHUNK, np.int64)  # host: numba's scratch
    for start in range(0, y.shape[0], _CHUNK):
        ys = y[start : start + _CHUNK]
        outs = out[start : start + _CHUNK]
        outside = 0
        for i in range(ys.shape[0]):
            v = np.float64(ys[i])
            outs[i] = math.copysign(_erfinv_centre(abs(v)), v)
            outside += not abs(v) <= _CENTRE_TO
        if not outside:
            continue
        count = 0
        for i in range(ys.shape[0]):
            others[count] = i  # kept (count moves on) where |y| is beyond the centre, or NaN
            count += not abs(ys[i]) <= _CENTRE_TO
        for j in range(count):
            i = others[j]
            v = np.float64(ys[i])
            m = abs(v)
            r = math.sqrt(-2.0 * _log_normal(min(max((1.0 - m) * 0.5, 1e-300), 0.5)))
            tail = _horner(r, _ACKLAM_C) / (_horner(r, _ACKLAM_D) * r + 1.0) * -_SQRT_HALF
            outs[i] = math.copysign(tail if m < 1.0 else (math.inf if m == 1.0 else math.nan), v)


@_inline
def _ratio_plus_one(t, numerator, denominator):
    """P(t) / (1 + t Q(t)), fdlibm's form of its rational functions (``_erf._ratio_plus_one``)."""
    return _horner(t, numerator) / (_horner(t, denominator) * t + 1.0)


# the far rational function's coefficients with a leading 0, to the near one's length: the Horner steps
# over it keep 0 exactly, so one evaluation with the coefficients selected per element gives either
_RB_PADDED = (0.0,) * (len(_RA) - len(_RB)) + _RB
_SB_PADDED = (0.0,) * (len(_SA) - len(_SB)) + _SB


@_inline
def _selected_ratio_plus_one(t, first, p1, p2, q1, q2):
    """P(t) / (1 + t Q(t)) with P, Q = p1, q1 where ``first``, else p2, q2 (each pair of one length):
    the coefficients selected step by step, one division instead of two."""
    numerator = p1[0] if first else p2[0]
    for k in range(1, len(p1)):
        numerator = numerator * t + (p1[k] if first else p2[k])
    denominator = q1[0] if first else q2[0]
    for k in range(1, len(q1)):
        denominator = denominator * t + (q1[k] if first else q2[k])
    return numerator / (denominator * t + 1.0)


@_inline
def _chbevl(t, c):
    """Cephes' Chebyshev series at ``t`` in [-2, 2] (``special._chbevl``, the same steps), ``c`` its
    coefficients highest degree first, padded in front with zeros to a multiple of 8 (:func:`_padded`:
    the steps over them keep 0 exactly). The inner loop of 8 is short enough for LLVM to unroll, so
    that the loop over the elements around it vectorises."""
    b0 = 0.0
    b1 = 0.0
    b2 = 0.0
    for k in range(len(c) // 8):
        for m in range(8):
            b2 = b1
            b1 = b0
            b0 = t * b1
            b0 -= b2
            b0 += c[8 * k + m]
    return 0.5 * (b0 - b2)


def _padded(c: tuple[float, ...]) -> tuple[float, ...]:
    """``c`` with zeros in front, to a multiple of 8 terms (for :func:`_chbevl`)."""
    return (0.0,) * (-len(c) % 8) + tuple(c)


_I0_A_SINGLE_8, _I0_B_SINGLE_8, _I1_A_SINGLE_8, _I1_B_SINGLE_8, _I0_A_8, _I0_B_8, _I1_A_8, _I1_B_8 = (
    _padded(c) for c in (_I0_A_SINGLE, _I0_B_SINGLE, _I1_A_SINGLE, _I1_B_SINGLE, _I0_A, _I0_B, _I1_A, _I1_B)
)


@_inline
def _bessel_scaled_small(v, odd, a_terms):
    """exp(-|v|) I_n(v) for |v| <= 8 (n = 1 where ``odd``, else 0): Cephes' first interval."""
    z = abs(v)
    small = _chbevl(z / 2.0 - 2.0, a_terms)
    small = small * z if odd else small
    return -small if odd and v < 0.0 else small


@_inline
def _bessel_scaled(v, odd, a_terms, b_terms):
    """exp(-|v|) I_n(v) (n = 1 where ``odd``, else 0) by Cephes' two intervals, both evaluated and one
    kept (``special._bessel_scaled64``)."""
    z = abs(v)
    small = _chbevl(z / 2.0 - 2.0, a_terms)
    small = small * z if odd else small
    large_z = max(z, 8.0)
    large = _chbevl(32.0 / large_z - 2.0, b_terms) / math.sqrt(large_z)
    out = small if z <= 8.0 else large
    out = -out if odd and v < 0.0 else out
    return out if z == z else v


@_inline
def _bessel_scaled_chunks(x, out, odd, a_terms, b_terms):
    """``out[i] = exp(-|x|) I_n(x[i])`` over chunks: a chunk whose elements all lie in |x| <= 8 (every
    element of most inputs) skips the second interval's series, square root and division."""
    for start in range(0, x.shape[0], _CHUNK):
        xs = x[start : start + _CHUNK]
        outs = out[start : start + _CHUNK]
        outside = 0
        for i in range(xs.shape[0]):
            outside += not abs(xs[i]) <= 8.0
        if outside:
            for i in range(xs.shape[0]):
                outs[i] = _bessel_scaled(np.float64(xs[i]), odd, a_terms, b_terms)
        else:
            for i in range(xs.shape[0]):
                outs[i] = _bessel_scaled_small(np.float64(xs[i]), odd, a_terms)


@_jit
def i0e_single(x, out):
    """``out[i] = exp(-|x|) I0(x[i])`` (flat float32 arrays) with the series shortened to float32's
    precision, in float64, in SIMD loops (the NumPy path gathers each interval's elements)."""
    _bessel_scaled_chunks(x, out, False, _I0_A_SINGLE_8, _I0_B_SINGLE_8)


@_jit
def i1e_single(x, out):
    """``out[i] = exp(-|x|) I1(x[i])`` (flat float32 arrays), as :func:`i0e_single`."""
    _bessel_scaled_chunks(x, out, True, _I1_A_SINGLE_8, _I1_B_SINGLE_8)


@_jit
def i0e_double(x, out):
    """``out[i] = exp(-|x|) I0(x[i])`` (flat float64 arrays), the whole series, in SIMD loops."""
    _bessel_scaled_chunks(x, out, False, _I0_A_8, _I0_B_8)


@_jit
def i1e_double(x, out):
    """``out[i] = exp(-|x|) I1(x[i])`` (flat float64 arrays), the whole series, in SIMD loops."""
    _bessel_scaled_chunks(x, out, True, _I1_A_8, _I1_B_8)


@_jit
def outer_rows(a, b, out):
    """``out[p, i, j] = a[p, i] * b[p, j]`` (C-contiguous; a batch of outer products, einsum's
    ``'pi,pj->pij'``): each output row written in one go, at the speed of a copy, where np.einsum runs
    its sum-of-products loop and NumPy's broadcast multiply pays for the stride-0 operand."""
    batch, rows = a.shape
    cols = b.shape[1]
    for p in range(batch):
        br = b[p]
        for i in range(rows):
            v = a[p, i]
            o = out[p, i]
            for j in range(cols):
                o[j] = v * br[j]


# The float32 division family (torch's remainder and floor_divide, C's fmod), one pass each over
# C-contiguous flat arrays of one shape, where the NumPy steps take 6-10 passes (NumPy's own float32
# fmod and floor_divide are scalar loops). fmod as ``arithmetic._float_fmod``: x - trunc(x / y) y in
# float64, exact while the quotient is below 2^24; the few other elements (larger quotients, y = 0,
# inf, NaN) are redone with the C library's fmod (exact in any precision) in a second pass.
_EXACT_QUOTIENT = 2.0**24


@_inline
def _fmod_fast(v, w):
    """C's fmod of two float32 values, computed in float64, and whether that is exact (else 0)."""
    wx = np.float64(v)
    wy = np.float64(w)
    quotient = np.trunc(wx / wy)
    rest = wx - quotient * wy
    exact = (abs(quotient) < _EXACT_QUOTIENT) & (abs(rest) < np.inf)
    return np.float32(math.copysign(abs(rest), wx)), exact


@_jit
def _fmod_float32(x, y, out):
    """``out = fmod(x, y)`` (flat float32 arrays); the float64 route in a SIMD loop, then the C
    library's fmod where that route is not exact."""
    inexact = 0
    for i in range(x.shape[0]):
        value, exact = _fmod_fast(x[i], y[i])
        out[i] = value
        inexact += not exact
    if inexact:
        for i in range(x.shape[0]):
            if not _fmod_fast(x[i], y[i])[1]:
                out[i] = np.fmod(np.float64(x[i]), np.float64(y[i]))


@_jit
def fmod_float32(x, y, out):
    """``out[i] = fmod(x[i], y[i])``: C's fmod, bit for bit (flat float32 arrays)."""
    _fmod_float32(x, y, out)


@_jit
def remainder_float32(x, y, out):
    """``out[i] = remainder(x[i], y[i])`` as torch's kernel: fmod, moved by y where it is nonzero and
    its sign differs from y's (flat float32 arrays)."""
    _fmod_float32(x, y, out)
    zero = np.float32(0.0)
    for i in range(x.shape[0]):
        mod = out[i]
        w = y[i]
        out[i] = mod + w if (mod != zero) & ((w < zero) != (mod < zero)) else mod


@_jit
def floor_divide_float32(x, y, out):
    """``out[i] = floor_divide(x[i], y[i])`` as NumPy's and torch's float kernels (flat float32 arrays,
    float32 steps as ``arithmetic._floor_divide_array``): (x - fmod(x, y)) / y, one less where fmod's
    sign differs from y's, snapped to the nearest integer, with the sign of x / y on a zero; x / y
    where y is 0."""
    _fmod_float32(x, y, out)
    zero = np.float32(0.0)
    one = np.float32(1.0)
    half = np.float32(0.5)
    for i in range(x.shape[0]):
        mod = out[i]
        v = x[i]
        w = y[i]
        div = (v - mod) / w
        div = div - one if (mod != zero) & ((w < zero) != (mod < zero)) else div
        floor_div = np.floor(div)
        floor_div = floor_div + one if div - floor_div > half else floor_div
        ratio = v / w
        floor_div = np.float32(math.copysign(np.float64(floor_div), np.float64(ratio)))
        out[i] = ratio if w == zero else floor_div


# float64 erf, erfc and erfinv in one SIMD loop each: fdlibm's formulas (as ``erf_double_finish``)
# with an exponential of their own inlined (no NumPy exp between two kernels, no temporaries), per
# chunk only the ranges its elements need. e^t = p 2^n with n = round(t / ln 2), r = t - n ln 2 from
# ln 2 split in two (fdlibm's: n * _LN2_HI_D is exact for |n| < 2^20, and t - n * _LN2_HI_D exact by
# Sterbenz's lemma), p = 1 + r q(r) the Taylor polynomial of degree 13 (its truncation under 1e-18 for
# |r| <= ln 2 / 2): within about an ulp, as libm's exp, and no division
_LN2_HI_D = 6.93147180369123816490e-01
_LN2_LO_D = 1.90821492927058770002e-10
_INV_LN2_D = 1.44269504088896338700e00
_EXP_TAYLOR_D = tuple(1.0 / math.factorial(k) for k in range(13, 0, -1))
_ERF_D_SATURATES = 6.0  # erfc(6) = 2.2e-17, under half an ulp below 1: erf rounds to +-1 from about 5.93
_HALF_SQRT_PI_D = 0.5 * math.sqrt(math.pi)


@_inline
def _exp_reduced(hi, lo):
    """(p, n) with e^(hi + lo) = p 2^n, p in [0.7, 1.42] (n an integral float): ``hi`` exact, ``lo`` a
    small correction added after the exact reduction of ``hi``, so that hi + lo need not be rounded."""
    n = np.floor((hi + lo) * _INV_LN2_D + 0.5)  # (numba's np.round is a slow call)
    r = (hi - n * _LN2_HI_D) + lo
    r = r - n * _LN2_LO_D
    return _horner(r, _EXP_TAYLOR_D) * r + 1.0, n


@_inline
def _times_two_to(v, n):
    """``v 2^n`` for v near 1 and an integral float n in [-2044, 1023]: two normal powers of two, so a
    subnormal result is rounded once, by the last product."""
    half = np.floor(n * 0.5)
    first = np.int64((np.int64(half) + 1023) << 52).view(np.float64)
    second = np.int64((np.int64(n - half) + 1023) << 52).view(np.float64)
    return v * first * second


@_inline
def _erfc_tail_double(a):
    """erfc(a) for 1.25 <= a < 28, fdlibm's: exp(-a^2 - 0.5625 + R/S(1/a^2)) / a, with a = hi + lo
    and hi^2 exact (a plain a * a would carry its rounding, magnified by a^2, into the result)."""
    w = 1.0 / (a * a)
    ratio = _selected_ratio_plus_one(w, a < 1 / 0.35, _RA, _RB_PADDED, _SA, _SB_PADDED)
    hi = np.floor(a * 2097152.0 + 0.5) / 2097152.0  # 2^21: at most 26 bits below 28, so hi * hi is exact
    p, n = _exp_reduced(-(hi * hi) - 0.5625, (hi - a) * (hi + a) + ratio)
    return _times_two_to(p / a, n)  # (p times 1/a, one division fewer, was 1.9 ulps off, and no faster)


@_inline
def _ranges(xs, centre_to, middle_to):
    """0 when every |x| of the chunk is below ``centre_to``, 1 when below ``middle_to``, else 2 (NaN too)."""
    beyond_centre = 0
    beyond_middle = 0
    for i in range(xs.shape[0]):
        a = abs(xs[i])
        beyond_centre += not a < centre_to
        beyond_middle += not a < middle_to
    return 2 if beyond_middle else (1 if beyond_centre else 0)


@_jit_fused
def erf_float64(x, out):
    """``out[i] = erf(x[i])`` (flat float64 arrays) by fdlibm's formulas (as ``_erf.erf64``) with the
    exponential above inlined: within an ulp of the exact value. Chunks as :func:`erf_float32`."""
    for start in range(0, x.shape[0], _CHUNK):
        xs = x[start : start + _CHUNK]
        outs = out[start : start + _CHUNK]
        ranges = _ranges(xs, 0.84375, 1.25)
        if ranges == 0:
            for i in range(xs.shape[0]):
                v = xs[i]
                outs[i] = v + v * _ratio_plus_one(v * v, _PP, _QQ)
        elif ranges == 1:
            for i in range(xs.shape[0]):
                v = xs[i]
                a = abs(v)
                centre = v + v * _ratio_plus_one(v * v, _PP, _QQ)
                middle = math.copysign(_ERX + _ratio_plus_one(a - 1.0, _PA, _QA), v)
                outs[i] = centre if a < 0.84375 else middle
        else:
            for i in range(xs.shape[0]):
                v = xs[i]
                a = abs(v)
                centre = v + v * _ratio_plus_one(v * v, _PP, _QQ)
                middle = _ERX + _ratio_plus_one(a - 1.0, _PA, _QA)
                tail = 1.0 - _erfc_tail_double(min(max(a, 1.25), _ERF_D_SATURATES))
                far = math.copysign(middle if a < 1.25 else tail, v)
                value = centre if a < 0.84375 else far
                outs[i] = value if a == a else v


@_jit_fused
def erfc_float64(x, out):
    """``out[i] = erfc(x[i])`` (flat float64 arrays) by fdlibm's formulas (as ``_erf.erfc64``) with the
    exponential above inlined: relative precision down to the subnormals (0 from 28), within about two
    ulps of the exact value. Chunks as :func:`erf_float32`."""
    for start in range(0, x.shape[0], _CHUNK):
        xs = x[start : start + _CHUNK]
        outs = out[start : start + _CHUNK]
        ranges = _ranges(xs, 0.84375, 1.25)
        if ranges == 0:
            for i in range(xs.shape[0]):
                v = xs[i]
                outs[i] = 0.5 - (v * _ratio_plus_one(v * v, _PP, _QQ) + (v - 0.5))
        elif ranges == 1:
            for i in range(xs.shape[0]):
                outs[i] = _erfc_near(xs[i])
        else:
            for i in range(xs.shape[0]):
                v = xs[i]
                a = abs(v)
                tail = _erfc_tail_double(min(max(a, 1.25), _ERFC_ZERO_FROM))
                tail = 0.0 if a >= _ERFC_ZERO_FROM else tail
                far = 2.0 - tail if v < 0.0 else tail
                near = _erfc_near(v)  # computed before the select: a call in a branch stops the vectorisation
                value = near if a < 1.25 else far
                outs[i] = value if a == a else v


@_inline
def _erfc_near(v):
    """erfc(v) for |v| < 1.25: fdlibm's centre and middle formulas, a select keeping one."""
    a = abs(v)
    centre = 0.5 - (v * _ratio_plus_one(v * v, _PP, _QQ) + (v - 0.5))
    m = _ratio_plus_one(a - 1.0, _PA, _QA)
    middle = (1.0 - _ERX) - m if v > 0.0 else 1.0 + (_ERX + m)
    return centre if a < 0.84375 else middle


@_inline
def _erf_split_near(x):
    """erf(x) for 0 <= x < 1.25, and erf(x) - 1 from x = 1 (``_erf.erf_split``)."""
    centre = x + x * _ratio_plus_one(x * x, _PP, _QQ)
    middle = (_ERX - (1.0 if x > 1.0 else 0.0)) + _ratio_plus_one(x - 1.0, _PA, _QA)
    return centre if x < 0.84375 else middle


@_inline
def _halley_erfinv(x, m, split):
    """One Halley step from x towards erfinv(m) (x, m >= 0) on erf(x) = m, with ``split`` = erf(x) (less 1
    beyond x = 1, where m - 1 is exact and erf(x) - m would cancel to nothing)."""
    residual = split - (m - (1.0 if x > 1.0 else 0.0))
    p, n = _exp_reduced(x * x, 0.0)
    step = residual * _HALF_SQRT_PI_D * _times_two_to(p, n)  # the residual over erf's derivative
    return x - step / (1.0 + x * step)  # Halley's correction: erf'' / erf' = -2x


@_jit_fused
def erfinv_float64(y, out):
    """``out[i] = erfinv(y[i])`` (flat float64 arrays) as ``special._erfinv64(steps=1)``: Acklam's
    approximation (as :func:`erfinv_float32`, the tail's elements gathered) then one Halley step on
    erf(x) = |y| (erfc beyond x = 1), with the float64 erf above; +-inf at +-1, NaN beyond and at NaN,
    the sign copied (-0.0 at -0.0)."""
    others = np.empty(_CHUNK, np.int64)  # host: numba's scratch
    estimates = np.empty(_CHUNK, np.float64)  # host: numba's scratch
    for start in range(0, y.shape[0], _CHUNK):
        ys = y[start : start + _CHUNK]
        outs = out[start : start + _CHUNK]
        outside = 0
        for i in range(ys.shape[0]):
            m = abs(ys[i])
            outs[i] = _erfinv_centre(m)
            outside += not m <= _CENTRE_TO
        if outside:
            count = 0
            for i in range(ys.shape[0]):
                others[count] = i
                count += not abs(ys[i]) <= _CENTRE_TO
            for j in range(count):
                i = others[j]
                m = abs(ys[i])
                r = math.sqrt(-2.0 * _log_normal(min(max((1.0 - m) * 0.5, 1e-300), 0.5)))
                tail = _horner(r, _ACKLAM_C) / (_horner(r, _ACKLAM_D) * r + 1.0) * -_SQRT_HALF
                outs[i] = tail if m < 1.0 else (math.inf if m == 1.0 else math.nan)
        # the estimates from 1.25 on (|y| > 0.92, some 8% of uniform inputs; inf and NaN too) step with
        # erfc's tail formula: their positions and estimates gathered, and only those redone below
        count = 0
        for i in range(ys.shape[0]):
            x = outs[i]
            others[count] = i
            estimates[count] = x
            count += not x < 1.25
        for i in range(ys.shape[0]):
            x = outs[i]
            outs[i] = math.copysign(_halley_erfinv(x, abs(ys[i]), _erf_split_near(x)), ys[i])
        for j in range(count):
            i = others[j]
            x = estimates[j]
            m = abs(ys[i])
            far = -_erfc_tail_double(min(max(x, 1.25), _ERFC_ZERO_FROM))
            stepped = _halley_erfinv(x, m, far)
            outs[i] = math.copysign(stepped if m < 1.0 else x, ys[i])


# The regularised incomplete gamma functions P(a, x) and Q(a, x) per element (``special._igam_pair``'s
# methods and regions, Cephes' igam.c as torch's calc_igamma/calc_igammac): the NumPy path runs each
# method's iterations over the whole array with the converged entries packed away at every step, 8x
# torch's time on 1e5 elements; here each element iterates only as far as it needs. The C library's
# exp, log, log1p, expm1, lgamma and erfc stand in for NumPy's (the same functions, within an ulp).
_LANCZOS_NUM_UP = _LANCZOS_NUM[::-1]
_LANCZOS_DEN_UP = _LANCZOS_DEN[::-1]
_TEMME_ROWS = np.array(_TEMME_D, np.float64)  # host: a constant table
_IGAM_BIG = 4.503599627370496e15


@_inline
def _lanczos_scaled(a):
    """Boost's exp(g)-scaled Lanczos sum at a > 0 (``special._lanczos_sum_expg_scaled``)."""
    num = 0.0
    den = 0.0
    if a > 1.0:  # in 1/a from the constant terms up: large a does not overflow
        y = 1.0 / a
        for k in range(len(_LANCZOS_NUM_UP)):
            num = num * y + _LANCZOS_NUM_UP[k]
            den = den * y + _LANCZOS_DEN_UP[k]
    else:
        for k in range(len(_LANCZOS_NUM)):
            num = num * a + _LANCZOS_NUM[k]
            den = den * a + _LANCZOS_DEN[k]
    return num / den


@_inline
def _log1pmx_scalar(s):
    """log(1 + s) - s, by its series for |s| < 1/4 (``special._log1pmx``)."""
    if abs(s) >= 0.25:
        return math.log1p(s) - s
    series = 0.0
    for k in range(28, 1, -1):
        series = series * s + (1.0 if k % 2 else -1.0) / k
    return series * s * s


@_inline
def _lgamma1p_scalar(a):
    """lgamma(1 + a), by its Taylor series for |a| <= 1/2 (``special._lgamma1p``)."""
    if abs(a) > 0.5:
        return math.lgamma(1.0 + a)
    series = 0.0
    for k in range(len(_ZETA_MINUS_ONE) + 1, 1, -1):
        series = series * -a + _ZETA_MINUS_ONE[k - 2] / k
    return -_EULER_GAMMA * a - _log1pmx_scalar(a) + series * a * a


@_inline
def _igam_fac_scalar(a, x):
    """x^a e^-x / Gamma(a), through Lanczos' approximation where x is near a (``special._igam_fac``)."""
    if abs(a - x) > 0.4 * abs(a):
        return math.exp(a * math.log(x) - x - math.lgamma(a))
    fac = a + _LANCZOS_G - 0.5
    res = math.sqrt(fac / math.e) / _lanczos_scaled(a)
    if a < 200.0 and x < 200.0:
        return res * (math.exp(a - x) * (x / fac) ** a)
    numfac = (x - a - _LANCZOS_G + 0.5) / fac
    return res * math.exp(a * _log1pmx_scalar(numfac) + x * (0.5 - _LANCZOS_G) / fac)


@_inline
def _igam_series_scalar(a, x):
    """P(a, x) by the power series (``special._igam_series``)."""
    r = a
    c = 1.0
    total = 1.0
    for _ in range(_IGAM_MAXITER):
        r += 1.0
        c *= x / r
        total += c
        if not c > _MACHEP * total:
            break
    return total * _igam_fac_scalar(a, x) / a


@_inline
def _igamc_series_scalar(a, x):
    """Q(a, x) for small x (``special._igamc_series``)."""
    fac = 1.0
    total = 0.0
    for n in range(1, _IGAM_MAXITER):
        fac *= -x / n
        term = fac / (a + n)
        total += term
        if not abs(term) > _MACHEP * abs(total):
            break
    log_x = math.log(x)
    return -math.expm1(a * log_x - _lgamma1p_scalar(a)) - math.exp(a * log_x - math.lgamma(a)) * total


@_inline
def _igamc_fraction_scalar(a, x):
    """Q(a, x) by the continued fraction (``special._igamc_continued_fraction``)."""
    y = 1.0 - a
    z = x + y + 1.0
    pkm2 = 1.0
    qkm2 = x
    pkm1 = x + 1.0
    qkm1 = z * x
    ans = pkm1 / qkm1
    for c in range(1, _IGAM_MAXITER + 1):
        y += 1.0
        z += 2.0
        yc = y * c
        pk = pkm1 * z - pkm2 * yc
        qk = qkm1 * z - qkm2 * yc
        t = 1.0
        if qk != 0.0:
            r = pk / qk
            t = abs((ans - r) / r)
            ans = r
        pkm2, pkm1, qkm2, qkm1 = pkm1, pk, qkm1, qk
        size = max(abs(pk), abs(qk))
        if size > _IGAM_BIG:  # rescaled by the power of two of the larger (only the ratios count)
            scale = math.ldexp(1.0, -math.frexp(size)[1])
            pkm2 *= scale
            pkm1 *= scale
            qkm2 *= scale
            qkm1 *= scale
        if not t > _MACHEP:
            break
    fac = _igam_fac_scalar(a, x)
    return 0.0 if fac == 0.0 else ans * fac


@_inline
def _igam_asymptotic_scalar(a, x):
    """(P, Q) by Temme's uniform expansion (``special._igam_asymptotic``)."""
    sigma = (x - a) / a
    eta = math.sqrt(max(-2.0 * _log1pmx_scalar(sigma), 0.0))
    eta = -eta if sigma < 0.0 else (eta if sigma > 0.0 else 0.0)
    total = 0.0
    old = math.inf
    afac = 1.0
    rows, columns = _TEMME_ROWS.shape
    for k in range(rows):
        ck = 0.0
        for n in range(columns - 1, -1, -1):
            ck = ck * eta + _TEMME_ROWS[k, n]
        term = ck * afac
        if not abs(term) <= old:
            break
        total += term
        if not abs(term) >= _MACHEP * abs(total):
            break
        old = abs(term)
        afac /= a
    rest = math.exp(-0.5 * a * eta * eta) * total / math.sqrt(2 * math.pi * a)
    half = eta * math.sqrt(a / 2)
    return 0.5 * math.erfc(-half) - rest, 0.5 * math.erfc(half) + rest


@_jit
def igamma(a, x, upper, out):
    """``out[i] = P(a[i], x[i])``, or Q with ``upper`` (flat float64 arrays, a > 0 and x > 0 finite), by
    the method and region of ``special._igam_pair`` (so that a small value keeps its relative digits),
    computing only the one asked for where the other is not needed for it."""
    for i in range(a.shape[0]):
        ai = a[i]
        xi = x[i]
        if ai > 20.0 and abs(xi - ai) < 0.3 * ai:
            p, q = _igam_asymptotic_scalar(ai, xi)
            out[i] = q if upper else p
            continue
        # P is 1 - Q where x > 1 and x > a; Q by the continued fraction (x > 1.1, x >= a), else by its
        # series at small x (which then covers every x > a), else 1 - P
        fraction = xi > 1.1 and xi >= ai
        small_series = (not fraction) and xi <= 1.1 and ((-0.4 / math.log(xi) >= ai) if xi <= 0.5 else (xi * 1.1 >= ai))
        if not upper and not (xi > 1.0 and xi > ai):
            out[i] = _igam_series_scalar(ai, xi)
            continue
        if fraction:
            q = _igamc_fraction_scalar(ai, xi)
        elif small_series:
            q = _igamc_series_scalar(ai, xi)
        else:
            q = 1.0 - _igam_series_scalar(ai, xi)
        out[i] = q if upper else 1.0 - q
