"""3-D (volumetric) layers with PyTorch's names: Conv3d, MaxPool3d, AvgPool3d, AdaptiveAvgPool3d,
for input (N, C, D, H, W) or unbatched (C, D, H, W).

A 3-D convolution or transposed convolution is ONE recorded op (vol2col and one GEMM per chunk of
the batch, its gradients the same products transposed; see ``_vol_kernels``). With the compiled
kernels (the ``jit`` extra) 3-D max and average pooling are one recorded op too (``_vol_pooling``);
without them (devices, ``DOWNSLOPE_JIT=0``) pooling pools each depth slice in 2-D and then reduces
over the depth windows, and the gradients come from those ops.

Example:
    >>> import downslope as ds
    >>> from downslope import nn
    >>> nn.Conv3d(2, 4, kernel_size=3, padding=1)(ds.randn(1, 2, 5, 6, 6)).shape
    downslope.Size([1, 4, 5, 6, 6])
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import ops
from ..backend import namespace_of
from ..errors import ArgumentError, ArgumentTypeError, DTypeError, ShapeError
from ..tensor import Tensor, note_conv_layout, record_op, wrap_array
from . import _vol_pooling
from ._conv_args import (
    _as_tensor,
    _batched,
    _check_floating,
    _check_padding_string,
    _checked_bias,
    _padding_mode,
    _pool_args,
    _positive,
    _transposed_args,
    _tuple,
)
from ._vol_kernels import _conv3d_vjp, _conv_transpose3d_vjp, conv3d_forward, conv_transpose3d_forward
from .conv_transpose import _ConvTransposeNd
from .convolution import _ConvLayer
from .module import Module
from .pooling import (
    _adaptive_sizes,
    _avg_divisor,
    _check_pooled_dtype,
    _integer_average,
    _long_tiling_windows,
    _pool_geometry,
    _tiled_max_pool,
    adaptive_avg_pool2d,
    avg_pool2d,
    first_max_last,
)
from .pooling import max_pool2d as _max_pool2d_fn

__all__ = ["conv3d", "conv_transpose3d", "max_pool3d", "avg_pool3d", "adaptive_avg_pool3d", "Conv3d",
           "ConvTranspose3d", "MaxPool3d", "AvgPool3d", "AdaptiveAvgPool3d"]  # fmt: skip


def _depth_slices(x: Tensor, start: int, count: int, step: int) -> Tensor:
    """x[:, :, start::step][:count] with the depth folded into the batch: (N*count, C, H, W)."""
    part = x[:, :, start : start + step * (count - 1) + 1 : step]
    n, c, d, h, w = part.shape
    return ops.reshape(ops.permute(part, (0, 2, 1, 3, 4)), (n * d, c, h, w))


def _unfold_depth(y: Tensor, n: int, d: int) -> Tensor:
    """(N*D, C, H, W) back to (N, C, D, H, W)."""
    _, c, h, w = y.shape
    return ops.permute(ops.reshape(y, (n, d, c, h, w)), (0, 2, 1, 3, 4))


def _conv3d_pads(
    padding: Any, kernel: Any, dilation: tuple[int, ...], stride: tuple[int, ...], where: str
) -> tuple[tuple[int, int], ...]:
    """(before, after) padding of depth, height and width from an int, a triple, 'valid' or 'same'
    (as Conv1d/2d read them: 'same' needs stride 1 and puts an odd extra row after the input)."""
    if isinstance(padding, str):
        _check_padding_string(padding, stride, where)
        if padding == "valid":
            return ((0, 0),) * 3
        totals = [d * (k - 1) for k, d in zip(kernel, dilation)]
        return tuple((t // 2, t - t // 2) for t in totals)
    return tuple((p, p) for p in _tuple(padding, 3, "padding", where, minimum=0))


def conv3d(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
) -> Tensor:
    """3-D cross-correlation (PyTorch's ``conv3d``); weight (C_out, C_in / groups, kd, kh, kw).

    One recorded op: vol2col and one GEMM per chunk of the batch, its gradients the same products
    transposed (see ``_vol_kernels``)."""
    where = "conv3d"
    x, unbatched = _batched(_as_tensor(input, where), 3, where)
    _check_floating(x, where)
    w = _as_tensor(weight, where)
    if w.ndim != 5:
        raise ShapeError(f"{where}: expected weight of shape (C_out, C_in / groups, kd, kh, kw), got {tuple(w.shape)}")
    if w.dtype != x.dtype:  # torch: a RuntimeError, which DTypeError is too
        raise DTypeError(f"{where}: input dtype {x.dtype} does not match weight dtype {w.dtype}")
    st = _tuple(stride, 3, "stride", where)
    dil = _tuple(dilation, 3, "dilation", where)
    groups = _positive(groups, "groups", where)
    c_out, c_per_group = w.shape[:2]
    kernel = tuple(w.shape[2:])
    c_in = x.shape[1]
    if c_out % groups:
        raise ShapeError(f"{where}: out_channels ({c_out}) must be divisible by groups ({groups})")
    if c_per_group * groups != c_in:
        raise ShapeError(
            f"{where}: input has {c_in} channels but the weight {tuple(w.shape)} with groups={groups} expects "
            f"{c_per_group * groups} (input shape {tuple(x.shape)})"
        )
    pads = _conv3d_pads(padding, kernel, dil, st, where)
    if any(lo != hi for lo, hi in pads):  # 'same' with an even dilated kernel: the extra row goes after
        x = ops.pad(x, tuple(v for pair in reversed(pads) for v in pair))
        pads = ((0, 0),) * 3
    pad = tuple(lo for lo, _ in pads)
    size = tuple((n + 2 * p - d * (k - 1) - 1) // s + 1 for n, p, d, k, s in zip(x.shape[2:], pad, dil, kernel, st))
    if min(size) < 1:
        padded = tuple(n + 2 * p for n, p in zip(x.shape[2:], pad))
        reach = tuple(d * (k - 1) + 1 for d, k in zip(dil, kernel))
        raise ShapeError(
            f"{where}: the (padded) input {padded} is smaller than the dilated kernel {reach} "
            f"(input shape {tuple(x.shape)}, weight shape {tuple(w.shape)})"
        )
    b = _checked_bias(bias, c_out, x, where)
    parents: tuple[Tensor, ...] = (x, w) if b is None else (x, w, b)
    geometry = (st, pad, dil, groups, size)
    out = conv3d_forward(x.array, w.array, None if bias is None else parents[2].array, geometry)
    # channel-major in memory, contiguous in PyTorch: noted, so that view and stride treat it so
    out = record_op(note_conv_layout(out), parents, _conv3d_vjp, geometry)
    return ops.squeeze(out, 0) if unbatched else out


def _pool3d(x: Tensor, kernel: Any, stride: Any, padding: Any, reduce: str, where: str) -> Tensor:
    x, unbatched = _batched(_as_tensor(x, where), 3, where)
    _check_floating(x, where)
    (kd, kh, kw), (sd, sh, sw), (pd, ph, pw), _ = _pool_args(kernel, stride, padding, 1, 3, where)
    if pd:
        fill = -np.inf if reduce == "max" else 0.0
        x = ops.pad(x, (0, 0, 0, 0, pd, pd), value=fill)
    n, depth = x.shape[0], x.shape[2]
    od = (depth - kd) // sd + 1
    if od < 1:
        raise ShapeError(f"{where}: the (padded) depth {depth} is smaller than the kernel depth {kd}")
    parts = []
    for a in range(kd):
        slices = _depth_slices(x, a, od, sd)
        if reduce == "max":
            parts.append(_max_pool2d_fn(slices, (kh, kw), (sh, sw), (ph, pw)))
        else:
            parts.append(avg_pool2d(slices, (kh, kw), (sh, sw), (ph, pw)))
    if reduce == "max":  # the first depth holding the maximum takes the gradient (torch's window order)
        pooled = first_max_last(ops.stack(parts, -1))
    else:
        pooled = ops.mean(ops.stack(parts, 0), 0)
    out = _unfold_depth(pooled, n, od)
    return ops.squeeze(out, 0) if unbatched else out


def max_pool3d(input: Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0, dilation: Any = 1,
               ceil_mode: bool = False, return_indices: bool = False) -> Any:  # fmt: skip
    """Largest value in each (kd, kh, kw) window; ``stride`` defaults to the kernel. ``return_indices``
    also returns each maximum's flat index into D*H*W (PyTorch's). With the compiled kernels, one
    recorded op over any of the options (see ``_vol_pooling``)."""
    if isinstance(input, Tensor) and input.array.dtype.kind != "f":
        return _integer_max_pool3d(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)
    tiled = _tiled_max_pool3d(input, kernel_size, stride, padding, dilation, return_indices)
    if tiled is not None:
        return tiled
    compiled = _vol_pooling.max_pool3d(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)
    if compiled is not None:
        return compiled
    if _tuple(dilation, 3, "dilation", "max_pool3d") != (1, 1, 1) or ceil_mode or return_indices:
        from .pooling_windows import max_pool3d_with_indices

        out, indices = max_pool3d_with_indices(input, kernel_size, stride, padding, dilation, ceil_mode)
        return (out, indices) if return_indices else out
    return _pool3d(input, kernel_size, stride, padding, "max", "max_pool3d")


#: The fewest elements per window for which max_pool3d over windows that tile the input makes each window
#: a row (``pooling._tiled_max_pool``: one permuted copy, one argmax per row) rather than run the compiled
#: window kernel, whose inner loop over a long window is slow; a global window (one per volume) needs no
#: copy and wins from 8 elements. Measured (one thread, ms, rows vs compiled, float32, forward / forward and
#: backward): (8, 16, 32, 32, 32) k=2 78.5 / 147 vs 48.4 / 64.2, k=4 29.2 / 66.3 vs 59.2 / 72.4, k=8
#: 16.4 / 42.8 vs 65.7 / 67.4; global 16 on (8, 32, 16, 16, 16) 0.11 / 0.41 vs 12.6 / 17.1, global 4 on
#: (64, 64, 4, 4, 4) 0.19 / 0.36 vs 1.06 / 1.22.
TILED_ROWS_MAX3D_MIN_ELEMENTS = 64
TILED_ROWS_MAX3D_GLOBAL_MIN_ELEMENTS = 8


def _tiled_max_pool3d(
    input: Any, kernel_size: Any, stride: Any, padding: Any, dilation: Any, return_indices: bool
) -> Any:
    """max_pool3d over long windows that tile the input exactly (stride = kernel, no padding or dilation,
    ceil_mode then changes nothing), as rows (see TILED_ROWS_MAX3D_MIN_ELEMENTS); None elsewhere."""
    if not isinstance(input, Tensor) or input.ndim not in (4, 5):
        return None
    where = "max_pool3d"
    x, unbatched = _batched(_as_tensor(input, where), 3, where)
    k, s, p, d = _pool_args(kernel_size, stride, padding, dilation, 3, where)
    least, global_least = TILED_ROWS_MAX3D_MIN_ELEMENTS, TILED_ROWS_MAX3D_GLOBAL_MIN_ELEMENTS
    if not _long_tiling_windows(x, k, s, p, d, least, global_least):
        return None
    out, indices = _tiled_max_pool(x, k, return_indices)
    if unbatched:
        out = ops.squeeze(out, 0)
        indices = None if indices is None else wrap_array(indices.array[0])
    return (out, indices) if return_indices else out


def _integer_max_pool3d(
    x: Tensor, kernel_size: Any, stride: Any, padding: Any, dilation: Any, ceil_mode: bool, return_indices: bool
) -> Any:
    """max_pool3d of an integer tensor (torch takes every integer dtype but bool, and keeps it): the
    winners are found on a float64 copy (exact for values below 2**53), the values read from the input."""
    _check_pooled_dtype(x, "max_pool3d", "all")
    as_float = wrap_array(x.array.astype(np.float64))
    _, indices = max_pool3d(as_float, kernel_size, stride, padding, dilation, ceil_mode, True)
    lead = x.shape[:-3]
    flat = x.array.reshape(*lead, -1)
    winners = indices.array.reshape(*lead, -1)
    ns = namespace_of(flat)
    out = wrap_array(ns.take_along_axis(flat, winners, axis=-1).reshape(indices.shape))
    return (out, indices) if return_indices else out


def avg_pool3d(input: Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0, ceil_mode: bool = False,
               count_include_pad: bool = True, divisor_override: int | None = None) -> Tensor:  # fmt: skip
    """Mean of each (kd, kh, kw) window (padding counted, PyTorch's default). ``count_include_pad=False``
    divides by the number of elements inside the input, ``divisor_override`` by that number instead;
    ``ceil_mode`` adds a last, partial window where PyTorch does (divided by its part inside the
    padded input).

    Example:
        >>> import downslope as ds
        >>> import downslope.nn.functional as F
        >>> F.avg_pool3d(ds.ones(1, 1, 3, 3, 3), 2, ceil_mode=True, count_include_pad=False).flatten().tolist()
        [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]
    """
    sizes = tuple(getattr(input, "shape", ())[-3:])
    kernel = _tuple(kernel_size, 3, "kernel_size", "avg_pool3d")
    if len(sizes) == 3 and any(size < kk for size, kk in zip(sizes, kernel)):  # PyTorch checks the unpadded input
        raise ShapeError(f"avg_pool3d: input image {sizes} smaller than kernel size {kernel}")
    if isinstance(input, Tensor) and input.array.dtype.kind != "f":
        _check_pooled_dtype(input, "avg_pool3d", "int64")
        x, unbatched = _batched(input, 3, "avg_pool3d")
        out = _integer_average(
            lambda t, o: avg_pool3d(t, kernel_size, stride, padding, ceil_mode, count_include_pad, o),
            x,
            divisor_override,
        )
        return out[0] if unbatched else out
    compiled = _vol_pooling.avg_pool3d(
        input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override
    )
    if compiled is not None:
        return compiled
    if ceil_mode or not count_include_pad or divisor_override is not None:
        return _avg_pool3d_general(input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)
    return _pool3d(input, kernel_size, stride, padding, "mean", "avg_pool3d")


def _avg_pool3d_general(
    input: Tensor, kernel_size: Any, stride: Any, padding: Any, ceil_mode: bool, count_include_pad: bool,
    divisor_override: Any,
) -> Tensor:  # fmt: skip
    """avg_pool3d with any of its options: window sums (2-D sum pooling of the depth slices, added over
    the depth taps) times PyTorch's divisor, a product of one count per dim."""
    where = "avg_pool3d"
    x, unbatched = _batched(_as_tensor(input, where), 3, where)
    _check_floating(x, where)
    k, s, p, _ = _pool_args(kernel_size, stride, padding, 1, 3, where)
    if divisor_override is not None and (
        isinstance(divisor_override, bool) or not isinstance(divisor_override, (int, np.integer))
    ):
        raise ArgumentTypeError(f"{where}: divisor_override must be an int, got {type(divisor_override).__name__}")
    if divisor_override is not None and divisor_override == 0:
        raise ArgumentError(f"{where}: divisor must be not zero")
    n, _, depth, h, w = x.shape
    geometry = [_pool_geometry(size, k[i], s[i], p[i], 1, ceil_mode, where) for i, size in enumerate((depth, h, w))]
    od, extra_d = geometry[0]
    if p[0] or extra_d:
        x = ops.pad(x, (0, 0, 0, 0, p[0], p[0] + extra_d))
    total: Tensor | None = None
    for a in range(k[0]):
        part = avg_pool2d(_depth_slices(x, a, od, s[0]), k[1:], s[1:], p[1:], ceil_mode, True, 1)
        total = part if total is None else total + part
    assert total is not None
    sums = _unfold_depth(total, n, od)
    xp = namespace_of(x.array)
    if divisor_override is not None:
        scale: Any = 1.0 / int(divisor_override)
    else:
        counts = [
            _avg_divisor(size, k[i], s[i], p[i], g[0], count_include_pad, xp)
            for i, (size, g) in enumerate(zip((depth, h, w), geometry))
        ]
        divisor = counts[0][:, None, None] * counts[1][None, :, None] * counts[2][None, None, :]
        scale = wrap_array((1.0 / divisor).astype(x.array.dtype))
    out = sums * scale
    return ops.squeeze(out, 0) if unbatched else out


def adaptive_avg_pool3d(input: Tensor, output_size: Any) -> Tensor:
    """Average pooling to a fixed (D, H, W) ``output_size`` (None keeps a size)."""
    where = "adaptive_avg_pool3d"
    x, unbatched = _batched(_as_tensor(input, where), 3, where)
    od, oh, ow = _adaptive_sizes((None,) * 3 if output_size is None else output_size, x.shape[2:], where)
    n, c, d, h, w = x.shape
    # the (H, W) plane of every depth slice in 2-D, then the depth as the width of a (D, 1) image
    plane = adaptive_avg_pool2d(ops.reshape(x, (n * c, d, h, w)), (oh, ow))
    column = ops.reshape(ops.permute(plane, (0, 2, 3, 1)), (n * c, oh * ow, 1, d))
    pooled = adaptive_avg_pool2d(column, (1, od))
    out = ops.permute(ops.reshape(pooled, (n, c, oh, ow, od)), (0, 1, 4, 2, 3))
    return ops.squeeze(out, 0) if unbatched else out


class Conv3d(_ConvLayer):
    """3-D convolution layer (see :func:`conv3d`), initialized as PyTorch's (kaiming_uniform(a=sqrt(5)))."""

    _spatial = 3

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: Any,
        stride: Any = 1,
        padding: Any = 0,
        dilation: Any = 1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        self._init_parameters(in_channels, out_channels, kernel_size, stride, dilation, groups)
        if isinstance(padding, str):
            _check_padding_string(padding, self.stride, name)
            self.padding: Any = padding
        else:
            self.padding = _tuple(padding, 3, "padding", name, minimum=0)
        self.padding_mode = _padding_mode(padding_mode, name)
        self._make_parameters(bias, dtype)

    def forward(self, input: Tensor) -> Tensor:
        # through _conv_forward, as torch's: a subclass overriding it (quantization-aware training) changes this
        return self._conv_forward(input, self.weight, self.bias)


class MaxPool3d(Module):
    """See :func:`max_pool3d`."""

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0, dilation: Any = 1,
                 return_indices: bool = False, ceil_mode: bool = False) -> None:  # fmt: skip
        super().__init__()
        # as given, the stride defaulting to the kernel size (torch's _MaxPoolNd)
        self.kernel_size, self.stride, self.padding = kernel_size, kernel_size if stride is None else stride, padding
        self.dilation, self.return_indices, self.ceil_mode = dilation, return_indices, ceil_mode

    def forward(self, input: Tensor) -> Any:
        return max_pool3d(input, self.kernel_size, self.stride, self.padding, self.dilation, self.ceil_mode,
                          self.return_indices)  # fmt: skip

    def extra_repr(self) -> str:
        stride = self.kernel_size if self.stride is None else self.stride  # a stride set to None after construction
        return (
            f"kernel_size={self.kernel_size}, stride={stride}, padding={self.padding}, "
            f"dilation={self.dilation}, ceil_mode={self.ceil_mode}"
        )


