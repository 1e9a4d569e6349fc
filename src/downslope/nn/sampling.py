"""Spatial sampling with PyTorch's names: ``affine_grid`` and ``grid_sample`` (the spatial
transformer's two ops).

``affine_grid`` maps the output pixel centres, in normalized coordinates [-1, 1], through a batch
of 2x3 (or, in 3-D, 3x4) affine matrices. ``grid_sample`` reads the input at those (x, y) or
(x, y, z) locations, blending the neighbouring pixels (``bilinear``, trilinear in 3-D; ``bicubic``
in 2-D) or taking the nearest one. Both are composites of indexing and arithmetic ops, so
gradients reach the input and the grid (hence theta). With numba (host arrays) bilinear/trilinear,
nearest and bicubic sampling run as one compiled op (``_jit_resample``, torch's CPU arithmetic term
by term), whose create_graph gradient is the composite's.

Example:
    >>> import downslope as ds
    >>> import downslope.nn.functional as F
    >>> identity = ds.tensor([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]])
    >>> image = ds.arange(4.0).reshape(1, 1, 2, 2)
    >>> F.grid_sample(image, F.affine_grid(identity, [1, 1, 2, 2], align_corners=False), align_corners=False)
    tensor([[[[0., 1.],
              [2., 3.]]]])
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from .. import gemm, jit_gate, ops
from ..backend import namespace_of
from ..errors import ArgumentError, DTypeError, ShapeError
from ..tensor import Tensor, record_op, torch_linspace_values, wrap_array
from .upsampling import _CUBIC_A

__all__ = ["affine_grid", "grid_sample"]


def _base_coords(n: int, align_corners: bool, dtype: Any, xp: Any) -> np.ndarray:
    """The ``n`` normalized pixel positions in [-1, 1], made in the namespace ``xp`` of the data, bit
    for bit torch's (linspace_from_neg_one): its linspace(-1, 1, n) in the dtype (downslope's linspace
    reproduces it: each point one fused multiply-add from the nearer end), then for align_corners=False
    ``* (n - 1)`` and ``/ n`` in the dtype. An ulp off moves a sample point across a pixel centre at
    the identity map, where grid_sample's one-sided derivative flips."""
    dt = np.dtype(dtype)
    if n <= 1:
        return xp.zeros(1, dt)
    coords = xp.asarray(torch_linspace_values(-1.0, 1.0, n, dt))  # host: n numbers made once, then placed
    if not align_corners:
        coords = coords * (n - 1)  # Python numbers keep the dtype: two roundings in it, as torch's
        coords = coords / n
    return coords


def affine_grid(theta: Tensor, size: Any, align_corners: bool | None = None) -> Tensor:
    """Sampling locations for output ``size`` under the affine maps ``theta``: (N, H, W, 2) for a
    size (N, C, H, W) and theta (N, 2, 3), or (N, D, H, W, 3) for a size (N, C, D, H, W) and
    theta (N, 3, 4); each location is (x, y) or (x, y, z), x along the last dim.

    Example:
        >>> import downslope as ds
        >>> import downslope.nn.functional as F
        >>> theta = ds.tensor([[[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0]]])
        >>> F.affine_grid(theta, [1, 1, 2, 2, 2], align_corners=True)[0, 1, 0].tolist()
        [[-1.0, -1.0, 1.0], [1.0, -1.0, 1.0]]
    """
    size = tuple(int(s) for s in size)
    if len(size) not in (4, 5):
        raise ShapeError(
            f"affine_grid: only 2-D and 3-D sampling are supported: size must be (N, C, H, W) or (N, C, D, H, W), "
            f"got {size}"
        )
    spatial = len(size) - 2
    n, sizes = size[0], size[2:]
    if theta.shape != (n, spatial, spatial + 1):
        raise ShapeError(
            f"affine_grid: expected theta of shape ({n}, {spatial}, {spatial + 1}) for size {size}, got {tuple(theta.shape)}"
        )
    corners = align_corners is True
    xp = namespace_of(theta.array)
    if xp is np:  # host: the base grid depends only on the sizes, so it is made once
        key = (sizes, corners, theta.array.dtype.str)
        base = _HOST_BASE_GRIDS.get(key)
        if base is None:
            if len(_HOST_BASE_GRIDS) >= _HOST_BASE_GRID_LIMIT:
                _HOST_BASE_GRIDS.clear()
            base = _HOST_BASE_GRIDS[key] = _base_grid(sizes, corners, theta.dtype, np)
    else:
        base = _base_grid(sizes, corners, theta.dtype, xp)
    if theta.array.dtype.kind != "f":  # let matmul's rules speak for other dtypes
        return ops.reshape(ops.matmul(wrap_array(base), ops.transpose(theta, 1, 2)), (n, *sizes, spatial))
    # one recorded op (base @ theta^T, the product matmul computes): on small images the three ops
    # (transpose, matmul, reshape) cost more than the product
    grid = gemm.matmul(base, theta.array.transpose(0, 2, 1))
    return record_op(grid.reshape(n, *sizes, spatial), (theta,), _affine_grid_vjp, base)


