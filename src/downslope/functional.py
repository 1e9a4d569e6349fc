"""Composite ops built from the basic ones in ops/; their gradients come from the engine.

Nothing here has a backward rule of its own: each function is a short formula over basic ops,
so its gradient (and its second derivative) is right as soon as the basic ops are.
"""

from __future__ import annotations

import math
import operator
import warnings
from typing import Any

import numpy as np

from . import gemm, ops
from .backend import namespace_of
from .errors import ArgumentError, ArgumentTypeError, DTypeError, ShapeError
from .graph import no_grad
from .ops import distances as _distance
from .ops.arithmetic import _TOP_LEVEL, _addc_half, _addc_value
from .ops.operands import _kept_shape
from .ops.pointwise import quietly
from .ops.reductions import _accumulator, _small_variance_array, _sum_by_product, _variance_without_dof
from .tensor import _NO_OPERAND, Tensor, _scalar_first, record_op

_HALF = np.dtype(np.float16)


def var(
    x: Any,
    dim: Any = None,
    unbiased: bool | None = None,
    keepdim: bool = False,
    *,
    axis: Any = None,
    keepdims: Any = None,
    correction: int | None = None,
    ddof: int | None = None,
) -> Tensor:
    """Variance over ``dim``/``axis``, dividing by N - correction.

    The default correction is 1 (PyTorch's unbiased estimate); NumPy users can pass ``ddof=0``.
    Positional arguments follow torch.var: ``x.var(1, False)`` is the biased variance over dim 1
    (pass ``keepdim=`` by name).

    Example:
        >>> import downslope as ds
        >>> ds.tensor([1.0, 2.0, 4.0, 5.0]).var(0, False)
        tensor(2.5)
    """
    if isinstance(dim, (bool, np.bool_)) and unbiased is None:  # torch's var(input, unbiased) overload
        dim, unbiased = None, dim
    if correction is None and ddof is None and axis is None and keepdims is None:
        fast = _small_rows(x, dim, unbiased, keepdim, False)
        if fast is not None:
            return fast
    return _variance("var", x, dim, unbiased, keepdim, axis, keepdims, correction, ddof)


_ROW_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _small_rows(x: Any, dim: Any, unbiased: Any, keepdim: Any, root: bool) -> Tensor | None:
    """``x.var(dim, unbiased)`` (``x.std(dim, unbiased)`` with ``root``; correction 1 unless ``unbiased``
    is False) for a small host float32/float64 tensor and one int dim that leaves other dims (the
    common call on a batch of rows), by the steps of :func:`_corrected_variance` without
    :func:`_variance`'s parsing; None otherwise. (Sizes below 1024: _sum_by_product's floor, and
    _accumulator's, so the NumPy steps are the same.)"""
    if type(x) is not Tensor or type(dim) is not int or not (unbiased is None or type(unbiased) is bool):
        return None
    corr = 0 if unbiased is False else 1
    a = x.array
    ndim = a.ndim
    if type(a) is not np.ndarray or a.dtype not in _ROW_DTYPES or a.size >= 1024 or ndim < 2 or not -ndim <= dim < ndim:
        return None
    axis = dim % ndim
    n = a.shape[axis]
    if n <= corr:  # no degrees of freedom: _variance's warning
        return None
    keep = bool(keepdim)  # host: a Python flag
    try:
        out = _small_rows_variance(a, (axis,), keep, n, corr, root)
    except RuntimeWarning:  # inf - inf, an overflow: torch's NaN and inf, quietly (see _variance)
        out = quietly(_small_rows_variance, a, (axis,), keep, n, corr, root)
    return record_op(out, (x,), _std_vjp if root else _corrected_variance_vjp, ((axis,), keep, n, corr))


