"""PyTorch's module path ``torch.optim.adamw``: :class:`AdamW` (defined in :mod:`downslope.optim.adam`)."""

from __future__ import annotations

from .adam import AdamW

__all__ = ["AdamW"]
