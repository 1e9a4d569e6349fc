"""``torch.distributions.half_normal``'s path to :class:`HalfNormal`, so that
``from downslope.distributions.half_normal import HalfNormal`` works where the torch import did."""

from __future__ import annotations

from .continuous import HalfNormal

__all__ = ["HalfNormal"]
