"""torch.segment_reduce: reductions over consecutive segments (CSR-style lengths or offsets) of one
axis, written as a scatter_reduce of each element into its segment, so its gradients (second order
too) are scatter_reduce's."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..devices import like, to_host
from ..errors import ArgumentError, ArgumentTypeError, DTypeError, OutOfRangeError, ShapeError
from ..tensor import Tensor, wrap_array
from .indexing import getitem, scatter_reduce
from .operands import _dim, _index_array, _lift
from .pointwise import where

# torch's names, and the scatter_reduce each runs ('amax'/'amin' are accepted too, as in torch)
_REDUCE = {"sum": "sum", "mean": "sum", "max": "amax", "min": "amin", "amax": "amax", "amin": "amin", "prod": "prod"}
# what an empty segment holds without ``initial`` (torch's values)
_EMPTY = {"sum": 0.0, "mean": float("nan"), "amax": -float("inf"), "amin": float("inf"), "prod": 1.0}


def segment_reduce(
    data: Any,
    reduce: str,
    *,
    lengths: Any = None,
    indices: Any = None,
    offsets: Any = None,
    axis: int = 0,
    unsafe: bool = False,
    initial: Any = None,
) -> Tensor:
    """Reduce ``data`` over consecutive segments of ``axis`` (torch.segment_reduce): ``lengths``
    (..., S) gives each segment's length (or ``offsets`` (..., S + 1) their bounds; lengths win when
    both are given), its leading dims are data's leading dims and ``axis`` is its last dim.
    ``reduce`` is 'sum', 'mean', 'max', 'min' or 'prod'; ``initial`` takes part in every segment
    (mean: (initial + sum) / length) and fills empty ones, which otherwise hold 0, NaN (mean), -inf
    (max), inf (min) or 1 (prod). ``unsafe=True`` skips the check that the lengths cover the axis.
    Gradients as torch's, to second order (torch: first); max/min share a segment's gradient evenly
    among its tied maxima whatever its sign (torch's kernel divides only a positive one), and
    ``initial`` gets none.

    Example:
        >>> import downslope as ds
        >>> ds.segment_reduce(ds.tensor([1.0, 2.0, 3.0, 4.0, 5.0, 6.0]), "sum", lengths=ds.tensor([2, 0, 4]))
        tensor([ 3.,  0., 18.])
    """
    if not isinstance(reduce, str) or reduce not in _REDUCE:
        raise ArgumentError(
            f"segment_reduce: reduce must be one of 'sum', 'mean', 'max', 'min', 'prod' (or 'amax', 'amin'), "
            f"got {reduce!r}"
        )
    if indices is not None:
        raise ArgumentError("segment_reduce: indices= is not supported (as in torch); give lengths= or offsets=")
    x = _lift(data)
    if x.dtype.kind != "f":
        raise DTypeError(f"segment_reduce: data must be floating point (as in torch), got {x.dtype}")
    if lengths is None and offsets is None:
        raise ArgumentError("segment_reduce: either lengths= or offsets= must be given, got neither")
    bounds = _index_array(lengths if lengths is not None else offsets)
    if bounds.dtype.kind not in "iu":
        raise ArgumentTypeError(
            f"segment_reduce: {'lengths' if lengths is not None else 'offsets'} must hold integers, got {bounds.dtype}"
        )
    if bounds.ndim < 1 or x.ndim < bounds.ndim:
        raise ShapeError(
            f"segment_reduce: {'lengths' if lengths is not None else 'offsets'} of shape {tuple(bounds.shape)} needs "
            f"1 to data.ndim ({x.ndim}) dims"
        )
    d = _dim(axis, x.ndim, "segment_reduce")
    if d != bounds.ndim - 1:
        raise ArgumentError(
            f"segment_reduce: axis must be the last dim of lengths/offsets ({bounds.ndim - 1}), got {axis}"
        )
    if tuple(bounds.shape[:-1]) != tuple(x.shape[:d]):
        raise ShapeError(
            f"segment_reduce: the leading dims of lengths/offsets {tuple(bounds.shape[:-1])} must be data's "
            f"{tuple(x.shape[:d])}"
        )
    n = x.shape[d]
    # The segment bounds are read on the host (one copy from a device): the index is built from them.
    host = np.asarray(to_host(bounds), dtype=np.int64)  # host: the segment bounds define shapes
    if lengths is not None:
        if (host < 0).any():
            bad = host.tolist()  # host: a host copy, for the message
            raise OutOfRangeError(f"segment_reduce: lengths must be non-negative, got {bad}")
        total = host.sum(axis=-1)
        if not unsafe and (total != n).any():
            sums = total.tolist()  # host: a host copy, for the message
            raise ShapeError(
                f"segment_reduce: each row of lengths must sum to data's size {n} along axis {d}, got sums "
                f"{sums} (unsafe=True skips this check)"
            )
        zero = np.zeros(host.shape[:-1] + (1,), np.int64)  # host: as above
        host = np.concatenate([zero, np.cumsum(host, axis=-1)], axis=-1)
    elif host.shape[-1] < 1 or (np.diff(host, axis=-1) < 0).any() or host.min() < 0 or host.max() > n:
        bad = host.tolist()  # host: a host copy, for the message
        raise OutOfRangeError(
            f"segment_reduce: offsets must be non-decreasing and lie in [0, {n}] (data's size along axis {d}), "
            f"got {bad}"
        )
    segments = host.shape[-1] - 1
    op = _REDUCE[reduce]
    index, covered = _segment_ids(host, n, segments)
    # positions outside every segment go to one extra segment, dropped at the end
    extra = 0 if covered else 1
    out_shape = x.shape[:d] + (segments + extra,) + x.shape[d + 1 :]
    index = like(index.reshape(index.shape + (1,) * (x.ndim - d - 1)), x.array)
    index = np.broadcast_to(index, x.shape)
    # max/min leave initial out of the scatter (a tie with it takes no share): applied after
    start = _EMPTY[op] if initial is None or reduce == "mean" or op in ("amax", "amin") else initial
    base = x.array.dtype.type(start)
    base_tensor = wrap_array(_full(x, out_shape, base))  # a constant in data's dtype
    keep = (slice(None),) * d + (slice(0, segments),)
    if op in ("amax", "amin"):
        # torch's ties are the data's only: an ``initial`` equal to the maximum takes no share
        out = scatter_reduce(base_tensor, d, index, x, op, include_self=False)
        out = getitem(out, keep) if extra else out
        if initial is None:
            return out
        values = out.array
        with np.errstate(invalid="ignore"):
            past = ~(values < initial) if op == "amax" else ~(values > initial)  # NaN stays
        return where(past, out, x.array.dtype.type(initial))
    out = scatter_reduce(base_tensor, d, index, x, op, include_self=True)
    out = getitem(out, keep) if extra else out
    if reduce != "mean":
        return out
    sizes = np.diff(np.minimum(host, n), axis=-1)  # host: the lengths (what unsafe=True leaves of them)
    sizes = like(sizes.reshape(sizes.shape + (1,) * (x.ndim - d - 1)), x.array)
    total = out + (0.0 if initial is None else initial)
    mean = total / np.maximum(sizes, 1).astype(x.array.dtype)
    fill = float("nan") if initial is None else initial
    return where(np.broadcast_to(sizes > 0, out.shape), mean, x.array.dtype.type(fill))


def _segment_ids(bounds: np.ndarray, n: int, segments: int) -> tuple[np.ndarray, bool]:
    """Per row of ``bounds`` (..., S + 1), the segment of each of the ``n`` positions (S for a position
    in none: before the first bound or past the last), and whether every position is in a segment."""
    rows = bounds.reshape(-1, segments + 1)
    ends = np.minimum(rows, n)
    positions = np.arange(n)  # host: built from the host bounds
    ids = np.empty((rows.shape[0], n), np.int64)  # host: as above
    for r in range(rows.shape[0]):  # one searchsorted per row of lengths (a batch of segmentations)
        ids[r] = np.searchsorted(ends[r, 1:], positions, side="right")
        ids[r][positions < ends[r, 0]] = segments
    covered = bool((ids < segments).all())  # host: a host array
    return ids.reshape(bounds.shape[:-1] + (n,)), covered


def _full(x: Tensor, shape: tuple[int, ...], value: Any) -> Any:
    """An array of ``shape`` filled with ``value`` in x's dtype, on x's device."""
    out = np.empty_like(x.array, shape=shape)
    out.fill(value)
    return out
