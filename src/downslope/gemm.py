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

Loops of products over preallocated buffers (a recurrent layer's time steps) use :func:`stepper`,
which works out the pointers and layouts once so that a step is one bare call (about 1.5 us of
overhead instead of the 5 us of a :func:`matmul` call); compiled (numba) loops call oneDNN
directly through :func:`sgemm_function`.

Threads: oneDNN runs on OpenMP (libgomp). When it loads, it takes the thread count NumPy's BLAS has
then (read through threadpoolctl when installed; OMP_NUM_THREADS otherwise), and
:func:`set_num_threads` or threadpoolctl's limits change it later. When another library loaded
libgomp first (torch does at import), libdnnl binds to that runtime: loading leaves its thread count
alone (``torch.set_num_threads(1)`` stays 1 for torch, and oneDNN's GEMM then follows it), and only an
explicit :func:`set_num_threads` changes the shared count, as ``torch.set_num_threads`` does. GNU OpenMP is not fork-safe, so
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
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from downslope.errors import ArgumentError, StateError

#: Products with fewer multiply-adds (m * n * k) stay on NumPy: below this size a call into oneDNN
#: (ctypes, then its own dispatch: about 5 us) costs more than NumPy's whole product (measured with
#: one thread on an AMD EPYC: 32x128 @ 128x128, 524K multiply-adds, 10.4 us vs NumPy's 11.1 us).
MIN_MULTIPLY_ADDS = 400_000

#: The same bound for the products of a :func:`stepper` (a recurrent layer's per-time-step products),
#: which skip the layout checks of :func:`matmul` on every call: a bare call into oneDNN costs about
#: 1.5 us, so it pays from about 64K multiply-adds (measured as above: 128x32 @ 32x16 takes 2.4 us
#: on both, 256x64 @ 64x32 5.9 us on oneDNN vs 10.5 us on NumPy).
STEP_MIN_MULTIPLY_ADDS = 65_536

#: A :func:`stepper`'s narrow products (at most :data:`STEP_NARROW_COLUMNS` columns, a small batch in
#: the gate-major recurrent loops) smaller than this stay on NumPy: oneDNN's kernels for 2-8 columns
#: ran 3-15x slower than NumPy's BLAS there (one thread, AMD EPYC, medians: 512x161 @ 161x4 79 vs
#: 9 us, 768x256 @ 256x2 208 vs 12 us, 1024x257 @ 257x4 283 vs 169 us); from about 4M multiply-adds
#: the two were even or oneDNN ahead.
STEP_NARROW_MAX_MULTIPLY_ADDS = 2_000_000
STEP_NARROW_COLUMNS = 8

#: A :func:`stepper`'s products smaller than this run on one thread whatever the thread count. Each
#: product on several threads is an OpenMP parallel region whose end waits for every thread, and a
#: loop makes one per time step: when another process shares the cores (two runs at once, MPI
#: ranks), that wait is often for a thread whose core the other process has, and a GRU step took
#: 80 ms instead of 5 (two processes of two threads on two cores; 6 ms with these products on one
#: thread). Alone, two threads made such a product (384x128 @ 128x32) about 1.4x faster.
STEP_THREADED_MULTIPLY_ADDS = 8_000_000

_F32 = np.dtype(np.float32)
_F16 = np.dtype(np.float16)
_library: Any = None  # the loaded oneDNN library, or False once loading failed
_sgemm: Any = None
_omp_set_num_threads: Any = None
_omp_get_max_threads: Any = None
_sgemm_for_compiled: Any = None  # the same entry point with the flags typed int8, for numba
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
    # A GNU OpenMP runtime already in the process (torch's, numba's) is the one libdnnl binds to:
    # its thread count is then that library's setting (torch.get_num_threads reads it), not ours.
    shared = _gomp_loaded()
    for path in _library_paths():
        try:
            lib = _load_with_short_spin(path, shared)
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
        threads = None if shared else _numpy_blas_threads()
        if threads:
            set_num_threads(threads)
        break
    return _library


def sgemm_function() -> Any:
    """oneDNN's ``dnnl_sgemm`` as a ctypes function that compiled (numba) code can call, or None when
    oneDNN is not available or switched off.

    Its arguments are row-major BLAS's: ``(transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c,
    ldc)``, with ``transa``/``transb`` the codes of ``"N"`` (78) or ``"T"`` (84) as int8 (numba has no
    char type) and ``a``, ``b``, ``c`` addresses of float32 data; it returns 0 on success.

    Example:
        >>> from downslope import gemm
        >>> f = gemm.sgemm_function()
        >>> f is None or callable(f)
        True
    """
    global _sgemm_for_compiled
    if _off or not _load():
        return None
    if _sgemm_for_compiled is None:
        c = ctypes
        prototype = c.CFUNCTYPE(
            c.c_int, c.c_int8, c.c_int8, c.c_int64, c.c_int64, c.c_int64, c.c_float, c.c_void_p, c.c_int64,
            c.c_void_p, c.c_int64, c.c_float, c.c_void_p, c.c_int64,
        )  # fmt: skip
        address = ctypes.cast(_library.dnnl_sgemm, ctypes.c_void_p).value
        if not address:
            return None
        _sgemm_for_compiled = prototype(address)
    return _sgemm_for_compiled


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


def _load_with_short_spin(path: str, shared: bool) -> ctypes.CDLL:
    """dlopen libdnnl; GNU OpenMP, loaded with it, reads its settings from the environment then
    (``shared``: it is loaded already and keeps its owner's settings)."""
    keys = ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")
    if any(k in os.environ for k in keys) or shared:
        return ctypes.CDLL(path)
    os.environ["GOMP_SPINCOUNT"] = SPIN_COUNT
    try:
        return ctypes.CDLL(path)
    finally:
        del os.environ["GOMP_SPINCOUNT"]  # child processes see the user's environment


def _gomp_loaded() -> bool:
    try:
        with open("/proc/self/maps") as maps:
            # the soname's file, or the versioned file it links to (a system libgomp.so.1.0.0)
            return any(os.path.basename(line.rstrip()).startswith("libgomp.so.1") for line in maps)
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


def _layouts(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> tuple[tuple[bytes, int], tuple[bytes, int], int] | None:
    """(trans, ld) of the 2-D ``a`` and ``b`` and the leading dimension of ``out`` (rows apart by a
    whole number of elements, each row contiguous), or None when oneDNN cannot read them in place."""
    la, lb = _layout(a), _layout(b)
    s0, s1 = out.strides
    if la is None or lb is None or s1 != 4 or s0 < 4 * out.shape[1] or s0 % 4:
        return None
    return la, lb, s0 // 4


def _product_2d(a: np.ndarray, b: np.ndarray, out: np.ndarray, beta: float) -> bool:
    """``out = a @ b + beta * out`` on oneDNN for 2-D operands; False when a layout does not fit."""
    layouts = _layouts(a, b, out)
    if layouts is None:
        return False
    (ta, lda), (tb, ldb), ldc = layouts
    (m, k), n = a.shape, out.shape[1]
    a_ptr = a.__array_interface__["data"][0]
    b_ptr = b.__array_interface__["data"][0]
    c_ptr = out.__array_interface__["data"][0]
    return _sgemm(ta, tb, m, n, k, 1.0, a_ptr, lda, b_ptr, ldb, beta, c_ptr, ldc) == 0


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
    if type(a) is np.ndarray and type(b) is np.ndarray and a.dtype is _F16 and b.dtype is _F16:
        return _half(a, b, out, accumulate)
    if out is None:
        return a @ b
    if accumulate:
        out += a @ b
        return out
    return np.matmul(a, b, out=out)


def _half(a: np.ndarray, b: np.ndarray, out: np.ndarray | None, accumulate: bool) -> np.ndarray:
    """A float16 product as PyTorch's CPU computes it: the products summed in float32 and rounded
    once to float16. NumPy's float16 matmul has no BLAS kernel: a plain loop, some 100x slower than
    the float32 GEMM on a 256x512 @ 512x256 product. Here the operands are widened (exactly) and
    multiplied by the float32 GEMM, oneDNN's when installed."""
    wide = matmul(a.astype(_F32), b.astype(_F32))
    if out is None:
        return wide.astype(_F16)
    if accumulate:
        out += wide  # float16 + float32 in float32, rounded once
    else:
        np.copyto(out, wide, casting="same_kind")
    return out


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
    # Every matrix of a stack has the same 2-D layout: worked out once, then one bare call per
    # matrix (measured: 4 us less per product than a _product_2d call each, about a twentieth of a
    # Winograd convolution's 16 products per chunk).
    plan = _plan(a3, b3, t3)
    if plan is None:
        return None
    m, n, k, (ta, pa, lda, sa), (tb, pb, ldb, sb), (pc, ldc, sc) = plan
    sgemm = _sgemm
    for i in range(t3.shape[0]):
        if sgemm(ta, tb, m, n, k, 1.0, pa + i * sa, lda, pb + i * sb, ldb, beta, pc + i * sc, ldc) == 0:
            continue
        if i == 0:
            return None
        for j in range(i, t3.shape[0]):  # refused by oneDNN (not seen in practice): the rest on NumPy
            if beta:
                t3[j] += a3[j] @ b3[j]
            else:
                np.matmul(a3[j], b3[j], out=t3[j])
        break
    return target


def stepper(a: Any, b: Any, out: Any, *, accumulate: bool = False) -> Callable[[int], None]:
    """A function ``step(t)`` that computes ``out[t] = a[t] @ b[t]`` (``+=`` when ``accumulate``),
    for the loop of a recurrent layer: one product per time step over preallocated buffers.

    Each of ``a``, ``b`` and ``out`` is either a stack of matrices (3-D, indexed by ``t`` along its
    first axis) or one matrix (2-D) that every step uses. For float32 host arrays whose layouts
    oneDNN reads in place, the pointers and leading dimensions are worked out once here, so that a
    step is one bare foreign call (no per-call checks: about 4 us less than :func:`matmul`);
    otherwise (device arrays, float64, small products, layouts it cannot read, overlapping
    buffers) a step is NumPy's ``matmul`` with ``out=``, which dispatches to the arrays' namespace.
    The function holds ``a``, ``b`` and ``out``, so a temporary operand (``stepper(w * s, ...)``)
    lives as long as it does; the buffers must not be resized or moved while it is used.

    Example:
        >>> import numpy as np
        >>> from downslope import gemm
        >>> w = np.ones((2, 3), dtype=np.float32)
        >>> xs = np.ones((4, 3, 5), dtype=np.float32)
        >>> ys = np.zeros((4, 2, 5), dtype=np.float32)
        >>> step = gemm.stepper(w, xs, ys)
        >>> step(1)
        >>> float(ys[1].sum()), float(ys[0].sum())
        (30.0, 0.0)
    """
    plan = _step_plan(a, b, out)
    if plan is not None:
        beta = 1.0 if accumulate else 0.0
        sgemm = _sgemm
        (ta, pa, lda, sa), (tb, pb, ldb, sb), (pc, ldc, sc) = plan[3:]
        m, n, k = plan[:3]
        threads = get_num_threads() or 1
        alone = steps_on_one_thread(m * n * k)
        set_threads = _omp_set_num_threads

        def onednn_step(t: int) -> None:
            if alone:
                set_threads(1)
            status = sgemm(ta, tb, m, n, k, 1.0, pa + t * sa, lda, pb + t * sb, ldb, beta, pc + t * sc, ldc)
            if alone:
                set_threads(threads)
            if status:
                raise StateError(f"gemm.stepper: oneDNN's sgemm refused step {t} ({m}x{k} @ {k}x{n})")

        # The step reads raw addresses: holding the arrays keeps that memory alive (a temporary
        # operand freed after this call once gave the GRU's input projection garbage and NaN).
        onednn_step.buffers = (a, b, out)  # type: ignore[attr-defined]
        return onednn_step
    a_at = _pick(a)
    b_at = _pick(b)
    out_at = _pick(out)
    if accumulate:

        def numpy_accumulate(t: int) -> None:
            target = out_at(t)
            target += a_at(t) @ b_at(t)

        return numpy_accumulate

    def numpy_step(t: int) -> None:
        np.matmul(a_at(t), b_at(t), out=out_at(t))

    return numpy_step


def steps_on_one_thread(multiply_adds: int) -> bool:
    """Whether a loop's per-step products of ``multiply_adds`` each run on one thread although
    oneDNN has several (see :data:`STEP_THREADED_MULTIPLY_ADDS`).

    Example:
        >>> from downslope import gemm
        >>> gemm.steps_on_one_thread(10**9)
        False
    """
    return (get_num_threads() or 1) > 1 and multiply_adds < STEP_THREADED_MULTIPLY_ADDS


def _pick(x: Any) -> Callable[[int], Any]:
    """``t -> x[t]`` for a stack, ``t -> x`` for one matrix."""
    if x.ndim == 2:
        return lambda t: x
    return x.__getitem__


def _step_plan(a: Any, b: Any, out: Any) -> tuple[Any, ...] | None:
    """:func:`_plan` of a stepper's operands, or None when the steps stay on NumPy."""
    arrays = (a, b, out)
    if any(type(x) is not np.ndarray or x.dtype is not _F32 or x.ndim not in (2, 3) for x in arrays):
        return None
    steps = {x.shape[0] for x in arrays if x.ndim == 3}
    if len(steps) > 1 or 0 in steps:
        return None
    a2, b2, c2 = (x if x.ndim == 2 else x[0] for x in arrays)
    m, k = a2.shape
    n = b2.shape[1]
    if b2.shape[0] != k or c2.shape != (m, n):
        raise ArgumentError(
            f"gemm.stepper: expected a step's product (m, k) @ (k, n) -> (m, n), got {tuple(a2.shape)} @ {tuple(b2.shape)} -> {tuple(c2.shape)}"
        )
    if m * n * k < STEP_MIN_MULTIPLY_ADDS or _off or not _load():
        return None
    if n <= STEP_NARROW_COLUMNS and m * n * k < STEP_NARROW_MAX_MULTIPLY_ADDS:
        return None
    if np.may_share_memory(out, a) or np.may_share_memory(out, b):
        return None
    return _plan(a, b, out)


def _plan(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> tuple[Any, ...] | None:
    """(m, n, k, (trans, address, ld, step bytes) of a and b, (address, ld, step bytes) of out) for
    oneDNN products of matrices (2-D) or stacks of them (3-D, every matrix of a stack laid out as
    the first; step 0 for a matrix every step uses), or None for a layout oneDNN cannot read."""
    a2, b2, c2 = (x if x.ndim == 2 else x[0] for x in (a, b, out))
    layouts = _layouts(a2, b2, c2)
    if layouts is None:
        return None
    la, lb, ldc = layouts

    def step_bytes(x: np.ndarray) -> int:
        return 0 if x.ndim == 2 else x.strides[0]

    def address(x: np.ndarray) -> int:
        return int(x.__array_interface__["data"][0])

    (m, k), n = a2.shape, b2.shape[1]
    return (
        m,
        n,
        k,
        (la[0], address(a), la[1], step_bytes(a)),
        (lb[0], address(b), lb[1], step_bytes(b)),
        (address(out), ldc, step_bytes(out)),
    )