def _affine_grid_vjp(g, y, args, saved, needs, xp):
    # matmul's rule for base @ theta^T (base a constant), then the transpose's; in the same steps, so
    # the same numbers
    base = wrap_array(saved) if xp.differentiable else saved  # a constant of the base's own dtype
    n, spatial = g.shape[0], g.shape[-1]
    product = gemm.matmul(xp.swap_last(base), xp.reshape(g, (n, base.shape[1], spatial)))
    return (xp.swap_last(product),)


_affine_grid_vjp.reads_inputs = False  # type: ignore[attr-defined]
_affine_grid_vjp.reads_output = False  # type: ignore[attr-defined]


# affine_grid's base grids on the host by (sizes, align_corners, dtype): a spatial transformer or a
# warping step asks for the same one at every call, and making it (torch's linspace, bit for bit) cost
# several times the product with theta on small images. Read-only arrays; a few sizes at most.
_HOST_BASE_GRIDS: dict[tuple[Any, ...], Any] = {}
_HOST_BASE_GRID_LIMIT = 16


def _base_grid(sizes: tuple[int, ...], corners: bool, dtype: Any, xp: Any) -> Any:
    """affine_grid's (1, prod(sizes), spatial + 1) rows of normalized (x, y[, z], 1), x (the last dim)
    first, in the namespace ``xp``; read-only."""
    spatial = len(sizes)
    columns = [_base_coords(sizes[spatial - 1 - k], corners, dtype, xp) for k in range(spatial)]
    shaped = []
    for k, col in enumerate(columns):
        view = [1] * spatial
        view[spatial - 1 - k] = sizes[spatial - 1 - k]
        shaped.append(xp.broadcast_to(col.reshape(view), sizes))
    shaped.append(xp.ones(sizes, dtype=np.dtype(dtype)))
    base = xp.stack(shaped, -1).reshape(1, int(np.prod(sizes)), spatial + 1)
    if type(base) is np.ndarray:  # host: a cached grid is shared by every call
        base.flags.writeable = False
    return base


def _unnormalize(coord: Tensor, size: int, align_corners: bool, fused: bool) -> Tensor:
    """Normalized ``coord`` as a pixel coordinate, rounded as torch's CPU kernels round it: the 2-D
    kernel (vectorised, ``fused``) computes ``(coord + 1) * (size / 2) - 0.5`` as one fused multiply-add,
    the 3-D one ``((coord + 1) * size - 1) / 2`` (``((coord + 1) / 2) * (size - 1)`` with aligned
    corners). Which side of a pixel centre a point lands on decides the one-sided gradient there
    (the identity theta of affine_grid puts points exactly on the centres in float64)."""
    out, scale = _unnormalized(coord.array, size, align_corners, fused)
    return record_op(out, (coord,), _unnormalize_vjp, scale)


def _unnormalized(a: Any, size: int, align_corners: bool, fused: bool) -> tuple[Any, float]:
    """:func:`_unnormalize` on an array: the pixel coordinates and their derivative (a number)."""
    if align_corners:
        if fused:
            out = (a + 1) * ((size - 1) / 2)  # torch's scaling_factor, a Python number: rounded in the dtype
        else:
            out = ((a + 1) / 2) * (size - 1)
        scale = (size - 1) / 2
    else:
        scale = size / 2
        out = _fused_multiply_add(a + 1, scale, -0.5) if fused else ((a + 1) * size - 1) / 2
    return out.astype(a.dtype, copy=False), scale


