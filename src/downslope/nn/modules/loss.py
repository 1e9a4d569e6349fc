"""``torch.nn.modules.loss``: the losses and their bases ``_Loss`` and ``_WeightedLoss`` (subclassable
as in PyTorch: ``class FocalLoss(_WeightedLoss)`` gets the ``weight`` buffer and ``reduction``).

Example:
    >>> import downslope as ds
    >>> isinstance(ds.nn.MSELoss(), _Loss), isinstance(ds.nn.CrossEntropyLoss(), _WeightedLoss)
    (True, True)
"""

from __future__ import annotations

from ..losses import *  # noqa: F403  (PyTorch's module holds every loss)
from ..losses import __all__ as _losses_all
from ._bases import _Loss, _WeightedLoss

__all__ = [*_losses_all, "_Loss", "_WeightedLoss"]