def _variance(
    name: str,
    x: Any,
    dim: Any = None,
    unbiased: bool | None = None,
    keepdim: bool = False,
    axis: Any = None,
    keepdims: Any = None,
    correction: int | None = None,
    ddof: int | None = None,
    *,
    root: bool = False,
) -> Tensor:
    """:func:`var`, warning under ``name`` (var, std, var_mean, std_mean) as torch does when the
    degrees of freedom are <= 0; with ``root``, its square root (:func:`std`), as one recorded op
    where the degrees of freedom are positive."""
    x = ops._lift(x)
    if x.dtype.kind != "f" and x.dtype.kind != "c":  # torch refuses too; say so under this name, not mean's
        raise DTypeError(f"var/std: expected a floating tensor, got {x.dtype}; cast it with .float() first")
    given = [c for c in (correction, ddof) if c is not None]
    if unbiased is not None:
        given.append(1 if unbiased else 0)
    if len(given) > 1:
        raise ArgumentTypeError("var/std: give only one of correction, unbiased and ddof")
    corr = given[0] if given else 1
    if x.dtype.kind == "c":  # torch's variance of complex values: that of the real parts plus the imaginary's
        from .ops.complex import imag, real

        parts = (real(x), imag(x))
        re, im = (_variance(name, p, dim, None, keepdim, axis, keepdims, corr) for p in parts)
        return _root(re + im) if root else re + im
    if x.dtype == _HALF:  # float16 squares overflow past 255: in float32, rounded once, as torch
        wide = _variance(name, ops.astype(x, np.float32), dim, None, keepdim, axis, keepdims, corr, root=root)
        with np.errstate(over="ignore"):  # past 65504 is inf, as torch (which does not warn)
            return ops.astype(wide, _HALF)
    axes: tuple[int, ...]
    if type(dim) is int and axis is None and -x.ndim <= dim < x.ndim:  # the common x.var(1): no parsing
        axes = (dim % x.ndim,)
    else:
        axes = ops._norm_axes(ops._pick_axis(dim, axis), x.ndim)
    if _accumulator(x.array, axes) is not None:  # long and strided: in float64, rounded once, as torch
        wide = _variance(name, ops.astype(x, np.float64), dim, None, keepdim, axis, keepdims, corr, root=root)
        return ops.astype(wide, x.dtype)
    n = (x.shape[axes[0]] if len(axes) == 1 else math.prod(x.shape[i] for i in axes)) if x.ndim else 1
    keep = bool(keepdim or keepdims)  # host: Python flags
    if n - corr <= 0:
        warnings.warn(
            f"{name}(): degrees of freedom is <= 0. Correction should be strictly less than the reduction "
            "factor (input numel divided by output numel).",
            UserWarning,
            stacklevel=3,
        )
        v = _variance_without_dof(x, tuple(axes), keep)
        return _root(v) if root else v
    try:
        return _corrected_variance(x, tuple(axes), keep, n, corr, root)
    except RuntimeWarning:
        # inf - inf, a square past the range: NaN and inf as torch's, computed again quietly where a
        # user's "error" warnings filter made NumPy's note an exception (ops.pointwise.quietly says why)
        return quietly(_corrected_variance, x, tuple(axes), keep, n, corr, root)


def _corrected_variance(x: Tensor, axes: tuple[int, ...], keep: bool, n: int, corr: Any, root: bool = False) -> Tensor:
    """The variance over ``axes`` (n elements, n - corr > 0) as one recorded op: one op instead of
    about ten recorded ones, 100 us down to a few on small tensors.

    The corrected two-pass formula, sum(d^2) - sum(d)^2 / n with d = x - mean: the mean is rounded
    to x's precision, which far from zero (1e4 + noise of 1e-2 in float32) shifts every deviation by
    up to half an ulp of the mean, and the second term takes that shift's square back off (a constant
    row gives exactly 0).

    With ``root``, the standard deviation, the square root taken on the array: one recorded op with
    its own rule, where a recorded square root after the variance doubled std's cost on small tensors."""
    a = x.array
    small = _small_variance_array(a, keep, n, corr, root) if len(axes) == a.ndim else None
    if small is not None:  # a few elements over all dims: without NumPy's per-call overhead
        return record_op(small, (x,), _std_vjp if root else _corrected_variance_vjp, (axes, keep, n, corr))
    if type(a) is np.ndarray and a.size < 1024 and len(axes) < a.ndim:  # (size: _sum_by_product's floor)
        out = _small_rows_variance(a, axes, keep, n, corr, root)
        return record_op(out, (x,), _std_vjp if root else _corrected_variance_vjp, (axes, keep, n, corr))
    xp = namespace_of(a)
    d = a - _array_sum(a, axes, True) / n
    s1 = _array_sum(d, axes, keep)
    ss = _array_sum(d * d, axes, keep) - s1 * s1 / n
    out = xp.maximum(ss, 0) / (n - corr)  # rounding must not make a square sum negative
    if root:
        return record_op(xp.sqrt(out), (x,), _std_vjp, (axes, keep, n, corr))
    return record_op(out, (x,), _corrected_variance_vjp, (axes, keep, n, corr))


