"""Running reductions along a dim: cumsum, cumprod, cummax, cummin, logcumsumexp."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import backend, jit_gate
from ..backend import namespace_of
from ..tensor import Tensor, _conv_buffers, _over_conv_buffer, record_op, wrap_array
from .indexing import _getitem_vjp, _open_grid, _take_along
from .operands import _dim, _lift, _lift_float
from .pointwise import astype, clone
from .reductions import _HALF, return_types
from .shape import concatenate

# torch accumulates a float32 running sum or product in float64 (and float16 in float32) and rounds
# each result once; NumPy's float32 running sum gains an error that grows with the length (1e6 x 0.1
# sums to 100958.3, torch's to 100000.0). Up to this many terms the float32 result is within a few
# units in the last place of torch's, and the wide pass (2-3x the time of a short scan down a leading
# axis) is skipped.
_WIDE_FROM = 65


def _wide_dtype(a: Any, d: int) -> Any:
    """The dtype a scan of ``a`` along ``d`` accumulates in, as torch's, or None for ``a``'s own."""
    if a.dtype == _HALF:
        return np.float32
    if a.dtype == np.float32 and a.shape[d] >= _WIDE_FROM:
        return np.float64
    return None


# The compiled running sum pays from about this many elements (below, NumPy's call is as quick)
_JIT_SCAN = "downslope.ops._jit_scan"
_JIT_SCAN_MIN = 256


def _compiled_running_sum(a: Any, d: int, reverse: bool) -> Any:
    """The running sum of a host float32/float64 array along ``d`` (from the end with ``reverse``),
    accumulated in float64 as torch's, by the compiled kernel; None where that path does not apply."""
    if a.size < _JIT_SCAN_MIN or a.dtype not in (np.float32, np.float64):
        return None
    kernels = jit_gate.kernels(_JIT_SCAN, a)
    if kernels is None:
        return None
    a = np.ascontiguousarray(a)  # host: only host arrays reach the compiled kernel
    d %= a.ndim  # callers pass -1 too
    shape = (math.prod(a.shape[:d]), a.shape[d], math.prod(a.shape[d + 1 :]))
    out = np.empty_like(a)
    kernels.running_sum(a.reshape(shape), out.reshape(shape), reverse)
    return out


def _reversed_running_sum(g: Any, d: int) -> Any:
    """``cumsum(g[::-1]) [::-1]`` along ``d``: the gradient of a running sum."""
    out = _compiled_running_sum(g, d, True)
    if out is not None:
        return out
    rev = (slice(None),) * d + (slice(None, None, -1),)
    return _running(np.cumsum, g[rev], d)[rev]


def _in_c_order(out: Any, x: Tensor) -> Any:
    """``out``, a scan of ``x``, in C order as torch returns its scans: NumPy follows a transposed or
    permuted input's order, so a reshape of the result would copy where torch's is a view. A copy only
    where NumPy chose another order; a convolution's channel-major output keeps its layout, which
    the layers after it keep."""
    if out.ndim < 2 or out.flags.c_contiguous or (_conv_buffers and _over_conv_buffer(x.array)):
        return out
    return namespace_of(out).ascontiguousarray(out)


def _running(fn: Any, a: Any, d: int) -> Any:
    """``fn`` (np.cumsum or np.cumprod) of ``a`` along ``d``, accumulated as torch's and rounded once."""
    if fn is np.cumsum and type(a) is np.ndarray:  # host: the compiled kernel takes host arrays only
        out = _compiled_running_sum(a, d, False)
        if out is not None:
            return out
    wide = _wide_dtype(a, d)
    if wide is None:
        return fn(a, axis=d)
    with np.errstate(over="ignore", under="ignore"):  # inf or 0 past the range, as torch (which does not warn)
        return fn(a, axis=d, dtype=wide).astype(a.dtype)


def _zero_d_running(x: Tensor, dtype: Any) -> Tensor:
    """cumsum/cumprod of a 0-d tensor: the value itself, integers and booleans as int64 unless a dtype
    is asked for (as torch, and as the n-d results)."""
    if dtype is None and x.array.dtype.kind in "iub" and x.array.dtype != backend.int64:
        return astype(x, backend.int64)
    return clone(x)  # astype returns an int64 input itself; the result must not alias it


