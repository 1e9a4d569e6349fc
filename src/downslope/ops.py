"""The basic differentiable ops, each forward beside its vector-Jacobian product (VJP).

Every VJP rule has the signature ``rule(g, y, args, saved, needs, xp) -> tuple of input gradients``:
``g`` is the gradient of the output, ``y`` the output, ``args`` the inputs, ``saved`` whatever the
forward kept, ``needs[i]`` whether input ``i`` wants a gradient, and ``xp`` the namespace of helper
functions. In the fast mode these are NumPy arrays; under ``create_graph=True`` they are tensors and
the rule's arithmetic is itself recorded (see autograd.py). So a rule uses operators, ``.sum``,
``.reshape``, ``.T`` and ``xp.*`` only, and reads constant masks from ``xp.data(...)``.

Broadcasting is handled once, by summing a gradient back to its input's shape (``xp.sum_to``).
"""

from __future__ import annotations

import builtins
import math
from collections import namedtuple
from collections.abc import Sequence
from typing import Any

import numpy as np

from . import backend
from .errors import ArgumentError, ArgumentTypeError, OutOfRangeError, ShapeError, StateError
from .graph import _scatter_array, _sigmoid_array, _sum_to_array
from .tensor import Tensor, _alias, record_op, wrap_array

_builtin_max = builtins.max
_builtin_any = builtins.any
_builtin_all = builtins.all
_builtin_sum = builtins.sum


# ---------------------------------------------------------------------- operand handling
def _lift(x: Any, like: Tensor | None = None) -> Tensor:
    """Make ``x`` a tensor. Python numbers and arrays adopt the floating dtype of ``like``, so
    ``float32_tensor * 2.0`` or ``* np.float64(...)`` stays float32 (no float64 creep)."""
    if isinstance(x, Tensor):
        return x
    arr = np.asarray(x)
    if arr.dtype.kind not in "fiub":
        raise ArgumentTypeError(f"cannot combine a tensor with {type(x).__name__} of dtype {arr.dtype}")
    if like is not None and like.array.dtype.kind == "f":
        if arr.dtype != like.array.dtype:
            arr = arr.astype(like.array.dtype)
    elif arr.dtype.kind == "f" and arr.dtype != backend.get_default_dtype():
        arr = arr.astype(backend.get_default_dtype())
    return wrap_array(arr)


def _lift_float(x: Any) -> Tensor:
    """Like ``_lift``, but integer/bool input becomes the default float dtype (torch.exp(int) is float32);
    NumPy would give float64, and tricks like ``x * asarray(0.5, x.dtype)`` would truncate to 0."""
    if isinstance(x, Tensor) and x.array.dtype.kind == "f":
        return x  # the common case, first
    x = _lift(x)
    if x.array.dtype.kind != "f":
        x = wrap_array(x.array.astype(backend.get_default_dtype()))
    return x


def _pair(a: Any, b: Any) -> tuple[Tensor, Tensor]:
    if isinstance(a, Tensor):
        b = _lift(b, a)
    elif isinstance(b, Tensor):
        a = _lift(a, b)
    else:  # two plain values (e.g. ds.where(mask, 1.0, 0.0)): the default dtype policy applies to both
        a, b = _lift(a), _lift(b)
    if a.array.dtype is not b.array.dtype and a.array.dtype != b.array.dtype:
        # Mixed int/float tensors compute in the float dtype (PyTorch's category rule).
        ka, kb = a.array.dtype.kind, b.array.dtype.kind
        if ka == "f" and kb != "f":
            b = wrap_array(b.array.astype(a.array.dtype))
        elif kb == "f" and ka != "f":
            a = wrap_array(a.array.astype(b.array.dtype))
    return a, b  # type: ignore[return-value]


def _elementwise(fn: Any, name: str, a: Tensor, b: Tensor) -> np.ndarray:
    """``fn(a.array, b.array)``; shapes that do not broadcast get an error naming the op and the shapes
    (kept to one call and a try, which cost nothing on the hot path)."""
    try:
        return fn(a.array, b.array)
    except ValueError:
        _check_broadcast(name, a.array, b.array)
        raise


def _check_broadcast(name: str, *arrays: np.ndarray) -> None:
    try:
        np.broadcast_shapes(*(a.shape for a in arrays))
    except ValueError:
        shapes = " and ".join(str(a.shape) for a in arrays)
        raise ShapeError(f"{name}: shapes {shapes} do not broadcast together") from None


def _pick_axis(dim: Any, axis: Any) -> Any:
    if dim is not None and axis is not None:
        raise ArgumentTypeError("give either dim (PyTorch) or axis (NumPy), not both")
    return axis if dim is None else dim


def _norm_axes(axis: Any, ndim: int) -> tuple[int, ...]:
    """Reduction axes as a sorted tuple of non-negative ints (all axes for None)."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    out = []
    for a in axes:
        if not -_builtin_max(ndim, 1) <= a < _builtin_max(ndim, 1):
            raise OutOfRangeError(f"dimension {a} is out of range for a tensor with {ndim} dimension(s)")
        out.append(int(a) % _builtin_max(ndim, 1))
    # A 0-d tensor accepts dim 0 or -1 (as in torch) and has no axis to reduce.
    return tuple(sorted(set(out))) if ndim else ()


def _dim(d: int, ndim: int, op: str) -> int:
    """``d`` in [-ndim, ndim) as a non-negative int; NumPy-style wrapping of other values would be silent."""
    n = _builtin_max(ndim, 1)
    if not -n <= d < n:
        raise OutOfRangeError(f"{op}: dimension {d} is out of range for a tensor with {ndim} dimension(s)")
    return int(d) % n


def _kept_shape(shape: tuple[int, ...], axes: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(1 if i in axes else s for i, s in enumerate(shape))


# ---------------------------------------------------------------------- arithmetic
def add(a: Any, b: Any) -> Tensor:
    a, b = _pair(a, b)
    return record_op(_elementwise(np.add, "add", a, b), (a, b), _add_vjp)


def _add_vjp(g, y, args, saved, needs, xp):  # type: ignore[no-untyped-def]
    a, b = args
    return (xp.sum_to(g, a.shape) if needs[0] else None, xp.sum_to(g, b.shape) if needs[1] else None)


def sub(a: Any, b: Any) -> Tensor:
    a, b = _pair(a, b)
    return record_op(_elementwise(np.subtract, "sub", a, b), (a, b), _sub_vjp)


def _sub_vjp(g, y, args, saved, needs, xp):  # type: ignore[no-untyped-def]
    a, b = args
    return (xp.sum_to(g, a.shape) if needs[0] else None, xp.sum_to(-g, b.shape) if needs[1] else None)


def mul(a: Any, b: Any) -> Tensor:
    a, b = _pair(a, b)
    return record_op(_elementwise(np.multiply, "mul", a, b), (a, b), _mul_vjp)


def _mul_vjp(g, y, args, saved, needs, xp):  # type: ignore[no-untyped-def]
    a, b = args
    return (xp.sum_to(g * b, a.shape) if needs[0] else None, xp.sum_to(g * a, b.shape) if needs[1] else None)


def div(a: Any, b: Any) -> Tensor:
    a, b = _pair(a, b)
    if a.array.dtype.kind != "f" and b.array.dtype.kind != "f":
        a, b = _lift_float(a), _lift_float(b)  # true division of integers is float32, as in torch
    return record_op(_elementwise(np.true_divide, "div", a, b), (a, b), _div_vjp)


def _div_vjp(g, y, args, saved, needs, xp):  # type: ignore[no-untyped-def]
    a, b = args
    return (
        xp.sum_to(g / b, a.shape) if needs[0] else None,
        xp.sum_to(-g * y / b, b.shape) if needs[1] else None,
    )


def pow(a: Any, b: Any) -> Tensor:
    """``a ** b``; d/da = b a^(b-1), d/db = a^b log a (0 where a == 0, as in PyTorch)."""
    a, b = _pair(a, b)
    return record_op(_elementwise(np.power, "pow", a, b), (a, b), _pow_vjp)


def _pow_vjp(g, y, args, saved, needs, xp):  # type: ignore[no-untyped-def]
    a, b = args
    ga = gb = None
    if needs[0]:
        b_is_zero = xp.data(b) == 0
        if b_is_zero.any():  # d/da a^0 is 0, also at a = 0 where 0 * 0^-1 would be nan (torch gives 0)
            ga = xp.where(b_is_zero, 0, g * b * xp.where(b_is_zero, 1, a) ** (b - 1))
        else:
            ga = g * b * a ** (b - 1)
        ga = xp.sum_to(ga, a.shape)
    if needs[1]:
        a_is_zero = xp.data(a) == 0
        gb = xp.sum_to(g * y * xp.log(xp.where(a_is_zero, 1, a)), b.shape)
    return ga, gb


def neg(x: Any) -> Tensor:
    x = _lift(x)
    return record_op(-x.array, (x,), _neg_vjp)


def _neg_vjp(g, y, args, saved, needs, xp):  # type: ignore[no-untyped-def]
    return (-g,)


def matmul(a: Any, b: Any) -> Tensor:
    """Matrix product with NumPy's rules: 1-D operands are vectors, leading dims broadcast."""
    a, b = _pair(a, b)
    ad, bd = a.array, b.array
    if ad.ndim == 0 or bd.ndim == 0:
        raise ShapeError(f"matmul: both operands need at least one dimension, got shapes {ad.shape} and {bd.shape}")
    k_left = ad.shape[-1]
    k_right = bd.shape[-2] if bd.ndim > 1 else bd.shape[0]
    if k_left != k_right:
        raise ShapeError(
            f"matmul: shapes {ad.shape} and {bd.shape} are not aligned: the left operand's last dim ({k_left}) "
            f"must equal the right operand's {'second-to-last' if bd.ndim > 1 else 'only'} dim ({k_right})"
        )
    try:
        out = np.matmul(ad, bd)
    except ValueError:
        raise ShapeError(f"matmul: batch dimensions of shapes {ad.shape} and {bd.shape} do not broadcast") from None
    return record_op(out, (a, b), _matmul_vjp)


def _matmul_vjp(g, y, args, saved, needs, xp):  # type: ignore[no-untyped-def]
    a, b = args
    ga = gb = None
    if a.ndim == 2 and b.ndim == 2:  # the common case, without the general reshaping
        return (g @ b.T if needs[0] else None, a.T @ g if needs[1] else None)
    if a.ndim == 1 and b.ndim == 1:
        return (g * b if needs[0] else None, g * a if needs[1] else None)
    if a.ndim == 1:  # (k) @ (..., k, n) -> (..., n)
        g2 = xp.expand_dims(g, -2)
        if needs[0]:
            ga = xp.reshape(xp.sum_to(g2 @ xp.swap_last(b), (1, a.shape[0])), a.shape)
        if needs[1]:
            gb = xp.sum_to(xp.expand_dims(a, -1) * g2, b.shape)
        return ga, gb
    if b.ndim == 1:  # (..., m, k) @ (k) -> (..., m)
        g2 = xp.expand_dims(g, -1)
        if needs[0]:
            ga = xp.sum_to(g2 * b, a.shape)
        if needs[1]:
            gb = xp.reshape(xp.sum_to(xp.swap_last(a) @ g2, (b.shape[0], 1)), b.shape)
        return ga, gb
    if needs[0]:
        ga = xp.sum_to(g @ xp.swap_last(b), a.shape)
    if needs[1]:
        gb = xp.sum_to(xp.swap_last(a) @ g, b.shape)
    return ga, gb


def clone(x: Any) -> Tensor:
    """A copy with its own storage (the gradient passes through unchanged)."""
    x = _lift(x)
    return record_op(x.array.copy(), (x,), _clone_vjp)


def _clone_vjp(g, y, args, saved, needs, xp):  # type: ignore[no-untyped-def]
    return (g,)


def astype(x: Tensor, dtype: Any) -> Tensor:
    """Cast to another dtype; the gradient is cast back."""
    target = backend.as_dtype(dtype)
    if x.array.dtype == target:
        return x
    out = record_op(x.array.astype(target), (x,), _astype_vjp, x.array.dtype)
    if out.requires_grad and target.kind != "f":
        out.requires_grad, out._vjp, out._parents, out._needs = False, None, (), None
    return out


def _astype_vjp(g, y, args, saved, needs, xp):  # type: ignore[no-untyped-def]
    return (xp.astype(g, saved),)


# ---------------------------------------------------------------------- elementwise functions
def exp(x: Any) -> Tensor:
    x = _lift_float(x)
    return record_op(np.exp(x.array), (x,), _exp_vjp)


def _exp_vjp(g, y, args, saved, needs, xp):  # type: ignore[no-untyped-def]
    return (g * y,)


def expm1(x: Any) -> Tensor:
    """e^x - 1, accurate for small x (where exp(x) - 1 cancels to a few correct digits)."""
    x = _lift_float(x)
    return record_op(np.expm1(x.array), (x,), _expm1_vjp)


def _expm1_vjp(g, y, args, saved, needs, xp):  # type: ignore[no-untyped-def]
    return (g * (y + 1),)


