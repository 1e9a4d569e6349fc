"""Transposed convolution (PyTorch's ``conv_transpose1d/2d`` and ``ConvTranspose1d/2d``).

A transposed convolution is the gradient of a convolution with respect to its input. It is built
here from ops that already have gradients, so it needs no rule of its own:

1. spread the input apart by inserting ``stride - 1`` zeros between neighbouring pixels
   (a reshape, a zero pad of the new unit axes, a reshape back);
2. pad every side by ``dilation * (kernel - 1) - padding`` (cropping where that is negative),
   plus ``output_padding`` at the bottom and right;
3. run an ordinary stride-1 :func:`conv2d` with the kernel flipped in both spatial dims and its
   in/out channel axes swapped (per group).

The output size is ``(H - 1) * stride - 2 * padding + dilation * (k - 1) + output_padding + 1``.
The zero insertion costs ``stride**2`` more multiply-adds than a scatter-based kernel would; it keeps
the op short and its gradient exact.

Example:
    >>> import downslope as ds
    >>> from downslope import nn
    >>> up = nn.ConvTranspose2d(4, 2, kernel_size=4, stride=2, padding=1)
    >>> up(ds.randn(1, 4, 5, 5)).shape
    (1, 2, 10, 10)
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import backend, ops
from ..errors import ArgumentError, ShapeError
from ..tensor import Tensor
from . import init
from .convolution import _as_tensor, _batched, _check_floating, _conv2d, _positive, _tuple
from .module import Module, Parameter

__all__ = ["conv_transpose1d", "conv_transpose2d", "ConvTranspose1d", "ConvTranspose2d"]


def conv_transpose2d(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: Any = 1,
    padding: Any = 0,
    output_padding: Any = 0,
    groups: int = 1,
    dilation: Any = 1,
) -> Tensor:
    """2-D transposed convolution ("deconvolution"), PyTorch's argument order.

    Shapes: input ``(N, C_in, H, W)`` or ``(C_in, H, W)``; weight ``(C_in, C_out / groups, kh, kw)``;
    bias ``(C_out,)``.

    Example:
        >>> import downslope as ds
        >>> import downslope.nn.functional as F
        >>> F.conv_transpose2d(ds.ones(1, 1, 2, 2), ds.ones(1, 1, 2, 2), stride=2)[0, 0]
        tensor([[1., 1., 1., 1.],
                [1., 1., 1., 1.],
                [1., 1., 1., 1.],
                [1., 1., 1., 1.]])
    """
    where = "conv_transpose2d"
    x = _as_tensor(input, where)
    w = _as_tensor(weight, where)
    x, unbatched = _batched(x, 2, where)
    _check_floating(x, where)
    if w.ndim != 4:
        raise ShapeError(f"{where}: expected weight of shape (C_in, C_out / groups, kh, kw), got {w.shape}")
    sh, sw = _tuple(stride, 2, "stride", where)
    ph, pw = _tuple(padding, 2, "padding", where, minimum=0)
    oph, opw = _tuple(output_padding, 2, "output_padding", where, minimum=0)
    dh, dw = _tuple(dilation, 2, "dilation", where)
    if isinstance(groups, bool) or not isinstance(groups, (int, np.integer)) or groups < 1:
        raise ArgumentError(f"{where}: groups must be a positive int, got {groups!r}")
    if oph >= max(sh, dh) or opw >= max(sw, dw):
        raise ArgumentError(
            f"{where}: output_padding {(oph, opw)} must be smaller than stride {(sh, sw)} or dilation {(dh, dw)}"
        )
    c_in, c_out_g, kh, kw = w.shape
    n, c, h, wd = x.shape
    if c != c_in or c_in % groups:
        raise ShapeError(
            f"{where}: input has {c} channels but the weight {w.shape} expects {c_in} (divisible by groups={groups})"
        )
    # 1. zero insertion between pixels
    if sh > 1 or sw > 1:
        spread = ops.pad(ops.reshape(x, (n, c, h, 1, wd, 1)), (0, sw - 1, 0, 0, 0, sh - 1))
        x = ops.reshape(spread, (n, c, h * sh, wd * sw))[:, :, : (h - 1) * sh + 1, : (wd - 1) * sw + 1]
    # 2. full padding, less the convolution's padding (a crop where negative)
    sides = [dh * (kh - 1) - ph, dh * (kh - 1) - ph + oph, dw * (kw - 1) - pw, dw * (kw - 1) - pw + opw]
    if any(s < 0 for s in sides):
        top, bottom, left, right = (max(-s, 0) for s in sides)
        x = x[:, :, top : x.shape[2] - bottom, left : x.shape[3] - right]
    if any(s > 0 for s in sides):
        top, bottom, left, right = (max(s, 0) for s in sides)
        x = ops.pad(x, (left, right, top, bottom))
    # 3. a stride-1 convolution with the flipped kernel, in/out channels swapped within each group
    wt = ops.permute(ops.reshape(w, (groups, c_in // groups, c_out_g, kh, kw)), (0, 2, 1, 3, 4))
    wt = ops.reshape(wt, (groups * c_out_g, c_in // groups, kh, kw))[:, :, ::-1, ::-1]
    if x.shape[2] < dh * (kh - 1) + 1 or x.shape[3] < dw * (kw - 1) + 1:
        raise ShapeError(f"{where}: padding {(ph, pw)} leaves no output for input {input.shape}, weight {w.shape}")
    out = _conv2d(x, wt, bias, 1, 0, (dh, dw), groups, where)
    return ops.squeeze(out, 0) if unbatched else out


def conv_transpose1d(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: Any = 1,
    padding: Any = 0,
    output_padding: Any = 0,
    groups: int = 1,
    dilation: Any = 1,
) -> Tensor:
    """1-D transposed convolution: :func:`conv_transpose2d` on a height-1 image.

    Shapes: input ``(N, C_in, L)`` or ``(C_in, L)``; weight ``(C_in, C_out / groups, k)``.

    Example:
        >>> import downslope as ds
        >>> import downslope.nn.functional as F
        >>> F.conv_transpose1d(ds.tensor([[[1.0, 2.0]]]), ds.tensor([[[1.0, 1.0]]]))
        tensor([[[1., 3., 2.]]])
    """
    where = "conv_transpose1d"
    x = _as_tensor(input, where)
    w = _as_tensor(weight, where)
    x, unbatched = _batched(x, 1, where)
    if w.ndim != 3:
        raise ShapeError(f"{where}: expected weight of shape (C_in, C_out / groups, k), got {w.shape}")
    (s,) = _tuple(stride, 1, "stride", where)
    (p,) = _tuple(padding, 1, "padding", where, minimum=0)
    (op,) = _tuple(output_padding, 1, "output_padding", where, minimum=0)
    (d,) = _tuple(dilation, 1, "dilation", where)
    out = conv_transpose2d(ops.unsqueeze(x, 2), ops.unsqueeze(w, 2), bias, (1, s), (0, p), (0, op), groups, (1, d))
    out = ops.squeeze(out, 2)
    return ops.squeeze(out, 0) if unbatched else out


class _ConvTransposeNd(Module):
    _spatial = 2

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: Any,
        stride: Any = 1,
        padding: Any = 0,
        output_padding: Any = 0,
        groups: int = 1,
        bias: bool = True,
        dilation: Any = 1,
        padding_mode: str = "zeros",
        dtype: Any = None,
    ) -> None:
        super().__init__()
        name, n = type(self).__name__, self._spatial
        if padding_mode != "zeros":
            raise ArgumentError(f"{name}: only padding_mode='zeros' is supported (as in PyTorch), got {padding_mode!r}")
        self.in_channels = _positive(in_channels, "in_channels", name)
        self.out_channels = _positive(out_channels, "out_channels", name)
        self.groups = _positive(groups, "groups", name)
        if self.in_channels % self.groups or self.out_channels % self.groups:
            raise ArgumentError(f"{name}: in_channels and out_channels must both be divisible by groups ({groups})")
        self.kernel_size = _tuple(kernel_size, n, "kernel_size", name)
        self.stride = _tuple(stride, n, "stride", name)
        self.padding = _tuple(padding, n, "padding", name, minimum=0)
        self.output_padding = _tuple(output_padding, n, "output_padding", name, minimum=0)
        self.dilation = _tuple(dilation, n, "dilation", name)
        dt = backend.get_default_dtype() if dtype is None else backend.as_dtype(dtype)
        shape = (self.in_channels, self.out_channels // self.groups) + self.kernel_size
        self.weight = Parameter(np.empty(shape, dtype=dt), dtype=dt)
        if bias:
            self.bias: Parameter | None = Parameter(np.empty((self.out_channels,), dtype=dt), dtype=dt)
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """PyTorch's default: kaiming_uniform(a=sqrt(5)) on the weight, whose fan_in is
        out_channels / groups * prod(kernel_size); bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1.0 / math.sqrt(self.weight.shape[1] * math.prod(self.kernel_size))
            init.uniform_(self.bias, -bound, bound)

    def extra_repr(self) -> str:
        text = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if any(self.padding):
            text += f", padding={self.padding}"
        if any(self.output_padding):
            text += f", output_padding={self.output_padding}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        if self.bias is None:
            text += ", bias=False"
        return text


