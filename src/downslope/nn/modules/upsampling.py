"""``torch.nn.modules.upsampling``: Upsample and its bilinear and nearest forms, the same classes as ``downslope.nn``'s.

Example:
    >>> import downslope as ds
    >>> Upsample is ds.nn.Upsample
    True
"""

from __future__ import annotations

from .. import Upsample, UpsamplingBilinear2d, UpsamplingNearest2d

__all__ = ["Upsample", "UpsamplingNearest2d", "UpsamplingBilinear2d"]
