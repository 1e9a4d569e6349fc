"""Max, average and adaptive-average pooling over 1-D and 2-D signals (PyTorch's names and shapes).

Shapes follow PyTorch: 2-D ops take ``(N, C, H, W)`` (or unbatched ``(C, H, W)``), 1-D ops take
``(N, C, L)`` (or ``(C, L)``). The 1-D ops are the 2-D ops on a height-1 image.

Pooling copies the windows once into a contiguous ``(kh*kw, N, C, OH, OW)`` array and reduces over
its first axis (long contiguous rows, which matters on small feature maps); its backward writes
back per kernel offset. Max pooling keeps a boolean mask of each window's winner for the gradient.
Pooling treats N and C alike, so a channel-major input (what a convolution returns) is pooled in
the layout it has in memory, and the output and the gradient keep that layout.

Example:
    >>> import downslope as ds
    >>> ds.nn.MaxPool2d(2)(ds.arange(16.0).reshape(1, 1, 4, 4))
    tensor([[[[ 5.,  7.],
              [13., 15.]]]])
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import as_strided

from .. import ops
from .. import workspace as _workspace
from ..autograd import is_grad_enabled
from ..backend import namespace_of
from ..errors import ArgumentError, ArgumentTypeError, DTypeUnimplementedError, InvalidValueError, ShapeError
from ..ops.pointwise import link_input
from ..tensor import Tensor, record_op, wrap_array
from . import _jit
from ._conv_args import IntOr2, _as_tensor, _batched, _check_floating, _pool_args
from ._conv_kernels import _borrow_padded, _channel_major, _give_padded
from ._tap_sums import adaptive_mean_2d, adaptive_windows, host_finite, matrix_or_taps, tap_sum
from .activation import ReLU
from .module import Module
from .module.containers import FUSED_PAIRS

__all__ = [
    "max_pool1d",
    "max_pool2d",
    "avg_pool1d",
    "avg_pool2d",
    "adaptive_avg_pool1d",
    "adaptive_avg_pool2d",
    "MaxPool1d",
    "MaxPool2d",
    "AvgPool1d",
    "AvgPool2d",
    "AdaptiveAvgPool1d",
    "AdaptiveAvgPool2d",
]


def _pool_geometry(
    size: int, kernel: int, stride: int, pad: int, dilation: int, ceil_mode: bool, where: str
) -> tuple[int, int]:
    """(output length, extra padding after the input that ceil_mode's last window needs)."""
    if pad * 2 > kernel:
        raise InvalidValueError(  # torch: RuntimeError
            f"{where}: padding should be at most half of the kernel size, got padding {pad} and kernel {kernel}"
        )
    span = dilation * (kernel - 1) + 1
    numer = size + 2 * pad - span
    # floor/ceil towards -inf: with ceil_mode a padded input shorter than the kernel still has one
    # window (PyTorch's pooling_output_shape), without it none
    out = (-(-numer // stride) if ceil_mode else numer // stride) + 1
    # PyTorch's rule: the last window must start inside the input or its left padding.
    if ceil_mode and (out - 1) * stride >= size + pad:
        out -= 1
    if out < 1:
        raise ShapeError(
            f"{where}: the (padded) input length {size + 2 * pad} is smaller than the (dilated) kernel {span}"
        )
    extra = max(0, (out - 1) * stride + span - (size + 2 * pad))
    return out, extra


def _offset_view(a: np.ndarray, p: int, q: int, geometry: Any) -> np.ndarray:
    """The (N, C, OH, OW) block of padded ``a`` read at kernel offset (p, q)."""
    (sh, sw), (dh, dw), (oh, ow) = geometry
    return a[:, :, p * dh : p * dh + sh * (oh - 1) + 1 : sh, q * dw : q * dw + sw * (ow - 1) + 1 : sw]


def _windows_view(a: np.ndarray, k: Any, geometry: Any, writeable: bool = False) -> np.ndarray:
    """A (kh, kw, N, C, OH, OW) strided view of padded ``a``: element [p, q] is the offset-(p, q) block."""
    (sh, sw), (dh, dw), (oh, ow) = geometry
    s_n, s_c, s_h, s_w = a.strides
    shape = (k[0], k[1], a.shape[0], a.shape[1], oh, ow)
    strides = (s_h * dh, s_w * dw, s_n, s_c, s_h * sh, s_w * sw)
    if type(a) is np.ndarray:
        return as_strided(a, shape, strides, writeable=writeable)
    # NumPy's as_strided does not dispatch: a device array is viewed by its own library's.
    return namespace_of(a).lib.stride_tricks.as_strided(a, shape, strides)


def _stacked_windows(a: np.ndarray, k: Any, geometry: Any) -> np.ndarray:
    """Every window element as one contiguous (kh*kw, N, C, OH, OW) array.

    One strided copy; after it each kernel offset is a contiguous block, so the reductions that
    follow run over long rows. (Working on the strided blocks directly pays NumPy's per-row
    overhead on every op, which dominates on small feature maps.)
    """
    view = _windows_view(a, k, geometry)
    out = _workspace.take((k[0] * k[1],) + view.shape[2:], a.dtype, a)  # borrowed: give it back
    np.copyto(out.reshape(view.shape), view)
    return out


def _scatter_windows(grad: np.ndarray, padded_shape: tuple[int, ...], k: Any, geometry: Any) -> np.ndarray:
    """The adjoint of :func:`_stacked_windows`: each window element's gradient added back to where
    it was read from. ``grad`` is (kh*kw, N, C, OH, OW), possibly a broadcast view."""
    (sh, sw), (dh, dw), (oh, ow) = geometry
    overlapping = sh < dh * (k[0] - 1) + 1 or sw < dw * (k[1] - 1) + 1
    # Windows that tile the (padded) input exactly (stride == kernel, e.g. 2x2 pooling of an even
    # map) write every element once: no zero fill needed.
    tiles = (sh, sw) == tuple(k) and (dh, dw) == (1, 1) and padded_shape[2:] == (oh * sh, ow * sw)
    if tiles:
        out = _workspace.lend(padded_shape, grad.dtype, grad)
    else:
        out = _workspace.lend_zeros(padded_shape, grad.dtype, grad)
    # One pass per kernel offset, each over a whole (N, C, OH, OW) block. (A single assignment into
    # the 6-D strided windows view is 3-4x slower: NumPy then runs its inner loop over the kernel.)
    for offset in range(k[0] * k[1]):
        block = _offset_view(out, offset // k[1], offset % k[1], geometry)
        if overlapping:
            block += grad[offset]
        else:  # every input element belongs to at most one window: a plain copy
            block[...] = grad[offset]
    return out


_INTEGERS_TAKEN = {"all": "or integer (not bool) input", "int64": "or int64 input", "": "input only"}


def _check_pooled_dtype(x: Tensor, where: str, integers: str) -> None:
    """The dtypes torch's pooling kernels take: floating point, and integers where ``integers`` says so
    ("all": max pooling's, every integer dtype but bool; "int64": average pooling's; "": none). An integer
    or bool dtype refused is torch's NotImplementedError (a DTypeError too: a TypeError, as before)."""
    dtype = x.array.dtype
    if dtype.kind in "iu" and (integers == "all" or (integers == "int64" and dtype == np.int64)):
        return
    if dtype.kind in "iub":
        raise DTypeUnimplementedError(
            f"{where}: not implemented for {x.dtype} input: it takes floating-point "
            f"{_INTEGERS_TAKEN[integers]}; cast it with .float() first"
        )
    _check_floating(x, where)


def _integer_average(pool: Any, x: Tensor, divisor_override: Any) -> Tensor:
    """torch's average pooling of int64: each window's exact sum divided by its divisor, truncated toward
    zero (C's integer division). ``pool(t, override)`` average-pools ``t`` with the caller's geometry and
    ``divisor_override=override``."""
    values = x.array.astype(np.float64)  # the sums are exact below 2**53
    ns = namespace_of(values)
    sums = pool(wrap_array(values), 1).array
    if divisor_override:
        divisor: Any = divisor_override
    else:  # pooling ones: (real elements) / divisor, and the real elements themselves
        ones = wrap_array(ns.ones_like(values))
        counts = pool(ones, 1).array
        divisor = ns.rint(counts / pool(ones, None).array)
    return wrap_array(ns.trunc(sums / divisor).astype(np.int64))


def max_pool2d(
    input: Tensor,
    kernel_size: IntOr2,
    stride: IntOr2 | None = None,
    padding: IntOr2 = 0,
    dilation: IntOr2 = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> Any:
    """Largest value in each window (PyTorch's ``max_pool2d``); ``stride`` defaults to the kernel.

    The gradient goes to the first largest element of each window (PyTorch's choice); padding is
    -inf, so it never wins. ``return_indices`` also returns each winner's flat index into H*W.

    Example:
        >>> import downslope as ds
        >>> from downslope.nn.functional import max_pool2d
        >>> max_pool2d(ds.arange(16.0).reshape(1, 1, 4, 4), 2)
        tensor([[[[ 5.,  7.],
                  [13., 15.]]]])
    """
    where = "max_pool2d"
    x = _as_tensor(input, where)
    _check_pooled_dtype(x, where, "all")
    x, unbatched = _batched(x, 2, where)
    k, s, p, d = _pool_args(kernel_size, stride, padding, dilation, 2, where)
    if _long_tiling_windows(x, k, s, p, d, TILED_ROWS_MAX_MIN_ELEMENTS, TILED_ARGMAX_MIN_KERNEL):
        out, indices = _tiled_max_pool(x, k, return_indices)
    else:
        out, indices = _max_pool2d(x, k, s, p, d, ceil_mode, return_indices, where)
    if unbatched:
        out = ops.squeeze(out, 0)
        indices = None if indices is None else wrap_array(indices.array[0])
    return (out, indices) if return_indices else out


def max_pool1d(
    input: Tensor,
    kernel_size: IntOr2,
    stride: IntOr2 | None = None,
    padding: IntOr2 = 0,
    dilation: IntOr2 = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> Any:
    """Largest value in each window of a ``(N, C, L)`` or ``(C, L)`` signal (PyTorch's ``max_pool1d``).

    Example:
        >>> import downslope as ds
        >>> from downslope.nn.functional import max_pool1d
        >>> max_pool1d(ds.tensor([[[1.0, 3.0, 2.0, 0.0, 5.0]]]), 2)
        tensor([[[3., 2.]]])
    """
    where = "max_pool1d"
    x = _as_tensor(input, where)
    _check_pooled_dtype(x, where, "")
    x, unbatched = _batched(x, 1, where)
    k, s, p, d = _pool_args(kernel_size, stride, padding, dilation, 1, where)
    length = x.shape[2]
    if s == k and p == (0,) and d == (1,) and length % k[0] == 0 and type(x.array) is np.ndarray and x.array.size:
        if k[0] < TILED_ARGMAX_MIN_KERNEL:  # short windows that tile L (MaxPool1d(2)): k passes over long rows
            values, winners = _tiled_max_last(x, k[0], return_indices)
        else:
            # long windows that tile L (global max pooling, kernel = L, the text-CNN idiom, among them):
            # one argmax over the windows side by side, a third of the time of the stacked-windows path
            from .pooling_windows import adaptive_max_last  # that module builds on this one

            values, winners = adaptive_max_last(x, length // k[0])
        if unbatched:
            values = ops.squeeze(values, 0)
            winners = None if winners is None else wrap_array(winners.array[0])
        return (values, winners) if return_indices else values
    out, indices = _max_pool2d(
        ops.unsqueeze(x, 2), (1,) + k, (1,) + s, (0,) + p, (1,) + d, ceil_mode, return_indices, where
    )
    out = ops.squeeze(out, 2)
    if indices is not None:
        indices = wrap_array(indices.array[:, :, 0])
    if unbatched:
        out = ops.squeeze(out, 0)
        indices = None if indices is None else wrap_array(indices.array[0])
    return (out, indices) if return_indices else out


#: The shortest window, tiling L, that max_pool1d reduces with one argmax per window; shorter ones run
#: :func:`_tiled_max_last`. NumPy's argmax (and max) along a short last axis pays a per-row overhead:
#: on (256, 32, 256) float32, k = 2 / 8 / 32 / 64 took 33 / 21 / 11 / 1.4 ms by argmax, against
#: 0.7-2 ms for k elementwise passes over cache-sized blocks (one thread, shared two-core AMD EPYC).
TILED_ARGMAX_MIN_KERNEL = 64

#: Input elements per block of :func:`_tiled_max_last`: the block's windows, regrouped by offset, and
#: its outputs stay in the L2 cache across the k passes (passes over the whole array re-read it k times).
TILED_BLOCK_ELEMENTS = 1 << 16


def _tiled_max_last(x: Tensor, k: int, return_indices: bool) -> tuple[Tensor, Tensor | None]:
    """Max pooling of host ``x`` (..., L) over windows of ``k`` that tile L (stride ``k``), with
    torch's winners (each window's first maximum, or its last NaN). Block by block, the windows'
    j-th elements are copied side by side (one 2-D transposing copy) and reduced by k elementwise
    passes over long rows: NumPy's reductions along a short last axis, and its ufuncs on strided
    operands, are 10-50x slower."""
    a = x.array
    windows = a.reshape(-1, k)  # (windows, k): a view when L is contiguous
    count = windows.shape[0]
    track = return_indices or (is_grad_enabled() and x.requires_grad)
    out = _workspace.lend((count,), a.dtype, a)  # recycled: no fresh pages faulted in per call
    first = np.empty((k, count), dtype=bool) if track else None  # host: this path takes host arrays only
    step = max(1, TILED_BLOCK_ELEMENTS // k)
    stacked = _workspace.take((k, min(step, count)), a.dtype, a)
    for start in range(0, count, step):
        stop = min(count, start + step)
        block = stacked[:, : stop - start]
        np.copyto(block, windows[start:stop].T)
        best = out[start:stop]
        np.copyto(best, block[0])
        for j in range(1, k):
            np.maximum(best, block[j], out=best)  # NaN propagates, as torch's
        if first is not None:
            first[:, start:stop] = _first_max_mask(block, best)
    _workspace.give(stacked)
    pooled_shape = a.shape[:-1] + (a.shape[-1] // k,)
    values = record_op(out.reshape(pooled_shape), (x,), _tiled_max_last_vjp, first)
    if not return_indices:
        return values, None
    assert first is not None
    winner = np.zeros(count, dtype=np.int64)  # host: this path takes host arrays only
    for j in range(1, k):
        winner += first[j] * np.int64(j)
    flat = winner.reshape(pooled_shape) + np.arange(0, a.shape[-1], k, dtype=np.int64)  # host: as above
    return values, wrap_array(flat)


def _tiled_max_last_vjp(g, y, args, saved, needs, xp):
    first = saved
    shape = args[0].shape
    k, count = first.shape
    if xp.differentiable:  # create_graph: a recorded product with the winner mask (zero beyond the input)
        mask = first.T.reshape(shape[:-1] + (shape[-1] // k, k))  # host: the forward's mask
        return (link_input(xp.reshape(xp.where(mask, xp.expand_dims(g, -1), 0.0), shape), args[0]),)
    g_flat = np.broadcast_to(g, shape[:-1] + (shape[-1] // k,)).reshape(count)
    gx = _workspace.lend(shape, g.dtype, g)  # every element is written below
    per_window = gx.reshape(count, k)
    step = max(1, TILED_BLOCK_ELEMENTS // k)
    stacked = _workspace.take((k, min(step, count)), g.dtype, g)
    for start in range(0, count, step):  # block by block, then one transposing copy into place
        stop = min(count, start + step)
        block = stacked[:, : stop - start]
        _winner_gradients(first[:, start:stop], g_flat[start:stop], block)
        np.copyto(per_window[start:stop], block.T)
    _workspace.give(stacked)
    return (gx,)


_tiled_max_last_vjp.reads_inputs = False  # type: ignore[attr-defined]
_tiled_max_last_vjp.reads_output = False  # type: ignore[attr-defined]


#: The shortest window, tiling L, that avg_pool1d sums block by block (:func:`_tiled_avg_last`): from
#: here up to TILED_ARGMAX_MIN_KERNEL the stacked-windows path copied the windows with a short inner
#: loop (k = 32 on (256, 32, 256): 8-10 ms against torch's 0.6 ms); shorter windows are fast there.
TILED_SUM_MIN_KERNEL = 8


def _tiled_avg_last(x: Tensor, k: int) -> Tensor:
    """Average pooling of host ``x`` (..., L) over windows of ``k`` that tile L: block by block, the
    windows' j-th elements side by side (one transposing copy), added in window order (torch's order),
    then scaled by 1 / k as the stacked-windows path does."""
    a = x.array
    windows = a.reshape(-1, k)  # (windows, k): a view when L is contiguous
    count = windows.shape[0]
    out = _workspace.lend((count,), a.dtype, a)
    step = max(1, TILED_BLOCK_ELEMENTS // k)
    stacked = _workspace.take((k, min(step, count)), a.dtype, a)
    for start in range(0, count, step):
        stop = min(count, start + step)
        block = stacked[:, : stop - start]
        np.copyto(block, windows[start:stop].T)
        total = out[start:stop]
        np.copyto(total, block[0])
        for j in range(1, k):
            np.add(total, block[j], out=total)
    _workspace.give(stacked)
    scale = a.dtype.type(1.0 / k)
    out *= scale
    return record_op(out.reshape(a.shape[:-1] + (a.shape[-1] // k,)), (x,), _tiled_avg_last_vjp, (k, scale))


def _tiled_avg_last_vjp(g, y, args, saved, needs, xp):
    k, scale = saved
    shape = args[0].shape
    windows = shape[:-1] + (shape[-1] // k, k)
    if xp.differentiable:  # create_graph: each window's share, broadcast over its elements (recorded)
        return (xp.reshape(xp.broadcast_to(xp.expand_dims(g * scale, -1), windows), shape),)
    gx = _workspace.lend(shape, g.dtype, g)  # every element is written below
    np.multiply(np.expand_dims(g, -1), scale, out=gx.reshape(windows))
    return (gx,)


_tiled_avg_last_vjp.reads_inputs = False  # type: ignore[attr-defined]
_tiled_avg_last_vjp.reads_output = False  # type: ignore[attr-defined]


#: The fewest elements per window for which max_pool2d (and avg_pool2d) over windows that tile the input
#: make each window a row (:func:`_window_rows`, one permuted copy) rather than stack the windows: the
#: stacked copy's inner loop runs across images, slow for long windows, while a row's argmax (or sum)
#: is slow for short ones. Global windows need no permuted copy: from TILED_ARGMAX_MIN_KERNEL elements
#: for max, from 4 for averages. Measured (one thread, CPU ms, rows vs stacked, float32): max 16x16 on
#: (64, 32, 32, 32) 0.99 vs 4.15, 8x8 2.85 vs 2.19, global 8x8 on (64, 64, 8, 8) 0.15 vs 0.19; average
#: 8x8 1.27 vs 1.92, 7x7 on (64, 256, 14, 14) 2.20 vs 9.66, 4x4 2.30 vs 2.19, global 4x4 on
#: (64, 512, 4, 4) 0.07 vs 0.43.
TILED_ROWS_MAX_MIN_ELEMENTS = 256
TILED_ROWS_AVG_MIN_ELEMENTS = 32


def _long_tiling_windows(x: Tensor, k: Any, s: Any, p: Any, d: Any, least: int, global_least: int) -> bool:
    """Whether the windows ``k`` (stride = kernel, no padding, no dilation) tile x's trailing dims
    exactly, on the host, with at least ``least`` elements each (``global_least`` for one window per
    plane): then each window becomes a row (:func:`_window_rows`)."""
    if tuple(s) != tuple(k) or any(p) or (d is not None and any(step != 1 for step in d)):
        return False
    if type(x.array) is not np.ndarray or not x.array.size:
        return False
    if any(size % kk for size, kk in zip(x.shape[2:], k)):
        return False
    whole = tuple(x.shape[2:]) == tuple(k)
    return math.prod(k) >= (global_least if whole else least)


def _window_rows(x: Tensor, k: Any) -> Tensor:
    """``x`` (N, C, *sizes) cut into the windows ``k`` that tile it, one window per row in scan order:
    (N, C, windows, prod(k)), by recorded reshapes and one permuted copy (none for global pooling),
    so the gradient flows back through them."""
    n, c = x.shape[:2]
    outs = tuple(size // kk for size, kk in zip(x.shape[2:], k))
    split = (n, c) + tuple(v for pair in zip(outs, k) for v in pair)  # (N, C, O1, K1, O2, K2, ...)
    dims = len(k)
    order = (0, 1) + tuple(2 + 2 * i for i in range(dims)) + tuple(3 + 2 * i for i in range(dims))
    return ops.reshape(ops.permute(ops.reshape(x, split), order), (n, c, math.prod(outs), math.prod(k)))


def _tiled_max_pool(x: Tensor, k: Any, return_indices: bool) -> tuple[Tensor, Tensor | None]:
    """Max pooling over long windows that tile x (see TILED_ROWS_MAX_MIN_ELEMENTS): one argmax per window
    row (torch's winner: the first maximum in scan order, or the last NaN), with torch's flat indices."""
    from .pooling_windows import adaptive_max_last  # that module builds on this one

    n, c = x.shape[:2]
    sizes = x.shape[2:]
    outs = tuple(size // kk for size, kk in zip(sizes, k))
    values, winners = adaptive_max_last(_window_rows(x, k), 1)
    values = ops.reshape(values, (n, c) + outs)
    if not return_indices:
        return values, None
    offsets = np.unravel_index(winners.array[..., 0], tuple(k))  # host: the forward's winners
    starts = np.unravel_index(np.arange(math.prod(outs)), outs)  # host: window positions from Python ints
    flat = np.zeros(winners.array.shape[:-1], dtype=np.int64)  # host: this path takes host arrays only
    for dim, size in enumerate(sizes):
        flat = flat * size + starts[dim] * k[dim] + offsets[dim]
    return values, wrap_array(flat.reshape((n, c) + outs))


def _tiled_avg_pool(x: Tensor, k: Any, divisor_override: Any) -> Tensor:
    """Average pooling over long windows that tile x (see TILED_ROWS_AVG_MIN_ELEMENTS): each window row
    summed, times 1 / its size (or ``divisor_override``), as the stacked path scales."""
    n, c = x.shape[:2]
    outs = tuple(size // kk for size, kk in zip(x.shape[2:], k))
    total = ops.sum(_window_rows(x, k), -1)
    divisor = math.prod(k) if divisor_override is None else divisor_override
    return ops.reshape(total * x.array.dtype.type(1.0 / divisor), (n, c) + outs)


#: The fewest input elements for which the compiled 2x2 max pooling runs (with or without the ReLU
#: before it; ``_jit.kernels_at``: below it NumPy, even once a larger call loaded the kernels). It beats NumPy at every
#: size, below this by only 35-55 us a call (ReLU then MaxPool2d(2) on 1 / 8 / 16 x 8 x 28 x 28,
#: forward and backward: 53 vs 88 / 101 vs 156 / 178 vs 255 us; one thread, float32, shared two-core
#: AMD EPYC, medians), while starting the kernels costs a process 0.4-1 s.
JIT_POOL_MIN_SIZE = 65_536


def _max_pool2d(
    x: Tensor, k: Any, s: Any, p: Any, d: Any, ceil_mode: bool, return_indices: bool, where: str
) -> tuple[Tensor, Tensor | None]:
    n, c, h, w = x.shape
    oh, extra_h = _pool_geometry(h, k[0], s[0], p[0], d[0], ceil_mode, where)
    ow, extra_w = _pool_geometry(w, k[1], s[1], p[1], d[1], ceil_mode, where)
    pads = (p[0], p[0] + extra_h, p[1], p[1] + extra_w)
    # Pooling treats N and C alike, so a channel-major input (a convolution's output) is pooled as
    # the (C, N, H, W) array it is in memory, and the result keeps that layout.
    swap = _channel_major(x.array)
    native = x.array.transpose(1, 0, 2, 3) if swap else x.array
    if not return_indices and (k, s, pads, d) == ((2, 2), (2, 2), (0, 0, 0, 0), (1, 1)) and (h, w) == (2 * oh, 2 * ow):
        jit = _jit.kernels_at(native.size, JIT_POOL_MIN_SIZE, native)
        if jit is not None:  # the compiled 2x2 kernel: one pass, the winner's position kept per window
            out, at = jit.max_pool_2x2(native)
            return record_op(_swap01(out, swap), (x,), _max_pool_2x2_vjp, (jit, at, swap)), None
    if native.dtype.kind == "f" and native.size >= JIT_POOL_MIN_SIZE:
        from ._vol_pooling import max_pool2d_by_3d

        # the compiled 3-D kernels (a depth of 1): one pass, each winner's index kept, its gradient
        # scattered back (measured 0.6-0.8x torch's time, where the masks below take 1.4-2x); above the
        # same size gate as the 2x2 kernel. The NumPy formulation below on devices, without numba, for
        # integers and small inputs
        compiled = max_pool2d_by_3d(x, k, s, pads[::2], d, (oh, ow))
        if compiled is not None:
            return compiled[0], compiled[1] if return_indices else None
    # padding never wins: -inf, or the integer dtype's least value (torch's lowest())
    fill = -np.inf if native.dtype.kind == "f" else np.iinfo(native.dtype).min
    xp, borrowed = _borrow_padded(native, pads, fill=fill)
    geometry = (s, d, (oh, ow))
    stacked = _stacked_windows(xp, k, geometry)
    _give_padded(xp, borrowed)
    ns = namespace_of(stacked)
    out = np.max(stacked, axis=0, out=_workspace.lend(stacked.shape[1:], stacked.dtype, stacked))  # NaN propagates
    track = return_indices or (is_grad_enabled() and x.requires_grad)
    first = _first_max_mask(stacked, out) if track else None
    _workspace.give(stacked)
    unset = None
    if first is not None:
        unset = out == -np.inf  # nothing beat -inf: PyTorch keeps the window's first in-input tap
        if type(unset) is not np.ndarray or unset.any():
            (row0, row_at, row_in), (col0, col_at, col_in) = (
                _first_taps(size, o, kk, ss, pp, dd, ns)
                for size, o, kk, ss, pp, dd in zip((h, w), (oh, ow), k, s, p, d)
            )
            tap = row_at[:, None] * k[1] + col_at[None, :]
            target = (ns.arange(k[0] * k[1]).reshape(-1, 1, 1) == tap) & (row_in[:, None] & col_in[None, :])
            first = ns.where(unset, target[:, None, None], first)
        else:
            unset = None
    result = record_op(_swap01(out, swap), (x,), _max_pool2d_vjp, (first, pads, k, geometry, swap))
    if not return_indices:
        return result, None
    assert first is not None
    offsets = ns.arange(k[0] * k[1], dtype=np.int64).reshape(-1, 1, 1, 1, 1)
    winner = (first * offsets).sum(axis=0)  # exactly one True per window
    rows = ns.arange(oh, dtype=np.int64)[:, None] * s[0] - p[0] + (winner // k[1]) * d[0]
    cols = ns.arange(ow, dtype=np.int64) * s[1] - p[1] + (winner % k[1]) * d[1]
    flat = rows * w + cols
    if unset is not None:  # a window wholly in the padding: its first taps lie past the input
        flat = ns.where(unset, row0[:, None] * w + col0[None, :], flat)
    return result, wrap_array(ns.ascontiguousarray(_swap01(flat, swap)))


def _first_taps(
    size: int, out: int, kernel: int, stride: int, pad: int, dilation: int, xp: Any
) -> tuple[Any, Any, Any]:
    """Per output position along one dim: the window's first tap at or past the input's start
    (PyTorch steps a start in the padding forward by the dilation), that tap's offset in the
    window, and whether it is inside the input (the window reads something)."""
    start = xp.arange(out, dtype=np.int64) * stride - pad
    steps = xp.maximum(0, -(start // dilation))
    tap = start + steps * dilation
    return tap, steps, (tap < size) & (steps < kernel)


def _relu_then_max_pool(relu: Module, pool: Module, x: Any) -> Tensor | None:
    """``pool(relu(x))`` for :class:`Sequential`'s fused pairs: a 2x2 max pooling of stride 2 of a
    float32/float64 (N, C, H, W) input with even H and W runs as one compiled pass over ``x`` (the
    ReLU's output is never made: measured, a tenth of a small CNN's training step); None otherwise
    (numba not installed, other pooling, other input), and the two layers run as usual.

    The same values and gradients as the two layers: the pooling's winner is the first maximum of
    ``max(x, 0)`` in scan order (or its last NaN), and the gradient reaches it unless that maximum
    is 0 (ReLU's gradient is 0 where its output is 0 and passes at a NaN, as PyTorch's)."""
    assert isinstance(pool, MaxPool2d)
    if not isinstance(x, Tensor) or x.ndim != 4 or x.dtype not in (np.float32, np.float64):
        return None
    if pool.return_indices or pool.ceil_mode or x.shape[2] % 2 or x.shape[3] % 2:
        return None
    args = _pool_args(pool.kernel_size, pool.stride, pool.padding, pool.dilation, 2, "max_pool2d")
    if args != ((2, 2), (2, 2), (0, 0), (1, 1)):
        return None
    swap = _channel_major(x.array)
    native = x.array.transpose(1, 0, 2, 3) if swap else x.array
    jit = _jit.kernels_at(native.size, JIT_POOL_MIN_SIZE, native)
    if jit is None:
        return None
    out, at = jit.relu_max_pool_2x2(native)
    return record_op(_swap01(out, swap), (x,), _max_pool_2x2_vjp, (jit, at, swap))


def _swap01(a: np.ndarray, swap: bool) -> np.ndarray:
    """``a`` with its first two axes swapped (a view) when ``swap``."""
    return a.transpose(1, 0, 2, 3) if swap else a


def _first_max_mask(stacked: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Boolean (kh*kw, N, C, OH, OW): True at the one element of each window that gets the gradient.

    PyTorch's rule: the first maximum in scan order (ties are common after a ReLU), or, in a
    window holding NaN, the last NaN.
    """
    if type(stacked) is not np.ndarray:
        return _first_max_mask_by_index(stacked)
    mask = stacked == out
    taken = mask[0].copy()
    for offset in range(1, len(mask)):
        np.greater(mask[offset], taken, out=mask[offset])  # for booleans a > b is "a and not b"
        np.logical_or(taken, mask[offset], out=taken)
    nan_windows = np.isnan(out)
    # On the host, the NaN pass is skipped when there is no NaN; a device array is not asked
    # (the answer would cost a device->host synchronisation), the pass runs and changes nothing.
    if type(nan_windows) is not np.ndarray or nan_windows.any():
        mask &= ~nan_windows
        seen = np.zeros_like(nan_windows)
        for offset in range(len(mask) - 1, -1, -1):
            last = np.isnan(stacked[offset]) & nan_windows & ~seen
            mask[offset] |= last
            seen |= last
    return mask


def _first_max_mask_by_index(stacked: Any) -> Any:
    """:func:`_first_max_mask` in seven array operations whatever the window's size, for device
    arrays: on a GPU each operation is a kernel launch that costs the host ~10 us, and the host
    version's passes per window element would be 6*kh*kw of them."""
    xp = namespace_of(stacked)
    k = len(stacked)
    nan = np.isnan(stacked)
    last_nan = (k - 1) - nan[::-1].argmax(axis=0)
    winner = np.where(nan.any(axis=0), last_nan, stacked.argmax(axis=0))
    return xp.arange(k).reshape((k,) + (1,) * (stacked.ndim - 1)) == winner


def first_max_last(x: Tensor) -> Tensor:
    """The maximum over the last axis whose gradient goes to one element, as in PyTorch's max
    pooling: the first maximum, or the last NaN when there is one (an even split among ties, what
    ``amax`` does, is not torch's rule for pooling). The pooling that is built from smaller ones
    (3-D from 2-D slices, adaptive 2-D from rows then columns) reduces its last stage with it, so
    the winner is the first in window order overall."""
    a = x.array
    xp = namespace_of(a)
    k = a.shape[-1]
    nan = a != a
    last_nan = (k - 1) - nan[..., ::-1].argmax(axis=-1)
    winner = xp.where(nan.any(axis=-1), last_nan, a.argmax(axis=-1))
    mask = xp.arange(k) == winner[..., None]
    return record_op(a.max(axis=-1, keepdims=False).reshape(a.shape[:-1]), (x,), _first_max_last_vjp, mask)


def _first_max_last_vjp(g, y, args, saved, needs, xp):
    # link_input: under create_graph the input's ancestors get a zero gradient, not None (torch's
    # double backward of max pooling)
    return (link_input(xp.where(saved, xp.expand_dims(g, -1), 0.0), args[0]),)


def _windows_to_logical(per_window: Any, swap: bool) -> Any:
    """A (K, A, B, OH, OW) array of per-window-element values in the pooled memory layout as
    (N, C, K, OH*OW), the order ``fold`` reads its columns in."""
    logical = per_window.transpose(2, 1, 0, 3, 4) if swap else per_window.transpose(1, 2, 0, 3, 4)
    n, c, k, oh, ow = logical.shape
    return logical.reshape(n, c, k, oh * ow)


def _pool_vjp_recorded(g: Any, factor: Any, x_shape: Any, k: Any, s: Any, d: Any, pads: Any) -> Any:
    """A pooling's input gradient as recorded tensor ops (``create_graph=True``), so it can be
    differentiated again (a gradient penalty through a pooling layer): each window's output gradient
    times ``factor`` (the winner mask, or the average's scale), summed back into the image by ``fold``.
    The gradient is linear in ``g`` with a fixed ``factor``, as PyTorch's double backward takes it."""
    from .fold import fold

    n, c, h, w = x_shape
    top, bottom, left, right = pads
    oh, ow = g.shape[2], g.shape[3]
    spread = g.reshape(n, c, 1, oh * ow)
    # a boolean factor (max pooling's winners) selects, as torch: a product with the 0/1 mask would
    # make an inf or NaN gradient NaN at the window's other elements (inf * 0)
    spread = ops.where(factor, spread, 0.0) if factor.dtype == np.bool_ else spread * factor
    cols = spread.reshape(n, c * k[0] * k[1], oh * ow)
    padded = fold(cols, (h + top + bottom, w + left + right), k, d, 0, s)
    return padded[:, :, top : top + h, left : left + w]


def _max_pool2d_vjp(g, y, args, saved, needs, xp):
    if xp.differentiable:
        first, pads, k, (s, d, _), swap = saved
        mask = _windows_to_logical(first, swap)
        return (link_input(_pool_vjp_recorded(g, mask, args[0].shape, k, s, d, pads), args[0]),)
    first, (top, bottom, left, right), k, geometry, swap = saved
    a, b, h, w = _swap01(args[0], swap).shape
    grad = _workspace.take(first.shape, g.dtype, g)
    _winner_gradients(first, _swap01(g, swap), grad)
    gxp = _scatter_windows(grad, (a, b, h + top + bottom, w + left + right), k, geometry)
    _workspace.give(grad)
    return (_swap01(gxp[:, :, top : top + h, left : left + w], swap),)


def _winner_gradients(first: Any, g: Any, out: Any) -> None:
    """``out`` = each window's gradient ``g`` at its winner (``first``) and 0 elsewhere, as torch's
    selection: g times the 0/1 mask would make an inf or NaN gradient NaN at the window's other
    elements (inf * 0). The product is exact for a finite g and 7x faster than copyto(where=), so a
    host g is checked first (a pass over the output, a 40th of the product's time)."""
    if type(g) is np.ndarray and np.isfinite(g).all():  # host: on a device the check would synchronise
        np.multiply(first, g, out=out)
        return
    out.fill(0)
    np.copyto(out, g, where=first)


def _max_pool_2x2_vjp(g, y, args, saved, needs, xp):
    jit, at, swap = saved
    if xp.differentiable:  # at: each window's winner, 0..3 in scan order, 4 for none (a fused ReLU's 0)
        first = at[None] == np.arange(4, dtype=at.dtype).reshape(4, 1, 1, 1, 1)  # host: the compiled path's arrays
        mask = _windows_to_logical(first, swap)
        return (link_input(_pool_vjp_recorded(g, mask, args[0].shape, (2, 2), (2, 2), (1, 1), (0, 0, 0, 0)), args[0]),)
    return (_swap01(jit.max_unpool_2x2(_swap01(g, swap), at), swap),)


def _avg_divisor(size: int, kernel: int, stride: int, pad: int, out: int, count_include_pad: bool, xp: Any = np) -> Any:
    """Per output position, how many elements the window's average divides by (PyTorch's rule),
    as an array of namespace ``xp``."""
    start = xp.arange(out) * stride - pad
    end = np.minimum(start + kernel, size + pad)
    if count_include_pad:
        return end - start
    return np.minimum(end, size) - np.maximum(start, 0)


def avg_pool2d(
    input: Tensor,
    kernel_size: IntOr2,
    stride: IntOr2 | None = None,
    padding: IntOr2 = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> Tensor:
    """Mean of each window (PyTorch's ``avg_pool2d``); ``stride`` defaults to the kernel.

    ``count_include_pad=False`` divides by the number of real (non-padding) elements.

    Example:
        >>> import downslope as ds
        >>> from downslope.nn.functional import avg_pool2d
        >>> avg_pool2d(ds.arange(16.0).reshape(1, 1, 4, 4), 2)
        tensor([[[[ 2.5,  4.5],
                  [10.5, 12.5]]]])
    """
    where = "avg_pool2d"
    x = _as_tensor(input, where)
    _check_pooled_dtype(x, where, "int64")
    x, unbatched = _batched(x, 2, where)
    k, s, p, _ = _pool_args(kernel_size, stride, padding, 1, 2, where)
    if x.array.dtype.kind != "f":
        out = _integer_average(
            lambda t, o: _avg_pool2d(t, k, s, p, ceil_mode, count_include_pad, o, where), x, divisor_override
        )
    elif (
        _long_tiling_windows(x, k, s, p, None, TILED_ROWS_AVG_MIN_ELEMENTS, 4)
        and x.array.dtype != np.float16
        and _valid_divisor(divisor_override)
    ):
        out = _tiled_avg_pool(x, k, divisor_override)
    else:
        out = _avg_pool2d(x, k, s, p, ceil_mode, count_include_pad, divisor_override, where)
    return ops.squeeze(out, 0) if unbatched else out


def _valid_divisor(divisor_override: Any) -> bool:
    """Whether ``divisor_override`` is None or one the pooling takes (others go on to its error)."""
    if divisor_override is None:
        return True
    return not isinstance(divisor_override, bool) and isinstance(divisor_override, int) and divisor_override != 0


def avg_pool1d(
    input: Tensor,
    kernel_size: IntOr2,
    stride: IntOr2 | None = None,
    padding: IntOr2 = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
) -> Tensor:
    """Mean of each window of a ``(N, C, L)`` or ``(C, L)`` signal (PyTorch's ``avg_pool1d``).

    Example:
        >>> import downslope as ds
        >>> from downslope.nn.functional import avg_pool1d
        >>> avg_pool1d(ds.tensor([[[1.0, 3.0, 2.0, 0.0]]]), 2)
        tensor([[[2., 1.]]])
    """
    where = "avg_pool1d"
    x = _as_tensor(input, where)
    _check_pooled_dtype(x, where, "int64")
    x, unbatched = _batched(x, 1, where)
    k, s, p, _ = _pool_args(kernel_size, stride, padding, 1, 1, where)

    def pool(t: Tensor, override: Any) -> Tensor:
        return _avg_pool2d(
            ops.unsqueeze(t, 2), (1,) + k, (1,) + s, (0,) + p, ceil_mode, count_include_pad, override, where
        )

    long_rows = _long_tiling_windows(x, k, s, p, None, TILED_ARGMAX_MIN_KERNEL, TILED_ARGMAX_MIN_KERNEL)
    if x.array.dtype.kind == "f" and x.array.dtype != np.float16 and long_rows:
        out = _tiled_avg_pool(x, k, None)
        return ops.squeeze(out, 0) if unbatched else out
    if (
        x.array.dtype.kind == "f"
        and x.array.dtype != np.float16
        and type(x.array) is np.ndarray
        and x.array.size
        and s == k
        and p == (0,)
        and k[0] >= TILED_SUM_MIN_KERNEL
        and x.shape[2] % k[0] == 0
    ):
        out = _tiled_avg_last(x, k[0])
        return ops.squeeze(out, 0) if unbatched else out
    out = _integer_average(pool, x, None) if x.array.dtype.kind != "f" else pool(x, None)
    out = ops.squeeze(out, 2)
    return ops.squeeze(out, 0) if unbatched else out


def _avg_pool2d(
    x: Tensor, k: Any, s: Any, p: Any, ceil_mode: bool, count_include_pad: bool, divisor_override: Any, where: str
) -> Tensor:
    n, c, h, w = x.shape
    oh, extra_h = _pool_geometry(h, k[0], s[0], p[0], 1, ceil_mode, where)
    ow, extra_w = _pool_geometry(w, k[1], s[1], p[1], 1, ceil_mode, where)
    pads = (p[0], p[0] + extra_h, p[1], p[1] + extra_w)
    swap = _channel_major(x.array)  # pooled in its memory layout, as in max pooling
    xp, borrowed = _borrow_padded(_swap01(x.array, swap), pads)
    geometry = (s, (1, 1), (oh, ow))
    stacked = _stacked_windows(xp, k, geometry)
    _give_padded(xp, borrowed)
    ns = namespace_of(stacked)
    half = stacked.dtype == np.float16
    out: Any
    if half:  # summed and scaled in float32, rounded once, as torch's kernel: two 60000s overflow float16
        out = np.sum(stacked, axis=0, dtype=np.float32)
    else:
        out = np.sum(stacked, axis=0, out=_workspace.lend(stacked.shape[1:], stacked.dtype, stacked))
    _workspace.give(stacked)
    if divisor_override is not None:
        if isinstance(divisor_override, bool) or not isinstance(divisor_override, int) or divisor_override == 0:
            raise InvalidValueError(f"{where}: divisor_override must be a non-zero int, got {divisor_override!r}")
        scale: Any = out.dtype.type(1.0 / divisor_override)
    else:
        rows = _avg_divisor(h, k[0], s[0], p[0], oh, count_include_pad, ns)
        cols = _avg_divisor(w, k[1], s[1], p[1], ow, count_include_pad, ns)
        scale = (1.0 / (rows[:, None] * cols[None, :])).astype(out.dtype)
    out *= scale
    if half:
        out, scale = out.astype(np.float16), scale.astype(np.float16)  # the gradient's scale as before: float16
    return record_op(_swap01(out, swap), (x,), _avg_pool2d_vjp, (scale, pads, k, geometry, swap))


def _avg_pool2d_vjp(g, y, args, saved, needs, xp):
    if xp.differentiable:
        scale, pads, k, (s, d, (oh, ow)), _ = saved
        ns = namespace_of(args[0].array)
        factor = ns.asarray(scale, dtype=args[0].dtype).reshape(1, 1, 1, -1)  # one per window (or one for all)
        factor = ns.broadcast_to(factor, (1, 1, k[0] * k[1], oh * ow))  # the same for each element of a window
        return (_pool_vjp_recorded(g, factor, args[0].shape, k, s, d, pads),)
    scale, (top, bottom, left, right), k, geometry, swap = saved
    a, b, h, w = _swap01(args[0], swap).shape
    share = _swap01(g, swap) * scale
    grad = np.broadcast_to(share, (k[0] * k[1],) + share.shape)
    gxp = _scatter_windows(grad, (a, b, h + top + bottom, w + left + right), k, geometry)
    return (_swap01(gxp[:, :, top : top + h, left : left + w], swap),)


def _adaptive_matrix(size: int, out: int, dtype: np.dtype, xp: Any = np) -> Any:
    """(out, size) averaging matrix of namespace ``xp``: row i averages
    x[floor(i*size/out) : ceil((i+1)*size/out)]."""
    i = xp.arange(out)
    start = (i * size) // out
    end = -((-(i + 1) * size) // out)
    j = xp.arange(size)
    inside = (j >= start[:, None]) & (j < end[:, None])
    return (inside / (end - start)[:, None]).astype(dtype)


def _adaptive_sizes(output_size: Any, sizes: tuple[int, ...], where: str) -> tuple[int, ...]:
    n = len(sizes)
    _check_non_empty(sizes, where)
    if isinstance(output_size, (int, np.integer)) and not isinstance(output_size, bool):
        raw: tuple[Any, ...] = (int(output_size),) * n
    elif isinstance(output_size, Sequence) and len(output_size) == n:
        raw = tuple(output_size)
    else:
        raise ArgumentTypeError(
            f"{where}: output_size must be an int or a tuple of {n} ints (or None), got {output_size!r}"
        )
    out = tuple(s if o is None else int(o) for o, s in zip(raw, sizes))
    if any(o < 0 for o in out):  # 0 is allowed: an empty output, as torch
        raise ArgumentError(f"{where}: elements of output_size must be greater than or equal to 0, got {output_size!r}")
    return out


def _check_non_empty(sizes: tuple[int, ...], where: str) -> None:
    """torch's check: an empty spatial dim leaves the adaptive windows without elements."""
    if 0 in sizes:
        raise ShapeError(
            f"{where}: expected input to have non-zero size for non-batch dimensions, got spatial sizes {sizes}"
        )


def _adaptive_avg_last(x: Tensor, out: int, checked: bool = True) -> Tensor:
    """Adaptive average over the last axis of ``x``. Overlapping windows are one product with the
    averaging matrix (BLAS) on finite host data; with a NaN or inf that product's 0 * inf would spread
    it to windows that never read it, so each window's own sum is taken then, divided by its length
    (torch's kernel), and always on a device (whose data are not checked). ``checked=False``: the
    caller checks the host result itself (a NaN or inf in it means the input had one)."""
    size = x.shape[-1]
    if out == size:
        return x
    if out == 0:
        return x[..., :0]
    if size % out == 0:  # equal, non-overlapping windows: a reshape and a mean
        return ops.mean(ops.reshape(x, x.shape[:-1] + (out, size // out)), axis=-1)

    def product() -> Tensor:
        return ops.matmul(x, wrap_array(_adaptive_matrix(size, out, x.dtype, namespace_of(x.array)).T))

    def taps() -> Tensor:
        windows, count = adaptive_windows(size, out)
        return tap_sum(x, x.ndim - 1, windows, None, count, count)

    if not checked and type(x.array) is np.ndarray:  # host: the caller checks the result
        return product()
    return matrix_or_taps(x, size, out, product, taps)


def adaptive_avg_pool2d(input: Tensor, output_size: Any) -> Tensor:
    """Average pooling to a fixed ``output_size`` (PyTorch's ``adaptive_avg_pool2d``).

    Output cell i covers input rows ``floor(i*H/OH)`` up to ``ceil((i+1)*H/OH)`` (windows may
    overlap when H is not a multiple of OH); ``None`` in ``output_size`` keeps that size.

    Example:
        >>> import downslope as ds
        >>> from downslope.nn.functional import adaptive_avg_pool2d
        >>> adaptive_avg_pool2d(ds.arange(16.0).reshape(1, 1, 4, 4), 1)
        tensor([[[[7.5]]]])
    """
    where = "adaptive_avg_pool2d"
    x = _as_tensor(input, where)
    _check_floating(x, where)
    x, unbatched = _batched(x, 2, where)
    oh, ow = _adaptive_sizes(output_size, x.shape[2:], where)
    # Separable: pool the width, then the height (as the width of the transposed image).
    out = _adaptive_avg_last(x, ow, checked=False)
    out = ops.transpose(_adaptive_avg_last(ops.transpose(out, 2, 3), oh, checked=False), 2, 3)
    if type(out.array) is np.ndarray and 0 not in out.shape and not host_finite(out.array):  # host: checked
        # an inf or NaN (from the input: the averaging products spread it over whole rows; or a row's
        # sum that overflowed): summed again as torch sums, the whole window in order, so only the
        # windows that read it get it, and overflows and inf - inf give torch's inf or NaN
        out = adaptive_mean_2d(x, oh, ow)
    if not out.array.flags.c_contiguous:  # the pooled image is small: laid out in order, as PyTorch's
        out = ops.clone(out)  # (so view(N, -1), is_contiguous() and stride() answer as there)
    return ops.squeeze(out, 0) if unbatched else out


def adaptive_avg_pool1d(input: Tensor, output_size: Any) -> Tensor:
    """Average pooling of a ``(N, C, L)`` or ``(C, L)`` signal to length ``output_size``.

    Example:
        >>> import downslope as ds
        >>> from downslope.nn.functional import adaptive_avg_pool1d
        >>> adaptive_avg_pool1d(ds.tensor([[[1.0, 2.0, 3.0, 4.0, 5.0]]]), 2)
        tensor([[[2., 4.]]])
    """
    where = "adaptive_avg_pool1d"
    x = _as_tensor(input, where)
    _check_floating(x, where)
    x, unbatched = _batched(x, 1, where)
    (out_len,) = _adaptive_sizes(
        output_size if not isinstance(output_size, int) else (output_size,), x.shape[2:], where
    )
    out = _adaptive_avg_last(x, out_len)
    return ops.squeeze(out, 0) if unbatched else out


# ---------------------------------------------------------------------- modules
class _MaxPoolNd(Module):
    def __init__(
        self,
        kernel_size: Any,
        stride: Any = None,
        padding: Any = 0,
        dilation: Any = 1,
        return_indices: bool = False,
        ceil_mode: bool = False,
    ) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding = padding
        self.dilation = dilation
        self.return_indices = return_indices
        self.ceil_mode = ceil_mode

    def extra_repr(self) -> str:
        return (
            f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
            f"dilation={self.dilation}, ceil_mode={self.ceil_mode}"
        )


class MaxPool2d(_MaxPoolNd):
    """Max over each ``kernel_size`` window of ``(N, C, H, W)`` input (see :func:`max_pool2d`).

    Example:
        >>> import downslope as ds
        >>> ds.nn.MaxPool2d(2)(ds.randn(1, 3, 8, 6)).shape
        downslope.Size([1, 3, 4, 3])
    """

    def forward(self, input: Tensor) -> Any:
        return max_pool2d(
            input, self.kernel_size, self.stride, self.padding, self.dilation, self.ceil_mode, self.return_indices
        )


class MaxPool1d(_MaxPoolNd):
    """Max over each window of ``(N, C, L)`` input (see :func:`max_pool1d`).

    Example:
        >>> import downslope as ds
        >>> ds.nn.MaxPool1d(3, stride=2)(ds.randn(2, 4, 9)).shape
        downslope.Size([2, 4, 4])
    """

    def forward(self, input: Tensor) -> Any:
        return max_pool1d(
            input, self.kernel_size, self.stride, self.padding, self.dilation, self.ceil_mode, self.return_indices
        )


class AvgPool2d(Module):
    """Mean over each ``kernel_size`` window of ``(N, C, H, W)`` input (see :func:`avg_pool2d`).

    Example:
        >>> import downslope as ds
        >>> ds.nn.AvgPool2d(2)(ds.ones(1, 1, 4, 4))
        tensor([[[[1., 1.],
                  [1., 1.]]]])
    """

    def __init__(
        self,
        kernel_size: IntOr2,
        stride: IntOr2 | None = None,
        padding: IntOr2 = 0,
        ceil_mode: bool = False,
        count_include_pad: bool = True,
        divisor_override: int | None = None,
    ) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding = padding
        self.ceil_mode = ceil_mode
        self.count_include_pad = count_include_pad
        self.divisor_override = divisor_override

    def forward(self, input: Tensor) -> Tensor:
        return avg_pool2d(
            input,
            self.kernel_size,
            self.stride,
            self.padding,
            self.ceil_mode,
            self.count_include_pad,
            self.divisor_override,
        )

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AvgPool1d(Module):
    """Mean over each window of ``(N, C, L)`` input (see :func:`avg_pool1d`).

    Example:
        >>> import downslope as ds
        >>> ds.nn.AvgPool1d(2)(ds.tensor([[[1.0, 3.0, 5.0, 7.0]]]))
        tensor([[[2., 6.]]])
    """

    def __init__(
        self,
        kernel_size: IntOr2,
        stride: IntOr2 | None = None,
        padding: IntOr2 = 0,
        ceil_mode: bool = False,
        count_include_pad: bool = True,
    ) -> None:
        super().__init__()
        # PyTorch's AvgPool1d keeps its sizes as 1-tuples (its _single), and shows them so

        def single(v: Any) -> tuple[Any, ...]:  # any iterable as a tuple (a string too), as torch's _single
            return tuple(v) if isinstance(v, Iterable) else (v,)

        self.kernel_size = single(kernel_size)
        self.stride = single(kernel_size if stride is None else stride)
        self.padding = single(padding)
        self.ceil_mode = ceil_mode
        self.count_include_pad = count_include_pad

    def forward(self, input: Tensor) -> Tensor:
        return avg_pool1d(input, self.kernel_size, self.stride, self.padding, self.ceil_mode, self.count_include_pad)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AdaptiveAvgPool2d(Module):
    """Average pooling of ``(N, C, H, W)`` input to ``output_size`` (see :func:`adaptive_avg_pool2d`).

    Example:
        >>> import downslope as ds
        >>> ds.nn.AdaptiveAvgPool2d((2, 3))(ds.randn(4, 5, 7, 9)).shape
        downslope.Size([4, 5, 2, 3])
    """

    def __init__(self, output_size: Any) -> None:
        super().__init__()
        self.output_size = output_size

    def forward(self, input: Tensor) -> Tensor:
        return adaptive_avg_pool2d(input, self.output_size)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class AdaptiveAvgPool1d(Module):
    """Average pooling of ``(N, C, L)`` input to length ``output_size`` (see :func:`adaptive_avg_pool1d`).

    Example:
        >>> import downslope as ds
        >>> ds.nn.AdaptiveAvgPool1d(1)(ds.tensor([[[1.0, 2.0, 6.0]]]))
        tensor([[[3.]]])
    """

    def __init__(self, output_size: Any) -> None:
        super().__init__()
        self.output_size = output_size

    def forward(self, input: Tensor) -> Tensor:
        return adaptive_avg_pool1d(input, self.output_size)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


FUSED_PAIRS[(ReLU, MaxPool2d)] = _relu_then_max_pool
