"""``torch.distributions.kumaraswamy``'s path to :class:`Kumaraswamy`, so that
``from downslope.distributions.kumaraswamy import Kumaraswamy`` works where the torch import did."""

from __future__ import annotations

from .more import Kumaraswamy

__all__ = ["Kumaraswamy"]
