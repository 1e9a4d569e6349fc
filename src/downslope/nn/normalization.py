"""Normalization layers: BatchNorm1d, BatchNorm2d and LayerNorm (PyTorch's formulas and defaults).

Training-mode batch norm and layer norm are single fused ops: the composite (mean, subtract,
square, mean, sqrt, divide, scale, shift) would record eight nodes and keep their temporaries,
while the fused gradient needs only the normalized input and 1/std. Under ``create_graph`` the
same formula is recomputed from differentiable ops, so double backward works.

Defaults (as in PyTorch): ``eps=1e-5``, ``momentum=0.1``, weight (gamma) = 1, bias (beta) = 0,
running mean 0 and running variance 1. The running variance is updated with the *unbiased*
batch variance (divided by M - 1, M values per channel) while the batch itself is normalized with
the biased one (divided by M); this matches PyTorch.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import backend, ops
from .. import workspace as _workspace
from ..errors import ArgumentError, ArgumentTypeError, DTypeError, InvalidValueError
from ..graph import is_grad_enabled
from ..tensor import Tensor, note_conv_layout, ones, record_op, wrap_array, zeros
from . import _jit, init
from ._arrays import scalar
from .module import Module, Parameter

__all__ = ["BatchNorm1d", "BatchNorm2d", "LayerNorm", "batch_norm", "layer_norm"]

_HALF = np.dtype(np.float16)
_INTEGERS = (int, np.integer)  # built once: group_norm checks its num_groups on every call


def _widen(t: Tensor | None) -> Tensor | None:
    """A float16 tensor cast to float32 (a recorded cast: its gradient comes back as float16), else
    ``t`` itself. torch normalizes float16 input in float32 (its "opmath" type) and rounds the output
    once: in float16 the squares overflow past 255 and eps=1e-5 vanishes next to a variance of 0.01."""
    return ops.astype(t, np.float32) if t is not None and t.array.dtype == _HALF else t


def _check_dtypes(where: str, x: Tensor, tensors: dict[str, Tensor | None], mixed: bool = False) -> None:
    """Refuse, as torch does, an integer input and (unless ``mixed``) weights or statistics of another
    dtype than the input's: NumPy would promote (float64 output from a float32 layer) or fail deep
    inside. float16 input with float32 weights is torch's mixed precision and is taken; ``mixed`` (RMS
    norm) takes any floating dtypes."""
    dt = x.array.dtype
    if dt.kind in "biu":
        raise DTypeError(f"{where}: expected a floating-point input, got {dt}; cast it with .float() first")
    if mixed or dt.kind != "f":
        return
    for name, t in tensors.items():
        if t is None or t.array.dtype == dt or (dt == _HALF and t.array.dtype == np.float32):
            continue
        hint = ""
        if dt == np.float32 and t.array.dtype == np.float64:  # why a float32 input may meet a .double() module
            hint = (
                "; note that ds.tensor(a) and ds.as_tensor(a) turn float64 NumPy data into float32 (the default "
                "dtype); ds.tensor(a, dtype=ds.float64) or ds.from_numpy(a) keeps it float64"
            )
        raise DTypeError(
            f"{where}: input dtype {dt} differs from {name} dtype {t.array.dtype}; cast the input "
            f"(x.to({name}.dtype)) or the module (model.to(x.dtype)){hint}"
        )


# ---------------------------------------------------------------------- batch norm
def batch_norm(
    input: Tensor,
    running_mean: Tensor | None,
    running_var: Tensor | None,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> Tensor:
    """Normalize each channel (dim 1) of ``x`` (N, C, ...) over the other dims, then scale and shift.

    In training (or without running statistics) the batch's mean and biased variance are used and
    the running statistics, if given, are updated in place:
    ``running = (1 - momentum) * running + momentum * batch_stat`` (unbiased variance).
    Otherwise the running statistics are used.

    Example:
        >>> import downslope as ds
        >>> import downslope.nn.functional as F
        >>> y = F.batch_norm(ds.tensor([[1.0], [3.0]]), None, None, training=True)
        >>> [round(v, 3) for v in y.numpy().ravel().tolist()]
        [-1.0, 1.0]
    """
    x = input  # torch's parameter name (F.batch_norm(input=...))
    if not isinstance(x, Tensor):
        raise ArgumentTypeError(f"batch_norm: expected a Tensor, got {type(x).__name__}")
    if x.ndim < 2:
        raise ArgumentError(f"batch_norm: expected input of shape (N, C, ...), got {tuple(x.shape)}")
    n_ch = x.shape[1]
    for name, t in (("running_mean", running_mean), ("running_var", running_var), ("weight", weight), ("bias", bias)):
        if t is not None and t.shape != (n_ch,):
            raise ArgumentError(
                f"batch_norm: {name} must have shape ({n_ch},) for input {tuple(x.shape)}, got {tuple(t.shape)}"
            )
    _check_dtypes(
        "batch_norm", x, {"running_mean": running_mean, "running_var": running_var, "weight": weight, "bias": bias}
    )
    if training and not eps > 0:  # 1/sqrt(0 + 0) on any constant channel; torch refuses it up front
        raise ArgumentError(f"batch_norm: eps must be positive during training, but got {eps}")
    return _batch_norm(x, running_mean, running_var, weight, bias, training, momentum, eps, n_ch)


def _batch_norm(
    x: Tensor,
    running_mean: Tensor | None,
    running_var: Tensor | None,
    weight: Tensor | None,
    bias: Tensor | None,
    training: bool,
    momentum: float,
    eps: float,
    n_ch: int,
) -> Tensor:
    """:func:`batch_norm` after its checks (float16 input comes back here as float32 with its float16
    running statistics, which the dtype check would refuse from a caller)."""
    if x.array.dtype == _HALF:  # in float32, rounded once (the running statistics keep their dtype)
        wide = _batch_norm(
            ops.astype(x, np.float32),
            running_mean,
            running_var,
            _widen(weight),
            _widen(bias),
            training,
            momentum,
            eps,
            n_ch,
        )
        return ops.astype(wide, _HALF)
    use_batch_stats = training or running_mean is None or running_var is None
    bshape = (1, n_ch) + (1,) * (x.ndim - 2)
    if not use_batch_stats:
        assert running_mean is not None and running_var is not None
        params = (x, running_mean, running_var, weight, bias)
        if not (is_grad_enabled() and any(t is not None and t.requires_grad for t in params)) and all(
            t is None or t.array.dtype == x.array.dtype for t in params
        ):
            return _batch_norm_eval(x, running_mean, running_var, weight, bias, eps)
        # Eval mode is a per-channel affine map with constant statistics: two broadcast ops.
        r_mean, r_var = running_mean.array, running_var.array
        if r_var.dtype == _HALF:  # float16 statistics of a half module, used in float32
            r_mean, r_var = r_mean.astype(np.float32), r_var.astype(np.float32)
        inv_std = 1.0 / np.sqrt(r_var + scalar(eps, r_var.dtype))
        # wrapped with their dtype: a raw array given to an op is user data, read as float32
        scale: Any = wrap_array(inv_std.astype(x.array.dtype, copy=False))
        shift: Any = wrap_array((-r_mean * inv_std).astype(x.array.dtype, copy=False))
        if weight is not None:
            scale = weight * scale
            shift = weight * shift
        if bias is not None:
            shift = bias + shift
        return x * ops.reshape(scale, bshape) + ops.reshape(shift, bshape)
    axes = (0,) + tuple(range(2, x.ndim))
    count = x.array.size // n_ch if n_ch else 0
    if count == 0:  # an empty batch: an empty output, the running statistics unchanged (as torch)
        out = ops.clone(x)  # through the affine, so that weight and bias get their (zero) gradients
        if weight is not None:
            out = out * ops.reshape(weight, bshape)
        if bias is not None:
            out = out + ops.reshape(bias, bshape)
        return out
    if count == 1:
        raise ArgumentError(
            f"batch_norm: expected more than 1 value per channel when training, got input of shape {tuple(x.shape)}"
            + (
                " (a batch of one sample: often the last batch of an epoch, when the data's size is one more "
                "than a multiple of the batch size; pass drop_last=True to the DataLoader or change batch_size)"
                if x.shape[0] == 1
                else ""
            )
        )
    if x.ndim >= 3:
        return _batch_norm_channels(x, running_mean, running_var, weight, bias, momentum, eps)
    d = x.array
    mean = d.mean(axis=axes, keepdims=True)
    xhat = d - mean
    var = np.mean(np.square(xhat), axis=axes, keepdims=True)
    inv_std = 1.0 / np.sqrt(var + scalar(eps, d.dtype))
    xhat *= inv_std
    if running_mean is not None and running_var is not None:
        _update_running(running_mean, running_var, mean, var, count, momentum)
    return _affine_node(xhat, inv_std, x, weight, bias, bshape, axes, eps, count, _batch_norm_vjp)


def _batch_norm_eval(
    x: Tensor, running_mean: Tensor, running_var: Tensor, weight: Tensor | None, bias: Tensor | None, eps: float
) -> Tensor:
    """Inference batch norm, nothing recorded: the running statistics and the affine folded into one
    scale and one shift per channel, ``y = x * scale + shift`` in one pass (the compiled kernel) or
    two in place on a fresh output, keeping a channel-major input's layout."""
    d = x.array
    scale, shift = _eval_affine(running_mean, running_var, weight, bias, eps, d.dtype)
    n, c = d.shape[0], d.shape[1]
    m = math.prod(d.shape[2:])  # spelled out: -1 cannot be inferred for an empty batch
    if d.ndim > 2 and not d.flags.c_contiguous and d.swapaxes(0, 1).flags.c_contiguous:
        planes, channel_major = d.swapaxes(0, 1).reshape(1, c, n * m), True  # a convolution's (C, N, ...) memory
    else:
        planes, channel_major = d.reshape(n, c, m), False  # a copy when no view has this shape
    if _jit.kernels(planes) is not None and planes.size:
        from . import _jit_norm_kernels

        out = _jit_norm_kernels.scale_shift(planes, scale, shift)
    else:
        out = np.multiply(planes, scale[:, None])
        out += shift[:, None]
    if channel_major:
        return wrap_array(out.reshape((c, n) + d.shape[2:]).swapaxes(0, 1))
    return wrap_array(out.reshape(d.shape))


