"""What every loss shares: the reduction argument, input and target checks, PyTorch's legacy
``size_average``/``reduce`` flags and the ``_Loss`` module base."""

from __future__ import annotations

import functools
import math
import warnings
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
    """The target as a tensor of the input's dtype and exactly the input's shape (PyTorch raises on
    any other shape too, in the losses that use this)."""
    _check_operand(target, fn, "target")
    t = target if isinstance(target, Tensor) else wrap_array(array_like(target, like.array, like.array.dtype))
    if t.shape != like.shape:
        raise ShapeError(
            f"{fn}: input shape {tuple(like.shape)} and target shape {tuple(t.shape)} differ; expected the same shape "
            "(PyTorch raises here too). Reshape one of them, e.g. target.reshape(input.shape)"
        )
    if t.array.dtype != like.array.dtype:
        t = ops.astype(t, like.array.dtype)  # a float64 or int target must not promote the loss to float64
    return t


def _squeezed(shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(n for n in shape if n != 1)


def _promoted_float(x: Tensor, t: Tensor, zero_dim_rule: bool = True) -> Any:
    """The dtype torch computes a loss of two floating tensors of different dtypes in, or None when
    nothing promotes. ``zero_dim_rule``: torch's result_type, where a 0-d operand beside a dimensioned
    one does not widen it (the losses torch composes from ops); without it, promote_types (its fused
    mse, l1 and smooth L1 kernels)."""
    a, b = x.array.dtype, t.array.dtype
    if a == b or a.kind != "f" or b.kind != "f":
        return None
    if zero_dim_rule and t.ndim == 0 and x.ndim > 0:
        return a
    if zero_dim_rule and x.ndim == 0 and t.ndim > 0:
        return b
    return np.promote_types(a, b)


def _broadcast_pair(
    input: Tensor,
    target: Any,
    fn: str,
    warn: bool = False,
    reduction: str | None = None,
    promote: str = "",
) -> tuple[Tensor, Tensor]:
    """Input and target (in the input's dtype) broadcast to one shape, where that is harmless.

    PyTorch broadcasts any pair of shapes, which turns the classic mistake, an (N, 1) input against
    an (N,) target, into an (N, N) loss of every input against every target. Only the broadcasts whose
    result is the elementwise loss pass here: a one-element target, or shapes that differ only in
    size-1 dims and broadcast to no more elements than either holds. ``warn`` repeats the UserWarning
    that PyTorch's regression losses give for any size difference; those losses (``warn``) also pass
    any broadcast under ``reduction='none'``, where the caller sees the broadcast shape (pairwise
    losses such as QR-DQN's quantile Huber loss rely on it), while a mean or sum would hide it.
    ``promote``: a floating target of another dtype promotes both, as in the torch losses that do
    ("types": promote_types, as torch's mse, l1, smooth L1; "result": result_type, its 0-d rule included,
    as its poisson/gaussian NLL, KL, margin ranking); "" keeps the input's dtype (huber, hinge)."""
    _check_operand(target, fn, "target")
    x = input
    t = target if isinstance(target, Tensor) else wrap_array(array_like(target, x.array, x.array.dtype))
    wide = _promoted_float(x, t, promote == "result") if promote else None
    if wide is not None and wide != x.array.dtype:
        x = ops.astype(x, wide)
    if t.array.dtype != x.array.dtype:
        t = ops.astype(t, x.array.dtype)  # a float64 or int target must not promote the loss to float64
    if t.shape == x.shape:
        return x, t
    try:
        shape = tuple(np.broadcast_shapes(x.shape, t.shape))
    except ValueError:
        raise ShapeError(
            f"{fn}: input shape {tuple(x.shape)} and target shape {tuple(t.shape)} differ and do not broadcast; "
            "reshape one of them, e.g. target.reshape(input.shape)"
        ) from None
    n, nx, nt = math.prod(shape), math.prod(x.shape), math.prod(t.shape)
    harmless = nt == 1 or (_squeezed(x.shape) == _squeezed(t.shape) and n == nx == nt)
    if not harmless and not (warn and reduction == "none"):
        if n > nx and n > nt:
            why = (
                f"they broadcast to {shape}, pairing every input with every target: PyTorch would compute "
                "that wrong loss" + (" with only a warning" if warn else " silently")
            )
        else:
            bigger, smaller = ("input", "target") if nx >= nt else ("target", "input")
            why = (
                f"they broadcast to {shape}, repeating the {smaller} along the {bigger} (as PyTorch would"
                + (", with a warning)" if warn else ")")
                + "; broadcast only one-element targets implicitly"
            )
        on_purpose = (
            f" (or, for a broadcast loss on purpose, pass reduction='none': it returns the {shape} loss, "
            "with PyTorch's warning)"
            if warn
            else ""
        )
        raise ShapeError(
            f"{fn}: input shape {tuple(x.shape)} and target shape {tuple(t.shape)} differ: {why}. Reshape or expand one "
            "of them explicitly, e.g. target.reshape(input.shape), input.squeeze(-1) or target.expand(input.shape)"
            + on_purpose
        )
    if warn:
        warnings.warn(
            f"Using a target size ({_size(t.shape)}) that is different to the input size ({_size(x.shape)}). "
            "This will likely lead to incorrect results due to broadcasting. Please ensure they have the same size.",
            UserWarning,
            stacklevel=3,  # the caller of the loss
        )
    if x.shape != shape:
        x = ops.broadcast_to(x, shape)
    if t.shape != shape:
        t = ops.broadcast_to(t, shape)
    return x, t


def _size(shape: tuple[int, ...]) -> str:
    return f"torch.Size({list(shape)})"  # PyTorch's spelling, so that warning filters written for it match


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
        raise ShapeError(f"{fn}: weight must have one entry per class, shape ({n_classes},), got {tuple(w.shape)}")
    return w.astype(like.array.dtype, copy=False)


def _elementwise_weight(weight: Any, like: Tensor, fn: str) -> Tensor | None:
    if weight is None:
        return None
    w = weight if isinstance(weight, Tensor) else wrap_array(array_like(weight, like.array, like.array.dtype))
    try:
        np.broadcast_shapes(w.shape, like.shape)
    except ValueError:
        raise ShapeError(
            f"{fn}: weight of shape {tuple(w.shape)} does not broadcast to the input's shape {tuple(like.shape)}"
        ) from None
    return w


_F = TypeVar("_F", bound=Callable[..., Any])


def _legacy_reduction_name(size_average: bool | None, reduce: bool | None, stacklevel: int = 3) -> str:
    """PyTorch's ``_Reduction.legacy_get_string``: a missing flag counts as True; ``reduce=False`` gives
    'none', else ``size_average=False`` gives 'sum', else 'mean'. Warns as PyTorch does (the flags are
    deprecated there), so warning filters written for PyTorch match."""
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    name = "mean" if size_average and reduce else "sum" if reduce else "none"
    warnings.warn(
        f"size_average and reduce args will be deprecated, please use reduction='{name}' instead.",
        UserWarning,
        stacklevel=stacklevel,
    )
    return name


def _legacy_reduction_arg(size_average: bool | None, reduce: bool | None, reduction: str, fn: str) -> str:
    """The reduction, from the pre-1.0 ``size_average``/``reduce`` flags where either is given (they sit at
    torch's positions in the losses' signatures, so positional calls ported from torch bind alike).
    Called by the two helpers below only: the warning points at the loss's caller, three frames up."""
    if size_average is None and reduce is None:
        return reduction
    if reduction != "mean":  # torch would drop the explicit reduction silently
        raise ArgumentError(f"{fn}: give reduction, or the legacy size_average/reduce, not both")
    return _legacy_reduction_name(size_average, reduce, stacklevel=5)


def _reduction_arg(
    size_average: bool | None, reduce: bool | None, reduction: str, fn: str, allowed: tuple[str, ...] = _REDUCTIONS
) -> str:
    """The functional losses' ``reduction``, from the legacy flags where given, checked against ``allowed``."""
    reduction = _legacy_reduction_arg(size_average, reduce, reduction, fn)
    _check_reduction(reduction, fn, allowed)
    return reduction


def _input_and_reduction(
    input: Any,
    fn: str,
    size_average: bool | None,
    reduce: bool | None,
    reduction: str,
    allowed: tuple[str, ...] = _REDUCTIONS,
) -> tuple[Tensor, str]:
    """``_input(input)`` and :func:`_reduction_arg`'s reduction, the input checked first (an input that
    is not a floating Tensor is reported before a bad reduction)."""
    reduction = _legacy_reduction_arg(size_average, reduce, reduction, fn)
    x = _input(input, fn)
    _check_reduction(reduction, fn, allowed)
    return x, reduction


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
    """PyTorch's ``_Loss``: holds ``reduction``, with the pre-1.0 ``size_average``/``reduce`` flags at
    PyTorch's positions, so a loss written for PyTorch (``super().__init__(size_average, reduce,
    reduction)``) subclasses it unchanged. Either flag, where given, decides the reduction (with
    PyTorch's deprecation warning) and the ``reduction`` argument is then ignored, as in PyTorch.

    Example:
        >>> import downslope as ds
        >>> class Doubled(_Loss):
        ...     def forward(self, x, y):
        ...         return ds.nn.functional.mse_loss(2 * x, y, reduction=self.reduction)
        >>> Doubled(None, None, "sum").reduction
        'sum'
    """

    _allowed: tuple[str, ...] = _REDUCTIONS
    weight: Tensor | None  # a buffer in the losses that take class or element weights
    pos_weight: Tensor | None

    def __init__(self, size_average: bool | None = None, reduce: bool | None = None, reduction: str = "mean") -> None:
        super().__init__()
        if size_average is not None or reduce is not None:
            reduction = _legacy_reduction_name(size_average, reduce)
        if type(self).__module__.startswith("downslope."):
            # downslope's own losses refuse an unknown reduction at once; a subclass written for PyTorch
            # may define reductions of its own, which PyTorch's base stores without a check
            _check_reduction(reduction, type(self).__name__, self._allowed)
        self.reduction = reduction


def _weight_buffer(weight: Any) -> Tensor | None:
    if weight is None:
        return None
    return weight if isinstance(weight, Tensor) else Tensor(weight)  # floats become float32


def _as_input_tensor(x: Any, like: Tensor) -> Tensor:
    return x if isinstance(x, Tensor) else wrap_array(array_like(x, like.array, like.array.dtype))


def _same_shapes(fn: str, **tensors: Tensor) -> None:
    """Refuse operands whose shapes differ: losses do not broadcast (a silently wrong loss otherwise)."""
    shapes = {name: tuple(t.shape) for name, t in tensors.items()}
    if len(set(shapes.values())) > 1:
        shown = ", ".join(f"{name} {shape}" for name, shape in shapes.items())
        raise ShapeError(f"{fn}: expected operands of the same shape, got {shown}. Losses do not broadcast")


class _WeightedLoss(_Loss):
    """PyTorch's ``_WeightedLoss``: a loss with an optional ``weight`` buffer (per class or per element),
    with PyTorch's argument order ``(weight, size_average, reduce, reduction)``.

    Example:
        >>> import downslope as ds
        >>> class Scaled(_WeightedLoss):
        ...     def forward(self, x, y):
        ...         return ds.nn.functional.mse_loss(x * self.weight, y, reduction=self.reduction)
        >>> list(Scaled(ds.ones(3), None, None, "sum").state_dict())
        ['weight']
    """

    def __init__(
        self,
        weight: Any = None,
        size_average: bool | None = None,
        reduce: bool | None = None,
        reduction: str = "mean",
    ) -> None:
        super().__init__(size_average, reduce, reduction)
        self.register_buffer("weight", _weight_buffer(weight))