def _small_rows_variance(a: np.ndarray, axes: tuple[int, ...], keep: bool, n: int, corr: Any, root: bool) -> Any:
    """The steps of :func:`_corrected_variance` (the same values) for a small host array reduced over
    some of its dims (an array result): NumPy's add.reduce called directly and the elementwise steps
    in place on the temporaries, which halves the per-call overhead that dominates on tiny tensors."""
    mean = np.add.reduce(a, axes, keepdims=True)
    mean /= n
    d = a - mean
    s1 = np.add.reduce(d, axes, keepdims=keep)  # type: ignore[call-overload]
    d *= d
    ss = np.add.reduce(d, axes, keepdims=keep)  # type: ignore[call-overload]
    s1 *= s1
    s1 /= n
    ss -= s1
    np.maximum(ss, 0, out=ss)  # rounding must not make a square sum negative
    ss /= n - corr
    if root:
        np.sqrt(ss, out=ss)
    return ss


def _array_sum(a: Any, axes: tuple[int, ...], keep: bool) -> Any:
    """``a.sum(axis=axes)`` as ``ops.sum`` computes it (its product with ones where that applies), an array."""
    out = _sum_by_product(a, axes)
    if out is None:
        # on the host the ufunc itself, the same sum without ndarray.sum's Python wrapper (~0.3 us a call)
        out = np.add.reduce(a, axes, keepdims=keep) if type(a) is np.ndarray else a.sum(axis=axes, keepdims=keep)  # type: ignore[call-overload]
        if isinstance(out, np.generic):  # NumPy's full reduction is a scalar
            out = np.asarray(out)  # host: a NumPy scalar is already on the host
    elif keep:
        out = out.reshape(_kept_shape(a.shape, axes))
    return out


def _corrected_variance_vjp(g, y, args, saved, needs, xp):
    # torch's rule: g * 2 (x - mean) / (n - correction). Under create_graph the deviation is recorded
    # (mean included), so the second derivative 2 (I - 1/n) / (n - correction) follows.
    axes, keep, n, corr = saved
    x = args[0]
    if not keep:
        g = xp.reshape(g, _kept_shape(tuple(x.shape), axes))
    if xp.differentiable:
        return (g * (2 / (n - corr)) * (x - ops.mean(x, axis=axes, keepdims=True)),)
    d = x - _array_sum(x, axes, True) / n
    return ((g * (2 / (n - corr))) * (d - _array_sum(d, axes, True) / n),)


_corrected_variance_vjp.reads_output = False  # type: ignore[attr-defined]


def _std_vjp(g, y, args, saved, needs, xp):
    # torch's rule (std_backward): the variance's rule at g / (2 std), and 0 where std is 0 (a constant
    # row), also where g is inf or NaN there. The 0s are put in g and 1s in std before dividing, so
    # that under create_graph no 0 * inf reaches the second derivative.
    axes, keep, n, corr = saved
    x = args[0]
    zero = xp.data(y) == 0
    # On the host a look at the mask skips the masking when no std is 0; on a device that look would
    # make the host wait, so the masked form (the same values) is taken always.
    if type(zero) is not np.ndarray or zero.any():
        y = xp.where(zero, 1.0, y)
        g = xp.where(zero, 0.0, g)
    scale = g / ((n - corr) * y)
    if not keep:
        scale = xp.reshape(scale, _kept_shape(tuple(x.shape), axes))
    if xp.differentiable:
        return (scale * (x - ops.mean(x, axis=axes, keepdims=True)),)
    d = x - _array_sum(x, axes, True) / n
    return (scale * (d - _array_sum(d, axes, True) / n),)


