"""Running reductions along a dim: cumsum, cumprod, cummax, cummin, logcumsumexp."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import backend
from ..backend import namespace_of
from ..errors import StateError
from ..tensor import Tensor, record_op, wrap_array
from .arithmetic import add, sub
from .indexing import _take_along
from .operands import _dim, _lift, _lift_float
from .pointwise import astype, clone, exp, log
from .reductions import _HALF, _to_half, return_types


def cumsum(x: Any, dim: int, *, dtype: Any = None) -> Tensor:
    """Running sum along ``dim``; the gradient is the reversed running sum of the output gradient."""
    x = _lift(x)
    if dtype is not None:
        x = astype(x, dtype)
    d = _dim(dim, x.ndim, "cumsum")
    if x.ndim == 0:
        return clone(x)
    if x.array.dtype == _HALF:  # a float16 running sum stops growing at 2048 + 1: in float32, as torch
        out = _to_half(np.cumsum(x.array, axis=d, dtype=np.float32))
    else:
        out = np.cumsum(x.array, axis=d)
    if out.dtype != x.array.dtype and (dtype is not None or out.dtype.kind in "ub"):
        # NumPy widens small integers (uint8 -> uint64); torch keeps the dtype asked for, else int64
        out = out.astype(x.array.dtype if dtype is not None else backend.int64)
    return record_op(out, (x,), _cumsum_vjp, d)


def _cumsum_vjp(g, y, args, saved, needs, xp):
    rev = (slice(None),) * saved + (slice(None, None, -1),)
    flipped = g[rev]
    if not xp.differentiable and g.dtype == _HALF:  # accumulated in float32, as the forward
        return (_to_half(np.cumsum(flipped, axis=saved, dtype=np.float32))[rev],)
    summed = xp.cumsum(flipped, saved)  # under create_graph: cumsum above, float32 for float16 too
    return (summed[rev],)


def cumprod(x: Any, dim: int, *, dtype: Any = None) -> Tensor:
    """Running product along ``dim`` (exact gradients, also where inputs are 0)."""
    x = _lift(x)
    if dtype is not None:
        x = astype(x, dtype)
    d = _dim(dim, x.ndim, "cumprod")
    if x.ndim == 0:
        return clone(x)
    if x.array.dtype == _HALF:  # a float16 running product over- or underflows: in float32, as torch
        with np.errstate(over="ignore", under="ignore"):  # inf or 0, as torch (which does not warn)
            out = _to_half(np.cumprod(x.array, axis=d, dtype=np.float32))
    else:
        out = np.cumprod(x.array, axis=d)
    if x.array.dtype.kind != "f":
        return wrap_array(out.astype(np.int64 if dtype is None else x.array.dtype))
    return record_op(out, (x,), _cumprod_vjp, d)


def _cumprod_vjp(g, y, args, saved, needs, xp):
    if xp.differentiable:
        raise StateError("cumprod: double backward (create_graph=True) is not supported")
    if g.dtype == _HALF:  # in float32, rounded once, as the forward
        wide = (args[0].astype(np.float32),)
        return (_cumprod_vjp(g.astype(np.float32), y.astype(np.float32), wide, saved, needs, xp)[0].astype(_HALF),)
    d = saved
    x = np.moveaxis(args[0], d, -1)
    gm, ym = np.moveaxis(g, d, -1), np.moveaxis(y, d, -1)
    # d y_k / d x_i = y_k / x_i for i <= k when no x is 0 (checked on the host only: on a device the
    # check would wait for it, so the products of the others are taken always)
    if type(x) is np.ndarray and (x != 0).all():
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
        return getattr(return_types, name)(clone(x), wrap_array(np.zeros_like(x.array, dtype=np.int64)))
    a = np.moveaxis(x.array, d, -1)
    idx = np.zeros_like(a, dtype=np.int64)
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
    if x.array.dtype == _HALF:  # exp, running sum and log in float32, rounded once, as torch
        return astype(logcumsumexp(astype(x, np.float32), d), _HALF)
    a = x.array
    xp = namespace_of(a)
    # Shifted by the largest finite value (0 where there is none): an infinite shift would make
    # -inf - -inf and inf - inf NaN (torch: [-inf] -> [-inf], [1, inf] -> [1, inf]).
    finite = xp.isfinite(a)
    if x.ndim:
        m = xp.max(xp.where(finite, a, -xp.inf), axis=d, keepdims=True) if a.size else xp.zeros_like(a)
        m = xp.where(xp.isfinite(m), m, 0).astype(a.dtype)
    else:
        m = xp.where(finite, a, 0).astype(a.dtype)
    shift = wrap_array(m)
    with np.errstate(divide="ignore"):  # a leading run of -inf is log(0) = -inf, as in torch: no warning
        return add(log(cumsum(exp(sub(x, shift)), d)), shift)
