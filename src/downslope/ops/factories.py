"""Index and range factories without gradients: torch.range (the inclusive one), the indices of a
matrix's triangles, and flat indices unravelled into coordinates.
"""

from __future__ import annotations

import builtins
import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import backend
from ..backend import namespace_of
from ..errors import ArgumentError, ArgumentTypeError, OutOfRangeError
from ..tensor import Tensor, _made, wrap_array
from ..tensor import as_tensor as _as_tensor
from .indexing import _index_range
from .operands import _lift
from .pointwise import clone as _clone


def range(
    start: Any,
    end: Any,
    step: Any = 1,
    *,
    dtype: Any = None,
    layout: Any = None,
    device: Any = None,
    requires_grad: bool = False,
) -> Tensor:
    """Values from ``start`` to ``end`` *inclusive*, ``step`` apart, in the default float dtype unless
    ``dtype`` says otherwise (torch.range, deprecated there, and here, for :func:`arange`, which
    leaves ``end`` out). It warns as torch does.

    Example:
        >>> import warnings, downslope as ds
        >>> with warnings.catch_warnings():
        ...     warnings.simplefilter("ignore")
        ...     ds.range(1, 2, 0.5)
        tensor([1. , 1.5, 2. ])
    """
    warnings.warn(
        "ds.range is deprecated, as torch.range is, because it includes end, unlike Python's range: use "
        "ds.arange, which produces values in [start, end)",
        UserWarning,
        stacklevel=2,
    )
    bounds = [v.item() if isinstance(v, Tensor) else v for v in (start, end, step)]  # host: the bounds
    for name, v in zip(("start", "end", "step"), bounds):
        if isinstance(v, (str, bytes, bool)) or not isinstance(v, (int, float, np.integer, np.floating)):
            raise ArgumentTypeError(f"range: {name} must be a number, got {type(v).__name__} ({v!r})")
    out_dtype = backend.get_default_dtype() if dtype is None else backend.as_dtype(dtype)
    integral = out_dtype.kind in "iu"
    lo, hi, by = bounds
    if by != 0 and (hi - lo) * by < 0:  # checked on the values given, as torch does
        raise ArgumentError(
            f"range: upper bound and lower bound inconsistent with step sign (start={lo}, end={hi}, step={by})"
        )
    # for an integer dtype torch casts the bounds first (toward zero), then counts in integers
    lo, hi, by = (int(v) for v in bounds) if integral else bounds
    if by == 0:
        raise ArgumentError(
            f"range: step must be nonzero (got {bounds[2]!r}{' as ' + str(out_dtype) if integral else ''})"
        )
    arr: np.ndarray
    if integral:
        count = (hi - lo) // by + 1  # the same sign on both sides: floor is torch's truncation
        arr = np.arange(count, dtype=np.int64) * by + lo  # host: a factory, placed by _made
    else:
        count = int(math.floor((float(hi) - float(lo)) / float(by))) + 1  # host: Python numbers; torch counts in double
        arr = float(lo) + np.arange(count, dtype=np.float64) * float(by)  # host: a factory, placed by _made
    return _made(arr.astype(out_dtype), requires_grad, device, "range()")


