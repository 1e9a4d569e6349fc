"""What every loss shares: the reduction argument, input and target checks, PyTorch's legacy
``size_average``/``reduce`` flags and the ``_Loss`` module base."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar, cast

import numpy as np

from ... import backend, ops
from ...devices import is_array
from ...errors import ArgumentError, ArgumentTypeError, ShapeError
from ...tensor import Tensor, wrap_array
from .._arrays import array_like
from ..module import Module

_REDUCTIONS = ("mean", "sum", "none")


def _check_reduction(reduction: str, fn: str, allowed: tuple[str, ...] = _REDUCTIONS) -> None:
    if reduction not in allowed:
        raise ArgumentError(f"{fn}: reduction must be one of {allowed}, got {reduction!r}")


def _input(x: Any, fn: str) -> Tensor:
    if not isinstance(x, Tensor):
        raise ArgumentTypeError(f"{fn}: expected the input to be a Tensor, got {type(x).__name__}")
    if not backend.is_floating(x.array.dtype):
        raise ArgumentTypeError(f"{fn}: expected a floating-point input, got dtype {x.array.dtype}")
    return x


def _check_operand(value: Any, fn: str, what: str) -> None:
    """Refuse None, strings and other non-numeric junk as a tensor operand, naming the loss (a Python
    conversion error would otherwise surface from inside NumPy)."""
    if isinstance(value, Tensor) or is_array(value):
        return
    if value is None or isinstance(value, (str, bytes, dict, set)):
        raise ArgumentTypeError(f"{fn}: expected the {what} to be a Tensor, got {type(value).__name__}")


def _float_target(target: Any, like: Tensor, fn: str) -> Tensor:
    """The target as a tensor of the input's dtype and exactly the input's shape."""
    _check_operand(target, fn, "target")
    t = target if isinstance(target, Tensor) else wrap_array(array_like(target, like.array, like.array.dtype))
    if t.shape != like.shape:
        raise ShapeError(
            f"{fn}: input shape {like.shape} and target shape {t.shape} differ. Losses do not broadcast "
            "(PyTorch would, with only a warning, and compute a wrong loss); reshape one of them, "
            "e.g. target.reshape(input.shape) or input.squeeze(-1)"
        )
    if t.array.dtype != like.array.dtype:
        t = ops.astype(t, like.array.dtype)  # a float64 or int target must not promote the loss to float64
    return t


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return ops.mean(loss)
    if reduction == "sum":
        return ops.sum(loss)
    return loss


def _class_weight(weight: Any, n_classes: int, like: Tensor, fn: str) -> np.ndarray | None:
    if weight is None:
        return None
    w = array_like(weight, like.array)
    if w.shape != (n_classes,):
        raise ShapeError(f"{fn}: weight must have one entry per class, shape ({n_classes},), got {w.shape}")
    return w.astype(like.array.dtype, copy=False)


def _elementwise_weight(weight: Any, like: Tensor, fn: str) -> Tensor | None:
    if weight is None:
        return None
    w = weight if isinstance(weight, Tensor) else wrap_array(array_like(weight, like.array, like.array.dtype))
    try:
        np.broadcast_shapes(w.shape, like.shape)
    except ValueError:
        raise ShapeError(
            f"{fn}: weight of shape {w.shape} does not broadcast to the input's shape {like.shape}"
        ) from None
    return w


_F = TypeVar("_F", bound=Callable[..., Any])


def _legacy_reduction_name(size_average: bool | None, reduce: bool | None) -> str:
    """PyTorch's mapping of the pre-1.0 flags: reduce=False -> 'none', else size_average=False -> 'sum'."""
    if reduce is not None and not reduce:
        return "none"
    return "sum" if size_average is not None and not size_average else "mean"


def _legacy_reduction(fn: _F) -> _F:
    """Accept ``size_average=`` / ``reduce=`` (old code: ``F.binary_cross_entropy(x, y, size_average=False)``)
    and turn them into ``reduction``, as PyTorch still does (with a deprecation warning there)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, size_average: bool | None = None, reduce: bool | None = None, **kwargs: Any) -> Any:
        if size_average is not None or reduce is not None:
            if "reduction" in kwargs:
                raise ArgumentError(f"{fn.__name__}: give reduction, or the legacy size_average/reduce, not both")
            kwargs["reduction"] = _legacy_reduction_name(size_average, reduce)
        return fn(*args, **kwargs)

    return cast(_F, wrapper)  # the type checker sees the loss's own signature


class _Loss(Module):
    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        init = cls.__dict__.get("__init__")
        if init is not None:
            setattr(cls, "__init__", _legacy_reduction(init))  # noqa: B010

    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        _check_reduction(reduction, type(self).__name__, self._allowed)
        self.reduction = reduction

    _allowed: tuple[str, ...] = _REDUCTIONS
    weight: Tensor | None  # a buffer in the losses that take class or element weights
    pos_weight: Tensor | None

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"


setattr(_Loss, "__init__", _legacy_reduction(_Loss.__init__))  # noqa: B010  (its subclasses are wrapped above)


def _weight_buffer(weight: Any) -> Tensor | None:
    if weight is None:
        return None
    return weight if isinstance(weight, Tensor) else Tensor(weight)  # floats become float32


def _as_input_tensor(x: Any, like: Tensor) -> Tensor:
    return x if isinstance(x, Tensor) else wrap_array(array_like(x, like.array, like.array.dtype))


def _same_shapes(fn: str, **tensors: Tensor) -> None:
    """Refuse operands whose shapes differ: losses do not broadcast (a silently wrong loss otherwise)."""
    shapes = {name: t.shape for name, t in tensors.items()}
    if len(set(shapes.values())) > 1:
        shown = ", ".join(f"{name} {shape}" for name, shape in shapes.items())
        raise ShapeError(f"{fn}: expected operands of the same shape, got {shown}. Losses do not broadcast")


class _WeightedLoss(_Loss):
    """A loss with an optional ``weight`` buffer (per class or per element), as PyTorch's ``_WeightedLoss``."""

    def __init__(self, weight: Any = None, reduction: str = "mean") -> None:
        super().__init__(reduction)
        self.register_buffer("weight", _weight_buffer(weight))
