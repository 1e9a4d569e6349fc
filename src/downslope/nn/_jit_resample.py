"""Compiled (numba) kernels of the resampling ops: ``grid_sample`` (bilinear/trilinear and nearest,
2-D and 3-D; bicubic, 2-D) forward and backward, and the one-axis linear blend (and nearest gather) that
``interpolate`` applies along each resized dim; imported only when ``jit_gate.kernels`` says the
compiled path applies (numba installed, not switched off, host arrays).

The NumPy formulation builds these from advanced-index gathers, whose backward is ``np.add.at``
(slow: one Python-level scatter per corner); here each sample point's corners and weights are
computed once and every channel is read (or scattered into) in one pass.

The arithmetic follows torch's CPU kernels term by term, in the input's dtype (``one`` is 1 in that
dtype, so numba keeps float32 sums in float32): the 2-D weights are those of the vectorised
``GridSamplerKernel.cpp`` (``w = x - floor(x)``, ``e = 1 - w``, ``nw = s * e``...), the 3-D ones
those of ``GridSampler.cpp`` (``tnw = (ix_bse - ix) * (iy_bse - iy) * (iz_bse - iz)``...), summed
in torch's corner order. Sample coordinates are pixel coordinates (already unnormalised and
padded); a corner outside the image reads 0 and receives nothing. A coordinate that is not finite
(or absurdly far outside) reads 0 everywhere, where an integer conversion would be undefined.

Example:
    >>> import numpy as np
    >>> from downslope import jit_gate
    >>> k = jit_gate.kernels("downslope.nn._jit_resample")
    >>> if k is not None:
    ...     x = np.arange(4.0).reshape(1, 1, 2, 2)
    ...     out = np.zeros((1, 1, 1))
    ...     k.bilinear2d(x, np.array([[0.5]]), np.array([[0.5]]), out, 1.0)
    ...     assert out.item() == 1.5
"""

from __future__ import annotations

import numba
import numpy as np

_jit = numba.njit(cache=True, nogil=True, error_model="numpy")
# numba's own inlining: per-point helpers
_inline = numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")
_FAR = 1.0e9  # coordinates past this are outside any image (and safe to convert to integers)


@_jit
def _usable(v):
    return v > -_FAR and v < _FAR  # False for NaN too


@_inline
def _unnormalized(a, corners, single, scale, scale64, one):
    """sampling's ``_unnormalized`` (the 2-D kernel's, fused) of one grid coordinate, step for step as
    its NumPy form rounds: ``(a + 1) * scale`` in the dtype with aligned corners (``scale`` in the
    dtype), else ``(a + 1) * scale64 - 0.5`` rounded once, as torch's FMA: float32 (``single``) by the
    float64 product, exact, rounded once here and once at the store; float64 with the product's
    rounding error, exact by Veltkamp's split, added back. No fastmath, so nothing is contracted."""
    a1 = a + one
    if corners:
        return np.float64(a1 * scale)
    product = np.float64(a1) * scale64
    if single:
        return product + -0.5
    big = a1 * 134217729.0  # 2**27 + 1: the split into two 26-bit halves
    high = big - (big - a1)
    error = (high * scale64 - product) + (a1 - high) * scale64
    return (product + -0.5) + (error if abs(error) < np.inf else 0.0)  # an infinite coordinate: no error term


@_inline
def _padded(v, size, padding, low, span, one):
    """sampling's ``_padded`` (2-D) of one pixel coordinate ``v``, in the data's dtype as its NumPy form
    rounds: ``padding`` 1 (border) clamps into [0, size - 1], 2 (reflection) first mirrors at ``low``
    over ``span`` (``_reflect``; ``span`` 0: a one-pixel axis, where every location is pixel 0). A NaN
    lands on pixel 0. Returns the coordinate and its derivative: the reflection's +-1 times the clamp's,
    0 on and beyond the borders."""
    zero = 0 * one
    slope = one
    if padding == 2:
        if span == 0:
            v, slope = zero, zero
        else:
            shifted = v - low
            distance = np.abs(shifted)
            extra = np.fmod(distance, span)
            even = np.fmod(np.floor(distance / span), one + one) == 0
            v = extra + low if even else span - extra + low
            slope = (-one if shifted < 0 else one) * (one if even else -one)
    inside = one if (v > 0 and v < size - one) else zero
    if v != v:
        v = zero
    elif v < zero:  # NumPy's clip, comparison for comparison (a bound equal to v keeps v: -0.0 stays)
        v = zero
    elif v > size - one:
        v = size - one
    return v, slope * inside


