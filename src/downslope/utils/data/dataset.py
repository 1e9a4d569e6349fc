"""``torch.utils.data.dataset``: the dataset classes and ``random_split``, the same objects as :mod:`downslope.data`'s.

Example:
    >>> import downslope as ds
    >>> from downslope.utils.data import dataset
    >>> dataset.Dataset is ds.data.Dataset
    True
"""

from __future__ import annotations

from ...data import (
    ChainDataset,
    ConcatDataset,
    Dataset,
    IterableDataset,
    StackDataset,
    Subset,
    TensorDataset,
    random_split,
)

__all__ = [
    "Dataset",
    "IterableDataset",
    "TensorDataset",
    "StackDataset",
    "ConcatDataset",
    "ChainDataset",
    "Subset",
    "random_split",
]
