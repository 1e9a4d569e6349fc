"""DataLoader: batches of samples, in order or shuffled by the loader's own seeded generator.

The batch size names the flavour of gradient descent:

=====================  =================================  =========================
``batch_size``         method                             updates per epoch
=====================  =================================  =========================
``None`` or ``"full"`` full-batch gradient descent        1
``1``                  stochastic gradient descent (SGD)  N
``B`` (1 < B < N)      mini-batch gradient descent        ceil(N / B) (floor with drop_last)
=====================  =================================  =========================

``len(loader)`` is the number of updates per epoch.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from .. import backend
from ..errors import ArgumentTypeError, CheckpointError, ConfigError, DataError, ShapeError
from ..tensor import Tensor, _wrap
from .dataset import ArrayDataset, Dataset, _as_sample_array, dataset_arrays

BatchSize = int | str | None


def _resolve_batch_size(batch_size: Any, n: int) -> int:
    if batch_size is None or (isinstance(batch_size, str) and batch_size.lower() == "full"):
        return n
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
        raise ArgumentTypeError(
            f"DataLoader: batch_size must be a positive integer, None or 'full' (full batch); got {batch_size!r}"
        )
    if batch_size <= 0:
        raise ConfigError(f"DataLoader: batch_size must be >= 1 (or None/'full' for full batch); got {batch_size}")
    return int(batch_size)


def _new_generator(seed: int | None, generator: np.random.Generator | None) -> np.random.Generator:
    if generator is not None:
        if seed is not None:
            raise ConfigError("DataLoader: pass either seed or generator, not both")
        if not isinstance(generator, np.random.Generator):
            raise ArgumentTypeError(
                f"DataLoader: generator must be a numpy.random.Generator, got {type(generator).__name__}"
            )
        return generator
    if seed is None:
        # Derived from the library generator, so ds.manual_seed(...) also fixes the shuffling order.
        seed = int(backend.rng().integers(0, 2**63 - 1))
    elif isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"DataLoader: seed must be a non-negative integer, got {seed!r}")
    return np.random.Generator(np.random.PCG64(int(seed)))


class DataLoader:
    """Iterate over a dataset in batches; each batch is a tuple of Tensors ``(x, y, ...)``.

    Args:
        dataset: a :class:`Dataset`, or a tuple of arrays ``(x, y)`` (wrapped in an ArrayDataset).
        batch_size: ``None``/``"full"`` (full batch), ``1`` (stochastic) or ``B`` (mini-batch).
            Like PyTorch the default is 1; a batch size above N is clipped to N.
        shuffle: reshuffle the sample order at the start of every epoch. A full batch is never
            permuted: the order of samples does not change its (mean) gradient.
        drop_last: drop the last, smaller batch.
        seed / generator: the loader's own ``numpy.random.Generator`` for shuffling. Without either, the seed is
            drawn from the library generator (:func:`downslope.manual_seed` fixes it).

    Array-backed datasets are gathered with one ``np.take`` per array into contiguous arrays
    (slices, without a copy, when not shuffling); a :class:`~downslope.data.dataset.LazyDataset`
    reads each batch's rows from its memory-mapped file (so a file larger than memory trains in
    every batch mode: a full batch is then the whole training split); other datasets are indexed
    sample by sample.

    Example:
        >>> import numpy as np
        >>> loader = DataLoader((np.zeros((10, 3)), np.arange(10)), batch_size=4, shuffle=True, seed=0)
        >>> len(loader), loader.method
        (3, 'mini-batch gradient descent')
        >>> [x.shape for x, y in loader]
        [(4, 3), (4, 3), (2, 3)]
    """

    def __init__(
        self,
        dataset: Dataset | Sequence[Any],
        batch_size: BatchSize = 1,
        shuffle: bool = False,
        drop_last: bool = False,
        seed: int | None = None,
        generator: np.random.Generator | None = None,
    ) -> None:
        if isinstance(dataset, (tuple, list)):
            dataset = ArrayDataset(*dataset)
        if not hasattr(dataset, "__len__") or not hasattr(dataset, "__getitem__"):
            raise ArgumentTypeError(
                f"DataLoader: expected a Dataset (with __len__ and __getitem__) or a tuple of arrays, "
                f"got {type(dataset).__name__}"
            )
        n = len(dataset)
        if n == 0:
            raise DataError("DataLoader: the dataset is empty (0 samples)")
        self.dataset = dataset
        self.num_samples = n
        requested = _resolve_batch_size(batch_size, n)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        if self.drop_last and requested > n:
            raise ConfigError(f"DataLoader: drop_last=True with batch_size {batch_size} > {n} samples gives no batches")
        self.batch_size = min(requested, n)
        self.generator = _new_generator(seed, generator) if self.shuffle else None
        self._arrays = dataset_arrays(dataset)

    # ------------------------------------------------------------------ what kind of descent
    @property
    def method(self) -> str:
        """'full-batch gradient descent', 'stochastic gradient descent' or 'mini-batch gradient descent'."""
        if self.batch_size >= self.num_samples:
            return "full-batch gradient descent"
        if self.batch_size == 1:
            return "stochastic gradient descent"
        return "mini-batch gradient descent"

    def __len__(self) -> int:
        """Batches (= parameter updates) per epoch."""
        if self.drop_last:
            return self.num_samples // self.batch_size
        return -(-self.num_samples // self.batch_size)

    # ------------------------------------------------------------------ iteration
    def _order(self) -> np.ndarray | None:
        if self.generator is None or self.batch_size >= self.num_samples:
            return None
        return self.generator.permutation(self.num_samples)

    def __iter__(self) -> Iterator[tuple[Tensor, ...]]:
        order = self._order()
        bs, n = self.batch_size, self.num_samples
        stop_at = len(self) * bs
        for start in range(0, min(stop_at, n), bs):
            end = min(start + bs, n)
            if order is None:
                yield self._slice(start, end)
            else:
                yield self._gather(order[start:end])

    def _slice(self, start: int, end: int) -> tuple[Tensor, ...]:
        if self._arrays is not None:
            return tuple(_wrap(a[start:end]) for a in self._arrays)
        return self._collate(np.arange(start, end))

    def _gather(self, idx: np.ndarray) -> tuple[Tensor, ...]:
        if self._arrays is not None:
            # a memory-mapped source reads just these rows (in file order) from the file
            return tuple(
                _wrap(np.take(a, idx, axis=0) if isinstance(a, np.ndarray) else a.take(idx)) for a in self._arrays
            )
        return self._collate(idx)

    def _collate(self, idx: np.ndarray) -> tuple[Tensor, ...]:
        samples = [self.dataset[int(i)] for i in idx]
        first = samples[0]
        if not isinstance(first, (tuple, list)):
            samples = [(s,) for s in samples]
            first = samples[0]
        width = len(first)
        fields = []
        for k in range(width):
            try:
                stacked = np.stack([np.asarray(s[k].array if isinstance(s[k], Tensor) else s[k]) for s in samples])
            except ValueError as exc:
                raise ShapeError(
                    f"DataLoader: samples of field {k} have different shapes and cannot form a batch ({exc})"
                ) from None
            fields.append(_wrap(_as_sample_array(stacked, f"DataLoader field {k}")))
        return tuple(fields)

    # ------------------------------------------------------------------ exact resume
    def state_dict(self) -> dict[str, Any]:
        """The shuffling generator's state (JSON-able), so that a resumed run draws the same orders."""
        state: dict[str, Any] = {"batch_size": self.batch_size, "shuffle": self.shuffle, "drop_last": self.drop_last}
        if self.generator is not None:
            state["generator"] = _rng_state_to_json(dict(self.generator.bit_generator.state))
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if not isinstance(state, dict):
            raise ArgumentTypeError(f"DataLoader.load_state_dict: expected a dict, got {type(state).__name__}")
        gen_state = state.get("generator")
        if gen_state is None:
            return
        if self.generator is None:
            raise CheckpointError(
                "DataLoader.load_state_dict: the state has a shuffling generator but this loader does not shuffle"
            )
        try:
            self.generator.bit_generator.state = _rng_state_from_json(gen_state)
        except (TypeError, ValueError, KeyError) as exc:
            raise CheckpointError(f"DataLoader.load_state_dict: not a generator state ({exc})") from None

    def __repr__(self) -> str:
        return (
            f"DataLoader({self.num_samples} samples, batch_size={self.batch_size} ({self.method}), "
            f"{len(self)} updates/epoch, shuffle={self.shuffle}, drop_last={self.drop_last})"
        )


def _rng_state_to_json(state: dict[str, Any]) -> dict[str, Any]:
    # PCG64's 128-bit integers do not fit JSON readers that use 64-bit numbers: keep them as strings.
    inner = state["state"]
    return {**state, "state": {k: str(v) for k, v in inner.items()}}


def _rng_state_from_json(state: dict[str, Any]) -> dict[str, Any]:
    inner = state["state"]
    return {**state, "state": {k: int(v) for k, v in inner.items()}}
