"""``torch.distributions.half_cauchy``'s path to :class:`HalfCauchy`, so that
``from downslope.distributions.half_cauchy import HalfCauchy`` works where the torch import did."""

from __future__ import annotations

from .more import HalfCauchy

__all__ = ["HalfCauchy"]
