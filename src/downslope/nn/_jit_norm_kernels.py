"""Compiled (numba) kernels for layer and group norm over rows and for inference-mode batch norm;
imported only when ``_jit.kernels`` says the compiled path applies (numba installed, not switched
off, host arrays of a dtype numba compiles).

Each kernel does in one or two passes over the data what the NumPy path beside it does in several
(NumPy's broadcast element-wise ops and its reductions along a short last axis are slow at these
sizes). Statistics are summed in float64 and the rows centred on the float64 mean, so data far
from zero (1e4 + noise of 1e-2 in float32) keeps its variance; the parity tests run both paths
against PyTorch. These kernels take and make NumPy arrays only (marked ``# host: numba path``).

Example:
    >>> import numpy as np
    >>> from downslope.nn import _jit
    >>> if _jit.kernels() is not None:
    ...     from downslope.nn import _jit_norm_kernels as k
    ...     out, xhat, inv_std = k.norm_rows(np.array([[1.0, 3.0]], np.float32), None, None, 0.0, False)
    ...     assert out.tolist() == [[-1.0, 1.0]]
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np

from .. import parallel as _parallel
from .. import workspace as _workspace

# Reassociation lets LLVM keep several partial sums in vector registers.
_jit_sums = numba.njit(cache=True, nogil=True, fastmath={"reassoc"}, error_model="numpy")


def _fresh(like: np.ndarray) -> np.ndarray:
    """An uninitialised array shaped as ``like`` that may be handed out: a lent one when large
    (its pages come back warm, see ``workspace.lend``), else NumPy's own (cheaper to get)."""
    if like.nbytes >= _workspace.LEND_MIN_BYTES:
        return _workspace.lend(like.shape, like.dtype)
    return np.empty(like.shape, dtype=like.dtype)  # host: numba path


# ---------------------------------------------------------------------- layer / group norm rows
# inlined into the row loops (numba's inline): as a call it ran layer norm over rows of 64 1.5x as long
@numba.njit(cache=True, nogil=True, fastmath={"reassoc"}, error_model="numpy", inline="always")
def _row_stats(row, eps):
    """(mu, c, inv) of a row, in the data's precision (twice the vector lanes of float64): the mean
    ``mu`` rounded to it, the deviations from it (exact for values near it), their mean ``c``
    measuring the rounding shift; var = mean(d^2) - c^2 is the variance about the true mean, and
    ``inv = 1 / sqrt(var + eps)``. Far from zero (1e4 + noise of 1e-2) the shift is ~5e-4 and c takes
    it off: ``((x - mu) - c) * inv`` is the normalised row."""
    n = row.shape[0]
    zero = row.dtype.type(0)
    inv_n = row.dtype.type(1.0 / n)
    s = zero
    for j in range(n):
        s += row[j]
    mu = s * inv_n
    sd = zero
    ss = zero
    for j in range(n):
        d = row[j] - mu
        sd += d
        ss += d * d
    c = sd * inv_n
    return mu, c, row.dtype.type(1.0 / np.sqrt(max(ss * inv_n - c * c, 0.0) + eps))


@_jit_sums
def _norm_rows(x, w, b, has_w, has_b, eps, out, xhat, save, inv_std, row0):
    r_, n = x.shape
    p_ = w.shape[0]
    for i in range(r_):
        mu, c, inv = _row_stats(x[i], eps)
        inv_std[i] = inv
        p = (row0 + i) % p_  # the affine row of this row (GroupNorm: its group)
        if save:
            for j in range(n):
                h = ((x[i, j] - mu) - c) * inv
                xhat[i, j] = h
                if has_w:
                    h = h * w[p, j]
                if has_b:
                    h = h + b[p, j]
                out[i, j] = h
        elif has_w and has_b:
            for j in range(n):
                out[i, j] = (((x[i, j] - mu) - c) * inv) * w[p, j] + b[p, j]
        elif has_w:
            for j in range(n):
                out[i, j] = (((x[i, j] - mu) - c) * inv) * w[p, j]
        elif has_b:
            for j in range(n):
                out[i, j] = ((x[i, j] - mu) - c) * inv + b[p, j]
        else:
            for j in range(n):
                out[i, j] = ((x[i, j] - mu) - c) * inv


