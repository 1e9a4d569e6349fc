"""``torch.distributions.mixture_same_family``'s path to :class:`MixtureSameFamily`, so that
``from downslope.distributions.mixture_same_family import MixtureSameFamily`` works where the torch import did."""

from __future__ import annotations

from .compose import MixtureSameFamily

__all__ = ["MixtureSameFamily"]
