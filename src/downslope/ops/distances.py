"""Host kernels of the p-norm distances between rows (``F.pdist``, ``torch.cdist``) for p = 1, inf and
other positive p: the compiled kernels of ``ops._jit_distance`` where they apply, cdist's NumPy
formulation a block of rows at a time otherwise (no (P, R, M) array of differences), and the
gradient factor every path shares (torch's pdist/cdist backward rules at zeros and ties).

The compiled path takes p = 1 and inf of finite float32/float64 host arrays with enough work to pay
numba's first call. Other p, NaN or inf values, small inputs, and numba missing or switched off take
cdist's NumPy blocks here (pdist's own blocks in nn.functional), with NumPy's NaN propagation as
before; float16, p = 0 and device arrays answer None and keep the callers' own formulation.

Example:
    >>> import numpy as np
    >>> from downslope.graph import ArrayRules
    >>> from downslope.ops import distances
    >>> d = np.array([[3.0, -4.0]])
    >>> distances.distance_factor(d, np.array([4.0]), float("inf"), ArrayRules).tolist()
    [[0.0, -1.0]]
"""

from __future__ import annotations

import math
from types import ModuleType
from typing import Any

import numpy as np

from .. import jit_gate
from ..backend import namespace_of
from ..graph import ArrayRules

__all__ = [
    "cdist_backward",
    "cdist_forward",
    "difference_norms",
    "distance_factor",
    "largest_difference",
    "max_factor",
    "pdist_backward",
    "pdist_forward",
]

_JIT = "downslope.ops._jit_distance"
_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
# Below this many (pair, feature) terms the NumPy path is as fast, and a process's first compiled
# call (numba's import and cache load, 0.5-2 s) would cost more than it saves.
MIN_WORK = 1 << 16


def _kind(p: float) -> int:
    """The kernels' norm kind for ``p`` (1 or inf, the only ones they take)."""
    return 1 if p == 1 else 2


def _kernels(p: float, work: int, *arrays: np.ndarray) -> ModuleType | None:
    """The compiled kernels when they apply to ``arrays`` (see the module's doc), else None."""
    # other p: NumPy's SIMD pow ran 3x faster than the compiled scalar one
    if p not in (1, math.inf) or work == 0 or work < MIN_WORK or any(a.dtype not in _DTYPES for a in arrays):
        return None
    kernels = jit_gate.kernels(_JIT, *arrays)
    if kernels is None:
        return None
    # NaN and inf take the NumPy path, which keeps torch's propagation (a NaN distance, inf - inf)
    if not all(np.isfinite(a).all() for a in arrays):  # host: the compiled path's host arrays
        return None
    return kernels


