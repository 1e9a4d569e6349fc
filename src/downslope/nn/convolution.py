"""Convolution over 1-D and 2-D signals (``conv1d``/``conv2d``, ``Conv1d``/``Conv2d``), PyTorch's
names, arguments and shapes.

Shapes follow PyTorch: 2-D ops take ``(N, C, H, W)`` (or unbatched ``(C, H, W)``), 1-D ops take
``(N, C, L)`` (or ``(C, L)``). The 1-D ops are the 2-D ops on a height-1 image.

The convolution is one fused op with its own VJP (the composite of indexing and matmul ops would
materialise one gradient array per kernel offset); how it is computed (im2col, one GEMM per pass,
GEMM-then-fold, channel-major output) is told in ``_conv_kernels``. Arguments are read by the
helpers of ``_conv_args``, shared with the transposed and 3-D convolutions, and ``_ConvLayer``
holds the parameters and PyTorch's initialization of every convolution layer.

Pooling lives in ``pooling``; its names are re-exported here, so ``downslope.nn.convolution.X``
keeps working for everything this module used to define.

Example:
    >>> import downslope as ds
    >>> ds.nn.Conv2d(1, 4, kernel_size=3, padding=1)(ds.randn(2, 1, 8, 8)).shape
    downslope.Size([2, 4, 8, 8])
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import backend, ops
from ..errors import ArgumentError, ArgumentTypeError, DTypeError, ShapeError, StateError
from ..tensor import Tensor, note_conv_layout, record_op
from . import init
from ._conv_args import _PADDING_MODES as _PADDING_MODES
from ._conv_args import IntOr2 as IntOr2
from ._conv_args import Padding2 as Padding2
from ._conv_args import _as_tensor as _as_tensor
from ._conv_args import _batched as _batched
from ._conv_args import _channels, _check_padding_string, _checked_bias, _complex_conv, _padding_mode
from ._conv_args import _check_floating as _check_floating
from ._conv_args import _conv_pads as _conv_pads
from ._conv_args import _pool_args as _pool_args
from ._conv_args import _positive as _positive
from ._conv_args import _tuple as _tuple
from ._conv_kernels import _conv2d_vjp, conv2d_forward
from ._small_conv1d import small_conv1d
from .module import Module, Parameter
from .pooling import AdaptiveAvgPool1d as AdaptiveAvgPool1d
from .pooling import AdaptiveAvgPool2d as AdaptiveAvgPool2d
from .pooling import AvgPool1d as AvgPool1d
from .pooling import AvgPool2d as AvgPool2d
from .pooling import MaxPool1d as MaxPool1d
from .pooling import MaxPool2d as MaxPool2d
from .pooling import _adaptive_sizes as _adaptive_sizes
from .pooling import adaptive_avg_pool1d as adaptive_avg_pool1d
from .pooling import adaptive_avg_pool2d as adaptive_avg_pool2d
from .pooling import avg_pool1d as avg_pool1d
from .pooling import avg_pool2d as avg_pool2d
from .pooling import max_pool1d as max_pool1d
from .pooling import max_pool2d as max_pool2d

__all__ = [
    "conv1d",
    "conv_tbc",
    "conv2d",
    "max_pool1d",
    "max_pool2d",
    "avg_pool1d",
    "avg_pool2d",
    "adaptive_avg_pool1d",
    "adaptive_avg_pool2d",
    "Conv1d",
    "Conv2d",
    "MaxPool1d",
    "MaxPool2d",
    "AvgPool1d",
    "AvgPool2d",
    "AdaptiveAvgPool1d",
    "AdaptiveAvgPool2d",
]


# ---------------------------------------------------------------------- convolution
def conv2d(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: IntOr2 = 1,
    padding: Padding2 = 0,
    dilation: IntOr2 = 1,
    groups: int = 1,
) -> Tensor:
    """2-D cross-correlation (PyTorch's ``conv2d``).

    Shapes: input ``(N, C_in, H, W)`` or ``(C_in, H, W)``; weight ``(C_out, C_in / groups, kh, kw)``;
    bias ``(C_out,)``; output ``(N, C_out, OH, OW)`` with
    ``OH = (H + pad_top + pad_bottom - dilation * (kh - 1) - 1) // stride + 1``.

    Example:
        >>> import downslope as ds
        >>> from downslope.nn.functional import conv2d
        >>> x = ds.ones(1, 1, 4, 4)
        >>> w = ds.ones(2, 1, 3, 3)
        >>> conv2d(x, w, padding=1)[0, 0]
        tensor([[4., 6., 6., 4.],
                [6., 9., 9., 6.],
                [6., 9., 9., 6.],
                [4., 6., 6., 4.]])
    """
    where = "conv2d"
    x = _as_tensor(input, where)
    w = _as_tensor(weight, where)
    x, unbatched = _batched(x, 2, where)
    out = _conv2d(x, w, bias, stride, padding, dilation, groups, where)
    return ops.squeeze(out, 0) if unbatched else out


def conv1d(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: IntOr2 = 1,
    padding: Padding2 = 0,
    dilation: IntOr2 = 1,
    groups: int = 1,
) -> Tensor:
    """1-D cross-correlation (PyTorch's ``conv1d``), computed as a 2-D one on a height-1 image.

    Shapes: input ``(N, C_in, L)`` or ``(C_in, L)``; weight ``(C_out, C_in / groups, k)``; bias
    ``(C_out,)``; output ``(N, C_out, L_out)``.

    Example:
        >>> import downslope as ds
        >>> from downslope.nn.functional import conv1d
        >>> conv1d(ds.tensor([[[1.0, 2.0, 3.0, 4.0]]]), ds.tensor([[[1.0, -1.0]]]))
        tensor([[[-1., -1., -1.]]])
    """
    where = "conv1d"
    x = _as_tensor(input, where)
    w = _as_tensor(weight, where)
    x, unbatched = _batched(x, 1, where)
    if w.ndim != 3:
        raise ShapeError(f"{where}: expected weight of shape (C_out, C_in / groups, k), got {tuple(w.shape)}")
    (s,) = _tuple(stride, 1, "stride", where)
    (d,) = _tuple(dilation, 1, "dilation", where)
    p: Any = padding if isinstance(padding, str) else (0, _tuple(padding, 1, "padding", where, minimum=0)[0])
    small = small_conv1d(x, w, bias, p, s, d, groups)  # a short signal and a few taps: a direct product
    if small is not None:
        return ops.squeeze(small, 0) if unbatched else small
    out = _conv2d(ops.unsqueeze(x, 2), ops.unsqueeze(w, 2), bias, (1, s), p, (1, d), groups, where, one_d=True)
    out = ops.squeeze(out, 2)
    return ops.squeeze(out, 0) if unbatched else out


def conv_tbc(input: Tensor, weight: Tensor, bias: Tensor, pad: int = 0) -> Tensor:
    """1-D convolution of a time-major sequence (PyTorch's ``conv_tbc``): input ``(T, B, C_in)``,
    weight ``(k, C_in, C_out)``, bias ``(C_out,)``, ``pad`` zeros at both ends of the time axis;
    output ``(T + 2 pad - k + 1, B, C_out)``.

    Example:
        >>> import downslope as ds
        >>> from downslope.nn.functional import conv_tbc
        >>> conv_tbc(ds.ones(4, 1, 1), ds.ones(2, 1, 1), ds.zeros(1)).flatten().tolist()
        [2.0, 2.0, 2.0]
    """
    where = "conv_tbc"
    x = _as_tensor(input, where)
    w = _as_tensor(weight, where)
    b = _as_tensor(bias, where)
    if x.ndim != 3 or w.ndim != 3 or b.ndim != 1:
        raise ShapeError(
            f"{where}: expected input (T, B, C_in), weight (k, C_in, C_out) and bias (C_out,), got shapes "
            f"{tuple(x.shape)}, {tuple(w.shape)} and {tuple(b.shape)}"
        )
    if x.shape[2] != w.shape[1] or b.shape[0] != w.shape[2]:
        raise ShapeError(
            f"{where}: input channels {x.shape[2]} and bias size {b.shape[0]} must match the weight's {w.shape[1]} "
            f"input and {w.shape[2]} output channels (input {tuple(x.shape)}, weight {tuple(w.shape)}, bias {tuple(b.shape)})"
        )
    if isinstance(pad, bool) or not isinstance(pad, (int, np.integer)) or pad < 0:
        raise ArgumentError(f"{where}: pad must be a non-negative int, got {pad!r}")
    if x.shape[0] + 2 * int(pad) < w.shape[0]:
        raise ShapeError(
            f"{where}: the padded input length {x.shape[0] + 2 * int(pad)} is smaller than the kernel {w.shape[0]}"
        )
    # as conv1d on (B, C_in, T) with the weight (C_out, C_in, k), and back to time-major
    out = conv1d(ops.permute(x, (1, 2, 0)), ops.permute(w, (2, 1, 0)), b, padding=int(pad))
    return ops.permute(out, (2, 0, 1))


def _conv2d(
    x: Tensor,
    w: Tensor,
    bias: Tensor | None,
    stride: Any,
    padding: Any,
    dilation: Any,
    groups: int,
    where: str,
    one_d: bool = False,
) -> Tensor:
    """Validate the arguments of a batched 2-D convolution, then run the fused op. ``one_d``: conv1d's
    height-1 images, whose errors name the caller's own 3-D shapes."""
    if x.array.dtype.kind == "c" or w.array.dtype.kind == "c":  # complex: real convolutions of the parts
        return _complex_conv(
            lambda xr, wr: _conv2d(xr, wr, None, stride, padding, dilation, groups, where, one_d),
            x,
            w,
            bias,
            w.shape[0],
            where,
        )
    _check_floating(x, where)
    if w.ndim != 4:
        raise ShapeError(f"{where}: expected weight of shape (C_out, C_in / groups, kh, kw), got {tuple(w.shape)}")
    if w.dtype != x.dtype:  # torch: a RuntimeError, which DTypeError is too
        raise DTypeError(f"{where}: input dtype {x.dtype} does not match weight dtype {w.dtype}")
    st = _tuple(stride, 2, "stride", where)
    dil = _tuple(dilation, 2, "dilation", where)
    groups = _positive(groups, "groups", where)
    c_out, c_per_group, kh, kw = w.shape
    n, c_in, h, wd = x.shape
    x_shape = (n, c_in, wd) if one_d else x.shape
    w_shape = (c_out, c_per_group, kw) if one_d else w.shape
    if c_out % groups:  # torch: a RuntimeError (the weight's shape), which ShapeError is too
        raise ShapeError(f"{where}: out_channels ({c_out}) must be divisible by groups ({groups})")
    if c_per_group * groups != c_in:
        raise ShapeError(
            f"{where}: input has {c_in} channels but the weight {tuple(w_shape)} with groups={groups} expects "
            f"{c_per_group * groups} (input shape {tuple(x_shape)})"
        )
    pads = _conv_pads(padding, (kh, kw), dil, st, where)
    hp, wp = h + pads[0] + pads[1], wd + pads[2] + pads[3]
    oh = (hp - dil[0] * (kh - 1) - 1) // st[0] + 1
    ow = (wp - dil[1] * (kw - 1) - 1) // st[1] + 1
    if oh < 1 or ow < 1:
        size, kernel = (
            (f"{wp}", f"{dil[1] * (kw - 1) + 1}")
            if one_d
            else (f"{hp}x{wp}", f"{dil[0] * (kh - 1) + 1}x{dil[1] * (kw - 1) + 1}")
        )
        raise ShapeError(
            f"{where}: the (padded) input {size} is smaller than the dilated kernel {kernel} "
            f"(input shape {tuple(x_shape)}, weight shape {tuple(w_shape)})"
        )
    b = _checked_bias(bias, c_out, x, where)
    parents: tuple[Tensor, ...] = (x, w) if b is None else (x, w, b)
    geometry = (st, pads, dil, groups, (oh, ow))
    # A leaf weight (a layer's parameter) is passed again and again: the Winograd path may reuse its
    # transformed weight while its bytes are unchanged, with or without a graph being recorded (a
    # model evaluated without no_grad). A computed weight (weight norm) changes every call.
    reuse = w.is_leaf
    out, saved = conv2d_forward(x.array, w.array, None if bias is None else parents[2].array, geometry, reuse)
    # channel-major in memory, contiguous in PyTorch: noted, so that view and stride treat it so
    return record_op(note_conv_layout(out), parents, _conv2d_vjp, saved)


# ---------------------------------------------------------------------- modules
class _ConvLayer(Module):
    """Parameters and PyTorch's default initialization, shared by every convolution layer
    (``Conv1d/2d/3d`` and ``ConvTranspose1d/2d/3d``): channels and groups checked, kernel_size,
    stride and dilation read as one int per spatial dim, weight ``(C_out, C_in / groups, *kernel)``
    (``(C_in, C_out / groups, *kernel)`` when ``_transposed``) and bias ``(C_out,)``.
    """

    _spatial = 2
    _transposed = False

    def _init_parameters(
        self,
        in_channels: Any,
        out_channels: Any,
        kernel_size: Any,
        stride: Any,
        dilation: Any,
        groups: Any,
    ) -> None:
        name, n = type(self).__name__, self._spatial
        self.in_channels, self.out_channels, self.groups = _channels(in_channels, out_channels, groups, name)
        self.kernel_size = _tuple(kernel_size, n, "kernel_size", name)
        self.stride = _tuple(stride, n, "stride", name)
        self.dilation = _tuple(dilation, n, "dilation", name)
        self.transposed = self._transposed  # torch's _ConvNd attributes, which layer-walking code reads
        if not self._transposed:
            self.output_padding: tuple[int, ...] = (0,) * n

    def _make_parameters(self, bias: bool, dtype: Any) -> None:
        dt = backend.get_default_dtype() if dtype is None else backend.as_dtype(dtype)
        first, second = (
            (self.in_channels, self.out_channels) if self._transposed else (self.out_channels, self.in_channels)
        )
        shape = (first, second // self.groups) + self.kernel_size
        # Parameters are made on the host (as in PyTorch) and moved with model.to(device).
        self.weight = Parameter(np.empty(shape, dtype=dt), dtype=dt)  # host: made on the CPU, moved by .to()
        if bias:
            self.bias: Parameter | None = Parameter(
                np.empty((self.out_channels,), dtype=dt),  # host: made on the CPU, moved by .to()
                dtype=dt,
            )
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """PyTorch's default: weight ~ kaiming_uniform(a=sqrt(5)), i.e. U(-1/sqrt(fan_in), 1/sqrt(fan_in)),
        bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)), where fan_in = weight.shape[1] * prod(kernel_size)."""
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = self.weight.shape[1] * math.prod(self.kernel_size)
            bound = 1.0 / math.sqrt(fan_in)
            init.uniform_(self.bias, -bound, bound)

    @property
    def _reversed_padding_repeated_twice(self) -> Any:
        """torch's ``_ConvNd`` attribute that subclasses pad with (``F.pad(x, self._reversed_padding_repeated_twice,
        mode=...)``): each spatial dim's (before, after) padding, last dim first; for ``'same'`` the before
        side takes the smaller half, as in torch (a list for a string padding, a tuple otherwise, as there).
        Computed from ``padding``; assigning a value keeps that value instead, as torch's attribute would."""
        given = self.__dict__.get("_reversed_padding_given")
        if given is not None:
            return given
        padding = getattr(self, "padding", (0,) * self._spatial)
        if isinstance(padding, str):
            pads = [0, 0] * self._spatial
            if padding == "same":
                for i, (d, k) in enumerate(zip(reversed(self.dilation), reversed(self.kernel_size))):
                    total = d * (k - 1)
                    pads[2 * i], pads[2 * i + 1] = total // 2, total - total // 2
            return pads
        return tuple(p for p in reversed(padding) for _ in range(2))

    @_reversed_padding_repeated_twice.setter
    def _reversed_padding_repeated_twice(self, value: Any) -> None:
        self.__dict__["_reversed_padding_given"] = value

    def _conv_forward(self, input: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        """torch's ``Conv1d/2d/3d._conv_forward``: this layer's convolution of ``input`` with the given
        ``weight`` and ``bias`` (its stride, padding, padding mode, dilation and groups). Quantization-aware
        subclasses call it from their ``forward`` with a fake-quantized weight; ``forward`` runs through it,
        so a subclass overriding it changes the layer's convolution, as in torch."""
        name = type(self).__name__
        if self._transposed or self._spatial != 3:  # Conv1d/2d (_ConvNd) have their own
            raise StateError(
                f"{name}._conv_forward: a transposed convolution has no _conv_forward (torch's is an empty stub "
                "that returns None); call the layer or nn.functional.conv_transpose*d"
            )
        from .volumetric import _conv3d_pads, conv3d

        padding, padding_mode = getattr(self, "padding", 0), getattr(self, "padding_mode", "zeros")
        if padding_mode != "zeros":  # padded by mode first, then a plain convolution
            pads = _conv3d_pads(padding, self.kernel_size, self.dilation, self.stride, name)
            input = ops.pad(
                _as_tensor(input, name),
                tuple(v for pair in reversed(pads) for v in pair),
                mode=_PADDING_MODES[padding_mode],
            )
            return conv3d(input, weight, bias, self.stride, 0, self.dilation, self.groups)
        return conv3d(input, weight, bias, self.stride, padding, self.dilation, self.groups)

    def extra_repr(self) -> str:
        # PyTorch's _ConvNd.extra_repr: fields left at their defaults are omitted, strings print bare
        n = self._spatial
        text = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        padding = getattr(self, "padding", (0,) * n)
        if isinstance(padding, str) or padding != (0,) * n:
            text += f", padding={padding}"
        if self.dilation != (1,) * n:
            text += f", dilation={self.dilation}"
        output_padding = getattr(self, "output_padding", (0,) * n)
        if output_padding != (0,) * n:
            text += f", output_padding={output_padding}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        if self.bias is None:
            text += ", bias=False"
        padding_mode = getattr(self, "padding_mode", "zeros")
        if padding_mode != "zeros":
            text += f", padding_mode={padding_mode}"
        return text


class _ConvNd(_ConvLayer):
    """Shared by Conv1d and Conv2d: PyTorch's arguments, 'same'/'valid' padding and padding modes."""

    _spatial = 2

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: IntOr2,
        stride: IntOr2 = 1,
        padding: Padding2 = 0,
        dilation: IntOr2 = 1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        name, n = type(self).__name__, self._spatial
        self._init_parameters(in_channels, out_channels, kernel_size, stride, dilation, groups)
        if isinstance(padding, str):
            _check_padding_string(padding, self.stride, name)
            self.padding: Any = padding
        else:
            self.padding = _tuple(padding, n, "padding", name, minimum=0)
        self.padding_mode = _padding_mode(padding_mode, name)
        self._make_parameters(bias, dtype)

    def _check_input(self, x: Any, weight: Tensor) -> Tensor:
        name, n = type(self).__name__, self._spatial
        if not isinstance(x, Tensor):
            raise ArgumentTypeError(f"{name}: expected a Tensor input, got {type(x).__name__}")
        if x.ndim not in (n + 1, n + 2) or x.shape[-n - 1] != self.in_channels:
            # The channels come from the weight convolved, as in PyTorch: model surgery that replaces the
            # weight (a pretrained conv1 summed to one input channel) leaves in_channels as constructed.
            # (An input that fits in_channels but not such a weight is refused by the convolution itself.)
            c_in = weight.shape[1] * self.groups
            if x.ndim not in (n + 1, n + 2) or x.shape[-n - 1] != c_in:
                dims = "L" if n == 1 else "H, W"
                now = (
                    ""
                    if c_in == self.in_channels
                    else f" (weight of shape {tuple(weight.shape)} takes {c_in} channels)"
                )
                raise ShapeError(
                    f"{name}({self.in_channels}, {self.out_channels}){now}: expected input of shape "
                    f"(N, {c_in}, {dims}) or ({c_in}, {dims}), got {tuple(x.shape)}"
                )
        return x

    def _conv_forward(self, input: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        """torch's ``Conv1d/2d._conv_forward`` (see :meth:`_ConvLayer._conv_forward`)."""
        input = self._check_input(input, weight)
        conv = conv2d if self._spatial == 2 else conv1d
        if self.padding_mode != "zeros":  # padded by mode first, then a plain convolution
            return conv(self._mode_padded(input), weight, bias, self.stride, 0, self.dilation, self.groups)
        return conv(input, weight, bias, self.stride, self.padding, self.dilation, self.groups)

    def _mode_padded(self, x: Tensor) -> Tensor:
        """``x`` padded with reflect/replicate/circular values (the conv then runs unpadded)."""
        name, mode = type(self).__name__, _PADDING_MODES[self.padding_mode]
        if self._spatial == 1:
            padding = self.padding if isinstance(self.padding, str) else (0, self.padding[0])
            pads = _conv_pads(padding, (1,) + self.kernel_size, (1,) + self.dilation, (1,) + self.stride, name)
            return ops.pad(x, pads[2:], mode=mode)
        top, bottom, left, right = _conv_pads(self.padding, self.kernel_size, self.dilation, self.stride, name)
        return ops.pad(x, (left, right, top, bottom), mode=mode)


class Conv2d(_ConvNd):
    """2-D convolution layer: ``(N, C_in, H, W)`` -> ``(N, C_out, OH, OW)`` (see :func:`conv2d`).

    weight: ``(C_out, C_in / groups, kh, kw)``, bias: ``(C_out,)``, both initialized as in PyTorch
    (U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with fan_in = C_in / groups * kh * kw). ``padding`` is an
    int, a pair, ``'same'`` or ``'valid'``; ``padding_mode`` is zeros, reflect, replicate or circular.

    Example:
        >>> import downslope as ds
        >>> conv = ds.nn.Conv2d(3, 8, kernel_size=3, padding="same")
        >>> conv(ds.randn(2, 3, 10, 12)).shape
        downslope.Size([2, 8, 10, 12])
    """

    _spatial = 2

    def forward(self, input: Tensor) -> Tensor:
        return self._conv_forward(input, self.weight, self.bias)


class Conv1d(_ConvNd):
    """1-D convolution layer: ``(N, C_in, L)`` -> ``(N, C_out, L_out)`` (see :func:`conv1d`).

    weight: ``(C_out, C_in / groups, k)``, bias: ``(C_out,)``, initialized as in PyTorch.

    Example:
        >>> import downslope as ds
        >>> conv = ds.nn.Conv1d(4, 6, kernel_size=3, stride=2)
        >>> conv(ds.randn(2, 4, 11)).shape
        downslope.Size([2, 6, 5])
    """

    _spatial = 1

    def forward(self, input: Tensor) -> Tensor:
        return self._conv_forward(input, self.weight, self.bias)
