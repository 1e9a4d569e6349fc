"""Reductions (sum, mean, max/min with their tie rule, logsumexp, prod, softmax...) and their VJP rules."""

from __future__ import annotations

import math
from collections import namedtuple
from typing import Any

import numpy as np

from .. import backend, jit_gate
from ..backend import as_array, namespace_of
from ..devices import to_host
from ..errors import (
    ArgumentError,
    ArgumentTypeError,
    DTypeError,
    DTypeUnimplementedError,
    InvalidValueError,
    OutOfRangeError,
    ShapeError,
    ShapeIndexError,
    StateError,
)
from ..graph import is_grad_enabled
from ..tensor import Tensor, _conv_buffers, _over_conv_buffer, record_op, wrap_array
from .arithmetic import _times_number, div, maximum, minimum
from .comparison import _TORCH_DTYPE_NAMES
from .indexing import _take_along
from .operands import _builtin_any, _dim, _hyper_number, _kept_shape, _lift, _lift_float, _norm_axes, _pick_axis
from .pointwise import _clone_vjp, astype, clone, quietly, where
from .shape import concatenate, reshape, squeeze

_HALF = np.dtype(np.float16)


def _opmath(a: Any) -> Any:
    """``a`` widened to float32 when it is float16, else ``a`` itself: torch reduces float16 in float32
    (its "opmath" type) and rounds once at the end, where a float16 running sum loses digits (a
    float16 sum stops growing at 2048 + 1) or overflows (a sum of squares past 65504) long before
    the result would."""
    return a.astype(np.float32) if a.dtype == _HALF else a


def _to_half(a: Any) -> Any:
    """A float32 result rounded to float16; past 65504 it is inf, as in torch (which does not warn)."""
    with np.errstate(over="ignore"):
        return a.astype(_HALF)


# A float32 sum down a non-contiguous axis runs in NumPy as one long sequential sum (it adds pairwise
# only along the innermost loop), so its error grows with the length: 3e-5 over 2e6 rows, where torch's
# is 2e-7. From this many terms per result such a sum accumulates in float64 and rounds once.
_WIDE_FROM = 4096


def _accumulator(a: Any, axes: tuple[int, ...]) -> Any:
    """float64 for a long float32 reduction over other than the trailing axes of a C-contiguous array,
    else None (NumPy's own pairwise sum is accurate there, and small sums gain nothing)."""
    if a.size < _WIDE_FROM or a.dtype != np.float32:
        return None
    n = a.ndim
    if axes == tuple(range(n - len(axes), n)) and a.flags.c_contiguous:
        return None
    count = 1
    for i in axes:
        count *= a.shape[i]
    return np.float64 if count >= _WIDE_FROM else None


# A variance (or standard deviation) over every element of a host float32/float64 array of at most this
# many elements is computed from the values as Python floats (:func:`_small_variance_array`): NumPy's
# four reductions and half a dozen steps on tiny arrays cost 8-10 us in per-call overhead, the Python
# loop 1-3 us up to here.
SMALL_VARIANCE_MAX = 32
_SMALL_VARIANCE_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _small_variance_array(a: Any, keep: bool, n: int, corr: Any, root: bool) -> Any:
    """The variance over all ``n`` elements of a small host float32/float64 array (dividing by
    n - corr > 0), or with ``root`` its square root, as an array of a's dtype (shape all ones with
    ``keep``, else 0-d); None for another array or where a value is not finite (the NumPy steps give
    NaN or inf there as torch). The sums are exact (``math.fsum``) in float64 and the result rounded
    once, as torch's float64 accumulation, where the NumPy steps accumulate in a's dtype."""
    if type(a) is not np.ndarray or a.size > SMALL_VARIANCE_MAX or a.dtype not in _SMALL_VARIANCE_DTYPES:
        return None
    values = a.ravel().tolist()  # host: a host array's few values
    try:
        mean = math.fsum(values) / n
        deviations = [v - mean for v in values]
        squares = math.fsum([d * d for d in deviations])
    except (ValueError, OverflowError):  # inf - inf, or a sum past float64's range
        return None
    if not math.isfinite(squares):
        return None
    # the deviations' own sum, rounded away in the mean, taken back off (the corrected two-pass formula)
    offset = math.fsum(deviations)
    squares -= offset * offset / n
    variance = (squares if squares > 0.0 else 0.0) / (n - corr)  # (this module's max is the reduction)
    value = math.sqrt(variance) if root else variance
    with np.errstate(over="ignore"):  # a float32 variance past its range is inf, quietly as torch's
        return np.full((1,) * a.ndim if keep else (), value, a.dtype)  # host: a host array's result


# Sums over axes other than the last, and over short last axes, run as products with a vector of
# ones (BLAS's gemv): NumPy's add.reduce makes one inner-loop call per output row there, and adds
# down a middle axis one row at a time. Measured (one thread): (128, 40, 64) over axis 1 in 17 us
# against 73 us; rows of 32 (65536 of them) in 0.10 ms against 0.98 ms. Down a long axis the product
# adds blocks of this many rows and then the blocks' sums, so its error stays at torch's (whose
# cascade sum is 10-20x more accurate there than NumPy's row by row sum); past _WIDE_FROM terms
# the float64 accumulation above still applies.
_ONES_BLOCK = 128
# A last axis up to this long is summed by gemv: NumPy's pairwise sum is as accurate there and
# several times slower; on longer rows it is the more accurate one.
_GEMV_ROW = 128


def _sum_by_product(a: Any, axes: tuple[int, ...]) -> Any:
    """``a.sum(axis=axes)`` (dims dropped) as products with ones, or None where that does not apply:
    a C-contiguous float32/float64 host array of at least 1024 elements, ``axes`` one run of
    consecutive dims with fewer than _WIDE_FROM elements in all (fewer than _GEMV_ROW if trailing).
    The products' inf - inf or overflow warnings never raise out of a sum (see pointwise.quietly)."""
    try:
        return _products_with_ones(a, axes)
    except RuntimeWarning:
        return quietly(_products_with_ones, a, axes)


def _products_with_ones(a: Any, axes: tuple[int, ...]) -> Any:
    if type(a) is not np.ndarray or a.dtype not in _BLAS_FLOATS or a.size < 1024 or not a.flags.c_contiguous:
        return None
    if not axes or axes != tuple(range(axes[0], axes[0] + len(axes))):
        return None
    shape = a.shape
    lead = 1
    for n in shape[: axes[0]]:
        lead *= n
    count = 1
    for n in shape[axes[0] : axes[-1] + 1]:
        count *= n
    if count >= _WIDE_FROM or count < 2:
        return None
    out_shape = shape[: axes[0]] + shape[axes[-1] + 1 :]
    tail = a.size // (lead * count)
    if tail == 1:  # the last axes: one gemv over the rows
        if count > _GEMV_ROW:
            return None
        return np.matmul(a.reshape(lead, count), np.ones(count, a.dtype)).reshape(out_shape)  # host: a is a host array
    cube = a.reshape(lead, count, tail)
    ones = np.ones(count if count < _ONES_BLOCK else _ONES_BLOCK, a.dtype)  # host: a is a host array
    total = np.matmul(ones, cube[:, :_ONES_BLOCK])
    for start in range(_ONES_BLOCK, count, _ONES_BLOCK):
        block = cube[:, start : start + _ONES_BLOCK]
        total += np.matmul(ones[: block.shape[1]], block)
    return total.reshape(out_shape)


_BLAS_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def sum(
    x: Any, dim: Any = None, keepdim: bool = False, *, axis: Any = None, keepdims: Any = None, dtype: Any = None
) -> Tensor:
    """Sum over ``dim``/``axis`` (all by default); ``keepdim``/``keepdims`` keeps reduced dims as 1;
    ``dtype`` casts the input first (torch's meaning)."""
    if not isinstance(x, Tensor) and hasattr(x, "_sparse_sum"):  # a sparse COO input (ds.sparse): its own rule
        return x._sparse_sum(_pick_axis(dim, axis), keepdim or keepdims, dtype)
    x = _lift(x) if dtype is None else astype(_lift(x), dtype)
    axes = _norm_axes(_pick_axis(dim, axis), x.ndim, empty_is_all=axis is None)
    keep = bool(keepdim or keepdims)  # host: Python flags
    a = x.array
    if a.dtype == _HALF:  # accumulated in float32, as torch (NumPy adds float16 rows in float16)
        out = _to_half(_add_reduce(a, axes, keep, np.float32))
    elif (out := _sum_by_product(a, axes)) is not None:
        if keep:
            out = out.reshape(_kept_shape(a.shape, axes))
    elif (wide := _accumulator(a, axes)) is not None:
        out = _add_reduce(a, axes, keep, wide).astype(a.dtype)
    else:
        out = _add_reduce(a, axes, keep)
    if isinstance(out, np.generic):  # NumPy's full reduction is a scalar; device namespaces give 0-d arrays
        out = np.asarray(out)  # host: a NumPy scalar is already on the host (inlined: sum is hot)
    if out.dtype != x.array.dtype and (dtype is not None or out.dtype.kind == "u" and x.array.dtype != np.uint64):
        # NumPy widens small integers (int8 -> int64, uint8 -> uint64); torch sums in the dtype asked
        # for, and in int64 for any integer input
        out = out.astype(x.array.dtype if dtype is not None else backend.int64)
    return record_op(out, (x,), _sum_vjp, (_kept_shape(x.array.shape, axes), keep))


