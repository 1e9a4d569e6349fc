"""Devices and accelerator queries, with PyTorch's names.

downslope computes on the CPU (NumPy) or, when CuPy is installed and sees a GPU, on CUDA devices
(``pip install "downslope[cuda]"``). Ported PyTorch code asks which device to use
(``torch.device("cuda" if torch.cuda.is_available() else "cpu")``) and moves tensors and modules
there: :class:`device` describes a device, ``cuda`` answers the CUDA queries (importing CuPy only
when asked), and :func:`resolve` turns a device argument into a usable device or a clear error.
The ``"strict"`` device is a test stand-in for a GPU (see ``downslope/devices/strict.py``).
"""

from __future__ import annotations

import contextlib
import enum
import threading
import types
import warnings
from collections.abc import Iterator
from typing import Any

from .errors import ArgumentError, ArgumentTypeError, DeviceUnavailableError, StateError

# The device types PyTorch knows; constructing any of them works (as in torch), using one other
# than the CPU is refused where a tensor would move there.
# "strict" is downslope's own: the CPU stand-in for a GPU used by the tests (downslope/devices/strict.py).
DEVICE_TYPES = ("cpu", "cuda", "mps", "xpu", "meta", "hip", "xla", "ipu", "hpu", "mtia", "privateuseone", "strict")
USABLE_TYPES = ("cpu", "cuda", "strict")


class device:  # noqa: N801  (PyTorch's name)
    """A device description, e.g. ``ds.device("cpu")`` or ``ds.device("cuda", 0)``.

    It compares equal to another device of the same type and index, and (unlike torch, for
    convenience) to the same device written as a string.

    Example:
        >>> import downslope as ds
        >>> d = ds.device("cpu")
        >>> d.type, d.index, str(d), d == "cpu"
        ('cpu', None, 'cpu', True)
    """

    __slots__ = ("type", "index")

    type: str
    index: int | None

    def __init__(self, type: Any, index: int | None = None) -> None:  # noqa: A002  (torch's keyword)
        if isinstance(type, device):
            if index is not None:
                raise ArgumentError(f"device({type!r}, {index}): give the index in one place only")
            self.type, self.index = type.type, type.index
            return
        if not isinstance(type, str):
            raise ArgumentTypeError(f"device: expected a string such as 'cpu' or 'cuda:0', got {type!r}")
        name, _, rest = type.partition(":")
        if name not in DEVICE_TYPES:
            raise ArgumentError(
                f"device: expected one of {', '.join(DEVICE_TYPES)} (optionally ':index'), got {type!r}"
            )
        if rest:
            if index is not None:
                raise ArgumentError(f"device({type!r}, {index}): give the index in one place only")
            if not rest.isdigit():
                raise ArgumentError(f"device: the index in {type!r} must be a non-negative integer")
            index = int(rest)
        if index is not None and (isinstance(index, bool) or not isinstance(index, int) or index < 0):
            raise ArgumentError(f"device: index must be a non-negative integer, got {index!r}")
        self.type, self.index = name, index

    def __eq__(self, other: object) -> bool:
        if isinstance(other, str):
            try:
                other = device(other)
            except (ArgumentError, ArgumentTypeError):
                return False
        if not isinstance(other, device):
            return NotImplemented
        return self.type == other.type and self.index == other.index

    def __hash__(self) -> int:
        return hash((self.type, self.index))

    def __str__(self) -> str:
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __repr__(self) -> str:
        if self.index is None:
            return f"device(type={self.type!r})"
        return f"device(type={self.type!r}, index={self.index})"

    def __enter__(self) -> device:
        # as torch: inside the block, factories without a device= make their tensors here
        target = _default_target(self, "with device(...)")
        stack = _default_state.__dict__.setdefault("entered", [])
        stack.append(get_default_device())
        _set_default(target)
        return self

    def __exit__(self, *exc: object) -> None:
        stack = _default_state.__dict__.get("entered")
        if stack:
            _set_default(stack.pop())


