"""What ``fit``, ``evaluate``, ``lr_find`` and ``distributed.fit`` accept as data, turned into loaders.

``(x, y)`` arrays, a Dataset or a DataLoader become a DataLoader; ``validation_split`` holds out a
seeded random fraction; every batch must be ``(inputs, targets)``; a seed of None is drawn from
the library's generator, so ``ds.manual_seed`` makes a run reproducible.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import backend
from ..data.dataset import ArrayDataset, Dataset, dataset_arrays
from ..data.loader import DataLoader
from ..data.split import train_test_split
from ..errors import ConfigError
from ..tensor import Tensor


def as_dataset(data: Any, where: str) -> Dataset:
    """A Dataset as is, or ``(inputs, targets)`` (or Keras' ``(inputs, targets, sample_weights)``) as an
    :class:`ArrayDataset`; ``where`` names the caller in errors.

    Example:
        >>> len(as_dataset(([[1.0], [2.0]], [0, 1]), "fit(train=...)"))
        2
    """
    if isinstance(data, Dataset):
        return data
    if isinstance(data, (tuple, list)):
        if len(data) not in (2, 3):
            raise ConfigError(
                f"{where}: expected (inputs, targets) or (inputs, targets, sample_weights), got a "
                f"{type(data).__name__} of {len(data)} items"
            )
        return ArrayDataset(*data)
    raise ConfigError(
        f"{where}: expected a DataLoader, a Dataset or a tuple (inputs, targets), got {type(data).__name__}"
    )


def as_loader(
    data: Any, batch_size: Any, shuffle: bool, seed: int | None, where: str, device: Any = None
) -> DataLoader:
    """A DataLoader as is; anything :func:`as_dataset` takes, in a new DataLoader (its batches on
    ``device``, host memory when None).

    Example:
        >>> as_loader(([[1.0], [2.0], [3.0]], [0, 1, 0]), 2, False, None, "evaluate").batch_size
        2
    """
    if isinstance(data, DataLoader):
        return data
    return DataLoader(as_dataset(data, where), batch_size=batch_size, shuffle=shuffle, seed=seed, device=device)


def split_validation(
    dataset: Dataset, fraction: float, seed: int, where: str = "fit", shuffle: bool = True
) -> tuple[Dataset, Dataset]:
    """``(train, validation)``: a seeded random ``fraction`` of an array-backed dataset held out; with
    ``shuffle=False`` the last rows, in order, as Keras holds them out (for a time series, training
    then never sees the rows after the validation ones).

    Example:
        >>> import numpy as np
        >>> train, val = split_validation(ArrayDataset(np.zeros((10, 2)), np.zeros(10)), 0.2, seed=0)
        >>> len(train), len(val)
        (8, 2)
    """
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0.0 < fraction < 1.0:
        raise ConfigError(f"{where}: validation_split must be a fraction in (0, 1), got {fraction!r}")
    arrays = dataset_arrays(dataset)
    if arrays is None:
        raise ConfigError(f"{where}: validation_split needs array data; pass validation=... for other datasets")
    if not shuffle:
        n = len(arrays[0])
        cut = n - max(1, int(round(n * float(fraction))))
        parts = [piece for a in arrays for piece in (a[:cut], a[cut:])]
    else:
        parts = train_test_split(*arrays, test_size=float(fraction), seed=seed)
    train = ArrayDataset(*parts[0::2], check_finite=False)
    val = ArrayDataset(*parts[1::2], check_finite=False)
    return train, val


def unpack_batch(batch: Sequence[Tensor], where: str, weights: bool = False) -> Any:
    """``(inputs, targets)`` of a batch; any other number of fields is a ConfigError naming ``where``.
    With ``weights=True``, ``(inputs, targets, sample_weights)``: a batch of three fields carries
    per-sample weights (Keras' ``(x, y, sample_weight)``), one of two gives None for them.

    Example:
        >>> unpack_batch((1, 2), "fit"), unpack_batch((1, 2), "fit", weights=True)
        ((1, 2), (1, 2, None))
    """
    if weights and len(batch) == 3:
        return batch[0], batch[1], batch[2]
    if len(batch) != 2:
        expected = "(inputs, targets) or (inputs, targets, sample_weights)" if weights else "(inputs, targets)"
        raise ConfigError(f"{where}: expected batches of {expected}, got {len(batch)} field(s)")
    return (batch[0], batch[1], None) if weights else (batch[0], batch[1])


def resolve_seed(seed: int | None, where: str = "fit") -> int:
    """``seed`` checked, or one drawn from the library's generator when None (``ds.manual_seed`` fixes it).

    Example:
        >>> resolve_seed(7)
        7
    """
    if seed is None:
        return int(backend.rng().integers(0, 2**63 - 1))
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"{where}: seed must be a non-negative integer or None, got {seed!r}")
    return int(seed)


__all__ = ["as_dataset", "as_loader", "split_validation", "unpack_batch", "resolve_seed"]
