"""Sliding local blocks (PyTorch's ``unfold``/``fold`` and ``nn.Unfold``/``nn.Fold``).

``unfold`` copies every kernel-sized block of a (N, C, H, W) input into a column:
(N, C * kh * kw, L) with L blocks; ``fold`` is its adjoint, summing columns back into an image
(overlapping blocks add up). Each is the other's gradient, so both are one op with the other as
its rule.

Example:
    >>> import downslope as ds
    >>> import downslope.nn.functional as F
    >>> cols = F.unfold(ds.arange(16.0).reshape(1, 1, 4, 4), kernel_size=2, stride=2)
    >>> cols.shape, cols[0, :, 0].tolist()
    (downslope.Size([1, 4, 4]), [0.0, 1.0, 4.0, 5.0])
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..backend import namespace_of
from ..errors import ShapeError
from ..ops.complex import register
from ..tensor import Tensor, record_op
from .convolution import _tuple
from .module import Module

__all__ = ["unfold", "fold", "Unfold", "Fold"]


def _block_geometry(size: tuple[int, ...], k: Any, d: Any, p: Any, s: Any, where: str) -> tuple[Any, ...]:
    """(kernel, dilation, stride, (OH, OW)): where the blocks of an image of ``size`` padded by ``p``
    lie; refuses an image smaller than the dilated kernel."""
    h, w = size[0] + 2 * p[0], size[1] + 2 * p[1]
    oh = (h - d[0] * (k[0] - 1) - 1) // s[0] + 1
    ow = (w - d[1] * (k[1] - 1) - 1) // s[1] + 1
    if oh < 1 or ow < 1:
        raise ShapeError(f"{where}: the (padded) image {h}x{w} is smaller than the dilated kernel")
    return k, d, s, (oh, ow)


def _offset_slices(geometry: tuple[Any, ...]) -> list[tuple[slice, slice]]:
    """Per kernel offset (row-major), the strided slices of the padded image its blocks read."""
    (kh, kw), (dh, dw), (sh, sw), (oh, ow) = geometry
    return [
        (slice(i * dh, i * dh + sh * (oh - 1) + 1, sh), slice(j * dw, j * dw + sw * (ow - 1) + 1, sw))
        for i in range(kh)
        for j in range(kw)
    ]


def _args(kernel_size: Any, dilation: Any, padding: Any, stride: Any, where: str) -> tuple[Any, Any, Any, Any]:
    return (
        _tuple(kernel_size, 2, "kernel_size", where),
        _tuple(dilation, 2, "dilation", where),
        _tuple(padding, 2, "padding", where, minimum=0),
        _tuple(stride, 2, "stride", where),
    )


def _unfold_array(x: np.ndarray, geometry: tuple[Any, ...], p: Any) -> np.ndarray:
    n, c = x.shape[:2]
    (kh, kw), _, _, (oh, ow) = geometry
    padded = np.pad(x, ((0, 0), (0, 0), (p[0], p[0]), (p[1], p[1]))) if p[0] or p[1] else x
    blocks = namespace_of(x).empty((n, c, kh * kw, oh, ow), dtype=x.dtype)
    for offset, (rows, cols) in enumerate(_offset_slices(geometry)):  # one strided copy per kernel offset
        blocks[:, :, offset] = padded[:, :, rows, cols]
    return blocks.reshape(n, c * kh * kw, oh * ow)


def _fold_array(cols_: np.ndarray, size: tuple[int, ...], geometry: tuple[Any, ...], p: Any) -> np.ndarray:
    n = cols_.shape[0]
    (kh, kw), _, _, (oh, ow) = geometry
    c = cols_.shape[1] // (kh * kw)
    out = namespace_of(cols_).zeros((n, c, size[0] + 2 * p[0], size[1] + 2 * p[1]), dtype=cols_.dtype)
    blocks = cols_.reshape(n, c, kh * kw, oh, ow)
    # One kernel offset at a time: its blocks land on distinct pixels, so a strided add is exact
    # (np.add.at over all offsets at once, which overlapping blocks need, is unbuffered and much slower).
    for offset, (rows, cols) in enumerate(_offset_slices(geometry)):
        out[:, :, rows, cols] += blocks[:, :, offset]
    return out[:, :, p[0] : p[0] + size[0], p[1] : p[1] + size[1]]


def unfold(input: Tensor, kernel_size: Any, dilation: Any = 1, padding: Any = 0, stride: Any = 1) -> Tensor:
    """Blocks of a (N, C, H, W) (or (C, H, W)) input as columns: (N, C*kh*kw, L)."""
    where = "unfold"
    if not isinstance(input, Tensor) or input.ndim not in (3, 4):
        raise ShapeError(f"{where}: expected a (N, C, H, W) or (C, H, W) Tensor, got {getattr(input, 'shape', input)}")
    unbatched = input.ndim == 3
    x = input.array[None] if unbatched else input.array
    k, d, p, s = _args(kernel_size, dilation, padding, stride, where)
    geometry = _block_geometry(x.shape[2:], k, d, p, s, where)
    out = _unfold_array(x, geometry, p)
    return record_op(out[0] if unbatched else out, (input,), _unfold_vjp, (x.shape[2:], geometry, p, unbatched))


def _unfold_vjp(g, y, args, saved, needs, xp):
    size, geometry, p, unbatched = saved
    if xp.differentiable:  # the gradient of unfold is fold, itself an op: differentiable again
        return (_fold_op(g, size, geometry, p, unbatched),)
    g = g[None] if unbatched else g
    out = _fold_array(g, size, geometry, p)
    return (out[0] if unbatched else out,)


def fold(
    input: Tensor, output_size: Any, kernel_size: Any, dilation: Any = 1, padding: Any = 0, stride: Any = 1
) -> Tensor:
    """Sum columns (N, C*kh*kw, L) back into an image (N, C, H, W) of ``output_size``; overlaps add."""
    where = "fold"
    if not isinstance(input, Tensor) or input.ndim not in (2, 3):
        raise ShapeError(
            f"{where}: expected a (N, C*kh*kw, L) or (C*kh*kw, L) Tensor, got {getattr(input, 'shape', input)}"
        )
    unbatched = input.ndim == 2
    x = input.array[None] if unbatched else input.array
    size = _tuple(output_size, 2, "output_size", where)
    k, d, p, s = _args(kernel_size, dilation, padding, stride, where)
    geometry = _block_geometry(size, k, d, p, s, where)
    per_block, blocks = k[0] * k[1], geometry[3][0] * geometry[3][1]
    if x.shape[1] % per_block or x.shape[2] != blocks:
        raise ShapeError(
            f"{where}: input of shape {tuple(input.shape)} does not hold {blocks} blocks of {per_block} "
            f"elements per channel for output_size {size}"
        )
    return _fold_op(input, size, geometry, p, unbatched)


def _fold_op(input: Tensor, size: Any, geometry: Any, p: Any, unbatched: bool) -> Tensor:
    x = input.array[None] if unbatched else input.array
    out = _fold_array(x, size, geometry, p)
    return record_op(out[0] if unbatched else out, (input,), _fold_vjp, (size, geometry, p, unbatched))


def _unfold_op(input: Tensor, size: Any, geometry: Any, p: Any, unbatched: bool) -> Tensor:
    x = input.array[None] if unbatched else input.array
    out = _unfold_array(x, geometry, p)
    return record_op(out[0] if unbatched else out, (input,), _unfold_vjp, (size, geometry, p, unbatched))


def _fold_vjp(g, y, args, saved, needs, xp):
    size, geometry, p, unbatched = saved
    if xp.differentiable:  # the gradient of fold is unfold, itself an op: differentiable again
        return (_unfold_op(g, size, geometry, p, unbatched),)
    g = g[None] if unbatched else g
    out = _unfold_array(g, geometry, p)
    return (out[0] if unbatched else out,)


# fold and unfold copy and add values with real coefficients: the same rules hold for complex ones
# (torch's convention needs no conjugation for a map that is linear over the reals and the complex numbers)
register(_unfold_vjp)
register(_fold_vjp)
for _rule in (_unfold_vjp, _fold_vjp):
    _rule.reads_inputs = False  # type: ignore[attr-defined]  # shapes only: torch saves sizes, a second backward works


class Unfold(Module):
    """See :func:`unfold`."""

    def __init__(self, kernel_size: Any, dilation: Any = 1, padding: Any = 0, stride: Any = 1) -> None:
        super().__init__()
        self.kernel_size, self.dilation, self.padding, self.stride = kernel_size, dilation, padding, stride

    def forward(self, input: Tensor) -> Tensor:
        return unfold(input, self.kernel_size, self.dilation, self.padding, self.stride)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, dilation={self.dilation}, padding={self.padding}, stride={self.stride}"


class Fold(Module):
    """See :func:`fold`."""

    def __init__(
        self, output_size: Any, kernel_size: Any, dilation: Any = 1, padding: Any = 0, stride: Any = 1
    ) -> None:
        super().__init__()
        self.output_size, self.kernel_size = output_size, kernel_size
        self.dilation, self.padding, self.stride = dilation, padding, stride

    def forward(self, input: Tensor) -> Tensor:
        return fold(input, self.output_size, self.kernel_size, self.dilation, self.padding, self.stride)

    def extra_repr(self) -> str:
        return (
            f"output_size={self.output_size}, kernel_size={self.kernel_size}, "
            f"dilation={self.dilation}, padding={self.padding}, stride={self.stride}"
        )
