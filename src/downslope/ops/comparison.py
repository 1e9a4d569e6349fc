"""Comparisons, predicates and logical ops: results that carry no gradient."""

from __future__ import annotations

from typing import Any

import numpy as np

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
