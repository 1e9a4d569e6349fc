"""Compiled (numba) lookups for ``embedding`` and ``embedding_bag``: the range check of the indices
and the gather (or the bag's sum) in one pass; imported only when ``jit_gate.kernels`` says the
compiled path applies (numba installed, not switched off, host arrays).

``embedding`` itself gathers with NumPy's ``take`` (as fast as ``gather_rows`` from a few thousand
indices on, 1 to 2 us slower below: never enough to pay for importing numba, see
``benchmarks/embedding.py --gate``, which measures ``gather_rows`` against it). An EmbeddingBag
without a graph sums its bags here: through NumPy it would first gather every index's row into an
(n, d) array that its scatter-add then read again. Here each index is
read once, checked, and its row copied (``gather_rows``) or added straight into its bag's output
row (``bag_sums``), in index order, so the sums are the ones the unfused path makes, to the bit.

A kernel answers the position of the first index out of range (negative, or past the table), or
-1; the caller raises the error (and writes nothing it returns).

Example:
    >>> import numpy as np
    >>> from downslope import jit_gate
    >>> k = jit_gate.kernels("downslope.nn._jit_embedding")
    >>> if k is not None:
    ...     out = np.empty((2, 1), np.float32)
    ...     assert k.gather_rows(np.array([[0.0], [1.0]], np.float32), np.array([1, 0]), out) == -1
    ...     assert out.ravel().tolist() == [1.0, 0.0]
"""

from __future__ import annotations

import numba

_jit = numba.njit(cache=True, nogil=True, error_model="numpy")


@_jit
def gather_rows(table, index, out):
    """``out[k] = table[index[k]]`` for the flat ``index``; the position of the first index out of
    range of ``table``'s rows (``out`` then partly written), or -1."""
    rows = table.shape[0]
    for k in range(index.shape[0]):
        i = index[k]
        if i < 0 or i >= rows:
            return k
        dst = out[k]
        src = table[i]
        for j in range(src.shape[0]):
            dst[j] = src[j]
    return -1


@_jit
def bag_sums(table, index, starts, padding, mean, out):
    """Bag ``b`` of the flat ``index`` runs from ``starts[b]`` to the next start (the last one to the
    end); ``out[b]`` (zeros on entry) gets the sum of its rows, added in index order, or their mean
    (the sum divided by the count) when ``mean``; an index equal to ``padding`` (-1: none) is left
    out, and a bag with no rows stays 0. The position of the first index out of range, or -1."""
    rows, width = table.shape
    n = index.shape[0]
    bags = starts.shape[0]
    # flat offsets rather than row views: 10% faster (53 vs 60 us for 10,240 rows of 32)
    flat = table.reshape(-1)
    sums = out.reshape(-1)
    for b in range(bags):
        lo = starts[b]
        hi = starts[b + 1] if b + 1 < bags else n
        at = b * width
        count = 0
        for k in range(lo, hi):
            i = index[k]
            if i < 0 or i >= rows:
                return k
            if i == padding:
                continue
            base = i * width
            for j in range(width):
                sums[at + j] += flat[base + j]
            count += 1
        if mean and count > 1:
            for j in range(width):
                sums[at + j] /= count
    return -1
