"""``torch.distributions.exp_family``'s path to :class:`ExponentialFamily`, so that
``from downslope.distributions.exp_family import ExponentialFamily`` works where the torch import did."""

from __future__ import annotations

from .more import ExponentialFamily

__all__ = ["ExponentialFamily"]
