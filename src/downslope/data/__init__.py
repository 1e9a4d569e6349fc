"""Data: datasets, the DataLoader (full batch / stochastic / mini-batch) and train/test splits."""

from .dataset import (
    ArrayDataset,
    ChainDataset,
    ConcatDataset,
    Dataset,
    IterableDataset,
    LazyDataset,
    StackDataset,
    Subset,
    TensorDataset,
)
from .loader import DataLoader, default_collate, default_convert, get_worker_info
from .sampler import (
    BatchSampler,
    RandomSampler,
    Sampler,
    SequentialSampler,
    SubsetRandomSampler,
    WeightedRandomSampler,
)
from .split import random_split, train_test_split

__all__ = [
    "Dataset", "ArrayDataset", "TensorDataset", "LazyDataset", "Subset", "ConcatDataset", "DataLoader", "default_collate",
    "random_split", "train_test_split", "Sampler", "SequentialSampler", "RandomSampler", "SubsetRandomSampler",
    "WeightedRandomSampler", "BatchSampler", "IterableDataset", "ChainDataset", "StackDataset", "default_convert",
    "get_worker_info",
]  # fmt: skip
