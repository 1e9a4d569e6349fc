"""Compiled (numba) kernels for the exact GELU of float32 arrays, forward and backward, each one
pass over the data; imported only when ``_jit.kernels`` says the compiled path applies (numba
installed, not switched off, host arrays).

``Phi(x) = erfc(-x / sqrt 2) / 2`` with the same Chebyshev fit of erfc as the NumPy path of
``functional.gelu`` (Numerical Recipes, fractional error < 1.2e-7 for every argument, so both
tails keep their relative accuracy), and ``exp`` is ``jit_math.exp_flush`` (written out to run in
SIMD lanes; 0 where e^x would be subnormal, under 1.2e-38).
These kernels take and make NumPy arrays only (marked ``# host: numba path``).

Example:
    >>> import numpy as np
    >>> from downslope.nn import _jit
    >>> if _jit.kernels() is not None:
    ...     from downslope.nn import _jit_activation_kernels as k
    ...     out, cdf = k.gelu_erf(np.array([0.0, 1.0], np.float32))
    ...     assert abs(float(out[1]) - 0.8413447) < 1e-6
"""

from __future__ import annotations

import numba
import numpy as np

from .. import parallel as _parallel
from .. import workspace as _workspace
from ..jit_math import exp_flush

# contract: a * b + c as one fused multiply-add (one rounding fewer); nothing is reassociated
_jit = numba.njit(cache=True, nogil=True, fastmath={"contract"}, error_model="numpy")
_jit_inline = numba.njit(cache=True, nogil=True, fastmath={"contract"}, error_model="numpy", inline="always")

_F = np.float32
_HALF = _F(0.5)
_ONE = _F(1.0)
_TWO = _F(2.0)
_NEG_SQRT1_2 = _F(-0.7071067811865476)
_INV_SQRT_2PI = _F(0.3989422804014327)
# Numerical Recipes' erfc (Chebyshev), highest power first: as functional._ERFC_COEFFS
_C0, _C1, _C2, _C3, _C4, _C5, _C6, _C7, _C8, _C9 = (
    _F(0.17087277), _F(-0.82215223), _F(1.48851587), _F(-1.13520398), _F(0.27886807), _F(-0.18628806),
    _F(0.09678418), _F(0.37409196), _F(1.00002368), _F(-1.26551223),
)  # fmt: skip


@_jit_inline
def _phi_cdf(x):
    """Phi(x) = erfc(-x / sqrt 2) / 2 in float32."""
    z = x * _NEG_SQRT1_2
    a = abs(z)
    t = _ONE / (_ONE + _HALF * a)
    p = _C0 * t + _C1
    p = p * t + _C2
    p = p * t + _C3
    p = p * t + _C4
    p = p * t + _C5
    p = p * t + _C6
    p = p * t + _C7
    p = p * t + _C8
    p = p * t + _C9
    e = t * exp_flush(p - a * a)  # erfc(|z|); a * a = inf past 1.8e19: e^-inf = 0, the limit
    return _HALF * (_TWO - e if z < 0 else e)


@_jit
def _gelu_erf(x, out, cdf):
    for i in range(x.shape[0]):
        v = x[i]
        c = _phi_cdf(v)
        cdf[i] = c
        out[i] = v * c


@_jit
def _gelu_erf_infer(x, out):
    for i in range(x.shape[0]):
        v = x[i]
        out[i] = v * _phi_cdf(v)


@_jit
def _gelu_erf_backward(g, x, cdf, gx):
    for i in range(x.shape[0]):
        v = x[i]
        # d/dx x Phi(x) = Phi(x) + x phi(x); x^2 = inf -> phi 0, and at x = inf, inf * 0: NaN as torch
        gx[i] = g[i] * (cdf[i] + v * (_INV_SQRT_2PI * exp_flush(v * v * -_HALF)))


def _fresh(like: np.ndarray) -> np.ndarray:
    """An uninitialised array shaped as ``like``: a lent one when large (its pages come back warm,
    see ``workspace.lend``), else NumPy's own."""
    if like.nbytes >= _workspace.LEND_MIN_BYTES:
        return _workspace.lend(like.shape, like.dtype)
    return np.empty(like.shape, dtype=like.dtype)  # host: numba path


def gelu_erf(x: np.ndarray, save: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    """(x * Phi(x), Phi(x) when ``save`` else None) of the contiguous 1-D float32 ``x``, in one pass."""
    out = _fresh(x)
    cdf = _fresh(x) if save else None  # saved for backward (lent: a fresh block would page-fault each step)

    def part(lo: int, hi: int) -> None:
        if cdf is not None:
            _gelu_erf(x[lo:hi], out[lo:hi], cdf[lo:hi])
        else:
            _gelu_erf_infer(x[lo:hi], out[lo:hi])

    _parallel.over_parts(x, x.shape[0], 2 * x.size, part)
    return out, cdf


def gelu_erf_backward(g: np.ndarray, x: np.ndarray, cdf: np.ndarray) -> np.ndarray:
    """``g * (Phi(x) + x phi(x))`` of contiguous 1-D float32 arrays, in one pass."""
    gx = _fresh(g)

    def part(lo: int, hi: int) -> None:
        _gelu_erf_backward(g[lo:hi], x[lo:hi], cdf[lo:hi], gx[lo:hi])

    _parallel.over_parts(g, g.shape[0], 2 * g.size, part)
    return gx
