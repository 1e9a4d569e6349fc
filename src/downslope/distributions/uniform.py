"""``torch.distributions.uniform``'s path to :class:`Uniform`, so that
``from downslope.distributions.uniform import Uniform`` works where the torch import did."""

from __future__ import annotations

from .continuous import Uniform

__all__ = ["Uniform"]
