"""``torch.distributions.dirichlet``'s path to :class:`Dirichlet`, so that
``from downslope.distributions.dirichlet import Dirichlet`` works where the torch import did."""

from __future__ import annotations

from .continuous import Dirichlet

__all__ = ["Dirichlet"]
