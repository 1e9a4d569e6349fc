"""Padding layers with PyTorch's names: ZeroPad, ConstantPad, ReflectionPad, ReplicationPad and
CircularPad in 1-D (the last dim) and 2-D (the last two dims), each a module around :func:`F.pad`.

``padding`` is one int (every side) or a tuple (left, right) in 1-D, (left, right, top, bottom) in 2-D,
(left, right, top, bottom, front, back) in 3-D; a negative width crops that side, as in PyTorch.

Example:
    >>> import downslope as ds
    >>> from downslope import nn
    >>> nn.ZeroPad2d((1, 0, 0, 2))(ds.ones(1, 1, 2, 2)).shape
    downslope.Size([1, 1, 4, 3])
    >>> nn.ReflectionPad1d((2, -1))(ds.tensor([[1.0, 2.0, 3.0]]))
    tensor([[3., 2., 1., 2.]])
"""

from __future__ import annotations

from collections.abc import Iterable
from numbers import Integral
from typing import Any

from ..errors import InvalidValueError, ShapeError
from ..tensor import Tensor
from . import functional as F
from .module import Module

__all__ = [
    "ZeroPad1d", "ZeroPad2d", "ConstantPad1d", "ConstantPad2d", "ReflectionPad1d", "ReflectionPad2d",
    "ReplicationPad1d", "ReplicationPad2d", "CircularPad1d", "CircularPad2d", "ZeroPad3d", "ConstantPad3d",
    "ReflectionPad3d", "ReplicationPad3d", "CircularPad3d",
]  # fmt: skip


class _PadNd(Module):
    _dims = 1
    _mode = "constant"

    # value keyword-only: torch's zero, reflection, replication and circular pads take padding alone
    def __init__(self, padding: Any, *, value: float = 0.0) -> None:
        super().__init__()
        # numbers.Integral: NumPy integers (a width read from an array or a config) count, as in torch
        if isinstance(padding, Integral) and not isinstance(padding, bool):
            padding = (padding,) * (2 * self._dims)
        padding = tuple(padding) if isinstance(padding, Iterable) else (padding,)  # a bool or float: refused below
        # negative widths crop, as PyTorch's modules (and F.pad) do
        if len(padding) != 2 * self._dims or not all(
            isinstance(p, Integral) and not isinstance(p, bool) for p in padding
        ):
            raise InvalidValueError(  # torch: a RuntimeError (at the first call)
                f"{type(self).__name__}: padding must be one int or {2 * self._dims} of them, got {padding!r}"
            )
        self.padding = tuple(int(p) for p in padding)
        self.value = float(value)  # host: a Python number

    def forward(self, input: Tensor) -> Tensor:
        if (
            self._mode != "constant"
            and isinstance(input, Tensor)
            and input.ndim not in (self._dims + 1, self._dims + 2)
        ):
            raise ShapeError(
                f"{type(self).__name__}: expected a {self._dims + 1}-d (unbatched) or {self._dims + 2}-d "
                f"(batched) input, got shape {tuple(input.shape)}"
            )
        return F.pad(input, self.padding, self._mode, self.value)

    def extra_repr(self) -> str:
        return f"{self.padding}"


class ConstantPad1d(_PadNd):
    """Pad the last dim with ``value``."""

    def __init__(self, padding: Any, value: float) -> None:
        super().__init__(padding, value=value)

    def extra_repr(self) -> str:
        return f"padding={self.padding}, value={self.value}"  # PyTorch labels these pads' padding


class ConstantPad2d(ConstantPad1d):
    """Pad the last two dims with ``value``."""

    _dims = 2


class ZeroPad1d(_PadNd):
    """Pad the last dim with zeros."""


class ZeroPad2d(_PadNd):
    """Pad the last two dims with zeros."""

    _dims = 2


class ReflectionPad1d(_PadNd):
    """Pad the last dim with its reflection (the edge value not repeated)."""

    _mode = "reflect"


class ReflectionPad2d(ReflectionPad1d):
    """Pad the last two dims with their reflection."""

    _dims = 2


class ReplicationPad1d(_PadNd):
    """Pad the last dim by repeating its edge values."""

    _mode = "replicate"


class ReplicationPad2d(ReplicationPad1d):
    """Pad the last two dims by repeating their edge values."""

    _dims = 2


class CircularPad1d(_PadNd):
    """Pad the last dim by wrapping around."""

    _mode = "circular"


class CircularPad2d(CircularPad1d):
    """Pad the last two dims by wrapping around."""

    _dims = 2


class ZeroPad3d(_PadNd):
    """Pad the last three dims with zeros."""

    _dims = 3


class ConstantPad3d(ConstantPad1d):
    """Pad the last three dims with ``value``."""

    _dims = 3


class ReflectionPad3d(ReflectionPad1d):
    """Pad the last three dims with their reflection."""

    _dims = 3


class ReplicationPad3d(ReplicationPad1d):
    """Pad the last three dims by repeating their edge values."""

    _dims = 3


class CircularPad3d(CircularPad1d):
    """Pad the last three dims by wrapping around."""

    _dims = 3
