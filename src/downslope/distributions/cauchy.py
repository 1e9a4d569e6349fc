"""``torch.distributions.cauchy``'s path to :class:`Cauchy`, so that
``from downslope.distributions.cauchy import Cauchy`` works where the torch import did."""

from __future__ import annotations

from .continuous import Cauchy

__all__ = ["Cauchy"]
