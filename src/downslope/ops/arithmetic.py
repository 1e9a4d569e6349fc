"""Elementwise arithmetic of two tensors (add, mul, pow, maximum, atan2, fmod...), each forward beside
its VJP rule. Broadcasting is undone once per rule with ``xp.sum_to``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..autograd import rerun
from ..backend import as_array, namespace_of
from ..errors import ArgumentError, ArgumentTypeError, DTypeError
from ..graph import no_grad
from ..tensor import _NO_OPERAND, Tensor, _scalar_first, record_op, wrap_array
from .complex import pair as _pair  # operands' pair, and torch's promotion where an operand is complex
from .operands import (
    _cast_kept,
    _check_broadcast,
    _elementwise,
    _int_exponent,
    _is_integral,
    _lift,
    _lift_float,
    _number,
    _pair_float,
)
from .pointwise import _float_where, astype, link_input, quietly, where

# torch's deprecated scalar-first top-level forms (ds.add(p, -lr, g)) warn at the caller's line: past
# this function and ds's out= wrapper
_TOP_LEVEL: dict[str, Any] = {"function": True, "stacklevel": 4}


def add(a: Any, b: Any, _other: Any = _NO_OPERAND, *, alpha: Any = 1) -> Tensor:
    """a + alpha * b (torch.add; and torch's deprecated ``add(input, Number alpha, other)``, which older
    optimizer code calls, with torch's warning)."""
    if _other is not _NO_OPERAND:
        b, alpha = _other, _scalar_first("add", b, alpha, "alpha", "Tensor other", **_TOP_LEVEL)
    if isinstance(a, Tensor) and a.array.dtype is _HALF and _opmath_operand(a, b):
        return _half_with_number(add, a, _at_half(b, alpha))
    if type(alpha) is not int or alpha != 1:
        b = _times_alpha(b, alpha, a)
    try:  # free until it raises: a sparse operand refuses to be lifted, and is handed over here
        a, b = _pair(a, b)
    except TypeError:
        return _sparse_operand("add", a, b)
    return record_op(_elementwise(np.add, "add", a, b), (a, b), _add_vjp)


def _sparse_operand(name: str, a: Any, b: Any) -> Any:
    """``a (name) b`` by the sparse COO operand's own rule (ds.sparse, which ops never import: found by its
    method); called inside the handler of the lifting's TypeError, which it raises again without one."""
    if hasattr(a, "_sparse_binary"):
        return a._sparse_binary(name, b, False)
    if hasattr(b, "_sparse_binary"):
        return b._sparse_binary(name, a, True)
    raise  # noqa: PLE0704  (the TypeError being handled by the caller)


_HALF = np.dtype(np.float16)


def _opmath_operand(a: Tensor, b: Any) -> bool:
    """Whether ``b`` beside the float16 tensor ``a`` is a number torch keeps at its own value in a
    float16 result: a Python float or int, a 0-d integer tensor, or a 0-d wider float tensor beside a
    tensor with dims (two 0-d tensors promote to the wider float instead)."""
    if b.__class__ is float or b.__class__ is int:
        return True
    if isinstance(b, np.generic):  # a NumPy scalar is a number in torch too (np.float64 from arr.mean())
        return b.dtype.kind in "iuf"
    if not isinstance(b, Tensor) or b.ndim != 0:
        return False
    kind = b.array.dtype.kind
    return kind in "iu" or (kind == "f" and b.array.dtype is not _HALF and a.ndim != 0)


def _half_with_number(op: Any, a: Tensor, b: Any, *args: Any) -> Tensor:
    """``op(a, b)`` of a float16 tensor and a number (see ``_opmath_operand``) as torch computes it: in
    float32 (its "opmath" type) with b's own value, the result rounded once to float16. Rounding b to
    float16 first would make 1e5 inf and 1e-8 zero (``h / 1e5`` all zeros, ``h * 70000 / 70000`` NaN)."""
    with np.errstate(over="ignore"):  # past float16's range is inf, quietly as in torch
        return astype(op(astype(a, np.float32), b, *args), _HALF)


def _at_half(b: Any, alpha: Any) -> Any:
    """``alpha * b`` for a number b (see ``_opmath_operand``) beside a float16 tensor, rounded to float16
    as torch's add/sub kernel reads it (its mul/div kernels read the number's own value): b is taken at its
    float16 value and ``alpha * b`` is rounded to float16, so ``h - 0.1`` is 0 where h holds 0.1 in float16;
    the sum is then taken in float32 and rounded once."""
    if isinstance(b, Tensor):
        b = astype(b, _HALF)
        return b if type(alpha) is int and alpha == 1 else mul(b, alpha)
    with np.errstate(over="ignore", invalid="ignore"):  # 1e5 is inf in float16, quietly as in torch
        b = float(np.float16(b))  # host: a Python number
        if isinstance(alpha, Tensor):
            return mul(alpha, b)  # stays where alpha is (reading it would wait for its device)
        if type(alpha) is not int or alpha != 1:
            b = float(np.float16(np.float32(alpha) * np.float32(b)))  # host: Python numbers
    return b


def _add_vjp(g, y, args, saved, needs, xp):
    a, b = args
    return (xp.sum_to(g, a.shape) if needs[0] else None, xp.sum_to(g, b.shape) if needs[1] else None)


def sub(a: Any, b: Any, _other: Any = _NO_OPERAND, *, alpha: Any = 1) -> Tensor:
    """a - alpha * b (torch.sub; and torch's deprecated ``sub(input, Number alpha, other)``)."""
    if _other is not _NO_OPERAND:
        b, alpha = _other, _scalar_first("sub", b, alpha, "alpha", "Tensor other", **_TOP_LEVEL)
    if isinstance(a, Tensor) and a.array.dtype is _HALF and _opmath_operand(a, b):
        return _half_with_number(sub, a, _at_half(b, alpha))
    if type(alpha) is not int or alpha != 1:
        b = _times_alpha(b, alpha, a)
    _check_sub(a, b)
    try:
        a, b = _pair(a, b)
    except TypeError:
        return _sparse_operand("sub", a, b)
    return record_op(_elementwise(np.subtract, "sub", a, b), (a, b), _sub_vjp)


def _check_sub(a: Any, b: Any) -> None:
    """Refuse a subtraction with a boolean tensor or a Python bool, as torch does (NumPy's error would
    name numpy, or it would compute)."""
    if _boolean(a) or _boolean(b):
        if _boolean(a) and _boolean(b):
            raise DTypeError(
                "Subtraction, the `-` operator, with two bool tensors is not supported. Use the `^` or "
                "`logical_xor()` operator instead."
            )
        raise DTypeError(
            "Subtraction, the `-` operator, with a bool tensor is not supported. If you are trying to invert a "
            "mask, use the `~` or `logical_not()` operator instead."
        )


def _boolean(x: Any) -> bool:
    """Whether ``x`` is a boolean tensor or a Python bool (what torch's sub refuses)."""
    return x.array.dtype.kind == "b" if isinstance(x, Tensor) else type(x) is bool


def _refuse_boolean(name: str, a: Tensor, b: Tensor) -> None:
    """Refuse an integer-only op (floor division, remainder, shifts) whose operands are both boolean:
    torch has no boolean kernel for it, where NumPy would compute in int8."""
    if a.array.dtype.kind == "b" and b.array.dtype.kind == "b":
        raise DTypeError(f"{name}: not implemented for 'Bool' (both operands are boolean)")


def _times_alpha(b: Any, alpha: Any, a: Any) -> Any:
    """``alpha * b`` for add/sub (and their in-place forms): a number b stays a number; a tensor b is
    scaled in the dtype torch computes ``a + alpha * b`` in, the pair's promoted dtype (float32 + 2 *
    uint8 200 is 400.5: scaled in uint8 it would wrap), and a boolean one as torch's boolean kernel
    does, ``b and bool(alpha)``."""
    if isinstance(alpha, (float, np.floating)) and _is_integral(a) and _is_integral(b):
        # torch's check: a fractional alpha would turn an integer sum into a float one (or truncate)
        raise DTypeError(
            f"For integral input tensors, argument alpha must not be a floating point number (got alpha={alpha!r}; "
            "cast the tensors to a floating dtype first)"
        )
    if isinstance(b, (int, float)) and not isinstance(alpha, Tensor):
        if type(b) is bool and isinstance(a, Tensor) and a.array.dtype.kind == "b":
            return b and bool(alpha)  # host: Python numbers (bool + alpha * bool stays bool)
        return b * alpha
    try:
        if isinstance(a, Tensor) or isinstance(b, Tensor):
            a, b = _pair(a, b)
            wide = np.result_type(a.array.dtype, b.array.dtype)  # int16 with int8 (both with dims): int16
            if b.array.dtype != wide:
                b = _cast_kept(b, wide)
        else:
            b = _lift(b)
    except TypeError:
        if not hasattr(b, "_sparse_binary"):
            raise
        return b * alpha  # a sparse COO b (ds.sparse): scaled on its own pattern
    if b.array.dtype.kind == "b" and not isinstance(alpha, Tensor):
        return b if alpha else wrap_array(np.zeros_like(b.array))
    return _times_number(b, alpha)  # torch saves the alpha of add/sub as a number: no tensor freed


def _times_number(t: Tensor, c: Any) -> Tensor:
    """``t * c`` for a number ``c``, recorded with the number itself: torch's trapezoid and add/sub's
    alpha multiply by a Scalar, which saves no tensor, so a second backward through them works (``x * 2``
    from Python saves the number as a tensor, freed after a backward: that product stays ``t * c``)."""
    if isinstance(c, bool) or not isinstance(c, (int, float, np.integer, np.floating)):
        return t * c  # a complex spacing or another kind of number: the product as written
    with no_grad():
        out = t * c
    return record_op(out.array, (t,), _times_number_vjp, float(c))  # host: a Python number


def _times_number_vjp(g, y, args, saved, needs, xp):
    return (g * saved,)


_times_number_vjp.reads_inputs = False  # type: ignore[attr-defined]
_times_number_vjp.reads_output = False  # type: ignore[attr-defined]


def _sub_vjp(g, y, args, saved, needs, xp):
    a, b = args
    return (xp.sum_to(g, a.shape) if needs[0] else None, xp.sum_to(-g, b.shape) if needs[1] else None)


def mul(a: Any, b: Any) -> Tensor:
    if isinstance(a, Tensor) and a.array.dtype is _HALF and _opmath_operand(a, b):
        return _half_with_number(mul, a, b)
    try:
        a, b = _pair(a, b)
    except TypeError:
        return _sparse_operand("mul", a, b)
    return record_op(_elementwise(np.multiply, "mul", a, b), (a, b), _mul_vjp)


def _mul_vjp(g, y, args, saved, needs, xp):
    a, b = args
    return (xp.sum_to(g * b, a.shape) if needs[0] else None, xp.sum_to(g * a, b.shape) if needs[1] else None)


def div(a: Any, b: Any, *, rounding_mode: str | None = None) -> Tensor:
    """a / b; ``rounding_mode="trunc"`` rounds toward zero and ``"floor"`` down (torch.div), both
    without a gradient and in the inputs' promoted dtype (integers stay integers)."""
    if rounding_mode is not None:
        return _rounded_div(a, b, rounding_mode)
    if isinstance(a, Tensor) and a.array.dtype.kind == "f":  # the common case first
        if a.array.dtype is _HALF and _opmath_operand(a, b):
            return _half_with_number(div, a, b)
        a, b = _pair(a, b)
    elif isinstance(a, Tensor) and a.array.dtype.kind == "c" or isinstance(b, Tensor) and b.array.dtype.kind == "c":
        a, b = _pair(a, b)  # complex division stays complex
    else:  # true division of integers is float32, as in torch
        a, b = _pair_float(a, b)
    return record_op(_elementwise(np.true_divide, "div", a, b), (a, b), _div_vjp)


def _rounded_div(a: Any, b: Any, rounding_mode: str) -> Tensor:
    if rounding_mode != "floor" and rounding_mode != "trunc":
        raise ArgumentError(f"div: rounding_mode must be None, 'trunc' or 'floor', got {rounding_mode!r}")
    if isinstance(a, Tensor) and a.array.dtype is _HALF and _opmath_operand(a, b):
        return _half_with_number(_rounded_div, a, b, rounding_mode)
    a, b = _pair(a, b)
    if rounding_mode == "floor":
        out = floor_divide(a, b).array
    else:
        out = _trunc_div_array(a, b)
    if out.dtype.kind != "f":  # an integer quotient has no gradient
        return wrap_array(out)
    # recorded, as torch does: a loss built from the rounded quotient alone can call backward()
    return record_op(out, (a, b), _rounded_div_vjp, rounding_mode)  # the mode: what an exporter writes


def _trunc_div_array(a: Tensor, b: Tensor) -> Any:
    x, y = a.array, b.array
    if x.dtype.kind == "f" or y.dtype.kind == "f":
        if x.dtype == y.dtype == _HALF and y.ndim == 0:
            # a 0-d divisor: torch's quotient in float32, rounded once after the trunc (two float16
            # tensors: torch's vectorized kernel rounds the quotient to float16 first, as NumPy does)
            return np.trunc(np.true_divide(x, y, dtype=np.float32)).astype(_HALF)
        return np.trunc(np.true_divide(x, y))
    _refuse_boolean("div", a, b)
    _check_integer_divisor(b, "div", a)
    q = np.floor_divide(x, y)
    # floor and trunc differ where the division is inexact and the signs differ
    return q + ((np.remainder(x, y) != 0) & ((x < 0) != (y < 0))).astype(q.dtype)


def _rounded_div_vjp(g, y, args, saved, needs, xp):
    # torch's rule: a rounded quotient is piecewise constant, so both operands get zeros (not None:
    # their .grad is set, as in torch)
    a, b = args
    zeros = xp.where(True, 0.0, g)  # zeros in g's dtype under either rule namespace (g may hold inf)
    return (xp.sum_to(zeros, a.shape) if needs[0] else None, xp.sum_to(zeros, b.shape) if needs[1] else None)


_rounded_div_vjp.reads_output = False  # type: ignore[attr-defined]


def _div_vjp(g, y, args, saved, needs, xp):
    a, b = args
    return (
        xp.sum_to(g / b, a.shape) if needs[0] else None,
        # a / b recomputed rather than read from y, as PyTorch: a later in-place write to the quotient
        # (attention's masked_fill_, SimCLR's fill_diagonal_) leaves the gradient right
        xp.sum_to(-(g * (a / b)) / b, b.shape) if needs[1] else None,
    )


_div_vjp.reads_output = False  # type: ignore[attr-defined]
# the dividend's values only for the divisor's gradient; the divisor's always
_div_vjp.reads_inputs = lambda i, needs: needs is None or i == 1 or bool(needs[1])  # type: ignore[attr-defined]  # host: flags


def pow(a: Any, b: Any) -> Tensor:
    """``a ** b``; d/da = b a^(b-1), d/db = a^b log a (0 where a == 0, as in PyTorch)."""
    number_exponent = type(b) is bool
    # torch's kernel for a number exponent takes 1 / sqrt(a) for -0.5 (so -0.0 gives -inf, not inf);
    # its gradient rule reads a^(0.5 - 1) through that kernel too
    half = b if type(b) is float and (b == 0.5 or b == -0.5) else None
    number = b if type(b) is int or type(b) is float else None
    if type(b) is int and isinstance(a, Tensor) and a.array.dtype.kind in "iub":
        b = _int_exponent(b, a.array.dtype)  # torch refuses a negative or overflowing number here
    a, b = _pair(a, b)
    x, e = a.array, b.array
    if e.dtype.kind in "iub" and x.dtype.kind in "iub":
        if x.dtype == np.bool_ and e.dtype == np.bool_:
            if not number_exponent:  # bool ** True is bool in torch; booleans as both tensors are refused
                raise ArgumentTypeError("pow: \"pow\" not implemented for 'Bool' (both operands are boolean tensors)")
            return wrap_array(np.power(x, e).astype(np.bool_))  # NumPy's power of booleans is int8
        if e.dtype.kind == "i":
            return wrap_array(_integer_power(x, e))
    if half == -0.5 and x.dtype.kind == "f":
        with np.errstate(divide="ignore", invalid="ignore"):
            if x.dtype is _HALF:  # in float32, rounded once (the root rounded first can be an ulp off)
                return record_op((1 / np.sqrt(x, dtype=np.float32)).astype(_HALF), (a, b), _pow_vjp, half)
            return record_op(1 / np.sqrt(x), (a, b), _pow_vjp, half)
    if number in _MULTIPLIED and (x.dtype == np.float32 or x.dtype == np.float64):
        # torch's kernel multiplies these exponents out (x*x*x, 1/(x*x), sqrt): its values, far faster
        # than NumPy's power; the rule then knows the exponent as this number. (No np.errstate up front: it
        # costs more than a small op, and backend.py's filter silences these warnings raised in ops.)
        try:
            out = _multiplied_power(x, number)
        except RuntimeWarning:  # only under a user's "error" warnings filter (see pointwise.quietly)
            out = quietly(_multiplied_power, x, number)
        return record_op(out, (a, b), _pow_vjp, number)
    return record_op(_elementwise(np.power, "pow", a, b), (a, b), _pow_vjp, half)


def _multiplied_power(x: Any, number: Any) -> Any:
    """x ** number for the exponents in ``_MULTIPLIED``, multiplied out as torch's kernel does."""
    if number == 2 or number == 3:
        return x * x if number == 2 else x * x * x
    return 1 / x if number == -1 else 1 / (x * x) if number == -2 else np.sqrt(x)


# the number exponents pow multiplies out, as torch's kernel (-0.5 has its own line above); the rule
# multiplies out the gradient's power for 2, 3 and -1 (torch takes -2's a^-3 from its power function)
_MULTIPLIED = (2, 3, -1, -2, 0.5)


def _integer_power(x: Any, e: Any) -> Any:
    """``x ** e`` of integer arrays as torch computes it: a negative exponent gives 1 for x == 1, +-1
    for x == -1 and 0 for any other x (1 / x**|e| truncated), where NumPy refuses."""
    negative = e < 0
    if type(negative) is np.ndarray and not negative.any():  # host only (a device check would wait)
        return _elementwise(np.power, "pow", wrap_array(x), wrap_array(e))
    out = _elementwise(np.power, "pow", wrap_array(x), wrap_array(np.where(negative, 0, e)))
    odd = (e % 2) != 0
    ones = ((x == 1) | ((x == -1) & ~odd)).astype(out.dtype)
    if out.dtype.kind == "i":
        ones = ones - ((x == -1) & odd).astype(out.dtype)
    return np.where(negative, ones, out)


def _pow_vjp(g, y, args, saved, needs, xp):
    a, b = args
    ga = gb = None
    if needs[0]:
        b_is_zero = xp.data(b) == 0
        # d/da a^0 is 0, also at a = 0 where 0 * 0^-1 would be nan (torch gives 0); the check runs on the
        # host only (on a device it would wait for the device, so the masked form is taken always)
        if saved == 0.5:  # a^-0.5 as torch's number-exponent kernel computes it: 1 / sqrt(a)
            with np.errstate(divide="ignore", invalid="ignore"):
                ga = g * b * (1 / a**0.5)
        elif (saved == 2 or saved == 3 or saved == -1) and not xp.differentiable:
            # torch's g * (b * a^(b-1)), its power multiplied out; under create_graph the power form below
            # is recorded instead: its own rule keeps every higher derivative (2 * a's would end at a
            # constant, and -1 / (a * a)'s quotient rule gives inf * 0 = nan at 0 where torch has inf)
            ga = g * (2 * a if saved == 2 else 3 * (a * a) if saved == 3 else -1 / (a * a))
        elif type(b_is_zero) is not np.ndarray or b_is_zero.any():
            ga = xp.where(b_is_zero, 0, g * b * xp.where(b_is_zero, 1, a) ** (b - 1))
        else:
            ga = g * b * a ** (b - 1)
        ga = xp.sum_to(ga, a.shape)
    if needs[1]:
        # torch's term a^b log a, taken as 0 where a == 0 and b >= 0; where a == 0 and b < 0 it is
        # inf * log 0 = -inf, as in torch (log(where(a == 0, 1, a)) would give inf * 0 = nan)
        zero_base = (xp.data(a) == 0) & (xp.data(b) >= 0)
        if a.dtype != g.dtype:  # log a in the result dtype, as torch: a float16 log would round it
            a = xp.astype(a, g.dtype)
        with np.errstate(divide="ignore", invalid="ignore"):
            gb = xp.sum_to(g * a**b * xp.log(xp.where(zero_base, 1, a)), b.shape)  # a ** b again, not y (as div)
    return ga, gb


_pow_vjp.reads_output = False  # type: ignore[attr-defined]


def neg(x: Any) -> Tensor:
    x = _lift(x)
    if x.array.dtype == np.bool_:  # NumPy's refusal would be a raw TypeError naming numpy; torch's is a RuntimeError
        raise DTypeError(
            "Negation, the `-` operator, on a bool tensor is not supported. If you are trying to invert a mask, "
            "use the `~` or `logical_not()` operator instead."
        )
    return record_op(-x.array, (x,), _neg_vjp)


def _neg_vjp(g, y, args, saved, needs, xp):
    return (-g,)


def maximum(a: Any, b: Any) -> Tensor:
    """Elementwise maximum (NaN if either is NaN); on ties each side gets half the gradient, and
    where a NaN is involved both sides get all of it (PyTorch's rule)."""
    a, b = _pair(a, b)
    return record_op(_elementwise(np.maximum, "maximum", a, b), (a, b), _maximum_vjp)


def _extremum_grads(g: Any, loses_a: Any, loses_b: Any, tie: Any, xp: Any) -> tuple[Any, Any]:
    """Each side's gradient: 0 where it lost, g / 2 on a tie, else g. A NaN neither loses nor ties
    (every comparison with it is false), so both sides get all of g, as in torch. Selected, not g
    times a 0/1 share, as torch's where/masked_fill: an inf or NaN g must leave the losing side 0
    (inf * 0 = nan)."""
    if type(g) is np.ndarray and np.isfinite(g).all():  # host: on a device the checks would synchronise
        # a finite g: the products with the 0/1 masks are exact, and 9x faster than the selections
        # (measured on 1000 x 1000 float32, one thread: 0.8 ms against 7.8)
        kept = np.where(tie, g * 0.5, g) if tie.any() else g  # host: as above
        return np.multiply(kept, ~loses_a), np.multiply(kept, ~loses_b)
    kept = xp.where(tie, g * 0.5, g)
    return xp.where(loses_a, 0.0, kept), xp.where(loses_b, 0.0, kept)


def _maximum_vjp(g, y, args, saved, needs, xp):
    a, b = args
    da, db = xp.data(a), xp.data(b)
    ga, gb = _extremum_grads(g, da < db, da > db, da == db, xp)
    return (
        xp.sum_to(ga, a.shape) if needs[0] else None,
        xp.sum_to(gb, b.shape) if needs[1] else None,
    )


def minimum(a: Any, b: Any) -> Tensor:
    """Elementwise minimum (NaN if either is NaN); ties and NaN share the gradient as in
    :func:`maximum`."""
    a, b = _pair(a, b)
    return record_op(_elementwise(np.minimum, "minimum", a, b), (a, b), _minimum_vjp)


def _minimum_vjp(g, y, args, saved, needs, xp):
    a, b = args
    da, db = xp.data(a), xp.data(b)
    ga, gb = _extremum_grads(g, da > db, da < db, da == db, xp)
    return (
        xp.sum_to(ga, a.shape) if needs[0] else None,
        xp.sum_to(gb, b.shape) if needs[1] else None,
    )


# Rules that use only their inputs' shapes, not their values: an in-place write to an input after
# the op was recorded does not invalidate them (autograd._check_versions).
for _rule in (_add_vjp, _sub_vjp, _neg_vjp):
    _rule.reads_inputs = False  # type: ignore[attr-defined]


_mul_vjp.reads_inputs = "others"  # type: ignore[attr-defined]


def atan2(a: Any, b: Any) -> Tensor:
    """The angle of (b, a): atan(a / b) in the right quadrant."""
    a, b = _pair_float(a, b)
    return record_op(_elementwise(np.arctan2, "atan2", a, b), (a, b), _atan2_vjp)  # complex refused by name


def _atan2_vjp(g, y, args, saved, needs, xp):
    a, b = args
    r2 = a * a + b * b
    # at the origin the angle has no derivative; torch gives 0 there, not 0/0
    origin = xp.data(r2) == 0
    inv = xp.where(origin, 0.0, 1.0 / xp.where(origin, 1.0, r2))
    return (
        xp.sum_to(g * b * inv, a.shape) if needs[0] else None,
        xp.sum_to(-g * a * inv, b.shape) if needs[1] else None,
    )


arctan2 = atan2


def hypot(a: Any, b: Any) -> Tensor:
    """sqrt(a^2 + b^2) elementwise."""
    a, b = _pair_float(a, b)
    return record_op(_elementwise(np.hypot, "hypot", a, b), (a, b), _hypot_vjp)  # complex refused by name


def _hypot_vjp(g, y, args, saved, needs, xp):
    a, b = args
    return (xp.sum_to(g * a / y, a.shape) if needs[0] else None, xp.sum_to(g * b / y, b.shape) if needs[1] else None)


def logaddexp(a: Any, b: Any) -> Tensor:
    """log(e^a + e^b), stable. The gradient reads each input and the output only (an in-place write
    to the other input later is fine); where both are +inf each input's share is 1 (torch: NaN)."""
    a, b = _pair_float(a, b)
    if a.array.dtype.kind == "c":  # NumPy's ufunc has no complex loop
        return record_op(complex_logaddexp(a.array, b.array), (a, b), _logaddexp_vjp)
    if a.array.dtype in (np.float32, np.float64):
        return record_op(_real_logaddexp(a.array, b.array), (a, b), _logaddexp_vjp)
    try:
        out = np.logaddexp(a.array, b.array)
    except RuntimeWarning:  # only under a user's "error" warnings filter (see pointwise.quietly)
        out = quietly(np.logaddexp, a.array, b.array)
    return record_op(out, (a, b), _logaddexp_vjp)


def _real_logaddexp(x: Any, y: Any) -> Any:
    """log(e^x + e^y) of float arrays by torch's formula, max(x, y) + log1p(e^-|x - y|), and x itself
    where x and y are the same infinity (where the difference is NaN). NumPy's logaddexp takes about 15x
    longer (a scalar loop). float32 runs in float64, rounded once: correctly rounded, where torch's and
    NumPy's float32 results are an ulp off in a few percent of elements (thousands of ulps where the result
    is near 0: the log1p term's own error, magnified by the cancellation), so neither is bit-equal to it."""
    xp = namespace_of(x)
    with np.errstate(invalid="ignore", over="ignore"):  # inf - inf: replaced below
        # exact for float32; a new array (asarray: a 0-d difference comes back a scalar), the steps run in place
        spread = xp.asarray(xp.subtract(x, y, dtype=xp.float64))
        xp.abs(spread, out=spread)
        if x.dtype == np.float32:
            # past e^-110 the term is below half float32's smallest subnormal, and NumPy's exp slows
            # down on results that underflow
            xp.minimum(spread, 110.0, out=spread)
        xp.negative(spread, out=spread)
        xp.exp(spread, out=spread)
        xp.log1p(spread, out=spread)
        spread += xp.maximum(x, y)
        out = spread.astype(xp.result_type(x, y), copy=False)
        # the same infinity on both sides gives a non-finite output: on the host the fix-up runs only then
        # (a device array is not read back to decide)
        if type(out) is not np.ndarray or not np.isfinite(out).all():  # host: the check reads the values
            out = xp.where(xp.isinf(x) & (x == y), x, out)
    return out


def complex_logaddexp(x: Any, y: Any) -> Any:
    """log(e^x + e^y) of complex arrays, shifted by the operand of larger real part so that neither
    exponential overflows: m + log1p(e^(other - m)) (torch's formula)."""
    first = np.real(x) >= np.real(y)
    m, other = np.where(first, x, y), np.where(first, y, x)
    with np.errstate(invalid="ignore", over="ignore"):  # -inf - -inf: the shifted value is taken as m
        shifted = m + np.log1p(np.exp(other - m))
    return np.where(np.isneginf(np.real(m)), other, shifted).astype(np.result_type(x, y), copy=False)


def _logaddexp_vjp(g, y, args, saved, needs, xp):
    a, b = args
    if y is None:  # the output was changed in place (torch saves the inputs only): recomputed
        y = rerun(logaddexp, args, xp)
    return (
        xp.sum_to(g * xp.exp(_shifted(a, y, xp)), a.shape) if needs[0] else None,
        xp.sum_to(g * xp.exp(_shifted(b, y, xp)), b.shape) if needs[1] else None,
    )


def _shifted(a: Any, y: Any, xp: Any, scale: float = 1.0) -> Any:
    """(a - y) * scale, the log of a's share of logaddexp's output y; 0 where a = +inf (then y = +inf,
    inf - inf is NaN, and a's share is 1, as torch's 1 / (1 + e^(b - a)) gives unless b is +inf too,
    where torch's is NaN). Only a and y are read, so an in-place write to the other input later does
    not stop this gradient."""
    data = xp.data(a)
    if data.dtype.kind == "c":
        return (a - y) * scale
    return xp.where(data == np.inf, 0.0, (a - y) * scale)


def xlogy(a: Any, b: Any) -> Tensor:
    """a * log(b), 0 where a == 0 (also at b == 0), NaN where b is NaN (torch.xlogy). The gradient is
    torch's: log(b) for a (0 where a == 0 and b <= 0), a / b for b.

    Example:
        >>> import downslope as ds
        >>> ds.xlogy(ds.tensor([0.0, 2.0]), ds.tensor([0.0, 1.0]))
        tensor([0., 0.])
    """
    return _xlog(a, b, 0.0, "xlogy")


def _xlog(a: Any, b: Any, shift: float, name: str) -> Tensor:
    """x * log(y + shift) with torch's xlogy/xlog1py conventions (shift 0 or 1)."""
    a, b = _pair_float(a, b)
    x, y = a.array, b.array
    try:
        np.broadcast_shapes(x.shape, y.shape)
    except ValueError:
        _check_broadcast(name, x, y)
    rt = np.result_type(x, y)
    x, y = x.astype(rt, copy=False), y.astype(rt, copy=False)  # in the result dtype: a float16 log is coarse
    with np.errstate(all="ignore"):
        logs = np.log(y) if shift == 0 else np.log1p(y)
        out = np.where(y != y, y, np.where(x == 0, 0, x * logs)).astype(rt, copy=False)
    return record_op(as_array(out), (a, b), _xlog_vjp, shift)


def _xlog_vjp(g, y, args, saved, needs, xp):
    a, b = args
    shift = saved
    da, db = xp.data(a), xp.data(b)
    ga = gb = None
    if needs[0]:
        with np.errstate(all="ignore"):
            if xp.differentiable:
                logs = xp.log(b + shift) if shift else xp.log(b)
            else:
                wide = b.astype(g.dtype, copy=False)  # in the result dtype, as the forward
                logs = np.log(wide) if shift == 0 else np.log1p(wide)
            ga = xp.where((da == 0) & (db <= -shift), 0.0, g * logs)
        ga = xp.sum_to(ga, a.shape)
    if needs[1]:
        gb = xp.sum_to(g * a / (b + shift) if shift else g * a / b, b.shape)
    return ga, gb


_xlog_vjp.reads_output = False  # type: ignore[attr-defined]


def float_power(a: Any, b: Any) -> Tensor:
    """a ** b in float64 (torch.float_power; complex128 when an operand is complex)."""
    a, b = _number(a), _number(b)  # a NumPy scalar is a number: kept at its own value
    if _complex_operand(a) or _complex_operand(b):  # torch: in complex128
        a, b = (astype(_lift(v), np.complex128) if isinstance(v, Tensor) else _number(v) for v in (a, b))
        return pow(a, b)
    # A Python number beside a tensor stays a Python float: lifted, it would be rounded to float32 first.
    if isinstance(b, Tensor) and type(a) in (int, float):
        return pow(float(a), astype(_lift_float(b), np.float64))  # host: a is a Python number
    if isinstance(a, Tensor) and type(b) in (int, float):
        return pow(astype(_lift_float(a), np.float64), float(b))  # host: b is a Python number
    return pow(astype(_lift_float(a), np.float64), astype(_lift_float(b), np.float64))


def _complex_operand(v: Any) -> bool:
    """Whether ``v`` is a complex tensor or a complex number."""
    return v.array.dtype.kind == "c" if isinstance(v, Tensor) else isinstance(v, (complex, np.complexfloating))


def fmod(a: Any, b: Any) -> Tensor:
    """Remainder with the sign of the dividend (C's fmod); the gradient w.r.t. a is 1."""
    a, b = _pair(a, b)
    if a.array.dtype.kind != "f":  # integers stay integers (torch: fmod([-7, 7], 3) is int64 [-1, 1])
        _refuse_boolean("fmod", a, b)
        _check_integer_divisor(b, "fmod", a)
        return wrap_array(_elementwise(np.fmod, "fmod", a, b))
    with np.errstate(invalid="ignore"):  # x fmod 0 is NaN, quietly as in torch
        out = _elementwise(_float_fmod, "fmod", a, b)
    return record_op(out, (a, b), _fmod_vjp)


# Below this quotient the float64 quotient of two float32 values truncates to the exact one (the true
# quotient's distance to an integer is at least 2^-50 of it), and quotient * divisor is exact (48 bits).
_EXACT_FLOAT32_QUOTIENT = 2.0**24


def _float_fmod(x: Any, y: Any) -> Any:
    """C's fmod, bit for bit. NumPy's float32 fmod is a slow scalar loop (about 15x torch's); for host float32
    arrays the result is x - trunc(x / y) * y in float64, exact while the quotient is below 2^24, with the
    dividend's sign (also on a zero); the other elements (large quotients, y = 0, inf, NaN) go to NumPy."""
    on_host = type(x) is np.ndarray and type(y) is np.ndarray  # host: only host arrays take the float64 route
    if not (on_host and x.dtype == y.dtype == np.float32 and x.ndim + y.ndim):  # (two 0-d give a NumPy scalar)
        return np.fmod(x, y)
    compiled = _division_compiled("fmod", x, y)
    if compiled is not None:
        return compiled
    # in place where it can: each fresh float64 temporary of this size costs about as much as the arithmetic
    wide_x, wide_y = x.astype(np.float64), y.astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        quotient = np.divide(wide_x, wide_y)
        np.trunc(quotient, out=quotient)
        rest = np.multiply(quotient, wide_y, out=wide_y if wide_y.shape == quotient.shape else None)
        np.subtract(wide_x, rest, out=rest)
    exact = np.abs(quotient, out=quotient) < _EXACT_FLOAT32_QUOTIENT  # False for NaN (y = 0, or x = inf)
    exact &= np.isfinite(rest)  # y = inf: 0 * inf
    out = np.copysign(np.abs(rest, out=rest), wide_x, out=rest).astype(np.float32)  # the dividend's sign
    if not exact.all():
        inexact = ~exact
        out[inexact] = np.fmod(*(operand[inexact] for operand in np.broadcast_arrays(x, y)))
    return out


# float32 arrays of one shape and at least this many elements take the compiled kernels of fmod, remainder
# and floor_divide (one pass each, 0.3-0.5x torch's time at 512 x 1024 where the NumPy steps took 4-7x);
# below it the first call's numba import is not earned back.
_JIT_DIVISION_MIN_SIZE = 4096


def _division_compiled(name: str, x: Any, y: Any) -> Any:
    """``name`` (fmod, remainder or floor_divide) of two host float32 arrays of one shape through
    ``_jit_special``'s kernels (the NumPy steps' values bit for bit) where numba is on; else None."""
    if not (
        type(x) is np.ndarray
        and type(y) is np.ndarray
        and x.dtype == y.dtype == np.float32
        and x.shape == y.shape
        and x.size >= _JIT_DIVISION_MIN_SIZE
    ):
        return None
    from .. import jit_gate

    kernels = jit_gate.kernels("downslope.ops._jit_special", x, y)
    if kernels is None:
        return None
    out = np.empty(x.shape, np.float32)  # host: x is a host array
    flat = (np.ascontiguousarray(v).reshape(-1) for v in (x, y))  # host: host arrays
    getattr(kernels, f"{name}_float32")(*flat, out.reshape(-1))
    return out


def _fmod_vjp(g, y, args, saved, needs, xp):
    # torch's rule: 1 for a (also where b == 0), -trunc(a / b) for b; the quotient is a constant
    a, b = args
    gb = None
    if needs[1]:
        with np.errstate(divide="ignore", invalid="ignore"):
            quotient = np.trunc(np.true_divide(xp.data(a), xp.data(b)))
        gb = xp.sum_to(-g * quotient, b.shape)
    return (xp.sum_to(g, a.shape) if needs[0] else None, gb)


def _check_integer_divisor(b: Tensor, name: str, a: Tensor | None = None) -> None:
    """Refuse an integer division by zero, as torch does (NumPy would give 0 with a warning). Host
    arrays only: on a device the check would make the host wait for it. An empty dividend divides
    nothing (its broadcast result is empty), so a zero divisor beside it is fine, as in torch."""
    d = b.array
    if a is not None and a.array.size == 0:
        return
    if type(d) is np.ndarray and d.dtype.kind in "iub" and d.size and not d.all():
        raise IntegerDivisionByZero(f"{name}: integer division by zero (ZeroDivisionError)")


class IntegerDivisionByZero(ZeroDivisionError, RuntimeError):
    """An integer division by zero: a ZeroDivisionError, and a RuntimeError as torch raises."""


def remainder(a: Any, b: Any) -> Tensor:
    """Remainder with the sign of the divisor (Python's %); the gradient w.r.t. a is 1."""
    a, b = _pair(a, b)
    if a.array.dtype.kind != "f" and b.array.dtype.kind != "f":
        _refuse_boolean("remainder", a, b)
        _check_integer_divisor(b, "remainder", a)
        return wrap_array(_elementwise(np.mod, "remainder", a, b))
    compiled = _division_compiled("remainder", a.array, b.array)
    if compiled is not None:
        return record_op(compiled, (a, b), _remainder_vjp)
    with np.errstate(invalid="ignore"):  # x % 0 is NaN, quietly as in torch
        mod = _elementwise(_float_fmod, "remainder", a, b)
        y = b.array
        # torch's kernel: C's fmod, moved by b where it is nonzero and its sign differs from b's
        out = _float_where((mod != 0) & ((y < 0) != (mod < 0)), mod + y, mod)
    return record_op(out, (a, b), _remainder_vjp)


def _remainder_vjp(g, y, args, saved, needs, xp):
    # torch's rule: 1 for a (also where b == 0), -floor(a / b) for b; the quotient is a constant
    a, b = args
    gb = None
    if needs[1]:
        with np.errstate(divide="ignore", invalid="ignore"):
            quotient = np.floor_divide(xp.data(a), xp.data(b))
        gb = xp.sum_to(-g * quotient, b.shape)
    return (xp.sum_to(g, a.shape) if needs[0] else None, gb)


for _rule in (_fmod_vjp, _remainder_vjp):
    _rule.reads_output = False  # type: ignore[attr-defined]
    # a's and b's values only for b's gradient
    _rule.reads_inputs = lambda i, needs: needs is None or bool(needs[1])  # type: ignore[attr-defined]  # host: flags


def floor_divide(a: Any, b: Any) -> Tensor:
    """floor(a / b) (no gradient, like torch)."""
    if isinstance(a, Tensor) and a.array.dtype is _HALF and _opmath_operand(a, b):
        return _half_with_number(floor_divide, a, b)  # torch: b's own value, in float32
    a, b = _pair(a, b)
    if a.array.dtype.kind != "f":
        _refuse_boolean("floor_divide", a, b)
        _check_integer_divisor(b, "floor_divide", a)
    return wrap_array(_elementwise(_floor_divide_array, "floor_divide", a, b))


def _floor_divide_array(x: Any, y: Any) -> Any:
    """NumPy's (and torch's) float floor division, step by step on whole float32 host arrays: the quotient of
    x - fmod(x, y), moved down by one where fmod's sign differs from y's, snapped to the nearest integer,
    with the sign of x / y on a zero, and x / y where y is 0. NumPy's float32 loop runs its scalar fmod per
    element, about 15x torch's time; any other array goes to NumPy."""
    on_host = type(x) is np.ndarray and type(y) is np.ndarray  # host: only host arrays take the whole-array route
    if not (on_host and x.dtype == y.dtype == np.float32 and x.ndim + y.ndim):  # (two 0-d give a NumPy scalar)
        return np.floor_divide(x, y)
    compiled = _division_compiled("floor_divide", x, y)
    if compiled is not None:
        return compiled
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        mod = _float_fmod(x, y)
        div = (x - mod) / y
        div -= (mod != 0) & ((y < 0) != (mod < 0))  # one less where fmod's sign differs from y's (x - 0 is x)
        floor_div = np.floor(div)
        floor_div += div - floor_div > np.float32(0.5)  # snap: (a - mod) / b is an integer up to rounding
        ratio = x / y
        # a zero takes the sign of x / y; any other result already has it (a floor of x / y), so one
        # copysign sets both without a select
        np.copysign(floor_div, ratio, out=floor_div)
        by_zero = y == 0
        if by_zero.any():
            floor_div = _float_where(by_zero, ratio, floor_div)
        return floor_div


def copysign(a: Any, b: Any) -> Tensor:
    """|a| with the sign of b. The gradient is torch's: copysign(a, b) / a for a (0 where a is 0)
    and zeros for b (a tensor of zeros, not no gradient: b.grad is set)."""
    a, b = _pair_float(a, b)
    return record_op(_elementwise(np.copysign, "copysign", a, b), (a, b), _copysign_vjp)


def _copysign_vjp(g, y, args, saved, needs, xp):
    a, b = args
    da = xp.data(a)
    zero = da == 0
    ratio = xp.data(y) / xp.where(zero, 1.0, da)  # +-1 (NaN for a NaN a, as in torch)
    ga = xp.sum_to(xp.where(zero, 0.0, g * ratio), a.shape) if needs[0] else None
    if ga is not None and xp.differentiable:  # torch's rule reads a and the output (so b): both in the graph
        ga = link_input(link_input(ga, a), b)
    # zeros in g's dtype under either rule namespace (no multiplication: g may hold inf)
    gb = xp.sum_to(xp.where(True, 0.0, g), b.shape) if needs[1] else None
    return (ga, gb)


def heaviside(x: Any, values: Any) -> Tensor:
    """0 where x < 0, ``values`` where x == 0, 1 where x > 0 (no gradient)."""
    x, v = _pair(x, values)
    out = _elementwise(np.heaviside, "heaviside", x, v)
    if x.array.dtype.kind == "f":
        out = np.where(x.array != x.array, 0, out)  # torch: x == 0 ? v : x > 0, so 0 at a NaN (NumPy: NaN)
    return wrap_array(out.astype(x.array.dtype, copy=False))


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


for _rule in (_atan2_vjp, _pow_vjp, _maximum_vjp, _minimum_vjp, _xlog_vjp):
    _rule.reads_inputs = True  # type: ignore[attr-defined]  # both inputs for either gradient
# each input's values for its own gradient only (with the output's)
for _rule in (_hypot_vjp, _logaddexp_vjp):
    _rule.reads_inputs = lambda i, needs: needs is None or bool(needs[i])  # type: ignore[attr-defined]  # host: flags
# a's values (with the output's) for a's gradient; b's gradient is zeros
_copysign_vjp.reads_inputs = lambda i, needs: i == 0 and (needs is None or bool(needs[0]))  # type: ignore[attr-defined]  # host: flags


def _integer_pair(name: str, a: Any, b: Any) -> tuple[Tensor, Tensor]:
    if not isinstance(a, Tensor) and not isinstance(b, Tensor):
        raise ArgumentTypeError(f"{name}: expected at least one tensor, got {type(a).__name__} and {type(b).__name__}")
    a, b = _pair(a, b)
    for t in (a, b):
        if t.array.dtype.kind not in "iub":  # torch: NotImplementedError, a RuntimeError
            raise DTypeError(f"{name}: expected integer or boolean tensors, got {a.dtype} and {b.dtype}")
    return a, b


def _bitwise_function(name: str, ufunc: Any) -> Any:
    def op(a: Any, b: Any) -> Tensor:
        x, y = _integer_pair(name, a, b)
        if ufunc is np.left_shift or ufunc is np.right_shift:
            _refuse_boolean(name, x, y)
        return wrap_array(_elementwise(ufunc, name, x, y))

    op.__name__ = op.__qualname__ = name
    op.__doc__ = f"""Elementwise {name} of integer or boolean tensors (torch.{name}); no gradient.

    Example:
        >>> import downslope as ds
        >>> ds.{name}(ds.tensor([12, 5]), 3).dtype
        dtype('int64')
    """
    return op


bitwise_and = _bitwise_function("bitwise_and", np.bitwise_and)
bitwise_or = _bitwise_function("bitwise_or", np.bitwise_or)
bitwise_xor = _bitwise_function("bitwise_xor", np.bitwise_xor)
bitwise_left_shift = _bitwise_function("bitwise_left_shift", np.left_shift)
bitwise_right_shift = _bitwise_function("bitwise_right_shift", np.right_shift)


def bitwise_not(x: Any) -> Tensor:
    """Elementwise bitwise not (logical not for booleans), torch.bitwise_not; no gradient.

    Example:
        >>> import downslope as ds
        >>> ds.bitwise_not(ds.tensor([True, False]))
        tensor([False,  True])
    """
    return ~_lift(x)


def gcd(a: Any, b: Any) -> Tensor:
    """The elementwise greatest common divisor of integers (non-negative; gcd(0, 0) = 0), torch.gcd.

    Example:
        >>> import downslope as ds
        >>> ds.gcd(ds.tensor([12, -18, 0]), ds.tensor([8, 12, 0]))
        tensor([4, 6, 0])
    """
    x, y = _integer_pair("gcd", a, b)
    return wrap_array(_elementwise(np.gcd, "gcd", x, y))


def lcm(a: Any, b: Any) -> Tensor:
    """The elementwise least common multiple of integers (non-negative; 0 if either is 0), torch.lcm.

    Example:
        >>> import downslope as ds
        >>> ds.lcm(ds.tensor([4, -6, 0]), ds.tensor([6, 4, 3]))
        tensor([12, 12,  0])
    """
    x, y = _integer_pair("lcm", a, b)
    return wrap_array(_elementwise(np.lcm, "lcm", x, y))


def logaddexp2(a: Any, b: Any) -> Tensor:
    """log2(2^a + 2^b), stable (torch.logaddexp2); differentiable in both.

    Example:
        >>> import downslope as ds
        >>> ds.logaddexp2(ds.tensor([1.0]), ds.tensor([1.0]))
        tensor([2.])
    """
    a, b = _pair(a, b)
    if a.array.dtype.kind != "f" or b.array.dtype.kind != "f":
        raise ArgumentTypeError(f"logaddexp2: expected floating tensors, got {a.dtype} and {b.dtype}")
    return record_op(_elementwise(np.logaddexp2, "logaddexp2", a, b), (a, b), _logaddexp2_vjp)


def _logaddexp2_vjp(g, y, args, saved, needs, xp):
    a, b = args
    if y is None:  # as _logaddexp_vjp
        y = rerun(logaddexp2, args, xp)
    ln2 = float(np.log(2.0))  # host: a constant
    return (
        xp.sum_to(g * xp.exp(_shifted(a, y, xp, ln2)), a.shape) if needs[0] else None,
        xp.sum_to(g * xp.exp(_shifted(b, y, xp, ln2)), b.shape) if needs[1] else None,
    )


_logaddexp2_vjp.reads_inputs = _hypot_vjp.reads_inputs  # type: ignore[attr-defined]  # each for its own gradient
for _rule in (_logaddexp_vjp, _logaddexp2_vjp):
    _rule.reads_output = "optional"  # type: ignore[attr-defined]  # recomputed after an in-place change


def ldexp(x: Any, other: Any) -> Tensor:
    """x * 2^other (torch.ldexp: a floating result, differentiable in x).

    Example:
        >>> import downslope as ds
        >>> ds.ldexp(ds.tensor([1.0, 2.0]), ds.tensor([2, 3]))
        tensor([ 4., 16.])
    """
    if _complex_operand(x) or _complex_operand(other):  # torch's x * 2**other, complex
        e = _lift(other)
        return mul(_lift(x), pow(2.0, e if e.array.dtype.kind in "fc" else _lift_float(e)))
    e = _lift(other)
    if e.array.dtype.kind in "iub":
        # integer exponents scale exactly in x's float dtype, as torch: 0 * 2**200 is 0 and a float64
        # 1 * 2**200 is finite, where 2**e taken first in float32 would be inf
        m = x if isinstance(x, Tensor) and x.array.dtype.kind == "f" else _lift_float(x)
        exponents = e.array if e.array.dtype.kind == "i" else e.array.astype(np.int64)
        try:
            with np.errstate(over="ignore"):  # past the dtype's range is inf, quietly as in torch
                out = np.ldexp(m.array, exponents)
        except ValueError:
            _check_broadcast("ldexp", m.array, exponents)
            raise
        return record_op(out, (m,), _ldexp_vjp, exponents)
    power = pow(2.0, e) if e.array.dtype.kind == "f" else pow(2.0, _lift_float(e))  # torch's: in e's dtype
    # float exponents (or a complex x): torch's x * 2**other, in the result dtype of x and other
    m, e = _pair_float(x, other)
    rt = np.result_type(m.array.dtype, e.array.dtype)
    if isinstance(x, Tensor) and x.array.dtype.kind in "iub" and rt.kind == "f":
        # an integer x (no gradient) goes straight to the result dtype: through float32 first, a
        # float64 exponent's result would be rounded to float32's precision
        base = astype(x, rt)
    else:
        base = _lift_float(x) if not isinstance(x, Tensor) or x.array.dtype.kind != "f" else x
    out = mul(base, power)
    return astype(out, rt) if rt.kind == "f" and out.array.dtype != rt else out


def _ldexp_vjp(g, y, args, saved, needs, xp):
    # torch's rule, g * 2**other, with 2**other exact in the gradient's dtype
    scale = np.ldexp(np.ones_like(saved, dtype=xp.data(g).dtype), saved)
    return (xp.sum_to(g * xp.constant(scale), args[0].shape),)


_ldexp_vjp.reads_inputs = False  # type: ignore[attr-defined]
_ldexp_vjp.reads_output = False  # type: ignore[attr-defined]


def nextafter(a: Any, b: Any) -> Tensor:
    """The next floating value after ``a`` toward ``b`` (torch.nextafter); as torch, its gradient
    is 1 for ``a`` and 0 for ``b``.

    Example:
        >>> import downslope as ds
        >>> float(ds.nextafter(ds.tensor([1.0]), ds.tensor([2.0]))[0] - 1.0)
        1.1920928955078125e-07
    """
    a, b = _pair(a, b)
    if a.array.dtype.kind != "f" or b.array.dtype.kind != "f":
        raise ArgumentTypeError(f"nextafter: expected floating tensors, got {a.dtype} and {b.dtype}")
    return record_op(_elementwise(_nextafter_array, "nextafter", a, b), (a, b), _nextafter_vjp)


def _nextafter_array(x: Any, y: Any) -> Any:
    """C's nextafter, bit for bit: a step of one in the bits of x (up where it moves away from zero, down where
    it moves toward it), y where x == y, the smallest subnormal with y's sign from a zero, NaN from a NaN.
    NumPy's loop calls the C function per element (about 20x torch's time); host float32/float64 arrays of
    one dtype take the whole-array route, any other array NumPy's (its float16 keeps x where x == y)."""
    on_host = type(x) is np.ndarray and type(y) is np.ndarray  # host: only host arrays are viewed as their bits
    if not (on_host and x.dtype == y.dtype and x.dtype in _NEXTAFTER_BITS and x.ndim + y.ndim):  # (not two 0-d)
        return np.nextafter(x, y)
    x, y = (np.ascontiguousarray(operand) for operand in np.broadcast_arrays(x, y))  # host: bits of host arrays
    bits = _NEXTAFTER_BITS[x.dtype]
    out_bits = x.view(bits) - 1  # toward zero ...
    away_from_zero = (y > x) == (x > 0)  # ... or away: x > 0 moving up, or x < 0 moving down
    out_bits += away_from_zero
    out_bits += away_from_zero
    out = out_bits.view(x.dtype)
    from_zero = x == 0
    if from_zero.any():
        smallest = np.copysign(np.array(np.finfo(x.dtype).smallest_subnormal, x.dtype), y)  # host: from a zero
        out = _float_where(from_zero, smallest, out)
    ends_here = (x == y) | (x != x) | (y != y)
    if ends_here.any():
        with np.errstate(invalid="ignore", over="ignore"):  # x + y: only its NaN (from a NaN operand) is kept
            out = _float_where(ends_here, _float_where(x == y, y, x + y), out)
    return out


_NEXTAFTER_BITS = {np.dtype(np.float32): np.int32, np.dtype(np.float64): np.int64}


def _nextafter_vjp(g, y, args, saved, needs, xp):
    a, b = args
    # zeros in g's dtype under either rule namespace (no multiplication: g may hold inf)
    gb = xp.sum_to(xp.where(True, 0.0, g), b.shape) if needs[1] else None
    return (xp.sum_to(g, a.shape) if needs[0] else None, gb)


_nextafter_vjp.reads_inputs = False  # type: ignore[attr-defined]


def _addc_half(name: str, x: Tensor, tensor1: Tensor, tensor2: Tensor, value: Any) -> Tensor:
    """addcmul/addcdiv (``name``) of float16 tensors and a number ``value`` as torch's kernel computes
    them: ``x + value * tensor1 * tensor2`` (or ``/ tensor2``) in float32, in that order, rounded once
    (in float16 ``h * h`` overflows past 256: addcmul(h, h, h, value=1e-3) would be inf)."""
    f32 = np.float32
    _check_broadcast(name, x.array, tensor1.array, tensor2.array)
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):  # inf and NaN quietly, as in torch
        p = np.multiply(tensor1.array, value, dtype=f32)
        q = np.divide(p, tensor2.array, dtype=f32) if name == "addcdiv" else np.multiply(p, tensor2.array, dtype=f32)
        out = np.add(x.array, q, dtype=f32).astype(_HALF)
    return record_op(out, (x, tensor1, tensor2), _addc_half_vjp, (name, value))


