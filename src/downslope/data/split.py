"""Splitting data: ``random_split`` (PyTorch) for datasets, ``train_test_split`` (scikit-learn) for arrays."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import backend
from ..devices import is_array, to_host
from ..errors import ArgumentTypeError, ConfigError, DataError, ShapeError
from ..generator import as_numpy_generator
from ..tensor import Tensor, wrap_array
from .dataset import Dataset, Subset, take_rows


def _generator(seed: int | None, where: str) -> np.random.Generator:
    if seed is None:
        return backend.rng()
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"{where}: seed must be a non-negative integer or None, got {seed!r}")
    return np.random.Generator(np.random.PCG64(int(seed)))


def random_split(
    dataset: Dataset,
    lengths: Sequence[int | float],
    seed: int | None = None,
    generator: Any = None,
) -> list[Subset]:
    """Split a dataset into non-overlapping random subsets of the given lengths.

    ``lengths`` are sample counts summing to ``len(dataset)``, or fractions summing to 1 (counts are
    floored, and the remainder handed out one by one from the first subset on, as PyTorch does; lengths
    summing to 1 are fractions whatever the size, as in PyTorch). The order drawn for a seed is
    downslope's own (repeatable, but not PyTorch's for the same seed).
    Without a seed the library generator is used (:func:`downslope.manual_seed` fixes it);
    ``generator`` (a :class:`downslope.Generator`, as ``torch.Generator().manual_seed(42)`` in PyTorch,
    or a ``numpy.random.Generator``) draws the order instead.

    Example:
        >>> import numpy as np
        >>> from downslope.data import ArrayDataset
        >>> train, val = random_split(ArrayDataset(np.arange(10.0)), [0.8, 0.2], seed=0)
        >>> len(train), len(val)
        (8, 2)
    """
    n = len(dataset)
    if len(lengths) == 0:
        raise ConfigError("random_split: expected at least one length, got none")
    if any(isinstance(x, bool) or not isinstance(x, (int, float, np.integer, np.floating)) for x in lengths):
        raise ArgumentTypeError(f"random_split: lengths must be numbers, got {list(lengths)!r}")
    if any(x < 0 for x in lengths):
        raise ConfigError(f"random_split: lengths must be non-negative, got {list(lengths)}")
    # PyTorch's rule: lengths summing to 1 (not above) are fractions, whatever the dataset's size (so
    # [0.5, 0.5] of one sample gives [1, 0], and [1] of one sample is the whole of it either way)
    if math.isclose(sum(lengths), 1) and sum(lengths) <= 1:
        for i, f in enumerate(lengths):
            if f > 1:
                raise ConfigError(f"random_split: fraction at index {i} is not between 0 and 1, got {f}")
        counts = [int(math.floor(n * f)) for f in lengths]
        for i in range(n - sum(counts)):
            counts[i % len(counts)] += 1
    else:
        if any(isinstance(x, (float, np.floating)) and not float(x).is_integer() for x in lengths):
            raise ConfigError(
                f"random_split: fractional lengths must sum to 1, got {list(lengths)} (sum {sum(lengths)})"
            )
        counts = [int(x) for x in lengths]
        if sum(counts) != n:
            raise ConfigError(f"random_split: lengths {counts} sum to {sum(counts)}, but the dataset has {n} samples")
    if generator is not None:
        if seed is not None:
            raise ConfigError("random_split: pass either seed or generator, not both")
        rng = as_numpy_generator(generator, "random_split")
    else:
        rng = _generator(seed, "random_split")
    order = rng.permutation(n)
    bounds = np.cumsum([0, *counts])
    return [Subset(dataset, order[bounds[i] : bounds[i + 1]]) for i in range(len(counts))]


def _split_size(value: Any, n: int, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ArgumentTypeError(
            f"train_test_split: {name} must be a fraction in (0, 1) or a sample count, got {value!r}"
        )
    if isinstance(value, (float, np.floating)):
        if not 0.0 < value < 1.0:
            raise ConfigError(f"train_test_split: {name} as a fraction must lie in (0, 1), got {value}")
        return int(math.ceil(value * n)) if name == "test_size" else int(math.floor(value * n))
    if not 0 < value < n:
        raise ConfigError(f"train_test_split: {name} as a count must lie in [1, {n - 1}] for {n} samples, got {value}")
    return int(value)


def _stratified_test_indices(labels: np.ndarray, n_test: int, rng: np.random.Generator) -> np.ndarray:
    """Pick test samples so that each class keeps (as nearly as whole samples allow) its share."""
    classes, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    if counts.min() < 2:
        lonely = classes[np.argmin(counts)].item()  # a plain value: the message shows 0, not np.int64(0)
        raise DataError(
            f"train_test_split: stratify needs at least 2 samples of every class; class {lonely!r} has only 1"
        )
    ideal = counts * (n_test / len(labels))
    per_class = np.floor(ideal).astype(np.int64)
    # Hand the samples lost to flooring to the classes with the largest remainders (ties at random).
    remainder = ideal - per_class
    tiebreak = rng.random(len(classes))
    for k in np.lexsort((tiebreak, -remainder))[: n_test - int(per_class.sum())]:
        per_class[k] += 1
    chosen = [rng.permutation(np.flatnonzero(inverse == k))[: per_class[k]] for k in range(len(classes))]
    return np.concatenate(chosen)


def _data_of(value: Any) -> Any:
    """A Tensor's array, a device array as it is (np.asarray would refuse it), anything else as a NumPy array."""
    if isinstance(value, Tensor):
        return value.array
    if not isinstance(value, np.ndarray) and is_array(value):
        return value
    return np.asarray(value)


