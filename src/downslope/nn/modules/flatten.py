"""``torch.nn.modules.flatten``: Flatten and Unflatten, the same classes as ``downslope.nn``'s.

Example:
    >>> import downslope as ds
    >>> Flatten is ds.nn.Flatten
    True
"""

from __future__ import annotations

from .. import Flatten, Unflatten

__all__ = ["Flatten", "Unflatten"]
