"""Compiled (numba) lgamma and digamma of contiguous float32/float64 arrays, one element at a time;
imported only when ``jit_gate.kernels`` says the compiled path applies (numba installed, not
switched off, host arrays). ``special.lgamma_array`` and ``special.digamma_array`` keep the NumPy
path for everything else (small arrays, float16, devices).

* ``lgamma``: the C library's ``lgamma`` (``lgammaf`` for float32), which is what torch's CPU
  kernel calls too (``std::lgamma``): +inf at 0 and the non-positive integers and at +-inf.
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
