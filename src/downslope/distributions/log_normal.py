"""``torch.distributions.log_normal``'s path to :class:`LogNormal`, so that
``from downslope.distributions.log_normal import LogNormal`` works where the torch import did."""

from __future__ import annotations

from .transforms import LogNormal

__all__ = ["LogNormal"]
