"""Scratch arrays reused from one training step to the next (convolution, pooling, batch norm).

Why: a convolution's im2col matrix and its input-gradient columns are tens of MB. Allocated
fresh each step, the C allocator hands such blocks straight back to the operating system when
they are freed, so the next step pays a page fault for every 4 KiB page it touches again (measured
on the CNN benchmarks: 6,000-9,000 faults and 10-20 ms of system time per step, a third of the
step). Kernels therefore borrow their *temporaries* here and return them when done.

Only NumPy arrays are pooled here. A kernel passes one of its inputs as ``like``; when that is a
device array (CuPy, or the strict stand-in) it gets a fresh array of the same namespace: a device
array must never borrow a host buffer, and CuPy keeps its own memory pool (freed device blocks
are cached by ``cupy.get_default_memory_pool()``), so the page-fault cost above does not arise.

Only arrays whose whole life lies inside one kernel call may be returned: never an array that is
saved for a backward pass (a graph kept with ``retain_graph=True`` may run it again) or one handed
to the caller. At most a few arrays per (shape, dtype) and ``LIMIT_BYTES`` in all are kept.

Memory: the pools outlive the model that filled them. After a large model is deleted they still
hold up to ``LIMIT_BYTES`` + ``LEND_LIMIT_BYTES`` (256 + 512 MiB) of host memory, reused by the
next model's steps; :func:`clear` (``downslope.workspace.clear()``) hands it all back to the
allocator, e.g. between the trainings of a hyperparameter search. Device memory is CuPy's own pool,
released by ``ds.cuda.empty_cache()``.
"""

from __future__ import annotations

import math
import threading
import weakref
from collections import deque
from typing import Any

import numpy as np

from .backend import namespace_of

LIMIT_BYTES = 256 * 2**20
MAX_KEPT = 8


class _Pool:
    """Kept raw byte buffers, handed out as views of any shape and dtype that fits (best fit, at
    most twice the size asked for), and the bytes they hold. Callers hold ``_lock``."""

    __slots__ = ("blocks", "held")

    def __init__(self) -> None:
        self.blocks: list[np.ndarray] = []
        self.held = 0

    def pop(self, nbytes: int) -> np.ndarray | None:
        """The smallest kept block of ``nbytes`` to twice that, taken out (None when none fits)."""
        best = -1
        for i, b in enumerate(self.blocks):
            if nbytes <= b.nbytes <= 2 * nbytes and (best < 0 or b.nbytes < self.blocks[best].nbytes):
                best = i
        if best < 0:
            return None
        block = self.blocks.pop(best)
        self.held -= block.nbytes
        return block

    def keep(self, block: np.ndarray, limit: int, max_kept: int) -> None:
        """Keep ``block`` within ``limit`` bytes and ``max_kept`` blocks (the larger blocks stay)."""
        if not block.nbytes or any(block is b for b in self.blocks) or self.held + block.nbytes > limit:
            return
        if len(self.blocks) >= max_kept:
            smallest = min(range(len(self.blocks)), key=lambda i: self.blocks[i].nbytes)
            if self.blocks[smallest].nbytes >= block.nbytes:
                return
            self.held -= self.blocks.pop(smallest).nbytes
        self.blocks.append(block)
        self.held += block.nbytes

    def clear(self) -> None:
        self.blocks.clear()
        self.held = 0


# The pool of take/give: the backward pass reuses the blocks that the forward pass's temporaries
# used instead of holding both.
_taken = _Pool()
_lock = threading.Lock()
# Blocks given back by finalizers (a lent array's, a Lease's). A finalizer can run inside a section
# that holds _lock, when an allocation there sets off the garbage collector: waiting for the lock
# would then wait forever. So finalizers only queue their block (deque.append is atomic) and take
# the lock only if it is free; whoever holds the lock next files the queue into the pools.
_returned: deque[tuple[_Pool, np.ndarray, int, int]] = deque()


def _file_returned() -> None:
    """Move the queued blocks into their pools (the caller holds ``_lock``)."""
    while _returned:
        pool, block, limit, max_kept = _returned.popleft()
        pool.keep(block, limit, max_kept)


def _hand_back(pool: _Pool, block: np.ndarray, limit: int, max_kept: int) -> None:
    """Give ``block`` back to ``pool`` from a finalizer: never waits for ``_lock``."""
    _returned.append((pool, block, limit, max_kept))
    if _lock.acquire(blocking=False):
        try:
            _file_returned()
        finally:
            _lock.release()


def _nbytes(shape: tuple[int, ...], dt: np.dtype) -> int:
    # math.prod: np.prod of a shape tuple costs ~2 us (an array made and reduced), twice per pooled op
    return max(1, int(math.prod(shape)) * dt.itemsize)


def _block(pool: _Pool, nbytes: int) -> np.ndarray:
    """A block of at least ``nbytes`` from ``pool``, or a new one."""
    with _lock:
        _file_returned()
        block = pool.pop(nbytes)
    if block is None:
        block = np.empty(nbytes, dtype=np.uint8)  # host: the NumPy pool's own block
    return block


def take(shape: tuple[int, ...], dtype: Any, like: Any = None) -> Any:
    """An uninitialised C-contiguous array of ``shape`` and ``dtype`` (a kept block when one fits);
    when ``like`` is a device array, a fresh array of its namespace (pooled by the device library).

    Example:
        >>> import numpy as np
        >>> from downslope import workspace as _workspace
        >>> a = _workspace.take((2, 3), np.float32)
        >>> a.shape, a.dtype
        ((2, 3), dtype('float32'))
        >>> _workspace.give(a)
    """
    if like is not None and type(like) is not np.ndarray:
        return namespace_of(like).empty(shape, dtype=dtype)
    dt = np.dtype(dtype)
    nbytes = _nbytes(shape, dt)
    if 0 in shape:  # an empty array (an empty batch): no block; a 1-byte view would not fit the dtype
        return np.empty(shape, dtype=dt)  # host: the NumPy path (device namespaces returned above)
    return _block(_taken, nbytes)[:nbytes].view(dt).reshape(shape)


