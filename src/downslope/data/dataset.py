"""Datasets: indexable collections of samples.

A dataset answers ``len(ds)`` and ``ds[i]`` (a tuple of per-sample arrays). The array-backed
datasets (:class:`ArrayDataset`, :class:`TensorDataset` and :class:`Subset` of them) also expose
``arrays`` — a tuple of NumPy arrays whose first axis indexes samples — so a DataLoader can gather a
whole batch with one ``np.take`` per array instead of a Python loop over samples.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Generic, TypeVar

import numpy as np

from .. import backend
from ..devices import device_of, is_array, to_device, to_host
from ..errors import ArgumentTypeError, DataError, OutOfRangeError, ShapeError
from ..tensor import KEPT_INTEGER_DTYPES, Tensor, wrap_array

T_co = TypeVar("T_co", covariant=True)


class Dataset(Generic[T_co]):
    """Base class: subclasses define ``__len__`` and ``__getitem__`` (returning a tuple of arrays).
    Generic, as PyTorch's: ``class Pairs(Dataset[tuple[Tensor, Tensor]])`` works.

    Example:
        >>> import numpy as np
        >>> class Squares(Dataset):
        ...     def __len__(self): return 4
        ...     def __getitem__(self, i): return (np.float32(i), np.float32(i * i))
        >>> len(Squares()), Squares()[3]
        (4, (np.float32(3.0), np.float32(9.0)))
    """

    def __len__(self) -> int:
        raise NotImplementedError(f"{type(self).__name__} must define __len__")

    def __getitem__(self, index: int) -> T_co:
        raise NotImplementedError(f"{type(self).__name__} must define __getitem__")

    def __add__(self, other: Dataset[Any]) -> ConcatDataset:
        """``a + b``: the samples of ``a`` then those of ``b`` (a :class:`ConcatDataset`, as in PyTorch)."""
        return ConcatDataset([self, other])


class IterableDataset(Dataset[T_co]):
    """A stream of samples: subclasses define ``__iter__`` (and may define ``__len__``). A DataLoader
    batches the samples in the order the stream yields them.

    Example:
        >>> import downslope as ds
        >>> from downslope.data import DataLoader
        >>> class Counting(IterableDataset):
        ...     def __iter__(self):
        ...         return iter(ds.tensor([float(i)]) for i in range(5))
        >>> [b.shape for b in DataLoader(Counting(), batch_size=2)]
        [downslope.Size([2, 1]), downslope.Size([2, 1]), downslope.Size([1, 1])]
    """

    def __iter__(self) -> Iterator[T_co]:
        raise NotImplementedError(f"{type(self).__name__} must define __iter__")

    def __len__(self) -> int:
        # A TypeError, as len() of an object without a length gives, so list() and length hints work.
        raise ArgumentTypeError(f"{type(self).__name__} is a stream without a known length (define __len__)")

    def __getitem__(self, index: int) -> T_co:
        raise NotImplementedError(f"{type(self).__name__} is a stream: iterate over it instead of indexing")

    def __add__(self, other: Dataset[Any]) -> ChainDataset:  # type: ignore[override]
        """``a + b``: the stream ``a`` then the stream ``b`` (a :class:`ChainDataset`, as in PyTorch)."""
        return ChainDataset([self, other])


class ChainDataset(IterableDataset):
    """Several IterableDatasets one after another.

    Example:
        >>> class Two(IterableDataset):
        ...     def __iter__(self):
        ...         return iter([1, 2])
        >>> list(ChainDataset([Two(), Two()]))
        [1, 2, 1, 2]
    """

    def __init__(self, datasets: Iterable[Any]) -> None:
        self.datasets = list(datasets)

    def __iter__(self) -> Iterator[Any]:
        for d in self.datasets:
            yield from d

    def __len__(self) -> int:
        return sum(len(d) for d in self.datasets)


class StackDataset(Dataset):
    """Datasets of the same length side by side: sample ``i`` is a tuple (positional datasets) or a
    dict (keyword datasets) of each dataset's sample ``i``.

    Example:
        >>> import numpy as np
        >>> both = StackDataset(image=ArrayDataset(np.zeros((3, 2))), label=ArrayDataset(np.arange(3)))
        >>> sorted(both[1])
        ['image', 'label']
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if bool(args) == bool(kwargs):
            raise ArgumentTypeError("StackDataset: give the datasets either all positionally or all by keyword")
        parts = list(args) if args else list(kwargs.values())
        lengths = {len(d) for d in parts}
        if len(lengths) != 1:
            raise ShapeError(f"StackDataset: the datasets must have the same length, got lengths {sorted(lengths)}")
        self.datasets: Any = tuple(args) if args else dict(kwargs)
        self._length = lengths.pop()

    def __len__(self) -> int:
        return self._length

    def __getitem__(self, index: int) -> Any:
        if isinstance(self.datasets, dict):
            return {k: d[index] for k, d in self.datasets.items()}
        return tuple(d[index] for d in self.datasets)

    def __getitems__(self, indices: list[int]) -> list[Any]:
        """The samples at ``indices``, each dataset read with one call to its own ``__getitems__`` when it
        has one, as PyTorch's ``StackDataset`` does (a tuple or a dict per sample)."""
        parts = self.datasets.values() if isinstance(self.datasets, dict) else self.datasets
        columns = []
        for d in parts:
            getitems = getattr(d, "__getitems__", None)
            items = list(getitems(indices)) if callable(getitems) else [d[i] for i in indices]
            if len(items) != len(indices):
                raise ShapeError(
                    f"StackDataset: a dataset's __getitems__ returned {len(items)} samples for {len(indices)} indices"
                )
            columns.append(items)
        if isinstance(self.datasets, dict):
            keys = list(self.datasets)
            return [dict(zip(keys, row)) for row in zip(*columns)]
        return [tuple(row) for row in zip(*columns)]


