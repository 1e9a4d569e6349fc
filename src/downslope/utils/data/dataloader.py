"""``torch.utils.data.dataloader``: the loader and its collate helpers, the same objects as :mod:`downslope.data`'s.

Example:
    >>> import downslope as ds
    >>> from downslope.utils.data import dataloader
    >>> dataloader.DataLoader is ds.data.DataLoader
    True
"""

from __future__ import annotations

from ...data import (
    DataLoader,
    default_collate,
    default_convert,
    get_worker_info,
)

__all__ = ["DataLoader", "get_worker_info", "default_collate", "default_convert"]
