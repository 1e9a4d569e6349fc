"""Matrix products for the hot paths, on oneDNN's GEMM when the optional ``onednn`` extra is installed.

NumPy's ``matmul`` calls the BLAS NumPy was built with. On some machines that BLAS runs a kernel
narrower than the CPU (NumPy's OpenBLAS picks its Haswell kernel, AVX2, on an AVX-512 AMD EPYC
when told to, and some builds only ship that one): measured there, one thread, float32, oneDNN's
``dnnl_sgemm`` ran the layer shapes of a CNN and an LSTM 2.0-2.3x faster than NumPy's ``matmul``
(benchmarks/gemm.py prints the comparison on any machine). oneDNN is what PyTorch's CPU build uses
for its own kernels; ``pip install "downslope[onednn]"`` installs its CPU-only GNU OpenMP build
(``onednn-cpu-gomp``), and :func:`matmul` then sends float32 products of host arrays there.

Everything else keeps NumPy's ``matmul``: float64 and other dtypes, device arrays (CuPy, the strict
stand-in: the operator dispatches to their namespace), Tensors (rules recorded under
``create_graph``), products too small to pay for a foreign call, and operands whose memory layout
oneDNN cannot read without a copy. The environment variable ``DOWNSLOPE_ONEDNN=0`` (read when the
library would load) or the
:func:`disabled` block turns the oneDNN path off; results agree with NumPy's to float32 rounding
(the summation order differs), and tests compare both paths with each other and with PyTorch.

Threads: oneDNN runs on OpenMP (libgomp). When it loads, it takes the thread count NumPy's BLAS has
then (read through threadpoolctl when installed; OMP_NUM_THREADS otherwise), and
:func:`set_num_threads` or threadpoolctl's limits change it later. GNU OpenMP is not fork-safe, so
a process forked from one that loaded it (a DataLoader worker) keeps NumPy's matmul.

The library is loaded on the first product that could use it, never at ``import downslope``.

Example:
    >>> import numpy as np
    >>> from downslope import gemm
    >>> a = np.ones((2, 3), dtype=np.float32)
    >>> gemm.matmul(a, a.T)
    array([[3., 3.],
           [3., 3.]], dtype=float32)
"""

from __future__ import annotations

import contextlib
import ctypes
import os
from collections.abc import Iterator
from typing import Any

import numpy as np

from downslope.errors import ArgumentError

#: Products with fewer multiply-adds (m * n * k) stay on NumPy: below this size a call into oneDNN
#: (ctypes, then its own dispatch: about 5 us) costs more than NumPy's whole product (measured with
#: one thread on an AMD EPYC: 32x128 @ 128x128, 524K multiply-adds, 10.4 us vs NumPy's 11.1 us).
MIN_MULTIPLY_ADDS = 400_000

_F32 = np.dtype(np.float32)
_library: Any = None  # the loaded oneDNN library, or False once loading failed
_sgemm: Any = None
_omp_set_num_threads: Any = None
_omp_get_max_threads: Any = None
_off = 0  # depth of active disabled() blocks


def _library_paths() -> list[str]:
    """Where the ``onednn-cpu-gomp`` wheel put libdnnl (its data files land in ``<prefix>/lib``)."""
    import importlib.metadata as metadata

    paths = []
    for name in ("onednn-cpu-gomp", "onednn-cpu-iomp", "onednn-cpu-tbb"):
        try:
            files = metadata.distribution(name).files or []
        except metadata.PackageNotFoundError:
            continue
        paths += [str(f.locate()) for f in files if f.name.startswith("libdnnl.so")]
    return sorted(paths, key=len)


def _load() -> Any:
    global _library, _sgemm, _omp_set_num_threads, _omp_get_max_threads
    if _library is not None:
        return _library
    _library = False
    if os.environ.get("DOWNSLOPE_ONEDNN", "1") == "0":
        return _library
    for path in _library_paths():
        try:
            lib = _load_with_short_spin(path)
        except OSError:  # a missing libgomp: NumPy's matmul still works
            continue
        sgemm = lib.dnnl_sgemm
        c_char, i64, f32, ptr = ctypes.c_char, ctypes.c_int64, ctypes.c_float, ctypes.c_void_p
        sgemm.argtypes = [c_char, c_char, i64, i64, i64, f32, ptr, i64, ptr, i64, f32, ptr, i64]
        sgemm.restype = ctypes.c_int
        _library, _sgemm = lib, sgemm
        try:
            gomp = ctypes.CDLL("libgomp.so.1")
            _omp_set_num_threads = gomp.omp_set_num_threads
            _omp_set_num_threads.argtypes = [ctypes.c_int]
            _omp_get_max_threads = gomp.omp_get_max_threads
        except (OSError, AttributeError):
            _omp_set_num_threads = _omp_get_max_threads = None
        threads = _numpy_blas_threads()
        if threads:
            set_num_threads(threads)
        break
    return _library