@_jit
def unnormalize2d(
    grid,
    out_y,
    out_x,
    corners,
    single,
    scale_y,
    scale_x,
    scale64_y,
    scale64_x,
    one,
    padding,
    slope_y,
    slope_x,
    geometry,
):
    """The pixel coordinates (out_y, out_x: (N, P)) of a 2-D grid (N, P, 2) holding (x, y): one pass,
    where the NumPy form makes five whole-array temporaries per coordinate. With ``padding`` 1 (border)
    or 2 (reflection) they are then padded as :func:`_padded` (``geometry`` = (low_y, span_y, low_x,
    span_x, H, W) in the dtype) and their derivatives written to ``slope_y``/``slope_x``; ``padding`` 0
    (zeros) leaves those untouched. Each coordinate is rounded to the dtype (stored) before it is
    padded, as the NumPy form's arrays are."""
    for n in range(grid.shape[0]):
        for p in range(grid.shape[1]):
            out_x[n, p] = _unnormalized(grid[n, p, 0], corners, single, scale_x, scale64_x, one)
            out_y[n, p] = _unnormalized(grid[n, p, 1], corners, single, scale_y, scale64_y, one)
            if padding != 0:
                out_y[n, p], slope_y[n, p] = _padded(out_y[n, p], geometry[4], padding, geometry[0], geometry[1], one)
                out_x[n, p], slope_x[n, p] = _padded(out_x[n, p], geometry[5], padding, geometry[2], geometry[3], one)


@_jit
def sample2d(x, points, coords, index, out, constants, scales64, nearest_mode, padding, corners, single):
    """A 2-D grid's whole forward in one call, :func:`unnormalize2d` then :func:`bilinear2d` or
    :func:`nearest` (the same compiled functions, so the same numbers as those calls one by one; a
    small grid's cost was the separate calls' and their arguments'). ``points`` (N, P, 2) holds (x,
    y); ``coords`` (2, N, P), or (4, N, P) with 'border'/'reflection' ``padding`` (1/2), gets the
    pixel coordinates (y, x) and then the padding's derivatives; ``index`` (N, P) (nearest) each
    point's flat pixel index as :func:`nearest_index2d`; ``constants`` in the data's dtype: (scale_y,
    scale_x, low_y, span_y, low_x, span_x, H, W, 1), the reflection's (low, span) per axis as
    ``sampling._reflection_geometry``; ``scales64`` the two scales as float64."""
    one = constants[8]
    ys, xs = coords[0], coords[1]
    slope_y, slope_x = (coords[2], coords[3]) if padding != 0 else (coords[0], coords[1])
    unnormalize2d(
        points, ys, xs, corners, single, constants[0], constants[1], scales64[0], scales64[1],
        one, padding, slope_y, slope_x, constants[2:8],
    )  # fmt: skip
    if nearest_mode:
        n_, c_, h, w = x.shape
        nearest_index2d(ys, xs, h, w, index)
        nearest(x.reshape((n_, c_, h * w)), index, out)
    else:
        bilinear2d(x, ys, xs, out, one)


@_jit
def nearest_index2d(ys, xs, h, w, index):
    """Each point's flat pixel index ``y * W + x`` at the nearest pixel (torch's nearbyint: half to
    even), -1 outside the image (NaN included): sampling's ``_nearest_index`` of (ys, xs)."""
    for n in range(ys.shape[0]):
        for p in range(ys.shape[1]):
            ry, rx = np.rint(ys[n, p]), np.rint(xs[n, p])
            if ry >= 0 and ry < h and rx >= 0 and rx < w:
                index[n, p] = int(ry) * w + int(rx)
            else:
                index[n, p] = -1


@_inline
def _corners2d(fy, fx, one, h, w):
    """The top-left corner (y0, x0) of pixel coordinates (fy, fx), torch's weights ``w = x - floor(x)``
    and ``e = 1 - w`` along x (``n``, ``s`` along y), and which of the four corners lie in the image
    (shared by the forward and the backward, so both blend with the same numbers)."""
    y0f, x0f = np.floor(fy), np.floor(fx)
    y0, x0 = int(y0f), int(x0f)
    wx = fx - x0f
    ny = fy - y0f
    return y0, x0, wx, one - wx, ny, one - ny, 0 <= y0 < h, 0 <= y0 + 1 < h, 0 <= x0 < w, 0 <= x0 + 1 < w


