"""PyTorch's ``*_copy`` functions: the view ops (``transpose``, ``select``, ``narrow``...) whose result
has memory of its own, so that a write to the result never reaches the input (and one to the input
never reaches the result). Each is the view op followed by a copy, so the gradient is the view op's.

Example:
    >>> import downslope as ds
    >>> x = ds.zeros(2, 3)
    >>> y = ds.transpose_copy(x, 0, 1)
    >>> _ = y.fill_(1.0)
    >>> x.sum().item(), y.shape
    (0.0, downslope.Size([3, 2]))
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import backend
from ..errors import ArgumentError, ArgumentTypeError
from ..tensor import Tensor
from .indexing import getitem, select
from .linalg import diagonal
from .operands import _dim, _lift
from .pointwise import clone
from .rearrange import narrow, split, split_with_sizes, unbind
from .shape import broadcast_to, permute, reshape, squeeze, t, transpose, unsqueeze

__all__ = [
    "alias_copy",
    "detach_copy",
    "diagonal_copy",
    "expand_copy",
    "narrow_copy",
    "permute_copy",
    "select_copy",
    "slice_copy",
    "split_copy",
    "split_with_sizes_copy",
    "squeeze_copy",
    "t_copy",
    "transpose_copy",
    "unbind_copy",
    "unsqueeze_copy",
    "view_copy",
]


def _int(value: Any, name: str, what: str) -> int:
    """An integer argument (a Python or NumPy int, or a one-element integer tensor), checked."""
    if isinstance(value, Tensor) and value.numel() == 1 and value.array.dtype.kind in "iu":
        return int(value.item())  # host: a size or position fixes the result's shape
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ArgumentTypeError(f"{name}(): argument '{what}' must be int, not {type(value).__name__}")
    return int(value)


def _sizes(value: Any, name: str, what: str) -> tuple[int, ...]:
    """A sequence of integers (torch's ``int[]`` arguments)."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return (int(value),)
    if not isinstance(value, Sequence) or isinstance(value, str):
        raise ArgumentTypeError(f"{name}(): argument '{what}' must be a sequence of ints, not {type(value).__name__}")
    return tuple(_int(v, name, what) for v in value)


def alias_copy(input: Any) -> Tensor:
    """A copy of ``input`` with its own memory (``torch.alias_copy``); the gradient passes through.

    Example:
        >>> import downslope as ds
        >>> ds.alias_copy(ds.tensor([1.0, 2.0]))
        tensor([1., 2.])
    """
    return clone(_lift(input))


def detach_copy(input: Any) -> Tensor:
    """A copy of ``input`` outside the graph, with its own memory (``torch.detach_copy``).

    Example:
        >>> import downslope as ds
        >>> ds.detach_copy(ds.tensor([1.0], requires_grad=True)).requires_grad
        False
    """
    return clone(_lift(input).detach())


def diagonal_copy(input: Any, offset: int = 0, dim1: int = 0, dim2: int = 1) -> Tensor:
    """:func:`downslope.diagonal` into new memory.

    Example:
        >>> import downslope as ds
        >>> ds.diagonal_copy(ds.arange(9.0).reshape(3, 3), 1)
        tensor([1., 5.])
    """
    name = "diagonal_copy"
    return clone(
        diagonal(_lift(input), _int(offset, name, "offset"), _int(dim1, name, "dim1"), _int(dim2, name, "dim2"))
    )


def expand_copy(input: Any, size: Any, *, implicit: bool = False) -> Tensor:
    """``input.expand(size)`` into new memory (every repeated element a copy of its own); ``implicit``
    is accepted, as in torch, and changes nothing.

    Example:
        >>> import downslope as ds
        >>> ds.expand_copy(ds.tensor([[1.0], [2.0]]), (2, 3))
        tensor([[1., 1., 1.],
                [2., 2., 2.]])
    """
    return clone(broadcast_to(_lift(input), _sizes(size, "expand_copy", "size")))


def permute_copy(input: Any, dims: Any) -> Tensor:
    """:func:`downslope.permute` into new memory.

    Example:
        >>> import downslope as ds
        >>> ds.permute_copy(ds.zeros(2, 3, 4), (2, 0, 1)).shape
        downslope.Size([4, 2, 3])
    """
    return clone(permute(_lift(input), _sizes(dims, "permute_copy", "dims")))


def select_copy(input: Any, dim: int, index: int) -> Tensor:
    """:func:`downslope.select` (the slice ``index`` along ``dim``) into new memory.

    Example:
        >>> import downslope as ds
        >>> ds.select_copy(ds.arange(6.0).reshape(2, 3), 1, -1)
        tensor([2., 5.])
    """
    return clone(select(_lift(input), _int(dim, "select_copy", "dim"), _int(index, "select_copy", "index")))


def slice_copy(input: Any, dim: int = 0, start: Any = None, end: Any = None, step: int = 1) -> Tensor:
    """``input[start:end:step]`` along ``dim`` into new memory (``torch.slice_copy``): out-of-range
    bounds are clipped, as in Python's slicing; ``step`` must be positive.

    Example:
        >>> import downslope as ds
        >>> ds.slice_copy(ds.arange(6.0).reshape(2, 3), 1, None, None, 2)
        tensor([[0., 2.],
                [3., 5.]])
    """
    x = _lift(input)
    name = "slice_copy"
    d = _dim(_int(dim, name, "dim"), x.ndim, name)
    start = None if start is None else _int(start, name, "start")
    end = None if end is None else _int(end, name, "end")
    step = _int(step, name, "step")
    if step <= 0:
        raise ArgumentError(f"slice_copy(): slice step must be positive, got {step}")
    return clone(getitem(x, (slice(None),) * d + (slice(start, end, step),)))


def split_copy(input: Any, split_size: int, dim: int = 0) -> tuple[Tensor, ...]:
    """:func:`downslope.split` into pieces of ``split_size`` (the last may be smaller), each with its
    own memory.

    Example:
        >>> import downslope as ds
        >>> [p.shape for p in ds.split_copy(ds.zeros(5, 2), 2)]
        [downslope.Size([2, 2]), downslope.Size([2, 2]), downslope.Size([1, 2])]
    """
    size = _int(split_size, "split_copy", "split_size")
    x = _lift(input)
    d = _dim(_int(dim, "split_copy", "dim"), x.ndim, "split_copy")
    if size < 0 or (size == 0 and x.shape[d] != 0):
        raise ArgumentError(
            f"split_copy(): split_size can only be 0 if dimension size is 0, and never negative; got split_size "
            f"{size} for dimension {d} of size {x.shape[d]}"
        )
    return tuple(clone(p) for p in split(x, size, d))


def split_with_sizes_copy(input: Any, split_sizes: Any, dim: int = 0) -> tuple[Tensor, ...]:
    """:func:`downslope.split_with_sizes` (pieces of the sizes given, which add up to the dim's size),
    each with its own memory.

    Example:
        >>> import downslope as ds
        >>> [p.shape for p in ds.split_with_sizes_copy(ds.zeros(5, 2), [1, 4])]
        [downslope.Size([1, 2]), downslope.Size([4, 2])]
    """
    sizes = _sizes(split_sizes, "split_with_sizes_copy", "split_sizes")
    return tuple(clone(p) for p in split_with_sizes(_lift(input), sizes, _int(dim, "split_with_sizes_copy", "dim")))


def squeeze_copy(input: Any, dim: Any = None) -> Tensor:
    """:func:`downslope.squeeze` (all size-1 dims, or those of ``dim``: an int or a tuple) into new memory.

    Example:
        >>> import downslope as ds
        >>> ds.squeeze_copy(ds.zeros(1, 2, 1), (0, 2)).shape
        downslope.Size([2])
    """
    if dim is not None and not isinstance(dim, (int, np.integer)):
        dim = _sizes(dim, "squeeze_copy", "dim")
    return clone(squeeze(_lift(input), dim))


def t_copy(input: Any) -> Tensor:
    """:func:`downslope.t` (a matrix transposed; 0-d and 1-d tensors as they are) into new memory.

    Example:
        >>> import downslope as ds
        >>> ds.t_copy(ds.zeros(2, 3)).shape
        downslope.Size([3, 2])
    """
    return clone(t(_lift(input)))


def transpose_copy(input: Any, dim0: int, dim1: int) -> Tensor:
    """:func:`downslope.transpose` (two dims swapped) into new memory.

    Example:
        >>> import downslope as ds
        >>> ds.transpose_copy(ds.zeros(2, 3, 4), 0, 2).shape
        downslope.Size([4, 3, 2])
    """
    return clone(transpose(_lift(input), _int(dim0, "transpose_copy", "dim0"), _int(dim1, "transpose_copy", "dim1")))


def unbind_copy(input: Any, dim: int = 0) -> tuple[Tensor, ...]:
    """:func:`downslope.unbind` (the slices along ``dim``), each with its own memory.

    Example:
        >>> import downslope as ds
        >>> ds.unbind_copy(ds.tensor([[1.0, 2.0], [3.0, 4.0]]), 1)
        (tensor([1., 3.]), tensor([2., 4.]))
    """
    return tuple(clone(p) for p in unbind(_lift(input), _int(dim, "unbind_copy", "dim")))


def unsqueeze_copy(input: Any, dim: int) -> Tensor:
    """:func:`downslope.unsqueeze` (a size-1 dim inserted at ``dim``) into new memory.

    Example:
        >>> import downslope as ds
        >>> ds.unsqueeze_copy(ds.zeros(2, 3), -1).shape
        downslope.Size([2, 3, 1])
    """
    return clone(unsqueeze(_lift(input), _int(dim, "unsqueeze_copy", "dim")))


def view_copy(input: Any, size: Any) -> Tensor:
    """``input.view(size)`` into new memory (``torch.view_copy``). As in torch, the input need not be
    laid out in order (a transposed tensor is copied in the new shape); ``size`` may hold one -1.
    A dtype instead of a size reinterprets the bytes, as ``input.view(dtype)`` (no gradient).

    Example:
        >>> import downslope as ds
        >>> ds.view_copy(ds.arange(6.0).reshape(2, 3).t(), (6,))
        tensor([0., 3., 1., 4., 2., 5.])
    """
    x = _lift(input)
    if isinstance(size, (Sequence, int, np.integer)) and not isinstance(size, (str, bool)):
        return clone(reshape(x, _sizes(size, "view_copy", "size")))
    try:
        dtype = backend.as_dtype(size)
    except Exception:
        raise ArgumentTypeError(
            f"view_copy(): expected a size (a sequence of ints) or a dtype, got {type(size).__name__} ({size!r})"
        ) from None
    return clone(x.contiguous().view(dtype))


def narrow_copy(input: Any, dim: int, start: Any, length: int) -> Tensor:
    """:func:`downslope.narrow` (``length`` elements from ``start`` along ``dim``) into new memory.

    Example:
        >>> import downslope as ds
        >>> ds.narrow_copy(ds.arange(6.0).reshape(2, 3), 1, -1, 1)
        tensor([[2.],
                [5.]])
    """
    name = "narrow_copy"
    return clone(narrow(_lift(input), _int(dim, name, "dim"), _int(start, name, "start"), _int(length, name, "length")))


# The Tensor methods torch has among these (x.narrow_copy(dim, start, length)).
METHODS = {"narrow_copy": narrow_copy}