# inf - inf, overflow: NaN or inf as torch, which does not warn (NumPy would, from its own module)
@np.errstate(all="ignore")
def cumsum(x: Any, dim: int, *, dtype: Any = None) -> Tensor:
    """Running sum along ``dim``; the gradient is the reversed running sum of the output gradient.

    float32 runs longer than 64 accumulate in float64 and float16 in float32, rounded once, as torch.

    >>> import downslope as ds
    >>> ds.cumsum(ds.tensor([1.0, 2.0, 3.0]), 0)
    tensor([1., 3., 6.])
    """
    x = _lift(x)
    if dtype is not None:
        x = astype(x, dtype)
    d = _dim(dim, x.ndim, "cumsum")
    if x.ndim == 0:
        return _zero_d_running(x, dtype)
    out = _running(np.cumsum, x.array, d)
    if out.dtype != x.array.dtype and (dtype is not None or out.dtype.kind in "ub"):
        # NumPy widens small integers (uint8 -> uint64); torch keeps the dtype asked for, else int64
        out = out.astype(x.array.dtype if dtype is not None else backend.int64)
    return record_op(_in_c_order(out, x), (x,), _cumsum_vjp, d)


def _cumsum_vjp(g, y, args, saved, needs, xp):
    rev = (slice(None),) * saved + (slice(None, None, -1),)
    if xp.differentiable:  # cumsum above: accumulated as the forward
        return (xp.cumsum(g[rev], saved)[rev],)
    if type(g) is np.ndarray:  # host: the compiled kernel takes host arrays only
        return (_reversed_running_sum(g, saved),)
    return (_running(np.cumsum, g[rev], saved)[rev],)


_cumsum_vjp.reads_inputs = False  # type: ignore[attr-defined]  # a reversed running sum of g only


# inf * 0, overflow: NaN or inf as torch, which does not warn (NumPy would, from its own module)
@np.errstate(all="ignore")
def cumprod(x: Any, dim: int, *, dtype: Any = None) -> Tensor:
    """Running product along ``dim`` (exact gradients, also where inputs are 0)."""
    x = _lift(x)
    if dtype is not None:
        x = astype(x, dtype)
    d = _dim(dim, x.ndim, "cumprod")
    if x.ndim == 0:
        return _zero_d_running(x, dtype)
    out = _in_c_order(_running(np.cumprod, x.array, d), x)  # float16 would over- or underflow: wider, as torch
    if x.array.dtype.kind not in "fc":  # integers and booleans: int64 (or the dtype asked for), no gradient
        return wrap_array(out.astype(np.int64 if dtype is None else x.array.dtype))
    return record_op(out, (x,), _cumprod_vjp, d)


def _cumprod_vjp(g, y, args, saved, needs, xp):
    if xp.differentiable:
        return (_cumprod_grad_recorded(g, y, args[0], saved, xp),)
    if g.dtype == _HALF:  # in float32, rounded once, as the forward
        wide = (args[0].astype(np.float32),)
        return (_cumprod_vjp(g.astype(np.float32), y.astype(np.float32), wide, saved, needs, xp)[0].astype(_HALF),)
    d = saved
    x = np.moveaxis(args[0], d, -1)
    gm, ym = np.moveaxis(g, d, -1), np.moveaxis(y, d, -1)
    # d y_k / d x_i = y_k / x_i for i <= k when no x is 0 (checked on the host only: on a device the
    # check would wait for it, so the products of the others are taken always)
    if type(x) is np.ndarray and (x != 0).all():
        rev = _running(np.cumsum, (gm * ym)[..., ::-1], -1)[..., ::-1]
        return (np.moveaxis(rev / x, -1, d),)
    n = x.shape[-1]
    out = np.zeros_like(x)
    for i in range(n):  # products of the others, without dividing by a zero
        others = x.copy()
        others[..., i] = 1
        out[..., i] = (gm[..., i:] * _running(np.cumprod, others, -1)[..., i:]).sum(-1)
    return (np.moveaxis(out, -1, d),)


def _cumprod_grad_recorded(g: Tensor, y: Tensor, x: Tensor, d: int, xp: Any) -> Tensor:
    """``_cumprod_vjp`` under create_graph, recorded so that it differentiates again (PyTorch's values).

    Without zeros: ``dx_i = sum_{k >= i} g_k y_k / x_i``, a reversed running sum (as PyTorch's). With a
    zero, nothing may be divided: ``dx_i = y_{i-1} S_i`` with ``S_i = sum_{k >= i} g_k prod_{i < j <= k}
    x_j``, run backwards as ``S_i = g_i + x_{i+1} S_{i+1}`` (one recorded step per element, exact
    polynomials whose own derivatives are exact at zeros)."""
    n = x.shape[d]
    if n <= 1:  # one element (or none): the identity
        return g
    data = xp.data(x)
    lead = (slice(None),) * d
    if type(data) is np.ndarray and bool((data != 0).all()):  # host: only a host array is checked (no wait)
        rev = lead + (slice(None, None, -1),)
        return xp.cumsum((g * y)[rev], d)[rev] / x

    def at(t: Tensor, i: int) -> Tensor:
        return t[lead + (slice(i, i + 1),)]

    running = at(g, n - 1)
    parts = [running]
    for i in range(n - 2, -1, -1):
        running = at(g, i) + at(x, i + 1) * running
        parts.append(running)
    ones_shape = list(x.shape)
    ones_shape[d] = 1
    one = xp.constant(namespace_of(data).ones(tuple(ones_shape), data.dtype))
    before = concatenate([one, y[lead + (slice(0, n - 1),)]], d)  # y_{i-1} = prod_{j < i} x_j
    return before * concatenate(parts[::-1], d)