def _triangle_indices(which: str, row: Any, col: Any, offset: Any, dtype: Any, device: Any) -> Tensor:
    for name, v in (("row", row), ("col", col), ("offset", offset)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise ArgumentTypeError(f"{which}_indices: {name} must be an int, got {type(v).__name__} ({v!r})")
    for name, v in (("row", row), ("col", col)):
        if v < 0:
            raise ArgumentError(f"{which}_indices: {name} must be non-negative, got {v}")
    out_dtype = backend.int64 if dtype is None else backend.as_dtype(dtype)
    if out_dtype not in (backend.int64, backend.int32):
        raise ArgumentTypeError(f"{which}_indices: dtype must be int64 or int32, got {out_dtype}")
    pick = np.tril_indices if which == "tril" else np.triu_indices
    rows, cols = pick(int(row), int(offset), int(col))  # row-major order, as torch
    arr = np.stack([rows, cols]).astype(out_dtype)  # host: a factory, placed by _made
    return _made(arr, False, device, f"{which}_indices()")


def tril_indices(
    row: int, col: int, offset: int = 0, *, dtype: Any = None, device: Any = None, layout: Any = None
) -> Tensor:
    """The coordinates of the lower triangle (on and below diagonal ``offset``) of a ``row`` x ``col``
    matrix, as a ``(2, N)`` int64 tensor of rows then columns, in row-major order (torch.tril_indices).

    Example:
        >>> import downslope as ds
        >>> ds.tril_indices(2, 2)
        tensor([[0, 1, 1],
                [0, 0, 1]])
    """
    return _triangle_indices("tril", row, col, offset, dtype, device)


def triu_indices(
    row: int, col: int, offset: int = 0, *, dtype: Any = None, device: Any = None, layout: Any = None
) -> Tensor:
    """The coordinates of the upper triangle (on and above diagonal ``offset``) of a ``row`` x ``col``
    matrix, as a ``(2, N)`` int64 tensor of rows then columns, in row-major order (torch.triu_indices).

    Example:
        >>> import downslope as ds
        >>> ds.triu_indices(2, 2)
        tensor([[0, 0, 1],
                [0, 1, 1]])
    """
    return _triangle_indices("triu", row, col, offset, dtype, device)


def unravel_index(indices: Any, shape: int | Sequence[int]) -> tuple[Tensor, ...]:
    """The coordinates, one int64 tensor per dim of ``shape``, of the flat (row-major) ``indices``
    into a tensor of that shape (torch.unravel_index). Negative indices count from the end; an index
    outside ``[-prod(shape), prod(shape))`` is an error (torch wraps it silently).

    Example:
        >>> import downslope as ds
        >>> ds.unravel_index(ds.tensor([4, 1]), (3, 2))
        (tensor([2, 0]), tensor([0, 1]))
    """
    idx = _lift(indices)
    if idx.array.dtype.kind not in "iu":
        raise ArgumentTypeError(f"unravel_index: expected 'indices' to be integer dtype, but got {idx.array.dtype}")
    dims = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    if not builtins.all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) for s in dims):
        raise ArgumentTypeError(f"unravel_index: shape must be an int or a sequence of ints, got {shape!r}")
    dims = tuple(int(s) for s in dims)
    if builtins.any(s < 0 for s in dims):
        raise ArgumentError(f"unravel_index: 'shape' cannot have negative values, but got {dims}")
    if not dims:
        return ()
    xp = namespace_of(idx.array)
    flat = idx.array.astype(np.int64)
    total = math.prod(dims)
    if flat.size:
        lo, hi = _index_range(flat)  # one check of the range (a sync on a device)
        if lo < -total or hi >= total:
            bad = lo if lo < -total else hi
            raise OutOfRangeError(
                f"unravel_index: index {bad} is out of range for shape {dims} ({total} elements); "
                f"expected indices in [{-total}, {total})"
            )
        if lo < 0:
            flat = xp.where(flat < 0, flat + total, flat)
    coords = []
    for s in reversed(dims):
        coords.append(flat % s)
        flat = flat // s
    return tuple(wrap_array(c) for c in reversed(coords))


def asarray(
    obj: Any, *, dtype: Any = None, device: Any = None, copy: bool | None = None, requires_grad: bool | None = None
) -> Tensor:
    """``obj`` as a tensor, sharing its memory where it can (torch.asarray): a tensor, a NumPy array or a
    device array is shared unless ``copy=True`` (always a copy) or a change of dtype or device makes a
    copy needed; ``copy=False`` then raises ValueError rather than copy. Data other than arrays (lists,
    scalars) is always copied, so ``copy=False`` refuses it. The dtype policy is ``as_tensor``'s:
    floating data becomes the default dtype (float32) and integers int64 unless ``dtype`` is given.
    ``requires_grad`` (when given) is set on the result, which may be ``obj`` itself, as in torch.

    Example:
        >>> import numpy as np, downslope as ds
        >>> a = np.zeros(2, np.float32)
        >>> t = ds.asarray(a, copy=False); a[0] = 5
        >>> t.tolist(), ds.asarray(a, copy=True).tolist() == t.tolist()
        ([5.0, 0.0], True)
    """
    if copy not in (None, True, False):
        raise ArgumentTypeError(f"asarray: copy must be True, False or None, got {copy!r}")
    source = obj.array if isinstance(obj, Tensor) else obj
    is_array = isinstance(obj, Tensor) or hasattr(source, "__array_interface__") or hasattr(source, "__dlpack__")
    if copy is False and (not is_array or isinstance(obj, np.generic)):
        raise ArgumentError(
            f"asarray(copy=False): can't alias {type(obj).__name__} data into a tensor (only tensors and arrays "
            "share memory); leave copy unset to copy it"
        )
    t = _as_tensor(obj, dtype=dtype, device=device)
    shares = is_array and (t is obj or np.may_share_memory(t.array, source))  # host: a memory-bounds test
    if copy is False and not shares:
        hint = " (pass dtype= to keep the array's dtype)" if dtype is None and source.dtype != t.dtype else ""
        raise ArgumentError(
            f"asarray(copy=False): can't alias {type(obj).__name__} of dtype {source.dtype} on "
            f"{_device_name(source)} into a tensor of dtype {t.dtype} on {t.device} without a copy{hint}"
        )
    if copy is True and shares:
        t = _clone(t) if t.requires_grad else wrap_array(t.array.copy())
    if requires_grad is not None and t.requires_grad != requires_grad:
        if requires_grad or t.is_leaf:
            t.requires_grad_(requires_grad)
        else:
            t = t.detach()
    return t


def _device_name(array: Any) -> str:
    return "cpu" if isinstance(array, np.ndarray) else str(getattr(array, "device", "cpu"))