def _fused_multiply_add(a: Any, b: float, c: float) -> Any:
    """``a * b + c`` rounded once (an FMA), for a half-integer ``b`` of few bits (``size / 2``). float32:
    the product is exact in float64. float64: the product's rounding error, exact by Dekker's split of
    ``a`` (``b`` needs no split), is added back after ``+ c``."""
    if a.dtype != np.float64:
        return (a.astype(np.float64) * b + c).astype(a.dtype)
    product = a * b
    with np.errstate(invalid="ignore", over="ignore"):  # an infinite (or huge) coordinate: no error term
        big = a * 134217729.0  # 2**27 + 1: Veltkamp's split into two 26-bit halves
        high = big - (big - a)
        error = (high * b - product) + (a - high) * b
    return (product + c) + np.where(abs(error) < np.inf, error, 0.0)


def _unnormalize_vjp(g, y, args, saved, needs, xp):
    return (g * saved,)


_unnormalize_vjp.reads_inputs = False  # type: ignore[attr-defined]
_unnormalize_vjp.reads_output = False  # type: ignore[attr-defined]


def _zero_gradient_for(out: Tensor, grid: Tensor) -> Tensor:
    """``out`` recorded as depending on ``grid`` with a gradient of zeros: nearest sampling is
    piecewise constant in the grid, and torch gives the grid zeros (grid.grad set), not nothing."""
    return record_op(out.array, (out, grid), _zero_gradient_for_vjp, grid.shape)


def _zero_gradient_for_vjp(g, y, args, saved, needs, xp):
    # zeros in g's dtype under either rule namespace (no multiplication: g may hold inf)
    return (g, xp.broadcast_to(xp.where(True, 0.0, g.sum()), saved) if needs[1] else None)


_zero_gradient_for_vjp.reads_inputs = False  # type: ignore[attr-defined]
_zero_gradient_for_vjp.reads_output = False  # type: ignore[attr-defined]


def _reflect(a: Any, twice_low: int, twice_high: int, xp: Any) -> tuple[Any, Any]:
    """torch's ``reflect_coordinates``: ``a`` mirrored back into [low, high] at each end, and its
    derivative (+1 or -1)."""
    if twice_low == twice_high:  # a one-pixel axis: every location is that pixel
        return xp.zeros_like(a), xp.zeros_like(a)
    low, span = twice_low / 2.0, (twice_high - twice_low) / 2.0
    shifted = a - low
    distance = xp.abs(shifted)
    extra = xp.fmod(distance, span)
    even = xp.fmod(xp.floor(distance / span), 2.0) == 0
    out = xp.where(even, extra + low, span - extra + low)
    slope = xp.where(shifted < 0, -1.0, 1.0) * xp.where(even, 1.0, -1.0)
    return out, slope


def _padded_coordinate(coord: Tensor, size: int, padding_mode: str, align_corners: bool, planar: bool) -> Tensor:
    """The pixel coordinate ``coord`` brought inside [0, size - 1] for 'border' (clamped) and
    'reflection' (mirrored at the image's edges, then clamped), with torch's gradient: the
    reflection's +-1 times the clamp's, which counts the borders themselves as outside (0).
    ``planar``: a 2-D grid (see :func:`_padded` for where NaN goes)."""
    out, slope = _padded(coord.array, size, padding_mode, align_corners, planar)
    return record_op(out, (coord,), _padded_coordinate_vjp, slope)


def _padded(a: Any, size: int, padding_mode: str, align_corners: bool, planar: bool) -> tuple[Any, Any]:
    """:func:`_padded_coordinate` on an array: the coordinates inside the image and their derivative.
    A NaN coordinate (or an infinite one reflected, which is NaN) lands where torch's clamp sends it:
    pixel 0 in its 2-D kernel (vectorised max/min), pixel size - 1 in its 3-D one (std::max/min)."""
    xp = namespace_of(a)
    dtype = a.dtype
    slope = xp.ones_like(a)
    if padding_mode == "reflection":
        twice_low, twice_high = (0, 2 * (size - 1)) if align_corners else (-1, 2 * size - 1)
        a, slope = _reflect(a, twice_low, twice_high, xp)
    out = xp.where(a == a, xp.clip(a, 0.0, size - 1.0), 0.0 if planar else size - 1.0).astype(dtype)
    return out, (slope * ((a > 0) & (a < size - 1))).astype(dtype)


def _padded_coordinate_vjp(g, y, args, saved, needs, xp):
    return (g * saved,)


_padded_coordinate_vjp.reads_inputs = False  # type: ignore[attr-defined]
_padded_coordinate_vjp.reads_output = False  # type: ignore[attr-defined]


# torch's names of dtypes, for the message that quotes torch's
_TORCH_DTYPE_NAMES = {"float32": "Float", "float64": "Double", "float16": "Half", "int64": "Long", "int32": "Int"}
_TORCH_DTYPE_NAMES.update(int16="Short", int8="Char", uint8="Byte", bool="Bool")