@_inline
def _corner_values(x, n, c, y0, x0, in_y0, in_y1, in_x0, in_x1, zero):
    """x[n, c] at the four corners (nw, ne, sw, se); 0 for a corner outside the image."""
    v_nw = x[n, c, y0, x0] if in_y0 and in_x0 else zero
    v_ne = x[n, c, y0, x0 + 1] if in_y0 and in_x1 else zero
    v_sw = x[n, c, y0 + 1, x0] if in_y1 and in_x0 else zero
    v_se = x[n, c, y0 + 1, x0 + 1] if in_y1 and in_x1 else zero
    return v_nw, v_ne, v_sw, v_se


@_jit
def bilinear2d(x, iy, ix, out, one):
    """``out[n, c, p]`` = x (N, C, H, W) blended at pixel coordinates (iy[n, p], ix[n, p]); point by
    point, the corners and weights computed once for all channels (measured faster here than channel
    by channel with the corners kept in arrays)."""
    n_, c_, h, w = x.shape
    zero = 0 * one
    for n in range(n_):
        for p in range(iy.shape[1]):
            fy, fx = iy[n, p], ix[n, p]
            if not (_usable(fy) and _usable(fx)):
                # outside every image: torch's 2-D kernel blends zeros with weights made from the
                # coordinate, so a NaN or infinite one gives NaN (0 * inf), a finite one 0
                far = zero * fy + zero * fx
                for c in range(c_):
                    out[n, c, p] = far
                continue
            y0, x0, wx, ex, ny, sy, in_y0, in_y1, in_x0, in_x1 = _corners2d(fy, fx, one, h, w)
            nw, ne, sw, se = sy * ex, sy * wx, ny * ex, ny * wx
            for c in range(c_):
                v_nw, v_ne, v_sw, v_se = _corner_values(x, n, c, y0, x0, in_y0, in_y1, in_x0, in_x1, zero)
                out[n, c, p] = v_nw * nw + v_ne * ne + v_sw * sw + v_se * se


@_jit
def bilinear2d_backward(x, iy, ix, g, gx, giy, gix, one, want_x, want_pos):
    """Adds the input's gradient into ``gx`` and writes the coordinates' into ``giy``/``gix`` (each
    point's terms summed over the channels in order, as torch's)."""
    n_, c_, h, w = x.shape
    zero = 0 * one
    for n in range(n_):
        for p in range(iy.shape[1]):
            fy, fx = iy[n, p], ix[n, p]
            giy[n, p] = zero
            gix[n, p] = zero
            if not (_usable(fy) and _usable(fx)):
                continue
            y0, x0, wx, ex, ny, sy, in_y0, in_y1, in_x0, in_x1 = _corners2d(fy, fx, one, h, w)
            nw, ne, sw, se = sy * ex, sy * wx, ny * ex, ny * wx
            ax = zero
            ay = zero
            for c in range(c_):
                go = g[n, c, p]
                if want_x:
                    if in_y0 and in_x0:
                        gx[n, c, y0, x0] += nw * go
                    if in_y0 and in_x1:
                        gx[n, c, y0, x0 + 1] += ne * go
                    if in_y1 and in_x0:
                        gx[n, c, y0 + 1, x0] += sw * go
                    if in_y1 and in_x1:
                        gx[n, c, y0 + 1, x0 + 1] += se * go
                if want_pos:
                    v_nw, v_ne, v_sw, v_se = _corner_values(x, n, c, y0, x0, in_y0, in_y1, in_x0, in_x1, zero)
                    ax = ax + ((v_ne - v_nw) * sy + (v_se - v_sw) * ny) * go  # torch's s = 1 - n, e = 1 - w
                    ay = ay + ((v_sw - v_nw) * ex + (v_se - v_ne) * wx) * go
            gix[n, p] = ax
            giy[n, p] = ay


