"""PyTorch's module path ``torch.optim.asgd``: :class:`ASGD` (defined in :mod:`downslope.optim.sgd`)."""

from __future__ import annotations

from .sgd import ASGD

__all__ = ["ASGD"]
