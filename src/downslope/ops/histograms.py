"""``torch.histogram`` and ``torch.histogramdd``: counts (or weight sums, or densities) of values in
bins, with the bin edges. No gradient: a count is piecewise constant (torch records none either).

Bins are half-open, ``[edge_i, edge_i+1)``, except the last, which holds its right edge too; values
outside the edges are left out. Edges computed from ``bins`` (a count) are evenly spaced over
``range`` (the data's minimum and maximum by default, widened by 0.5 on each side when they are
equal, [0, 1] for no data), in the input's dtype, with torch's formula.

Example:
    >>> import downslope as ds
    >>> ds.histogram(ds.tensor([1.0, 2.0, 1.0, 2.5, 4.0]), 3)
    histogram(hist=tensor([2., 2., 1.]), bin_edges=tensor([1., 2., 3., 4.]))
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..backend import namespace_of
from ..devices import like, to_host
from ..errors import ArgumentError, ArgumentTypeError, ShapeError
from ..tensor import Tensor, wrap_array
from .operands import _lift

__all__ = ["histogram", "histogramdd"]


class _Results:
    """The named tuples torch.return_types.histogram and histogramdd."""

    histogram = namedtuple("histogram", ["hist", "bin_edges"])
    histogramdd = namedtuple("histogramdd", ["hist", "bin_edges"])


def _even_edges(low: float, high: float, bins: int, dtype: Any) -> np.ndarray:
    """``bins + 1`` evenly spaced edges from ``low`` to ``high`` in ``dtype``: torch's linspace (each
    half stepped from its own end, so both ends are exact)."""
    steps = bins + 1
    start, end = np.asarray(low, dtype), np.asarray(high, dtype)  # host: Python bounds
    step = (end - start) / np.asarray(bins, dtype)  # host: Python bounds
    # torch's vectorised kernel fuses each multiply-add (one rounding): float32 is done so in float64
    # exactly, float64 through the error-free product and sum
    i = np.arange(steps, dtype=np.float64)  # host: edges are made on the host, then placed
    k = np.where(i < steps // 2, i, -(steps - 1 - i))
    base = np.where(i < steps // 2, start.astype(np.float64), end.astype(np.float64))
    h = step.astype(np.float64)
    if np.dtype(dtype).itemsize < 8:
        return (base + h * k).astype(dtype)
    return _fused_multiply_add(np.broadcast_to(h, k.shape), k, base).astype(dtype)


def _fused_multiply_add(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """a * b + c rounded once (as a hardware FMA), from Dekker's exact product and Knuth's exact sum."""
    split = 134217729.0  # 2**27 + 1
    product = a * b
    ta, tb = split * a, split * b
    a_hi, b_hi = ta - (ta - a), tb - (tb - b)
    a_lo, b_lo = a - a_hi, b - b_hi
    product_err = ((a_hi * b_hi - product) + a_hi * b_lo + a_lo * b_hi) + a_lo * b_lo
    total = product + c
    back = total - product
    sum_err = (product - (total - back)) + (c - back)
    return total + (sum_err + product_err)


def _bounds(column: Any, span: tuple[float, float] | None, d: int) -> tuple[float, float]:
    """The range of one dim: the one given, else the data's (widened when it is one point)."""
    if span is not None:
        low, high = span
        if low > high:
            raise ArgumentError(
                f"histogramdd: min should not exceed max, but got min {low} max {high} for dimension {d}"
            )
    elif column.size == 0:
        low, high = 0.0, 1.0
    else:
        low, high = (float(to_host(v)) for v in (column.min(), column.max()))  # host: the data's range fixes the edges
    if not (np.isfinite(low) and np.isfinite(high)):
        raise ArgumentError(f"histogramdd: dimension {d}'s range [{low}, {high}] is not finite")
    if low == high:
        low, high = low - 0.5, high + 0.5
    return low, high


def _check_edges(edges: Tensor, d: int, dtype: Any) -> Any:
    if not isinstance(edges, Tensor) or edges.ndim != 1 or edges.shape[0] < 2:
        raise ShapeError(f"histogramdd: the bin edges of dimension {d} must be a 1-d tensor of at least 2 values")
    if edges.array.dtype != dtype:
        raise ArgumentTypeError(
            f"histogramdd: the bin edges of dimension {d} have dtype {edges.array.dtype}, but the input has {dtype}"
        )
    host = to_host(edges.array)
    if not (np.diff(host) >= 0).all():  # host: edges checked once, before binning
        raise ArgumentError(f"histogramdd: the bin edges of dimension {d} must be non-decreasing")
    return edges.array


