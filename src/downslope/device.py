"""Devices and accelerator queries, with PyTorch's names.

downslope computes on the CPU (NumPy) or, when CuPy is installed and sees a GPU, on CUDA devices
(``pip install "downslope[cuda]"``). Ported PyTorch code asks which device to use
(``torch.device("cuda" if torch.cuda.is_available() else "cpu")``) and moves tensors and modules
there: :class:`device` describes a device, ``cuda`` answers the CUDA queries (importing CuPy only
when asked), and :func:`resolve` turns a device argument into a usable device or a clear error.
The ``"strict"`` device is a test stand-in for a GPU (see ``downslope/devices/strict.py``).
"""

from __future__ import annotations

from typing import Any

from .errors import ArgumentError, ArgumentTypeError, StateError

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
        check_cpu(self, "with device(...)")
        return self

    def __exit__(self, *exc: object) -> None:
        pass


CPU = device("cpu")
STRICT = device("strict")


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
    from .devices import cupy_module, unavailable_message

    if d.type == "cuda" and cupy_module() is not None:
        if d.index is not None and d.index >= cuda.device_count():
            raise StateError(f"{where}: CUDA device {d.index} does not exist ({cuda.device_count()} device(s) seen)")
        return device("cuda", 0 if d.index is None else d.index)
    raise StateError(unavailable_message(d, where))


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


class _Cuda:
    """``ds.cuda``: PyTorch's CUDA queries, answered through CuPy (imported on the first question).

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
        """A no-op, as in torch without CUDA: random draws are made on the host by the generator
        ``ds.manual_seed`` seeds, then copied to the device, so one seed covers both."""

    manual_seed_all = manual_seed

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
    def synchronize(device: Any = None) -> None:
        cp = _cupy()
        if cp is None:
            raise StateError("cuda.synchronize(): no CUDA device (CuPy missing or no GPU); downslope uses the CPU")
        cp.cuda.Device().synchronize()


class _Accelerator:
    """``ds.accelerator``: PyTorch's device-agnostic accelerator queries (none here).

    Example:
        >>> import downslope as ds
        >>> ds.accelerator.is_available(), ds.accelerator.current_accelerator()
        (False, None)
    """

    @staticmethod
    def is_available() -> bool:
        return False

    @staticmethod
    def device_count() -> int:
        return 0

    @staticmethod
    def current_accelerator(check_available: bool = False) -> device | None:
        return None


class _Mps:
    @staticmethod
    def is_available() -> bool:
        return False

    @staticmethod
    def is_built() -> bool:
        return False


class _Cudnn:
    """Settings ported code writes (``torch.backends.cudnn.deterministic = True``); they change nothing."""

    enabled = False
    deterministic = False
    benchmark = False

    @staticmethod
    def is_available() -> bool:
        return False


class _Backends:
    """``ds.backends``: ``mps.is_available()`` and ``cudnn`` flags, for ported code; nothing to configure."""

    mps = _Mps()
    cudnn = _Cudnn()


cuda = _Cuda()
accelerator = _Accelerator()
backends = _Backends()
