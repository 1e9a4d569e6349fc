"""``torch.distributions.normal``'s path to :class:`Normal`, so that
``from downslope.distributions.normal import Normal`` works where the torch import did."""

from __future__ import annotations

from .continuous import Normal

__all__ = ["Normal"]