CPU = device("cpu")
STRICT = device("strict")
META = device("meta")  # shapes and dtypes without values (devices/meta.py)


def resolve(target: Any, where: str) -> device:
    """``target`` (a device, a string or an int, read as a CUDA ordinal as torch does) as a device that
    arrays can move to: the CPU, the strict test stand-in, or a CUDA GPU when CuPy sees one.

    Example:
        >>> import downslope as ds
        >>> from downslope.device import resolve
        >>> resolve("cpu", "to()") == ds.device("cpu")
        True
    """
    if isinstance(target, int) and not isinstance(target, bool):
        target = device("cuda", target)
    d = target if isinstance(target, device) else device(target)
    if d.type == "cpu":
        return CPU
    if d.type == "strict":
        return STRICT
    if d.type == "meta":
        return META
    from .devices import cupy_module, unavailable_message

    if d.type == "cuda" and cupy_module() is not None:
        if d.index is not None and d.index >= cuda.device_count():
            raise StateError(f"{where}: CUDA device {d.index} does not exist ({cuda.device_count()} device(s) seen)")
        return device("cuda", 0 if d.index is None else d.index)
    raise DeviceUnavailableError(unavailable_message(d, where))


# The default device of factories (torch.set_default_device), per thread as in torch: a thread that
# never set one (a DataLoader worker, say) makes its tensors on the CPU.
_default_state = threading.local()


# Whether any thread ever chose a default other than the CPU: until then the factories' check is one
# global read instead of a thread-local lookup per tensor made
_ever_off_cpu = [False]


def _set_default(d: device) -> None:
    if d.type != "cpu":
        _ever_off_cpu[0] = True
    _default_state.device = d


def set_default_device(device: Any) -> None:  # noqa: A002  (torch's parameter name)
    """Make ``device`` (a device, a string such as 'cpu' or 'cuda', or None for the CPU) where the
    factories (``ds.tensor``, ``zeros``, ``randn``, ``arange``...) and downslope's layers put their
    tensors when no ``device=`` is given, in this thread, as ``torch.set_default_device``. An
    explicit ``device=`` still wins, and ``*_like`` factories follow their input's device.

    'cuda' needs CuPy and a GPU (then new tensors live on the GPU; random draws are made on the
    host and moved, so a seed gives the same numbers as on the CPU); without them it raises a
    StateError naming what is missing, as does a device type downslope cannot compute on.

    Example:
        >>> import downslope as ds
        >>> ds.set_default_device("cpu")
        >>> ds.get_default_device(), ds.zeros(2).device
        (device(type='cpu'), device(type='cpu'))
    """
    _set_default(CPU if device is None else _default_target(device, "set_default_device()"))


def _default_target(target: Any, where: str) -> device:
    """``target`` resolved as the factories' default device. "meta" is refused there: the layers built
    on it would initialize their weights by writing values, and a meta tensor holds none."""
    d = resolve(target, where)
    if d.type == "meta":
        from .devices import unavailable_message

        raise DeviceUnavailableError(unavailable_message(d, where))
    return d


def get_default_device() -> device:
    """The device factories use when given none (``torch.get_default_device``): the CPU unless
    :func:`set_default_device` (or a ``with ds.device(...)`` block) chose another.

    Example:
        >>> import downslope as ds
        >>> ds.get_default_device()
        device(type='cpu')
    """
    d: device = getattr(_default_state, "device", CPU)
    return d


def default_factory_device() -> device | None:
    """The default device when it is not the CPU, else None (the factories' fast host path)."""
    if not _ever_off_cpu[0]:
        return None
    d = getattr(_default_state, "device", CPU)
    return None if d.type == "cpu" else d


_deterministic = {"mode": False, "warn_only": False}