class AvgPool3d(Module):
    """See :func:`avg_pool3d`."""

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0, ceil_mode: bool = False,
                 count_include_pad: bool = True, divisor_override: int | None = None) -> None:  # fmt: skip
        super().__init__()
        # as given, the stride defaulting to the kernel size (torch's AvgPool3d)
        self.kernel_size, self.stride, self.padding = kernel_size, kernel_size if stride is None else stride, padding
        self.ceil_mode, self.count_include_pad, self.divisor_override = ceil_mode, count_include_pad, divisor_override

    def forward(self, input: Tensor) -> Tensor:
        return avg_pool3d(input, self.kernel_size, self.stride, self.padding, self.ceil_mode, self.count_include_pad,
                          self.divisor_override)  # fmt: skip

    def extra_repr(self) -> str:
        stride = self.kernel_size if self.stride is None else self.stride
        return f"kernel_size={self.kernel_size}, stride={stride}, padding={self.padding}"


class AdaptiveAvgPool3d(Module):
    """See :func:`adaptive_avg_pool3d`."""

    def __init__(self, output_size: Any) -> None:
        super().__init__()
        self.output_size = output_size

    def forward(self, input: Tensor) -> Tensor:
        return adaptive_avg_pool3d(input, self.output_size)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


def conv_transpose3d(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: Any = 1,
    padding: Any = 0,
    output_padding: Any = 0,
    groups: int = 1,
    dilation: Any = 1,
) -> Tensor:
    """3-D transposed convolution, as :func:`conv_transpose2d` (a convolution's input-gradient pass:
    no zeros inserted). Weight (C_in, C_out / groups, kd, kh, kw), bias (C_out,).

    One recorded op: one GEMM ``W.T @ x`` per chunk of the batch and a col2vol of its columns into
    the output (see ``_vol_kernels``).

    Example:
        >>> import downslope as ds
        >>> import downslope.nn.functional as F
        >>> F.conv_transpose3d(ds.ones(1, 1, 2, 2, 2), ds.ones(1, 1, 2, 2, 2), stride=2).shape
        downslope.Size([1, 1, 4, 4, 4])
    """
    where = "conv_transpose3d"
    x, unbatched = _batched(_as_tensor(input, where), 3, where)
    _check_floating(x, where)
    w = _as_tensor(weight, where)
    if w.ndim != 5:
        raise ShapeError(f"{where}: expected weight of shape (C_in, C_out / groups, kd, kh, kw), got {tuple(w.shape)}")
    if w.dtype != x.dtype:
        raise ArgumentTypeError(f"{where}: input dtype {x.dtype} does not match weight dtype {w.dtype}")
    s, p, op, d, groups = _transposed_args(stride, padding, output_padding, dilation, groups, 3, where)
    c_in, c_out_g, kd, kh, kw = w.shape
    n, c, depth, h, wd = x.shape
    if c != c_in or c_in % groups:
        raise ShapeError(
            f"{where}: input has {c} channels but the weight {tuple(w.shape)} expects {c_in} (divisible by groups={groups})"
        )
    out_size = tuple(
        (size - 1) * si - 2 * pi + di * (k - 1) + oi + 1
        for size, si, pi, di, k, oi in zip((depth, h, wd), s, p, d, (kd, kh, kw), op)
    )
    if min(out_size) < 1:  # torch returns an empty output (and zero gradients); below 0 is refused
        from .conv_transpose import zero_size_output

        return zero_size_output(
            lambda pads: conv_transpose3d(input, weight, bias, stride, pads, output_padding, groups, dilation),
            out_size,
            p,
            where,
            (depth, h, wd),
            tuple(w.shape),
        )
    b = _checked_bias(bias, c_out_g * groups, x, where)
    parents: tuple[Tensor, ...] = () if b is None else (b,)
    geometry = (s, p, d, groups, (depth, h, wd))  # the convolution's, from the output to x
    out = conv_transpose3d_forward(x.array, w.array, None if bias is None else parents[0].array, geometry, out_size)
    # channel-major in memory, contiguous in PyTorch: noted, so that view and stride treat it so
    out = record_op(note_conv_layout(out), (x, w, *parents), _conv_transpose3d_vjp, geometry)
    return ops.squeeze(out, 0) if unbatched else out


class ConvTranspose3d(_ConvTransposeNd):
    """3-D transposed convolution layer (see :func:`conv_transpose3d`), PyTorch's initialization
    (the constructor and parameters are the 1-D/2-D layers', with three spatial dims)."""

    _spatial = 3

    def forward(self, input: Tensor, output_size: Any = None) -> Tensor:
        """``output_size`` (optional) picks the output padding that gives that size (see PyTorch)."""
        output_padding = self._output_padding(input, output_size)
        return conv_transpose3d(
            input, self.weight, self.bias, self.stride, self.padding, output_padding, self.groups, self.dilation
        )
