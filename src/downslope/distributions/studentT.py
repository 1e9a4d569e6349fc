"""``torch.distributions.studentT``'s path to :class:`StudentT`, so that
``from downslope.distributions.studentT import StudentT`` works where the torch import did."""

from __future__ import annotations

from .continuous import StudentT

__all__ = ["StudentT"]