def pdist_forward(a: np.ndarray, p: float) -> tuple[np.ndarray, Any] | None:
    """pdist of the rows of (N, M) host ``a`` through the compiled kernels: (distances, what
    :func:`pdist_backward` needs), or None where they do not apply."""
    n, m = a.shape
    kernels = _kernels(p, n * (n - 1) // 2 * m, a)
    if kernels is None:
        return None
    xt = np.ascontiguousarray(a.T)  # host: the compiled path's host arrays
    out = np.empty(n * (n - 1) // 2, dtype=a.dtype)  # host: the compiled path's host arrays
    state = (kernels, xt, _kind(p))
    kernels.pdist_forward(xt, state[2], out)
    return out, state


def pdist_backward(state: Any, g: np.ndarray, dist: np.ndarray) -> np.ndarray:
    """The input gradient of :func:`pdist_forward`'s distances for their gradient ``g``."""
    kernels, xt, kind = state
    gxt = np.zeros_like(xt)
    g = np.ascontiguousarray(g, dtype=xt.dtype)  # host: the compiled path's host arrays
    dist = np.ascontiguousarray(dist)  # host: the compiled path's host arrays
    kernels.pdist_backward(xt, g, dist, kind, gxt)
    return gxt.T


def cdist_forward(x1: np.ndarray, x2: np.ndarray, p: float) -> tuple[np.ndarray, Any] | None:
    """cdist of host ``x1`` (..., P, M) and ``x2`` (..., R, M) (batch dims broadcast) through the
    compiled kernels: (distances (..., P, R), what :func:`cdist_backward` needs), or None."""
    batch = np.broadcast_shapes(x1.shape[:-2], x2.shape[:-2])
    (rows1, m), rows2 = x1.shape[-2:], x2.shape[-2]
    count = math.prod(batch)
    if x1.dtype != x2.dtype or type(x1) is not np.ndarray or type(x2) is not np.ndarray:
        return None
    kernels = _kernels(p, count * rows1 * rows2 * m, x1, x2)
    if kernels is None and (not p > 0 or x1.dtype not in _DTYPES or not count * rows1 * rows2 * m):
        return None
    left = np.broadcast_to(x1, batch + (rows1, m)).reshape(count, rows1, m)
    left = np.ascontiguousarray(left)  # host: the compiled path's host arrays
    if kernels is None:
        right = np.broadcast_to(x2, batch + (rows2, m)).reshape(count, rows2, m)
        right = np.ascontiguousarray(right)  # host: the NumPy path's host arrays
        out = np.empty((count, rows1, rows2), dtype=x1.dtype)  # host: the NumPy path's host arrays
        for start, stop in _row_blocks(rows1, rows2 * m * count * x1.itemsize):
            out[:, start:stop] = difference_norms(left[:, start:stop, None, :] - right[:, None, :, :], p, True)
        return out.reshape(batch + (rows1, rows2)), (None, left, right, p, batch)
    right_t = np.swapaxes(np.broadcast_to(x2, batch + (rows2, m)).reshape(count, rows2, m), -1, -2)
    right_t = np.ascontiguousarray(right_t)  # host: the compiled path's host arrays
    out = np.empty((count, rows1, rows2), dtype=x1.dtype)  # host: the compiled path's host arrays
    state = (kernels, left, right_t, _kind(p), batch)
    kernels.cdist_forward(left, right_t, state[3], out)
    return out.reshape(batch + (rows1, rows2)), state


def cdist_backward(state: Any, g: np.ndarray, dist: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The gradients (x1's, x2's) of :func:`cdist_forward`'s distances for their gradient ``g``, at
    the broadcast batch shape (the caller sums them to its inputs' shapes)."""
    kernels, left, right_t, kind, batch = state
    count, rows1, m = left.shape
    rows2 = right_t.shape[1 if kernels is None else 2]
    g = np.broadcast_to(g, batch + (rows1, rows2)).reshape(count, rows1, rows2)
    g = np.ascontiguousarray(g, dtype=left.dtype)  # host: the compiled path's host arrays
    dist = np.ascontiguousarray(dist).reshape(count, rows1, rows2)  # host: the compiled path's host arrays
    if kernels is None:  # the NumPy path: right_t is x2 itself (count, R, M), kind the norm's p
        right, g1, g2 = right_t, np.zeros_like(left), np.zeros_like(right_t)
        for start, stop in _row_blocks(rows1, rows2 * m * count * left.itemsize):
            d = left[:, start:stop, None, :] - right[:, None, :, :]
            w = distance_factor(d, dist[:, start:stop], kind, ArrayRules, True)
            w *= g[:, start:stop, :, None]
            g1[:, start:stop] = w.sum(axis=2)
            g2 -= w.sum(axis=1)
        return g1.reshape(batch + (rows1, m)), g2.reshape(batch + (rows2, m))
    g1 = np.zeros_like(left)
    g2t = np.zeros_like(right_t)
    kernels.cdist_backward(left, right_t, g, dist, kind, g1, g2t)
    return g1.reshape(batch + (rows1, m)), np.swapaxes(g2t, -1, -2).reshape(batch + (rows2, m))


# Row blocks of the NumPy path hold about this many bytes of (rows, R, M) differences: no (P, R, M)
# array for large inputs, and few enough blocks that the loop costs little
_BLOCK_BYTES = 1 << 21


def _row_blocks(rows: int, row_bytes: int) -> list[tuple[int, int]]:
    """(start, stop) of the row blocks of ``rows`` rows of ``row_bytes`` bytes of differences each."""
    step = max(1, _BLOCK_BYTES // max(1, row_bytes))
    return [(start, min(rows, start + step)) for start in range(0, rows, step)]


def difference_norms(d: np.ndarray, p: float, cdist: bool = False) -> np.ndarray:
    """torch's pdist/cdist norms over the last axis of differences ``d``: the count of nonzeros (p = 0),
    the largest |d|, sum |d|, or (sum |d|^p)^(1/p). ``cdist``: torch's cdist takes the largest |d| with
    ``max(running, |d|)`` from 0, which passes over a NaN difference (NaN inputs, inf - inf): the largest of
    the others (0 if none), where pdist's is NaN."""
    if p == 0:  # torch's min(ceil(|d|), 1): a NaN difference makes the count NaN (d != 0 would count it 1)
        return np.minimum(np.ceil(np.abs(d)), 1).sum(axis=-1)
    mag = np.abs(d)
    if p == math.inf:
        return largest_difference(mag) if cdist else mag.max(axis=-1)
    if p == 1:
        return mag.sum(axis=-1)
    if p == 2:
        return np.sqrt(np.einsum("...k,...k->...", d, d))
    return (mag**p).sum(axis=-1) ** (1.0 / p)


def largest_difference(mag: Any) -> Any:
    """torch's cdist for p = inf over the last axis of |differences| ``mag`` (any namespace): the largest,
    NaN passed over (0 where every one is NaN, or none is there)."""
    xp = namespace_of(mag)
    if not mag.shape[-1]:
        return xp.zeros(mag.shape[:-1], dtype=mag.dtype)
    return xp.where(xp.isnan(mag), 0, mag).max(axis=-1)


def max_factor(d: Any, dist: Any, xp: Any) -> Any:
    """torch's cdist backward for p = inf, ``sign(d) * (1 - min(1, ceil(||d| - dist|)))``, NaN propagating:
    the sign where |d| is the distance, 0 elsewhere, NaN at a NaN difference and at an infinite one whose
    distance is infinite (inf - inf). ``d`` (..., M) and ``dist`` (..., 1); ``xp``: the rule namespace."""
    a = xp.data(d)
    arrays = namespace_of(a)
    with np.errstate(invalid="ignore"):
        off = arrays.ceil(arrays.abs(arrays.abs(a) - xp.data(dist)))
        keep = 1 - arrays.minimum(off, 1)  # minimum, not clip: NaN stays NaN
    return xp.sign(d) * xp.constant(keep.astype(a.dtype, copy=False))


def distance_factor(d: Any, dist: Any, p: float, xp: Any, cdist: bool = False) -> Any:
    """d(dist)/d(d) for the pairs' differences ``d`` (..., M) and their distances ``dist`` (...),
    with torch's pdist/cdist backward: 0 at a zero distance (and for p < 1 at a zero difference),
    the sign for p = 1 (0 at a zero difference), and for p = inf the sign at every element whose
    |difference| is the distance (each tie gets the whole gradient; torch's formula, which also makes
    NaN of a NaN difference and of a NaN distance: see :func:`max_factor`). ``cdist``: accepted, the
    same. ``xp``: the rule namespace."""
    dist = xp.expand_dims(dist, -1)
    zero = xp.data(dist) == 0
    if p == 0:
        return d * 0.0
    if p == 1:
        return xp.sign(d)
    if p == math.inf:  # torch's pdist and cdist share the formula (NaN at a NaN or inf - inf difference)
        return max_factor(d, dist, xp)
    safe = xp.where(zero, 1.0, dist)  # no 0/0 where the derivative is 0 anyway
    if p == 2:
        return xp.where(zero, 0.0, d / safe)
    mag = d * xp.sign(d)
    off = zero | (xp.data(d) == 0) if p < 2 else zero
    mag_safe = xp.where(xp.data(d) == 0, 1.0, mag)
    return xp.where(off, 0.0, xp.sign(d) * (mag_safe / safe) ** (p - 1))
