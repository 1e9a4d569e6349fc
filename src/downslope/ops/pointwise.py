"""Elementwise functions of one tensor (exp, log, sin, relu, clip, rounding, the unary math table),
each forward beside its VJP rule; also ``where``, ``clone`` and ``astype``.
"""

from __future__ import annotations

import builtins
import functools
import math
from typing import Any

import numpy as np

from .. import backend, parallel, workspace
from ..autograd import _reads_output, _reads_param
from ..backend import as_array
from ..devices import is_array, like
from ..errors import ArgumentError, ArgumentTypeError, DTypeError, InvalidValueError
from ..graph import _mode, _sigmoid_array
from ..tensor import Tensor, record_op, wrap_array
from .operands import _check_broadcast, _checked_scalar, _host_scalar, _hyper_number, _index_array, _lift, _lift_float


def clone(x: Any) -> Tensor:
    """A copy with its own storage (the gradient passes through unchanged)."""
    x = _lift(x)
    return record_op(x.array.copy(), (x,), _clone_vjp)


def _clone_vjp(g, y, args, saved, needs, xp):
    return (g,)


def quietly(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)`` with NumPy's floating-point errors ignored, for the retry of a pure op
    (one that returns a new array, so that computing it twice is harmless).

    torch computes inf and NaN without a word (log(0), 1/0, sqrt(-1), exp(100), a float16 overflow).
    NumPy's RuntimeWarnings about them are silenced by the filter ``import downslope`` installs on its
    kernel modules, but a user's ``warnings.simplefilter("error")`` goes in front of that filter and
    makes the warning an exception, which would reach the caller. The ops catch that exception and
    compute again here. np.errstate on every call would cost more than a small op, and a global
    np.seterr would change the user's own NumPy code, so the common path pays nothing but a try.

    Example:
        >>> import numpy as np
        >>> quietly(np.log, np.zeros(1)).tolist()
        [-inf]
    """
    with np.errstate(all="ignore"):
        return fn(*args, **kwargs)


def astype(x: Tensor, dtype: Any) -> Tensor:
    """Cast to another dtype; the gradient is cast back."""
    target = backend.as_dtype(dtype)
    if x.array.dtype == target:
        return x
    if x.array.dtype.kind == "c" and target.kind == "b":  # torch: true where either part is nonzero
        return wrap_array(x.array != 0)
    if x.array.dtype.kind == "c" and target.kind != "c":
        from .complex import to_real

        return to_real(x, target)
    a = x.array
    order: Any = "K" if _dense(a) else "C"  # NumPy's stubs type order by its literal value
    try:
        cast = a.astype(target, order=order)
    except RuntimeWarning:  # inf into float16, NaN into an integer: torch casts quietly (see quietly)
        cast = quietly(a.astype, target, order=order)
    out = record_op(cast, (x,), _astype_vjp, a.dtype)
    if out.requires_grad and target.kind not in "fc":
        out._vjp, out._parents, out._needs = None, (), None  # a leaf first: only a leaf's flag may be cleared
        out.requires_grad = False
    return out


def _dense(a: Any) -> bool:
    """Whether ``a``'s elements fill its memory with none repeated (a permutation of a contiguous block):
    torch's casts keep such an input's layout and make anything else (an expanded input, a strided slice)
    contiguous, where NumPy's order='K' would follow the input's strides, repeats and gaps included."""
    if a.flags.c_contiguous:
        return True
    shape, strides = a.shape, a.strides
    if any(n > 1 and st == 0 for n, st in zip(shape, strides)):
        return False
    return sum((n - 1) * builtins.abs(st) for n, st in zip(shape, strides)) + a.itemsize == a.size * a.itemsize


def _astype_vjp(g, y, args, saved, needs, xp):
    return (xp.astype(g, saved),)


def exp(x: Any) -> Tensor:
    if not (isinstance(x, Tensor) and x.array.dtype.kind in "fc"):  # a complex tensor keeps its dtype
        x = _lift_float(x)
    try:
        out = np.exp(x.array)
    except RuntimeWarning:  # only under a user's "error" warnings filter: see quietly
        out = quietly(np.exp, x.array)
    return record_op(out, (x,), _exp_vjp)


def _exp_vjp(g, y, args, saved, needs, xp):
    return (g * y,)


def expm1(x: Any) -> Tensor:
    """e^x - 1, accurate for small x (where exp(x) - 1 cancels to a few correct digits)."""
    if not (isinstance(x, Tensor) and x.array.dtype.kind in "fc"):  # a complex tensor keeps its dtype
        x = _lift_float(x)
    try:
        out = np.expm1(x.array)
    except RuntimeWarning:  # only under a user's "error" warnings filter: see quietly
        out = quietly(np.expm1, x.array)
    return record_op(out, (x,), _expm1_vjp)


def _expm1_vjp(g, y, args, saved, needs, xp):
    return (g * (y + 1),)


def log(x: Any) -> Tensor:
    if not (isinstance(x, Tensor) and x.array.dtype.kind in "fc"):  # a complex tensor keeps its dtype
        x = _lift_float(x)
    try:
        out = np.log(x.array)
    except RuntimeWarning:  # only under a user's "error" warnings filter: see quietly
        out = quietly(np.log, x.array)
    return record_op(out, (x,), _log_vjp)


def _log_vjp(g, y, args, saved, needs, xp):
    return (g / args[0],)


def sqrt(x: Any) -> Tensor:
    if not (isinstance(x, Tensor) and x.array.dtype.kind in "fc"):  # a complex tensor keeps its dtype
        x = _lift_float(x)
    try:
        out = np.sqrt(x.array)
    except RuntimeWarning:  # only under a user's "error" warnings filter: see quietly
        out = quietly(np.sqrt, x.array)
    return record_op(out, (x,), _sqrt_vjp)


def _sqrt_vjp(g, y, args, saved, needs, xp):
    return (g / (2 * y),)


def abs(x: Any) -> Tensor:
    x = _lift(x)
    if x.array.dtype.kind == "c":  # |z| is real, with its own rule
        from .complex import abs as complex_abs

        return complex_abs(x)
    return record_op(np.abs(x.array), (x,), _abs_vjp)


def _abs_vjp(g, y, args, saved, needs, xp):
    # torch's sgn, 0 at NaN (NumPy's sign is NaN there, which l1_loss would pass on), from two
    # comparisons: cheaper than np.sign followed by a NaN fix-up
    d = xp.data(args[0])
    return (link_input(g * ((d > 0).astype(d.dtype) - (d < 0)), args[0]),)


def link_input(grad: Any, x: Any) -> Any:
    """``grad``, a VJP rule's result, as it is; under ``create_graph`` (a Tensor) the same values with
    ``x`` as a second parent of derivative zero. PyTorch's double backward of the piecewise-linear ops
    (relu, leaky_relu, abs, hardtanh, max pooling) gives their input's ancestors a zero gradient that
    way (a bias before a ReLU gets zeros after a gradient penalty, not None: optimizers treat the two
    differently, weight decay and Adam's moments included).

    Example:
        >>> import downslope as ds
        >>> link_input(ds.ones(2), ds.zeros(2)).tolist()
        [1.0, 1.0]
    """
    if not isinstance(grad, Tensor) or not isinstance(x, Tensor) or not x.requires_grad:
        return grad
    return record_op(grad.array, (grad, x), _link_input_vjp)


def _link_input_vjp(g, y, args, saved, needs, xp):
    x = xp.data(args[1])
    return (g, xp.constant(backend.namespace_of(x).zeros_like(x)) if needs[1] else None)


_link_input_vjp.reads_inputs = False  # type: ignore[attr-defined]


def sin(x: Any) -> Tensor:
    if not (isinstance(x, Tensor) and x.array.dtype.kind in "fc"):  # a complex tensor keeps its dtype
        x = _lift_float(x)
    try:
        out = np.sin(x.array)
    except RuntimeWarning:  # only under a user's "error" warnings filter: see quietly
        out = quietly(np.sin, x.array)
    return record_op(out, (x,), _sin_vjp)


def _sin_vjp(g, y, args, saved, needs, xp):
    return (g * xp.cos(args[0]),)


def cos(x: Any) -> Tensor:
    if not (isinstance(x, Tensor) and x.array.dtype.kind in "fc"):  # a complex tensor keeps its dtype
        x = _lift_float(x)
    try:
        out = np.cos(x.array)
    except RuntimeWarning:  # only under a user's "error" warnings filter: see quietly
        out = quietly(np.cos, x.array)
    return record_op(out, (x,), _cos_vjp)


def _cos_vjp(g, y, args, saved, needs, xp):
    return (-g * xp.sin(args[0]),)


def tanh(x: Any) -> Tensor:
    if not (isinstance(x, Tensor) and x.array.dtype.kind in "fc"):  # a complex tensor keeps its dtype
        x = _lift_float(x)
    return record_op(np.tanh(x.array), (x,), _tanh_vjp)


def _tanh_vjp(g, y, args, saved, needs, xp):
    if y.dtype is _HALF:  # torch's kernel: g * (1 - y * y) in float32, rounded once
        y32 = xp.astype(y, np.float32)
        return (xp.astype(xp.astype(g, np.float32) * (1 - y32 * y32), _HALF),)
    return (g * (1 - y * y),)


_HALF = np.dtype(np.float16)


def sigmoid(x: Any) -> Tensor:
    """1 / (1 + e^-x), computed stably: it never overflows and keeps relative precision for x << 0."""
    if not (isinstance(x, Tensor) and x.array.dtype.kind in "fc"):  # a complex tensor keeps its dtype
        x = _lift_float(x)
    return record_op(_sigmoid_array(x.array), (x,), _sigmoid_vjp)


def _sigmoid_vjp(g, y, args, saved, needs, xp):
    return (g * y * (1 - y),)


#: Activations of at least this many elements (256 KiB in float32) write their output and input
#: gradient into pooled memory (``workspace.lend``): glibc hands arrays this large out as fresh
#: pages (mmap) and gives them back on free, so a new array costs a page fault per 4 KiB touched
#: on every step (measured: about a fifth of a small CNN's training step). With oneDNN on several
#: threads their passes also split over rows of the first dim (``parallel``).
POOLED_ACTIVATION_SIZE = 65_536
#: Elements a ReLU pass handles per nanosecond on one thread (measured, float32: 2-3), for the
#: decision to split it over threads.
ELEMENTS_PER_NS = 2


def _pooled(a: Any) -> bool:
    return type(a) is np.ndarray and a.size >= POOLED_ACTIVATION_SIZE and a.dtype.kind == "f"


# The integer type of each float width, for selects done on bit patterns.
_BITS: dict[int, np.dtype[Any]] = {2: np.dtype(np.int16), 4: np.dtype(np.int32), 8: np.dtype(np.int64)}
_NOT_SIGN = {n: b.type(np.iinfo(b).max) for n, b in _BITS.items()}  # every bit but the sign bit


def _selectable(g: Any, mask: Any) -> bool:
    """Whether :func:`_select` applies: host float arrays of one shape (not 0-d: NumPy scalars)."""
    return (
        type(g) is np.ndarray
        and type(mask) is np.ndarray
        and g.dtype.kind == "f"
        and g.shape == mask.shape
        and g.ndim > 0
        and g.dtype.itemsize in _BITS
    )


def _select(g: np.ndarray, mask: Any, keep: bool = True) -> np.ndarray:
    """``g`` where ``mask`` is ``keep``, +0 elsewhere: torch's select in the backward of clamp and
    hardtanh. A NaN or inf of ``g`` at a blocked place gives 0, where a product with the mask gives
    NaN; and it is branch-free (np.where on a data-dependent mask mispredicts a branch per element:
    400 us at 256x256 float32 on random signs, this about 12 us): the mask as all-ones or zero bits,
    and-ed with ``g``'s bit pattern. ``mask`` is a boolean array of ``g``'s shape (overwritten)."""
    bits = _BITS[g.dtype.itemsize]
    flag = mask.view(np.int8)
    if keep:  # True (1) -> -1 (all bits), False -> 0
        np.negative(flag, out=flag)
    else:
        np.subtract(flag, 1, out=flag)
    wide = flag.astype(bits)  # sign-extended: -1 stays all bits
    np.bitwise_and(g.view(bits), wide, out=wide)
    return wide.view(g.dtype)


def relu(x: Any) -> Tensor:
    x = _lift(x)
    a = x.array
    if a.dtype.kind != "f":
        return record_op(np.maximum(a, 0), (x,), _relu_vjp)
    # clip, not maximum: NumPy's maximum against a scalar takes a slow loop (33 us against 6 us at
    # 256x256 float32); clip also keeps -0.0 and NaN as torch's relu does
    if not _pooled(a):
        return record_op(a.clip(0, math.inf), (x,), _relu_vjp)  # the method: np.clip's dispatch costs ~1 us
    out = workspace.lend(a.shape, a.dtype)

    def part(lo: int, hi: int) -> None:  # NumPy releases the GIL: parts run at once on oneDNN's threads
        np.clip(a[lo:hi], 0, np.inf, out=out[lo:hi])  # rows of the first dim: no copy of a strided input

    parallel.over_parts(a, a.shape[0], a.size // ELEMENTS_PER_NS, part)
    return record_op(out, (x,), _relu_vjp)


def _relu_vjp(g, y, args, saved, needs, xp):
    # PyTorch's rule (threshold_backward on the output): 0 where the output is <= 0 (a NaN or inf
    # gradient there included), the gradient everywhere else, a NaN output's included.
    y = xp.data(y)
    if not (_selectable(g, y) and g.dtype == y.dtype):  # also a rule recorded under create_graph (Tensors)
        return (link_input(xp.where(y <= 0, 0.0, g), args[0]),)
    if not _pooled(g):
        return (_relu_grad(g, y, np.empty_like(g)),)
    out = workspace.lend(g.shape, g.dtype)
    parallel.over_parts(
        g, g.shape[0], g.size // ELEMENTS_PER_NS, lambda lo, hi: _relu_grad(g[lo:hi], y[lo:hi], out[lo:hi])
    )
    return (out,)


def _relu_grad(g: np.ndarray, y: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``g`` where the relu output ``y`` is not +-0 (so > 0 or NaN), +0 elsewhere, into ``out``: four
    integer passes over bit patterns, no scratch (a select through a boolean mask needs a widened
    copy of it, and the pooled scratch cost as much as the passes at 256x256)."""
    bits = _BITS[g.dtype.itemsize]
    t = out.view(bits)
    np.bitwise_and(y.view(bits), _NOT_SIGN[bits.itemsize], out=t)  # |y|: 0 only at +-0
    np.negative(t, out=t)  # < 0 where the gradient passes
    np.right_shift(t, 8 * bits.itemsize - 1, out=t)  # all bits there, 0 elsewhere
    np.bitwise_and(g.view(bits), t, out=t)
    return out


@functools.lru_cache(maxsize=64)
def _exact_blend(slope: Any, dtype: np.dtype) -> bool:
    """Whether (1 - slope) + slope rounds to exactly 1 in ``dtype`` (so the factor (1 - slope) + slope
    gives x itself on the positive side): true for slopes in [0, 1], checked for the rest."""
    with np.errstate(all="ignore"):
        s = dtype.type(slope)
        rest = dtype.type(1) - s
        return bool(np.isfinite(rest) and rest + s == 1)  # host: one scalar


def leaky_relu(x: Any, negative_slope: float = 0.01) -> Tensor:
    x = _lift_float(x)
    d = x.array
    if (
        not (_mode.enabled and x._requires_grad)
        and type(d) is np.ndarray
        and (d.dtype == np.float32 or d.dtype == np.float64)
        and type(negative_slope) is float
        and 0.0 < negative_slope < 1.0
        and d.ndim
    ):
        # nothing records the op, so no backward factor: max(x * slope, x) is x for x > 0 and x * slope
        # otherwise (|x * slope| <= |x| for a slope in (0, 1), whatever the rounding), a NaN stays NaN,
        # -0.0 stays -0.0 and an infinity is never multiplied into a NaN: torch's values in two passes
        out = np.multiply(d, negative_slope)
        np.maximum(out, d, out=out)
        return record_op(out, (x,), _leaky_relu_vjp, (negative_slope, None))
    if type(d) is not np.ndarray or d.ndim == 0 or not _exact_blend(negative_slope, d.dtype):
        # negative_slope (a Python number) takes d's dtype; float16 multiplies in float32 (torch's)
        low = (d.astype(np.float32) * negative_slope).astype(d.dtype) if d.dtype == np.float16 else d * negative_slope
        return record_op(np.where(d > 0, d, low), (x,), _leaky_relu_vjp, (negative_slope, None))
    # x times a factor of 1 (x > 0) or the slope (else, a NaN included), without np.where (a
    # data-dependent select costs a mispredicted branch per element): a NaN stays NaN, -0.0 stays
    # -0.0, and the gradient is g times the same factor, as torch's
    # (float16 with a float32 factor, rounded once: torch's products are in float32 there)
    factor = np.greater(d, 0).astype(np.float32 if d.dtype == np.float16 else d.dtype)
    factor *= 1 - negative_slope
    factor += negative_slope
    return record_op((d * factor).astype(d.dtype, copy=False), (x,), _leaky_relu_vjp, (negative_slope, factor))


def _leaky_relu_vjp(g, y, args, saved, needs, xp):
    slope, factor = saved
    if factor is not None and not xp.differentiable:
        return ((g * factor).astype(g.dtype, copy=False),)
    if factor is not None and xp.data(g).dtype == factor.dtype:
        # Under create_graph, one recorded product by the forward's factor (1 or the slope: the values
        # of the select below), which a double backward (a gradient penalty) multiplies by again,
        # instead of a select and a product whose rule runs two selects on a data-dependent mask.
        return (link_input(g * xp.constant(factor), args[0]),)
    if not xp.differentiable and g.dtype == np.float16:  # the product in float32, rounded once (torch's)
        return (xp.where(xp.data(args[0]) > 0, g, (g.astype(np.float32) * slope).astype(np.float16)),)
    return (link_input(xp.where(xp.data(args[0]) > 0, g, g * slope), args[0]),)


def hardtanh(x: Any, min_val: float = -1.0, max_val: float = 1.0) -> Tensor:
    """``x`` clamped into [min_val, max_val] (torch's hardtanh; relu6 is hardtanh(x, 0, 6)).

    Unlike ``clamp`` (whose gradient is 1 on the bounds), the gradient is 0 at ``min_val`` and
    ``max_val`` themselves and passes strictly inside and at NaN, as torch's.

    Example:
        >>> import downslope as ds
        >>> ds.nn.functional.hardtanh(ds.tensor([-3.0, 0.5, 2.0])).tolist()
        [-1.0, 0.5, 1.0]
    """
    x = _lift(x)
    a = x.array
    if a.dtype == np.bool_:
        raise DTypeError("hardtanh: Bool inputs not supported for hardtanh")
    # torch reads 0-d tensor bounds as the numbers they hold (its bounds are Scalars, without gradient)
    if isinstance(min_val, Tensor):
        min_val = min_val.item()  # host: a bound is a constant of the op
    if isinstance(max_val, Tensor):
        max_val = max_val.item()  # host: a bound is a constant of the op
    if min_val > max_val:
        raise ArgumentError(f"hardtanh: min_val cannot be greater than max_val, got {min_val} and {max_val}")
    if a.dtype.kind == "u" and (min_val < 0 or max_val < 0):
        raise InvalidValueError("hardtanh: cannot do hardtanh on an unsigned type with negative limits")
    # torch's checked conversion of the bounds: truncated for integers, refused past float16's range
    lo, hi = (_checked_scalar(v, a.dtype, "hardtanh") for v in (min_val, max_val))
    if a.dtype.kind != "f":  # integers keep their dtype (and have no gradient)
        return wrap_array(a.clip(lo, hi))
    return record_op(a.clip(lo, hi).astype(a.dtype, copy=False), (x,), _hardtanh_vjp, (lo, hi))


def _hardtanh_vjp(g, y, args, saved, needs, xp):
    lo, hi = saved
    d = xp.data(args[0])
    # torch's (x <= lo || x >= hi) ? 0 : g: nothing passes at the bounds, a NaN input's gradient does
    # (torch's CUDA kernel and its CPU scalar loop; its CPU vector loop, x > lo && x < hi, blocks it)
    blocked = d <= lo
    blocked |= d >= hi
    if _selectable(g, blocked) and g.dtype == d.dtype:
        return (_select(g, blocked, keep=False),)
    return (link_input(xp.where(blocked, 0.0, g), args[0]),)


def _shrink_operand(x: Any, lambd: float, name: str) -> Any:
    x = _lift(x)
    if x.array.dtype.kind != "f":
        raise ArgumentTypeError(f"{name}: expected a floating tensor, got {x.array.dtype}")
    if not isinstance(lambd, (int, float, np.integer, np.floating)) or isinstance(lambd, bool):
        raise ArgumentTypeError(f"{name}: lambd must be a number, got {type(lambd).__name__}")
    return x


def softshrink(x: Any, lambd: float = 0.5) -> Tensor:
    """``x - lambd`` above ``lambd``, ``x + lambd`` below ``-lambd``, 0 between (torch's softshrink);
    NaN stays NaN, and the gradient passes outside ``[-lambd, lambd]`` and at NaN, as torch's.

    Example:
        >>> import downslope as ds
        >>> ds.nn.functional.softshrink(ds.tensor([-2.0, 0.25, 1.0, float("nan")])).tolist()
        [-1.5, 0.0, 0.5, nan]
    """
    lambd = _hyper_number(lambd)  # a 0-d tensor as lambda, as torch takes it
    x = _shrink_operand(x, lambd, "softshrink")
    if lambd < 0:
        raise ArgumentError(f"softshrink: lambda must be greater or equal to 0, but found to be {lambd}.")
    a = x.array
    xp = backend.namespace_of(a)
    # x - clip(x) is 0 inside, x -/+ lambd outside and NaN at NaN (clip keeps NaN), with no select;
    # the zero takes x's sign, as torch's (-0.0 for a negative x inside)
    with np.errstate(invalid="ignore"):  # inf - lambd is fine; NaN - NaN stays quiet
        out = a - a.clip(-lambd, lambd)
    out = xp.copysign(out, a).astype(a.dtype, copy=False)
    return record_op(out, (x,), _band_vjp, (-lambd, lambd))


def hardshrink(x: Any, lambd: float = 0.5) -> Tensor:
    """``x`` where ``|x| > lambd``, else 0 (torch's hardshrink); NaN stays NaN, and the gradient
    passes outside ``[-lambd, lambd]`` and at NaN, as torch's.

    Example:
        >>> import downslope as ds
        >>> ds.nn.functional.hardshrink(ds.tensor([-2.0, 0.25, 1.0, float("nan")])).tolist()
        [-2.0, 0.0, 1.0, nan]
    """
    lambd = _hyper_number(lambd)  # a 0-d tensor as lambda, as torch takes it
    x = _shrink_operand(x, lambd, "hardshrink")
    a = x.array
    xp = backend.namespace_of(a)
    inside = a >= -lambd
    inside &= a <= lambd  # False at NaN: NaN passes through
    out = xp.where(inside, a.dtype.type(0), a).astype(a.dtype, copy=False)
    return record_op(out, (x,), _band_vjp, (-lambd, lambd))


def threshold(x: Any, threshold: float, value: float) -> Tensor:
    """``x`` where ``x > threshold``, else ``value`` (torch's threshold: ``x <= threshold ? value : x``,
    so NaN stays NaN and its gradient passes).

    Example:
        >>> import downslope as ds
        >>> ds.nn.functional.threshold(ds.tensor([-1.0, 2.0, float("nan")]), 0.5, -2.0).tolist()
        [-2.0, 2.0, nan]
    """
    x = _lift(x)
    a = x.array
    if a.dtype == np.bool_:
        raise DTypeError("threshold: Bool inputs not supported for threshold")
    xp = backend.namespace_of(a)
    below = a <= threshold
    out = xp.where(below, a.dtype.type(value), a).astype(a.dtype, copy=False)
    if a.dtype.kind != "f":  # integers keep their dtype (and have no gradient)
        return wrap_array(out)
    return record_op(out, (x,), _band_vjp, (-math.inf, threshold))


def _band_vjp(g, y, args, saved, needs, xp):
    lo, hi = saved
    d = xp.data(args[0])
    # torch's (lo <= x && x <= hi) ? 0 : g: nothing passes in the band, a NaN input's gradient does
    blocked = d >= lo
    blocked &= d <= hi
    if _selectable(g, blocked) and g.dtype == d.dtype:
        return (_select(g, blocked, keep=False),)
    return (link_input(xp.where(blocked, 0.0, g), args[0]),)


def softplus(x: Any, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """log(1 + e^(beta x)) / beta, linear where beta x > threshold (PyTorch's definition).

    Computed as max(beta x, 0) + log1p(e^-|beta x|) (no overflow, no cancellation, no select: NumPy's
    logaddexp took 2 ms at 256x256); float16 in float32, rounded once, as torch.

    Example:
        >>> import downslope as ds
        >>> ds.ops.softplus(ds.tensor([-1.0, 0.0, 30.0]))
        tensor([ 0.3133,  0.6931, 30.    ])
    """
    x = _lift_float(x)
    d = x.array
    w = d.astype(np.float32) if d.dtype == np.float16 else d
    w = w.reshape(w.shape or (1,))  # 0-d as 1-d: the in-place steps need arrays, not NumPy scalars
    xp = backend.namespace_of(w)
    bx = w * beta if beta != 1 else w  # Python numbers take w's dtype
    e = xp.abs(bx)
    xp.negative(e, out=e)
    xp.exp(e, out=e)  # e^-|beta x| in (0, 1]: never overflows
    out = xp.log1p(e)
    out += xp.clip(bx, 0, math.inf)
    if beta != 1:
        out /= beta
    linear = bx > threshold
    xp.copyto(out, w, where=linear)  # mostly False: a cheap pass, no mispredicted branches
    result = out.astype(d.dtype, copy=False).reshape(d.shape)
    return record_op(result, (x,), _softplus_vjp, (beta, threshold, e, linear))


def _softplus_vjp(g, y, args, saved, needs, xp):
    beta, threshold, e, linear = saved
    x = args[0]
    if xp.differentiable:
        bx = xp.data(x) * beta
        return (xp.where(bx > threshold, g, g * xp.sigmoid(x * beta)),)
    # sigmoid(beta x) = e^min(beta x, 0) / (1 + e^-|beta x|), the forward's e^-|beta x| reused;
    # a product, as torch's g * z / (z + 1): an inf gradient at x = -inf gives NaN there too
    w = x.astype(e.dtype, copy=False).reshape(e.shape)
    s = w * beta if beta != 1 else w.copy()
    xp_ = backend.namespace_of(s)
    xp_.clip(s, -math.inf, 0, out=s)  # clip: NumPy's minimum against a scalar takes a slow loop
    xp_.exp(s, out=s)
    s /= e + 1
    gw = g.astype(e.dtype, copy=False).reshape(e.shape)
    s *= gw
    xp_.copyto(s, gw, where=linear)
    return (s.astype(g.dtype, copy=False).reshape(g.shape),)


def erf(x: Any) -> Tensor:
    """The error function (torch.erf), with its gradient 2/sqrt(pi) exp(-x^2); on the host fdlibm's
    rational approximations over whole arrays (``ops._erf``), within one ulp."""
    x = _lift_float(x)
    return record_op(backend.erf(x.array), (x,), _erf_vjp)


def _erf_vjp(g, y, args, saved, needs, xp):
    x = args[0]
    return (g * (2 / math.sqrt(math.pi)) * xp.exp(-(x * x)),)


def clip(x: Any, min: Any = None, max: Any = None) -> Tensor:
    """Clamp into [min, max]; the gradient passes where min <= x <= max (PyTorch's clamp)."""
    x = _lift(x)
    if isinstance(min, Tensor) or isinstance(max, Tensor):
        _ordered(x, min, max)
        # where, not maximum/minimum: on a tie x keeps the whole gradient (torch's clamp), not half
        _check_broadcast("clip", *(_index_array(v) for v in (x, min, max) if v is not None))
        if all(v is None or isinstance(v, Tensor) and v.array.dtype == x.array.dtype for v in (min, max)):
            return _clip_tensor_bounds(x, min, max)
        # mixed dtypes, or a number beside a tensor bound: every operand in torch's result type of all
        # three (promoting pairwise would round in a narrower dtype), a number as a 0-d tensor of it,
        # so that one kernel gives torch's NaN rule for a NaN number bound too
        common = _clamp_result_dtype(x, min, max)
        xp = backend.namespace_of(x.array)
        x, low, high = (
            v if v is None else astype(v, common) if isinstance(v, Tensor) else _clamp_bound_tensor(v, common, xp)
            for v in (x, min, max)
        )
        return _clip_tensor_bounds(x, low, high)
    if min is None and max is None:
        raise ArgumentError("clip: at least one of min and max must be given")
    kind = x.array.dtype.kind
    _ordered(x, min, max)  # a complex bound too: NumPy would drop its imaginary part
    if kind != "f":  # a number bound of a higher category promotes (torch: int.clamp(1.5) is float32)
        bounds = [v for v in (min, max) if v is not None]
        if any(isinstance(v, (float, np.floating)) for v in bounds):
            x = _lift_float(x)
        elif kind == "b" and any(not isinstance(v, (bool, np.bool_)) for v in bounds):
            x = wrap_array(x.array.astype(np.int64))
    # torch's checked conversion of a number: -1 is 255 for uint8, 300 is refused, so is 1e10 for float16
    min, max = (None if v is None else _checked_scalar(v, x.array.dtype, "clamp") for v in (min, max))
    lo, hi = min, max
    if x.array.dtype.kind == "f":  # an infinite bound, not None: NumPy's one-sided clip (maximum against a
        # scalar) is 3x slower and gives +0.0 for -0.0 where torch keeps -0.0
        lo, hi = -math.inf if lo is None else lo, math.inf if hi is None else hi
    return record_op(x.array.clip(lo, hi).astype(x.array.dtype, copy=False), (x,), _clip_vjp, (min, max))


def _clamp_result_dtype(x: Tensor, lo: Any, hi: Any) -> np.dtype:
    """torch's result type of clamp's three operands (``_result_dtype``); a 0-d tensor beside a number
    bound counts as a number, as torch then takes clamp's Scalar overload (clamp(int64 tensor,
    float64 0-d tensor, 1) is float32, the default dtype)."""
    number_bound = any(v is not None and not isinstance(v, Tensor) for v in (lo, hi))
    return _result_dtype((x, lo, hi), zero_d_as_numbers=number_bound, keep=x)


def _result_dtype(operands: tuple[Any, ...], zero_d_as_numbers: bool = False, keep: Any = None) -> np.dtype:
    """torch's result type of several operands (None skipped): tensors with dims decide, then 0-d
    tensors, then numbers, each later group only lifting the category (bool < integer < floating);
    a float number counts as the default dtype. ``zero_d_as_numbers`` counts 0-d tensors other than
    ``keep`` as numbers of their kind."""
    from .promotion import promote_types  # promotion builds on this module

    groups: tuple[list[Any], list[Any], list[Any]] = ([], [], [])  # with dims, 0-d, numbers
    for v in operands:
        if v is None:
            continue
        if isinstance(v, Tensor) and (v is keep or v.ndim > 0 or not zero_d_as_numbers):
            groups[0 if v.ndim > 0 else 1].append(v.array.dtype)
            continue
        kind = v.array.dtype.kind if isinstance(v, Tensor) else np.asarray(v).dtype.kind  # host: a number
        default = backend.get_default_dtype()
        groups[2].append(
            np.dtype(np.bool_)
            if kind == "b"
            else np.dtype(np.int64)
            if kind in "iu"
            else np.result_type(default, np.complex64)
            if kind == "c"
            else default
        )

    def combine(higher: Any, lower: Any) -> Any:  # torch's combine_categories
        if higher is None or lower is None:
            return lower if higher is None else higher
        if higher.kind in "fc":
            return higher
        if higher.kind == "b" or lower.kind in "fc":
            return promote_types(higher, lower)
        return higher

    results = [functools.reduce(promote_types, g) if g else None for g in groups]
    return np.dtype(combine(results[0], combine(results[1], results[2])))


def lerp(start: Any, end: Any, weight: Any) -> Tensor:
    """torch.lerp of float operands as one op: ``start + weight * (end - start)`` for |weight| < 0.5,
    ``end - (end - start) * (1 - weight)`` from 0.5 on, as torch's kernel: exact at weight 1, and an
    infinite start with a weight of 0.5 or more gives the infinity, not inf - inf = NaN. The gradients
    are torch's: (1 - weight) g, weight g and (end - start) g. Operands of different dtypes meet in
    torch's result type of all three; integer operands keep the plain formula."""
    start = _lift(start)
    end = end if isinstance(end, Tensor) else _lift(end, like=start)
    tensor_weight = isinstance(weight, Tensor)
    if isinstance(weight, (np.floating, np.integer)):
        weight = weight.item()  # host: a NumPy scalar the caller gave, a Python number as torch reads it
    elif not tensor_weight and not isinstance(weight, (int, float)):
        weight = _lift(weight, like=start)
        tensor_weight = True
    common = start.array.dtype
    if end.array.dtype != common or tensor_weight and weight.array.dtype != common:
        common = _result_dtype((start, end, weight))
    if common.kind != "f":  # integer or complex lerp: the plain formula, its promotion left to the ops
        return start + weight * (end - start)
    start, end = astype(start, common), astype(end, common)
    if tensor_weight:
        weight = astype(weight, common)
    # float16 in float32, rounded once, as torch's kernel (end - start of two float16 numbers may
    # overflow where the result does not)
    work = np.float32 if common == np.float16 else None
    a, b = (t.array if work is None else t.array.astype(work) for t in (start, end))
    try:
        # inf - inf is torch's NaN too, without NumPy's RuntimeWarning
        with np.errstate(invalid="ignore", over="ignore"):
            diff = b - a
            if tensor_weight:
                out = _lerp_by_tensor(a, b, diff, weight.array if work is None else weight.array.astype(work))
            elif builtins.abs(weight) < 0.5:  # in place in diff, this op's own buffer
                diff *= weight
                diff += a
                out = diff
            else:
                diff *= 1 - weight
                out = b - diff
    except ValueError:
        _check_broadcast("lerp", *(t.array for t in (start, end, weight) if isinstance(t, Tensor)))
        raise
    out = backend.namespace_of(a).asarray(out).astype(common, copy=False)
    if tensor_weight:
        return record_op(out, (start, end, weight), _lerp_tensor_weight_vjp)
    return record_op(out, (start, end), _lerp_number_weight_vjp, weight)


def _lerp_by_tensor(a: Any, b: Any, diff: Any, w: Any) -> Any:
    """lerp's values for a tensor weight ``w``: a + w diff where |w| < 0.5, else b - diff (1 - w),
    computed as ``base + t diff`` with base = b and t = w - 1 there (w - 1 is exactly -(1 - w), so the
    values are the two formulas' to the bit); no more full-size buffers than a + w * (b - a)."""
    xp = backend.namespace_of(diff)
    high = xp.abs(w) >= 0.5
    if type(high) is np.ndarray and not high.any():  # host: the common small weights, one formula
        if diff.shape == np.broadcast_shapes(diff.shape, w.shape):
            diff *= w  # in place: diff is lerp's own buffer
        else:
            diff = diff * w
        diff += a
        return diff
    t = xp.asarray(w - high)  # w - 1 where high: a bool subtracts as 0 or 1, exactly
    if t.shape == np.broadcast_shapes(t.shape, diff.shape):
        t *= diff
    else:
        t = t * diff
    t += _float_where(high, b, a)
    return t


def _float_where(mask: Any, yes: Any, no: Any) -> Any:
    """``where(mask, yes, no)`` of two float arrays of one dtype, to the bit (inf and NaN too). On the host
    a bitwise blend over the broadcast shape: NumPy's where branches per element, 1 ms at 512x512 float32
    with a mask as irregular as lerp's or a remainder's, the blend about 0.1 ms; anything else (device
    arrays, scalars, mixed dtypes) goes through the namespace's where."""
    bits = _FLOAT_BITS.get(yes.dtype) if type(yes) is np.ndarray and type(no) is np.ndarray else None  # host
    if bits is None or no.dtype != yes.dtype:
        return backend.namespace_of(no).where(mask, yes, no)
    shape = np.broadcast_shapes(np.shape(mask), yes.shape, no.shape)
    yes_bits, no_bits = (np.broadcast_to(v, shape).view(bits) for v in (yes, no))  # host: host arrays only
    out = np.bitwise_xor(yes_bits, no_bits)  # host: host arrays only
    out *= mask  # the differing bits where mask, 0 elsewhere
    out ^= no_bits
    return out.view(yes.dtype)


_FLOAT_BITS = {np.dtype(np.float16): np.int16, np.dtype(np.float32): np.int32, np.dtype(np.float64): np.int64}


def _lerp_number_weight_vjp(g, y, args, saved, needs, xp):
    start, end = args
    w = saved
    return (
        xp.sum_to(g * (1 - w), start.shape) if needs[0] else None,
        xp.sum_to(g * w, end.shape) if needs[1] else None,
    )


def _lerp_tensor_weight_vjp(g, y, args, saved, needs, xp):
    start, end, weight = args
    return (
        xp.sum_to(g * (1 - weight), start.shape) if needs[0] else None,
        xp.sum_to(g * weight, end.shape) if needs[1] else None,
        xp.sum_to(g * (end - start), weight.shape) if needs[2] else None,
    )


def addc(name: str, x: Any, tensor1: Any, tensor2: Any, value: Any) -> Tensor:
    """addcmul (``x + value * tensor1 * tensor2``) or addcdiv (``x + value * tensor1 / tensor2``), by
    ``name``, of float32/float64 tensors of one dtype as one op, in torch's order ((value * tensor1)
    * tensor2), with torch's gradients: a factor's gradient is formed per element, then summed to
    its shape, so a broadcast factor beside an infinite one (or a zero divisor) sums infinities of
    both signs to NaN, as torch does (summing g first, then multiplying by inf, gave inf). Other
    operands take the composed ops."""
    divide = name == "addcdiv"
    same = isinstance(x, Tensor) and isinstance(tensor1, Tensor) and isinstance(tensor2, Tensor)
    dtype = x.array.dtype if same else None
    if not (same and dtype in _ADDC_DTYPES and dtype == tensor1.array.dtype == tensor2.array.dtype) or not (
        isinstance(value, (int, float))
    ):
        from .arithmetic import div, mul  # arithmetic builds on this module

        if same and "c" in (x.array.dtype.kind, tensor1.array.dtype.kind, tensor2.array.dtype.kind):
            # torch computes the whole expression in the common dtype: uint8 factors of a complex input
            # multiply as complex, not in uint8 (which wraps at 256)
            x, tensor1, tensor2 = _in_common_dtype(x, tensor1, tensor2)
        return x + value * (div(tensor1, tensor2) if divide else mul(tensor1, tensor2))
    a, b = tensor1.array, tensor2.array
    try:
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # inf and NaN quietly, as torch
            p = a * value
            p = p / b if divide else p * b
            out = x.array + p
    except ValueError:
        _check_broadcast(name, x.array, a, b)
        raise
    return record_op(out, (x, tensor1, tensor2), _addcdiv_vjp if divide else _addcmul_vjp, value)


_ADDC_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _in_common_dtype(*ts: Tensor) -> tuple[Tensor, ...]:
    """``ts`` cast to their torch result dtype (tensors with dims decide within a category; 0-d ones
    only when of a higher one), promoted pairwise through stand-ins of the dtypes met so far."""
    from .promotion import result_type  # promotion builds on the ops

    dt, has_dims = ts[0].array.dtype, ts[0].ndim > 0
    for t in ts[1:]:
        stand_in = wrap_array(np.zeros((1,) if has_dims else (), dtype=dt))  # host: only its dtype is read
        dt, has_dims = result_type(stand_in, t), has_dims or t.ndim > 0
    return tuple(t if t.array.dtype == dt else astype(t, dt) for t in ts)


def _addcmul_vjp(g, y, args, saved, needs, xp):
    x, t1, t2 = args
    value = saved
    return (
        xp.sum_to(g, x.shape) if needs[0] else None,
        xp.sum_to(g * (t2 * value), t1.shape) if needs[1] else None,
        xp.sum_to(g * (t1 * value), t2.shape) if needs[2] else None,
    )


def _addcdiv_vjp(g, y, args, saved, needs, xp):
    x, t1, t2 = args
    value = saved
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return (
            xp.sum_to(g, x.shape) if needs[0] else None,
            xp.sum_to(g * (value / t2), t1.shape) if needs[1] else None,
            xp.sum_to(-g * (value * t1 / (t2 * t2)), t2.shape) if needs[2] else None,
        )


for _rule in (_addcmul_vjp, _addcdiv_vjp, _lerp_number_weight_vjp, _lerp_tensor_weight_vjp):
    _rule.reads_output = False  # type: ignore[attr-defined]
_lerp_number_weight_vjp.reads_inputs = False  # type: ignore[attr-defined]  # only their shapes, as torch saves none


# x's gradient reads no values; each factor's reads the other (addcdiv's divisor's reads both), so torch
# saves the factors only for a factor's gradient and a second backward to x alone works there
def _addcmul_reads(i: int, needs: Any) -> bool:
    return needs is None or (i == 1 and bool(needs[2])) or (i == 2 and bool(needs[1]))  # host: flags


def _addcdiv_reads(i: int, needs: Any) -> bool:
    return needs is None or (i == 1 and bool(needs[2])) or (i == 2 and bool(needs[1] or needs[2]))  # host: flags


_addcmul_vjp.reads_inputs = _addcmul_reads  # type: ignore[attr-defined]
_addcdiv_vjp.reads_inputs = _addcdiv_reads  # type: ignore[attr-defined]


def _clamp_bound_tensor(value: Any, dtype: np.dtype, xp: Any) -> Tensor:
    """A number bound of clamp as a 0-d tensor of the result dtype, by torch's checked conversion
    (300 into int8 is refused, -1 into uint8 is 255)."""
    if isinstance(value, np.generic):
        value = value.item()  # host: a NumPy scalar the caller gave
    return wrap_array(xp.asarray(_checked_scalar(value, dtype, "clamp"), dtype=dtype))


def _clip_tensor_bounds(x: Tensor, lo: Tensor | None, hi: Tensor | None) -> Tensor:
    """clamp with tensor bounds of x's dtype as one op: ``minimum(maximum(x, lo), hi)``, whose NaN
    rule is torch's (a NaN in x or in a bound gives NaN there); a bound above the other gives ``hi``."""
    inputs = (x,) + tuple(b for b in (lo, hi) if b is not None)
    compiled = _clamp_compiled(x.array, lo, hi)
    if compiled is not None:
        return record_op(compiled, inputs, _clip_tensor_bounds_vjp, (lo is not None, hi is not None))
    out = x.array
    xp = backend.namespace_of(out)
    signed_zeros = out.dtype.kind == "f"
    fresh = False  # whether ``out`` is this op's own buffer, to be written in place by the next bound
    for bound, pick in ((lo, xp.maximum), (hi, xp.minimum)):
        if bound is None:
            continue
        b = bound.array
        # on a zero tie torch keeps the clamped value, and maximum(0.0, -0.0) may give either zero; a
        # tie needs a zero bound, so a host bound without zeros (the common case: one look at the
        # bound, often far smaller than x) skips the two full-size comparisons and the masked copy
        fix_zeros = signed_zeros and (xp is not np or bool((b == 0).any()))  # host: looked at for NumPy only
        if fresh and not fix_zeros and np.broadcast_shapes(out.shape, b.shape) == out.shape:
            pick(out, b, out=out)  # one pass into the buffer the first bound made
            continue
        kept = out
        out = xp.asarray(pick(kept, b))  # 0-d operands give NumPy a scalar, not an array
        fresh = out.ndim > 0
        if fix_zeros:
            xp.copyto(out, kept, where=(kept == 0) & (out == 0))
    return record_op(out, inputs, _clip_tensor_bounds_vjp, (lo is not None, hi is not None))


# From this many elements clamp with tensor bounds takes the compiled one-pass kernel where it applies
# (NumPy's maximum then minimum read and write the result twice: 2.5x torch's time at 512x1024 float32);
# below it the first call's numba import (0.5-2 s a process) is not earned back.
_JIT_CLAMP_MIN_SIZE = 4096
_JIT_CLAMP_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _clamp_compiled(a: Any, lo: Tensor | None, hi: Tensor | None) -> Any:
    """clamp of host array ``a`` (C-contiguous float32/float64, at least _JIT_CLAMP_MIN_SIZE elements)
    by bounds of its dtype that are its shape (C-contiguous) or one row broadcast down the others, in
    one compiled pass (``_jit_special.clamp_rows``); None where that does not apply (NumPy's path)."""
    if type(a) is not np.ndarray or a.dtype not in _JIT_CLAMP_DTYPES or a.size < _JIT_CLAMP_MIN_SIZE:
        return None
    if not a.flags.c_contiguous:
        return None
    cols = a.shape[-1]
    rows = a.size // cols
    bound_rows = []
    for bound, fill in ((lo, -math.inf), (hi, math.inf)):
        if bound is None:
            bound_rows.append(np.full((1, cols), fill, a.dtype))  # host: a is a host array
            continue
        b = bound.array
        if type(b) is not np.ndarray:
            return None
        if b.shape == a.shape and b.flags.c_contiguous:
            bound_rows.append(b.reshape(rows, cols))
        elif b.ndim <= a.ndim and math.prod(b.shape[:-1]) == 1 and b.size in (1, cols):
            # one row (or one number) for every row: at most a row's copy
            row = np.ascontiguousarray(np.broadcast_to(b.reshape(-1), (cols,)))  # host: b is a host array
            bound_rows.append(row.reshape(1, cols))
        else:
            return None  # a column or a block of rows: NumPy's broadcasting
    from .. import jit_gate

    kernels = jit_gate.kernels("downslope.ops._jit_special", a, *bound_rows)
    if kernels is None:
        return None
    out = np.empty((rows, cols), a.dtype)  # host: a is a host array
    kernels.clamp_rows(a.reshape(rows, cols), bound_rows[0], bound_rows[1], out)
    return out.reshape(a.shape)


def _clip_tensor_bounds_vjp(g, y, args, saved, needs, xp):
    # torch's rules (clamp_backward, clamp_backward_min_max): x's gradient where lo <= x <= hi; lo's
    # where x < lo < hi; hi's where x > hi or hi < lo (the result is hi then). A NaN compares false.
    has_lo, has_hi = saved
    x = xp.data(args[0])
    lo = xp.data(args[1]) if has_lo else None
    hi = xp.data(args[1 + has_lo]) if has_hi else None
    if lo is not None and hi is not None:
        to_x = (x >= lo) & (x <= hi)
        to_lo = (x < lo) & (lo < hi)
        to_hi = (x > hi) | (hi < lo)
    else:
        to_x = x >= lo if lo is not None else x <= hi
        to_lo = x < lo if lo is not None else None
        to_hi = x > hi if hi is not None else None
    grads = [xp.sum_to(_masked(g, to_x, xp), args[0].shape) if needs[0] else None]
    if has_lo:
        grads.append(xp.sum_to(_masked(g, to_lo, xp), args[1].shape) if needs[1] else None)
    if has_hi:
        grads.append(xp.sum_to(_masked(g, to_hi, xp), args[-1].shape) if needs[-1] else None)
    return tuple(grads)


def _masked(g: Any, mask: Any, xp: Any) -> Any:
    """``g`` where ``mask``, 0 elsewhere (``mask`` may be overwritten): the branch-free select on host
    arrays of one shape, where ``where`` on a data-dependent mask costs a mispredicted branch per element."""
    if _selectable(g, mask):
        return _select(g, mask)
    return xp.where(mask, g, 0.0)


_clip_tensor_bounds_vjp.reads_output = False  # type: ignore[attr-defined]


def _ordered(*operands: Any) -> None:
    """Refuse complex operands of clamp, as torch does (complex numbers have no order)."""
    for v in operands:
        if isinstance(v, Tensor) and v.array.dtype.kind == "c" or isinstance(v, (complex, np.complexfloating)):
            raise DTypeError("clamp: not supported for complex tensors (complex numbers have no order), as in torch")


def _clip_vjp(g, y, args, saved, needs, xp):
    # torch's select: the gradient where min <= x <= max (not at NaN), 0 elsewhere, also where the
    # gradient is inf or NaN (a product with the mask gave NaN there: 0 * inf)
    lo, hi = saved
    d = xp.data(args[0])
    inside = (d >= lo) if lo is not None else None
    if hi is not None:
        inside = (d <= hi) if inside is None else inside & (d <= hi)
    if _selectable(g, inside) and g.dtype == d.dtype:
        return (_select(g, inside),)
    return (xp.where(inside, g, 0.0),)


clamp = clip


_NOTHING: Any = object()


def where(condition: Any, a: Any = _NOTHING, b: Any = _NOTHING) -> Any:
    """Pick from ``a`` where ``condition`` is true, else from ``b`` (all broadcast together).
    ``where(condition)`` alone is ``nonzero(condition, as_tuple=True)``, as in torch."""
    if a is _NOTHING and b is _NOTHING:
        from .indexing import nonzero

        return nonzero(condition, as_tuple=True)
    if a is _NOTHING or b is _NOTHING:
        raise ArgumentError("where: pass both values (where(condition, a, b)) or neither (where(condition))")
    if isinstance(condition, Tensor):
        cond = condition.array
        if cond.dtype != np.bool_:
            if cond.dtype != np.uint8:  # torch takes uint8 (deprecated) and refuses the rest
                raise ArgumentTypeError(f"where: expected a boolean condition, got dtype {cond.dtype}")
            cond = cond.astype(bool)
    else:  # arrays and host data (internal masks, Python bools) are read as truth values
        if condition is None or isinstance(condition, (str, bytes)):
            raise ArgumentTypeError(f"where: expected a boolean condition tensor, got {type(condition).__name__}")
        cond = _index_array(condition)
        if cond.dtype != np.bool_:
            cond = cond.astype(bool)
    # A Python int beside an integer tensor takes its dtype, converted as torch checks it (300 into
    # uint8 is refused there, not wrapped to 44)
    if type(b) is int and isinstance(a, Tensor) and a.array.dtype.kind in "iu":
        b = _checked_scalar(b, a.array.dtype, "where")
    elif type(a) is int and isinstance(b, Tensor) and b.array.dtype.kind in "iu":
        a = _checked_scalar(a, b.array.dtype, "where")
    a, b = complex_pair(a, b)
    try:
        out = np.where(cond, a.array, b.array)
    except ValueError:
        _check_broadcast("where", cond, a.array, b.array)
        raise
    except TypeError:  # host data meeting device data, which CuPy refuses: a host mask joins the data's
        # device, 0-d host values go as NumPy scalars (what CuPy's kernels take)
        device_array = next((v for v in (cond, a.array, b.array) if type(v) is not np.ndarray and is_array(v)), None)
        if device_array is None:
            raise
        cond = like(cond, device_array) if cond.ndim else _host_scalar(cond)
        out = np.where(cond, _host_scalar(a.array), _host_scalar(b.array))
    return record_op(out, (a, b), _where_vjp, cond)


def _where_vjp(g, y, args, saved, needs, xp):
    a, b = args
    return (  # the Python 0.0 takes g's dtype
        xp.sum_to(xp.where(saved, g, 0.0), a.shape) if needs[0] else None,
        xp.sum_to(xp.where(saved, 0.0, g), b.shape) if needs[1] else None,
    )


# Rules that use only their inputs' shapes, not their values: an in-place write to an input after
# the op was recorded does not invalidate them (autograd._check_versions).
for _rule in (_astype_vjp, _where_vjp, _clone_vjp):
    _rule.reads_inputs = False  # type: ignore[attr-defined]


# Rules that read only their output (and g): their inputs may be overwritten after the op.
for _rule in (_exp_vjp, _expm1_vjp, _sqrt_vjp, _tanh_vjp, _sigmoid_vjp, _relu_vjp):
    _rule.reads_inputs = False  # type: ignore[attr-defined]


def log1p(x: Any) -> Tensor:
    """log(1 + x), accurate for small x."""
    if not (isinstance(x, Tensor) and x.array.dtype.kind in "fc"):  # a complex tensor keeps its dtype
        x = _lift_float(x)
    try:
        out = np.log1p(x.array)
    except RuntimeWarning:  # only under a user's "error" warnings filter: see quietly
        out = quietly(np.log1p, x.array)
    return record_op(out, (x,), _log1p_vjp)


def _log1p_vjp(g, y, args, saved, needs, xp):
    return (g / (args[0] + 1),)


def rsqrt(x: Any) -> Tensor:
    """1 / sqrt(x)."""
    if not (isinstance(x, Tensor) and x.array.dtype.kind in "fc"):  # a complex tensor keeps its dtype
        x = _lift_float(x)
    try:
        out = 1 / np.sqrt(x.array)
    except RuntimeWarning:  # only under a user's "error" warnings filter: see quietly
        out = quietly(lambda a: 1 / np.sqrt(a), x.array)
    return record_op(out, (x,), _rsqrt_vjp)


def _rsqrt_vjp(g, y, args, saved, needs, xp):
    return (g * (y * y * y) * -0.5,)


def _stepwise(fn: Any, x: Any) -> Tensor:
    """A piecewise-constant op (floor, sign...): its gradient is 0 everywhere, as in torch."""
    x = _lift(x)
    if x.array.dtype.kind == "c":  # torch refuses rounding complex values (NumPy rounds each part, or fails)
        name = getattr(fn, "__name__", "round")
        raise DTypeError(f"{'round' if name == '<lambda>' else name}: not supported for complex tensors, as in torch")
    out = fn(x.array)
    if x.array.dtype.kind != "f":
        return wrap_array(out)
    return record_op(out.astype(x.array.dtype, copy=False), (x,), _zero_vjp)


def _zero_vjp(g, y, args, saved, needs, xp):
    # exact zeros, as torch: g * 0 would turn an inf or NaN upstream gradient into NaN
    data = xp.data(g)
    return (xp.constant(backend.namespace_of(data).zeros(data.shape, data.dtype)),)


def sign(x: Any) -> Tensor:
    x = _lift(x)
    if x.array.dtype.kind == "c":
        raise DTypeError(
            "Unlike NumPy, torch.sign is not intended to support complex numbers. Please use torch.sgn instead."
        )
    if x.array.dtype == np.bool_:
        return wrap_array(x.array.copy())  # torch: the sign of a bool is the bool (NumPy has no loop for it)
    return _stepwise(_sign_nan_zero, x)


def _sign_nan_zero(a: Any) -> Any:
    """NumPy's sign, but 0 for NaN, as torch's (a NaN gives no direction)."""
    if a.dtype.kind == "f":
        # (a > 0) - (a < 0): 0 for NaN (neither holds) and +0.0 for -0.0, as torch; two comparisons and
        # one int8 subtraction run about 4x faster than np.sign followed by a NaN fix-up
        return ((a > 0).astype(np.int8) - (a < 0).astype(np.int8)).astype(a.dtype)
    return np.sign(a)


def floor(x: Any) -> Tensor:
    return _stepwise(np.floor, x)


def ceil(x: Any) -> Tensor:
    return _stepwise(np.ceil, x)


def trunc(x: Any) -> Tensor:
    return _stepwise(np.trunc, x)


def round(x: Any, decimals: int = 0) -> Tensor:
    """Round half to even (as torch and NumPy do); the gradient is 0. A float16 tensor with
    ``decimals`` is scaled in float32, as torch does (65504 * 10 in float16 would be inf)."""
    if decimals and isinstance(x, Tensor) and x.array.dtype == np.float16:
        return _stepwise(lambda a: np.round(a.astype(np.float32), decimals).astype(np.float16), x)
    return _stepwise(lambda a: np.round(a, decimals), x)


_log1p_vjp.reads_inputs = True  # type: ignore[attr-defined]


for _rule in (_rsqrt_vjp, _zero_vjp):
    _rule.reads_inputs = False  # type: ignore[attr-defined]


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
    "acosh": (np.arccosh, lambda x, y, m: _acosh_derivative(x, m)),
    "atanh": (np.arctanh, lambda x, y, m: 1 / (1 - x * x)),
    "log2": (np.log2, lambda x, y, m: 1 / (x * _LN2)),
    "log10": (np.log10, lambda x, y, m: 1 / (x * _LN10)),
    "exp2": (np.exp2, lambda x, y, m: y * _LN2),
    "erfc": (
        # its own approximation, not 1 - erf(x): that is 0 from x = 6 (float64), x = 4 (float32)
        backend.erfc,
        lambda x, y, m: m.exp(-(x * x)) * (-2 / math.sqrt(math.pi)),
    ),
    "deg2rad": (np.deg2rad, lambda x, y, m: math.pi / 180),
    "rad2deg": (np.rad2deg, lambda x, y, m: 180 / math.pi),
    "frac": (lambda a: a - np.trunc(a), lambda x, y, m: 1),
    "sinc": (
        # float16 in float32, rounded once (torch's opmath): pi * x overflows float16 above 20860
        lambda a: np.sinc(a.astype(np.float32)) if a.dtype == np.float16 else np.sinc(a),
        lambda x, y, m: _sinc_derivative(x, m),
    ),
}


# Taylor coefficients of sinc'(x) / (pi * t) in u = t^2, t = pi x: (-1)^k 2k / (2k + 1)!, k = 1..6
_SINC_SERIES = tuple((-1) ** k * 2 * k / math.factorial(2 * k + 1) for k in range(1, 7))


def _acosh_derivative(x: Any, m: Any) -> Any:
    # 1 / sqrt(x^2 - 1) on reals (torch's, finite below -1 too); on complex values that has the wrong sign
    # off the principal branch, which 1 / (sqrt(x - 1) sqrt(x + 1)) follows (torch's complex rule)
    if m.data(x).dtype.kind == "c":
        return 1 / (m.sqrt(x - 1) * m.sqrt(x + 1))
    return 1 / m.sqrt(x * x - 1)


def _sinc_derivative(x: Any, m: Any) -> Any:
    # d/dx sin(pi x)/(pi x) = (cos(pi x) - sinc(x)) / x; for |pi x| < 0.5 its Taylor series instead
    # (that difference cancels there, and the series differentiates again: sinc''(0) = -pi^2/3)
    small = np.abs(m.data(x)) * math.pi < 0.5  # np.abs: |z| of complex values too (device arrays dispatch it)
    t = m.where(small, x, 0.0) * math.pi
    u = t * t
    poly = u * 0 + _SINC_SERIES[-1]
    for c in reversed(_SINC_SERIES[:-1]):
        poly = poly * u + c
    series = t * poly * math.pi + 0.0  # + 0.0: +0 at x = 0, as torch (t * poly is -0 there)
    safe = m.where(small, 1.0, x)
    # sinc(x) from x, not the output y: torch saves only x (an in-place write to the output is allowed)
    d = (m.cos(math.pi * safe) - m.sin(math.pi * safe) / (math.pi * safe)) / safe
    return m.where(small, series, d)


# The table's functions torch computes for complex input too (each holomorphic, its derivative above
# written on the complex z); the others refuse complex tensors, as torch does.
_COMPLEX_UNARY = frozenset(
    ("tan", "sinh", "cosh", "asin", "acos", "atan", "asinh", "acosh", "atanh", "log2", "log10", "exp2", "sinc")
)
#: name -> the table op's VJP rule (ops/complex.py registers the complex ones).
UNARY_RULES: dict[str, Any] = {}


def _unary_table_op(name: str) -> Any:
    forward, derivative = _UNARY[name]
    inexact = "fc" if name in _COMPLEX_UNARY else "f"

    def op(x: Any) -> Tensor:
        if not (isinstance(x, Tensor) and x.array.dtype.kind in inexact):
            if isinstance(x, Tensor) and x.array.dtype.kind == "c":
                raise DTypeError(f"{name}: not implemented for complex tensors ({x.array.dtype}), as in torch")
            x = _lift_float(x)
        try:
            out = forward(x.array)
        except RuntimeWarning:  # only under a user's "error" warnings filter: see quietly
            out = quietly(forward, x.array)
        return record_op(as_array(out).astype(x.array.dtype, copy=False), (x,), rule, name)

    def rule(g, y, args, saved, needs, xp):
        d = derivative(args[0], y, xp)
        return (g * d,)

    op.__name__ = op.__qualname__ = name
    op.__doc__ = f"Elementwise {name} (torch.{name}), with its gradient."
    rule.__name__ = f"_{name}_vjp"
    # The rule hands y to every derivative; only those that use it read the output (so an in-place
    # write to sinh's output, which PyTorch allows, is not refused).
    rule.reads_output = _reads_output(derivative)  # type: ignore[attr-defined]
    # and x only where the derivative reads it (exp2's is its output's: torch saves the result alone)
    rule.reads_inputs = _reads_param(derivative, derivative.__code__.co_varnames[0], 0)  # type: ignore[attr-defined]
    UNARY_RULES[name] = rule
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


def logit(x: Any, eps: float | None = None) -> Tensor:
    """log(x / (1 - x)) (torch.logit). With ``eps`` >= 0, x below eps reads as eps and x above 1 - eps
    as 1 - eps (torch's rule, also when eps > 0.5), and the gradient there is 0; without it (or with
    eps < 0) the gradient is NaN outside [0, 1], as torch's.

    Example:
        >>> import downslope as ds
        >>> ds.logit(ds.tensor([0.0, 0.5, 0.9]), eps=0.1)
        tensor([-2.1972,  0.    ,  2.1972])
    """
    if eps is not None and not isinstance(eps, (int, float, np.integer, np.floating)):
        raise ArgumentTypeError(f"logit: eps must be a float or None, got {type(eps).__name__}")
    x = _lift_float(x)
    a = x.array
    bounds = None if eps is None else (float(eps), 1.0 - float(eps))  # host: eps is a Python number
    if bounds is not None and bounds[0] >= 0:  # a negative eps clamps nothing (its gradient still does)
        lo, hi = bounds
        # not clamp: with eps > 0.5 (lo > hi) x < lo still reads as lo, as in torch
        a = np.where(a < lo, lo, np.where(a > hi, hi, a)).astype(a.dtype, copy=False)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.log(a / (1 - a))
    return record_op(as_array(out).astype(x.array.dtype, copy=False), (x,), _logit_vjp, bounds)


def _logit_vjp(g, y, args, saved, needs, xp):
    # torch's backward kernel: without eps (or with eps < 0) NaN outside [0, 1], with eps 0 outside
    # [eps, 1 - eps], whatever g is; g * inf at 0 and 1 (it tests x == 0, so -0.0 gives +inf too, where
    # g / (x (1 - x)) would give -inf); g / (x (1 - x)) elsewhere, a NaN x's included (NaN).
    # Under create_graph torch differentiates its formula instead, which masks with a where (a NaN x
    # gets the fill when eps is given, -0.0 gives -inf, a negative eps bounds it): the recorded rule
    # does the same.
    x = args[0]
    data = xp.data(x)
    if isinstance(g, Tensor):
        if saved is None:
            outside, fill = (data < 0) | (data > 1), math.nan
        else:
            outside, fill = ~((data >= saved[0]) & (data <= saved[1])), 0.0
        with np.errstate(divide="ignore", invalid="ignore"):
            safe = xp.where(outside, 0.5, x)  # keeps 1 / (x (1 - x)) finite where it is not used
            return (g * xp.where(outside, fill, 1 / (safe * (1 - safe))),)
    if saved is None or saved[0] < 0:
        outside, fill = (data < 0) | (data > 1), math.nan
    else:
        outside, fill = (data < saved[0]) | (data > saved[1]), 0.0
    edge = (data == 0) | (data == 1)
    with np.errstate(invalid="ignore"):  # inf * 0 is NaN at an edge, as torch's
        safe = xp.where(outside | edge, 0.5, x)  # keeps x (1 - x) away from 0 where it is not used
        inner = xp.where(edge, g * math.inf, g / (safe * (1 - safe)))
        return (xp.where(outside, fill, inner),)


deg2rad = _unary_table_op("deg2rad")


rad2deg = _unary_table_op("rad2deg")


frac = _unary_table_op("frac")


sinc = _unary_table_op("sinc")


arcsin, arccos, arctan, arcsinh, arccosh, arctanh = asin, acos, atan, asinh, acosh, atanh


def clamp_min(x: Any, min: Any) -> Tensor:
    return clip(x, min, None)


def clamp_max(x: Any, max: Any) -> Tensor:
    return clip(x, None, max)


def nan_to_num(x: Any, nan: float = 0.0, posinf: Any = None, neginf: Any = None) -> Tensor:
    """NaN, +inf and -inf replaced by finite values (the gradient passes where x was finite); a complex
    tensor's real and imaginary parts are replaced separately, as in torch."""
    x = _lift(x)
    d = x.array
    if d.dtype.kind not in "fc":  # nothing to replace, but a new tensor all the same (torch copies)
        return clone(x)
    info = np.finfo(d.dtype)  # a complex dtype's finfo is its parts' (float32's for complex64)
    posinf, neginf = info.max if posinf is None else posinf, info.min if neginf is None else neginf
    if d.dtype.kind == "f":
        from .special import nan_to_num_array  # special builds on this module

        # the fills are kept for the ONNX exporter (the rule reads only x)
        return record_op(nan_to_num_array(d, nan, posinf, neginf), (x,), _nan_to_num_vjp, (nan, posinf, neginf))
    out = np.nan_to_num(d, nan=nan, posinf=posinf, neginf=neginf)
    return where(np.isfinite(d), x, wrap_array(out.astype(d.dtype, copy=False)))


def _nan_to_num_vjp(g, y, args, saved, needs, xp):
    # torch's rule g * isfinite(x): the gradient passes where x was finite (g * 0 elsewhere keeps
    # torch's signed zeros, and NaN where g is not finite)
    data = xp.data(args[0])
    return (xp.where((data == data) & (data != math.inf) & (data != -math.inf), g, g * 0.0),)


_nan_to_num_vjp.reads_output = False  # type: ignore[attr-defined]


def frexp(x: Any) -> Any:
    """``(mantissa, exponent)`` with x = mantissa * 2^exponent and 0.5 <= |mantissa| < 1 (torch.frexp;
    exponent int32); the mantissa's gradient is g / 2^exponent.

    Example:
        >>> import downslope as ds
        >>> ds.frexp(ds.tensor([8.0, -0.3]))
        frexp(mantissa=tensor([ 0.5, -0.6]), exponent=tensor([ 4, -1], dtype=int32))
    """
    from .reductions import return_types

    x = _lift(x)
    if x.array.dtype.kind != "f":
        raise ArgumentTypeError(f"frexp: expected a floating tensor, got {x.dtype}")
    mantissa, exponent = np.frexp(x.array)
    exponent = exponent.astype(np.int32)
    with np.errstate(over="ignore"):  # a subnormal's 2^-exponent overflows to inf, as in torch
        scale = np.ldexp(np.ones_like(x.array), -exponent)
    return return_types.frexp(record_op(mantissa, (x,), _frexp_vjp, scale), wrap_array(exponent))


def _frexp_vjp(g, y, args, saved, needs, xp):
    return (g * saved,)


_frexp_vjp.reads_inputs = False  # type: ignore[attr-defined]


def sgn(x: Any) -> Tensor:
    """The sign (torch.sgn; for real tensors the same as :func:`sign`).

    Example:
        >>> import downslope as ds
        >>> ds.sgn(ds.tensor([-2, 0, 3]))
        tensor([-1,  0,  1])
    """
    if isinstance(x, Tensor) and x.array.dtype.kind == "c":
        return complex_sgn(x)  # z / |z|
    return sign(x)


def fix(x: Any) -> Tensor:
    """Round toward zero (torch.fix, the same as :func:`trunc`).

    Example:
        >>> import downslope as ds
        >>> ds.fix(ds.tensor([-2.5, 3.7]))
        tensor([-2.,  3.])
    """
    return trunc(x)


def positive(x: Any) -> Tensor:
    """``x`` itself (torch.positive, unary +); refused for booleans, as torch does.

    Example:
        >>> import downslope as ds
        >>> ds.positive(ds.tensor([1, -2]))
        tensor([ 1, -2])
    """
    x = _lift(x)
    if x.array.dtype == np.bool_:
        raise ArgumentTypeError("positive: the + operator on a bool tensor is not supported")
    return x


from .complex import pair as complex_pair  # noqa: E402  (complex imports this module)
from .complex import sgn as complex_sgn  # noqa: E402
