"""PyTorch's ``torch.nn.parameter``: :class:`Parameter`, :class:`Buffer`, the uninitialized
parameters and buffers of lazy modules, and :func:`is_lazy`.

Example:
    >>> from downslope.nn.parameter import UninitializedParameter, is_lazy
    >>> is_lazy(UninitializedParameter())
    True
"""

from __future__ import annotations

from .module.parameter import (
    Buffer,
    Parameter,
    UninitializedBuffer,
    UninitializedParameter,
    UninitializedTensorMixin,
    is_lazy,
)

__all__ = [
    "Parameter",
    "Buffer",
    "UninitializedParameter",
    "UninitializedBuffer",
    "UninitializedTensorMixin",
    "is_lazy",
]