# Inference's per-channel scale and shift, by id of the running variance array: (the key they were
# computed from, scale, shift). The key holds the bytes of all four arrays and eps, so a hit cannot be
# stale whatever wrote the statistics or the affine (a training step, load_state_dict, a write through
# .data or .array, which no version counter sees all of): comparing 4 x C values' bytes costs well
# under a microsecond, recomputing costs five NumPy calls (~5 us, a batch-1 CNN pays it per layer).
# Host arrays only (reading a device array's bytes would wait for the device); at most
# _EVAL_AFFINE_CACHE_SIZE layers, forgotten all at once beyond that.
_EVAL_AFFINE_CACHE: dict[int, tuple[tuple[Any, ...], np.ndarray, np.ndarray]] = {}
_EVAL_AFFINE_CACHE_SIZE = 256


def _eval_affine(
    running_mean: Tensor, running_var: Tensor, weight: Tensor | None, bias: Tensor | None, eps: float, dt: Any
) -> tuple[np.ndarray, np.ndarray]:
    """Inference batch norm's ``scale = weight / sqrt(running_var + eps)`` and ``shift = bias -
    running_mean * scale`` (each in ``dt``), reused while the arrays hold the same bytes."""
    mean, var = running_mean.array, running_var.array
    w = None if weight is None else weight.array
    b = None if bias is None else bias.array
    key = None
    if type(mean) is np.ndarray and type(var) is np.ndarray and type(w) in _HOST and type(b) in _HOST:
        key = (
            eps,
            dt,
            mean.tobytes(),
            var.tobytes(),
            None if w is None else w.tobytes(),
            None if b is None else b.tobytes(),
        )
        entry = _EVAL_AFFINE_CACHE.get(id(var))
        if entry is not None and entry[0] == key:
            return entry[1], entry[2]
    inv_std = 1.0 / np.sqrt(var + scalar(eps, dt))
    scale = inv_std if w is None else w * inv_std
    shift = -mean * scale
    if b is not None:
        shift += b
    if key is not None:
        if len(_EVAL_AFFINE_CACHE) >= _EVAL_AFFINE_CACHE_SIZE:
            _EVAL_AFFINE_CACHE.clear()
        _EVAL_AFFINE_CACHE[id(var)] = (key, scale, shift)
    return scale, shift


_HOST = frozenset((np.ndarray, type(None)))


#: The fewest elements for which the compiled training batch norm runs (``_jit.kernels_at``: below it
#: NumPy, even once a larger call loaded the kernels). Below this it saves under 20 us a call (BatchNorm2d(8) on 1 / 4 /
#: 8 x 28 x 28 images, forward and backward: 73 vs 93 / 127 vs 143 / 184 vs 186 us; one thread, float32,
#: shared two-core AMD EPYC, medians), while starting the kernels costs a process 0.4-1 s.
#: Above it the kernel wins in both layouts, so no layout gate: BatchNorm2d(8), 16 / 32 / 64 x 28 x 28,
#: forward and backward, kernel vs NumPy: 137 vs 235 / 213 vs 396 / 361 vs 756 us on NCHW-contiguous
#: input, 128 vs 225 / 194 vs 379 / 327 vs 735 us on channel-major input (same machine and method).
JIT_BATCH_NORM_MIN_SIZE = 65_536
#: The same gate for layer norm's compiled row kernels: below this they save under 20 us a call
#: (LayerNorm(32) over 40 / 128 / 256 rows, forward and backward: 51 vs 65 / 55 vs 73 / 60 vs 86 us;
#: LayerNorm(128) over 40 rows 55 vs 74 us; same machine and method); above it 1.5-3x NumPy's speed.
JIT_LAYER_NORM_MIN_SIZE = 8192


def _channel_rows(a: np.ndarray) -> np.ndarray:
    """(N, C, ...) ``a`` as a (C, N*...) matrix: a view when ``a`` is channel-major in memory (as a
    convolution's output is), else one transposing copy."""
    return a.swapaxes(0, 1).reshape(a.shape[1], -1)


def _batch_norm_channels(
    x: Tensor,
    running_mean: Tensor | None,
    running_var: Tensor | None,
    weight: Tensor | None,
    bias: Tensor | None,
    momentum: float,
    eps: float,
) -> Tensor:
    """Training-mode batch norm of (N, C, spatial...) input, fused and row-wise.

    Each channel's values are one contiguous row of a (C, M) matrix, so every statistic is a
    reduction along rows and every per-channel factor broadcasts along them; the output keeps the
    channel-major layout (N, C, ...) over (C, N, ...) memory that the layers around it use.
    Backward (two row sums and three passes):
    ``dx = a * (g - sum(g)/M - xhat * sum(g * xhat)/M)`` with ``a = weight / std`` per channel.
    """
    d = x.array
    n_ch = d.shape[1]
    rows = _channel_rows(d)
    count = rows.shape[1]
    # xhat is kept for the backward pass in a leased workspace array (given back with the node).
    xhat = _workspace.take(rows.shape, d.dtype, d)
    lease = _workspace.Lease(xhat)
    # None for device arrays (numba runs on host arrays only) and below the size gate
    jit = _jit.kernels_at(rows.size, JIT_BATCH_NORM_MIN_SIZE, rows)
    if jit is not None:  # the compiled kernel: the same formulas in three passes
        w_arr = None if weight is None else weight.array
        out, mean, var, inv_std = jit.batch_norm_rows(rows, xhat, w_arr, None if bias is None else bias.array, eps)
    else:
        mean = rows.mean(axis=1)
        np.subtract(rows, mean[:, None], out=xhat)
        sq = _workspace.take(xhat.shape, d.dtype, d)
        np.multiply(xhat, xhat, out=sq)
        var = sq.sum(axis=1) / scalar(count, d.dtype)
        _workspace.give(sq)
        inv_std = 1.0 / np.sqrt(var + scalar(eps, d.dtype))
        xhat *= inv_std[:, None]
        # the output must not alias the saved xhat
        out = _workspace.lend(xhat.shape, xhat.dtype, xhat)
        if weight is None:
            np.copyto(out, xhat)
        else:
            np.multiply(xhat, weight.array[:, None], out=out)
        if bias is not None:
            out += bias.array[:, None]
    if running_mean is not None and running_var is not None:
        _update_running(running_mean, running_var, mean, var, count, momentum)
    cm_shape = (n_ch, d.shape[0]) + d.shape[2:]
    parents: tuple[Tensor, ...] = (x,)
    parents += (weight,) if weight is not None else ()
    parents += (bias,) if bias is not None else ()
    bshape = (1, n_ch) + (1,) * (d.ndim - 2)
    axes = (0,) + tuple(range(2, d.ndim))
    # The first eight entries are what the composite rule (double backward) reads.
    generic = (xhat.reshape(cm_shape).swapaxes(0, 1), inv_std.reshape(bshape), weight is not None, bias is not None)
    saved = generic + (bshape, axes, eps, count, xhat, inv_std, lease)
    # channel-major, as a convolution's output: contiguous in torch (noted so: view and stride follow torch's)
    return record_op(note_conv_layout(out.reshape(cm_shape).swapaxes(0, 1)), parents, _batch_norm_channels_vjp, saved)


def _batch_norm_channels_vjp(g, y, args, saved, needs, xp):
    if xp.differentiable:  # double backward: the composite rule, recorded
        return _batch_norm_vjp(g, y, args, saved[:8], needs, xp)
    has_w, has_b, count, xhat, inv_std = saved[2], saved[3], saved[7], saved[8], saved[9]
    x = args[0]
    g_rows = _channel_rows(g)
    jit = _jit.kernels_at(g_rows.size, JIT_BATCH_NORM_MIN_SIZE, g_rows, xhat)  # None for device arrays
    if jit is not None:  # the compiled kernel: the same formulas in two passes
        a = inv_std * args[1].reshape(-1) if has_w else inv_std
        gx_rows, gw, gb = jit.batch_norm_rows_backward(g_rows, xhat, a, needs[0])
        gx = None if gx_rows is None else gx_rows.reshape((x.shape[1], x.shape[0]) + x.shape[2:]).swapaxes(0, 1)
        return _norm_outputs(gx, gw, gb, has_w, has_b, needs)
    gb = g_rows.sum(axis=1)
    tmp = _workspace.take(xhat.shape, xhat.dtype, xhat)
    np.multiply(g_rows, xhat, out=tmp)
    gw = tmp.sum(axis=1)
    gx = None
    if needs[0]:
        a = inv_std * args[1].reshape(-1) if has_w else inv_std
        m = scalar(count, xhat.dtype)
        gx_rows = np.multiply(g_rows, a[:, None], out=_workspace.lend(g_rows.shape, g_rows.dtype, g_rows))
        np.multiply(xhat, (-a * gw / m)[:, None], out=tmp)
        gx_rows += tmp
        gx_rows += (-a * gb / m)[:, None]
        gx = gx_rows.reshape((x.shape[1], x.shape[0]) + x.shape[2:]).swapaxes(0, 1)
    _workspace.give(tmp)
    return _norm_outputs(gx, gw, gb, has_w, has_b, needs)


