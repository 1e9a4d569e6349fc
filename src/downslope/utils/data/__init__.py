"""``downslope.utils.data``: PyTorch's module path for datasets and loaders.

The same objects as :mod:`downslope.data` (one implementation), so a program written against
``torch.utils.data`` runs with only its import changed; PyTorch's submodules ``dataset``,
``sampler`` and ``dataloader`` hold the same names as theirs.

Example:
    >>> import downslope as ds
    >>> from downslope.utils.data import DataLoader, TensorDataset
    >>> loader = DataLoader(TensorDataset(ds.randn(10, 3), ds.zeros(10)), batch_size=4)
    >>> [x.shape for x, y in loader]
    [(4, 3), (4, 3), (2, 3)]
"""

from __future__ import annotations

from ...data import (
    ArrayDataset,
    BatchSampler,
    ChainDataset,
    ConcatDataset,
    DataLoader,
    Dataset,
    IterableDataset,
    RandomSampler,
    Sampler,
    SequentialSampler,
    StackDataset,
    Subset,
    SubsetRandomSampler,
    TensorDataset,
    WeightedRandomSampler,
    default_collate,
    default_convert,
    get_worker_info,
    random_split,
    train_test_split,
)
from . import dataloader as dataloader
from . import dataset as dataset
from . import sampler as sampler

__all__ = [
    "Dataset", "ArrayDataset", "TensorDataset", "Subset", "ConcatDataset", "DataLoader", "default_collate",
    "random_split", "train_test_split", "Sampler", "SequentialSampler", "RandomSampler", "SubsetRandomSampler",
    "WeightedRandomSampler", "BatchSampler", "IterableDataset", "ChainDataset", "StackDataset", "default_convert",
    "get_worker_info", "dataset", "sampler", "dataloader",
]  # fmt: skip
