"""``torch.nn.modules.pixelshuffle``: PixelShuffle and PixelUnshuffle, the same classes as ``downslope.nn``'s.

Example:
    >>> import downslope as ds
    >>> PixelShuffle is ds.nn.PixelShuffle
    True
"""

from __future__ import annotations

from .. import PixelShuffle, PixelUnshuffle

__all__ = ["PixelShuffle", "PixelUnshuffle"]