def _norm_outputs(gx: Any, gw: Any, gb: Any, has_w: bool, has_b: bool, needs: Any) -> tuple[Any, ...]:
    """A norm rule's gradients: ``gx``, then those of the weight and bias where the layer has them."""
    out = [gx]
    if has_w:
        out.append(gw if needs[1] else None)
    if has_b:
        out.append(gb if needs[-1] else None)
    return tuple(out)


# The rule hands ``y`` on to the composite rule only for double backward, which does not read it
# either: an in-place change of BatchNorm's output (ResNet's ``out += identity``) is safe, as in PyTorch.
_batch_norm_channels_vjp.reads_output = False  # type: ignore[attr-defined]


def _update_running(
    running_mean: Tensor, running_var: Tensor, mean: np.ndarray, var: np.ndarray, count: int, momentum: Any
) -> None:
    """The running statistics updated in place on their device (``momentum``: a number, or a 0-d array
    when it is computed from the device's batch counter): no value goes to the host."""
    dtype = running_mean.array.dtype
    m = scalar(momentum, dtype) if isinstance(momentum, (int, float)) else momentum.astype(dtype)
    unbiased = var.reshape(-1) * scalar(count / (count - 1), var.dtype)
    running_mean.array *= 1 - m
    running_mean.array += m * mean.reshape(-1)
    running_var.array *= 1 - m
    running_var.array += m * unbiased


def _affine_node(
    xhat: np.ndarray,
    inv_std: np.ndarray,
    x: Tensor,
    weight: Tensor | None,
    bias: Tensor | None,
    bshape: tuple[int, ...],
    axes: tuple[int, ...],
    eps: float,
    count: int,
    vjp: Any,
) -> Tensor:
    out = xhat if weight is None else xhat * weight.array.reshape(bshape)
    if bias is not None:
        out = out + bias.array.reshape(bshape)
    elif weight is None:
        out = xhat.copy()  # the output must not alias the saved xhat
    parents: tuple[Tensor, ...] = (x,)
    if weight is not None:
        parents += (weight,)
    if bias is not None:
        parents += (bias,)
    saved = (xhat, inv_std, weight is not None, bias is not None, bshape, axes, eps, count)
    return record_op(out, parents, vjp, saved)


def _normalized_grads(g, x, w, saved, xp, stat_axes, param_axes, param_shape):
    """Shared rule of batch and layer norm: xhat = (x - mean) / sqrt(var + eps) over ``stat_axes``,
    y = xhat * w + b with w, b of ``param_shape`` broadcast along ``param_axes``.

    dx = inv_std * (gh - mean(gh) - xhat * mean(gh * xhat)), gh = g * w (means over stat_axes).
    """
    xhat, inv_std, _, _, bshape, _, eps, count = saved
    if xp.differentiable:
        # Recompute the statistics from x with differentiable ops (double backward).
        mean = x.mean(axis=stat_axes, keepdims=True)
        centered = x - mean
        var = (centered * centered).mean(axis=stat_axes, keepdims=True)
        inv_std = (var + eps) ** -0.5
        xhat = centered * inv_std
    gb = g.sum(axis=param_axes)
    gw = (g * xhat).sum(axis=param_axes)
    gh = g if w is None else g * xp.reshape(w, bshape)
    mean_gh = gh.mean(axis=stat_axes, keepdims=True)
    mean_ghx = (gh * xhat).mean(axis=stat_axes, keepdims=True)
    gx = (gh - mean_gh - xhat * mean_ghx) * inv_std
    return gx, xp.reshape(gw, param_shape), xp.reshape(gb, param_shape)


def _batch_norm_vjp(g, y, args, saved, needs, xp):
    has_w, has_b, axes = saved[2], saved[3], saved[5]
    x = args[0]
    w = args[1] if has_w else None
    n_ch = x.shape[1]
    gx, gw, gb = _normalized_grads(g, x, w, saved, xp, axes, axes, (n_ch,))
    return _norm_outputs(gx if needs[0] else None, gw, gb, has_w, has_b, needs)


def _affine_parameters(layer: Module, shape: tuple[int, ...], affine: bool, bias: bool, dt: Any) -> None:
    """weight = 1 and bias = 0 of ``shape`` when ``affine``; PyTorch's ``bias=False`` drops the bias
    (registered as None: no state_dict entry, as in PyTorch's layout)."""
    if affine:
        layer.weight = Parameter(ones(shape, dtype=dt))
        if bias:
            layer.bias = Parameter(zeros(shape, dtype=dt))
        else:
            layer.register_parameter("bias", None)
    else:
        layer.register_parameter("weight", None)
        layer.register_parameter("bias", None)


def _reset_affine(layer: Module) -> None:
    """PyTorch's reset of a norm layer's weight (1) and bias (0), written into the Parameters' own
    arrays: an optimizer built before (its flat buffers are views of them) keeps updating them."""
    if layer.weight is not None:
        init.ones_(layer.weight)
    if layer.bias is not None:
        init.zeros_(layer.bias)


def _check_pruned_channels(layer: Module, input: Tensor, where: str, constructed: int) -> None:
    """For an input whose channels differ from the constructor's count: accepted, as in PyTorch, when
    the layer's per-channel tensors have one entry per input channel (model surgery that slices them,
    channel pruning, leaves the count as constructed); else the error names the sizes that disagree."""
    c = input.shape[1]
    sizes = {
        key: t.shape[0]
        for key in ("running_mean", "running_var", "weight", "bias")
        if (t := getattr(layer, key, None)) is not None
    }
    if all(size == c for size in sizes.values()):
        return
    now = set(sizes.values())
    if now == {constructed}:
        expected = str(constructed)
    elif len(now) == 1:
        expected = f"{now.pop()} (the size of its {', '.join(sizes)}; constructed with {constructed})"
    else:
        expected = "one entry per channel in each of its " + ", ".join(f"{k} ({v})" for k, v in sizes.items())
    raise InvalidValueError(
        f"{where}: input has {c} channels in dim 1 (shape {tuple(input.shape)}), expected {expected}"
    )


class _BatchNorm(Module):
    _expected_dims: tuple[int, ...] = ()
    weight: Parameter | None
    bias: Parameter | None
    _version = 2  # PyTorch's state format version (with num_batches_tracked), saved in state_dict()._metadata

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        device: Any = None,
        dtype: Any = None,
        *,
        bias: bool = True,
    ) -> None:
        super().__init__()  # device, dtype: applied by Module's constructor wrapper once the layer is built
        if isinstance(num_features, bool) or not isinstance(num_features, (int, np.integer)) or num_features <= 0:
            raise ArgumentError(f"{type(self).__name__}: num_features must be a positive integer, got {num_features!r}")
        if momentum is not None and not 0.0 <= momentum <= 1.0:
            raise ArgumentError(f"{type(self).__name__}: momentum must be in [0, 1] or None, got {momentum}")
        if not eps > 0:
            raise ArgumentError(f"{type(self).__name__}: eps must be positive, got {eps}")
        self.num_features = int(num_features)
        self.eps = float(eps)  # host: a Python number
        self.momentum = momentum
        self.affine = affine
        self.track_running_stats = track_running_stats
        dt = backend.get_default_dtype()
        _affine_parameters(self, (self.num_features,), affine, bias, dt)
        if track_running_stats:
            self.register_buffer("running_mean", zeros(self.num_features, dtype=dt))
            self.register_buffer("running_var", ones(self.num_features, dtype=dt))
            self.register_buffer("num_batches_tracked", zeros((), dtype=np.int64))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)
        self.reset_parameters()  # as PyTorch's constructor: a subclass's override runs too

    running_mean: Tensor | None
    running_var: Tensor | None
    num_batches_tracked: Tensor | None

    def reset_running_stats(self) -> None:
        if self.track_running_stats:
            assert self.running_mean is not None and self.running_var is not None
            assert self.num_batches_tracked is not None
            self.running_mean.array[...] = 0
            self.running_var.array[...] = 1
            self.num_batches_tracked.array[...] = 0

    def reset_parameters(self) -> None:
        """PyTorch's: the running statistics reset (mean 0, variance 1, no batches), weight = 1 and bias = 0,
        in place (the same Parameter and buffer objects)."""
        self.reset_running_stats()
        _reset_affine(self)

    def _check_input_dim(self, input: Tensor) -> None:
        """torch's hook, run by ``forward``: refuses an input whose number of dims this layer does not
        take (2-D or 3-D for BatchNorm1d, 4-D for 2d, 5-D for 3d). Subclasses override it (a BatchNorm2d
        over time steps taking 5-D input) or call it from their own ``forward``."""
        if input.ndim not in self._expected_dims:
            dims = " or ".join(f"{d}-D" for d in self._expected_dims)
            raise ArgumentError(
                f"{type(self).__name__}({self.num_features}): expected {dims} input (N, C, ...), got shape "
                f"{tuple(input.shape)} ({input.ndim}-D input)"
            )

    def forward(self, input: Tensor) -> Tensor:
        name = type(self).__name__
        if not isinstance(input, Tensor):
            raise ArgumentTypeError(f"{name}: expected a Tensor input, got {type(input).__name__}")
        self._check_input_dim(input)
        if input.shape[1] != self.num_features:
            _check_pruned_channels(self, input, f"{name}({self.num_features})", self.num_features)
        momentum: Any = 0.0 if self.momentum is None else self.momentum
        update = self.training and self.track_running_stats
        if update:
            assert self.num_batches_tracked is not None
            self.num_batches_tracked.array += 1
            if self.momentum is None:  # cumulative moving average, as in PyTorch
                momentum = 1.0 / self.num_batches_tracked.array  # a 0-d array: no host sync
        use_batch = self.training or not self.track_running_stats
        return batch_norm(
            input,
            self.running_mean if (update or not use_batch) else None,
            self.running_var if (update or not use_batch) else None,
            self.weight,
            self.bias,
            use_batch,
            momentum,
            self.eps,
        )

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
            f"bias={self.bias is not None}, track_running_stats={self.track_running_stats}"
        )