def _add_reduce(a: Any, axes: tuple[int, ...], keep: bool, dtype: Any = None) -> Any:
    """``a.sum(axis=axes, keepdims=keep, dtype=dtype)``, calling NumPy's ufunc from here for host arrays:
    ndarray.sum warns (inf - inf, overflow) from NumPy's own module, past backend's filter on this
    module's warnings (torch does not warn); np.errstate instead would cost about 1 us a call."""
    try:
        if type(a) is np.ndarray:  # device arrays sum themselves
            add: Any = np.add  # NumPy's stubs type keepdims by its literal value
            return add.reduce(a, axis=axes, dtype=dtype, keepdims=keep)
        return a.sum(axis=axes, keepdims=keep, dtype=dtype)
    except RuntimeWarning:  # inf + -inf is NaN, as torch's: a user's "error" filter made it raise
        return quietly(_add_reduce, a, axes, keep, dtype)  # (quietly says why a retry)


def _sum_vjp(g, y, args, saved, needs, xp):
    kept, keep = saved
    if not keep:
        g = xp.reshape(g, kept)
    return (xp.broadcast_to(g, args[0].shape),)


def mean(
    x: Any, dim: Any = None, keepdim: bool = False, *, axis: Any = None, keepdims: Any = None, dtype: Any = None
) -> Tensor:
    """Mean over ``dim``/``axis`` (all by default); ``dtype`` casts the input first (torch's meaning)."""
    x = _lift(x) if dtype is None else astype(_lift(x), dtype)
    if x.array.dtype.kind != "f" and x.array.dtype.kind != "c":
        raise DTypeError(f"mean: expected a floating tensor, got {x.dtype}; cast it with .float() first")
    axes = _norm_axes(_pick_axis(dim, axis), x.ndim, empty_is_all=axis is None)
    keep = bool(keepdim or keepdims)  # host: Python flags
    count = int(np.prod([x.array.shape[i] for i in axes])) if x.ndim else 1  # host: a Python count
    a = x.array
    kept = _kept_shape(x.array.shape, axes)
    if (out := _sum_by_product(a, axes)) is not None:
        out /= count  # the product's own array
        if keep:
            out = out.reshape(kept)
    elif count == 0:  # NaN, as torch, without NumPy's "Mean of empty slice" warnings
        shape = kept if keep else tuple(n for i, n in enumerate(x.shape) if i not in axes)
        out = namespace_of(a).full(shape, np.nan, dtype=a.dtype)
    else:
        # as ndarray.mean computes it: float16 summed in float32 and rounded once at the end
        half = a.dtype == np.float16
        out = _add_reduce(a, axes, keep, np.float32 if half else _accumulator(a, axes)) / count
        out = as_array(out.astype(np.float16) if half else out)
    if out.dtype != a.dtype:
        out = out.astype(a.dtype)
    return record_op(out, (x,), _mean_vjp, (kept, keep, count))


def _mean_vjp(g, y, args, saved, needs, xp):
    kept, keep, count = saved
    if not keep:
        g = xp.reshape(g, kept)
    # an empty mean (count 0) has an empty input: its gradient is empty too, with no 1/0 on the way
    return (xp.broadcast_to(g / count if count else g * 0.0, args[0].shape),)


def _unordered(x: Tensor, op: str) -> None:
    """Refuse a complex tensor where an op compares values, as torch does (NumPy's complex order is
    lexicographic, an answer torch never gives)."""
    if x.array.dtype.kind == "c":
        raise DTypeError(
            f"{op}: not supported for complex tensors (got {x.array.dtype}): complex numbers have no order, "
            "as in torch; compare .abs() or .real instead"
        )


def _extreme(x: Any, dim: Any, keepdim: bool, axis: Any, keepdims: Any, fn: Any, rule: Any = None) -> Tensor:
    x = _lift(x)
    if x.array.dtype.kind == "c":
        _unordered(x, ("" if rule else "a") + ("max" if fn is np.max else "min"))
    axes = _norm_axes(_pick_axis(dim, axis), x.ndim, empty_is_all=axis is None)
    if x.array.size == 0 and _builtin_any(x.shape[a] == 0 for a in axes):  # other zero-size dims: empty result
        raise ShapeIndexError(  # torch: IndexError
            f"max/min of an empty tensor of shape {tuple(x.shape)} over dims {axes} (one of them has size 0)"
        )
    keep = bool(keepdim or keepdims)  # host: Python flags
    out = fn(x.array, axis=axes, keepdims=keep)
    return record_op(as_array(out), (x,), rule or _extreme_vjp, (_kept_shape(x.array.shape, axes), keep, axes))


def _extreme_vjp(g, y, args, saved, needs, xp):
    """The gradient goes to the extreme element(s), shared evenly between ties (like torch.amax)."""
    kept, keep, axes = saved
    x = xp.data(args[0])
    hit = x == xp.data(y).reshape(kept)
    share = (hit / hit.sum(axis=axes, keepdims=True)).astype(x.dtype)
    if not keep:
        g = xp.reshape(g, kept)
    return (g * share,)


def _full_extreme_vjp(g, y, args, saved, needs, xp):
    """max()/min() over everything (torch's evenly_distribute_backward): the gradient is shared by the
    elements equal to the result, or by the NaNs when the result is NaN (amax's rule gives NaN there)."""
    x = xp.data(args[0])
    r = xp.data(y)
    hit = (x == r) | ((x != x) & (r != r))  # x != x: NaN, with no host round trip to branch on r
    share = (hit / hit.sum()).astype(x.dtype)
    return (g * share,)


def vector_norm(x: Any, ord: Any = 2, dim: Any = None, keepdim: bool = False, *, dtype: Any = None) -> Tensor:
    """The vector ``ord``-norm over ``dim`` (all elements by default), torch.linalg.vector_norm: ord 2
    ('fro' and None too), 1, inf (the largest |x|), -inf (the smallest), 0 (the count of nonzeros) or
    any other number (sum(|x|^ord)^(1/ord)); ``dtype`` casts the input first.

    One op with torch's gradient (norm_backward), not a chain of abs, pow and sum: at a zero vector
    the chain's derivative of the root is infinite times 0 (NaN) where torch gives 0, at a zero
    element of an ord < 1 norm |x|^(ord-1) is infinite (torch: 0), ord 0 has gradient 0 (a count
    that stays in the graph), and ord +-inf shares the gradient among the tied extremes.

    Example:
        >>> import downslope as ds
        >>> ds.ops.vector_norm(ds.tensor([3.0, -4.0]), float("inf"))
        tensor(4.)
    """
    if not (isinstance(x, Tensor) and x.array.dtype.kind in "fc"):  # a complex norm is real, of |z|
        x = _lift_float(x)
    if dtype is not None:
        x = astype(x, dtype)
    ord = _hyper_number(ord)  # a 0-d tensor as p, as torch takes it
    if ord is None or (isinstance(ord, str) and ord == "fro"):
        ord = 2
    if isinstance(ord, str) and ord == "nuc":
        raise ArgumentError(
            "vector_norm: ord 'nuc' is a matrix norm; use linalg.matrix_norm(x, 'nuc') or x.norm(p='nuc')"
        )
    if isinstance(ord, (bool, np.bool_)) or not isinstance(ord, (int, float, np.integer, np.floating)):
        raise ArgumentTypeError(f"norm: expected ord (p) to be a number, inf, -inf or 'fro', got {ord!r}")
    p = float(ord)  # host: a Python number picks the formula
    axes = _norm_axes(dim, x.ndim)
    keep = bool(keepdim)  # host: Python flags
    a = x.array
    if a.size == 0 and (p < 0 or p == np.inf):  # a maximum or a sum of 1/|x|^k: no value over no elements
        empty = [i for i in axes if a.shape[i] == 0]
        if empty:
            where = "an empty tensor" if dim is None else f"the dimension {empty[0]}, which is empty,"
            raise ShapeError(
                f"linalg.vector_norm: cannot compute the {ord} norm on {where} because the operation does not have "
                f"an identity (input of shape {tuple(x.shape)})"
            )
    half = a.dtype == _HALF
    if half:  # float16 sums of squares overflow at a norm of 256: in float32, rounded once, as torch
        a = a.astype(np.float32)
    try:
        out = _norm_array(a, p, axes, keep)
    except RuntimeWarning:  # a square past the range is inf, as torch's: a user's "error" filter made it raise
        out = quietly(_norm_array, a, p, axes, keep)  # (quietly says why a retry)
    out = as_array(out) if not half else _to_half(as_array(out))
    return record_op(out, (x,), _vector_norm_vjp, (_kept_shape(x.array.shape, axes), keep, axes, p))