def _after_fork_in_child() -> None:
    # GNU OpenMP is not fork-safe once it has started threads: a forked child (a DataLoader worker)
    # keeps NumPy's matmul.
    global _off
    _off += 1


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


#: How long an idle OpenMP thread spins before it sleeps (GNU OpenMP's GOMP_SPINCOUNT, its default
#: 300,000). Measured with two processes of two threads each on two cores (two runs at once, or MPI
#: ranks): the default spin made both 35x slower than one thread each; 5,000 keeps a single process's
#: two-thread speed (same time as the default) and two such processes within 3x of one thread each
#: (NumPy's OpenBLAS: 6x). The user's GOMP_SPINCOUNT or OMP_WAIT_POLICY wins.
SPIN_COUNT = "5000"


def _load_with_short_spin(path: str) -> ctypes.CDLL:
    """dlopen libdnnl; GNU OpenMP, loaded with it, reads its settings from the environment then."""
    keys = ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")
    if any(k in os.environ for k in keys) or _gomp_loaded():
        return ctypes.CDLL(path)
    os.environ["GOMP_SPINCOUNT"] = SPIN_COUNT
    try:
        return ctypes.CDLL(path)
    finally:
        del os.environ["GOMP_SPINCOUNT"]  # child processes see the user's environment


def _gomp_loaded() -> bool:
    try:
        with open("/proc/self/maps") as maps:
            return any(line.rstrip().endswith("/libgomp.so.1") for line in maps)
    except OSError:
        return False


