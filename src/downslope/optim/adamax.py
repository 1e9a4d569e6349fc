"""PyTorch's module path ``torch.optim.adamax``: :class:`Adamax` (defined in :mod:`downslope.optim.adam`)."""

from __future__ import annotations

from .adam import Adamax

__all__ = ["Adamax"]