def _norm_array(a: Any, p: float, axes: tuple[int, ...], keep: bool) -> Any:
    """The ``p``-norm of the float or complex array ``a`` over ``axes``, for :func:`vector_norm`."""
    xp = namespace_of(a)
    mag = xp.abs(a)
    if p == np.inf:
        return mag.max(axis=axes, keepdims=keep)
    if p == -np.inf:
        return mag.min(axis=axes, keepdims=keep)
    if p == 0:
        return (mag != 0).sum(axis=axes, keepdims=keep).astype(mag.dtype)
    if p == 1:
        return mag.sum(axis=axes, keepdims=keep)
    if not _builtin_any(a.shape[i] != 1 for i in axes):
        # one element: |x|, as torch (its square would overflow float32 from 1.9e19: cosine_similarity
        # over a size-1 dim; |x|**p over/underflows for a large p such as 400)
        return mag.sum(axis=axes, keepdims=keep)
    if p == 2:
        return xp.sqrt((a * a if a.dtype.kind == "f" else mag * mag).sum(axis=axes, keepdims=keep))
    with np.errstate(all="ignore"):  # 0 ** -1 = inf, overflow: torch's values, which it does not warn about
        return (mag**p).sum(axis=axes, keepdims=keep) ** (1.0 / p)


def _vector_norm_vjp(g, y, args, saved, needs, xp):
    """torch's norm_backward, case by case; a zero norm (and, for ord < 1, a zero element) gets 0."""
    kept, keep, axes, p = saved
    x = args[0]
    a = xp.data(x)
    if not keep:
        g = xp.reshape(g, kept)
        y = xp.reshape(y, kept)
    n = xp.data(y)
    if p == 0:  # a count, constant almost everywhere: no gradient flows (torch leaves x.grad None)
        return (None,)
    if p == 1:  # torch's sgn is 0 at NaN (NumPy's sign is NaN): dist(x, y, 1) at a NaN input
        return (g * xp.where(a != a, 0.0, _sgn(x, xp)),)
    zero = n == 0
    safe = xp.where(zero, 1.0, y)  # the norm where it is not 0, else 1: no division by 0 below
    if p == 2:  # torch masks x / norm, then multiplies: a NaN incoming gradient stays NaN at a zero norm
        return (g * xp.where(zero, 0.0, x / safe),)
    if p in (np.inf, -np.inf):
        mag = abs(a)
        hit = (mag == n) | (mag != mag)  # the extreme elements, and NaNs (which made the norm NaN)
        count = hit.sum(axis=axes, keepdims=True)
        return (xp.where(hit, _sgn(x, xp) * (g / count), 0.0),)
    if p < 1:
        # |x|^(p-1) is infinite at a zero element: torch takes 0 there
        scaled = xp.where(a == 0, 0.0, _sgn(x, xp) * abs(xp.where(a == 0, 1.0, x)) ** (p - 1))
        return (scaled * g * y ** (1.0 - p),)
    scaled = _sgn(x, xp) * abs(x) ** (p - 1) if p < 2 else x * abs(x) ** (p - 2)
    return (scaled * xp.where(zero, 0.0, g / safe ** (p - 1)),)


def _sgn(x: Any, xp: Any) -> Any:
    """torch's sgn in a rule: the sign of real values, z / |z| (0 at 0) of complex ones (NumPy's sign
    gives that for complex arrays; a recorded sign refuses complex tensors, as torch.sign)."""
    if isinstance(x, Tensor) and x.array.dtype.kind == "c":
        from .complex import sgn

        return sgn(x)
    return xp.sign(x)


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
    mode = namedtuple("mode", ["values", "indices"])
    nanmedian = namedtuple("nanmedian", ["values", "indices"])
    frexp = namedtuple("frexp", ["mantissa", "exponent"])


def _extreme_with_indices(x: Any, dim: Any, keepdim: bool, arg: Any, name: str) -> Any:
    x = _lift(x)
    _unordered(x, name)
    if not isinstance(dim, (int, np.integer)):
        raise ArgumentTypeError(f"{name}(dim): dim must be one integer, got {dim!r}; use a{name}(dim=...) for several")
    d = _dim(int(dim), x.ndim, name)
    if x.array.size == 0 and x.ndim and x.shape[d] == 0:  # a zero-size other dim gives an empty result
        raise ShapeIndexError(f"{name}(dim={dim}) of an empty tensor of shape {tuple(x.shape)}: dim {d} has size 0")
    if x.ndim == 0:
        return getattr(return_types, name)(
            record_op(x.array.copy(), (x,), _clone_vjp), wrap_array(np.zeros_like(x.array, dtype=np.int64))
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
        return _extreme(x, None, False, None, None, np.max, _full_extreme_vjp)
    keep = bool(keepdim or keepdims)  # host: Python flags
    return _extreme_with_indices(x, d, keep, np.argmax, "max")


def min(x: Any, dim: Any = None, keepdim: bool = False, *, axis: Any = None, keepdims: Any = None) -> Any:
    """The smallest value, as in torch.min: a 0-d tensor, or ``(values, indices)`` along ``dim``;
    ``min(a, b)`` with a tensor ``b`` is the elementwise :func:`minimum`."""
    if isinstance(dim, Tensor):
        return minimum(x, dim)
    d = _pick_axis(dim, axis)
    if d is None:
        return _extreme(x, None, False, None, None, np.min, _full_extreme_vjp)
    keep = bool(keepdim or keepdims)  # host: Python flags
    return _extreme_with_indices(x, d, keep, np.argmin, "min")


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
    complex_input = isinstance(x, Tensor) and x.array.dtype.kind == "c"
    x = x if complex_input else _lift_float(x)
    axes = _norm_axes(_pick_axis(dim, axis), x.ndim, empty_is_all=axis is None)
    keep = bool(keepdim or keepdims)  # host: Python flags
    d = x.array
    xp = namespace_of(d)
    dtype = d.dtype
    d = _opmath(d)  # float16 in float32, rounded once at the end (torch sums float16 in float32)
    if d.size:
        # complex: shifted by the largest real part, as torch's (|exp(z)| depends on Re z only)
        m = (xp.real(d) if complex_input else d).max(axis=axes, keepdims=True)
        m = xp.where(xp.isfinite(m), m, 0)
    else:  # an empty reduction is log(0) = -inf, as in torch (max has no identity)
        m = xp.zeros(_kept_shape(d.shape, axes), d.dtype)
    # a row of only -inf is log(0) = -inf, and exp beside a +inf (whose shift is then 0) overflows to
    # inf, as in torch: no warning
    with np.errstate(divide="ignore", over="ignore"):
        out = xp.log(xp.exp(d - m).sum(axis=axes, keepdims=True)) + m
    if not keep:
        out = out.reshape([s for i, s in enumerate(d.shape) if i not in axes])
    out = _to_half(out) if dtype == _HALF else out.astype(dtype, copy=False)
    return record_op(out, (x,), _logsumexp_vjp, (_kept_shape(d.shape, axes), keep))


def _logsumexp_vjp(g, y, args, saved, needs, xp):
    kept, keep = saved
    if not keep:
        g = xp.reshape(g, kept)
    return (g * xp.exp(args[0] - xp.reshape(y, kept)),)


def _softmax_axes(dim: Any, ndim: int, op: str) -> tuple[int, ...]:
    """The one axis of a softmax as a tuple (empty for a 0-d tensor). ``dim`` must be one int, as in
    torch: None would otherwise mean "all elements" here, which no torch softmax does."""
    index = None if isinstance(dim, (bool, np.bool_)) else backend.index_value(dim)  # a 0-d int tensor too
    if index is None:
        raise ArgumentTypeError(f"{op}: dim must be an int, got {type(dim).__name__} ({dim!r})")
    d = _dim(index, ndim, op)
    return (d,) if ndim else ()


def _exp_total(d: Any, axes: tuple[int, ...]) -> tuple[Any, Any, Any]:
    """``(e, total, shift)``: ``e = exp(d - shift)`` (an array of its own, free to be overwritten),
    ``total`` its sums over ``axes`` (dims kept) and ``shift`` the max over ``axes``. ``d`` is
    floating; called under np.errstate that ignores invalid values (a row of only -inf, or with +inf,
    gives NaN, as in torch) and underflow (exp of very negative numbers is 0)."""
    # Always shifted by the max, as torch: a row of equal logits then gives exactly 1/n (exp(0) = 1),
    # which the unshifted exp(x) / sum(exp(x)) misses by an ulp (uniform attention weights then do
    # not average exactly).
    shift = d.max(axis=axes, keepdims=True) if d.size else 0
    e = d - shift  # a new array of this function's own, overwritten in place below
    np.exp(e, out=e)
    return e, e.sum(axis=axes, keepdims=True), shift


_JIT_SOFTMAX = "downslope.ops._jit_softmax"
_JIT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))  # native byte order only: numba has no other
# Below this many elements the compiled kernel saves under ~20 us a call (4096 elements: 13 against
# 19 us; 16384: 17 against 37 us; 2-core machine, 1 thread), while the first compiled call of every
# process costs 1.2-1.5 s even with numba's on-disk cache warm (numba's import ~0.5 s, then ~0.8 s
# for the first cached kernel's load; see jit_gate): at 4096 elements that takes ~200,000 calls to
# earn back, which a small model's generation (a few heads of 32 x 32 scores) or a short run never
# makes; from 16384 elements it is ~60,000 calls, and past 32768 (~0.4 ms saved) a few thousand.
JIT_SOFTMAX_MIN_SIZE = 16384


