"""``torch.distributions.multinomial``'s path to :class:`Multinomial`, so that
``from downslope.distributions.multinomial import Multinomial`` works where the torch import did."""

from __future__ import annotations

from .families import Multinomial

__all__ = ["Multinomial"]
