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

from typing import Any

from .. import ops
from ..errors import ArgumentError, ArgumentTypeError, ShapeError
from ..tensor import Tensor
from ._conv_args import _as_tensor, _batched, _check_floating, _transposed_args, _tuple, _zeros_padding_only
from .convolution import _conv2d, _ConvLayer

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
    x, unbatched = _batched(_as_tensor(input, where), 2, where)
    x, wt, dilation, groups = _as_direct_conv(
        x, _as_tensor(weight, where), stride, padding, output_padding, dilation, groups, where
    )
    out = _conv2d(x, wt, bias, 1, 0, dilation, groups, where)
    return ops.squeeze(out, 0) if unbatched else out


def _as_direct_conv(
    x: Tensor, w: Tensor, stride: Any, padding: Any, output_padding: Any, dilation: Any, groups: Any, where: str
) -> tuple[Tensor, Tensor, tuple[int, ...], int]:
    """Steps 1-3 of the module docstring for a batched input with any number of spatial dims:
    (the spread and padded input, the flipped and regrouped weight, the dilation, groups); a
    stride-1 unpadded convolution of the two is the transposed convolution."""
    n_spatial = x.ndim - 2
    _check_floating(x, where)
    if w.ndim != n_spatial + 2:
        kernel = ", ".join("k" + axis for axis in "dhw"[3 - n_spatial :])
        raise ShapeError(f"{where}: expected weight of shape (C_in, C_out / groups, {kernel}), got {w.shape}")
    s, p, op, d, groups = _transposed_args(stride, padding, output_padding, dilation, groups, n_spatial, where)
    c_in, c_out_g, *k = w.shape
    n, c, *size = x.shape
    if c != c_in or c_in % groups:
        raise ShapeError(
            f"{where}: input has {c} channels but the weight {w.shape} expects {c_in} (divisible by groups={groups})"
        )
    # 1. zero insertion between pixels: a unit axis after each spatial axis, padded to the stride
    if any(si > 1 for si in s):
        spread = ops.reshape(x, (n, c, *[v for length in size for v in (length, 1)]))
        widths: list[int] = []
        for si in reversed(s):
            widths += [0, si - 1, 0, 0]
        spread = ops.pad(spread, tuple(widths[:-2]))
        x = ops.reshape(spread, (n, c, *[length * si for length, si in zip(size, s)]))
        x = x[(slice(None), slice(None), *[slice(None, (length - 1) * si + 1) for length, si in zip(size, s)])]
    # 2. full padding, less the convolution's padding (a crop where negative)
    before = [di * (ki - 1) - pi for di, ki, pi in zip(d, k, p)]
    after = [b + o for b, o in zip(before, op)]
    if any(v < 0 for v in before + after):
        crop = [slice(max(-b, 0), x.shape[2 + i] - max(-a, 0)) for i, (b, a) in enumerate(zip(before, after))]
        x = x[(slice(None), slice(None), *crop)]
    if any(v > 0 for v in before + after):
        pads: list[int] = []
        for b, a in reversed(list(zip(before, after))):
            pads += [max(b, 0), max(a, 0)]
        x = ops.pad(x, tuple(pads))
    if any(length < di * (ki - 1) + 1 for length, di, ki in zip(x.shape[2:], d, k)):
        raise ShapeError(f"{where}: padding {p} leaves no output for input {tuple(size)}, weight {w.shape}")
    # 3. the flipped kernel, in/out channels swapped within each group
    wt = ops.permute(ops.reshape(w, (groups, c_in // groups, c_out_g, *k)), (0, 2, 1, *range(3, 3 + n_spatial)))
    wt = ops.reshape(wt, (groups * c_out_g, c_in // groups, *k))
    wt = wt[(slice(None), slice(None), *[slice(None, None, -1)] * n_spatial)]
    return x, wt, d, groups


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
    s, p, op, d, _ = _transposed_args(stride, padding, output_padding, dilation, groups, 1, where)
    out = conv_transpose2d(
        ops.unsqueeze(x, 2), ops.unsqueeze(w, 2), bias, (1,) + s, (0,) + p, (0,) + op, groups, (1,) + d
    )
    out = ops.squeeze(out, 2)
    return ops.squeeze(out, 0) if unbatched else out


class _ConvTransposeNd(_ConvLayer):
    """Shared by ConvTranspose1d/2d/3d: PyTorch's arguments (zero padding only)."""

    _spatial = 2
    _transposed = True

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
        _zeros_padding_only(padding_mode, name)
        self._init_parameters(in_channels, out_channels, kernel_size, stride, dilation, groups)
        self.padding = _tuple(padding, n, "padding", name, minimum=0)
        self.output_padding = _tuple(output_padding, n, "output_padding", name, minimum=0)
        self._make_parameters(bias, dtype)

    def _output_padding(self, x: Any, output_size: Any) -> tuple[int, ...]:
        """``self.output_padding``, or, given ``output_size`` (the spatial sizes, optionally led by
        the batch and channel sizes, as PyTorch accepts), the output padding that reaches it.

        Several output sizes share one input size when the stride is above 1; the smallest is
        (in - 1) * stride - 2 * padding + dilation * (kernel - 1) + 1, and the extra rows (up to
        stride - 1) are the output padding (PyTorch's ``_output_padding``).
        """
        if output_size is None:
            return self.output_padding
        name, n = type(self).__name__, self._spatial
        if not isinstance(x, Tensor):
            raise ArgumentTypeError(f"{name}: expected a Tensor input, got {type(x).__name__}")
        sizes = tuple(int(s) for s in output_size)  # host: sizes given by the user (ints or a torch-style Size)
        lead = 2 if x.ndim == n + 2 else 1
        if len(sizes) == lead + n:
            sizes = sizes[lead:]
        if len(sizes) != n:
            raise ArgumentError(
                f"{name}: output_size must have {n} or {n + lead} elements for input of shape {x.shape}, "
                f"got {tuple(output_size)}"
            )
        smallest = tuple(
            (x.shape[lead + d] - 1) * self.stride[d]
            - 2 * self.padding[d]
            + self.dilation[d] * (self.kernel_size[d] - 1)
            + 1
            for d in range(n)
        )
        largest = tuple(m + s - 1 for m, s in zip(smallest, self.stride))
        if any(not lo <= size <= hi for size, lo, hi in zip(sizes, smallest, largest)):
            raise ArgumentError(
                f"{name}: requested an output size of {sizes}, but valid sizes range from {smallest} to "
                f"{largest} (for an input of spatial size {x.shape[lead:]})"
            )
        return tuple(size - lo for size, lo in zip(sizes, smallest))

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

    def forward(self, x: Tensor, output_size: Any = None) -> Tensor:
        """``output_size`` (optional) picks the output padding that gives that size (see PyTorch)."""
        output_padding = self._output_padding(x, output_size)
        return conv_transpose2d(
            x, self.weight, self.bias, self.stride, self.padding, output_padding, self.groups, self.dilation
        )


class ConvTranspose1d(_ConvTransposeNd):
    """1-D transposed convolution layer (see :func:`conv_transpose1d`).

    Example:
        >>> import downslope as ds
        >>> ds.nn.ConvTranspose1d(4, 2, 3, stride=2)(ds.randn(1, 4, 5)).shape
        (1, 2, 11)
    """

    _spatial = 1

    def forward(self, x: Tensor, output_size: Any = None) -> Tensor:
        """``output_size`` (optional) picks the output padding that gives that size (see PyTorch)."""
        output_padding = self._output_padding(x, output_size)
        return conv_transpose1d(
            x, self.weight, self.bias, self.stride, self.padding, output_padding, self.groups, self.dilation
        )
