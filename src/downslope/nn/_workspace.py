"""Scratch arrays reused from one training step to the next (convolution, pooling, batch norm).

Why: a convolution's im2col matrix and its input-gradient columns are tens of MB. Allocated
fresh each step, the C allocator hands such blocks straight back to the operating system when
they are freed, so the next step pays a page fault for every 4 KiB page it touches again (measured
on the CNN benchmarks: 6,000-9,000 faults and 10-20 ms of system time per step, a third of the
step). Kernels therefore borrow their *temporaries* here and return them when done.

Only arrays whose whole life lies inside one kernel call may be returned: never an array that is
saved for a backward pass (a graph kept with ``retain_graph=True`` may run it again) or one handed
to the caller. At most a few arrays per (shape, dtype) and ``LIMIT_BYTES`` in all are kept.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

LIMIT_BYTES = 256 * 2**20
MAX_KEPT = 8

# Kept blocks are raw byte buffers, handed out as views of any shape and dtype that fits (best
# fit, at most twice the size asked for), so that the backward pass reuses the blocks that the
# forward pass's temporaries used instead of holding both.
_free: list[np.ndarray] = []
_held = 0
_lock = threading.Lock()


def take(shape: tuple[int, ...], dtype: Any, like: Any = None) -> np.ndarray:
    """An uninitialised C-contiguous array of ``shape`` and ``dtype`` (a kept block when one fits).

    Blocks are host memory: when ``like`` is a device array (CuPy, the strict stand-in) a fresh
    array of its namespace is returned instead (its own allocator caches memory), and :func:`give`
    ignores it.

    Example:
        >>> import numpy as np
        >>> from downslope.nn import _workspace
        >>> a = _workspace.take((2, 3), np.float32)
        >>> a.shape, a.dtype
        ((2, 3), dtype('float32'))
        >>> _workspace.give(a)
    """
    global _held
    if like is not None and type(like) is not np.ndarray:
        from ..backend import namespace_of

        return namespace_of(like).empty(shape, dtype)
    dt = np.dtype(dtype)
    nbytes = max(1, int(np.prod(shape, dtype=np.int64)) * dt.itemsize)
    block = None
    with _lock:
        best = -1
        for i, b in enumerate(_free):
            if nbytes <= b.nbytes <= 2 * nbytes and (best < 0 or b.nbytes < _free[best].nbytes):
                best = i
        if best >= 0:
            block = _free.pop(best)
            _held -= block.nbytes
    if block is None:
        block = np.empty(nbytes, dtype=np.uint8)  # host: the host pool's own memory
    return block[:nbytes].view(dt).reshape(shape)


def _block_of(a: np.ndarray) -> np.ndarray:
    while a.base is not None and isinstance(a.base, np.ndarray):
        a = a.base
    return a


def give(*arrays: np.ndarray | None) -> None:
    """Return arrays obtained from :func:`take` (or views of them) that nothing references any more."""
    global _held
    with _lock:
        for a in arrays:
            if a is None or not isinstance(a, np.ndarray):  # a device array: not kept here
                continue
            block = _block_of(a)
            if any(block is b for b in _free):
                continue
            if _held + block.nbytes > LIMIT_BYTES:
                continue
            if len(_free) >= MAX_KEPT:  # keep the larger blocks
                smallest = min(range(len(_free)), key=lambda i: _free[i].nbytes)
                if _free[smallest].nbytes >= block.nbytes:
                    continue
                _held -= _free.pop(smallest).nbytes
            _free.append(block)
            _held += block.nbytes


def clear() -> None:
    """Drop every kept block (its memory goes back to the allocator)."""
    global _held
    with _lock:
        _free.clear()
        _held = 0


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
