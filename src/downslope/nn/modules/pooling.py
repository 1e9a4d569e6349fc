"""``torch.nn.modules.pooling``: the poolings (max, average, adaptive, LP, fractional, unpooling) and
the bases ``_MaxPoolNd`` and ``_AvgPoolNd``.

Example:
    >>> import downslope as ds
    >>> isinstance(ds.nn.MaxPool3d(2), _MaxPoolNd), isinstance(ds.nn.AvgPool1d(2), _AvgPoolNd)
    (True, True)
"""

from __future__ import annotations

from .. import (
    AdaptiveAvgPool1d,
    AdaptiveAvgPool2d,
    AdaptiveAvgPool3d,
    AdaptiveMaxPool1d,
    AdaptiveMaxPool2d,
    AdaptiveMaxPool3d,
    AvgPool1d,
    AvgPool2d,
    AvgPool3d,
    FractionalMaxPool2d,
    FractionalMaxPool3d,
    LPPool1d,
    LPPool2d,
    LPPool3d,
    MaxPool1d,
    MaxPool2d,
    MaxPool3d,
    MaxUnpool1d,
    MaxUnpool2d,
    MaxUnpool3d,
)
from ._bases import _AvgPoolNd
from ._bases import _MaxPoolNdBase as _MaxPoolNd

__all__ = ["AvgPool1d", "AvgPool2d", "AvgPool3d", "MaxPool1d", "MaxPool2d", "MaxPool3d", "_AvgPoolNd", "_MaxPoolNd"]
# the other poolings of torch's module (AdaptiveAvgPool2d for ResNet heads...)
__all__ += [
    "AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveAvgPool3d", "AdaptiveMaxPool1d", "AdaptiveMaxPool2d",
    "AdaptiveMaxPool3d", "FractionalMaxPool2d", "FractionalMaxPool3d", "LPPool1d", "LPPool2d", "LPPool3d",
    "MaxUnpool1d", "MaxUnpool2d", "MaxUnpool3d",
]  # fmt: skip
