"""``torch.nn.modules.distance``: PairwiseDistance and CosineSimilarity, the same classes as ``downslope.nn``'s.

Example:
    >>> import downslope as ds
    >>> CosineSimilarity is ds.nn.CosineSimilarity
    True
"""

from __future__ import annotations

from .. import CosineSimilarity, PairwiseDistance

__all__ = ["PairwiseDistance", "CosineSimilarity"]
