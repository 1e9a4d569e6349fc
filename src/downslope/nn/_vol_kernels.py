"""The 3-D convolutions' kernels: vol2col, one GEMM per pass, col2vol (the 2-D im2col path of
``_conv_kernels`` with a depth axis), for ``conv3d`` and ``conv_transpose3d``.

* vol2col: the columns ``cols`` of shape ``(C*kd*kh*kw, n*OD*OH*OW)`` hold every receptive field of a
  chunk of the batch (zeros where a field reads the zero padding).
* conv3d forward: ONE product ``W (C_out, C*kd*kh*kw) @ cols`` per chunk (batched over groups),
  written into the channel-major ``(C_out, N, OD, OH, OW)`` output, seen as ``(N, C_out, ...)``.
* conv3d backward: the weight gradient ``cols @ g.T`` (the chunk's columns rebuilt, not kept from
  the forward pass); the input gradient ``W.T @ g`` folded back by col2vol (each column entry added
  where it was read from).
* conv_transpose3d is the convolution's input-gradient pass run forward (``W.T @ x``, col2vol), its
  input gradient the convolution's forward of ``g`` and its weight gradient ``cols(g) @ x.T``.
* A 1x1x1 stride-1 convolution is one GEMM over the input's pixels (no columns).

With numba (the ``jit`` extra) vol2col and col2vol are the compiled loops of ``_jit_volumetric``;
devices and ``DOWNSLOPE_JIT=0`` run the NumPy formulation here (a zero-padded copy, one strided copy
of its receptive fields; col2vol as kd*kh*kw strided adds of whole blocks), in the arrays' own
namespace. Under ``create_graph=True`` the rules run recorded ops instead (``conv_transpose3d`` for
the convolution's input gradient, ``conv3d`` for the transposed one's, and the weight gradients as
convolutions with the batch and channel axes swapped), so they can be differentiated again.

The geometry handed around is the convolution's: ``(stride, pads, dilation, groups, out_size)``,
one int per spatial dim each (the padding the same before and after: an asymmetric 'same' padding is
applied by ``conv3d`` before its op), ``out_size`` the convolution's output size (for a transposed
convolution, its input's).

Example:
    >>> import numpy as np
    >>> from downslope.nn._vol_kernels import conv3d_forward
    >>> geometry = ((1, 1, 1), (0, 0, 0), (1, 1, 1), 1, (1, 1, 1))
    >>> conv3d_forward(np.ones((1, 1, 2, 2, 2), np.float32), np.ones((1, 1, 2, 2, 2), np.float32), None, geometry)
    array([[[[[8.]]]]], dtype=float32)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import gemm, jit_gate
from .. import parallel as _parallel
from .. import workspace as _workspace
from ..backend import namespace_of
from ._conv_kernels import DEVICE_CHUNK_BYTES, _batch_chunks
from ._conv_transpose_kernels import _channel_sums

_KERNELS = "downslope.nn._jit_volumetric"
Geometry = tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...], int, tuple[int, ...]]


def _compiled(*arrays: Any) -> Any:
    return jit_gate.kernels(_KERNELS, *arrays)


def _as_strided(a: Any, shape: tuple[int, ...], strides: tuple[int, ...]) -> Any:
    if type(a) is np.ndarray:
        return np.lib.stride_tricks.as_strided(a, shape, strides, writeable=False)
    # NumPy's as_strided does not dispatch: a device array is viewed by its own library's.
    return namespace_of(a).lib.stride_tricks.as_strided(a, shape, strides)


#: Bytes of columns built at a time. A chunk is a run of output slabs (one image's output depth
#: plane each) with the compiled kernels, of whole images without, so that the columns are still in
#: cache when the GEMM reads them (and never built whole for a large volume).
CHUNK_BYTES = 2 * 2**20


def _chunks(lo: int, hi: int, od: int, slab_bytes: int, like: Any, jit: Any) -> list[tuple[int, int]]:
    """Consecutive (u0, u1) ranges of the output slabs (u = n*OD + z) of images [lo, hi), each with at
    most CHUNK_BYTES of columns (DEVICE_CHUNK_BYTES on a device), at least one slab. Without the
    compiled kernels a chunk is whole images, or part of one image when one image's are too many."""
    if jit is not None:
        size = max(1, CHUNK_BYTES // max(1, slab_bytes))
        first, last = lo * od, hi * od
        return [(u, min(last, u + size)) for u in range(first, last, size)]
    limit = CHUNK_BYTES if type(like) is np.ndarray else DEVICE_CHUNK_BYTES
    if slab_bytes * od <= limit:
        return [((lo + a) * od, (lo + b) * od) for a, b in _batch_chunks(hi - lo, slab_bytes * od, like)]
    size = max(1, limit // max(1, slab_bytes))
    return [(n * od + z, n * od + min(od, z + size)) for n in range(lo, hi) for z in range(0, od, size)]


def _window(u0: int, u1: int, kernel: tuple[int, ...], geometry: Geometry, depth: int) -> tuple[int, ...]:
    """(first image, end image, first output depth, end output depth, first input depth, end input
    depth) of the slabs [u0, u1): whole images, or output depths of one image; the input depths
    (padding included, so possibly < 0 or >= ``depth``) are those their fields read."""
    st, pads, dil, _, size = geometry
    od = size[0]
    n0, z0 = divmod(u0, od)
    n1, z1 = (u1 // od, od) if z0 == 0 and u1 % od == 0 else (n0 + 1, u1 - n0 * od)
    first = z0 * st[0] - pads[0]
    return n0, n1, z0, z1, first, (z1 - 1) * st[0] - pads[0] + (kernel[0] - 1) * dil[0] + 1


def _native(a: Any) -> tuple[Any, bool]:
    """(N, C, D, H, W) ``a`` as a C-contiguous array and whether that is its (C, N, D, H, W) memory
    (a channel-major layout); a copy when it is neither."""
    if a.flags.c_contiguous:
        return a, False
    cm = a.transpose(1, 0, 2, 3, 4)
    if cm.flags.c_contiguous:
        return cm, True
    return np.ascontiguousarray(a), False  # host: the compiled path's arrays


def vol2col(x: Any, u0: int, u1: int, kernel: tuple[int, ...], geometry: Geometry, out: Any) -> Any:
    """Fill ``out`` (C*kd*kh*kw, (u1 - u0)*OH*OW) with the receptive fields of the output slabs
    [u0, u1) (u = n*OD + z) of (N, C, D, H, W) ``x``; whole images unless the compiled kernels run."""
    st, pads, dil, _, size = geometry
    jit = _compiled(x, out)
    if jit is not None:
        src, cm = _native(x)
        jit.vol2col(src, cm, u0, u1, out.reshape(-1, (u1 - u0) * size[1] * size[2]), kernel, st, pads, dil, size)
        return out
    n0, n1, z0, z1, first, end = _window(u0, u1, kernel, geometry, x.shape[2])
    x = x[n0:n1]
    m, c, depth = x.shape[:3]
    padded = _padded_copy(x, first, end, pads)
    s_c, s_n, s_d, s_h, s_w = padded.strides
    fields = _as_strided(
        padded,
        (c, *kernel, m, z1 - z0, size[1], size[2]),
        (s_c, s_d * dil[0], s_h * dil[1], s_w * dil[2], s_n, s_d * st[0], s_h * st[1], s_w * st[2]),
    )
    out.reshape(fields.shape)[...] = fields
    _workspace.give(padded)
    return out


def _padded_copy(x: Any, first: int, end: int, pads: tuple[int, ...]) -> Any:
    """Input depths [first, end) of (m, C, D, H, W) ``x`` (zeros outside [0, D)) inside a border of
    zeros, laid out (C, m, end - first, H', W') in a borrowed workspace array (give it back)."""
    m, c, d, h, w = x.shape
    _, ph, pw = pads
    out = _workspace.take((c, m, end - first, h + 2 * ph, w + 2 * pw), x.dtype, x)
    lo, hi = max(first, 0), min(end, d)
    if ph or pw or lo > first or hi < end:
        out.fill(0)
    out[:, :, lo - first : hi - first, ph : ph + h, pw : pw + w] = x[:, :, lo:hi].transpose(1, 0, 2, 3, 4)
    return out


def col2vol(cols: Any, target: Any, u0: int, u1: int, kernel: tuple[int, ...], geometry: Geometry) -> None:
    """Add each entry of ``cols`` (C*kd*kh*kw, (u1 - u0)*OH*OW), the columns of output slabs [u0, u1),
    into C-contiguous (C, N, D, H, W) ``target`` where :func:`vol2col` read it from (entries read
    from the padding are dropped)."""
    st, pads, dil, _, size = geometry
    jit = _compiled(cols, target)
    if jit is not None:
        jit.col2vol(cols, target, True, u0, u1, kernel, st, pads, dil, size)
        return
    n0, n1, z0, z1, first, end = _window(u0, u1, kernel, geometry, target.shape[2])
    target = target[:, n0:n1]
    c, m, d, h, w = target.shape
    _, ph, pw = pads
    padded = _workspace.take((c, m, end - first, h + 2 * ph, w + 2 * pw), cols.dtype, cols)
    padded.fill(0)
    blocks = cols.reshape(c, *kernel, m, z1 - z0, size[1], size[2])
    span = [(s * (o - 1) + 1) for s, o in zip(st, (z1 - z0, size[1], size[2]))]
    for a in range(kernel[0]):
        za = a * dil[0]
        for b in range(kernel[1]):
            yb = b * dil[1]
            for e in range(kernel[2]):
                xe = e * dil[2]
                block = padded[:, :, za : za + span[0] : st[0], yb : yb + span[1] : st[1], xe : xe + span[2] : st[2]]
                block += blocks[:, a, b, e]
    lo, hi = max(first, 0), min(end, d)
    if lo < hi:
        target[:, :, lo:hi] += padded[:, :, lo - first : hi - first, ph : ph + h, pw : pw + w]
    _workspace.give(padded)


def _pointwise(w: Any, geometry: Geometry) -> bool:
    """A 1x1x1 convolution of stride 1, no padding, one group: one GEMM over the input's pixels."""
    st, pads, _, groups, _ = geometry
    return w.shape[2:] == (1, 1, 1) and st == (1, 1, 1) and not any(pads) and groups == 1


def _channel_rows(a: Any) -> tuple[Any, bool]:
    """(N, C, ...) ``a`` as (C, N*...): a view when ``a`` is channel-major, else a borrowed copy;
    and whether it was borrowed (give it back)."""
    cm = a.transpose(1, 0, *range(2, a.ndim))
    if cm.flags.c_contiguous:
        return cm.reshape(a.shape[1], -1), False
    out = _workspace.take(cm.shape, a.dtype, a)
    out[...] = cm
    return out.reshape(a.shape[1], -1), True


def conv3d_forward(x: Any, w: Any, b: Any, geometry: Geometry) -> Any:
    """The convolution of (N, C, D, H, W) ``x`` with (C_out, C / groups, kd, kh, kw) ``w`` (plus ``b``,
    or None): (N, C_out, OD, OH, OW) laid out (C_out, N, OD, OH, OW) in memory."""
    groups, size = geometry[3], geometry[4]
    n = x.shape[0]
    c_out, c_per_group = w.shape[:2]
    kernel = w.shape[2:]
    k = c_per_group * kernel[0] * kernel[1] * kernel[2]
    pixels = size[0] * size[1] * size[2]
    out = _workspace.lend((groups, c_out // groups, n * pixels), x.dtype, x)
    w_mat = w.reshape(groups, c_out // groups, k)
    jit = _compiled(x)
    if _pointwise(w, geometry) and n:
        rows, borrowed = _channel_rows(x)
        gemm.matmul(w_mat[0], rows, out[0])
        if borrowed:
            _workspace.give(rows)
    elif _depth_shifted(jit, w, geometry) and n:
        _shifted_forward(jit, x, w, geometry, out[0])
    else:
        slab = size[1] * size[2]

        def work(lo: int, hi: int) -> None:
            if hi <= lo:  # an empty batch (N = 0): nothing to compute
                return
            chunks = _chunks(lo, hi, size[0], groups * k * slab * x.dtype.itemsize, x, jit)
            buffer = _workspace.take((groups * k * (chunks[0][1] - chunks[0][0]) * slab,), x.dtype, x)
            for u0, u1 in chunks:
                cols = vol2col(x, u0, u1, kernel, geometry, buffer[: groups * k * (u1 - u0) * slab])
                gemm.matmul(w_mat, cols.reshape(groups, k, -1), out[:, :, u0 * slab : u1 * slab])
            _workspace.give(buffer)

        _parallel.over_parts(x, n, c_out * k * n * pixels // _parallel.MULTIPLY_ADDS_PER_NS, work)
    out = out.reshape(c_out, n * pixels)
    if b is not None:
        out += b[:, None]
    return out.reshape(c_out, n, *size).transpose(1, 0, 2, 3, 4)


# ---------------------------------------------------------------------- depth-shifted GEMMs
# A convolution of depth stride 1 (a U-Net's) skips the depth taps in its columns: the columns of the
# (kh, kw) taps of every padded input depth plane, (C*kh*kw, D'*OH*OW) with the planes one after
# another, hold the columns of depth tap a for every output depth at once, as the contiguous run of
# them shifted by a*dd planes. So the forward pass is kd products ``W_a (C_out, C*kh*kw) @ cols[:,
# shifted by a]`` added up, and the columns copy the input kh*kw times instead of kd*kh*kw times
# (measured, one thread, Conv3d(32, 16, 3, padding=1) on 2 16^3 volumes, forward: columns 2.5 ->
# ~0.9 ms of a 5.9 ms pass). The gradients are the same products transposed: ``gW_a += g @ cols[a].T``,
# and the input gradient's columns ``dcols[a] += W_a.T @ g``, folded back by col2vol. A chunk is a
# run of output depths of one image, with the kd - 1 planes of input after it that its taps reach.
# The compiled kernels build and fold the columns (the NumPy formulation keeps vol2col).

#: Output depths at least per chunk (each chunk rebuilds (kd - 1)*dd planes of its neighbour's).
SHIFTED_MIN_SLABS = 4


def _depth_shifted(jit: Any, w: Any, geometry: Geometry) -> bool:
    st, _, _, groups, _ = geometry
    return jit is not None and groups == 1 and st[0] == 1 and w.shape[2] > 1


def _plane_geometry(geometry: Geometry, depth: int) -> Geometry:
    """vol2col's geometry for the (kh, kw) taps of every padded input depth plane."""
    st, pads, dil, groups, size = geometry
    return ((1, st[1], st[2]), pads, (1, dil[1], dil[2]), groups, (depth + 2 * pads[0], size[1], size[2]))


def _shifted_chunks(n: int, od: int, rows: int, slab: int, itemsize: int) -> list[tuple[int, int, int]]:
    """(image, first output depth, end output depth) of each chunk."""
    size = min(od, max(SHIFTED_MIN_SLABS, CHUNK_BYTES // max(1, rows * slab * itemsize)))
    return [(i, z, min(od, z + size)) for i in range(n) for z in range(0, od, size)]


def _shifted_forward(jit: Any, x: Any, w: Any, geometry: Geometry, out: Any) -> None:
    """``out`` (C_out, N*OD*OH*OW) = the convolution, by depth-shifted products (see above)."""
    _, _, dil, _, size = geometry
    n, c, depth = x.shape[:3]
    c_out, _, kd, kh, kw = w.shape
    rows, slab, reach = c * kh * kw, size[1] * size[2], (kd - 1) * dil[0]
    planes = _plane_geometry(geometry, depth)
    dp = planes[4][0]
    taps = np.ascontiguousarray(w.transpose(2, 0, 1, 3, 4)).reshape(kd, c_out, rows)  # host: the jit path
    src, cm = _native(x)
    chunks = _shifted_chunks(n, size[0], rows, slab, x.dtype.itemsize)
    most = max(z1 - z0 for _, z0, z1 in chunks) + reach
    buffer = _workspace.take((rows * most * slab,), x.dtype)
    for i, z0, z1 in chunks:
        span = (z1 - z0 + reach) * slab
        cols = buffer[: rows * span].reshape(rows, span)
        jit.vol2col(src, cm, i * dp + z0, i * dp + z1 + reach, cols, (1, kh, kw), *planes[:3], planes[4])
        target = out[:, (i * size[0] + z0) * slab : (i * size[0] + z1) * slab]
        for a in range(kd):
            shift = a * dil[0] * slab
            gemm.matmul(taps[a], cols[:, shift : shift + (z1 - z0) * slab], target, accumulate=a > 0)
    _workspace.give(buffer)


def _shifted_backward(jit: Any, g_rows: Any, x: Any, w: Any, geometry: Geometry, gx_cm: Any, need_gw: bool) -> Any:
    """The input gradient (added into the C-contiguous (C, N, D, H, W) ``gx_cm``, or None) and the
    weight gradient (or None) by depth-shifted products; ``g_rows`` is the (C_out, N*OD*OH*OW)
    output gradient."""
    _, _, dil, _, size = geometry
    n, c, depth = x.shape[:3]
    c_out, _, kd, kh, kw = w.shape
    rows, slab, reach = c * kh * kw, size[1] * size[2], (kd - 1) * dil[0]
    planes = _plane_geometry(geometry, depth)
    dp = planes[4][0]
    taps_t = None
    if gx_cm is not None:  # (kd, C*kh*kw, C_out)
        taps_t = np.ascontiguousarray(w.transpose(2, 1, 3, 4, 0)).reshape(kd, rows, c_out)  # host: the jit path
    gw = np.zeros((kd, c_out, rows), dtype=g_rows.dtype) if need_gw else None  # host: the jit path
    src, cm = _native(x)
    chunks = _shifted_chunks(n, size[0], rows, slab, x.dtype.itemsize)
    most = max(z1 - z0 for _, z0, z1 in chunks) + reach
    buffer = _workspace.take((rows * most * slab,), g_rows.dtype)
    for i, z0, z1 in chunks:
        span = (z1 - z0 + reach) * slab
        cols = buffer[: rows * span].reshape(rows, span)
        g_chunk = g_rows[:, (i * size[0] + z0) * slab : (i * size[0] + z1) * slab]
        u0, u1 = i * dp + z0, i * dp + z1 + reach
        if gw is not None:
            jit.vol2col(src, cm, u0, u1, cols, (1, kh, kw), *planes[:3], planes[4])
            for a in range(kd):
                shift = a * dil[0] * slab
                gemm.matmul(g_chunk, cols[:, shift : shift + (z1 - z0) * slab].T, gw[a], accumulate=True)
        if gx_cm is not None and taps_t is not None:
            cols.fill(0)
            for a in range(kd):
                shift = a * dil[0] * slab
                gemm.matmul(taps_t[a], g_chunk, cols[:, shift : shift + (z1 - z0) * slab], accumulate=True)
            jit.col2vol(cols, gx_cm, True, u0, u1, (1, kh, kw), *planes[:3], planes[4])
    _workspace.give(buffer)
    if gw is None:
        return None
    return np.ascontiguousarray(gw.reshape(kd, c_out, c, kh, kw).transpose(1, 2, 0, 3, 4))  # host: the jit path


def _conv3d_vjp(g, y, args, saved, needs, xp):
    geometry = saved
    if xp.differentiable:
        return _conv3d_vjp_recorded(g, args, geometry, needs)
    x, w = args[0], args[1]
    grads: list[Any] = [None] * len(args)
    if len(args) > 2 and needs[2]:
        grads[2] = _channel_sums(g)
    if needs[0] or needs[1]:
        need_gx, need_gw = bool(needs[0]), bool(needs[1])  # host: needs holds Python flags
        grads[0], grads[1] = conv3d_backward(g, x, w, geometry, need_gx, need_gw)
    return tuple(grads)


def conv3d_backward(g: Any, x: Any, w: Any, geometry: Geometry, need_gx: bool, need_gw: bool) -> tuple[Any, Any]:
    """The convolution's input gradient (channel-major, as its output) and weight gradient."""
    groups, size = geometry[3], geometry[4]
    n, c = x.shape[:2]
    c_out, c_per_group = w.shape[:2]
    kernel = w.shape[2:]
    k = c_per_group * kernel[0] * kernel[1] * kernel[2]
    pixels = size[0] * size[1] * size[2]
    ns = namespace_of(g)
    # the output gradient as (groups, C_out / groups, N*P), as the forward GEMM wrote it: a view
    # when it arrives channel-major (as the layers after a convolution pass it back)
    g_rows, g_borrowed = _channel_rows(g)
    g_mat = g_rows.reshape(groups, c_out // groups, n * pixels)
    w_mat = w.reshape(groups, c_out // groups, k)
    if _pointwise(w, geometry) and n:
        gx = gw = None
        if need_gx:
            gx = _workspace.lend((c, n) + x.shape[2:], g.dtype, g)
            gemm.matmul(w_mat[0].T, g_mat[0], gx.reshape(c, -1))
            gx = gx.transpose(1, 0, 2, 3, 4)
        if need_gw:
            rows, borrowed = _channel_rows(x)
            gw = ns.empty((c_out, c), dtype=g.dtype)
            gemm.matmul(g_mat[0], rows.T, gw)
            if borrowed:
                _workspace.give(rows)
            gw = gw.reshape(w.shape)
        if g_borrowed:
            _workspace.give(g_rows)
        return gx, gw
    gx_cm = _workspace.lend_zeros((c, n) + x.shape[2:], g.dtype, g) if need_gx else None
    jit = _compiled(x, g)
    if _depth_shifted(jit, w, geometry) and n:
        gw = _shifted_backward(jit, g_rows, x, w, geometry, gx_cm, need_gw)
        if g_borrowed:
            _workspace.give(g_rows)
        return (None if gx_cm is None else gx_cm.transpose(1, 0, 2, 3, 4)), gw
    slab = size[1] * size[2]

    def work(lo: int, hi: int) -> Any:
        """The input gradient of images [lo, hi) and their part of the weight gradient (transposed)."""
        gw_t = ns.zeros((groups, k, c_out // groups), dtype=g.dtype) if need_gw else None
        if hi <= lo:  # an empty batch (N = 0): no input gradient, a zero weight gradient
            return gw_t
        chunks = _chunks(lo, hi, size[0], groups * k * slab * g.dtype.itemsize, g, jit)
        buffer = _workspace.take((groups * k * (chunks[0][1] - chunks[0][0]) * slab,), g.dtype, g)
        for u0, u1 in chunks:
            g_chunk = g_mat[:, :, u0 * slab : u1 * slab]
            cols = buffer[: groups * k * (u1 - u0) * slab]
            if gw_t is not None:
                vol2col(x, u0, u1, kernel, geometry, cols)
                # cols @ g.T, not g @ cols.T: oneDNN runs it faster when both operands run along the
                # long pixel axis (as the 2-D convolution's weight gradient)
                gemm.matmul(cols.reshape(groups, k, -1), g_chunk.transpose(0, 2, 1), gw_t, accumulate=True)
            if gx_cm is not None:
                gemm.matmul(w_mat.transpose(0, 2, 1), g_chunk, cols.reshape(groups, k, -1))
                col2vol(cols.reshape(groups * k, -1), gx_cm, u0, u1, kernel, geometry)
        _workspace.give(buffer)
        return gw_t

    passes = int(need_gx) + int(need_gw)
    parts = _parallel.over_parts(x, n, passes * c_out * k * n * pixels // _parallel.MULTIPLY_ADDS_PER_NS, work)
    if g_borrowed:
        _workspace.give(g_rows)
    gw_t = parts[0]
    for more in parts[1:]:
        gw_t += more
    gw = None if gw_t is None else gw_t.transpose(0, 2, 1).reshape(w.shape)
    return (None if gx_cm is None else gx_cm.transpose(1, 0, 2, 3, 4)), gw


def _conv3d_vjp_recorded(g: Any, args: Any, geometry: Geometry, needs: Any) -> tuple[Any, ...]:
    """The convolution's gradients as recorded ops (``create_graph=True``), differentiable again: the
    input gradient a transposed convolution of ``g``, the weight gradient a convolution of the input
    by ``g`` with the batch and channel axes swapped."""
    from .volumetric import conv_transpose3d

    st, pads, dil, groups, size = geometry
    x, w = args[0], args[1]
    kernel = tuple(w.shape[2:])
    grads: list[Any] = [None] * len(args)
    if needs[0]:
        # the rows past the last field (a stride leaves them over) are the output padding
        extra = tuple(
            n + 2 * p - ((o - 1) * s + d * (k - 1) + 1)
            for n, p, o, s, d, k in zip(x.shape[2:], pads, size, st, dil, kernel)
        )
        # contiguous, as torch's input gradient is: a gradient penalty's grads.view(N, -1) must work
        grads[0] = conv_transpose3d(g, w, None, st, pads, extra, groups, dil).contiguous()
    if needs[1]:
        grads[1] = weight_gradient_recorded(x, g, kernel, st, pads, dil, groups)
    if len(args) > 2 and needs[2]:
        grads[2] = g.sum((0, 2, 3, 4))
    return tuple(grads)


def weight_gradient_recorded(x: Any, g: Any, kernel: tuple[int, ...], st: Any, pads: Any, dil: Any, groups: int) -> Any:
    """The weight gradient (C_out, C / groups, kd, kh, kw) of the convolution of ``x`` giving an output
    whose gradient is ``g``, as recorded ops: per group, ``conv3d`` of the padded input with the
    channels as the batch and ``g`` (channels as input channels) as the weight, stride and dilation
    swapped (``out[c, o, a] = sum_n,z x[n, c, a*dil + z*st] g[n, o, z]``)."""
    from .. import ops
    from .volumetric import conv3d

    if any(pads):
        x = ops.pad(x, (pads[2], pads[2], pads[1], pads[1], pads[0], pads[0]))
    c, c_out = x.shape[1], g.shape[1]
    cg, og = c // groups, c_out // groups
    parts = []
    for gi in range(groups):
        xs = x[:, gi * cg : (gi + 1) * cg] if groups > 1 else x
        gs = g[:, gi * og : (gi + 1) * og] if groups > 1 else g
        r = conv3d(ops.permute(xs, (1, 0, 2, 3, 4)), ops.permute(gs, (1, 0, 2, 3, 4)), None, dil, 0, st, 1)
        r = r[:, :, : kernel[0], : kernel[1], : kernel[2]]
        parts.append(ops.permute(r, (1, 0, 2, 3, 4)))
    return parts[0] if groups == 1 else ops.concatenate(parts, 0)


# ---------------------------------------------------------------------- transposed convolution
def conv_transpose3d_forward(x: Any, w: Any, b: Any, geometry: Geometry, out_size: tuple[int, ...]) -> Any:
    """The transposed convolution of (N, C_in, D, H, W) ``x`` with (C_in, C_out / groups, kd, kh, kw)
    ``w`` (plus ``b``, or None): (N, C_out, *out_size), laid out (C_out, N, ...) in memory. ``geometry``
    is the convolution's from the output to ``x`` (``out_size`` its input, ``x``'s size its output)."""
    groups = geometry[3]
    n, c_in = x.shape[:2]
    c_out_g = w.shape[1]
    kernel = w.shape[2:]
    c_out = c_out_g * groups
    k = c_out_g * kernel[0] * kernel[1] * kernel[2]
    pixels = x.shape[2] * x.shape[3] * x.shape[4]
    out_cm = _workspace.lend((c_out, n, *out_size), x.dtype, x)
    if b is None:
        out_cm.fill(0)
    else:
        out_cm[...] = b.reshape(c_out, 1, 1, 1, 1)
    # the weight as (groups, C_out / groups * kd*kh*kw, C_in / groups): rows (o, a, b, e), col2vol's order
    w_t = w.reshape(groups, c_in // groups, k).transpose(0, 2, 1)
    rows, borrowed = _channel_rows(x)  # (C_in, N*P)
    x_mat = rows.reshape(groups, c_in // groups, n * pixels)

    jit = _compiled(x)
    slab = x.shape[3] * x.shape[4]

    def work(lo: int, hi: int) -> None:
        if hi <= lo:  # an empty batch (N = 0): nothing to compute
            return
        chunks = _chunks(lo, hi, x.shape[2], groups * k * slab * x.dtype.itemsize, x, jit)
        buffer = _workspace.take((groups * k * (chunks[0][1] - chunks[0][0]) * slab,), x.dtype, x)
        for u0, u1 in chunks:
            cols = buffer[: groups * k * (u1 - u0) * slab]
            gemm.matmul(w_t, x_mat[:, :, u0 * slab : u1 * slab], cols.reshape(groups, k, -1))
            col2vol(cols.reshape(groups * k, -1), out_cm, u0, u1, kernel, geometry)
        _workspace.give(buffer)

    _parallel.over_parts(x, n, k * c_in * n * pixels // _parallel.MULTIPLY_ADDS_PER_NS, work)
    if borrowed:
        _workspace.give(rows)
    return out_cm.transpose(1, 0, 2, 3, 4)


def _conv_transpose3d_vjp(g, y, args, saved, needs, xp):
    geometry = saved
    if xp.differentiable:
        return _conv_transpose3d_vjp_recorded(g, args, geometry, needs)
    x, w = args[0], args[1]
    grads: list[Any] = [None] * len(args)
    if len(args) > 2 and needs[2]:
        grads[2] = _channel_sums(g)
    if needs[0] or needs[1]:
        need_gx, need_gw = bool(needs[0]), bool(needs[1])  # host: needs holds Python flags
        grads[0], grads[1] = _transposed_gradients(g, x, w, geometry, need_gx, need_gw)
    return tuple(grads)


def _transposed_gradients(g: Any, x: Any, w: Any, geometry: Geometry, need_gx: bool, need_gw: bool) -> tuple[Any, Any]:
    """The input gradient, the convolution of ``g`` by ``w``, and the weight gradient
    ``cols(g) @ x.T``: both products of the columns of ``g``, built once per chunk for the two."""
    if not need_gw:
        return conv3d_forward(g, w, None, geometry), None
    groups, size = geometry[3], geometry[4]
    n, c_in = x.shape[:2]
    c_in_g = c_in // groups
    kernel = w.shape[2:]
    k = w.shape[1] * kernel[0] * kernel[1] * kernel[2]
    pixels = size[0] * size[1] * size[2]
    w_mat = w.reshape(groups, c_in_g, k)
    gx = _workspace.lend((groups, c_in_g, n * pixels), g.dtype, g) if need_gx else None
    rows, borrowed = _channel_rows(x)
    x_mat = rows.reshape(groups, c_in_g, n * pixels)
    ns = namespace_of(g)

    jit = _compiled(g)
    slab = size[1] * size[2]

    def work(lo: int, hi: int) -> Any:
        gw_t = ns.zeros((groups, k, c_in_g), dtype=g.dtype)
        if hi <= lo:  # an empty batch (N = 0): a zero weight gradient
            return gw_t
        chunks = _chunks(lo, hi, size[0], groups * k * slab * g.dtype.itemsize, g, jit)
        buffer = _workspace.take((groups * k * (chunks[0][1] - chunks[0][0]) * slab,), g.dtype, g)
        for u0, u1 in chunks:
            cols = vol2col(g, u0, u1, kernel, geometry, buffer[: groups * k * (u1 - u0) * slab])
            cols = cols.reshape(groups, k, -1)
            if gx is not None:
                gemm.matmul(w_mat, cols, gx[:, :, u0 * slab : u1 * slab])
            part = x_mat[:, :, u0 * slab : u1 * slab]
            gemm.matmul(cols, part.transpose(0, 2, 1), gw_t, accumulate=True)
        _workspace.give(buffer)
        return gw_t

    passes = 1 + int(need_gx)
    parts = _parallel.over_parts(g, n, passes * c_in * k * n * pixels // _parallel.MULTIPLY_ADDS_PER_NS, work)
    if borrowed:
        _workspace.give(rows)
    gw_t = parts[0]
    for more in parts[1:]:
        gw_t += more
    gw = gw_t.transpose(0, 2, 1).reshape(w.shape)
    return (None if gx is None else gx.reshape(c_in, n, *size).transpose(1, 0, 2, 3, 4)), gw


def _conv_transpose3d_vjp_recorded(g: Any, args: Any, geometry: Geometry, needs: Any) -> tuple[Any, ...]:
    """The gradients as recorded ops (``create_graph=True``): the input gradient a ``conv3d`` of ``g``,
    the weight gradient the convolution's (from ``g`` to ``x``) recorded weight gradient."""
    from .volumetric import conv3d

    st, pads, dil, groups, size = geometry
    x, w = args[0], args[1]
    kernel = tuple(w.shape[2:])
    grads: list[Any] = [None] * len(args)
    if needs[0]:
        gx = conv3d(g, w, None, st, pads, dil, groups)
        if tuple(gx.shape[2:]) != tuple(size):  # output padding past the stride: rows no input pixel wrote
            gx = gx[:, :, : size[0], : size[1], : size[2]].contiguous()
        grads[0] = gx
    if needs[1]:
        grads[1] = weight_gradient_recorded(g, x, kernel, st, pads, dil, groups)
    if len(args) > 2 and needs[2]:
        grads[2] = g.sum((0, 2, 3, 4))
    return tuple(grads)
