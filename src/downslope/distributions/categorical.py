"""``torch.distributions.categorical``'s path to :class:`Categorical`, so that
``from downslope.distributions.categorical import Categorical`` works where the torch import did."""

from __future__ import annotations

from .discrete import Categorical

__all__ = ["Categorical"]