def _running_extreme(x: Any, dim: int, name: str, better: Any) -> Any:
    x = _lift(x)
    d = _dim(dim, x.ndim, name)
    if x.ndim == 0:
        return getattr(return_types, name)(clone(x), wrap_array(np.zeros_like(x.array, dtype=np.int64)))
    a = np.moveaxis(x.array, d, -1)
    if a.shape[-1] == 0:  # nothing to run over: empty values and indices, as torch
        idx = np.zeros_like(a, dtype=np.int64)
        return getattr(return_types, name)(
            _take_along(x, np.moveaxis(idx, -1, d), d), wrap_array(np.moveaxis(idx, -1, d))
        )
    compiled = _compiled_extreme_index(a, better is np.maximum)
    if compiled is not None:  # the kernel wrote the values too: no second pass to pick them
        idx, values = (_in_c_order(np.moveaxis(part, -1, d), x) for part in compiled)
        picked = record_op(values, (x,), _getitem_vjp, (_open_grid(idx, d), True))
        return getattr(return_types, name)(picked, wrap_array(idx))
    # Element k takes over when it is at least the running extreme before it, or NaN (torch's rule, so
    # ties go to the later index and a NaN holds until the next NaN). The running extreme up to k
    # (NaN-propagating, as np.maximum/np.minimum are) equals a[k] exactly then, so the last such k so far
    # is a running maximum of marked positions: two accumulates instead of a Python loop over the dim.
    xp = namespace_of(a)
    running = better.accumulate(a, axis=-1)
    took = a == running
    if a.dtype.kind in "fc":
        took |= xp.isnan(a)
    positions = xp.arange(a.shape[-1], dtype=np.int64)
    idx = np.maximum.accumulate(xp.where(took, positions, 0), axis=-1)
    idx = _in_c_order(np.moveaxis(idx, -1, d), x)
    values = _take_along(x, idx, d)
    if not values.array.flags.c_contiguous:  # a fresh gather: laid out anew in C order (see _in_c_order)
        values.array = _in_c_order(values.array, x)
    return getattr(return_types, name)(values, wrap_array(idx))


def _compiled_extreme_index(a: Any, take_max: bool) -> Any:
    """The running extreme's ``(indices, values)`` along the last axis of a host float/int array, by the
    compiled kernel (one pass, where the NumPy formulation takes two accumulates and a gather); None where
    that path does not apply."""
    if type(a) is not np.ndarray or a.size < _JIT_SCAN_MIN or a.dtype.kind not in "fi":  # host: kernels only
        return None
    kernels = jit_gate.kernels(_JIT_SCAN, a)
    if kernels is None:
        return None
    a = np.ascontiguousarray(a)  # host: only host arrays reach the compiled kernel
    shape = (math.prod(a.shape[:-1]), a.shape[-1], 1)
    idx = np.empty(a.shape, np.int64)  # host: the compiled kernel's output
    values = np.empty(a.shape, a.dtype)  # host: the compiled kernel's output
    kernels.running_extreme_index(a.reshape(shape), idx.reshape(shape), values.reshape(shape), take_max)
    return idx, values


def cummax(x: Any, dim: int) -> Any:
    """``(values, indices)`` of the running maximum along ``dim`` (the gradient goes to the index)."""
    return _running_extreme(x, dim, "cummax", np.maximum)


def cummin(x: Any, dim: int) -> Any:
    """``(values, indices)`` of the running minimum along ``dim``."""
    return _running_extreme(x, dim, "cummin", np.minimum)


def logcumsumexp(x: Any, dim: int) -> Tensor:
    """log(cumsum(exp(x))) along ``dim``, as a running log-add-exp: stable wherever the values lie
    (``[-1000, 0]`` gives ``[-1000, 0]``, not ``-inf``), float32 in float64 and float16 in float32,
    rounded once, as torch.

    >>> import downslope as ds
    >>> ds.logcumsumexp(ds.tensor([0.0, 0.0]), 0)
    tensor([0.    , 0.6931])
    """
    x = x if isinstance(x, Tensor) and x.array.dtype.kind == "c" else _lift_float(x)
    d = _dim(dim, x.ndim, "logcumsumexp")
    return record_op(_in_c_order(_log_running_sum(x.array, d), x), (x,), _logcumsumexp_vjp, d)


