"""Data: datasets, the DataLoader (full batch / stochastic / mini-batch) and train/test splits."""

from .dataset import ArrayDataset, Dataset, LazyDataset, Subset, TensorDataset
from .loader import DataLoader
from .split import random_split, train_test_split

__all__ = [
    "Dataset",
    "ArrayDataset",
    "TensorDataset",
    "LazyDataset",
    "Subset",
    "DataLoader",
    "random_split",
    "train_test_split",
]
