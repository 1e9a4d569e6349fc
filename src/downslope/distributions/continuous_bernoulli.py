"""``torch.distributions.continuous_bernoulli``'s path to :class:`ContinuousBernoulli`, so that
``from downslope.distributions.continuous_bernoulli import ContinuousBernoulli`` works where the torch import did."""

from __future__ import annotations

from .more import ContinuousBernoulli

__all__ = ["ContinuousBernoulli"]
