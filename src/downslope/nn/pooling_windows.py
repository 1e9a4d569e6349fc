"""Max pooling over windows listed per output cell, with PyTorch's indices: fractional max pooling,
adaptive max pooling with indices (and in 3-D), 3-D max pooling with indices, dilation or ceil_mode.

Every output cell of these poolings reads a rectangular block of the input whose rows, columns (and
depths) are listed per output position and per dim. The blocks are read at once with fancy
indexing, the first largest element of each (in row-major order, PyTorch's scan order) is found on
the array, and the output is ``gather`` of the input at those positions, so its gradient is
gather's: each output's gradient goes to the element it took, as in PyTorch.

Example:
    >>> import downslope as ds
    >>> import downslope.nn.functional as F
    >>> out, idx = F.adaptive_max_pool2d_with_indices(ds.arange(16.0).reshape(1, 1, 4, 4), 2)
    >>> out.flatten().tolist(), idx.flatten().tolist()
    ([5.0, 7.0, 13.0, 15.0], [5, 7, 13, 15])
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import ops
from ..backend import namespace_of
from ..devices import to_host
from ..errors import ArgumentError, ShapeError
from ..ops.pointwise import link_input
from ..tensor import Tensor, rand, record_op, wrap_array
from ._arrays import is_host
from ._conv_args import _as_tensor, _batched, _check_floating, _pool_args, _tuple
from .module import Module
from .pooling import _adaptive_sizes, _pool_geometry

__all__ = [
    "adaptive_max_pool1d_with_indices", "adaptive_max_pool2d_with_indices", "adaptive_max_pool3d",
    "adaptive_max_pool3d_with_indices", "max_pool3d_with_indices", "fractional_max_pool2d",
    "fractional_max_pool2d_with_indices", "fractional_max_pool3d", "fractional_max_pool3d_with_indices",
    "AdaptiveMaxPool3d", "FractionalMaxPool2d", "FractionalMaxPool3d",
]  # fmt: skip

# One spatial dim's windows: positions (B, O, L) (clipped into the input), which of them are inside
# the input (B, O, L), and each window's first position at or past the start of the input (B, O),
# unclipped: PyTorch's index for a window where nothing beats -inf. B is 1 (the same windows for
# every plane) or N*C (fractional pooling draws them per plane).
Table = tuple[np.ndarray, np.ndarray, np.ndarray]


def _max_over_windows(x: Tensor, tables: list[Table]) -> tuple[Tensor, Tensor]:
    """(maxima, flat indices into the spatial plane) of ``x`` (N, C, *S) over the windows of ``tables``.

    PyTorch's scan: the first largest element, or the last NaN; a window where no element beats
    -inf keeps its first position as index (its first in-input tap per dim, which lies past the
    input when the window is wholly in the padding) and the value -inf. A window with no element
    inside the input passes no gradient (its index may name no element, or another window's)."""
    n, c, *sizes = x.shape
    nd = len(sizes)
    planes = n * c
    total = int(np.prod(sizes))
    a = x.array.reshape((planes, *sizes))
    xp = namespace_of(a)
    outs = [t[0].shape[1] for t in tables]
    lens = [t[0].shape[2] for t in tables]
    # index arrays broadcast to (planes, O1, L1, O2, L2, ...)
    index: list[Any] = [xp.arange(planes).reshape((planes,) + (1,) * (2 * nd))]
    valid: Any = None
    inside: Any = True  # host: per window, whether any of its taps is inside the input (B, O1, O2, ...)
    for d, (pos, ok, _) in enumerate(tables):
        shape = [pos.shape[0]] + [1] * (2 * nd)
        shape[1 + 2 * d], shape[2 + 2 * d] = outs[d], lens[d]
        index.append(xp.asarray(pos).reshape(shape))
        v = xp.asarray(ok).reshape(shape)
        valid = v if valid is None else valid & v
        along = [ok.shape[0]] + [1] * nd
        along[1 + d] = outs[d]
        inside = inside & ok.any(axis=-1).reshape(along)
    blocks = a[tuple(index)]
    order = [0, *(1 + 2 * d for d in range(nd)), *(2 + 2 * d for d in range(nd))]
    window = int(np.prod(lens))
    blocks = blocks.transpose(order).reshape((planes, *outs, window))
    valid = valid.transpose(order).reshape((valid.shape[0], *outs, window))
    blocks = xp.where(valid, blocks, -xp.inf)
    nan = blocks != blocks
    last_nan = (window - 1) - xp.argmax(nan[..., ::-1], axis=-1)
    winner = xp.where(nan.any(axis=-1), last_nan, xp.argmax(blocks, axis=-1))  # the first largest, or the last NaN
    unset = blocks.max(axis=-1, initial=-xp.inf) == -xp.inf  # nothing beats -inf (a NaN maximum is not equal)
    flat = xp.zeros(winner.shape, dtype=np.int64)
    first = xp.zeros(winner.shape, dtype=np.int64)
    rest = winner
    stride = 1
    grids = xp.meshgrid(*(xp.arange(o) for o in outs), indexing="ij")
    for d in reversed(range(nd)):
        step = rest % lens[d]
        rest = rest // lens[d]
        pos = xp.asarray(tables[d][0])
        start = xp.asarray(tables[d][2])
        rows = xp.arange(planes)[(...,) + (None,) * nd] if pos.shape[0] > 1 else 0
        flat = flat + pos[rows, grids[d], step] * stride
        first = first + start[rows, grids[d]] * stride
        stride *= sizes[d]
    flat = xp.where(unset, first, flat).astype(np.int64)
    gathered = flat
    empty = not bool(np.all(inside))  # host: from the host tables
    if empty:  # windows wholly in the padding read element 0 and are then set to -inf
        outside = xp.broadcast_to(xp.asarray(~inside), flat.shape)
        gathered = xp.where(outside, 0, flat)
    values = ops.gather(ops.reshape(x, (planes, total)), 1, wrap_array(gathered.reshape(planes, int(np.prod(outs)))))
    values = ops.reshape(values, (n, c, *outs))
    if empty:
        values = ops.where(wrap_array(~outside.reshape((n, c, *outs))), values, -np.inf)
    return values, wrap_array(flat.reshape((n, c, *outs)))


def _strided_table(size: int, out: int, kernel: int, stride: int, pad: int, dilation: int) -> Table:
    starts = np.arange(out, dtype=np.int64)[:, None] * stride - pad  # host: window positions from Python ints
    pos = starts + np.arange(kernel, dtype=np.int64)[None, :] * dilation  # host: window positions
    ok = (pos >= 0) & (pos < size)
    # PyTorch steps a start in the padding forward by the dilation until it is inside (or past) the input
    first = starts[:, 0] + np.maximum(0, -(starts[:, 0] // dilation)) * dilation
    return np.clip(pos, 0, size - 1)[None], ok[None], first[None]


def _adaptive_table(size: int, out: int) -> Table:
    starts = (np.arange(out) * size) // out  # host: window positions from Python ints
    ends = -((-(np.arange(out) + 1) * size) // out)  # host: window positions from Python ints
    length = int((ends - starts).max(initial=1))  # initial: no windows when out is 0
    pos = starts[:, None] + np.arange(length)[None, :]  # host: window positions
    ok = pos < ends[:, None]
    return np.minimum(pos, size - 1).astype(np.int64)[None], ok[None], starts.astype(np.int64)[None]


def _finish(out: Tensor, idx: Tensor, unbatched: bool) -> tuple[Tensor, Tensor]:
    if unbatched:
        return ops.squeeze(out, 0), wrap_array(idx.array[0])
    return out, idx


# ---------------------------------------------------------------------- adaptive max pooling
def _adaptive_max_with_indices(input: Tensor, output_size: Any, spatial: int, where: str) -> tuple[Tensor, Tensor]:
    x = _as_tensor(input, where)
    _check_floating(x, where)
    x, unbatched = _batched(x, spatial, where)
    sizes = x.shape[2:]
    if isinstance(output_size, (int, np.integer)) or output_size is None:
        output_size = (output_size,) * spatial
    outs = _adaptive_sizes(tuple(output_size), sizes, where)
    out, idx = _max_over_windows(x, [_adaptive_table(s, o) for s, o in zip(sizes, outs)])
    return _finish(out, idx, unbatched)


def adaptive_max_pool1d_with_indices(
    input: Tensor, output_size: Any, return_indices: bool = False
) -> tuple[Tensor, Tensor]:
    """Adaptive max pooling of ``(N, C, L)`` returning (values, indices into L), PyTorch's name.

    Example:
        >>> import downslope as ds
        >>> import downslope.nn.functional as F
        >>> F.adaptive_max_pool1d_with_indices(ds.tensor([[[1.0, 3.0, 2.0, 5.0]]]), 2)[1]
        tensor([[[1, 3]]])
    """
    where = "adaptive_max_pool1d"
    x = _as_tensor(input, where)
    if is_host(x.array) and x.ndim in (2, 3) and x.array.size:  # else the general windows (and their errors)
        _check_floating(x, where)
        x, unbatched = _batched(x, 1, where)
        single = isinstance(output_size, (int, np.integer)) or output_size is None
        (out,) = _adaptive_sizes((output_size,) if single else tuple(output_size), x.shape[2:], where)
        if out:
            values, idx = adaptive_max_last(x, out)
            return _finish(values, idx, unbatched)
    return _adaptive_max_with_indices(input, output_size, 1, where)


def adaptive_max_last(x: Tensor, out: int) -> tuple[Tensor, Tensor]:
    """Adaptive max pooling of host ``x`` (..., L) to ``out`` along its last axis, with torch's indices
    (the first maximum of each window, or its last NaN): one argmax over the windows side by side (a
    view when they tile L, one gather when they overlap) instead of a pooling per window."""
    a = x.array
    length = a.shape[-1]
    starts = (np.arange(out) * length) // out  # host: window positions from Python ints
    ends = -((-(np.arange(out) + 1) * length) // out)  # host: window positions from Python ints
    width = int((ends - starts).max())
    pos = starts[:, None] + np.arange(width)  # host: window positions
    inside = pos < ends[:, None]
    if length % out == 0:  # equal windows that tile L: a view
        windows = a.reshape(a.shape[:-1] + (out, width))
    else:  # a shorter window repeats its last element, which the first-maximum argmax never prefers
        windows = np.take(a, np.minimum(pos, ends[:, None] - 1), axis=-1)
    winner = windows.argmax(axis=-1)
    # the winners' values (a NaN propagates, as torch's): a gather, 4x faster than NumPy's max over short rows
    values = np.take_along_axis(windows, winner[..., None], axis=-1)[..., 0]
    nan = values != values
    if nan.any():  # argmax takes the first NaN, torch's scan the last one (not a repeated copy)
        flipped = ((windows != windows) & inside)[..., ::-1]
        winner = np.where(nan, (width - 1) - flipped.argmax(axis=-1), winner)
    idx = starts + winner
    # only neighbours share elements (when out <= L / 2, roughly): the backward can then write the even
    # windows and the odd ones in two strokes, without a scatter-add
    neighbours_only = bool(np.all(ends[:-2] <= starts[2:]))  # host: window positions
    return record_op(values, (x,), _adaptive_max_last_vjp, (idx, neighbours_only)), wrap_array(idx)


def _adaptive_max_last_vjp(g, y, args, saved, needs, xp):
    idx, neighbours_only = saved
    shape = args[0].shape
    key = tuple(np.indices(idx.shape, sparse=True)[:-1]) + (idx,)
    if xp.differentiable:  # create_graph: the scatter as a recorded op; zero derivative in the input
        return (link_input(xp.scatter(shape, key, True, g), args[0]),)
    gx = np.zeros(shape, dtype=g.dtype)  # host: the host kernel (device inputs take the ops path)
    if not neighbours_only:  # more windows than elements, about: many windows share one
        np.add.at(gx, key, g)
        return (gx,)
    np.put_along_axis(gx, idx[..., 0::2], g[..., 0::2], axis=-1)
    odd = idx[..., 1::2]
    np.put_along_axis(gx, odd, np.take_along_axis(gx, odd, axis=-1) + g[..., 1::2], axis=-1)
    return (gx,)


_adaptive_max_last_vjp.reads_inputs = False  # type: ignore[attr-defined]
_adaptive_max_last_vjp.reads_output = False  # type: ignore[attr-defined]


def adaptive_max_pool2d_with_indices(
    input: Tensor, output_size: Any, return_indices: bool = False
) -> tuple[Tensor, Tensor]:
    """Adaptive max pooling returning (values, flat indices into H*W), PyTorch's name.

    Example:
        >>> import downslope as ds
        >>> import downslope.nn.functional as F
        >>> F.adaptive_max_pool2d_with_indices(ds.arange(4.0).reshape(1, 2, 2), 1)[1]
        tensor([[[3]]])
    """
    return _adaptive_max_with_indices(input, output_size, 2, "adaptive_max_pool2d")


def adaptive_max_pool3d_with_indices(
    input: Tensor, output_size: Any, return_indices: bool = False
) -> tuple[Tensor, Tensor]:
    """Adaptive 3-D max pooling returning (values, flat indices into D*H*W).

    Example:
        >>> import downslope as ds
        >>> import downslope.nn.functional as F
        >>> F.adaptive_max_pool3d_with_indices(ds.arange(8.0).reshape(1, 1, 2, 2, 2), 1)[1].flatten().tolist()
        [7]
    """
    return _adaptive_max_with_indices(input, output_size, 3, "adaptive_max_pool3d")


def adaptive_max_pool3d(input: Tensor, output_size: Any, return_indices: bool = False) -> Any:
    """Max pooling of ``(N, C, D, H, W)`` (or unbatched) to a fixed ``output_size``; output cell i
    covers ``floor(i*D/OD)`` up to ``ceil((i+1)*D/OD)`` along each dim; ``None`` keeps a size.

    Example:
        >>> import downslope as ds
        >>> import downslope.nn.functional as F
        >>> F.adaptive_max_pool3d(ds.arange(8.0).reshape(1, 2, 2, 2), 1).flatten().tolist()
        [7.0]
    """
    out, idx = adaptive_max_pool3d_with_indices(input, output_size)
    return (out, idx) if return_indices else out


class AdaptiveMaxPool3d(Module):
    """See :func:`adaptive_max_pool3d`.

    Example:
        >>> import downslope as ds
        >>> from downslope import nn
        >>> nn.AdaptiveMaxPool3d((1, 2, 2))(ds.randn(2, 3, 4, 4, 4)).shape
        downslope.Size([2, 3, 1, 2, 2])
    """

    def __init__(self, output_size: Any, return_indices: bool = False) -> None:
        super().__init__()
        self.output_size, self.return_indices = output_size, return_indices

    def forward(self, input: Tensor) -> Any:
        return adaptive_max_pool3d(input, self.output_size, self.return_indices)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


# ---------------------------------------------------------------------- 3-D max pooling with indices
def max_pool3d_with_indices(
    input: Tensor,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    dilation: Any = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> tuple[Tensor, Tensor]:
    """3-D max pooling returning (values, flat indices into D*H*W), with PyTorch's padding (never
    chosen), dilation and ceil_mode; the gradient goes to each window's first largest element.

    Example:
        >>> import downslope as ds
        >>> import downslope.nn.functional as F
        >>> out, idx = F.max_pool3d_with_indices(ds.arange(8.0).reshape(1, 1, 2, 2, 2), 2)
        >>> out.flatten().tolist(), idx.flatten().tolist()
        ([7.0], [7])
    """
    where = "max_pool3d"
    x = _as_tensor(input, where)
    _check_floating(x, where)
    x, unbatched = _batched(x, 3, where)
    k, s, p, d = _pool_args(kernel_size, stride, padding, dilation, 3, where)
    tables = []
    for i, size in enumerate(x.shape[2:]):
        out, _ = _pool_geometry(size, k[i], s[i], p[i], d[i], ceil_mode, where)
        tables.append(_strided_table(size, out, k[i], s[i], p[i], d[i]))
    out_t, idx = _max_over_windows(x, tables)
    return _finish(out_t, idx, unbatched)


# ---------------------------------------------------------------------- fractional max pooling
def _intervals(sample: np.ndarray, size: int, out: int, pool: int) -> np.ndarray:
    """PyTorch's window starts for one dim, one row per plane, computed in the input's dtype as
    PyTorch does: ``int((i + u) * alpha) - int(u * alpha)`` with ``alpha = (size - pool) / (out - 1)``,
    the last window flush with the end."""
    dt = sample.dtype.type
    starts = np.empty((sample.shape[0], out), np.int64)  # host: sampled on the host, as the windows are
    if out > 1:
        alpha = dt(size - pool) / dt(out - 1)
        i = np.arange(out - 1).astype(sample.dtype)  # host: window positions
        first = ((i[None, :] + sample[:, None]) * alpha).astype(np.int64)
        starts[:, :-1] = first - (sample[:, None] * alpha).astype(np.int64)
    starts[:, -1] = size - pool
    return starts


def _fractional(
    input: Tensor, kernel_size: Any, output_size: Any, output_ratio: Any, samples: Any, spatial: int, where: str
) -> tuple[Tensor, Tensor]:
    x = _as_tensor(input, where)
    _check_floating(x, where)
    x, unbatched = _batched(x, spatial, where)
    n, c, *sizes = x.shape
    k = _tuple(kernel_size, spatial, "kernel_size", where)
    if output_size is None:
        if output_ratio is None:
            raise ArgumentError(f"{where} requires specifying either an output_size or an output_ratio")
        ratio = (output_ratio,) * spatial if isinstance(output_ratio, (int, float)) else tuple(output_ratio)
        if len(ratio) != spatial or not all(0 < r < 1 for r in ratio):
            raise ArgumentError(
                f"{where}: output_ratio must be in (0, 1) for each of {spatial} dims, got {output_ratio}"
            )
        outs = tuple(int(size * r) for size, r in zip(sizes, ratio))
    else:
        outs = _tuple(output_size, spatial, "output_size", where)
    # torch's limits: output + kernel - 1 at most the input size in 2-D, below it in 3-D
    strict = spatial == 3
    for size, o, kk in zip(sizes, outs, k):
        if o + kk - 1 > size or (strict and o + kk - 1 == size):
            raise ShapeError(
                f"{where}: kernel {kk} is too large relative to input size {size} and output size {o} "
                f"(output size + kernel - 1 must be {'below' if strict else 'at most'} the input size)"
            )
    if samples is None:
        drawn = rand(n, c, spatial, dtype=x.dtype).array
    else:
        drawn = samples.array if isinstance(samples, Tensor) else samples
    u = to_host(drawn)  # host: the window starts are computed on the host (a small table per plane), then moved
    if u.shape != (n, c, spatial):
        raise ShapeError(f"{where}: _random_samples must have shape {(n, c, spatial)}, got {tuple(u.shape)}")
    u = u.astype(x.array.dtype).reshape(n * c, spatial)
    # PyTorch's sample order: (W, H) in 2-D, (T, H, W) in 3-D
    columns = (1, 0) if spatial == 2 else (0, 1, 2)
    tables = []
    for d in range(spatial):
        starts = _intervals(u[:, columns[d]], sizes[d], outs[d], k[d])
        pos = starts[:, :, None] + np.arange(k[d])[None, None, :]  # host: window positions
        tables.append((pos, np.ones(pos.shape, bool), starts))  # host: every position is inside the input
    if spatial == 2 and type(x.array) is np.ndarray and x.array.size:
        out, idx = _fractional_max_2d(x, tables[0][2], tables[1][2], k)
    else:
        out, idx = _max_over_windows(x, tables)
    return _finish(out, idx, unbatched)


def _sliding_best(a: np.ndarray, k: int, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Along ``axis`` of ``a``, for every start of a run of ``k`` elements: the run's pick by torch's scan
    (a later element replaces the best so far when it is larger or NaN: the first largest, or the last
    NaN) and its offset in the run (int8: kernels are small)."""
    m = a.shape[axis] - k + 1

    def run(t: int) -> np.ndarray:
        return a[(slice(None),) * axis + (slice(t, t + m),)]

    best = run(0).copy()
    at = np.zeros(best.shape, np.int8)  # host: the host-only fractional path
    # branch-free updates (a masked copy or np.where over a random mask of strided views costs 20-40
    # times as much): maximum keeps a NaN of either side, which is the scan's pick of values too
    for t in range(1, k):
        v = run(t)
        take = ((v > best) | (v != v)).view(np.int8)
        at += take * (np.int8(t) - at)
        best = np.maximum(best, v)
    return best, at


def _fractional_max_2d(x: Tensor, row_starts: np.ndarray, col_starts: np.ndarray, k: Any) -> tuple[Tensor, Tensor]:
    """2-D fractional max pooling of a host input: each window is k[0] x k[1] wholly inside the input, so
    the max is separable: along W, the pick of every run of k[1] columns read at each plane's column
    starts, then the same along H over those picks. torch's scan of a window row by row gives the same
    element (a row's pick replaces the best so far exactly when the scan would), so the values and
    indices are torch's. Reads go through flat np.take (take_along_axis builds index grids: 5x slower)."""
    n, c, h, w = x.shape
    planes = n * c
    a = x.array.reshape(planes, h, w)
    oh, ow = row_starts.shape[1], col_starts.shape[1]
    plane = np.arange(planes).reshape(-1, 1, 1)  # host: the host-only fractional path
    best, at_col = _sliding_best(a, k[1], 2)  # (planes, h, w - k + 1)
    m1 = best.shape[2]
    rows_of = np.arange(h).reshape(1, -1, 1)  # host: the host-only fractional path
    reads = plane * (h * m1) + rows_of * m1 + col_starts[:, None, :]  # (planes, h, ow)
    best, at_col = np.take(best, reads), np.take(at_col, reads)
    best, at_row = _sliding_best(best, k[0], 1)  # (planes, h - k + 1, ow)
    m2 = best.shape[1]
    columns = np.arange(ow).reshape(1, 1, -1)  # host: the host-only fractional path
    reads = plane * (m2 * ow) + row_starts[:, :, None] * ow + columns  # (planes, oh, ow)
    values = np.take(best, reads)
    row = row_starts[:, :, None] + np.take(at_row, reads)
    col = col_starts[:, None, :] + np.take(at_col, plane * (h * ow) + row * ow + columns)
    flat = row * w + col
    out = record_op(values.reshape(n, c, oh, ow), (x,), _fractional_max_2d_vjp, (flat, x.shape))
    return out, wrap_array(flat.reshape(n, c, oh, ow))


def _scatter_winners(g: np.ndarray, flat: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """The gradient of x (of ``shape``) from the outputs' gradient ``g``: windows overlap, so a winner of
    several windows gets the sum of their gradients."""
    planes, size = flat.shape[0], int(np.prod(shape)) // flat.shape[0]
    at = (flat + np.arange(planes).reshape(-1, 1, 1) * size).ravel()  # host: the host-only fractional path
    # added in g's dtype in the outputs' order, as torch adds them (a float64 sum rounded once differs)
    summed = np.zeros(planes * size, g.dtype)  # host: the host-only fractional path
    np.add.at(summed, at, g.reshape(-1))
    return summed.reshape(shape)


def _gather_winners(a: np.ndarray, flat: np.ndarray) -> np.ndarray:
    """Each window's winner read from ``a`` (the pooling itself; the adjoint of :func:`_scatter_winners`)."""
    picked = np.take_along_axis(a.reshape(flat.shape[0], -1), flat.reshape(flat.shape[0], -1), axis=1)
    return picked.reshape(a.shape[:2] + flat.shape[1:])


def _fractional_max_2d_vjp(g, y, args, saved, needs, xp):
    flat, shape = saved
    if isinstance(g, Tensor):  # create_graph: the scatter recorded, its own gradient the gather
        return (record_op(_scatter_winners(g.array, flat, shape), (g,), _winners_scatter_vjp, saved),)
    return (_scatter_winners(g, flat, shape),)


def _winners_scatter_vjp(g, y, args, saved, needs, xp):
    flat, _ = saved
    if isinstance(g, Tensor):
        return (record_op(_gather_winners(g.array, flat), (g,), _fractional_max_2d_vjp, saved),)
    return (_gather_winners(g, flat),)


def fractional_max_pool2d_with_indices(
    input: Tensor,
    kernel_size: Any,
    output_size: Any = None,
    output_ratio: Any = None,
    return_indices: bool = False,
    _random_samples: Any = None,
) -> tuple[Tensor, Tensor]:
    """Fractional max pooling (Graham, 2014) returning (values, flat indices into H*W).

    Windows of ``kernel_size`` start at pseudo-random positions drawn from ``_random_samples``
    (uniform in [0, 1), shape ``(N, C, 2)``; drawn from downslope's generator when not given: the
    same distribution as PyTorch's, other numbers). Given the same samples, the outputs and indices
    are PyTorch's.

    Example:
        >>> import downslope as ds
        >>> import downslope.nn.functional as F
        >>> x = ds.arange(25.0).reshape(1, 1, 5, 5)
        >>> F.fractional_max_pool2d_with_indices(x, 2, output_size=2, _random_samples=ds.zeros(1, 1, 2))[1]
        tensor([[[[ 6,  9],
                  [21, 24]]]])
    """
    return _fractional(input, kernel_size, output_size, output_ratio, _random_samples, 2, "fractional_max_pool2d")


def fractional_max_pool2d(
    input: Tensor,
    kernel_size: Any,
    output_size: Any = None,
    output_ratio: Any = None,
    return_indices: bool = False,
    _random_samples: Any = None,
) -> Any:
    """Fractional max pooling of ``(N, C, H, W)``; see :func:`fractional_max_pool2d_with_indices`.

    Example:
        >>> import downslope as ds
        >>> import downslope.nn.functional as F
        >>> F.fractional_max_pool2d(ds.randn(2, 3, 9, 9), 2, output_ratio=0.5).shape
        downslope.Size([2, 3, 4, 4])
    """
    out, idx = fractional_max_pool2d_with_indices(input, kernel_size, output_size, output_ratio, True, _random_samples)
    return (out, idx) if return_indices else out


def fractional_max_pool3d_with_indices(
    input: Tensor,
    kernel_size: Any,
    output_size: Any = None,
    output_ratio: Any = None,
    return_indices: bool = False,
    _random_samples: Any = None,
) -> tuple[Tensor, Tensor]:
    """3-D fractional max pooling returning (values, flat indices into T*H*W); ``_random_samples``
    has shape ``(N, C, 3)`` (see :func:`fractional_max_pool2d_with_indices`).

    Example:
        >>> import downslope as ds
        >>> import downslope.nn.functional as F
        >>> x = ds.arange(27.0).reshape(1, 1, 3, 3, 3)
        >>> F.fractional_max_pool3d_with_indices(x, 2, output_size=1, _random_samples=ds.zeros(1, 1, 3))[1].flatten().tolist()
        [26]
    """
    return _fractional(input, kernel_size, output_size, output_ratio, _random_samples, 3, "fractional_max_pool3d")


def fractional_max_pool3d(
    input: Tensor,
    kernel_size: Any,
    output_size: Any = None,
    output_ratio: Any = None,
    return_indices: bool = False,
    _random_samples: Any = None,
) -> Any:
    """3-D fractional max pooling of ``(N, C, T, H, W)``; see :func:`fractional_max_pool3d_with_indices`.

    Example:
        >>> import downslope as ds
        >>> import downslope.nn.functional as F
        >>> F.fractional_max_pool3d(ds.randn(1, 2, 6, 6, 6), 2, output_size=3).shape
        downslope.Size([1, 2, 3, 3, 3])
    """
    out, idx = fractional_max_pool3d_with_indices(input, kernel_size, output_size, output_ratio, True, _random_samples)
    return (out, idx) if return_indices else out


class _FractionalMaxPoolNd(Module):
    _spatial = 2
    _random_samples: Tensor | None

    def __init__(
        self,
        kernel_size: Any,
        output_size: Any = None,
        output_ratio: Any = None,
        return_indices: bool = False,
        _random_samples: Any = None,
    ) -> None:
        super().__init__()
        where = type(self).__name__

        def repeated(v: Any) -> Any:  # torch's _pair/_triple: a sequence as a tuple, a number n times
            return None if v is None else tuple(v) if isinstance(v, (tuple, list)) else (v,) * self._spatial

        self.kernel_size = repeated(kernel_size)
        self.output_size = repeated(output_size)
        self.output_ratio = repeated(output_ratio)
        self.return_indices = return_indices
        self.register_buffer("_random_samples", _random_samples)
        if output_size is None and output_ratio is None:
            raise ArgumentError(f"{where} requires specifying either an output size, or a pooling ratio")
        if output_size is not None and output_ratio is not None:
            raise ArgumentError(f"{where}: only one of output_size and output_ratio may be specified")
        if self.output_ratio is not None:
            if not all(0 < r < 1 for r in self.output_ratio):
                raise ArgumentError(f"{where}: output_ratio must be between 0 and 1 (got {output_ratio})")

    def forward(self, input: Tensor) -> Any:
        fn = fractional_max_pool2d if self._spatial == 2 else fractional_max_pool3d
        return fn(
            input,
            self.kernel_size,
            self.output_size,
            self.output_ratio,
            self.return_indices,
            _random_samples=self._random_samples,
        )


class FractionalMaxPool2d(_FractionalMaxPoolNd):
    """See :func:`fractional_max_pool2d`: windows at pseudo-random places, output ``output_size``
    or ``output_ratio`` times the input.

    Example:
        >>> import downslope as ds
        >>> from downslope import nn
        >>> nn.FractionalMaxPool2d(3, output_ratio=(0.5, 0.5))(ds.randn(1, 2, 10, 10)).shape
        downslope.Size([1, 2, 5, 5])
    """

    _spatial = 2


class FractionalMaxPool3d(_FractionalMaxPoolNd):
    """See :func:`fractional_max_pool3d`.

    Example:
        >>> import downslope as ds
        >>> from downslope import nn
        >>> nn.FractionalMaxPool3d(2, output_size=(2, 3, 3))(ds.randn(1, 1, 5, 6, 6)).shape
        downslope.Size([1, 1, 2, 3, 3])
    """

    _spatial = 3