def _log_running_sum(a: Any, d: int) -> Any:
    """The running log-add-exp of ``a`` along ``d``, accumulated in torch's wider type, rounded once."""
    if a.ndim == 0:
        return a.copy()
    if a.dtype.kind == "c":  # no complex logaddexp.accumulate: by doubling strides, in a's own dtype
        return _log_scan_doubling(a, d)
    wide = np.float32 if a.dtype == _HALF else np.float64 if a.dtype == np.float32 else None
    w = a if wide is None else a.astype(wide)
    with np.errstate(invalid="ignore", over="ignore"):  # NaN stays NaN, as torch (which does not warn)
        if type(w) is np.ndarray:
            out = np.logaddexp.accumulate(w, axis=d)
        else:
            out = _log_scan_doubling(w, d)
        return out if wide is None else out.astype(a.dtype)


def _log_scan_doubling(w: Any, d: int) -> Any:
    """The running log-add-exp by doubling strides (log2(n) elementwise passes): CuPy has no
    ``logaddexp.accumulate``, and a running sum of shifted exponentials underflows."""
    xp = namespace_of(w)
    if w.dtype.kind == "c":
        from .arithmetic import complex_logaddexp  # arithmetic imports the modules this one does

        logaddexp = complex_logaddexp
    else:
        logaddexp = xp.logaddexp
    lead = (slice(None),) * d
    n, step = w.shape[d], 1
    while step < n:
        tail = logaddexp(w[lead + (slice(step, None),)], w[lead + (slice(None, n - step),)])
        w = xp.concatenate([w[lead + (slice(None, step),)], tail], axis=d)
        step *= 2
    return w


def _logcumsumexp_vjp(g, y, args, saved, needs, xp):
    # dx_i = sum_{k >= i} g_k exp(x_i - y_k), in log space with the positive and negative g apart
    # (torch's formula): exp(-y_k) and exp(x_i) alone would overflow.
    x, d = args[0], saved
    if x.ndim == 0:
        return (g,)
    rev = (slice(None),) * d + (slice(None, None, -1),)
    scan: Any = logcumsumexp if xp.differentiable else _log_running_sum
    if xp.data(g).dtype.kind == "c":
        # holomorphic form (conjugated around it by the complex table): the complex log of g needs no
        # split of positive and negative parts (torch's complex formula)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # log(0) is -inf: adds nothing
            return (xp.exp(scan(xp.log(g)[rev] - y[rev], d)[rev] + x),)
    wide = {_HALF: np.float32, np.dtype(np.float32): np.float64}.get(g.dtype)
    if wide is not None and not xp.differentiable:  # exp(x - y) of large x, y loses digits: wider
        widened = (x.astype(wide),)
        return (_logcumsumexp_vjp(g.astype(wide), y.astype(wide), widened, d, needs, xp)[0].astype(g.dtype),)
    dg = xp.data(g)
    lowest = float(np.finfo(dg.dtype).min)  # host: a Python float for the dtype
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # inf - inf is NaN silently, as torch
        log_abs = xp.log(abs(xp.where(dg == 0, 1.0, g)))  # 1 where g is 0: its log is not picked

        def part(mask: Any) -> Any:
            return xp.exp(scan(xp.where(mask, log_abs, lowest)[rev] - y[rev], d)[rev] + x)

        dx = part(dg > 0) - part(dg < 0)
    if xp.differentiable:
        # the split is linear in g except where g is 0: there neither part picks g, so its derivative in
        # g (a forward-mode tangent, taken at g = 0) would be lost. Add the linear form on g's zeros: its
        # value is 0 and its derivative in g is exp(x_i - y_k), shifted by y's least value (as torch's
        # forward rule shifts by a maximum: exponents beyond the dtype's range lose that derivative)
        dy = xp.data(y)
        dxp = namespace_of(dy)
        with np.errstate(invalid="ignore"):
            m = dxp.min(dy, axis=d, keepdims=True)
            m = dxp.where(dxp.isfinite(m), m, 0.0)
        top = float(np.log(np.finfo(dg.dtype).max)) - 1.0  # host: a Python float for the dtype
        zeros = xp.where(dg == 0, g, 0.0)  # all 0, but g's derivative where g is 0
        # both exponents capped: an overflow would make the zero value inf * 0 = NaN
        shifted = xp.cumsum((zeros * xp.exp((m - y).clamp(max=top)))[rev], d)[rev]
        dx = dx + shifted * xp.exp((x - m).clamp(max=top))
    return (dx,)
