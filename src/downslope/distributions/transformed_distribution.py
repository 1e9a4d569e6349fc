"""``torch.distributions.transformed_distribution``'s path to :class:`TransformedDistribution`, so that
``from downslope.distributions.transformed_distribution import TransformedDistribution`` works where the torch import did."""

from __future__ import annotations

from .transforms import TransformedDistribution

__all__ = ["TransformedDistribution"]
