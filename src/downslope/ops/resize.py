"""PyTorch's ``Tensor.resize_`` / ``resize_as_`` where a tensor that wraps one array can do them.

torch resizes a tensor's storage in place: the new shape is laid out contiguously from the tensor's
offset in its storage, which grows when it is too small, and memory it adds is uninitialized. Pre-1.0
code builds tensors this way (``y = x.data.new(); y.resize_as_(x); y.fill_(1)``). Here a tensor holds
one array, and a view's storage is the memory of the tensor it was taken from, so:

- where the new shape fits in the storage from the tensor's place (a view shrunk, grown within its
  base, transposed or strided; a tensor shrunk; the same number of elements): the tensor becomes a
  contiguous view of that memory, as torch's layout, still shared with the tensors that share it;
- past it: the tensor gets a new array holding the first elements of the old one and zeros after them
  (torch leaves them uninitialized). Refused when another live tensor shares the array (a view, a
  ``.data`` or ``detach()`` alias), since that one would not see the new memory (torch grows the
  storage both see), with torch's message for a storage that cannot be resized;
- refused for a tensor that requires grad or is part of a graph, as torch refuses ("cannot resize
  variables that require grad"); a device array's non-contiguous tensor is refused too.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..backend import index_value, namespace_of
from ..errors import ArgumentTypeError, ShapeError, StateError
from ..tensor import Tensor, _bump, _is_plain_view, _is_view_in_graph, _only_holder, _sizes_arg

_WAY = "make a new tensor of the shape instead (ds.empty(shape), ds.empty_like(other))"


def _shape(name: str, sizes: tuple[Any, ...]) -> tuple[int, ...]:
    shape = []
    for s in _sizes_arg(sizes):
        n = None if isinstance(s, bool) else index_value(s)
        if n is None or n < 0:
            raise ArgumentTypeError(f"{name}: expected sizes as non-negative ints, got {sizes!r}")
        shape.append(int(n))
    return tuple(shape)


def resize_(t: Tensor, sizes: tuple[Any, ...], name: str = "resize_") -> Tensor:
    """Give ``t`` the shape ``sizes`` in place, as torch's ``t.resize_(*sizes)`` (see the module's
    docstring for what is kept and what is refused); returns ``t``.

    Example:
        >>> import downslope as ds
        >>> y = ds.ones(2).new()
        >>> resize_(y, (2, 2)).fill_(1)
        tensor([[1., 1.],
                [1., 1.]])
    """
    shape = _shape(name, sizes)
    a = t.array
    if t.requires_grad or t._vjp is not None:  # even to its own shape, as torch
        raise StateError(
            f"{name}: cannot resize a tensor that requires grad or is part of a graph (shape {tuple(a.shape)} to "
            f"{shape}), as in torch; resize t.detach().clone(), or {_WAY}"
        )
    if tuple(a.shape) == shape:
        return t  # nothing written: torch's version stays too
    xp = namespace_of(a)
    n = math.prod(shape)
    laid = _in_storage(t, shape, n) if type(a) is np.ndarray else None
    if laid is not None:  # torch's new contiguous layout at the tensor's offset in its storage
        t.array = laid
        _bump(t)
        return t
    if not a.flags.c_contiguous:
        raise StateError(
            f"{name}: cannot resize a non-contiguous tensor (shape {tuple(a.shape)}, e.g. a transposed or strided "
            f"view) to {shape}: torch would expose its storage order; resize t.contiguous(), or {_WAY}"
        )
    if n == a.size:
        t.array = xp.reshape(a, shape)  # contiguous: a view of the same memory
        _bump(t)
        return t
    if a.size and (_is_view_in_graph(t) or _is_plain_view(t) or (t._vc is not None and not _only_holder(t))):
        raise ShapeError(
            f"{name}: Trying to resize storage that is not resizable: {n} elements (shape {tuple(a.shape)} to "
            f"{shape}) do not fit in the memory this tensor shares with another tensor (a view, or a .data/"
            f"detach() alias) from its place in it, and downslope cannot grow memory that another tensor sees "
            f"(torch grows the storage both see); {_WAY}"
        )
    new = xp.zeros(shape, dtype=a.dtype)  # torch leaves the added memory uninitialized: zeros are one such value
    kept = min(n, a.size)
    if kept:
        new.reshape(-1)[:kept] = a.reshape(-1)[:kept]
    t.array = new
    _bump(t)
    return t


def _address(a: np.ndarray) -> int:
    return int(a.__array_interface__["data"][0])


def _in_storage(t: Tensor, shape: tuple[int, ...], n: int) -> np.ndarray | None:
    """``shape``'s contiguous layout at ``t``'s place in its storage, as torch lays out a resized tensor,
    where it fits there without growing: a view of the same memory, or None. The storage is the memory
    of the tensor that ``t`` is a view of (its own array's for a tensor that is none); a host array."""
    a = t.array
    owner = getattr(t, "_view_of", None)
    storage = owner.array if isinstance(owner, Tensor) else a
    if type(storage) is not np.ndarray or not storage.flags.c_contiguous or not a.size:
        return None
    offset = _address(a) - _address(storage)
    if offset < 0 or offset % a.itemsize or offset + n * a.itemsize > storage.nbytes:
        return None
    if storage is a and a.flags.c_contiguous and n >= a.size:
        return None  # its own memory, the same size (the caller's reshape) or grown (a new array)
    if owner is not None and storage is not a and not a.flags.writeable:
        return None  # a read-only view (an expanded one): torch's resize would write through it
    memory = storage.reshape(-1).view(np.uint8)
    return memory[offset : offset + n * a.itemsize].view(a.dtype).reshape(shape)


def resize_as_(t: Tensor, other: Any, name: str = "resize_as_") -> Tensor:
    """Give ``t`` the shape of ``other`` in place, as torch's ``t.resize_as_(other)``; see :func:`resize_`."""
    if not isinstance(other, Tensor):
        raise ArgumentTypeError(f"{name}: expected a Tensor to take the shape of, got {type(other).__name__}")
    return resize_(t, tuple(other.shape), name)
