"""``torch.distributions.chi2``'s path to :class:`Chi2`, so that
``from downslope.distributions.chi2 import Chi2`` works where the torch import did."""

from __future__ import annotations

from .continuous import Chi2

__all__ = ["Chi2"]
