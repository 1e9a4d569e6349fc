"""Comparisons, predicates and logical ops: results that carry no gradient."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..backend import namespace_of
from ..devices import like
from ..errors import ArgumentTypeError
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


def allclose(a: Any, b: Any, rtol: float = 1e-5, atol: float = 1e-8, equal_nan: bool = False) -> bool:
    return _lift(a).allclose(b, rtol, atol, equal_nan)


def isclose(a: Any, b: Any, rtol: float = 1e-5, atol: float = 1e-8, equal_nan: bool = False) -> Tensor:
    return _lift(a).isclose(b, rtol, atol, equal_nan)


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
                [ True, False]], dtype=bool)
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