def grid_sample(
    input: Tensor,
    grid: Tensor,
    mode: str = "bilinear",
    padding_mode: str = "zeros",
    align_corners: bool | None = None,
) -> Tensor:
    """Sample ``input`` (N, C, H, W) at the normalized (x, y) locations of ``grid`` (N, Ho, Wo, 2),
    or ``input`` (N, C, D, H, W) at the (x, y, z) locations of ``grid`` (N, Do, Ho, Wo, 3).

    ``mode``: bilinear (trilinear for 5-D input), nearest, or bicubic (4-D input: torch's cubic
    convolution of the 4x4 pixels around each location, A = -0.75); ``padding_mode``: zeros
    (outside reads 0), border (the nearest edge pixel) or reflection (the image mirrored at its
    edges: at the pixel centres of the edges with ``align_corners=True``, at the image's outer
    borders otherwise). Gradients reach the input and (bilinear, bicubic) the grid, as torch's.

    Example:
        >>> import downslope as ds
        >>> import downslope.nn.functional as F
        >>> image = ds.tensor([[[[1.0, 2.0, 3.0]]]])
        >>> grid = ds.tensor([[[[-1.5, 0.0], [1.5, 0.0]]]])  # (x, y): half a pixel past each end
        >>> F.grid_sample(image, grid, padding_mode="reflection", align_corners=True)
        tensor([[[[1.5, 2.5]]]])
    """
    if mode not in ("bilinear", "nearest", "bicubic"):
        raise ArgumentError(f"grid_sample: mode must be 'bilinear', 'nearest' or 'bicubic', got {mode!r}")
    if padding_mode not in ("zeros", "border", "reflection"):
        raise ArgumentError(
            f"grid_sample: padding_mode must be 'zeros', 'border' or 'reflection', got {padding_mode!r}"
        )
    spatial = input.ndim - 2
    if spatial not in (2, 3) or grid.ndim != input.ndim or grid.shape[-1] != spatial or grid.shape[0] != input.shape[0]:
        raise ShapeError(
            "grid_sample: expected input (N, C, H, W) with grid (N, Ho, Wo, 2), or input (N, C, D, H, W) with "
            f"grid (N, Do, Ho, Wo, 3), got {tuple(input.shape)}, {tuple(grid.shape)}"
        )
    if mode == "bicubic" and spatial != 2:
        raise ArgumentError(f"grid_sample: bicubic interpolation only supports 4-D input, got {tuple(input.shape)}")
    if grid.array.dtype != input.array.dtype:  # torch's kernels take one dtype: no promotion of either side
        mine, theirs = input.array.dtype.name, grid.array.dtype.name
        raise DTypeError(
            f"grid_sample: expected scalar type {_TORCH_DTYPE_NAMES.get(mine, mine)} but found "
            f"{_TORCH_DTYPE_NAMES.get(theirs, theirs)} (input {mine}, grid {theirs}): the grid must have the "
            "input's dtype; cast it with grid.to(input.dtype)"
        )
    corners = align_corners is True
    k = jit_gate.kernels(_KERNELS, input.array, grid.array) if input.array.size and grid.array.size else None
    if k is not None:
        if spatial == 2 and mode != "bicubic" and input.array.dtype.type in _SAMPLE2D_DTYPES:
            return _compiled_sample2d(k, input, grid, mode, padding_mode, corners)
        return _compiled_sample(k, input, grid, mode, padding_mode, corners)
    return _composite_grid_sample(input, grid, mode, padding_mode, corners)


def _composite_grid_sample(input: Tensor, grid: Tensor, mode: str, padding_mode: str, corners: bool) -> Tensor:
    """grid_sample from recorded ops (any namespace; differentiable again): the grid's coordinates
    unnormalised and padded, then the pixels gathered and blended."""
    spatial, sizes = input.ndim - 2, input.shape[2:]
    # pos[d]: the pixel coordinate along input dim 2 + d (the grid lists x, the last dim, first)
    pos = [_unnormalize(grid[..., spatial - 1 - d], sizes[d], corners, spatial == 2) for d in range(spatial)]
    if mode == "bicubic":  # the padding maps each tap, not the location
        return _composite_bicubic(input, pos, padding_mode, corners)
    if padding_mode != "zeros":
        pos = [_padded_coordinate(p, size, padding_mode, corners, spatial == 2) for p, size in zip(pos, sizes)]
    out = _composite_sample(input, pos, mode)
    return _zero_gradient_for(out, grid) if mode == "nearest" else out