def std(x: Any, dim: Any = None, unbiased: bool | None = None, keepdim: bool = False, **kwargs: Any) -> Tensor:
    """Standard deviation (square root of :func:`var`, same arguments, torch's positional order).

    Where the deviation is 0 (constant input) the gradient is 0, as in PyTorch, not the 0 * inf =
    NaN that differentiating sqrt at 0 would give.

    Example:
        >>> import downslope as ds
        >>> x = ds.tensor([2.0, 2.0, 2.0], requires_grad=True)
        >>> x.std().backward()
        >>> x.grad
        tensor([0., 0., 0.])
    """
    if isinstance(dim, (bool, np.bool_)) and unbiased is None:  # torch's std(input, unbiased) overload
        dim, unbiased = None, dim
    return _std("std", x, dim, unbiased, keepdim, **kwargs)


def _std(name: str, x: Any, dim: Any, unbiased: bool | None, keepdim: bool, **kwargs: Any) -> Tensor:
    """:func:`std`, warning under ``name`` (std, std_mean) as torch does when the degrees of freedom are <= 0."""
    # float16 (the root of the float32 variance, rounded once, as torch) and long strided reductions
    # (in float64) are taken care of inside _variance
    out = _small_rows(x, dim, unbiased, keepdim, True) if not kwargs else None
    if out is None:
        out = _variance(name, x, dim, unbiased, keepdim, **kwargs, root=True)
    a = out.array
    # one sum first (a finite sum: no inf), the exact look only where it is inf or NaN
    if (
        type(a) is np.ndarray
        and a.dtype == np.float32
        and not math.isfinite(np.add.reduce(a, None))
        and np.isinf(a).any()
    ):
        # The float32 square sum overflowed (values past ~1e19) where the deviation itself fits: torch
        # accumulates in float64, so std of [3e25, -3e25] is finite (its var is inf). The rare case
        # is redone in float64 (inf in the input stays inf), quietly: a warning was given above.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            wide = _std(name, ops.astype(x, np.float64), dim, unbiased, keepdim, **kwargs)
        return ops.astype(wide, x.dtype)
    return out


def _root(v: Tensor) -> Tensor:
    """The square root of a variance, with a zero gradient where it is 0 (see :func:`std`)."""
    zero = v.array == 0  # not `v > 0`: a NaN variance must stay NaN
    # On the host a check picks the plain sqrt when no deviation is 0; on a device that check would wait
    # for the device, so the masked form (the same values) is taken always.
    if type(zero) is np.ndarray and not zero.any():
        return ops.sqrt(v)
    return ops.where(zero, 0.0, ops.sqrt(ops.where(zero, 1.0, v)))


def gelu(x: Any, approximate: str = "none") -> Tensor:
    """Gaussian error linear unit: x * Phi(x); ``approximate='tanh'`` uses the tanh formula."""
    x = ops._lift(x)
    if approximate == "none":
        return x * 0.5 * (1.0 + ops.erf(x * (1.0 / math.sqrt(2.0))))
    if approximate == "tanh":
        inner = math.sqrt(2.0 / math.pi) * (x + 0.044715 * x * x * x)
        return 0.5 * x * (1.0 + ops.tanh(inner))
    raise ArgumentError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")


def elu(x: Any, alpha: float = 1.0) -> Tensor:
    """x for x > 0, alpha (e^x - 1) otherwise."""
    x = ops._lift(x)
    # clip, not minimum: at x = 0 the gradient is alpha (as in torch), where minimum's tie would halve it
    negative = alpha * ops.expm1(ops.clip(x, None, 0.0))  # expm1: exp(x) - 1 loses digits near 0
    return ops.where(x.array > 0, x, negative)


