"""More pooling with PyTorch's names: adaptive max pooling and power-average (LP) pooling.

Both are built from existing ops (slicing, ``first_max_last``, average pooling, powers), so their
gradients come from those ops (a tie's whole gradient to its first element, as in PyTorch). Adaptive max pooling is separable: the maximum over a rectangle is the maximum
over its rows of the maxima over its columns, so the width is pooled first, then the height. With
numba (host arrays) adaptive 2-D max pooling is instead one compiled op scanning each window as
torch's loop does (``_jit_resample.adaptive_max2d``): the composite costs a Python op per window.

Example:
    >>> import downslope as ds
    >>> from downslope import nn
    >>> nn.AdaptiveMaxPool2d(1)(ds.arange(16.0).reshape(1, 1, 4, 4))
    tensor([[[[15.]]]])
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from numbers import Integral
from typing import Any

import numpy as np

from .. import jit_gate, ops
from ..backend import namespace_of
from ..errors import ArgumentError, InvalidValueError, ShapeError
from ..ops.pointwise import link_input
from ..tensor import Tensor, record_op, wrap_array
from ._arrays import array_like, is_host
from ._conv_args import _as_tensor, _batched, _check_floating
from .module import Module
from .pooling import _adaptive_sizes, avg_pool1d, avg_pool2d, first_max_last, max_pool1d, max_pool2d

__all__ = [
    "adaptive_max_pool1d", "adaptive_max_pool2d", "lp_pool1d", "lp_pool2d", "AdaptiveMaxPool1d", "AdaptiveMaxPool2d",
    "LPPool1d", "LPPool2d", "max_unpool1d", "max_unpool2d", "MaxUnpool1d", "MaxUnpool2d", "lp_pool3d", "LPPool3d",
    "max_unpool3d", "MaxUnpool3d", "CrossMapLRN2d",
]  # fmt: skip


def _adaptive_max_last(x: Tensor, out: int) -> Tensor:
    size = x.shape[-1]
    if out == size:
        return x
    if out == 0:
        return x[..., :0]
    if is_host(x.array):  # one argmax over every window at once (the stack of windows below costs a call each)
        from .pooling_windows import adaptive_max_last

        return adaptive_max_last(x, out)[0]
    # first_max_last, not amax: torch gives a tie's whole gradient to its first element
    if size % out == 0:  # equal, non-overlapping windows
        return first_max_last(ops.reshape(x, x.shape[:-1] + (out, size // out)))
    windows = [((i * size) // out, -((-(i + 1) * size) // out)) for i in range(out)]
    return ops.stack([first_max_last(x[..., start:end]) for start, end in windows], -1)


def adaptive_max_pool2d(input: Tensor, output_size: Any, return_indices: bool = False) -> Any:
    """Max pooling to a fixed ``output_size``: output cell i covers input rows ``floor(i*H/OH)`` up to
    ``ceil((i+1)*H/OH)`` (and likewise for columns); ``None`` keeps that size. ``return_indices``
    also returns each maximum's flat index into H*W, as PyTorch's.

    Example:
        >>> import downslope as ds
        >>> import downslope.nn.functional as F
        >>> F.adaptive_max_pool2d(ds.arange(16.0).reshape(1, 4, 4), 2)
        tensor([[[ 5.,  7.],
                 [13., 15.]]])
    """
    where = "adaptive_max_pool2d"
    if return_indices:
        from .pooling_windows import adaptive_max_pool2d_with_indices

        return adaptive_max_pool2d_with_indices(input, output_size)
    x = _as_tensor(input, where)
    _check_floating(x, where)
    x, unbatched = _batched(x, 2, where)
    oh, ow = _adaptive_sizes(output_size, x.shape[2:], where)
    if oh and ow and jit_gate.kernels(_KERNELS, x.array) is not None:
        out = _compiled_adaptive_max(x, oh, ow)
        return ops.squeeze(out, 0) if unbatched else out
    out = _adaptive_max_last(x, ow)
    out = ops.transpose(_adaptive_max_last(ops.transpose(out, 2, 3), oh), 2, 3)
    if not out.array.flags.c_contiguous:  # the pooled image is small: laid out in order, as PyTorch's
        out = ops.clone(out)  # (so view(N, -1), is_contiguous() and stride() answer as there)
    return ops.squeeze(out, 0) if unbatched else out


_KERNELS = "downslope.nn._jit_resample"


def _compiled_adaptive_max(x: Tensor, oh: int, ow: int) -> Tensor:
    """The numba kernel's adaptive max pooling (host arrays): each window scanned once, as torch's
    loop (the composite's slices and stacks cost a Python op per window at small sizes)."""
    k: Any = jit_gate.kernels(_KERNELS)
    a = np.ascontiguousarray(x.array)  # host: numba path
    out = np.empty(a.shape[:2] + (oh, ow), dtype=a.dtype)  # host: numba path
    where = np.empty(out.shape, dtype=np.int64)  # host: numba path
    k.adaptive_max2d(a, out, where)
    return record_op(out, (x,), _compiled_adaptive_max_vjp, (where, a.shape))


def _compiled_adaptive_max_vjp(g, y, args, saved, needs, xp):
    where, shape = saved
    if xp.differentiable:  # create_graph: the scatter as a recorded op, differentiable again
        n, c = shape[:2]
        key = (np.arange(n)[:, None, None, None], np.arange(c)[None, :, None, None], where)  # host: saved indices
        # linked to the input with derivative zero, as torch's double backward of max pooling: a bias
        # before the pool gets zeros after a gradient penalty, not None
        return (link_input(xp.reshape(xp.scatter((n, c, shape[2] * shape[3]), key, True, g), shape), args[0]),)
    k: Any = jit_gate.kernels(_KERNELS)
    gx = np.zeros(shape[:2] + (shape[2] * shape[3],), dtype=g.dtype)  # host: numba path
    k.adaptive_max2d_backward(np.ascontiguousarray(g), where, gx)  # host: numba path
    return (gx.reshape(shape),)


_compiled_adaptive_max_vjp.reads_inputs = False  # type: ignore[attr-defined]
_compiled_adaptive_max_vjp.reads_output = False  # type: ignore[attr-defined]


def adaptive_max_pool1d(input: Tensor, output_size: Any, return_indices: bool = False) -> Any:
    """Max pooling of a ``(N, C, L)`` or ``(C, L)`` signal to length ``output_size``."""
    where = "adaptive_max_pool1d"
    if return_indices:
        from .pooling_windows import adaptive_max_pool1d_with_indices

        return adaptive_max_pool1d_with_indices(input, output_size)
    x = _as_tensor(input, where)
    _check_floating(x, where)
    x, unbatched = _batched(x, 1, where)
    (out_len,) = _adaptive_sizes(
        output_size if not isinstance(output_size, Integral) else (int(output_size),), x.shape[2:], where
    )
    out = _adaptive_max_last(x, out_len)
    return ops.squeeze(out, 0) if unbatched else out


def _tuple(value: Any, n: int) -> tuple[Any, ...]:
    # numbers.Integral: NumPy integers (a size read from an array or a config) count, as in torch
    return (int(value),) * n if isinstance(value, Integral) else tuple(value)


def _check_norm_type(norm_type: Any, where: str) -> None:
    if norm_type == 0:  # host: a Python number
        raise ArgumentError(
            f"{where}: norm_type must be nonzero (the result is a 1/norm_type power), got {norm_type!r}"
        )


@contextmanager
def _reported_as(where: str) -> Iterator[None]:
    """Errors of the pooling an LP pool is built from, reworded to name ``where``: the op the caller
    used, not avg_pool1d or max_pool1d, which it never called."""
    try:
        yield
    except (ShapeError, ArgumentError, InvalidValueError) as e:
        message = str(e)
        inner = message.split(":", 1)[0]
        if inner.startswith(("avg_pool", "max_pool")) and message.count(":"):
            raise type(e)(where + message[len(inner) :]) from None
        raise


def _lp_extreme(input: Tensor, norm_type: Any, pool: Any, kernel_size: Any, stride: Any, ceil_mode: bool) -> Any:
    """PyTorch's rule for norm_type=+-inf (the limits of the power mean, where x**p and the 1/p
    root give 1.0): max pooling of |x| for inf, minus max pooling of -|x| (the minimum) for -inf;
    the gradient, as max pooling's, goes to each window's first winner. None for a finite norm_type."""
    if norm_type == float("inf"):  # host: a Python number
        return pool(ops.abs(input), kernel_size, stride, 0, 1, ceil_mode)
    if norm_type == -float("inf"):  # host: a Python number
        return -pool(-ops.abs(input), kernel_size, stride, 0, 1, ceil_mode)
    return None


def _lp_finish(pooled: Tensor, norm_type: float, window: int) -> Tensor:
    # PyTorch's formula: (sign(s) * relu(|s|) * window) ** (1/p) with s the average of x**p, which is
    # (s * window) ** (1/p). A window of zeros gives 0 with gradient 0, as PyTorch's (its relu drops the
    # infinite slope of the root at 0): the root is taken of 1 there, so no inf * 0 = NaN reaches the input.
    empty = pooled == 0
    safe = ops.where(empty, 1.0, pooled)
    return ops.where(empty, 0.0, (safe * window) ** (1.0 / norm_type))


def lp_pool2d(input: Tensor, norm_type: float, kernel_size: Any, stride: Any = None, ceil_mode: bool = False) -> Tensor:
    """(sum over each window of x**p) ** (1/p): p=1 is sum pooling, p -> inf approaches max pooling.

    Example:
        >>> import downslope as ds
        >>> import downslope.nn.functional as F
        >>> F.lp_pool2d(ds.full((1, 1, 2, 2), 3.0), 2, 2)
        tensor([[[[6.]]]])
    """
    _check_norm_type(norm_type, "lp_pool2d")
    with _reported_as("lp_pool2d"):
        extreme = _lp_extreme(input, norm_type, max_pool2d, kernel_size, stride, ceil_mode)
        if extreme is not None:
            return extreme
        k = _tuple(kernel_size, 2)
        pooled = avg_pool2d(input**norm_type, k, stride, 0, ceil_mode)
    return _lp_finish(pooled, norm_type, k[0] * k[1])


def lp_pool1d(input: Tensor, norm_type: float, kernel_size: int, stride: Any = None, ceil_mode: bool = False) -> Tensor:
    """1-D power-average pooling (see :func:`lp_pool2d`)."""
    _check_norm_type(norm_type, "lp_pool1d")
    with _reported_as("lp_pool1d"):
        extreme = _lp_extreme(input, norm_type, max_pool1d, kernel_size, stride, ceil_mode)
        if extreme is not None:
            return extreme
        pooled = avg_pool1d(input**norm_type, kernel_size, stride, 0, ceil_mode)
    return _lp_finish(pooled, norm_type, int(kernel_size))


def lp_pool3d(input: Tensor, norm_type: float, kernel_size: Any, stride: Any = None, ceil_mode: bool = False) -> Tensor:
    """3-D power-average pooling of ``(N, C, D, H, W)`` (see :func:`lp_pool2d`).

    Example:
        >>> import downslope as ds
        >>> import downslope.nn.functional as F
        >>> F.lp_pool3d(ds.full((1, 1, 2, 2, 2), 1.0), 1, 2).flatten().tolist()
        [8.0]
    """
    from .volumetric import avg_pool3d, max_pool3d

    _check_norm_type(norm_type, "lp_pool3d")
    with _reported_as("lp_pool3d"):
        extreme = _lp_extreme(input, norm_type, max_pool3d, kernel_size, stride, ceil_mode)
        if extreme is not None:
            return extreme
        k = _tuple(kernel_size, 3)
        pooled = avg_pool3d(input**norm_type, k, stride, 0, ceil_mode)
    return _lp_finish(pooled, norm_type, k[0] * k[1] * k[2])


class AdaptiveMaxPool2d(Module):
    """See :func:`adaptive_max_pool2d`; ``AdaptiveMaxPool2d(1)`` is global max pooling."""

    def __init__(self, output_size: Any, return_indices: bool = False) -> None:
        super().__init__()
        self.output_size, self.return_indices = output_size, return_indices

    def forward(self, input: Tensor) -> Any:
        return adaptive_max_pool2d(input, self.output_size, self.return_indices)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class AdaptiveMaxPool1d(Module):
    """See :func:`adaptive_max_pool1d`."""

    def __init__(self, output_size: Any, return_indices: bool = False) -> None:
        super().__init__()
        self.output_size, self.return_indices = output_size, return_indices

    def forward(self, input: Tensor) -> Any:
        return adaptive_max_pool1d(input, self.output_size, self.return_indices)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class LPPool2d(Module):
    """See :func:`lp_pool2d`."""

    def __init__(self, norm_type: float, kernel_size: Any, stride: Any = None, ceil_mode: bool = False) -> None:
        super().__init__()
        self.norm_type, self.kernel_size, self.stride, self.ceil_mode = norm_type, kernel_size, stride, ceil_mode

    def forward(self, input: Tensor) -> Tensor:
        return lp_pool2d(input, self.norm_type, self.kernel_size, self.stride, self.ceil_mode)

    def extra_repr(self) -> str:
        return (
            f"norm_type={self.norm_type}, kernel_size={self.kernel_size}, stride={self.stride}, "
            f"ceil_mode={self.ceil_mode}"
        )


class LPPool1d(LPPool2d):
    """See :func:`lp_pool1d`."""

    def forward(self, input: Tensor) -> Tensor:
        return lp_pool1d(input, self.norm_type, self.kernel_size, self.stride, self.ceil_mode)


class LPPool3d(LPPool2d):
    """See :func:`lp_pool3d`.

    Example:
        >>> import downslope as ds
        >>> from downslope import nn
        >>> nn.LPPool3d(2, 2)(ds.randn(1, 2, 4, 4, 4)).shape
        downslope.Size([1, 2, 2, 2, 2])
    """

    def forward(self, input: Tensor) -> Tensor:
        return lp_pool3d(input, self.norm_type, self.kernel_size, self.stride, self.ceil_mode)


# ---------------------------------------------------------------------- max unpooling
def _unpool_size(x: Tensor, k: Any, s: Any, p: Any, output_size: Any, spatial: int, where: str) -> tuple[int, ...]:
    default = tuple((n - 1) * st - 2 * pd + kk for n, kk, st, pd in zip(x.shape[-spatial:], k, s, p))
    if output_size is None:
        return default
    size = tuple(int(v) for v in output_size)
    if len(size) == spatial + 2:  # a full (N, C, ...) size, as torch takes it
        size = size[2:]
    if len(size) != spatial:
        raise ArgumentError(
            f"{where}: output_size should have {spatial} or {spatial + 2} elements, got {output_size!r}"
        )
    # torch's range: the sizes a max pooling of this stride could have pooled to the input's size;
    # any other size would place the flat indices (taken in the pooled input's width) in wrong rows
    for d, (n, v, st) in enumerate(zip(size, default, s)):
        lo, hi = v - st, v + st
        if not lo < n < hi:
            raise ArgumentError(
                f"{where}: invalid output_size {output_size!r} (dim {d} must be between {lo} and {hi}, "
                f"exclusive, for an input of spatial size {tuple(x.shape[-spatial:])})"
            )
    return size


def _max_unpool(x: Tensor, indices: Any, size: tuple[int, ...], where: str) -> Tensor:
    idx = array_like(indices, x.array, np.int64)
    if idx.shape != x.shape:
        raise ShapeError(f"{where}: indices of shape {tuple(idx.shape)} do not match the input {tuple(x.shape)}")
    lead = x.shape[: x.ndim - len(size)]
    flat_out = int(np.prod(size))
    if is_host(idx) and idx.size and (idx.min() < 0 or idx.max() >= flat_out):  # a value check: host only
        raise InvalidValueError(f"{where}: an index is outside the output of size {size}")
    rows = idx.reshape(-1, int(np.prod(x.shape[len(lead) :])))  # one row of indices per (N, C)
    xp = namespace_of(x.array)
    out = xp.zeros((rows.shape[0], flat_out), dtype=x.array.dtype)
    out[xp.arange(rows.shape[0])[:, None], rows] = x.array.reshape(rows.shape)
    return record_op(out.reshape(lead + size), (x,), _max_unpool_vjp, (rows, flat_out))


def _max_unpool_vjp(g, y, args, saved, needs, xp):
    rows, flat_out = saved
    # the row length spelled out: -1 cannot be inferred from an empty batch (zero rows)
    gathered = g.reshape(rows.shape[0], flat_out)[namespace_of(rows).arange(rows.shape[0])[:, None], rows]
    return (gathered.reshape(args[0].shape),)


def max_unpool2d(
    input: Tensor, indices: Any, kernel_size: Any, stride: Any = None, padding: Any = 0, output_size: Any = None
) -> Tensor:
    """Put each value back at the position ``max_pool2d(..., return_indices=True)`` took it from;
    every other position is zero.

    Example:
        >>> import downslope as ds
        >>> import downslope.nn.functional as F
        >>> x = ds.tensor([[[[1.0, 5.0], [3.0, 2.0]]]])
        >>> out, idx = F.max_pool2d(x, 2, return_indices=True)
        >>> F.max_unpool2d(out, idx, 2)
        tensor([[[[0., 5.],
                  [0., 0.]]]])
    """
    k = _tuple(kernel_size, 2)
    s = k if stride is None else _tuple(stride, 2)
    p = _tuple(padding, 2)
    return _max_unpool(input, indices, _unpool_size(input, k, s, p, output_size, 2, "max_unpool2d"), "max_unpool2d")


def max_unpool1d(
    input: Tensor, indices: Any, kernel_size: Any, stride: Any = None, padding: Any = 0, output_size: Any = None
) -> Tensor:
    """1-D :func:`max_unpool2d`: the inverse of ``max_pool1d(..., return_indices=True)``."""
    k = _tuple(kernel_size, 1)
    s = k if stride is None else _tuple(stride, 1)
    p = _tuple(padding, 1)
    return _max_unpool(input, indices, _unpool_size(input, k, s, p, output_size, 1, "max_unpool1d"), "max_unpool1d")


def max_unpool3d(
    input: Tensor, indices: Any, kernel_size: Any, stride: Any = None, padding: Any = 0, output_size: Any = None
) -> Tensor:
    """3-D :func:`max_unpool2d`: the inverse of ``max_pool3d(..., return_indices=True)``.

    Example:
        >>> import downslope as ds
        >>> import downslope.nn.functional as F
        >>> out, idx = F.max_pool3d(ds.arange(8.0).reshape(1, 1, 2, 2, 2), 2, return_indices=True)
        >>> F.max_unpool3d(out, idx, 2).flatten().tolist()
        [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 7.0]
    """
    k = _tuple(kernel_size, 3)
    s = k if stride is None else _tuple(stride, 3)
    p = _tuple(padding, 3)
    return _max_unpool(input, indices, _unpool_size(input, k, s, p, output_size, 3, "max_unpool3d"), "max_unpool3d")


class MaxUnpool2d(Module):
    """See :func:`max_unpool2d`."""

    _spatial = 2

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0) -> None:
        super().__init__()
        # n-tuples, the stride defaulting to the kernel size, as torch's MaxUnpoolNd keeps them
        n = self._spatial
        self.kernel_size = _tuple(kernel_size, n)
        self.stride = _tuple(kernel_size if stride is None else stride, n)
        self.padding = _tuple(padding, n)

    def forward(self, input: Tensor, indices: Any, output_size: Any = None) -> Tensor:
        return max_unpool2d(input, indices, self.kernel_size, self.stride, self.padding, output_size)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxUnpool1d(MaxUnpool2d):
    """See :func:`max_unpool1d`."""

    _spatial = 1

    def forward(self, input: Tensor, indices: Any, output_size: Any = None) -> Tensor:
        return max_unpool1d(input, indices, self.kernel_size, self.stride, self.padding, output_size)