def _as_sample_array(value: Any, name: str, float_dtype: Any = None) -> np.ndarray:
    """Apply the library's dtype policy: floating -> default float (float32), or ``float_dtype`` when
    given (a float64 model's data); integers keep torch's integer dtypes (a uint8 image stays uint8),
    other integers (uint16/32/64) become int64. A tensor keeps its dtype unless ``float_dtype`` asks
    otherwise, as in torch's TensorDataset (its dtype was chosen when it was made). Data on a device (a
    tensor there, or a CuPy array) stays on its device, as torch's TensorDataset of CUDA tensors does."""
    if isinstance(value, Tensor):
        arr = value.array
    elif type(value) is not np.ndarray and is_array(value):  # a device array: np.asarray would refuse it
        arr = value
    else:
        try:
            arr = np.asarray(value)
        except (ValueError, TypeError) as exc:
            raise ArgumentTypeError(f"{name}: cannot turn {type(value).__name__} into an array ({exc})") from None
    if arr.dtype.kind not in "fiubc":
        raise ArgumentTypeError(f"{name}: expected numeric or boolean data, got dtype {arr.dtype}")
    if arr.ndim == 0:
        raise ShapeError(f"{name}: expected an array with a first axis of samples, got a scalar")
    # the data's own namespace: np.ascontiguousarray does not dispatch, it would copy a device array to the host
    xp = backend.namespace_of(arr)
    if isinstance(value, Tensor) and float_dtype is None:
        return xp.ascontiguousarray(arr)
    floating = backend.get_default_dtype() if float_dtype is None else np.dtype(float_dtype)
    if arr.dtype.kind == "f" and arr.dtype != floating:
        arr = arr.astype(floating)
    elif arr.dtype.kind == "c" and arr.dtype != backend.complex_of(floating):  # complex128 -> complex64 as float64
        arr = arr.astype(backend.complex_of(floating))
    elif arr.dtype.kind in "iu" and arr.dtype not in KEPT_INTEGER_DTYPES:
        arr = arr.astype(backend.int64)
    # Contiguous storage keeps np.take on the first axis a straight memory copy.
    return xp.ascontiguousarray(arr)


def take_rows(array: Any, index: np.ndarray) -> Any:
    """``array``'s rows at the host ``index`` (int64), on the array's device: a device array gathers
    with the index copied over once (CuPy and the stand-in refuse a host index array in ``take``)."""
    if isinstance(array, np.ndarray):
        return np.take(array, index, axis=0)
    return array.take(to_device(index, device_of(array)), axis=0)


def _check_finite(arr: np.ndarray, name: str) -> None:
    if arr.dtype.kind != "f":
        return
    if not isinstance(arr, np.ndarray):
        # host: one boolean read back per array when the dataset is made (never per batch); only a
        # dataset with a NaN/inf then comes to the host, to name the first one's row in the error
        if bool(to_host(backend.namespace_of(arr).isfinite(arr).all())):
            return
        arr = to_host(arr)
    bad = ~np.isfinite(arr)
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        location = f"row {where[0]}" + (
            f", column {where[1:] if len(where) > 2 else where[1]}" if len(where) > 1 else ""
        )
        count = int(bad.sum())
        raise DataError(
            f"{name}: found {count} non-finite value(s) (NaN or inf); the first is {arr[where]} at {location}. "
            "Clean the data, or pass check_finite=False to keep them."
        )