def square(x: Any) -> Tensor:
    """x * x; of a boolean tensor an int64 one, as torch's (``pow(x, 2)``, where the 2 promotes).

    Example:
        >>> import downslope as ds
        >>> ds.square(ds.tensor([True, False]))
        tensor([1, 0])
    """
    x = ops._lift(x)
    if x.array.dtype == np.bool_:
        x = ops.astype(x, np.int64)
    if x.array.dtype.kind not in "fc":
        return x * x
    a = x.array
    try:
        out = a * a
    except RuntimeWarning:  # past the dtype's range is inf, as torch's: under a user's "error" filter
        out = quietly(operator.mul, a, a)  # (ops.pointwise.quietly says why a retry)
    return record_op(out, (x,), _square_vjp)


def _square_vjp(g, y, args, saved, needs, xp):
    # torch's pow(x, 2) rule, g * 2 * x^1: recorded under create_graph, x^1 keeps the second derivative
    # (2 g) a function of x, so a third derivative (0) can be taken, as in torch (x * x's has no graph)
    return (g * (2 * args[0] ** 1),)


def reciprocal(x: Any) -> Tensor:
    """1 / x (float; complex stays complex)."""
    if isinstance(x, Tensor) and x.array.dtype.kind == "c":
        return ops.div(1.0, x)
    x = ops._lift_float(x)
    with no_grad():
        out = ops.div(1.0, x).array
    return record_op(out, (x,), _reciprocal_vjp)


def _reciprocal_vjp(g, y, args, saved, needs, xp):
    # d(1/x)/dx = -1/x^2 = -y^2: from the output, as torch saves it (a write into x after is no matter)
    return (-(g * y * y),)


_reciprocal_vjp.reads_inputs = False  # type: ignore[attr-defined]


def cdist(x1: Any, x2: Any, p: float = 2.0, compute_mode: str | None = None) -> Tensor:
    """The p-norm distance between every row of ``x1`` (..., P, M) and every row of ``x2`` (..., R, M):
    a (..., P, R) tensor (torch.cdist). For p = 2 with more than 25 rows in ``x1`` or ``x2`` (or with
    ``compute_mode='use_mm_for_euclid_dist'``), as torch, one matrix product:
    ``sqrt(clamp_min(|x1|^2 - 2 x1 x2^T + |x2|^2, 0))``, which loses digits to cancellation for
    near points (``compute_mode='donot_use_mm_for_euclid_dist'`` forms the differences instead, the
    exact form every other p uses). At a zero distance the gradient is 0, as in PyTorch.

    Example:
        >>> import downslope as ds
        >>> ds.cdist(ds.tensor([[0.0, 0.0]]), ds.tensor([[3.0, 4.0], [1.0, 0.0]]))
        tensor([[5., 1.]])
    """
    a, b = ops._lift_float(x1), ops._lift_float(x2)
    if a.ndim < 2 or b.ndim < 2 or a.shape[-1] != b.shape[-1]:
        raise ShapeError(
            f"cdist: expected x1 (..., P, M) and x2 (..., R, M) with the same M, got shapes {tuple(a.shape)} and {tuple(b.shape)}"
        )
    if a.array.dtype != b.array.dtype:  # torch refuses to promote here, as for its products
        raise DTypeError(
            f"cdist: expected x1 and x2 to have the same dtype, got {a.array.dtype} and {b.array.dtype}; "
            "cast one side to the other's dtype (e.g. x2.to(x1.dtype))"
        )
    if not isinstance(p, (int, float)) or p < 0:
        raise ArgumentError(f"cdist: p must be a non-negative number (inf included), got {p!r}")
    if compute_mode not in _CDIST_MODES:
        raise ArgumentError(f"cdist: compute_mode must be None or one of {_CDIST_MODES[1:]}, got {compute_mode!r}")
    if a.array.dtype == np.float16:  # in float32, rounded once (pdist's rule): 300**3 overflows float16
        wide = cdist(ops.astype(a, np.float32), ops.astype(b, np.float32), p, compute_mode)
        return ops.astype(wide, np.float16)
    if p == 2 and a.array.size and b.array.size and a.array.dtype == b.array.dtype:
        if compute_mode == _CDIST_MODES[2] or (
            compute_mode in _CDIST_MODES[:2] and (a.shape[-2] > 25 or b.shape[-2] > 25)
        ):
            return _euclidean_by_products(a, b)
    if p != 2:  # host arrays: numba's kernels for p = 1 and inf, NumPy row blocks for other p > 0
        host = _distance.cdist_forward(a.array, b.array, p)
        if host is not None:  # no (..., P, R, M) array of differences
            return record_op(host[0], (a, b), _cdist_host_vjp, (p, host[1]))
    diff = ops.unsqueeze(a, -2) - ops.unsqueeze(b, -3)
    if p == 0 or p == math.inf:  # torch's cdist backward, which differs from its norm's here
        mag = namespace_of(diff.array).abs(diff.array)
        if p == 0:
            # torch's min(ceil(|d|), 1): a NaN difference makes the count NaN (mag != 0 would count it 1)
            out = namespace_of(mag).minimum(namespace_of(mag).ceil(mag), 1).sum(axis=-1)
        else:  # torch's running max from 0 passes over NaN differences
            out = _distance.largest_difference(mag)
        return record_op(out, (diff,), _cdist_count_or_max_vjp, p)
    return norm(diff, p=p, dim=-1)


