"""``torch.nn.modules.normalization``: LayerNorm, GroupNorm, RMSNorm, LocalResponseNorm, CrossMapLRN2d, the same classes as ``downslope.nn``'s.

Example:
    >>> import downslope as ds
    >>> LayerNorm is ds.nn.LayerNorm
    True
"""

from __future__ import annotations

from .. import CrossMapLRN2d, GroupNorm, LayerNorm, LocalResponseNorm, RMSNorm

__all__ = ["LocalResponseNorm", "CrossMapLRN2d", "LayerNorm", "GroupNorm", "RMSNorm"]
