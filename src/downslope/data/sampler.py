"""Samplers (PyTorch's names): the order in which a DataLoader visits a dataset's indices.

A sampler is any iterable of indices with a length; a batch sampler yields lists of indices.
Random samplers draw from their own stream (``generator=``: a :class:`downslope.Generator` or a
``numpy.random.Generator``) or, without one, from the library generator as each pass starts (as
PyTorch's: ``RandomSampler`` draws a seed for the pass from it), so :func:`downslope.manual_seed`
before the loop fixes their order wherever they were built. As in PyTorch, whose ``__iter__`` is a
generator, a pass draws when its first index is asked for, not in ``iter(sampler)``.

Example:
    >>> import numpy as np
    >>> from downslope.data import ArrayDataset, DataLoader, SubsetRandomSampler
    >>> data = ArrayDataset(np.arange(10.0))
    >>> loader = DataLoader(data, batch_size=2, sampler=SubsetRandomSampler([0, 1, 2, 3], np.random.default_rng(0)))
    >>> sorted(float(v) for (x,) in loader for v in x.tolist())
    [0.0, 1.0, 2.0, 3.0]
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sized
from typing import Any, Generic, TypeVar

import numpy as np

from .. import backend
from ..errors import ArgumentError, ArgumentTypeError, ConfigError
from ..generator import as_numpy_generator
from ..ops.sampling import draw_without_replacement

__all__ = [
    "Sampler",
    "SequentialSampler",
    "RandomSampler",
    "SubsetRandomSampler",
    "WeightedRandomSampler",
    "BatchSampler",
]


def _rng(generator: Any, owner: str) -> np.random.Generator | None:
    """The stream behind ``generator`` (a Generator's own, so its later manual_seed reaches this sampler),
    or None: draw from the library generator as each pass starts."""
    if generator is None:
        return None
    return as_numpy_generator(generator, owner)


_DRAW_CHUNK = 1 << 16  # indices drawn at once with replacement (one call below this many: the same stream)


T_co = TypeVar("T_co", covariant=True)


class Sampler(Generic[T_co]):
    """Base class: subclasses define ``__iter__`` (indices) and ``__len__``. Generic, as PyTorch's:
    ``class MySampler(Sampler[int])`` works."""

    def __init__(self, data_source: Sized | None = None) -> None:
        self.data_source = data_source

    def __iter__(self) -> Iterator[T_co]:
        raise NotImplementedError(f"{type(self).__name__} must define __iter__")

    def __len__(self) -> int:
        raise NotImplementedError(f"{type(self).__name__} must define __len__")


class _InfiniteConstantSampler(Sampler[None]):
    """What a DataLoader over an IterableDataset reports as its sampler (PyTorch's): None for ever, since the
    stream decides what comes next."""

    def __init__(self) -> None:
        super().__init__(None)

    def __iter__(self) -> Iterator[None]:
        while True:
            yield None


def _check_bool(value: Any, name: str, owner: str, error: type[Exception]) -> bool:
    """PyTorch's check of a flag: a bool, not 0/1 (PyTorch raises ``error``'s base type with these words)."""
    if not isinstance(value, (bool, np.bool_)):
        raise error(f"{owner}: {name} should be a boolean value, but got {name}={value!r}")
    return bool(value)


class SequentialSampler(Sampler[int]):
    """0, 1, ..., len(data_source) - 1.

    Example:
        >>> list(SequentialSampler(range(3)))
        [0, 1, 2]
    """

    data_source: Sized

    def __init__(self, data_source: Sized) -> None:
        super().__init__(data_source)

    def __iter__(self) -> Iterator[int]:
        return iter(range(len(self.data_source)))

    def __len__(self) -> int:
        return len(self.data_source)


class RandomSampler(Sampler[int]):
    """A fresh permutation of the indices every epoch (or ``num_samples`` draws with replacement).

    Example:
        >>> import numpy as np
        >>> sorted(RandomSampler(range(4), generator=np.random.default_rng(0)))
        [0, 1, 2, 3]
    """

    data_source: Sized

    def __init__(
        self, data_source: Sized, replacement: bool = False, num_samples: int | None = None, generator: Any = None
    ) -> None:
        super().__init__(data_source)
        self.replacement = _check_bool(replacement, "replacement", "RandomSampler", ArgumentTypeError)
        self._num_samples = num_samples
        if num_samples is not None and (
            isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples <= 0
        ):
            raise ConfigError(f"RandomSampler: num_samples must be a positive integer, got {num_samples!r}")
        self.generator = _rng(generator, "RandomSampler")

    @property
    def num_samples(self) -> int:
        return len(self.data_source) if self._num_samples is None else self._num_samples

    def __iter__(self) -> Iterator[int]:
        n = len(self.data_source)
        rng = self.generator
        if rng is None:  # as PyTorch: one seed per pass from the library generator
            rng = np.random.Generator(np.random.PCG64(int(backend.rng().integers(0, 2**63 - 1))))
        # Drawn a chunk (or a pass over the data) at a time, as PyTorch's: a sampler asked for 1e10
        # samples (makemore's "infinite" loader) starts at once instead of allocating them all.
        left = self.num_samples
        while left > 0:
            if self.replacement:
                draw = rng.integers(0, n, min(left, _DRAW_CHUNK))
            else:
                draw = rng.permutation(n)[:left]
            left -= len(draw)
            yield from draw.tolist()

    def __len__(self) -> int:
        return self.num_samples


class SubsetRandomSampler(Sampler[int]):
    """The given indices in a fresh random order every epoch (e.g. a validation split).

    Example:
        >>> import numpy as np
        >>> sorted(SubsetRandomSampler([5, 7, 9], np.random.default_rng(0)))
        [5, 7, 9]
    """

    def __init__(self, indices: Iterable[int], generator: Any = None) -> None:
        super().__init__(None)
        self.indices = list(indices)
        self.generator = _rng(generator, "SubsetRandomSampler")

    def __iter__(self) -> Iterator[int]:
        rng = self.generator if self.generator is not None else backend.rng()
        order = rng.permutation(len(self.indices))
        yield from (self.indices[i] for i in order.tolist())

    def __len__(self) -> int:
        return len(self.indices)


class WeightedRandomSampler(Sampler[int]):
    """``num_samples`` indices drawn with probability proportional to ``weights`` (one per sample).

    Example:
        >>> import numpy as np
        >>> list(WeightedRandomSampler([0.0, 1.0, 0.0], 3, generator=np.random.default_rng(0)))
        [1, 1, 1]
    """

    def __init__(self, weights: Any, num_samples: int, replacement: bool = True, generator: Any = None) -> None:
        super().__init__(None)
        w = np.asarray(weights.array if hasattr(weights, "array") else weights, dtype=np.float64)
        if w.ndim != 1 or w.size == 0 or np.any(w < 0) or not np.isfinite(w).all() or w.sum() <= 0:
            raise ArgumentError(
                f"WeightedRandomSampler: weights must be a 1-D sequence of non-negative finite numbers with a positive sum, "
                f"got shape {tuple(w.shape)}"
            )
        if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples <= 0:
            raise ConfigError(f"WeightedRandomSampler: num_samples must be a positive integer, got {num_samples!r}")
        replacement = _check_bool(replacement, "replacement", "WeightedRandomSampler", ConfigError)
        if not replacement and num_samples > w.size:  # past the non-zero ones, zero-weight items come, as torch
            raise ConfigError(
                f"WeightedRandomSampler: cannot draw {num_samples} samples without replacement from {w.size} items"
            )
        self.weights, self.num_samples, self.replacement = w, num_samples, bool(replacement)
        self.generator = _rng(generator, "WeightedRandomSampler")

    def __iter__(self) -> Iterator[int]:
        p = self.weights / self.weights.sum()
        rng = self.generator if self.generator is not None else backend.rng()
        if self.replacement:
            drawn = rng.choice(len(p), size=self.num_samples, replace=True, p=p)
        else:
            drawn = draw_without_replacement(rng, self.weights, self.num_samples)
        yield from drawn.tolist()

    def __len__(self) -> int:
        return self.num_samples


class BatchSampler(Sampler[list[int]]):
    """Group another sampler's indices into lists of ``batch_size`` (the last one shorter unless
    ``drop_last``).

    Example:
        >>> list(BatchSampler(SequentialSampler(range(5)), batch_size=2, drop_last=False))
        [[0, 1], [2, 3], [4]]
    """

    def __init__(self, sampler: Iterable[Any], batch_size: int, drop_last: bool) -> None:
        super().__init__(None)
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
            raise ConfigError(f"BatchSampler: batch_size must be a positive integer, got {batch_size!r}")
        drop_last = _check_bool(drop_last, "drop_last", "BatchSampler", ConfigError)
        self.sampler, self.batch_size, self.drop_last = sampler, batch_size, drop_last

    def __iter__(self) -> Iterator[list[int]]:
        batch: list[int] = []
        for index in self.sampler:
            batch.append(int(index))
            if len(batch) == self.batch_size:
                yield batch
                batch = []
        if batch and not self.drop_last:
            yield batch

    def __len__(self) -> int:
        n = len(self.sampler)  # type: ignore[arg-type]
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)