def _half_times(t: Any, value: Any, xp: Any) -> Any:
    """float16 ``t * value`` as torch's float16-with-a-number kernel: in float32, rounded once."""
    return xp.astype(xp.astype(t, np.float32) * value, _HALF)


def _addc_half_vjp(g, y, args, saved, needs, xp):
    # torch's formulas, each step an op in float16 as torch's backward runs them
    x, t1, t2 = args
    name, value = saved
    gx = xp.sum_to(g, x.shape) if needs[0] else None
    if name == "addcmul":
        g1 = xp.sum_to(g * _half_times(t2, value, xp), t1.shape) if needs[1] else None
        g2 = xp.sum_to(g * _half_times(t1, value, xp), t2.shape) if needs[2] else None
        return (gx, g1, g2)
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        # torch's value / tensor2 reads value as a float16 dividend (its division kernel keeps only a
        # divisor's own value)
        dividend = float(np.float16(value))  # host: value is a Python number
        g1 = xp.sum_to(g * (dividend / t2), t1.shape) if needs[1] else None
        g2 = xp.sum_to(-g * (_half_times(t1, value, xp) / (t2 * t2)), t2.shape) if needs[2] else None
    return (gx, g1, g2)


_addc_half_vjp.reads_output = False  # type: ignore[attr-defined]


