"""PyTorch's ``torch.ao`` namespace: ``torch.ao.quantization``'s fake quantization for quantization-aware
training (see :mod:`downslope.ao.quantization`) and its QAT layers ``torch.ao.nn.qat``."""

from __future__ import annotations

from . import nn as nn
from . import quantization as quantization

__all__ = ["nn", "quantization"]