BatchNormBase = _BatchNorm  # the batch-norm base's public name (optim.swa_utils.update_bn finds the layers by it)


class BatchNorm1d(_BatchNorm):
    """Batch normalization of (N, C) or (N, C, L) input over all dims but C.

    weight (C,) = 1, bias (C,) = 0, running_mean (C,) = 0, running_var (C,) = 1.

    Example:
        >>> import downslope as ds
        >>> bn = ds.nn.BatchNorm1d(3)
        >>> y = bn(ds.randn(16, 3))
        >>> bool(abs(y.detach().numpy().mean(0)).max() < 1e-5)
        True
    """

    _expected_dims = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch normalization of (N, C, H, W) input over N, H and W for each channel C.

    Example:
        >>> import downslope as ds
        >>> ds.nn.BatchNorm2d(4)(ds.randn(2, 4, 5, 5)).shape
        downslope.Size([2, 4, 5, 5])
    """

    _expected_dims = (4,)


class BatchNorm3d(_BatchNorm):
    """Batch normalization of (N, C, D, H, W) input over N, D, H and W for each channel C.

    Example:
        >>> import downslope as ds
        >>> ds.nn.BatchNorm3d(2)(ds.randn(2, 2, 3, 3, 3)).shape
        downslope.Size([2, 2, 3, 3, 3])
    """

    _expected_dims = (5,)


# ---------------------------------------------------------------------- layer norm
def layer_norm(
    input: Tensor,
    normalized_shape: Sequence[int] | int,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    eps: float = 1e-5,
) -> Tensor:
    """Normalize over the last ``len(normalized_shape)`` dims (biased variance), then scale and shift.

    Example:
        >>> import downslope as ds
        >>> import downslope.nn.functional as F
        >>> y = F.layer_norm(ds.tensor([[1.0, 3.0]]), (2,))
        >>> [round(v, 3) for v in y.numpy().ravel().tolist()]
        [-1.0, 1.0]
    """
    x = input  # torch's parameter name (F.layer_norm(input=...))
    if normalized_shape.__class__ is tuple and isinstance(x, Tensor):
        # The usual call (LayerNorm's forward: a tuple shape, a host float32/float64 input whose last
        # dims match it, weight and bias of that shape and dtype or None) goes straight to the row
        # kernel, without the checks below that it passes anyway: a small model's forward makes
        # many such calls (token by token generation), each on little data.
        d, k = x.array, len(normalized_shape)
        if (
            type(d) is np.ndarray  # host: the row kernel's own condition below
            and d.dtype in _BLAS_FLOATS
            and d.size
            and k
            and d.ndim >= k
            and d.shape[d.ndim - k :] == normalized_shape
            and (weight is None or (isinstance(weight, Tensor) and _fits(weight.array, normalized_shape, d.dtype)))
            and (bias is None or (isinstance(bias, Tensor) and _fits(bias.array, normalized_shape, d.dtype)))
        ):
            count = math.prod(normalized_shape)
            if d.size < JIT_LAYER_NORM_MIN_SIZE and not (
                is_grad_enabled()
                and (
                    x.requires_grad
                    or (weight is not None and weight.requires_grad)
                    or (bias is not None and bias.requires_grad)
                )
            ):
                return _layer_norm_small(x, weight, bias, eps, count)
            axes = tuple(range(d.ndim - k, d.ndim))
            return _layer_norm_rows(x, weight, bias, normalized_shape, axes, eps, count)
    if not isinstance(x, Tensor):
        raise ArgumentTypeError(f"layer_norm: expected a Tensor, got {type(x).__name__}")
    shape = (int(normalized_shape),) if isinstance(normalized_shape, (int, np.integer)) else tuple(normalized_shape)
    k = len(shape)
    if k == 0 or x.shape[x.ndim - k :] != shape or x.ndim < k:
        raise InvalidValueError(
            f"layer_norm: normalized_shape {shape} must match the last {k} dim(s) of the input, got input shape {tuple(x.shape)}"
        )
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and t.shape != shape:
            raise ArgumentError(f"layer_norm: {name} must have shape {shape}, got {tuple(t.shape)}")
    _check_dtypes("layer_norm", x, {"weight": weight, "bias": bias})
    if x.array.dtype == _HALF:  # in float32, rounded once, as torch
        return ops.astype(layer_norm(ops.astype(x, np.float32), shape, _widen(weight), _widen(bias), eps), _HALF)
    axes = tuple(range(x.ndim - k, x.ndim))
    d = x.array
    count = math.prod(shape)
    if type(d) is np.ndarray and d.dtype in _BLAS_FLOATS and d.size:
        return _layer_norm_rows(x, weight, bias, shape, axes, eps, count)
    mean = d.mean(axis=axes, keepdims=True)
    xhat = d - mean
    # the mean is rounded to d's precision: far from zero (1e4 + noise of 1e-2 in float32) that
    # rounding shifts every deviation; their own mean measures the shift, and it is taken off
    xhat -= xhat.mean(axis=axes, keepdims=True)
    var = np.mean(np.square(xhat), axis=axes, keepdims=True)
    inv_std = 1.0 / np.sqrt(var + scalar(eps, d.dtype))
    xhat *= inv_std
    bshape = shape  # weight/bias broadcast over the leading dims as they are
    return _affine_node(xhat, inv_std, x, weight, bias, bshape, axes, eps, count, _layer_norm_vjp)


def _fits(a: Any, shape: tuple[int, ...], dtype: np.dtype) -> bool:
    """Whether the affine parameter array ``a`` has ``shape`` and ``dtype`` (what layer_norm checks)."""
    return a.shape == shape and a.dtype == dtype


# Host dtypes whose row reductions go through BLAS (a matrix-vector product instead of NumPy's
# reduction along a short last axis, which costs ~10x more at 16 to 256 wide).
_BLAS_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


# What _row_stats needs for rows of n values of a dtype, by (n, dtype): the (n,) vector of 1/n it
# averages rows with, 1/n, 0 and 1 as 0-d arrays of the dtype (an operand a ufunc takes without
# converting a scalar on every call, as it must a NumPy scalar: a fixed cost as large as the
# arithmetic on a few thousand values) and twice the dtype's eps; kept, as a small model's forward
# normalizes rows of the same width many times (token by token generation).
_AVERAGING: dict[tuple[int, np.dtype], tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]] = {}
# eps as a 0-d array of the dtype, by (eps, dtype) (the same reason).
_EPS: dict[tuple[float, np.dtype], np.ndarray] = {}


def _row_stats(rows: np.ndarray, eps: float) -> tuple[np.ndarray, np.ndarray]:
    """(xhat, inv_std) of the (R, n) host matrix ``rows``: each row centred and scaled to unit
    (biased) variance, in a fresh array, and 1/sqrt(var + eps) per row.

    Two-pass: the mean is rounded to the data's precision, so far from zero (1e4 + noise of 1e-2 in
    float32) the centred rows are off by a shift ``c`` (their own mean); the variance takes it off
    exactly (mean((xhat - c)^2) = mean(xhat^2) - c^2), and the rows themselves only when the
    shift matters at the output's precision (a few ulps of 1), saving a pass on ordinary data.
    """
    n = rows.shape[1]
    dt = rows.dtype
    kept = _AVERAGING.get((n, dt))
    if kept is None:
        values = (np.full(n, 1.0 / n), 1.0 / n, 0, 1)  # host: host-only BLAS path (the caller checks)
        avg, inv_n, zero, one = (np.array(v, dtype=dt) for v in values)  # host: as above
        for c in (avg, inv_n, zero, one):
            c.flags.writeable = False  # only ever read (a matrix-vector product's vector, ufunc operands)
        kept = (avg, inv_n, zero, one, 2 * np.finfo(dt).eps)
        if len(_AVERAGING) < 64:
            _AVERAGING[(n, dt)] = kept
    avg, inv_n, zero, one, tiny = kept
    eps_dt = _EPS.get((eps, dt))
    if eps_dt is None:
        eps_dt = np.array(scalar(eps, dt))  # host: as above
        eps_dt.flags.writeable = False
        if len(_EPS) < 64:
            _EPS[(eps, dt)] = eps_dt
    xhat = rows - (rows @ avg)[:, None]
    shift = xhat @ avg
    var = np.einsum("ij,ij->i", xhat, xhat)
    np.multiply(var, inv_n, out=var)
    np.subtract(var, np.multiply(shift, shift), out=var)
    np.maximum(var, zero, out=var)  # a constant row: rounding may leave -0.0 or a hair below
    np.add(var, eps_dt, out=var)
    inv_std = np.sqrt(var, out=var)
    np.divide(one, inv_std, out=inv_std)
    scaled = np.multiply(shift, inv_std)
    if np.maximum.reduce(np.abs(scaled, out=scaled)) > tiny:  # (ndarray.max, without its Python wrapper)
        xhat -= shift[:, None]
    xhat *= inv_std[:, None]
    return xhat, inv_std


def _layer_norm_rows(
    x: Tensor,
    weight: Tensor | None,
    bias: Tensor | None,
    shape: tuple[int, ...],
    axes: tuple[int, ...],
    eps: float,
    count: int,
) -> Tensor:
    """Layer norm of a host float array as an (R, n) matrix: the compiled kernel when it applies,
    else statistics as matrix-vector products and the affine map in place on a fresh output (on
    the normalized rows themselves when no gradient is recorded)."""
    rows = x.array.reshape(-1, count)
    parents: tuple[Tensor, ...] = (x,)
    parents += (weight,) if weight is not None else ()
    parents += (bias,) if bias is not None else ()
    recording = is_grad_enabled() and any(p.requires_grad for p in parents)
    w_rows = None if weight is None else weight.array.reshape(1, -1)
    b_rows = None if bias is None else bias.array.reshape(1, -1)
    same = _same_dtype(rows, w_rows, b_rows)
    jit = _jit.kernels_at(rows.size, JIT_LAYER_NORM_MIN_SIZE, rows, w_rows, b_rows) if same else None
    if jit is not None:
        from . import _jit_norm_kernels

        rows = np.ascontiguousarray(rows)  # host: the compiled path takes host arrays only
        out, xhat, inv_std = _jit_norm_kernels.norm_rows(rows, w_rows, b_rows, eps, recording)
    else:
        xhat, inv_std = _row_stats(rows, eps)
        if not recording:
            out = xhat
            if w_rows is not None:
                out *= w_rows
        elif w_rows is None:
            out = xhat.copy()  # the output must not alias the saved xhat
        else:
            out = np.multiply(xhat, w_rows)
        if b_rows is not None:
            out += b_rows
    # the first eight entries are what the composite rule (double backward) reads
    saved = (None, None, weight is not None, bias is not None, shape, axes, eps, count, xhat, inv_std)
    return record_op(out.reshape(x.shape), parents, _layer_norm_rows_vjp, saved)


def _layer_norm_small(x: Tensor, weight: Tensor | None, bias: Tensor | None, eps: float, count: int) -> Tensor:
    """:func:`_layer_norm_rows` where nothing is recorded and the rows are too few for the compiled
    kernel (JIT_LAYER_NORM_MIN_SIZE): the same NumPy steps, so the same bits, without the bookkeeping
    a recorded node needs (a small model's forward makes many such calls: token by token generation).
    The caller checked what layer_norm's short path checks (host float arrays, matching shapes and
    dtypes)."""
    d = x.array
    xhat = _row_stats(d.reshape(-1, count), eps)[0]
    if weight is not None:
        xhat *= weight.array.reshape(1, -1)
    if bias is not None:
        xhat += bias.array.reshape(1, -1)
    parents: tuple[Tensor, ...] = (x,) if weight is None else (x, weight)
    if bias is not None:
        parents += (bias,)
    return record_op(xhat.reshape(d.shape), parents, _layer_norm_rows_vjp, None)


def _same_dtype(a: Any, *others: Any) -> bool:
    """Whether every one of ``others`` (None skipped) is C-contiguous with ``a``'s dtype: what the
    compiled kernels take (mixed dtypes take the NumPy path, which promotes as it does)."""
    return all(o is None or (o.dtype == a.dtype and o.flags.c_contiguous) for o in others)


def _layer_norm_rows_vjp(g, y, args, saved, needs, xp):
    """dx = inv_std * (gh - mean(gh) - xhat * mean(gh * xhat)) with gh = g * w; every row and
    column sum a matrix-vector product (or the compiled kernel, in two passes)."""
    if xp.differentiable:  # double backward: the composite rule, recorded (it recomputes xhat)
        return _layer_norm_vjp(g, y, args, saved[:8], needs, xp)
    has_w, has_b, shape, count, xhat, inv_std = saved[2], saved[3], saved[4], saved[7], saved[8], saved[9]
    g2 = g.reshape(-1, count)
    w_rows = args[1].reshape(1, -1) if has_w else None
    need_p = (has_w and needs[1]) or (has_b and needs[-1])
    same = _same_dtype(xhat, w_rows) and g2.dtype == xhat.dtype
    jit = _jit.kernels_at(g2.size, JIT_LAYER_NORM_MIN_SIZE, g2, xhat, w_rows) if same else None
    if jit is not None:
        from . import _jit_norm_kernels

        g2 = np.ascontiguousarray(g2)  # host: the compiled path takes host arrays only
        gx, gw, gb = _jit_norm_kernels.norm_rows_backward(g2, xhat, inv_std, w_rows, needs[0], need_p)
        out: list[Any] = [None if gx is None else gx.reshape(args[0].shape)]
        if has_w:
            out.append(gw.astype(g2.dtype).reshape(shape) if needs[1] else None)
        if has_b:
            out.append(gb.astype(g2.dtype).reshape(shape) if needs[-1] else None)
        return tuple(out)
    ones_r = np.ones(g2.shape[0], dtype=g2.dtype)  # host: the forward took this path for host arrays only
    out = [None]
    gxh = np.multiply(g2, xhat) if (has_w or needs[0]) else None
    if has_w:
        out.append((ones_r @ gxh).reshape(shape) if needs[1] else None)
    if has_b:
        out.append((ones_r @ g2).reshape(shape) if needs[-1] else None)
    if needs[0]:
        assert gxh is not None
        n_inv = scalar(1.0 / count, g2.dtype)
        if w_rows is not None:
            wn = w_rows.reshape(-1) * n_inv
            gx = np.multiply(g2, w_rows)
        else:
            wn = np.full(count, n_inv, dtype=g2.dtype)  # host: as ones_r
            gx = g2.copy()
        mean_gh = g2 @ wn
        mean_ghx = gxh @ wn
        mean_ghx *= inv_std
        mean_gh *= inv_std
        gx *= inv_std[:, None]
        np.multiply(xhat, mean_ghx[:, None], out=gxh)
        gx -= gxh
        gx -= mean_gh[:, None]
        out[0] = gx.reshape(args[0].shape)
    return tuple(out)


# The rule reads the saved normalized rows, never the output: in-place changes of it are safe.
_layer_norm_rows_vjp.reads_output = False  # type: ignore[attr-defined]


def _layer_norm_vjp(g, y, args, saved, needs, xp):
    has_w, has_b, bshape, axes = saved[2], saved[3], saved[4], saved[5]
    x = args[0]
    w = args[1] if has_w else None
    lead_axes = tuple(range(x.ndim - len(bshape)))
    gx, gw, gb = _normalized_grads(g, x, w, saved, xp, axes, lead_axes, bshape)
    return _norm_outputs(gx if needs[0] else None, gw, gb, has_w, has_b, needs)


class LayerNorm(Module):
    """Normalize each sample over its last dims ``normalized_shape``; learnable elementwise
    weight (= 1) and bias (= 0) of that shape when ``elementwise_affine``.

    Example:
        >>> import downslope as ds
        >>> ln = ds.nn.LayerNorm(4)
        >>> y = ln(ds.randn(3, 4))
        >>> bool(abs(y.detach().numpy().mean(-1)).max() < 1e-5)
        True
    """

    def __init__(
        self,
        normalized_shape: Sequence[int] | int,
        eps: float = 1e-5,
        elementwise_affine: bool = True,
        bias: bool = True,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()  # device, dtype: applied by Module's constructor wrapper once the layer is built
        shape = (int(normalized_shape),) if isinstance(normalized_shape, (int, np.integer)) else tuple(normalized_shape)
        if not shape or any(s <= 0 for s in shape):
            raise ArgumentError(f"LayerNorm: normalized_shape must be positive sizes, got {normalized_shape!r}")
        self.normalized_shape = shape
        self.eps = float(eps)  # host: a Python number
        self.elementwise_affine = elementwise_affine
        dt = backend.get_default_dtype()
        if elementwise_affine:
            self.weight: Parameter | None = Parameter(ones(shape, dtype=dt))
            if bias:
                self.bias: Parameter | None = Parameter(zeros(shape, dtype=dt))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        self.reset_parameters()  # as PyTorch's constructor: a subclass's override runs too

    def reset_parameters(self) -> None:
        """PyTorch's: weight = 1 and bias = 0, in place (the same Parameter objects)."""
        _reset_affine(self)

    def forward(self, input: Tensor) -> Tensor:
        return layer_norm(input, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (
            f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}, "
            f"bias={self.bias is not None}"
        )


