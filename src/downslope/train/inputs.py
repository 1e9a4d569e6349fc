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
from ..tensor import Tensor, wrap_array


def model_float_dtype(model: Any) -> np.dtype[Any] | None:
    """The dtype of ``model``'s first floating parameter when it is not the default dtype (a model
    made ``.double()``), else None: fit, evaluate and predict then give the model its own dtype's data,
    as Keras follows the model's dtype. None (the common float32 case) changes nothing.

    Example:
        >>> from downslope import nn
        >>> model_float_dtype(nn.Linear(2, 1)), model_float_dtype(nn.Linear(2, 1).double())
        (None, dtype('float64'))
    """
    parameters = getattr(model, "parameters", None)
    if not callable(parameters):
        return None
    for p in parameters():
        dtype = getattr(getattr(p, "array", None), "dtype", None)
        if dtype is not None and dtype.kind == "f":
            return None if dtype == backend.get_default_dtype() else np.dtype(dtype)
    return None


def conform(value: Any, dtype: np.dtype[Any] | None) -> Any:
    """A floating Tensor cast to ``dtype`` (the model's, from :func:`model_float_dtype`); anything else,
    or any value when ``dtype`` is None, as it is.

    Example:
        >>> import downslope as ds
        >>> conform(ds.ones(2), np.dtype("float64")).dtype, conform(ds.tensor([1, 2]), np.dtype("float64")).dtype
        (dtype('float64'), dtype('int64'))
    """
    if dtype is None or not isinstance(value, Tensor):
        return value
    arr = value.array
    return wrap_array(arr.astype(dtype)) if arr.dtype.kind == "f" and arr.dtype != dtype else value


def as_dataset(data: Any, where: str, float_dtype: Any = None) -> Dataset:
    """A Dataset as is, or ``(inputs, targets)`` (or Keras' ``(inputs, targets, sample_weights)``) as an
    :class:`ArrayDataset` (floating arrays as ``float_dtype``, the default dtype when None);
    ``where`` names the caller in errors.

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
        return ArrayDataset(*data, float_dtype=float_dtype)
    raise ConfigError(
        f"{where}: expected a DataLoader, a Dataset or a tuple (inputs, targets), got {type(data).__name__}"
    )


def as_loader(
    data: Any,
    batch_size: Any,
    shuffle: bool,
    seed: int | None,
    where: str,
    device: Any = None,
    float_dtype: Any = None,
) -> DataLoader:
    """A DataLoader as is; anything :func:`as_dataset` takes, in a new DataLoader (its batches on
    ``device``, host memory when None; floating arrays as ``float_dtype``).

    Example:
        >>> as_loader(([[1.0], [2.0], [3.0]], [0, 1, 0]), 2, False, None, "evaluate").batch_size
        2
    """
    if isinstance(data, DataLoader):
        return data
    dataset = as_dataset(data, where, float_dtype)
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, seed=seed, device=device)


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
    # the data's own floating dtype carries over (a float64 model's data stays float64)
    floating = [d for d in (getattr(a, "dtype", None) for a in arrays) if d is not None and d.kind == "f"]
    float_dtype = max(floating, key=lambda d: d.itemsize) if floating else None
    train = ArrayDataset(*parts[0::2], check_finite=False, float_dtype=float_dtype)
    val = ArrayDataset(*parts[1::2], check_finite=False, float_dtype=float_dtype)
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


__all__ = [
    "as_dataset",
    "as_loader",
    "split_validation",
    "unpack_batch",
    "resolve_seed",
    "model_float_dtype",
    "conform",
]
