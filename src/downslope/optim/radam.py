"""PyTorch's module path ``torch.optim.radam``: :class:`RAdam` (defined in :mod:`downslope.optim.adam`)."""

from __future__ import annotations

from .adam import RAdam

__all__ = ["RAdam"]
