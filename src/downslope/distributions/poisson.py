"""``torch.distributions.poisson``'s path to :class:`Poisson`, so that
``from downslope.distributions.poisson import Poisson`` works where the torch import did."""

from __future__ import annotations

from .discrete import Poisson

__all__ = ["Poisson"]
