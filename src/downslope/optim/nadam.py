"""PyTorch's module path ``torch.optim.nadam``: :class:`NAdam` (defined in :mod:`downslope.optim.adam`)."""

from __future__ import annotations

from .adam import NAdam

__all__ = ["NAdam"]