_KERNELS = "downslope.nn._jit_resample"


def _reader(input: Tensor) -> Any:
    """``read(index)``: the channels-last pixels of ``input`` at integer positions (one array per
    spatial dim), zeros outside the image; one gather per call."""
    spatial, n, sizes = input.ndim - 2, input.shape[0], input.shape[2:]
    pixels = ops.permute(input, (0, *range(2, input.ndim), 1))  # channels last: one gather per corner
    batch = namespace_of(input.array).arange(n).reshape((n,) + (1,) * spatial)

    def read(index: list[Any]) -> Tensor:
        inside: Any = True
        for i, size in zip(index, sizes):
            inside = inside & (i >= 0) & (i < size)
        values = pixels[(batch, *(np.clip(i, 0, size - 1) for i, size in zip(index, sizes)))]
        return values * inside.astype(input.dtype)[..., None]  # zeros padding: outside the image reads 0

    return read


def _composite_sample(input: Tensor, pos: list[Tensor], mode: str) -> Tensor:
    """Bilinear (trilinear) or nearest sampling at the pixel coordinates ``pos`` built from gathers and
    arithmetic (any namespace; differentiable again), channels first."""
    read = _reader(input)
    spatial = input.ndim - 2
    if mode == "nearest":
        out = read([np.rint(p.array).astype(np.int64) for p in pos])
    else:
        if spatial == 3:
            # torch's 3-D kernel adds only the corners inside the image, so a NaN or infinite coordinate
            # reads 0 (its 2-D kernel multiplies zeros by NaN weights, which the blend below does too)
            xp = namespace_of(pos[0].array)
            pos = [ops.where(wrap_array(xp.isfinite(p.array)), p, -2.0) for p in pos]
        lows = [np.floor(p.array).astype(np.int64) for p in pos]
        upper = [ops.unsqueeze(p - wrap_array(lo.astype(input.dtype)), -1) for p, lo in zip(pos, lows)]
        lower = [1.0 - u for u in upper]
        total: Tensor | None = None
        for corner in itertools.product((0, 1), repeat=spatial):
            term = read([lo + b for lo, b in zip(lows, corner)])
            for u, lo_w, b in zip(upper[::-1], lower[::-1], corner[::-1]):  # x's weight first, as torch
                term = term * (u if b else lo_w)
            total = term if total is None else total + term
        assert total is not None
        out = total
    return ops.permute(out, (0, input.ndim - 1, *range(1, input.ndim - 1)))


def _compiled_sample(k: Any, input: Tensor, grid: Tensor, mode: str, padding_mode: str, corners: bool) -> Tensor:
    """The numba kernels' sampling (host arrays) as one recorded op of the input and the grid: the
    coordinates unnormalised and padded on the arrays (the composite's arithmetic, without a recorded
    op per step: a small call's cost was those ops'), then one pass over the points, every channel at
    once. The grid's gradient is the kernel's times the coordinates' derivatives, as the composite's.
    ``k``: the kernels module."""
    x = np.ascontiguousarray(input.array)  # host: numba path
    g = grid.array
    spatial, sizes = x.ndim - 2, x.shape[2:]
    n, c, out_sizes = x.shape[0], x.shape[1], g.shape[1:-1]
    flat, chain = [], []
    padding = padding_mode if mode != "bicubic" else "zeros"  # bicubic pads each tap in its kernel
    unnormalized = _unnormalized2d(k, g, sizes, corners, padding) if spatial == 2 else None
    for d in range(spatial):
        slope = None
        if unnormalized is not None:
            p, scale, slope = unnormalized[d]
        else:
            p, scale = _unnormalized(g[..., spatial - 1 - d], sizes[d], corners, spatial == 2)
            if padding != "zeros":
                p, slope = _padded(p, sizes[d], padding, corners, spatial == 2)
        flat.append(np.ascontiguousarray(p).reshape(n, -1))  # host: numba path
        chain.append((scale, slope))
    out = np.empty((n, c, flat[0].shape[1]), dtype=x.dtype)  # host: numba path
    extra: Any = None
    if mode == "nearest":
        extra = _nearest_index(flat, sizes)
        k.nearest(x.reshape(n, c, -1), extra, out)
    elif mode == "bicubic":
        extra = _bicubic_arguments(x, padding_mode, corners)
        k.bicubic2d(x, flat[0], flat[1], out, *extra)
    elif spatial == 2:
        k.bilinear2d(x, flat[0], flat[1], out, x.dtype.type(1))
    else:
        k.trilinear3d(x, flat[0], flat[1], flat[2], out, x.dtype.type(1))
    saved = (mode, padding_mode, corners, flat, chain, extra)
    return record_op(out.reshape(n, c, *out_sizes), (input, grid), _compiled_sample_vjp, saved)


