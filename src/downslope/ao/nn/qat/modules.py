"""PyTorch's quantization-aware ``Linear`` and ``Conv2d`` (``torch.ao.nn.qat``): the float layer whose
forward uses ``weight_fake_quant(weight)`` (a fake-quantize module from ``qconfig.weight()``: it observes
the weight, then rounds it to the quantized grid with straight-through gradients), as torch's.
``from_float`` makes one from a float layer with a ``qconfig`` (sharing its parameters), ``to_float``
gives the float layer back.

Example:
    >>> import downslope as ds
    >>> from downslope.ao.quantization import get_default_qat_qconfig
    >>> dense = ds.nn.Linear(4, 2)
    >>> dense.qconfig = get_default_qat_qconfig()
    >>> qat = Linear.from_float(dense)
    >>> qat.weight is dense.weight, type(qat.weight_fake_quant).__name__
    (True, 'FakeQuantize')
"""

from __future__ import annotations

from typing import Any

from .... import nn
from ....errors import ArgumentAssertionError
from ....nn import functional as F
from ....tensor import Tensor

__all__ = ["Conv2d", "Linear"]


def _checked_qconfig(qconfig: Any, name: str) -> Any:
    if not qconfig:
        raise ArgumentAssertionError(f"{name}: qconfig must be provided for QAT module, got {qconfig!r}")
    return qconfig


def _float_qconfig(cls: Any, mod: Any) -> Any:
    """torch's from_float checks: ``mod`` of the float class, with a qconfig."""
    if type(mod) is not cls._FLOAT_MODULE:
        raise ArgumentAssertionError(
            f"{cls.__name__}.from_float: qat.{cls.__name__}.from_float only works for "
            f"{cls._FLOAT_MODULE.__name__}, got {type(mod).__name__}"
        )
    if not hasattr(mod, "qconfig"):
        raise ArgumentAssertionError(f"{cls.__name__}.from_float: Input float module must have qconfig defined")
    if not mod.qconfig:
        raise ArgumentAssertionError(f"{cls.__name__}.from_float: Input float module must have a valid qconfig")
    return mod.qconfig


class Linear(nn.Linear):
    """A Linear layer for quantization-aware training: ``F.linear(x, weight_fake_quant(weight), bias)``."""

    _FLOAT_MODULE = nn.Linear

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        qconfig: Any = None,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__(in_features, out_features, bias, device=device, dtype=dtype)
        self.qconfig = _checked_qconfig(qconfig, "qat.Linear")
        self.weight_fake_quant = qconfig.weight()

    def forward(self, input: Tensor) -> Tensor:
        return F.linear(input, self.weight_fake_quant(self.weight), self.bias)

    @classmethod
    def from_float(cls, mod: Any, use_precomputed_fake_quant: bool = False) -> Linear:
        """The QAT layer of float ``mod`` (with a ``qconfig``), holding ``mod``'s own parameters."""
        qconfig = _float_qconfig(cls, mod)
        qat = cls(mod.in_features, mod.out_features, bias=mod.bias is not None, qconfig=qconfig)
        qat.weight = mod.weight
        qat.bias = mod.bias
        return qat

    def to_float(self) -> nn.Linear:
        """The float Linear with this layer's parameters (no fake quantization)."""
        linear = nn.Linear(self.in_features, self.out_features, self.bias is not None)
        linear.weight = nn.Parameter(self.weight.detach())
        if self.bias is not None:
            linear.bias = nn.Parameter(self.bias.detach())
        linear.train(self.training)
        return linear


class Conv2d(nn.Conv2d):
    """A Conv2d layer for quantization-aware training: its convolution with ``weight_fake_quant(weight)``."""

    _FLOAT_MODULE = nn.Conv2d

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
        qconfig: Any = None,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=padding,
            dilation=dilation,
            groups=groups,
            bias=bias,
            padding_mode=padding_mode,
            device=device,
            dtype=dtype,
        )
        self.qconfig = _checked_qconfig(qconfig, "qat.Conv2d")
        self.weight_fake_quant = qconfig.weight()

    def forward(self, input: Tensor) -> Tensor:
        return self._conv_forward(input, self.weight_fake_quant(self.weight), self.bias)

    @classmethod
    def from_float(cls, mod: Any, use_precomputed_fake_quant: bool = False) -> Conv2d:
        """The QAT layer of float ``mod`` (with a ``qconfig``), holding ``mod``'s own parameters."""
        qconfig = _float_qconfig(cls, mod)
        qat = cls(
            mod.in_channels,
            mod.out_channels,
            mod.kernel_size,
            stride=mod.stride,
            padding=mod.padding,
            dilation=mod.dilation,
            groups=mod.groups,
            bias=mod.bias is not None,
            padding_mode=mod.padding_mode,
            qconfig=qconfig,
        )
        qat.weight = mod.weight
        qat.bias = mod.bias
        return qat

    def to_float(self) -> nn.Conv2d:
        """The float Conv2d with this layer's parameters (no fake quantization)."""
        conv = nn.Conv2d(
            self.in_channels,
            self.out_channels,
            self.kernel_size,
            self.stride,
            self.padding,
            self.dilation,
            self.groups,
            self.bias is not None,
            self.padding_mode,
        )
        conv.weight = nn.Parameter(self.weight.detach())
        if self.bias is not None:
            conv.bias = nn.Parameter(self.bias.detach())
        conv.train(self.training)
        return conv