def _block_of(a: np.ndarray) -> np.ndarray:
    while a.base is not None and isinstance(a.base, np.ndarray):
        a = a.base
    return a


def give(*arrays: Any) -> None:
    """Return arrays obtained from :func:`take` (or views of them) that nothing references any more.
    Device arrays are ignored (they were never pooled here)."""
    with _lock:
        _file_returned()
        for a in arrays:
            if type(a) is np.ndarray:
                _taken.keep(_block_of(a), LIMIT_BYTES, MAX_KEPT)


def clear() -> None:
    """Drop every kept host block, so its memory goes back to the allocator (up to 256 + 512 MiB after a
    large model). Arrays in use are unaffected; later steps simply allocate afresh.

    Example:
        >>> from downslope import workspace
        >>> workspace.clear(); workspace.held_bytes()
        0
    """
    with _lock:
        _returned.clear()
        _taken.clear()
        _lent.clear()


def held_bytes() -> int:
    """Bytes of host memory the pools keep now for reuse (what :func:`clear` would release).

    Example:
        >>> from downslope import workspace
        >>> workspace.held_bytes() >= 0
        True
    """
    with _lock:
        _file_returned()
        return _taken.held + _lent.held


class Lease:
    """A borrowed array kept in a graph node's saved state: given back when the node lets go of it.

    A node's saved state is dropped after its backward pass (or with the graph, when
    ``retain_graph=True`` keeps it for another pass), and CPython frees it at once, so the array
    comes back exactly when no rule can read it any more. The array must not be handed out.
    """

    __slots__ = ("array",)

    def __init__(self, array: np.ndarray) -> None:
        self.array = array

    def __del__(self) -> None:
        try:
            if type(self.array) is np.ndarray:  # device arrays were never pooled here
                _hand_back(_taken, _block_of(self.array), LIMIT_BYTES, MAX_KEPT)
        except Exception:  # interpreter shutdown: the module may already be torn down
            pass


# ---------------------------------------------------------------------- lent arrays
# Arrays that leave a kernel (a layer's output, an input gradient) cannot be given back by the
# kernel: they live as long as the caller keeps them. Freed the ordinary way, each large one costs
# a page fault per 4 KiB page the next step touches (the C allocator returns such blocks to the
# operating system); lent ones instead come back to a pool of their own when the last view of them
# is gone, and the next step reuses them.
LEND_MIN_BYTES = 256 * 2**10  # smaller arrays come from the allocator's own free lists
LEND_MAX_KEPT = 32
LEND_LIMIT_BYTES = 512 * 2**20
_lent = _Pool()


def lend(shape: tuple[int, ...], dtype: Any, like: Any = None) -> Any:
    """An uninitialised C-contiguous array of ``shape`` and ``dtype`` that may be handed out: its
    memory returns to a pool when it and every view of it are garbage (a block from that pool when
    one fits). When ``like`` is a device array, a fresh array of its namespace.

    NumPy makes every view of the returned array refer to it as its ``base`` (its own base is not
    an array), so the array outlives all its views, and a finalizer on it gives the memory back.

    Example:
        >>> import numpy as np
        >>> from downslope import workspace as _workspace
        >>> a = _workspace.lend((512, 512), np.float32)
        >>> view = a.T[1:]
        >>> del a  # the view keeps the memory lent
        >>> view.shape
        (511, 512)
    """
    if like is not None and type(like) is not np.ndarray:
        return namespace_of(like).empty(shape, dtype=dtype)
    dt = np.dtype(dtype)
    nbytes = _nbytes(shape, dt)
    if nbytes < LEND_MIN_BYTES:
        return np.empty(shape, dtype=dt)  # host: the NumPy path (device namespaces returned above)
    block = _block(_lent, nbytes)
    owner = np.frombuffer(block.data, dtype=dt, count=nbytes // dt.itemsize)  # host: a view of the pool's block
    key = id(owner)
    _lent_ids.add(key)
    weakref.finalize(owner, _return_lent, block, key).atexit = False
    return owner.reshape(shape)


# The ids of the lent arrays' owners alive now (taken out in their finalizer, before the id can be
# reused), for :func:`is_lent_whole`.
_lent_ids: set[int] = set()


def _return_lent(block: np.ndarray, key: int) -> None:
    _lent_ids.discard(key)
    _hand_back(_lent, block, LEND_LIMIT_BYTES, LEND_MAX_KEPT)


def is_lent_whole(a: Any) -> bool:
    """Whether ``a`` is all of an array from :func:`lend` (that array or a reshape of it): its own
    buffer, which no pool hands out again while ``a`` lives (so a gradient that is one can become a
    ``.grad`` without a copy). Its base (``a.base``, shared by every view) identifies the buffer.

    Example:
        >>> import numpy as np
        >>> from downslope import workspace as _workspace
        >>> a = _workspace.lend((512, 512), np.float32)
        >>> _workspace.is_lent_whole(a), _workspace.is_lent_whole(a[1:])
        (True, False)
    """
    base = getattr(a, "base", None)
    return (
        base is not None
        and id(base) in _lent_ids
        and a.size == base.size
        and a.dtype.itemsize == base.dtype.itemsize
        and a.flags.c_contiguous
    )


def lend_zeros(shape: tuple[int, ...], dtype: Any, like: Any = None) -> Any:
    """:func:`lend`, filled with zeros."""
    out = lend(shape, dtype, like)
    out.fill(0)
    return out
