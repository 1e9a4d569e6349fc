"""Compiled (numba) lgamma and digamma of contiguous float32/float64 arrays, and a few one-pass
elementwise kernels (nan_to_num, clamp with tensor bounds, kron);
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

# no fastmath: each step rounds as the NumPy path's; the numpy error model gives inf/NaN, never raises
_jit = numba.njit(cache=True, nogil=True, error_model="numpy")

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
            if v == math.floor(v) or v == -math.inf:
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