@_jit
def trilinear3d(x, iz, iy, ix, out, one):
    """``out[n, c, p]`` = x (N, C, D, H, W) blended at (iz, iy, ix)[n, p]."""
    n_, c_, d, h, w = x.shape
    for n in range(n_):
        for p in range(iz.shape[1]):
            fz, fy, fx = iz[n, p], iy[n, p], ix[n, p]
            if not (_usable(fz) and _usable(fy) and _usable(fx)):
                for c in range(c_):
                    out[n, c, p] = 0
                continue
            z0f, y0f, x0f = np.floor(fz), np.floor(fy), np.floor(fx)
            z0, y0, x0 = int(z0f), int(y0f), int(x0f)
            ex, wx = (x0f + one) - fx, fx - x0f
            ey, wy = (y0f + one) - fy, fy - y0f
            ez, wz = (z0f + one) - fz, fz - z0f
            weights = (
                ex * ey * ez, wx * ey * ez, ex * wy * ez, wx * wy * ez,
                ex * ey * wz, wx * ey * wz, ex * wy * wz, wx * wy * wz,
            )  # fmt: skip
            for c in range(c_):
                acc = 0 * one
                for k in range(8):
                    zz, yy, xx = z0 + (k >> 2), y0 + ((k >> 1) & 1), x0 + (k & 1)
                    if 0 <= zz < d and 0 <= yy < h and 0 <= xx < w:
                        acc += x[n, c, zz, yy, xx] * weights[k]
                out[n, c, p] = acc


@_jit
def trilinear3d_backward(x, iz, iy, ix, g, gx, giz, giy, gix, one, want_x, want_pos):
    """Adds the input's gradient into ``gx`` and writes the coordinates' into ``giz``/``giy``/``gix``."""
    n_, c_, d, h, w = x.shape
    for n in range(n_):
        for p in range(iz.shape[1]):
            fz, fy, fx = iz[n, p], iy[n, p], ix[n, p]
            giz[n, p] = 0
            giy[n, p] = 0
            gix[n, p] = 0
            if not (_usable(fz) and _usable(fy) and _usable(fx)):
                continue
            z0f, y0f, x0f = np.floor(fz), np.floor(fy), np.floor(fx)
            z0, y0, x0 = int(z0f), int(y0f), int(x0f)
            ex, wx = (x0f + one) - fx, fx - x0f
            ey, wy = (y0f + one) - fy, fy - y0f
            ez, wz = (z0f + one) - fz, fz - z0f
            weights = (
                ex * ey * ez, wx * ey * ez, ex * wy * ez, wx * wy * ez,
                ex * ey * wz, wx * ey * wz, ex * wy * wz, wx * wy * wz,
            )  # fmt: skip
            ax = 0 * one
            ay = 0 * one
            az = 0 * one
            for c in range(c_):
                go = g[n, c, p]
                for k in range(8):
                    bz, by, bx = k >> 2, (k >> 1) & 1, k & 1
                    zz, yy, xx = z0 + bz, y0 + by, x0 + bx
                    if not (0 <= zz < d and 0 <= yy < h and 0 <= xx < w):
                        continue
                    if want_x:
                        gx[n, c, zz, yy, xx] += weights[k] * go
                    if want_pos:
                        v = x[n, c, zz, yy, xx]
                        # torch's terms: value, the other two dims' weights, the sign of the side taken
                        xw, yw, zw = (wx if bx else ex), (wy if by else ey), (wz if bz else ez)
                        tx, ty, tz = v * yw * zw * go, v * xw * zw * go, v * xw * yw * go
                        ax = ax + tx if bx else ax - tx
                        ay = ay + ty if by else ay - ty
                        az = az + tz if bz else az - tz
            giz[n, p] = az
            giy[n, p] = ay
            gix[n, p] = ax


@_inline
def _cubic_coefficients(t, k):
    """torch's cubic convolution weights (A = -0.75) of the four taps around ``t`` in [0, 1), with the
    constants ``k`` = (A, A + 2, A + 3, 5A, 8A, 4A, 1) in the data's dtype (numba would widen a float32
    sum with a Python float to float64)."""
    a, a2, a3, a5, a8, a4, one = k[0], k[1], k[2], k[3], k[4], k[5], k[6]
    x0 = t + one
    x2 = one - t
    x3 = x2 + one
    return (
        ((a * x0 - a5) * x0 + a8) * x0 - a4,
        (a2 * t - a3) * t * t + one,
        (a2 * x2 - a3) * x2 * x2 + one,
        ((a * x3 - a5) * x3 + a8) * x3 - a4,
    )


@_inline
def _cubic_slopes(t, k):
    """The derivatives of :func:`_cubic_coefficients` in ``t`` (the composite's chain rule, term by term)."""
    a, a2, a3, a5, a8, one = k[0], k[1], k[2], k[3], k[4], k[6]
    two = one + one
    three = two + one
    x0 = t + one
    x2 = one - t
    x3 = x2 + one
    return (
        (three * a * x0 - two * a5) * x0 + a8,
        (three * a2 * t - two * a3) * t,
        -((three * a2 * x2 - two * a3) * x2),
        -((three * a * x3 - two * a5) * x3 + a8),
    )


