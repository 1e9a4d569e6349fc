"""``torch.distributions.pareto``'s path to :class:`Pareto`, so that
``from downslope.distributions.pareto import Pareto`` works where the torch import did."""

from __future__ import annotations

from .families import Pareto

__all__ = ["Pareto"]
