"""Spatial sampling with PyTorch's names: ``affine_grid`` and ``grid_sample`` (the spatial
transformer's two ops).

``affine_grid`` maps the output pixel centres, in normalized coordinates [-1, 1], through a batch
of 2x3 affine matrices. ``grid_sample`` reads the input at those (x, y) locations, blending the
four neighbouring pixels (``bilinear``) or taking the nearest one. Both are composites of indexing
and arithmetic ops, so gradients reach the input and the grid (hence theta).

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

from typing import Any

import numpy as np

from .. import ops
from ..backend import namespace_of
from ..errors import ArgumentError, ShapeError
from ..tensor import Tensor, record_op, wrap_array

__all__ = ["affine_grid", "grid_sample"]


def _base_coords(n: int, align_corners: bool, dtype: Any, xp: Any) -> np.ndarray:
    """The ``n`` normalized pixel positions in [-1, 1], made in the namespace ``xp`` of the data."""
    if align_corners:
        return xp.linspace(-1.0, 1.0, n).astype(dtype) if n > 1 else xp.zeros(1, dtype)
    return ((2.0 * xp.arange(n) + 1.0) / n - 1.0).astype(dtype)


def affine_grid(theta: Tensor, size: Any, align_corners: bool | None = None) -> Tensor:
    """Sampling locations (N, H, W, 2) for output ``size`` (N, C, H, W) under the affine maps ``theta`` (N, 2, 3)."""
    size = tuple(int(s) for s in size)
    if len(size) != 4:
        raise ShapeError(f"affine_grid: only 2-D sampling is supported: size must be (N, C, H, W), got {size}")
    n, _, h, w = size
    if theta.shape != (n, 2, 3):
        raise ShapeError(f"affine_grid: expected theta of shape ({n}, 2, 3), got {theta.shape}")
    corners = align_corners is True
    xp = namespace_of(theta.array)
    xs, ys = _base_coords(w, corners, theta.dtype, xp), _base_coords(h, corners, theta.dtype, xp)
    base = np.stack(
        [np.broadcast_to(xs, (h, w)), np.broadcast_to(ys[:, None], (h, w)), np.ones_like(xs, shape=(h, w))], -1
    )
    grid = ops.matmul(wrap_array(base.reshape(1, h * w, 3)), ops.transpose(theta, 1, 2))  # (N, H*W, 2)
    return ops.reshape(grid, (n, h, w, 2))


def _unnormalize(coord: Tensor, size: int, align_corners: bool) -> Tensor:
    if align_corners:
        return (coord + 1.0) * ((size - 1) / 2.0)
    return ((coord + 1.0) * size - 1.0) / 2.0


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


def _padded_coordinate(coord: Tensor, size: int, padding_mode: str, align_corners: bool) -> Tensor:
    """The pixel coordinate ``coord`` brought inside [0, size - 1] for 'border' (clamped) and
    'reflection' (mirrored at the image's edges, then clamped), with torch's gradient: the
    reflection's +-1 times the clamp's, which counts the borders themselves as outside (0)."""
    a = coord.array
    xp = namespace_of(a)
    slope = xp.ones_like(a)
    if padding_mode == "reflection":
        twice_low, twice_high = (0, 2 * (size - 1)) if align_corners else (-1, 2 * size - 1)
        a, slope = _reflect(a, twice_low, twice_high, xp)
    out = xp.clip(a, 0.0, size - 1.0).astype(coord.dtype)
    slope = (slope * ((a > 0) & (a < size - 1))).astype(coord.dtype)
    return record_op(out, (coord,), _padded_coordinate_vjp, slope)


def _padded_coordinate_vjp(g, y, args, saved, needs, xp):
    return (g * saved,)


_padded_coordinate_vjp.reads_inputs = False  # type: ignore[attr-defined]
_padded_coordinate_vjp.reads_output = False  # type: ignore[attr-defined]


def grid_sample(
    input: Tensor,
    grid: Tensor,
    mode: str = "bilinear",
    padding_mode: str = "zeros",
    align_corners: bool | None = None,
) -> Tensor:
    """Sample ``input`` (N, C, H, W) at the normalized (x, y) locations of ``grid`` (N, Ho, Wo, 2).

    ``mode``: bilinear or nearest; ``padding_mode``: zeros (outside reads 0), border (the nearest
    edge pixel) or reflection (the image mirrored at its edges: at the pixel centres of the edges
    with ``align_corners=True``, at the image's outer borders otherwise). Gradients reach the
    input and (bilinear) the grid, as torch's.

    Example:
        >>> import downslope as ds
        >>> import downslope.nn.functional as F
        >>> image = ds.tensor([[[[1.0, 2.0, 3.0]]]])
        >>> grid = ds.tensor([[[[-1.5, 0.0], [1.5, 0.0]]]])  # (x, y): half a pixel past each end
        >>> F.grid_sample(image, grid, padding_mode="reflection", align_corners=True)
        tensor([[[[1.5, 2.5]]]])
    """
    if mode not in ("bilinear", "nearest"):
        raise ArgumentError(f"grid_sample: mode must be 'bilinear' or 'nearest', got {mode!r}")
    if padding_mode not in ("zeros", "border", "reflection"):
        raise ArgumentError(
            f"grid_sample: padding_mode must be 'zeros', 'border' or 'reflection', got {padding_mode!r}"
        )
    if input.ndim != 4 or grid.ndim != 4 or grid.shape[-1] != 2 or grid.shape[0] != input.shape[0]:
        raise ShapeError(
            f"grid_sample: expected input (N, C, H, W) and grid (N, Ho, Wo, 2), got {input.shape}, {grid.shape}"
        )
    corners = align_corners is True
    n, c, h, w = input.shape
    ix = _unnormalize(grid[..., 0], w, corners)
    iy = _unnormalize(grid[..., 1], h, corners)
    if padding_mode != "zeros":
        ix, iy = _padded_coordinate(ix, w, padding_mode, corners), _padded_coordinate(iy, h, padding_mode, corners)
    pixels = ops.permute(input, (0, 2, 3, 1))  # (N, H, W, C): one gather per corner
    batch = namespace_of(input.array).arange(n).reshape(n, 1, 1)

    def read(yi: np.ndarray, xi: np.ndarray) -> Tensor:
        inside = ((xi >= 0) & (xi < w) & (yi >= 0) & (yi < h)).astype(input.dtype)[..., None]
        values = pixels[batch, np.clip(yi, 0, h - 1), np.clip(xi, 0, w - 1)]
        return values * inside  # zeros padding: outside the image reads 0

    if mode == "nearest":
        out = read(np.rint(iy.array).astype(np.int64), np.rint(ix.array).astype(np.int64))
        out = _zero_gradient_for(out, grid)
    else:
        x0, y0 = np.floor(ix.array).astype(np.int64), np.floor(iy.array).astype(np.int64)
        wx1 = ops.unsqueeze(ix - wrap_array(x0.astype(input.dtype)), -1)
        wy1 = ops.unsqueeze(iy - wrap_array(y0.astype(input.dtype)), -1)
        wx0, wy0 = 1.0 - wx1, 1.0 - wy1
        out = (read(y0, x0) * wx0 * wy0 + read(y0, x0 + 1) * wx1 * wy0
               + read(y0 + 1, x0) * wx0 * wy1 + read(y0 + 1, x0 + 1) * wx1 * wy1)  # fmt: skip
    return ops.permute(out, (0, 3, 1, 2))