def use_deterministic_algorithms(mode: bool, *, warn_only: bool = False) -> None:
    """``torch.use_deterministic_algorithms``: ask for run-to-run identical results.

    downslope's CPU kernels already are deterministic for a fixed number of threads: NumPy's sums
    and scatter-adds (``np.add.at``) run in a fixed order and every random draw comes from the
    seeded generator; only the BLAS matrix products may split a sum differently when the thread
    count (``OMP_NUM_THREADS``) changes; and which path a call takes through the optional compiled
    (numba) kernels depends on the call alone. One exception by default: an LSTM/GRU layer of middling
    size starts its compiled loops once its passes' estimated gains repay numba's start, so a seeded
    run repeated in one process may differ in the last bit from its first run there; with
    ``mode=True`` such passes always run on NumPy (the same bits every run, at some speed cost). On a CUDA device (CuPy),
    scatter-adds use atomic additions whose float order can vary between runs; with ``mode=True``
    they are not refused (torch raises, or warns with ``warn_only=True``): a warning says so once.

    Example:
        >>> import downslope as ds
        >>> ds.use_deterministic_algorithms(True)
        >>> ds.are_deterministic_algorithms_enabled()
        True
        >>> ds.use_deterministic_algorithms(False)
    """
    if not isinstance(mode, (bool, int)) or not isinstance(warn_only, (bool, int)):
        raise ArgumentTypeError(
            f"use_deterministic_algorithms: expected bools, got mode={mode!r}, warn_only={warn_only!r}"
        )
    _deterministic["mode"], _deterministic["warn_only"] = bool(mode), bool(warn_only)
    if mode and _cupy() is not None:
        warnings.warn(
            "use_deterministic_algorithms(True): downslope's CPU ops are deterministic; on CUDA, scatter-adds "
            "(index_add, scatter_add, embedding gradients) use atomic adds and are not refused",
            UserWarning,
            stacklevel=2,
        )


def are_deterministic_algorithms_enabled() -> bool:
    """Whether :func:`use_deterministic_algorithms` was last called with True."""
    return _deterministic["mode"]


def is_deterministic_algorithms_warn_only_enabled() -> bool:
    """Whether :func:`use_deterministic_algorithms` was last called with ``warn_only=True``."""
    return _deterministic["warn_only"]


def check_cpu(target: Any, where: str) -> device:
    """``target`` (a device, a string or an int) as a device, refusing anything but the CPU."""
    if isinstance(target, int) and not isinstance(target, bool):
        target = device("cuda", target)  # torch reads a bare integer as a CUDA ordinal
    d = target if isinstance(target, device) else device(target)
    if d.type != "cpu":
        raise StateError(
            f"{where}: device {str(d)!r} is not available; downslope computes on the CPU only (NumPy; "
            "ds.cuda.is_available() is False), so use 'cpu' or leave the device out"
        )
    return CPU


def is_device_like(value: Any) -> bool:
    """Whether ``value`` names a device (a device object, or a string such as 'cpu' or 'cuda:0')."""
    if isinstance(value, device):
        return True
    return isinstance(value, str) and value.partition(":")[0] in DEVICE_TYPES


def _cupy() -> Any:
    from .devices import cupy_module

    return cupy_module()


_DEVICE = device  # for methods whose parameter is named device, as torch's are


