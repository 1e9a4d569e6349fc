"""Classification losses: binary cross-entropy (from probabilities or logits), cross-entropy over
classes (fused with log-softmax), negative log-likelihood and KL divergence."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ... import jit_gate, ops
from ...backend import namespace_of
from ...errors import ArgumentError, DTypeError, InvalidValueError, OutOfRangeError, ShapeError
from ...graph import reads_inputs_when_recorded
from ...ops import reductions as _reductions
from ...tensor import Tensor, record_op, wrap_array
from .._arrays import array_like, is_host, scalar
from ._base import (
    _REDUCTIONS,
    _broadcast_pair,
    _class_weight,
    _elementwise_weight,
    _float_target,
    _input_and_reduction,
    _Loss,
    _promoted_float,
    _reduce,
    _weight_buffer,
    _WeightedLoss,
)


def _check_floating_target(target: Any, x: Tensor, fn: str) -> None:
    """Refuse an integer or boolean target tensor, as torch does (a 0/1 label tensor is usually
    class indices meant for cross_entropy, or needs ``.float()``)."""
    if isinstance(target, Tensor) and target.array.dtype.kind != "f":
        raise DTypeError(
            f"{fn}: Found dtype {target.array.dtype} but expected {x.array.dtype}: the target must be floating "
            "(e.g. target.float())"
        )


def binary_cross_entropy(
    input: Tensor,
    target: Any,
    weight: Any = None,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Tensor:
    """-(t log p + (1 - t) log(1 - p)) for probabilities ``input``; logs are clamped at -100 (as in
    PyTorch) so p = 0 or 1 gives a finite loss. Prefer :func:`binary_cross_entropy_with_logits`.

    Example:
        >>> import downslope as ds
        >>> import downslope.nn.functional as F
        >>> round(F.binary_cross_entropy(ds.tensor([0.5]), ds.tensor([1.0])).item(), 4)
        0.6931
    """
    x, reduction = _input_and_reduction(input, "binary_cross_entropy", size_average, reduce, reduction)
    _check_floating_target(target, x, "binary_cross_entropy")
    t = _float_target(target, x, "binary_cross_entropy")
    p = x.array
    # The range checks read values, so they run on the host only (on a GPU they would synchronise every
    # step). Written as "not inside" so that NaN, which fails every comparison, is refused too, as in torch.
    if is_host(p) and p.size and not (p.min() >= 0 and p.max() <= 1):
        raise InvalidValueError(
            "binary_cross_entropy: all elements of input should be between 0 and 1: expected probabilities in "
            f"[0, 1], got values in [{p.min():.4g}, {p.max():.4g}]; for raw scores use binary_cross_entropy_with_logits"
        )
    q = t.array
    if is_host(q) and q.size and not (q.min() >= 0 and q.max() <= 1):
        raise InvalidValueError(
            "binary_cross_entropy: all elements of target should be between 0 and 1, got values in "
            f"[{q.min():.4g}, {q.max():.4g}] (a 0/255 mask needs dividing by 255)"
        )
    with np.errstate(divide="ignore"):
        log_p = np.maximum(np.log(p), -100)
        log_1mp = np.maximum(np.log1p(-p), -100)
    loss = record_op(-(t.array * log_p + (1 - t.array) * log_1mp), (x, t), _bce_vjp, (log_p, log_1mp))
    w = _elementwise_weight(weight, x, "binary_cross_entropy")
    if w is not None:
        loss = loss * w
    return _reduce(loss, reduction)


def _bce_vjp(g, y, args, saved, needs, xp):
    x, t = args
    log_p, log_1mp = saved
    gx = gt = None
    if needs[0]:
        # PyTorch's rule: (p - t) / max(p (1 - p), 1e-12), finite at p = 0 and 1.
        denom = (1 - x) * x
        denom = xp.where(xp.data(denom) < 1e-12, scalar(1e-12, xp.data(denom).dtype), denom)
        gx = g * (x - t) / denom
    if needs[1]:
        gt = g * (log_1mp - log_p)
    return gx, gt


def binary_cross_entropy_with_logits(
    input: Tensor,
    target: Any,
    weight: Any = None,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    pos_weight: Any = None,
) -> Tensor:
    """Binary cross-entropy on raw scores (logits): (1 - t) x + lw softplus(-x) with
    lw = 1 + (pos_weight - 1) t, torch's loss, computed as
    (1 - t) max(x, 0) + pos_weight t max(-x, 0) + lw log1p(e^-|x|): no log of 0, no exp of a large
    number, and no cancellation of large terms (torch's own formula loses digits for large |x|
    where the loss is tiny). ``pos_weight`` (broadcast along the last dim) scales the positive term.

    Example:
        >>> import downslope as ds
        >>> import downslope.nn.functional as F
        >>> round(F.binary_cross_entropy_with_logits(ds.tensor([0.0]), ds.tensor([1.0])).item(), 4)
        0.6931
    """
    x, reduction = _input_and_reduction(input, "binary_cross_entropy_with_logits", size_average, reduce, reduction)
    _check_floating_target(target, x, "binary_cross_entropy_with_logits")
    t = _float_target(target, x, "binary_cross_entropy_with_logits")
    if isinstance(target, Tensor) and target.array.dtype != x.array.dtype and x.array.dtype.kind == "f":
        return _bce_logits_mixed(x, target, weight, pos_weight, reduction)
    pw = None
    if pos_weight is not None:
        pw = _elementwise_weight(pos_weight, x, "binary_cross_entropy_with_logits (pos_weight)")
    if t.requires_grad or (pw is not None and pw.requires_grad):  # the composite, differentiable in all
        softplus_neg = ops.softplus(-x, 1.0, math.inf)  # = -log(sigmoid(x)); no threshold: exact for any x
        loss = (1 - t) * x + (softplus_neg if pw is None else (1 + (pw - 1) * t) * softplus_neg)
    else:
        loss = _bce_logits_terms(x, t.array, None if pw is None else pw.array)
    w = _elementwise_weight(weight, x, "binary_cross_entropy_with_logits")
    if w is not None:
        weighted = loss * w
        # torch's loss.mul_(weight): a float64 weight does not widen a float32 loss
        loss = weighted if weighted.dtype == loss.dtype else ops.astype(weighted, loss.dtype)
    return _reduce(loss, reduction)


def _bce_logits_mixed(x: Tensor, t: Tensor, weight: Any, pos_weight: Any, reduction: str) -> Tensor:
    """:func:`binary_cross_entropy_with_logits` of a target whose floating dtype differs from the input's,
    in torch's steps and dtypes: ``-log_sigmoid(x)`` in the input's dtype (times the positive weight), then
    ``(1 - t) * x`` and the sum, each in the pair's promoted dtype and rounded to the target's, the dtype of
    the loss (torch's in-place steps on ``1 - t``: float32 logits with a float16 target give float16)."""
    from ..functional import logsigmoid  # functional imports the losses

    dtype = t.array.dtype
    fn = "binary_cross_entropy_with_logits"
    log_sigmoid = logsigmoid(x)  # torch's kernel's values, in the input's dtype
    if pos_weight is not None:
        _elementwise_weight(pos_weight, x, fn + " (pos_weight)")  # its shape checked as for any target
        pw = pos_weight if isinstance(pos_weight, Tensor) else ops._lift(pos_weight, x)
        log_sigmoid = ops.astype(log_sigmoid * (1 + (pw - 1) * t), x.array.dtype)  # torch: in place
    loss = ops.astype(ops.astype((1 - t) * x, dtype) - log_sigmoid, dtype)
    if weight is not None:
        _elementwise_weight(weight, x, fn)
        loss = ops.astype(loss * weight, dtype)
    return _reduce(loss, reduction)


def _bce_logits_terms(x: Tensor, t: Any, pw: Any) -> Tensor:
    """The elementwise loss of :func:`binary_cross_entropy_with_logits` as one op (target and
    pos_weight constant arrays), float16 computed in float32 and rounded once."""
    a = x.array
    w = a.astype(np.float32) if a.dtype == np.float16 else a
    xp = namespace_of(w)
    # one buffer of w's kind for e^-|x| in (0, 1]: out= keeps a 0-d input's result an array (NumPy
    # hands 0-d ufunc results back as scalars, which out= refuses)
    e = xp.abs(w, out=xp.empty_like(w))
    xp.negative(e, out=e)
    xp.exp(e, out=e)
    with np.errstate(invalid="ignore"):  # 0 * inf at x = +-inf: NaN, as torch's
        loss = xp.log1p(e)
        t_w = t.astype(w.dtype, copy=False)
        pos = xp.clip(w, 0, math.inf)
        neg = xp.clip(-w, 0, math.inf)
        pos *= 1 - t_w
        neg *= t_w
        if pw is not None:
            neg *= pw
            loss *= 1 + (pw - 1) * t_w
        loss += pos
        loss += neg
    return record_op(loss.astype(a.dtype, copy=False), (x,), _bce_logits_vjp, (t_w, pw, e))


def _bce_logits_vjp(g, y, args, saved, needs, xp):
    t, pw, e = saved
    x = args[0]
    if xp.differentiable:
        s = xp.sigmoid(x)
        if pw is None:
            return (g * (s - xp.constant(t)),)
        lw = xp.constant(1 + (pw - 1) * t)
        return (g * ((1 - xp.constant(t)) - lw * (1 - s)),)
    w = x.astype(e.dtype, copy=False)
    # dloss/dx = lw sigmoid(x) - pos_weight t (sigmoid(x) - t without pos_weight), sigmoid(x) as
    # e^min(x, 0) / (1 + e^-|x|) with the forward's e^-|x|: no overflow, relative precision for x << 0
    xp_w = namespace_of(w)
    d = xp_w.clip(w, -math.inf, 0, out=xp_w.empty_like(w))  # out=: an array for a 0-d input too
    xp_w.exp(d, out=d)
    d /= e + 1
    if pw is None:
        d -= t
    else:
        d *= 1 + (pw - 1) * t
        d -= pw * t
    d *= g
    return (d.astype(g.dtype, copy=False),)


def _class_layout(x: Tensor, fn: str) -> tuple[Tensor, bool]:
    """(N, C, d1, ...) view of the input; a 1-D input (C,) is one unbatched sample."""
    if x.ndim == 0:
        raise ShapeError(f"{fn}: input must have a class dimension, got a scalar")
    if x.ndim == 1:
        return ops.reshape(x, (1, x.shape[0])), True
    return x, False


# torch's kind names for the error message ("expected target dtype to be Long or Byte, but got Int")
_TORCH_KIND_NAMES = {"int8": "Char", "int16": "Short", "int32": "Int", "uint16": "UInt16", "uint32": "UInt32"}
_TORCH_KIND_NAMES.update(uint64="UInt64")


def _check_index_dtype(t: Any, fn: str) -> None:
    """Refuse class indices of an integer dtype other than int64 and uint8, as torch's nll_loss and
    cross_entropy do (a RuntimeError there): an int32 target would work here, but code written against
    downslope would then fail under torch."""
    name = str(t.dtype)
    if name in _TORCH_KIND_NAMES:
        raise DTypeError(
            f"{fn}: expected target dtype to be Long or Byte, but got {_TORCH_KIND_NAMES[name]} ({name}): "
            "class indices are int64 (or uint8) in torch; convert them with target.long()"
        )


def _index_dtype_checked(t: Any) -> bool:
    """True once :func:`_check_index_dtype` let cross_entropy's class indices ``t`` pass (it raises otherwise)."""
    _check_index_dtype(t, "cross_entropy")
    return True


def _index_target(target: Any, x: Tensor, unbatched: bool, ignore_index: int, fn: str) -> np.ndarray:
    t = array_like(target, x.array)
    _check_index_dtype(t, fn)
    if t.dtype.kind not in "iu":  # a float 0.5 would silently become class 0; True class 1 (torch refuses both)
        raise DTypeError(  # a TypeError, and a RuntimeError as torch's "expected target dtype to be Long"
            f"{fn}: target must hold integer class indices, got dtype {t.dtype}"
            + ("; convert a boolean mask with target.long()" if t.dtype.kind == "b" else "")
        )
    expected = x.shape[:1] + x.shape[2:]
    if unbatched:
        if t.shape != ():
            raise ShapeError(
                f"{fn}: an unbatched input of shape ({x.shape[1]},) needs a scalar target, got {tuple(t.shape)}"
            )
        t = t.reshape(1)
    if t.shape != expected:
        raise ShapeError(
            f"{fn}: input of shape {tuple(x.shape)} (N, C, ...) needs class-index targets of shape {tuple(expected)} "
            + (f"(or class probabilities of shape {tuple(x.shape)}), " if fn == "cross_entropy" else "")
            + f"got target shape {tuple(t.shape)}"
        )
    n_classes = x.shape[1]
    # Checked on the host only: on a device the check would wait for the GPU on every step (PyTorch's
    # CUDA kernels assert asynchronously instead).
    bad = (t != ignore_index) & ((t < 0) | (t >= n_classes)) if is_host(t) else None
    if bad is not None and bad.any():
        value = int(t[bad].flat[0])
        raise OutOfRangeError(
            f"{fn}: target class {value} is out of range for {n_classes} classes (valid: 0..{n_classes - 1})"
        )
    return t.astype(np.int64, copy=False)


def cross_entropy(
    input: Tensor,
    target: Any,
    weight: Any = None,
    size_average: bool | None = None,
    ignore_index: int = -100,
    reduce: bool | None = None,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> Tensor:
    """Cross-entropy of raw scores ``input`` (N, C) or (N, C, d1, ...) against class indices
    (N,) / (N, d1, ...) or class probabilities of the input's shape; PyTorch's formula.

    ``weight`` (C,) rescales each class (with 'mean', the sum is divided by the total weight of
    the targets, as in PyTorch); targets equal to ``ignore_index`` contribute nothing;
    ``label_smoothing`` mixes the target with the uniform distribution. On a device nothing is read
    back to the host: target classes are not range-checked (as PyTorch's CUDA kernel, which asserts
    asynchronously) and the loss stays a 0-d device tensor.

    Example:
        >>> import downslope as ds
        >>> import downslope.nn.functional as F
        >>> logits = ds.tensor([[2.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
        >>> round(F.cross_entropy(logits, ds.tensor([0, 2])).item(), 4)
        0.6691
    """
    x, reduction = _input_and_reduction(input, "cross_entropy", size_average, reduce, reduction)
    if not 0.0 <= label_smoothing <= 1.0:
        raise InvalidValueError(f"cross_entropy: label_smoothing must be in [0, 1], got {label_smoothing}")
    x2, unbatched = _class_layout(x, "cross_entropy")
    n_classes = x2.shape[1]
    w = _class_weight(weight, n_classes, x, "cross_entropy")
    target_array = array_like(target, x.array)
    if target_array.dtype.kind == "f":
        if ignore_index >= 0:  # torch refuses it too: with probabilities there is no class to ignore
            raise ArgumentError(
                f"cross_entropy: ignore_index={ignore_index} applies to class-index targets, but the target is "
                f"floating-point (class probabilities, dtype {target_array.dtype}); drop ignore_index or pass "
                "integer class indices"
            )
        loss = _cross_entropy_probabilities(x2, target, w, reduction, label_smoothing, unbatched)
    elif _index_dtype_checked(target_array) and (
        w is None
        and label_smoothing == 0
        and reduction != "none"
        and x2.ndim == 2
        and target_array.shape == (x2.shape[0],)
        and is_host(target_array)
        and _plain_targets(target_array, n_classes, ignore_index)
    ):
        loss = _cross_entropy_plain(x2, target_array, reduction)
    else:
        _check_weight_dtype(weight, x, "cross_entropy")
        t = _index_target(target_array, x2, unbatched, ignore_index, "cross_entropy")
        loss = _cross_entropy_indices(x2, t, w, ignore_index, reduction, label_smoothing)
    if unbatched and reduction == "none":
        loss = ops.reshape(loss, ())
    return loss


def _check_weight_dtype(weight: Any, x: Tensor, fn: str) -> None:
    """torch's class-index losses (nll_loss, cross_entropy with class indices) take a weight tensor of
    the input's dtype only: a float64 weight on float32 scores is refused rather than cast. (With class
    probabilities torch promotes instead; that path does not come here.)"""
    if isinstance(weight, Tensor) and weight.dtype != x.dtype:
        raise DTypeError(
            f"{fn}: expected scalar type {x.dtype} but found {weight.dtype}: the class weight must have the "
            f"input's dtype with class-index targets, got input {x.dtype} and weight {weight.dtype}"
        )


def _plain_targets(t: np.ndarray, n_classes: int, ignore_index: int) -> bool:
    """True when every target is a valid class index and none can be ``ignore_index`` (two reductions)."""
    if t.dtype.kind not in "iu" or t.size == 0 or 0 <= ignore_index < n_classes:
        return False
    return bool(t.min() >= 0) and bool(t.max() < n_classes)  # host: called for host targets only


def _rows_fast(d: Any) -> bool:
    """True where core's compiled softmax row kernels serve the class dim: numba on, (N, C) C-contiguous
    host logits of float32/float64, at least ``JIT_SOFTMAX_MIN_SIZE`` of them (where ``ops.log_softmax``
    runs them). Elsewhere (float16, devices,
    strided views, N-d input, numba off) the NumPy steps below, which keep the forward's softmax for
    the backward pass: recomputing it there would cost a second NumPy pass."""
    return (
        type(d) is np.ndarray
        and d.ndim == 2
        and d.size >= _reductions.JIT_SOFTMAX_MIN_SIZE  # where ops.log_softmax takes the kernels (below: NumPy's steps)
        and d.dtype in (np.float32, np.float64)
        and d.flags.c_contiguous
        and jit_gate.kernels("downslope.ops._jit_softmax", d) is not None
    )


def _log_softmax_rows(d: Any) -> Any:
    """log softmax over dim 1 of (N, C) logits ``d``, as PyTorch computes it: (x - max) - log(sum exp)."""
    return ops.log_softmax(wrap_array(d), 1).array


# The training loop's common case, (N, C) logits, class indices, no weights, no smoothing, nothing
# ignored, fused into one node: the general path's masks and weight arrays cost more than the
# arithmetic at small batch sizes (issue 7's per-step profile).
def _cross_entropy_plain(x: Tensor, t: np.ndarray, reduction: str) -> Tensor:
    """-log softmax(x)[i, t_i], summed or averaged over the batch."""
    d = x.array
    xp = namespace_of(d)
    rows = xp.arange(d.shape[0])
    scale = 1.0 / d.shape[0] if reduction == "mean" else 1.0
    if _rows_fast(d):
        logp = _log_softmax_rows(d)
        s = -logp[rows, t].sum(dtype=np.float64)
        return record_op(
            xp.asarray(s * scale, dtype=d.dtype), (x,), _cross_entropy_plain_vjp, (logp, rows, t, scale, True)
        )
    probs = d - d.max(axis=1, keepdims=True)  # shifted: the largest exponential is exactly 1, as torch
    picked = probs[rows, t].sum(dtype=np.float64)
    np.exp(probs, out=probs)  # in place: the shifted logits are not needed past the targets' picks
    total = probs.sum(axis=1, keepdims=True)
    s = np.log(total).sum(dtype=np.float64) - picked
    probs *= np.divide(1, total, out=total)  # softmax, kept for the gradient
    return record_op(
        xp.asarray(s * scale, dtype=d.dtype), (x,), _cross_entropy_plain_vjp, (probs, rows, t, scale, False)
    )


def _cross_entropy_plain_vjp(g, y, args, saved, needs, xp):
    """d loss / d x = (softmax(x) - onehot(t)) * scale * g."""
    probs, rows, t, scale, is_log = saved
    if xp.differentiable:
        onehot = namespace_of(args[0].array).zeros(args[0].shape, args[0].array.dtype)
        onehot[rows, t] = 1
        return ((ops.softmax(args[0], 1) - wrap_array(onehot)) * (g * scale),)
    gs = g * scale  # a 0-d array: no host sync
    if is_log:  # the fast path's log-softmax: its exponential, a fresh array that becomes the gradient
        grad = np.exp(probs)
        grad *= gs
    else:
        grad = probs * gs
    grad[rows, t] -= gs
    return (grad,)


def _cross_entropy_probabilities(
    x: Tensor, target: Any, w: np.ndarray | None, reduction: str, smoothing: float, unbatched: bool
) -> Tensor:
    t = target if isinstance(target, Tensor) else wrap_array(array_like(target, x.array, x.array.dtype))
    if unbatched:
        t = ops.reshape(t, (1,) + t.shape)
    if t.shape != x.shape:
        raise ShapeError(
            f"cross_entropy: a floating-point target is read as class probabilities and must have the input's "
            f"shape {tuple(x.shape)}, got {tuple(t.shape)}; for class indices pass an integer target (e.g. target.long())"
        )
    wide = _promoted_float(x, t)  # a float64 target promotes the loss, as torch's
    if wide is not None and wide != x.array.dtype:
        x = ops.astype(x, wide)
    if t.array.dtype != x.array.dtype:
        t = ops.astype(t, x.array.dtype)
    n_classes = x.shape[1]
    if smoothing > 0:
        t = t * (1.0 - smoothing) + smoothing / n_classes
    logp = ops.log_softmax(x, 1)
    prod = logp * t
    if w is not None:
        prod = prod * wrap_array(w.reshape((1, n_classes) + (1,) * (x.ndim - 2)))
    loss = -ops.sum(prod, axis=1)
    return _reduce(loss, reduction)  # 'mean' divides by the number of samples (and positions), not weights


def _cross_entropy_indices(
    x: Tensor, t: np.ndarray, w: np.ndarray | None, ignore_index: int, reduction: str, smoothing: float
) -> Tensor:
    d = x.array
    xp = namespace_of(d)
    n_classes = d.shape[1]
    fast = _rows_fast(d)
    probs: Any = None  # the fast path keeps the log-softmax: its exponential in the backward pass
    logp: Any = None
    if fast:
        logp = _log_softmax_rows(d)
    else:
        shifted = d - d.max(axis=1, keepdims=True)
        probs = np.exp(shifted)
        total = probs.sum(axis=1, keepdims=True)
        log_total = np.log(total)[:, 0]  # log p_c = shifted_c - log_total: no full log-softmax array needed
        probs *= np.divide(1, total, out=total)  # softmax, kept for the gradient
    valid = t != ignore_index
    all_valid = is_host(valid) and bool(valid.all())  # host: host arrays only; a device is always masked
    t_safe = t if all_valid else np.where(valid, t, 0)
    if fast:
        picked = np.take_along_axis(logp, t_safe[:, None], axis=1)[:, 0]  # log p of each target
    else:
        picked = np.take_along_axis(shifted, t_safe[:, None], axis=1)[:, 0] - log_total
    dtype = d.dtype
    w_t = np.ones_like(t, dtype=dtype) if w is None else w[t_safe]
    if not all_valid:
        w_t = w_t * valid
        # selected, not multiplied by 0: an ignored row may hold NaN or inf (padding after masked
        # attention), and 0 * NaN would be NaN; torch leaves ignored rows out. -0.0: negated below, so an
        # ignored row's loss is +0.0, as torch's
        picked = np.where(valid, picked, -0.0)
    per_item = -picked * w_t
    if smoothing > 0:
        # -sum_c w_c log p_c = -(sum_c w_c shifted_c) + log_total * sum_c w_c
        if fast:
            smooth = -(logp.sum(axis=1) if w is None else logp @ w)  # (N, C) logits: w is (C,)
        elif w is None:
            smooth = log_total * n_classes - shifted.sum(axis=1)
        else:
            wb = w.reshape((1, n_classes) + (1,) * (d.ndim - 2))
            smooth = log_total * w.sum() - (shifted * wb).sum(axis=1)
        if not all_valid:
            smooth = np.where(valid, smooth, 0)
        per_item = (1.0 - smoothing) * per_item + (smoothing / n_classes) * smooth
    per_item = per_item.astype(dtype, copy=False)
    if reduction == "none":
        out = per_item
        denom = None
    else:
        denom = w_t.sum() if reduction == "mean" else None  # PyTorch: the targets' total weight
        s = per_item.sum(dtype=np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):  # every target ignored: nan, as in PyTorch
            out = xp.asarray(s / denom if denom is not None else s, dtype=dtype)
    saved = (probs, t_safe, w, w_t, valid if not all_valid else None, smoothing, denom, logp)
    return record_op(out, (x,), _cross_entropy_vjp, saved)


def _cross_entropy_vjp(g, y, args, saved, needs, xp):
    """d loss_i / d x_i = softmax(x_i) * sum_c q_ic - q_i, with q_i the (weighted, smoothed)
    target distribution: (1 - eps) w_t onehot(t) + (eps / C) w. Without weights sum_c q_ic = 1."""
    probs, t_safe, w, w_t, valid, smoothing, denom, logp = saved
    x = args[0]
    arr = x.array if isinstance(x, Tensor) else x  # a Tensor under create_graph, else the array
    if probs is None and not xp.differentiable:  # the fast path's (N, C) softmax, from its log-softmax
        probs = np.exp(logp)
    n_classes = arr.shape[1]
    dtype = arr.dtype
    # s: the gradient reaching each item's loss, (N, d1, ...).
    with np.errstate(invalid="ignore", divide="ignore"):
        s = g / denom if denom is not None else g
    wb = None if w is None else w.reshape((1, n_classes) + (1,) * (arr.ndim - 2))
    # Sum over classes of q: (1 - eps) w_t + eps/C * sum(w), per item (0 for ignored items).
    if w is None and valid is None:
        q_total: Any = None  # 1 everywhere
    else:
        w_sum = n_classes if w is None else w.sum()
        q_total = ((1.0 - smoothing) * w_t + (smoothing / n_classes) * w_sum * (1 if valid is None else valid)).astype(
            dtype
        )
    onehot_weight = ((1.0 - smoothing) * w_t).astype(dtype)  # the target class's share of q
    if xp.differentiable:
        # Double backward: rebuild the gradient from differentiable ops (softmax of the input).
        p = ops.softmax(x, 1)
        onehot = namespace_of(arr).zeros(arr.shape, dtype)
        np.put_along_axis(onehot, t_safe[:, None], 1, axis=1)
        q = onehot * onehot_weight[:, None]
        if smoothing > 0:
            uniform = namespace_of(arr).ones((1, n_classes) + (1,) * (arr.ndim - 2), dtype) if wb is None else wb
            q = q + (smoothing / n_classes) * uniform * (1 if valid is None else valid[:, None])
        pq = p if q_total is None else p * q_total[:, None]
        s_b = s if s.ndim == 0 else ops.unsqueeze(s, 1)
        if valid is None:
            return ((pq - q) * s_b,)
        # ignored items: 0 (see below), and s selected away there too: when every target is ignored s is
        # infinite, and the product's own derivative (the masked 0 times s) would be NaN, where torch has 0
        s_b = xp.where(valid[:, None], s_b, 0.0)
        return (xp.where(valid[:, None], (pq - q) * s_b, 0.0),)
    s_arr = namespace_of(arr).asarray(s, dtype=dtype)
    s_b = s_arr if s_arr.ndim == 0 else s_arr[:, None]
    # an infinite s (every target ignored) meets the ignored items' zeros here: NaN, set to 0 below
    with np.errstate(invalid="ignore"):
        if q_total is None:
            grad = probs * s_b
        else:
            grad = probs * (q_total[:, None] * s_b)
        at_target = onehot_weight * (s_arr if s_arr.ndim else s_arr[()])
        picked = np.take_along_axis(grad, t_safe[:, None], axis=1)
        np.put_along_axis(grad, t_safe[:, None], picked - at_target[:, None], axis=1)
        if smoothing > 0:
            uniform = namespace_of(arr).ones((1, n_classes) + (1,) * (arr.ndim - 2), dtype) if wb is None else wb
            share = (smoothing / n_classes) * uniform * s_b
            grad -= share if valid is None else share * valid[:, None]
    if valid is not None:
        # An ignored item's gradient is 0 whatever reaches it, as in PyTorch (nll_loss skips it): when
        # every target is ignored, 'mean' divides by a total weight of 0 and s is infinite, and
        # 0 * inf would put NaN into the whole input gradient (and from there into the weights).
        grad = xp.where(valid[:, None], grad, 0.0)
    return (grad,)


# the rules read the forward's softmax or log-softmax (torch saves log_softmax's result), the logits only
# under create_graph: an in-place write into the logits after the loss does not stop backward, as in torch
_cross_entropy_plain_vjp.reads_inputs = reads_inputs_when_recorded  # type: ignore[attr-defined]
_cross_entropy_vjp.reads_inputs = reads_inputs_when_recorded  # type: ignore[attr-defined]


def nll_loss(
    input: Tensor,
    target: Any,
    weight: Any = None,
    size_average: bool | None = None,
    ignore_index: int = -100,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Tensor:
    """Negative log-likelihood of log-probabilities ``input`` (N, C, ...) at class indices ``target``:
    -w_t input[i, t_i]; with 'mean' the sum is divided by the targets' total weight.

    Example:
        >>> import downslope as ds
        >>> import downslope.nn.functional as F
        >>> F.nll_loss(ds.tensor([[-1.0, -2.0], [-3.0, -0.5]]), ds.tensor([0, 1]))
        tensor(0.75)
    """
    x, reduction = _input_and_reduction(input, "nll_loss", size_average, reduce, reduction)
    x2, unbatched = _class_layout(x, "nll_loss")
    n_classes = x2.shape[1]
    w = _class_weight(weight, n_classes, x, "nll_loss")
    _check_weight_dtype(weight, x, "nll_loss")
    t = _index_target(target, x2, unbatched, ignore_index, "nll_loss")
    valid = t != ignore_index
    t_safe = np.where(valid, t, 0)
    w_t = (np.ones_like(t, dtype=x.array.dtype) if w is None else w[t_safe]) * valid
    # take_along_dim, not gather: t_safe is in range (checked above on the host; on a device unchecked, as in
    # PyTorch's CUDA kernels), and gather's own range check would read the targets back on every step
    picked = ops.squeeze(ops.take_along_dim(x2, t_safe[:, None], 1), 1)
    if not (is_host(valid) and valid.all()):  # host: host targets only; a device is always masked
        # selected, not multiplied by 0: an ignored row may hold NaN or inf, and torch leaves it out;
        # -0.0: negated below, so an ignored row's loss is +0.0, as torch's
        picked = ops.where(wrap_array(valid), picked, -0.0)
    per_item = -picked * wrap_array(w_t.astype(x.array.dtype, copy=False))
    if reduction == "none":
        return ops.reshape(per_item, ()) if unbatched else per_item
    total = ops.sum(per_item)
    if reduction != "mean":
        return total
    # Every target ignored (or weighted 0): the mean is 0/0, NaN, as in PyTorch, but the gradient is
    # 0, not NaN (a batch of padding must not write NaN into the weights): divide by 1 there and add
    # a constant NaN, which the gradient does not see.
    xp = namespace_of(w_t)
    denom = xp.asarray(w_t.sum())
    empty = denom == 0
    safe = xp.where(empty, 1, denom).astype(x.array.dtype)
    return total / wrap_array(safe) + wrap_array(xp.where(empty, np.nan, 0).astype(x.array.dtype))


def kl_div(
    input: Tensor,
    target: Any,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    log_target: bool = False,
) -> Tensor:
    """Kullback-Leibler divergence with ``input`` = log q and ``target`` = p (or log p when
    ``log_target``): pointwise p (log p - log q), 0 where p = 0. ``reduction='batchmean'`` divides
    the sum by the batch size (the true KL per sample); 'mean' divides by the number of elements,
    as in PyTorch.

    Example:
        >>> import downslope as ds
        >>> import downslope.nn.functional as F
        >>> F.kl_div(ds.tensor([[0.0, 0.0]]).log_softmax(-1), ds.tensor([[0.5, 0.5]]), reduction="batchmean")
        tensor(0.)
    """
    for name, value in (("input", input), ("target", target)):
        if isinstance(value, Tensor) and value.array.dtype.kind in "biu":
            raise DTypeError(
                f"kl_div: Integral inputs not supported: {name} has dtype {value.array.dtype}; "
                "the input is log-probabilities and the target probabilities (e.g. target.float())"
            )
    x, reduction = _input_and_reduction(input, "kl_div", size_average, reduce, reduction, _REDUCTIONS + ("batchmean",))
    batch = x.shape[0] if x.ndim else 1  # the input's own first dim, as in PyTorch
    x, t = _broadcast_pair(x, target, "kl_div", promote="result")
    if log_target:
        loss = ops.exp(t) * (t - x)
    else:
        positive = t.array > 0
        safe_t = ops.where(positive, t, 1.0)  # xlogy: 0 * log 0 counts as 0
        loss = ops.where(positive, t * (ops.log(safe_t) - x), 0.0)
    if reduction == "batchmean":
        return ops.sum(loss) / batch
    return _reduce(loss, reduction)


class BCELoss(_WeightedLoss):
    """Binary cross-entropy of probabilities (see :func:`binary_cross_entropy`)."""

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return binary_cross_entropy(input, target, self.weight, reduction=self.reduction)


class BCEWithLogitsLoss(_Loss):
    """Binary cross-entropy of logits, stable (see :func:`binary_cross_entropy_with_logits`).

    Example:
        >>> import downslope as ds
        >>> loss = ds.nn.BCEWithLogitsLoss(pos_weight=ds.tensor([3.0]))
        >>> round(loss(ds.tensor([[0.0]]), ds.tensor([[1.0]])).item(), 4)
        2.0794
    """

    def __init__(
        self,
        weight: Any = None,
        size_average: bool | None = None,
        reduce: bool | None = None,
        reduction: str = "mean",
        pos_weight: Any = None,
    ) -> None:
        super().__init__(size_average, reduce, reduction)
        self.register_buffer("weight", _weight_buffer(weight))
        self.register_buffer("pos_weight", _weight_buffer(pos_weight))

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return binary_cross_entropy_with_logits(
            input, target, self.weight, reduction=self.reduction, pos_weight=self.pos_weight
        )


class CrossEntropyLoss(_WeightedLoss):
    """Cross-entropy of logits against class indices or probabilities (see :func:`cross_entropy`).

    Example:
        >>> import downslope as ds
        >>> loss_fn = ds.nn.CrossEntropyLoss(label_smoothing=0.1)
        >>> loss_fn(ds.zeros(4, 3), ds.tensor([0, 1, 2, 0])).shape
        downslope.Size([])
    """

    def __init__(
        self,
        weight: Any = None,
        size_average: bool | None = None,
        ignore_index: int = -100,
        reduce: bool | None = None,
        reduction: str = "mean",
        label_smoothing: float = 0.0,
    ) -> None:
        if not 0.0 <= label_smoothing <= 1.0:
            raise InvalidValueError(f"CrossEntropyLoss: label_smoothing must be in [0, 1], got {label_smoothing}")
        super().__init__(weight, size_average, reduce, reduction)
        self.ignore_index = int(ignore_index)
        self.label_smoothing = float(label_smoothing)  # host: a Python number

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return cross_entropy(
            input,
            target,
            self.weight,
            ignore_index=self.ignore_index,
            reduction=self.reduction,
            label_smoothing=self.label_smoothing,
        )


class NLLLoss(_WeightedLoss):
    """Negative log-likelihood of log-probabilities (see :func:`nll_loss`)."""

    def __init__(
        self,
        weight: Any = None,
        size_average: bool | None = None,
        ignore_index: int = -100,
        reduce: bool | None = None,
        reduction: str = "mean",
    ) -> None:
        super().__init__(weight, size_average, reduce, reduction)
        self.ignore_index = int(ignore_index)

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return nll_loss(input, target, self.weight, ignore_index=self.ignore_index, reduction=self.reduction)


class NLLLoss2d(NLLLoss):
    """PyTorch's deprecated name for :class:`NLLLoss` on (N, C, H, W) input."""


class KLDivLoss(_Loss):
    """KL divergence of log-probabilities ``input`` from ``target`` (see :func:`kl_div`)."""

    _allowed = _REDUCTIONS + ("batchmean",)

    def __init__(
        self,
        size_average: bool | None = None,
        reduce: bool | None = None,
        reduction: str = "mean",
        log_target: bool = False,
    ) -> None:
        super().__init__(size_average, reduce, reduction)
        self.log_target = bool(log_target)  # host: a Python number

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return kl_div(input, target, reduction=self.reduction, log_target=self.log_target)