def _numpy_blas_threads() -> int | None:
    """The thread count of NumPy's BLAS, when threadpoolctl can tell (it is an optional package)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return None
    counts = [i["num_threads"] for i in threadpool_info() if i.get("user_api") == "blas"]
    return min(counts) if counts else None


def available() -> bool:
    """Whether oneDNN's GEMM is installed, loadable and switched on.

    Example:
        >>> from downslope import gemm
        >>> isinstance(gemm.available(), bool)
        True
    """
    return not _off and bool(_load())


def describe() -> str:
    """One line naming the GEMM :func:`matmul` uses for float32 host arrays (benchmarks print it).

    Example:
        >>> from downslope import gemm
        >>> gemm.describe().startswith(("oneDNN", "NumPy"))
        True
    """
    if not available():
        return "NumPy's matmul (oneDNN not installed or switched off)"

    class Version(ctypes.Structure):
        _fields_ = [("major", ctypes.c_int), ("minor", ctypes.c_int), ("patch", ctypes.c_int)]

    _library.dnnl_version.restype = ctypes.POINTER(Version)
    v = _library.dnnl_version().contents
    isa = {0x0: "any", 0x1: "sse41", 0x3: "avx", 0x7: "avx2", 0xF: "avx2_vnni", 0x27: "avx512_core"}
    code = _library.dnnl_get_effective_cpu_isa()
    name = isa.get(code, f"isa 0x{code:x}" if code < 0x27 else "avx512_core or newer")
    return f"oneDNN {v.major}.{v.minor}.{v.patch} sgemm ({name})"


def set_num_threads(count: int) -> None:
    """Threads for oneDNN's GEMM (OpenMP); NumPy's BLAS keeps its own setting.

    Example:
        >>> from downslope import gemm
        >>> gemm.set_num_threads(1)
    """
    if count < 1:
        raise ArgumentError(f"gemm.set_num_threads: expected a count >= 1, got {count}")
    if _load() and _omp_set_num_threads is not None:
        _omp_set_num_threads(int(count))


def get_num_threads() -> int | None:
    """Threads oneDNN's GEMM runs on, or None when oneDNN is not loaded.

    Example:
        >>> from downslope import gemm
        >>> gemm.get_num_threads() is None or gemm.get_num_threads() >= 1
        True
    """
    if _load() and _omp_get_max_threads is not None:
        return int(_omp_get_max_threads())
    return None


@contextlib.contextmanager
def disabled() -> Iterator[None]:
    """Run the block on NumPy's matmul alone (the tests compare both paths).

    Example:
        >>> from downslope import gemm
        >>> with gemm.disabled():
        ...     gemm.available()
        False
    """
    global _off
    _off += 1
    try:
        yield
    finally:
        _off -= 1


def _layout(a: np.ndarray) -> tuple[bytes, int] | None:
    """(trans, leading dimension) that lets row-major sgemm read the 2-D ``a`` in place, or None."""
    rows, cols = a.shape
    s0, s1 = a.strides
    if s1 == 4 and s0 >= 4 * cols and s0 % 4 == 0:
        return b"N", s0 // 4
    if s0 == 4 and s1 >= 4 * rows and s1 % 4 == 0:
        return b"T", s1 // 4
    if rows == 1 and s1 == 4:  # a single row: its row stride says nothing
        return b"N", cols
    if cols == 1 and s0 == 4:  # a single column
        return b"T", rows
    return None


def _product_2d(a: np.ndarray, b: np.ndarray, out: np.ndarray, beta: float) -> bool:
    """``out = a @ b + beta * out`` on oneDNN for 2-D operands; False when a layout does not fit."""
    la, lb = _layout(a), _layout(b)
    s0, s1 = out.strides
    n = out.shape[1]
    if la is None or lb is None or s1 != 4 or s0 < 4 * n or s0 % 4:
        return False
    m, k = a.shape
    a_ptr = a.__array_interface__["data"][0]
    b_ptr = b.__array_interface__["data"][0]
    c_ptr = out.__array_interface__["data"][0]
    return _sgemm(la[0], lb[0], m, n, k, 1.0, a_ptr, la[1], b_ptr, lb[1], beta, c_ptr, s0 // 4) == 0


def matmul(a: Any, b: Any, out: Any = None, *, accumulate: bool = False) -> Any:
    """``a @ b`` (NumPy's ``matmul`` semantics); with ``out``, written there (``out += a @ b`` when
    ``accumulate``). float32 host arrays go to oneDNN's GEMM when it is installed and pays.

    Args:
        a, b: arrays (NumPy, CuPy, ...) or Tensors; stacks of matrices broadcast as in ``matmul``.
        out: where to write the product (an array of the product's shape and dtype), or None.
        accumulate: add the product to ``out`` instead of overwriting it.

    Example:
        >>> import numpy as np
        >>> from downslope import gemm
        >>> out = np.ones((1, 1), dtype=np.float32)
        >>> gemm.matmul(np.ones((1, 2), np.float32), np.ones((2, 1), np.float32), out, accumulate=True)
        array([[3.]], dtype=float32)
    """
    if (
        type(a) is np.ndarray
        and type(b) is np.ndarray
        and a.dtype is _F32
        and b.dtype is _F32
        and a.ndim >= 2
        and b.ndim >= 2
        and a.shape[-2] * a.shape[-1] * b.shape[-1] >= MIN_MULTIPLY_ADDS
        and (out is None or (type(out) is np.ndarray and out.dtype is _F32))
        and not _off
        and _load()
    ):
        result = _onednn(a, b, out, 1.0 if accumulate else 0.0)
        if result is not None:
            return result
    if out is None:
        return a @ b
    if accumulate:
        out += a @ b
        return out
    return np.matmul(a, b, out=out)


def _onednn(a: np.ndarray, b: np.ndarray, out: np.ndarray | None, beta: float) -> np.ndarray | None:
    """The product on oneDNN, or None to leave it to NumPy (shapes that do not fit, overlap)."""
    if a.shape[-1] != b.shape[-2]:
        return None  # NumPy raises its own error
    batch: tuple[int, ...] = ()
    if a.ndim > 2 or b.ndim > 2:
        try:
            batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
        except ValueError:
            return None
    shape = batch + (a.shape[-2], b.shape[-1])
    if out is None:
        target = np.empty(shape, dtype=_F32)
    elif out.shape != shape or np.may_share_memory(out, a) or np.may_share_memory(out, b):
        return None
    else:
        target = out
    if not batch:
        return target if _product_2d(a, b, target, beta) else None
    return _stacked(a, b, target, batch, beta)


def _stacked(
    a: np.ndarray, b: np.ndarray, target: np.ndarray, batch: tuple[int, ...], beta: float
) -> np.ndarray | None:
    """A stack of products, one oneDNN call per matrix (the stacks here are short: groups, tiles)."""
    a3 = np.broadcast_to(a, batch + a.shape[-2:]).reshape((-1,) + a.shape[-2:])
    b3 = np.broadcast_to(b, batch + b.shape[-2:]).reshape((-1,) + b.shape[-2:])
    try:
        t3 = np.reshape(target, (-1,) + target.shape[-2:], copy=False)
    except ValueError:  # a view cannot hold the stack: NumPy writes in place instead
        return None
    for i in range(t3.shape[0]):
        if _product_2d(a3[i], b3[i], t3[i], beta):
            continue
        if i == 0:
            return None
        for j in range(i, t3.shape[0]):  # a layout oneDNN cannot read (rare): the rest on NumPy
            if beta:
                t3[j] += a3[j] @ b3[j]
            else:
                np.matmul(a3[j], b3[j], out=t3[j])
        break
    return target
