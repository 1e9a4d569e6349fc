"""Compiled (numba) kernels for max pooling, the 3x3, depthwise, grouped and 1-D convolutions; imported only through ``_jit``.

Importing this module imports numba (half a second), so nothing imports it at ``import downslope``
time: ``_jit.kernels()`` does, on the first call of a layer that can use it. The functions are
compiled on first use and cached on disk (``cache=True``), so a later process loads them instead
of compiling again. Each kernel computes exactly what the NumPy path beside it computes (the parity
tests run both paths against PyTorch), only in one pass over the data instead of several strided
NumPy passes.

Winograd F(2x2, 3x3) (Lavin and Gray, 2015): a 3x3 stride-1 convolution computed on 4x4 input
tiles that overlap by 2. Per tile, ``V = B^T d B`` (the input transform), per kernel
``U = G w G^T``; the 16 products ``U_ab V_ab`` summed over input channels are 16 matrix products
``M_ab = U_ab @ V_ab`` (one batched GEMM), and each 2x2 output tile is ``A^T M A``. That is 16
multiplications per 4 outputs instead of 36, so the GEMMs do 2.25x fewer multiply-adds than
im2col's. The gradients are the adjoints of the same linear maps (``dM = A g A^T``,
``dV_ab = U_ab^T dM_ab``, ``dU_ab = dM_ab V_ab^T``, ``dx = B dV B^T`` added back tile by tile).

numba compiles for host memory: these kernels take and make NumPy arrays only (``_jit.kernels``
answers None for device arrays, which run the NumPy-formulated kernels in their own namespace),
so the arrays made here are host arrays by design (marked ``# host: numba path``).

Example:
    >>> import numpy as np
    >>> from downslope.nn import _jit
    >>> k = _jit.kernels()
    >>> k is None or k.max_pool_2x2(np.arange(16.0).reshape(1, 1, 4, 4))[0][0, 0].tolist() == [[5.0, 7.0], [13.0, 15.0]]
    True
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numba
import numpy as np

from .. import parallel as _parallel
from .. import workspace as _workspace

_jit = numba.njit(cache=True, nogil=True, error_model="numpy")
U64 = numba.uint64  # unsigned loop indices: no wraparound checks for negative indices
# For loops that sum: reassociation lets LLVM keep several partial sums in vector registers
# (a sequential float64 sum waits on each addition: measured 3x slower batch norm).
_jit_sums = numba.njit(cache=True, nogil=True, fastmath={"reassoc"}, error_model="numpy")


# ---------------------------------------------------------------------- scatter-add of rows
@_jit
def _add_rows(out, index, rows):
    """out[index[k]] += rows[k] for k in order: what np.add.at computes, to the bit, without its
    unbuffered per-element dispatch (an Embedding(20000, 64) of 8192 tokens: 3.6 ms there)."""
    n = out.shape[0]
    for k in range(index.shape[0]):
        i = index[k]
        if i < 0:
            i += n
        for j in range(rows.shape[1]):
            out[i, j] += rows[k, j]


def add_rows(out: np.ndarray, index: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``np.add.at(out, index, rows)`` for an integer ``index`` picking rows of ``out`` (indices
    already checked in range, as an Embedding's forward does); ``out`` is written and returned."""
    flat = np.ascontiguousarray(index.reshape(-1))  # host: numba path
    rows = np.ascontiguousarray(rows).reshape(flat.size, -1)  # host: numba path
    _add_rows(out.reshape(out.shape[0], -1), flat, rows)
    return out


# ---------------------------------------------------------------------- max pooling
@_jit
def _window_max(x, a, b, i, j):
    """(maximum, its position 0-3 row-major) of the 2x2 window (i, j) of plane x[a, b]: PyTorch's
    rule, the first maximum in scan order, or the last NaN."""
    best = x[a, b, 2 * i, 2 * j]
    k = 0
    v = x[a, b, 2 * i, 2 * j + 1]
    if v > best or v != v:
        best = v
        k = 1
    v = x[a, b, 2 * i + 1, 2 * j]
    if v > best or v != v:
        best = v
        k = 2
    v = x[a, b, 2 * i + 1, 2 * j + 1]
    if v > best or v != v:
        best = v
        k = 3
    return best, k


@_jit
def _max_pool_2x2(x, out, at):
    n0, n1, oh, ow = out.shape
    for a in range(n0):
        for b in range(n1):
            for i in range(oh):
                for j in range(ow):
                    out[a, b, i, j], at[a, b, i, j] = _window_max(x, a, b, i, j)


@_jit
def _max_unpool_2x2(g, at, gx):
    n0, n1, oh, ow = g.shape
    zero = gx.dtype.type(0)
    for a in range(n0):
        for b in range(n1):
            for i in range(oh):
                for j in range(ow):
                    k = at[a, b, i, j]
                    v = g[a, b, i, j]
                    gx[a, b, 2 * i, 2 * j] = v if k == 0 else zero
                    gx[a, b, 2 * i, 2 * j + 1] = v if k == 1 else zero
                    gx[a, b, 2 * i + 1, 2 * j] = v if k == 2 else zero
                    gx[a, b, 2 * i + 1, 2 * j + 1] = v if k == 3 else zero


@_jit
def _relu_max_pool_2x2(x, out, at):
    n0, n1, oh, ow = out.shape
    zero = out.dtype.type(0)
    for a in range(n0):
        for b in range(n1):
            for i in range(oh):
                for j in range(ow):
                    # The window of x; max(x, 0) changes neither a maximum > 0 nor its first
                    # position (nor a NaN), and makes a window with no value > 0 a 0
                    best, k = _window_max(x, a, b, i, j)
                    if best <= zero:
                        # ReLU passes no gradient where its output is 0 (it does at a NaN, as
                        # PyTorch's): position 4 sends it nowhere
                        k = 4
                        best = zero
                    out[a, b, i, j] = best
                    at[a, b, i, j] = k


