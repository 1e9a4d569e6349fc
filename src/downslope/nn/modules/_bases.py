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

from .. import (
    AvgPool1d,
    AvgPool2d,
    AvgPool3d,
    Dropout,
    MaxPool3d,
    Module,
)
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


_MaxPoolNdBase.__name__ = _MaxPoolNdBase.__qualname__ = "_MaxPoolNd"
_NormBase.register(_BatchNorm)
_NormBase.register(_InstanceNorm)
_MaxPoolNdBase.register(_MaxPoolNd)
_MaxPoolNdBase.register(MaxPool3d)
for _pool in (AvgPool1d, AvgPool2d, AvgPool3d):
    _AvgPoolNd.register(_pool)
_DropoutNd.register(Dropout)
