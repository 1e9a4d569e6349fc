"""Data larger than memory: rows of a memory-mapped array, read only when a batch needs them.

``np.load(path, mmap_mode="r")`` maps a ``.npy`` file without reading it. A :class:`RowSource`
is a lazy view of such an array: a range of its columns, a subset of its rows (a split), and the
preprocessing fitted on the training split (missing values filled, then standardized), applied to
each batch as it is gathered. Nothing the size of the file is ever held in the process's own
memory: the pages of the file are the operating system's cache, which it can drop at will.

A DataLoader over a :class:`LazyDataset` gathers each (shuffled) batch with one sorted fancy
index into the map; statistics (standardization, checks) stream over the rows in chunks.

Example:
    >>> import numpy as np
    >>> base = np.arange(12.0).reshape(4, 3)  # a memory map behaves the same
    >>> src = RowSource(base, 0, 2).subset(np.array([3, 1]))
    >>> src.shape, src.take(np.array([1, 0])).tolist()
    ((2, 2), [[3.0, 4.0], [9.0, 10.0]])
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from ..errors import ArgumentTypeError, OutOfRangeError

# Rows per chunk when streaming over a source (a few MB for typical widths).
CHUNK_BYTES = 4 * 2**20


class RowSource:
    """Rows ``rows`` (all when None) and columns ``[start, stop)`` of a 2-D array ``base``, as float32,
    with missing values filled by ``fill`` and then standardized by ``mean``/``scale`` when given.

    It answers ``len``, ``shape``, ``take(indices)``, slicing (``src[a:b]``) and :meth:`chunks`.
    Converting it to a NumPy array (``np.asarray(src)``) reads everything: the small-data path."""

    ndim = 2
    dtype = np.dtype(np.float32)

    def __init__(
        self,
        base: np.ndarray,
        start: int,
        stop: int,
        rows: np.ndarray | None = None,
        fill: np.ndarray | None = None,
        mean: np.ndarray | None = None,
        scale: np.ndarray | None = None,
    ) -> None:
        if base.ndim != 2:
            raise ArgumentTypeError(f"RowSource: expected a 2-D array, got shape {base.shape}")
        self.base, self.start, self.stop = base, int(start), int(stop)
        self.rows = None if rows is None else np.asarray(rows, dtype=np.int64)
        self.fill, self.mean, self.scale = fill, mean, scale

    # ------------------------------------------------------------------ shape
    def __len__(self) -> int:
        return len(self.base) if self.rows is None else len(self.rows)

    @property
    def shape(self) -> tuple[int, int]:
        return (len(self), self.stop - self.start)

    def chunk_rows(self) -> int:
        return max(1, CHUNK_BYTES // max(1, self.base.shape[1] * self.base.dtype.itemsize))

    # ------------------------------------------------------------------ derived sources
    def _with(self, **changes: Any) -> RowSource:
        args = {
            "rows": self.rows,
            "fill": self.fill,
            "mean": self.mean,
            "scale": self.scale,
        }
        args.update(changes)
        return RowSource(self.base, self.start, self.stop, **args)

    def subset(self, indices: np.ndarray) -> RowSource:
        """The rows at ``indices`` (positions in this source), lazily."""
        idx = np.asarray(indices, dtype=np.int64)
        return self._with(rows=idx if self.rows is None else self.rows[idx])

    def raw(self) -> RowSource:
        """The same rows without preprocessing."""
        return self._with(fill=None, mean=None, scale=None)

    def filled(self, fill: np.ndarray) -> RowSource:
        return self._with(fill=np.asarray(fill, dtype=np.float32))

    def standardized(self, mean: np.ndarray, scale: np.ndarray) -> RowSource:
        return self._with(mean=np.asarray(mean, dtype=np.float32), scale=np.asarray(scale, dtype=np.float32))

    # ------------------------------------------------------------------ reading
    def _read(self, positions: np.ndarray | slice) -> np.ndarray:
        """Rows of ``base`` (a slice, or sorted row numbers), preprocessed, as float32."""
        block = self.base[positions, self.start : self.stop]
        out = np.array(block, dtype=np.float32)
        if self.fill is not None:
            rows, cols = np.nonzero(np.isnan(out))
            out[rows, cols] = self.fill[cols]
        if self.mean is not None and self.scale is not None:
            out -= self.mean
            out /= self.scale
        return out

    def take(self, indices: Any) -> np.ndarray:
        """The rows at ``indices`` (positions in this source) as a float32 array, in that order."""
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        n = len(self)
        if idx.size and (idx.min() < -n or idx.max() >= n):
            raise OutOfRangeError(f"RowSource: indices must lie in [0, {n}) for {n} rows")
        idx = np.where(idx < 0, idx + n, idx)
        where = idx if self.rows is None else self.rows[idx]
        order = np.argsort(where, kind="stable")  # read the file front to back: the fastest order
        out = np.empty((len(idx), self.stop - self.start), dtype=np.float32)
        out[order] = self._read(where[order])
        return out

    def __getitem__(self, key: Any) -> np.ndarray:
        if isinstance(key, slice):
            start, stop, step = key.indices(len(self))
            if self.rows is None and step == 1:
                return self._read(slice(start, stop))
            return self.take(np.arange(start, stop, step))
        if isinstance(key, (int, np.integer)):
            return self.take(np.array([key]))[0]
        return self.take(key)

    def chunks(self, size: int | None = None) -> Iterator[np.ndarray]:
        """The rows in order, ``size`` at a time (float32, preprocessed)."""
        size = size or self.chunk_rows()
        for begin in range(0, len(self), size):
            yield self[begin : begin + size]

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = self[0 : len(self)]
        return out if dtype is None else out.astype(dtype)

    def __repr__(self) -> str:
        return f"RowSource({len(self)} rows x {self.stop - self.start} columns of a {self.base.dtype} array)"


_SMALL_THRESHOLD = 128 * 1024  # glibc's initial M_MMAP_THRESHOLD
_LARGE_THRESHOLD = 32 * 2**20  # where glibc's own adjustment ends up on 64-bit systems
_STREAMING_FOR_GOOD = False


def _mallopt_threshold(size: int, trim: bool = False) -> None:
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, size)  # M_MMAP_THRESHOLD is -3 in malloc.h
        if trim:
            libc.malloc_trim(0)
    except (OSError, AttributeError):
        pass  # not glibc: nothing to do


def return_big_blocks_to_the_system() -> None:
    """Have glibc's malloc serve every block of 128 kB or more by its own ``mmap`` (given back on
    free), for the rest of the process: what a run over a memory-mapped file needs.

    By default glibc raises that threshold after a big block is freed (up to 32 MB), so the chunks
    that streaming passes allocate and free come from the heap afterwards, and a fragmented heap
    keeps tens of MB resident that nothing uses: a fixed threshold (``mallopt(M_MMAP_THRESHOLD)``)
    keeps the anonymous memory to what the process really holds. A no-op where the C library is
    not glibc.
    """
    global _STREAMING_FOR_GOOD
    _STREAMING_FOR_GOOD = True
    _mallopt_threshold(_SMALL_THRESHOLD)


@contextmanager
def streaming_heap() -> Iterator[None]:
    """:func:`return_big_blocks_to_the_system` while a file is read block by block; afterwards the
    threshold goes to 32 MB (where glibc's own adjustment settles, so training allocations reuse
    the heap as before) and the freed heap is given back (``malloc_trim``)."""
    _mallopt_threshold(_SMALL_THRESHOLD)
    try:
        yield
    finally:
        if not _STREAMING_FOR_GOOD:
            _mallopt_threshold(_LARGE_THRESHOLD, trim=True)


def is_lazy(x: Any) -> bool:
    """Whether ``x`` is a :class:`RowSource` (read in batches) rather than an in-memory array.

    Example:
        >>> is_lazy(np.zeros((2, 2)))
        False
    """
    return isinstance(x, RowSource)


def row_chunks(x: Any, size: int = 65536) -> Iterator[np.ndarray]:
    """An array's or a :class:`RowSource`'s rows in chunks (views for arrays)."""
    if isinstance(x, RowSource):
        yield from x.chunks()
        return
    for begin in range(0, len(x), size):
        yield x[begin : begin + size]