# ---------------------------------------------------------------------- group and instance norm
def group_norm(
    input: Tensor, num_groups: int, weight: Tensor | None = None, bias: Tensor | None = None, eps: float = 1e-5
) -> Tensor:
    """Split the channels (dim 1) of ``x`` (N, C, ...) into ``num_groups`` groups and normalize each
    sample's group over its channels and positions (biased variance), then scale and shift per channel.

    Built from :func:`layer_norm` on the (N, groups, rest) view, so it shares that fused gradient.

    Example:
        >>> import downslope as ds
        >>> import downslope.nn.functional as F
        >>> y = F.group_norm(ds.tensor([[[1.0], [3.0], [5.0], [9.0]]]), 2)
        >>> [round(v, 3) for v in y.numpy().ravel().tolist()]
        [-1.0, 1.0, -1.0, 1.0]
    """
    x = input  # torch's parameter name (F.group_norm(input=...))
    if not isinstance(x, Tensor):
        raise ArgumentTypeError(f"group_norm: expected a Tensor, got {type(x).__name__}")
    if x.ndim < 2 or isinstance(num_groups, bool) or not isinstance(num_groups, _INTEGERS) or num_groups < 1:
        raise ArgumentError(
            f"group_norm: expected (N, C, ...) input and num_groups >= 1, got {tuple(x.shape)}, {num_groups!r}"
        )
    _check_dtypes("group_norm", x, {"weight": weight, "bias": bias})
    n, c = x.shape[0], x.shape[1]
    if c % num_groups:
        raise ArgumentError(f"group_norm: {c} channels cannot be split into {num_groups} groups")
    # torch's check (functional.group_norm's _verify_batch_size on [N * C // G, G, *spatial]): it refuses
    # only when N * C // G times the spatial sizes is 1, where every group holds one value (zeros out)
    if (n * c // num_groups) * math.prod(x.shape[2:]) == 1:
        raise ArgumentError(
            "group_norm: expected more than 1 value per channel when training, got input size "
            f"{[n * c // num_groups, num_groups, *x.shape[2:]]} (input of shape {tuple(x.shape)} in {num_groups} "
            "groups: each group holds one value, so its normalized output would be all zeros)"
        )
    if x.array.dtype == _HALF:  # in float32, rounded once, as torch
        return ops.astype(group_norm(ops.astype(x, np.float32), num_groups, _widen(weight), _widen(bias), eps), _HALF)
    fused = _group_norm_fused(x, num_groups, weight, bias, eps)
    if fused is not None:
        return fused
    # the group size spelled out: -1 cannot be inferred for an empty batch (N = 0)
    grouped = ops.reshape(x, (n, num_groups, (c // num_groups) * int(np.prod(x.shape[2:]))))
    y = ops.reshape(layer_norm(grouped, (grouped.shape[-1],), None, None, eps), x.shape)
    per_channel = (c,) + (1,) * (x.ndim - 2)
    if weight is not None:
        y = y * ops.reshape(weight, per_channel)
    if bias is not None:
        y = y + ops.reshape(bias, per_channel)
    return y


def _group_norm_fused(x: Tensor, groups: int, weight: Tensor | None, bias: Tensor | None, eps: float) -> Tensor | None:
    """Group norm as one op on the compiled kernels (host float32/float64 input, parameters of its
    dtype), or None where they do not apply (the caller composes it from layer norm). Nothing but
    three numbers per row is kept: the backward pass recomputes the normalized input from ``x``."""
    d = x.array
    if type(d) is not np.ndarray or d.dtype not in _BLAS_FLOATS or not d.size:
        return None
    w = None if weight is None else weight.array
    b = None if bias is None else bias.array
    if not _same_dtype(d, w, b) or _jit.kernels(d, w, b) is None:
        return None
    from . import _jit_norm_kernels

    n, c = d.shape[0], d.shape[1]
    rows = np.ascontiguousarray(d.reshape(n * groups, c // groups, -1))  # host: the compiled path
    out, mean, shift, inv_std = _jit_norm_kernels.group_rows(rows, groups, w, b, eps)
    parents: tuple[Tensor, ...] = (x,)
    parents += (weight,) if weight is not None else ()
    parents += (bias,) if bias is not None else ()
    saved = (groups, eps, weight is not None, bias is not None, mean, shift, inv_std)
    return record_op(out.reshape(d.shape), parents, _group_norm_fused_vjp, saved)


def _group_norm_fused_vjp(g, y, args, saved, needs, xp):
    groups, eps, has_w, has_b, mean, shift, inv_std = saved
    x = args[0]
    n, c = x.shape[0], x.shape[1]
    axes = (0,) + tuple(range(2, x.ndim))
    if xp.differentiable:  # double backward: the same rule from recorded ops (the statistics recomputed)
        size = x.numel() // (n * groups)
        xr = xp.reshape(x, (n, groups, size))
        centred = xr - xr.mean(axis=2, keepdims=True)
        inv = ((centred * centred).mean(axis=2, keepdims=True) + eps) ** -0.5
        xhat = centred * inv
        gh = g * xp.reshape(args[1], (c,) + (1,) * (x.ndim - 2)) if has_w else g
        ghr = xp.reshape(gh, (n, groups, size))
        gxr = (ghr - ghr.mean(axis=2, keepdims=True) - xhat * (ghr * xhat).mean(axis=2, keepdims=True)) * inv
        gx = xp.reshape(gxr, x.shape)
        gw = (g * xp.reshape(xhat, x.shape)).sum(axis=axes) if has_w and needs[1] else None
        gb = g.sum(axis=axes) if has_b and needs[-1] else None
    else:
        from . import _jit_norm_kernels

        shape3 = (n * groups, c // groups, -1)
        g3 = np.ascontiguousarray(g.reshape(shape3), dtype=x.dtype)  # host: the forward took the compiled path
        x3 = np.ascontiguousarray(x.reshape(shape3))  # host: as g3
        need_p = (has_w and needs[1]) or (has_b and needs[-1])
        w = args[1] if has_w else None
        gx3, gw64, gb64 = _jit_norm_kernels.group_rows_backward(
            g3, x3, groups, mean, shift, inv_std, w, needs[0], need_p
        )
        gx = None if gx3 is None else gx3.reshape(x.shape)
        gw, gb = gw64.astype(x.dtype), gb64.astype(x.dtype)
    return _norm_outputs(gx if needs[0] else None, gw, gb, has_w, has_b, needs)


# The rule reads the input and the saved statistics, never the output: in-place changes of it are safe.
_group_norm_fused_vjp.reads_output = False  # type: ignore[attr-defined]


class GroupNorm(Module):
    """Normalize groups of channels per sample (see :func:`group_norm`); learnable per-channel
    weight (= 1) and bias (= 0) when ``affine``.

    Example:
        >>> import downslope as ds
        >>> ds.nn.GroupNorm(2, 4)(ds.randn(3, 4, 5)).shape
        downslope.Size([3, 4, 5])
    """

    weight: Parameter | None
    bias: Parameter | None

    def __init__(
        self,
        num_groups: int,
        num_channels: int,
        eps: float = 1e-5,
        affine: bool = True,
        device: Any = None,
        dtype: Any = None,
        *,
        bias: bool = True,
    ) -> None:
        super().__init__()  # device, dtype: applied by Module's constructor wrapper once the layer is built
        if num_groups < 1 or num_channels % num_groups:
            raise ArgumentError(f"GroupNorm: num_channels {num_channels} must be divisible by num_groups {num_groups}")
        self.num_groups = num_groups
        self.num_channels = num_channels
        self.eps = float(eps)  # host: a Python number
        self.affine = affine
        dt = backend.get_default_dtype()
        _affine_parameters(self, (num_channels,), affine, bias, dt)
        self.reset_parameters()  # as PyTorch's constructor: a subclass's override runs too

    def reset_parameters(self) -> None:
        """PyTorch's: weight = 1 and bias = 0, in place (the same Parameter objects)."""
        _reset_affine(self)

    def forward(self, input: Tensor) -> Tensor:
        if input.ndim < 2:
            raise ArgumentError(
                f"GroupNorm: expected input (N, {self.num_channels}, ...), got shape {tuple(input.shape)}"
            )
        if input.shape[1] != self.num_channels:
            where = f"GroupNorm({self.num_groups}, {self.num_channels})"
            _check_pruned_channels(self, input, where, self.num_channels)
        return group_norm(input, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (
            f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}, "
            f"bias={self.bias is not None}"
        )


def instance_norm(
    input: Tensor,
    running_mean: Tensor | None = None,
    running_var: Tensor | None = None,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    use_input_stats: bool = True,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> Tensor:
    """Normalize every channel of every sample over its positions: :func:`group_norm` with one
    group per channel.

    With ``use_input_stats`` (the default) each sample uses its own statistics, and running
    statistics, when given, move toward the batch's average of them in place:
    ``running = (1 - momentum) * running + momentum * mean over N of the per-sample statistic``
    (the unbiased variance), as PyTorch. ``use_input_stats=False`` normalizes with the running
    statistics instead (batch norm in eval mode).

    Example:
        >>> import downslope as ds
        >>> import downslope.nn.functional as F
        >>> mean, var = ds.zeros(1), ds.ones(1)
        >>> y = F.instance_norm(ds.tensor([[[1.0, 3.0]]]), mean, var, momentum=0.5)
        >>> y.round(decimals=3).tolist(), mean.tolist(), var.tolist()
        ([[[-1.0, 1.0]]], [1.0], [1.5])
    """
    x = input  # torch's parameter name (F.instance_norm(input=...))
    if not isinstance(x, Tensor) or x.ndim < 3:
        raise ArgumentError(
            f"instance_norm: expected a (N, C, ...) Tensor with positions, got {getattr(x, 'shape', x)}"
        )
    n_ch = x.shape[1]
    for name, t in (("running_mean", running_mean), ("running_var", running_var)):
        if t is not None and (not isinstance(t, Tensor) or t.shape != (n_ch,)):
            raise ArgumentError(
                f"instance_norm: {name} must be a Tensor of shape ({n_ch},) for input {tuple(x.shape)}, "
                f"got {getattr(t, 'shape', type(t).__name__)}"
            )
    # the running statistics are checked by batch_norm when they normalize; updated from the input's
    # statistics they may differ in dtype (torch takes float64 input with float32 statistics there)
    _check_dtypes("instance_norm", x, {"weight": weight, "bias": bias})
    if not use_input_stats:
        if running_mean is None or running_var is None:
            raise ArgumentError(
                "instance_norm: expected running_mean and running_var to be defined when use_input_stats is False"
            )
        if x.array.dtype != _HALF:
            # torch takes statistics of another floating dtype here (only read: cast copies serve)
            running_mean, running_var = (
                t if t.array.dtype == x.array.dtype else ops.astype(t.detach(), x.array.dtype)
                for t in (running_mean, running_var)
            )
        return batch_norm(x, running_mean, running_var, weight, bias, False, momentum, eps)
    _check_spatial(x, "instance_norm")
    out = _instance_norm_without_eps(x, weight, bias) if eps == 0 else group_norm(x, n_ch, weight, bias, eps)
    if (running_mean is not None or running_var is not None) and x.shape[0] > 0:
        _update_instance_running(x, running_mean, running_var, momentum)
    return out


def _instance_norm_without_eps(x: Tensor, weight: Tensor | None, bias: Tensor | None) -> Tensor:
    """Instance norm with ``eps=0``, as torch's kernel (its batch norm's) computes it: 1/std is taken
    as 0 where a plane's variance is 0, so a constant plane normalizes to 0 with gradient 0 instead of
    0/0. Composed of recorded ops (``eps=0`` is rare); the ``where`` on both sides keeps the unused
    1/sqrt(0) out of the gradient too."""
    wide = ops.astype(x, np.float32) if x.array.dtype == _HALF else x
    dims = tuple(range(2, x.ndim))
    centred = wide - wide.mean(dim=dims, keepdim=True)
    var = (centred * centred).mean(dim=dims, keepdim=True)
    flat = var == 0
    inv_std = ops.where(flat, 0.0, ops.rsqrt(ops.where(flat, 1.0, var)))
    out = centred * inv_std
    pshape = (x.shape[1],) + (1,) * (x.ndim - 2)
    if weight is not None:
        out = out * ops.reshape(_widen(weight) if x.array.dtype == _HALF else weight, pshape)
    if bias is not None:
        out = out + ops.reshape(_widen(bias) if x.array.dtype == _HALF else bias, pshape)
    return ops.astype(out, _HALF) if x.array.dtype == _HALF else out


def _update_instance_running(x: Tensor, running_mean: Tensor | None, running_var: Tensor | None, momentum: Any) -> None:
    """PyTorch's update: each (sample, channel) moves its copy of the running statistics (the
    unbiased variance over the positions), and the copies are averaged over the samples."""
    a = x.array
    if a.dtype == _HALF:
        a = a.astype(np.float32)
    axes = tuple(range(2, a.ndim))
    count = math.prod(a.shape[2:])
    for stat, values in (
        (running_mean, lambda: a.mean(axis=axes)),
        (running_var, lambda: a.var(axis=axes) * scalar(count / (count - 1), a.dtype)),
    ):
        if stat is None:
            continue
        dt = stat.array.dtype
        m = scalar(momentum, dt)
        stat.array[...] = stat.array * (1 - m) + m * values().mean(axis=0).astype(dt)


def _check_spatial(x: Tensor, where: str) -> None:
    """torch's check: statistics over one position are 0 variance, a silently all-zero output."""
    if int(np.prod(x.shape[2:])) == 1:
        raise ArgumentError(
            f"{where}: expected more than 1 spatial element when training, got input shape {tuple(x.shape)}"
        )


class _InstanceNorm(Module):
    _spatial = 1
    weight: Parameter | None
    bias: Parameter | None
    _version = 2  # PyTorch's state format version, saved in state_dict()._metadata

    running_mean: Tensor | None
    running_var: Tensor | None
    num_batches_tracked: Tensor | None

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = False,
        track_running_stats: bool = False,
        device: Any = None,
        dtype: Any = None,
        *,
        bias: bool = True,
    ) -> None:
        super().__init__()  # device, dtype: applied by Module's constructor wrapper once the layer is built
        self.num_features = num_features
        self.eps = float(eps)  # host: a Python number
        self.momentum = momentum
        self.affine = affine
        self.track_running_stats = track_running_stats
        dt = backend.get_default_dtype()
        _affine_parameters(self, (num_features,), affine, bias, dt)
        if track_running_stats:  # PyTorch's buffers (num_batches_tracked is kept, never counted)
            self.register_buffer("running_mean", zeros(num_features, dtype=dt))
            self.register_buffer("running_var", ones(num_features, dtype=dt))
            self.register_buffer("num_batches_tracked", zeros((), dtype=np.int64))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)
        self.reset_parameters()  # as PyTorch's constructor: a subclass's override runs too

    def reset_running_stats(self) -> None:
        if self.track_running_stats:
            assert self.running_mean is not None and self.running_var is not None
            assert self.num_batches_tracked is not None
            self.running_mean.array[...] = 0
            self.running_var.array[...] = 1
            self.num_batches_tracked.array[...] = 0

    def reset_parameters(self) -> None:
        """PyTorch's: the running statistics reset (mean 0, variance 1, no batches), weight = 1 and bias = 0,
        in place (the same Parameter and buffer objects)."""
        self.reset_running_stats()
        _reset_affine(self)

    def forward(self, input: Tensor) -> Tensor:
        unbatched = input.ndim == self._spatial + 1
        if unbatched:
            input = ops.unsqueeze(input, 0)
        if input.ndim != self._spatial + 2:
            raise ArgumentError(
                f"{type(self).__name__}: expected input (N, {self.num_features}, ...) with {self._spatial} spatial "
                f"dim(s), got shape {tuple(input.shape)}"
            )
        if input.shape[1] != self.num_features:
            # PyTorch's rule: the count matters only to the affine weights; without them the layer
            # normalizes any number of channels and warns (running statistics are checked by instance_norm)
            name = type(self).__name__
            if self.affine:
                raise ArgumentError(
                    f"{name}({self.num_features}): expected input's size at dim 1 to match num_features "
                    f"({self.num_features}), got {input.shape[1]} (input shape {tuple(input.shape)})"
                )
            warnings.warn(
                f"{name}({self.num_features}): input's size at dim 1 ({input.shape[1]}) does not match "
                "num_features, which is not used because affine=False",
                UserWarning,
                stacklevel=2,
            )
        use_input_stats = self.training or not self.track_running_stats
        if use_input_stats:
            _check_spatial(input, type(self).__name__)
        y = instance_norm(
            input,
            self.running_mean,
            self.running_var,
            self.weight,
            self.bias,
            use_input_stats,
            0.0 if self.momentum is None else self.momentum,
            self.eps,
        )
        return ops.squeeze(y, 0) if unbatched else y

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
            f"bias={self.bias is not None}, track_running_stats={self.track_running_stats}"
        )


class InstanceNorm1d(_InstanceNorm):
    """Normalize each channel of each (N, C, L) or (C, L) sample over L; no affine by default.

    Example:
        >>> import downslope as ds
        >>> ds.nn.InstanceNorm1d(3)(ds.randn(2, 3, 5)).shape
        downslope.Size([2, 3, 5])
    """


class InstanceNorm2d(_InstanceNorm):
    """Normalize each channel of each (N, C, H, W) or (C, H, W) sample over H and W; no affine by default.

    Example:
        >>> import downslope as ds
        >>> ds.nn.InstanceNorm2d(3)(ds.randn(2, 3, 4, 4)).shape
        downslope.Size([2, 3, 4, 4])
    """

    _spatial = 2


__all__ += ["group_norm", "GroupNorm", "instance_norm", "InstanceNorm1d", "InstanceNorm2d"]


# ---------------------------------------------------------------------- RMS norm
def rms_norm(
    input: Tensor, normalized_shape: Sequence[int] | int, weight: Tensor | None = None, eps: float | None = None
) -> Tensor:
    """x / sqrt(mean(x^2) + eps) over the last ``len(normalized_shape)`` dims, times ``weight``.
    ``eps=None`` uses the machine epsilon of the dtype the statistics are computed in, as PyTorch
    does: float16 input is normalized and scaled in float32 (so float32's epsilon) and rounded once
    to float16; the result has the input's dtype whatever the weight's (torch's rule: float16 input
    with a float32 weight gives float16, float32 input with a float64 weight float32). Host float32
    and float64 input with a weight of its dtype runs as one fused op (the compiled kernels).

    Example:
        >>> import downslope as ds
        >>> import downslope.nn.functional as F
        >>> [round(v, 4) for v in F.rms_norm(ds.tensor([[3.0, 4.0]]), (2,)).numpy().ravel().tolist()]
        [0.8485, 1.1314]
    """
    x = input  # torch's parameter name (F.rms_norm(input=...))
    if not isinstance(x, Tensor):
        raise ArgumentTypeError(f"rms_norm: expected a Tensor, got {type(x).__name__}")
    shape = (int(normalized_shape),) if isinstance(normalized_shape, (int, np.integer)) else tuple(normalized_shape)
    k = len(shape)
    if k == 0 or x.ndim < k or x.shape[x.ndim - k :] != shape:
        raise InvalidValueError(
            f"rms_norm: normalized_shape {shape} must match the last {k} dim(s) of input {tuple(x.shape)}"
        )
    _check_dtypes("rms_norm", x, {"weight": weight}, mixed=True)  # torch takes mixed floating dtypes here
    half = x.array.dtype == _HALF
    xw = ops.astype(x, np.float32) if half else x
    e = float(np.finfo(xw.array.dtype).eps) if eps is None else float(eps)  # host: dtype metadata, Python numbers
    axes = tuple(range(x.ndim - k, x.ndim))
    fused = None if half else _rms_norm_fused(x, shape, weight, e)
    if fused is not None:
        return fused
    y = xw / ops.sqrt(ops.mean(xw * xw, axes, keepdim=True) + e)
    if weight is not None:
        y = y * (_widen(weight) if half else weight)
    return ops.astype(y, x.array.dtype) if y.array.dtype != x.array.dtype else y


def _rms_norm_fused(x: Tensor, shape: tuple[int, ...], weight: Tensor | None, eps: float) -> Tensor | None:
    """RMS norm as one op on the compiled kernels (host float32/float64 input, a weight of its
    dtype and shape), or None where they do not apply (the caller composes it). Only one number
    per row is kept: the backward pass reads the input again."""
    d = x.array
    if type(d) is not np.ndarray or d.dtype not in _BLAS_FLOATS or not d.size:
        return None
    w = None if weight is None else weight.array
    if (w is not None and w.shape != shape) or not _same_dtype(d, w) or _jit.kernels(d, w) is None:
        return None
    from . import _jit_norm_kernels

    count = math.prod(shape)
    rows = np.ascontiguousarray(d.reshape(-1, count))  # host: the compiled path
    out, inv_rms = _jit_norm_kernels.rms_rows(rows, None if w is None else w.reshape(-1), eps)
    parents: tuple[Tensor, ...] = (x,) if weight is None else (x, weight)
    return record_op(out.reshape(d.shape), parents, _rms_norm_fused_vjp, (shape, eps, inv_rms))


def _rms_norm_fused_vjp(g, y, args, saved, needs, xp):
    shape, eps, inv_rms = saved
    x = args[0]
    has_w = len(args) > 1
    if xp.differentiable:  # double backward: the same rule from recorded ops (1/rms recomputed)
        axes = tuple(range(x.ndim - len(shape), x.ndim))
        inv = ((x * x).mean(axis=axes, keepdims=True) + eps) ** -0.5
        xhat = x * inv
        gh = g * args[1] if has_w else g
        gx = (gh - xhat * (gh * xhat).mean(axis=axes, keepdims=True)) * inv if needs[0] else None
        lead = tuple(range(x.ndim - len(shape)))
        gw = xp.reshape((g * xhat).sum(axis=lead), shape) if has_w and needs[1] else None
        return (gx, gw) if has_w else (gx,)
    from . import _jit_norm_kernels

    count = math.prod(shape)
    g2 = np.ascontiguousarray(g.reshape(-1, count), dtype=x.dtype)  # host: the forward took the compiled path
    x2 = np.ascontiguousarray(x.reshape(-1, count))  # host: as g2
    w = args[1].reshape(-1) if has_w else None
    gx2, gw64 = _jit_norm_kernels.rms_rows_backward(g2, x2, inv_rms, w, needs[0], has_w and needs[1])
    gx = None if gx2 is None else gx2.reshape(x.shape)
    return (gx, gw64.astype(x.dtype).reshape(shape) if needs[1] else None) if has_w else (gx,)


# The rule reads the input and the saved 1/rms, never the output: in-place changes of it are safe.
_rms_norm_fused_vjp.reads_output = False  # type: ignore[attr-defined]


class RMSNorm(Module):
    """Root-mean-square normalization over the last dims ``normalized_shape`` with a learnable
    elementwise weight (= 1) when ``elementwise_affine`` (see :func:`rms_norm`).

    Example:
        >>> import downslope as ds
        >>> ds.nn.RMSNorm(4)(ds.randn(2, 4)).shape
        downslope.Size([2, 4])
    """

    def __init__(
        self,
        normalized_shape: Sequence[int] | int,
        eps: float | None = None,
        elementwise_affine: bool = True,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()  # device, dtype: applied by Module's constructor wrapper once the layer is built
        shape = (int(normalized_shape),) if isinstance(normalized_shape, (int, np.integer)) else tuple(normalized_shape)
        if not shape or any(s <= 0 for s in shape):
            raise ArgumentError(f"RMSNorm: normalized_shape must be positive sizes, got {normalized_shape!r}")
        self.normalized_shape, self.eps, self.elementwise_affine = shape, eps, elementwise_affine
        if elementwise_affine:
            self.weight: Parameter | None = Parameter(ones(shape, dtype=backend.get_default_dtype()))
        else:
            self.register_parameter("weight", None)
        self.reset_parameters()  # as PyTorch's constructor: a subclass's override runs too

    def reset_parameters(self) -> None:
        """PyTorch's: weight = 1, in place (the same Parameter object)."""
        if self.weight is not None:
            init.ones_(self.weight)

    def forward(self, x: Tensor) -> Tensor:
        return rms_norm(x, self.normalized_shape, self.weight, self.eps)

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"


__all__ += ["BatchNorm3d", "rms_norm", "RMSNorm"]


# ---------------------------------------------------------------------- local response norm
def local_response_norm(input: Tensor, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0) -> Tensor:
    """AlexNet's normalization across channels: x / (k + alpha * mean of x^2 over ``size``
    neighbouring channels) ** beta, the window centred on each channel and zero-padded.

    Example:
        >>> import downslope as ds
        >>> import downslope.nn.functional as F
        >>> F.local_response_norm(ds.ones(1, 3, 1), 1, alpha=1.0, beta=1.0, k=1.0).tolist()
        [[[0.5], [0.5], [0.5]]]
    """
    x = input  # torch's parameter name (F.local_response_norm(input=...))
    if not isinstance(x, Tensor) or x.ndim < 3:
        raise ArgumentError(
            f"local_response_norm: expected a (N, C, ...) Tensor with 3+ dims, got {getattr(x, 'shape', x)}"
        )
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
        raise InvalidValueError(
            f"local_response_norm: size (the window of channels) must be a positive int, got {size!r}"
        )
    c = x.shape[1]
    sq = ops.unsqueeze(x * x, 1)  # (N, 1, C, ...)
    pad = [0, 0] * (x.ndim - 2) + [size // 2, (size - 1) // 2]
    padded = ops.squeeze(ops.pad(sq, tuple(pad)), 1)
    window = padded[:, 0:c]
    for j in range(1, size):
        window = window + padded[:, j : j + c]
    return x / (window * (alpha / size) + k) ** beta


class LocalResponseNorm(Module):
    """See :func:`local_response_norm`."""

    def __init__(self, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0) -> None:
        super().__init__()
        self.size = int(size)
        self.alpha = float(alpha)  # host: a Python number
        self.beta = float(beta)  # host: a Python number
        self.k = float(k)  # host: a Python number

    def forward(self, input: Tensor) -> Tensor:
        return local_response_norm(input, self.size, self.alpha, self.beta, self.k)

    def extra_repr(self) -> str:
        return f"{self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"


__all__ += ["local_response_norm", "LocalResponseNorm"]


class InstanceNorm3d(_InstanceNorm):
    """Normalize each channel of each (N, C, D, H, W) or (C, D, H, W) sample over D, H and W.

    Example:
        >>> import downslope as ds
        >>> ds.nn.InstanceNorm3d(2)(ds.randn(1, 2, 3, 3, 3)).shape
        downslope.Size([1, 2, 3, 3, 3])
    """

    _spatial = 3


__all__ += ["InstanceNorm3d"]