class ConvTranspose2d(_ConvTransposeNd):
    """2-D transposed convolution layer (see :func:`conv_transpose2d`): upsamples by ``stride``.

    weight: ``(C_in, C_out / groups, kh, kw)``, bias ``(C_out,)``, initialized as in PyTorch.

    Example:
        >>> import downslope as ds
        >>> ds.nn.ConvTranspose2d(8, 3, 3, stride=2, padding=1, output_padding=1)(ds.randn(2, 8, 4, 4)).shape
        (2, 3, 8, 8)
    """

    def forward(self, x: Tensor) -> Tensor:
        return conv_transpose2d(
            x, self.weight, self.bias, self.stride, self.padding, self.output_padding, self.groups, self.dilation
        )


class ConvTranspose1d(_ConvTransposeNd):
    """1-D transposed convolution layer (see :func:`conv_transpose1d`).

    Example:
        >>> import downslope as ds
        >>> ds.nn.ConvTranspose1d(4, 2, 3, stride=2)(ds.randn(1, 4, 5)).shape
        (1, 2, 11)
    """

    _spatial = 1

    def forward(self, x: Tensor) -> Tensor:
        return conv_transpose1d(
            x, self.weight, self.bias, self.stride, self.padding, self.output_padding, self.groups, self.dilation
        )