def _compiled_sample2d(k: Any, input: Tensor, grid: Tensor, mode: str, padding_mode: str, corners: bool) -> Tensor:
    """:func:`_compiled_sample` of a 2-D bilinear or nearest sampling (float32/float64) as ONE kernel
    call (``sample2d``: the same compiled unnormalisation, padding and sampling, so the same numbers,
    and the same saved values for the gradient). On a small grid the separate calls, their arguments
    and the NumPy nearest index cost several times torch's whole call."""
    x = input.array
    if not x.flags.c_contiguous:
        x = np.ascontiguousarray(x)  # host: numba path
    g = grid.array
    n, c, h, w = x.shape
    dtype = x.dtype
    points = g.reshape(n, -1, 2)  # a view for a contiguous grid; else one copy
    if not points.flags.c_contiguous:
        points = np.ascontiguousarray(points)  # host: numba path
    size = points.shape[1]
    key = (h, w, corners, padding_mode, dtype.type)
    plan = _SAMPLE2D_PLANS.get(key)
    if plan is None:
        plan = _sample2d_plan(h, w, corners, padding_mode, dtype)
    padding, scales, constants, scales64 = plan
    coords = np.empty((4 if padding else 2, n, size), dtype=dtype)  # host: numba path
    out = np.empty((n, c, size), dtype=dtype)  # host: numba path
    nearest = mode == "nearest"
    index = np.empty((n, size), dtype=np.int64) if nearest else _NO_INDEX  # host: numba path
    k.sample2d(x, points, coords, index, out, constants, scales64, nearest, padding, corners, dtype.type is np.float32)
    shape = g.shape[:-1]
    flat = [coords[0], coords[1]]
    slopes = (coords[2].reshape(shape), coords[3].reshape(shape)) if padding else (None, None)
    chain = [(scales[0], slopes[0]), (scales[1], slopes[1])]
    saved = (mode, padding_mode, corners, flat, chain, index if nearest else None)
    return record_op(out.reshape(n, c, *shape[1:]), (input, grid), _compiled_sample_vjp, saved)


def _sample2d_plan(h: int, w: int, corners: bool, padding_mode: str, dtype: Any) -> tuple[Any, ...]:
    """``sample2d``'s constants for an image of (h, w) pixels (see the kernel), made once per key:
    (padding code, the scales as Python numbers, the dtype's constants, the scales in float64)."""
    scale_y, scale_x = ((h - 1) / 2, (w - 1) / 2) if corners else (h / 2, w / 2)
    (low_y, span_y), (low_x, span_x) = (_reflection_geometry(size, corners) for size in (h, w))
    values = [scale_y, scale_x, low_y, span_y, low_x, span_x, h, w, 1.0]
    constants = np.array(values, dtype=dtype)  # host: numba path
    scales64 = np.array([scale_y, scale_x], dtype=np.float64)  # host: numba path
    constants.flags.writeable = scales64.flags.writeable = False
    plan = (("zeros", "border", "reflection").index(padding_mode), (scale_y, scale_x), constants, scales64)
    if len(_SAMPLE2D_PLANS) >= _SAMPLE2D_PLAN_LIMIT:
        _SAMPLE2D_PLANS.clear()
    _SAMPLE2D_PLANS[(h, w, corners, padding_mode, np.dtype(dtype).type)] = plan
    return plan


# sample2d's constants by (H, W, align_corners, padding, dtype): a model samples the same image size at
# every call; a few keys at most
_SAMPLE2D_PLANS: dict[tuple[Any, ...], tuple[Any, ...]] = {}
_SAMPLE2D_PLAN_LIMIT = 32
_SAMPLE2D_DTYPES = (np.float32, np.float64)
_NO_INDEX = np.zeros((1, 1), dtype=np.int64)  # host: numba path (bilinear: index neither read nor written)


