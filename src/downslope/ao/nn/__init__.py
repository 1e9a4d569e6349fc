"""PyTorch's ``torch.ao.nn``: the quantization-aware training modules (:mod:`downslope.ao.nn.qat`)."""

from __future__ import annotations

from . import qat as qat

__all__ = ["qat"]