class ArrayDataset(Dataset):
    """Samples held in NumPy arrays that share their first axis: ``ArrayDataset(x, y)``.

    Floating data becomes float32 (the default dtype) and integer labels int64, so a float64 array
    from scikit-learn does not silently make training twice as slow; ``float_dtype=ds.float64`` keeps
    floating data in float64 instead (what ``fit`` asks for a float64 model). NaN/inf in floating data
    is reported with its row and column unless ``check_finite=False``.

    Shapes: each array is (N, ...); ``ds[i]`` is a tuple with one (...) sample per array.

    Example:
        >>> import numpy as np
        >>> ds = ArrayDataset(np.zeros((5, 3)), np.arange(5))
        >>> len(ds), ds.arrays[0].dtype, ds.arrays[1].dtype
        (5, dtype('float32'), dtype('int64'))
    """

    def __init__(self, *arrays: Any, check_finite: bool = True, float_dtype: Any = None) -> None:
        if not arrays:
            raise DataError(f"{type(self).__name__}: expected at least one array, got none")
        if float_dtype is not None and np.dtype(float_dtype).kind != "f":
            raise ArgumentTypeError(f"{type(self).__name__}: float_dtype must be a floating dtype, got {float_dtype}")
        converted = tuple(
            _as_sample_array(a, f"{type(self).__name__} array {i}", float_dtype) for i, a in enumerate(arrays)
        )
        lengths = [len(a) for a in converted]
        if len(set(lengths)) != 1:
            shapes = ", ".join(str(a.shape) for a in converted)
            raise ShapeError(
                f"{type(self).__name__}: all arrays must have the same number of samples (first axis); "
                f"got shapes {shapes}"
            )
        if lengths[0] == 0 and not self._may_be_empty:
            raise DataError(f"{type(self).__name__}: the dataset is empty (0 samples)")
        if check_finite:
            for i, a in enumerate(converted):
                _check_finite(a, f"{type(self).__name__} array {i}")
        self.arrays: tuple[np.ndarray, ...] = converted
        # the tensors that require grad, kept so that samples and batches of them stay in the graph (as in
        # torch, where dataset[i] indexes the tensor itself); None when none does (the usual case)
        tracked = tuple(isinstance(a, Tensor) and a.requires_grad and self._may_be_empty for a in arrays)
        self._tracked: tuple[Tensor | None, ...] | None = (
            tuple(a if keep else None for a, keep in zip(arrays, tracked)) if any(tracked) else None
        )

    # ArrayDataset (downslope's) refuses no data and keeps no graph; TensorDataset (PyTorch's) does both, as torch's
    _may_be_empty = False

    def __len__(self) -> int:
        return len(self.arrays[0])

    def __getitem__(self, index: int) -> tuple[np.ndarray, ...]:
        n = len(self)
        if not isinstance(index, (int, np.integer)):
            raise ArgumentTypeError(f"{type(self).__name__}: index must be an integer, got {type(index).__name__}")
        if not -n <= index < n:
            raise OutOfRangeError(f"{type(self).__name__}: index {index} out of range for {n} samples")
        return tuple(a[index] for a in self.arrays)

    def __repr__(self) -> str:
        shapes = ", ".join(f"{tuple(a.shape)} {a.dtype}" for a in self.arrays)
        return f"{type(self).__name__}({len(self)} samples: {shapes})"


