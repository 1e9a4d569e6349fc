"""Convolution and pooling over 1-D and 2-D signals, with PyTorch's names, arguments and shapes.

Shapes follow PyTorch: 2-D ops take ``(N, C, H, W)`` (or unbatched ``(C, H, W)``), 1-D ops take
``(N, C, L)`` (or ``(C, L)``). The 1-D ops are the 2-D ops on a height-1 image.

How the convolution is computed (one idea, no loop over pixels):

* im2col: the columns ``cols`` of shape ``(C*kh*kw, n*OH*OW)`` hold every receptive field, built
  per kernel offset by one strided copy of the input (zeros where the offset reads the padding).
* forward: ONE matrix product ``W (O, C*kh*kw) @ cols`` (a batched product over groups).
* backward: the weight gradient is one matrix product ``g @ cols.T``; the input gradient is one
  matrix product ``W.T @ g`` followed by a fold: each kernel offset's block is added back where it
  was read from (kh*kw strided adds of whole blocks, no scatter).
* The batch runs in chunks (``CHUNK_BYTES`` of columns at a time, one GEMM per chunk and pass),
  so that the im2col matrix and the input-gradient columns are never built whole; the backward
  pass rebuilds each chunk's columns instead of keeping them from the forward pass. Peak memory
  then stays near the activations', and the chunk's columns are still in cache for its GEMM.
* Layout: the output is the GEMM's ``(C_out, N, OH, OW)`` memory seen as ``(N, C_out, OH, OW)``
  (a view). Pooling and batch norm keep that channel-major layout, and the gradients flow back in
  it, so no layer in a conv-BN-ReLU-pool stack transposes its data.
* Scratch arrays (columns, copies of the gradient, stacked pooling windows) are borrowed from
  ``_workspace`` and reused from step to step.

The convolution is one fused op with its own VJP (the composite of indexing and matmul ops would
materialise one gradient array per kernel offset). Its rule is NumPy-only, so double backward
through a convolution raises a clear error.

Pooling copies the windows once into a contiguous ``(kh*kw, N, C, OH, OW)`` array and reduces over
its first axis (long contiguous rows, which matters on small feature maps); its backward writes
back per kernel offset. Max pooling keeps a boolean mask of each window's winner for the gradient.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import as_strided

from .. import backend, ops
from ..autograd import is_grad_enabled
from ..errors import ArgumentError, ArgumentTypeError, ShapeError, StateError
from ..tensor import Tensor, record_op, wrap_array
from . import _workspace, init
from .module import Module, Parameter

IntOr2 = int | tuple[int, ...]
Padding2 = int | tuple[int, ...] | str

__all__ = [
    "conv1d",
    "conv2d",
    "max_pool1d",
    "max_pool2d",
    "avg_pool1d",
    "avg_pool2d",
    "adaptive_avg_pool1d",
    "adaptive_avg_pool2d",
    "Conv1d",
    "Conv2d",
    "MaxPool1d",
    "MaxPool2d",
    "AvgPool1d",
    "AvgPool2d",
    "AdaptiveAvgPool1d",
    "AdaptiveAvgPool2d",
]


# ---------------------------------------------------------------------- argument handling
def _tuple(value: Any, n: int, name: str, where: str, minimum: int = 1) -> tuple[int, ...]:
    """An int or a length-``n`` sequence of ints, each >= ``minimum``, as a tuple."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        out = (int(value),) * n
    elif isinstance(value, Sequence) and not isinstance(value, str) and len(value) == n:
        out = tuple(int(v) for v in value)
    else:
        raise ArgumentTypeError(f"{where}: {name} must be an int or a tuple of {n} ints, got {value!r}")
    if any(v < minimum for v in out):
        raise ArgumentError(f"{where}: {name} must be >= {minimum}, got {value!r}")
    return out


def _as_tensor(x: Any, where: str) -> Tensor:
    if isinstance(x, Tensor):
        return x
    if isinstance(x, np.ndarray):
        return ops._lift(x)
    raise ArgumentTypeError(f"{where}: expected a Tensor, got {type(x).__name__}")


def _batched(x: Tensor, spatial: int, where: str) -> tuple[Tensor, bool]:
    """``x`` with a batch dim (added if it was unbatched), and whether one was added."""
    if x.ndim == spatial + 2:
        return x, False
    if x.ndim == spatial + 1:
        return ops.unsqueeze(x, 0), True
    dims = "(N, C, L) or (C, L)" if spatial == 1 else "(N, C, H, W) or (C, H, W)"
    raise ShapeError(f"{where}: expected input of shape {dims}, got shape {x.shape}")


def _check_floating(x: Tensor, where: str) -> None:
    if x.array.dtype.kind != "f":
        raise ArgumentTypeError(f"{where}: expected a floating-point input, got {x.dtype}; cast it with .float() first")


