"""Where arrays live: the host (NumPy), a CUDA GPU (CuPy, optional), or the strict test stand-in.

``ds.device`` (``downslope/device.py``) is the user's description of a device; this package maps
arrays to devices and moves arrays between them. CuPy is imported only when a CUDA device is asked
for, so ``import downslope`` never imports it.

- ``"cpu"``: NumPy arrays.
- ``"cuda"`` / ``"cuda:N"``: CuPy arrays on GPU N (``pip install "downslope[cuda]"``).
- ``"meta"``: shapes and dtypes without values (:mod:`downslope.devices.meta`), as PyTorch's meta
  tensors; reading values there raises.
- ``"strict"``: for tests only. :mod:`downslope.devices.strict` wraps NumPy and refuses every
  implicit host conversion, as CuPy does, so the CPU test suite proves that no op bypasses the
  data's array namespace.

Example:
    >>> import numpy as np
    >>> from downslope import devices
    >>> a = devices.to_device(np.ones(2, np.float32), "strict")
    >>> str(devices.device_of(a)), devices.to_host(a).tolist()
    ('strict', [1.0, 1.0])
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from ..device import CPU, META, STRICT, device
from ..errors import DeviceUnavailableError, StateError
from . import meta, strict
from .meta import MetaArray
from .strict import StrictArray


@functools.lru_cache(maxsize=1)
def cupy_module() -> Any:
    """The ``cupy`` module if it imports and sees at least one GPU, else None (asked once per process)."""
    try:
        import cupy  # type: ignore[import-not-found, unused-ignore]

        if cupy.cuda.runtime.getDeviceCount() < 1:
            return None
    except Exception:  # no CuPy, no driver, no device: all mean "no CUDA here"
        return None
    return cupy


def device_of(array: Any) -> device:
    """The device an array lives on (host data, including Python scalars, is on the CPU)."""
    if isinstance(array, np.ndarray):
        return CPU
    if isinstance(array, StrictArray):
        return STRICT
    if type(array).__module__.startswith("cupy"):
        return device("cuda", int(array.device.id))
    if type(array) is MetaArray:
        return META
    return CPU


def is_array(value: Any) -> bool:
    """Whether ``value`` is an array of any device (NumPy, CuPy or the stand-in), not a scalar."""
    t = type(value)
    if t is np.ndarray or t is StrictArray:  # the common cases first: this runs on every index and operand
        return True
    if t is int or t is float or t is slice:
        return False
    return isinstance(value, (np.ndarray, StrictArray, MetaArray)) or t.__module__.startswith("cupy")


def to_host(array: Any) -> np.ndarray:
    """A host NumPy array with ``array``'s values (the array itself when it is already one)."""
    if isinstance(array, np.ndarray):
        return array
    if isinstance(array, StrictArray) or type(array).__module__.startswith("cupy"):
        return array.get()
    if type(array) is MetaArray:
        raise meta.refuse_copy_out("to_host()")
    if is_foreign_tensor(array):
        return foreign_to_host(array)
    return np.asarray(array)


# Another library's dtypes NumPy has no type for; widened to float32, which holds each of their values
# exactly (``t.float()`` in PyTorch), rather than failing inside ``np.asarray``.
_WIDENED = frozenset(
    ("bfloat16", "float8_e4m3fn", "float8_e4m3fnuz", "float8_e5m2", "float8_e5m2fnuz", "float8_e8m0fnu")
)


def is_foreign_tensor(value: Any) -> bool:
    """Whether ``value`` is a PyTorch tensor (or Parameter), told apart by duck typing, never by
    importing PyTorch: its ``dtype`` prints as ``torch.<name>`` and it has ``numpy()`` and ``float()``.

    Example:
        >>> import numpy as np
        >>> from downslope import devices
        >>> devices.is_foreign_tensor(np.zeros(2)), devices.is_foreign_tensor([1.0])
        (False, False)
    """
    if isinstance(value, (np.ndarray, StrictArray, list, tuple, int, float, bool)):
        return False
    dtype = getattr(value, "dtype", None)
    return (
        dtype is not None
        and str(dtype).startswith("torch.")
        and hasattr(value, "numpy")
        and hasattr(value, "float")
        and hasattr(value, "detach")
    )


