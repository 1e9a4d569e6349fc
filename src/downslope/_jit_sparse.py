"""Compiled (numba) kernels of the sparse COO product (``downslope.sparse``): the segment sum ``S @ D`` over
the nonzeros in row order, and the per-nonzero dot products that are the gradient of S's values. Imported only
when ``jit_gate.kernels`` says the compiled path applies (numba installed, not switched off, host arrays of
numba's dtypes); ``sparse.py`` keeps the NumPy formulation for everything else (``DOWNSLOPE_JIT=0``, device
arrays, the graph of a double backward). These kernels take and fill NumPy arrays only.

Example:
    >>> import numpy as np
    >>> from downslope import jit_gate
    >>> k = jit_gate.kernels("downslope._jit_sparse")
    >>> if k is not None:
    ...     out = np.zeros((2, 1))
    ...     k.csr_mm(np.array([0, 1, 2]), np.array([1, 0]), np.array([0, 1]), np.array([3.0, 4.0]),
    ...              np.ones((2, 1)), out)
"""

from __future__ import annotations

from typing import Any

import numba

__all__ = ["csr_mm", "sddmm"]


@numba.njit(cache=True, nogil=True)
def csr_mm(indptr: Any, cols: Any, perm: Any, vals: Any, d: Any, out: Any) -> None:  # pragma: no cover
    """``out[r] += sum over the row's nonzeros k of vals[perm[k]] * d[cols[k]]`` (rows in CSR order)."""
    f = d.shape[1]
    for r in range(indptr.shape[0] - 1):
        for k in range(indptr[r], indptr[r + 1]):
            v = vals[perm[k]]
            c = cols[k]
            for j in range(f):
                out[r, j] += v * d[c, j]


@numba.njit(cache=True, nogil=True)
def sddmm(rows: Any, cols: Any, g: Any, d: Any, out: Any) -> None:  # pragma: no cover
    """``out[k] = <g[rows[k]], d[cols[k]]>``: the gradient of each nonzero's value in S @ D."""
    f = d.shape[1]
    for k in range(rows.shape[0]):
        r = rows[k]
        c = cols[k]
        s = 0.0
        for j in range(f):
            s += g[r, j] * d[c, j]
        out[k] = s