class _Cuda(types.ModuleType):
    """``ds.cuda``: PyTorch's CUDA queries, answered through CuPy (imported on the first question). A module,
    as ``torch.cuda`` is: ``import downslope.cuda`` and ``from downslope.cuda.amp import autocast`` work.

    Example:
        >>> import downslope as ds
        >>> ds.cuda.is_available() == (ds.cuda.device_count() > 0)
        True
    """

    @staticmethod
    def is_available() -> bool:
        """True when CuPy imports and sees at least one GPU."""
        return _cupy() is not None

    @staticmethod
    def device_count() -> int:
        cp = _cupy()
        return 0 if cp is None else int(cp.cuda.runtime.getDeviceCount())

    @staticmethod
    def manual_seed(seed: int) -> None:
        """A no-op: every random draw, on a device too, follows from the host generator that
        ``ds.manual_seed`` seeds (a device draw takes its key from it), so one seed covers both."""

    manual_seed_all = manual_seed

    @staticmethod
    def get_rng_state_all() -> list[Any]:
        """``[]``: device draws keep no generator state of their own (each takes its key from the host
        generator, whose ``ds.get_rng_state()`` covers them), so there is no per-device state to save;
        PyTorch's answer on a machine without CUDA."""
        return []

    @staticmethod
    def set_rng_state_all(new_states: Any) -> None:
        """Accepts a list of device states (what :meth:`get_rng_state_all` returned, or a PyTorch
        checkpoint's) and restores nothing: ``ds.set_rng_state`` of the host state restores device draws."""
        if not isinstance(new_states, (list, tuple)):
            raise ArgumentTypeError(
                f"cuda.set_rng_state_all: expected a list of states (from get_rng_state_all), "
                f"got {type(new_states).__name__}"
            )

    @staticmethod
    def empty_cache() -> None:
        """Release CuPy's cached device memory (a no-op without CuPy)."""
        cp = _cupy()
        if cp is not None:
            cp.get_default_memory_pool().free_all_blocks()

    @staticmethod
    def is_bf16_supported() -> bool:
        return False

    @staticmethod
    def current_device() -> int:
        cp = _cupy()
        if cp is None:
            raise StateError("cuda.current_device(): no CUDA device (CuPy missing or no GPU); downslope uses the CPU")
        return int(cp.cuda.Device().id)

    @staticmethod
    def set_device(device: Any) -> None:  # noqa: A002  (torch's parameter name)
        """``torch.cuda.set_device``: make GPU ``device`` (an index, ``"cuda:1"``, a ``ds.device``) the
        current one. Without a GPU (CuPy missing or none seen) it checks the argument and does nothing, so
        a GPU script's ``init_distributed_mode`` (``torch.cuda.set_device(local_rank)`` before
        ``init_process_group``) runs on the CPU under ``mpiexec``, as ``DistributedDataParallel(model,
        device_ids=[local_rank])`` does; a later ``.to("cuda")`` / ``.cuda()`` still fails there, naming
        the device, so a script that needs the GPU is told. A negative index does nothing, as in PyTorch.

        Example:
            >>> import downslope as ds
            >>> ds.cuda.set_device(0) if not ds.cuda.is_available() else None
        """
        if isinstance(device, bool) or not isinstance(device, (int, str, _DEVICE)):
            raise ArgumentTypeError(
                f"cuda.set_device: expected a GPU index, 'cuda:N' or a ds.device, got {type(device).__name__}"
            )
        if isinstance(device, int):
            index = device
        else:
            where = _DEVICE(device)
            if where.type != "cuda":
                raise ArgumentError(f"cuda.set_device: expected a CUDA device, got {str(where)!r}")
            index = 0 if where.index is None else int(where.index)
        if index < 0:
            return
        cp = _cupy()
        if cp is None:
            return  # no GPU: the CPU is the device (see above)
        count = int(cp.cuda.runtime.getDeviceCount())
        if index >= count:
            raise ArgumentError(f"cuda.set_device: GPU {index} was asked for, this machine has {count} GPUs")
        cp.cuda.Device(index).use()

    @staticmethod
    def synchronize(device: Any = None) -> None:
        _need_cuda("synchronize()").cuda.Device().synchronize()

    @staticmethod
    def get_device_name(device: Any = None) -> str:
        cp = _need_cuda("get_device_name()")
        index = _device_index(device, cp)
        return str(cp.cuda.runtime.getDeviceProperties(index)["name"].decode())

    @staticmethod
    def get_device_properties(device: Any = None) -> Any:
        """Name, total_memory (bytes), major, minor and multi_processor_count of a GPU."""
        cp = _need_cuda("get_device_properties()")
        props = cp.cuda.runtime.getDeviceProperties(_device_index(device, cp))
        return types.SimpleNamespace(
            name=props["name"].decode(),
            total_memory=int(props["totalGlobalMem"]),
            major=int(props["major"]),
            minor=int(props["minor"]),
            multi_processor_count=int(props["multiProcessorCount"]),
        )

    # Memory: CuPy's memory pool holds the device memory. Without a GPU every figure is 0, as in torch
    # before CUDA starts.
    @staticmethod
    def memory_allocated(device: Any = None) -> int:
        """Bytes held by tensors' arrays now (CuPy's pool: used bytes)."""
        cp = _cupy()
        return 0 if cp is None else int(cp.get_default_memory_pool().used_bytes())

    @staticmethod
    def memory_reserved(device: Any = None) -> int:
        """Bytes the memory pool holds from the driver now (used or cached for reuse)."""
        cp = _cupy()
        return 0 if cp is None else int(cp.get_default_memory_pool().total_bytes())

    @staticmethod
    def max_memory_allocated(device: Any = None) -> int:
        """0 without a GPU. With one it raises: CuPy's memory pool keeps no peak, and tracking it would
        cost a Python call on every allocation; use memory_allocated() where the peak is."""
        if _cupy() is None:
            return 0
        raise StateError(
            "cuda.max_memory_allocated(): CuPy's memory pool keeps no peak figure; read memory_allocated() at the "
            "point of interest (or memory_reserved(): the pool keeps what it took until empty_cache())"
        )

    max_memory_reserved = max_memory_allocated

    @staticmethod
    def reset_peak_memory_stats(device: Any = None) -> None:
        """A no-op (see max_memory_allocated)."""

    @staticmethod
    def Event(enable_timing: bool = False, blocking: bool = False, interprocess: bool = False) -> Any:  # noqa: N802
        """A CUDA event (``cupy.cuda.Event``) with torch's ``record``, ``synchronize``, ``query`` and
        ``elapsed_time(end)`` (milliseconds)."""
        cp = _need_cuda("Event()")
        event = cp.cuda.Event(block=blocking, disable_timing=not enable_timing, interprocess=interprocess)
        return _Event(event, cp)

    @property
    def amp(self) -> Any:
        """``torch.cuda.amp``: ``autocast(...)`` and ``GradScaler(...)`` for device "cuda" (see downslope.amp)."""
        from .amp import cuda_amp

        return cuda_amp

    def __dir__(self) -> list[str]:
        # a module's dir() lists only its __dict__; the queries live on the class
        return sorted(set(dir(type(self))) | set(self.__dict__))


