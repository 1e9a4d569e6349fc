"""``torch.distributions.gamma``'s path to :class:`Gamma`, so that
``from downslope.distributions.gamma import Gamma`` works where the torch import did."""

from __future__ import annotations

from .continuous import Gamma

__all__ = ["Gamma"]