def _softmax_kernels(axes: tuple[int, ...], *arrays: Any) -> Any:
    """The compiled softmax kernels (``ops._jit_softmax``: one pass per row, measured 2-3x faster
    than the NumPy steps below) where they apply: numba on, a softmax over the last dim of
    C-contiguous host arrays of at least ``JIT_SOFTMAX_MIN_SIZE`` elements, of one float32/float64
    dtype and shape; else None (the NumPy path, which every other case takes: small arrays, other
    dims, strided views, devices, float16 before its cast to float32)."""
    first = arrays[0]
    if type(first) is not np.ndarray or first.size < JIT_SOFTMAX_MIN_SIZE or first.dtype not in _JIT_DTYPES:
        return None
    if axes != (first.ndim - 1,):
        return None
    for a in arrays:
        if type(a) is not np.ndarray or not a.flags.c_contiguous or a.dtype != first.dtype or a.shape != first.shape:
            return None
    return jit_gate.kernels(_JIT_SOFTMAX, *arrays)


def _small_rows(x: Any, dim: Any, dtype: Any, axis: Any) -> np.ndarray | None:
    """The array of ``x`` where softmax or log_softmax may take their short path: over the last dim
    (``dim`` a plain int, no ``dtype`` or ``axis``) of a C-contiguous host float32/float64 tensor with
    fewer elements than the compiled kernels take (JIT_SOFTMAX_MIN_SIZE), that no gradient is
    recorded for; else None. Those calls take the NumPy steps of the general path, which the short
    path runs without the checks and conversions that such an input passes (sampling from a small
    model's logits token by token makes one such call a step, on a row of a few dozen values)."""
    if dtype is not None or axis is not None or dim.__class__ is not int or not isinstance(x, Tensor):
        return None
    d = x.array
    if (
        type(d) is not np.ndarray  # host: the short path is for host arrays only
        or d.dtype not in _JIT_DTYPES
        or not d.ndim
        or not 0 < d.size < JIT_SOFTMAX_MIN_SIZE
        or (dim != -1 and dim != d.ndim - 1)
        or not d.flags.c_contiguous
        or (x.requires_grad and is_grad_enabled())
    ):
        return None
    return d


def _floating_input(x: Any, dtype: Any, op: str) -> Tensor:
    """``x`` as a tensor, cast to ``dtype`` when given; else it must be floating already, as in torch
    (whose softmax kernels raise NotImplementedError for integer and bool tensors, ``dtype=`` ones too)."""
    x = _lift(x) if dtype is None else astype(_lift(x), dtype)
    if x.array.dtype.kind != "f":
        name = _TORCH_DTYPE_NAMES.get(x.array.dtype.name, x.array.dtype.name)  # torch's message
        raise DTypeUnimplementedError(  # torch's NotImplementedError
            f"{op}: \"{op}_lastdim_kernel_impl\" not implemented for '{name}': expected a floating tensor, "
            f"got {x.dtype}; cast it with .float() or pass dtype=ds.float32"
        )
    return x


def softmax(x: Any, dim: int = -1, dtype: Any = None, *, axis: int | None = None) -> Tensor:
    """exp(x) / sum(exp(x)) along ``dim``, stable (see ``_exp_total``); ``dtype`` casts first.

    Example:
        >>> import downslope as ds
        >>> ds.softmax(ds.tensor([0.0, 0.0, 1000.0]), 0)
        tensor([0., 0., 1.])
    """
    row = _small_rows(x, dim, dtype, axis)
    if row is not None:  # the steps below without their checks, which it passes
        with np.errstate(invalid="ignore", divide="ignore", under="ignore", over="ignore"):
            e = np.subtract(row, np.maximum.reduce(row, axis=-1, keepdims=True))
            np.exp(e, out=e)
            total = np.add.reduce(e, axis=-1, keepdims=True)
            np.divide(1, total, out=total)
            e *= total
        return record_op(e, (x,), _softmax_vjp, (row.ndim - 1,))
    x = _floating_input(x, dtype, "softmax")
    axes = _softmax_axes(dim if axis is None else axis, x.ndim, "softmax")
    d = _opmath(x.array)  # float16 in float32 and rounded once, as torch's kernel
    a = axes
    if not a:  # 0-d: as one element of a 1-d row, so that the in-place steps below have arrays
        d, a = d.reshape(1), (0,)
    jit = _softmax_kernels(a, d)
    if jit is not None:  # the same steps, each row's in one compiled pass
        e = jit.softmax(d)
    else:
        # a row of only -inf gives NaN, as in torch, and x - max(x) past -FLT_MAX gives -inf (probability
        # 0): no warning. One errstate for all of it: each costs ~2 us, as much as a NumPy step on a
        # (1, 65) row of logits
        with np.errstate(invalid="ignore", divide="ignore", under="ignore", over="ignore"):
            e, total, _ = _exp_total(d, a)
            np.divide(1, total, out=total)  # one division per row, then a product per element (as torch)
            e *= total
    e = _in_order(e.reshape(x.shape), x.array)
    if e.dtype != x.array.dtype:
        e = _to_half(e)
    return record_op(e, (x,), _softmax_vjp, axes)


def _in_order(out: Any, a: Any) -> Any:
    """``out``, a softmax of ``a`` in a's memory order, made contiguous as torch's is; a convolution's
    channel-major output keeps its order (its layout counts as contiguous: see tensor.note_conv_layout)."""
    if out.flags.c_contiguous or (_conv_buffers and _over_conv_buffer(a)):
        return out
    return namespace_of(out).ascontiguousarray(out)


def _softmax_vjp(g, y, args, saved, needs, xp):
    """y * (g - sum(g * y)), torch's softmax_backward."""
    if xp.differentiable or not saved:
        gy = g * y
        return (gy - y * gy.sum(axis=saved, keepdims=True),)
    if g.dtype == _HALF:  # in float32, rounded once (as torch's kernel)
        return (_softmax_vjp(g.astype(np.float32), y.astype(np.float32), args, saved, needs, xp)[0].astype(_HALF),)
    jit = _softmax_kernels(saved, g, y)
    if jit is not None:  # the same steps, each row's in one compiled pass
        return (jit.softmax_backward(g, y),)
    if _VECDOT and saved == (y.ndim - 1,) and type(g) is np.ndarray and type(y) is np.ndarray:
        dot = np.expand_dims(np.vecdot(g, y), -1)  # the rows' dot products without a g * y array
    else:
        dot = (g * y).sum(axis=saved, keepdims=True)
    out = np.subtract(g, dot)  # a new array, so the product below may overwrite it (never g or y)
    out *= y
    return (out,)


_VECDOT = hasattr(np, "vecdot")  # NumPy 2