def foreign_to_host(value: Any) -> np.ndarray:
    """A PyTorch tensor's values as a host NumPy array (shared with it where NumPy can hold its dtype).

    Detached first (``numpy()`` refuses a tensor that requires grad), moved to the CPU when it is
    elsewhere, and widened to float32 when its dtype (bfloat16, the float8 types) has no NumPy
    equivalent: every bfloat16 or float8 value is a float32 value, so nothing is rounded.

    Example:
        >>> import numpy as np
        >>> from downslope import devices
        >>> class Fake:  # what the duck typing looks at
        ...     dtype = "torch.bfloat16"; device = "cpu"
        ...     def detach(self): return self
        ...     def float(self): return Real()
        ...     def numpy(self): raise TypeError("Got unsupported ScalarType BFloat16")
        >>> class Real(Fake):
        ...     dtype = "torch.float32"
        ...     def numpy(self): return np.ones(2, np.float32)
        >>> devices.foreign_to_host(Fake()).dtype
        dtype('float32')
    """
    t = value.detach()
    if str(t.dtype).removeprefix("torch.") in _WIDENED:
        t = t.float()
    if str(getattr(t, "device", "cpu")) != "cpu":
        t = t.cpu()
    if getattr(t, "is_conj", None) is not None and t.is_conj():
        t = t.resolve_conj()
    return np.asarray(t.numpy())


def to_device(array: Any, target: Any) -> Any:
    """``array`` copied to ``target`` (a device or its name); the array itself when it is already there."""
    d = target if isinstance(target, device) else device(target)
    if device_of(array) == d or (d.type == "cuda" and d.index is None and device_of(array).type == "cuda"):
        return array
    if d.type == "meta":  # the shape and dtype only: no values are read or copied
        return meta.like(array if is_array(array) else np.asarray(array))  # host: a caller's list or number
    host = to_host(array)
    if d.type == "cpu":
        return host
    if d.type == "strict":
        return strict.asarray(host)
    if d.type == "cuda":
        cupy = cupy_module()
        if cupy is None:
            raise DeviceUnavailableError(unavailable_message(d, "to()"))
        with cupy.cuda.Device(d.index or 0):
            return cupy.asarray(host)
    raise StateError(unavailable_message(d, "to()"))


def like(data: Any, array: Any) -> Any:
    """``data`` (an array of any device, or host data: lists, numbers) as an array on ``array``'s device;
    no copy when it is already there. For values the caller hands in (a gradient, an index, a mask).

    Example:
        >>> import numpy as np
        >>> from downslope import devices
        >>> str(devices.device_of(devices.like([1.0], devices.to_device(np.zeros(1), "strict"))))
        'strict'
    """
    if type(data) is np.ndarray and type(array) is np.ndarray:
        return data
    if not is_array(data):
        data = np.asarray(data)  # host: the caller's data (a list, a number) is host data
    return to_device(data, device_of(array))


def full(shape: Any, fill_value: Any, dtype: Any, target: Any) -> Any:
    """An array of ``shape`` filled with ``fill_value``, made directly on ``target`` (a device or its
    name): nothing is made on the host and copied over.

    Example:
        >>> from downslope import devices
        >>> str(devices.device_of(devices.full((2,), 0.0, "float32", "strict")))
        'strict'
    """
    d = target if isinstance(target, device) else device(target)
    if d.type == "cpu":
        return np.full(shape, fill_value, dtype)  # (np.zeros would drop the sign of -0.0)
    if d.type == "strict":
        from . import strict

        return strict.full(shape, fill_value, dtype)
    if d.type == "meta":
        return meta.empty(shape, dtype)
    if d.type == "cuda":
        cupy = cupy_module()
        if cupy is None:
            raise DeviceUnavailableError(unavailable_message(d, "full()"))
        with cupy.cuda.Device(d.index or 0):
            return cupy.full(shape, fill_value, dtype)
    raise StateError(unavailable_message(d, "full()"))


def unavailable_message(d: device, where: str) -> str:
    if d.type == "cuda":
        return (
            f"{where}: device {str(d)!r} is not available: CuPy is not installed or sees no GPU "
            "(pip install 'downslope[cuda]'; ds.cuda.is_available() is False); use 'cpu'"
        )
    hint = ""
    if d.type == "meta":  # meta tensors exist (.to('meta'), device='meta'), but not as the default device
        hint = (
            "; 'meta' is supported for .to('meta') and device='meta' on a factory, not as the default device "
            "(a layer built there writes its initial values, and a meta tensor holds none): build the model on "
            "'cpu', then .to('meta')"
        )
    return (
        f"{where}: device {str(d)!r} is not available; downslope computes on the CPU (NumPy) or a CUDA GPU "
        f"(CuPy), so use 'cpu' or 'cuda'{hint}"
    )


__all__ = [
    "MetaArray",
    "StrictArray",
    "cupy_module",
    "device_of",
    "foreign_to_host",
    "full",
    "is_array",
    "is_foreign_tensor",
    "like",
    "to_device",
    "to_host",
    "unavailable_message",
]
