"""Compiled (numba) running sums of float32/float64 arrays, accumulated in float64 and rounded once per
result, as torch's cumsum (and as ``np.cumsum(a, dtype=np.float64).astype(a.dtype)``, which NumPy runs
about 6x slower than a plain float32 scan). Imported only when ``jit_gate.kernels`` says the compiled path
applies (numba installed, not switched off, host arrays); ``scans.cumsum`` keeps the NumPy path for
everything else (float16, small arrays, devices).

The array is seen as ``(outer, n, inner)`` with the scan along ``n``: one float64 accumulator per inner
position, so a scan down a leading axis runs across contiguous rows (SIMD lanes) and a scan along the
last axis is one scalar loop per row. ``reverse`` runs from the end (the gradient of a running sum is the
reversed running sum of the output gradient), without the copy a reversed view would need. The additions
happen in the same order as NumPy's sequential scan, so the results are identical to the NumPy path.

Example:
    >>> import numpy as np
    >>> from downslope import jit_gate
    >>> k = jit_gate.kernels("downslope.ops._jit_scan")
    >>> if k is not None:
    ...     out = np.empty((1, 3, 1), np.float32)
    ...     k.running_sum(np.ones((1, 3, 1), np.float32), out, False)
    ...     assert out.ravel().tolist() == [1.0, 2.0, 3.0]
"""

from __future__ import annotations

import numba
import numpy as np

# no fastmath: the sums must run in order, one rounding per step, as NumPy's and torch's
_jit = numba.njit(cache=True, nogil=True, error_model="numpy")
# Elements per block of the running-extreme scan that is tested at once for a new extreme.
_BLOCK = 64


@_jit
def running_sum(a, out, reverse):
    """``out[o, k, j] = sum(a[o, :k + 1, j])`` (``a[o, k:, j]`` with ``reverse``), accumulated in float64."""
    outer, n, inner = a.shape
    if inner == 1:
        for o in range(outer):
            acc = 0.0
            for step in range(n):
                k = n - 1 - step if reverse else step
                acc += a[o, k, 0]
                out[o, k, 0] = acc
        return
    acc_row = np.empty(inner, np.float64)  # host: a compiled kernel, host arrays only
    for o in range(outer):
        acc_row[:] = 0.0
        for step in range(n):
            k = n - 1 - step if reverse else step
            for j in range(inner):
                acc_row[j] += a[o, k, j]
                out[o, k, j] = acc_row[j]


@_jit
def running_extreme_index(a, out, values, take_max):
    """``out[o, k, j]``: the index along ``n`` of the running maximum (``take_max``) or minimum of ``a[o, :k + 1,
    j]``, by torch's rule: an element takes over when it is at least (at most) the extreme so far, or NaN,
    so ties go to the later index and a NaN holds until the next NaN. ``values[o, k, j]`` is ``a`` at that
    index (the element itself, so a tie of -0.0 and 0.0 keeps the later one's sign, as torch)."""
    outer, n, inner = a.shape
    if inner == 1:  # along the last axis: one scalar loop per row
        for o in range(outer):
            top = a[o, 0, 0]
            at = 0
            out[o, 0, 0] = 0
            values[o, 0, 0] = top
            start = 1
            while start < n:
                stop = min(start + _BLOCK, n)
                # Most blocks hold no new extreme: a branch-free "does any element take over" test
                # (vectorizable) lets them be filled at once; the scalar loop, whose select on the
                # running extreme is a serial dependency, runs only on the blocks that have one.
                hit = False
                for k in range(start, stop):
                    x = a[o, k, 0]
                    hit |= ((x >= top) if take_max else (x <= top)) | (x != x)
                if hit:
                    for k in range(start, stop):
                        x = a[o, k, 0]
                        if (x >= top if take_max else x <= top) or x != x:
                            top = x
                            at = k
                        out[o, k, 0] = at
                        values[o, k, 0] = top
                else:
                    for k in range(start, stop):
                        out[o, k, 0] = at
                        values[o, k, 0] = top
                start = stop
        return
    best = np.empty(inner, a.dtype)  # host: a compiled kernel, host arrays only
    where = np.empty(inner, np.int64)  # host: a compiled kernel, host arrays only
    for o in range(outer):
        for j in range(inner):
            best[j] = a[o, 0, j]
            where[j] = 0
            out[o, 0, j] = 0
            values[o, 0, j] = best[j]
        for k in range(1, n):
            for j in range(inner):
                x = a[o, k, j]
                if take_max:
                    take = x >= best[j] or x != x
                else:
                    take = x <= best[j] or x != x
                if take:
                    best[j] = x
                    where[j] = k
                out[o, k, j] = where[j]
                values[o, k, j] = best[j]