class TensorDataset(ArrayDataset):
    """PyTorch's name: a dataset wrapping tensors (or arrays) that share their first dimension.

    As in PyTorch, indexing returns a tuple of Tensors: ``data[i]`` one sample per tensor,
    ``data[:10]`` (a slice, a list or a tensor of indices) a batch per tensor. Tensors on a device
    stay there (no copy to the host), and a DataLoader gathers their batches on it.

    Example:
        >>> import downslope as ds
        >>> data = TensorDataset(ds.randn(4, 2), ds.tensor([0, 1, 0, 1]))
        >>> [a.shape for a in data[0]], [a.shape for a in data[:3]]
        ([downslope.Size([2]), downslope.Size([])], [downslope.Size([3, 2]), downslope.Size([3])])
    """

    _may_be_empty = True  # and a tensor that requires grad keeps it in the samples and batches, as in torch

    @property
    def tensors(self) -> tuple[Tensor, ...]:
        """The wrapped data as Tensors sharing the dataset's storage (PyTorch's attribute)."""
        if self._tracked is not None:
            return tuple(t if t is not None else wrap_array(a) for t, a in zip(self._tracked, self.arrays))
        return tuple(wrap_array(a) for a in self.arrays)

    def __getitem__(self, index: Any) -> tuple[Tensor, ...]:  # type: ignore[override]
        if self._tracked is not None:
            # as torch: the tensor itself is indexed, so the sample (and the batch stacked from it) has a gradient
            return tuple(t[index] for t in self.tensors)
        if isinstance(index, Tensor):
            index = index.array
        if isinstance(index, (slice, list, np.ndarray)):
            try:
                return tuple(wrap_array(a[index]) for a in self.arrays)
            except IndexError as exc:
                raise OutOfRangeError(f"{type(self).__name__}: bad index for {len(self)} samples ({exc})") from None
        if is_array(index):  # a device index array (a tensor of indices on the GPU)
            return self._gather_at(index)
        # as_array: a host row's NumPy scalar becomes a 0-d array; a device array's 0-d row is one already
        return tuple(wrap_array(backend.as_array(a)) for a in super().__getitem__(index))

    def _gather_at(self, index: Any) -> tuple[Tensor, ...]:
        """The rows at a device index array: each array on that device gathers them there; host data
        refuses them, as torch refuses CUDA indices into a CPU tensor (the index is not copied back)."""
        where = device_of(index)
        if any(device_of(a) != where for a in self.arrays):
            devices = sorted({str(device_of(a)) for a in self.arrays})
            raise ArgumentTypeError(
                f"{type(self).__name__}: indices on {where} cannot index data on {', '.join(devices)}; "
                "index with host indices (a list, a NumPy array or a CPU tensor), or move the data to the "
                "indices' device"
            )
        try:
            return tuple(wrap_array(a[index]) for a in self.arrays)
        except IndexError as exc:
            raise OutOfRangeError(f"{type(self).__name__}: bad index for {len(self)} samples ({exc})") from None


class Subset(Dataset):
    """The samples of ``dataset`` at ``indices`` (what :func:`random_split` returns).

    Example:
        >>> import numpy as np
        >>> part = Subset(ArrayDataset(np.arange(10.0)), [7, 2])
        >>> len(part), float(part[0][0])
        (2, 7.0)
    """

    _index: np.ndarray
    _index_list: list[int] | None
    _arrays: tuple[np.ndarray, ...] | None

    def __init__(self, dataset: Dataset, indices: Sequence[int] | np.ndarray) -> None:
        self.dataset = dataset
        self.indices = indices  # checked and stored by the setter

    @property
    def indices(self) -> list[int]:
        """The parent's indices as a list of Python ints, as PyTorch's ``random_split`` gives (made on
        first use: a large memory-mapped split is gathered from an int64 array and never needs the list)."""
        if self._index_list is None:
            self._index_list = self._index.tolist()
        return self._index_list

    @indices.setter
    def indices(self, value: Sequence[int] | np.ndarray) -> None:
        idx = np.asarray(value)
        if idx.ndim != 1 or (idx.size and idx.dtype.kind not in "iu"):
            raise ArgumentTypeError(
                f"Subset: expected a 1-D sequence of integer indices, got {idx.dtype} shape {tuple(idx.shape)}"
            )
        n = len(self.dataset)
        idx = idx.astype(np.int64)
        if idx.size and (idx.min() < -n or idx.max() >= n):
            raise OutOfRangeError(f"Subset: indices must lie in [0, {n}) for a dataset of {n} samples")
        self._index = np.where(idx < 0, idx + n, idx)
        self._index_list = None
        self._arrays = None

    @property
    def arrays(self) -> tuple[np.ndarray, ...] | None:
        """The parent's arrays gathered at the indices (materialized once, on first use)."""
        cached = self._arrays
        if cached is None:
            parent = getattr(self.dataset, "arrays", None)
            if parent is None or _tracks_grad(self.dataset):
                return None
            from .memmap import is_lazy

            # a memory-mapped source stays lazy: a view of its rows, read batch by batch
            cached = tuple(a.subset(self._index) if is_lazy(a) else take_rows(a, self._index) for a in parent)
            self._arrays = cached
        return cached

    def __len__(self) -> int:
        return len(self._index)

    def __getitem__(self, index: int) -> Any:
        return self.dataset[int(self._index[index])]

    def __getitems__(self, indices: list[int]) -> list[Any]:
        """The samples at ``indices`` (positions in this subset), read with one call to the parent's
        ``__getitems__`` when it has one, as PyTorch's ``Subset`` does."""
        parent = [int(self._index[i]) for i in indices]
        getitems = getattr(self.dataset, "__getitems__", None)
        if callable(getitems):
            return list(getitems(parent))
        return [self.dataset[i] for i in parent]


