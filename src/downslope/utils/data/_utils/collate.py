"""``torch.utils.data._utils.collate``: PyTorch's private module path for the collate functions, which
older code imports from; the same objects as :mod:`downslope.data`'s (one implementation).

Example:
    >>> import numpy as np
    >>> from downslope.utils.data._utils.collate import default_collate
    >>> default_collate([np.zeros(2, np.uint8), np.ones(2, np.uint8)]).dtype
    dtype('uint8')
"""

from __future__ import annotations

from ....data import default_collate, default_convert

__all__ = ["default_collate", "default_convert"]
