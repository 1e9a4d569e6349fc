"""``torch.distributions.inverse_gamma``'s path to :class:`InverseGamma`, so that
``from downslope.distributions.inverse_gamma import InverseGamma`` works where the torch import did."""

from __future__ import annotations

from .more import InverseGamma

__all__ = ["InverseGamma"]