def log_softmax(x: Any, dim: int = -1, dtype: Any = None, *, axis: int | None = None) -> Tensor:
    """x - logsumexp(x) along ``dim``, stable; fused because log(softmax) underflows to -inf; ``dtype``
    casts first.

    Computed as torch does, (x - max) - log(sum(exp(x - max))): the largest term of the sum is then
    exactly 1, so results near 0 (confident predictions) keep their relative precision; exp(x)
    unshifted would leave them off by float32's epsilon.

    Example:
        >>> import downslope as ds
        >>> ds.log_softmax(ds.tensor([0.0, 1000.0]), 0)
        tensor([-1000.,     0.])
    """
    row = _small_rows(x, dim, dtype, axis)
    if row is not None:  # the steps below without their checks, which it passes
        with np.errstate(invalid="ignore", divide="ignore", under="ignore", over="ignore"):
            out = np.subtract(row, np.maximum.reduce(row, axis=-1, keepdims=True))
            total = np.add.reduce(np.exp(out), axis=-1, keepdims=True)
            out -= np.log(total, out=total)
        return record_op(out, (x,), _log_softmax_vjp, (row.ndim - 1,))
    x = _floating_input(x, dtype, "log_softmax")
    axes = _softmax_axes(dim if axis is None else axis, x.ndim, "log_softmax")
    d = _opmath(x.array)  # float16 in float32 and rounded once, as torch's kernel
    a = axes
    if not a:  # 0-d: as one element of a 1-d row, so that the in-place steps below have arrays
        d, a = d.reshape(1), (0,)
    jit = _softmax_kernels(a, d)
    if jit is not None:  # the same steps, each row's in one compiled pass
        out = jit.log_softmax(d)
    else:
        # a row of only -inf gives NaN, as in torch: no warning (one errstate: see softmax)
        with np.errstate(invalid="ignore", divide="ignore", under="ignore", over="ignore"):
            out = d - d.max(axis=a, keepdims=True) if d.size else d.copy()  # the op's own array from here on
            total = _sum_of_exp(out, a)
            out -= np.log(total, out=total)
    if out.dtype != x.array.dtype:
        out = _to_half(out)
    return record_op(_in_order(out.reshape(x.shape), x.array), (x,), _log_softmax_vjp, axes)


# Rows of exponentials are summed in blocks of about this many elements: a block's exponentials stay
# in the cache for their sum, and no scratch array the size of the input is made.
_EXP_BLOCK = 1 << 16


def _sum_of_exp(s: Any, axes: tuple[int, ...]) -> Any:
    """sum(exp(s)) over ``axes`` (dims kept), ``s`` left as it is."""
    n = s.shape[-1] if s.ndim else 1
    rows = _EXP_BLOCK // n if n else 0
    if (
        type(s) is not np.ndarray
        or axes != (s.ndim - 1,)
        or not s.flags.c_contiguous
        or rows < 1
        or s.size < 2 * _EXP_BLOCK
    ):
        return namespace_of(s).exp(s).sum(axis=axes, keepdims=True)
    flat = s.reshape(-1, n)
    total = np.empty((flat.shape[0], 1), s.dtype)  # host: type(s) is np.ndarray here
    scratch = np.empty((rows, n), s.dtype)  # host: as above
    for i in range(0, flat.shape[0], rows):
        block = scratch[: flat.shape[0] - i]  # all of it but in the last block
        np.exp(flat[i : i + rows], out=block)
        np.add.reduce(block, axis=1, keepdims=True, out=total[i : i + rows])
    return total.reshape(s.shape[:-1] + (1,))


def _log_softmax_vjp(g, y, args, saved, needs, xp):
    """g - exp(y) * sum(g), torch's log_softmax_backward."""
    if xp.differentiable or not saved:
        return (g - xp.exp(y) * g.sum(axis=saved, keepdims=True),)
    if g.dtype == _HALF:  # in float32, rounded once (as torch's kernel)
        g32, y32 = g.astype(np.float32), y.astype(np.float32)
        return (_log_softmax_vjp(g32, y32, args, saved, needs, xp)[0].astype(_HALF),)
    jit = _softmax_kernels(saved, g, y)
    if jit is not None:  # the same steps, each row's in one compiled pass
        return (jit.log_softmax_backward(g, y),)
    out = np.exp(y)  # a new array: scaled and subtracted in place below (never g or y)
    out *= g.sum(axis=saved, keepdims=True)
    np.subtract(g, out, out=out)
    return (out,)


# Rules that use only their inputs' shapes, not their values: an in-place write to an input after
# the op was recorded does not invalidate them (autograd._check_versions).
for _rule in (_sum_vjp, _mean_vjp):
    _rule.reads_inputs = False  # type: ignore[attr-defined]


# Rules that read only their output (and g): their inputs may be overwritten after the op.
for _rule in (_softmax_vjp, _log_softmax_vjp):
    _rule.reads_inputs = False  # type: ignore[attr-defined]


# inf * 0, overflow: NaN or inf as torch, which does not warn (NumPy would, from its own module)
@np.errstate(all="ignore")
def prod(x: Any, dim: Any = None, keepdim: bool = False, *, dtype: Any = None) -> Tensor:
    """Product over one dim (or all); exact gradients also where inputs are 0 (products of the others)."""
    x = _lift(x)
    if dtype is not None:
        x = astype(x, dtype)
    if dim is None:
        flat = reshape(x, (-1,))
        # an empty tensor too: 1, with a (zero-size) gradient, as in torch; the dtype asked for is kept
        return reshape(prod(flat, 0, dtype=dtype), ())
    d = _dim(dim, x.ndim, "prod")
    if x.ndim == 0:  # integers and booleans as int64 unless a dtype is asked for, as the n-d result
        widen = dtype is None and x.array.dtype.kind in "iub" and x.array.dtype != backend.int64
        return astype(x, backend.int64) if widen else clone(x)  # never x itself (astype would return it)
    keep = bool(keepdim)  # host: a Python flag
    if x.array.dtype == _HALF:  # a float16 running product over- or underflows where the result need not
        with np.errstate(over="ignore", under="ignore"):  # inf or 0, as torch (which does not warn)
            out = _to_half(np.prod(x.array, axis=d, keepdims=keep, dtype=np.float32))
    else:
        out = np.prod(x.array, axis=d, keepdims=keep)
    if x.array.dtype.kind != "f" and x.array.dtype.kind != "c":  # a complex product is complex (its rule refuses)
        return wrap_array(out.astype(backend.int64 if dtype is None else x.array.dtype))
    return record_op(out, (x,), _prod_vjp, (d, keep))


def _prod_vjp(g, y, args, saved, needs, xp):
    if xp.differentiable:
        if args[0].array.dtype.kind == "c":  # its running products (cumprod) have no complex rule yet
            raise DTypeError("prod: the double backward (create_graph=True) of a complex product is not supported")
        return (_prod_others_recorded(g, args[0], saved, xp),)
    if g.dtype == _HALF:  # in float32, rounded once, as the forward
        wide = (args[0].astype(np.float32),)
        return (_prod_vjp(g.astype(np.float32), y.astype(np.float32), wide, saved, needs, xp)[0].astype(_HALF),)
    d, keep = saved
    a = args[0]
    if not keep:
        g = np.expand_dims(g, d)
    # The product of the other elements = exclusive running products from the left and the right.
    n = a.shape[d]
    if n == 0:  # an empty product is 1: a zero-size gradient of the input's shape (any dim, keepdim or not)
        return (np.broadcast_to(g, a.shape).copy(),)
    ones_shape = list(a.shape)
    ones_shape[d] = 1
    one = namespace_of(a).ones(ones_shape, a.dtype)
    first = (slice(None),) * d + (slice(0, n - 1),)  # all but the last along d
    left = np.concatenate([one, np.cumprod(a, axis=d)[first]], axis=d)
    rev = (slice(None),) * d + (slice(None, None, -1),)
    right_rev = np.cumprod(a[rev], axis=d)
    right = np.concatenate([one, right_rev[first]], axis=d)[rev]
    return (g * left * right,)


def _prod_others_recorded(g: Tensor, a: Tensor, saved: tuple[int, bool], xp: Any) -> Tensor:
    """``_prod_vjp`` under create_graph: ``g`` times the product of the other elements, as exclusive
    running products from the left and the right (PyTorch's formula where an input is 0). It divides
    nothing, so its own derivatives are exact at zeros too (the Hessian's ``prod_{k != i, j} x_k``)."""
    from .scans import cumprod  # scans imports this module

    d, keep = saved
    if not keep:
        g = xp.expand_dims(g, d)
    n = a.shape[d]
    if n == 0:  # an empty product is 1: a zero-size gradient
        return xp.broadcast_to(g, tuple(a.shape))
    ones_shape = list(a.shape)
    ones_shape[d] = 1
    one = xp.constant(namespace_of(xp.data(a)).ones(tuple(ones_shape), xp.data(a).dtype))
    lead = (slice(None),) * d
    rev = lead + (slice(None, None, -1),)
    left = concatenate([one, cumprod(a[lead + (slice(0, n - 1),)], d)], d)  # prod_{j < i} x_j
    right = concatenate([one, cumprod(a[lead + (slice(1, n),)][rev], d)], d)[rev]  # prod_{j > i} x_j
    return g * left * right