def max_pool_2x2(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """2x2 max pooling, stride 2, of (N0, N1, H, W) ``x`` with even H and W: (output, the winner's
    position 0-3 in each window, row-major)."""
    n0, n1, h, w = x.shape
    out = _workspace.lend((n0, n1, h // 2, w // 2), x.dtype)
    at = _workspace.lend((n0, n1, h // 2, w // 2), np.uint8)
    _parallel.over_parts(x, n0, x.size, lambda lo, hi: _max_pool_2x2(x[lo:hi], out[lo:hi], at[lo:hi]))
    return out, at


def relu_max_pool_2x2(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`max_pool_2x2` of ``max(x, 0)`` in one pass, without the ReLU's output: (output,
    winner positions); a window whose output is 0 has position 4, which :func:`max_unpool_2x2`
    gives no gradient (ReLU's gradient is 0 there; at a NaN it passes, as PyTorch's)."""
    n0, n1, h, w = x.shape
    out = _workspace.lend((n0, n1, h // 2, w // 2), x.dtype)
    at = _workspace.lend((n0, n1, h // 2, w // 2), np.uint8)
    _parallel.over_parts(x, n0, x.size, lambda lo, hi: _relu_max_pool_2x2(x[lo:hi], out[lo:hi], at[lo:hi]))
    return out, at


def max_unpool_2x2(g: np.ndarray, at: np.ndarray) -> np.ndarray:
    """The input gradient of :func:`max_pool_2x2`: each window's gradient at its winner, zeros elsewhere
    (everywhere in a window whose position is 4)."""
    n0, n1, oh, ow = g.shape
    gx = _workspace.lend((n0, n1, 2 * oh, 2 * ow), g.dtype)
    _parallel.over_parts(g, n0, gx.size, lambda lo, hi: _max_unpool_2x2(g[lo:hi], at[lo:hi], gx[lo:hi]))
    return gx


# ---------------------------------------------------------------------- im2col by rows, row sums
@_jit
def _im2col_rows(x, out, kh, kw, sh, sw, dh, dw, top, left, oh, ow):
    """out[(n*OH + i)*OW + j, (c*kh + p)*kw + q] = x[n, c, i*sh + p*dh - top, j*sw + q*dw - left]
    (0 outside ``x``): one receptive field per row. Filled from zero-bordered copies of an image's
    planes, one output row of the image at a time (its OW rows of ``out`` stay in the L1 cache
    while each of their columns is written: measured 25% faster than row by row, and another 13%
    faster than column by column over the whole chunk)."""
    n_, c_, h, w = x.shape
    ph = (oh - 1) * sh + (kh - 1) * dh + 1
    pw = (ow - 1) * sw + (kw - 1) * dw + 1
    planes = np.zeros((c_, ph, pw), dtype=out.dtype)  # host: numba path; an image's zero-bordered planes
    r_lo, r_hi = max(0, top), min(ph, h + top)
    s_lo, s_hi = max(0, left), min(pw, w + left)
    width = c_ * kh * kw
    flat = out.reshape(-1)
    for n in range(n_):
        for c in range(c_):
            for r in range(r_lo, r_hi):
                for s in range(s_lo, s_hi):
                    planes[c, r, s] = x[n, c, r - top, s - left]
        for i in range(oh):
            first = (n * oh + i) * ow * width
            for c in range(c_):
                for p in range(kh):
                    source = planes[c, i * sh + p * dh]
                    for q in range(kw):
                        at = first + (c * kh + p) * kw + q
                        for j in range(ow):
                            flat[at + j * width] = source[j * sw + q * dw]


def im2col_rows(x: np.ndarray, geometry: tuple[int, ...], kernel: tuple[int, int], out: np.ndarray) -> np.ndarray:
    """Fill ``out`` (N*OH*OW, C*kh*kw) with the receptive fields of (N, C, H, W) ``x``, one per row
    (the transpose of the im2col columns); ``geometry`` is (sh, sw, dh, dw, top, left, oh, ow)."""
    sh, sw, dh, dw, top, left, oh, ow = geometry
    _im2col_rows(x, out, kernel[0], kernel[1], sh, sw, dh, dw, top, left, oh, ow)
    return out


@_jit
def _col2im_add(cols, gx, kh, kw, sh, sw, dh, dw, oh, ow):
    """gx[c, n, i*sh + p*dh, j*sw + q*dw] += cols[(c*kh + p)*kw + q, (n*OH + i)*OW + j]: the im2col
    columns added back where they were read from (``gx`` the zero-bordered input gradient,
    channel-major). Every element receives its terms in the order of the NumPy loop it replaces
    (kernel offset by offset), so the sums are the same to the bit; that loop's strided adds run
    rows of OW elements (7 for a stride-2 layer on 14x14 images) at NumPy's per-row cost, 2.6x
    slower for Conv2d(16, 32, 4, 2, 1) on 64 x 16 x 14 x 14 (measured, one thread)."""
    c_, n_ = gx.shape[0], gx.shape[1]
    for c in range(c_):
        for p in range(kh):
            for q in range(kw):
                row = cols[(c * kh + p) * kw + q]
                for n in range(n_):
                    for i in range(oh):
                        target = gx[c, n, i * sh + p * dh]
                        base = (n * oh + i) * ow
                        for j in range(ow):
                            target[j * sw + q * dw] += row[base + j]


def col2im_add(cols: np.ndarray, gx: np.ndarray, kernel: tuple[int, int], geometry: tuple[int, ...]) -> None:
    """Add the (C*kh*kw, N*OH*OW) columns ``cols`` into the (C, N, H + pads, W + pads) ``gx``, each
    where :func:`im2col_rows` reads it from; ``geometry`` is (sh, sw, dh, dw, oh, ow)."""
    sh, sw, dh, dw, oh, ow = geometry
    _col2im_add(cols, gx, kernel[0], kernel[1], sh, sw, dh, dw, oh, ow)


@_jit_sums
def _row_sums(a, out):
    rows, m = a.shape
    for r in range(rows):
        s = 0.0  # a float64 accumulator
        for j in range(m):
            s += a[r, j]
        out[r] += s


def add_row_sums(a: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``out += a.sum(axis=1)`` for 2-D ``a``, summed in float64 (``out`` is float64)."""
    _row_sums(a, out)
    return out


# ---------------------------------------------------------------------- channels-last copy (1-D convolution)
@_jit
def _channels_last(src, dst, left, right, channel_major):
    """dst[n*pitch + left + t, c] = x[n, c, t], zeros around each image and after the last; ``src`` is
    x's memory as C-contiguous (N, C, L), or (C, N, L) when ``channel_major``."""
    a, b, length = src.shape
    images, rows = (b, a) if channel_major else (a, b)
    pitch = length + left + right
    zero = dst.dtype.type(0)
    for n in range(images):
        base = n * pitch
        for t in range(left):
            for c in range(rows):
                dst[base + t, c] = zero
        for t in range(left + length, pitch):
            for c in range(rows):
                dst[base + t, c] = zero
        base += left
        t = 0
        # Four output rows per pass over the channels: each channel's source row is read 16 bytes
        # at a time (measured: 0.43 ms for 32 x 64 x 512 floats, NumPy's transposing copy 0.9 ms).
        while t + 4 <= length:
            for c in range(rows):
                s = src[c, n] if channel_major else src[n, c]
                dst[base + t, c] = s[t]
                dst[base + t + 1, c] = s[t + 1]
                dst[base + t + 2, c] = s[t + 2]
                dst[base + t + 3, c] = s[t + 3]
            t += 4
        while t < length:
            for c in range(rows):
                dst[base + t, c] = src[c, n, t] if channel_major else src[n, c, t]
            t += 1
    for r in range(images * pitch, dst.shape[0]):
        for c in range(dst.shape[1]):
            dst[r, c] = zero


def channels_last(x: np.ndarray, dst: np.ndarray, left: int, right: int) -> bool:
    """Fill ``dst`` (rows, C) with the (N, C, L) ``x`` channels last, each image between ``left`` and
    ``right`` zero rows, zero rows after the last (``rows >= N * (L + left + right)``); False (nothing
    written) unless ``x`` is C-contiguous in (N, C, L) or (C, N, L) order and ``dst`` C-contiguous."""
    if not dst.flags.c_contiguous or x.dtype != dst.dtype:
        return False
    if x.flags.c_contiguous:
        _channels_last(x, dst, left, right, False)
        return True
    cm = x.transpose(1, 0, 2)
    if cm.flags.c_contiguous:
        _channels_last(cm, dst, left, right, True)
        return True
    return False


# ---------------------------------------------------------------------- Winograd F(2x2, 3x3)
@numba.njit(inline="always")
def _tile_transform(d, r0, s0, out):
    """out[4r + s] = (B^T d B)[r, s] for the 4x4 tile of the 2-D ``d`` at (r0, s0): Winograd
    F(2x2, 3x3)'s input transform, shared by both layouts of V."""
    # rows: t = B^T d (one 4-vector per column of the tile)
    t00 = d[r0, s0] - d[r0 + 2, s0]
    t01 = d[r0, s0 + 1] - d[r0 + 2, s0 + 1]
    t02 = d[r0, s0 + 2] - d[r0 + 2, s0 + 2]
    t03 = d[r0, s0 + 3] - d[r0 + 2, s0 + 3]
    t10 = d[r0 + 1, s0] + d[r0 + 2, s0]
    t11 = d[r0 + 1, s0 + 1] + d[r0 + 2, s0 + 1]
    t12 = d[r0 + 1, s0 + 2] + d[r0 + 2, s0 + 2]
    t13 = d[r0 + 1, s0 + 3] + d[r0 + 2, s0 + 3]
    t20 = d[r0 + 2, s0] - d[r0 + 1, s0]
    t21 = d[r0 + 2, s0 + 1] - d[r0 + 1, s0 + 1]
    t22 = d[r0 + 2, s0 + 2] - d[r0 + 1, s0 + 2]
    t23 = d[r0 + 2, s0 + 3] - d[r0 + 1, s0 + 3]
    t30 = d[r0 + 1, s0] - d[r0 + 3, s0]
    t31 = d[r0 + 1, s0 + 1] - d[r0 + 3, s0 + 1]
    t32 = d[r0 + 1, s0 + 2] - d[r0 + 3, s0 + 2]
    t33 = d[r0 + 1, s0 + 3] - d[r0 + 3, s0 + 3]
    # columns: V = t B
    out[0] = t00 - t02
    out[1] = t01 + t02
    out[2] = t02 - t01
    out[3] = t01 - t03
    out[4] = t10 - t12
    out[5] = t11 + t12
    out[6] = t12 - t11
    out[7] = t11 - t13
    out[8] = t20 - t22
    out[9] = t21 + t22
    out[10] = t22 - t21
    out[11] = t21 - t23
    out[12] = t30 - t32
    out[13] = t31 + t32
    out[14] = t32 - t31
    out[15] = t31 - t33


@_jit
def _wino_input(x, v, top, left, th, tw):
    """V[4r+s, c, (n*th + ti)*tw + tj] = (B^T d B)[r, s] for the 4x4 tile d of (N, C, H, W) ``x``
    whose top-left corner is (2ti - top, 2tj - left) (zero outside ``x``)."""
    n_, c_, h, w = x.shape
    plane = np.zeros((2 * th + 2, 2 * tw + 2), dtype=v.dtype)  # host: numba path; one zero-bordered input plane
    for c in range(c_):
        for n in range(n_):
            for r in range(h):
                for s in range(w):
                    plane[r + top, s + left] = x[n, c, r, s]
            base = n * th * tw
            for ti in range(th):
                r0 = 2 * ti
                for tj in range(tw):
                    s0 = 2 * tj
                    col = base + ti * tw + tj
                    _tile_transform(plane, r0, s0, v[:, c, col])


@_jit
def _wino_output(m, y, bias, has_bias, th, tw):
    """y[n, o, 2ti + r, 2tj + s] = (A^T M A)[r, s] (+ bias[o]) where it lies inside ``y``."""
    n_, o_, oh, ow = y.shape
    for o in range(o_):
        add = bias[o] if has_bias else 0
        for n in range(n_):
            base = n * th * tw
            for ti in range(th):
                r0 = 2 * ti
                for tj in range(tw):
                    s0 = 2 * tj
                    col = base + ti * tw + tj
                    # rows: t = A^T M
                    t00 = m[0, o, col] + m[4, o, col] + m[8, o, col]
                    t01 = m[1, o, col] + m[5, o, col] + m[9, o, col]
                    t02 = m[2, o, col] + m[6, o, col] + m[10, o, col]
                    t03 = m[3, o, col] + m[7, o, col] + m[11, o, col]
                    t10 = m[4, o, col] - m[8, o, col] - m[12, o, col]
                    t11 = m[5, o, col] - m[9, o, col] - m[13, o, col]
                    t12 = m[6, o, col] - m[10, o, col] - m[14, o, col]
                    t13 = m[7, o, col] - m[11, o, col] - m[15, o, col]
                    # columns: Y = t A, written where the 2x2 tile lies inside the output
                    y[n, o, r0, s0] = t00 + t01 + t02 + add
                    if s0 + 1 < ow:
                        y[n, o, r0, s0 + 1] = t01 - t02 - t03 + add
                    if r0 + 1 < oh:
                        y[n, o, r0 + 1, s0] = t10 + t11 + t12 + add
                        if s0 + 1 < ow:
                            y[n, o, r0 + 1, s0 + 1] = t11 - t12 - t13 + add


@_jit_sums
def _wino_output_adjoint(g, m, gb, need_gb, th, tw):
    """dM = A g A^T per tile: the adjoint of ``_wino_output`` (g outside the output reads as 0);
    adds each output channel's sum of ``g`` (the bias gradient) to ``gb`` when asked."""
    n_, o_, oh, ow = g.shape
    plane = np.zeros((2 * th, 2 * tw), dtype=m.dtype)  # host: numba path
    for o in range(o_):
        for n in range(n_):
            total = 0.0
            for r in range(oh):
                for s in range(ow):
                    plane[r, s] = g[n, o, r, s]
                    total += g[n, o, r, s]
            if need_gb:
                gb[o] += total
            base = n * th * tw
            for ti in range(th):
                for tj in range(tw):
                    e00 = plane[2 * ti, 2 * tj]
                    e01 = plane[2 * ti, 2 * tj + 1]
                    e10 = plane[2 * ti + 1, 2 * tj]
                    e11 = plane[2 * ti + 1, 2 * tj + 1]
                    # columns: t = e A^T (2 -> 4)
                    t00, t01, t02, t03 = e00, e00 + e01, e00 - e01, -e01
                    t10, t11, t12, t13 = e10, e10 + e11, e10 - e11, -e11
                    col = base + ti * tw + tj
                    # rows: dM = A t (2 -> 4)
                    m[0, o, col] = t00
                    m[1, o, col] = t01
                    m[2, o, col] = t02
                    m[3, o, col] = t03
                    m[4, o, col] = t00 + t10
                    m[5, o, col] = t01 + t11
                    m[6, o, col] = t02 + t12
                    m[7, o, col] = t03 + t13
                    m[8, o, col] = t00 - t10
                    m[9, o, col] = t01 - t11
                    m[10, o, col] = t02 - t12
                    m[11, o, col] = t03 - t13
                    m[12, o, col] = -t10
                    m[13, o, col] = -t11
                    m[14, o, col] = -t12
                    m[15, o, col] = -t13


@_jit
def _wino_input_adjoint(v, gx, top, left, th, tw):
    """gx = the sum of B dV B^T over the tiles, each added back where it was read (the adjoint of
    ``_wino_input``); every element of ``gx`` is written."""
    n_, c_, h, w = gx.shape
    plane = np.empty((2 * th + 2, 2 * tw + 2), dtype=v.dtype)  # host: numba path
    for c in range(c_):
        for n in range(n_):
            plane[:, :] = 0
            base = n * th * tw
            for ti in range(th):
                r0 = 2 * ti
                for tj in range(tw):
                    s0 = 2 * tj
                    col = base + ti * tw + tj
                    # columns: t = dV B^T
                    for r in range(4):
                        v0 = v[4 * r, c, col]
                        v1 = v[4 * r + 1, c, col]
                        v2 = v[4 * r + 2, c, col]
                        v3 = v[4 * r + 3, c, col]
                        a0 = v0
                        a1 = v1 - v2 + v3
                        a2 = v1 + v2 - v0
                        a3 = -v3
                        # rows: B t, row r of t spreads to input rows by B's column r
                        if r == 0:
                            plane[r0, s0] += a0
                            plane[r0, s0 + 1] += a1
                            plane[r0, s0 + 2] += a2
                            plane[r0, s0 + 3] += a3
                            plane[r0 + 2, s0] -= a0
                            plane[r0 + 2, s0 + 1] -= a1
                            plane[r0 + 2, s0 + 2] -= a2
                            plane[r0 + 2, s0 + 3] -= a3
                        elif r == 1:
                            plane[r0 + 1, s0] += a0
                            plane[r0 + 1, s0 + 1] += a1
                            plane[r0 + 1, s0 + 2] += a2
                            plane[r0 + 1, s0 + 3] += a3
                            plane[r0 + 2, s0] += a0
                            plane[r0 + 2, s0 + 1] += a1
                            plane[r0 + 2, s0 + 2] += a2
                            plane[r0 + 2, s0 + 3] += a3
                        elif r == 2:
                            plane[r0 + 1, s0] -= a0
                            plane[r0 + 1, s0 + 1] -= a1
                            plane[r0 + 1, s0 + 2] -= a2
                            plane[r0 + 1, s0 + 3] -= a3
                            plane[r0 + 2, s0] += a0
                            plane[r0 + 2, s0 + 1] += a1
                            plane[r0 + 2, s0 + 2] += a2
                            plane[r0 + 2, s0 + 3] += a3
                        else:
                            plane[r0 + 1, s0] += a0
                            plane[r0 + 1, s0 + 1] += a1
                            plane[r0 + 1, s0 + 2] += a2
                            plane[r0 + 1, s0 + 3] += a3
                            plane[r0 + 3, s0] -= a0
                            plane[r0 + 3, s0 + 1] -= a1
                            plane[r0 + 3, s0 + 2] -= a2
                            plane[r0 + 3, s0 + 3] -= a3
            for r in range(h):
                for s in range(w):
                    gx[n, c, r, s] = plane[r + top, s + left]


_G = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]])  # host: numba path


def winograd_tiles(oh: int, ow: int) -> tuple[int, int]:
    """(tile rows, tile columns) of 2x2 output tiles covering an OH x OW output."""
    return math.ceil(oh / 2), math.ceil(ow / 2)


def winograd_weight(w: np.ndarray) -> np.ndarray:
    """U (16, C_out, C_in) = G w G^T for (C_out, C_in, 3, 3) ``w`` (one compiled pass; NumPy's
    batched 4x3 products took 0.3 ms for a 64x32 layer)."""
    u = np.empty((16, w.shape[0], w.shape[1]), dtype=w.dtype)  # host: numba path
    _wino_weight_blocks(w, u)
    return u


def winograd_weight_adjoint(du: np.ndarray, c_out: int, c_in: int) -> np.ndarray:
    """dw (C_out, C_in, 3, 3) = G^T dU G, the adjoint of :func:`winograd_weight`."""
    dw = np.empty((c_out, c_in, 3, 3), dtype=du.dtype)  # host: numba path
    _wino_weight_adjoint_blocks(du, dw)
    return dw


def winograd_input(x: np.ndarray, top: int, left: int, th: int, tw: int, out: np.ndarray) -> np.ndarray:
    _wino_input(x, out, top, left, th, tw)
    return out


def winograd_output(m: np.ndarray, y: np.ndarray, bias: np.ndarray | None, th: int, tw: int) -> None:
    dummy = np.zeros(1, dtype=y.dtype)  # host: numba path
    _wino_output(m, y, dummy if bias is None else bias, bias is not None, th, tw)


def winograd_output_adjoint(g: np.ndarray, th: int, tw: int, out: np.ndarray, gb: np.ndarray | None) -> np.ndarray:
    """Fills ``out`` (16, C_out, tiles) with dM; adds the per-channel sums of ``g`` to float64 ``gb``."""
    _wino_output_adjoint(g, out, np.zeros(1) if gb is None else gb, gb is not None, th, tw)  # host: numba path
    return out


def winograd_input_adjoint(v: np.ndarray, gx: np.ndarray, top: int, left: int, th: int, tw: int) -> None:
    _wino_input_adjoint(v, gx, top, left, th, tw)


# ---------------------------------------------------------------------- Winograd chunks in one compiled call
# With oneDNN's GEMM, a chunk's transforms and its 16 products run in one compiled call that calls
# ``dnnl_sgemm`` itself (``gemm.sgemm_function()``): no Python between them, and the GIL is held
# nowhere in the chunk, so the parts of a batch on two threads do not wait for each other's Python
# (measured, CIFAR CNN training step: one thread 0.7 ms less; two threads 14.0 ms instead of 14.8;
# the MNIST CNN on two threads 9.6 ms instead of 10.3).
_N, _T = 78, 84  # BLAS's "N" and "T"
_F32_ONE, _F32_ZERO = np.float32(1.0), np.float32(0.0)  # host: numba constants


@_jit
def _plane_products(sgemm, ta, tb, a, b, c, beta):
    """c[k] = op(a[k]) @ op(b[k]) (+ beta * c[k]) for every plane k, each plane's rows contiguous;
    returns oneDNN's first nonzero status, or 0."""
    m, n = c.shape[1], c.shape[2]
    inner = a.shape[2] if ta == _N else a.shape[1]
    lda, ldb, ldc = a.strides[1] // a.itemsize, b.strides[1] // b.itemsize, c.strides[1] // c.itemsize
    for k in range(c.shape[0]):
        status = sgemm(
            ta, tb, m, n, inner, _F32_ONE, a[k].ctypes.data, lda, b[k].ctypes.data, ldb, beta, c[k].ctypes.data, ldc
        )
        if status != 0:
            return status
    return 0


@_jit
def _wino_forward_chunk(sgemm, x, u, v, m, y, bias, has_bias, top, left, th, tw):
    _wino_input(x, v, top, left, th, tw)
    status = _plane_products(sgemm, _N, _N, u, v, m, _F32_ZERO)
    if status == 0:
        _wino_output(m, y, bias, has_bias, th, tw)
    return status


@_jit
def _wino_input_t(x, p, vt, top, left, th, tw):
    """The transform of ``_wino_input`` with each plane transposed: vt[k, col, c] = V[k, c, col];
    ``p`` (N, 2*th + 2, 2*tw + 2, C) is scratch for the input, channels last, in a zero border."""
    n_, c_, h, w = x.shape
    p[:] = 0
    for n in range(n_):
        for c in range(c_):
            for r in range(h):
                for s in range(w):
                    p[n, r + top, s + left, c] = x[n, c, r, s]
    for n in range(n_):
        for ti in range(th):
            r0 = 2 * ti
            for tj in range(tw):
                s0 = 2 * tj
                col = (n * th + ti) * tw + tj
                for c in range(c_):
                    _tile_transform(p[n, :, :, c], r0, s0, vt[:, col, c])


@_jit
def _wino_backward_chunk(sgemm, g, x, u, v, vt, p, m, gb, need_gb, du, need_du, gx, need_gx, top, left, th, tw):
    _wino_output_adjoint(g, m, gb, need_gb, th, tw)
    if need_du:
        # V rebuilt rather than kept from the forward pass, each plane transposed (``vt``: the same
        # memory as ``v``): dM V^T then reads both operands along their rows (measured: 30% faster
        # products than reading V^T as a transposed operand)
        _wino_input_t(x, p, vt, top, left, th, tw)
        status = _plane_products(sgemm, _N, _N, m, vt, du, _F32_ONE)  # dU += dM V^T
        if status != 0:
            return status
    if need_gx:
        status = _plane_products(sgemm, _T, _N, u, m, v, _F32_ZERO)  # dV = U^T dM
        if status != 0:
            return status
        _wino_input_adjoint(v, gx, top, left, th, tw)
    return 0


def winograd_forward_chunk(
    sgemm: object, x: np.ndarray, u: np.ndarray, v: np.ndarray, m: np.ndarray, y: np.ndarray,
    bias: np.ndarray | None, top: int, left: int, th: int, tw: int,
) -> int:  # fmt: skip
    """One chunk of the forward pass (float32): V from ``x``, ``M = U @ V`` on ``sgemm``, ``y`` from
    M; returns oneDNN's status (0: done)."""
    dummy = np.zeros(1, dtype=y.dtype)  # host: numba path
    return int(_wino_forward_chunk(sgemm, x, u, v, m, y, dummy if bias is None else bias, bias is not None,
                                   top, left, th, tw))  # fmt: skip


def winograd_backward_chunk(
    sgemm: object, g: np.ndarray, x: np.ndarray, u: np.ndarray, v: np.ndarray, vt: np.ndarray, p: np.ndarray,
    m: np.ndarray, gb: np.ndarray | None, du: np.ndarray | None, gx: np.ndarray | None, top: int, left: int,
    th: int, tw: int,
) -> int:  # fmt: skip
    """One chunk of the backward pass (float32): dM from ``g`` (adding the bias gradient to float64
    ``gb``), ``du += dM V^T``, ``gx`` from ``U^T dM``, each when not None; ``v`` (16, C, tiles) and
    ``vt`` (16, tiles, C) are two views of one scratch buffer, ``p`` (N, 2*th + 2, 2*tw + 2, C) scratch
    for the input. Returns oneDNN's status."""
    return int(_wino_backward_chunk(
        sgemm, g, x, u, v, vt, p, m, np.zeros(1) if gb is None else gb, gb is not None,  # host: numba path
        np.zeros((1, 1, 1), dtype=u.dtype) if du is None else du, du is not None,  # host: numba path
        np.zeros((1, 1, 1, 1), dtype=g.dtype) if gx is None else gx, gx is not None,  # host: numba path
        top, left, th, tw,
    ))  # fmt: skip


# ---------------------------------------------------------------------- depthwise convolution
# A depthwise convolution (groups = C_in, one input channel per group) does kh*kw multiply-adds per
# output, too few for a GEMM: im2col copied the input kh*kw times to run 64 one-row products. These
# kernels compute it directly, a chunk of images of one channel at a time, with loops that run over
# the whole chunk (a loop over one output row, 8 or 16 values, is too short to vectorize).
#
# The input is dealt out by columns over ``sw`` phase planes (column ``t*sw + b`` of an image goes to
# column ``t`` of plane ``b``): with W a multiple of sw, one flat pass over each image (the strided
# copies row by row it replaces took 4x longer). A plane keeps every input row, ``wp = W / sw``
# values each, between zero rows (``top`` above), and the chunk's images follow each other ``block``
# values apart. Output (i, j) of an image then sits at ``i*sh*wp + j`` of an accumulator laid out like
# the planes (the rows between output rows are scratch), and kernel offset (p, q) reads plane ``b``
# ``p*dh*wp + B`` further on, where ``(j + B)*sw + b`` is the input column it reads: each offset is one
# long loop ``acc[k] += w[p, q] * plane[k + offset]``, and up to 4 offsets share a pass.
#
# Near the left and right edges (padding) an offset's read can leave its row (j + B < 0 or >= wp)
# and land on the neighbouring row instead of a zero: the offsets with such a shift B (the "wrapping"
# ones) are summed first, apart, and their sums zeroed at those output columns (where their true
# terms are all padding, zeros). The gradients gather the same way from the output gradient laid out
# like the accumulator (zeros between the output rows and columns), reading, for a wrapping shift B,
# a copy of it with those columns zeroed.
DEPTHWISE_CHUNK_BYTES = 96 * 2**10  # scratch per chunk of images: stays in the L2 cache


def depthwise_layout(
    h: int, wd: int, out_hw: tuple[int, int], kernel: tuple[int, int], stride: tuple[int, int],
    dilation: tuple[int, int], top: int, left: int, dtype: Any,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:  # fmt: skip
    """The plan of the depthwise kernels for (H, W) images (see above), or None when an output row
    does not fit the accumulator's rows or an offset's reads would leave its row by more than a row
    (padding wider than the kernel needs, or as wide as the input): (sizes, offsets in the order the
    forward pass sums them, offsets by phase, the wrapping shifts' zero columns)."""
    return _depthwise_layout(h, wd, tuple(out_hw), tuple(kernel), stride, dilation, top, left, np.dtype(dtype).itemsize)


@functools.lru_cache(maxsize=256)
def _depthwise_layout(
    h: int, wd: int, out_hw: tuple[int, int], kernel: tuple[int, int], stride: tuple[int, int],
    dilation: tuple[int, int], top: int, left: int, itemsize: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:  # fmt: skip
    (oh, ow), (kh, kw), (sh, sw), (dh, dw) = out_hw, kernel, stride, dilation
    wp = -(-wd // sw)
    if ow > sh * wp:  # an output row longer than the accumulator's (padding wider than the kernel)
        return None
    # the input's rows, every row a valid output reads, and the last output row (longer than a row when
    # the padding is wide: its end is in the scratch rows below)
    rows = max(top + h, (oh - 1) * sh + (kh - 1) * dh + 1, (oh - 1) * sh + -(-ow // wp))
    block = rows * wp
    cols = []  # per kernel column q: (phase b, shift B)
    for q in range(kw):
        b, shift = (q * dw - left) % sw, (q * dw - left) // sw
        if shift <= -wp or ow - 1 + shift >= 2 * wp:
            return None
        cols.append((b, shift))
    wraps: dict[int, tuple[int, int, int, int]] = {}  # wrapping shift: its zero output columns
    for _, shift in cols:
        lo1, hi1 = (0, min(ow, -shift)) if shift < 0 else (0, 0)
        lo2, hi2 = (max(0, wp - shift), ow) if wp - shift < ow else (0, 0)
        if hi1 > lo1 or hi2 > lo2:
            wraps[shift] = (lo1, hi1, lo2, hi2)
    order = {shift: 1 + i for i, shift in enumerate(sorted(wraps))}  # 0: an offset that never wraps
    zero_cols = np.array([wraps[s] for s in sorted(wraps)] or [(0, 0, 0, 0)], dtype=np.int64)  # host: numba path
    # offsets: (phase, source, offset, weight index, wrap group); the source is the phase plane for
    # the forward pass and weight gradient, the output gradient's copy (the group) for the gather
    rows_of = [
        (b, p * dh * wp + shift, p * kw + q, order.get(shift, 0))
        for p in range(kh)
        for q, (b, shift) in enumerate(cols)
    ]
    forward = sorted(((b, b, off, k, g) for b, off, k, g in rows_of), key=lambda r: (r[4] == 0, r[4], r[0], r[2]))
    gather = sorted((b, g, off, k, g) for b, off, k, g in rows_of)
    taps = np.array(forward, dtype=np.int64)  # host: numba path
    taps_g = np.array(gather, dtype=np.int64)  # host: numba path
    lo, hi = int(taps[:, 2].min()), int(taps[:, 2].max())
    groups = len(wraps)
    per_image = (2 * sw + 2 + 2 * groups) * block * itemsize
    # how an image is dealt out: a copy (sw = 1), float32 pairs split as 64-bit words (sw = 2, even W),
    # a strided pass per phase (W a multiple of sw), or row by row
    mode = 0 if sw == 1 else 1 if sw == 2 and wd % 2 == 0 and itemsize == 4 else 2 if wd % sw == 0 else 3
    nb = max(1, DEPTHWISE_CHUNK_BYTES // per_image)
    sizes = [sh, sw, top, wp, block, max(0, -lo), max(0, hi), groups, nb, max(0, hi) + 1, max(0, -lo) + 1, mode]
    ints = np.array(sizes, dtype=np.int64)  # host: numba path
    for a in (ints, taps, taps_g, zero_cols):
        a.flags.writeable = False  # cached and shared
    return ints, taps, taps_g, zero_cols


# What ``ints`` holds, by position.
_SH, _SW, _TOP, _WP, _BLOCK, _LEAD, _GLEAD, _GROUPS, _NB, _TAIL, _GTAIL, _MODE = range(12)


@numba.njit(inline="always")
def _deal_chunk(xf, x64, x_cm, c, n0, images, n_, c_, h, wd, src, src32, base, block, sw, wp, mode):
    """Input plane (n, c) of each image n of [n0, n0 + images) dealt out over the phase planes
    ``src[b]``, image j's first row at ``base + j*block``: one compiled loop per way of dealing (one
    loop choosing the way per image ran 2-3x slower: LLVM left its copies unvectorized)."""
    if mode == 0:
        _deal_copy(xf, x_cm, c, n0, images, n_, c_, h * wd, src[0], base, block)
    elif mode == 1:
        _deal_pairs(x64, x_cm, c, n0, images, n_, c_, h * wd, src32[0], src32[1], base, block)
    elif mode == 2:
        _deal_strided(xf, x_cm, c, n0, images, n_, c_, h * wd, src, base, block, sw)
    else:
        for j in range(images):
            start = _plane_start(c, n0 + j, n_, c_, x_cm, h * wd)
            _deal_rows(xf, start, h, wd, src, base + j * block, sw, wp)


@numba.njit(inline="always")
def _collect_chunk(gf, g64, g_cm, c, n0, images, n_, c_, h, wd, planes, planes32, base, block, sw, wp, mode):
    """The adjoint of :func:`_deal_chunk` into ``gf`` (N, C, H, W), or (C, N, H, W) when ``g_cm``."""
    if mode == 0:
        _collect_copy(gf, g_cm, c, n0, images, n_, c_, h * wd, planes[0], base, block)
    elif mode == 1:
        _collect_pairs(g64, g_cm, c, n0, images, n_, c_, h * wd, planes32[0], planes32[1], base, block)
    elif mode == 2:
        _collect_strided(gf, g_cm, c, n0, images, n_, c_, h * wd, planes, base, block, sw)
    else:
        for j in range(images):
            start = _plane_start(c, n0 + j, n_, c_, g_cm, h * wd)
            _collect_rows(gf, start, h, wd, planes, base + j * block, sw, wp)


# Indices are unsigned in these loops: no checks for negative indices. ``size`` = H*W, a plane's
# values; each phase plane of an image holds size / sw of them.
@_jit
def _deal_copy(xf, x_cm, c, n0, images, n_, c_, size, d, base, block):
    for j in range(images):
        s0 = U64(_plane_start(c, n0 + j, n_, c_, x_cm, size))
        d0 = U64(base + j * block)
        for k in range(U64(size)):
            d[d0 + k] = xf[s0 + k]


@_jit
def _deal_pairs(x64, x_cm, c, n0, images, n_, c_, size, d0, d1, base, block):
    """float32 pairs as one 64-bit word each: the low half (the even column) to ``d0``, the high to ``d1``."""
    for j in range(images):
        s0 = U64(_plane_start(c, n0 + j, n_, c_, x_cm, size) // 2)
        t0 = U64(base + j * block)
        for k in range(U64(size // 2)):
            v = x64[s0 + k]
            d0[t0 + k] = numba.uint32(v & U64(0xFFFFFFFF))
            d1[t0 + k] = numba.uint32(v >> U64(32))


@_jit
def _deal_strided(xf, x_cm, c, n0, images, n_, c_, size, src, base, block, sw):
    for j in range(images):
        s0 = U64(_plane_start(c, n0 + j, n_, c_, x_cm, size))
        t0 = U64(base + j * block)
        for b in range(sw):
            d = src[b]
            sb = s0 + U64(b)
            for k in range(U64(size // sw)):
                d[t0 + k] = xf[sb + U64(sw) * k]


@_jit
def _collect_copy(gf, g_cm, c, n0, images, n_, c_, size, p, base, block):
    for j in range(images):
        s0 = U64(_plane_start(c, n0 + j, n_, c_, g_cm, size))
        p0 = U64(base + j * block)
        for k in range(U64(size)):
            gf[s0 + k] = p[p0 + k]


@_jit
def _collect_pairs(g64, g_cm, c, n0, images, n_, c_, size, p0, p1, base, block):
    for j in range(images):
        s0 = U64(_plane_start(c, n0 + j, n_, c_, g_cm, size) // 2)
        t0 = U64(base + j * block)
        for k in range(U64(size // 2)):
            g64[s0 + k] = U64(p0[t0 + k]) | (U64(p1[t0 + k]) << U64(32))


@_jit
def _collect_strided(gf, g_cm, c, n0, images, n_, c_, size, planes, base, block, sw):
    for j in range(images):
        s0 = U64(_plane_start(c, n0 + j, n_, c_, g_cm, size))
        t0 = U64(base + j * block)
        for b in range(sw):
            p = planes[b]
            sb = s0 + U64(b)
            for k in range(U64(size // sw)):
                gf[sb + U64(sw) * k] = p[t0 + k]


@_jit
def _deal_rows(xf, start, h, wd, src, base, sw, wp):
    """:func:`_deal_chunk` of one image row by row, for a width that is not a multiple of the stride
    (zeros past the last column of a phase)."""
    zero = src.dtype.type(0)
    for b in range(sw):
        d = src[b]
        count = U64((wd - b + sw - 1) // sw)
        for u in range(h):
            row = U64(base + u * wp)
            s = U64(start + u * wd + b)
            for t in range(count):
                d[row + t] = xf[s + U64(sw) * t]
            for t in range(count, U64(wp)):
                d[row + t] = zero


@_jit
def _collect_rows(gf, start, h, wd, planes, base, sw, wp):
    for b in range(sw):
        p = planes[b]
        count = U64((wd - b + sw - 1) // sw)
        for u in range(h):
            row = U64(base + u * wp)
            s = U64(start + u * wd + b)
            for t in range(count):
                gf[s + U64(sw) * t] = p[row + t]


@numba.njit(inline="always")
def _zero_columns(d, images, block, rows, pitch, cols):
    """Columns [cols[0], cols[1]) and [cols[2], cols[3]) of the first ``rows`` rows (``pitch`` apart)
    of each of the ``images`` blocks of ``d`` to zero."""
    zero = d.dtype.type(0)
    for j in range(images):
        for r in range(rows):
            at = j * block + r * pitch
            for t in range(cols[0], cols[1]):
                d[at + t] = zero
            for t in range(cols[2], cols[3]):
                d[at + t] = zero


@numba.njit(inline="always")
def _taps_pass(acc, src, start, sign, taps, wv, t0, count, length, accumulate):
    """``acc[k] (+)= sum of wv[t] * src[taps[t, 1], start + sign*taps[t, 2] + k]`` over the ``count``
    (1 to 4) offsets from ``t0``: one pass over ``acc`` for up to 4 offsets."""
    n = U64(length)
    s0 = src[taps[t0, 1], start + sign * taps[t0, 2] :]
    w0 = wv[t0]
    if count == 1:
        if accumulate:
            for k in range(n):
                acc[k] += w0 * s0[k]
        else:
            for k in range(n):
                acc[k] = w0 * s0[k]
        return
    s1 = src[taps[t0 + 1, 1], start + sign * taps[t0 + 1, 2] :]
    w1 = wv[t0 + 1]
    if count == 2:
        if accumulate:
            for k in range(n):
                acc[k] += w0 * s0[k] + w1 * s1[k]
        else:
            for k in range(n):
                acc[k] = w0 * s0[k] + w1 * s1[k]
        return
    s2 = src[taps[t0 + 2, 1], start + sign * taps[t0 + 2, 2] :]
    w2 = wv[t0 + 2]
    if count == 3:
        if accumulate:
            for k in range(n):
                acc[k] += w0 * s0[k] + w1 * s1[k] + w2 * s2[k]
        else:
            for k in range(n):
                acc[k] = w0 * s0[k] + w1 * s1[k] + w2 * s2[k]
        return
    s3 = src[taps[t0 + 3, 1], start + sign * taps[t0 + 3, 2] :]
    w3 = wv[t0 + 3]
    if accumulate:
        for k in range(n):
            acc[k] += w0 * s0[k] + w1 * s1[k] + w2 * s2[k] + w3 * s3[k]
    else:
        for k in range(n):
            acc[k] = w0 * s0[k] + w1 * s1[k] + w2 * s2[k] + w3 * s3[k]


@numba.njit(inline="always")
def _dots_pass(sums, e, src, start, taps, t0, count, length):
    """``sums[taps[t, 3]] += sum of e[k] * src[taps[t, 1], start + taps[t, 2] + k]`` over the ``count``
    (1 to 4) offsets from ``t0``, in one pass over ``e`` (each sum in e's dtype, then added)."""
    n = U64(length)
    zero = e.dtype.type(0)
    s0 = src[taps[t0, 1], start + taps[t0, 2] :]
    s1 = src[taps[t0 + min(1, count - 1), 1], start + taps[t0 + min(1, count - 1), 2] :]
    a0 = a1 = a2 = a3 = zero
    if count <= 2:
        for k in range(n):
            v = e[k]
            a0 += v * s0[k]
            a1 += v * s1[k]
    else:
        s2 = src[taps[t0 + 2, 1], start + taps[t0 + 2, 2] :]
        s3 = src[taps[t0 + count - 1, 1], start + taps[t0 + count - 1, 2] :]
        for k in range(n):
            v = e[k]
            a0 += v * s0[k]
            a1 += v * s1[k]
            a2 += v * s2[k]
            a3 += v * s3[k]
    sums[taps[t0, 3]] += a0
    if count > 1:
        sums[taps[t0 + 1, 3]] += a1
    if count > 2:
        sums[taps[t0 + 2, 3]] += a2
    if count > 3:
        sums[taps[t0 + 3, 3]] += a3


@numba.njit(inline="always")
def _run_end(taps, t, column):
    """The end of the run of offsets from ``t`` with the same ``taps[:, column]``."""
    end = t
    while end < taps.shape[0] and taps[end, column] == taps[t, column]:
        end += 1
    return end


@numba.njit(inline="always")
def _group(t, t_end):
    """How many of the offsets [t, t_end) the next pass takes: at most 4, the passes of a run as even
    as they can be (9 offsets: 3 passes of 3, not 4 + 4 + 1)."""
    left = t_end - t
    return -(-left // -(-left // 4))


@numba.njit(inline="always")
def _plane_start(c, n, n_, c_, channel_major, size):
    return (c * n_ + n if channel_major else n * c_ + c) * size


@_jit_sums
def _depthwise_forward(x, x64, x_cm, w, bias, has_bias, out, c_lo, c_hi, mult, ints, taps, zero_cols, src, src32, acc):
    """out[o, n] (channel-major, C-contiguous) = the depthwise convolution of input plane (n, o // mult)
    with w[o] (+ bias[o]); ``x`` is C-contiguous (N, C, H, W), or (C, N, H, W) when ``x_cm``. ``x64``,
    ``src32``: ``x`` and the scratch ``src`` as 64- and 32-bit words, made outside (numba's own views
    are not known to be contiguous, and loops over them do not vectorize); ``acc`` (1 + wrap groups,
    images * block) scratch."""
    n_, c_, h, wd = (x.shape[1], x.shape[0], x.shape[2], x.shape[3]) if x_cm else x.shape
    oh, ow = out.shape[2], out.shape[3]
    sh, sw, top, wp, block, lead = ints[_SH], ints[_SW], ints[_TOP], ints[_WP], ints[_BLOCK], ints[_LEAD]
    groups, nb, mode = ints[_GROUPS], ints[_NB], ints[_MODE]
    nt = taps.shape[0]
    xf = x.reshape(-1)
    of = out.reshape(-1)
    wv = np.empty(nt, dtype=out.dtype)  # host: numba path
    pitch = sh * wp
    for c in range(c_lo, c_hi):
        for n0 in range(0, n_, nb):
            nbe = min(nb, n_ - n0)
            length = nbe * block
            _deal_chunk(xf, x64, x_cm, c, n0, nbe, n_, c_, h, wd, src, src32, lead + top * wp, block, sw, wp, mode)
            for m in range(mult):
                o = c * mult + m
                for t in range(nt):
                    wv[t] = w[o, taps[t, 3]]
                t = 0
                for gi in range(groups):  # each wrapping group apart, its sums zeroed where it wraps
                    target = acc[gi]
                    first, t_end = t, _run_end(taps, t, 4)
                    while t < t_end:
                        count = _group(t, t_end)
                        _taps_pass(target, src, lead, 1, taps, wv, t, count, length, t > first)
                        t += count
                    _zero_columns(target, nbe, block, oh, pitch, zero_cols[gi])
                result = acc[0]
                for gi in range(1, groups):
                    more = acc[gi]
                    for k in range(U64(length)):
                        result[k] += more[k]
                first = t
                while t < nt:  # the offsets that never wrap
                    count = _group(t, nt)
                    _taps_pass(result, src, lead, 1, taps, wv, t, count, length, groups > 0 or t > first)
                    t += count
                add = bias[o] if has_bias else out.dtype.type(0)
                for j in range(nbe):
                    row0 = (o * n_ + n0 + j) * oh * ow
                    for i in range(oh):
                        d = U64(row0 + i * ow)
                        s = U64(j * block + i * pitch)
                        for jj in range(U64(ow)):
                            of[d + jj] = result[s + jj] + add


@_jit_sums
def _depthwise_backward(
    x, x64, x_cm, g, g_cm, w, gx, gx64, gx_cm, need_gx, gw, need_gw, gb, need_gb, c_lo, c_hi, mult, ints, taps, taps_g,
    zero_cols, src, src32, ge, planes, planes32,
):  # fmt: skip
    """The adjoints of :func:`_depthwise_forward`: gx (C-contiguous, (C, N, H, W) when ``gx_cm``), and gw
    (C_out, kh*kw) and gb (C_out,) added to in float64 (each chunk's sums in the arrays' dtype
    first); ``g`` is C-contiguous (N, C_out, OH, OW), or (C_out, N, OH, OW) when ``g_cm``. ``ge``
    (1 + wrap groups, ...) holds the output gradient laid out like the accumulator (zeros elsewhere,
    never written) and its copies for the wrapping groups; ``planes`` the input gradient's phases."""
    n_, c_, h, wd = (x.shape[1], x.shape[0], x.shape[2], x.shape[3]) if x_cm else x.shape
    c_out = w.shape[0]
    oh, ow = g.shape[2], g.shape[3]
    sh, sw, top, wp, block = ints[_SH], ints[_SW], ints[_TOP], ints[_WP], ints[_BLOCK]
    lead, glead, groups, nb, mode = ints[_LEAD], ints[_GLEAD], ints[_GROUPS], ints[_NB], ints[_MODE]
    nt = taps.shape[0]
    zero = g.dtype.type(0)
    xf = x.reshape(-1)
    gf = g.reshape(-1)
    gxf = gx.reshape(-1)
    wv_g = np.empty(nt, dtype=g.dtype)  # host: numba path
    pitch = sh * wp
    for c in range(c_lo, c_hi):
        for n0 in range(0, n_, nb):
            nbe = min(nb, n_ - n0)
            length = nbe * block
            if need_gw:
                _deal_chunk(xf, x64, x_cm, c, n0, nbe, n_, c_, h, wd, src, src32, lead + top * wp, block, sw, wp, mode)
            for m in range(mult):
                o = c * mult + m
                e = ge[0]
                total = 0.0
                for j in range(nbe):
                    s0 = _plane_start(o, n0 + j, n_, c_out, g_cm, oh * ow)
                    for i in range(oh):
                        d = U64(glead + j * block + i * pitch)
                        s = U64(s0 + i * ow)
                        for jj in range(U64(ow)):
                            v = gf[s + jj]
                            e[d + jj] = v
                            total += v
                if need_gb:
                    gb[o] += total
                for gi in range(groups):  # copies with the columns a wrapping group's reads land on zeroed
                    copy = ge[1 + gi]
                    for k in range(U64(glead), U64(glead + nb * block)):
                        copy[k] = e[k]
                    _zero_columns(copy[glead:], nb, block, oh, pitch, zero_cols[gi])
                if need_gw:
                    t = 0
                    while t < nt:
                        t_end = _run_end(taps, t, 4)
                        e_t = ge[taps[t, 4], glead:]
                        while t < t_end:
                            count = _group(t, t_end)
                            _dots_pass(gw[o], e_t, src, lead, taps, t, count, length)
                            t += count
                if need_gx:
                    for t in range(nt):
                        wv_g[t] = w[o, taps_g[t, 3]]
                    t = 0
                    for b in range(sw):  # each phase plane gathers over its offsets
                        plane = planes[b]
                        first = t
                        while t < nt and taps_g[t, 0] == b:
                            t += 1
                        if first == t:
                            if m == 0:
                                plane[:length] = zero
                            continue
                        t_end, t = t, first
                        while t < t_end:
                            count = _group(t, t_end)
                            _taps_pass(plane, ge, glead, -1, taps_g, wv_g, t, count, length, m > 0 or t > first)
                            t += count
            if need_gx:
                _collect_chunk(
                    gxf, gx64, gx_cm, c, n0, nbe, n_, c_, h, wd, planes, planes32, top * wp, block, sw, wp, mode
                )


def depthwise_forward(
    x: np.ndarray, w: np.ndarray, bias: np.ndarray | None, out: np.ndarray, layout: Any
) -> np.ndarray:
    """Fill channel-major ``out`` (C_out, N, OH, OW) with the depthwise convolution of (N, C, H, W)
    ``x`` with ``w`` (C_out, 1, kh, kw), C_out a multiple of C, planned by :func:`depthwise_layout`.
    Returns ``out``."""
    ints, taps, _, zero_cols = layout
    xc, x_cm = _planes_of(x, ints)
    w2 = np.ascontiguousarray(w.reshape(w.shape[0], -1))  # host: numba path
    b = bias if bias is not None else np.zeros(1, dtype=out.dtype)  # host: numba path
    mult = w.shape[0] // x.shape[1]
    length = int(ints[_NB] * ints[_BLOCK])

    def part(lo: int, hi: int) -> None:  # input channels lo..hi, their output channels with them
        src, src32 = _scratch((int(ints[_SW]), int(ints[_LEAD] + ints[_TAIL]) + length), out.dtype, ints)
        acc = np.empty((max(1, int(ints[_GROUPS])), length), dtype=out.dtype)  # host: numba path
        _depthwise_forward(
            xc, _words(xc, ints), x_cm, w2, b, bias is not None, out, lo, hi, mult, ints, taps, zero_cols, src, src32,
            acc,
        )  # fmt: skip

    _parallel.over_parts(x, x.shape[1], out.size * w2.shape[1], part)
    return out


def depthwise_backward(
    x: np.ndarray, g: np.ndarray, w: np.ndarray, gx: np.ndarray | None, need_gw: bool, need_gb: bool, layout: Any
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The gradients of :func:`depthwise_forward` for the output gradient ``g`` (N, C_out, OH, OW):
    fills ``gx`` (N, C, H, W) when given, a C-contiguous array or the (C, N, H, W) view of one;
    returns (gw, gb) in float64 (None when not asked for)."""
    ints, taps, taps_g, zero_cols = layout
    c_out = w.shape[0]
    xc, x_cm = _planes_of(x, ints)
    gc, g_cm = _planes_of(g, None)
    w2 = np.ascontiguousarray(w.reshape(c_out, -1))  # host: numba path
    gw = np.zeros(w2.shape if need_gw else (1, 1))  # host: numba path
    gb = np.zeros(c_out if need_gb else 1)  # host: numba path
    stand_in = np.zeros((1, 1, 1, 1), dtype=g.dtype)  # host: numba path
    gx_, gx_cm = _planes_of(gx, ints) if gx is not None else (stand_in, False)
    mult = c_out // x.shape[1]
    length = int(ints[_NB] * ints[_BLOCK])
    sw = int(ints[_SW])

    def part(lo: int, hi: int) -> None:  # input channels lo..hi, their output channels with them
        src, src32 = _scratch((sw if need_gw else 1, int(ints[_LEAD] + ints[_TAIL]) + length), g.dtype, ints)
        ge, _ = _scratch((1 + int(ints[_GROUPS]), int(ints[_GLEAD] + ints[_GTAIL]) + length), g.dtype, ints)
        planes, planes32 = _scratch((sw if gx is not None else 1, length), g.dtype, ints)
        _depthwise_backward(
            xc, _words(xc, ints), x_cm, gc, g_cm, w2, gx_, _words(gx_ if gx is not None else None, ints), gx_cm,
            gx is not None, gw, need_gw, gb, need_gb,
            lo, hi, mult, ints, taps, taps_g, zero_cols, src, src32, ge, planes, planes32,
        )  # fmt: skip

    _parallel.over_parts(x, x.shape[1], 2 * g.size * w2.shape[1], part)
    if gx is not None and not np.shares_memory(gx_, gx):  # filled a copy (gx in neither layout)
        gx[...] = gx_.transpose(1, 0, 2, 3) if gx_cm else gx_
    return (gw if need_gw else None), (gb if need_gb else None)


def _scratch(shape: tuple[int, int], dtype: Any, ints: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A zeroed scratch array (the kernels rely on the zeros they never write) and its 32-bit words
    when the plan reads float32 pairs as 64-bit words (else a stand-in)."""
    a = np.zeros(shape, dtype=dtype)  # host: numba path
    words = a.view(np.uint32) if ints[_MODE] == 1 else np.zeros((1, 1), dtype=np.uint32)  # host: numba path
    return a, words


def _words(a: np.ndarray | None, ints: np.ndarray) -> np.ndarray:
    """C-contiguous float32 ``a`` as 64-bit words when the plan reads pairs so (else a stand-in)."""
    if a is not None and ints[_MODE] == 1:
        return a.reshape(-1).view(np.uint64)
    return np.zeros(1, dtype=np.uint64)  # host: numba path


def _planes_of(a: np.ndarray, ints: np.ndarray | None) -> tuple[np.ndarray, bool]:
    """(N, C, H, W) ``a`` as a C-contiguous array and whether it is (C, N, H, W) (channel-major, as a
    convolution returns), copied only when it is neither; 8-byte aligned when ``ints``' plan reads
    float32 pairs as 64-bit words."""
    if a.shape[0] > 1 and a.transpose(1, 0, 2, 3).flags.c_contiguous:
        out, cm = a.transpose(1, 0, 2, 3), True
    elif a.flags.c_contiguous:
        out, cm = a, False
    else:
        out, cm = np.ascontiguousarray(a), False  # host: numba path
    if ints is not None and ints[_MODE] == 1 and out.ctypes.data % 8:
        out = out.copy()  # an odd float32 offset: the 64-bit reads need an aligned copy
    return out, cm


# ---------------------------------------------------------------------- few output channels, direct
# A stride-1 convolution with one or a few output channels (a segmentation or density head, a gate)
# makes GEMMs of one or two rows: im2col then writes and reads C*kh*kw values per output pixel for
# one or two multiply-adds each, and the input gradient's GEMM writes as many columns before
# folding them back. These kernels compute such a layer directly, an image plane at a time. The
# plane is copied once into a zero border, its rows ``pw`` values apart, and the outputs are laid
# out with the same pitch (the ``pw - OW`` values after each output row are scratch): output
# ``k = i*pw + j`` then reads the plane at ``k + p*dh*pw + q*dw`` for kernel offset (p, q), so each
# (output channel, offset) is ONE long vectorized loop over the whole plane. The gradients run the
# same loops with the roles swapped (the output gradient copied into that pitch, zeros between).
@_jit
def _narrow_plane(x, n, c, flat, top, left, pw):
    """flat[(top + r)*pw + left + s] = x[n, c, r, s] where it fits; zero elsewhere."""
    h, w = x.shape[2], x.shape[3]
    rows = (flat.shape[0] // pw) - top
    flat[:] = 0
    for r in range(min(h, rows)):
        line = flat[(top + r) * pw + left : (top + r + 1) * pw]
        for s in range(min(w, pw - left)):
            line[s] = x[n, c, r, s]


@_jit
def _narrow_forward(x, w, bias, has_bias, out, flat, acc, dh, dw, top, left, pw):
    n_, c_ = x.shape[0], x.shape[1]
    o_, _, kh, kw = w.shape
    oh, ow = out.shape[2], out.shape[3]
    size = oh * pw
    for n in range(n_):
        acc[:, :] = 0
        for c in range(c_):
            _narrow_plane(x, n, c, flat, top, left, pw)
            for o in range(o_):
                a = acc[o]
                for p in range(kh):
                    for q in range(kw):
                        wv = w[o, c, p, q]
                        off = p * dh * pw + q * dw
                        src = flat[off : off + size]
                        for k in range(size):
                            a[k] += wv * src[k]
        for o in range(o_):
            add = bias[o] if has_bias else 0
            for i in range(oh):
                for j in range(ow):
                    out[n, o, i, j] = acc[o, i * pw + j] + add


@_jit_sums
def _narrow_backward(x, g, w, gw, need_gw, gx, need_gx, flat, gbuf, dh, dw, top, left, pw):
    """gw[o, c, p, q] += the sum of g[n, o, i, j] * x[n, c, i + p*dh - top, j + q*dw - left] (float64
    ``gw``); gx[n, c] = the sum over (o, p, q) of w[o, c, p, q] * g[n, o] spread back where it read."""
    n_, c_, h, wd = x.shape
    o_, _, kh, kw = w.shape
    oh, ow = g.shape[2], g.shape[3]
    size = oh * pw
    rows = flat.shape[0] // pw
    for n in range(n_):
        gbuf[:, :] = 0
        for o in range(o_):
            for i in range(oh):
                for j in range(ow):
                    gbuf[o, i * pw + j] = g[n, o, i, j]
        for c in range(c_):
            if need_gw:
                _narrow_plane(x, n, c, flat, top, left, pw)
                for o in range(o_):
                    gv = gbuf[o]
                    for p in range(kh):
                        for q in range(kw):
                            off = p * dh * pw + q * dw
                            src = flat[off : off + size]
                            total = 0.0
                            for k in range(size):
                                total += gv[k] * src[k]
                            gw[o, c, p, q] += total
            if need_gx:
                flat[:] = 0
                for o in range(o_):
                    gv = gbuf[o]
                    for p in range(kh):
                        for q in range(kw):
                            wv = w[o, c, p, q]
                            off = p * dh * pw + q * dw
                            dst = flat[off : off + size]
                            for k in range(size):
                                dst[k] += wv * gv[k]
                for r in range(h):
                    for s in range(wd):
                        inside = r + top < rows and s + left < pw
                        gx[n, c, r, s] = flat[(r + top) * pw + s + left] if inside else 0


def _narrow_scratch(geometry: tuple[int, ...], kernel: tuple[int, int], dtype: Any) -> tuple[np.ndarray, int]:
    """A flat zero-bordered plane (rows ``pw`` apart, with room for the last offset's overrun) and ``pw``."""
    dh, dw, _, _, oh, ow = geometry
    ph, pw = oh + (kernel[0] - 1) * dh, ow + (kernel[1] - 1) * dw
    return np.empty(ph * pw + (kernel[1] - 1) * dw, dtype=dtype), pw  # host: numba path


def narrow_forward(
    x: np.ndarray, w: np.ndarray, bias: np.ndarray | None, out: np.ndarray, geometry: tuple[int, ...]
) -> None:
    """Fill (N, C_out, OH, OW) ``out`` with the stride-1 convolution of ``x`` and ``w`` (+ ``bias``),
    computed directly; ``geometry`` is (dh, dw, top, left, oh, ow)."""
    dh, dw, top, left, oh, _ = geometry
    flat, pw = _narrow_scratch(geometry, w.shape[2:], x.dtype)
    acc = np.empty((w.shape[0], oh * pw), dtype=x.dtype)  # host: numba path; an image's outputs
    dummy = np.zeros(1, dtype=x.dtype)  # host: numba path
    _narrow_forward(x, w, dummy if bias is None else bias, bias is not None, out, flat, acc, dh, dw, top, left, pw)


def narrow_backward(
    x: np.ndarray, g: np.ndarray, w: np.ndarray, gx: np.ndarray | None, need_gw: bool, geometry: tuple[int, ...]
) -> np.ndarray | None:
    """Fill ``gx`` (when not None) with the input gradient of the stride-1 convolution; return the
    weight gradient summed in float64 over these images (None unless ``need_gw``)."""
    dh, dw, top, left, oh, _ = geometry
    flat, pw = _narrow_scratch(geometry, w.shape[2:], g.dtype)
    gbuf = np.empty((w.shape[0], oh * pw), dtype=g.dtype)  # host: numba path; g in the plane's pitch
    gw = np.zeros(w.shape if need_gw else (1, 1, 1, 1))  # host: numba path
    target = np.zeros((1, 1, 1, 1), dtype=g.dtype) if gx is None else gx  # host: numba path
    _narrow_backward(x, g, w, gw, need_gw, target, gx is not None, flat, gbuf, dh, dw, top, left, pw)
    return gw if need_gw else None


# ---------------------------------------------------------------------- batch norm over (C, M) rows
@_jit_sums
def _batch_norm_rows(rows, xhat, out, weight, bias, has_w, has_b, eps, mean, var, inv_std):
    c_, m = rows.shape
    for c in range(c_):
        s = 0.0  # float64 accumulators
        for j in range(m):
            s += rows[c, j]
        mu = s / m
        ss = 0.0
        for j in range(m):
            d = rows[c, j] - mu
            ss += d * d
        v = ss / m
        inv = 1.0 / np.sqrt(v + eps)
        wc = weight[c] if has_w else 1.0
        bc = bias[c] if has_b else 0.0
        for j in range(m):
            h = (rows[c, j] - mu) * inv
            xhat[c, j] = h
            out[c, j] = h * wc + bc
        mean[c] = mu
        var[c] = v
        inv_std[c] = inv


def batch_norm_rows(
    rows: np.ndarray, xhat: np.ndarray, weight: np.ndarray | None, bias: np.ndarray | None, eps: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Training-mode batch norm of each row of (C, M) ``rows`` in three passes (statistics in
    float64): fills ``xhat``; returns (out, mean, biased var, 1/std), all in ``rows``' dtype."""
    c = rows.shape[0]
    out = _workspace.lend(rows.shape, rows.dtype)
    stats = np.empty((3, c), dtype=rows.dtype)  # host: numba path
    dummy = np.zeros(1, dtype=rows.dtype)  # host: numba path
    w = dummy if weight is None else weight
    b = dummy if bias is None else bias

    def part(lo: int, hi: int) -> None:  # rows lo..hi (channels), the weight and bias with them
        _batch_norm_rows(
            rows[lo:hi], xhat[lo:hi], out[lo:hi], w if weight is None else w[lo:hi], b if bias is None else b[lo:hi],
            weight is not None, bias is not None, eps, stats[0, lo:hi], stats[1, lo:hi], stats[2, lo:hi],
        )  # fmt: skip

    _parallel.over_parts(rows, c, 3 * rows.size, part)
    return out, stats[0], stats[1], stats[2]


@_jit_sums
def _batch_norm_rows_backward(g, xhat, a, gx, sums, need_x):
    c_, m = g.shape
    for c in range(c_):
        sg = 0.0
        sgx = 0.0
        for j in range(m):
            gj = g[c, j]
            sg += gj
            sgx += gj * xhat[c, j]
        sums[0, c] = sg
        sums[1, c] = sgx
        if need_x:
            k1 = a[c]
            k2 = -a[c] * sgx / m
            k3 = -a[c] * sg / m
            for j in range(m):
                gx[c, j] = g[c, j] * k1 + xhat[c, j] * k2 + k3


def batch_norm_rows_backward(
    g: np.ndarray, xhat: np.ndarray, a: np.ndarray, need_x: bool
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """(dx or None, sum(g * xhat), sum(g)) per row: ``dx = a * (g - sum(g)/M - xhat * sum(g * xhat)/M)``
    in two passes (sums in float64)."""
    gx = _workspace.lend(g.shape, g.dtype) if need_x else np.empty((1, 1), dtype=g.dtype)  # host: numba path
    sums = np.empty((2, g.shape[0]), dtype=g.dtype)  # host: numba path

    def part(lo: int, hi: int) -> None:  # rows lo..hi (channels)
        _batch_norm_rows_backward(g[lo:hi], xhat[lo:hi], a[lo:hi], gx[lo:hi] if need_x else gx, sums[:, lo:hi], need_x)

    _parallel.over_parts(g, g.shape[0], 2 * g.size, part)
    return (gx if need_x else None), sums[1], sums[0]


# ---------------------------------------------------------------------- Winograd weight transforms, blocked
# The transforms of a layer's weights run over blocks of this many input channels, one output channel
# at a time: a block's kernels are first copied to a small (9, block) array (each of their 9 taps in a
# row), so the transform's loop over the block reads and writes contiguous runs that the compiler
# vectorizes. Kernel-by-kernel loops (the earlier version) ran scalar code and wrote (read) the 16 planes
# of U a power of two apart; measured on one thread (medians, shared machine):
# 512 -> 512 transform 11.7 -> 3.2 ms and adjoint 5.8 -> 3.9 ms, 128 -> 128 0.76 -> 0.15 and 0.39 ->
# 0.16 ms. A training step pays both for every Winograd layer (its weights change every step).
WINOGRAD_WEIGHT_BLOCK = 128


@_jit
def _wino_weight_blocks(w, u):
    """U (16, C_out, C_in) = G w G^T for (C_out, C_in, 3, 3) ``w``, a block of input channels at a time."""
    c_out, c_in = w.shape[0], w.shape[1]
    half = u.dtype.type(0.5)
    taps = np.empty((9, WINOGRAD_WEIGHT_BLOCK), dtype=u.dtype)  # host: numba path
    for o in range(c_out):
        for c0 in range(0, c_in, WINOGRAD_WEIGHT_BLOCK):
            size = min(WINOGRAD_WEIGHT_BLOCK, c_in - c0)
            for k in range(size):
                for e in range(9):
                    taps[e, k] = w[o, c0 + k, e // 3, e % 3]
            for a in range(4):
                for k in range(size):
                    # row a of t = G w (G's rows: [1 0 0], [1/2 1/2 1/2], [1/2 -1/2 1/2], [0 0 1])
                    if a == 0:
                        t0, t1, t2 = taps[0, k], taps[1, k], taps[2, k]
                    elif a == 1:
                        t0 = half * (taps[0, k] + taps[3, k] + taps[6, k])
                        t1 = half * (taps[1, k] + taps[4, k] + taps[7, k])
                        t2 = half * (taps[2, k] + taps[5, k] + taps[8, k])
                    elif a == 2:
                        t0 = half * (taps[0, k] - taps[3, k] + taps[6, k])
                        t1 = half * (taps[1, k] - taps[4, k] + taps[7, k])
                        t2 = half * (taps[2, k] - taps[5, k] + taps[8, k])
                    else:
                        t0, t1, t2 = taps[6, k], taps[7, k], taps[8, k]
                    # row a of U = t G^T
                    u[4 * a, o, c0 + k] = t0
                    u[4 * a + 1, o, c0 + k] = half * (t0 + t1 + t2)
                    u[4 * a + 2, o, c0 + k] = half * (t0 - t1 + t2)
                    u[4 * a + 3, o, c0 + k] = t2


@_jit
def _wino_weight_adjoint_blocks(du, dw):
    """dw (C_out, C_in, 3, 3) = G^T dU G (the adjoint of _wino_weight_blocks), a block at a time."""
    c_out, c_in = dw.shape[0], dw.shape[1]
    half = dw.dtype.type(0.5)
    taps = np.empty((9, WINOGRAD_WEIGHT_BLOCK), dtype=dw.dtype)  # host: numba path
    for o in range(c_out):
        for c0 in range(0, c_in, WINOGRAD_WEIGHT_BLOCK):
            size = min(WINOGRAD_WEIGHT_BLOCK, c_in - c0)
            for k in range(size):
                c = c0 + k
                a0, a1, a2, a3 = du[0, o, c], du[1, o, c], du[2, o, c], du[3, o, c]
                b0, b1, b2, b3 = du[4, o, c], du[5, o, c], du[6, o, c], du[7, o, c]
                e0, e1, e2, e3 = du[8, o, c], du[9, o, c], du[10, o, c], du[11, o, c]
                f0, f1, f2, f3 = du[12, o, c], du[13, o, c], du[14, o, c], du[15, o, c]
                # rows of s = G^T dU (G^T's rows: [1 1/2 1/2 0], [0 1/2 -1/2 0], [0 1/2 1/2 1]), each
                # times G into a row of dw
                s0, s1 = a0 + half * b0 + half * e0, a1 + half * b1 + half * e1
                s2, s3 = a2 + half * b2 + half * e2, a3 + half * b3 + half * e3
                taps[0, k] = s0 + half * s1 + half * s2
                taps[1, k] = half * s1 - half * s2
                taps[2, k] = half * s1 + half * s2 + s3
                s0, s1 = half * b0 - half * e0, half * b1 - half * e1
                s2, s3 = half * b2 - half * e2, half * b3 - half * e3
                taps[3, k] = s0 + half * s1 + half * s2
                taps[4, k] = half * s1 - half * s2
                taps[5, k] = half * s1 + half * s2 + s3
                s0, s1 = half * b0 + half * e0 + f0, half * b1 + half * e1 + f1
                s2, s3 = half * b2 + half * e2 + f2, half * b3 + half * e3 + f3
                taps[6, k] = s0 + half * s1 + half * s2
                taps[7, k] = half * s1 - half * s2
                taps[8, k] = half * s1 + half * s2 + s3
            for k in range(size):
                for e in range(9):
                    dw[o, c0 + k, e // 3, e % 3] = taps[e, k]


# ---------------------------------------------------------------------- grouped convolutions (direct)
# A grouped stride-1 convolution with few channels per group (ResNeXt: 32 groups of 4-16 channels)
# makes im2col's GEMMs tiny (C_out / groups rows) while its columns cost as much to build as a dense
# layer's. Here each group's input planes are laid out zero-bordered, a chunk of images one after
# another (``block`` = padded height * pitch values each, pitch = padded width), and every output
# plane is a sum of shifted input planes times one weight each: long vectorized loops over the whole
# chunk, two output channels per pass sharing the loads (values computed on the border columns and
# rows are never read back). Measured on one thread against im2col (forward, 16 images, groups=32,
# 3x3, ms): 128 channels 32x32 14.4 -> 5.3, 256 16x16 8.6 -> 4.1, 512 8x8 7.6 -> 4.3.
# Values of a chunk's padded planes (per channel): enough images that each pass is a long loop.
GROUPED_CHUNK_VALUES = 4096


@numba.njit(inline="always")
def _grouped_fill(x, n0, images, c0, channels, planes, top, left, pitch, block):
    """planes[c, j*block + (r + top)*pitch + left + s] = x[n0 + j, c0 + c, r, s] (the border untouched)."""
    h, wd = x.shape[2], x.shape[3]
    for c in range(channels):
        plane = planes[c]
        for j in range(images):
            for r in range(h):
                at = U64(j * block + (r + top) * pitch + left)
                row = x[n0 + j, c0 + c, r]
                for s in range(U64(wd)):
                    plane[at + s] = row[s]


@numba.njit(inline="always")
def _tap_weights(w, o, c, t, kw):
    return w[o, c, t // kw, t % kw]


@_jit_sums
def _grouped_forward(x, w, bias, has_bias, out, groups, kh, kw, dh, dw, top, left, hp, wp, nb):
    """out[o, n] (channel-major) = the stride-1 convolution of the group of input planes (n, ...) with
    w[o] (+ bias[o]); (hp, wp): the padded input's size, nb: images per chunk."""
    n_, c_in = x.shape[0], x.shape[1]
    c_out = w.shape[0]
    cg, og = c_in // groups, c_out // groups
    oh, ow = out.shape[2], out.shape[3]
    pitch, block, nt = wp, hp * wp, kh * kw
    tail = (kh - 1) * dh * pitch + (kw - 1) * dw
    planes = np.zeros((cg, nb * block + tail), dtype=x.dtype)  # host: numba path; the borders stay zero
    acc0 = np.empty(nb * block, dtype=x.dtype)  # host: numba path
    acc1 = np.empty(nb * block, dtype=x.dtype)  # host: numba path
    offs = np.empty(nt, dtype=np.int64)  # host: numba path
    for p in range(kh):
        for q in range(kw):
            offs[p * kw + q] = p * dh * pitch + q * dw
    zero = x.dtype.type(0)
    for n0 in range(0, n_, nb):
        images = min(nb, n_ - n0)
        length = U64((images - 1) * block + oh * pitch)
        for g in range(groups):
            _grouped_fill(x, n0, images, g * cg, cg, planes, top, left, pitch, block)
            for o in range(g * og, (g + 1) * og, 2):
                o1 = o + 1 if o + 1 < (g + 1) * og else o  # an odd count: the last pass computes o twice
                b0 = bias[o] if has_bias else zero
                b1 = bias[o1] if has_bias else zero
                for k in range(length):
                    acc0[k] = b0
                    acc1[k] = b1
                for c in range(cg):
                    plane = planes[c]
                    t = 0
                    while t < nt:  # up to 3 taps a pass
                        count = min(3, nt - t)
                        s0 = plane[offs[t] :]
                        w0, v0 = _tap_weights(w, o, c, t, kw), _tap_weights(w, o1, c, t, kw)
                        if count == 3:
                            s1, s2 = plane[offs[t + 1] :], plane[offs[t + 2] :]
                            w1, v1 = _tap_weights(w, o, c, t + 1, kw), _tap_weights(w, o1, c, t + 1, kw)
                            w2, v2 = _tap_weights(w, o, c, t + 2, kw), _tap_weights(w, o1, c, t + 2, kw)
                            for k in range(length):
                                a0, a1, a2 = s0[k], s1[k], s2[k]
                                acc0[k] += w0 * a0 + w1 * a1 + w2 * a2
                                acc1[k] += v0 * a0 + v1 * a1 + v2 * a2
                        elif count == 2:
                            s1 = plane[offs[t + 1] :]
                            w1, v1 = _tap_weights(w, o, c, t + 1, kw), _tap_weights(w, o1, c, t + 1, kw)
                            for k in range(length):
                                a0, a1 = s0[k], s1[k]
                                acc0[k] += w0 * a0 + w1 * a1
                                acc1[k] += v0 * a0 + v1 * a1
                        else:
                            for k in range(length):
                                a0 = s0[k]
                                acc0[k] += w0 * a0
                                acc1[k] += v0 * a0
                        t += count
                for j in range(images):
                    for i in range(oh):
                        at = U64(j * block + i * pitch)
                        row0, row1 = out[o, n0 + j, i], out[o1, n0 + j, i]
                        for s in range(U64(ow)):
                            row0[s] = acc0[at + s]
                            row1[s] = acc1[at + s]


@_jit_sums
def _grouped_weight_gradient(x, g, gw, groups, kh, kw, dh, dw, top, left, hp, wp, nb):
    """gw[o, c, p, q] (float64) += sum over images and outputs of g[n, o, i, j] * x_padded[n, c', i + p*dh,
    j + q*dw] (c' = c of o's group): the output gradient laid out like the forward pass's sums (zeros
    on the border columns and rows), dotted with the shifted input planes, 3 taps a pass."""
    n_, c_in = x.shape[0], x.shape[1]
    c_out = g.shape[1]
    cg, og = c_in // groups, c_out // groups
    oh = g.shape[2]
    pitch, block, nt = wp, hp * wp, kh * kw
    tail = (kh - 1) * dh * pitch + (kw - 1) * dw
    planes = np.zeros((cg, nb * block + tail), dtype=x.dtype)  # host: numba path; the borders stay zero
    ge = np.zeros((og, nb * block), dtype=g.dtype)  # host: numba path; zeros where no output lies
    sums = np.empty(nt, dtype=g.dtype)  # host: numba path
    offs = np.empty(nt, dtype=np.int64)  # host: numba path
    for p in range(kh):
        for q in range(kw):
            offs[p * kw + q] = p * dh * pitch + q * dw
    zero = g.dtype.type(0)
    for n0 in range(0, n_, nb):
        images = min(nb, n_ - n0)
        length = U64((images - 1) * block + oh * pitch)
        for gi in range(groups):
            _grouped_fill(x, n0, images, gi * cg, cg, planes, top, left, pitch, block)
            _grouped_fill(g, n0, images, gi * og, og, ge, 0, 0, pitch, block)
            for o in range(og):
                e = ge[o]
                for c in range(cg):
                    plane = planes[c]
                    t = 0
                    while t < nt:
                        count = min(3, nt - t)
                        s0 = plane[offs[t] :]
                        s1 = plane[offs[t + min(1, count - 1)] :]
                        s2 = plane[offs[t + count - 1] :]
                        a0 = a1 = a2 = zero
                        for k in range(length):
                            v = e[k]
                            a0 += v * s0[k]
                            a1 += v * s1[k]
                            a2 += v * s2[k]
                        sums[t] = a0
                        if count > 1:
                            sums[t + 1] = a1
                        if count > 2:
                            sums[t + 2] = a2
                        t += count
                    for t in range(nt):
                        gw[gi * og + o, c, t // kw, t % kw] += sums[t]


def grouped_chunk(hp: int, wp: int, n: int) -> int:
    """Images per chunk of the grouped kernels for a padded hp x wp input."""
    return max(1, min(n, GROUPED_CHUNK_VALUES // (hp * wp)))


def grouped_forward(
    x: np.ndarray, w: np.ndarray, b: np.ndarray | None, out: np.ndarray, groups: int, geometry: tuple[int, ...]
) -> None:
    """Write the stride-1 grouped convolution of (N, C, H, W) ``x`` with ``w`` (+ ``b``) into ``out``
    (C_out, N, OH, OW); ``geometry`` is (dh, dw, top, left, hp, wp) with (hp, wp) the padded size."""
    dh, dw, top, left, hp, wp = geometry
    bias = np.zeros(1, dtype=x.dtype) if b is None else b  # host: numba path
    nb = grouped_chunk(hp, wp, x.shape[0])
    _grouped_forward(x, w, bias, b is not None, out, groups, w.shape[2], w.shape[3], dh, dw, top, left, hp, wp, nb)


def grouped_weight_gradient(
    x: np.ndarray, g: np.ndarray, gw: np.ndarray, groups: int, geometry: tuple[int, ...]
) -> None:
    """Add the weight gradient of :func:`grouped_forward` for output gradient ``g`` (N, C_out, OH, OW)
    into float64 ``gw`` (C_out, C / groups, kh, kw)."""
    dh, dw, top, left, hp, wp = geometry
    nb = grouped_chunk(hp, wp, x.shape[0])
    _grouped_weight_gradient(x, g, gw, groups, gw.shape[2], gw.shape[3], dh, dw, top, left, hp, wp, nb)
