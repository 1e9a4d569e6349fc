"""``torch.distributions.exponential``'s path to :class:`Exponential`, so that
``from downslope.distributions.exponential import Exponential`` works where the torch import did."""

from __future__ import annotations

from .continuous import Exponential

__all__ = ["Exponential"]
