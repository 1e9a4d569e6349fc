"""Compiled (numba) kernels of the 3-D layers: the receptive-field copy of a 3-D convolution
(vol2col) and its adjoint (col2vol, the fold of the input-gradient columns), and 3-D max and average
pooling forward and backward; imported only when ``jit_gate.kernels`` says the compiled path applies
(numba installed, not switched off, host arrays of numba's dtypes).

The NumPy formulation beside them (``_vol_kernels`` for the convolutions, the 2-D composites of
``volumetric`` for pooling) is what devices and ``DOWNSLOPE_JIT=0`` run; these compute the same
numbers in one pass over the data. Arrays are indexed logically ((N, C, D, H, W)), so any memory
layout (a convolution's channel-major output included) is read and written in place.

Pooling follows torch's CPU kernels: a window's start in the padding steps forward by the dilation
until it is inside the input; max pooling keeps the first largest value in scan order (or the last
NaN) and its flat index into D*H*W, starting from the window's first in-input tap (the index a window
of -inf values keeps); average pooling divides the window's sum by torch's divisor (the window clipped
to the padded input, or to the input with ``count_include_pad=False``, or ``divisor_override``).

Example:
    >>> import numpy as np
    >>> from downslope import jit_gate
    >>> k = jit_gate.kernels("downslope.nn._jit_volumetric")
    >>> if k is not None:
    ...     x = np.arange(8.0).reshape(1, 1, 2, 2, 2)
    ...     out, idx = np.zeros((1, 1, 1, 1, 1)), np.zeros((1, 1, 1, 1, 1), np.int64)
    ...     k.max_pool3d(x, out, idx, (2, 2, 2), (2, 2, 2), (0, 0, 0), (1, 1, 1))
    ...     assert out.item() == 7.0 and idx.item() == 7
"""

from __future__ import annotations

import numba
import numpy as np

_jit = numba.njit(cache=True, nogil=True, error_model="numpy")
_inline = numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")
U64 = numba.uint64  # unsigned loop indices: no wraparound checks for negative indices


