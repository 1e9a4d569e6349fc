"""Comparisons, predicates and logical ops: results that carry no gradient."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..backend import namespace_of
from ..devices import like
from ..errors import ArgumentTypeError, DTypeError
from ..tensor import Tensor, wrap_array
from .operands import _data_of_index, _lift


def eq(a: Any, b: Any) -> Tensor:
    return _lift(a).eq(b)


def ne(a: Any, b: Any) -> Tensor:
    return _lift(a).ne(b)


def lt(a: Any, b: Any) -> Tensor:
    return _lift(a).lt(b)


def le(a: Any, b: Any) -> Tensor:
    return _lift(a).le(b)


def gt(a: Any, b: Any) -> Tensor:
    return _lift(a).gt(b)


def ge(a: Any, b: Any) -> Tensor:
    return _lift(a).ge(b)


def equal(a: Any, b: Any) -> bool:
    return _lift(a).equal(b)


# torch's names of dtypes, for the messages that quote torch
_TORCH_DTYPE_NAMES = {
    "float32": "Float",
    "float64": "Double",
    "float16": "Half",
    "int64": "Long",
    "int32": "Int",
    "int16": "Short",
    "int8": "Char",
    "uint8": "Byte",
    "bool": "Bool",
    "complex64": "ComplexFloat",
    "complex128": "ComplexDouble",
}


def _close_operands(a: Any, b: Any) -> tuple[Any, Any]:
    """The arrays isclose/allclose compare. Two tensors must have one dtype, as in torch (which does
    not promote here: isclose(int tensor, float tensor) raises "Long did not match Float"); a number
    is compared as it is."""
    x = _lift(a)
    if isinstance(b, Tensor) and b.array.dtype != x.array.dtype:
        mine, theirs = x.array.dtype.name, b.array.dtype.name
        raise DTypeError(
            f"isclose/allclose: {_TORCH_DTYPE_NAMES.get(mine, mine)} did not match {_TORCH_DTYPE_NAMES.get(theirs, theirs)} "
            f"(the tensors have dtypes {mine} and {theirs}; cast one with .to(other.dtype))"
        )
    return x.array, b.array if isinstance(b, Tensor) else b


def allclose(a: Any, b: Any, rtol: float = 1e-5, atol: float = 1e-8, equal_nan: bool = False) -> bool:
    """Whether every element of ``a`` is within ``atol + rtol * |b|`` of ``b``'s (torch.allclose): two
    tensors of one dtype.

    Example:
        >>> import downslope as ds
        >>> ds.allclose(ds.tensor([1.0, 2.0]), ds.tensor([1.0, 2.0 + 1e-7]))
        True
    """
    x, y = _close_operands(a, b)
    return bool(np.allclose(x, y, rtol=rtol, atol=atol, equal_nan=equal_nan))  # host: a Python answer, as torch


def isclose(a: Any, b: Any, rtol: float = 1e-5, atol: float = 1e-8, equal_nan: bool = False) -> Tensor:
    """Elementwise ``|a - b| <= atol + rtol * |b|`` (torch.isclose): two tensors of one dtype.

    Example:
        >>> import downslope as ds
        >>> ds.isclose(ds.tensor([1.0, 2.0]), ds.tensor([1.0, 2.1]))
        tensor([ True, False])
    """
    x, y = _close_operands(a, b)
    return wrap_array(np.isclose(x, y, rtol=rtol, atol=atol, equal_nan=equal_nan))


def isnan(x: Any) -> Tensor:
    return _lift(x).isnan()


def isinf(x: Any) -> Tensor:
    return _lift(x).isinf()


def isfinite(x: Any) -> Tensor:
    return _lift(x).isfinite()


def logical_not(x: Any) -> Tensor:
    return _lift(x).logical_not()


def logical_and(a: Any, b: Any) -> Tensor:
    return _lift(a).logical_and(b)


def logical_or(a: Any, b: Any) -> Tensor:
    return _lift(a).logical_or(b)


def numel(x: Any) -> int:
    return _lift(x).numel()


def is_floating_point(x: Any) -> bool:
    return _lift(x).is_floating_point()


def signbit(x: Any) -> Tensor:
    return wrap_array(np.signbit(_lift(x).array))


def isneginf(x: Any) -> Tensor:
    return wrap_array(np.isneginf(_lift(x).array))


def isposinf(x: Any) -> Tensor:
    return wrap_array(np.isposinf(_lift(x).array))


def logical_xor(a: Any, b: Any) -> Tensor:
    return wrap_array(np.logical_xor(_lift(a).array, _data_of_index(b)))


def isin(elements: Any, test_elements: Any, *, assume_unique: bool = False, invert: bool = False) -> Tensor:
    """Whether each of ``elements`` is among ``test_elements`` (torch.isin; either may be a number);
    ``invert`` gives the opposite. No gradient.

    Example:
        >>> import downslope as ds
        >>> ds.isin(ds.tensor([[1, 2], [3, 4]]), ds.tensor([2, 3]))
        tensor([[False,  True],
                [ True, False]])
    """
    if not isinstance(elements, Tensor) and not isinstance(test_elements, Tensor):
        raise ArgumentTypeError("isin: expected at least one of elements and test_elements to be a tensor")
    a = _lift(elements).array
    b = _lift(test_elements).array
    # a number given for one side joins the tensor's device
    if not isinstance(elements, Tensor):
        a = like(a, b)
    elif not isinstance(test_elements, Tensor):
        b = like(b, a)
    xp = namespace_of(a)
    return wrap_array(xp.isin(a, b.reshape(-1), assume_unique=assume_unique, invert=invert))


def is_nonzero(x: Any) -> bool:
    """Whether the one element of ``x`` is nonzero (torch.is_nonzero); more or fewer elements is an error.

    Example:
        >>> import downslope as ds
        >>> ds.is_nonzero(ds.tensor([0.5]))
        True
    """
    return _lift(x).is_nonzero()


def is_same_size(x: Any, other: Any) -> bool:
    """Whether the two tensors have the same shape (torch.is_same_size).

    Example:
        >>> import downslope as ds
        >>> ds.is_same_size(ds.zeros(2, 3), ds.ones(2, 3))
        True
    """
    return _lift(x).shape == _lift(other).shape


def is_signed(x: Any) -> bool:
    """Whether the dtype is signed (torch.is_signed: floats and signed integers; bool and uint8 are not).

    Example:
        >>> import downslope as ds
        >>> ds.is_signed(ds.tensor([1], dtype=ds.uint8))
        False
    """
    return _lift(x).is_signed()


def is_neg(x: Any) -> bool:
    """torch.is_neg: whether the tensor is a lazy negation view; never here (negation is computed).

    Example:
        >>> import downslope as ds
        >>> ds.is_neg(ds.ones(2))
        False
    """
    _lift(x)
    return False
