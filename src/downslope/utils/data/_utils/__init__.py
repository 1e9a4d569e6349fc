"""``torch.utils.data._utils``: PyTorch's private package path, which older code imports
``default_collate`` from (``from torch.utils.data._utils.collate import default_collate``); only its
``collate`` module is here, holding the same objects as :mod:`downslope.data`'s.

Example:
    >>> from downslope.utils.data._utils.collate import default_collate
    >>> import downslope as ds
    >>> default_collate is ds.data.default_collate
    True
"""

from __future__ import annotations

from . import collate

__all__ = ["collate"]
