"""``torch.nn.modules.batchnorm``: the batch norms and their bases ``_BatchNorm`` and ``_NormBase``.

Example:
    >>> import downslope as ds
    >>> isinstance(ds.nn.BatchNorm1d(2), _NormBase), isinstance(ds.nn.InstanceNorm1d(2), _BatchNorm)
    (True, False)
"""

from __future__ import annotations

from .. import BatchNorm1d, BatchNorm2d, BatchNorm3d, LazyBatchNorm1d, LazyBatchNorm2d, LazyBatchNorm3d, SyncBatchNorm
from ..normalization import _BatchNorm
from ._bases import _NormBase

__all__ = [
    "BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "LazyBatchNorm1d", "LazyBatchNorm2d", "LazyBatchNorm3d",
    "SyncBatchNorm", "_BatchNorm", "_NormBase",
]  # fmt: skip
