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
in float32 keeps a log-probability of exactly 0, as torch's). ``exp`` is ``jit_math.exp``, written
out so that it runs in SIMD lanes (subnormal results rounded once, as libm's). These kernels take
and make NumPy arrays only.

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

from .. import parallel as _parallel
from .. import workspace as _workspace
from ..jit_math import cast, exp, maxnum

# contract: a * b + c as one fused multiply-add (one rounding fewer); nothing is reassociated
_jit = numba.njit(cache=True, nogil=True, fastmath={"contract"}, error_model="numpy")
# reductions alone may be reassociated: several partial sums in SIMD lanes, as NumPy's and torch's
_jit_sum = numba.njit(cache=True, nogil=True, fastmath={"contract", "reassoc"}, error_model="numpy")


@_jit
def _row_max(x):
    m = x[0]
    for j in range(x.shape[0]):  # from 0, not 1: a trip count of n keeps whole SIMD blocks for n = 64
        m = maxnum(m, x[j])
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


# numba-inlined into the row loops: as a call it ran rows of 64 (attention scores) 15% longer
@numba.njit(cache=True, nogil=True, fastmath={"contract"}, error_model="numpy", inline="always")
def _shifted_exp(xi, oi):
    """``oi = exp(xi - m)`` for the row's max ``m``; returns ``(m, sum(oi))``, the sum rounded to the
    row's dtype (as the NumPy path's and torch's)."""
    m = _row_max(xi)
    for j in range(xi.shape[0]):
        oi[j] = exp(xi[j] - m)
    return m, cast(_row_sum(oi), m)


@_jit
def _softmax_rows(x, out):
    n = x.shape[1]
    for i in range(x.shape[0]):
        oi = out[i]
        m, total = _shifted_exp(x[i], oi)
        inv = cast(1.0, m) / total  # one division per row, then a product per element (as torch)
        for j in range(n):
            oi[j] *= inv


@_jit
def _log_softmax_rows(x, out):
    n = x.shape[1]
    for i in range(x.shape[0]):
        xi, oi = x[i], out[i]
        m, total = _shifted_exp(xi, oi)
        log_total = np.log(total)
        for j in range(n):
            oi[j] = (xi[j] - m) - log_total


@_jit
def _softmax_backward_rows(g, y, gx):
    n = g.shape[1]
    for i in range(g.shape[0]):
        gi, yi, oi = g[i], y[i], gx[i]
        dot = cast(_row_dot(gi, yi), gi[0])
        for j in range(n):
            oi[j] = (gi[j] - dot) * yi[j]


@_jit
def _log_softmax_backward_rows(g, y, gx):
    n = g.shape[1]
    for i in range(g.shape[0]):
        gi, yi, oi = g[i], y[i], gx[i]
        total = cast(_row_sum(gi), gi[0])
        for j in range(n):
            oi[j] = gi[j] - exp(yi[j]) * total


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
