"""The convolution's NumPy kernels: im2col, the forward GEMM, and the gradient rule.

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
* Scratch arrays (columns, copies of the gradient, padded inputs) are borrowed from
  ``_workspace`` and reused from step to step.

With the ``jit`` extra (numba) installed, stride-1 3x3 convolutions with at least
``WINOGRAD_MIN_CHANNELS`` (8) input and output channels (a single image: from 3 input channels) run
as Winograd F(2x2, 3x3) instead (the compiled tile transforms of ``_jit_kernels`` around 16 batched
GEMMs with 2.25x fewer multiply-adds);
:func:`conv2d_forward` picks the method and records it for the gradient rule. Depthwise convolutions
(groups = C_in) run on the compiled direct kernels of ``_jit_kernels`` (kh*kw multiply-adds per
output are too few for a GEMM), as do other stride-1 grouped ones with at most
``GROUPED_MAX_CHANNELS`` (32) channels a group (im2col's GEMMs would have C_out / groups rows), and
a layer reuses its Winograd weight transform while the weight's bytes are unchanged
(:func:`_transformed_weight`). Stride-1 layers with at most 8 output channels take their gradients
(and, up to 4, their output) from the compiled direct kernels too. Whatever is installed, a 1x1
stride-1 convolution is one GEMM over the input's pixels (no im2col, no fold), a kernel as large as
its unpadded input (one output pixel: DCGAN's discriminator head) is one GEMM over the images as rows
(see the section "kernel covering the input"), and a stride-1 1-D
convolution (Conv1d) with at least ``SHIFTED_MIN_CHANNELS`` channels each way is kw GEMMs per pass
over the padded input shifted tap by tap (no im2col, no fold; see the section "1-D convolution as
shifted GEMMs").

Every array is made in the input's namespace (``namespace_of(x)``), so the im2col path runs on
CuPy (or the strict stand-in) unchanged; the Winograd path is compiled for host arrays and runs
only on ``numpy.ndarray`` inputs.

The rule is a fused array kernel; under ``create_graph=True`` (double backward, as a gradient
penalty needs) it is recomputed from recorded ops instead (``unfold``, products, ``fold``).

Example:
    >>> import numpy as np
    >>> from downslope.nn._conv_kernels import _conv2d_forward
    >>> geometry = ((1, 1), (0, 0, 0, 0), (1, 1), 1, (1, 1))  # stride, pads, dilation, groups, (OH, OW)
    >>> _conv2d_forward(np.ones((1, 1, 2, 2), np.float32), np.ones((1, 1, 2, 2), np.float32), None, geometry)
    array([[[[4.]]]], dtype=float32)
"""

from __future__ import annotations

import math
import weakref
from collections import OrderedDict
from typing import Any

import numpy as np

from .. import gemm
from .. import parallel as _parallel
from .. import workspace as _workspace
from ..backend import namespace_of
from ..errors import StateError
from . import _jit


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
        out = _workspace.take((c, n, hp, wp), x.dtype, x).transpose(1, 0, 2, 3)
    else:
        out = _workspace.take((n, c, hp, wp), x.dtype, x)
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
# still in cache when its GEMM reads them. oneDNN's GEMM packs copies of its operands as large as
# a chunk's columns: 2 MiB chunks keep those small (measured on the CIFAR CNN without the compiled
# kernels: 8 MB less peak memory than 4 MiB chunks) at the same speed.
CHUNK_BYTES = 2 * 2**20
# On a device (a GPU) every array operation is a kernel launch that costs the host ~10 us whatever its
# size, and caches of a few MB do not matter: the batch runs in one chunk unless its columns pass
# this size (a batch of 256 28x28 images through a 32->64 3x3 layer has 58 MB of them).
DEVICE_CHUNK_BYTES = 512 * 2**20
# A 1-D convolution (a height-1 image: Conv1d) has long, thin GEMMs per image; larger chunks run
# fewer and wider ones (measured, Conv1d(64, 64, 7) on 32 x 512 samples, forward and backward on one
# thread: 7% faster with 8 MiB than with 2 MiB).
CHUNK_BYTES_1D = 8 * 2**20


