"""``torch.distributions.logistic_normal``'s path to :class:`LogisticNormal`, so that
``from downslope.distributions.logistic_normal import LogisticNormal`` works where the torch import did."""

from __future__ import annotations

from .more import LogisticNormal

__all__ = ["LogisticNormal"]
