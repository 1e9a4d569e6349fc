"""PyTorch's ``torch._foreach_*`` functions: one op over a list of tensors, as EMA updates and
hand-written optimizers use them (``torch._foreach_lerp_(ema, params, 1 - decay)``).

Each is the op of its name applied to every tensor in turn: ``_foreach_mul(xs, 2)`` is
``tuple(x.mul(2) for x in xs)``, ``_foreach_mul_(xs, ys)`` is ``x.mul_(y)`` for each pair (PyTorch
fuses the loop into one kernel; the values are the same). The other operand may be a number, a
list of numbers (one per tensor), a list of tensors, or one tensor for all. The in-place forms
return the list they changed, as PyTorch's do.

Example:
    >>> import downslope as ds
    >>> ema, params = [ds.zeros(2), ds.zeros(3)], [ds.ones(2), ds.ones(3)]
    >>> ds._foreach_lerp_(ema, params, 0.1)[0]
    tensor([0.1, 0.1])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from .errors import ArgumentError, ArgumentTypeError
from .tensor import Tensor

_UNARY = (
    "abs", "acos", "asin", "atan", "ceil", "cos", "cosh", "erf", "erfc", "exp", "expm1", "floor", "frac", "lgamma",
    "log", "log10", "log1p", "log2", "neg", "reciprocal", "round", "rsqrt", "sigmoid", "sign", "sin", "sinh", "sqrt",
    "tan", "tanh", "trunc",
)  # fmt: skip
_BINARY = ("add", "sub", "mul", "div", "maximum", "minimum", "clamp_max", "clamp_min", "pow")
# The in-place Tensor method of ops whose method name differs (there is no Tensor.maximum_).
_INPLACE_OF = {"maximum": "clamp_min_", "minimum": "clamp_max_"}


def _tensors(xs: Any, name: str, what: str = "self") -> list[Tensor]:
    if isinstance(xs, Tensor) or not isinstance(xs, (list, tuple)):
        raise ArgumentTypeError(
            f"{name}(): argument '{what}' must be a list or tuple of tensors, got {type(xs).__name__}"
        )
    for i, x in enumerate(xs):
        if not isinstance(x, Tensor):
            raise ArgumentTypeError(f"{name}(): {what}[{i}] must be a Tensor, got {type(x).__name__}")
    return list(xs)


def _same_lengths(name: str, *lists: list[Tensor]) -> None:
    """Refuse lists of tensors of different lengths (they pair up one to one)."""
    if len({len(xs) for xs in lists}) > 1:
        counts = [str(len(xs)) for xs in lists]
        got = ", ".join(counts) if len(lists) > 2 else " and ".join(counts)
        raise ArgumentError(f"{name}(): the lists must have the same number of tensors, got {got}")


def _others(other: Any, n: int, name: str) -> list[Any]:
    """The second operand per tensor: a list (of tensors or numbers) pairs up, anything else repeats."""
    if isinstance(other, (list, tuple)):
        if len(other) != n:
            kind = "tensors" if other and isinstance(other[0], Tensor) else "elements as scalar list"
            raise ArgumentError(f"{name}(): the lists must have the same number of {kind}, got {n} and {len(other)}")
        return list(other)
    return [other] * n


def _unary(op: str, inplace: bool) -> Callable[..., Any]:
    name = f"_foreach_{op}{'_' if inplace else ''}"

    def function(self: Sequence[Tensor]) -> Any:
        xs = _tensors(self, name)
        if inplace:
            for x in xs:
                getattr(x, op + "_")()
            return xs
        return tuple(getattr(x, op)() for x in xs)

    function.__name__ = function.__qualname__ = name
    function.__doc__ = f"``{op}`` of every tensor{' in place' if inplace else ''} (``torch.{name}``)."
    return function


def _binary(op: str, inplace: bool) -> Callable[..., Any]:
    name = f"_foreach_{op}{'_' if inplace else ''}"
    method = _INPLACE_OF.get(op, op + "_") if inplace else op

    def function(self: Any, other: Any, *, alpha: Any = None) -> Any:
        if op == "pow" and not inplace and not isinstance(self, (list, tuple)):  # pow(number, tensors)
            return tuple(x.__rpow__(self) for x in _tensors(other, name, "exponent"))
        xs = _tensors(self, name)
        ys = _others(other, len(xs), name)
        kwargs = {} if alpha is None else {"alpha": alpha}
        if alpha is not None and op not in ("add", "sub"):
            raise ArgumentError(f"{name}(): alpha is an argument of add and sub only")
        out = [getattr(x, method)(y, **kwargs) for x, y in zip(xs, ys)]
        return xs if inplace else tuple(out)

    function.__name__ = function.__qualname__ = name
    function.__doc__ = f"``{op}`` of every tensor with its operand{' in place' if inplace else ''} (``torch.{name}``)."
    return function


def _pointwise3(op: str, inplace: bool) -> Callable[..., Any]:
    name = f"_foreach_{op}{'_' if inplace else ''}"

    def function(self: Any, tensor1: Any, tensor2: Any, value: Any = 1) -> Any:
        xs = _tensors(self, name)
        t1, t2 = _tensors(tensor1, name, "tensor1"), _tensors(tensor2, name, "tensor2")
        _same_lengths(name, xs, t1, t2)
        if isinstance(value, Tensor):  # one value per tensor, as a 1-d tensor
            value = [float(v) for v in value.tolist()]
        values = _others(value, len(xs), name)
        out = [getattr(x, op + ("_" if inplace else ""))(a, b, value=v) for x, a, b, v in zip(xs, t1, t2, values)]
        return xs if inplace else tuple(out)

    function.__name__ = function.__qualname__ = name
    function.__doc__ = f"``{op}`` of every tensor{' in place' if inplace else ''} (``torch.{name}``)."
    return function


def _lerp(inplace: bool) -> Callable[..., Any]:
    name = f"_foreach_lerp{'_' if inplace else ''}"

    def function(self: Any, tensors1: Any, weight: Any) -> Any:
        xs, ends = _tensors(self, name), _tensors(tensors1, name, "tensors1")
        _same_lengths(name, xs, ends)
        weights = _others(weight, len(xs), name)
        out = [getattr(x, "lerp_" if inplace else "lerp")(e, w) for x, e, w in zip(xs, ends, weights)]
        return xs if inplace else tuple(out)

    function.__name__ = function.__qualname__ = name
    function.__doc__ = f"``lerp`` of every tensor toward its end{' in place' if inplace else ''} (``torch.{name}``)."
    return function


def _foreach_norm(self: Sequence[Tensor], ord: Any = 2, dtype: Any = None) -> tuple[Tensor, ...]:
    """The ``ord``-norm of every tensor (``torch._foreach_norm``), as 0-d tensors.

    Example:
        >>> import downslope as ds
        >>> ds._foreach_norm([ds.tensor([3.0, 4.0])])
        (tensor(5.),)
    """
    return tuple(x.norm(ord, dtype=dtype) for x in _tensors(self, "_foreach_norm"))


def _foreach_max(self: Sequence[Tensor]) -> tuple[Tensor, ...]:
    """The largest value of every tensor (``torch._foreach_max``).

    Example:
        >>> import downslope as ds
        >>> ds._foreach_max([ds.tensor([3.0, 4.0])])
        (tensor(4.),)
    """
    return tuple(x.max() for x in _tensors(self, "_foreach_max"))


def _foreach_powsum(self: Sequence[Tensor], exponent: Any = 2) -> tuple[Tensor, ...]:
    """The sum of ``|x| ** exponent`` over every tensor (``torch._foreach_powsum``).

    Example:
        >>> import downslope as ds
        >>> ds._foreach_powsum([ds.tensor([1.0, -2.0])], 3)
        (tensor(9.),)
    """
    return tuple((x.abs() ** exponent).sum() for x in _tensors(self, "_foreach_powsum"))


def _foreach_copy_(self: Sequence[Tensor], src: Sequence[Tensor], non_blocking: bool = False) -> list[Tensor]:
    """Copy every ``src`` tensor into its ``self`` tensor (``torch._foreach_copy_``).

    Example:
        >>> import downslope as ds
        >>> ds._foreach_copy_([ds.zeros(2)], [ds.ones(2)])
        [tensor([1., 1.])]
    """
    xs, srcs = _tensors(self, "_foreach_copy_"), _tensors(src, "_foreach_copy_", "src")
    _same_lengths("_foreach_copy_", xs, srcs)
    for x, s in zip(xs, srcs):
        x.copy_(s, non_blocking)
    return xs


def _foreach_zero_(self: Sequence[Tensor]) -> list[Tensor]:
    """Fill every tensor with zeros (``torch._foreach_zero_``).

    Example:
        >>> import downslope as ds
        >>> ds._foreach_zero_([ds.ones(2)])
        [tensor([0., 0.])]
    """
    xs = _tensors(self, "_foreach_zero_")
    for x in xs:
        x.zero_()
    return xs


def _foreach_clone(self: Sequence[Tensor]) -> tuple[Tensor, ...]:
    """A copy of every tensor (``torch._foreach_clone``).

    Example:
        >>> import downslope as ds
        >>> ds._foreach_clone([ds.ones(2)])
        (tensor([1., 1.]),)
    """
    return tuple(x.clone() for x in _tensors(self, "_foreach_clone"))


def _foreach_mm(self: Sequence[Tensor], mat2: Sequence[Tensor]) -> tuple[Tensor, ...]:
    """The matrix product of every pair (``torch._foreach_mm``).

    Example:
        >>> import downslope as ds
        >>> ds._foreach_mm([ds.eye(2)], [ds.ones(2, 1)])[0].shape
        downslope.Size([2, 1])
    """
    xs, ys = _tensors(self, "_foreach_mm"), _tensors(mat2, "_foreach_mm", "mat2")
    _same_lengths("_foreach_mm", xs, ys)
    return tuple(x.mm(y) for x, y in zip(xs, ys))


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "_foreach_norm": _foreach_norm,
    "_foreach_max": _foreach_max,
    "_foreach_powsum": _foreach_powsum,
    "_foreach_copy_": _foreach_copy_,
    "_foreach_zero_": _foreach_zero_,
    "_foreach_clone": _foreach_clone,
    "_foreach_mm": _foreach_mm,
}
for _inplace in (False, True):
    _suffix = "_" if _inplace else ""
    for _op in _UNARY:
        FUNCTIONS[f"_foreach_{_op}{_suffix}"] = _unary(_op, _inplace)
    for _op in _BINARY:
        FUNCTIONS[f"_foreach_{_op}{_suffix}"] = _binary(_op, _inplace)
    for _op in ("addcmul", "addcdiv"):
        FUNCTIONS[f"_foreach_{_op}{_suffix}"] = _pointwise3(_op, _inplace)
    FUNCTIONS[f"_foreach_lerp{_suffix}"] = _lerp(_inplace)

NAMES = tuple(sorted(FUNCTIONS))
globals().update(FUNCTIONS)