def _batch_chunks(n: int, per_image: int, like: Any = None, one_d: bool = False) -> list[tuple[int, int]]:
    """Consecutive (start, stop) ranges of the batch, each with at most CHUNK_BYTES of columns
    (CHUNK_BYTES_1D for a 1-D convolution, DEVICE_CHUNK_BYTES when ``like`` is a device array)."""
    limit = (
        (CHUNK_BYTES_1D if one_d else CHUNK_BYTES) if like is None or type(like) is np.ndarray else DEVICE_CHUNK_BYTES
    )
    size = max(1, min(n, limit // max(1, per_image)))
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
    if type(x) is not np.ndarray:
        return _im2col_strided(x, kernel, geometry, out)
    (sh, sw), (top, bottom, left, right), (dh, dw), _, (oh, ow) = geometry
    kh, kw = kernel
    n, c, h, w = x.shape
    # The view reads only inside the padded copy: a geometry whose fields pass its bottom or right
    # border (conv_transpose's, which pads there only what it needs) keeps the loop's clipping.
    inside = (oh - 1) * sh + (kh - 1) * dh < h + top + bottom and (ow - 1) * sw + (kw - 1) * dw < w + left + right
    if c * n * oh * ow <= IM2COL_VIEW_MAX_BLOCK and inside:
        return _im2col_view(x, kernel, geometry, out)
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


#: Host im2col builds whose per-offset blocks (C*N*OH*OW values) are at most this many copy all the
#: receptive fields at once from a padded copy of the input (:func:`_im2col_view`): there the loop's
#: ~5 NumPy calls per kernel offset cost more than the copying (one thread, AMD EPYC, medians: the
#: LeNet layers at batch 1, 1->6 5x5 pad 2 and 6->16 5x5, 100 -> 16 and 101 -> 12 us; 32->32 5x5
#: pad 2 on 4 15x15 images 378 -> 279 us). Larger blocks keep the loop: one strided copy of 3x3
#: fields from 16 64-channel 16x16 images took 4.1 ms against the loop's 2.3 ms.
IM2COL_VIEW_MAX_BLOCK = 32_768


def _im2col_view(x: np.ndarray, kernel: tuple[int, int], geometry: Any, out: np.ndarray) -> np.ndarray:
    """:func:`_im2col` for a small host input: the input copied into a zero border (a borrowed
    workspace array), then ONE copy of a strided view of its receptive fields into ``out``."""
    (sh, sw), pads, (dh, dw), _, (oh, ow) = geometry
    kh, kw = kernel
    n, c, h, w = x.shape
    padded, borrowed = _borrow_padded(x, pads)
    s_n, s_c, s_h, s_w = padded.strides
    fields = np.lib.stride_tricks.as_strided(
        padded,
        shape=(c, kh, kw, n, oh, ow),
        strides=(s_c, s_h * dh, s_w * dw, s_n, s_h * sh, s_w * sw),
        writeable=False,
    )
    np.copyto(out.reshape(c, kh, kw, n, oh, ow), fields)
    _give_padded(padded, borrowed)
    return out


def _im2col_strided(x: Any, kernel: tuple[int, int], geometry: Any, out: Any) -> Any:
    """:func:`_im2col` for device arrays, in three operations whatever the kernel's size: a zero-padded
    copy of the input, a strided view of its receptive fields, one copy of that view into ``out``.
    (The host version's per-offset copies would be 5*kh*kw kernel launches on a GPU.)"""
    (sh, sw), (top, bottom, left, right), (dh, dw), _, (oh, ow) = geometry
    kh, kw = kernel
    n, c, h, w = x.shape
    xp = namespace_of(x)
    padded = xp.zeros((c, n, h + top + bottom, w + left + right), dtype=x.dtype)
    padded[:, :, top : top + h, left : left + w] = x.transpose(1, 0, 2, 3)
    s_c, s_n, s_h, s_w = padded.strides
    fields = xp.lib.stride_tricks.as_strided(
        padded, shape=(c, kh, kw, n, oh, ow), strides=(s_c, s_h * dh, s_w * dw, s_n, s_h * sh, s_w * sw)
    )
    out.reshape(c, kh, kw, n, oh, ow)[...] = fields
    return out


def conv2d_forward(
    x: np.ndarray, w: np.ndarray, b: np.ndarray | None, geometry: Any, reuse_weight: bool = False
) -> tuple[np.ndarray, Any]:
    """The convolution's output and what its gradient rule (:func:`_conv2d_vjp`) needs: Winograd
    when the compiled kernels are installed and the layer suits it, a direct depthwise kernel for
    a depthwise layer, else im2col. ``reuse_weight`` (the weight is a layer's own array, passed
    again on later calls) lets Winograd reuse the transformed weight of an earlier call while the
    weight's values are the same (see :func:`_transformed_weight`)."""
    if _is_pointwise(x, w, geometry):
        return _pointwise_forward(x, w, b), (geometry, ("pointwise",))
    if _is_covering(x, w, geometry):
        return _covering_forward(x, w, b), (geometry, ("covering",))
    if _is_shifted(x, w, geometry):
        # the gradient rule needs nothing from the forward pass: each pass takes the faster method
        shifted = w.shape[1] >= SHIFTED_FORWARD_MIN_IN
        y = _shifted_forward(x, w, b, geometry) if shifted else _conv2d_forward(x, w, b, geometry)
        return y, (geometry, ("shifted",))
    jit = _winograd_jit(x, w, geometry)
    if jit is not None:
        u = _transformed_weight(jit, w) if reuse_weight else jit.winograd_weight(w)  # kept for the input gradient
        return _winograd_forward(jit, x, u, b, geometry), (geometry, ("winograd", jit, u))
    chosen = _depthwise_jit(x, w, b, geometry)
    if chosen is not None:
        jit, plan = chosen
        layout = (geometry[4], plan)
        return _depthwise_forward(jit, x, w, b, layout), (geometry, ("depthwise", jit, layout))
    jit = _grouped_jit(x, w, b, geometry)
    if jit is not None:
        return _grouped_forward(jit, x, w, b, geometry), (geometry, ("grouped", jit))
    jit = _narrow_jit(x, w, b, geometry)
    if jit is not None:
        forward = _narrow_forward(jit, x, w, b, geometry) if w.shape[0] <= NARROW_MAX_OUT else None
        if forward is None:  # the GEMM's forward is faster here, the direct gradients still are
            forward = _conv2d_forward(x, w, b, geometry)
        return forward, (geometry, ("narrow", jit))
    return _conv2d_forward(x, w, b, geometry), (geometry, None)


def _conv2d_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, geometry: Any) -> np.ndarray:
    groups, (oh, ow) = geometry[3], geometry[4]
    n = x.shape[0]
    c_out, c_per_group, kh, kw = w.shape
    k = c_per_group * kh * kw
    pixels = oh * ow
    out = _workspace.lend((groups, c_out // groups, n * pixels), x.dtype, x)
    w_mat = w.reshape(groups, c_out // groups, k)

    def work(lo: int, hi: int) -> None:
        if hi <= lo:  # an empty batch (N = 0): nothing to compute
            return
        chunks = _batch_chunks(hi - lo, groups * k * pixels * x.dtype.itemsize, x, oh == 1 and kh == 1)
        buffer = _workspace.take((groups * k * (chunks[0][1] - chunks[0][0]) * pixels,), x.dtype, x)
        for start, stop in ((lo + a, lo + b) for a, b in chunks):
            cols = _im2col(x[start:stop], (kh, kw), geometry, buffer[: groups * k * (stop - start) * pixels])
            # One GEMM per chunk, written straight into the chunk's columns of the output; one group as a
            # 2-D product: the same oneDNN call without the stacked form's broadcasting (8 us of a small
            # layer's 70 us at batch 1)
            if groups == 1:
                gemm.matmul(w_mat[0], cols.reshape(k, -1), out[0, :, start * pixels : stop * pixels])
            else:
                gemm.matmul(w_mat, cols.reshape(groups, k, -1), out[:, :, start * pixels : stop * pixels])
        _workspace.give(buffer)

    _parallel.over_parts(x, n, c_out * k * n * pixels // _parallel.MULTIPLY_ADDS_PER_NS, work)
    out = out.reshape(c_out, n * pixels)
    if b is not None:
        out += b[:, None]
    # (C_out, N, OH, OW) memory seen as (N, C_out, OH, OW): a view, no copy. The next layers
    # (batch norm, ReLU, pooling, the next convolution) keep this channel-major layout.
    return out.reshape(c_out, n, oh, ow).transpose(1, 0, 2, 3)


def _conv2d_vjp(g, y, args, saved, needs, xp):
    if xp.differentiable:
        return _conv2d_vjp_recorded(g, args, saved[0], needs)
    geometry, method = saved
    if method is not None and method[0] == "winograd":
        return _winograd_vjp(method[1], method[2], g, args, geometry, needs)
    if method is not None and method[0] == "depthwise":
        return _depthwise_vjp(method[1], g, args, method[2], needs)
    if method is not None and method[0] == "pointwise":
        return _pointwise_vjp(g, args, needs)
    if method is not None and method[0] == "covering":
        return _covering_vjp(g, args, needs)
    if method is not None and method[0] == "shifted":
        return _shifted_vjp(g, args, geometry, needs)
    if method is not None and method[0] == "grouped":
        return _grouped_vjp(method[1], g, args, geometry, needs)
    if method is not None and method[0] == "narrow":
        return _narrow_vjp(method[1], g, args, geometry, needs)
    return _im2col_vjp(g, args, geometry, needs)


def _conv2d_vjp_recorded(g: Any, args: Any, geometry: Any, needs: Any) -> tuple[Any, ...]:
    """The convolution's gradients as recorded tensor ops (``create_graph=True``), so they can be
    differentiated again, as a gradient penalty (WGAN-GP) does: the weight gradient a batched
    product with the input as columns (``unfold``), the input gradient a transposed convolution
    (or, for padding conv_transpose2d cannot express, the product with the weight folded back by
    ``fold``, unfold's adjoint). Slower than the fused kernels, which the plain backward keeps."""
    from ..ops import pad
    from .fold import fold, unfold

    st, (top, bottom, left, right), dil, groups, (oh, ow) = geometry
    x, w = args[0], args[1]
    n, c, h, wd = x.shape
    c_out, c_per_group, kh, kw = w.shape
    k = c_per_group * kh * kw
    g_mat = g.reshape(n, groups, c_out // groups, oh * ow)
    grads: list[Any] = [None] * len(args)
    if needs[1]:
        padded = pad(x, (left, right, top, bottom)) if top or bottom or left or right else x
        cols = unfold(padded, (kh, kw), dil, 0, st).reshape(n, groups, k, oh * ow)
        grads[1] = (g_mat @ cols.transpose(-1, -2)).sum(0).reshape(w.shape)
    # The input gradient is the transposed convolution of g by the same weight (one fused op whose
    # own rule is fused too, so a gradient penalty's second backward runs no unfold, fold or
    # per-image product); the extra rows and columns a stride leaves over are its output_padding.
    # Asymmetric padding ('same' with an even kernel) takes the composite below.
    extra = (
        h + top + bottom - ((oh - 1) * st[0] + dil[0] * (kh - 1) + 1),
        wd + left + right - ((ow - 1) * st[1] + dil[1] * (kw - 1) + 1),
    )
    fits = all(0 <= e < max(s, d) for e, s, d in zip(extra, st, dil))
    if needs[0] and fits and top == bottom and left == right:
        from .conv_transpose import conv_transpose2d

        grads[0] = conv_transpose2d(g, w, None, st, (top, left), extra, groups, dil).contiguous()
    elif needs[0]:
        w_mat = w.reshape(groups, c_out // groups, k)
        d_cols = (w_mat.transpose(-1, -2) @ g_mat).reshape(n, c * kh * kw, oh * ow)
        d_padded = fold(d_cols, (h + top + bottom, wd + left + right), (kh, kw), dil, 0, st)
        # contiguous, as torch's input gradient is: WGAN-GP's grads.view(N, -1) must work
        grads[0] = d_padded[:, :, top : top + h, left : left + wd].contiguous()
    if len(args) > 2 and needs[2]:
        grads[2] = g.sum((0, 2, 3))
    return tuple(grads)


#: The weight gradient of an im2col convolution whose fields have fewer values than this (C*kh*kw)
#: reads them as rows built by the compiled kernel (``g @ rows``, see :func:`_im2col_vjp`); larger
#: fields take :func:`_im2col`'s columns (``cols @ g.T``), which it builds 3-7x faster than the
#: rows kernel scatters rows, while oneDNN runs that product about as fast as ``g @ rows`` there.
#: Measured (one thread, AMD EPYC, forward and backward, medians, machine under load): Conv2d(6, 16, 5)
#: on 64 14x14 images 15.2 -> 10.9 ms, Conv2d(16, 32, 4, 2, 1) on 64 14x14 13.4 -> 8.8-12.3 ms,
#: Conv2d(32, 64, 5, padding=2) on 32 15x15 even; smaller fields lose: Conv2d(3, 32, 3, padding=1)
#: on 64 32x32 (27 values) 30 -> 37-45 ms, Conv2d(3, 32, 5, padding=2) (75) 28 -> 30-32 ms.
WEIGHT_GRADIENT_ROWS_MAX_K = 128
#: Weight gradients of at least this many elements (C_out * C*kh*kw) are made in the weight's own
#: layout (``g @ cols.T``) rather than transposed (``cols @ g.T``, returned as a view): adding a
#: transposed gradient of that size into ``.grad`` (or copying it there) crosses cache lines at
#: every element. Measured (one thread): Conv2d(1024, 1024, (5, 1)) on (1, 1024, 4, 2), the
#: accumulation 116 ms against 0.8 ms, the product 1.6 ms either way; 512 -> 512 3x3 on 4x4, 25 ms
#: against 0.16 ms; 64 x 576 (below this), 0.02 ms either way.
WEIGHT_GRADIENT_DIRECT_MIN = 2**18


def _im2col_vjp(g: np.ndarray, args: Any, geometry: Any, needs: Any) -> tuple[np.ndarray | None, ...]:
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
        g_buffer = _workspace.take(g_t.shape, g.dtype, g)
        np.copyto(g_buffer, g_t)
        g_t = g_buffer
    g_mat = g_t.reshape(groups, c_out // groups, n * pixels)
    w_mat = w.reshape(groups, c_out // groups, k)
    # With the compiled kernels, the weight gradient reads the receptive fields one per row (the
    # transpose of the columns): oneDNN's GEMM runs ``g (C_out, P) @ rows (P, K)`` 3.6x faster than
    # ``g @ cols.T`` when both operands run along the long pixel axis P (measured, one thread, the
    # 3->32 CIFAR layer: 0.6 ms vs 2.2 ms). Not for a 1-D convolution (kh = OH = 1), whose columns
    # are rows of the input with an offset: the columns' copies are faster to make than the rows
    # kernel's scattered writes (Conv1d(64, 64, 7) on 32 x 512 samples: 10% faster step).
    one_d = oh == 1 and kh == 1
    jit = _jit.kernels_at(g.size * k, JIT_CONV_MIN_MACS, x, g) if groups == 1 else None
    gb = None
    if len(args) > 2 and needs[2]:  # summed in float64 (as the Winograd path does): a float32 sum of
        # many gradients that cancel lost up to 1e-4 of the result against PyTorch's
        g_rows = g_mat.reshape(c_out, -1)
        if jit is not None:  # one compiled pass instead of NumPy's buffered float64 casts (4x faster)
            gb = jit.add_row_sums(g_rows, np.zeros(c_out, dtype=np.float64)).astype(g.dtype)  # host: jit path
        else:
            gb = g_rows.sum(axis=1, dtype=np.float64).astype(g.dtype)
    gxp = None
    top, bottom, left, right = pads
    if needs[0]:
        # Channel-major, like the output: the previous layers pass it on in that layout.
        gxp = _workspace.lend_zeros((c, n, h + top + bottom, wd + left + right), g.dtype, g)

    from_rows = jit is not None and not one_d and k < WEIGHT_GRADIENT_ROWS_MAX_K
    direct = not from_rows and (c_out // groups) * k >= WEIGHT_GRADIENT_DIRECT_MIN

    def work(lo: int, hi: int) -> Any:
        """The input gradient of images [lo, hi) and their part of the weight gradient."""
        xp = namespace_of(g)
        gw = None
        if needs[1] and (from_rows or direct):
            gw = xp.zeros((groups, c_out // groups, k), dtype=g.dtype)
        elif needs[1]:  # accumulated transposed: cols @ g.T (see below), returned as a view
            gw = xp.zeros((groups, k, c_out // groups), dtype=g.dtype).transpose(0, 2, 1)
        if hi <= lo:  # an empty batch (N = 0): no input gradient, a zero weight gradient
            return gw
        chunks = _batch_chunks(hi - lo, groups * k * pixels * g.dtype.itemsize, g, one_d)
        buffer = _workspace.take((groups * k * (chunks[0][1] - chunks[0][0]) * pixels,), g.dtype, g)
        for start, stop in ((lo + a, lo + b) for a, b in chunks):
            g_chunk = g_mat[:, :, start * pixels : stop * pixels]
            cols = buffer[: groups * k * (stop - start) * pixels].reshape(groups, k, -1)
            if gw is not None and from_rows and jit is not None:
                rows = buffer[: k * (stop - start) * pixels].reshape(-1, k)
                jit.im2col_rows(x[start:stop], (sh, sw, dh, dw, pads[0], pads[2], oh, ow), (kh, kw), rows)
                gemm.matmul(g_chunk[0], rows, gw[0], accumulate=True)
            elif gw is not None and direct:
                _im2col(x[start:stop], (kh, kw), geometry, cols)
                gemm.matmul(g_chunk, cols.transpose(0, 2, 1), gw, accumulate=True)
            elif gw is not None:
                # The chunk's im2col columns are rebuilt rather than kept from the forward pass.
                _im2col(x[start:stop], (kh, kw), geometry, cols)
                gemm.matmul(cols, g_chunk.transpose(0, 2, 1), gw.transpose(0, 2, 1), accumulate=True)
            if gxp is not None:
                # GEMM, then fold: each kernel offset's block is added back where it was read from
                # (kh*kw strided adds of whole (C, chunk, OH, OW) blocks, no scatter).
                gemm.matmul(w_mat.transpose(0, 2, 1), g_chunk, cols)
                target = gxp[:, start:stop]
                if jit is not None and not one_d:  # one compiled pass, the same sums
                    jit.col2im_add(cols.reshape(c * kh * kw, -1), target, (kh, kw), (sh, sw, dh, dw, oh, ow))
                    continue
                blocks = cols.reshape(c, kh, kw, stop - start, oh, ow)
                for p in range(kh):
                    rows = slice(p * dh, p * dh + sh * (oh - 1) + 1, sh)
                    for q in range(kw):
                        target[:, :, rows, q * dw : q * dw + sw * (ow - 1) + 1 : sw] += blocks[:, p, q]
        _workspace.give(buffer)
        return gw

    passes = int(needs[0]) + int(needs[1])
    parts = _parallel.over_parts(x, n, passes * c_out * k * n * pixels // _parallel.MULTIPLY_ADDS_PER_NS, work)
    _workspace.give(g_buffer)
    gw = parts[0]
    for more in parts[1:]:
        gw += more
    gx = None if gxp is None else gxp[:, :, top : top + h, left : left + wd].transpose(1, 0, 2, 3)
    gw = None if gw is None else gw.reshape(w.shape)
    return (gx, gw, gb) if len(args) > 2 else (gx, gw)


# ---------------------------------------------------------------------- 1x1 (pointwise) convolution
def _is_pointwise(x: np.ndarray, w: np.ndarray, geometry: Any) -> bool:
    """Whether this is a 1x1 convolution with stride 1, no padding and one group: a plain matrix
    product ``W (C_out, C_in) @ x (C_in, N*H*W)`` with no im2col (whose columns would be a copy of
    the input) and no fold."""
    stride, pads, _, groups, _ = geometry
    return w.shape[2:] == (1, 1) and stride == (1, 1) and not any(pads) and groups == 1 and x.shape[0] > 0


def _pixel_columns(x: np.ndarray) -> tuple[Any, bool]:
    """(N, C, H, W) ``x`` as (C, N, H*W): a view when ``x`` is channel-major (as a convolution, batch
    norm or ReLU returns it), else a borrowed copy; and whether it was borrowed (give it back)."""
    n, c, h, wd = x.shape
    cm = x.transpose(1, 0, 2, 3)
    if cm.flags.c_contiguous:
        return cm.reshape(c, n, h * wd), False
    out = _workspace.take((c, n, h, wd), x.dtype, x)
    out[...] = cm
    return out.reshape(c, n, h * wd), True


def _pointwise_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray | None) -> np.ndarray:
    """The 1x1 convolution as one GEMM per part of the batch, written into the channel-major output."""
    n, c, h, wd = x.shape
    c_out, pixels = w.shape[0], h * wd
    w_mat = w.reshape(c_out, c)
    out = _workspace.lend((c_out, n, pixels), x.dtype, x)
    if x.transpose(1, 0, 2, 3).flags.c_contiguous:  # channel-major (or one image): (C, N*H*W) columns

        def work(lo: int, hi: int) -> None:
            x_cols = x.transpose(1, 0, 2, 3).reshape(c, n, pixels)[:, lo:hi].reshape(c, -1)
            gemm.matmul(w_mat, x_cols, out[:, lo:hi].reshape(c_out, -1))

    else:  # N-major (a network's input): one product per image, each into its columns of the output
        x_images = x.reshape(n, c, pixels)  # a view when contiguous

        def work(lo: int, hi: int) -> None:
            gemm.matmul(w_mat, x_images[lo:hi], out[:, lo:hi].transpose(1, 0, 2))

    _parallel.over_parts(x, n, c_out * c * n * pixels // _parallel.MULTIPLY_ADDS_PER_NS, work)
    if b is not None:
        out += b[:, None, None]
    return out.reshape(c_out, n, h, wd).transpose(1, 0, 2, 3)


def _pointwise_vjp(g: np.ndarray, args: Any, needs: Any) -> tuple[np.ndarray | None, ...]:
    """The 1x1 convolution's gradients: ``gw = g @ x^T`` and ``gx = W^T @ g`` over (C, N*H*W)
    columns, the input gradient channel-major (the layout the layers before pass back)."""
    x, w = args[0], args[1]
    n, c, h, wd = x.shape
    c_out, pixels = w.shape[0], h * wd
    g_cols, g_borrowed = _pixel_columns(g)
    gb = _bias_gradient(g_cols.reshape(c_out, -1), g) if len(args) > 2 and needs[2] else None
    x_cols, x_borrowed = _pixel_columns(x) if needs[1] else (g_cols, False)  # (g_cols: unused then)
    gx = _workspace.lend((c, n, pixels), g.dtype, g) if needs[0] else None
    w_mat = w.reshape(c_out, c)

    def work(lo: int, hi: int) -> Any:
        gw = namespace_of(g).zeros((c_out, c), dtype=g.dtype) if needs[1] else None
        g_part = g_cols[:, lo:hi].reshape(c_out, -1)
        if gw is not None:
            gemm.matmul(g_part, x_cols[:, lo:hi].reshape(c, -1).T, gw)
        if gx is not None:
            gemm.matmul(w_mat.T, g_part, gx[:, lo:hi].reshape(c, -1))
        return gw

    passes = int(needs[0]) + int(needs[1])
    parts = _parallel.over_parts(x, n, passes * c_out * c * n * pixels // _parallel.MULTIPLY_ADDS_PER_NS, work)
    if g_borrowed:
        _workspace.give(g_cols)
    if x_borrowed:
        _workspace.give(x_cols)
    gw = parts[0]
    for more in parts[1:]:
        gw += more
    grads = (
        None if gx is None else gx.reshape(c, n, h, wd).transpose(1, 0, 2, 3),
        None if gw is None else gw.reshape(w.shape),
    )
    return grads + (gb,) if len(args) > 2 else grads


# ---------------------------------------------------------------------- kernel covering the input
# A kernel as large as its unpadded input (DCGAN's discriminator head Conv2d(512, 1, 4) on 4x4 maps,
# the "convolution as a fully connected layer" idiom, a 1x1 kernel with a stride on 1x1 maps) reads
# every input value once for its single output pixel: the convolution is the product of the weight
# (C_out, C*H*W) with the images as rows (N, C*H*W). One GEMM per pass, no im2col (whose columns
# would be a copy of the input), no fold; with one output channel the input gradient is an outer
# product (one broadcast multiply, where a GEMM of inner dimension 1 is slow). Measured (one thread,
# forward and backward of Conv2d(512, 1, 4) on 32 4x4 maps, ms): 3.8 on the compiled narrow-output
# kernels, whose per-pixel loops suit large maps, against torch's 1.4.
def _is_covering(x: np.ndarray, w: np.ndarray, geometry: Any) -> bool:
    """Whether the kernel covers the whole unpadded input (one output pixel, any stride; a larger
    dilation leaves no room for such a kernel) in one group: a plain matrix product."""
    _, pads, _, groups, out_hw = geometry
    return out_hw == (1, 1) and x.shape[2:] == w.shape[2:] and not any(pads) and groups == 1 and x.shape[0] > 0


def _image_rows(x: np.ndarray) -> np.ndarray:
    """(N, C, H, W) ``x`` as (N, C*H*W) rows: a view when N-major, else a contiguous copy (one pass
    over the input, a fraction of the GEMM that reads it)."""
    return namespace_of(x).ascontiguousarray(x).reshape(x.shape[0], -1)


def _covering_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray | None) -> np.ndarray:
    """``W (C_out, K) @ rows.T`` written into the channel-major (C_out, N) output."""
    n, c_out = x.shape[0], w.shape[0]
    out = _workspace.lend((c_out, n), x.dtype, x)
    gemm.matmul(w.reshape(c_out, -1), _image_rows(x).T, out)
    if b is not None:
        out += b[:, None]
    return out.reshape(c_out, n, 1, 1).transpose(1, 0, 2, 3)


def _covering_vjp(g: np.ndarray, args: Any, needs: Any) -> tuple[np.ndarray | None, ...]:
    """``gw = g (C_out, N) @ rows`` and ``gx = g.T @ W``, the input gradient in the input's layout
    (channel-major when the input was, as the layers before pass it back)."""
    x, w = args[0], args[1]
    n, c, h, wd = x.shape
    c_out = w.shape[0]
    xp = namespace_of(g)
    g_cols = xp.ascontiguousarray(g.reshape(n, c_out).T)  # (C_out, N); a free view when channel-major
    gb = _bias_gradient(g_cols, g) if len(args) > 2 and needs[2] else None
    gw = None
    if needs[1]:
        gw = _workspace.lend((c_out, c * h * wd), g.dtype, g)
        gemm.matmul(g_cols, _image_rows(x), gw)
        gw = gw.reshape(w.shape)
    gx = None
    if needs[0]:
        channel_major = _channel_major(x)
        gx = _workspace.lend((c, n, h, wd) if channel_major else (n, c, h, wd), g.dtype, g)
        target = gx.transpose(1, 0, 2, 3) if channel_major else gx  # (N, C, H, W) either way
        if c_out == 1:  # an outer product of the output gradient with the weight
            xp.multiply(g_cols.reshape(n, 1, 1, 1), w, out=target)
        elif channel_major:  # one GEMM per input channel would be C thin ones: one GEMM, one copy
            target[...] = gemm.matmul(g_cols.T, w.reshape(c_out, -1)).reshape(n, c, h, wd)
        else:
            gemm.matmul(g_cols.T, w.reshape(c_out, -1), gx.reshape(n, -1))
        gx = target
    grads = (gx, gw)
    return grads + (gb,) if len(args) > 2 else grads


def _bias_gradient_of(g: np.ndarray, c_out: int, args: Any, needs: Any) -> np.ndarray | None:
    """The bias's gradient (the output gradient summed over every pixel of each channel), or None when
    the layer has no bias or it is not wanted."""
    if len(args) <= 2 or not needs[2]:
        return None
    g_cols, borrowed = _pixel_columns(g)
    gb = _bias_gradient(g_cols.reshape(c_out, -1), g)
    if borrowed:
        _workspace.give(g_cols)
    return gb


#: The fewest output-gradient elements whose bias gradient takes the compiled row sums (below it NumPy,
#: even once a larger call loaded the kernels: ``_jit.kernels_at``): below it they save under 15 us a call (8 x 6,272: 2.5 vs 15 us;
#: 16 x 1,568: 1.7 vs 8.6 us; one thread, float32, shared two-core AMD EPYC, best of 5).
JIT_BIAS_GRADIENT_MIN_SIZE = 65_536


def _bias_gradient(g_rows: np.ndarray, g: np.ndarray) -> np.ndarray:
    """The bias gradient: each row of (C_out, N*OH*OW) ``g_rows`` summed in float64 (as the Winograd
    path does: a float32 sum of many gradients that cancel lost up to 1e-4 of the result against
    PyTorch's)."""
    c_out = g_rows.shape[0]
    jit = _jit.kernels_at(g_rows.size, JIT_BIAS_GRADIENT_MIN_SIZE, g_rows)
    if jit is not None:  # one compiled pass instead of NumPy's buffered float64 casts (4x faster)
        return jit.add_row_sums(g_rows, np.zeros(c_out, dtype=np.float64)).astype(g.dtype)  # host: jit path
    return g_rows.sum(axis=1, dtype=np.float64).astype(g.dtype)


# ---------------------------------------------------------------------- the compiled paths' size gate
#: The fewest multiply-adds (N*C_out*OH*OW * C_in/groups*kh*kw) for which a process starts the compiled
#: convolution kernels (Winograd, few output channels, the weight gradient's rows; see
#: ``_jit.kernels_at``: below it NumPy, even once a larger call loaded the kernels). They are as fast as im2col or faster at
#: every size measured, but below this they save at most ~0.3 ms a call (forward and backward), while
#: starting them costs a process 0.4-1 s (numba's import and the kernels' cache load): thousands of
#: calls to repay. Measured on a shared two-core AMD EPYC, one thread, float32, medians, forward and
#: backward, compiled vs NumPy, 3x3 kernels, padding 1: Conv2d(1, 8) on 1 / 8 / 64 28x28 images (56k /
#: 452k / 3.6M multiply-adds) 105 vs 143 / 244 vs 339 / 1416 vs 1548 us; Conv2d(8, 16) on 1 / 8 / 16
#: 14x14 (226k / 1.8M / 3.6M) 137 vs 172 / 349 vs 472 / 540 vs 853 us; Conv2d(3, 8) on 8 32x32 (1.8M)
#: 477 vs 751 us; Conv2d(32, 64) on 1 / 8 8x8 (1.2M / 9.4M) 189 vs 333 / 512 vs 962 us; Conv2d(16, 4)
#: on 8 28x28 (3.6M) 748 vs 1714 us. Forward alone the few-outputs kernel and im2col are even.
JIT_CONV_MIN_MACS = 1 << 21


def _multiply_adds(x: np.ndarray, w: np.ndarray, geometry: Any) -> int:
    """N*C_out*OH*OW * C_in/groups*kh*kw: the multiply-adds of convolving ``x`` with ``w`` in ``geometry``."""
    oh, ow = geometry[4]
    return int(x.shape[0] * oh * ow) * int(w.size)


# ---------------------------------------------------------------------- few output channels (compiled path)
# At most this many output channels: the compiled direct kernels of ``_jit_kernels`` instead of
# im2col, whose GEMMs would have as few rows. Measured on one thread, 3x3 kernels (ms, direct vs
# im2col): 16 -> 1 on 64 28x28 images, forward 0.44 vs 2.26, forward and backward 1.9 vs 12.9;
# 16 -> 4: 1.41 vs 2.30 and 5.2 vs 12.9; 64 -> 8 on 32 16x16 images: 2.36 vs 1.92 and 6.6 vs 11.4;
# 8 -> 16 on 64 28x28 images: 2.47 vs 1.69 and 9.2 vs 8.7. The gradients pay up to 8 outputs,
# the forward pass up to 4.
NARROW_MAX_OUT = 4
NARROW_BACKWARD_MAX_OUT = 8


def _narrow_jit(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, geometry: Any) -> Any:
    """The compiled kernels when this stride-1 convolution has so few output channels that they
    compute its gradients directly (and, up to NARROW_MAX_OUT, its output; one group), else None."""
    if geometry[0] != (1, 1) or geometry[3] != 1 or w.shape[0] > NARROW_BACKWARD_MAX_OUT or x.shape[0] == 0:
        return None
    return _jit.kernels_at(_multiply_adds(x, w, geometry), JIT_CONV_MIN_MACS, x, w, b)  # host arrays only


def _narrow_geometry(geometry: Any) -> tuple[int, ...]:
    _, (top, _, left, _), (dh, dw), _, (oh, ow) = geometry
    return dh, dw, top, left, oh, ow


def _narrow_forward(jit: Any, x: np.ndarray, w: np.ndarray, b: np.ndarray | None, geometry: Any) -> np.ndarray:
    n, (oh, ow) = x.shape[0], geometry[4]
    y = _workspace.lend((w.shape[0], n, oh, ow), x.dtype).transpose(1, 0, 2, 3)  # channel-major, as im2col's
    flat = _narrow_geometry(geometry)
    _parallel.over_parts(
        x, n, w.size * n * oh * ow // _parallel.MULTIPLY_ADDS_PER_NS,
        lambda lo, hi: jit.narrow_forward(x[lo:hi], w, b, y[lo:hi], flat) if hi > lo else None,
    )  # fmt: skip
    return y


def _narrow_vjp(jit: Any, g: np.ndarray, args: Any, geometry: Any, needs: Any) -> tuple[np.ndarray | None, ...]:
    x, w = args[0], args[1]
    n, c, h, wd = x.shape
    c_out = w.shape[0]
    gb = _bias_gradient_of(g, c_out, args, needs)
    gx = _workspace.lend((c, n, h, wd), g.dtype).transpose(1, 0, 2, 3) if needs[0] else None  # channel-major
    need_gw = bool(needs[1])  # host: needs holds Python flags (host-only kernel)
    flat = _narrow_geometry(geometry)

    def work(lo: int, hi: int) -> Any:
        if hi <= lo:
            return None
        return jit.narrow_backward(x[lo:hi], g[lo:hi], w, None if gx is None else gx[lo:hi], need_gw, flat)

    passes = int(needs[0]) + int(needs[1])
    parts = _parallel.over_parts(x, n, passes * w.size * g[0, 0].size * n // _parallel.MULTIPLY_ADDS_PER_NS, work)
    gw = None
    if need_gw:
        gw = sum(part for part in parts if part is not None).astype(g.dtype)
    grads = (gx, gw)
    return grads + (gb,) if len(args) > 2 else grads


# ---------------------------------------------------------------------- depthwise (compiled path)
def _depthwise_jit(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, geometry: Any) -> Any:
    """(the compiled kernels, their plan) when this is a depthwise convolution (one input channel per
    group, any channel multiplier) that they compute directly; else None."""
    (sh, sw), (top, _, left, _), (dh, dw), groups, out_hw = geometry
    if groups == 1 or w.shape[1] != 1 or groups != x.shape[1] or x.shape[0] == 0:
        return None
    jit = _jit.kernels(x, w, b)  # compiled for host arrays: NumPy inputs only
    if jit is None:
        return None
    layout = jit.depthwise_layout(
        x.shape[2], x.shape[3], out_hw, w.shape[2:], (sh, sw), (dh, dw), top, left, x.dtype
    )  # None for padding as wide as the input: im2col then
    return None if layout is None else (jit, layout)


def _depthwise_forward(jit: Any, x: np.ndarray, w: np.ndarray, b: np.ndarray | None, layout: Any) -> np.ndarray:
    """``layout``: (the output's (OH, OW), the kernels' plan from ``depthwise_layout``)."""
    n, (oh, ow) = x.shape[0], layout[0]
    out = _workspace.lend((w.shape[0], n, oh, ow), x.dtype)  # channel-major, as the im2col path returns
    jit.depthwise_forward(x, w, b, out, layout[1])
    return out.transpose(1, 0, 2, 3)


def _depthwise_vjp(jit: Any, g: np.ndarray, args: Any, layout: Any, needs: Any) -> tuple[np.ndarray | None, ...]:
    x, w = args[0], args[1]
    if g.dtype != x.dtype:
        # the kernels' plan is made for the input's dtype and reads g's memory as that dtype
        g = g.astype(x.dtype)
    n, c, h, wd = x.shape
    need_gb = len(args) > 2 and bool(needs[2])  # host: needs holds Python flags (host-only kernel)
    gx = None
    if needs[0] and _channel_major(x):  # in the input's layout: channel-major for the layer before
        gx = _workspace.lend((c, n, h, wd), g.dtype).transpose(1, 0, 2, 3)
    elif needs[0]:  # an N-major input (a leaf: its .grad is this array, no transposing copy)
        gx = np.empty((n, c, h, wd), dtype=g.dtype)  # host: host-only kernel
    need_gw = bool(needs[1])  # host: needs holds Python flags (host-only kernel)
    gw, gb = jit.depthwise_backward(x, g, w, gx, need_gw, need_gb, layout[1])
    grads = (
        gx,
        None if gw is None else gw.astype(g.dtype).reshape(w.shape),
    )
    return grads + ((None if gb is None else gb.astype(g.dtype)),) if len(args) > 2 else grads


# ---------------------------------------------------------------------- grouped (compiled path)
# Grouped stride-1 layers with at most this many channels per group each way (ResNeXt's 32 groups of 4
# to 8; not depthwise, which has kernels of its own) run on the compiled direct kernels of
# ``_jit_kernels`` (see ``grouped_forward`` there): im2col's columns cost as much as a dense layer's,
# for GEMMs of only C_out / groups rows. Measured on one thread (2-core machine under load, medians),
# 16 images, 3x3, padding 1, ms direct vs im2col, forward / forward and backward: 128 channels in 32
# groups 32x32 4.9 vs 13.6 / 18.2 vs 50.4 (PyTorch 6.6 / 49.7); 256 in 16 groups 16x16 7.1 vs 12.7 /
# 23.7 vs 50.3; 256 in 8 groups (32 a group) 12.3 vs 13.5 / 41.5 vs 62.8; 64 a group is even (128 in 2
# groups 16x16 12.9 vs 11.7 / 43.4 vs 48.2).
GROUPED_MAX_CHANNELS = 32


def _grouped_jit(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, geometry: Any) -> Any:
    """The compiled kernels when they compute this grouped stride-1 convolution directly, else None.
    The input gradient runs the same kernel over the output gradient padded by (k - 1)*dilation - pad
    (with the kernels flipped), so each pad is at most (k - 1)*dilation, as 'same' padding is."""
    stride, (top, bottom, left, right), (dh, dw), groups, (oh, ow) = geometry
    c_out, cg, kh, kw = w.shape
    n, _, h, wd = x.shape
    if groups == 1 or stride != (1, 1) or n == 0 or not 2 <= cg <= GROUPED_MAX_CHANNELS:
        return None
    if c_out // groups > GROUPED_MAX_CHANNELS or max(top, bottom) > (kh - 1) * dh or max(left, right) > (kw - 1) * dw:
        return None
    if (oh, ow) != (h + top + bottom - (kh - 1) * dh, wd + left + right - (kw - 1) * dw):
        return None
    return _jit.kernels(x, w, b)  # compiled for host arrays: NumPy inputs only


def _grouped_forward(jit: Any, x: np.ndarray, w: np.ndarray, b: np.ndarray | None, geometry: Any) -> np.ndarray:
    _, (top, bottom, left, right), (dh, dw), groups, (oh, ow) = geometry
    n, _, h, wd = x.shape
    out = _workspace.lend((w.shape[0], n, oh, ow), x.dtype)  # channel-major, as im2col's
    flat = (dh, dw, top, left, h + top + bottom, wd + left + right)
    _parallel.over_parts(
        x, n, w.size * n * oh * ow // _parallel.MULTIPLY_ADDS_PER_NS,
        lambda lo, hi: jit.grouped_forward(x[lo:hi], w, b, out[:, lo:hi], groups, flat) if hi > lo else None,
    )  # fmt: skip
    return out.transpose(1, 0, 2, 3)


def _grouped_vjp(jit: Any, g: np.ndarray, args: Any, geometry: Any, needs: Any) -> tuple[np.ndarray | None, ...]:
    _, (top, bottom, left, right), (dh, dw), groups, (oh, ow) = geometry
    x, w = args[0], args[1]
    n, c, h, wd = x.shape
    c_out, cg, kh, kw = w.shape
    og = c_out // groups
    gb = _bias_gradient_of(g, c_out, args, needs)
    gx = None
    if needs[0]:
        # The convolution of the output gradient, padded by (k - 1)*dilation - pad, with each group's
        # kernels flipped and transposed (C_in's kernels over the group's C_out / groups planes).
        w_t = w.reshape(groups, og, cg, kh, kw)[:, :, :, ::-1, ::-1].transpose(0, 2, 1, 3, 4)
        w_t = np.ascontiguousarray(w_t).reshape(c, og, kh, kw)  # host: the compiled kernels take host arrays
        pt, pb, pl, pr = (kh - 1) * dh - top, (kh - 1) * dh - bottom, (kw - 1) * dw - left, (kw - 1) * dw - right
        gx_cm = _workspace.lend((c, n, h, wd), g.dtype)  # channel-major, for the layer before
        flat = (dh, dw, pt, pl, oh + pt + pb, ow + pl + pr)
        _parallel.over_parts(
            g, n, w.size * n * h * wd // _parallel.MULTIPLY_ADDS_PER_NS,
            lambda lo, hi: jit.grouped_forward(g[lo:hi], w_t, None, gx_cm[:, lo:hi], groups, flat) if hi > lo else None,
        )  # fmt: skip
        gx = gx_cm.transpose(1, 0, 2, 3)
    gw = None
    if needs[1]:
        flat = (dh, dw, top, left, h + top + bottom, wd + left + right)

        def work(lo: int, hi: int) -> np.ndarray:
            sums = np.zeros(w.shape, dtype=np.float64)  # host: numba path (summed in float64)
            if hi > lo:
                jit.grouped_weight_gradient(x[lo:hi], g[lo:hi], sums, groups, flat)
            return sums

        parts = _parallel.over_parts(x, n, w.size * n * oh * ow // _parallel.MULTIPLY_ADDS_PER_NS, work)
        gw = parts[0]
        for more in parts[1:]:
            gw += more
        gw = gw.astype(g.dtype)
    return (gx, gw, gb) if len(args) > 2 else (gx, gw)


# ---------------------------------------------------------------------- Winograd (compiled path)
# Both channel counts at least this: below it the Winograd GEMMs (inner dimension C_in) are too
# thin to pay for the transforms, and im2col's single GEMM is faster. Measured (2026-11-29, one
# thread, oneDNN, ms, Winograd vs the path taken otherwise; C -> C channels, N images of H x H):
# inference 16ch 16x16 N=32 0.92 vs 1.44, 32ch 8x8 N=1 0.088 vs 0.132, 16ch 8x8 N=1 0.071 vs 0.080,
# 12ch 16x16 N=1 0.074 vs 0.084, 8ch 32x32 N=32 1.55 vs 2.23; forward and backward 16ch 16x16 N=32
# 3.3 vs 7.2, 32ch 8x8 N=32 2.4 vs 6.2, 12ch 8x8 N=32 0.79 vs 1.73, 8ch 32x32 N=32 6.1 vs 6.8 (the
# narrow kernels' gradients). No spatial size or batch (down to 8x8 images, batch 1) made im2col
# faster from 8 channels; 3 -> 16 channels did (forward and backward 6.0 vs 4.9), 4 -> 16 tied.
WINOGRAD_MIN_CHANNELS = 8
# A single image (batch-1 inference) takes Winograd from this many input channels (an RGB image's
# first layer), as long as it has WINOGRAD_MIN_CHANNELS outputs: im2col's fixed costs dominate at
# one image. Measured as above, 3 -> 16 channels, 32x32: inference 0.106 vs 0.130 at N=1 but 0.24 vs
# 0.18 at N=4; forward and backward 0.28 vs 0.36 at N=1; 4 -> 16 0.113 vs 0.156; 1 -> 16 0.072 vs 0.066.
WINOGRAD_SINGLE_IMAGE_MIN_IN = 3
# Wide layers on few tiles (ResNet's 512 -> 512 layers on a 4x4 map at batch 1: 4 tiles) take im2col:
# there the products are bound by reading the weight, and Winograd's U is 16/9 of it. Measured (one
# thread, oneDNN, ms, Winograd with U already made vs im2col, batch 1 unless said): 512ch 4x4 1.17 vs
# 0.61, 4x4 N=2 1.11 vs 1.07, 6x6 1.32 vs 1.19, 8x8 (16 tiles) 1.26 vs 9.9; 256ch 4x4 0.22 vs 0.18, 6x6
# 0.23 vs 0.34; 128ch 4x4 0.070 vs 0.086. (Making U for a 512 -> 512 layer takes 10-15 ms besides.)
WINOGRAD_MIN_TILES = 16
WINOGRAD_FEW_TILES_MAX_WEIGHTS = 256 * 256  # C_in * C_out above which fewer tiles than that take im2col
# Bytes of transformed tiles (V or M) handled at a time: small enough to stay in cache between
# the transform that writes them and the GEMM that reads them (measured with NumPy's matmul: 2x
# faster than whole-batch arrays for a 64x32x14x14 batch), large enough that each of the 16 GEMMs
# per chunk is worth a call (with oneDNN's GEMM, one thread, forward and backward of a 64x32x14x14
# -> 64 layer: 12.8 ms at 1 MiB, 9.5 ms at 3 MiB, no better above).
WINOGRAD_CHUNK_BYTES = 3 * 2**20


def _winograd_jit(x: np.ndarray, w: np.ndarray, geometry: Any) -> Any:
    """The compiled kernels when Winograd F(2x2, 3x3) computes this convolution, else None."""
    stride, _, dilation, groups, _ = geometry
    suits = (
        w.shape[2:] == (3, 3)
        and stride == (1, 1)
        and dilation == (1, 1)
        and groups == 1
        and w.shape[0] >= WINOGRAD_MIN_CHANNELS
        and (w.shape[1] >= WINOGRAD_MIN_CHANNELS or (x.shape[0] == 1 and w.shape[1] >= WINOGRAD_SINGLE_IMAGE_MIN_IN))
    )
    if suits and w.shape[0] * w.shape[1] > WINOGRAD_FEW_TILES_MAX_WEIGHTS:
        (oh, ow) = geometry[4]
        suits = x.shape[0] * ((oh + 1) // 2) * ((ow + 1) // 2) >= WINOGRAD_MIN_TILES
    if not suits:
        return None
    return _jit.kernels_at(_multiply_adds(x, w, geometry), JIT_CONV_MIN_MACS, x, w)  # host arrays only


# The transformed weights U = G w G^T of recent calls, by id of the weight array: (a weak reference
# to the array, a copy of its values, U). Measured on a batch-1 CIFAR CNN forward: the transforms
# took 0.3 ms of 0.7, with or without a graph being recorded (a model evaluated without no_grad).
# A hit needs the array itself (the weak reference) and the very same bytes (compared with the
# copy: 20 us for 73k floats, several times less than the transform), so the cache cannot return a
# stale U: an optimizer writes the weights in place through a flat buffer the parameter's array is
# a view of, which no version counter sees. In training every step misses (the weights changed):
# a few sampled values tell that at once, and the miss costs a copy of the weight on top of the
# transform it always paid. The entries hold at most WEIGHT_CACHE_BYTES (copies and transforms), one
# entry at most half of it: a 512 -> 512 layer's entry (9.4 MB of weight, 16.8 MB of U) is kept, as its
# transform costs 10-15 ms a call against 0.5 ms for the comparison; the budget holds ResNet-18's
# (about 105 MB at 7x7 and larger maps), so an inference pass through its layers does not evict each
# entry before its next use.
WEIGHT_CACHE_SIZE = 64
WEIGHT_CACHE_BYTES = 128 * 2**20
_SAMPLES = 61  # values compared first (a prime stride through the weight)
_BYTES_COMPARED_WHOLE = 64 * 2**10  # weights up to this size are compared as bytes at once (no sampling)
_weight_cache: OrderedDict[int, tuple[Any, np.ndarray, np.ndarray]] = OrderedDict()


def _same_bytes(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether C-contiguous ``a`` and ``b`` hold the same bytes (NaN equal to itself, -0 not 0)."""
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    if a.nbytes <= _BYTES_COMPARED_WHOLE:
        # two small copies and one memcmp: 0.5 us for a 16 -> 16 layer's 9 KiB, where the sampled
        # and full np.array_equal below cost 6 us (their fixed costs dominate at this size)
        return a.tobytes() == b.tobytes()
    bits = np.dtype(f"u{a.dtype.itemsize}")
    flat_a, flat_b = a.reshape(-1).view(bits), b.reshape(-1).view(bits)
    step = max(1, flat_a.size // _SAMPLES)
    if not np.array_equal(flat_a[::step], flat_b[::step]):  # a weight a step changed: seen at once
        return False
    same = np.array_equal(flat_a, flat_b)
    return bool(same)  # host: host arrays only (the cache serves the host-only Winograd kernel)


def _cache_bytes() -> int:
    return sum(entry[1].nbytes + entry[2].nbytes for entry in _weight_cache.values())


def _transformed_weight(jit: Any, w: np.ndarray) -> np.ndarray:
    """``jit.winograd_weight(w)``, reused from an earlier call on the same array with the same values.
    The returned U is shared: callers (the forward pass, the gradient rule) only read it."""
    if not w.flags.c_contiguous:
        return jit.winograd_weight(w)
    key = id(w)
    entry = _weight_cache.get(key)
    if entry is not None and entry[0]() is w and _same_bytes(entry[1], w):
        _weight_cache.move_to_end(key)
        return entry[2]
    u = jit.winograd_weight(w)
    if w.nbytes + u.nbytes > WEIGHT_CACHE_BYTES // 2:  # a huge layer: not worth the memory
        _weight_cache.pop(key, None)
        return u

    def forget(ref: Any, key: int = key) -> None:  # the array is gone: its id may be reused
        if key in _weight_cache and _weight_cache[key][0] is ref:
            del _weight_cache[key]

    _weight_cache[key] = (weakref.ref(w, forget), w.copy(), u)
    _weight_cache.move_to_end(key)
    while len(_weight_cache) > WEIGHT_CACHE_SIZE or _cache_bytes() > WEIGHT_CACHE_BYTES:
        _weight_cache.popitem(last=False)
    return u


def _winograd_chunks(n: int, channels: int, tiles: int, itemsize: int) -> list[tuple[int, int]]:
    size = max(1, min(n, WINOGRAD_CHUNK_BYTES // max(1, 16 * channels * tiles * itemsize)))
    # The GEMMs' rows are a chunk's tiles long; a multiple of 512 elements puts every row on the
    # same cache sets (measured: 64 tiles x 16 images, 1024 per row, 15% slower than 15 images).
    while size > 1 and size < n and (size * tiles) % 512 == 0:
        size -= 1
    return [(start, min(n, start + size)) for start in range(0, n, size)]


def _planes(buffer: np.ndarray, channels: int, cols: int) -> np.ndarray:
    """A (16, channels, cols) array of transformed tiles in ``buffer`` (see :func:`_planes_size`),
    its 16 planes 64 bytes further apart than their size: the transforms write all 16 planes at
    once, and planes a power of two apart (e.g. 32 channels x 256 tiles) would all fall on the
    same cache sets (measured: 7x slower transforms on 16x16 maps)."""
    stride = channels * cols + 64 // buffer.itemsize
    return buffer[: 16 * stride].reshape(16, stride)[:, : channels * cols].reshape(16, channels, cols)


def _planes_size(channels: int, cols: int, itemsize: int) -> int:
    return 16 * (channels * cols + 64 // itemsize)


def _winograd_forward(jit: Any, x: np.ndarray, u: np.ndarray, b: np.ndarray | None, geometry: Any) -> np.ndarray:
    """The convolution of ``x`` with the transformed kernels ``u`` (16, C_out, C_in)."""
    _, (top, _, left, _), _, _, (oh, ow) = geometry
    n, c = x.shape[:2]
    c_out = u.shape[1]
    th, tw = jit.winograd_tiles(oh, ow)
    out = _workspace.lend((c_out, n, oh, ow), x.dtype)  # channel-major, as the im2col path returns
    y = out.transpose(1, 0, 2, 3)

    sgemm = _chunk_sgemm(x, u)

    def work(lo: int, hi: int) -> None:
        chunks, v_buf, m_buf = _winograd_buffers(hi - lo, c, c_out, th * tw, x.dtype)
        for start, stop in ((lo + a, lo + b) for a, b in chunks):
            cols = (stop - start) * th * tw
            v, m = _planes(v_buf, c, cols), _planes(m_buf, c_out, cols)
            if sgemm is not None:
                status = jit.winograd_forward_chunk(sgemm, x[start:stop], u, v, m, y[start:stop], b, top, left, th, tw)
                _check_status(status, "forward")
                continue
            jit.winograd_input(x[start:stop], top, left, th, tw, v)
            gemm.matmul(u, v, m)
            jit.winograd_output(m, y[start:stop], b, th, tw)
        _workspace.give(v_buf, m_buf)

    _parallel.over_parts(x, n, 16 * c * c_out * n * th * tw // _parallel.MULTIPLY_ADDS_PER_NS, work)
    return y


def _chunk_sgemm(*arrays: np.ndarray) -> Any:
    """oneDNN's sgemm for the compiled Winograd chunks (transforms and products in one call), when
    the arrays are float32 and oneDNN is on; else None (the chunk's products go through gemm.matmul)."""
    if any(a.dtype != np.float32 for a in arrays if a is not None):
        return None
    return gemm.sgemm_function()


def _check_status(status: int, where: str) -> None:
    if status:
        raise StateError(f"conv2d (Winograd {where} pass): oneDNN's sgemm refused a product (status {status})")


def _winograd_buffers(
    images: int, c: int, c_out: int, tiles: int, dtype: Any
) -> tuple[list[tuple[int, int]], Any, Any]:
    """The chunks of ``images`` images a Winograd pass takes at a time, and workspace buffers for one
    chunk's transformed input (``c`` planes) and product (``c_out`` planes); give both back after."""
    chunks = _winograd_chunks(images, max(c, c_out), tiles, dtype.itemsize)
    size = (chunks[0][1] - chunks[0][0]) * tiles
    v_buf = _workspace.take((_planes_size(c, size, dtype.itemsize),), dtype)
    m_buf = _workspace.take((_planes_size(c_out, size, dtype.itemsize),), dtype)
    return chunks, v_buf, m_buf


def _winograd_vjp(
    jit: Any, u: np.ndarray, g: np.ndarray, args: Any, geometry: Any, needs: Any
) -> tuple[np.ndarray | None, ...]:
    _, (top, _, left, _), _, _, (oh, ow) = geometry
    x, w = args[0], args[1]
    n, c, h, wd = x.shape
    c_out = w.shape[0]
    th, tw = jit.winograd_tiles(oh, ow)
    u_t = u.transpose(0, 2, 1)
    gx = _workspace.lend((c, n, h, wd), g.dtype).transpose(1, 0, 2, 3) if needs[0] else None
    sgemm = _chunk_sgemm(g, x, u)

    def work(lo: int, hi: int) -> tuple[Any, Any]:
        """The input gradient of images [lo, hi) and their parts of the weight and bias gradients."""
        gb = np.zeros(c_out, dtype=np.float64) if len(args) > 2 and needs[2] else None  # host: summed by the transform
        du = np.zeros((16, c_out, c), dtype=g.dtype) if needs[1] else None  # host: NumPy-only path
        chunks, v_buf, m_buf = _winograd_buffers(hi - lo, c, c_out, th * tw, g.dtype)
        padded = (2 * th + 2, 2 * tw + 2, c)  # a chunk's input, channels last, for the weight gradient
        p_buf = _workspace.take(((chunks[0][1] - chunks[0][0]) * math.prod(padded),), g.dtype) if sgemm else None
        for start, stop in ((lo + a, lo + b) for a, b in chunks):
            cols = (stop - start) * th * tw
            if p_buf is not None:
                status = jit.winograd_backward_chunk(
                    sgemm, g[start:stop], x[start:stop], u, _planes(v_buf, c, cols), _planes(v_buf, cols, c),
                    p_buf[: (stop - start) * math.prod(padded)].reshape((stop - start,) + padded),
                    _planes(m_buf, c_out, cols), gb, du, None if gx is None else gx[start:stop], top, left, th, tw,
                )  # fmt: skip
                _check_status(status, "backward")
                continue
            dm = jit.winograd_output_adjoint(g[start:stop], th, tw, _planes(m_buf, c_out, cols), gb)
            v = _planes(v_buf, c, cols)
            if du is not None:
                # The chunk's transformed input tiles are rebuilt rather than kept from the forward pass.
                jit.winograd_input(x[start:stop], top, left, th, tw, v)
                gemm.matmul(dm, v.transpose(0, 2, 1), du, accumulate=True)
            if gx is not None:
                gemm.matmul(u_t, dm, v)
                jit.winograd_input_adjoint(v, gx[start:stop], top, left, th, tw)
        _workspace.give(v_buf, m_buf, p_buf)
        return du, gb

    passes = 1 + int(needs[0]) + int(needs[1])
    parts = _parallel.over_parts(x, n, passes * 16 * c * c_out * n * th * tw // _parallel.MULTIPLY_ADDS_PER_NS, work)
    du, gb = parts[0]
    for more_du, more_gb in parts[1:]:
        if du is not None:
            du += more_du
        if gb is not None:
            gb += more_gb
    gw = None if du is None else jit.winograd_weight_adjoint(du, c_out, c)
    if gb is None:
        return (gx, gw, None) if len(args) > 2 else (gx, gw)
    return (gx, gw, gb.astype(g.dtype))


# ---------------------------------------------------------------------- 1-D convolution as shifted GEMMs
# A stride-1 1-D convolution (Conv1d, or a height-1 2-D one) with enough channels skips im2col: the
# padded input is laid out channel-major, images one after another ``pitch = L + left + right``
# columns apart, and kernel tap j's contribution to every output column is ONE product of the tap's
# (C_out, C_in) weights with the padded input shifted j*dilation columns: ``out[:, t] += W[:, :, j]
# @ x_pad[:, t + j*dil]`` for every t of the batch at once. The last (kw - 1)*dil columns of each
# image's result read into the next image and are thrown away. No column matrix is built (im2col
# copied the input kw times), and the input gradient needs no fold: it is the transposed shifts
# ``gx_pad[:, t] += W[:, :, j]^T @ g_pad[:, t - j*dil]`` over the output gradient laid out the same
# way (zeros where the thrown-away columns were). The weight gradient is kw products ``g_pad @
# x_pad[t + j*dil]`` whose long inner dimension is the batch's columns; it reads the input
# channels-last (one transposed copy per chunk): oneDNN runs ``(C_out, P) @ (P, C_in)`` 1.5x faster
# than the same product with the (C_in, P) operand read transposed. Measured against im2col, one
# thread, Conv1d(64, 64, 7) on 32 x 512 samples (ms): forward 4.4 vs 5.7, weight gradient 5.5 vs
# 6.6, input gradient 4.3 vs 7.5.
# Both channel counts at least this: each product's inner dimension is C_in (forward) or C_out
# (input gradient), and below it the products are too thin to beat one im2col GEMM of inner
# dimension C_in*kw.
SHIFTED_MIN_CHANNELS = 16
# The forward pass takes the shifted products from this many input channels (their inner
# dimension); below it im2col's one product is faster (measured, one thread, inference ms, shifted vs
# im2col: Conv1d(16, 16, 5) on 64 x 128 samples 0.43 vs 0.36; 32 -> 32, k3, 32 x 256: 0.59 vs 0.59;
# 64 -> 64, k7, 32 x 512: 4.4 vs 5.7). The gradients gain at 16 already (forward and backward, ms,
# against im2col throughout: 16 -> 16 k5 1.5 vs 2.7; 32 -> 32 k3 2.0 vs 3.8).
SHIFTED_FORWARD_MIN_IN = 32


def _is_shifted(x: np.ndarray, w: np.ndarray, geometry: Any) -> bool:
    """Whether this is a stride-1, one-group 1-D convolution (height 1 throughout) that the shifted
    GEMMs compute."""
    (_, sw), (top, bottom, _, _), _, groups, (oh, _) = geometry
    return (
        x.shape[2] == 1
        and w.shape[2] == 1
        and oh == 1
        and top == bottom == 0
        and sw == 1
        and groups == 1
        and w.shape[3] > 1
        and min(w.shape[0], w.shape[1]) >= SHIFTED_MIN_CHANNELS
        and x.shape[0] > 0
    )


def _shifted_chunks(n: int, rows: int, pitch: int, like: Any) -> list[tuple[int, int]]:
    """Runs of whole images whose padded columns (``rows`` of them, ``pitch`` per image) fit a chunk."""
    return _batch_chunks(n, rows * pitch * like.dtype.itemsize, like, one_d=True)


def _fill_padded(dst: Any, src: Any, left: int, right: int) -> None:
    """``dst`` (rows, images*pitch + tail): each image's row of ``src`` (rows, images, L) between
    ``left`` and ``right`` zeros, then zeros to the end."""
    rows, images, length = src.shape
    pitch = length + left + right
    body = dst[:, : images * pitch].reshape(rows, images, pitch)
    body[:, :, :left] = 0
    body[:, :, left + length :] = 0
    body[:, :, left : left + length] = src
    dst[:, images * pitch :] = 0


def _shifted_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, geometry: Any) -> np.ndarray:
    _, (_, _, left, right), (_, dil), _, (_, ow) = geometry
    n, c, _, length = x.shape
    c_out, kw = w.shape[0], w.shape[3]
    pitch, reach = length + left + right, (kw - 1) * dil
    xp = namespace_of(x)
    taps = xp.ascontiguousarray(w[:, :, 0, :].transpose(2, 0, 1))  # (kw, C_out, C_in)
    out = _workspace.lend((c_out, n, ow), x.dtype, x)  # channel-major, as the im2col path returns
    source = x[:, :, 0, :].transpose(1, 0, 2)  # (C, N, L), a view in either layout

    def work(lo: int, hi: int) -> None:
        chunks = _shifted_chunks(hi - lo, max(c, c_out), pitch, x)
        size = (chunks[0][1] - chunks[0][0]) * pitch
        x_buf = _workspace.take((c, size + reach), x.dtype, x)
        y_buf = _workspace.take((c_out, size), x.dtype, x)
        for start, stop in ((lo + a, lo + b) for a, b in chunks):
            cols = (stop - start) * pitch
            padded = x_buf[:, : cols + reach]
            _fill_padded(padded, source[:, start:stop], left, right)
            y = y_buf[:, :cols]
            for j in range(kw):
                gemm.matmul(taps[j], padded[:, j * dil : j * dil + cols], y, accumulate=j > 0)
            valid = y.reshape(c_out, stop - start, pitch)[:, :, :ow]
            if b is None:
                out[:, start:stop] = valid
            else:
                xp.add(valid, b[:, None, None], out=out[:, start:stop])
        _workspace.give(x_buf, y_buf)

    _parallel.over_parts(x, n, c_out * c * kw * n * pitch // _parallel.MULTIPLY_ADDS_PER_NS, work)
    return out.reshape(c_out, n, 1, ow).transpose(1, 0, 2, 3)


def _shifted_vjp(g: np.ndarray, args: Any, geometry: Any, needs: Any) -> tuple[np.ndarray | None, ...]:
    _, (_, _, left, right), (_, dil), _, (_, ow) = geometry
    x, w = args[0], args[1]
    n, c, _, length = x.shape
    c_out, kw = w.shape[0], w.shape[3]
    pitch, reach = length + left + right, (kw - 1) * dil
    xp = namespace_of(g)
    gb = _bias_gradient_of(g, c_out, args, needs)
    need_gw = bool(needs[1])  # host: needs holds Python flags
    taps_t = xp.ascontiguousarray(w[:, :, 0, :].transpose(2, 1, 0)) if needs[0] else None  # (kw, C_in, C_out)
    # The input gradient of the padded input, channel-major: the result is the view of its columns
    # inside the padding (no copy out of it).
    gxp = _workspace.lend((c, n * pitch), g.dtype, g) if needs[0] else None
    g_source = g[:, :, 0, :].transpose(1, 0, 2)  # (C_out, N, OW)
    x_source = x[:, :, 0, :]  # (N, C, L)
    jit = _jit.kernels(x) if need_gw else None

    def work(lo: int, hi: int) -> Any:
        gw = xp.zeros((kw, c_out, c), dtype=g.dtype) if need_gw else None
        chunks = _shifted_chunks(hi - lo, max(c, c_out), pitch, g)
        size = (chunks[0][1] - chunks[0][0]) * pitch
        g_buf = _workspace.take((c_out, reach + size), g.dtype, g)
        x_buf = _workspace.take((size + reach, c), g.dtype, g) if need_gw else None
        for start, stop in ((lo + a, lo + b) for a, b in chunks):
            cols = (stop - start) * pitch
            # The output gradient as the forward's columns, zeros where its thrown-away columns
            # were and ``reach`` zeros in front (the last image before's thrown-away columns).
            g_pad = g_buf[:, : reach + cols]
            g_pad[:, :reach] = 0
            _fill_padded(g_pad[:, reach:], g_source[:, start:stop], 0, reach)
            g_body = g_pad[:, reach:]
            if gw is not None and x_buf is not None:
                rows = x_buf[: cols + reach]
                if jit is None or not jit.channels_last(x_source[start:stop], rows, left, right):
                    _fill_padded(rows.T, x_source[start:stop].transpose(1, 0, 2), left, right)
                for j in range(kw):
                    gemm.matmul(g_body, rows[j * dil : j * dil + cols], gw[j], accumulate=True)
            if gxp is not None and taps_t is not None:
                d = gxp[:, start * pitch : stop * pitch]
                for j in range(kw):
                    shifted = g_pad[:, reach - j * dil : reach - j * dil + cols]
                    gemm.matmul(taps_t[j], shifted, d, accumulate=j > 0)
        _workspace.give(g_buf, x_buf)
        return gw

    passes = int(needs[0]) + int(needs[1])
    parts = _parallel.over_parts(x, n, passes * c_out * c * kw * n * pitch // _parallel.MULTIPLY_ADDS_PER_NS, work)
    gw = parts[0]
    for more in parts[1:]:
        gw += more
    grads = (
        None if gxp is None else gxp.reshape(c, n, 1, pitch)[:, :, :, left : left + length].transpose(1, 0, 2, 3),
        None if gw is None else xp.ascontiguousarray(gw.transpose(1, 2, 0)).reshape(w.shape),
    )
    return grads + (gb,) if len(args) > 2 else grads
