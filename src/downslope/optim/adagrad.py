"""PyTorch's module path ``torch.optim.adagrad``: :class:`Adagrad` (defined in :mod:`downslope.optim.adaptive`)."""

from __future__ import annotations

from .adaptive import Adagrad

__all__ = ["Adagrad"]
