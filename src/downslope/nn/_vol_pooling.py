"""3-D max and average pooling as single recorded ops on the compiled kernels of ``_jit_volumetric``
(one pass over the input per call, any padding, dilation, ceil_mode, indices and divisor), used by
``volumetric.max_pool3d``/``avg_pool3d`` when the compiled path serves the input (numba installed,
not switched off, a host array); elsewhere those run their NumPy formulation (the 2-D poolings of
the depth slices, reduced over depth), with the same results.

The gradients are linear maps of the output gradient with coefficients fixed by the forward pass
(the winners' indices; the divisors), as in torch: max pooling's gradient scatters ``g`` to the
indices (:func:`_unpool`), whose adjoint gathers at them (:func:`_gather`); average pooling's spreads
``g / divisor`` over each window, whose adjoint is the pooling itself. Each is recorded with the other
as its rule, so ``create_graph=True`` (a gradient penalty) differentiates them again.

Example:
    >>> import downslope as ds
    >>> from downslope.nn import _vol_pooling
    >>> x = ds.arange(8.0).reshape(1, 1, 2, 2, 2)
    >>> out = _vol_pooling.max_pool3d(x, 2, None, 0, 1, False, True)
    >>> out is None or (out[0].flatten().tolist(), out[1].flatten().tolist()) == ([7.0], [7])
    True
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import jit_gate
from .. import workspace as _workspace
from ..errors import ArgumentError, ArgumentTypeError
from ..ops.pointwise import link_input
from ..tensor import Tensor, note_conv_layout, record_op, wrap_array
from ._conv_args import _as_tensor, _batched, _check_floating, _pool_args
from .pooling import _pool_geometry

_KERNELS = "downslope.nn._jit_volumetric"


def _compiled_input(input: Any, where: str) -> tuple[Any, Tensor, bool] | None:
    """(kernels, batched input, whether it was unbatched) when the compiled kernels serve ``input``
    (a host floating array), else None (the caller runs its NumPy formulation)."""
    if not isinstance(input, Tensor) or input.ndim not in (4, 5) or input.array.dtype.kind != "f":
        return None
    jit = jit_gate.kernels(_KERNELS, input.array)
    if jit is None:
        return None
    x, unbatched = _batched(_as_tensor(input, where), 3, where)
    _check_floating(x, where)
    return jit, x, unbatched


def _channel_major(a: np.ndarray) -> bool:
    return not a.flags.c_contiguous and a.transpose(1, 0, 2, 3, 4).flags.c_contiguous


def _like(a: np.ndarray, shape: tuple[int, ...], zeros: bool) -> np.ndarray:
    """A lent (N, C, ...) array of ``shape`` laid out as ``a`` is (channel-major when ``a`` is: the
    layers around a convolution keep its layout)."""
    make = _workspace.lend_zeros if zeros else _workspace.lend
    if _channel_major(a):
        return make((shape[1], shape[0], *shape[2:]), a.dtype).transpose(1, 0, 2, 3, 4)
    return make(shape, a.dtype)


def _noted(a: np.ndarray) -> np.ndarray:
    return note_conv_layout(a) if not a.flags.c_contiguous else a


def _sizes(x: Tensor, k: Any, s: Any, p: Any, d: Any, ceil_mode: bool, where: str) -> tuple[int, ...]:
    return tuple(
        _pool_geometry(size, k[i], s[i], p[i], d[i], ceil_mode, where)[0] for i, size in enumerate(x.shape[2:])
    )


# ---------------------------------------------------------------------- max pooling
def max_pool3d(
    input: Any, kernel_size: Any, stride: Any, padding: Any, dilation: Any, ceil_mode: bool, return_indices: bool
) -> Any:
    """``volumetric.max_pool3d`` on the compiled kernels, or None when they do not serve ``input``."""
    where = "max_pool3d"
    found = _compiled_input(input, where)
    if found is None:
        return None
    jit, x, unbatched = found
    k, s, p, d = _pool_args(kernel_size, stride, padding, dilation, 3, where)
    size = _sizes(x, k, s, p, d, ceil_mode, where)
    a = x.array
    shape = (a.shape[0], a.shape[1], *size)
    out = _like(a, shape, False)
    idx = np.empty(shape, dtype=np.int64)  # host: the compiled path's arrays
    geometry = (k, s, p, d)
    jit.max_pool3d(a, out, idx, *geometry)
    saved = (jit, idx, geometry, _any_empty(a.shape[2:], size, geometry))
    y = record_op(_noted(out), (x,), _max_pool3d_vjp, saved)
    indices = wrap_array(idx)
    if unbatched:
        y, indices = y[0], wrap_array(idx[0])
    return (y, indices) if return_indices else y


def max_pool2d_by_3d(
    x: Tensor, k: Any, s: Any, p: Any, d: Any, out_hw: tuple[int, int]
) -> tuple[Tensor, Tensor] | None:
    """2-D max pooling of a batched (N, C, H, W) host float ``x`` (its arguments read, its output size
    ``out_hw``) on the 3-D kernels, as a depth of 1: (output, indices into H*W), one pass over the
    input and one scatter back, where the NumPy formulation builds a mask per window element and the
    indices from it (2x torch's time with indices, measured). None when the kernels do not serve ``x``."""
    a = x.array
    if a.dtype.kind != "f":
        return None
    jit = jit_gate.kernels(_KERNELS, a)
    if jit is None:
        return None
    a5 = a[:, :, None]
    shape = (a.shape[0], a.shape[1], 1, *out_hw)
    out = _like(a5, shape, False)
    idx = np.empty(shape, dtype=np.int64)  # host: the compiled path's arrays
    geometry = ((1, *k), (1, *s), (0, *p), (1, *d))
    jit.max_pool3d(a5, out, idx, *geometry)
    saved = (jit, idx, geometry, _any_empty(a5.shape[2:], shape[2:], geometry))
    y = record_op(_noted(out[:, :, 0]), (x,), _max_pool2d_vjp, saved)
    return y, wrap_array(idx[:, :, 0])


def _max_pool2d_vjp(g, y, args, saved, needs, xp):
    jit, idx, geometry, any_empty = saved
    x = args[0]
    if xp.differentiable:
        # link_input: the input's ancestors get a zero gradient, not None (torch's double backward)
        return (link_input(_unpool(g, saved, x.shape), x),)
    n, c, h, w = x.shape
    gx = _like(x[:, :, None], (n, c, 1, h, w), True)
    cm = not gx.flags.c_contiguous  # channel-major: the kernel adds into its (C, N, ...) memory
    jit.max_unpool3d(g[:, :, None], idx, gx.transpose(1, 0, 2, 3, 4) if cm else gx, cm, any_empty, *geometry)
    return (gx[:, :, 0],)


def _any_empty(sizes: Any, out: tuple[int, ...], geometry: Any) -> bool:
    """Whether a window reads nothing of the input (only past its end, or only padding: ceil_mode's
    last window can), torch's first-tap rule along each dim."""
    for n, o, k, s, p, d in zip(sizes, out, *geometry):
        for i in range(o):
            start = i * s - p
            first = start + (-start + d - 1) // d * d if start < 0 else start
            if first >= min(start + (k - 1) * d + 1, n):
                return True
    return False


def _max_pool3d_vjp(g, y, args, saved, needs, xp):
    jit, idx, geometry, any_empty = saved
    x = args[0]
    if xp.differentiable:
        # link_input: the input's ancestors get a zero gradient, not None (torch's double backward)
        return (link_input(_unpool(g, saved, x.shape), x),)
    gx = _like(x, x.shape, True)
    cm = not gx.flags.c_contiguous  # channel-major: the kernel adds into its (C, N, ...) memory
    jit.max_unpool3d(g, idx, gx.transpose(1, 0, 2, 3, 4) if cm else gx, cm, any_empty, *geometry)
    return (gx,)


def _unpool(g: Tensor, saved: Any, shape: tuple[int, ...]) -> Tensor:
    """The max pooling's gradient as a recorded op: ``g`` added at the winners' indices."""
    jit, idx, geometry, any_empty = saved
    gx = np.zeros(_five(shape), dtype=g.array.dtype)  # host: the compiled path's arrays
    jit.max_unpool3d(g.array.reshape(idx.shape), idx, gx, False, any_empty, *geometry)
    return record_op(gx.reshape(shape), (g,), _unpool_vjp, saved)


def _five(shape: tuple[int, ...]) -> tuple[int, ...]:
    """A pooling's (N, C, H, W) shape with the depth of 1 the 3-D kernels see (5-D shapes unchanged)."""
    return shape if len(shape) == 5 else (shape[0], shape[1], 1, *shape[2:])


def _unpool_vjp(g, y, args, saved, needs, xp):
    if xp.differentiable:
        return (_gather(g, saved),)
    jit, idx, geometry, _ = saved
    out = np.empty(idx.shape, dtype=g.dtype)  # host: the compiled path's arrays
    jit.max_gather3d(g.reshape(_five(g.shape)), idx, out, *geometry)
    return (out if g.ndim == 5 else out[:, :, 0],)


def _gather(src: Tensor, saved: Any) -> Tensor:
    """The adjoint of :func:`_unpool` as a recorded op: ``src`` read at the winners' indices."""
    jit, idx, geometry, _ = saved
    out = np.empty(idx.shape, dtype=src.array.dtype)  # host: the compiled path's arrays
    jit.max_gather3d(src.array.reshape(_five(src.shape)), idx, out, *geometry)
    return record_op(out if src.ndim == 5 else out[:, :, 0], (src,), _gather_vjp, saved)


def _gather_vjp(g, y, args, saved, needs, xp):
    if xp.differentiable:
        return (_unpool(g, saved, args[0].shape),)
    jit, idx, geometry, any_empty = saved
    gx = np.zeros(_five(args[0].shape), dtype=g.dtype)  # host: the compiled path's arrays
    jit.max_unpool3d(g.reshape(idx.shape), idx, gx, False, any_empty, *geometry)
    return (gx.reshape(args[0].shape),)


# ---------------------------------------------------------------------- average pooling
def avg_pool3d(
    input: Any, kernel_size: Any, stride: Any, padding: Any, ceil_mode: bool, count_include_pad: bool,
    divisor_override: Any,
) -> Tensor | None:  # fmt: skip
    """``volumetric.avg_pool3d`` on the compiled kernels, or None when they do not serve ``input``."""
    where = "avg_pool3d"
    found = _compiled_input(input, where)
    if found is None:
        return None
    jit, x, unbatched = found
    k, s, p, _ = _pool_args(kernel_size, stride, padding, 1, 3, where)
    if divisor_override is not None and (
        isinstance(divisor_override, bool) or not isinstance(divisor_override, (int, np.integer))
    ):
        raise ArgumentTypeError(f"{where}: divisor_override must be an int, got {type(divisor_override).__name__}")
    if divisor_override is not None and divisor_override == 0:
        raise ArgumentError(f"{where}: divisor must be not zero")
    size = _sizes(x, k, s, p, (1, 1, 1), ceil_mode, where)
    a = x.array
    out = _like(a, (a.shape[0], a.shape[1], *size), False)
    divisor = 0 if divisor_override is None else int(divisor_override)
    rule = (jit, (k, s, p, bool(count_include_pad), divisor))  # host: Python flags for the compiled kernel
    jit.avg_pool3d(a, out, *rule[1])
    y = record_op(_noted(out), (x,), _avg_pool3d_vjp, rule)
    return y[0] if unbatched else y


def _avg_pool3d_vjp(g, y, args, saved, needs, xp):
    x = args[0]
    if xp.differentiable:
        return (_spread(g, saved, x.shape),)
    jit, geometry = saved
    gx = _like(x, x.shape, True)
    jit.avg_unpool3d(g, gx, *geometry)
    return (gx,)


def _spread(g: Tensor, saved: Any, shape: tuple[int, ...]) -> Tensor:
    """The average pooling's gradient as a recorded op: each window's ``g / divisor`` spread over it."""
    jit, geometry = saved
    gx = np.zeros(shape, dtype=g.array.dtype)  # host: the compiled path's arrays
    jit.avg_unpool3d(g.array, gx, *geometry)
    return record_op(gx, (g,), _spread_vjp, (saved, tuple(g.shape)))


def _spread_vjp(g, y, args, saved, needs, xp):
    (jit, geometry), pooled = saved
    if xp.differentiable:
        out = np.empty(pooled, dtype=g.array.dtype)  # host: the compiled path's arrays
        jit.avg_pool3d(g.array, out, *geometry)
        return (record_op(out, (g,), _avg_pool3d_vjp, (jit, geometry)),)
    out = np.empty(pooled, dtype=g.dtype)  # host: the compiled path's arrays
    jit.avg_pool3d(g, out, *geometry)
    return (out,)
