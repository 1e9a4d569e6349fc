"""``torch.distributions.geometric``'s path to :class:`Geometric`, so that
``from downslope.distributions.geometric import Geometric`` works where the torch import did."""

from __future__ import annotations

from .discrete import Geometric

__all__ = ["Geometric"]