class MaxUnpool3d(MaxUnpool2d):
    """See :func:`max_unpool3d`.

    Example:
        >>> import downslope as ds
        >>> from downslope import nn
        >>> out, idx = nn.MaxPool3d(2, return_indices=True)(ds.randn(1, 1, 4, 4, 4))
        >>> nn.MaxUnpool3d(2)(out, idx).shape
        downslope.Size([1, 1, 4, 4, 4])
    """

    _spatial = 3

    def forward(self, input: Tensor, indices: Any, output_size: Any = None) -> Tensor:
        return max_unpool3d(input, indices, self.kernel_size, self.stride, self.padding, output_size)


# ---------------------------------------------------------------------- cross-map LRN
def _cross_map_window(channels: int, size: int) -> np.ndarray:
    """(C, C) 0/1 matrix: row c marks the channels whose squares PyTorch's CrossMapLRN2d sums for
    channel c. PyTorch's running sum adds channel c + pre_pad - 1 and drops channel c - pre_pad only
    once c > pre_pad (and never channel 0), which this reproduces exactly."""
    pre_pad = int((size - 1) / 2 + 1)
    window = np.zeros((channels, channels), np.float64)  # host: a constant made from Python ints
    for c in range(channels):
        hi = min(c + pre_pad - 1, channels - 1)
        window[c, 0] = 1.0
        window[c, max(1, c - pre_pad + 1) : hi + 1] = 1.0
    return window


