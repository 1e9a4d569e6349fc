"""``torch.nn.modules.dropout``: the dropouts and their base ``_DropoutNd``.

Example:
    >>> import downslope as ds
    >>> isinstance(ds.nn.Dropout2d(), _DropoutNd)
    True
"""

from __future__ import annotations

from .. import AlphaDropout, Dropout, Dropout1d, Dropout2d, Dropout3d, FeatureAlphaDropout
from ._bases import _DropoutNd

__all__ = ["AlphaDropout", "Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "FeatureAlphaDropout", "_DropoutNd"]
