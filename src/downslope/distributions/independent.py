"""``torch.distributions.independent``'s path to :class:`Independent`, so that
``from downslope.distributions.independent import Independent`` works where the torch import did."""

from __future__ import annotations

from .compose import Independent

__all__ = ["Independent"]