class CrossMapLRN2d(Module):
    """PyTorch's legacy ``CrossMapLRN2d``: ``x / (k + alpha/size * s) ** beta`` with ``s`` a running
    sum of squares over nearby channels of a 4-D ``(N, C, H, W)`` input. The channels summed are
    exactly PyTorch's (its running sum keeps channel 0 and drops the others one step late, so the
    window is not quite centred); the gradient is the exact derivative of that forward.

    Example:
        >>> import downslope as ds
        >>> from downslope import nn
        >>> nn.CrossMapLRN2d(3)(ds.ones(1, 4, 2, 2)).shape
        downslope.Size([1, 4, 2, 2])
    """

    def __init__(self, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1) -> None:
        super().__init__()
        self.size, self.alpha, self.beta, self.k = size, alpha, beta, k

    def forward(self, input: Tensor) -> Tensor:
        where = "CrossMapLRN2d"
        x = _as_tensor(input, where)
        if x.ndim != 4:
            raise ShapeError(f"{where}: Expected input to be 4D, got {x.ndim}D instead (shape {tuple(x.shape)})")
        _check_floating(x, where)
        window = _cross_map_window(x.shape[1], self.size)
        xp = namespace_of(x.array)
        window_t = wrap_array(xp.asarray(window.T, dtype=x.array.dtype))  # x's dtype (Tensor() applies the policy)
        squares = ops.permute(x * x, (0, 2, 3, 1))  # channels last, summed by a matrix product
        summed = ops.permute(ops.matmul(squares, window_t), (0, 3, 1, 2))
        return x * (summed * (self.alpha / self.size) + self.k) ** (-self.beta)

    def extra_repr(self) -> str:
        return f"{self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"