class ConcatDataset(Dataset):
    """The samples of several datasets one after another (PyTorch's ``ConcatDataset``).

    Example:
        >>> import numpy as np
        >>> both = ConcatDataset([ArrayDataset(np.zeros(3)), ArrayDataset(np.ones(2))])
        >>> len(both), float(both[3][0])
        (5, 1.0)
    """

    def __init__(self, datasets: Sequence[Dataset]) -> None:
        self.datasets = list(datasets)
        if not self.datasets:
            raise DataError("ConcatDataset: expected at least one dataset, got none")
        self.cumulative_sizes = np.cumsum([len(d) for d in self.datasets]).tolist()

    def __len__(self) -> int:
        return int(self.cumulative_sizes[-1])

    def __getitem__(self, index: int) -> Any:
        n = len(self)
        if not isinstance(index, (int, np.integer)):
            raise ArgumentTypeError(f"ConcatDataset: index must be an integer, got {type(index).__name__}")
        if not -n <= index < n:
            raise OutOfRangeError(f"ConcatDataset: index {index} out of range for {n} samples")
        index = int(index) % n
        k = int(np.searchsorted(self.cumulative_sizes, index, side="right"))
        start = self.cumulative_sizes[k - 1] if k else 0
        return self.datasets[k][index - start]


class LazyDataset(Dataset):
    """Inputs read batch by batch from a memory-mapped file (a :class:`~downslope.data.memmap.RowSource`)
    and targets in memory: a DataLoader gathers each batch from the file, never the whole of it.

    Example:
        >>> import numpy as np
        >>> from downslope.data.memmap import RowSource
        >>> data = LazyDataset(RowSource(np.arange(12.0).reshape(4, 3), 0, 2), np.arange(4))
        >>> len(data), data[2][0].tolist(), int(data[2][1])
        (4, [6.0, 7.0], 2)
    """

    def __init__(self, x: Any, *others: Any) -> None:
        from .memmap import is_lazy

        if not is_lazy(x):
            raise ArgumentTypeError(f"LazyDataset: expected a RowSource as inputs, got {type(x).__name__}")
        converted = tuple(_as_sample_array(a, f"LazyDataset array {i + 1}") for i, a in enumerate(others))
        if any(len(a) != len(x) for a in converted):
            shapes = ", ".join(str(a.shape) for a in converted)
            raise ShapeError(f"LazyDataset: inputs have {len(x)} rows but the other arrays have shapes {shapes}")
        if len(x) == 0:
            raise DataError("LazyDataset: the dataset is empty (0 samples)")
        self.arrays: tuple[Any, ...] = (x, *converted)

    def __len__(self) -> int:
        return len(self.arrays[0])

    def __getitem__(self, index: int) -> tuple[np.ndarray, ...]:
        n = len(self)
        if not isinstance(index, (int, np.integer)):
            raise ArgumentTypeError(f"LazyDataset: index must be an integer, got {type(index).__name__}")
        if not -n <= index < n:
            raise OutOfRangeError(f"LazyDataset: index {index} out of range for {n} samples")
        return tuple(a[index] for a in self.arrays)

    def __repr__(self) -> str:
        return f"LazyDataset({len(self)} samples: {self.arrays[0]!r})"


def dataset_arrays(dataset: Any, on_devices: bool = False) -> tuple[Any, ...] | None:
    """The dataset's arrays when it is array-backed (fast path), else None: NumPy arrays, or row
    sources read lazily from a memory-mapped file (anything with ``take`` and ``shape``); with
    ``on_devices``, arrays on a device too (a TensorDataset of CUDA tensors: the DataLoader gathers
    its batches there)."""
    from .memmap import is_lazy

    if _tracks_grad(dataset):
        return None  # read sample by sample, through the tensors' own indexing: the batches keep their gradient
    arrays = getattr(dataset, "arrays", None)
    if isinstance(arrays, tuple) and arrays:
        if all(isinstance(a, np.ndarray) or is_lazy(a) or (on_devices and is_array(a)) for a in arrays):
            return arrays
    return None


def _tracks_grad(dataset: Any) -> bool:
    """Whether ``dataset`` (or the dataset a Subset takes its samples from) holds tensors that require grad."""
    while isinstance(dataset, Subset):
        dataset = dataset.dataset
    return getattr(dataset, "_tracked", None) is not None
