"""PyTorch's ``QuantStub`` / ``DeQuantStub`` / ``QuantWrapper``: markers of where a quantized region
starts and ends. Before ``convert`` torch's are the identity, and so are these (downslope has no
``convert``: the model stays in floating point, with fake quantization where it was put)."""

from __future__ import annotations

from typing import Any

from ... import nn
from ...tensor import Tensor

__all__ = ["DeQuantStub", "QuantStub", "QuantWrapper"]


class _Stub(nn.Module):
    """The identity (torch's stubs before ``convert``); keeps ``qconfig`` if given."""

    def __init__(self, qconfig: Any = None) -> None:
        super().__init__()
        if qconfig:
            self.qconfig = qconfig

    def forward(self, x: Tensor) -> Tensor:
        return x


class QuantStub(_Stub):
    """Where quantization starts: the identity (torch's before ``convert``); keeps ``qconfig`` if given."""


class DeQuantStub(_Stub):
    """Where quantization ends: the identity (torch's before ``convert``); keeps ``qconfig`` if given."""


class QuantWrapper(nn.Module):
    """``module`` between a :class:`QuantStub` and a :class:`DeQuantStub` (torch's ``QuantWrapper``)."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        qconfig = getattr(module, "qconfig", None)
        self.add_module("quant", QuantStub(qconfig))
        self.add_module("dequant", DeQuantStub(qconfig))
        self.add_module("module", module)
        self.train(module.training)

    def forward(self, X: Tensor) -> Tensor:
        return self.dequant(self.module(self.quant(X)))
