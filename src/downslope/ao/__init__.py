"""PyTorch's ``torch.ao`` namespace: only ``torch.ao.quantization``'s fake quantization for
quantization-aware training (see :mod:`downslope.ao.quantization`)."""

from __future__ import annotations

from . import quantization as quantization

__all__ = ["quantization"]