# torch's compute_mode values: None and the first pick the products for p = 2 past 25 rows
_CDIST_MODES = (
    None,
    "use_mm_for_euclid_dist_if_necessary",
    "use_mm_for_euclid_dist",
    "donot_use_mm_for_euclid_dist",
)


def _euclidean_by_products(a: Tensor, b: Tensor) -> Tensor:
    """torch's _euclidean_dist: the squared distances from one product of [-2 x1, |x1|^2, 1] and
    [x2, 1, |x2|^2] (P x R x M work, never a P x R x M array), clamped at 0, then their roots."""
    x1, x2 = a.array, b.array
    xp = namespace_of(x1)
    n1 = (x1 * x1).sum(axis=-1, keepdims=True)
    n2 = (x2 * x2).sum(axis=-1, keepdims=True)
    left = xp.concatenate([x1 * -2, n1, xp.ones_like(n1)], axis=-1)
    right = xp.concatenate([x2, xp.ones_like(n2), n2], axis=-1)
    out = gemm.matmul(left, xp.swapaxes(right, -1, -2))
    np.maximum(out, 0, out=out)
    np.sqrt(out, out=out)
    return record_op(out, (a, b), _euclidean_by_products_vjp)


def _euclidean_by_products_vjp(g, y, args, saved, needs, xp):
    """torch's _euclidean_dist_backward: with r = g / y (0 where y is 0: a subgradient),
    x1 r.sum(-1) - r x2 and x2 r.sum(-2) - r^T x1; made of recorded ops under create_graph."""
    a, b = args
    live = xp.data(y) != 0
    q = xp.where(live, g / xp.where(live, y, 1.0), 0.0)  # no 1/0 at a zero distance, nor its NaN below
    ga = gb = None
    if needs[0]:
        ga = xp.sum_to(a * q.sum(axis=-1, keepdims=True) - q @ b, a.shape)
    if needs[1]:
        gb = xp.sum_to(b * xp.expand_dims(q.sum(axis=-2), -1) - xp.swap_last(q) @ a, b.shape)
    return (ga, gb)


def _cdist_host_vjp(g, y, args, saved, needs, xp):
    """torch's cdist backward (``ops.distances.distance_factor``: its rules at zeros and ties) on the
    host kernels; under create_graph, the same factor on the pairs' differences as recorded ops."""
    p, state = saved
    a, b = args
    if not xp.differentiable:
        ga, gb = _distance.cdist_backward(state, g, y)
        return (xp.sum_to(ga, a.shape) if needs[0] else None, xp.sum_to(gb, b.shape) if needs[1] else None)
    diff = xp.expand_dims(a, -2) - xp.expand_dims(b, -3)
    w = xp.expand_dims(g, -1) * _distance.distance_factor(diff, y, p, xp, True)
    return (
        xp.sum_to(w.sum(-2), a.shape) if needs[0] else None,
        xp.sum_to(-w.sum(-3), b.shape) if needs[1] else None,
    )


