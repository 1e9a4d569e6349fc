"""``torch.distributions.gumbel``'s path to :class:`Gumbel`, so that
``from downslope.distributions.gumbel import Gumbel`` works where the torch import did."""

from __future__ import annotations

from .continuous import Gumbel

__all__ = ["Gumbel"]
