"""``torch.distributions.bernoulli``'s path to :class:`Bernoulli`, so that
``from downslope.distributions.bernoulli import Bernoulli`` works where the torch import did."""

from __future__ import annotations

from .discrete import Bernoulli

__all__ = ["Bernoulli"]
