"""``torch.nn.modules.instancenorm``: the instance norms and their base ``_InstanceNorm``.

Example:
    >>> import downslope as ds
    >>> isinstance(ds.nn.InstanceNorm2d(3), _InstanceNorm)
    True
"""

from __future__ import annotations

from .. import (
    InstanceNorm1d,
    InstanceNorm2d,
    InstanceNorm3d,
    LazyInstanceNorm1d,
    LazyInstanceNorm2d,
    LazyInstanceNorm3d,
)
from ..normalization import _InstanceNorm

__all__ = [
    "InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d", "LazyInstanceNorm1d", "LazyInstanceNorm2d",
    "LazyInstanceNorm3d", "_InstanceNorm",
]  # fmt: skip