def argmax(x: Any, dim: Any = None, keepdim: bool = False) -> Tensor:
    """Index of the largest value (over everything, flattened, or along ``dim``)."""
    x = _lift(x)
    _unordered(x, "argmax")
    return x.argmax(dim, keepdim)


def argmin(x: Any, dim: Any = None, keepdim: bool = False) -> Tensor:
    """Index of the smallest value (over everything, flattened, or along ``dim``)."""
    x = _lift(x)
    _unordered(x, "argmin")
    return x.argmin(dim, keepdim)


def all(x: Any, dim: Any = None, keepdim: bool = False) -> Tensor:
    return _lift(x).all(dim, keepdim)


def any(x: Any, dim: Any = None, keepdim: bool = False) -> Tensor:
    return _lift(x).any(dim, keepdim)


def unique(
    x: Any, sorted: bool = True, return_inverse: bool = False, return_counts: bool = False, dim: Any = None
) -> Any:
    """The distinct values of ``x`` in ascending order (torch.unique), or with ``dim`` its distinct
    slices along ``dim``; ``return_inverse`` adds where each element (slice) went, ``return_counts``
    how often each occurs. Each NaN counts as a value of its own, as in torch.

    Example:
        >>> import downslope as ds
        >>> ds.unique(ds.tensor([3, 1, 3]), return_counts=True)
        (tensor([1, 3]), tensor([1, 2]))
    """
    x = _lift(x)
    if dim is not None:
        if isinstance(dim, (bool, np.bool_)) or not isinstance(dim, (int, np.integer)):
            raise ArgumentTypeError(f"unique: dim must be an int, got {dim!r}")
        if x.ndim == 0:
            raise OutOfRangeError(f"unique: dim {dim} was given but the tensor has no dimensions (a 0-d tensor)")
        dim = _dim(int(dim), x.ndim, "unique")
    if dim is None and type(x.array) is np.ndarray and x.array.dtype.kind in "iu":
        fast = _unique_int_range(x.array, return_inverse, return_counts)
        if fast is not None:
            return fast[0] if len(fast) == 1 else fast
    if dim is not None and type(x.array) is np.ndarray and x.array.dtype.kind == "f" and np.isnan(x.array).any():
        found = _unique_slices_with_nan(x.array, dim, return_inverse, return_counts)
        return found[0] if len(found) == 1 else found
    # equal_nan=False: torch keeps each NaN as a value of its own (NumPy merges them by default)
    extra = {"equal_nan": False} if dim is None else {}
    out = np.unique(x.array, return_inverse=return_inverse, return_counts=return_counts, axis=dim, **extra)  # type: ignore[call-overload]
    if isinstance(out, tuple):
        return tuple(wrap_array(as_array(o)) for o in out)
    return wrap_array(out)


def _unique_slices_with_nan(a: np.ndarray, dim: int, return_inverse: bool, return_counts: bool) -> tuple[Tensor, ...]:
    """torch's unique(dim=...) of a host array holding NaN: its CPU kernel sorts the slices with
    std::sort and a lexicographic ``<`` (under which a NaN is neither less nor greater than anything, so
    the order is std::sort's own, taken from ``_stl_order``), then merges neighbours that are equal
    element by element (a slice holding NaN equals none)."""
    from ._stl_order import stl_sort

    moved = np.moveaxis(a, dim, 0)
    n = moved.shape[0]
    flat = moved.reshape(n, -1)
    rows = flat.tolist()  # host: a host array (unique sends no other here), compared in Python

    def less(i: int, j: int) -> bool:
        for left, right in zip(rows[i], rows[j]):
            if left < right:
                return True
            if left > right:
                return False
        return False

    order = list(range(n))
    stl_sort(order, less)
    ordered = flat[order]
    if n:
        new_group = np.concatenate([[True], ~(ordered[1:] == ordered[:-1]).all(axis=1)])
    else:
        new_group = np.zeros(0, dtype=bool)  # host: as above
    starts = np.flatnonzero(new_group)
    values = np.moveaxis(moved[order][starts], 0, dim)
    out = [wrap_array(np.ascontiguousarray(values))]  # host: as above
    if return_inverse:
        inverse = np.empty(n, dtype=np.int64)  # host: as above
        inverse[order] = np.cumsum(new_group) - 1
        out.append(wrap_array(inverse))
    if return_counts:
        out.append(wrap_array(np.diff(np.append(starts, n)).astype(np.int64)))
    return tuple(out)


# the widest value range, relative to the element count, that unique counts in bins instead of sorting
_UNIQUE_BINS_PER_ELEMENT = 2
_UNIQUE_BINS_MIN = 1 << 16


def _unique_int_range(a: np.ndarray, return_inverse: bool, return_counts: bool) -> tuple[Tensor, ...] | None:
    """np.unique's results for a host integer array whose values span a range not much wider than its
    size, from one bincount over value - min (linear time; NumPy's sort, and its argsort for the
    inverse, take 10-40x longer on a million elements), or None for another array."""
    if a.size == 0:
        return None
    lo, hi = int(a.min()), int(a.max())  # host: a host array
    span = hi - lo + 1
    too_wide = span > _UNIQUE_BINS_PER_ELEMENT * a.size and span > _UNIQUE_BINS_MIN  # (max is the op here)
    if too_wide or hi > np.iinfo(np.intp).max:
        return None
    offset = a.reshape(-1).astype(np.intp)  # a copy, so the subtraction below is in place
    offset -= lo
    counts = np.bincount(offset, minlength=span)
    present = np.flatnonzero(counts)
    out = [wrap_array((present + lo).astype(a.dtype, copy=False))]
    if return_inverse:
        rank = np.zeros(span, np.intp)  # host: unique's counting path takes host arrays only
        rank[present] = np.arange(present.size)  # host: as above
        out.append(wrap_array(np.take(rank, offset).astype(np.int64, copy=False).reshape(a.shape)))
    if return_counts:
        out.append(wrap_array(counts[present].astype(np.int64, copy=False)))
    return tuple(out)


def bincount(x: Any, weights: Any = None, minlength: int = 0) -> Tensor:
    """How often each value 0..max of the 1-D non-negative integer ``x`` occurs (at least ``minlength``
    bins), or the sum of ``weights`` per value. The dtype is torch's: int64 counts; float32 sums for
    float32 weights and float64 sums for any other weights (an empty input gives int64 zeros, as in
    torch). No gradient reaches ``weights`` (torch has no derivative for bincount): backward through
    weighted counts raises, as torch's does.

    Example:
        >>> import downslope as ds
        >>> ds.bincount(ds.tensor([0, 2, 2]), weights=ds.tensor([0.5, 1.0, 2.0]))
        tensor([0.5, 0. , 3. ])
    """
    x = _lift(x)
    a = x.array
    if a.ndim != 1 or a.dtype.kind not in "iu":
        raise ArgumentTypeError(
            f"bincount: expected a 1-D tensor of non-negative integers, got {a.dtype} of shape {tuple(x.shape)}"
        )
    if isinstance(minlength, (bool, np.bool_)) or not isinstance(minlength, (int, np.integer)) or minlength < 0:
        raise ArgumentError(f"bincount: minlength should be an integer >= 0, got {minlength!r}")
    w = None if weights is None else _lift(weights)
    if w is not None and (w.ndim != 1 or w.shape[0] != a.shape[0]):
        raise ShapeError(
            f"bincount: weights should be 1-D and have the same length as input ({a.shape[0]}), got shape {tuple(w.shape)}"
        )
    try:
        counts = np.bincount(a, None if w is None else w.array, int(minlength))
    except ValueError:  # negative values
        low = int(to_host(a.min()))  # host: only on the way to the error
        raise ArgumentError(f"bincount: expected non-negative integers, got the value {low}") from None
    if w is None or a.size == 0:
        return wrap_array(counts.astype(backend.int64, copy=False))
    counts = counts.astype(np.float32 if w.array.dtype == np.float32 else np.float64, copy=False)
    return record_op(counts, (w,), _bincount_vjp)


def _bincount_vjp(g, y, args, saved, needs, xp):
    raise StateError(
        "bincount: the derivative with respect to weights is not implemented (as in torch: derivative for "
        "aten::bincount is not implemented); count with weights.detach() or sum the weights with index_add"
    )


def count_nonzero(x: Any, dim: Any = None) -> Tensor:
    a = _lift(x).array
    axes = _norm_axes(dim, a.ndim)
    return wrap_array(as_array(np.count_nonzero(a, axis=axes)).astype(np.int64, copy=False))


def aminmax(x: Any, *, dim: Any = None, keepdim: bool = False) -> Any:
    return return_types.aminmax(amin(x, dim, keepdim), amax(x, dim, keepdim))


