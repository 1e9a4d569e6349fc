"""``torch.nn.modules.fold``: Fold and Unfold, the same classes as ``downslope.nn``'s.

Example:
    >>> import downslope as ds
    >>> Fold is ds.nn.Fold
    True
"""

from __future__ import annotations

from .. import Fold, Unfold

__all__ = ["Fold", "Unfold"]