def train_test_split(
    *arrays: Any,
    test_size: float | int | None = None,
    train_size: float | int | None = None,
    shuffle: bool = True,
    stratify: Any = None,
    seed: int | None = None,
) -> list[Any]:
    """Split arrays (or Tensors) into train and test parts: ``x_tr, x_te, y_tr, y_te = train_test_split(x, y)``.

    scikit-learn's semantics: ``test_size`` defaults to 0.25; a fraction rounds the test count up.
    ``stratify=y`` keeps each class's proportion in both parts. Without ``seed`` the library
    generator is used. Tensors come back as Tensors, anything else as NumPy arrays; data on a device (a
    CUDA tensor, a CuPy array) stays there (the order is drawn on the host and its indices copied over).

    Example:
        >>> import numpy as np
        >>> x, y = np.arange(20.0).reshape(10, 2), np.array([0, 1] * 5)
        >>> x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.2, stratify=y, seed=0)
        >>> x_tr.shape, x_te.shape, sorted(y_te.tolist())
        ((8, 2), (2, 2), [0, 1])
    """
    if not arrays:
        raise DataError("train_test_split: expected at least one array, got none")
    datas = [_data_of(a) for a in arrays]
    if any(d.ndim == 0 for d in datas):
        raise ShapeError("train_test_split: expected arrays with a first axis of samples, got a scalar")
    n = len(datas[0])
    if any(len(d) != n for d in datas):
        raise ShapeError(
            f"train_test_split: all arrays must have the same number of samples; got shapes {[d.shape for d in datas]}"
        )
    if n < 2:
        raise DataError(f"train_test_split: need at least 2 samples to split, got {n}")
    n_test = _split_size(test_size, n, "test_size")
    n_train = _split_size(train_size, n, "train_size")
    if n_test is None:
        n_test = n - n_train if n_train is not None else int(math.ceil(0.25 * n))
    if n_train is None:
        n_train = n - n_test
    if n_train + n_test > n or n_train < 1 or n_test < 1:
        raise ConfigError(
            f"train_test_split: train_size {n_train} + test_size {n_test} samples do not fit in {n} samples "
            "(each part needs at least one)"
        )
    rng = _generator(seed, "train_test_split")
    if stratify is not None:
        if not shuffle:
            raise ConfigError("train_test_split: stratify requires shuffle=True")
        # host: the classes are counted and drawn on the host (device labels are copied over once)
        labels = to_host(stratify.array if isinstance(stratify, Tensor) else stratify)
        if labels.shape != (n,):
            raise ShapeError(
                f"train_test_split: stratify must be {n} class labels, shape ({n},); got shape {tuple(labels.shape)}"
            )
        test_idx = _stratified_test_indices(labels, n_test, rng)
        rest = np.setdiff1d(np.arange(n), test_idx, assume_unique=True)
        train_idx = rng.permutation(rest)[:n_train]
        test_idx = rng.permutation(test_idx)
    elif shuffle:
        order = rng.permutation(n)
        test_idx, train_idx = order[:n_test], order[n_test : n_test + n_train]
    else:
        train_idx, test_idx = np.arange(n_train), np.arange(n_train, n_train + n_test)
    out: list[Any] = []
    for original, data in zip(arrays, datas):
        for idx in (train_idx, test_idx):
            part = take_rows(data, idx)
            out.append(wrap_array(part) if isinstance(original, Tensor) else part)
    return out
