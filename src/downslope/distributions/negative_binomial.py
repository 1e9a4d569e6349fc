"""``torch.distributions.negative_binomial``'s path to :class:`NegativeBinomial`, so that
``from downslope.distributions.negative_binomial import NegativeBinomial`` works where the torch import did."""

from __future__ import annotations

from .families import NegativeBinomial

__all__ = ["NegativeBinomial"]