def _histogramdd(name: str, x: Tensor, bins: Any, span: Any, weight: Any, density: bool) -> tuple[Any, list[Any]]:
    """The counts array of shape (bins_0, ..., bins_D-1) and the edges arrays of ``x`` of shape (N, D)."""
    a = x.array
    if a.dtype.kind != "f":
        raise ArgumentTypeError(f"{name}: expected a floating input, got {a.dtype}")
    xp = namespace_of(a)
    n_dims = a.shape[-1]
    points = a.reshape(-1, n_dims)
    if isinstance(bins, (int, np.integer)) and not isinstance(bins, bool):
        bins = [int(bins)] * n_dims
    if not isinstance(bins, Sequence) or len(bins) != n_dims:
        raise ArgumentError(
            f"{name}: the number of bin specifications must equal the innermost dimension of the input "
            f"({n_dims}), got {bins!r}"
        )
    if span is not None:
        span = [float(v) for v in span]  # host: the Python range given
        if len(span) != 2 * n_dims:
            raise ArgumentError(f"{name}: range should have {2 * n_dims} elements, but got {len(span)}")
    edges: list[Any] = []
    for d, b in enumerate(bins):
        if isinstance(b, Tensor):
            edges.append(_check_edges(b, d, a.dtype))
            continue
        if isinstance(b, bool) or not isinstance(b, (int, np.integer)):
            raise ArgumentTypeError(f"{name}: bins must be ints or 1-d tensors of edges, got {type(b).__name__}")
        if b <= 0:
            raise ArgumentError(f"{name}: bins must be > 0, but got {b} for dimension {d}")
        low, high = _bounds(points[:, d], None if span is None else (span[2 * d], span[2 * d + 1]), d)
        edges.append(like(_even_edges(low, high, int(b), a.dtype), a))
    w = None
    if weight is not None:
        w = _lift(weight, x).array
        if tuple(w.shape) != tuple(a.shape[:-1]):
            raise ShapeError(
                f"{name}: if weight tensor is provided it should have the same shape as the input tensor excluding "
                f"its innermost dimension, but got input with shape {tuple(a.shape)} and weight with shape "
                f"{tuple(w.shape)}"
            )
        w = w.reshape(-1).astype(a.dtype)
    sizes = [e.shape[0] - 1 for e in edges]
    flat = xp.zeros(points.shape[0], dtype=np.int64)
    keep = xp.ones(points.shape[0], dtype=bool)
    for d, e in enumerate(edges):
        v = points[:, d]
        keep &= (v >= e[0]) & (v <= e[-1])
        idx = xp.searchsorted(e, v, side="right") - 1
        idx = xp.clip(idx, 0, sizes[d] - 1)  # the right edge belongs to the last bin
        flat = flat * sizes[d] + idx
    counts = xp.ones(points.shape[0], dtype=a.dtype) if w is None else w
    counts = xp.where(keep, counts, 0)
    hist = xp.bincount(flat, weights=counts, minlength=int(np.prod(sizes))).astype(a.dtype)
    hist = hist.reshape(sizes)
    if density:
        volume = xp.ones(sizes, dtype=a.dtype)
        for d, e in enumerate(edges):
            shape = [1] * n_dims
            shape[d] = sizes[d]
            volume = volume * xp.diff(e).reshape(shape)
        with np.errstate(invalid="ignore", divide="ignore"):  # nothing in range: NaN, as torch
            hist = hist / (hist.sum() * volume)
    return hist, edges


def histogram(
    input: Any, bins: Any = 100, *, range: Sequence[float] | None = None, weight: Any = None, density: bool = False
) -> Any:
    """The histogram of all of ``input``'s values (``torch.histogram``): ``bins`` is a count of equal
    bins over ``range`` (a (min, max) pair; the data's by default) or a 1-d tensor of increasing bin
    edges; ``weight`` (``input``'s shape) gives each value's weight instead of 1; ``density=True``
    divides by the total and the bin width. Returns ``(hist, bin_edges)``, in the input's dtype.

    Example:
        >>> import downslope as ds
        >>> ds.histogram(ds.tensor([1.0, 2.0, 1.0]), bins=2, range=(0.0, 2.0)).hist
        tensor([0., 3.])
    """
    x = _lift(input)
    if isinstance(bins, Tensor) and bins.ndim != 1:
        raise ShapeError(f"histogram(): bins must be a 1-d tensor of edges, got {bins.ndim} dimensions")
    if range is not None and len(range) != 2:
        raise ArgumentError(f"histogram(): range must be a (min, max) pair, got {range!r}")
    w = None
    if weight is not None:
        w = (weight if isinstance(weight, Tensor) else _lift(weight, x)).detach()
        if w.shape != x.shape:
            raise ShapeError(f"histogram(): weight must have the input's shape {tuple(x.shape)}, got {tuple(w.shape)}")
        w = w.reshape(-1)
    hist, edges = _histogramdd("torch.histogram()", x.reshape(-1, 1), [bins], range, w, density)
    return _Results.histogram(wrap_array(hist), wrap_array(edges[0].copy()))


def histogramdd(
    input: Any, bins: Any, *, range: Sequence[float] | None = None, weight: Any = None, density: bool = False
) -> Any:
    """The D-dimensional histogram of the points ``input[..., :]`` (the last dim holds each point's D
    coordinates; ``torch.histogramdd``). ``bins`` is one count for every dim, a count per dim, or a
    1-d tensor of edges per dim; ``range`` is ``[min_0, max_0, min_1, max_1, ...]``; ``weight``
    (``input.shape[:-1]``) and ``density`` as in :func:`histogram`. Returns ``(hist, bin_edges)``
    with one tensor of edges per dim.

    Example:
        >>> import downslope as ds
        >>> ds.histogramdd(ds.tensor([[0.0, 1.0], [1.0, 0.0], [2.0, 0.0]]), bins=2).hist
        tensor([[0., 1.],
                [2., 0.]])
    """
    x = _lift(input)
    if x.ndim < 2:
        raise ShapeError(f"histogramdd(): input tensor should have at least 2 dimensions, got {x.ndim}")
    w = None if weight is None else (weight.detach() if isinstance(weight, Tensor) else _lift(weight))
    hist, edges = _histogramdd("torch.histogramdd()", x, bins, range, w, density)
    return _Results.histogramdd(wrap_array(hist), tuple(wrap_array(e.copy()) for e in edges))


# x.histogram(bins, ...) (torch has no Tensor.histogramdd)
METHODS = {"histogram": histogram}
