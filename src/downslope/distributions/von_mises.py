"""``torch.distributions.von_mises``'s path to :class:`VonMises`, so that
``from downslope.distributions.von_mises import VonMises`` works where the torch import did."""

from __future__ import annotations

from .more import VonMises

__all__ = ["VonMises"]