@_jit
def _valid(out, size, stride, offset):
    """The output positions [lo, hi) whose input index ``i*stride + offset`` lies in [0, size)."""
    lo = 0
    if offset < 0:
        lo = (-offset + stride - 1) // stride
    hi = out
    if size - 1 - offset < 0:
        hi = 0
    else:
        hi = min(out, (size - 1 - offset) // stride + 1)
    if hi < lo:
        hi = lo
    return lo, hi


# ---------------------------------------------------------------------- convolution columns
# The convolutions pass their input (or gradient) whole, C-contiguous as (N, C, D, H, W) or, when
# ``cm``, as the (C, N, D, H, W) memory of a channel-major one, with the range [u0, u1) of output
# slabs (image n, output depth z: u = n*OD + z) a chunk's columns cover: numba then knows the rows are
# contiguous (a strided view would compile to scalar loads) and chunks can be smaller than an image.


@_jit
def vol2col(x, cm, u0, u1, cols, kernel, stride, pads, dilation, out_size):
    """cols[(c, a, b, e), (u - u0, y, j)] = x[n, c, z*sd - pd + a*dd, y*sh - ph + b*dh, j*sw - pw + e*dw]
    for slabs u = n*OD + z in [u0, u1), 0 where that reads the zero padding: every receptive field as a
    column of ``cols`` (C*kd*kh*kw, (u1 - u0)*OH*OW)."""
    if cm:
        c_in, n_in, depth, h, w = x.shape
    else:
        n_in, c_in, depth, h, w = x.shape
    kd, kh, kw = kernel
    sd, sh, sw = stride
    pd, ph, pw = pads
    dd, dh, dw = dilation
    od, oh, ow = out_size
    zero = cols.dtype.type(0)
    plane = oh * ow
    width = cols.shape[1]
    # flat indices into both arrays (views of rows would cost a descriptor per copied row)
    flat = x.reshape(-1)
    out = cols.reshape(-1)
    hw = h * w
    for c in range(c_in):
        for a in range(kd):
            z0, z1 = _valid(od, depth, sd, a * dd - pd)
            for b in range(kh):
                y0, y1 = _valid(oh, h, sh, b * dh - ph)
                for e in range(kw):
                    j0, j1 = _valid(ow, w, sw, e * dw - pw)
                    shift = e * dw - pw
                    row = (((c * kd + a) * kh + b) * kw + e) * width
                    for u in range(u0, u1):
                        n = u // od
                        z = u - n * od
                        at = row + (u - u0) * plane
                        if z < z0 or z >= z1:
                            _zero(out, at, plane, zero)
                            continue
                        iz = z * sd - pd + a * dd
                        image = ((c * n_in + n) if cm else (n * c_in + c)) * depth + iz
                        _zero(out, at, y0 * ow, zero)
                        _zero(out, at + y1 * ow, (oh - y1) * ow, zero)
                        for y in range(y0, y1):
                            r = at + y * ow
                            # unsigned indices: no checks for negative ones, so LLVM vectorizes the copy
                            s0 = U64(image * hw + (y * sh - ph + b * dh) * w + j0 * sw + shift)
                            t0 = U64(r + j0)
                            _zero(out, r, j0, zero)
                            if sw == 1:
                                for j in range(U64(j1 - j0)):
                                    out[t0 + j] = flat[s0 + j]
                            else:
                                for j in range(U64(j1 - j0)):
                                    out[t0 + j] = flat[s0 + U64(sw) * j]
                            _zero(out, r + j1, ow - j1, zero)


@_inline
def _zero(row, start, count, zero):
    """row[start : start + count] = 0, with unsigned indices."""
    s0 = U64(start)
    for t in range(U64(count)):
        row[s0 + t] = zero


@_jit
def col2vol(cols, gx, cm, u0, u1, kernel, stride, pads, dilation, out_size):
    """The adjoint of :func:`vol2col`: gx[n, c, ...] += cols[(c, a, b, e), (u - u0, y, j)] at the input
    position each column entry was read from (entries read from the padding are dropped); ``gx`` as
    :func:`vol2col` reads ``x``."""
    if cm:
        c_in, _, depth, h, w = gx.shape
    else:
        _, c_in, depth, h, w = gx.shape
    kd, kh, kw = kernel
    sd, sh, sw = stride
    pd, ph, pw = pads
    dd, dh, dw = dilation
    od, oh, ow = out_size
    plane = oh * ow
    for c in range(c_in):
        for a in range(kd):
            z0, z1 = _valid(od, depth, sd, a * dd - pd)
            for b in range(kh):
                y0, y1 = _valid(oh, h, sh, b * dh - ph)
                for e in range(kw):
                    j0, j1 = _valid(ow, w, sw, e * dw - pw)
                    shift = e * dw - pw
                    row = cols[((c * kd + a) * kh + b) * kw + e]
                    for u in range(u0, u1):
                        n = u // od
                        z = u - n * od
                        if z < z0 or z >= z1:
                            continue
                        iz = z * sd - pd + a * dd
                        at = (u - u0) * plane
                        for y in range(y0, y1):
                            iy = y * sh - ph + b * dh
                            r = at + y * ow
                            dst = gx[c, n, iz, iy] if cm else gx[n, c, iz, iy]
                            # unsigned indices: no checks for negative ones, so LLVM vectorizes the adds
                            t0, s0 = U64(r + j0), U64(j0 * sw + shift)
                            if sw == 1:
                                for j in range(U64(j1 - j0)):
                                    dst[s0 + j] += row[t0 + j]
                            else:
                                for j in range(U64(j1 - j0)):
                                    dst[s0 + U64(sw) * j] += row[t0 + j]


# ---------------------------------------------------------------------- pooling
@_jit
def _first_tap(o, stride, pad, dilation):
    """A window's first tap at or past the input's start (torch steps a start in the padding
    forward by the dilation)."""
    start = o * stride - pad
    while start < 0:
        start += dilation
    return start


@_jit
def max_pool3d(x, out, idx, kernel, stride, pads, dilation):
    """out = each window's largest value (the first in scan order, or the last NaN), idx = its flat
    index into D*H*W; ``x`` (N, C, D, H, W), ``out`` and ``idx`` (N, C, OD, OH, OW), any layout."""
    n_, c_, depth, h, w = x.shape
    od, oh, ow = out.shape[2], out.shape[3], out.shape[4]
    kd, kh, kw = kernel
    sd, sh, sw = stride
    pd, ph, pw = pads
    dd, dh, dw = dilation
    minus_inf = x.dtype.type(-np.inf)
    for n in range(n_):
        for c in range(c_):
            src = x[n, c]
            for z in range(od):
                zs = _first_tap(z, sd, pd, dd)
                ze = min(z * sd - pd + (kd - 1) * dd + 1, depth)
                for y in range(oh):
                    ys = _first_tap(y, sh, ph, dh)
                    ye = min(y * sh - ph + (kh - 1) * dh + 1, h)
                    for j in range(ow):
                        js = _first_tap(j, sw, pw, dw)
                        je = min(j * sw - pw + (kw - 1) * dw + 1, w)
                        best = minus_inf
                        at = (zs * h + ys) * w + js
                        for iz in range(zs, ze, dd):
                            for iy in range(ys, ye, dh):
                                for ix in range(js, je, dw):
                                    v = src[iz, iy, ix]
                                    if v > best or v != v:
                                        best = v
                                        at = (iz * h + iy) * w + ix
                        out[n, c, z, y, j] = best
                        idx[n, c, z, y, j] = at


@_jit
def _nonempty(o, size, kernel, stride, pad, dilation):
    """Whether a window along one dim reads any element of the input."""
    return _first_tap(o, stride, pad, dilation) < min(o * stride - pad + (kernel - 1) * dilation + 1, size)


@_jit
def max_unpool3d(g, idx, gx, cm, any_empty, kernel, stride, pads, dilation):
    """gx[n, c, flat idx] += g[n, c, z, y, j] for each window that reads the input (a window wholly
    in the padding passes nothing, as its index names no element it read; ``any_empty`` says whether
    there is one). ``gx`` is zeroed by the caller, C-contiguous (N, C, D, H, W), or (C, N, D, H, W)
    when ``cm``; ``g`` and ``idx`` are (N, C, OD, OH, OW), any layout."""
    n_, c_, od, oh, ow = g.shape
    depth, h, w = gx.shape[2], gx.shape[3], gx.shape[4]
    kd, kh, kw = kernel
    sd, sh, sw = stride
    pd, ph, pw = pads
    dd, dh, dw = dilation
    plane = depth * h * w
    flat = gx.reshape(-1)
    for n in range(n_):
        for c in range(c_):
            base = ((c * n_ + n) if cm else (n * c_ + c)) * plane
            for z in range(od):
                if any_empty and not _nonempty(z, depth, kd, sd, pd, dd):
                    continue
                for y in range(oh):
                    if any_empty and not _nonempty(y, h, kh, sh, ph, dh):
                        continue
                    for j in range(ow):
                        if any_empty and not _nonempty(j, w, kw, sw, pw, dw):
                            continue
                        flat[U64(base + idx[n, c, z, y, j])] += g[n, c, z, y, j]


@_jit
def max_gather3d(src, idx, out, kernel, stride, pads, dilation):
    """out[n, c, z, y, j] = src[n, c, flat idx] (0 for a window wholly in the padding): the adjoint
    of :func:`max_unpool3d`, the max pooling's gradient rule differentiated again."""
    n_, c_, depth, h, w = src.shape
    od, oh, ow = out.shape[2], out.shape[3], out.shape[4]
    kd, kh, kw = kernel
    sd, sh, sw = stride
    pd, ph, pw = pads
    dd, dh, dw = dilation
    zero = out.dtype.type(0)
    for z in range(od):
        inz = _nonempty(z, depth, kd, sd, pd, dd)
        for y in range(oh):
            iny = inz and _nonempty(y, h, kh, sh, ph, dh)
            for j in range(ow):
                inside = iny and _nonempty(j, w, kw, sw, pw, dw)
                for n in range(n_):
                    for c in range(c_):
                        if not inside:
                            out[n, c, z, y, j] = zero
                            continue
                        at = idx[n, c, z, y, j]
                        out[n, c, z, y, j] = src[n, c, at // (w * h), (at // w) % h, at % w]


@_jit
def _avg_window(o, size, kernel, stride, pad, count_include_pad):
    """(first, end) of a window's taps inside the input along one dim, and its length in torch's
    divisor (clipped to the padded input when padding counts, else to the input)."""
    start = o * stride - pad
    end = min(start + kernel, size + pad)
    counted = end - start
    start = max(start, 0)
    end = min(end, size)
    if not count_include_pad:
        counted = end - start
    return start, end, counted


@_jit
def avg_pool3d(x, out, kernel, stride, pads, count_include_pad, divisor_override):
    """out = each window's sum divided by torch's divisor (``divisor_override`` when it is not 0);
    ``x`` (N, C, D, H, W), ``out`` (N, C, OD, OH, OW), any layout."""
    n_, c_, depth, h, w = x.shape
    od, oh, ow = out.shape[2], out.shape[3], out.shape[4]
    kd, kh, kw = kernel
    sd, sh, sw = stride
    pd, ph, pw = pads
    zero = x.dtype.type(0)
    for n in range(n_):
        for c in range(c_):
            src = x[n, c]
            for z in range(od):
                zs, ze, cz = _avg_window(z, depth, kd, sd, pd, count_include_pad)
                for y in range(oh):
                    ys, ye, cy = _avg_window(y, h, kh, sh, ph, count_include_pad)
                    for j in range(ow):
                        js, je, cj = _avg_window(j, w, kw, sw, pw, count_include_pad)
                        total = zero
                        for iz in range(zs, ze):
                            for iy in range(ys, ye):
                                for ix in range(js, je):
                                    total += src[iz, iy, ix]
                        divisor = divisor_override if divisor_override != 0 else cz * cy * cj
                        out[n, c, z, y, j] = total / x.dtype.type(divisor)  # in the input's dtype, as torch


@_jit
def avg_unpool3d(g, gx, kernel, stride, pads, count_include_pad, divisor_override):
    """The adjoint of :func:`avg_pool3d`: gx[window] += g / divisor for every window; ``gx`` is
    zeroed by the caller, (N, C, D, H, W), any layout."""
    n_, c_, depth, h, w = gx.shape
    od, oh, ow = g.shape[2], g.shape[3], g.shape[4]
    kd, kh, kw = kernel
    sd, sh, sw = stride
    pd, ph, pw = pads
    for n in range(n_):
        for c in range(c_):
            dst = gx[n, c]
            for z in range(od):
                zs, ze, cz = _avg_window(z, depth, kd, sd, pd, count_include_pad)
                for y in range(oh):
                    ys, ye, cy = _avg_window(y, h, kh, sh, ph, count_include_pad)
                    for j in range(ow):
                        js, je, cj = _avg_window(j, w, kw, sw, pw, count_include_pad)
                        divisor = divisor_override if divisor_override != 0 else cz * cy * cj
                        share = g[n, c, z, y, j] / g.dtype.type(divisor)
                        for iz in range(zs, ze):
                            for iy in range(ys, ye):
                                for ix in range(js, je):
                                    dst[iz, iy, ix] += share
