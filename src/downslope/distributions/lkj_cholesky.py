"""``torch.distributions.lkj_cholesky``'s path to :class:`LKJCholesky`, so that
``from downslope.distributions.lkj_cholesky import LKJCholesky`` works where the torch import did."""

from __future__ import annotations

from .more import LKJCholesky

__all__ = ["LKJCholesky"]