def _variance_without_dof(x: Tensor, axes: tuple[int, ...], keep: bool) -> Tensor:
    """The variance over ``axes`` when N - correction <= 0, as torch: the square sum over zero
    (NaN where it is 0, as for one value or none; inf where positive) and the gradient
    ``g * result`` at every input (inf or NaN, as torch's), without NumPy's warnings (the caller
    warns once, as torch)."""
    a = x.array
    d = a - a.mean(axis=axes, keepdims=True) if a.size else a  # (the mean of nothing warns)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = (d * d).sum(axis=axes, keepdims=keep) / a.dtype.type(0)
    return record_op(out, (x,), _variance_without_dof_vjp, (axes, _kept_shape(a.shape, axes)))


def _variance_without_dof_vjp(g, y, args, saved, needs, xp):
    axes, kept = saved
    with np.errstate(invalid="ignore"):  # 0 * inf is NaN here, as in torch
        gy = g * y
    return (xp.broadcast_to(xp.reshape(gy, kept), args[0].shape),)


def _var_args(name: str, x: Any, dim: Any, unbiased: Any, kwargs: dict[str, Any]) -> tuple[Any, Any, Any]:
    x = _lift(x)
    if x.array.dtype.kind not in "fc":
        raise DTypeError(f"{name}: expected a floating or complex tensor, got {x.dtype}")
    if isinstance(dim, (bool, np.bool_)):  # torch's var_mean(x, unbiased) overload
        dim, unbiased = None, dim
    return x, dim, unbiased


def var_mean(
    x: Any, dim: Any = None, unbiased: Any = None, keepdim: bool = False, **kwargs: Any
) -> tuple[Tensor, Tensor]:
    """``(var, mean)`` over ``dim`` (torch.var_mean): ``correction=`` (1 by default) or ``unbiased=``.

    Example:
        >>> import downslope as ds
        >>> ds.var_mean(ds.tensor([1.0, 2.0, 4.0]), correction=0)
        (tensor(1.5556), tensor(2.3333))
    """
    from ..functional import _variance

    x, dim, unbiased = _var_args("var_mean", x, dim, unbiased, kwargs)
    keep = bool(keepdim or kwargs.pop("keepdims", False))  # host: Python flags
    return _variance("var_mean", x, dim, unbiased, keep, **kwargs), mean(x, dim, keep)


def std_mean(
    x: Any, dim: Any = None, unbiased: Any = None, keepdim: bool = False, **kwargs: Any
) -> tuple[Tensor, Tensor]:
    """``(std, mean)`` over ``dim`` (torch.std_mean): ``correction=`` (1 by default) or ``unbiased=``.

    Example:
        >>> import downslope as ds
        >>> ds.std_mean(ds.tensor([1.0, 3.0]))
        (tensor(1.4142), tensor(2.))
    """
    from ..functional import _std

    x, dim, unbiased = _var_args("std_mean", x, dim, unbiased, kwargs)
    keep = bool(keepdim or kwargs.pop("keepdims", False))  # host: Python flags
    return _std("std_mean", x, dim, unbiased, keep, **kwargs), mean(x, dim, keep)


def nansum(x: Any, dim: Any = None, keepdim: bool = False, *, dtype: Any = None) -> Tensor:
    """Sum over ``dim`` with NaNs counted as 0 (torch.nansum); the gradient is torch's
    ``grad * ~isnan(x)``, so an incoming NaN or inf (nanmean over an all-NaN slice) stays visible.
    ``dtype`` casts the input first (torch's meaning), after the NaNs are dropped where it is an
    integer dtype (a NaN cast to an integer would be INT_MIN, not the 0 torch counts it as)."""
    x = _lift(x)
    if dtype is not None:
        if x.array.dtype.kind == "f" and backend.as_dtype(dtype).kind in "iub":
            data = x.array  # an integer result has no gradient: the NaN-free copy need not be recorded
            x = wrap_array(namespace_of(data).where(data != data, 0, data))
        x = astype(x, dtype)
    if x.array.dtype.kind != "f":
        if x.array.dtype.kind == "c":  # torch: "nansum on CPU does not support complex inputs"
            raise DTypeError(f"nansum: not supported for complex tensors (got {x.array.dtype}), as in torch")
        return sum(x, dim, keepdim, dtype=dtype)  # integers: int64 unless a dtype is asked for, as torch
    valid = ~np.isnan(x.array)
    out = sum(wrap_array(namespace_of(x.array).where(valid, x.array, 0)), dim, keepdim).array
    axes = _norm_axes(dim, x.ndim)
    kept = _kept_shape(x.array.shape, axes)
    return record_op(out, (x,), _nansum_vjp, (kept, bool(keepdim), valid))  # host: a Python flag


def _nansum_vjp(g, y, args, saved, needs, xp):
    kept, keep, valid = saved
    if not keep:
        g = xp.reshape(g, kept)
    return (g * valid,)


_nansum_vjp.reads_inputs = False  # type: ignore[attr-defined]  # it saves the NaN mask, not x


def nanmean(x: Any, dim: Any = None, keepdim: bool = False, *, dtype: Any = None) -> Tensor:
    x = _lift_float(x) if dtype is None else astype(_lift_float(x), dtype)
    valid = ~np.isnan(x.array)
    dim = _norm_axes(dim, x.ndim)
    count = np.sum(valid, axis=dim, keepdims=keepdim)
    return div(nansum(x, dim, keepdim), wrap_array(as_array(count).astype(x.array.dtype)))


def histc(x: Any, bins: int = 100, min: float = 0, max: float = 0) -> Tensor:
    """A histogram of ``x``'s elements in ``bins`` equal bins over [min, max] (torch.histc): with
    min == max the data's own range (widened by 1 each way when it is one value); elements outside
    the range and NaNs are left out; the last bin includes its right edge. No gradient.

    Example:
        >>> import downslope as ds
        >>> ds.histc(ds.tensor([1.0, 2.0, 1.0]), bins=4, min=0, max=3)
        tensor([0., 2., 1., 0.])
    """
    x = _lift(x)
    a = x.array
    if a.dtype.kind != "f":
        raise ArgumentTypeError(f"histc: expected a floating tensor, got {a.dtype}")
    if isinstance(bins, (bool, np.bool_)) or not isinstance(bins, (int, np.integer)):
        raise ArgumentTypeError(f"histc: bins must be an int, got {bins!r}")
    if bins <= 0:
        raise ArgumentError(f"histc: bins must be > 0, got {bins}")
    xp = namespace_of(a)
    lo, hi = float(min), float(max)  # host: Python numbers
    if lo == hi and a.size:
        lo_hi = to_host(xp.stack([a.min(), a.max()]))  # host: the data's range sets the edges (one copy)
        lo, hi = float(lo_hi[0]), float(lo_hi[1])  # host: as above
    if lo == hi:
        lo, hi = lo - 1, hi + 1
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise InvalidValueError(f"histc: the range [{lo}, {hi}] is not finite")
    if not lo < hi:
        raise ArgumentError(f"histc: max must be larger than min, got min={lo} and max={hi}")
    left, right = a.dtype.type(lo), a.dtype.type(hi)
    flat = a.reshape(-1)
    flat = flat[(flat >= left) & (flat <= right)]
    # torch's arithmetic, in the input's dtype: (x - min) * bins / (max - min), the top edge in the last bin
    pos = ((flat - left) * a.dtype.type(bins) / (right - left)).astype(np.int64)
    pos = xp.where(pos >= bins, bins - 1, pos)
    return wrap_array(xp.bincount(pos, minlength=bins).astype(a.dtype))


def dist(x: Any, other: Any, p: float = 2) -> Tensor:
    """The ``p``-norm of ``x - other`` (torch.dist), differentiable in both.

    Example:
        >>> import downslope as ds
        >>> ds.dist(ds.tensor([1.0, 2.0]), ds.tensor([4.0, 6.0]))
        tensor(5.)
    """
    a, b = _lift(x), _lift(other)
    if a.array.dtype.kind != "f" and b.array.dtype.kind != "f":  # one is enough: the other is promoted
        raise ArgumentTypeError(f"dist: expected at least one floating tensor, got {a.dtype} and {b.dtype}")
    return vector_norm(a - b, p)


