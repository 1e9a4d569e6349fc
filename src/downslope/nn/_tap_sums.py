"""Resampling along one axis as a sum over each output's own taps, for data that may hold NaN or inf.

The resizes and adaptive averages (bicubic and antialiased interpolation, ``mode='area'``,
``adaptive_avg_pool``) are fastest on the host as a product with a dense (out, in) weight matrix.
That product multiplies every input by every output's weight, zeros included, and ``0 * inf`` is
NaN: one NaN or inf pixel would make the whole row NaN. PyTorch's kernels only read each output's
taps, so a non-finite value reaches only the outputs whose taps include it. :func:`tap_sum` is that
formulation (a gather and a product per tap, from indexing and arithmetic ops, so its gradients
of any order come from them); :func:`host_finite` tells the callers when the matrix product is safe.

Example:
    >>> import numpy as np
    >>> import downslope as ds
    >>> from downslope.nn._tap_sums import tap_sum
    >>> x = ds.tensor([[[1.0, float("inf"), 3.0, 4.0]]])
    >>> tap_sum(x, 2, np.array([[0, 1], [2, 3]]), None, np.array([2, 2]), np.array([2.0, 2.0]))
    tensor([[[inf, 3.5]]])
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .. import ops
from ..devices import like
from ..tensor import Tensor, wrap_array

__all__ = ["adaptive_mean_2d", "adaptive_windows", "host_finite", "matrix_or_taps", "tap_sum"]


def host_finite(a: Any) -> bool:
    """Whether ``a`` is a host array whose values are all finite, so a product with a weight matrix
    gives the same NaN/inf pattern as the taps would. One summing pass without a temporary (NaN or
    inf makes the sum non-finite); a finite sum that overflows answers False too, which only sends
    the caller to the exact tap path. A device array answers False without looking: the check would
    make the host wait for the device."""
    if type(a) is not np.ndarray:
        return False
    if a.dtype.kind not in "fc":
        return True
    with np.errstate(over="ignore", invalid="ignore"):
        return bool(np.isfinite(np.sum(a)))  # host: checked above


def matrix_or_taps(
    x: Tensor, n_in: int, n_out: int, product: Callable[[], Tensor], taps: Callable[[], Tensor]
) -> Tensor:
    """``product()`` (the weight-matrix product along one axis of ``x``, from ``n_in`` to ``n_out``)
    where it gives what ``taps()`` (the exact tap sums) gives, else ``taps()``. The product spreads a
    NaN or inf of the input to every output of its row (a weight of 0 times inf is NaN), so its output
    is finite exactly when the input is: whichever of the two is smaller is checked, the input before
    the product or its output after (then recomputed by taps when not finite). Device arrays take the
    taps without a check, which would wait for the device."""
    if type(x.array) is not np.ndarray:
        return taps()
    if n_in <= n_out:
        return product() if host_finite(x.array) else taps()
    out = product()
    return out if host_finite(out.array) else taps()


def adaptive_windows(size: int, out: int) -> tuple[np.ndarray, np.ndarray]:
    """The (out, widest) taps of adaptive pooling's windows along a dim of ``size`` (window i covers
    ``floor(i*size/out)`` up to ``ceil((i+1)*size/out)``) and each window's length."""
    i = np.arange(out)  # host: window bounds from the sizes
    start, end = (i * size) // out, -((-(i + 1) * size) // out)
    return start[:, None] + np.arange(int((end - start).max())), end - start  # host: tap positions


def adaptive_mean_2d(x: Tensor, oh: int, ow: int) -> Tensor:
    """Adaptive average pooling of the last two axes of ``x`` summed as torch's kernel sums, each
    window's rows in order and each row's columns in order in the data's dtype, then divided by the
    window's size: the same result where the separable sums (rows, then columns) would overflow
    differently (float32 values near its maximum: +inf in one row and -inf in another make NaN, where
    torch's running sum stays inf)."""
    h, w = x.shape[-2], x.shape[-1]
    row_taps, row_count = adaptive_windows(h, oh)
    col_taps, col_count = adaptive_windows(w, ow)
    lead = (slice(None),) * (x.ndim - 2)
    total: Tensor | None = None
    for r in range(row_taps.shape[1]):
        rows = np.minimum(row_taps[:, r], h - 1)[:, None]  # host: tap positions from the sizes
        for c in range(col_taps.shape[1]):
            cols = np.minimum(col_taps[:, c], w - 1)[None, :]  # host: tap positions from the sizes
            part = x[lead + (like(rows, x.array), like(cols, x.array))]
            read = (r < row_count)[:, None] & (c < col_count)[None, :]  # host: tap positions from the sizes
            if not read.all():
                part = ops.where(wrap_array(like(read, x.array)), part, 0.0)
            total = part if total is None else total + part
    assert total is not None
    size = (row_count[:, None] * col_count[None, :]).astype(x.array.dtype)  # host: window sizes
    return total / wrap_array(like(size, x.array))


def tap_sum(
    x: Tensor, axis: int, taps: np.ndarray, weights: np.ndarray | None, count: np.ndarray, divisor: np.ndarray | None
) -> Tensor:
    """``out[..., i, ...] = sum_{t < count[i]} x.take(taps[i, t], axis) * weights[i, t]``, then divided
    by ``divisor[i]`` when given (an average: torch sums first, then divides, so an overflowing
    float32 sum is inf as there). ``taps`` (n_out, T) holds in-range indices in its first ``count[i]``
    columns of row i; the other columns are not read (their products are masked out, so an inf
    there cannot make a NaN). ``weights`` None: every tap counts once."""
    n_out, width = taps.shape
    dtype = x.array.dtype
    shape = [1] * x.ndim
    shape[axis] = n_out
    n_in = x.shape[axis]
    total: Tensor | None = None
    for t in range(width):
        index = np.minimum(taps[:, t], n_in - 1)  # host: tap positions from the sizes
        part = x[(slice(None),) * axis + (like(index, x.array),)]
        if weights is not None:
            part = part * wrap_array(like(weights[:, t].astype(dtype).reshape(shape), x.array))
        unread = t >= count  # host: tap positions from the sizes
        if unread.any():
            part = ops.where(wrap_array(like((~unread).reshape(shape), x.array)), part, 0.0)
        total = part if total is None else total + part
    assert total is not None
    if divisor is not None:
        total = total / wrap_array(like(divisor.astype(dtype).reshape(shape), x.array))
    return total