def _conv_pads(
    padding: Any, kernel: tuple[int, ...], dilation: tuple[int, ...], stride: tuple[int, ...], where: str
) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) zero padding from an int, a pair, 'valid' or 'same'."""
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0, 0, 0)
        if padding == "same":
            if stride != (1, 1):
                raise ArgumentError(f"{where}: padding='same' needs stride 1 (as in PyTorch), got stride {stride}")
            pads = []
            for k, d in zip(kernel, dilation):
                total = d * (k - 1)
                # An odd total puts the extra row/column after the input, as PyTorch does.
                pads += [total // 2, total - total // 2]
            return (pads[0], pads[1], pads[2], pads[3])
        raise ArgumentError(f"{where}: padding must be an int, a tuple, 'same' or 'valid', got {padding!r}")
    ph, pw = _tuple(padding, 2, "padding", where, minimum=0)
    return (ph, ph, pw, pw)


# ---------------------------------------------------------------------- convolution
def conv2d(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: IntOr2 = 1,
    padding: Padding2 = 0,
    dilation: IntOr2 = 1,
    groups: int = 1,
) -> Tensor:
    """2-D cross-correlation (PyTorch's ``conv2d``).

    Shapes: input ``(N, C_in, H, W)`` or ``(C_in, H, W)``; weight ``(C_out, C_in / groups, kh, kw)``;
    bias ``(C_out,)``; output ``(N, C_out, OH, OW)`` with
    ``OH = (H + pad_top + pad_bottom - dilation * (kh - 1) - 1) // stride + 1``.

    Example:
        >>> import downslope as ds
        >>> from downslope.nn.functional import conv2d
        >>> x = ds.ones(1, 1, 4, 4)
        >>> w = ds.ones(2, 1, 3, 3)
        >>> conv2d(x, w, padding=1)[0, 0]
        tensor([[4., 6., 6., 4.],
                [6., 9., 9., 6.],
                [6., 9., 9., 6.],
                [4., 6., 6., 4.]])
    """
    where = "conv2d"
    x = _as_tensor(input, where)
    w = _as_tensor(weight, where)
    x, unbatched = _batched(x, 2, where)
    out = _conv2d(x, w, bias, stride, padding, dilation, groups, where)
    return ops.squeeze(out, 0) if unbatched else out


def conv1d(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: IntOr2 = 1,
    padding: Padding2 = 0,
    dilation: IntOr2 = 1,
    groups: int = 1,
) -> Tensor:
    """1-D cross-correlation (PyTorch's ``conv1d``), computed as a 2-D one on a height-1 image.

    Shapes: input ``(N, C_in, L)`` or ``(C_in, L)``; weight ``(C_out, C_in / groups, k)``; bias
    ``(C_out,)``; output ``(N, C_out, L_out)``.

    Example:
        >>> import downslope as ds
        >>> from downslope.nn.functional import conv1d
        >>> conv1d(ds.tensor([[[1.0, 2.0, 3.0, 4.0]]]), ds.tensor([[[1.0, -1.0]]]))
        tensor([[[-1., -1., -1.]]])
    """
    where = "conv1d"
    x = _as_tensor(input, where)
    w = _as_tensor(weight, where)
    x, unbatched = _batched(x, 1, where)
    if w.ndim != 3:
        raise ShapeError(f"{where}: expected weight of shape (C_out, C_in / groups, k), got {w.shape}")
    (s,) = _tuple(stride, 1, "stride", where)
    (d,) = _tuple(dilation, 1, "dilation", where)
    p: Any = padding if isinstance(padding, str) else (0, _tuple(padding, 1, "padding", where, minimum=0)[0])
    out = _conv2d(ops.unsqueeze(x, 2), ops.unsqueeze(w, 2), bias, (1, s), p, (1, d), groups, where)
    out = ops.squeeze(out, 2)
    return ops.squeeze(out, 0) if unbatched else out


def _conv2d(
    x: Tensor,
    w: Tensor,
    bias: Tensor | None,
    stride: Any,
    padding: Any,
    dilation: Any,
    groups: int,
    where: str,
) -> Tensor:
    """Validate the arguments of a batched 2-D convolution, then run the fused op."""
    _check_floating(x, where)
    if w.ndim != 4:
        raise ShapeError(f"{where}: expected weight of shape (C_out, C_in / groups, kh, kw), got {w.shape}")
    if w.dtype != x.dtype:
        raise ArgumentTypeError(f"{where}: input dtype {x.dtype} does not match weight dtype {w.dtype}")
    st = _tuple(stride, 2, "stride", where)
    dil = _tuple(dilation, 2, "dilation", where)
    if isinstance(groups, bool) or not isinstance(groups, (int, np.integer)) or groups < 1:
        raise ArgumentError(f"{where}: groups must be a positive int, got {groups!r}")
    c_out, c_per_group, kh, kw = w.shape
    n, c_in, h, wd = x.shape
    if c_out % groups:
        raise ArgumentError(f"{where}: out_channels ({c_out}) must be divisible by groups ({groups})")
    if c_per_group * groups != c_in:
        raise ShapeError(
            f"{where}: input has {c_in} channels but the weight {w.shape} with groups={groups} expects "
            f"{c_per_group * groups} (input shape {x.shape})"
        )
    pads = _conv_pads(padding, (kh, kw), dil, st, where)
    hp, wp = h + pads[0] + pads[1], wd + pads[2] + pads[3]
    oh = (hp - dil[0] * (kh - 1) - 1) // st[0] + 1
    ow = (wp - dil[1] * (kw - 1) - 1) // st[1] + 1
    if oh < 1 or ow < 1:
        raise ShapeError(
            f"{where}: the (padded) input {hp}x{wp} is smaller than the dilated kernel "
            f"{dil[0] * (kh - 1) + 1}x{dil[1] * (kw - 1) + 1} (input shape {x.shape}, weight shape {w.shape})"
        )
    parents: tuple[Tensor, ...] = (x, w)
    if bias is not None:
        b = _as_tensor(bias, where)
        if b.shape != (c_out,):
            raise ShapeError(f"{where}: expected bias of shape ({c_out},), got {b.shape}")
        if b.dtype != x.dtype:
            raise ArgumentTypeError(f"{where}: bias dtype {b.dtype} does not match input dtype {x.dtype}")
        parents = (x, w, b)
    geometry = (st, pads, dil, groups, (oh, ow))
    out = _conv2d_forward(x.array, w.array, None if bias is None else parents[2].array, geometry)
    return record_op(out, parents, _conv2d_vjp, geometry)


def _channel_major(a: np.ndarray) -> bool:
    """Whether (N, C, H, W) ``a`` is laid out as (C, N, H, W) in memory (what a convolution returns)."""
    return a.ndim == 4 and a.shape[0] > 1 and a.transpose(1, 0, 2, 3).flags.c_contiguous


def _borrow_padded(x: np.ndarray, pads: tuple[int, int, int, int], fill: float = 0.0) -> tuple[np.ndarray, bool]:
    """``x`` inside a border of ``fill`` in a borrowed workspace array laid out like ``x`` (N-major or
    C-major); ``(x, False)`` when there is no border, else ``(padded, True)`` (give it back)."""
    if not any(pads):
        return x, False
    top, bottom, left, right = pads
    n, c, h, w = x.shape
    hp, wp = h + top + bottom, w + left + right
    if _channel_major(x):
        out = _workspace.take((c, n, hp, wp), x.dtype).transpose(1, 0, 2, 3)
    else:
        out = _workspace.take((n, c, hp, wp), x.dtype)
    out[:, :, :top] = fill
    out[:, :, top + h :] = fill
    out[:, :, top : top + h, :left] = fill
    out[:, :, top : top + h, left + w :] = fill
    out[:, :, top : top + h, left : left + w] = x
    return out, True


def _give_padded(padded: np.ndarray, borrowed: bool) -> None:
    if borrowed:
        _workspace.give(padded)


# Bytes of im2col columns built at a time. The convolution runs over chunks of the batch so that
# neither the im2col matrix nor the input-gradient columns are ever built whole (tens of MB each
# for a CIFAR-sized layer): peak memory stays near the activations', and a chunk's columns are
# still in cache when its GEMM reads them.
CHUNK_BYTES = 4 * 2**20


def _batch_chunks(n: int, per_image: int) -> list[tuple[int, int]]:
    """Consecutive (start, stop) ranges of the batch, each with at most CHUNK_BYTES of columns."""
    size = max(1, min(n, CHUNK_BYTES // max(1, per_image)))
    return [(start, min(n, start + size)) for start in range(0, n, size)]


def _valid_range(size: int, out: int, stride: int, offset: int) -> tuple[int, int]:
    """The output positions [lo, hi) whose input index ``i*stride + offset`` lies in [0, size)."""
    lo = max(0, -(offset // stride))  # the first i with i*stride + offset >= 0
    hi = min(out, (size - 1 - offset) // stride + 1) if size - 1 - offset >= 0 else 0
    return lo, max(lo, hi)


def _im2col(x: np.ndarray, kernel: tuple[int, int], geometry: Any, out: np.ndarray) -> np.ndarray:
    """Fill ``out`` (C*kh*kw, N*OH*OW) with every receptive field of (N, C, H, W) ``x``; return it.

    Rows (c, p, q), columns (n, i, j): the long (n, i, j) axis is innermost, so the GEMMs that
    read it run over contiguous memory. Built per kernel offset (p, q): one strided copy of the
    input pixels that offset reads, and zeros where it reads the zero padding (no padded copy of
    the input is made).
    """
    (sh, sw), (top, _, left, _), (dh, dw), _, (oh, ow) = geometry
    kh, kw = kernel
    n, c, h, w = x.shape
    blocks = out.reshape(c, kh, kw, n, oh, ow)
    source = x.transpose(1, 0, 2, 3)
    for p in range(kh):
        r0, r1 = _valid_range(h, oh, sh, p * dh - top)
        for q in range(kw):
            c0, c1 = _valid_range(w, ow, sw, q * dw - left)
            block = blocks[:, p, q]
            if r0 >= r1 or c0 >= c1:
                block[...] = 0
                continue
            block[:, :, :r0] = 0
            block[:, :, r1:] = 0
            block[:, :, r0:r1, :c0] = 0
            block[:, :, r0:r1, c1:] = 0
            y0, x0 = r0 * sh + p * dh - top, c0 * sw + q * dw - left
            block[:, :, r0:r1, c0:c1] = source[
                :, :, y0 : y0 + sh * (r1 - r0 - 1) + 1 : sh, x0 : x0 + sw * (c1 - c0 - 1) + 1 : sw
            ]
    return out


def _conv2d_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, geometry: Any) -> np.ndarray:
    groups, (oh, ow) = geometry[3], geometry[4]
    n = x.shape[0]
    c_out, c_per_group, kh, kw = w.shape
    k = c_per_group * kh * kw
    pixels = oh * ow
    out = np.empty((groups, c_out // groups, n * pixels), dtype=x.dtype)
    w_mat = w.reshape(groups, c_out // groups, k)
    chunks = _batch_chunks(n, groups * k * pixels * x.dtype.itemsize)
    buffer = _workspace.take((groups * k * (chunks[0][1] - chunks[0][0]) * pixels,), x.dtype)
    for start, stop in chunks:
        cols = _im2col(x[start:stop], (kh, kw), geometry, buffer[: groups * k * (stop - start) * pixels])
        # One GEMM per chunk, written straight into the chunk's columns of the output.
        np.matmul(w_mat, cols.reshape(groups, k, -1), out=out[:, :, start * pixels : stop * pixels])
    _workspace.give(buffer)
    out = out.reshape(c_out, n * pixels)
    if b is not None:
        out += b[:, None]
    # (C_out, N, OH, OW) memory seen as (N, C_out, OH, OW): a view, no copy. The next layers
    # (batch norm, ReLU, pooling, the next convolution) keep this channel-major layout.
    return out.reshape(c_out, n, oh, ow).transpose(1, 0, 2, 3)


def _conv2d_vjp(g, y, args, saved, needs, xp):  # type: ignore[no-untyped-def]
    if xp.differentiable:
        raise StateError(
            "conv2d/conv1d: double backward (create_graph=True) through a convolution is not supported; "
            "its gradient rule is a fused NumPy kernel"
        )
    geometry = saved
    (sh, sw), pads, (dh, dw), groups, (oh, ow) = geometry
    x, w = args[0], args[1]
    n, c, h, wd = x.shape
    c_out, c_per_group, kh, kw = w.shape
    k = c_per_group * kh * kw
    pixels = oh * ow
    # The output gradient as (groups, C_out / groups, N*OH*OW), matching the forward GEMM; a view
    # when it arrives channel-major (as the layers after a convolution pass it back).
    g_t = g.transpose(1, 0, 2, 3)
    g_buffer = None
    if not g_t.flags.c_contiguous:
        g_buffer = _workspace.take(g_t.shape, g.dtype)
        np.copyto(g_buffer, g_t)
        g_t = g_buffer
    g_mat = g_t.reshape(groups, c_out // groups, n * pixels)
    w_mat = w.reshape(groups, c_out // groups, k)
    gb = g_mat.reshape(c_out, -1).sum(axis=1) if len(args) > 2 and needs[2] else None
    gw = np.zeros((groups, c_out // groups, k), dtype=g.dtype) if needs[1] else None
    gxp = None
    top, bottom, left, right = pads
    if needs[0]:
        # Channel-major, like the output: the previous layers pass it on in that layout.
        gxp = np.zeros((c, n, h + top + bottom, wd + left + right), dtype=g.dtype)
    chunks = _batch_chunks(n, groups * k * pixels * g.dtype.itemsize)
    buffer = _workspace.take((groups * k * (chunks[0][1] - chunks[0][0]) * pixels,), g.dtype)
    for start, stop in chunks:
        g_chunk = g_mat[:, :, start * pixels : stop * pixels]
        cols = buffer[: groups * k * (stop - start) * pixels].reshape(groups, k, -1)
        if gw is not None:
            # The chunk's im2col columns are rebuilt rather than kept from the forward pass.
            _im2col(x[start:stop], (kh, kw), geometry, cols)
            gw += np.matmul(g_chunk, cols.transpose(0, 2, 1))
        if gxp is not None:
            # GEMM, then fold: each kernel offset's block is added back where it was read from
            # (kh*kw strided adds of whole (C, chunk, OH, OW) blocks, no scatter).
            np.matmul(w_mat.transpose(0, 2, 1), g_chunk, out=cols)
            blocks = cols.reshape(c, kh, kw, stop - start, oh, ow)
            target = gxp[:, start:stop]
            for p in range(kh):
                rows = slice(p * dh, p * dh + sh * (oh - 1) + 1, sh)
                for q in range(kw):
                    target[:, :, rows, q * dw : q * dw + sw * (ow - 1) + 1 : sw] += blocks[:, p, q]
    _workspace.give(buffer, g_buffer)
    gx = None if gxp is None else gxp[:, :, top : top + h, left : left + wd].transpose(1, 0, 2, 3)
    gw = None if gw is None else gw.reshape(w.shape)
    return (gx, gw, gb) if len(args) > 2 else (gx, gw)


# ---------------------------------------------------------------------- pooling
def _pool_geometry(
    size: int, kernel: int, stride: int, pad: int, dilation: int, ceil_mode: bool, where: str
) -> tuple[int, int]:
    """(output length, extra padding after the input that ceil_mode's last window needs)."""
    if pad * 2 > kernel:
        raise ArgumentError(
            f"{where}: padding should be at most half of the kernel size, got padding {pad} and kernel {kernel}"
        )
    span = dilation * (kernel - 1) + 1
    numer = size + 2 * pad - span
    if numer < 0:
        raise ShapeError(
            f"{where}: the (padded) input length {size + 2 * pad} is smaller than the (dilated) kernel {span}"
        )
    out = (-(-numer // stride) if ceil_mode else numer // stride) + 1
    # PyTorch's rule: the last window must start inside the input or its left padding.
    if ceil_mode and (out - 1) * stride >= size + pad:
        out -= 1
    extra = max(0, (out - 1) * stride + span - (size + 2 * pad))
    return out, extra


def _pool_args(
    kernel_size: Any, stride: Any, padding: Any, dilation: Any, n: int, where: str
) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    k = _tuple(kernel_size, n, "kernel_size", where)
    s = (
        k
        if stride is None or (isinstance(stride, Sequence) and len(stride) == 0)
        else _tuple(stride, n, "stride", where)
    )
    p = _tuple(padding, n, "padding", where, minimum=0)
    d = _tuple(dilation, n, "dilation", where)
    return k, s, p, d


def _offset_view(a: np.ndarray, p: int, q: int, geometry: Any) -> np.ndarray:
    """The (N, C, OH, OW) block of padded ``a`` read at kernel offset (p, q)."""
    (sh, sw), (dh, dw), (oh, ow) = geometry
    return a[:, :, p * dh : p * dh + sh * (oh - 1) + 1 : sh, q * dw : q * dw + sw * (ow - 1) + 1 : sw]


def _windows_view(a: np.ndarray, k: Any, geometry: Any, writeable: bool = False) -> np.ndarray:
    """A (kh, kw, N, C, OH, OW) strided view of padded ``a``: element [p, q] is the offset-(p, q) block."""
    (sh, sw), (dh, dw), (oh, ow) = geometry
    s_n, s_c, s_h, s_w = a.strides
    shape = (k[0], k[1], a.shape[0], a.shape[1], oh, ow)
    return as_strided(a, shape, (s_h * dh, s_w * dw, s_n, s_c, s_h * sh, s_w * sw), writeable=writeable)


def _stacked_windows(a: np.ndarray, k: Any, geometry: Any) -> np.ndarray:
    """Every window element as one contiguous (kh*kw, N, C, OH, OW) array.

    One strided copy; after it each kernel offset is a contiguous block, so the reductions that
    follow run over long rows. (Working on the strided blocks directly pays NumPy's per-row
    overhead on every op, which dominates on small feature maps.)
    """
    view = _windows_view(a, k, geometry)
    out = _workspace.take((k[0] * k[1],) + view.shape[2:], a.dtype)  # borrowed: give it back
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
    out = np.empty(padded_shape, dtype=grad.dtype) if tiles else np.zeros(padded_shape, dtype=grad.dtype)
    # One pass per kernel offset, each over a whole (N, C, OH, OW) block. (A single assignment into
    # the 6-D strided windows view is 3-4x slower: NumPy then runs its inner loop over the kernel.)
    for offset in range(k[0] * k[1]):
        block = _offset_view(out, offset // k[1], offset % k[1], geometry)
        if overlapping:
            block += grad[offset]
        else:  # every input element belongs to at most one window: a plain copy
            block[...] = grad[offset]
    return out


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
    _check_floating(x, where)
    x, unbatched = _batched(x, 2, where)
    k, s, p, d = _pool_args(kernel_size, stride, padding, dilation, 2, where)
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
    _check_floating(x, where)
    x, unbatched = _batched(x, 1, where)
    k, s, p, d = _pool_args(kernel_size, stride, padding, dilation, 1, where)
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
    xp, borrowed = _borrow_padded(native, pads, fill=-np.inf)
    geometry = (s, d, (oh, ow))
    stacked = _stacked_windows(xp, k, geometry)
    _give_padded(xp, borrowed)
    out = stacked.max(axis=0)  # NaN propagates, as in PyTorch
    track = return_indices or (is_grad_enabled() and x.requires_grad)
    first = _first_max_mask(stacked, out) if track else None
    _workspace.give(stacked)
    result = record_op(_swap01(out, swap), (x,), _max_pool2d_vjp, (first, pads, k, geometry, swap))
    if not return_indices:
        return result, None
    assert first is not None
    offsets = np.arange(k[0] * k[1], dtype=np.int64).reshape(-1, 1, 1, 1, 1)
    winner = (first * offsets).sum(axis=0)  # exactly one True per window
    rows = np.arange(oh)[:, None] * s[0] - p[0] + (winner // k[1]) * d[0]
    cols = np.arange(ow) * s[1] - p[1] + (winner % k[1]) * d[1]
    return result, wrap_array(np.ascontiguousarray(_swap01(rows * w + cols, swap)))


def _swap01(a: np.ndarray, swap: bool) -> np.ndarray:
    """``a`` with its first two axes swapped (a view) when ``swap``."""
    return a.transpose(1, 0, 2, 3) if swap else a


def _first_max_mask(stacked: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Boolean (kh*kw, N, C, OH, OW): True at the one element of each window that gets the gradient.

    PyTorch's rule: the first maximum in scan order (ties are common after a ReLU), or, in a
    window holding NaN, the last NaN.
    """
    mask = stacked == out
    taken = mask[0].copy()
    for offset in range(1, len(mask)):
        np.greater(mask[offset], taken, out=mask[offset])  # for booleans a > b is "a and not b"
        np.logical_or(taken, mask[offset], out=taken)
    nan_windows = np.isnan(out)
    if nan_windows.any():
        mask[:, nan_windows] = False
        seen = np.zeros(out.shape, dtype=bool)
        for offset in range(len(mask) - 1, -1, -1):
            last = np.isnan(stacked[offset]) & nan_windows & ~seen
            mask[offset] |= last
            seen |= last
    return mask


def _max_pool2d_vjp(g, y, args, saved, needs, xp):  # type: ignore[no-untyped-def]
    if xp.differentiable:
        raise StateError("max_pool: double backward (create_graph=True) through max pooling is not supported")
    first, (top, bottom, left, right), k, geometry, swap = saved
    a, b, h, w = _swap01(args[0], swap).shape
    grad = _workspace.take(first.shape, g.dtype)
    np.multiply(first, _swap01(g, swap), out=grad)
    gxp = _scatter_windows(grad, (a, b, h + top + bottom, w + left + right), k, geometry)
    _workspace.give(grad)
    return (_swap01(gxp[:, :, top : top + h, left : left + w], swap),)


def _avg_divisor(size: int, kernel: int, stride: int, pad: int, out: int, count_include_pad: bool) -> np.ndarray:
    """Per output position, how many elements the window's average divides by (PyTorch's rule)."""
    start = np.arange(out) * stride - pad
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
    _check_floating(x, where)
    x, unbatched = _batched(x, 2, where)
    k, s, p, _ = _pool_args(kernel_size, stride, padding, 1, 2, where)
    out = _avg_pool2d(x, k, s, p, ceil_mode, count_include_pad, divisor_override, where)
    return ops.squeeze(out, 0) if unbatched else out


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
    _check_floating(x, where)
    x, unbatched = _batched(x, 1, where)
    k, s, p, _ = _pool_args(kernel_size, stride, padding, 1, 1, where)
    out = _avg_pool2d(ops.unsqueeze(x, 2), (1,) + k, (1,) + s, (0,) + p, ceil_mode, count_include_pad, None, where)
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
    out = stacked.sum(axis=0)
    _workspace.give(stacked)
    if divisor_override is not None:
        if isinstance(divisor_override, bool) or not isinstance(divisor_override, int) or divisor_override == 0:
            raise ArgumentError(f"{where}: divisor_override must be a non-zero int, got {divisor_override!r}")
        scale = np.asarray(1.0 / divisor_override, dtype=out.dtype)
    else:
        rows = _avg_divisor(h, k[0], s[0], p[0], oh, count_include_pad)
        cols = _avg_divisor(w, k[1], s[1], p[1], ow, count_include_pad)
        scale = (1.0 / (rows[:, None] * cols[None, :])).astype(out.dtype)
    out *= scale
    return record_op(_swap01(out, swap), (x,), _avg_pool2d_vjp, (scale, pads, k, geometry, swap))


def _avg_pool2d_vjp(g, y, args, saved, needs, xp):  # type: ignore[no-untyped-def]
    if xp.differentiable:
        raise StateError("avg_pool: double backward (create_graph=True) through average pooling is not supported")
    scale, (top, bottom, left, right), k, geometry, swap = saved
    a, b, h, w = _swap01(args[0], swap).shape
    share = _swap01(g, swap) * scale
    grad = np.broadcast_to(share, (k[0] * k[1],) + share.shape)
    gxp = _scatter_windows(grad, (a, b, h + top + bottom, w + left + right), k, geometry)
    return (_swap01(gxp[:, :, top : top + h, left : left + w], swap),)


def _adaptive_matrix(size: int, out: int, dtype: np.dtype) -> np.ndarray:
    """(out, size) averaging matrix: row i averages x[floor(i*size/out) : ceil((i+1)*size/out)]."""
    i = np.arange(out)
    start = (i * size) // out
    end = -((-(i + 1) * size) // out)
    j = np.arange(size)
    inside = (j >= start[:, None]) & (j < end[:, None])
    return (inside / (end - start)[:, None]).astype(dtype)


def _adaptive_sizes(output_size: Any, sizes: tuple[int, ...], where: str) -> tuple[int, ...]:
    n = len(sizes)
    if isinstance(output_size, (int, np.integer)) and not isinstance(output_size, bool):
        raw: tuple[Any, ...] = (int(output_size),) * n
    elif isinstance(output_size, Sequence) and len(output_size) == n:
        raw = tuple(output_size)
    else:
        raise ArgumentTypeError(
            f"{where}: output_size must be an int or a tuple of {n} ints (or None), got {output_size!r}"
        )
    out = tuple(s if o is None else int(o) for o, s in zip(raw, sizes))
    if any(o < 1 for o in out):
        raise ArgumentError(f"{where}: output_size must be positive, got {output_size!r}")
    return out


def _adaptive_avg_last(x: Tensor, out: int) -> Tensor:
    """Adaptive average over the last axis of ``x``."""
    size = x.shape[-1]
    if out == size:
        return x
    if size % out == 0:  # equal, non-overlapping windows: a reshape and a mean
        return ops.mean(ops.reshape(x, x.shape[:-1] + (out, size // out)), axis=-1)
    return ops.matmul(x, wrap_array(_adaptive_matrix(size, out, x.dtype).T))


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
    out = _adaptive_avg_last(x, ow)
    out = ops.transpose(_adaptive_avg_last(ops.transpose(out, 2, 3), oh), 2, 3)
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
_PADDING_MODES = {"zeros": "constant", "reflect": "reflect", "replicate": "replicate", "circular": "circular"}


class _ConvNd(Module):
    """Shared by Conv1d and Conv2d: parameters, PyTorch's default initialization, argument checks."""

    _spatial = 2

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: IntOr2,
        stride: IntOr2 = 1,
        padding: Padding2 = 0,
        dilation: IntOr2 = 1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        dtype: Any = None,
    ) -> None:
        super().__init__()
        name, n = type(self).__name__, self._spatial
        self.in_channels = _positive(in_channels, "in_channels", name)
        self.out_channels = _positive(out_channels, "out_channels", name)
        self.groups = _positive(groups, "groups", name)
        if self.in_channels % self.groups or self.out_channels % self.groups:
            raise ArgumentError(
                f"{name}: in_channels ({in_channels}) and out_channels ({out_channels}) must both be divisible "
                f"by groups ({groups})"
            )
        self.kernel_size = _tuple(kernel_size, n, "kernel_size", name)
        self.stride = _tuple(stride, n, "stride", name)
        self.dilation = _tuple(dilation, n, "dilation", name)
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ArgumentError(f"{name}: padding must be an int, a tuple, 'same' or 'valid', got {padding!r}")
            if padding == "same" and any(s != 1 for s in self.stride):
                raise ArgumentError(f"{name}: padding='same' needs stride 1 (as in PyTorch), got stride {self.stride}")
            self.padding: Any = padding
        else:
            self.padding = _tuple(padding, n, "padding", name, minimum=0)
        if padding_mode not in _PADDING_MODES:
            raise ArgumentError(f"{name}: padding_mode must be one of {sorted(_PADDING_MODES)}, got {padding_mode!r}")
        self.padding_mode = padding_mode
        dt = backend.get_default_dtype() if dtype is None else backend.as_dtype(dtype)
        shape = (self.out_channels, self.in_channels // self.groups) + self.kernel_size
        self.weight = Parameter(np.empty(shape, dtype=dt), dtype=dt)
        if bias:
            self.bias: Parameter | None = Parameter(np.empty((self.out_channels,), dtype=dt), dtype=dt)
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """PyTorch's default: weight ~ kaiming_uniform(a=sqrt(5)), i.e. U(-1/sqrt(fan_in), 1/sqrt(fan_in)),
        bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)), where fan_in = in_channels / groups * prod(kernel_size)."""
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = self.weight.shape[1] * math.prod(self.kernel_size)
            bound = 1.0 / math.sqrt(fan_in)
            init.uniform_(self.bias, -bound, bound)

    def _check_input(self, x: Any) -> Tensor:
        name, n = type(self).__name__, self._spatial
        if not isinstance(x, Tensor):
            raise ArgumentTypeError(f"{name}: expected a Tensor input, got {type(x).__name__}")
        if x.ndim not in (n + 1, n + 2) or x.shape[-n - 1] != self.in_channels:
            dims = "L" if n == 1 else "H, W"
            raise ShapeError(
                f"{name}({self.in_channels}, {self.out_channels}): expected input of shape "
                f"(N, {self.in_channels}, {dims}) or ({self.in_channels}, {dims}), got {x.shape}"
            )
        return x

    def _mode_padded(self, x: Tensor) -> Tensor:
        """``x`` padded with reflect/replicate/circular values (the conv then runs unpadded)."""
        if self._spatial == 1:
            top, bottom, left, right = _conv_pads(
                self.padding if isinstance(self.padding, str) else (0, self.padding[0]),
                (1,) + self.kernel_size,
                (1,) + self.dilation,
                (1,) + self.stride,
                type(self).__name__,
            )
            return ops.pad(x, (left, right), mode=_PADDING_MODES[self.padding_mode])
        top, bottom, left, right = _conv_pads(
            self.padding, self.kernel_size, self.dilation, self.stride, type(self).__name__
        )
        return ops.pad(x, (left, right, top, bottom), mode=_PADDING_MODES[self.padding_mode])

    def extra_repr(self) -> str:
        n = self._spatial
        text = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0,) * n:
            text += f", padding={self.padding!r}" if isinstance(self.padding, str) else f", padding={self.padding}"
        if self.dilation != (1,) * n:
            text += f", dilation={self.dilation}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        if self.bias is None:
            text += ", bias=False"
        if self.padding_mode != "zeros":
            text += f", padding_mode={self.padding_mode!r}"
        return text


class Conv2d(_ConvNd):
    """2-D convolution layer: ``(N, C_in, H, W)`` -> ``(N, C_out, OH, OW)`` (see :func:`conv2d`).

    weight: ``(C_out, C_in / groups, kh, kw)``, bias: ``(C_out,)``, both initialized as in PyTorch
    (U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with fan_in = C_in / groups * kh * kw). ``padding`` is an
    int, a pair, ``'same'`` or ``'valid'``; ``padding_mode`` is zeros, reflect, replicate or circular.

    Example:
        >>> import downslope as ds
        >>> conv = ds.nn.Conv2d(3, 8, kernel_size=3, padding="same")
        >>> conv(ds.randn(2, 3, 10, 12)).shape
        (2, 8, 10, 12)
    """

    _spatial = 2

    def forward(self, x: Tensor) -> Tensor:
        x = self._check_input(x)
        if self.padding_mode != "zeros":  # padded by mode first, then a plain convolution
            return conv2d(self._mode_padded(x), self.weight, self.bias, self.stride, 0, self.dilation, self.groups)
        return conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)


class Conv1d(_ConvNd):
    """1-D convolution layer: ``(N, C_in, L)`` -> ``(N, C_out, L_out)`` (see :func:`conv1d`).

    weight: ``(C_out, C_in / groups, k)``, bias: ``(C_out,)``, initialized as in PyTorch.

    Example:
        >>> import downslope as ds
        >>> conv = ds.nn.Conv1d(4, 6, kernel_size=3, stride=2)
        >>> conv(ds.randn(2, 4, 11)).shape
        (2, 6, 5)
    """

    _spatial = 1

    def forward(self, x: Tensor) -> Tensor:
        x = self._check_input(x)
        if self.padding_mode != "zeros":  # padded by mode first, then a plain convolution
            return conv1d(self._mode_padded(x), self.weight, self.bias, self.stride, 0, self.dilation, self.groups)
        return conv1d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)


def _positive(value: Any, what: str, owner: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ArgumentError(f"{owner}: {what} must be a positive integer, got {value!r}")
    return int(value)


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
        (1, 3, 4, 3)
    """

    def forward(self, x: Tensor) -> Any:
        return max_pool2d(
            x, self.kernel_size, self.stride, self.padding, self.dilation, self.ceil_mode, self.return_indices
        )


class MaxPool1d(_MaxPoolNd):
    """Max over each window of ``(N, C, L)`` input (see :func:`max_pool1d`).

    Example:
        >>> import downslope as ds
        >>> ds.nn.MaxPool1d(3, stride=2)(ds.randn(2, 4, 9)).shape
        (2, 4, 4)
    """

    def forward(self, x: Tensor) -> Any:
        return max_pool1d(
            x, self.kernel_size, self.stride, self.padding, self.dilation, self.ceil_mode, self.return_indices
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

    def forward(self, x: Tensor) -> Tensor:
        return avg_pool2d(
            x,
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
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding = padding
        self.ceil_mode = ceil_mode
        self.count_include_pad = count_include_pad

    def forward(self, x: Tensor) -> Tensor:
        return avg_pool1d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode, self.count_include_pad)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AdaptiveAvgPool2d(Module):
    """Average pooling of ``(N, C, H, W)`` input to ``output_size`` (see :func:`adaptive_avg_pool2d`).

    Example:
        >>> import downslope as ds
        >>> ds.nn.AdaptiveAvgPool2d((2, 3))(ds.randn(4, 5, 7, 9)).shape
        (4, 5, 2, 3)
    """

    def __init__(self, output_size: Any) -> None:
        super().__init__()
        self.output_size = output_size

    def forward(self, x: Tensor) -> Tensor:
        return adaptive_avg_pool2d(x, self.output_size)

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

    def forward(self, x: Tensor) -> Tensor:
        return adaptive_avg_pool1d(x, self.output_size)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"