def _unnormalized2d(
    k: Any, g: np.ndarray, sizes: Any, corners: bool, padding_mode: str = "zeros"
) -> list[tuple[np.ndarray, float, np.ndarray | None]] | None:
    """:func:`_unnormalized` (fused) of a 2-D grid's y and x in one compiled pass, then :func:`_padded`
    for 'border' and 'reflection', bit for bit: per coordinate the pixel positions (N, Ho, Wo), the
    unnormalisation's derivative (a number) and the padding's (an array, None for 'zeros'); or None
    for a dtype the kernel does not cover."""
    dtype = g.dtype
    if dtype.type not in (np.float32, np.float64):
        return None
    n = g.shape[0]
    points = g.reshape(n, -1, 2)  # a view for a contiguous grid; else one copy
    if not points.flags.c_contiguous:
        points = np.ascontiguousarray(points)  # host: numba path
    ys = np.empty(points.shape[:2], dtype=dtype)  # host: numba path
    xs = np.empty(points.shape[:2], dtype=dtype)  # host: numba path
    h, w = sizes
    scale_y, scale_x = ((h - 1) / 2, (w - 1) / 2) if corners else (h / 2, w / 2)
    padding = ("zeros", "border", "reflection").index(padding_mode)
    if padding:
        slope_y = np.empty(points.shape[:2], dtype=dtype)  # host: numba path
        slope_x = np.empty(points.shape[:2], dtype=dtype)  # host: numba path
        # the reflection's (low, span) per axis, as _reflect's, then the sizes
        (low_y, span_y), (low_x, span_x) = (_reflection_geometry(size, corners) for size in (h, w))
        geometry = np.array([low_y, span_y, low_x, span_x, h, w], dtype=dtype)  # host: numba path
    else:  # placeholders of the kernel's argument types, neither read nor written
        slope_y, geometry = _UNPADDED[dtype.type]
        slope_x = slope_y
    one = dtype.type(1)
    k.unnormalize2d(
        points,
        ys,
        xs,
        corners,
        dtype == np.float32,
        dtype.type(scale_y),
        dtype.type(scale_x),
        scale_y,
        scale_x,
        one,
        padding,
        slope_y,
        slope_x,
        geometry,
    )
    shape = g.shape[:-1]
    slopes = (slope_y.reshape(shape), slope_x.reshape(shape)) if padding else (None, None)
    return [(ys.reshape(shape), scale_y, slopes[0]), (xs.reshape(shape), scale_x, slopes[1])]


# unnormalize2d's slope and geometry arguments for 'zeros' padding, by dtype (made once: a small call's
# cost is mostly such calls)
_UNPADDED = {t: (np.zeros((1, 1), dtype=t), np.zeros(6, dtype=t)) for t in (np.float32, np.float64)}  # host: numba path


def _reflection_geometry(size: int, corners: bool) -> tuple[float, float]:
    """The (low, span) that 'reflection' mirrors a coordinate along an axis of ``size`` pixels into:
    the edge pixels' centres with aligned corners, the image's outer borders otherwise."""
    twice_low, twice_high = (0, 2 * (size - 1)) if corners else (-1, 2 * size - 1)
    return twice_low / 2.0, (twice_high - twice_low) / 2.0


def _bicubic_arguments(x: np.ndarray, padding_mode: str, corners: bool) -> tuple[np.ndarray, int, np.ndarray]:
    """The bicubic kernels' constants in the data's dtype: the cubic convolution's (A, A + 2, A + 3,
    5A, 8A, 4A, 1), the padding's code and the reflection's (low, span) per axis, as :func:`_reflect`."""
    a = _CUBIC_A
    consts = np.array([a, a + 2, a + 3, 5 * a, 8 * a, 4 * a, 1.0], dtype=x.dtype)  # host: numba path
    geometry = []
    for size in x.shape[2:]:
        twice_low, twice_high = (0, 2 * (size - 1)) if corners else (-1, 2 * size - 1)
        geometry += [twice_low / 2.0, (twice_high - twice_low) / 2.0]
    code = ("zeros", "border", "reflection").index(padding_mode)
    return consts, code, np.array(geometry, dtype=x.dtype)  # host: numba path


def _nearest_index(flat: list[np.ndarray], sizes: Any) -> np.ndarray:
    """Each point's flat index into the spatial dims (torch's nearbyint: half to even), -1 outside."""
    index = np.zeros(flat[0].shape, dtype=np.int64)  # host: numba path
    inside = np.ones(flat[0].shape, dtype=bool)  # host: numba path
    with np.errstate(invalid="ignore"):
        for p, size in zip(flat, sizes):
            r = np.rint(p)
            inside &= (r >= 0) & (r < size)  # False for NaN
            index = index * size + np.where(inside, r, 0).astype(np.int64)
    return np.where(inside, index, -1)


