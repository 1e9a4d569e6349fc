"""PyTorch's module path ``torch.optim.rprop``: :class:`Rprop` (defined in :mod:`downslope.optim.adaptive`)."""

from __future__ import annotations

from .adaptive import Rprop

__all__ = ["Rprop"]
