"""Argument handling shared by the convolution, transposed-convolution, pooling and 3-D layers.

One place decides how ``kernel_size``/``stride``/``padding``/``dilation`` are read (an int or a
tuple of one int per spatial dim), what ``groups`` and channel counts must satisfy, which padding
modes exist, and what the error messages say (what was expected, what was given, and where).

Example:
    >>> from downslope.nn._conv_args import _tuple, _pool_args
    >>> _tuple(3, 2, "kernel_size", "Conv2d")
    (3, 3)
    >>> _pool_args(2, None, 0, 1, 2, "max_pool2d")
    ((2, 2), (2, 2), (0, 0), (1, 1))
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import ops
from ..errors import ArgumentError, ArgumentTypeError, DTypeError, InvalidValueError, ShapeError
from ..tensor import Tensor

IntOr2 = int | tuple[int, ...]
Padding2 = int | tuple[int, ...] | str

# The layers' padding_mode names and the ops.pad mode each one runs.
_PADDING_MODES = {"zeros": "constant", "reflect": "reflect", "replicate": "replicate", "circular": "circular"}

_SHAPES = {1: "(N, C, L) or (C, L)", 2: "(N, C, H, W) or (C, H, W)", 3: "(N, C, D, H, W) or (C, D, H, W)"}


def _tuple(value: Any, n: int, name: str, where: str, minimum: int = 1) -> tuple[int, ...]:
    """An int or a length-``n`` sequence of ints, each >= ``minimum``, as a tuple."""
    # The common cases first, checked exactly (a layer passes its own int or tuple of ints on every
    # forward call): a plain int, or a tuple of plain ints, already valid.
    kind = type(value)
    if kind is int:
        if value >= minimum:
            return (value,) * n
    elif kind is tuple and len(value) == n:
        for v in value:
            if type(v) is not int or v < minimum:
                break
        else:
            return value
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        out = (int(value),) * n
    elif isinstance(value, Sequence) and not isinstance(value, str) and len(value) == n:
        out = tuple(int(v) for v in value)
    elif isinstance(value, Sequence) and not isinstance(value, str) and len(value) == 1:
        out = (int(value[0]),) * n  # torch expands a one-element list to every dim, as it does an int
    elif isinstance(value, Sequence) and not isinstance(value, str):
        # a sequence of another length: torch's RuntimeError
        raise InvalidValueError(f"{where}: {name} must be an int or a tuple of {n} ints, got {value!r}")
    else:
        raise ArgumentTypeError(f"{where}: {name} must be an int or a tuple of {n} ints, got {value!r}")
    if any(v < minimum for v in out):
        raise InvalidValueError(f"{where}: {name} must be >= {minimum}, got {value!r}")  # torch: RuntimeError
    return out


def _positive(value: Any, what: str, owner: str) -> int:
    """``value`` as an int, which must be > 0 (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ArgumentError(f"{owner}: {what} must be a positive integer, got {value!r}")
    return int(value)


def _channels(in_channels: Any, out_channels: Any, groups: Any, owner: str) -> tuple[int, int, int]:
    """(in_channels, out_channels, groups) of a convolution layer, both counts divisible by groups."""
    c_in = _positive(in_channels, "in_channels", owner)
    c_out = _positive(out_channels, "out_channels", owner)
    g = _positive(groups, "groups", owner)
    if c_in % g or c_out % g:
        raise ArgumentError(
            f"{owner}: in_channels ({c_in}) and out_channels ({c_out}) must both be divisible by groups ({g})"
        )
    return c_in, c_out, g


def _zeros_padding_only(padding_mode: str, owner: str) -> None:
    """Layers that pad only with zeros (the transposed convolutions, as in PyTorch)."""
    if padding_mode != "zeros":
        raise ArgumentError(f"{owner}: only padding_mode='zeros' is supported (as in PyTorch), got {padding_mode!r}")


def _padding_mode(padding_mode: str, owner: str) -> str:
    if padding_mode not in _PADDING_MODES:
        raise ArgumentError(f"{owner}: padding_mode must be one of {sorted(_PADDING_MODES)}, got {padding_mode!r}")
    return padding_mode


def _as_tensor(x: Any, where: str) -> Tensor:
    if isinstance(x, Tensor):
        return x
    if isinstance(x, np.ndarray):
        return ops._lift(x)
    raise ArgumentTypeError(f"{where}: expected a Tensor, got {type(x).__name__}")


def _checked_bias(bias: Any, c_out: int, x: Tensor, where: str) -> Tensor | None:
    """The layer's bias as a tensor of shape (c_out,) in the input's dtype (None stays None): the check
    every convolution, 2-D or 3-D, plain or transposed, makes before its kernel runs."""
    if bias is None:
        return None
    b = _as_tensor(bias, where)
    if b.shape != (c_out,):
        raise ShapeError(f"{where}: expected bias of shape ({c_out},), got {tuple(b.shape)}")
    if b.dtype != x.dtype:
        raise DTypeError(f"{where}: bias dtype {b.dtype} does not match input dtype {x.dtype}")
    return b


def _batched(x: Tensor, spatial: int, where: str) -> tuple[Tensor, bool]:
    """``x`` with a batch dim (added if it was unbatched), and whether one was added."""
    if x.ndim == spatial + 2:
        return x, False
    if x.ndim == spatial + 1:
        return ops.unsqueeze(x, 0), True
    raise ShapeError(f"{where}: expected input of shape {_SHAPES[spatial]}, got shape {tuple(x.shape)}")


def _check_floating(x: Tensor, where: str) -> None:
    kind = x.array.dtype.kind
    if kind == "c":  # .float() would drop the imaginary part: not advice to give for complex data
        raise ArgumentTypeError(f"{where}: complex input ({x.dtype}) is not supported by this op")
    if kind != "f":
        raise ArgumentTypeError(f"{where}: expected a floating-point input, got {x.dtype}; cast it with .float() first")


def _check_padding_string(padding: str, stride: tuple[int, ...], where: str) -> None:
    """'same' (stride 1 only, as in PyTorch) or 'valid'."""
    if padding not in ("same", "valid"):
        raise ArgumentError(f"{where}: padding must be an int, a tuple, 'same' or 'valid', got {padding!r}")
    if padding == "same" and any(s != 1 for s in stride):
        raise ArgumentError(f"{where}: padding='same' needs stride 1 (as in PyTorch), got stride {stride}")


def _conv_pads(
    padding: Any, kernel: tuple[int, ...], dilation: tuple[int, ...], stride: tuple[int, ...], where: str
) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) zero padding from an int, a pair, 'valid' or 'same'."""
    if isinstance(padding, str):
        _check_padding_string(padding, stride, where)
        if padding == "valid":
            return (0, 0, 0, 0)
        pads = []
        for k, d in zip(kernel, dilation):
            total = d * (k - 1)
            # An odd total puts the extra row/column after the input, as PyTorch does.
            pads += [total // 2, total - total // 2]
        return (pads[0], pads[1], pads[2], pads[3])
    ph, pw = _tuple(padding, 2, "padding", where, minimum=0)
    return (ph, ph, pw, pw)


def _pool_args(
    kernel_size: Any, stride: Any, padding: Any, dilation: Any, n: int, where: str
) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """(kernel, stride, padding, dilation) of an ``n``-D pooling; ``stride`` None (or ()) is the kernel."""
    k = _tuple(kernel_size, n, "kernel_size", where)
    s = (
        k
        if stride is None or (isinstance(stride, Sequence) and len(stride) == 0)
        else _tuple(stride, n, "stride", where)
    )
    p = _tuple(padding, n, "padding", where, minimum=0)
    d = _tuple(dilation, n, "dilation", where)
    return k, s, p, d


def _transposed_args(
    stride: Any, padding: Any, output_padding: Any, dilation: Any, groups: Any, n: int, where: str
) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...], tuple[int, ...], int]:
    """(stride, padding, output_padding, dilation, groups) of an ``n``-D transposed convolution."""
    s = _tuple(stride, n, "stride", where)
    p = _tuple(padding, n, "padding", where, minimum=0)
    op = _tuple(output_padding, n, "output_padding", where, minimum=0)
    d = _tuple(dilation, n, "dilation", where)
    g = _positive(groups, "groups", where)
    if any(o >= max(si, di) for o, si, di in zip(op, s, d)):
        raise InvalidValueError(f"{where}: output_padding {op} must be smaller than stride {s} or dilation {d}")
    return s, p, op, d, g


def _complex_conv(conv: Any, x: Tensor, w: Tensor, bias: Any, c_out: int, where: str) -> Tensor:
    """A convolution of complex ``x`` and ``w`` (same dtype, as torch requires) from real ones, ``conv(x, w)``
    called on real parts without bias: Gauss's three products, ``re = xr*wr - xi*wi`` and
    ``im = (xr + xi)*(wr + wi) - xr*wr - xi*wi``, so the gradients are the real convolution's rules taken
    through real/imag/complex (torch's convention). A complex bias is added after."""
    from ..ops import complex as _complex  # the core's complex ops (ops/__init__ does not re-export them all)

    if w.dtype != x.dtype:  # torch: a RuntimeError, which DTypeError is too
        raise DTypeError(f"{where}: input dtype {x.dtype} does not match weight dtype {w.dtype}")
    b = _checked_bias(bias, c_out, x, where)
    xr, xi, wr, wi = _complex.real(x), _complex.imag(x), _complex.real(w), _complex.imag(w)
    rr, ii = conv(xr, wr), conv(xi, wi)
    out = _complex.complex(rr - ii, conv(xr + xi, wr + wi) - rr - ii)
    if b is not None:
        out = out + ops.reshape(b, (1, c_out) + (1,) * (out.ndim - 2))
    return out
