"""``torch.nn.modules.loss``: the losses and their bases ``_Loss`` and ``_WeightedLoss`` (subclassable
as in PyTorch, with its argument order: ``class FocalLoss(_WeightedLoss)`` calling
``super().__init__(weight, size_average, reduce, reduction)`` gets the ``weight`` buffer and ``reduction``).

Example:
    >>> import downslope as ds
    >>> isinstance(ds.nn.MSELoss(), _Loss), isinstance(ds.nn.CrossEntropyLoss(), _WeightedLoss)
    (True, True)
"""

from __future__ import annotations

from ..losses import *  # noqa: F403  (PyTorch's module holds every loss)
from ..losses import __all__ as _losses_all
from ..losses._base import _Loss, _WeightedLoss

__all__ = [*_losses_all, "_Loss", "_WeightedLoss"]
