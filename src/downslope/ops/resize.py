"""PyTorch's ``Tensor.resize_`` / ``resize_as_`` where a tensor that wraps one array can do them.

torch resizes a tensor's storage in place: the elements it keeps stay first (in memory order), and
memory it adds is uninitialized. Pre-1.0 code builds tensors this way
(``y = x.data.new(); y.resize_as_(x); y.fill_(1)``). Here a tensor owns one array, so:

- the same number of elements on a contiguous array: the array is reshaped in place (still the same
  memory, so anything sharing it sees the new shape's values as torch's would);
- another number of elements: the tensor gets a new array holding the first elements of the old one
  and zeros after them (torch leaves them uninitialized). Refused when another live tensor shares the
  array (a view, a ``.data`` or ``detach()`` alias), since that one would not see the new memory;
- refused for a tensor that requires grad or is part of a graph, as torch refuses ("cannot resize
  variables that require grad"), and for a non-contiguous array, whose storage order torch would
  expose.
"""

from __future__ import annotations

import math
from typing import Any

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
    if not a.flags.c_contiguous:
        raise StateError(
            f"{name}: cannot resize a non-contiguous tensor (shape {tuple(a.shape)}, e.g. a transposed or strided "
            f"view) to {shape}: torch would expose its storage order; resize t.contiguous(), or {_WAY}"
        )
    xp = namespace_of(a)
    n = math.prod(shape)
    if n == a.size:
        t.array = xp.reshape(a, shape)  # contiguous: a view of the same memory
        _bump(t)
        return t
    if a.size and (_is_view_in_graph(t) or _is_plain_view(t) or (t._vc is not None and not _only_holder(t))):
        raise ShapeError(
            f"{name}: cannot resize a tensor whose memory another tensor shares (a view, or a .data/detach() "
            f"alias) from {a.size} to {n} elements (shape {tuple(a.shape)} to {shape}): downslope cannot grow "
            f"or shrink memory that another tensor sees; {_WAY}"
        )
    new = xp.zeros(shape, dtype=a.dtype)  # torch leaves the added memory uninitialized: zeros are one such value
    kept = min(n, a.size)
    if kept:
        new.reshape(-1)[:kept] = a.reshape(-1)[:kept]
    t.array = new
    _bump(t)
    return t


def resize_as_(t: Tensor, other: Any, name: str = "resize_as_") -> Tensor:
    """Give ``t`` the shape of ``other`` in place, as torch's ``t.resize_as_(other)``; see :func:`resize_`."""
    if not isinstance(other, Tensor):
        raise ArgumentTypeError(f"{name}: expected a Tensor to take the shape of, got {type(other).__name__}")
    return resize_(t, tuple(other.shape), name)
