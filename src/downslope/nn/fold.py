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
    ((1, 4, 4), [0.0, 1.0, 4.0, 5.0])
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..backend import namespace_of
from ..errors import ShapeError
from ..tensor import Tensor, record_op
from .convolution import _tuple
from .module import Module

__all__ = ["unfold", "fold", "Unfold", "Fold"]


def _block_index(
    size: tuple[int, ...], k: Any, d: Any, p: Any, s: Any, where: str, xp: Any = np
) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Row and column indices (into the padded image) of every block element: each (kh*kw, L), made
    in the namespace ``xp`` of the data they index."""
    h, w = size[0] + 2 * p[0], size[1] + 2 * p[1]
    oh = (h - d[0] * (k[0] - 1) - 1) // s[0] + 1
    ow = (w - d[1] * (k[1] - 1) - 1) // s[1] + 1
    if oh < 1 or ow < 1:
        raise ShapeError(f"{where}: the (padded) image {h}x{w} is smaller than the dilated kernel")
    ki, kj = xp.meshgrid(xp.arange(k[0]) * d[0], xp.arange(k[1]) * d[1], indexing="ij")
    bi, bj = xp.meshgrid(xp.arange(oh) * s[0], xp.arange(ow) * s[1], indexing="ij")
    rows = ki.reshape(-1, 1) + bi.reshape(1, -1)
    cols = kj.reshape(-1, 1) + bj.reshape(1, -1)
    return rows, cols, oh, ow


def _args(kernel_size: Any, dilation: Any, padding: Any, stride: Any, where: str) -> tuple[Any, Any, Any, Any]:
    return (
        _tuple(kernel_size, 2, "kernel_size", where),
        _tuple(dilation, 2, "dilation", where),
        _tuple(padding, 2, "padding", where, minimum=0),
        _tuple(stride, 2, "stride", where),
    )


def _unfold_array(x: np.ndarray, rows: np.ndarray, cols: np.ndarray, p: Any) -> np.ndarray:
    n, c = x.shape[:2]
    padded = np.pad(x, ((0, 0), (0, 0), (p[0], p[0]), (p[1], p[1])))
    blocks = padded[:, :, rows, cols]  # (N, C, kh*kw, L)
    return blocks.reshape(n, c * rows.shape[0], rows.shape[1])


def _fold_array(cols_: np.ndarray, size: tuple[int, ...], rows: np.ndarray, cols: np.ndarray, p: Any) -> np.ndarray:
    n = cols_.shape[0]
    k = rows.shape[0]
    c = cols_.shape[1] // k
    out = namespace_of(cols_).zeros((n, c, size[0] + 2 * p[0], size[1] + 2 * p[1]), dtype=cols_.dtype)
    index: Any = (slice(None), slice(None), rows, cols)
    np.add.at(out, index, cols_.reshape(n, c, k, -1))
    return out[:, :, p[0] : p[0] + size[0], p[1] : p[1] + size[1]]


def unfold(input: Tensor, kernel_size: Any, dilation: Any = 1, padding: Any = 0, stride: Any = 1) -> Tensor:
    """Blocks of a (N, C, H, W) (or (C, H, W)) input as columns: (N, C*kh*kw, L)."""
    where = "unfold"
    if not isinstance(input, Tensor) or input.ndim not in (3, 4):
        raise ShapeError(f"{where}: expected a (N, C, H, W) or (C, H, W) Tensor, got {getattr(input, 'shape', input)}")
    unbatched = input.ndim == 3
    x = input.array[None] if unbatched else input.array
    k, d, p, s = _args(kernel_size, dilation, padding, stride, where)
    rows, cols, _, _ = _block_index(x.shape[2:], k, d, p, s, where, namespace_of(x))
    out = _unfold_array(x, rows, cols, p)
    node = record_op(out[0] if unbatched else out, (input,), _unfold_vjp, (x.shape[2:], rows, cols, p, unbatched))
    return node


def _unfold_vjp(g, y, args, saved, needs, xp):
    size, rows, cols, p, unbatched = saved
    if xp.differentiable:  # the gradient of unfold is fold, itself an op: differentiable again
        return (_fold_op(g, size, rows, cols, p, unbatched),)
    g = g[None] if unbatched else g
    out = _fold_array(g, size, rows, cols, p)
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
    rows, cols, _, _ = _block_index(size, k, d, p, s, where, namespace_of(x))
    if x.shape[1] % rows.shape[0] or x.shape[2] != rows.shape[1]:
        raise ShapeError(
            f"{where}: input of shape {input.shape} does not hold {rows.shape[1]} blocks of {rows.shape[0]} "
            f"elements per channel for output_size {size}"
        )
    return _fold_op(input, size, rows, cols, p, unbatched)


def _fold_op(input: Tensor, size: Any, rows: Any, cols: Any, p: Any, unbatched: bool) -> Tensor:
    x = input.array[None] if unbatched else input.array
    out = _fold_array(x, size, rows, cols, p)
    return record_op(out[0] if unbatched else out, (input,), _fold_vjp, (size, rows, cols, p, unbatched))


def _unfold_op(input: Tensor, size: Any, rows: Any, cols: Any, p: Any, unbatched: bool) -> Tensor:
    x = input.array[None] if unbatched else input.array
    out = _unfold_array(x, rows, cols, p)
    return record_op(out[0] if unbatched else out, (input,), _unfold_vjp, (size, rows, cols, p, unbatched))


def _fold_vjp(g, y, args, saved, needs, xp):
    size, rows, cols, p, unbatched = saved
    if xp.differentiable:  # the gradient of fold is unfold, itself an op: differentiable again
        return (_unfold_op(g, size, rows, cols, p, unbatched),)
    g = g[None] if unbatched else g
    out = _unfold_array(g, rows, cols, p)
    return (out[0] if unbatched else out,)


class Unfold(Module):
    """See :func:`unfold`."""

    def __init__(self, kernel_size: Any, dilation: Any = 1, padding: Any = 0, stride: Any = 1) -> None:
        super().__init__()
        self.kernel_size, self.dilation, self.padding, self.stride = kernel_size, dilation, padding, stride

    def forward(self, x: Tensor) -> Tensor:
        return unfold(x, self.kernel_size, self.dilation, self.padding, self.stride)


class Fold(Module):
    """See :func:`fold`."""

    def __init__(
        self, output_size: Any, kernel_size: Any, dilation: Any = 1, padding: Any = 0, stride: Any = 1
    ) -> None:
        super().__init__()
        self.output_size, self.kernel_size = output_size, kernel_size
        self.dilation, self.padding, self.stride = dilation, padding, stride

    def forward(self, x: Tensor) -> Tensor:
        return fold(x, self.output_size, self.kernel_size, self.dilation, self.padding, self.stride)
