"""``torch.distributions.weibull``'s path to :class:`Weibull`, so that
``from downslope.distributions.weibull import Weibull`` works where the torch import did."""

from __future__ import annotations

from .families import Weibull

__all__ = ["Weibull"]