def _need_cuda(what: str) -> Any:
    cp = _cupy()
    if cp is None:
        raise StateError(f"cuda.{what}: no CUDA device (CuPy missing or no GPU); downslope uses the CPU")
    return cp


def _device_index(which: Any, cp: Any) -> int:
    """A GPU's number from torch's ways of naming it (None: the current one, 0, "cuda:1", a device)."""
    if which is None:
        return int(cp.cuda.Device().id)
    if isinstance(which, int):
        return which
    index = device(which).index
    return 0 if index is None else int(index)


class _Event:
    """torch.cuda.Event's methods over a cupy.cuda.Event."""

    def __init__(self, event: Any, cp: Any) -> None:
        self._event, self._cp = event, cp

    def record(self, stream: Any = None) -> None:
        self._event.record(stream)

    def synchronize(self) -> None:
        self._event.synchronize()

    def query(self) -> bool:
        return bool(self._event.done)

    def wait(self, stream: Any = None) -> None:
        (stream or self._cp.cuda.get_current_stream()).wait_event(self._event)

    def elapsed_time(self, end_event: _Event) -> float:
        return float(self._cp.cuda.get_elapsed_time(self._event, end_event._event))


class _Accelerator:
    """``ds.accelerator``: PyTorch's device-agnostic accelerator queries, answered by CUDA (CuPy).

    Example:
        >>> import downslope as ds
        >>> ds.accelerator.is_available() == ds.cuda.is_available()
        True
    """

    @staticmethod
    def is_available() -> bool:
        return cuda.is_available()

    @staticmethod
    def device_count() -> int:
        return cuda.device_count()

    @staticmethod
    def current_accelerator(check_available: bool = False) -> device | None:
        return device("cuda") if cuda.is_available() else None