def log(x: Any) -> Tensor:
    x = _lift_float(x)
    return record_op(np.log(x.array), (x,), _log_vjp)


def _log_vjp(g, y, args, saved, needs, xp):  # type: ignore[no-untyped-def]
    return (g / args[0],)


def sqrt(x: Any) -> Tensor:
    x = _lift_float(x)
    return record_op(np.sqrt(x.array), (x,), _sqrt_vjp)


def _sqrt_vjp(g, y, args, saved, needs, xp):  # type: ignore[no-untyped-def]
    return (g / (2 * y),)


def abs(x: Any) -> Tensor:
    x = _lift(x)
    return record_op(np.abs(x.array), (x,), _abs_vjp)


def _abs_vjp(g, y, args, saved, needs, xp):  # type: ignore[no-untyped-def]
    return (g * np.sign(xp.data(args[0])),)


def sin(x: Any) -> Tensor:
    x = _lift_float(x)
    return record_op(np.sin(x.array), (x,), _sin_vjp)


def _sin_vjp(g, y, args, saved, needs, xp):  # type: ignore[no-untyped-def]
    return (g * xp.cos(args[0]),)


def cos(x: Any) -> Tensor:
    x = _lift_float(x)
    return record_op(np.cos(x.array), (x,), _cos_vjp)


def _cos_vjp(g, y, args, saved, needs, xp):  # type: ignore[no-untyped-def]
    return (-g * xp.sin(args[0]),)


def tanh(x: Any) -> Tensor:
    x = _lift_float(x)
    return record_op(np.tanh(x.array), (x,), _tanh_vjp)


def _tanh_vjp(g, y, args, saved, needs, xp):  # type: ignore[no-untyped-def]
    return (g * (1 - y * y),)


def sigmoid(x: Any) -> Tensor:
    """1 / (1 + e^-x), computed stably: it never overflows and keeps relative precision for x << 0."""
    x = _lift_float(x)
    return record_op(_sigmoid_array(x.array), (x,), _sigmoid_vjp)


def _sigmoid_vjp(g, y, args, saved, needs, xp):  # type: ignore[no-untyped-def]
    return (g * y * (1 - y),)


def relu(x: Any) -> Tensor:
    x = _lift(x)
    return record_op(np.maximum(x.array, 0), (x,), _relu_vjp)


def _relu_vjp(g, y, args, saved, needs, xp):  # type: ignore[no-untyped-def]
    return (g * (xp.data(y) > 0),)


def leaky_relu(x: Any, negative_slope: float = 0.01) -> Tensor:
    x = _lift_float(x)
    d = x.array
    slope = np.asarray(negative_slope, d.dtype)
    return record_op(np.where(d > 0, d, d * slope), (x,), _leaky_relu_vjp, slope)


def _leaky_relu_vjp(g, y, args, saved, needs, xp):  # type: ignore[no-untyped-def]
    return (g * np.where(xp.data(args[0]) > 0, np.asarray(1, saved.dtype), saved),)