_cdist_host_vjp.reads_output = True  # type: ignore[attr-defined]


def _cdist_count_or_max_vjp(g, y, args, saved, needs, xp):
    """p = 0: a count, so zeros (torch's cdist gives zeros where its norm gives no gradient at all);
    p = inf: each element whose |difference| is the distance gets the whole gradient, its sign
    (torch's cdist backward; its norm shares the gradient among ties instead)."""
    d = args[0]
    a = xp.data(d)
    if saved == 0:
        return (xp.expand_dims(g, -1) * xp.constant(namespace_of(a).zeros(a.shape, dtype=a.dtype)),)
    return (xp.expand_dims(g, -1) * _distance.max_factor(d, xp.expand_dims(y, -1), xp),)


def norm(x: Any, p: Any = "fro", dim: Any = None, keepdim: bool = False, dtype: Any = None) -> Tensor:
    """The vector p-norm over ``dim`` (all elements by default): p = 2 ('fro'), 1, inf, -inf, 0 or any
    float; ``p='nuc'`` is the nuclear norm of a matrix (over two dims). At a zero vector the gradient is 0, as in torch (not the NaN of a root at 0); see
    :func:`downslope.ops.vector_norm`.

    Example:
        >>> import downslope as ds
        >>> ds.tensor([3.0, 4.0]).norm()
        tensor(5.)
    """
    if isinstance(p, str) and p == "nuc":  # the sum of singular values over two dims, as torch.norm
        from .linalg import matrix_norm  # linalg builds on this module

        x = ops._lift_float(x) if dtype is None else ops.astype(ops._lift_float(x), dtype)
        dims = tuple(range(x.ndim)) if dim is None else (dim if isinstance(dim, (tuple, list)) else (dim,))
        if len(dims) != 2:
            raise ArgumentError(f"norm: p='nuc' needs a 2-d tensor or dim of two dims, got dim {dims}")
        return matrix_norm(x, "nuc", tuple(dims), keepdim)
    return ops.vector_norm(x, p, dim, keepdim, dtype=dtype)  # one op with torch's gradient at zeros


def lerp(start: Any, end: Any, weight: Any) -> Tensor:
    """start + weight * (end - start); float16 operands are computed in float32 and rounded once, as
    torch's kernel (end - start of two float16 numbers may overflow where the result does not)."""
    start = ops._lift(start)
    if start.array.dtype == np.float16 and all(_half_or_number(t) for t in (end, weight)):
        f32 = np.float32
        end32 = ops.astype(end, f32) if isinstance(end, Tensor) else end
        weight32 = ops.astype(weight, f32) if isinstance(weight, Tensor) else weight
        out = _lerp_two_sided(ops.astype(start, f32), end32, weight32)
        return ops.astype(out, np.float16)
    return ops.pointwise.lerp(start, end, weight)  # one op, with torch's two-sided formula


def _half_or_number(t: Any) -> bool:
    return isinstance(t, (int, float)) or (isinstance(t, Tensor) and t.array.dtype == np.float16)


def _lerp_two_sided(start: Tensor, end: Any, weight: Any) -> Tensor:
    """torch's lerp formula: from start for |weight| < 0.5, from end otherwise (exact at weight 1)."""
    diff = end - start
    if not isinstance(weight, Tensor):
        return start + weight * diff if abs(weight) < 0.5 else end - diff * (1 - weight)
    return ops.where(ops.abs(weight) < 0.5, start + weight * diff, end - diff * (1 - weight))