class _Cpu(types.ModuleType):
    """``ds.cpu`` (``torch.cpu``, a module as there): the CPU's device queries, and ``ds.cpu.amp.autocast(...)``,
    the deprecated spelling of ``ds.autocast("cpu", ...)``.

    Example:
        >>> import downslope as ds
        >>> ds.cpu.is_available(), ds.cpu.device_count(), ds.cpu.current_device()
        (True, 1, 'cpu')
    """

    @staticmethod
    def is_available() -> bool:
        return True

    @staticmethod
    def device_count() -> int:
        return 1

    @staticmethod
    def current_device() -> str:
        return "cpu"

    @staticmethod
    def synchronize(device: Any = None) -> None:
        """Nothing to wait for: CPU work is done when the call returns."""

    @staticmethod
    def is_initialized() -> bool:
        return True

    @staticmethod
    def set_device(device: Any) -> None:
        """Accepted, as torch.cpu.set_device: there is one CPU device."""

    @property
    def amp(self) -> Any:
        """``torch.cpu.amp``: ``autocast(...)`` and ``GradScaler(...)`` for device "cpu" (see downslope.amp)."""
        from .amp import cpu_amp

        return cpu_amp

    def __dir__(self) -> list[str]:
        return sorted(set(dir(type(self))) | set(self.__dict__))


class _Mps(types.ModuleType):
    """``torch.backends.mps``: no Metal backend here."""

    @staticmethod
    def is_available() -> bool:
        return False

    @staticmethod
    def is_built() -> bool:
        return False


class _TorchMps(types.ModuleType):
    """``torch.mps``: no Metal device here (``is_available()`` False, ``device_count()`` 0), which the
    ``cuda / mps / cpu`` device pick of ported scripts asks."""

    @staticmethod
    def is_available() -> bool:
        return False

    @staticmethod
    def device_count() -> int:
        return 0


class _Cudnn(types.ModuleType):
    """Settings ported code writes (``torch.backends.cudnn.deterministic = True``); they change nothing."""

    enabled = False
    deterministic = False
    benchmark = False
    benchmark_limit = 10
    allow_tf32 = True  # PyTorch's default

    @staticmethod
    def is_available() -> bool:
        return False

    @staticmethod
    def version() -> int | None:
        """None: no cuDNN library is loaded, as PyTorch answers without one."""
        return None

    @contextlib.contextmanager
    def flags(
        self,
        enabled: bool = False,
        benchmark: bool = False,
        benchmark_limit: int = 10,
        deterministic: bool = False,
        allow_tf32: bool = True,
        **others: Any,
    ) -> Iterator[None]:
        """``torch.backends.cudnn.flags(...)``: the flags set for the block, then restored (as in
        PyTorch, also on an error); like the flags themselves, they change nothing here.

        Example:
            >>> import downslope as ds
            >>> before = ds.backends.cudnn.deterministic
            >>> with ds.backends.cudnn.flags(enabled=False, deterministic=True):
            ...     ds.backends.cudnn.deterministic
            True
            >>> ds.backends.cudnn.deterministic == before
            True
        """
        names = ("enabled", "benchmark", "benchmark_limit", "deterministic", "allow_tf32")
        before = {name: getattr(self, name) for name in names}
        for name, value in zip(names, (enabled, benchmark, benchmark_limit, deterministic, allow_tf32)):
            setattr(self, name, value)
        try:
            yield
        finally:
            for name, value in before.items():
                setattr(self, name, value)


class _Mkldnn(types.ModuleType):
    """``torch.backends.mkldnn``: the ``enabled`` flag and ``flags(...)`` are kept and change nothing.
    ``is_available()`` is False, so code that would convert tensors to PyTorch's opaque oneDNN layout
    (``x.to_mkldnn()``, which downslope has not) takes its plain path; downslope calls oneDNN's GEMM
    itself where it pays, on ordinary arrays."""

    enabled = True  # PyTorch's default
    deterministic = False

    @staticmethod
    def is_available() -> bool:
        return False

    @contextlib.contextmanager
    def flags(self, enabled: bool = False, deterministic: bool = False, **others: Any) -> Iterator[None]:
        """``torch.backends.mkldnn.flags(...)``: set for the block, then restored (they change nothing).

        Example:
            >>> import downslope as ds
            >>> with ds.backends.mkldnn.flags(enabled=False):
            ...     ds.backends.mkldnn.enabled
            False
            >>> ds.backends.mkldnn.enabled
            True
        """
        before = (self.enabled, self.deterministic)
        self.enabled, self.deterministic = enabled, deterministic
        try:
            yield
        finally:
            self.enabled, self.deterministic = before


