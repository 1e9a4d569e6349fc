"""The base classes PyTorch's layers share and downslope's do not (each kind of layer is written on
its own here): Module subclasses whose ``isinstance`` also answers True for the downslope layers
PyTorch derives from them, registered as virtual subclasses (:meth:`abc.ABCMeta.register`).

A virtual base keeps downslope's layers as they are and still lets ``isinstance(m, _NormBase)`` pick
the layers PyTorch's would. A class written as ``class MyNorm(_NormBase)`` gets a plain Module (not
PyTorch's constructor arguments), since the downslope layers do not inherit their code from it.

Example:
    >>> import downslope as ds
    >>> isinstance(ds.nn.Dropout(), _DropoutNd), isinstance(ds.nn.Linear(1, 1), _DropoutNd)
    (True, False)
"""

from __future__ import annotations

from abc import ABCMeta
from typing import Any

from ...tensor import Tensor
from .. import (
    AvgPool1d,
    AvgPool2d,
    AvgPool3d,
    CrossEntropyLoss,
    Dropout,
    MaxPool3d,
    Module,
    MultiMarginLoss,
    NLLLoss,
    NLLLoss2d,
)
from ..losses import _base as _losses
from ..normalization import _BatchNorm, _InstanceNorm
from ..pooling import _MaxPoolNd


class _NormBase(Module, metaclass=ABCMeta):
    """PyTorch's common base of the batch and instance norms (``isinstance`` answers for both)."""


class _MaxPoolNdBase(Module, metaclass=ABCMeta):
    """PyTorch's ``_MaxPoolNd``: MaxPool1d, MaxPool2d and MaxPool3d."""


class _AvgPoolNd(Module, metaclass=ABCMeta):
    """PyTorch's ``_AvgPoolNd``: AvgPool1d, AvgPool2d and AvgPool3d."""


class _DropoutNd(Module, metaclass=ABCMeta):
    """PyTorch's ``_DropoutNd``: Dropout and its 1d/2d/3d, alpha and feature-alpha kinds."""


class _WeightedLoss(_losses._Loss, metaclass=ABCMeta):
    """PyTorch's ``_WeightedLoss`` (a loss with a ``weight`` buffer): subclassing it gives
    ``__init__(weight=None, reduction="mean")`` as in PyTorch, and ``isinstance`` answers True for the
    losses PyTorch derives from it (downslope's own weighted losses, and the class-weighted ones that
    downslope writes on ``_Loss``)."""

    def __init__(
        self, weight: Any = None, size_average: bool | None = None, reduce: bool | None = None, reduction: str = "mean"
    ) -> None:
        if size_average is not None or reduce is not None:  # PyTorch's pre-1.0 flags, at its positions
            reduction = "none" if reduce is not None and not reduce else "sum" if size_average is False else "mean"
        super().__init__(reduction)
        self.register_buffer("weight", weight if weight is None or isinstance(weight, Tensor) else Tensor(weight))


_MaxPoolNdBase.__name__ = _MaxPoolNdBase.__qualname__ = "_MaxPoolNd"
_NormBase.register(_BatchNorm)
_NormBase.register(_InstanceNorm)
_MaxPoolNdBase.register(_MaxPoolNd)
_MaxPoolNdBase.register(MaxPool3d)
for _pool in (AvgPool1d, AvgPool2d, AvgPool3d):
    _AvgPoolNd.register(_pool)
_DropoutNd.register(Dropout)
for _loss in (_losses._WeightedLoss, CrossEntropyLoss, NLLLoss, NLLLoss2d, MultiMarginLoss):
    _WeightedLoss.register(_loss)
_Loss = _losses._Loss
