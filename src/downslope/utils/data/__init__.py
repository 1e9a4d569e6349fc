"""``downslope.utils.data``: PyTorch's module path for datasets and loaders.

The same objects as :mod:`downslope.data` (one implementation), so a program written against
``torch.utils.data`` runs with only its import changed; PyTorch's submodules ``dataset``,
``sampler`` and ``dataloader`` hold the same names as theirs. ``DistributedSampler`` (and the
submodule ``distributed``) is :mod:`downslope.distributed`'s, loaded on first use.

Example:
    >>> import downslope as ds
    >>> from downslope.utils.data import DataLoader, TensorDataset
    >>> loader = DataLoader(TensorDataset(ds.randn(10, 3), ds.zeros(10)), batch_size=4)
    >>> [x.shape for x, y in loader]
    [downslope.Size([4, 3]), downslope.Size([4, 3]), downslope.Size([2, 3])]
"""

from __future__ import annotations

from typing import Any

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
from . import _utils as _utils  # torch.utils.data._utils.collate, where older code imports default_collate
from . import dataloader as dataloader
from . import dataset as dataset
from . import sampler as sampler

__all__ = [
    "Dataset", "ArrayDataset", "TensorDataset", "Subset", "ConcatDataset", "DataLoader", "default_collate",
    "random_split", "train_test_split", "Sampler", "SequentialSampler", "RandomSampler", "SubsetRandomSampler",
    "WeightedRandomSampler", "BatchSampler", "IterableDataset", "ChainDataset", "StackDataset", "default_convert",
    "get_worker_info", "dataset", "sampler", "dataloader", "DistributedSampler",
]  # fmt: skip


def __getattr__(name: str) -> Any:
    # DistributedSampler lives in downslope.distributed, which sits above this package's data layer:
    # loaded on first use, so that importing downslope.utils.data stays light
    if name in ("DistributedSampler", "distributed"):
        import importlib

        module = importlib.import_module(f"{__name__}.distributed")
        value = module if name == "distributed" else module.DistributedSampler
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}", name=name)