class _Unavailable(types.ModuleType):
    """A ``torch.backends`` part whose ``is_available()`` is False here (``mkl``, ``openmp``): downslope's
    kernels are NumPy's, oneDNN's and numba's, and no code path depends on these answers."""

    @staticmethod
    def is_available() -> bool:
        return False


class _CudaMatmul:
    """``torch.backends.cuda.matmul`` flags: kept, and they change nothing (downslope multiplies float32 in
    float32: no TF32, no reduced-precision reductions)."""

    allow_tf32 = False
    allow_fp16_reduced_precision_reduction = True
    allow_bf16_reduced_precision_reduction = True


class SDPBackend(enum.IntEnum):
    """``torch.nn.attention.SDPBackend``: the scaled dot-product attention kernels PyTorch can choose
    between (torch's members and values). downslope has one attention kernel (its fused CPU/CuPy op);
    naming a backend changes nothing."""

    ERROR = -1
    MATH = 0
    FLASH_ATTENTION = 1
    EFFICIENT_ATTENTION = 2
    CUDNN_ATTENTION = 3
    OVERRIDEABLE = 4

    __str__ = enum.Enum.__str__  # "SDPBackend.MATH", as torch's (an IntEnum would print "0")


# which attention backends are enabled, as torch.backends.cuda's enable_*_sdp flags (all, by default);
# kept for code that sets and reads them, and used by nothing: there is one attention kernel
_sdp_enabled = dict.fromkeys(
    (SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH, SDPBackend.CUDNN_ATTENTION), True
)


def set_sdp_backends(enabled: dict[SDPBackend, bool]) -> dict[SDPBackend, bool]:
    """Sets the attention backend flags named in ``enabled``; returns all the flags as they were."""
    before = dict(_sdp_enabled)
    for backend, on in enabled.items():
        if backend in _sdp_enabled:
            _sdp_enabled[backend] = bool(on)
    return before


def _sdp_flag(backend: SDPBackend, name: str) -> tuple[Any, Any]:
    def enable(enabled: bool) -> None:
        _sdp_enabled[backend] = bool(enabled)

    def enabled() -> bool:
        return _sdp_enabled[backend]

    enable.__name__, enabled.__name__ = f"enable_{name}_sdp", f"{name}_sdp_enabled"
    enable.__doc__ = f"``torch.backends.cuda.enable_{name}_sdp``: a flag kept for ported code; it changes nothing."
    return staticmethod(enable), staticmethod(enabled)