def norm_rows(
    x: np.ndarray, weight: np.ndarray | None, bias: np.ndarray | None, eps: float, save: bool
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """Normalize each row of the C-contiguous (R, n) ``x`` (biased variance) and apply
    ``out = xhat * w + b`` where ``w``, ``b`` are (P, n) and row ``i`` uses row ``i % P`` of them.

    Returns (out, xhat when ``save`` else None, inv_std (R,)); ``out`` never aliases xhat (the
    backward pass reads xhat; the caller may change its output in place).
    """
    r, n = x.shape
    dt = x.dtype
    dummy = np.zeros((1, 1), dtype=dt)  # host: numba path
    w = dummy if weight is None else weight
    b = dummy if bias is None else bias
    out = _fresh(x)
    xhat = np.empty(x.shape, dtype=dt) if save else dummy  # host: numba path; saved for backward
    inv_std = np.empty(r, dtype=dt)  # host: numba path

    def part(lo: int, hi: int) -> None:
        _norm_rows(
            x[lo:hi], w, b, weight is not None, bias is not None, eps, out[lo:hi],
            xhat[lo:hi] if save else dummy, save, inv_std[lo:hi], lo,
        )  # fmt: skip

    _parallel.over_parts(x, r, 3 * x.size, part)
    return out, (xhat if save else None), inv_std


@_jit_sums
def _norm_rows_backward(g, xhat, inv_std, w, has_w, need_x, need_p, gx, gw, gb, row0):
    r_, n = g.shape
    p_ = w.shape[0]
    zero = g.dtype.type(0)
    inv_n = g.dtype.type(1.0 / n)
    for i in range(r_):
        p = (row0 + i) % p_
        s1 = zero  # sums in the data's precision (twice float64's vector lanes), reassociated
        s2 = zero
        if has_w:
            for j in range(n):
                gh = g[i, j] * w[p, j]
                s1 += gh
                s2 += gh * xhat[i, j]
        else:
            for j in range(n):
                s1 += g[i, j]
                s2 += g[i, j] * xhat[i, j]
        if need_p:  # the parameter sums over rows in float64 (thousands of rows)
            for j in range(n):
                gw[p, j] += g[i, j] * xhat[i, j]
                gb[p, j] += g[i, j]
        if need_x:
            inv = inv_std[i]
            k2 = -inv * s2 * inv_n
            k3 = -inv * s1 * inv_n
            if has_w:
                for j in range(n):
                    gx[i, j] = (g[i, j] * w[p, j]) * inv + xhat[i, j] * k2 + k3
            else:
                for j in range(n):
                    gx[i, j] = g[i, j] * inv + xhat[i, j] * k2 + k3


def norm_rows_backward(
    g: np.ndarray, xhat: np.ndarray, inv_std: np.ndarray, weight: np.ndarray | None, need_x: bool, need_p: bool
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """(dx or None, dw, db) of :func:`norm_rows`: ``dx = inv_std * (gh - mean(gh) - xhat * mean(gh * xhat))``
    with ``gh = g * w`` per row; dw = sum of g * xhat and db = sum of g over the rows that share
    an affine row, (P, n) float64 (P = 1 without weight), in two passes over ``g``."""
    r, n = g.shape
    dt = g.dtype
    dummy = np.zeros((1, 1), dtype=dt)  # host: numba path
    w = dummy if weight is None else weight
    p = w.shape[0]
    gx = _fresh(g) if need_x else dummy

    def part(lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
        gw = np.zeros((p, n) if need_p else (1, 1), dtype=np.float64)  # host: numba path; this part's sums
        gb = np.zeros_like(gw)
        _norm_rows_backward(
            g[lo:hi], xhat[lo:hi], inv_std[lo:hi], w, weight is not None, need_x, need_p,
            gx[lo:hi] if need_x else dummy, gw, gb, lo,
        )  # fmt: skip
        return gw, gb

    # parts start at multiples of P so that every part's rows meet the affine rows in order
    sums = _parallel.over_parts(g, r, 2 * g.size, part) if p == 1 else [part(0, r)]
    gw_all, gb_all = sums[0]
    for gw_part, gb_part in sums[1:]:
        gw_all += gw_part
        gb_all += gb_part
    return (gx if need_x else None), gw_all, gb_all


# ---------------------------------------------------------------------- inference batch norm
@numba.njit(cache=True, nogil=True, error_model="numpy")
def _scale_shift_planes(x, scale, shift, out):
    a_, c_, m = x.shape
    for i in range(a_):
        for c in range(c_):
            s = scale[c]
            t = shift[c]
            for j in range(m):
                out[i, c, j] = x[i, c, j] * s + t


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _scale_shift_columns(x, scale, shift, out):
    r_, n = x.shape
    for i in range(r_):
        for j in range(n):
            out[i, j] = x[i, j] * scale[j] + shift[j]


def scale_shift(x: np.ndarray, scale: np.ndarray, shift: np.ndarray) -> Any:
    """``x * scale + shift`` per channel of the (A, C, M) view ``x`` (A = 1 for channel-major
    memory, as a convolution's output) in one pass, into a fresh (A, C, M) array."""
    out = _fresh(x)
    a, c, m = x.shape
    if m < 16 and x.flags.c_contiguous:  # few positions per channel: along rows of A, C * M values
        rows, out_rows = x.reshape(a, c * m), out.reshape(a, c * m)
        scale_m, shift_m = (scale, shift) if m == 1 else (np.repeat(scale, m), np.repeat(shift, m))

        def by_rows(lo: int, hi: int) -> None:
            _scale_shift_columns(rows[lo:hi], scale_m, shift_m, out_rows[lo:hi])

        _parallel.over_parts(x, a, x.size, by_rows)
        return out
    by_sample = x.shape[0] > 1

    def part(lo: int, hi: int) -> None:
        if by_sample:
            _scale_shift_planes(x[lo:hi], scale, shift, out[lo:hi])
        else:
            _scale_shift_planes(x[:, lo:hi], scale[lo:hi], shift[lo:hi], out[:, lo:hi])

    _parallel.over_parts(x, x.shape[0] if by_sample else x.shape[1], x.size, part)
    return out


# ---------------------------------------------------------------------- group norm
@_jit_sums
def _group_rows(x, flat, w, b, has_w, has_b, groups, eps, out, mean, shift, inv_std, row0):
    r_, cg, m = x.shape
    zero = x.dtype.type(0)
    for i in range(r_):
        mu, c, inv = _row_stats(flat[i], eps)
        mean[i] = mu
        shift[i] = c
        inv_std[i] = inv
        p = (row0 + i) % groups
        for k in range(cg):
            ch = p * cg + k
            a = inv * w[ch] if has_w else inv
            t = b[ch] if has_b else zero
            if has_w or has_b:
                for j in range(m):
                    out[i, k, j] = ((x[i, k, j] - mu) - c) * a + t
            else:
                for j in range(m):
                    out[i, k, j] = ((x[i, k, j] - mu) - c) * a


def group_rows(
    x: np.ndarray, groups: int, weight: np.ndarray | None, bias: np.ndarray | None, eps: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Group norm of the C-contiguous (N * groups, C / groups, M) ``x``: each row (a sample's group)
    normalized (biased variance), then ``* weight[ch] + bias[ch]`` per channel ``ch`` (weight and
    bias of shape (C,)). Returns (out, mean, shift, inv_std), the last three (R,): the backward pass
    recomputes ``xhat = ((x - mean) - shift) * inv_std`` from the input instead of keeping it."""
    r, cg, m = x.shape
    dt = x.dtype
    dummy = np.zeros(1, dtype=dt)  # host: numba path
    w = dummy if weight is None else weight
    b = dummy if bias is None else bias
    flat = x.reshape(r, cg * m)
    out = _fresh(x)
    mean = np.empty(r, dtype=dt)  # host: numba path
    shift = np.empty(r, dtype=dt)  # host: numba path
    inv_std = np.empty(r, dtype=dt)  # host: numba path

    def part(lo: int, hi: int) -> None:
        _group_rows(
            x[lo:hi], flat[lo:hi], w, b, weight is not None, bias is not None, groups, eps, out[lo:hi],
            mean[lo:hi], shift[lo:hi], inv_std[lo:hi], lo,
        )  # fmt: skip

    _parallel.over_parts(x, r, 3 * x.size, part)
    return out, mean, shift, inv_std


@_jit_sums
def _group_rows_backward(g, x, mean, shift, inv_std, w, has_w, groups, need_x, need_p, gx, gw, gb, row0):
    r_, cg, m = g.shape
    zero = g.dtype.type(0)
    inv_n = g.dtype.type(1.0 / (cg * m))
    for i in range(r_):
        p = (row0 + i) % groups
        mu = mean[i]
        c = shift[i]
        inv = inv_std[i]
        s1 = zero  # sums of g * w and g * w * xhat over the row
        s2 = zero
        for k in range(cg):
            ch = p * cg + k
            sg = zero  # this channel's sums: the weight is one factor of them
            sgx = zero
            for j in range(m):
                gg = g[i, k, j]
                sg += gg
                sgx += gg * (((x[i, k, j] - mu) - c) * inv)
            if need_p:  # the parameter sums over the batch in float64
                gw[ch] += sgx
                gb[ch] += sg
            if has_w:
                s1 += w[ch] * sg
                s2 += w[ch] * sgx
            else:
                s1 += sg
                s2 += sgx
        if need_x:
            k2 = -inv * s2 * inv_n
            k3 = -inv * s1 * inv_n
            for k in range(cg):
                a = inv * w[p * cg + k] if has_w else inv
                for j in range(m):
                    gx[i, k, j] = g[i, k, j] * a + (((x[i, k, j] - mu) - c) * inv) * k2 + k3


def group_rows_backward(
    g: np.ndarray,
    x: np.ndarray,
    groups: int,
    mean: np.ndarray,
    shift: np.ndarray,
    inv_std: np.ndarray,
    weight: np.ndarray | None,
    need_x: bool,
    need_p: bool,
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """(dx or None, dw, db) of :func:`group_rows`: per row ``dx = inv_std * (gh - mean(gh) - xhat *
    mean(gh * xhat))`` with ``gh = g * weight[ch]``; dw (C,) the sums of ``g * xhat`` and db (C,)
    those of ``g`` over the batch and positions, in float64; one pass over ``g`` and ``x`` for the
    sums, one for dx (a row is small: the second reads it from the cache)."""
    r, cg, m = g.shape
    dt = g.dtype
    dummy = np.zeros(1, dtype=dt)  # host: numba path
    w = dummy if weight is None else weight
    gx = _fresh(g) if need_x else np.zeros((1, 1, 1), dtype=dt)  # host: numba path
    c = groups * cg

    def part(lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
        gw = np.zeros(c if need_p else 1, dtype=np.float64)  # host: numba path; this part's sums
        gb = np.zeros_like(gw)
        _group_rows_backward(
            g[lo:hi], x[lo:hi], mean[lo:hi], shift[lo:hi], inv_std[lo:hi], w, weight is not None, groups,
            need_x, need_p, gx[lo:hi] if need_x else gx, gw, gb, lo,
        )  # fmt: skip
        return gw, gb

    sums = _parallel.over_parts(g, r, 3 * g.size, part)
    gw_all, gb_all = sums[0]
    for gw_part, gb_part in sums[1:]:
        gw_all += gw_part
        gb_all += gb_part
    return (gx if need_x else None), gw_all, gb_all


# ---------------------------------------------------------------------- RMS norm rows
@_jit_sums
def _rms_rows(x, w, has_w, eps, out, inv_rms):
    r_, n = x.shape
    zero = x.dtype.type(0)
    inv_n = x.dtype.type(1.0 / n)
    for i in range(r_):
        ss = zero
        for j in range(n):
            ss += x[i, j] * x[i, j]
        inv = x.dtype.type(1.0 / np.sqrt(ss * inv_n + eps))
        inv_rms[i] = inv
        if has_w:
            for j in range(n):
                out[i, j] = (x[i, j] * inv) * w[j]
        else:
            for j in range(n):
                out[i, j] = x[i, j] * inv


def rms_rows(x: np.ndarray, weight: np.ndarray | None, eps: float) -> tuple[np.ndarray, np.ndarray]:
    """RMS norm of each row of the C-contiguous (R, n) ``x``: ``x / sqrt(mean(x^2) + eps) * weight``
    (weight (n,) or None). Returns (out, inv_rms (R,)); the backward pass reads ``x`` again."""
    r, n = x.shape
    dt = x.dtype
    w = np.zeros(1, dtype=dt) if weight is None else weight  # host: numba path
    out = _fresh(x)
    inv_rms = np.empty(r, dtype=dt)  # host: numba path

    def part(lo: int, hi: int) -> None:
        _rms_rows(x[lo:hi], w, weight is not None, eps, out[lo:hi], inv_rms[lo:hi])

    _parallel.over_parts(x, r, 2 * x.size, part)
    return out, inv_rms


@_jit_sums
def _rms_rows_backward(g, x, inv_rms, w, has_w, need_x, need_w, gx, gw):
    r_, n = g.shape
    zero = g.dtype.type(0)
    inv_n = g.dtype.type(1.0 / n)
    for i in range(r_):
        inv = inv_rms[i]
        s = zero  # the sum of g * w * x over the row
        if has_w:
            for j in range(n):
                s += (g[i, j] * w[j]) * x[i, j]
        else:
            for j in range(n):
                s += g[i, j] * x[i, j]
        if need_w:  # the weight's sums over rows in float64 (thousands of rows)
            for j in range(n):
                gw[j] += g[i, j] * (x[i, j] * inv)
        if need_x:
            k = -(inv * inv * inv) * s * inv_n
            if has_w:
                for j in range(n):
                    gx[i, j] = (g[i, j] * w[j]) * inv + x[i, j] * k
            else:
                for j in range(n):
                    gx[i, j] = g[i, j] * inv + x[i, j] * k


def rms_rows_backward(
    g: np.ndarray, x: np.ndarray, inv_rms: np.ndarray, weight: np.ndarray | None, need_x: bool, need_w: bool
) -> tuple[np.ndarray | None, np.ndarray]:
    """(dx or None, dw) of :func:`rms_rows`: ``dx = inv_rms * (gh - xhat * mean(gh * xhat))`` with
    ``gh = g * weight``, ``xhat = x * inv_rms`` per row; dw (n,) the sums of ``g * xhat`` over the
    rows in float64 (zeros when not ``need_w``)."""
    r, n = g.shape
    dt = g.dtype
    w = np.zeros(1, dtype=dt) if weight is None else weight  # host: numba path
    gx = _fresh(g) if need_x else np.zeros((1, 1), dtype=dt)  # host: numba path

    def part(lo: int, hi: int) -> np.ndarray:
        gw = np.zeros(n if need_w else 1, dtype=np.float64)  # host: numba path; this part's sums
        _rms_rows_backward(
            g[lo:hi], x[lo:hi], inv_rms[lo:hi], w, weight is not None, need_x, need_w, gx[lo:hi] if need_x else gx, gw
        )
        return gw

    sums = _parallel.over_parts(g, r, 3 * g.size, part)
    gw_all = sums[0]
    for gw_part in sums[1:]:
        gw_all += gw_part
    return (gx if need_x else None), gw_all