def renorm(x: Any, p: float, dim: int, maxnorm: float) -> Tensor:
    """Each slice ``x.select(dim, i)`` whose ``p``-norm exceeds ``maxnorm`` scaled down to norm
    ``maxnorm`` (torch.renorm: scale maxnorm / (norm + 1e-7)); the gradient flows through the norm too.

    Example:
        >>> import downslope as ds
        >>> ds.renorm(ds.tensor([[3.0, 4.0], [0.3, 0.4]]), 2, 0, 1.0)
        tensor([[0.6, 0.8],
                [0.3, 0.4]])
    """
    x = _lift(x)
    if x.array.dtype.kind != "f":
        raise ArgumentTypeError(f"renorm: expected a floating tensor, got {x.dtype}")
    if x.ndim < 2:
        raise ShapeError(f"renorm: the input needs at least 2 dimensions, got shape {tuple(x.shape)}")
    if not p > 0:
        raise ArgumentError(f"renorm: p must be positive, got {p}")
    if not maxnorm >= 0:
        raise ArgumentError(f"renorm: maxnorm must be >= 0, got {maxnorm}")
    d = _dim(dim, x.ndim, "renorm")
    norm = vector_norm(x, p, tuple(i for i in range(x.ndim) if i != d), True)
    over = norm.array > maxnorm
    factor = where(over, maxnorm / (norm + 1e-7), 1.0)
    return x * factor


def _trapezoid_args(name: str, y: Any, x: Any, dx: Any, dim: int) -> tuple[Tensor, Any, int]:
    y = _lift(y)
    if y.array.dtype == np.bool_:
        raise ArgumentTypeError(f"{name}: y must be a number tensor, got bool")
    y = _lift_float(y)
    if x is not None and dx is not None:
        raise ArgumentError(f"{name}: give x or dx, not both")
    d = _dim(dim, y.ndim, name)
    if x is None:
        return y, 1.0 if dx is None else dx, d
    if not isinstance(x, Tensor):
        return y, x, d  # a number x is the spacing, as torch.trapezoid(y, 0.5)
    if x.array.dtype == np.bool_:
        raise ArgumentTypeError(f"{name}: x must be a number tensor, got bool")
    if x.ndim == 1:
        if x.shape[0] != y.shape[d]:
            raise ShapeError(
                f"{name}: there must be one x value for each sample point: x has {x.shape[0]}, y has {y.shape[d]} along dim {d}"
            )
        x = reshape(x, tuple(x.shape[0] if i == d else 1 for i in range(y.ndim)))
    elif x.ndim < y.ndim:
        x = reshape(x, (1,) * (y.ndim - x.ndim) + x.shape)
    n = x.shape[d]
    return y, x.narrow(d, 1, n - 1) - x.narrow(d, 0, n - 1), d


def trapezoid(y: Any, x: Any = None, *, dx: Any = None, dim: int = -1) -> Tensor:
    """The trapezoidal rule along ``dim`` (torch.trapezoid): sample points ``x`` (a tensor) or a constant
    spacing ``dx`` (1 by default).

    Example:
        >>> import downslope as ds
        >>> ds.trapezoid(ds.tensor([1.0, 2.0, 4.0]), ds.tensor([0.0, 1.0, 3.0]))
        tensor(7.5)
    """
    y, step, d = _trapezoid_args("trapezoid", y, x, dx, dim)
    n = y.shape[d] if y.ndim else 1
    if n == 0:
        return sum(y, d)  # zeros, as torch
    if not isinstance(step, Tensor):
        return _times_number(sum(y, d) - _times_number(y.select(d, 0) + y.select(d, -1), 0.5), step)
    return sum(step * (y.narrow(d, 1, n - 1) + y.narrow(d, 0, n - 1)) / 2.0, d)


def trapz(y: Any, x: Any = None, *, dx: Any = None, dim: int = -1) -> Tensor:
    """torch.trapz, the older name of :func:`trapezoid`.

    Example:
        >>> import downslope as ds
        >>> ds.trapz(ds.tensor([1.0, 2.0, 4.0]), dx=0.5)
        tensor(2.25)
    """
    return trapezoid(y, x, dx=dx, dim=dim)


def cumulative_trapezoid(y: Any, x: Any = None, *, dx: Any = None, dim: int = -1) -> Tensor:
    """The running trapezoidal rule along ``dim`` (torch.cumulative_trapezoid): one fewer element there.

    Example:
        >>> import downslope as ds
        >>> ds.cumulative_trapezoid(ds.tensor([1.0, 2.0, 4.0]))
        tensor([1.5, 4.5])
    """
    from .scans import cumsum

    y, step, d = _trapezoid_args("cumulative_trapezoid", y, x, dx, dim)
    n = y.shape[d]
    if n == 0:
        return clone(y)
    pairs = y.narrow(d, 0, n - 1) + y.narrow(d, 1, n - 1)
    return cumsum(step / 2.0 * pairs if isinstance(step, Tensor) else _times_number(pairs, step / 2.0), d)


def cov(x: Any, *, correction: int = 1, fweights: Any = None, aweights: Any = None) -> Tensor:
    """The covariance matrix of the variables in ``x``'s rows (observations in columns; a 1-D ``x`` is
    one variable), torch.cov: ``correction`` (1: Bessel's), integer frequency weights ``fweights`` and
    floating observation weights ``aweights``. Differentiable in ``x`` and ``aweights``.

    Example:
        >>> import downslope as ds
        >>> ds.cov(ds.tensor([[1.0, 2.0, 4.0], [0.0, 3.0, 9.0]]))
        tensor([[ 2.3333,  7.    ],
                [ 7.    , 21.    ]])
    """
    import warnings

    from .linalg import mm

    x = _lift(x)
    if x.ndim > 2:
        raise ShapeError(f"cov: expected an input with two or fewer dimensions, got shape {tuple(x.shape)}")
    if x.array.dtype == np.bool_:
        raise ArgumentTypeError("cov: bool input is not supported")
    x = _lift_float(x)
    rows = reshape(x, (1, -1)) if x.ndim < 2 else x
    n = rows.shape[1]
    w: Any = None
    if fweights is not None:
        fw = _lift(fweights)
        if fw.ndim > 1 or fw.array.dtype.kind not in "iu":
            raise ArgumentTypeError(
                f"cov: fweights must be a 1-D integer tensor, got {fw.dtype} of shape {tuple(fw.shape)}"
            )
        if fw.numel() != n:
            raise ShapeError(f"cov: fweights has {fw.numel()} elements for {n} observations")
        if n and to_host(fw.array.min()) < 0:  # host: one value check, as torch's
            raise ArgumentError("cov: fweights cannot be negative")
        w = astype(fw, x.array.dtype)
    if aweights is not None:
        aw = _lift(aweights)
        if aw.ndim > 1 or aw.array.dtype.kind != "f":
            raise ArgumentTypeError(
                f"cov: aweights must be a 1-D floating tensor, got {aw.dtype} of shape {tuple(aw.shape)}"
            )
        if aw.numel() != n:
            raise ShapeError(f"cov: aweights has {aw.numel()} elements for {n} observations")
        if n and to_host(aw.array.min()) < 0:  # host: one value check, as torch's
            raise ArgumentError("cov: aweights cannot be negative")
        w = aw if w is None else w * aw
    if w is None:
        w_sum: Any = float(n)  # host: a Python count
        avg = sum(rows, 1) / w_sum
    else:
        w_sum = sum(w)
        if not to_host(w_sum.array).all():  # host: one value check, as torch's
            raise ArgumentError("cov: the weights sum to zero, so they can't be normalized")
        avg = sum(rows * w, 1) / w_sum
    if w is not None and correction != 0 and aweights is not None:
        norm_factor = w_sum - correction * sum(w * _lift(aweights)) / w_sum
    else:
        norm_factor = w_sum - correction
    if bool(to_host(getattr(norm_factor, "array", norm_factor)) <= 0):  # host: a Python check
        warnings.warn(
            "cov(): degrees of freedom is <= 0. Correction should be strictly less than the number of observations.",
            UserWarning,
            stacklevel=2,
        )
        norm_factor = 0.0  # torch zeroes it: +0, so each entry is inf of its numerator's sign (never -0's flip)
    centred = rows - reshape(avg, (-1, 1))
    c = mm(centred, (centred if w is None else centred * w).T)
    with np.errstate(divide="ignore", invalid="ignore"):
        return squeeze(c / norm_factor)


def corrcoef(x: Any) -> Tensor:
    """The Pearson correlation matrix of ``x``'s rows (torch.corrcoef): cov normalised by the standard
    deviations, clipped to [-1, 1].

    Example:
        >>> import downslope as ds
        >>> ds.corrcoef(ds.tensor([[1.0, 2.0, 3.0], [3.0, 1.0, 2.0]]))
        tensor([[ 1. , -0.5],
                [-0.5,  1. ]])
    """
    from .linalg import diagonal
    from .pointwise import clip, sqrt

    c = cov(x)
    if c.ndim == 0:
        return c / c
    d = sqrt(diagonal(c))
    c = c / reshape(d, (-1, 1))
    c = c / reshape(d, (1, -1))
    return clip(c, -1, 1)
