"""``torch.utils.dlpack``: ``from_dlpack`` and ``to_dlpack``, to share a tensor's memory with another
library (PyTorch, JAX, CuPy, NumPy) without a copy.

``to_dlpack(t)`` gives the DLPack capsule of ``t`` (``t.__dlpack__()``); ``from_dlpack`` takes an
object with ``__dlpack__`` (as :func:`downslope.from_dlpack`) or such a capsule (each capsule can be
read once, as DLPack says).

Example:
    >>> import downslope as ds
    >>> from downslope.utils.dlpack import from_dlpack, to_dlpack
    >>> t = ds.tensor([1.0, 2.0])
    >>> u = from_dlpack(to_dlpack(t)); t[0] = 5.0
    >>> u.tolist()
    [5.0, 2.0]
"""

from __future__ import annotations

import ctypes
from typing import Any

from ..errors import ArgumentTypeError

__all__ = ["from_dlpack", "to_dlpack"]


def to_dlpack(tensor: Any) -> Any:
    """The DLPack capsule of ``tensor`` (``torch.utils.dlpack.to_dlpack``), sharing its memory; a
    tensor that requires grad is refused (detach it first), as ``Tensor.__dlpack__`` does."""
    from ..tensor import Tensor

    if not isinstance(tensor, Tensor):
        raise ArgumentTypeError(f"to_dlpack: expected a downslope Tensor, got {type(tensor).__name__}")
    return tensor.__dlpack__()


class _Capsule:
    """A bare DLPack capsule dressed as a DLPack producer (``__dlpack__``, ``__dlpack_device__``), so
    that ``numpy.from_dlpack`` / ``cupy.from_dlpack`` can read it."""

    def __init__(self, capsule: Any) -> None:
        self.capsule = capsule
        get_name = ctypes.pythonapi.PyCapsule_GetName
        get_name.restype, get_name.argtypes = ctypes.c_char_p, [ctypes.py_object]
        name = get_name(capsule)
        if name not in (b"dltensor", b"dltensor_versioned"):
            used = " (it was read already)" if name and name.startswith(b"used_") else ""
            raise ArgumentTypeError(f"from_dlpack: expected an unread DLPack capsule, got one named {name!r}{used}")
        get_pointer = ctypes.pythonapi.PyCapsule_GetPointer
        get_pointer.restype, get_pointer.argtypes = ctypes.c_void_p, [ctypes.py_object, ctypes.c_char_p]
        address = get_pointer(capsule, name)
        if name == b"dltensor_versioned":  # DLManagedTensorVersioned: version (2 x u32), manager_ctx, deleter, flags
            address += 8 + 3 * ctypes.sizeof(ctypes.c_void_p)
        # DLTensor starts with: void* data; DLDevice {int32 device_type; int32 device_id}
        device = (ctypes.c_int32 * 2).from_address(address + ctypes.sizeof(ctypes.c_void_p))
        self.device = (int(device[0]), int(device[1]))

    def __dlpack__(self, *args: Any, **kwargs: Any) -> Any:
        return self.capsule

    def __dlpack_device__(self) -> tuple[int, int]:
        return self.device


def from_dlpack(ext_tensor: Any) -> Any:
    """A tensor sharing the memory of ``ext_tensor``: an object with ``__dlpack__`` (a PyTorch, JAX or
    CuPy tensor, a NumPy array) or a DLPack capsule (``torch.utils.dlpack.from_dlpack``); see
    :func:`downslope.from_dlpack`."""
    from ..tensor import from_dlpack as tensor_from_dlpack

    if type(ext_tensor).__name__ == "PyCapsule":
        ext_tensor = _Capsule(ext_tensor)
    return tensor_from_dlpack(ext_tensor)
