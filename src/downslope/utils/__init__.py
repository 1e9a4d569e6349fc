"""PyTorch's ``torch.utils`` namespace: only ``downslope.utils.data``, which re-exports :mod:`downslope.data`.

Example:
    >>> import downslope.utils.data
    >>> from downslope.utils.data import DataLoader, TensorDataset
    >>> DataLoader is downslope.data.DataLoader
    True
"""

from __future__ import annotations

from . import data

__all__ = ["data"]