def _addc_value(name: str, value: Any, x: Any, tensor1: Any, tensor2: Any) -> Any:
    """addcmul/addcdiv's ``value`` as torch applies it: in the result dtype, so a fractional value
    meeting integer operands only is truncated toward zero (``value=0.5`` adds nothing); addcdiv of
    two integer tensors is refused, as torch refuses it (its old integer division is gone)."""
    value = _number(value)  # a NumPy scalar value is a number: it does not widen the result (float32 stays)
    integral = _is_integral(x) and _is_integral(tensor1) and _is_integral(tensor2)
    if integral and all(isinstance(t, Tensor) and t.array.dtype.kind == "b" for t in (x, tensor1, tensor2)):
        # torch has no boolean kernel (NumPy would add as logical or, or promote to int64)
        raise DTypeError(f"{name}: not implemented for 'Bool' (input, tensor1 and tensor2 are all boolean)")
    if name.startswith("addcdiv") and _is_integral(tensor1) and _is_integral(tensor2):
        raise DTypeError(
            f"{name}: integer division with addcdiv is not supported (tensor1 and tensor2 are both integer "
            "tensors); compute (input + value * torch.trunc(tensor1 / tensor2)).to(input.dtype) instead"
        )
    if integral and isinstance(value, (float, np.floating)):
        if not np.isfinite(value):  # host: a Python number
            raise ArgumentError(f"{name}: value {value} cannot be converted to an integer for integer operands")
        return int(value)  # toward zero, as the C cast torch makes
    return value