@_inline
def _cubic_tap(v, size, padding, low, span, one):
    """The pixel a bicubic tap at coordinate ``v`` (a float) reads along an axis of ``size`` pixels: -1
    when it reads 0 (outside the image with zeros padding, or not a number). ``padding`` 1 clamps to
    the border, 2 mirrors at ``low`` over ``span`` (torch's reflect_coordinates, in the data's dtype;
    ``span`` 0: a one-pixel axis) and clamps."""
    if padding == 2:
        if span == 0:
            v = 0 * one
        else:
            shifted = v - low
            distance = np.abs(shifted)
            turns = distance / span
            if turns < one:  # within one span (most taps): fmod would return distance itself
                v = distance + low
            else:
                extra = np.fmod(distance, span)
                if np.fmod(np.floor(turns), one + one) == 0:
                    v = extra + low
                else:
                    v = span - extra + low
    if padding != 0:
        if v != v:
            return -1
        v = min(max(v, 0 * one), size - one)  # an infinite coordinate clamps to the border, as np.clip
    elif not _usable(v):
        return -1
    i = int(v)
    return i if 0 <= i < size else -1


@_inline
def _cubic_taps(f, size, padding, low, span, one):
    base = np.floor(f)
    return (
        _cubic_tap(base - one, size, padding, low, span, one),
        _cubic_tap(base, size, padding, low, span, one),
        _cubic_tap(base + one, size, padding, low, span, one),
        _cubic_tap(base + (one + one), size, padding, low, span, one),
    )


@_jit
def bicubic2d(x, iy, ix, out, k, padding, geometry):
    """``out[n, c, p]``: x (N, C, H, W) at pixel coordinates (iy[n, p], ix[n, p]) by torch's bicubic
    grid sampling: each of the four rows blended along x, then the rows along y, with the taps mapped
    into the image by the padding (``geometry`` = (low_y, span_y, low_x, span_x) for reflection)."""
    n_, c_, h, w = x.shape
    one = k[6]
    zero = 0 * one
    hf, wf = h * one, w * one
    for n in range(n_):
        for p in range(iy.shape[1]):
            fy, fx = iy[n, p], ix[n, p]
            wy = _cubic_coefficients(fy - np.floor(fy), k)
            wx = _cubic_coefficients(fx - np.floor(fx), k)
            rows = _cubic_taps(fy, hf, padding, geometry[0], geometry[1], one)
            cols = _cubic_taps(fx, wf, padding, geometry[2], geometry[3], one)
            for c in range(c_):
                total = zero
                for i in range(4):
                    r = rows[i]
                    line = zero
                    for j in range(4):
                        cc = cols[j]
                        v = x[n, c, r, cc] if r >= 0 and cc >= 0 else zero
                        line = v * wx[j] if j == 0 else line + v * wx[j]
                    total = line * wy[i] if i == 0 else total + line * wy[i]
                out[n, c, p] = total


@_jit
def bicubic2d_backward(x, iy, ix, g, gx, giy, gix, k, padding, geometry, want_x, want_pos):
    """Adds the input's gradient into ``gx`` (each tap's weight times the output's gradient) and writes
    the coordinates' into ``giy``/``gix``: the weights' derivatives against the pixels read (the taps
    themselves are piecewise constant)."""
    n_, c_, h, w = x.shape
    one = k[6]
    zero = 0 * one
    hf, wf = h * one, w * one
    for n in range(n_):
        for p in range(iy.shape[1]):
            fy, fx = iy[n, p], ix[n, p]
            ty, tx = fy - np.floor(fy), fx - np.floor(fx)
            wy, wx = _cubic_coefficients(ty, k), _cubic_coefficients(tx, k)
            dy, dx = _cubic_slopes(ty, k), _cubic_slopes(tx, k)
            rows = _cubic_taps(fy, hf, padding, geometry[0], geometry[1], one)
            cols = _cubic_taps(fx, wf, padding, geometry[2], geometry[3], one)
            ay = zero
            ax = zero
            for c in range(c_):
                go = g[n, c, p]
                for i in range(4):
                    r = rows[i]
                    for j in range(4):
                        cc = cols[j]
                        inside = r >= 0 and cc >= 0
                        if want_x and inside:
                            gx[n, c, r, cc] += go * wx[j] * wy[i]  # torch's order of the factors
                        if want_pos:
                            v = x[n, c, r, cc] if inside else zero
                            ax = ax + v * go * dx[j] * wy[i]
                            ay = ay + v * go * wx[j] * dy[i]
            giy[n, p] = ay
            gix[n, p] = ax


