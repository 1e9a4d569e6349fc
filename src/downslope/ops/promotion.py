"""torch's type-promotion queries (``promote_types``, ``result_type``, ``can_cast``), answered by the
rules downslope's own ops follow, so a query and the op it predicts cannot disagree.

``result_type`` hands small stand-ins of its operands (an array of one element for a tensor with
dims, a 0-d array for a 0-d tensor, a zero of the same Python type for a number) to ``_pair``, which
every binary op calls to lift and promote its operands, and reads the dtype the op's kernel would
compute in. ``can_cast`` is the check the in-place ops and ``out=`` make (torch's canCast).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import backend
from ..errors import ArgumentTypeError
from ..tensor import Tensor, _torch_can_cast, wrap_array
from .complex import pair as _pair  # operands' pair, with torch's rule for complex operands

# bfloat16 is a name without tensors here (NumPy has no such type): its promotions are torch's,
# written out; with an integer or bool it stays bfloat16, with float16 it meets in float32.
_BFLOAT16_WITH = {"b": "bfloat16", "i": "bfloat16", "u": "bfloat16"}


def _dtype(value: Any, fn: str, arg: str) -> Any:
    """``value`` as a NumPy dtype (or the bfloat16 placeholder); anything that is not a dtype is refused
    with a TypeError, as torch refuses it."""
    if isinstance(value, backend._NoSuchDtype):
        return value
    if isinstance(value, np.dtype):
        dtype = value
    elif isinstance(value, type) and issubclass(value, np.generic):  # np.float32, accepted where dtypes are
        dtype = np.dtype(value)
    elif value is bool or value is int or value is float:  # torch reads them as bool, int64, float64
        dtype = np.dtype(np.int64) if value is int else np.dtype(value)
    else:
        given = value.__name__ if isinstance(value, type) else type(value).__name__
        raise ArgumentTypeError(f"{fn}(): argument '{arg}' must be a dtype, not {given}")
    if dtype.kind not in "biufc":
        raise ArgumentTypeError(
            f"{fn}(): argument '{arg}' must be a bool, integer, floating or complex dtype, not {dtype}"
        )
    return dtype


def _is_bfloat16(dtype: Any) -> bool:
    return isinstance(dtype, backend._NoSuchDtype)


def _stand_in(x: Any, position: int) -> Any:
    """A stand-in for ``x`` with what promotion reads of it: a tensor's dtype and whether it has dims,
    a number's Python type. NumPy scalars count as numbers, as torch takes them."""
    if isinstance(x, Tensor):
        shape = () if x.ndim == 0 else (1,)
        return wrap_array(np.zeros(shape, dtype=x.array.dtype))  # host: a stand-in, only its dtype is read
    if isinstance(x, np.generic) and x.dtype.kind in "biufc":
        x = x.item()  # host: a NumPy scalar the caller gave, made a Python number
    if type(x) is bool or type(x) is int or type(x) is float or type(x) is complex:
        return type(x)(0)
    raise ArgumentTypeError(
        f"result_type(): argument {position} must be a tensor or a Python bool, int or float (or complex), not {type(x).__name__}"
    )


def result_type(tensor1: Any, tensor2: Any) -> np.dtype:
    """The dtype of an arithmetic op of ``tensor1`` and ``tensor2`` (torch.result_type): tensors,
    0-d tensors and Python numbers in any combination, by torch's categories (bool < integer <
    floating). A tensor with dims decides within its category; a 0-d tensor or a number of a higher
    category lifts it (a 0-d tensor to its own dtype, a float number to the default dtype).

    Example:
        >>> import downslope as ds
        >>> ds.result_type(ds.tensor([1, 2]), 2.5), ds.result_type(ds.tensor([1], dtype=ds.int8), 1000)
        (dtype('float32'), dtype('int8'))
    """
    a, b = _pair(_stand_in(tensor1, 1), _stand_in(tensor2, 2))
    return np.result_type(a.array.dtype, b.array.dtype)


def promote_types(type1: Any, type2: Any) -> Any:
    """The smallest dtype both ``type1`` and ``type2`` promote to (torch.promote_types): the wider
    float when either is floating (int64 with float32 is float32), else the integer that holds both
    (uint8 with int8 is int16); bool yields to anything.

    Example:
        >>> import downslope as ds
        >>> ds.promote_types(ds.int64, ds.float32), ds.promote_types(ds.uint8, ds.int8)
        (dtype('float32'), dtype('int16'))
    """
    d1, d2 = _dtype(type1, "promote_types", "type1"), _dtype(type2, "promote_types", "type2")
    if _is_bfloat16(d1) or _is_bfloat16(d2):
        other = d2 if _is_bfloat16(d1) else d1
        if _is_bfloat16(other) or other.kind in _BFLOAT16_WITH:
            return backend.bfloat16
        return np.dtype(np.float32) if other.itemsize < 4 else other
    return result_type(wrap_array(np.zeros(1, dtype=d1)), wrap_array(np.zeros(1, dtype=d2)))  # host: stand-ins


def can_cast(from_: Any, to: Any) -> bool:
    """Whether an op may write a result of dtype ``from_`` into a tensor of dtype ``to`` (torch.can_cast):
    not into a lower category (floating into integer, anything but bool into bool); within a category
    any cast is allowed, narrowing included.

    Example:
        >>> import downslope as ds
        >>> ds.can_cast(ds.float64, ds.float16), ds.can_cast(ds.float32, ds.int64)
        (True, False)
    """
    src, dst = _dtype(from_, "can_cast", "from_"), _dtype(to, "can_cast", "to")
    # bfloat16 casts as the floating category it belongs to
    return _torch_can_cast(
        np.float32 if _is_bfloat16(src) else src,
        np.float32 if _is_bfloat16(dst) else dst,
    )
