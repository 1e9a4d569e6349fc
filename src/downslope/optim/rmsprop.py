"""PyTorch's module path ``torch.optim.rmsprop``: :class:`RMSprop` (defined in :mod:`downslope.optim.adaptive`)."""

from __future__ import annotations

from .adaptive import RMSprop

__all__ = ["RMSprop"]