@_jit
def nearest(x, idx, out):
    """``out[n, c, p] = x[n, c, idx[n, p]]`` over flattened spatial dims, 0 where ``idx`` is -1
    (channel by channel: one plane in cache while its points are read)."""
    n_, c_ = x.shape[0], x.shape[1]
    zero = np.zeros(1, x.dtype)[0]  # host: numba kernel
    for n in range(n_):
        where = idx[n]
        for c in range(c_):
            plane = x[n, c]
            dst = out[n, c]
            for p in range(where.shape[0]):
                i = where[p]
                dst[p] = plane[i] if i >= 0 else zero


@_jit
def nearest_backward(g, idx, gx):
    n_, c_ = g.shape[0], g.shape[1]
    for n in range(n_):
        where = idx[n]
        for c in range(c_):
            grads, target = g[n, c], gx[n, c]
            for p in range(where.shape[0]):
                i = where[p]
                if i >= 0:
                    target[i] += grads[p]


@_jit
def blend_axis(x, lo, hi, w0, w1, out):
    """``out[a, j, b] = x[a, lo[j], b] * w0[j] + x[a, hi[j], b] * w1[j]`` (x viewed as (A, n_in, B))."""
    for a in range(x.shape[0]):
        for j in range(lo.shape[0]):
            i0, i1, u, v = lo[j], hi[j], w0[j], w1[j]
            for b in range(x.shape[2]):
                out[a, j, b] = x[a, i0, b] * u + x[a, i1, b] * v


@_jit
def blend_axis_backward(g, lo, hi, w0, w1, gx):
    """The transpose of :func:`blend_axis`, added into ``gx`` (A, n_in, B) in output order."""
    for a in range(g.shape[0]):
        for j in range(lo.shape[0]):
            i0, i1, u, v = lo[j], hi[j], w0[j], w1[j]
            for b in range(g.shape[2]):
                go = g[a, j, b]
                gx[a, i0, b] += u * go
                gx[a, i1, b] += v * go


@_jit
def gather_axis_backward(g, index, gx):
    """The transpose of ``x.take(index, axis=1)`` on (A, n, B) arrays, added into ``gx``."""
    for a in range(g.shape[0]):
        for j in range(index.shape[0]):
            i = index[j]
            for b in range(g.shape[2]):
                gx[a, i, b] += g[a, j, b]


@_jit
def adaptive_max2d(x, out, where):
    """torch's adaptive max pooling of x (N, C, H, W) into out (N, C, OH, OW): window i covers
    ``floor(i * H / OH)`` up to ``ceil((i + 1) * H / OH)``; the first maximum in row-major order, or
    the last NaN, its flat index into H * W written to ``where``."""
    n_, c_, h, w = x.shape
    oh, ow = out.shape[2], out.shape[3]
    rows = np.empty((oh, 2), np.int64)  # host: numba kernel
    cols = np.empty((ow, 2), np.int64)  # host: numba kernel
    for i in range(oh):
        rows[i, 0], rows[i, 1] = (i * h) // oh, -((-(i + 1) * h) // oh)
    for j in range(ow):
        cols[j, 0], cols[j, 1] = (j * w) // ow, -((-(j + 1) * w) // ow)
    low = -np.inf
    for n in range(n_):
        for c in range(c_):
            plane = x[n, c]
            for i in range(oh):
                y0, y1 = rows[i, 0], rows[i, 1]
                for j in range(ow):
                    x0, x1 = cols[j, 0], cols[j, 1]
                    best = low
                    at = y0 * w + x0
                    for yy in range(y0, y1):
                        line = plane[yy]
                        for xx in range(x0, x1):
                            v = line[xx]
                            # torch's rule: the first maximum, or the last NaN (selects, not branches:
                            # random data mispredicts a branch here)
                            take = (v > best) | (v != v)
                            best = v if take else best
                            at = yy * w + xx if take else at
                    out[n, c, i, j] = best
                    where[n, c, i, j] = at


@_jit
def adaptive_max2d_backward(g, where, gx):
    """Each output's gradient added to its maximum's place in ``gx`` (N, C, H * W)."""
    for n in range(g.shape[0]):
        for c in range(g.shape[1]):
            for i in range(g.shape[2]):
                for j in range(g.shape[3]):
                    gx[n, c, where[n, c, i, j]] += g[n, c, i, j]
