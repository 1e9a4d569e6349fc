"""``torch.distributions.fishersnedecor``'s path to :class:`FisherSnedecor`, so that
``from downslope.distributions.fishersnedecor import FisherSnedecor`` works where the torch import did."""

from __future__ import annotations

from .more import FisherSnedecor

__all__ = ["FisherSnedecor"]
