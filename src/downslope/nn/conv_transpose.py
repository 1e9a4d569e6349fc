"""Transposed convolution (PyTorch's ``conv_transpose1d/2d`` and ``ConvTranspose1d/2d``).

A transposed convolution is the gradient of a convolution with respect to its input, and is
computed so, as PyTorch does: one fused op (:func:`_conv_transpose2d`) whose forward pass is a
convolution's input-gradient pass (a GEMM of the weight with the input, then a strided fold into
the output) and whose gradient rule is a convolution (for the input) and a convolution's weight
gradient (for the weight); see ``_conv_transpose_kernels``. No zeros are inserted between pixels.

The output size is ``(H - 1) * stride - 2 * padding + dilation * (k - 1) + output_padding + 1``.
The 1-D ops run the 2-D op on a height-1 image; ``conv_transpose3d`` (``volumetric``) runs it once on
the depth slices with the kernel's depth planes stacked as output channels, then folds over depth.

Example:
    >>> import downslope as ds
    >>> from downslope import nn
    >>> up = nn.ConvTranspose2d(4, 2, kernel_size=4, stride=2, padding=1)
    >>> up(ds.randn(1, 4, 5, 5)).shape
    downslope.Size([1, 2, 10, 10])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from .. import ops
from ..errors import ArgumentError, ArgumentTypeError, ShapeError
from ..tensor import Tensor, note_conv_layout, record_op
from ._conv_args import (
    _as_tensor,
    _batched,
    _check_floating,
    _checked_bias,
    _complex_conv,
    _transposed_args,
    _tuple,
    _zeros_padding_only,
)
from ._conv_transpose_kernels import _conv_transpose2d_vjp, conv_transpose2d_forward
from .convolution import _ConvLayer

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
    w = _as_tensor(weight, where)
    if w.ndim != 4:
        raise ShapeError(f"{where}: expected weight of shape (C_in, C_out / groups, kh, kw), got {tuple(w.shape)}")
    out = _conv_transpose2d(
        x, w, bias, *_transposed_args(stride, padding, output_padding, dilation, groups, 2, where), where
    )
    return ops.squeeze(out, 0) if unbatched else out


def _conv_transpose2d(
    x: Tensor,
    w: Tensor,
    bias: Tensor | None,
    stride: tuple[int, ...],
    padding: tuple[int, ...],
    output_padding: tuple[int, ...],
    dilation: tuple[int, ...],
    groups: int,
    where: str,
) -> Tensor:
    """Check a batched 2-D transposed convolution's tensors against its (read) arguments, then run
    the fused op."""
    if x.array.dtype.kind == "c" or w.array.dtype.kind == "c":  # complex: real transposed convolutions
        return _complex_conv(
            lambda xr, wr: _conv_transpose2d(xr, wr, None, stride, padding, output_padding, dilation, groups, where),
            x,
            w,
            bias,
            w.shape[1] * groups,
            where,
        )
    _check_floating(x, where)
    if w.dtype != x.dtype:
        raise ArgumentTypeError(f"{where}: input dtype {x.dtype} does not match weight dtype {w.dtype}")
    c_in, c_out_g, kh, kw = w.shape
    n, c, h, wd = x.shape
    if c != c_in or c_in % groups:
        raise ShapeError(
            f"{where}: input has {c} channels but the weight {tuple(w.shape)} expects {c_in} (divisible by groups={groups})"
        )
    out_hw = tuple(
        (size - 1) * s - 2 * p + d * (k - 1) + o + 1
        for size, s, p, d, k, o in zip((h, wd), stride, padding, dilation, (kh, kw), output_padding)
    )
    if min(out_hw) < 1:
        return zero_size_output(
            lambda pads: _conv_transpose2d(x, w, bias, stride, pads, output_padding, dilation, groups, where),
            out_hw,
            padding,
            where,
            (h, wd),
            tuple(w.shape),
        )
    b = _checked_bias(bias, c_out_g * groups, x, where)
    parents: tuple[Tensor, ...] = (x, w) if b is None else (x, w, b)
    # The geometry of the convolution whose input gradient this is: from the (OH, OW) output to x.
    # Its bottom/right padding is what its receptive fields need past the output (never below 0).
    (ph, pw), (sh, sw) = padding, stride
    pads = (ph, max(ph - sh * (output_padding[0] // sh), 0), pw, max(pw - sw * (output_padding[1] // sw), 0))
    geometry = (stride, pads, dilation, groups, (h, wd))
    out = conv_transpose2d_forward(
        x.array, w.array, None if bias is None else parents[2].array, geometry, (out_hw[0], out_hw[1])
    )
    # channel-major in memory, contiguous in PyTorch: noted, so that view and stride treat it so
    return record_op(note_conv_layout(out), parents, _conv_transpose2d_vjp, (geometry, out_hw))


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
        raise ShapeError(f"{where}: expected weight of shape (C_in, C_out / groups, k), got {tuple(w.shape)}")
    s, p, op, d, _ = _transposed_args(stride, padding, output_padding, dilation, groups, 1, where)
    # the shape checks in the 1-D terms the caller used (the lift below would report a 2-D op and shapes)
    if x.shape[1] != w.shape[0] or w.shape[0] % groups:
        raise ShapeError(
            f"{where}: input has {x.shape[1]} channels but the weight {tuple(w.shape)} expects {w.shape[0]} "
            f"(divisible by groups={groups})"
        )
    length = (x.shape[2] - 1) * s[0] - 2 * p[0] + d[0] * (w.shape[2] - 1) + op[0] + 1
    if length < 0:  # 0 is an empty output, as torch's
        raise ShapeError(
            f"{where}: padding {p[0]} leaves no output (length {length}, below 0) for input length "
            f"{x.shape[2]}, weight {tuple(w.shape)}"
        )
    out = _conv_transpose2d(
        ops.unsqueeze(x, 2), ops.unsqueeze(w, 2), bias, (1,) + s, (0,) + p, (0,) + op, (1,) + d, groups, where
    )
    out = ops.squeeze(out, 2)
    return ops.squeeze(out, 0) if unbatched else out


def zero_size_output(
    run: Callable[[tuple[int, ...]], Tensor],
    sizes: Sequence[int],
    padding: Sequence[int],
    where: str,
    input_sizes: tuple[int, ...],
    weight_shape: tuple[int, ...],
) -> Tensor:
    """The empty output of a transposed convolution whose padding crops a spatial dim to size 0
    (``sizes``: the output's spatial sizes, one of them below 1), as PyTorch returns it: ``run`` (the op
    at the given padding) without the padding of those dims, cropped to nothing there. Being an op on
    the inputs, its gradients (zeros) reach the input, weight and bias as torch's do. A size below 0 is
    refused, naming the op ``where``, the input's spatial sizes and the weight's shape."""
    if min(sizes) < 0:
        raise ShapeError(
            f"{where}: padding {tuple(padding)} leaves no output (size {tuple(sizes)}, below 0) for input "
            f"{input_sizes}, weight {weight_shape}"
        )
    unpadded = tuple(0 if size == 0 else pad for size, pad in zip(sizes, padding))
    crop = tuple(slice(pad, pad) if size == 0 else slice(None) for size, pad in zip(sizes, padding))
    return run(unpadded)[(Ellipsis,) + crop]


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
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        name, n = type(self).__name__, self._spatial
        _zeros_padding_only(padding_mode, name)
        self._init_parameters(in_channels, out_channels, kernel_size, stride, dilation, groups)
        self.padding = _tuple(padding, n, "padding", name, minimum=0)
        self.output_padding = _tuple(output_padding, n, "output_padding", name, minimum=0)
        self.padding_mode = "zeros"  # the only mode torch's transposed convolutions take
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
                f"{name}: output_size must have {n} or {n + lead} elements for input of shape {tuple(x.shape)}, "
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
                f"{largest} (for an input of spatial size {tuple(x.shape[lead:])})"
            )
        return tuple(size - lo for size, lo in zip(sizes, smallest))


class ConvTranspose2d(_ConvTransposeNd):
    """2-D transposed convolution layer (see :func:`conv_transpose2d`): upsamples by ``stride``.

    weight: ``(C_in, C_out / groups, kh, kw)``, bias ``(C_out,)``, initialized as in PyTorch.

    Example:
        >>> import downslope as ds
        >>> ds.nn.ConvTranspose2d(8, 3, 3, stride=2, padding=1, output_padding=1)(ds.randn(2, 8, 4, 4)).shape
        downslope.Size([2, 3, 8, 8])
    """

    def forward(self, input: Tensor, output_size: Any = None) -> Tensor:
        """``output_size`` (optional) picks the output padding that gives that size (see PyTorch)."""
        output_padding = self._output_padding(input, output_size)
        return conv_transpose2d(
            input, self.weight, self.bias, self.stride, self.padding, output_padding, self.groups, self.dilation
        )


class ConvTranspose1d(_ConvTransposeNd):
    """1-D transposed convolution layer (see :func:`conv_transpose1d`).

    Example:
        >>> import downslope as ds
        >>> ds.nn.ConvTranspose1d(4, 2, 3, stride=2)(ds.randn(1, 4, 5)).shape
        downslope.Size([1, 2, 11])
    """

    _spatial = 1

    def forward(self, input: Tensor, output_size: Any = None) -> Tensor:
        """``output_size`` (optional) picks the output padding that gives that size (see PyTorch)."""
        output_padding = self._output_padding(input, output_size)
        return conv_transpose1d(
            input, self.weight, self.bias, self.stride, self.padding, output_padding, self.groups, self.dilation
        )
