"""``torch.nn.modules.pooling``: the max and average poolings and their bases ``_MaxPoolNd`` and
``_AvgPoolNd``.

Example:
    >>> import downslope as ds
    >>> isinstance(ds.nn.MaxPool3d(2), _MaxPoolNd), isinstance(ds.nn.AvgPool1d(2), _AvgPoolNd)
    (True, True)
"""

from __future__ import annotations

from .. import AvgPool1d, AvgPool2d, AvgPool3d, MaxPool1d, MaxPool2d, MaxPool3d
from ._bases import _AvgPoolNd
from ._bases import _MaxPoolNdBase as _MaxPoolNd

__all__ = ["AvgPool1d", "AvgPool2d", "AvgPool3d", "MaxPool1d", "MaxPool2d", "MaxPool3d", "_AvgPoolNd", "_MaxPoolNd"]
