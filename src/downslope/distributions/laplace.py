"""``torch.distributions.laplace``'s path to :class:`Laplace`, so that
``from downslope.distributions.laplace import Laplace`` works where the torch import did."""

from __future__ import annotations

from .continuous import Laplace

__all__ = ["Laplace"]
