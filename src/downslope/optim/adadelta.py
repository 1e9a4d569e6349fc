"""PyTorch's module path ``torch.optim.adadelta``: :class:`Adadelta` (defined in :mod:`downslope.optim.adaptive`)."""

from __future__ import annotations

from .adaptive import Adadelta

__all__ = ["Adadelta"]
