"""DataLoader: batches of samples, in order or shuffled by the loader's own seeded generator.

The batch size names the flavour of gradient descent:

=====================  =================================  =========================
``batch_size``         method                             updates per epoch
=====================  =================================  =========================
``"full"`` (or >= N)   full-batch gradient descent        1
``1``                  stochastic gradient descent (SGD)  N
``B`` (1 < B < N)      mini-batch gradient descent        ceil(N / B) (floor with drop_last)
=====================  =================================  =========================

``len(loader)`` is the number of updates per epoch. ``batch_size=None`` is PyTorch's: no automatic
batching, each item as the dataset gives it (fit's ``batch_size=None`` is still its full batch).
"""

from __future__ import annotations

import copy
import ctypes
import itertools
import random as pyrandom
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping, MutableSequence, Sequence
from typing import Any

import numpy as np

from .. import backend, graph
from ..devices import device_of, is_array
from ..errors import ArgumentTypeError, CheckpointError, ConfigError, DataError, OutOfRangeError, ShapeError, StateError
from ..generator import as_numpy_generator
from ..tensor import KEPT_INTEGER_DTYPES, Tensor, wrap_array
from .dataset import ArrayDataset, Dataset, IterableDataset, Subset, _as_sample_array, dataset_arrays, take_rows
from .sampler import BatchSampler, RandomSampler, SequentialSampler, _InfiniteConstantSampler

BatchSize = int | str | None


def _fetch_in_time(fetch: Callable[[Any], Any], rows: Any, timeout: float, number: int) -> Any:
    """``fetch(rows)``, or PyTorch's RuntimeError when it takes more than ``timeout`` seconds (the read runs
    in a daemon thread, as PyTorch's worker runs in its process; one that hangs is left behind)."""
    box: dict[str, Any] = {}

    def read() -> None:
        try:
            box["batch"] = fetch(rows)
        except BaseException as exc:  # noqa: BLE001  (raised again in the caller's thread, as a worker's is)
            box["error"] = exc

    thread = threading.Thread(target=read, name="DataLoader worker 0", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise StateError(
            f"DataLoader timed out after {timeout} seconds (batch {number} of the epoch took longer than "
            f"timeout={timeout}: the dataset's reads and collate_fn)"
        )
    if "error" in box:
        raise box["error"]
    return box["batch"]


def _fresh(part: Any) -> Any:
    """A copy of ``part`` (a slice of a dataset's array, on its device): the batch owns its memory."""
    return part.copy()


def _batch_indices(indices: Iterable[Any], number: int) -> np.ndarray:
    """A batch sampler's batch as int64 indices; an empty one is refused, as PyTorch's collate refuses it."""
    idx = np.asarray(list(indices), dtype=np.int64)
    if idx.size == 0:
        raise OutOfRangeError(
            f"DataLoader: the batch_sampler gave an empty batch (batch {number} of the epoch); a batch needs at "
            "least one index (PyTorch's collate fails on it with 'list index out of range')"
        )
    return idx


def _resolve_batch_size(batch_size: Any, n: int) -> int:
    """A batching loader's batch size: ``"full"`` is the whole dataset (at least 1: an empty dataset gives no
    batch); ``None`` (no automatic batching, as PyTorch) never reaches here."""
    if isinstance(batch_size, str) and batch_size.lower() == "full":
        return max(n, 1)
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
        raise ArgumentTypeError(
            f"DataLoader: batch_size must be a positive integer, 'full' (full batch) or None (no automatic "
            f"batching, as PyTorch); got {batch_size!r}"
        )
    if batch_size <= 0:
        raise ConfigError(f"DataLoader: batch_size must be >= 1 (or 'full' for full batch); got {batch_size}")
    return int(batch_size)


def _own_generator(seed: int | None, generator: Any) -> np.random.Generator | None:
    """The loader's own shuffling stream, or None to draw each epoch's order from the library generator."""
    if generator is not None:
        if seed is not None:
            raise ConfigError("DataLoader: pass either seed or generator, not both")
        # the Generator's own stream, reseeded in place by its manual_seed: read when each epoch starts
        return as_numpy_generator(generator, "DataLoader")
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"DataLoader: seed must be a non-negative integer, got {seed!r}")
    return np.random.Generator(np.random.PCG64(int(seed)))


