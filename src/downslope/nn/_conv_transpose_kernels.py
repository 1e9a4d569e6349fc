"""The transposed convolution's kernels: a convolution's input-gradient pass run forward.

A transposed convolution of ``x`` with ``w`` is the gradient, with respect to its input, of the
convolution that ``w`` (read as a convolution weight of shape ``(C_in, C_out / groups, kh, kw)``:
``C_in`` output channels) computes from an ``(N, C_out, OH, OW)`` image to ``x``'s ``(H, W)``. So,
as in PyTorch and other libraries, no zeros are inserted between pixels:

* forward: ONE matrix product ``W^T (C_out*kh*kw, C_in) @ x (C_in, N*H*W)`` (per group), then a
  fold: each kernel offset's block is added where that offset writes in the output (kh*kw strided
  adds of whole ``(C_out, chunk, H, W)`` blocks, clipped by the padding, no scatter; with numba, a
  compiled fold over a batch-innermost layout for small images, see :func:`_compiled_fold`);
* input gradient: the convolution of the output gradient with ``w`` (same stride, padding,
  dilation, groups), computed by the convolution's own forward kernel (im2col and a GEMM, Winograd,
  or the depthwise kernels: :func:`_conv_kernels.conv2d_forward`);
* weight gradient: the convolution's weight-gradient product with the roles swapped (the output
  gradient as the image read, ``x`` as the gradient of its output). When both gradients are
  wanted, the im2col columns of the output gradient are built once for the two products.

The geometry handed around is the convolution's: ``(stride, (top, bottom, left, right), dilation,
groups, (H, W))`` (the convolution's output is the transposed one's input), beside the transposed
convolution's output size ``(OH, OW)``. The output is laid out channel-major, as a convolution's.

Every array is made in the input's namespace, so device arrays run the same NumPy-formulated code;
the compiled kernels the convolution picks run on host arrays only. Under ``create_graph=True`` the
rule is recomputed from recorded ops (``conv2d`` for the input gradient, ``unfold`` and products for
the weight gradient), so it can be differentiated again.

Example:
    >>> import numpy as np
    >>> from downslope.nn._conv_transpose_kernels import conv_transpose2d_forward
    >>> geometry = ((2, 2), (0, 0, 0, 0), (1, 1), 1, (1, 2))
    >>> conv_transpose2d_forward(np.ones((1, 1, 1, 2)), np.ones((1, 1, 2, 2)), None, geometry, (2, 4))[0, 0]
    array([[1., 1., 1., 1.],
           [1., 1., 1., 1.]])
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import gemm
from .. import parallel as _parallel
from .. import workspace as _workspace
from ..backend import namespace_of
from . import _jit
from ._conv_kernels import _batch_chunks, _conv2d_forward, _conv2d_vjp_recorded, _im2col, _valid_range, conv2d_forward


def conv_transpose2d_forward(x: Any, w: Any, b: Any, geometry: Any, out_hw: tuple[int, int]) -> Any:
    """The transposed convolution of (N, C_in, H, W) ``x`` with (C_in, C_out / groups, kh, kw) ``w``
    (plus ``b``, or None): an (N, C_out, OH, OW) array laid out as (C_out, N, OH, OW) in memory."""
    (sh, sw), (top, _, left, _), (dh, dw), groups, (h, wd) = geometry
    ho, wo = out_hw
    n, c_in = x.shape[:2]
    c_out_g, kh, kw = w.shape[1:]
    c_out = c_out_g * groups
    k = c_out_g * kh * kw
    pixels = h * wd
    out = _workspace.lend((c_out, n, ho, wo), x.dtype, x)
    if b is None:
        out.fill(0)
    else:
        out[...] = b.reshape(c_out, 1, 1, 1)
    # The weight as (groups, C_out / groups * kh * kw, C_in / groups): rows (o, p, q), the fold's order.
    w_t = w.reshape(groups, c_in // groups, k).transpose(0, 2, 1)
    # x as (C_in, N, H, W): a view when it arrives channel-major (a convolution's output, or a
    # layer's after one), else each chunk is copied so (a copy the size of the chunk's input).
    x_t = x.transpose(1, 0, 2, 3)
    channel_major = x_t.flags.c_contiguous
    # (kh, kw) offsets and the input rows/columns [lo, hi) each writes inside the output
    rows = [_valid_range(ho, h, sh, p * dh - top) for p in range(kh)]
    cols_ = [_valid_range(wo, wd, sw, q * dw - left) for q in range(kw)]
    fold = _compiled_fold(x, w)

    def work(lo: int, hi: int) -> None:
        if hi <= lo:  # an empty batch (N = 0): nothing to compute
            return
        chunks = _batch_chunks(hi - lo, groups * k * pixels * x.dtype.itemsize, x, h == 1 and kh == 1)
        size = chunks[0][1] - chunks[0][0]
        compiled = fold is not None and size >= FOLD_MIN_IMAGES and wd <= FOLD_MAX_WIDTH
        buffer = _workspace.take((groups * k * size * pixels,), x.dtype, x)
        x_buffer = None if channel_major and not compiled else _workspace.take((c_in * size * pixels,), x.dtype, x)
        scratch = _workspace.take((ho * wo * size,), x.dtype) if compiled else None
        for start, stop in ((lo + a, lo + b) for a, b in chunks):
            part, m = x_t[:, start:stop], stop - start
            if compiled and x_buffer is not None:  # the images innermost: (C_in, H, W, m)
                copy = x_buffer[: c_in * m * pixels].reshape(c_in, h, wd, m)
                copy[...] = part.transpose(0, 2, 3, 1)
                part = copy
            elif x_buffer is not None:
                copy = x_buffer[: c_in * m * pixels].reshape(part.shape)
                copy[...] = part
                part = copy
            cols = buffer[: groups * k * m * pixels].reshape(groups, k, -1)
            gemm.matmul(w_t, part.reshape(groups, c_in // groups, -1), cols)
            if compiled and scratch is not None:
                blocks = cols.reshape(c_out, kh, kw, h, wd, m)
                fold(blocks, out[:, start:stop], scratch[: ho * wo * m].reshape(ho, wo, m), sh, sw, dh, dw, top, left)
                continue
            blocks = cols.reshape(c_out, kh, kw, m, h, wd)
            target = out[:, start:stop]
            for p, (r0, r1) in enumerate(rows):
                if r0 >= r1:
                    continue
                y0 = r0 * sh + p * dh - top
                ys = slice(y0, y0 + sh * (r1 - r0 - 1) + 1, sh)
                for q, (c0, c1) in enumerate(cols_):
                    if c0 >= c1:
                        continue
                    x0 = c0 * sw + q * dw - left
                    target[:, :, ys, x0 : x0 + sw * (c1 - c0 - 1) + 1 : sw] += blocks[:, p, q, :, r0:r1, c0:c1]
        _workspace.give(buffer, x_buffer, scratch)

    _parallel.over_parts(x, n, c_out * kh * kw * c_in // groups * n * pixels // _parallel.MULTIPLY_ADDS_PER_NS, work)
    return out.transpose(1, 0, 2, 3)


def _fold_loops(blocks, out, scratch, sh, sw, dh, dw, top, left):  # pragma: no cover - compiled by numba
    """``out[c, n, i*sh - top + p*dh, j*sw - left + q*dw] += blocks[c, p, q, i, j, n]`` wherever the
    output index lies inside ``out`` (col2im, the fold of the columns into the image), the batch
    innermost: each add is a whole vector of the chunk's images, which the compiler vectorizes,
    into ``scratch`` (one channel's (OH, OW, n) sums), then added to the channel-major ``out``."""
    c_out, kh, kw, h, wd, n = blocks.shape
    ho, wo = out.shape[2], out.shape[3]
    for c in range(c_out):
        scratch[...] = 0
        for p in range(kh):
            for i in range(h):
                y = i * sh - top + p * dh
                if y < 0 or y >= ho:
                    continue
                for q in range(kw):
                    for j in range(wd):
                        x = j * sw - left + q * dw
                        if x < 0 or x >= wo:
                            continue
                        target = scratch[y, x]
                        source = blocks[c, p, q, i, j]
                        for m in range(n):
                            target[m] += source[m]
        for m in range(n):
            for y in range(ho):
                for x in range(wo):
                    out[c, m, y, x] += scratch[y, x, m]


_fold: list[Any] = []  # the compiled fold, once made
# The compiled fold's inner loop runs over a chunk's images: it needs this many in a chunk. Inputs
# wider than FOLD_MAX_WIDTH have rows long enough for NumPy's strided adds, which are then as fast
# or faster (measured, one thread: ConvTranspose1d(32, 16, 4, 2) on 64 x 128 samples, 0.55 ms
# against 0.69 ms for the whole forward pass; 32x32 images even).
FOLD_MIN_IMAGES = 8
FOLD_MAX_WIDTH = 32


def _compiled_fold(*arrays: Any) -> Any:
    """:func:`_fold_loops` compiled by numba (on first use, cached on disk) when the compiled path
    serves ``arrays`` (host arrays of a dtype numba compiles, numba installed and on), else None.
    On a 7x7 input NumPy's strided adds run 7-element inner loops: the fold took 3.6 ms of the
    forward pass of ConvTranspose2d(32, 16, 4, 2, 1) on 64 images (measured, one thread), the
    compiled one 0.07 ms, and the transposes to and from its batch-innermost layout 0.08 ms."""
    if _jit.kernels(*arrays) is None:
        return None
    if not _fold:
        import numba

        _fold.append(numba.njit(cache=True, nogil=True, error_model="numpy")(_fold_loops))
    return _fold[0]


def _conv_transpose2d_vjp(g, y, args, saved, needs, xp):
    geometry, out_hw = saved
    if xp.differentiable:
        return _conv_transpose2d_vjp_recorded(g, args, geometry, out_hw, needs)
    x, w = args[0], args[1]
    grads: list[Any] = [None] * len(args)
    if needs[0] or needs[1]:
        need_gx, need_gw = bool(needs[0]), bool(needs[1])  # host: needs holds Python flags
        grads[0], grads[1] = _input_and_weight_gradients(g, x, w, geometry, need_gx, need_gw)
    if len(args) > 2 and needs[2]:
        grads[2] = _channel_sums(g)
    return tuple(grads)


def _input_and_weight_gradients(g: Any, x: Any, w: Any, geometry: Any, need_gx: bool, need_gw: bool) -> tuple[Any, Any]:
    """The input gradient, a convolution of ``g`` with ``w``, and the weight gradient, the
    convolution's weight gradient with ``g`` as the image and ``x`` as its output's gradient: both
    products of the im2col columns of ``g``, built once for the two (per chunk of the batch)."""
    (_, (top, _, left, _), (dh, dw), groups, (h, wd)), (kh, kw) = geometry, w.shape[2:]
    if not need_gw:
        if groups > 1 and w.shape[1] == 1 and (top > dh * (kh - 1) // 2 or left > dw * (kw - 1) // 2):
            # The compiled depthwise kernel leaves outputs unwritten when the padding is wider than
            # 'same' padding (measured against PyTorch): im2col computes those.
            return _conv2d_forward(g, w, None, geometry), None
        # the convolution's own kernels (Winograd, depthwise, im2col), whichever suits
        return conv2d_forward(g, w, None, geometry)[0], None
    n, c_in = x.shape[:2]
    c_in_g, k = c_in // groups, w.shape[1] * kh * kw
    pixels = h * wd
    w_mat = w.reshape(groups, c_in_g, k)
    # (C_in, N, H, W), channel-major like the output, as (groups, C_in / groups, N*H*W)
    gx = _workspace.lend((groups, c_in_g, n * pixels), g.dtype, g) if need_gx else None
    x_t = x.transpose(1, 0, 2, 3)
    channel_major = x_t.flags.c_contiguous
    xp = namespace_of(g)

    def work(lo: int, hi: int) -> Any:
        """The input gradient of images [lo, hi) and their part of the weight gradient (transposed)."""
        gw_t = xp.zeros((groups, k, c_in_g), dtype=g.dtype)
        if hi <= lo:  # an empty batch (N = 0): a zero weight gradient
            return gw_t
        chunks = _batch_chunks(hi - lo, groups * k * pixels * g.dtype.itemsize, g, h == 1 and kh == 1)
        size = chunks[0][1] - chunks[0][0]
        buffer = _workspace.take((groups * k * size * pixels,), g.dtype, g)
        x_buffer = None if channel_major else _workspace.take((c_in * size * pixels,), g.dtype, g)
        for start, stop in ((lo + a, lo + b) for a, b in chunks):
            cols = _im2col(g[start:stop], (kh, kw), geometry, buffer[: groups * k * (stop - start) * pixels])
            cols = cols.reshape(groups, k, -1)
            if gx is not None:
                gemm.matmul(w_mat, cols, gx[:, :, start * pixels : stop * pixels])
            part = x_t[:, start:stop]
            if x_buffer is not None:
                copy = x_buffer[: c_in * (stop - start) * pixels].reshape(part.shape)
                copy[...] = part
                part = copy
            # cols @ x^T (K x C_in), not x @ cols^T: oneDNN's GEMM runs it twice as fast when both
            # operands run along the long pixel axis (measured, one thread, 256 x 3136 columns).
            gemm.matmul(cols, part.reshape(groups, c_in_g, -1).transpose(0, 2, 1), gw_t, accumulate=True)
        _workspace.give(buffer, x_buffer)
        return gw_t

    passes = 1 + int(need_gx)
    parts = _parallel.over_parts(g, n, passes * c_in * k * n * pixels // _parallel.MULTIPLY_ADDS_PER_NS, work)
    gw_t = parts[0]
    for more in parts[1:]:
        gw_t += more
    gw = gw_t.transpose(0, 2, 1).reshape(w.shape)
    return (None if gx is None else gx.reshape(c_in, n, h, wd).transpose(1, 0, 2, 3)), gw


def _channel_sums(g: Any) -> Any:
    """The bias gradient: ``g`` (N, C, ...) summed over all but the channel axis, in float64 (a
    float32 sum of many gradients that cancel loses digits against PyTorch's), in ``g``'s dtype."""
    g_t = g.transpose(1, 0, *range(2, g.ndim))
    jit = _jit.kernels(g) if g_t.flags.c_contiguous else None
    if jit is not None:  # one compiled pass over the channel-major rows (NumPy's float64 sum casts in buffers)
        sums = np.zeros(g.shape[1], dtype=np.float64)  # host: the compiled kernels take host arrays only
        return jit.add_row_sums(g_t.reshape(g.shape[1], -1), sums).astype(g.dtype)
    return g.sum(axis=(0, *range(2, g.ndim)), dtype=np.float64).astype(g.dtype)


def _conv_transpose2d_vjp_recorded(g: Any, args: Any, geometry: Any, out_hw: Any, needs: Any) -> tuple[Any, ...]:
    """The gradients as recorded tensor ops (``create_graph=True``): a ``conv2d`` of the output
    gradient for the input, the convolution's recorded weight gradient for the weight."""
    from .convolution import _conv2d

    st, (top, _, left, _), dil, groups, (h, wd) = geometry
    x, w = args[0], args[1]
    grads: list[Any] = [None] * len(args)
    if needs[0]:
        gx = _conv2d(g, w, None, st, (top, left), dil, groups, "conv_transpose2d")
        if gx.shape[2:] != (h, wd):  # output padding past the stride: rows no input pixel wrote
            gx = gx[:, :, :h, :wd].contiguous()
        grads[0] = gx
    if needs[1]:
        # The gradient seen through exactly the rows and columns that the (H, W) receptive fields
        # reach: cut past them, zero-padded up to them, so that unfold finds H x W fields.
        ho, wo = out_hw
        reach_h = (h - 1) * st[0] + dil[0] * (w.shape[2] - 1) + 1 - top
        reach_w = (wd - 1) * st[1] + dil[1] * (w.shape[3] - 1) + 1 - left
        cut = g[:, :, : min(ho, reach_h), : min(wo, reach_w)]
        exact = (st, (top, reach_h - min(ho, reach_h), left, reach_w - min(wo, reach_w)), dil, groups, (h, wd))
        grads[1] = _conv2d_vjp_recorded(x, (cut, w), exact, (False, True))[1]
    if len(args) > 2 and needs[2]:
        grads[2] = g.sum((0, 2, 3))
    return tuple(grads)
