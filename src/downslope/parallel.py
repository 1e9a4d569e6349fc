"""Several threads for one layer's kernels: the batch (or the channels) split into parts run at once.

With oneDNN's GEMM set to run on several threads (``gemm.set_num_threads``, which the benchmarks
and the trainer set from the thread count the user asks for), the convolution, pooling and batch
norm kernels split their work into that many parts and run them at once, each part's GEMMs on one
thread. Most of that work runs without the GIL (the compiled kernels are ``nogil``, oneDNN is
called through ctypes, NumPy's copies and ufunc loops release it), so the whole layer shares the
cores instead of only its GEMMs; and a convolution's many small GEMMs (Winograd) do not split well
over threads on their own (measured, two threads on two cores, forward and backward of a
64x32x14x14 -> 64 layer: one thread 9.5 ms, its GEMMs on two threads 8.3 ms, the two halves of
the batch at once 5.5 ms).

Without oneDNN (or with one thread) everything runs on the calling thread. Device arrays never
split (their library runs them asynchronously already).

Example:
    >>> import numpy as np
    >>> from downslope import parallel
    >>> parallel.over_parts(np.zeros(4), 4, 10, lambda lo, hi: (lo, hi))
    [(0, 4)]
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from . import gemm
from .errors import ArgumentError

if TYPE_CHECKING:  # concurrent.futures is imported when a pool is first needed
    from concurrent.futures import ThreadPoolExecutor

#: Below this much work (callers estimate it in nanoseconds on one thread) the split does not pay
#: for handing parts to other threads (tens of microseconds).
MIN_WORK = 200_000
#: Multiply-adds per nanosecond of a convolution pass on one thread, its transforms included (how
#: the convolutions estimate their work).
MULTIPLY_ADDS_PER_NS = 50

_pool: ThreadPoolExecutor | None = None
_pool_size = 0
_pool_lock = threading.Lock()
_thread_state = threading.local()


def parts(x: Any, n: int, work: int) -> int:
    """Into how many parts ``n`` items on host array ``x`` are split, ``work`` nanoseconds on one
    thread in all: oneDNN's GEMM thread count, or 1 (little work, one item, a device array, oneDNN
    not installed)."""
    if n < 2 or work < MIN_WORK or type(x) is not np.ndarray or not gemm.available():
        return 1
    return max(1, min(n, gemm.get_num_threads() or 1))


def _workers(count: int) -> ThreadPoolExecutor:
    from concurrent.futures import ThreadPoolExecutor

    global _pool, _pool_size
    with _pool_lock:
        if _pool is None or _pool_size < count:
            if _pool is not None:
                _pool.shutdown(wait=False)
            _pool = ThreadPoolExecutor(max_workers=count, thread_name_prefix="downslope-parts")
            _pool_size = count
        return _pool


def _on_one_gemm_thread(work: Callable[[int, int], Any], lo: int, hi: int) -> Any:
    if not getattr(_thread_state, "single", False):  # a pool thread: its GEMMs on itself alone
        gemm.set_num_threads(1)
        _thread_state.single = True
    return work(lo, hi)


def over_parts(x: Any, n: int, work: int, run: Callable[[int, int], Any]) -> list[Any]:
    """``run(lo, hi)`` for consecutive parts [lo, hi) of ``range(n)``, at once on :func:`parts`
    threads (this one included), each part's GEMMs on one thread; the results in order. The parts
    must write disjoint memory and return their own partial sums (the caller adds them)."""
    count = parts(x, n, work)
    if count == 1:
        return [run(0, n)]
    bounds = [n * i // count for i in range(count + 1)]
    from concurrent.futures import wait

    pool = _workers(count - 1)
    futures = [pool.submit(_on_one_gemm_thread, run, bounds[i], bounds[i + 1]) for i in range(1, count)]
    threads = gemm.get_num_threads() or 1
    gemm.set_num_threads(1)
    try:
        first = run(bounds[0], bounds[1])
    finally:
        gemm.set_num_threads(threads)
        wait(futures)  # the other parts write into the same output: never return before they end
    return [first] + [f.result() for f in futures]


_interop_threads: int | None = None
_requested: int | None = None  # what set_num_threads was given


def _thread_count(name: str, count: Any) -> int:
    """``count`` as an int, refused unless a positive integer (a thread count)."""
    if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 1:
        raise ArgumentError(f"{name}: expected a positive int, got {count!r}")
    return int(count)


def set_num_threads(count: int) -> None:
    """The threads downslope's kernels use, as ``torch.set_num_threads``: oneDNN's GEMM (and with it
    the layers that split their work, see the module docstring), NumPy's BLAS when threadpoolctl is
    installed, and numba's kernels when numba is loaded. ``set_num_threads(1)`` is the usual
    setting for several processes on one machine (data loaders, MPI ranks, RL workers).

    Example:
        >>> import downslope as ds
        >>> ds.set_num_threads(1)
    """
    import sys

    count = _thread_count("set_num_threads", count)
    gemm.set_num_threads(count)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # NumPy's BLAS then keeps its own setting (OPENBLAS_NUM_THREADS and friends)
        pass
    else:
        threadpool_limits(count, user_api="blas")
    numba = sys.modules.get("numba")  # only when already loaded: importing numba costs half a second
    if numba is not None:
        numba.set_num_threads(min(count, numba.config.NUMBA_NUM_THREADS))
    global _requested
    _requested = count


def get_num_threads() -> int:
    """The threads downslope's kernels use (``torch.get_num_threads``): what
    :func:`set_num_threads` set, else oneDNN's GEMM's count, else the CPUs this process may run on.

    Example:
        >>> import downslope as ds
        >>> ds.get_num_threads() >= 1
        True
    """
    import os

    if _requested is not None:
        return _requested
    count = gemm.get_num_threads()
    if count:
        return count
    affinity = getattr(os, "sched_getaffinity", None)
    return len(affinity(0)) if affinity else os.cpu_count() or 1


def set_num_interop_threads(count: int) -> None:
    """Accepted for ``torch.set_num_interop_threads``: downslope runs one op at a time, so the count
    is only recorded (:func:`get_num_interop_threads` returns it).

    Example:
        >>> import downslope as ds
        >>> ds.set_num_interop_threads(1); ds.get_num_interop_threads()
        1
    """
    global _interop_threads
    _interop_threads = _thread_count("set_num_interop_threads", count)


def get_num_interop_threads() -> int:
    """The count :func:`set_num_interop_threads` recorded, else 1 (one op runs at a time).

    Example:
        >>> import downslope as ds
        >>> ds.get_num_interop_threads() >= 1
        True
    """
    return _interop_threads or 1
