"""``torch.distributions.binomial``'s path to :class:`Binomial`, so that
``from downslope.distributions.binomial import Binomial`` works where the torch import did."""

from __future__ import annotations

from .discrete import Binomial

__all__ = ["Binomial"]