def softplus(x: Any, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """log(1 + e^(beta x)) / beta, linear where beta x > threshold (PyTorch's definition)."""
    x = _lift_float(x)
    d = x.array
    bx = d * np.asarray(beta, d.dtype)
    soft = np.logaddexp(np.asarray(0, d.dtype), bx) / np.asarray(beta, d.dtype)
    return record_op(
        np.where(bx > threshold, d, soft).astype(d.dtype, copy=False), (x,), _softplus_vjp, (beta, threshold)
    )


def _softplus_vjp(g, y, args, saved, needs, xp):  # type: ignore[no-untyped-def]
    beta, threshold = saved
    x = args[0]
    bx = xp.data(x) * beta
    return (xp.where(bx > threshold, g, g * xp.sigmoid(x * beta)),)


_erf_scalar = np.frompyfunc(math.erf, 1, 1)


def erf(x: Any) -> Tensor:
    """The error function (exact, via math.erf per element: correct but not fast)."""
    x = _lift_float(x)
    return record_op(np.asarray(_erf_scalar(x.array), dtype=x.array.dtype), (x,), _erf_vjp)


def _erf_vjp(g, y, args, saved, needs, xp):  # type: ignore[no-untyped-def]
    x = args[0]
    return (g * (2 / math.sqrt(math.pi)) * xp.exp(-(x * x)),)


def clip(x: Any, min: Any = None, max: Any = None) -> Tensor:
    """Clamp into [min, max]; the gradient passes where min <= x <= max (PyTorch's clamp)."""
    x = _lift(x)
    if isinstance(min, Tensor) or isinstance(max, Tensor):
        # where, not maximum/minimum: on a tie x keeps the whole gradient (torch's clamp), not half
        _check_broadcast("clip", *(np.asarray(getattr(v, "array", v)) for v in (x, min, max) if v is not None))
        out = x
        if min is not None:
            out = where(x.array < (min.array if isinstance(min, Tensor) else min), min, out)
        if max is not None:
            out = where(out.array > (max.array if isinstance(max, Tensor) else max), max, out)
        return out
    if min is None and max is None:
        raise ArgumentError("clip: at least one of min and max must be given")
    return record_op(np.clip(x.array, min, max).astype(x.array.dtype, copy=False), (x,), _clip_vjp, (min, max))


def _clip_vjp(g, y, args, saved, needs, xp):  # type: ignore[no-untyped-def]
    lo, hi = saved
    d = xp.data(args[0])
    inside = np.ones(d.shape, dtype=bool)
    if lo is not None:
        inside &= d >= lo
    if hi is not None:
        inside &= d <= hi
    return (g * inside,)


clamp = clip


def maximum(a: Any, b: Any) -> Tensor:
    """Elementwise maximum; on ties each side gets half the gradient (as in PyTorch)."""
    a, b = _pair(a, b)
    return record_op(_elementwise(np.maximum, "maximum", a, b), (a, b), _maximum_vjp)


def _maximum_vjp(g, y, args, saved, needs, xp):  # type: ignore[no-untyped-def]
    a, b = args
    da, db = xp.data(a), xp.data(b)
    share = ((da > db) + 0.5 * (da == db)).astype(g.dtype)
    return (
        xp.sum_to(g * share, a.shape) if needs[0] else None,
        xp.sum_to(g * (1 - share), b.shape) if needs[1] else None,
    )


def minimum(a: Any, b: Any) -> Tensor:
    """Elementwise minimum; on ties each side gets half the gradient (as in PyTorch)."""
    a, b = _pair(a, b)
    return record_op(_elementwise(np.minimum, "minimum", a, b), (a, b), _minimum_vjp)


def _minimum_vjp(g, y, args, saved, needs, xp):  # type: ignore[no-untyped-def]
    a, b = args
    da, db = xp.data(a), xp.data(b)
    share = ((da < db) + 0.5 * (da == db)).astype(g.dtype)
    return (
        xp.sum_to(g * share, a.shape) if needs[0] else None,
        xp.sum_to(g * (1 - share), b.shape) if needs[1] else None,
    )


def where(condition: Any, a: Any, b: Any) -> Tensor:
    """Pick from ``a`` where ``condition`` is true, else from ``b`` (all broadcast together)."""
    cond = condition.array if isinstance(condition, Tensor) else np.asarray(condition)
    if cond.dtype != np.bool_:
        cond = cond.astype(bool)
    a, b = _pair(a, b)
    try:
        out = np.where(cond, a.array, b.array)
    except ValueError:
        _check_broadcast("where", cond, a.array, b.array)
        raise
    return record_op(out, (a, b), _where_vjp, cond)


def _where_vjp(g, y, args, saved, needs, xp):  # type: ignore[no-untyped-def]
    a, b = args
    zero = np.zeros((), dtype=xp.data(g).dtype)
    return (
        xp.sum_to(xp.where(saved, g, zero), a.shape) if needs[0] else None,
        xp.sum_to(xp.where(saved, zero, g), b.shape) if needs[1] else None,
    )


# ---------------------------------------------------------------------- reductions
def sum(x: Any, dim: Any = None, keepdim: bool = False, *, axis: Any = None, keepdims: Any = None) -> Tensor:
    """Sum over ``dim``/``axis`` (all by default); ``keepdim``/``keepdims`` keeps reduced dims as 1."""
    x = _lift(x)
    axes = _norm_axes(_pick_axis(dim, axis), x.ndim)
    keep = bool(keepdim or keepdims)
    out = x.array.sum(axis=axes, keepdims=keep)
    return record_op(np.asarray(out), (x,), _sum_vjp, (_kept_shape(x.shape, axes), keep))


def _sum_vjp(g, y, args, saved, needs, xp):  # type: ignore[no-untyped-def]
    kept, keep = saved
    if not keep:
        g = xp.reshape(g, kept)
    return (xp.broadcast_to(g, args[0].shape),)


def mean(x: Any, dim: Any = None, keepdim: bool = False, *, axis: Any = None, keepdims: Any = None) -> Tensor:
    """Mean over ``dim``/``axis`` (all by default)."""
    x = _lift(x)
    if x.array.dtype.kind != "f":
        raise ArgumentTypeError(f"mean: expected a floating tensor, got {x.dtype}; cast it with .float() first")
    axes = _norm_axes(_pick_axis(dim, axis), x.ndim)
    keep = bool(keepdim or keepdims)
    count = int(np.prod([x.shape[i] for i in axes])) if x.ndim else 1
    out = x.array.mean(axis=axes, keepdims=keep)
    return record_op(np.asarray(out, dtype=x.array.dtype), (x,), _mean_vjp, (_kept_shape(x.shape, axes), keep, count))


def _mean_vjp(g, y, args, saved, needs, xp):  # type: ignore[no-untyped-def]
    kept, keep, count = saved
    if not keep:
        g = xp.reshape(g, kept)
    return (xp.broadcast_to(g / count, args[0].shape),)


def _extreme(x: Any, dim: Any, keepdim: bool, axis: Any, keepdims: Any, fn: Any) -> Tensor:
    x = _lift(x)
    axes = _norm_axes(_pick_axis(dim, axis), x.ndim)
    if x.array.size == 0:
        raise ShapeError(f"max/min of an empty tensor of shape {x.shape}")
    keep = bool(keepdim or keepdims)
    out = fn(x.array, axis=axes, keepdims=keep)
    return record_op(np.asarray(out), (x,), _extreme_vjp, (_kept_shape(x.shape, axes), keep, axes))


def _extreme_vjp(g, y, args, saved, needs, xp):  # type: ignore[no-untyped-def]
    """The gradient goes to the extreme element(s), shared evenly between ties (like torch.amax)."""
    kept, keep, axes = saved
    x = xp.data(args[0])
    hit = x == xp.data(y).reshape(kept)
    share = (hit / hit.sum(axis=axes, keepdims=True)).astype(x.dtype)
    if not keep:
        g = xp.reshape(g, kept)
    return (g * share,)


class return_types:  # noqa: N801  (torch.return_types)
    """Named tuples that reductions with indices return, as in ``torch.return_types``."""

    max = namedtuple("max", ["values", "indices"])
    min = namedtuple("min", ["values", "indices"])
    sort = namedtuple("sort", ["values", "indices"])
    topk = namedtuple("topk", ["values", "indices"])
    kthvalue = namedtuple("kthvalue", ["values", "indices"])
    median = namedtuple("median", ["values", "indices"])
    aminmax = namedtuple("aminmax", ["min", "max"])
    cummax = namedtuple("cummax", ["values", "indices"])
    cummin = namedtuple("cummin", ["values", "indices"])


def _take_along(x: Tensor, idx: np.ndarray, dim: int) -> Tensor:
    """``x`` picked at ``idx`` along ``dim`` (idx has x's ndim); the gradient is scattered back."""
    grids: list[Any] = list(np.indices(idx.shape, sparse=True))
    grids[dim] = idx
    full = tuple(grids)
    return record_op(x.array[full], (x,), _getitem_vjp, (full, True))


def _extreme_with_indices(x: Any, dim: Any, keepdim: bool, arg: Any, name: str) -> Any:
    x = _lift(x)
    if not isinstance(dim, (int, np.integer)):
        raise ArgumentTypeError(f"{name}(dim): dim must be one integer, got {dim!r}; use a{name}(dim=...) for several")
    d = _dim(int(dim), x.ndim, name)
    if x.array.size == 0:
        raise ShapeError(f"{name}(dim={dim}) of an empty tensor of shape {x.shape}")
    if x.ndim == 0:
        return getattr(return_types, name)(
            record_op(x.array.copy(), (x,), _clone_vjp), wrap_array(np.zeros((), np.int64))
        )
    idx = arg(x.array, axis=d, keepdims=True)
    values = _take_along(x, idx, d)
    if not keepdim:
        values = squeeze(values, d)
        idx = idx.squeeze(d)
    return getattr(return_types, name)(values, wrap_array(idx.astype(np.int64, copy=False)))


def max(x: Any, dim: Any = None, keepdim: bool = False, *, axis: Any = None, keepdims: Any = None) -> Any:
    """The largest value, as in torch.max: ``max(x)`` is a 0-d tensor (ties share the gradient);
    ``max(x, dim)`` is the named tuple ``(values, indices)`` (the gradient goes to the index); for
    the values over several dims use :func:`amax`. ``max(a, b)`` with a tensor ``b`` is the
    elementwise :func:`maximum`.

    Example:
        >>> import downslope as ds
        >>> values, indices = ds.tensor([[1.0, 5.0], [7.0, 2.0]]).max(1)
        >>> values, indices
        (tensor([5., 7.]), tensor([1, 0]))
    """
    if isinstance(dim, Tensor):
        return maximum(x, dim)
    d = _pick_axis(dim, axis)
    if d is None:
        return _extreme(x, None, False, None, None, np.max)
    return _extreme_with_indices(x, d, bool(keepdim or keepdims), np.argmax, "max")


def min(x: Any, dim: Any = None, keepdim: bool = False, *, axis: Any = None, keepdims: Any = None) -> Any:
    """The smallest value, as in torch.min: a 0-d tensor, or ``(values, indices)`` along ``dim``;
    ``min(a, b)`` with a tensor ``b`` is the elementwise :func:`minimum`."""
    if isinstance(dim, Tensor):
        return minimum(x, dim)
    d = _pick_axis(dim, axis)
    if d is None:
        return _extreme(x, None, False, None, None, np.min)
    return _extreme_with_indices(x, d, bool(keepdim or keepdims), np.argmin, "min")


def amax(x: Any, dim: Any = None, keepdim: bool = False, *, axis: Any = None, keepdims: Any = None) -> Tensor:
    """Largest values over one or several dims (values only; ties share the gradient, as torch.amax)."""
    return _extreme(x, dim, keepdim, axis, keepdims, np.max)


def amin(x: Any, dim: Any = None, keepdim: bool = False, *, axis: Any = None, keepdims: Any = None) -> Tensor:
    """Smallest values over one or several dims (values only, as torch.amin)."""
    return _extreme(x, dim, keepdim, axis, keepdims, np.min)


def logsumexp(x: Any, dim: Any = None, keepdim: bool = False, *, axis: Any = None, keepdims: Any = None) -> Tensor:
    """log(sum(exp(x))) over an axis, stable for large inputs (the max is subtracted first).

    Fused into one op because the composite would overflow in exp before the max is subtracted.
    """
    x = _lift_float(x)
    axes = _norm_axes(_pick_axis(dim, axis), x.ndim)
    keep = bool(keepdim or keepdims)
    d = x.array
    m = d.max(axis=axes, keepdims=True)
    m = np.where(np.isfinite(m), m, 0)
    out = np.log(np.exp(d - m).sum(axis=axes, keepdims=True)) + m
    if not keep:
        out = out.reshape([s for i, s in enumerate(d.shape) if i not in axes])
    return record_op(out.astype(d.dtype, copy=False), (x,), _logsumexp_vjp, (_kept_shape(d.shape, axes), keep))


def _logsumexp_vjp(g, y, args, saved, needs, xp):  # type: ignore[no-untyped-def]
    kept, keep = saved
    if not keep:
        g = xp.reshape(g, kept)
    return (g * xp.exp(args[0] - xp.reshape(y, kept)),)


def softmax(x: Any, dim: int = -1, *, axis: int | None = None) -> Tensor:
    """exp(x) / sum(exp(x)) along ``dim``, stable (the max is subtracted first)."""
    x = _lift_float(x)
    a = _norm_axes(_pick_axis(dim if axis is None else None, axis), x.ndim)
    d = x.array
    e = np.exp(d - d.max(axis=a, keepdims=True))
    e /= e.sum(axis=a, keepdims=True)
    return record_op(e, (x,), _softmax_vjp, a)


def _softmax_vjp(g, y, args, saved, needs, xp):  # type: ignore[no-untyped-def]
    gy = g * y
    return (gy - y * gy.sum(axis=saved, keepdims=True),)


def log_softmax(x: Any, dim: int = -1, *, axis: int | None = None) -> Tensor:
    """x - logsumexp(x) along ``dim``, stable; fused because log(softmax) underflows to -inf."""
    x = _lift_float(x)
    a = _norm_axes(_pick_axis(dim if axis is None else None, axis), x.ndim)
    d = x.array
    shifted = d - d.max(axis=a, keepdims=True)
    out = shifted - np.log(np.exp(shifted).sum(axis=a, keepdims=True))
    return record_op(out, (x,), _log_softmax_vjp, a)


def _log_softmax_vjp(g, y, args, saved, needs, xp):  # type: ignore[no-untyped-def]
    return (g - xp.exp(y) * g.sum(axis=saved, keepdims=True),)


# ---------------------------------------------------------------------- shape ops
def reshape(x: Any, shape: Any) -> Tensor:
    x = _lift(x)
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    try:
        out = x.array.reshape(shape)
    except ValueError:
        raise ShapeError(
            f"reshape: cannot reshape a tensor of shape {x.shape} ({x.array.size} elements) into {shape}"
        ) from None
    return _alias(record_op(out, (x,), _reshape_vjp), x)


def _reshape_vjp(g, y, args, saved, needs, xp):  # type: ignore[no-untyped-def]
    return (xp.reshape(g, args[0].shape),)


def permute(x: Any, dims: Sequence[int]) -> Tensor:
    """Reorder dimensions: output dim i is input dim ``dims[i]``."""
    x = _lift(x)
    dims = tuple(_dim(d, x.ndim, "permute") for d in dims)
    if sorted(dims) != list(range(x.ndim)):
        raise ArgumentError(f"permute: {dims} is not a permutation of the {x.ndim} dims of shape {x.shape}")
    return _alias(record_op(x.array.transpose(dims), (x,), _permute_vjp, tuple(np.argsort(dims))), x)


def _permute_vjp(g, y, args, saved, needs, xp):  # type: ignore[no-untyped-def]
    return (xp.permute(g, saved),)


def transpose(x: Any, dim0: int, dim1: int) -> Tensor:
    """Swap two dimensions (PyTorch's transpose)."""
    x = _lift(x)
    dims = list(range(x.ndim))
    dim0, dim1 = _dim(dim0, x.ndim, "transpose"), _dim(dim1, x.ndim, "transpose")
    dims[dim0], dims[dim1] = dims[dim1], dims[dim0]
    return permute(x, dims)


def squeeze(x: Any, dim: Any = None) -> Tensor:
    x = _lift(x)
    if dim is None:
        shape = tuple(s for s in x.shape if s != 1)
    else:
        axes = _norm_axes(dim, x.ndim)
        shape = tuple(s for i, s in enumerate(x.shape) if not (i in axes and s == 1))
    return reshape(x, shape)


def unsqueeze(x: Any, dim: int) -> Tensor:
    x = _lift(x)
    if not -x.ndim - 1 <= dim <= x.ndim:
        raise OutOfRangeError(f"unsqueeze: dim {dim} out of range for a tensor with {x.ndim} dims")
    dim = dim % (x.ndim + 1)
    return reshape(x, x.shape[:dim] + (1,) + x.shape[dim:])


def flatten(x: Any, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    x = _lift(x)
    if x.ndim == 0:
        return reshape(x, (1,))
    s, e = _dim(start_dim, x.ndim, "flatten"), _dim(end_dim, x.ndim, "flatten")
    return reshape(x, x.shape[:s] + (int(np.prod(x.shape[s : e + 1])),) + x.shape[e + 1 :])


def broadcast_to(x: Any, shape: Any) -> Tensor:
    x = _lift(x)
    shape = tuple(shape)
    lead = len(shape) - x.ndim
    if _builtin_any(
        s == -1 for s in shape[: _builtin_max(lead, 0)]
    ):  # x.shape[negative] would silently pick a wrong dim
        raise ShapeError(
            f"broadcast_to: -1 (keep the size) is not allowed in a new leading dim; got {shape} for {x.shape}"
        )
    shape = tuple(x.shape[i - lead] if s == -1 else s for i, s in enumerate(shape))
    try:
        out = np.broadcast_to(x.array, shape)
    except ValueError:
        raise ShapeError(f"broadcast_to: cannot broadcast shape {x.shape} to {shape}") from None
    return _alias(record_op(out, (x,), _broadcast_to_vjp), x)


def _broadcast_to_vjp(g, y, args, saved, needs, xp):  # type: ignore[no-untyped-def]
    return (xp.sum_to(g, args[0].shape),)


def sum_to(x: Any, shape: tuple[int, ...]) -> Tensor:
    """Sum ``x`` down to ``shape`` (the reverse of broadcasting)."""

    x = _lift(x)
    return record_op(np.asarray(_sum_to_array(x.array, tuple(shape))), (x,), _sum_to_vjp)


def _sum_to_vjp(g, y, args, saved, needs, xp):  # type: ignore[no-untyped-def]
    return (xp.broadcast_to(g, args[0].shape),)


def concatenate(tensors: Sequence[Any], axis: int = 0, *, dim: int | None = None) -> Tensor:
    """Join tensors along an existing axis (``ds.cat``)."""
    if isinstance(tensors, Tensor) or len(tensors) == 0:
        raise ArgumentTypeError("concatenate: expected a non-empty sequence of tensors")
    a = axis if dim is None else dim
    ts = [_lift(t) for t in tensors]
    a = _dim(a, ts[0].ndim, "concatenate")
    try:
        out = np.concatenate([t.array for t in ts], axis=a)
    except ValueError:
        raise ShapeError(f"concatenate: shapes {[t.shape for t in ts]} do not match except along axis {a}") from None
    bounds = np.cumsum([0] + [t.shape[a] for t in ts])
    return record_op(out, tuple(ts), _concatenate_vjp, (a, bounds))


def _concatenate_vjp(g, y, args, saved, needs, xp):  # type: ignore[no-untyped-def]
    a, bounds = saved
    lead = (slice(None),) * a
    return tuple(g[lead + (slice(int(bounds[i]), int(bounds[i + 1])),)] if needs[i] else None for i in range(len(args)))


cat = concatenate


def stack(tensors: Sequence[Any], axis: int = 0, *, dim: int | None = None) -> Tensor:
    """Join tensors of equal shape along a new axis."""
    if isinstance(tensors, Tensor) or len(tensors) == 0:
        raise ArgumentTypeError("stack: expected a non-empty sequence of tensors")
    a = axis if dim is None else dim
    ts = [_lift(t) for t in tensors]
    if len({t.shape for t in ts}) != 1:
        raise ShapeError(f"stack: all tensors need the same shape, got {[t.shape for t in ts]}")
    a = _dim(a, ts[0].ndim + 1, "stack")
    out = np.stack([t.array for t in ts], axis=a)
    return record_op(out, tuple(ts), _stack_vjp, a)


def _stack_vjp(g, y, args, saved, needs, xp):  # type: ignore[no-untyped-def]
    lead = (slice(None),) * saved
    return tuple(g[lead + (i,)] if needs[i] else None for i in range(len(args)))


def _normalize_index(index: Any, keep_masks: bool = False) -> Any:
    """Tensors become arrays, lists become integer arrays, boolean masks become integer indices
    (unless ``keep_masks``: applied as masks, NumPy checks that their shape fits)."""
    items = index if isinstance(index, tuple) else (index,)
    out: list[Any] = []
    for item in items:
        if isinstance(item, Tensor):
            item = item.array
        elif isinstance(item, list):
            item = np.asarray(item)
        if isinstance(item, np.ndarray) and item.dtype == np.bool_ and not keep_masks:
            out.extend(np.nonzero(item))
            continue
        if isinstance(item, np.ndarray) and item.dtype.kind not in "iub":
            raise OutOfRangeError(f"tensors used as indices must be integer or boolean, got {item.dtype}")
        out.append(item)
    return tuple(out) if isinstance(index, tuple) or len(out) != 1 else out[0]


def _is_advanced(index: Any) -> bool:
    items = index if isinstance(index, tuple) else (index,)
    return _builtin_any(isinstance(i, np.ndarray) for i in items)


def getitem(x: Any, index: Any) -> Tensor:
    """Basic and integer-array indexing; the gradient is scattered back (repeats add up)."""
    x = _lift(x)
    idx = _normalize_index(index, keep_masks=True)
    try:
        # Masks are applied as masks so that NumPy checks their shape: their nonzero() form (used by
        # the backward) would silently accept a mask of the wrong length.
        out = x.array[idx]
    except IndexError as exc:
        raise OutOfRangeError(f"index {index!r} is invalid for a tensor of shape {x.shape}: {exc}") from None
    advanced = _is_advanced(idx)
    if advanced and _builtin_any(isinstance(i, np.ndarray) and i.dtype == np.bool_ for i in _index_items(idx)):
        idx = _normalize_index(index)
    # Basic indexing gives a view that shares memory (and the version counter) with x, as in PyTorch.
    result = record_op(np.asarray(out), (x,), _getitem_vjp, (idx, advanced))
    return result if advanced else _alias(result, x)


def _index_items(idx: Any) -> tuple[Any, ...]:
    return idx if isinstance(idx, tuple) else (idx,)


def _getitem_vjp(g, y, args, saved, needs, xp):  # type: ignore[no-untyped-def]
    idx, advanced = saved
    return (xp.scatter(args[0].shape, idx, advanced, g),)


def scatter_into_zeros(shape: tuple[int, ...], index: Any, advanced: bool, g: Tensor) -> Tensor:
    """Zeros of ``shape`` with ``g`` added at ``index`` (the adjoint of indexing)."""

    g = _lift(g)
    return record_op(_scatter_array(tuple(shape), index, advanced, g.array), (g,), _scatter_add_vjp, (index,))


def _scatter_add_vjp(g, y, args, saved, needs, xp):  # type: ignore[no-untyped-def]
    return (g[saved[0]],)


def gather(x: Any, dim: int, index: Any) -> Tensor:
    """``out[i][j] = x[i][index[i][j]]`` for dim=1 (torch.gather): pick along one axis."""
    x = _lift(x)
    idx = index.array if isinstance(index, Tensor) else np.asarray(index)
    if idx.dtype.kind not in "iu":
        raise ArgumentTypeError(f"gather: index must hold integers, got {idx.dtype}")
    if idx.ndim != x.ndim:
        raise ShapeError(
            f"gather: index has {idx.ndim} dims but the input has {x.ndim} (shapes {idx.shape} and {x.shape})"
        )
    dim = _dim(dim, x.ndim, "gather")
    if idx.size and (idx.min() < 0 or idx.max() >= x.shape[dim]):  # NumPy would wrap -1 around silently
        raise OutOfRangeError(
            f"gather: index values must lie in [0, {x.shape[dim]}) for input of shape {x.shape} along dim {dim}; "
            f"got values from {idx.min()} to {idx.max()}"
        )
    grids: list[Any] = list(np.indices(idx.shape, sparse=True))
    grids[dim] = idx
    full = tuple(grids)
    try:
        out = x.array[full]
    except IndexError as exc:
        raise OutOfRangeError(
            f"gather: index out of range for input of shape {x.shape} along dim {dim}: {exc}"
        ) from None
    return record_op(out, (x,), _getitem_vjp, (full, True))


_NUMPY_PAD_MODES = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def pad(x: Any, pad: Sequence[Any], mode: str = "constant", value: float = 0.0) -> Tensor:
    """Pad with PyTorch's ``pad`` (last dim first: ``(left, right, top, bottom, ...)``) or NumPy's
    ``pad_width`` (a pair per dim). Modes: constant, reflect, replicate, circular."""
    x = _lift(x)
    widths = _pad_widths(pad, x.ndim)
    if mode == "constant":
        out = np.pad(x.array, widths, mode="constant", constant_values=value)
        return record_op(out, (x,), _pad_vjp, widths)
    if mode not in _NUMPY_PAD_MODES:
        raise ArgumentError(f"pad: unknown mode {mode!r}; expected one of constant, {', '.join(_NUMPY_PAD_MODES)}")
    # The other modes copy input elements, so they are an integer-array index into x and get
    # their gradient (repeats summed) from getitem.
    axes_index = [np.pad(np.arange(n), w, mode=_NUMPY_PAD_MODES[mode]) for n, w in zip(x.shape, widths)]  # type: ignore[call-overload]
    return getitem(x, np.ix_(*axes_index))


def _pad_widths(pad: Sequence[Any], ndim: int) -> list[tuple[int, int]]:
    pad = list(pad)
    if pad and _builtin_all(isinstance(p, (tuple, list)) for p in pad):
        if len(pad) != ndim:
            raise ArgumentError(
                f"pad: NumPy-style pad_width needs one (before, after) pair per dim ({ndim}), got {len(pad)}"
            )
        widths = [(int(b), int(a)) for b, a in pad]
    else:
        if len(pad) % 2 or len(pad) // 2 > ndim:
            raise ArgumentError(
                f"pad: expected an even number of PyTorch-style pads (at most {2 * ndim}), got {len(pad)}"
            )
        widths = [(0, 0)] * ndim
        for i in range(len(pad) // 2):
            widths[ndim - 1 - i] = (int(pad[2 * i]), int(pad[2 * i + 1]))
    if _builtin_any(b < 0 or a < 0 for b, a in widths):
        raise ArgumentError(f"pad: negative padding is not supported, got {widths}")
    return widths


def _pad_vjp(g, y, args, saved, needs, xp):  # type: ignore[no-untyped-def]
    return (g[tuple(slice(b, b + n) for (b, _), n in zip(saved, args[0].shape))],)


def index_put(x: Any, index: Any, value: Any) -> Tensor:
    """A copy of ``x`` with ``value`` assigned at ``index`` (the recorded form of ``x[index] = value``):
    the overwritten elements get no gradient, ``value`` gets the gradient of the elements it fills."""
    x = _lift(x)
    value = _lift(value, x)
    idx = _normalize_index(index, keep_masks=True)
    out = x.array.copy()
    try:
        out[idx] = value.array
    except IndexError as exc:
        raise OutOfRangeError(f"index {index!r} is invalid for a tensor of shape {x.shape}: {exc}") from None
    except ValueError as exc:
        raise ShapeError(
            f"cannot assign a value of shape {value.shape} at index {index!r} of a tensor of shape {x.shape}: {exc}"
        ) from None
    return record_op(out, (x, value), _index_put_vjp, idx)


def _index_put_vjp(g, y, args, saved, needs, xp):  # type: ignore[no-untyped-def]
    x, v = args
    gx = gv = None
    if needs[0]:
        written = np.zeros(x.shape, dtype=bool)
        written[saved] = True
        gx = xp.where(written, np.zeros((), dtype=xp.data(g).dtype), g)
    if needs[1]:
        gi = g[saved]
        if gi.ndim < v.ndim:  # NumPy lets a value with extra leading 1s fill a smaller slot
            gi = xp.reshape(gi, (1,) * (v.ndim - gi.ndim) + tuple(gi.shape))
        gv = xp.sum_to(gi, v.shape)
    return gx, gv


# Rules that use only their inputs' shapes, not their values: an in-place write to an input after
# the op was recorded does not invalidate them (autograd._check_versions).
for _rule in (
    _add_vjp, _sub_vjp, _neg_vjp, _astype_vjp, _where_vjp, _sum_vjp, _mean_vjp, _reshape_vjp, _permute_vjp,
    _broadcast_to_vjp, _sum_to_vjp, _concatenate_vjp, _stack_vjp, _getitem_vjp, _scatter_add_vjp, _pad_vjp,
    _index_put_vjp, _clone_vjp,
):  # fmt: skip
    _rule.reads_inputs = False  # type: ignore[attr-defined]

# Rules that read only their output (and g): their inputs may be overwritten after the op.
for _rule in (_exp_vjp, _expm1_vjp, _sqrt_vjp, _tanh_vjp, _sigmoid_vjp, _relu_vjp, _softmax_vjp, _log_softmax_vjp):
    _rule.reads_inputs = False  # type: ignore[attr-defined]

_mul_vjp.reads_inputs = _matmul_vjp.reads_inputs = "others"  # type: ignore[attr-defined]
_div_vjp.reads_inputs = (1,)  # type: ignore[attr-defined]  # g / b and -g * y / b: never a

# Rules of ops whose output shares the input's storage (an in-place write through it would
# change the input behind its history's back).
_VIEW_RULES = frozenset((_reshape_vjp, _permute_vjp, _broadcast_to_vjp, _getitem_vjp))
_WRITABLE_VIEW_RULES = frozenset((_reshape_vjp, _permute_vjp, _getitem_vjp))  # broadcast views are read-only


# ---------------------------------------------------------------------- more of torch's everyday ops
def log1p(x: Any) -> Tensor:
    """log(1 + x), accurate for small x."""
    x = _lift_float(x)
    return record_op(np.log1p(x.array), (x,), _log1p_vjp)


def _log1p_vjp(g, y, args, saved, needs, xp):  # type: ignore[no-untyped-def]
    return (g / (args[0] + 1),)


def rsqrt(x: Any) -> Tensor:
    """1 / sqrt(x)."""
    x = _lift_float(x)
    return record_op(1 / np.sqrt(x.array), (x,), _rsqrt_vjp)


def _rsqrt_vjp(g, y, args, saved, needs, xp):  # type: ignore[no-untyped-def]
    return (g * (y * y * y) * -0.5,)


def _stepwise(fn: Any, x: Any) -> Tensor:
    """A piecewise-constant op (floor, sign...): its gradient is 0 everywhere, as in torch."""
    x = _lift(x)
    out = fn(x.array)
    if x.array.dtype.kind != "f":
        return wrap_array(out)
    return record_op(out.astype(x.array.dtype, copy=False), (x,), _zero_vjp)


def _zero_vjp(g, y, args, saved, needs, xp):  # type: ignore[no-untyped-def]
    return (g * 0,)


def sign(x: Any) -> Tensor:
    return _stepwise(np.sign, x)


def floor(x: Any) -> Tensor:
    return _stepwise(np.floor, x)


def ceil(x: Any) -> Tensor:
    return _stepwise(np.ceil, x)


def trunc(x: Any) -> Tensor:
    return _stepwise(np.trunc, x)


def round(x: Any, decimals: int = 0) -> Tensor:
    """Round half to even (as torch and NumPy do); the gradient is 0."""
    return _stepwise(lambda a: np.round(a, decimals), x)


def cumsum(x: Any, dim: int, *, dtype: Any = None) -> Tensor:
    """Running sum along ``dim``; the gradient is the reversed running sum of the output gradient."""
    x = _lift(x)
    if dtype is not None:
        x = astype(x, dtype)
    d = _dim(dim, x.ndim, "cumsum")
    if x.ndim == 0:
        return clone(x)
    out = np.cumsum(x.array, axis=d)
    if x.array.dtype.kind in "b":
        out = out.astype(backend.int64)
    return record_op(out, (x,), _cumsum_vjp, d)


def _cumsum_vjp(g, y, args, saved, needs, xp):  # type: ignore[no-untyped-def]
    rev = (slice(None),) * saved + (slice(None, None, -1),)
    flipped = g[rev]
    summed = xp.cumsum(flipped, saved)
    return (summed[rev],)


def prod(x: Any, dim: Any = None, keepdim: bool = False, *, dtype: Any = None) -> Tensor:
    """Product over one dim (or all); exact gradients also where inputs are 0 (products of the others)."""
    x = _lift(x)
    if dtype is not None:
        x = astype(x, dtype)
    if dim is None:
        flat = reshape(x, (-1,))
        return reshape(prod(flat, 0), ()) if x.array.size else wrap_array(np.ones((), x.array.dtype))
    d = _dim(dim, x.ndim, "prod")
    if x.ndim == 0:
        return clone(x)
    out = np.prod(x.array, axis=d, keepdims=bool(keepdim))
    if x.array.dtype.kind != "f":
        return wrap_array(out.astype(backend.int64))
    return record_op(out, (x,), _prod_vjp, (d, bool(keepdim)))


def _prod_vjp(g, y, args, saved, needs, xp):  # type: ignore[no-untyped-def]
    if xp.differentiable:
        raise StateError("prod: double backward (create_graph=True) is not supported")
    d, keep = saved
    a = args[0]
    # The product of the other elements = exclusive running products from the left and the right.
    n = a.shape[d]
    ones_shape = list(a.shape)
    ones_shape[d] = 1
    one = np.ones(ones_shape, a.dtype)
    left = np.concatenate([one, np.cumprod(a, axis=d).take(range(n - 1), axis=d)], axis=d) if n else one[:0]
    rev = (slice(None),) * d + (slice(None, None, -1),)
    right_rev = np.cumprod(a[rev], axis=d)
    right = np.concatenate([one, right_rev.take(range(n - 1), axis=d)], axis=d)[rev] if n else one[:0]
    if not keep:
        g = np.expand_dims(g, d)
    return (g * left * right,)


def _sorted(x: Any, dim: int, descending: bool, stable: bool) -> tuple[Tensor, np.ndarray, int]:
    x = _lift(x)
    d = _dim(dim, x.ndim, "sort")
    if x.ndim == 0:
        return x, np.zeros((), np.int64), 0
    key = -x.array if descending and x.array.dtype.kind != "b" else x.array
    idx = np.argsort(key, axis=d, kind="stable" if stable or descending else None)
    if descending and x.array.dtype.kind == "b":
        idx = np.flip(np.argsort(x.array, axis=d, kind="stable"), axis=d)
    return x, idx, d


def sort(x: Any, dim: int = -1, descending: bool = False, stable: bool = False) -> Any:
    """``(values, indices)`` sorted along ``dim`` (torch.sort); the gradient goes back to each value's place."""
    x, idx, d = _sorted(x, dim, descending, stable)
    if x.ndim == 0:
        return return_types.sort(clone(x), wrap_array(idx))
    return return_types.sort(_take_along(x, idx, d), wrap_array(idx.astype(np.int64)))


def argsort(x: Any, dim: int = -1, descending: bool = False, stable: bool = False) -> Tensor:
    """The indices that sort ``x`` along ``dim``."""
    return wrap_array(_sorted(x, dim, descending, stable)[1].astype(np.int64))


def topk(x: Any, k: int, dim: int = -1, largest: bool = True, sorted: bool = True) -> Any:
    """``(values, indices)`` of the k largest (or smallest) along ``dim`` (torch.topk)."""
    x = _lift(x)
    d = _dim(dim, x.ndim, "topk")
    n = x.shape[d] if x.ndim else 1
    if not 0 <= k <= n:
        raise OutOfRangeError(f"topk: k={k} is out of range for dimension {d} of size {n}")
    _, idx, d = _sorted(x, d, largest, True)
    if x.ndim == 0:
        return return_types.topk(clone(x), wrap_array(idx))
    idx = idx.take(range(k), axis=d)
    return return_types.topk(_take_along(x, idx, d), wrap_array(idx.astype(np.int64)))


def flip(x: Any, dims: Any) -> Tensor:
    """Reverse the order along ``dims``."""
    x = _lift(x)
    axes = _norm_axes(dims, x.ndim)
    index = tuple(slice(None, None, -1) if i in axes else slice(None) for i in range(x.ndim))
    return getitem(x, index)


def repeat(x: Any, *sizes: Any) -> Tensor:
    """Tile ``x`` (torch's ``Tensor.repeat``): ``sizes`` repeats per dim, extra leading dims allowed."""
    x = _lift(x)
    reps = tuple(sizes[0]) if len(sizes) == 1 and not isinstance(sizes[0], (int, np.integer)) else sizes
    if len(reps) < x.ndim:
        raise ArgumentError(
            f"repeat: the number of repeats ({len(reps)}) can not be smaller than the number of dims ({x.ndim})"
        )
    lead = len(reps) - x.ndim
    x = reshape(x, (1,) * lead + x.shape)
    grids = np.ix_(*[np.tile(np.arange(n), int(r)) for n, r in zip(x.shape, reps)])
    return getitem(x, grids)


def index_select(x: Any, dim: int, index: Any) -> Tensor:
    """The slices ``index`` along ``dim`` (repeats allowed; their gradients add up)."""
    x = _lift(x)
    d = _dim(dim, x.ndim, "index_select")
    idx = np.asarray(_data_of_index(index)).reshape(-1)
    return getitem(x, (slice(None),) * d + (idx,))


def _data_of_index(index: Any) -> Any:
    return index.array if isinstance(index, Tensor) else index


def masked_fill(x: Any, mask: Any, value: Any) -> Tensor:
    """``x`` with ``value`` where ``mask`` is true (out of place)."""
    x = _lift(x)
    return where(mask, _lift(value, x), x)


def tril(x: Any, diagonal: int = 0) -> Tensor:
    """The lower triangle of the last two dims (the rest set to 0)."""
    x = _lift(x)
    keep = np.tril(np.ones(x.shape[-2:], dtype=bool), diagonal)
    return where(keep, x, np.zeros((), x.array.dtype))


def triu(x: Any, diagonal: int = 0) -> Tensor:
    """The upper triangle of the last two dims (the rest set to 0)."""
    x = _lift(x)
    keep = np.triu(np.ones(x.shape[-2:], dtype=bool), diagonal)
    return where(keep, x, np.zeros((), x.array.dtype))


def split(x: Any, split_size_or_sections: Any, dim: int = 0) -> tuple[Tensor, ...]:
    """Pieces of ``split_size`` along ``dim`` (the last may be smaller), or of the listed sizes."""
    x = _lift(x)
    d = _dim(dim, x.ndim, "split")
    n = x.shape[d]
    if isinstance(split_size_or_sections, (int, np.integer)):
        size = int(split_size_or_sections)
        if size <= 0:
            raise ArgumentError(f"split: split_size must be positive, got {size}")
        bounds = list(range(0, n, size)) + [n]
    else:
        sizes = [int(s) for s in split_size_or_sections]
        if _builtin_sum(sizes) != n:
            raise ShapeError(f"split: sizes {sizes} add up to {_builtin_sum(sizes)}, but dim {d} has size {n}")
        bounds = [0] + list(np.cumsum(sizes))
    lead = (slice(None),) * d
    return tuple(getitem(x, lead + (slice(int(a), int(b)),)) for a, b in zip(bounds[:-1], bounds[1:]))


def chunk(x: Any, chunks: int, dim: int = 0) -> tuple[Tensor, ...]:
    """``chunks`` pieces of equal size along ``dim`` (the last may be smaller, as in torch)."""
    x = _lift(x)
    d = _dim(dim, x.ndim, "chunk")
    if chunks <= 0:
        raise ArgumentError(f"chunk: chunks must be positive, got {chunks}")
    n = x.shape[d]
    return split(x, _builtin_max(1, -(-n // chunks)), d)


def narrow(x: Any, dim: int, start: int, length: int) -> Tensor:
    """``length`` elements from ``start`` along ``dim`` (a view)."""
    x = _lift(x)
    d = _dim(dim, x.ndim, "narrow")
    start = int(start.item() if isinstance(start, Tensor) else start)
    n = x.shape[d]
    if start < 0:
        start += n
    if not (0 <= start and length >= 0 and start + length <= n):
        raise OutOfRangeError(f"narrow: start {start} + length {length} exceeds dimension {d} of size {n}")
    return getitem(x, (slice(None),) * d + (slice(start, start + length),))


def unbind(x: Any, dim: int = 0) -> tuple[Tensor, ...]:
    """The slices along ``dim``, with that dim removed."""
    x = _lift(x)
    d = _dim(dim, x.ndim, "unbind")
    return tuple(getitem(x, (slice(None),) * d + (i,)) for i in range(x.shape[d]))


def mm(a: Any, b: Any) -> Tensor:
    """Matrix product of two 2-D tensors (torch.mm: no broadcasting, no vectors)."""
    a, b = _pair(a, b)
    if a.ndim != 2 or b.ndim != 2:
        raise ShapeError(f"mm: expected two 2-D tensors, got shapes {a.shape} and {b.shape}")
    return matmul(a, b)


def bmm(a: Any, b: Any) -> Tensor:
    """Batched matrix product of two 3-D tensors with the same batch size (torch.bmm)."""
    a, b = _pair(a, b)
    if a.ndim != 3 or b.ndim != 3 or a.shape[0] != b.shape[0]:
        raise ShapeError(f"bmm: expected 3-D tensors with the same batch size, got shapes {a.shape} and {b.shape}")
    return matmul(a, b)


def mv(a: Any, v: Any) -> Tensor:
    """Matrix-vector product (torch.mv)."""
    a, v = _pair(a, v)
    if a.ndim != 2 or v.ndim != 1:
        raise ShapeError(f"mv: expected a 2-D and a 1-D tensor, got shapes {a.shape} and {v.shape}")
    return matmul(a, v)


def dot(a: Any, b: Any) -> Tensor:
    """Inner product of two 1-D tensors (torch.dot)."""
    a, b = _pair(a, b)
    if a.ndim != 1 or b.ndim != 1:
        raise ShapeError(f"dot: expected two 1-D tensors, got shapes {a.shape} and {b.shape}")
    return matmul(a, b)


def outer(a: Any, b: Any) -> Tensor:
    """Outer product of two 1-D tensors."""
    a, b = _pair(a, b)
    return mul(reshape(a, (-1, 1)), reshape(b, (1, -1)))


def t(x: Any) -> Tensor:
    """Transpose a tensor of at most 2 dims (torch.t)."""
    x = _lift(x)
    if x.ndim > 2:
        raise ShapeError(f"t() expects a tensor with <= 2 dimensions, but got shape {x.shape}; use transpose(d0, d1)")
    return permute(x, tuple(reversed(range(x.ndim))))


_log1p_vjp.reads_inputs = True  # type: ignore[attr-defined]
for _rule in (_rsqrt_vjp, _zero_vjp):
    _rule.reads_inputs = False  # type: ignore[attr-defined]


# ---------------------------------------------------------------------- torch's function forms of tensor methods
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


def argmax(x: Any, dim: Any = None, keepdim: bool = False) -> Tensor:
    """Index of the largest value (over everything, flattened, or along ``dim``)."""
    return _lift(x).argmax(dim, keepdim)


def argmin(x: Any, dim: Any = None, keepdim: bool = False) -> Tensor:
    """Index of the smallest value (over everything, flattened, or along ``dim``)."""
    return _lift(x).argmin(dim, keepdim)


def all(x: Any, dim: Any = None, keepdim: bool = False) -> Tensor:
    return _lift(x).all(dim, keepdim)


def any(x: Any, dim: Any = None, keepdim: bool = False) -> Tensor:
    return _lift(x).any(dim, keepdim)


def numel(x: Any) -> int:
    return _lift(x).numel()


def is_floating_point(x: Any) -> bool:
    return _lift(x).is_floating_point()


def tile(x: Any, dims: Any) -> Tensor:
    return _lift(x).tile(dims)


def unique(
    x: Any, sorted: bool = True, return_inverse: bool = False, return_counts: bool = False, dim: Any = None
) -> Any:
    return _lift(x).unique(sorted, return_inverse, return_counts, dim)


def bincount(x: Any, weights: Any = None, minlength: int = 0) -> Tensor:
    return _lift(x).bincount(weights, minlength)


def hstack(tensors: Sequence[Any]) -> Tensor:
    """Join along dim 1 (dim 0 for 1-D tensors)."""
    ts = [_lift(t) for t in tensors]
    return concatenate(ts, 0 if ts and ts[0].ndim == 1 else 1)


def vstack(tensors: Sequence[Any]) -> Tensor:
    """Join along dim 0 (1-D tensors become rows)."""
    return concatenate([reshape(_lift(t), (1, -1)) if _lift(t).ndim == 1 else t for t in tensors], 0)


concat = concatenate


def _scatter_index(x: Tensor, dim: int, index: Any, op: str) -> tuple[Any, tuple[int, ...]]:
    """The full advanced index that ``scatter``/``gather`` along ``dim`` address (checked to lie inside x)."""
    idx = index.array if isinstance(index, Tensor) else np.asarray(index)
    if idx.dtype.kind not in "iu":
        raise ArgumentTypeError(f"{op}: index must hold integers, got {idx.dtype}")
    if idx.ndim != x.ndim:
        raise ShapeError(f"{op}: index has {idx.ndim} dims but the tensor has {x.ndim} (shapes {idx.shape}, {x.shape})")
    d = _dim(dim, x.ndim, op)
    if idx.size and (idx.min() < 0 or idx.max() >= x.shape[d]):
        raise OutOfRangeError(
            f"{op}: index values must lie in [0, {x.shape[d]}) along dim {d}; got {idx.min()}..{idx.max()}"
        )
    grids: list[Any] = list(np.indices(idx.shape, sparse=True))
    grids[d] = idx
    return tuple(grids), idx.shape


def _scatter_source(src: Any, shape: tuple[int, ...], like: Tensor) -> Tensor:
    value = _lift(src, like)
    if value.ndim and value.shape != shape:  # torch reads only the part of src that the index covers
        value = getitem(value, tuple(slice(0, n) for n in shape))
    return value


def scatter(x: Any, dim: int, index: Any, src: Any = None, *, value: Any = None, reduce: Any = None) -> Tensor:
    """A copy of ``x`` with ``src`` (or ``value``) written at ``index`` along ``dim`` (torch.scatter):
    ``out[i][index[i][j]] = src[i][j]`` for dim=1. One-hot: ``zeros(n, C).scatter(1, y[:, None], 1.0)``."""
    if reduce is not None:
        raise ArgumentError("scatter: reduce= is not supported; use scatter_add for sums")
    x = _lift(x)
    full, shape = _scatter_index(x, dim, index, "scatter")
    return index_put(x, full, _scatter_source(value if src is None else src, shape, x))


def scatter_add(x: Any, dim: int, index: Any, src: Any) -> Tensor:
    """A copy of ``x`` with ``src`` added at ``index`` along ``dim`` (repeated indices add up)."""
    x = _lift(x)
    full, shape = _scatter_index(x, dim, index, "scatter_add")
    value = _scatter_source(src, shape, x)
    out = x.array.copy()
    np.add.at(out, full, np.broadcast_to(value.array, shape))
    return record_op(out, (x, value), _scatter_add_into_vjp, full)


def _scatter_add_into_vjp(g, y, args, saved, needs, xp):  # type: ignore[no-untyped-def]
    x, v = args
    return (g if needs[0] else None, xp.sum_to(g[saved], v.shape) if needs[1] else None)


def index_fill(x: Any, dim: int, index: Any, value: Any) -> Tensor:
    """A copy of ``x`` with the slices ``index`` along ``dim`` set to ``value``."""
    x = _lift(x)
    d = _dim(dim, x.ndim, "index_fill")
    idx = np.asarray(_data_of_index(index)).reshape(-1)
    return index_put(x, (slice(None),) * d + (idx,), value)


_scatter_add_into_vjp.reads_inputs = False  # type: ignore[attr-defined]


def einsum(equation: str, *operands: Any) -> Tensor:
    """Einstein summation (torch.einsum / np.einsum), e.g. ``einsum("bij,bjk->bik", a, b)``.

    The gradient of each operand is again an einsum (of the output gradient with the other operands).
    Not supported: ``...`` and an index repeated within one operand (a diagonal).

    Example:
        >>> import downslope as ds
        >>> ds.einsum("i,i->", ds.tensor([1.0, 2.0]), ds.tensor([3.0, 4.0]))
        tensor(11.)
    """
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    ts = [_lift(o) for o in operands]
    eq = equation.replace(" ", "")
    if "..." in eq:
        raise ArgumentError(f"einsum: '...' is not supported (equation {equation!r}); name every dimension")
    lhs, arrow, out = eq.partition("->")
    subs = lhs.split(",")
    if not arrow:  # implicit output: the indices that appear once, in alphabetical order
        out = "".join(sorted(c for c in set(lhs) if c != "," and lhs.count(c) == 1))
    if len(subs) != len(ts):
        raise ArgumentError(f"einsum: {equation!r} names {len(subs)} operand(s) but {len(ts)} were given")
    for k, (sub, t) in enumerate(zip(subs, ts)):
        if len(sub) != t.ndim:
            raise ShapeError(f"einsum: operand {k} has {t.ndim} dims (shape {t.shape}) but {sub!r} names {len(sub)}")
        if len(set(sub)) != len(sub):
            raise ArgumentError(f"einsum: an index repeated within one operand ({sub!r}, a diagonal) is not supported")
    kinds = {t.array.dtype for t in ts}
    if len(kinds) > 1:
        common = np.result_type(*kinds)
        ts = [t if t.array.dtype == common else astype(t, common) for t in ts]
    try:
        arr = np.einsum(f"{lhs}->{out}", *[t.array for t in ts], optimize=len(ts) > 2)
    except ValueError as exc:
        raise ShapeError(f"einsum {equation!r}: {exc} (shapes {[t.shape for t in ts]})") from None
    return record_op(np.asarray(arr), tuple(ts), _einsum_vjp, (subs, out))


def _einsum_vjp(g, y, args, saved, needs, xp):  # type: ignore[no-untyped-def]
    subs, out = saved
    grads = []
    for i, sub in enumerate(subs):
        if not needs[i]:
            grads.append(None)
            continue
        terms, operands = [out], [g]
        for j, (s, a) in enumerate(zip(subs, args)):
            if j != i:
                terms.append(s)
                operands.append(a)
        seen = set("".join(terms))
        missing = "".join(c for c in sub if c not in seen)
        if missing:  # indices summed within operand i alone: its gradient is constant along them
            sizes = tuple(args[i].shape[sub.index(c)] for c in missing)
            terms.append(missing)
            ones = np.ones(sizes, dtype=xp.data(g).dtype)
            operands.append(xp.constant(ones))
        spec = ",".join(terms) + "->" + sub
        grads.append(xp.einsum(spec, *operands))
    return tuple(grads)


_einsum_vjp.reads_inputs = "others"  # type: ignore[attr-defined]


# ---------------------------------------------------------------------- elementwise math, from a table
_LN2, _LN10 = math.log(2.0), math.log(10.0)

# name: (forward on arrays, derivative dy/dx as a function of (x, y, m) with m the rule namespace xp)
_UNARY: dict[str, tuple[Any, Any]] = {
    "tan": (np.tan, lambda x, y, m: 1 + y * y),
    "sinh": (np.sinh, lambda x, y, m: m.cosh(x)),
    "cosh": (np.cosh, lambda x, y, m: m.sinh(x)),
    "asin": (np.arcsin, lambda x, y, m: 1 / m.sqrt(1 - x * x)),
    "acos": (np.arccos, lambda x, y, m: -1 / m.sqrt(1 - x * x)),
    "atan": (np.arctan, lambda x, y, m: 1 / (1 + x * x)),
    "asinh": (np.arcsinh, lambda x, y, m: 1 / m.sqrt(x * x + 1)),
    "acosh": (np.arccosh, lambda x, y, m: 1 / m.sqrt(x * x - 1)),
    "atanh": (np.arctanh, lambda x, y, m: 1 / (1 - x * x)),
    "log2": (np.log2, lambda x, y, m: 1 / (x * _LN2)),
    "log10": (np.log10, lambda x, y, m: 1 / (x * _LN10)),
    "exp2": (np.exp2, lambda x, y, m: y * _LN2),
    "erfc": (
        lambda a: 1 - np.asarray(_erf_scalar(a), dtype=a.dtype),
        lambda x, y, m: m.exp(-(x * x)) * (-2 / math.sqrt(math.pi)),
    ),
    "logit": (lambda a: np.log(a / (1 - a)), lambda x, y, m: 1 / (x * (1 - x))),
    "deg2rad": (np.deg2rad, lambda x, y, m: math.pi / 180),
    "rad2deg": (np.rad2deg, lambda x, y, m: 180 / math.pi),
    "frac": (lambda a: a - np.trunc(a), lambda x, y, m: 1),
    "sinc": (
        lambda a: np.sinc(a),
        lambda x, y, m: _sinc_derivative(x, y, m),
    ),
}


def _sinc_derivative(x: Any, y: Any, m: Any) -> Any:
    # d/dx sin(pi x)/(pi x) = (cos(pi x) - sinc(x)) / x, and 0 at x = 0
    at_zero = m.data(x) == 0
    safe = m.where(at_zero, 1.0, x)
    d = (m.cos(math.pi * safe) - y) / safe
    return m.where(at_zero, 0.0, d)


def _unary_table_op(name: str) -> Any:
    forward, derivative = _UNARY[name]

    def op(x: Any) -> Tensor:
        x = _lift_float(x)
        return record_op(np.asarray(forward(x.array)).astype(x.array.dtype, copy=False), (x,), rule, name)

    def rule(g, y, args, saved, needs, xp):  # type: ignore[no-untyped-def]
        d = derivative(args[0], y, xp)
        return (g * d,)

    op.__name__ = op.__qualname__ = name
    op.__doc__ = f"Elementwise {name} (torch.{name}), with its gradient."
    rule.__name__ = f"_{name}_vjp"
    return op


tan = _unary_table_op("tan")
sinh = _unary_table_op("sinh")
cosh = _unary_table_op("cosh")
asin = _unary_table_op("asin")
acos = _unary_table_op("acos")
atan = _unary_table_op("atan")
asinh = _unary_table_op("asinh")
acosh = _unary_table_op("acosh")
atanh = _unary_table_op("atanh")
log2 = _unary_table_op("log2")
log10 = _unary_table_op("log10")
exp2 = _unary_table_op("exp2")
erfc = _unary_table_op("erfc")
logit = _unary_table_op("logit")
deg2rad = _unary_table_op("deg2rad")
rad2deg = _unary_table_op("rad2deg")
frac = _unary_table_op("frac")
sinc = _unary_table_op("sinc")
arcsin, arccos, arctan, arcsinh, arccosh, arctanh = asin, acos, atan, asinh, acosh, atanh


def atan2(a: Any, b: Any) -> Tensor:
    """The angle of (b, a): atan(a / b) in the right quadrant."""
    a, b = _pair(_lift_float(a), _lift_float(b))
    return record_op(np.arctan2(a.array, b.array), (a, b), _atan2_vjp)


def _atan2_vjp(g, y, args, saved, needs, xp):  # type: ignore[no-untyped-def]
    a, b = args
    r2 = a * a + b * b
    return (xp.sum_to(g * b / r2, a.shape) if needs[0] else None, xp.sum_to(-g * a / r2, b.shape) if needs[1] else None)


arctan2 = atan2


def hypot(a: Any, b: Any) -> Tensor:
    """sqrt(a^2 + b^2) elementwise."""
    a, b = _pair(_lift_float(a), _lift_float(b))
    return record_op(np.hypot(a.array, b.array), (a, b), _hypot_vjp)


def _hypot_vjp(g, y, args, saved, needs, xp):  # type: ignore[no-untyped-def]
    a, b = args
    return (xp.sum_to(g * a / y, a.shape) if needs[0] else None, xp.sum_to(g * b / y, b.shape) if needs[1] else None)


def logaddexp(a: Any, b: Any) -> Tensor:
    """log(e^a + e^b), stable."""
    a, b = _pair(_lift_float(a), _lift_float(b))
    return record_op(np.logaddexp(a.array, b.array), (a, b), _logaddexp_vjp)


def _logaddexp_vjp(g, y, args, saved, needs, xp):  # type: ignore[no-untyped-def]
    a, b = args
    return (
        xp.sum_to(g * xp.exp(a - y), a.shape) if needs[0] else None,
        xp.sum_to(g * xp.exp(b - y), b.shape) if needs[1] else None,
    )


def xlogy(a: Any, b: Any) -> Tensor:
    """a * log(b), 0 where a == 0 (also at b == 0)."""
    a, b = _pair(_lift_float(a), _lift_float(b))
    zero = a.array == 0
    return where(zero, 0.0, a * log(where(zero, 1.0, b)))


def float_power(a: Any, b: Any) -> Tensor:
    """a ** b in float64 (torch.float_power)."""
    return pow(astype(_lift_float(a), np.float64), astype(_lift_float(b), np.float64))


def fmod(a: Any, b: Any) -> Tensor:
    """Remainder with the sign of the dividend (C's fmod); the gradient w.r.t. a is 1."""
    a, b = _pair(a, b)
    return sub(a, mul(trunc(div(a, b)) if a.array.dtype.kind == "f" else wrap_array(np.trunc(a.array / b.array)), b))


def remainder(a: Any, b: Any) -> Tensor:
    """Remainder with the sign of the divisor (Python's %); the gradient w.r.t. a is 1."""
    a, b = _pair(a, b)
    if a.array.dtype.kind != "f" and b.array.dtype.kind != "f":
        return wrap_array(np.mod(a.array, b.array))
    return sub(a, mul(floor(div(a, b)), b))


def floor_divide(a: Any, b: Any) -> Tensor:
    """floor(a / b) (no gradient, like torch)."""
    a, b = _pair(a, b)
    return wrap_array(np.floor_divide(a.array, b.array))


def copysign(a: Any, b: Any) -> Tensor:
    """|a| with the sign of b."""
    a, b = _pair(_lift_float(a), _lift_float(b))
    return where(np.signbit(b.array), -abs(a), abs(a))


def heaviside(x: Any, values: Any) -> Tensor:
    """0 where x < 0, ``values`` where x == 0, 1 where x > 0 (no gradient)."""
    x, v = _pair(x, values)
    return wrap_array(np.heaviside(x.array, v.array).astype(x.array.dtype, copy=False))


def fmax(a: Any, b: Any) -> Tensor:
    """Elementwise maximum that ignores NaN (the gradient goes to the value chosen)."""
    a, b = _pair(a, b)
    take_a = (a.array >= b.array) | np.isnan(b.array)
    return where(take_a, a, b)


def fmin(a: Any, b: Any) -> Tensor:
    """Elementwise minimum that ignores NaN."""
    a, b = _pair(a, b)
    take_a = (a.array <= b.array) | np.isnan(b.array)
    return where(take_a, a, b)


def clamp_min(x: Any, min: Any) -> Tensor:
    return clip(x, min, None)


def clamp_max(x: Any, max: Any) -> Tensor:
    return clip(x, None, max)


def nan_to_num(x: Any, nan: float = 0.0, posinf: Any = None, neginf: Any = None) -> Tensor:
    """NaN, +inf and -inf replaced by finite values (the gradient passes where x was finite)."""
    x = _lift(x)
    d = x.array
    if d.dtype.kind != "f":
        return x
    info = np.finfo(d.dtype)
    out = np.nan_to_num(
        d, nan=nan, posinf=info.max if posinf is None else posinf, neginf=info.min if neginf is None else neginf
    )
    return where(np.isfinite(d), x, wrap_array(out.astype(d.dtype, copy=False)))


for _rule in (_atan2_vjp, _hypot_vjp):
    _rule.reads_inputs = True  # type: ignore[attr-defined]


# ---------------------------------------------------------------------- shapes, indexing and reductions, continued
def movedim(x: Any, source: Any, destination: Any) -> Tensor:
    """Move dims ``source`` to positions ``destination`` (the others keep their order)."""
    x = _lift(x)
    src = [source] if isinstance(source, (int, np.integer)) else list(source)
    dst = [destination] if isinstance(destination, (int, np.integer)) else list(destination)
    if len(src) != len(dst):
        raise ArgumentError(f"movedim: {len(src)} source dim(s) but {len(dst)} destination(s)")
    moved = [_dim(int(s_), x.ndim, "movedim") for s_ in src]
    target = [-1] * x.ndim
    for s_, d_ in zip(moved, dst):
        target[_dim(int(d_), x.ndim, "movedim")] = s_
    rest = iter([d for d in range(x.ndim) if d not in moved])
    return permute(x, [t_ if t_ >= 0 else next(rest) for t_ in target])


moveaxis = movedim


def swapaxes(x: Any, axis0: int, axis1: int) -> Tensor:
    return transpose(x, axis0, axis1)


swapdims = swapaxes


def ravel(x: Any) -> Tensor:
    return reshape(x, (-1,))


def roll(x: Any, shifts: Any, dims: Any = None) -> Tensor:
    """Shift elements along ``dims`` (wrapping around); without dims the flattened tensor is rolled."""
    x = _lift(x)
    if dims is None:
        return reshape(roll(reshape(x, (-1,)), shifts, 0), x.shape)
    shifts = (shifts,) if isinstance(shifts, (int, np.integer)) else tuple(shifts)
    dims = (dims,) if isinstance(dims, (int, np.integer)) else tuple(dims)
    index: list[Any] = [slice(None)] * x.ndim
    for s_, d_ in zip(shifts, dims):
        d = _dim(d_, x.ndim, "roll")
        index[d] = (np.arange(x.shape[d]) - int(s_)) % _builtin_max(x.shape[d], 1)
    return getitem(x, np.ix_(*[np.arange(n) if isinstance(i, slice) else i for i, n in zip(index, x.shape)]))


def diff(x: Any, n: int = 1, dim: int = -1) -> Tensor:
    """Differences of neighbours along ``dim`` (n times)."""
    x = _lift(x)
    d = _dim(dim, x.ndim, "diff")
    for _ in range(n):
        lead = (slice(None),) * d
        x = sub(getitem(x, lead + (slice(1, None),)), getitem(x, lead + (slice(None, -1),)))
    return x


def diagonal(x: Any, offset: int = 0, dim1: int = 0, dim2: int = 1) -> Tensor:
    """The diagonal of the (dim1, dim2) planes, as the last dim."""
    x = _lift(x)
    d1, d2 = _dim(dim1, x.ndim, "diagonal"), _dim(dim2, x.ndim, "diagonal")
    x = movedim(x, (d1, d2), (-2, -1))
    rows, cols = x.shape[-2], x.shape[-1]
    start_r, start_c = (0, offset) if offset >= 0 else (-offset, 0)
    n = _builtin_max(0, builtins.min(rows - start_r, cols - start_c))
    i = np.arange(n)
    return getitem(x, (Ellipsis, i + start_r, i + start_c))


def diag(x: Any, diagonal_: int = 0) -> Tensor:
    """A 1-D tensor becomes a square matrix with it on a diagonal; a matrix gives its diagonal."""
    x = _lift(x)
    if x.ndim == 2:
        return diagonal(x, diagonal_)
    if x.ndim != 1:
        raise ShapeError(f"diag: expected a 1-D or 2-D tensor, got shape {x.shape}")
    n = x.shape[0] + builtins.abs(diagonal_)
    i = np.arange(x.shape[0])
    r, c = (i, i + diagonal_) if diagonal_ >= 0 else (i - diagonal_, i)
    return index_put(wrap_array(np.zeros((n, n), x.array.dtype)), (r, c), x)


def trace(x: Any) -> Tensor:
    """Sum of the main diagonal of a matrix."""
    return sum(diagonal(x))


def take(x: Any, index: Any) -> Tensor:
    """Elements of the flattened tensor at ``index`` (the result has index's shape)."""
    return getitem(reshape(x, (-1,)), np.asarray(_data_of_index(index)))


def take_along_dim(x: Any, indices: Any, dim: Any = None) -> Tensor:
    """``x`` picked at ``indices`` along ``dim`` (torch.take_along_dim; like gather with broadcasting)."""
    x = _lift(x)
    idx = np.asarray(_data_of_index(indices))
    if dim is None:
        return take(x, idx.reshape(-1))
    d = _dim(dim, x.ndim, "take_along_dim")
    shape = list(
        np.broadcast_shapes(
            tuple(1 if i == d else s for i, s in enumerate(x.shape)),
            tuple(1 if i == d else s for i, s in enumerate(idx.shape)),
        )
    )
    idx = np.broadcast_to(idx, shape[:d] + [idx.shape[d]] + shape[d + 1 :])
    x = broadcast_to(x, shape[:d] + [x.shape[d]] + shape[d + 1 :])
    return _take_along(x, idx, d)


def nonzero(x: Any, as_tuple: bool = False) -> Any:
    """Indices of the non-zero elements: an (n, ndim) int64 tensor, or a tuple of index tensors."""
    idx = np.nonzero(_lift(x).array)
    if as_tuple:
        return tuple(wrap_array(i.astype(np.int64)) for i in idx)
    return wrap_array(np.stack(idx, axis=1).astype(np.int64) if idx else np.zeros((0, 0), np.int64))


def argwhere(x: Any) -> Tensor:
    return nonzero(x)


def count_nonzero(x: Any, dim: Any = None) -> Tensor:
    return wrap_array(np.asarray(np.count_nonzero(_lift(x).array, axis=dim), dtype=np.int64))


def meshgrid(*tensors: Any, indexing: str = "ij") -> tuple[Tensor, ...]:
    """Coordinate grids (``indexing='ij'`` by default, as torch; 'xy' swaps the first two)."""
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    ts = [reshape(_lift(t), (-1,)) for t in tensors]
    if indexing not in ("ij", "xy"):
        raise ArgumentError(f"meshgrid: indexing must be 'ij' or 'xy', got {indexing!r}")
    shape = [t.shape[0] for t in ts]
    if indexing == "xy" and len(ts) >= 2:
        shape[0], shape[1] = shape[1], shape[0]
    out = []
    for k, t in enumerate(ts):
        axis = (1 - k if k < 2 else k) if indexing == "xy" and len(ts) >= 2 else k
        view = [1] * len(ts)
        view[axis] = t.shape[0]
        out.append(broadcast_to(reshape(t, view), shape))
    return tuple(out)


def broadcast_tensors(*tensors: Any) -> tuple[Tensor, ...]:
    ts = [_lift(t) for t in tensors]
    shape = np.broadcast_shapes(*(t.shape for t in ts))
    return tuple(broadcast_to(t, shape) for t in ts)


def atleast_1d(x: Any) -> Tensor:
    x = _lift(x)
    return reshape(x, (1,)) if x.ndim == 0 else x


def atleast_2d(x: Any) -> Tensor:
    x = _lift(x)
    return reshape(x, (1,) * (2 - x.ndim) + x.shape) if x.ndim < 2 else x


def column_stack(tensors: Sequence[Any]) -> Tensor:
    return concatenate([reshape(_lift(t), (-1, 1)) if _lift(t).ndim < 2 else t for t in tensors], 1)


def dstack(tensors: Sequence[Any]) -> Tensor:
    ts = [_lift(t) for t in tensors]
    ts = [reshape(t, (1, -1, 1)) if t.ndim == 1 else unsqueeze(t, -1) if t.ndim == 2 else t for t in ts]
    return concatenate(ts, 2)


def tensor_split(x: Any, indices_or_sections: Any, dim: int = 0) -> tuple[Tensor, ...]:
    """Split into n nearly equal parts (the first ones one longer), or at the given indices."""
    x = _lift(x)
    d = _dim(dim, x.ndim, "tensor_split")
    n = x.shape[d]
    if isinstance(indices_or_sections, (int, np.integer)):
        k = int(indices_or_sections)
        sizes = [n // k + (1 if i < n % k else 0) for i in range(k)]
        bounds = [0] + list(np.cumsum(sizes))
    else:
        bounds = [0] + [int(i) for i in indices_or_sections] + [n]
    lead = (slice(None),) * d
    return tuple(getitem(x, lead + (slice(a, b),)) for a, b in zip(bounds[:-1], bounds[1:]))


def hsplit(x: Any, sections: Any) -> tuple[Tensor, ...]:
    x = _lift(x)
    return tensor_split(x, sections, 1 if x.ndim > 1 else 0)


def vsplit(x: Any, sections: Any) -> tuple[Tensor, ...]:
    return tensor_split(x, sections, 0)


def dsplit(x: Any, sections: Any) -> tuple[Tensor, ...]:
    return tensor_split(x, sections, 2)


def repeat_interleave(x: Any, repeats: Any, dim: Any = None) -> Tensor:
    """Each element (or slice along ``dim``) repeated ``repeats`` times in a row."""
    x = _lift(x)
    if dim is None:
        x, dim = reshape(x, (-1,)), 0
    d = _dim(dim, x.ndim, "repeat_interleave")
    reps = np.asarray(_data_of_index(repeats))
    idx = np.repeat(np.arange(x.shape[d]), reps)
    return getitem(x, (slice(None),) * d + (idx,))


def unflatten(x: Any, dim: int, sizes: Sequence[int]) -> Tensor:
    x = _lift(x)
    d = _dim(dim, x.ndim, "unflatten")
    return reshape(x, x.shape[:d] + tuple(sizes) + x.shape[d + 1 :])


def select(x: Any, dim: int, index: int) -> Tensor:
    """The slice ``index`` along ``dim`` (that dim removed)."""
    x = _lift(x)
    d = _dim(dim, x.ndim, "select")
    return getitem(x, (slice(None),) * d + (int(index),))


def index_add(x: Any, dim: int, index: Any, source: Any, *, alpha: Any = 1) -> Tensor:
    """A copy of ``x`` with the slices of ``source`` added at ``index`` along ``dim`` (repeats add up)."""
    x = _lift(x)
    d = _dim(dim, x.ndim, "index_add")
    idx = np.asarray(_data_of_index(index)).reshape(-1)
    src = _lift(source, x)
    if alpha != 1:
        src = mul(src, alpha)
    full: Any = (slice(None),) * d + (idx,)
    out = x.array.copy()
    np.add.at(out, full, src.array)
    return record_op(out, (x, src), _scatter_add_into_vjp, full)


def index_copy(x: Any, dim: int, index: Any, source: Any) -> Tensor:
    """A copy of ``x`` with the slices of ``source`` written at ``index`` along ``dim``."""
    x = _lift(x)
    d = _dim(dim, x.ndim, "index_copy")
    idx = np.asarray(_data_of_index(index)).reshape(-1)
    return index_put(x, (slice(None),) * d + (idx,), source)


def cross(a: Any, b: Any, dim: Any = None) -> Tensor:
    """The cross product of 3-vectors along ``dim`` (the first dim of size 3 by default)."""
    a, b = _pair(a, b)
    if dim is None:
        dim = next((i for i, s in enumerate(a.shape) if s == 3), None)
        if dim is None:
            raise ShapeError(f"cross: no dimension of size 3 in shape {a.shape}")
    d = _dim(dim, a.ndim, "cross")
    a0, a1, a2 = (select(a, d, i) for i in range(3))
    b0, b1, b2 = (select(b, d, i) for i in range(3))
    return stack([a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0], d)


def inner(a: Any, b: Any) -> Tensor:
    """Sum over the last dims of a and b (torch.inner)."""
    a, b = _pair(a, b)
    if a.ndim == 0 or b.ndim == 0:
        return mul(a, b)
    return matmul(a, b) if b.ndim == 1 else matmul(a, transpose(b, -1, -2) if b.ndim > 1 else b)


def vdot(a: Any, b: Any) -> Tensor:
    return dot(a, b)


ger = outer


def addmm(x: Any, m1: Any, m2: Any, *, beta: Any = 1, alpha: Any = 1) -> Tensor:
    """beta * x + alpha * (m1 @ m2)."""
    return add(mul(x, beta) if beta != 1 else x, mul(mm(m1, m2), alpha) if alpha != 1 else mm(m1, m2))


def addmv(x: Any, m: Any, v: Any, *, beta: Any = 1, alpha: Any = 1) -> Tensor:
    return add(mul(x, beta) if beta != 1 else x, mul(mv(m, v), alpha) if alpha != 1 else mv(m, v))


def baddbmm(x: Any, b1: Any, b2: Any, *, beta: Any = 1, alpha: Any = 1) -> Tensor:
    return add(mul(x, beta) if beta != 1 else x, mul(bmm(b1, b2), alpha) if alpha != 1 else bmm(b1, b2))


def addbmm(x: Any, b1: Any, b2: Any, *, beta: Any = 1, alpha: Any = 1) -> Tensor:
    prods = sum(bmm(b1, b2), 0)
    return add(mul(x, beta) if beta != 1 else x, mul(prods, alpha) if alpha != 1 else prods)


def addr(x: Any, v1: Any, v2: Any, *, beta: Any = 1, alpha: Any = 1) -> Tensor:
    return add(mul(x, beta) if beta != 1 else x, mul(outer(v1, v2), alpha) if alpha != 1 else outer(v1, v2))


def kthvalue(x: Any, k: int, dim: int = -1, keepdim: bool = False) -> Any:
    """``(values, indices)`` of the k-th smallest along ``dim`` (k from 1)."""
    x = _lift(x)
    d = _dim(dim, x.ndim, "kthvalue")
    n = x.shape[d] if x.ndim else 1
    if not 1 <= k <= n:
        raise OutOfRangeError(f"kthvalue: k={k} is out of range for dimension {d} of size {n}")
    _, idx, d = _sorted(x, d, False, True)
    idx = idx.take([k - 1], axis=d) if x.ndim else idx
    values = _take_along(x, idx, d) if x.ndim else clone(x)
    if not keepdim and x.ndim:
        values, idx = squeeze(values, d), idx.squeeze(d)
    return return_types.kthvalue(values, wrap_array(np.asarray(idx, np.int64)))


def median(x: Any, dim: Any = None, keepdim: bool = False) -> Any:
    """The lower median (torch's): a 0-d tensor, or ``(values, indices)`` along ``dim``."""
    x = _lift(x)
    if dim is None:
        flat = reshape(x, (-1,))
        return kthvalue(flat, (flat.shape[0] + 1) // 2, 0).values
    d = _dim(dim, x.ndim, "median")
    r = kthvalue(x, (x.shape[d] + 1) // 2 if x.ndim else 1, d, keepdim)
    return return_types.median(r.values, r.indices)


def aminmax(x: Any, *, dim: Any = None, keepdim: bool = False) -> Any:
    return return_types.aminmax(amin(x, dim, keepdim), amax(x, dim, keepdim))


def var_mean(
    x: Any, dim: Any = None, unbiased: Any = None, keepdim: bool = False, **kwargs: Any
) -> tuple[Tensor, Tensor]:
    from .functional import var as _var

    return _var(x, dim, unbiased, keepdim, **kwargs), mean(x, dim, keepdim)


def std_mean(
    x: Any, dim: Any = None, unbiased: Any = None, keepdim: bool = False, **kwargs: Any
) -> tuple[Tensor, Tensor]:
    from .functional import std as _std

    return _std(x, dim, unbiased, keepdim, **kwargs), mean(x, dim, keepdim)


def nansum(x: Any, dim: Any = None, keepdim: bool = False) -> Tensor:
    x = _lift(x)
    return sum(where(np.isnan(x.array), 0.0, x) if x.array.dtype.kind == "f" else x, dim, keepdim)


def nanmean(x: Any, dim: Any = None, keepdim: bool = False) -> Tensor:
    x = _lift_float(x)
    valid = ~np.isnan(x.array)
    count = np.sum(valid, axis=dim, keepdims=keepdim)
    return div(nansum(x, dim, keepdim), wrap_array(np.asarray(count, x.array.dtype)))


def signbit(x: Any) -> Tensor:
    return wrap_array(np.signbit(_lift(x).array))


def isneginf(x: Any) -> Tensor:
    return wrap_array(np.isneginf(_lift(x).array))


def isposinf(x: Any) -> Tensor:
    return wrap_array(np.isposinf(_lift(x).array))


def logical_xor(a: Any, b: Any) -> Tensor:
    return wrap_array(np.logical_xor(_lift(a).array, _data_of_index(b)))


def multinomial(probs: Any, num_samples: int, replacement: bool = False, *, generator: Any = None) -> Tensor:
    """Indices drawn from each row's (unnormalised) probabilities, from the library's seeded generator
    (or ``generator``)."""
    if generator is not None:
        from .generator import as_numpy_generator

        with backend.use_generator(as_numpy_generator(generator, "multinomial")):
            return multinomial(probs, num_samples, replacement)
    p = np.asarray(_lift(probs).array, np.float64)
    rows = p.reshape(-1, p.shape[-1]) if p.ndim else p.reshape(1, 1)
    if (rows < 0).any() or not np.isfinite(rows).all():
        raise ArgumentError("multinomial: probabilities must be finite and non-negative")
    rng = backend.rng()
    out = []
    for row in rows:
        total = row.sum()
        if total <= 0:
            raise ArgumentError("multinomial: each row needs a positive sum of probabilities")
        if not replacement and num_samples > np.count_nonzero(row):
            raise ArgumentError(f"multinomial: cannot draw {num_samples} samples without replacement from this row")
        out.append(rng.choice(row.size, size=num_samples, replace=replacement, p=row / total))
    result = np.asarray(out, np.int64)
    return wrap_array(result.reshape(p.shape[:-1] + (num_samples,)) if p.ndim > 1 else result.reshape(num_samples))


# ---------------------------------------------------------------------- Tensor methods for the ops above
def _as_method(fn: Any) -> Any:
    def method(self: Tensor, *args: Any, **kwargs: Any) -> Any:
        return fn(self, *args, **kwargs)

    method.__name__ = method.__qualname__ = fn.__name__
    method.__doc__ = fn.__doc__
    return method


_METHODS = {
    **{
        n: globals()[n]
        for n in (
            "tan sinh cosh asin acos atan asinh acosh atanh arcsin arccos arctan arcsinh arccosh arctanh log2 log10 "
            "exp2 erfc erf logit deg2rad rad2deg frac sinc atan2 arctan2 hypot logaddexp xlogy float_power fmod "
            "remainder floor_divide copysign heaviside fmax fmin clamp_min clamp_max nan_to_num movedim moveaxis "
            "swapaxes swapdims ravel roll diff diagonal diag trace take take_along_dim nonzero argwhere count_nonzero "
            "tensor_split hsplit vsplit dsplit repeat_interleave unflatten select index_add index_copy cross inner "
            "vdot ger addmm addmv baddbmm addbmm addr kthvalue median aminmax nansum nanmean signbit isneginf "
            "isposinf logical_xor multinomial softplus"
        ).split()
    },
    "absolute": abs,
    "fix": trunc,
    "sgn": sign,
}
for _name, _fn in _METHODS.items():
    if not hasattr(Tensor, _name):
        setattr(Tensor, _name, _as_method(_fn))


def _positive(self: Tensor) -> Tensor:
    return self


Tensor.positive = _positive  # type: ignore[attr-defined]

# In-place forms of out-of-place methods: computed out of place, then written into the tensor's array
# (recorded like every in-place op when gradients are). The ones with a NumPy in-place form are in tensor.py.
_NO_GRAD_RESULTS = {"eq", "ne", "lt", "le", "gt", "ge", "greater", "greater_equal", "less", "less_equal", "not_equal"}
_NO_GRAD_RESULTS |= {"logical_and", "logical_or", "logical_not", "logical_xor", "heaviside", "floor_divide"}


def _inplace_form(name: str) -> Any:
    keep_kind = name not in _NO_GRAD_RESULTS

    def method(self: Tensor, *args: Any, **kwargs: Any) -> Tensor:
        operands = [a for a in (*args, *kwargs.values()) if isinstance(a, Tensor)]
        return self._inplace_via(
            name + "_",
            lambda t: getattr(t, name)(*[t if a is self else a for a in args], **kwargs),
            *operands,
            reads_self=True,
            keep_kind=keep_kind,
        )

    method.__name__ = method.__qualname__ = name + "_"
    method.__doc__ = f"In-place :meth:`{name}` (writes into this tensor and returns it)."
    return method


for _name in (
    "tan sinh cosh asin acos atan asinh acosh atanh arcsin arccos arctan arcsinh arccosh arctanh log2 log10 exp2 erfc "
    "erf logit deg2rad rad2deg frac sinc atan2 arctan2 hypot logaddexp xlogy fmod remainder floor_divide copysign "
    "heaviside clamp_min clamp_max nan_to_num fix absolute sgn negative expm1 log1p rsqrt tril triu cumsum "
    "eq ne lt le gt ge greater greater_equal less less_equal not_equal logical_and logical_or logical_not "
    "logical_xor index_add index_copy subtract multiply divide true_divide"
).split():
    if not hasattr(Tensor, _name + "_"):
        setattr(Tensor, _name + "_", _inplace_form(_name))


# ---------------------------------------------------------------------- running reductions, masks, flat indices
def cumprod(x: Any, dim: int, *, dtype: Any = None) -> Tensor:
    """Running product along ``dim`` (exact gradients, also where inputs are 0)."""
    x = _lift(x)
    if dtype is not None:
        x = astype(x, dtype)
    d = _dim(dim, x.ndim, "cumprod")
    if x.ndim == 0:
        return clone(x)
    out = np.cumprod(x.array, axis=d)
    if x.array.dtype.kind != "f":
        return wrap_array(out.astype(np.int64))
    return record_op(out, (x,), _cumprod_vjp, d)


def _cumprod_vjp(g, y, args, saved, needs, xp):  # type: ignore[no-untyped-def]
    if xp.differentiable:
        raise StateError("cumprod: double backward (create_graph=True) is not supported")
    d = saved
    x = np.moveaxis(args[0], d, -1)
    gm, ym = np.moveaxis(g, d, -1), np.moveaxis(y, d, -1)
    if (x != 0).all():  # d y_k / d x_i = y_k / x_i for i <= k
        rev = np.cumsum((gm * ym)[..., ::-1], axis=-1)[..., ::-1]
        return (np.moveaxis(rev / x, -1, d),)
    n = x.shape[-1]
    out = np.zeros_like(x)
    for i in range(n):  # products of the others, without dividing by a zero
        others = x.copy()
        others[..., i] = 1
        out[..., i] = (gm[..., i:] * np.cumprod(others, axis=-1)[..., i:]).sum(-1)
    return (np.moveaxis(out, -1, d),)


def _running_extreme(x: Any, dim: int, name: str, better: Any) -> Any:
    x = _lift(x)
    d = _dim(dim, x.ndim, name)
    if x.ndim == 0:
        return getattr(return_types, name)(clone(x), wrap_array(np.zeros((), np.int64)))
    a = np.moveaxis(x.array, d, -1)
    idx = np.zeros(a.shape, np.int64)
    best = a[..., 0].copy()
    for k in range(1, a.shape[-1]):
        take = better(a[..., k], best) | (a[..., k] == best) | np.isnan(a[..., k])
        best = np.where(take, a[..., k], best)
        idx[..., k] = np.where(take, k, idx[..., k - 1])
    idx = np.moveaxis(idx, -1, d)
    return getattr(return_types, name)(_take_along(x, idx, d), wrap_array(idx))


def cummax(x: Any, dim: int) -> Any:
    """``(values, indices)`` of the running maximum along ``dim`` (the gradient goes to the index)."""
    return _running_extreme(x, dim, "cummax", np.greater)


def cummin(x: Any, dim: int) -> Any:
    """``(values, indices)`` of the running minimum along ``dim``."""
    return _running_extreme(x, dim, "cummin", np.less)


def logcumsumexp(x: Any, dim: int) -> Tensor:
    """log(cumsum(exp(x))) along ``dim``, stable (shifted by the maximum)."""
    x = _lift_float(x)
    d = _dim(dim, x.ndim, "logcumsumexp")
    m = wrap_array(np.max(x.array, axis=d, keepdims=True)) if x.ndim else wrap_array(x.array)
    return add(log(cumsum(exp(sub(x, m)), d)), m)


def masked_select(x: Any, mask: Any) -> Tensor:
    """The elements where ``mask`` (broadcast to x's shape) is true, as a 1-D tensor."""
    x = _lift(x)
    m = np.broadcast_to(np.asarray(mask.array if isinstance(mask, Tensor) else mask, dtype=bool), x.shape)
    return getitem(x, np.nonzero(m))


def masked_scatter(x: Any, mask: Any, source: Any) -> Tensor:
    """``x`` with the elements where ``mask`` is true replaced, in order, by the first ones of ``source``."""
    x = _lift(x)
    m = np.broadcast_to(np.asarray(mask.array if isinstance(mask, Tensor) else mask, dtype=bool), x.shape)
    count = int(m.sum())
    src = reshape(_lift(source, x), (-1,))
    return index_put(x, np.nonzero(m), getitem(src, slice(0, count)))


def put(x: Any, index: Any, source: Any, accumulate: bool = False) -> Tensor:
    """``x`` (seen flat) with ``source`` written (or added) at the flat ``index``."""
    x = _lift(x)
    flat = reshape(x, (-1,))
    idx = np.asarray(_data_of_index(index)).reshape(-1)
    src = reshape(_lift(source, x), (-1,))
    out = index_add(flat, 0, idx, src) if accumulate else index_put(flat, idx, src)
    return reshape(out, x.shape)


def index_put_op(x: Any, indices: Any, values: Any, accumulate: bool = False) -> Tensor:
    """torch's ``index_put``: ``x`` with ``values`` at the tuple of index tensors ``indices``."""
    x = _lift(x)
    idx = tuple(np.asarray(_data_of_index(i)) for i in indices)
    if not accumulate:
        return index_put(x, idx, values)
    v = _lift(values, x)
    out = x.array.copy()
    shape = out[idx].shape
    np.add.at(out, idx, np.broadcast_to(v.array, shape))
    return record_op(out, (x, v), _scatter_add_into_vjp, idx)


for _name in ("cumprod", "cummax", "cummin", "logcumsumexp", "masked_select", "masked_scatter", "put"):
    if not hasattr(Tensor, _name):
        setattr(Tensor, _name, _as_method(globals()[_name]))
Tensor.index_put = _as_method(index_put_op)  # type: ignore[attr-defined]
for _name in ("cumprod", "masked_scatter", "put", "index_put"):
    if not hasattr(Tensor, _name + "_"):
        setattr(Tensor, _name + "_", _inplace_form(_name))
