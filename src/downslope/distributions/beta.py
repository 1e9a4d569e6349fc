"""``torch.distributions.beta``'s path to :class:`Beta`, so that
``from downslope.distributions.beta import Beta`` works where the torch import did."""

from __future__ import annotations

from .continuous import Beta

__all__ = ["Beta"]
