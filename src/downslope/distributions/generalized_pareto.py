"""``torch.distributions.generalized_pareto``'s path to :class:`GeneralizedPareto`, so that
``from downslope.distributions.generalized_pareto import GeneralizedPareto`` works where the torch import did."""

from __future__ import annotations

from .more import GeneralizedPareto

__all__ = ["GeneralizedPareto"]