class DataLoader:
    """Iterate over a dataset in batches; each batch is a tuple of Tensors ``(x, y, ...)``.

    Args:
        dataset: a :class:`Dataset` (or any sequence of samples, such as a list of ``(label, text)``
            pairs, as in PyTorch), or a tuple of arrays ``(x, y)`` (wrapped in an ArrayDataset).
        batch_size: ``"full"`` (full batch), ``1`` (stochastic) or ``B`` (mini-batch). Like PyTorch
            the default is 1, and a batch size above N is kept (``loader.batch_size``): one batch of all
            N samples, or, with a sampler that draws more indices than N (oversampling), batches of B.
            ``None`` turns automatic batching off as in PyTorch: each item (``dataset[i]`` for each
            ``i`` the sampler gives, a BatchSampler's list of indices too) is yielded as it comes,
            through ``collate_fn`` or else :func:`default_convert`.
        shuffle: reshuffle the sample order at the start of every epoch (a full batch too, as in
            PyTorch: its mean gradient is the same, but its rows come in a random order). The order
            drawn for a seed is downslope's own (repeatable, but not PyTorch's for the same seed).
        drop_last: drop the last, smaller batch.
        seed / generator: the loader's own random stream for shuffling (a :class:`downslope.Generator`,
            as ``torch.Generator`` in PyTorch, or a ``numpy.random.Generator``), read as each epoch starts.
            ``seed`` (like ``device``) is keyword-only: the positional parameters are PyTorch's, in its
            order (dataset, batch_size, shuffle, sampler, batch_sampler, num_workers, collate_fn,
            pin_memory, drop_last, timeout, worker_init_fn, multiprocessing_context, generator).
            Without either, each epoch's order is drawn from the library generator when its iteration
            starts (as in PyTorch), so :func:`downslope.manual_seed` before the loop fixes the orders
            wherever the loader was built, and ``ds.set_rng_state`` of a saved ``ds.get_rng_state()``
            resumes them.
        sampler / batch_sampler: PyTorch's ways to choose the order (an iterable of indices, see
            :mod:`downslope.data.sampler`) or the batches themselves (an iterable of index lists).
        collate_fn: turns a list of samples into a batch (default :func:`default_collate` rules).
            ``loader.sampler``, ``loader.batch_sampler`` and ``loader.collate_fn`` are PyTorch's
            attributes: the ones given, else the loader's own (a SequentialSampler or RandomSampler, a
            BatchSampler of it, default_collate).
        num_workers / worker_init_fn / persistent_workers: PyTorch's worker processes, emulated in this
            process (see "Workers" below). ``timeout`` (seconds, with workers) raises PyTorch's
            RuntimeError when a batch takes longer to read.
        device: where the batches' Tensors are placed (``"cuda"``, a :class:`downslope.device`; ``None``
            or ``"cpu"``: host memory, the default). downslope's own option: in a PyTorch loop you move
            each batch yourself (``x.to(device)``), which works here too; ``ds.fit(..., device=...)``
            sets it for the loaders it makes. See "Placing the data" below.

    Array-backed datasets are gathered with one ``np.take`` per array into contiguous arrays
    (copied slices when not shuffling: every batch is a new array, as torch's collate stacks one, so
    ``x /= 255`` on a batch never changes the dataset); data already on a device (``TensorDataset(X.cuda(),
    y.cuda())``) is sliced or gathered there, so its batches are tensors on that device, as in torch
    (only each batch's indices are copied over, once per batch and device); a
    :class:`~downslope.data.dataset.LazyDataset` reads each batch's rows from its memory-mapped file
    (so a file larger than memory trains in every batch mode: a full batch is then the whole training
    split); other datasets are indexed sample by sample.

    Placing the data on a device (``device=``): an array-backed dataset held in memory (an
    ArrayDataset, a TensorDataset or a Subset of one, without a ``collate_fn``) whose arrays take at
    most a quarter of the device's free memory (on the strict test device: 1 GiB) is copied to the
    device once, on the first pass, and every batch is then sliced or gathered there, so an epoch
    copies nothing but the shuffled order (once per epoch). Any other dataset (memory-mapped, too
    large, sample by sample) is gathered on the host as usual and each batch is copied to the device
    once; data already on the device is used as it is. Shuffling is drawn on the host either way, so the
    batches are the same on every device.

    Workers (``num_workers > 0``): the data is read in this process, one batch after the other (no
    speed-up: there are no worker processes), but by ``num_workers`` emulated workers that behave as
    PyTorch's: a map-style dataset's batch ``k`` is read by worker ``k % num_workers`` (the batches come in
    the order of ``num_workers=0``); over an :class:`IterableDataset` each worker iterates over the
    dataset itself and batches its own samples, and the batches come round-robin (worker 0's first batch,
    worker 1's first, ..., worker 0's second, ...; a worker whose stream ends drops out), so a dataset
    that shards itself with :func:`get_worker_info` yields each sample once, and one that does not yields
    each sample once per worker, as in PyTorch. What runs inside a worker (``worker_init_fn``, called
    with each worker's id, the dataset's ``__getitem__``/``__iter__`` and ``collate_fn``) sees
    :func:`get_worker_info` (``id``, ``num_workers``, ``seed``, ``dataset``: the loader's dataset object,
    shared by the workers, not a copy) and the worker's own random streams: Python's ``random``, NumPy's
    global ``np.random`` and the library generator, seeded as PyTorch seeds a new worker from the epoch's
    base seed (``ds.initial_seed()`` there is ``get_worker_info().seed``, the base seed plus the worker's
    id), and continuing from batch to batch. The sampler's and the shuffle's draws, and the training loop
    between batches, use this process's streams, which the workers never move: ``np.random.seed(
    ds.initial_seed() % 2**32)`` in a ``worker_init_fn`` gives new augmentations every epoch and leaves
    the loop's own draws (a mixup ``np.random.beta``) alone, as separate processes would. Without
    ``persistent_workers`` the workers start anew each epoch (a new base seed, ``worker_init_fn`` again);
    with it, they start once and their streams continue across epochs. Since no process is forked, a
    dataset of device tensors works with workers too (torch needs the ``spawn`` start method for CUDA
    tensors in workers): its batches are read here, on the device, exactly as with ``num_workers=0``.

    Example:
        >>> import numpy as np
        >>> loader = DataLoader((np.zeros((10, 3)), np.arange(10)), batch_size=4, shuffle=True, seed=0)
        >>> len(loader), loader.method
        (3, 'mini-batch gradient descent')
        >>> [x.shape for x, y in loader]
        [downslope.Size([4, 3]), downslope.Size([4, 3]), downslope.Size([2, 3])]
    """

    def __init__(
        self,
        dataset: Dataset | Sequence[Any],
        batch_size: BatchSize = 1,
        shuffle: bool | None = None,
        sampler: Iterable[Any] | None = None,
        batch_sampler: Iterable[Sequence[int]] | None = None,
        num_workers: int = 0,
        collate_fn: Callable[[list[Any]], Any] | None = None,
        pin_memory: bool = False,
        drop_last: bool = False,
        timeout: float = 0,
        worker_init_fn: Callable[[int], Any] | None = None,
        multiprocessing_context: Any = None,
        generator: Any = None,
        *,
        prefetch_factor: int | None = None,
        persistent_workers: bool = False,
        pin_memory_device: str = "",
        in_order: bool = True,
        seed: int | None = None,
        device: Any = None,
        **unknown: Any,
    ) -> None:
        # PyTorch's positional order, so DataLoader(data, 4, False, sampler) means what it means there;
        # downslope's own options (seed, device) are keyword-only. pin_memory / pin_memory_device /
        # prefetch_factor / in_order / multiprocessing_context only tune how PyTorch moves batches to a GPU or
        # across worker processes: batches here are gathered in this process (see num_workers), in order.
        if unknown:
            raise ArgumentTypeError(
                f"DataLoader: unexpected keyword argument(s) {sorted(unknown)}; PyTorch's options and downslope's "
                "seed= and device= are accepted"
            )
        if isinstance(num_workers, bool) or not isinstance(num_workers, (int, np.integer)) or num_workers < 0:
            raise ConfigError(
                f"DataLoader: num_workers must be a non-negative integer (0: load in this process), got {num_workers!r}"
            )
        _check_worker_options(int(num_workers), prefetch_factor, persistent_workers, timeout)
        self.prefetch_factor = 2 if num_workers > 0 and prefetch_factor is None else prefetch_factor
        self.persistent_workers, self.timeout = bool(persistent_workers), timeout
        self.pin_memory, self.pin_memory_device, self.in_order = bool(pin_memory), pin_memory_device, in_order
        self.multiprocessing_context = multiprocessing_context
        if worker_init_fn is not None and not callable(worker_init_fn):
            raise ArgumentTypeError(f"DataLoader: worker_init_fn must be callable, got {type(worker_init_fn).__name__}")
        self.num_workers, self.worker_init_fn = int(num_workers), worker_init_fn
        self.device = _batch_device(device)
        self._placed: tuple[Any, ...] | None = None  # the dataset's arrays on self.device, once copied there
        if isinstance(dataset, IterableDataset):
            self._init_stream(dataset, batch_size, shuffle, drop_last, collate_fn, sampler, batch_sampler)
            return
        if isinstance(dataset, tuple) and _looks_like_arrays(dataset):
            dataset = ArrayDataset(*dataset)  # (x, y): downslope's shorthand for an ArrayDataset
        if not hasattr(dataset, "__len__") or not hasattr(dataset, "__getitem__"):
            raise ArgumentTypeError(
                f"DataLoader: expected a Dataset (with __len__ and __getitem__) or a tuple of arrays, "
                f"got {type(dataset).__name__}"
            )
        n = len(dataset)
        self.dataset = dataset
        self.num_samples = n
        if sampler is not None and shuffle:
            raise ConfigError("DataLoader: sampler decides the order, so it cannot be combined with shuffle=True")
        if batch_sampler is not None and (sampler is not None or shuffle or drop_last or batch_size != 1):
            raise ConfigError(
                "DataLoader: batch_sampler decides the batches, so leave batch_size, shuffle, sampler and drop_last "
                "at their defaults"
            )
        if batch_size is None and drop_last:  # PyTorch's ValueError, with its words
            raise ConfigError(
                "DataLoader: batch_size=None option disables auto-batching and is mutually exclusive with drop_last"
            )
        self.shuffle = bool(shuffle)
        own = _own_generator(seed, generator)
        self.generator = own if self.shuffle else None
        # PyTorch draws each iteration's base seed from the loader's generator, shuffling or not
        self._seed_stream = own
        # Without seed= or generator=, each epoch's order is drawn when its iteration starts, from the library
        # generator (as PyTorch's RandomSampler does): ds.manual_seed before the loop fixes it, and a
        # checkpoint's get_rng_state resumes it, wherever the loader was built.
        # The sampler and batch sampler PyTorch code reads (loader.sampler, loader.batch_sampler.batch_size);
        # the ones given decide the order, the loader's own are what it does anyway (drawn faster below).
        self._given_sampler, self._given_batch_sampler = sampler, batch_sampler
        if sampler is None:
            sampler = RandomSampler(dataset, generator=own) if self.shuffle else SequentialSampler(dataset)
        self.sampler = sampler
        self._collate_fn = collate_fn
        if batch_size is None:
            self._init_unbatched()
            return
        if batch_sampler is not None:
            # as PyTorch: the batch sampler's lists are the batches, and the loader has no batch size of its own
            self.batch_size, self.drop_last = None, False  # type: ignore[assignment]
        else:
            # the batch size asked for, never clipped: a sampler may draw more indices than the dataset has
            # (oversampling), and with drop_last a batch above the sample count gives no batch (len 0), as
            # PyTorch's; fit refuses such a loader, a loop simply runs no step
            self.batch_size = _resolve_batch_size(batch_size, n)
            if not isinstance(drop_last, bool):  # PyTorch's BatchSampler refuses it
                raise ConfigError(f"DataLoader: drop_last should be a boolean value, but got drop_last={drop_last!r}")
            self.drop_last = drop_last
            batch_sampler = BatchSampler(sampler, self.batch_size, drop_last)
        self.batch_sampler = batch_sampler
        # a dataset's own __getitems__ (PyTorch 2.x's batched read) decides what a batch holds: no array fast path
        own_getitems = getattr(type(dataset), "__getitems__", None) not in (None, Subset.__getitems__)
        self._arrays = dataset_arrays(dataset, on_devices=True) if collate_fn is None and not own_getitems else None
        self._array_devices = _array_devices(self._arrays)

    @property
    def collate_fn(self) -> Callable[[Any], Any]:
        """What turns the samples into a batch: the ``collate_fn`` given, else :func:`default_collate` (or,
        with automatic batching off, :func:`default_convert`), as PyTorch's attribute."""
        if self._collate_fn is not None:
            return self._collate_fn
        return default_convert if self.batch_size is None and self._stream else default_collate

    @collate_fn.setter
    def collate_fn(self, value: Callable[[Any], Any] | None) -> None:
        if value in (None, default_collate, default_convert):
            value = None  # the loader's own batching (its array fast path included)
        elif getattr(self, "_arrays", None) is not None:
            self._arrays, self._array_devices = None, None  # a function of the user's sees every sample
        self._collate_fn = value

    _collate_fn: Callable[[Any], Any] | None = None
    _given_sampler: Any = None  # the sampler the user gave (None: the loader's own order)
    _given_batch_sampler: Any = None
    batch_sampler: Any = None
    _arrays: tuple[Any, ...] | None = None

    # per array of _arrays, its device (None: host memory or a memory-mapped file); None when all are on the
    # host, so host batches pay nothing for the device case
    _array_devices: tuple[Any, ...] | None = None

    _stream = False  # True over an IterableDataset: samples arrive in the dataset's own order
    # None only over an IterableDataset without automatic batching (as PyTorch); typed int, as every
    # map-style loader and the code that batches (fit, the distributed loaders) reads it
    batch_size: int

    def _init_stream(
        self,
        dataset: IterableDataset,
        batch_size: Any,
        shuffle: bool | None,
        drop_last: bool,
        collate_fn: Callable[[list[Any]], Any] | None,
        sampler: Any,
        batch_sampler: Any,
    ) -> None:
        if shuffle or sampler is not None or batch_sampler is not None:
            raise ConfigError(
                "DataLoader: an IterableDataset yields samples in its own order, so shuffle, sampler and "
                "batch_sampler cannot be used with it"
            )
        if batch_size is None:
            # PyTorch's automatic batching off: each item is yielded as it comes (the dataset batches itself)
            if drop_last:
                raise ConfigError(
                    "DataLoader: batch_size=None over an IterableDataset yields the items one by one, "
                    "so drop_last=True cannot be used with it"
                )
        elif isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ArgumentTypeError(
                "DataLoader: batch_size over an IterableDataset must be a positive integer or None "
                f"(no automatic batching), got {batch_size!r}"
            )
        self.dataset, self._stream = dataset, True
        try:
            self.num_samples = len(dataset)
        except TypeError:
            self.num_samples = 0  # not known in advance
        self.shuffle, self.generator = False, None
        self._seed_stream = None
        self._collate_fn, self._arrays = collate_fn, None
        self.sampler = _InfiniteConstantSampler()  # PyTorch's: the stream decides, the sampler says nothing
        if batch_size is None:
            self.batch_size, self.drop_last = None, False  # type: ignore[assignment]
        else:
            self.batch_size = int(batch_size)
            if not isinstance(drop_last, bool):  # PyTorch's BatchSampler refuses it
                raise ConfigError(f"DataLoader: drop_last should be a boolean value, but got drop_last={drop_last!r}")
            self.drop_last = drop_last
            self.batch_sampler = BatchSampler(self.sampler, self.batch_size, drop_last)

    _seed_stream: np.random.Generator | None = None

    def _init_unbatched(self) -> None:
        """PyTorch's automatic batching off over a map-style dataset (``batch_size=None``): each step reads
        ``dataset[i]`` for the sampler's next ``i`` (in order, shuffled, or the sampler given; a
        BatchSampler given as the sampler names lists of indices, read at once by a dataset that takes
        them: a fast window loader) and passes it through ``collate_fn``, else :func:`default_convert`."""
        self._stream, self._unbatched = True, True
        self.batch_size, self.drop_last = None, False  # type: ignore[assignment]
        self.batch_sampler = None
        self._arrays = None

    _unbatched = False  # batch_size=None over a map-style dataset

    @property
    def drop_last(self) -> bool:
        """Whether the last, smaller batch is dropped (PyTorch's attribute; its BatchSampler follows it)."""
        return self._drop_last

    @drop_last.setter
    def drop_last(self, value: bool) -> None:
        self._drop_last = bool(value)
        own = self.batch_sampler
        if own is not None and own is not self._given_batch_sampler and isinstance(own, BatchSampler):
            own.drop_last = self._drop_last

    _drop_last = False

    def _iter_stream(self) -> Iterator[Any]:
        if self._unbatched:
            # as PyTorch: each item passes through collate_fn when one is given, else default_convert
            convert = self._collate_fn or default_convert
            return (convert(self.dataset[i]) for i in self.sampler)
        return self._stream_batches(iter(self.dataset))

    def _stream_batches(self, items: Iterator[Any]) -> Iterator[Any]:
        """An IterableDataset's samples (``items``) batched: ``batch_size`` at a time through the collate
        function (the last batch shorter, or dropped with ``drop_last``), or, with ``batch_size=None``,
        each item through ``collate_fn``, else :func:`default_convert`."""
        if self.batch_size is None:
            convert = self._collate_fn or default_convert
            for item in items:
                yield convert(item)
            return
        collate = self._collate_fn or _collate_samples
        batch: list[Any] = []
        for sample in items:
            batch.append(sample)
            if len(batch) == self.batch_size:
                yield collate(batch)
                batch = []
        if batch and not self.drop_last:
            yield collate(batch)

    # ------------------------------------------------------------------ what kind of descent
    @property
    def method(self) -> str:
        """'full-batch gradient descent', 'stochastic gradient descent' or 'mini-batch gradient descent'."""
        if self.batch_size is None:
            return "mini-batch gradient descent"  # no automatic batching: the items are the batches
        if self.batch_size >= self.num_samples:
            return "full-batch gradient descent"
        if self.batch_size == 1:
            return "stochastic gradient descent"
        return "mini-batch gradient descent"

    def __len__(self) -> int:
        """Batches (= parameter updates) per epoch."""
        if self._unbatched:
            return len(self.sampler)  # type: ignore[arg-type]
        if self._stream:
            len(self.dataset)  # raises for a stream without a length, as PyTorch's loader does
            if self.batch_size is None:
                return self.num_samples
            return self.num_samples // self.batch_size if self.drop_last else -(-self.num_samples // self.batch_size)
        if self._given_batch_sampler is not None:
            return len(self._given_batch_sampler)
        n = len(self.sampler)  # type: ignore[arg-type]
        bs = self._batching()
        return n // bs if self.drop_last else -(-n // bs)

    def _batching(self) -> int:
        """The batch size of a loader that batches (not one given a batch_sampler, nor batch_size=None)."""
        if self.batch_size is None:
            raise ConfigError("DataLoader: this loader does not batch (batch_size=None or a batch_sampler)")
        return self.batch_size

    # ------------------------------------------------------------------ iteration
    def _sampled_batches(self) -> Iterator[np.ndarray]:
        """The sampler's indices a batch at a time, read lazily as PyTorch's loader reads them: a sampler
        may be endless or far longer than one epoch (``RandomSampler(num_samples=10**10)``)."""
        bs = self._batching()
        indices = iter(self.sampler)
        while True:
            idx = np.fromiter((int(i) for i in itertools.islice(indices, bs)), dtype=np.int64)
            if len(idx) == 0 or (self.drop_last and len(idx) < bs):
                return
            yield idx
            if len(idx) < bs:
                return

    def _order(self) -> np.ndarray | None:
        """This epoch's order of the sample indices (None: in order), drawn at the epoch's first batch."""
        if not self.shuffle:
            return None
        # as PyTorch's RandomSampler: from the loader's own stream, or one seed per epoch from the library
        # generator whatever the dataset's size; a full batch comes shuffled too, as in torch (its mean
        # gradient is the same, but code takes next(iter(loader))[:k] as a random sample)
        if self.generator is not None:
            return self.generator.permutation(self.num_samples)
        epoch_seed = int(backend.rng().integers(0, 2**63 - 1))
        return np.random.Generator(np.random.PCG64(epoch_seed)).permutation(self.num_samples)

    def _base_seed(self) -> int:
        """The seed PyTorch's loader iterator draws in ``iter(loader)`` (from the loader's generator, or the
        library generator), one per epoch whether or not it shuffles; workers are seeded from it."""
        source = self._seed_stream if self._seed_stream is not None else backend.rng()
        return int(source.integers(0, 2**63 - 1))

    def __iter__(self) -> Iterator[Any]:
        # When PyTorch draws: iter(loader) draws the base seed, the sampler draws the epoch's order at the
        # first batch (its __iter__ is a generator), so a seed set between the two fixes the order.
        if self.num_workers > 0:
            return _LoaderIterator(self, self._iter_workers())
        if self.timeout:  # PyTorch's single-process iterator refuses it too (an AssertionError there)
            raise ConfigError(
                f"DataLoader: timeout={self.timeout} needs num_workers > 0 (it bounds the wait for a worker's "
                "batch); PyTorch's single-process loader requires timeout == 0"
            )
        self._base_seed()  # drawn without workers too, as PyTorch's iterator does
        if self._stream:
            batches = self._iter_stream()
            if self.device is not None:
                batches = (batch_to(b, self.device) for b in batches)
        elif self.device is None:
            batches = self._iter_host()
        else:
            placed = self._device_arrays()
            if placed is None:
                batches = (batch_to(batch, self.device) for batch in self._iter_host())
            else:
                batches = self._iter_placed(placed)
        return _LoaderIterator(self, batches)

    _kept_workers: list[_WorkerProcess] | None = None  # with persistent_workers=True, kept across epochs

    def _start_workers(self) -> tuple[list[_WorkerProcess], bool]:
        """This epoch's workers and whether they start now (and run ``worker_init_fn``): new ones each epoch,
        seeded from a new base seed, or, with ``persistent_workers``, the ones started at the first epoch."""
        if self._kept_workers is not None:
            return self._kept_workers, False
        base_seed = self._base_seed()  # PyTorch's persistent workers start (and draw a base seed) once
        workers = [
            _WorkerProcess(WorkerInfo(id=k, num_workers=self.num_workers, seed=base_seed + k, dataset=self.dataset))
            for k in range(self.num_workers)
        ]
        if self.persistent_workers:
            self._kept_workers = workers
        return workers, True

    def _iter_workers(self) -> Iterator[Any]:
        """The epoch read as PyTorch's ``num_workers`` worker processes read it (see the class docstring): the
        sampler's draws come from this process's streams; each batch is fetched inside its worker's
        (:class:`_WorkerProcess`), batch ``k`` of a map-style dataset by worker ``k % num_workers``."""
        workers, start = self._start_workers()
        plan: Iterator[Any]
        fetch: Callable[[Any], Any]
        if self._unbatched:
            convert = self._collate_fn or default_convert
            plan, fetch = iter(self.sampler), lambda i: convert(self.dataset[i])
        elif self._stream:  # each worker iterates over the dataset itself and batches what it yields
            batches = self._iter_stream_workers(workers, start)
            return batches if self.device is None else (batch_to(b, self.device) for b in batches)
        else:
            placed = None if self.device is None else self._device_arrays()
            if placed is not None:  # slices of arrays already on the device: no dataset code runs
                return self._as_workers(workers, start, self._iter_placed(placed), None)
            plan, fetch = self._plan(), self._fetch
            if self._arrays is not None:  # gathered from the dataset's arrays: no dataset code runs either
                batches = self._as_workers(workers, start, (fetch(rows) for rows in plan), None)
                return batches if self.device is None else (batch_to(b, self.device) for b in batches)
        if self.device is None:
            return self._as_workers(workers, start, plan, fetch)
        return (batch_to(b, self.device) for b in self._as_workers(workers, start, plan, fetch))

    def _init_workers(self, workers: list[_WorkerProcess]) -> None:
        """``worker_init_fn(id)`` inside each starting worker, worker 0 first."""
        if self.worker_init_fn is not None:
            for worker in workers:
                with worker:
                    self.worker_init_fn(worker.info.id)

    def _as_workers(
        self, workers: list[_WorkerProcess], start: bool, plan: Iterator[Any], fetch: Callable[[Any], Any] | None
    ) -> Iterator[Any]:
        """Each batch's rows drawn here (``plan``) and fetched inside its worker (``fetch``): batch ``k`` by
        worker ``k % num_workers``, as PyTorch hands a map-style dataset's batches out (so the batches come
        in the order of ``num_workers=0``). Starting workers first run ``worker_init_fn`` (each epoch, as
        PyTorch's non-persistent workers do). Without ``fetch`` the plan's items are the batches, made
        without running the dataset's code, so they skip the workers' streams (switching them costs tens of
        microseconds a batch)."""
        if start:
            self._init_workers(workers)
        if fetch is None:
            yield from plan
            return
        for number, rows in enumerate(plan):
            worker = workers[number % len(workers)]
            with worker:  # only while the dataset is read: the training step sees None, as in PyTorch
                batch = fetch(rows) if not self.timeout else _fetch_in_time(fetch, rows, self.timeout, number)
            yield batch

    def _iter_stream_workers(self, workers: list[_WorkerProcess], start: bool) -> Iterator[Any]:
        """An IterableDataset read by several workers, as PyTorch's: each worker calls ``iter(dataset)``
        inside itself (so a dataset that shards itself by :func:`get_worker_info` yields its own part there)
        and batches its own samples (its last batch may be short; ``drop_last`` drops it), and the batches
        come round-robin: worker 0's first, worker 1's first, ..., worker 0's second, ...; a worker whose
        stream ends drops out of the rotation and the others go on."""
        if start:
            self._init_workers(workers)
        streams: list[tuple[_WorkerProcess, Iterator[Any]]] = []
        for worker in workers:
            with worker:
                streams.append((worker, self._stream_batches(iter(self.dataset))))
        number = 0
        while streams:
            for entry in list(streams):
                worker, batches = entry
                with worker:
                    fetch = lambda _, batches=batches: next(batches, _END)  # noqa: E731
                    batch = fetch(None) if not self.timeout else _fetch_in_time(fetch, None, self.timeout, number)
                if batch is _END:
                    streams.remove(entry)
                    continue
                number += 1
                yield batch

    def _plan(self) -> Iterator[slice | np.ndarray]:
        """Each batch's rows of a map-style loader, in order: a slice, or the indices to gather."""
        if self._given_batch_sampler is not None:
            for number, indices in enumerate(self._given_batch_sampler):
                yield _batch_indices(indices, number)
            return
        if self._given_sampler is not None:
            yield from self._sampled_batches()
            return
        order = self._order()  # at the first batch: this is a generator
        bs = self._batching()
        n = self.num_samples if order is None else len(order)
        stop_at = (n // bs) * bs if self.drop_last else n
        for start in range(0, stop_at, bs):
            end = min(start + bs, n)
            yield slice(start, end) if order is None else order[start:end]

    def _fetch(self, rows: slice | np.ndarray) -> Any:
        return self._slice(rows.start, rows.stop) if isinstance(rows, slice) else self._gather(rows)

    def _iter_host(self) -> Iterator[Any]:
        for rows in self._plan():
            yield self._fetch(rows)

    # ------------------------------------------------------------------ batches on a device
    def _device_arrays(self) -> tuple[Any, ...] | None:
        """The dataset's arrays on ``self.device`` (copied on the first call), or None when the dataset is
        not held in memory as arrays or is too large to place there whole (see the class docstring)."""
        if self._placed is None:
            self._placed = ()  # decided once per loader: () means "gather on the host, move each batch"
            arrays = self._arrays
            on_host = [a for a in arrays if type(a) is np.ndarray] if arrays is not None else []
            if (
                arrays is not None
                # arrays already on the target (a TensorDataset of its tensors) are used as they are
                and all(type(a) is np.ndarray or device_of(a) == self.device for a in arrays)
                and sum(a.nbytes for a in on_host) <= device_budget(self.device)
            ):
                from ..devices import to_device

                self._placed = tuple(to_device(a, self.device) for a in arrays)
        return self._placed or None

    def _iter_placed(self, placed: tuple[Any, ...]) -> Iterator[Any]:
        """The batches of :meth:`_iter_host`, sliced or gathered from the arrays already on the device."""
        from ..devices import to_device

        if self._given_batch_sampler is not None:
            for number, indices in enumerate(self._given_batch_sampler):
                idx = to_device(_batch_indices(indices, number), self.device)
                yield tuple(wrap_array(a.take(idx, axis=0)) for a in placed)
            return
        if self._given_sampler is not None:
            for idx in self._sampled_batches():
                yield tuple(wrap_array(a.take(to_device(idx, self.device), axis=0)) for a in placed)
            return
        order = self._order()  # at the first batch, as on the host
        on_device = None if order is None else to_device(order, self.device)  # one copy per epoch
        bs = self._batching()
        n = self.num_samples if order is None else len(order)
        stop_at = (n // bs) * bs if self.drop_last else n
        for start in range(0, stop_at, bs):
            end = min(start + bs, n)
            if on_device is None:
                yield tuple(wrap_array(_fresh(a[start:end])) for a in placed)  # a new array, as on the host
            else:
                idx = on_device[start:end]
                yield tuple(wrap_array(a.take(idx, axis=0)) for a in placed)

    def _slice(self, start: int, end: int) -> Any:
        if self._arrays is not None:
            # a new array per batch, as torch's collate stacks one: an in-place edit of the batch (x /= 255)
            # never reaches the dataset or the caller's arrays (a file's rows are read into new arrays already)
            return tuple(wrap_array(_fresh(a[start:end]) if is_array(a) else a[start:end]) for a in self._arrays)
        return self._collate(np.arange(start, end))

    def _gather(self, idx: np.ndarray) -> Any:
        if self._array_devices is not None:
            return self._gather_on_devices(idx)
        if self._arrays is not None:
            # a memory-mapped source reads just these rows (in file order) from the file
            return tuple(
                wrap_array(np.take(a, idx, axis=0) if isinstance(a, np.ndarray) else a.take(idx)) for a in self._arrays
            )
        return self._collate(idx)

    def _gather_on_devices(self, idx: np.ndarray) -> tuple[Tensor, ...]:
        """A batch of a dataset with arrays on a device: each gathers on its own device (as torch's batch of
        a TensorDataset of CUDA tensors is CUDA tensors), the indices copied to each device once."""
        from ..devices import to_device

        arrays, devices = self._arrays, self._array_devices
        assert arrays is not None and devices is not None  # set together in __init__
        moved: dict[Any, Any] = {}
        batch = []
        for a, where in zip(arrays, devices):
            if where is None:
                batch.append(take_rows(a, idx) if isinstance(a, np.ndarray) else a.take(idx))
                continue
            on_device = moved.get(where)
            if on_device is None:
                on_device = moved[where] = to_device(idx, where)
            batch.append(a.take(on_device, axis=0))
        return tuple(wrap_array(b) for b in batch)

    def _collate(self, idx: np.ndarray) -> Any:
        getitems = getattr(self.dataset, "__getitems__", None)
        if getitems:  # PyTorch 2.x's batched read: one call for the whole batch
            samples = list(getitems([int(i) for i in idx]))
        else:
            samples = [self.dataset[int(i)] for i in idx]
        if self._collate_fn is not None:
            return self._collate_fn(samples)
        return _collate_samples(samples)

    # ------------------------------------------------------------------ exact resume
    def state_dict(self) -> dict[str, Any]:
        """The loader's settings and its own shuffling stream's position (JSON-able), for an exact resume.

        A loader shuffling from the library generator (no ``seed=``/``generator=``) has no stream of its
        own: its orders resume with ``ds.set_rng_state(state)`` of a ``ds.get_rng_state()`` saved with it.

        Example:
            >>> import numpy as np
            >>> loader = DataLoader((np.zeros(4),), batch_size=2, shuffle=True, seed=0)
            >>> sorted(loader.state_dict())
            ['batch_size', 'drop_last', 'generator', 'shuffle']
        """
        state: dict[str, Any] = {"batch_size": self.batch_size, "shuffle": self.shuffle, "drop_last": self.drop_last}
        if self.generator is not None:
            state["generator"] = _rng_state_to_json(dict(self.generator.bit_generator.state))
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`: the shuffling stream continues where it was saved."""
        if not isinstance(state, dict):
            raise ArgumentTypeError(f"DataLoader.load_state_dict: expected a dict, got {type(state).__name__}")
        saved_world = state.get("world_size", 1)
        if saved_world != 1:  # a data-parallel run's: each update saw that many processes' batches together
            raise CheckpointError(
                f"DataLoader.load_state_dict: the state was saved by {saved_world} processes, this run has 1; "
                f"resume under mpiexec -n {saved_world} (with downslope.distributed.fit)"
            )
        gen_state = state.get("generator")
        if gen_state is None:
            return
        if not self.shuffle:
            raise CheckpointError(
                "DataLoader.load_state_dict: the state has a shuffling generator but this loader does not shuffle"
            )
        try:
            restored = _rng_state_from_json(gen_state)
            if self.generator is None:
                # saved by a version that gave every shuffling loader its own stream: keep drawing from it,
                # so that the resumed run repeats the orders the interrupted one would have drawn
                own = np.random.Generator(np.random.PCG64())
                own.bit_generator.state = restored
                self.generator = self._seed_stream = own
            else:
                self.generator.bit_generator.state = restored
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            raise CheckpointError(f"DataLoader.load_state_dict: not a generator state ({exc})") from None

    def __repr__(self) -> str:
        return (
            f"DataLoader({self.num_samples} samples, batch_size={self.batch_size} ({self.method}), "
            f"{len(self)} updates/epoch, shuffle={self.shuffle}, drop_last={self.drop_last})"
        )


def _batch_device(device: Any) -> Any:
    """DataLoader's ``device`` as a usable device, or None for host memory (None or the CPU)."""
    if device is None:
        return None
    from ..device import CPU, resolve

    target = resolve(device, "DataLoader(device=...)")
    return None if target == CPU else target


def device_budget(target: Any) -> int:
    """How many bytes of data a DataLoader places whole on ``target``: a quarter of a GPU's free memory
    (asked once per loader), 1 GiB on the strict test device.

    Example:
        >>> device_budget("strict")
        1073741824
    """
    from ..device import device as make_device
    from ..devices import cupy_module

    d = target if isinstance(target, make_device) else make_device(target)
    if d.type == "cuda":
        cupy = cupy_module()
        if cupy is None:
            return 0
        with cupy.cuda.Device(d.index or 0):
            free, _total = cupy.cuda.runtime.memGetInfo()
        return int(free) // 4
    return 1 << 30


def batch_to(batch: Any, target: Any) -> Any:
    """``batch`` (a Tensor, or tuples, lists and dicts of them, as a DataLoader yields) with every Tensor
    on the device ``target``; a Tensor already there is kept, anything else is returned as it is.

    Example:
        >>> import downslope as ds
        >>> x, y = batch_to((ds.zeros(2, 3), ds.ones(2)), "strict")
        >>> str(x.device), str(y.device)
        ('strict', 'strict')
    """
    from ..devices import to_device

    if isinstance(batch, Tensor):
        moved = to_device(batch.array, target)
        return batch if moved is batch.array else wrap_array(moved)
    if isinstance(batch, tuple):
        return tuple(batch_to(b, target) for b in batch)
    if isinstance(batch, list):
        return [batch_to(b, target) for b in batch]
    if isinstance(batch, dict):
        return {k: batch_to(v, target) for k, v in batch.items()}
    return batch


_IGNORED_OPTIONS = {"multiprocessing_context", "pin_memory_device", "in_order"}


def _check_worker_options(num_workers: int, prefetch_factor: Any, persistent_workers: bool, timeout: float) -> None:
    """PyTorch's checks of its worker options (with its messages), so a configuration PyTorch refuses is
    refused here too, although downslope reads the data in this process whatever they say."""
    if timeout < 0:
        raise ConfigError("timeout option should be non-negative")
    if num_workers == 0 and prefetch_factor is not None:
        raise ConfigError(
            "prefetch_factor option could only be specified in multiprocessing."
            "let num_workers > 0 to enable multiprocessing, otherwise set prefetch_factor to None."
        )
    if prefetch_factor is not None and prefetch_factor < 0:
        raise ConfigError("prefetch_factor option should be non-negative")
    if persistent_workers and num_workers == 0:
        raise ConfigError("persistent_workers option needs num_workers > 0")


class _LoaderIterator:
    """What ``iter(loader)`` returns: the epoch's batches, with ``len()`` (PyTorch's loader iterator has one)."""

    def __init__(self, loader: DataLoader, batches: Iterator[Any]) -> None:
        self._loader, self._batches = loader, batches

    def __iter__(self) -> _LoaderIterator:
        return self

    def __next__(self) -> Any:
        return next(self._batches)

    def __len__(self) -> int:
        return len(self._loader)


def _stack_field(values: list[Any], where: str) -> Tensor:
    first = values[0]
    if (
        isinstance(first, Tensor)
        and graph.is_grad_enabled()
        and any(getattr(v, "requires_grad", False) for v in values)
    ):
        # torch's collate stacks with torch.stack, so a batch of samples that require grad is part of the graph
        from ..ops.shape import stack

        return stack(values)
    if type(first.array if isinstance(first, Tensor) else first) not in _HOST_SAMPLE_TYPES and _on_device(first):
        return _stack_device_tensors(values, where)
    try:
        stacked = np.stack([np.asarray(v.array if isinstance(v, Tensor) else v) for v in values])
    except ValueError as exc:
        raise ShapeError(
            f"DataLoader: samples of {where} have different shapes and cannot form a batch ({exc})"
        ) from None
    except TypeError:  # a device sample after host ones: NumPy refused to copy it over
        _refuse_mixed_devices(values, where, first)
        raise
    if stacked.dtype.kind not in "fiubc":  # strings, objects (None among numbers): what PyTorch refuses
        raise ArgumentTypeError(f"{_COLLATE_TYPES.format(stacked.dtype)} (in {where})")
    if (stacked.dtype in _KEPT_BATCH_DTYPES and type(first) is not int) or isinstance(first, Tensor):
        # as torch's default_collate: a uint8 image batch stays uint8 (so `x.float() / 255` code sees it), and
        # a Tensor's dtype was chosen when it was made (a float64 tensor batches as float64, as torch.stack
        # keeps it); Python ints (NumPy's default integer, int32 on some platforms) go on to int64 below,
        # and NumPy floating data and Python floats to the default dtype (float32)
        return wrap_array(np.ascontiguousarray(stacked))
    return wrap_array(_as_sample_array(stacked, f"DataLoader {where}"))


# the samples _stack_field stacks on the host without asking where they live
_HOST_SAMPLE_TYPES = (np.ndarray, int, float, bool)


def _on_device(value: Any) -> bool:
    array = value.array if isinstance(value, Tensor) else value
    return not isinstance(array, (np.ndarray, np.generic)) and is_array(array)


def _refuse_mixed_devices(values: list[Any], where: str, first: Any) -> None:
    """Raise the mixed-devices error when ``values`` hold both host and device samples (else return)."""
    place = device_of(first.array if isinstance(first, Tensor) else first)
    for v in values:
        array = v.array if isinstance(v, Tensor) else v
        if device_of(array) != place:
            raise ArgumentTypeError(
                f"DataLoader: samples of {where} must all be on one device to form a batch (torch.stack's "
                f"rule); the first is on {place}, one is on {device_of(array)} ({type(v).__name__})"
            )


def _stack_device_tensors(values: list[Any], where: str) -> Tensor:
    """Samples on a device (tensors there, or CuPy arrays) stack on their device, as torch.stack does in
    torch's default_collate: the batch never passes through host memory, and mixed devices are refused
    by name. The batch's dtype follows the host batch's rules (a float64 tensor stays float64, a float64
    CuPy array batches as float32)."""
    _refuse_mixed_devices(values, where, values[0])
    arrays = [v.array if isinstance(v, Tensor) else v for v in values]
    try:
        stacked = backend.namespace_of(arrays[0]).stack(arrays)
    except ValueError as exc:
        raise ShapeError(
            f"DataLoader: samples of {where} have different shapes and cannot form a batch ({exc})"
        ) from None
    if stacked.dtype in _KEPT_BATCH_DTYPES or isinstance(values[0], Tensor):
        return wrap_array(stacked)  # stack's result is contiguous; a Tensor's dtype stays, as on the host
    return wrap_array(_as_sample_array(stacked, f"DataLoader {where}"))


# What a batch keeps (torch's integer dtypes, float16, bool); other floats become the default dtype and
# uint16/uint32/uint64 int64, as ds.tensor does
_KEPT_BATCH_DTYPES = KEPT_INTEGER_DTYPES | {np.dtype(np.float16), np.dtype(np.bool_)}


def _array_devices(arrays: tuple[Any, ...] | None) -> tuple[Any, ...] | None:
    """Each array's device (None for host memory and memory-mapped files), or None when none is on a device."""
    if arrays is None or all(isinstance(a, np.ndarray) or not is_array(a) for a in arrays):
        return None
    return tuple(None if isinstance(a, np.ndarray) or not is_array(a) else device_of(a) for a in arrays)


def _looks_like_arrays(items: tuple[Any, ...]) -> bool:
    """Whether a tuple is (x, y, ...) arrays sharing their first axis, rather than a tuple of samples."""
    lengths = set()
    for item in items:
        arr = item.array if isinstance(item, Tensor) else item
        if isinstance(arr, list):
            try:
                arr = np.asarray(arr)
            except ValueError:  # ragged: samples, not an array
                return False
        if not is_array(arr) or arr.ndim == 0 or arr.dtype.kind not in "fiubc":
            return False
        lengths.add(len(arr))
    return len(lengths) == 1


def _collate_samples(samples: list[Any]) -> Any:
    """The DataLoader's batch: a tuple of fields for tuple/list samples (downslope's ``x, y = batch``), a
    namedtuple of fields for namedtuple samples, and :func:`default_collate`'s batch for anything else."""
    first = samples[0]
    if not isinstance(first, (tuple, list)):
        return default_collate(samples)  # a dataset of single tensors or dicts: batches as PyTorch's
    fields = _transpose(samples)
    if _is_namedtuple(first):
        names: tuple[str, ...] = first._fields  # type: ignore[union-attr]  # a namedtuple, just checked
        return type(first)(*(_collate_field(f, f"field {name!r}") for f, name in zip(fields, names)))
    return tuple(_collate_field(f, f"field {k}") for k, f in enumerate(fields))


def _collate_field(values: Sequence[Any], where: str) -> Any:
    if _is_array_like(values[0]):
        return _stack_field(list(values), where)
    return default_collate(values)


_COLLATE_TYPES = (
    "default_collate: batch must contain tensors, numeric numpy arrays, numbers (stacked into a tensor), "
    "strings (str, bytes, numpy's str_ and bytes_: kept as they come), dicts, lists or tuples; found {}"
)


def _is_array_like(value: Any) -> bool:
    # bool is an int; Python's complex and other numbers are refused, as PyTorch's collate refuses them (NumPy's
    # complex scalars and arrays are batched, as in PyTorch); numpy's
    # strings (np.str_ is a str, np.bytes_ a bytes) are batched as Python's, as in PyTorch
    if isinstance(value, (Tensor, np.ndarray, np.generic, int, float)):
        return not isinstance(value, (str, bytes))
    return is_array(value)  # a device array (CuPy's) stacks on its device, as a device tensor does


def _is_namedtuple(value: Any) -> bool:
    return isinstance(value, tuple) and hasattr(value, "_fields")


def _transpose(samples: Sequence[Any]) -> list[tuple[Any, ...]]:
    """The samples' fields (each a tuple over the batch); samples of different lengths cannot form a batch."""
    lengths = [len(s) for s in samples]
    if len(set(lengths)) != 1:
        raise ShapeError(f"each element in list of batch should be of equal size (got lengths {lengths})")
    return list(zip(*samples))


def default_convert(data: Any) -> Any:
    """PyTorch's conversion used when batching is off: NumPy arrays and NumPy scalars become Tensors
    (sharing the array, dtype kept), containers are converted element by element (a plain tuple becomes
    a list, as in PyTorch; a namedtuple keeps its type), anything else (Python numbers, strings) is
    returned as it is.

    Example:
        >>> import numpy as np
        >>> default_convert({"x": np.zeros(2)})["x"].shape
        downslope.Size([2])
    """
    if isinstance(data, Tensor):
        return data
    if isinstance(data, (np.ndarray, np.generic)):
        arr = np.asarray(data)
        return wrap_array(arr) if arr.dtype.kind in "fiubc" else data
    if isinstance(data, dict):
        return {k: default_convert(v) for k, v in data.items()}
    if isinstance(data, tuple):
        if hasattr(data, "_fields"):  # a namedtuple keeps its type
            return type(data)(*(default_convert(v) for v in data))
        return [default_convert(v) for v in data]
    if isinstance(data, list):
        return [default_convert(v) for v in data]
    return data


class WorkerInfo:
    """What :func:`get_worker_info` returns inside a DataLoader's worker (``num_workers > 0``): PyTorch's
    fields ``id``, ``num_workers``, ``seed`` and ``dataset`` (read-only, as PyTorch's).

    Example:
        >>> WorkerInfo(id=0, num_workers=1, seed=7, dataset=None).num_workers
        1
    """

    id: int
    num_workers: int
    seed: int
    dataset: Any

    def __init__(self, id: int, num_workers: int, seed: int, dataset: Any) -> None:  # noqa: A002  (PyTorch's name)
        for name, value in (("id", id), ("num_workers", num_workers), ("seed", seed), ("dataset", dataset)):
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: Any) -> None:
        # PyTorch's WorkerInfo is read-only: a dataset that rewrote it would change what the other reads see
        raise StateError(f"Cannot assign attributes to WorkerInfo objects (tried to set {name!r})")

    def __repr__(self) -> str:
        return f"WorkerInfo(id={self.id}, num_workers={self.num_workers}, seed={self.seed}, dataset={self.dataset!r})"


_worker_info: WorkerInfo | None = None
_END = object()  # what a worker's fetch returns when its stream has no batch left


class _WorkerProcess:
    """PyTorch's worker process, emulated in this one: within the block :func:`get_worker_info` returns
    ``info`` and the global random streams (Python's ``random``, NumPy's legacy ``np.random``, the library
    generator behind ``ds.initial_seed``/``ds.rand``) are the worker's own, seeded as PyTorch seeds a new
    worker (``random.seed`` and ``torch.manual_seed`` with ``info.seed``, NumPy from the base seed and the
    worker id). On exit the worker's streams are kept, so they continue at its next batch, and this
    process's streams are back where they were, untouched by what ran inside, as a separate process
    would leave them."""

    def __init__(self, info: WorkerInfo) -> None:
        self.info = info
        seed = info.seed
        base_seed = seed - info.id
        self.python_state = pyrandom.Random(seed).getstate()
        self.numpy_state = _NumpyState(np.random.RandomState(_numpy_worker_seed(base_seed, info.id)).get_state())
        self.library_state: Any = backend.pack_rng_state(np.random.Generator(np.random.PCG64(seed)), seed)
        self._outer: list[tuple[Any, ...]] = []  # a stack: a worker's dataset may read another loader
        self._main_numpy: _NumpyState | None = None  # this process's np.random, as last restored

    def __enter__(self) -> None:
        global _worker_info
        main_numpy = _switch_numpy(self._main_numpy, self.numpy_state)
        self._outer.append((_worker_info, pyrandom.getstate(), main_numpy, backend.get_rng_state()))
        _worker_info = self.info
        pyrandom.setstate(self.python_state)
        backend.set_rng_state(self.library_state)

    def __exit__(self, *exc: object) -> None:
        global _worker_info
        self.python_state, self.library_state = pyrandom.getstate(), backend.get_rng_state()
        _worker_info, python_state, main_numpy, library_state = self._outer.pop()
        self.numpy_state = _switch_numpy(self.numpy_state, main_numpy)
        self._main_numpy = main_numpy
        pyrandom.setstate(python_state)
        backend.set_rng_state(library_state)


def _mt19937_address() -> int | None:
    """Where np.random's global MT19937 keeps its key words and position (numpy's ``mt19937_state``), if
    its layout is the one :func:`_switch_numpy` copies (checked against ``get_state``); else None."""
    try:
        generator = np.random.mtrand._rand._bit_generator
        address = int(generator.ctypes.state_address) if type(generator).__name__ == "MT19937" else None
    except (AttributeError, TypeError):
        return None
    if address is None or ctypes.string_at(address, _MT_BYTES) != _NumpyState(np.random.get_state()).raw:
        return None
    return address


_MT_BYTES = 624 * 4 + 4  # MT19937's 624 key words and its position (a C int)


class _NumpyState:
    """A state of np.random's global stream: ``get_state()``'s tuple and, when no Gaussian is cached
    (``has_gauss`` 0, the usual case), the generator's bytes, which are then the whole state: copying
    them (a microsecond) replaces ``set_state`` (50 microseconds), and comparing them tells whether
    the stream moved since."""

    __slots__ = ("legacy", "raw")

    def __init__(self, legacy: Any, raw: bytes | None = None) -> None:  # legacy: get_state()'s tuple
        self.legacy = legacy
        if raw is None and legacy[3] == 0:
            raw = np.asarray(legacy[1], np.uint32).tobytes() + np.int32(legacy[2]).tobytes()
        self.raw = raw if legacy[3] == 0 else None


_MT_ADDRESS: list[int | None] = []  # found at the first switch


def _switch_numpy(leaving: _NumpyState | None, entering: _NumpyState) -> _NumpyState:
    """Make ``entering`` np.random's global state; returns the state it had (``leaving``, when that is
    known to be still exact: no number drawn since, and no Gaussian cached, which a draw could use up
    without moving the generator)."""
    if not _MT_ADDRESS:
        _MT_ADDRESS.append(_mt19937_address())
    address = _MT_ADDRESS[0]
    current = None if address is None else ctypes.string_at(address, _MT_BYTES)
    if leaving is not None and leaving.raw is not None and leaving.raw == current:
        left = leaving
    else:
        left = _NumpyState(np.random.get_state(), current)
    if address is not None and left.raw is not None and entering.raw is not None:
        ctypes.memmove(address, entering.raw, _MT_BYTES)  # neither caches a Gaussian: the bytes are the state
    else:
        np.random.set_state(entering.legacy)
    return left


def _numpy_worker_seed(base_seed: int, worker_id: int) -> list[int]:
    """The four 32-bit words PyTorch's worker ``worker_id`` seeds ``np.random`` with (its
    ``_generate_state``, a small hash after ``numpy.random.SeedSequence``), so worker streams differ
    between workers and epochs.

    Example:
        >>> len(_numpy_worker_seed(2**40 + 3, 0))
        4
    """
    mask = 0xFFFFFFFF
    hash_const = 0x43B0D7E5

    def hashed(value: int) -> int:
        nonlocal hash_const
        value = (value ^ hash_const) & mask
        hash_const = (hash_const * 0x931E8875) & mask
        value = (value * hash_const) & mask
        return (value ^ (value >> 16)) & mask

    def mix(x: int, y: int) -> int:
        result = (((0xCA01F9DD * x) & mask) - ((0x4973F715 * y) & mask)) & mask
        return (result ^ (result >> 16)) & mask

    pool = [hashed(v) for v in (worker_id, base_seed & mask, base_seed >> 32, 0)]
    for i_src in range(4):
        for i_dst in range(4):
            if i_src != i_dst:
                pool[i_dst] = mix(pool[i_dst], hashed(pool[i_src]))
    hash_const = 0x8B51F9DD
    state = []
    for i in range(4):
        value = (pool[i] ^ hash_const) & mask
        hash_const = (hash_const * 0x58F38DED) & mask
        value = (value * hash_const) & mask
        state.append((value ^ (value >> 16)) & mask)
    return state


def get_worker_info() -> WorkerInfo | None:
    """None in the main process, as PyTorch. While a DataLoader with ``num_workers > 0`` reads its
    dataset (and runs ``worker_init_fn``), the :class:`WorkerInfo` of the worker reading it: ``id`` (0 to
    ``num_workers - 1``), ``num_workers``, ``seed`` (what ``ds.initial_seed()`` returns there) and
    ``dataset``, so code that shards an IterableDataset by worker reads every sample once (see
    :class:`DataLoader`).

    Example:
        >>> get_worker_info() is None
        True
    """
    return _worker_info


def default_collate(samples: Sequence[Any]) -> Any:
    """Stack a list of samples into a batch, as PyTorch's ``default_collate``: tensors, arrays and
    numbers become one Tensor with a new first axis (Tensors keep their dtype, as torch.stack: a float64
    tensor batches as float64; int8/int16/int32/int64/uint8, float16 and bool arrays keep theirs too, as
    torch's: a uint8 image batch stays uint8; other NumPy floating data and Python floats become the
    default dtype, float32, NumPy complex data complex64, uint16/uint32/uint64 int64, Python ints int64;
    samples that require grad give a batch in their graph, as torch.stack's);
    tuples and lists are collated field by field
    (a list back; a namedtuple keeps its type), mappings key by key (a dict, or the mapping's own type);
    strings (numpy's ``np.str_``/``np.bytes_`` too) are returned as they come (a list, or a tuple when
    they were a field of tuples). Samples
    (tuples, lists) of different lengths raise PyTorch's "each element in list of batch should be of
    equal size"; other types (None, ...) a TypeError naming the type, as PyTorch's.

    Example:
        >>> import downslope as ds
        >>> batch = default_collate([{"x": ds.zeros(2), "y": 1}, {"x": ds.ones(2), "y": 0}])
        >>> batch["x"].shape, batch["y"].tolist()
        (downslope.Size([2, 2]), [1, 0])
    """
    if not isinstance(samples, (list, tuple)) or not samples:
        raise DataError(f"default_collate: expected a non-empty list of samples, got {samples!r:.80}")
    first = samples[0]
    if _is_array_like(first):
        return _stack_field(list(samples), "the batch")
    if isinstance(first, (str, bytes)):
        return samples
    if isinstance(first, Mapping):
        collated = {key: default_collate([s[key] for s in samples]) for key in first}
        try:
            if isinstance(first, MutableMapping):
                clone = copy.copy(first)  # an OrderedDict, a defaultdict ... stays one, as in PyTorch
                clone.update(collated)
                return clone
            return type(first)(collated)  # type: ignore[call-arg]
        except TypeError:
            return collated
    if _is_namedtuple(first):
        return type(first)(*(default_collate(f) for f in _transpose(samples)))
    if isinstance(first, Sequence):
        fields = [default_collate(f) for f in _transpose(samples)]
        if isinstance(first, MutableSequence) and not isinstance(first, list | tuple):
            try:
                same_type = copy.copy(first)  # a MutableSequence of its own type stays one, as in PyTorch
                for k, value in enumerate(fields):
                    same_type[k] = value
                return same_type
            except TypeError:
                return fields
        return fields
    raise ArgumentTypeError(_COLLATE_TYPES.format(type(first)))


def _rng_state_to_json(state: dict[str, Any]) -> dict[str, Any]:
    # PCG64's 128-bit integers do not fit JSON readers that use 64-bit numbers: keep them as strings.
    inner = state["state"]
    return {**state, "state": {k: str(v) for k, v in inner.items()}}


def _rng_state_from_json(state: dict[str, Any]) -> dict[str, Any]:
    inner = state["state"]
    return {**state, "state": {k: int(v) for k, v in inner.items()}}
