"""Devices and accelerator queries, with PyTorch's names.

downslope computes on the CPU (NumPy). Ported PyTorch code still asks which device to use
(``torch.device("cuda" if torch.cuda.is_available() else "cpu")``) and moves tensors and modules
there, so the names exist: :class:`device` describes a device, the ``cuda``, ``accelerator`` and
``backends`` namespaces answer that no accelerator is present, and moving to the CPU is a no-op.
Moving anywhere else is refused with a clear error (see ``Tensor.to``).
"""

from __future__ import annotations

from typing import Any

from .errors import ArgumentError, ArgumentTypeError, StateError

# The device types PyTorch knows; constructing any of them works (as in torch), using one other
# than the CPU is refused where a tensor would move there.
DEVICE_TYPES = ("cpu", "cuda", "mps", "xpu", "meta", "hip", "xla", "ipu", "hpu", "mtia", "privateuseone")


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


class _Cuda:
    """``ds.cuda``: PyTorch's CUDA queries, answering that no GPU is present.

    Example:
        >>> import downslope as ds
        >>> ds.cuda.is_available(), ds.cuda.device_count()
        (False, 0)
    """

    @staticmethod
    def is_available() -> bool:
        return False

    @staticmethod
    def device_count() -> int:
        return 0

    @staticmethod
    def manual_seed(seed: int) -> None:
        """A no-op, as in torch when CUDA is absent (seed the CPU with ``ds.manual_seed``)."""

    manual_seed_all = manual_seed

    @staticmethod
    def empty_cache() -> None:
        """A no-op: there is no GPU memory to release."""

    @staticmethod
    def is_bf16_supported() -> bool:
        return False

    @staticmethod
    def current_device() -> int:
        raise StateError("cuda.current_device(): no CUDA device; downslope computes on the CPU")

    @staticmethod
    def synchronize(device: Any = None) -> None:
        raise StateError("cuda.synchronize(): no CUDA device; downslope computes on the CPU")


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
