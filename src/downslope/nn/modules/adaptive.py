"""``torch.nn.modules.adaptive``: AdaptiveLogSoftmaxWithLoss, the same classes as ``downslope.nn``'s.

Example:
    >>> import downslope as ds
    >>> AdaptiveLogSoftmaxWithLoss is ds.nn.AdaptiveLogSoftmaxWithLoss
    True
"""

from __future__ import annotations

from .. import AdaptiveLogSoftmaxWithLoss

__all__ = ["AdaptiveLogSoftmaxWithLoss"]
