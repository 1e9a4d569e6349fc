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
"""

from __future__ import annotations

import threading
import weakref
from typing import Any

import numpy as np

from .backend import namespace_of

LIMIT_BYTES = 256 * 2**20
MAX_KEPT = 8

# Kept blocks are raw byte buffers, handed out as views of any shape and dtype that fits (best
# fit, at most twice the size asked for), so that the backward pass reuses the blocks that the
# forward pass's temporaries used instead of holding both.
_free: list[np.ndarray] = []
_held = 0
_lock = threading.Lock()


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
    global _held
    if like is not None and type(like) is not np.ndarray:
        return namespace_of(like).empty(shape, dtype=dtype)
    dt = np.dtype(dtype)
    nbytes = max(1, int(np.prod(shape, dtype=np.int64)) * dt.itemsize)
    with _lock:
        block = _pop_best_fit(_free, nbytes)
        if block is not None:
            _held -= block.nbytes
    if block is None:
        block = np.empty(nbytes, dtype=np.uint8)  # host: the NumPy pool's own block
    return block[:nbytes].view(dt).reshape(shape)


def _pop_best_fit(free: list[np.ndarray], nbytes: int) -> np.ndarray | None:
    """Takes out of ``free`` the smallest block of ``nbytes`` to twice that (None when none fits);
    the caller holds the lock."""
    best = -1
    for i, b in enumerate(free):
        if nbytes <= b.nbytes <= 2 * nbytes and (best < 0 or b.nbytes < free[best].nbytes):
            best = i
    return free.pop(best) if best >= 0 else None


def _block_of(a: np.ndarray) -> np.ndarray:
    while a.base is not None and isinstance(a.base, np.ndarray):
        a = a.base
    return a


def give(*arrays: Any) -> None:
    """Return arrays obtained from :func:`take` (or views of them) that nothing references any more.
    Device arrays are ignored (they were never pooled here)."""
    global _held
    with _lock:
        for a in arrays:
            if type(a) is not np.ndarray:
                continue
            block = _block_of(a)
            if not any(block is b for b in _free):
                _held = _keep(_free, _held, block, LIMIT_BYTES, MAX_KEPT)


def _keep(free: list[np.ndarray], held: int, block: np.ndarray, limit: int, max_kept: int) -> int:
    """Add ``block`` to the pool ``free`` holding ``held`` bytes, within ``limit`` bytes and
    ``max_kept`` blocks (the larger blocks stay); returns the bytes the pool holds then. Call with
    the lock held."""
    if held + block.nbytes > limit:
        return held
    if len(free) >= max_kept:
        smallest = min(range(len(free)), key=lambda i: free[i].nbytes)
        if free[smallest].nbytes >= block.nbytes:
            return held
        held -= free.pop(smallest).nbytes
    free.append(block)
    return held + block.nbytes


def clear() -> None:
    """Drop every kept block (its memory goes back to the allocator)."""
    global _held
    global _lent_held
    with _lock:
        _free.clear()
        _held = 0
        _lent_free.clear()
        _lent_held = 0


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
            give(self.array)
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
_lent_free: list[np.ndarray] = []
_lent_held = 0


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
    global _lent_held
    if like is not None and type(like) is not np.ndarray:
        return namespace_of(like).empty(shape, dtype=dtype)
    dt = np.dtype(dtype)
    nbytes = max(1, int(np.prod(shape, dtype=np.int64)) * dt.itemsize)
    if nbytes < LEND_MIN_BYTES:
        return np.empty(shape, dtype=dt)  # host: the NumPy path (device namespaces returned above)
    with _lock:
        block = _pop_best_fit(_lent_free, nbytes)
        if block is not None:
            _lent_held -= block.nbytes
    if block is None:
        block = np.empty(nbytes, dtype=np.uint8)  # host: the NumPy pool's own block
    owner = np.frombuffer(block.data, dtype=dt, count=nbytes // dt.itemsize)  # host: a view of the pool's block
    weakref.finalize(owner, _return_lent, block).atexit = False
    return owner.reshape(shape)


def _return_lent(block: np.ndarray) -> None:
    global _lent_held
    with _lock:
        _lent_held = _keep(_lent_free, _lent_held, block, LEND_LIMIT_BYTES, LEND_MAX_KEPT)


def lend_zeros(shape: tuple[int, ...], dtype: Any, like: Any = None) -> Any:
    """:func:`lend`, filled with zeros."""
    out = lend(shape, dtype, like)
    out.fill(0)
    return out
