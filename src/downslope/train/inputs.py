"""What ``fit``, ``evaluate``, ``lr_find`` and ``distributed.fit`` accept as data, turned into loaders.

``(x, y)`` arrays, a Dataset or a DataLoader become a DataLoader (integer feature arrays as the
model's floating dtype, as Keras reads them); ``validation_split`` holds out the last fraction of
the rows, as Keras does; every batch must be ``(inputs, targets)``; a seed of None is drawn from
the library's generator, so ``ds.manual_seed`` makes a run reproducible.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import backend
from ..data.dataset import ArrayDataset, Dataset, dataset_arrays
from ..data.loader import DataLoader
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


def _reads_indices(model: Any) -> bool:
    """Whether ``model`` holds a layer that takes integer indices as input (Embedding, EmbeddingBag)."""
    modules = getattr(model, "modules", None)
    if not callable(modules):
        return False
    from ..nn import Embedding, EmbeddingBag

    return any(isinstance(m, (Embedding, EmbeddingBag)) for m in modules())


def features_as_float(x: Any, float_dtype: Any, model: Any) -> Any:
    """Integer or boolean feature arrays (a NumPy array, a list, a Tensor) as ``float_dtype`` (the default
    dtype when None), as Keras' layers read them; floating data, other values, and any input of a model
    that holds an Embedding (integer token ids) as they are.

    Example:
        >>> from downslope import nn
        >>> features_as_float(np.array([[1, 2]]), None, nn.Linear(2, 1)).dtype
        dtype('float32')
    """
    if model is None:
        return x
    if isinstance(x, Tensor):
        kind = x.array.dtype.kind
    elif isinstance(x, (np.ndarray, list)):
        x = np.asarray(x)
        kind = x.dtype.kind
    else:
        return x
    if kind not in "iub" or _reads_indices(model):
        return x
    dtype = float_dtype if float_dtype is not None else backend.get_default_dtype()
    return wrap_array(x.array.astype(dtype)) if isinstance(x, Tensor) else x.astype(dtype)


def as_dataset(data: Any, where: str, float_dtype: Any = None, model: Any = None) -> Dataset:
    """A Dataset as is, or ``(inputs, targets)`` (or Keras' ``(inputs, targets, sample_weights)``) as an
    :class:`ArrayDataset` (floating arrays as ``float_dtype``, the default dtype when None);
    ``where`` names the caller in errors. Given the ``model``, integer feature arrays become
    ``float_dtype`` too (:func:`features_as_float`); targets keep their dtype.

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
        return ArrayDataset(features_as_float(data[0], float_dtype, model), *data[1:], float_dtype=float_dtype)
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
    model: Any = None,
) -> DataLoader:
    """A DataLoader as is; anything :func:`as_dataset` takes, in a new DataLoader (its batches on
    ``device``, host memory when None; floating arrays as ``float_dtype``; integer features too,
    given the ``model``).

    Example:
        >>> as_loader(([[1.0], [2.0], [3.0]], [0, 1, 0]), 2, False, None, "evaluate").batch_size
        2
    """
    if isinstance(data, DataLoader):
        return data
    dataset = as_dataset(data, where, float_dtype, model)
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, seed=seed, device=device)


def split_validation(
    dataset: Dataset, fraction: float, seed: int, where: str = "fit", shuffle: bool = True
) -> tuple[Dataset, Dataset]:
    """``(train, validation)``: the last rows of an array-backed dataset held out, in order, exactly as
    Keras' ``validation_split`` holds them out: the first ``floor(n * (1 - fraction))`` rows train, the
    others validate, before any shuffling (fit's ``shuffle`` then shuffles the training rows only).
    Shuffle the data yourself first if its order means something (sorted by class or time) and you
    want a random split. ``seed`` and ``shuffle`` no longer change the split (kept for callers; until
    this rule, ``shuffle=True`` held out a seeded random fraction).

    Example:
        >>> import numpy as np
        >>> train, val = split_validation(ArrayDataset(np.arange(10.0), np.zeros(10)), 0.25, seed=0)
        >>> len(train), [val[i][0].item() for i in range(len(val))]
        (7, [7.0, 8.0, 9.0])
    """
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0.0 < fraction < 1.0:
        raise ConfigError(f"{where}: validation_split must be a fraction in (0, 1), got {fraction!r}")
    arrays = dataset_arrays(dataset)
    if arrays is None:
        raise ConfigError(f"{where}: validation_split needs array data; pass validation=... for other datasets")
    n = len(arrays[0])
    cut = int(math.floor(n * (1.0 - float(fraction))))  # Keras' split_at, to the last rounding
    if cut == 0 or cut == n:
        raise ConfigError(
            f"{where}: validation_split={fraction!r} of {n} rows leaves {'no training' if cut == 0 else 'no validation'} "
            f"rows (the first floor({n} * (1 - {fraction!r})) = {cut} rows train); use a fraction that splits the data"
        )
    parts = [piece for a in arrays for piece in (a[:cut], a[cut:])]
    if len(arrays) > 1:
        _warn_if_ordered_by_class(arrays[1], cut, where)
    # the data's own floating dtype carries over (a float64 model's data stays float64)
    floating = [d for d in (getattr(a, "dtype", None) for a in arrays) if d is not None and d.kind == "f"]
    float_dtype = max(floating, key=lambda d: d.itemsize) if floating else None
    train = ArrayDataset(*parts[0::2], check_finite=False, float_dtype=float_dtype)
    val = ArrayDataset(*parts[1::2], check_finite=False, float_dtype=float_dtype)
    return train, val


def _warn_if_ordered_by_class(targets: Any, cut: int, where: str) -> None:
    """Warn when class-label targets split at ``cut`` leave a class on one side only: rows sorted by class
    (a common layout, which a random split used to hide) would validate on classes never trained on."""
    labels = targets.array if isinstance(targets, Tensor) else targets
    if not isinstance(labels, np.ndarray) or labels.dtype.kind not in "iu" or labels.ndim > 2:
        return  # (regression targets, one-hot rows, device arrays: no cheap, reliable test)
    if labels.ndim == 2 and labels.shape[1] != 1:
        return
    seen, held = set(np.unique(labels[:cut]).tolist()), set(np.unique(labels[cut:]).tolist())
    if held <= seen:
        return
    import warnings

    warnings.warn(
        f"{where}: validation_split holds out the last rows (as Keras), and their classes {sorted(held - seen)} "
        "never occur in the training rows: the data looks ordered by class. Shuffle the arrays first "
        "(p = np.random.default_rng(0).permutation(len(x)); x, y = x[p], y[p]) or pass validation=(x_val, y_val)",
        RuntimeWarning,
        stacklevel=4,
    )


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
    "features_as_float",
]