def _composite_bicubic(input: Tensor, pos: list[Tensor], padding_mode: str, corners: bool) -> Tensor:
    out = _bicubic(pos, input.shape[2:], padding_mode, corners, _reader(input), input.dtype)
    return ops.permute(out, (0, input.ndim - 1, *range(1, input.ndim - 1)))


def _compiled_sample_vjp(g, y, args, saved, needs, xp):
    mode, padding_mode, corners, flat, chain, extra = saved
    input, grid = args
    if xp.differentiable:  # create_graph: the composite's recorded gradient, differentiable again
        from ..autograd import grad as autograd_grad

        out = _composite_grid_sample(input, grid, mode, padding_mode, corners)
        wanted = [a for a, need in zip(args, needs) if need]
        grads = iter(autograd_grad(out, wanted, g, create_graph=True, materialize_grads=True))
        return tuple(next(grads) if need else None for need in needs)
    k: Any = jit_gate.kernels(_KERNELS)
    x = np.ascontiguousarray(input)  # host: numba path
    n, c = x.shape[0], x.shape[1]
    g = np.ascontiguousarray(g).reshape(n, c, -1)  # host: numba path
    gx = np.zeros_like(x) if needs[0] else None
    if mode == "nearest":  # piecewise constant in the grid: torch gives it zeros
        if gx is not None:
            k.nearest_backward(g, extra, gx.reshape(n, c, -1))
        return gx, np.zeros_like(grid) if needs[1] else None
    gpos = [np.empty_like(f) for f in flat]
    gx_arg = gx if gx is not None else np.zeros((1,) * x.ndim, x.dtype)  # host: numba path
    one = x.dtype.type(1)
    if mode == "bicubic":
        k.bicubic2d_backward(x, flat[0], flat[1], g, gx_arg, gpos[0], gpos[1], *extra, gx is not None, needs[1])
    elif len(flat) == 2:
        k.bilinear2d_backward(x, flat[0], flat[1], g, gx_arg, gpos[0], gpos[1], one, gx is not None, needs[1])
    else:
        k.trilinear3d_backward(x, *flat, g, gx_arg, *gpos, one, gx is not None, needs[1])
    if not needs[1]:
        return gx, None
    ggrid = np.zeros_like(grid)
    spatial = len(flat)
    for d, (gp, (scale, slope)) in enumerate(zip(gpos, chain)):
        gp = gp.reshape(grid.shape[:-1])
        if slope is not None:  # the padding's derivative, then the unnormalisation's (the composite's order)
            gp = gp * slope
        ggrid[..., spatial - 1 - d] = gp * scale
    return gx, ggrid


def _bicubic(pos: list[Tensor], sizes: Any, padding_mode: str, corners: bool, read: Any, dtype: Any) -> Tensor:
    """torch's bicubic grid sampling: a cubic convolution (A = -0.75) along x of each of the four
    rows around a location, then along y. The padding maps each integer tap into the image (the
    weights are not clamped), so the grid's gradient is the weights' derivative alone."""
    from .upsampling import _cubic_weights

    iy, ix = pos
    y0, x0 = np.floor(iy.array), np.floor(ix.array)
    wy = [ops.unsqueeze(w, -1) for w in _cubic_weights(iy - wrap_array(y0.astype(dtype)))]
    wx = [ops.unsqueeze(w, -1) for w in _cubic_weights(ix - wrap_array(x0.astype(dtype)))]

    def tap(base: Any, offset: int, size: int) -> Any:
        a = base + offset
        if padding_mode != "zeros":
            xp = namespace_of(a)
            if padding_mode == "reflection":
                twice_low, twice_high = (0, 2 * (size - 1)) if corners else (-1, 2 * size - 1)
                a, _ = _reflect(a, twice_low, twice_high, xp)
            a = xp.clip(a, 0.0, size - 1.0)
        return a.astype(np.int64)

    rows = [tap(y0, i - 1, sizes[0]) for i in range(4)]
    cols = [tap(x0, j - 1, sizes[1]) for j in range(4)]
    total: Tensor | None = None
    for i in range(4):
        line = read([rows[i], cols[0]]) * wx[0]
        for j in range(1, 4):
            line = line + read([rows[i], cols[j]]) * wx[j]
        total = line * wy[i] if total is None else total + line * wy[i]
    assert total is not None
    return total