def addcmul(x: Any, tensor1: Any, tensor2: Any, _tensor2: Any = _NO_OPERAND, *, value: float = 1) -> Tensor:
    """x + value * tensor1 * tensor2 (and torch's deprecated ``addcmul(x, Number value, tensor1, tensor2)``)."""
    if _tensor2 is not _NO_OPERAND:
        value = _scalar_first("addcmul", tensor1, value, "value", "Tensor tensor1, Tensor tensor2", **_TOP_LEVEL)
        tensor1, tensor2 = tensor2, _tensor2
    value = _addc_value("addcmul", value, x, tensor1, tensor2)  # on the operands as given (addcdiv's check)
    x, tensor1, tensor2 = _addc_operands(x, tensor1, tensor2)
    if isinstance(x, Tensor) and x.array.dtype == np.float16 and _all_half(value, tensor1, tensor2):
        return _addc_half("addcmul", x, tensor1, tensor2, value)
    return ops.pointwise.addc("addcmul", x, tensor1, tensor2, value)  # one op, torch's per-element gradients


def addcdiv(x: Any, tensor1: Any, tensor2: Any, _tensor2: Any = _NO_OPERAND, *, value: float = 1) -> Tensor:
    """x + value * tensor1 / tensor2 (and torch's deprecated ``addcdiv(x, Number value, tensor1, tensor2)``)."""
    if _tensor2 is not _NO_OPERAND:
        value = _scalar_first("addcdiv", tensor1, value, "value", "Tensor tensor1, Tensor tensor2", **_TOP_LEVEL)
        tensor1, tensor2 = tensor2, _tensor2
    value = _addc_value("addcdiv", value, x, tensor1, tensor2)  # on the operands as given (addcdiv's check)
    x, tensor1, tensor2 = _addc_operands(x, tensor1, tensor2)
    if isinstance(x, Tensor) and x.array.dtype == np.float16 and _all_half(value, tensor1, tensor2):
        return _addc_half("addcdiv", x, tensor1, tensor2, value)
    return ops.pointwise.addc("addcdiv", x, tensor1, tensor2, value)  # one op, torch's per-element gradients


def _addc_operands(x: Any, tensor1: Any, tensor2: Any) -> tuple[Any, Any, Any]:
    """addcmul/addcdiv's tensors in their common dtype, as torch computes the whole expression in it:
    promoting after ``tensor1 * tensor2`` would round the product in a narrower dtype (float16 operands
    of a float64 input), and a Python ``value`` meeting a bool product would make int64 of int32."""
    ts = (x, tensor1, tensor2)
    if not all(isinstance(t, Tensor) for t in ts):
        return ts
    if x.array.dtype == tensor1.array.dtype == tensor2.array.dtype:  # the common case: nothing to do
        return ts
    dt = _common_dtype(ts)
    if dt is None:
        return ts
    return tuple(t if t.array.dtype == dt else ops.astype(t, dt) for t in ts)  # type: ignore[return-value]


def _all_half(value: Any, *ts: Any) -> bool:
    """Whether addcmul/addcdiv go to ``_addc_half``: float16 tensors only and a number value."""
    return isinstance(value, (int, float)) and all(isinstance(t, Tensor) and t.array.dtype == np.float16 for t in ts)


_CATEGORY = {"b": 0, "i": 1, "u": 1, "f": 2}


def _common_dtype(ts: tuple[Tensor, ...]) -> Any:
    """torch's result dtype of several tensors: those with dims decide within a category, 0-d ones only
    when of a higher category (None for dtypes outside bool/integer/float: left to the ops)."""
    from .ops.promotion import promote_types  # the promotion module is loaded with ops

    if any(t.array.dtype.kind not in _CATEGORY for t in ts):
        return None
    with_dims = [t.array.dtype for t in ts if t.ndim]
    zero_d = [t.array.dtype for t in ts if not t.ndim]
    dims_dt = _promote_all(with_dims, promote_types)
    zero_dt = _promote_all(zero_d, promote_types)
    if dims_dt is None or (zero_dt is not None and _CATEGORY[zero_dt.kind] > _CATEGORY[dims_dt.kind]):
        return zero_dt
    return dims_dt


def _promote_all(dtypes: list[Any], promote: Any) -> Any:
    out = None
    for d in dtypes:
        out = d if out is None else np.dtype(promote(out, d))
    return out
