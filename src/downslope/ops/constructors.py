"""Tensor constructors of torch's that no other module holds: ``frombuffer`` (a tensor over a Python
buffer's memory), ``empty_permuted`` (a tensor laid out in memory in a given dim order) and the
legacy ``Tensor.new``.

Example:
    >>> import downslope as ds
    >>> ds.frombuffer(bytearray(b"\\x01\\x02"), dtype=ds.uint8)
    tensor([1, 2], dtype=uint8)
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import backend
from ..errors import ArgumentError, ArgumentTypeError, ShapeError
from ..tensor import Tensor, _made, tensor, wrap_array, zeros

__all__ = ["empty_permuted", "empty_strided", "frombuffer"]


def frombuffer(buffer: Any, *, dtype: Any, count: int = -1, offset: int = 0, requires_grad: bool = False) -> Tensor:
    """A 1-d tensor over the memory of ``buffer`` (any object with Python's buffer protocol: a
    ``bytearray``, ``array.array``, ``memoryview``...), sharing it: a write through either shows in
    both (``torch.frombuffer``). ``count`` elements of ``dtype`` (all that fit by default) are read
    from byte ``offset``. A read-only buffer (``bytes``) gives a tensor that refuses writes, with
    torch's warning.

    Example:
        >>> import array, downslope as ds
        >>> ds.frombuffer(array.array("i", [1, 2, 3]), dtype=ds.int32, offset=4)
        tensor([2, 3], dtype=int32)
    """
    dt = backend.as_dtype(dtype)
    try:
        view = memoryview(buffer)
    except TypeError:
        raise ArgumentTypeError(
            f"frombuffer(): object does not implement Python buffer protocol, got {type(buffer).__name__}"
        ) from None
    size = view.nbytes
    for what, value in (("count", count), ("offset", offset)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise ArgumentTypeError(f"frombuffer(): argument '{what}' must be int, not {type(value).__name__}")
    if size == 0 or count == 0:
        raise ArgumentError(f"frombuffer(): both buffer length ({size}) and count ({count}) must not be 0")
    if offset < 0 or offset >= size:
        raise ArgumentError(
            f"frombuffer(): offset ({offset} bytes) must be non-negative and no greater than buffer length "
            f"({size} bytes) minus 1"
        )
    if count < 0:
        if (size - offset) % dt.itemsize:
            raise ArgumentError(
                f"frombuffer(): buffer length ({size - offset} bytes) after offset ({offset} bytes) must be a multiple "
                f"of element size ({dt.itemsize})"
            )
        count = (size - offset) // dt.itemsize
    elif offset + count * dt.itemsize > size:
        raise ArgumentError(
            f"frombuffer(): requested buffer length ({count} * {dt.itemsize} bytes) after offset ({offset} bytes) "
            f"must not be greater than actual buffer length ({size} bytes)"
        )
    if view.readonly:
        warnings.warn(
            "The given buffer is not writable: the tensor refuses in-place writes (PyTorch warns and leaves "
            "writing undefined). Copy the buffer (bytearray(...)) or the tensor (.clone()) to write.",
            UserWarning,
            stacklevel=2,
        )
    arr = np.frombuffer(buffer, dtype=dt, count=int(count), offset=int(offset))  # host: a Python buffer's memory
    out = wrap_array(arr)
    if requires_grad:
        out.requires_grad_(True)
    return out


def empty_permuted(
    size: Sequence[int],
    physical_layout: Sequence[int],
    *,
    dtype: Any = None,
    device: Any = None,
    requires_grad: bool = False,
    **options: Any,
) -> Tensor:
    """A tensor of shape ``size`` whose memory holds the dims in the order ``physical_layout`` (the
    first listed varies slowest): ``empty_permuted((N, C, H, W), (0, 2, 3, 1))`` is channels-last
    (``torch.empty_permuted``). Its values are zeros here (torch leaves them uninitialised).

    Example:
        >>> import downslope as ds
        >>> ds.empty_permuted((2, 3, 4), (0, 2, 1)).stride()
        (12, 1, 3)
    """
    unknown = set(options) - {"layout", "pin_memory"}
    if unknown:
        raise ArgumentTypeError(f"empty_permuted() got an unexpected keyword argument {sorted(unknown)[0]!r}")
    shape = tuple(int(s) for s in size)
    layout = tuple(int(d) for d in physical_layout)
    if len(shape) != len(layout):
        raise ShapeError(
            "empty_permuted(): number of dimensions in size does not match the length of the physical_layout; "
            f"len(size) = {len(shape)} is not equal to len(physical_layout) = {len(layout)}"
        )
    if sorted(layout) != list(range(len(shape))):
        raise ArgumentError(f"empty_permuted(): physical_layout must be a permutation of the dims, got {layout}")
    if any(s < 0 for s in shape):
        raise ArgumentError(f"empty_permuted(): expected a size of non-negative integers, got {shape}")
    dt = backend.get_default_dtype() if dtype is None else backend.as_dtype(dtype)
    physical = np.zeros(tuple(shape[d] for d in layout), dt)  # host: a factory, placed by _made
    return _made(physical.transpose(np.argsort(layout)), requires_grad, device, "empty_permuted()")


def empty_strided(
    size: Sequence[int],
    stride: Sequence[int],
    *,
    dtype: Any = None,
    device: Any = None,
    requires_grad: bool = False,
    **options: Any,
) -> Tensor:
    """A tensor of shape ``size`` to be filled (``torch.empty_strided``). The strides are NumPy's for a
    new contiguous array, not ``stride`` (a downslope tensor wraps one NumPy array, laid out by NumPy;
    ``stride`` only has to give one entry per dim, as torch checks); the values are zeros (torch leaves
    them uninitialised). Code that then writes the whole tensor, the usual use, gets torch's result.

    Example:
        >>> import downslope as ds
        >>> ds.empty_strided((2, 3), (1, 2)).shape
        downslope.Size([2, 3])
    """
    unknown = set(options) - {"layout", "pin_memory"}
    if unknown:
        raise ArgumentTypeError(f"empty_strided() got an unexpected keyword argument {sorted(unknown)[0]!r}")
    shape = tuple(int(s) for s in size)
    strides = tuple(int(s) for s in stride)
    if len(shape) != len(strides):
        raise ShapeError(
            f"empty_strided(): dimensionality of sizes ({len(shape)}) must match dimensionality of strides "
            f"({len(strides)}); got size {shape} and stride {strides}"
        )
    if any(s < 0 for s in shape):
        raise ArgumentError(f"empty_strided(): Trying to create tensor with negative dimension: {list(shape)}")
    dt = backend.get_default_dtype() if dtype is None else backend.as_dtype(dtype)
    return _made(np.zeros(shape, dt), requires_grad, device, "empty_strided()")  # host: a factory, placed by _made


def _new(self: Tensor, *args: Any, device: Any = None) -> Tensor:
    """torch's legacy constructor ``x.new(...)``, in ``x``'s dtype: ``x.new()`` is empty,
    ``x.new(2, 3)`` or ``x.new(x.shape)`` a tensor of that size (zeros here; torch leaves them
    uninitialised), ``x.new([1, 2])`` one holding that data, and ``x.new(t)`` a tensor ``t`` of
    ``x``'s dtype, shared. A tuple of ints is a size (shapes are tuples here), where torch reads a
    plain tuple as data. New code uses ``new_zeros``, ``new_tensor``...

    Example:
        >>> import downslope as ds
        >>> x = ds.tensor([1, 2])
        >>> x.new(2, 3).shape, x.new([1.5, 2.0])
        (downslope.Size([2, 3]), tensor([1, 2]))
    """
    dt = self.array.dtype
    where = self.device if device is None else device

    def is_int(v: Any) -> bool:
        return isinstance(v, (int, np.integer)) and not isinstance(v, bool)

    if not args:
        return zeros(0, dtype=dt, device=where)
    if all(is_int(a) for a in args):
        return zeros(*args, dtype=dt, device=where)
    if len(args) == 1:
        (data,) = args
        if isinstance(data, Tensor):
            if data.array.dtype != dt:
                raise ArgumentTypeError(f"new(): expected a tensor of dtype {dt}, got {data.array.dtype}")
            return data.detach()
        if isinstance(data, tuple) and all(is_int(a) for a in data):
            return zeros(*data, dtype=dt, device=where)
        if isinstance(data, (Sequence, np.ndarray)) and not isinstance(data, str):
            arr = np.asarray(data).astype(dt) if len(data) else np.zeros(0, dt)  # host: the caller's data
            return tensor(arr, dtype=dt, device=where)  # dtype=: tensor() would make float64 data float32
        raise ArgumentTypeError(f"new(): data must be a sequence (got {type(data).__name__})")
    raise ArgumentTypeError(f"new(): expected sizes (ints), a size, data or a tensor, got {args!r}")


METHODS = {"new": _new}