class _BackendsCuda(types.ModuleType):
    """``torch.backends.cuda``: the ``matmul`` flags, and whether CUDA support is built; the attention
    backend flags (``enable_flash_sdp(False)``, ``sdp_kernel(...)``), kept and changing nothing:
    downslope has one attention kernel."""

    matmul = _CudaMatmul()
    SDPBackend = SDPBackend
    enable_flash_sdp, flash_sdp_enabled = _sdp_flag(SDPBackend.FLASH_ATTENTION, "flash")
    enable_mem_efficient_sdp, mem_efficient_sdp_enabled = _sdp_flag(SDPBackend.EFFICIENT_ATTENTION, "mem_efficient")
    enable_math_sdp, math_sdp_enabled = _sdp_flag(SDPBackend.MATH, "math")
    enable_cudnn_sdp, cudnn_sdp_enabled = _sdp_flag(SDPBackend.CUDNN_ATTENTION, "cudnn")

    @staticmethod
    @contextlib.contextmanager
    def sdp_kernel(
        enable_flash: bool = True,
        enable_math: bool = True,
        enable_mem_efficient: bool = True,
        enable_cudnn: bool = True,
    ) -> Iterator[None]:
        """``torch.backends.cuda.sdp_kernel``, deprecated in torch (a FutureWarning, as there) for
        ``torch.nn.attention.sdpa_kernel``: the attention backend flags set for the block, then restored.
        downslope has one attention kernel, so they change nothing."""
        warnings.warn(
            "`torch.backends.cuda.sdp_kernel()` is deprecated. In the future, this context manager will be removed. "
            "Please see `torch.nn.attention.sdpa_kernel()` for the new context manager, with updated signature.",
            FutureWarning,
            stacklevel=3,
        )
        before = set_sdp_backends(
            {
                SDPBackend.FLASH_ATTENTION: enable_flash,
                SDPBackend.MATH: enable_math,
                SDPBackend.EFFICIENT_ATTENTION: enable_mem_efficient,
                SDPBackend.CUDNN_ATTENTION: enable_cudnn,
            }
        )
        try:
            yield
        finally:
            set_sdp_backends(before)

    @staticmethod
    def is_built() -> bool:
        """True when CuPy imports and sees a GPU (downslope's CUDA support is CuPy)."""
        return cuda.is_available()


class _Backends(types.ModuleType):
    """``ds.backends``: ``mps.is_available()``, ``cuda.matmul``, ``cudnn`` and ``mkldnn`` flags, for ported code; the flags
    are kept and change nothing. Like PyTorch's, each is a module: ``import downslope.backends.cudnn`` and
    ``from downslope.backends import cudnn`` work (see :func:`_register_backends`)."""

    mps = _Mps("downslope.backends.mps")
    cudnn = _Cudnn("downslope.backends.cudnn")
    cuda = _BackendsCuda("downslope.backends.cuda")
    mkldnn = _Mkldnn("downslope.backends.mkldnn")
    mkl = _Unavailable("downslope.backends.mkl")
    openmp = _Unavailable("downslope.backends.openmp")


_PRECISIONS = ("highest", "high", "medium")
_matmul_precision = ["highest"]


def set_float32_matmul_precision(precision: str) -> None:
    """``torch.set_float32_matmul_precision``: the setting is kept (``get_float32_matmul_precision``) and
    changes nothing: downslope computes float32 products in float32 ("highest") everywhere."""
    if precision not in _PRECISIONS:
        raise ArgumentError(f"set_float32_matmul_precision: expected one of {_PRECISIONS}, got {precision!r}")
    _matmul_precision[0] = precision


def get_float32_matmul_precision() -> str:
    return _matmul_precision[0]


cuda = _Cuda("downslope.cuda", _Cuda.__doc__)
cpu = _Cpu("downslope.cpu", _Cpu.__doc__)
accelerator = _Accelerator()
backends = _Backends("downslope.backends")
mps = _TorchMps("downslope.mps", _TorchMps.__doc__)


def _register_backends() -> None:
    """Enter ``backends`` and its parts, ``cuda``, ``cpu`` and ``mps`` in ``sys.modules`` as the modules they stand
    for, so that the import statements of code written for ``torch.backends`` and ``torch.cuda`` find them
    (the objects stay the ones ``ds.backends`` and ``ds.cuda`` hold: a flag set through either name is the
    same flag). Their ``amp`` parts are entered by amp.py."""
    import importlib.machinery
    import sys

    for package in (backends, cuda, cpu):
        package.__path__ = []  # a package: its parts import as submodules
    parts = (backends.mps, backends.cudnn, backends.cuda, backends.mkldnn, backends.mkl, backends.openmp)
    for module in (backends, *parts, cuda, cpu, mps):
        is_package = module in (backends, cuda, cpu)
        module.__spec__ = importlib.machinery.ModuleSpec(module.__name__, None, is_package=is_package)
        sys.modules.setdefault(module.__name__, module)


_register_backends()
