"""Loss functions, as functions (``mse_loss``) and as modules (``MSELoss``), with PyTorch's formulas.

Every loss takes ``reduction``: ``'mean'`` (default), ``'sum'`` or ``'none'`` (per element).

One deliberate difference from PyTorch: an elementwise loss given an input and a target of
different shapes raises a ValueError naming both shapes. PyTorch broadcasts them with only a
warning, so ``mse_loss`` of predictions (N, 1) against targets (N,) silently averages an (N, N)
matrix of every prediction against every target, and training "works" towards the wrong answer.

Two losses are fused into a single op with a hand-written gradient, because they are hot or
because the composite would be unstable:

* ``cross_entropy`` with class indices: log-softmax and the pick of the target's log-probability
  in one forward; the gradient is ``(softmax - smoothed one-hot) * scale``. It supports double
  backward (the rule is recomputed from differentiable ops under ``create_graph``).
* ``binary_cross_entropy`` (from probabilities): logs clamped at -100 as in PyTorch, whose
  composite gradient would be inf * 0 = nan at probabilities of exactly 0 or 1.
* ``mse_loss`` with mean/sum reduction: one op instead of three (the common regression loss).
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from .. import backend, ops
from ..errors import ArgumentError, ArgumentTypeError, OutOfRangeError, ShapeError
from ..tensor import Tensor, record_op, wrap_array
from .module import Module

__all__ = [
    "mse_loss",
    "l1_loss",
    "huber_loss",
    "smooth_l1_loss",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "cross_entropy",
    "nll_loss",
    "kl_div",
    "MSELoss",
    "L1Loss",
    "HuberLoss",
    "SmoothL1Loss",
    "BCELoss",
    "BCEWithLogitsLoss",
    "CrossEntropyLoss",
    "NLLLoss",
    "KLDivLoss",
]

_REDUCTIONS = ("mean", "sum", "none")


# ---------------------------------------------------------------------- argument checks
def _check_reduction(reduction: str, fn: str, allowed: tuple[str, ...] = _REDUCTIONS) -> None:
    if reduction not in allowed:
        raise ArgumentError(f"{fn}: reduction must be one of {allowed}, got {reduction!r}")


def _input(x: Any, fn: str) -> Tensor:
    if not isinstance(x, Tensor):
        raise ArgumentTypeError(f"{fn}: expected the input to be a Tensor, got {type(x).__name__}")
    if not backend.is_floating(x.array.dtype):
        raise ArgumentTypeError(f"{fn}: expected a floating-point input, got dtype {x.array.dtype}")
    return x


def _float_target(target: Any, like: Tensor, fn: str) -> Tensor:
    """The target as a tensor of the input's dtype and exactly the input's shape."""
    t = target if isinstance(target, Tensor) else Tensor(np.asarray(target), dtype=like.array.dtype)
    if t.shape != like.shape:
        raise ShapeError(
            f"{fn}: input shape {like.shape} and target shape {t.shape} differ. Losses do not broadcast "
            "(PyTorch would, with only a warning, and compute a wrong loss); reshape one of them, "
            "e.g. target.reshape(input.shape) or input.squeeze(-1)"
        )
    if t.array.dtype != like.array.dtype:
        t = ops.astype(t, like.array.dtype)  # a float64 or int target must not promote the loss to float64
    return t


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return ops.mean(loss)
    if reduction == "sum":
        return ops.sum(loss)
    return loss


def _class_weight(weight: Any, n_classes: int, like: Tensor, fn: str) -> np.ndarray | None:
    if weight is None:
        return None
    w = weight.array if isinstance(weight, Tensor) else np.asarray(weight)
    if w.shape != (n_classes,):
        raise ShapeError(f"{fn}: weight must have one entry per class, shape ({n_classes},), got {w.shape}")
    return w.astype(like.array.dtype, copy=False)


# ---------------------------------------------------------------------- regression losses
def mse_loss(input: Tensor, target: Any, reduction: str = "mean") -> Tensor:
    """Mean squared error: (input - target)^2, reduced. Shapes must match exactly.

    Example:
        >>> import downslope as ds
        >>> import downslope.nn.functional as F
        >>> F.mse_loss(ds.tensor([1.0, 2.0]), ds.tensor([0.0, 4.0]))
        tensor(2.5)
    """
    x = _input(input, "mse_loss")
    _check_reduction(reduction, "mse_loss")
    t = _float_target(target, x, "mse_loss")
    if reduction == "none":
        d = x - t
        return d * d
    diff = x.array - t.array
    total = np.vdot(diff, diff)  # one pass, no squared temporary
    n = diff.size or np.nan  # the mean of an empty batch is NaN (as in torch), not a ZeroDivisionError
    scale = 2.0 / n if reduction == "mean" else 2.0
    value = total / n if reduction == "mean" else total
    return record_op(np.asarray(value, dtype=x.array.dtype), (x, t), _mse_vjp, scale)


def _mse_vjp(g, y, args, saved, needs, xp):  # type: ignore[no-untyped-def]
    gd = (args[0] - args[1]) * (g * saved)
    return (gd if needs[0] else None, -gd if needs[1] else None)


def l1_loss(input: Tensor, target: Any, reduction: str = "mean") -> Tensor:
    """Mean absolute error: |input - target|, reduced.

    Example:
        >>> import downslope as ds
        >>> import downslope.nn.functional as F
        >>> F.l1_loss(ds.tensor([1.0, 2.0]), ds.tensor([0.0, 4.0]))
        tensor(1.5)
    """
    x = _input(input, "l1_loss")
    _check_reduction(reduction, "l1_loss")
    return _reduce(ops.abs(x - _float_target(target, x, "l1_loss")), reduction)


def huber_loss(input: Tensor, target: Any, reduction: str = "mean", delta: float = 1.0) -> Tensor:
    """0.5 d^2 where |d| < delta, else delta (|d| - 0.5 delta), with d = input - target.

    Example:
        >>> import downslope as ds
        >>> import downslope.nn.functional as F
        >>> F.huber_loss(ds.tensor([0.5, 3.0]), ds.zeros(2), reduction="none")
        tensor([0.125, 2.5  ])
    """
    x = _input(input, "huber_loss")
    _check_reduction(reduction, "huber_loss")
    if not delta > 0:
        raise ArgumentError(f"huber_loss: delta must be positive, got {delta}")
    d = x - _float_target(target, x, "huber_loss")
    ad = ops.abs(d)
    loss = ops.where(ad.array < delta, 0.5 * d * d, delta * (ad - 0.5 * delta))
    return _reduce(loss, reduction)


def smooth_l1_loss(input: Tensor, target: Any, reduction: str = "mean", beta: float = 1.0) -> Tensor:
    """0.5 d^2 / beta where |d| < beta, else |d| - 0.5 beta (Huber divided by beta; L1 when beta=0)."""
    x = _input(input, "smooth_l1_loss")
    _check_reduction(reduction, "smooth_l1_loss")
    if beta < 0:
        raise ArgumentError(f"smooth_l1_loss: beta must be non-negative, got {beta}")
    d = x - _float_target(target, x, "smooth_l1_loss")
    ad = ops.abs(d)
    if beta == 0:
        return _reduce(ad, reduction)
    loss = ops.where(ad.array < beta, (0.5 / beta) * d * d, ad - 0.5 * beta)
    return _reduce(loss, reduction)


# ---------------------------------------------------------------------- binary classification
def _elementwise_weight(weight: Any, like: Tensor, fn: str) -> Tensor | None:
    if weight is None:
        return None
    w = weight if isinstance(weight, Tensor) else Tensor(np.asarray(weight), dtype=like.array.dtype)
    try:
        np.broadcast_shapes(w.shape, like.shape)
    except ValueError:
        raise ShapeError(
            f"{fn}: weight of shape {w.shape} does not broadcast to the input's shape {like.shape}"
        ) from None
    return w


def binary_cross_entropy(input: Tensor, target: Any, weight: Any = None, reduction: str = "mean") -> Tensor:
    """-(t log p + (1 - t) log(1 - p)) for probabilities ``input``; logs are clamped at -100 (as in
    PyTorch) so p = 0 or 1 gives a finite loss. Prefer :func:`binary_cross_entropy_with_logits`.

    Example:
        >>> import downslope as ds
        >>> import downslope.nn.functional as F
        >>> round(F.binary_cross_entropy(ds.tensor([0.5]), ds.tensor([1.0])).item(), 4)
        0.6931
    """
    x = _input(input, "binary_cross_entropy")
    _check_reduction(reduction, "binary_cross_entropy")
    t = _float_target(target, x, "binary_cross_entropy")
    p = x.array
    if p.size and (p.min() < 0 or p.max() > 1):
        raise ArgumentError(
            "binary_cross_entropy: input must hold probabilities in [0, 1], got values in "
            f"[{float(p.min()):.4g}, {float(p.max()):.4g}]; for raw scores use binary_cross_entropy_with_logits"
        )
    with np.errstate(divide="ignore"):
        log_p = np.maximum(np.log(p), -100)
        log_1mp = np.maximum(np.log1p(-p), -100)
    loss = record_op(-(t.array * log_p + (1 - t.array) * log_1mp), (x, t), _bce_vjp, (log_p, log_1mp))
    w = _elementwise_weight(weight, x, "binary_cross_entropy")
    if w is not None:
        loss = loss * w
    return _reduce(loss, reduction)


def _bce_vjp(g, y, args, saved, needs, xp):  # type: ignore[no-untyped-def]
    x, t = args
    log_p, log_1mp = saved
    gx = gt = None
    if needs[0]:
        # PyTorch's rule: (p - t) / max(p (1 - p), 1e-12), finite at p = 0 and 1.
        denom = (1 - x) * x
        denom = xp.where(xp.data(denom) < 1e-12, np.asarray(1e-12, xp.data(denom).dtype), denom)
        gx = g * (x - t) / denom
    if needs[1]:
        gt = g * (log_1mp - log_p)
    return gx, gt


def binary_cross_entropy_with_logits(
    input: Tensor, target: Any, weight: Any = None, reduction: str = "mean", pos_weight: Any = None
) -> Tensor:
    """Binary cross-entropy on raw scores (logits), computed stably:
    (1 - t) x + (1 + (pos_weight - 1) t) softplus(-x), which never takes the log of 0 or exp of
    a large number. ``pos_weight`` (broadcast along the last dim) scales the positive term.

    Example:
        >>> import downslope as ds
        >>> import downslope.nn.functional as F
        >>> round(F.binary_cross_entropy_with_logits(ds.tensor([0.0]), ds.tensor([1.0])).item(), 4)
        0.6931
    """
    x = _input(input, "binary_cross_entropy_with_logits")
    _check_reduction(reduction, "binary_cross_entropy_with_logits")
    t = _float_target(target, x, "binary_cross_entropy_with_logits")
    softplus_neg = ops.softplus(-x)  # = -log(sigmoid(x)), stable for any x
    if pos_weight is None:
        loss = (1 - t) * x + softplus_neg
    else:
        pw = _elementwise_weight(pos_weight, x, "binary_cross_entropy_with_logits (pos_weight)")
        assert pw is not None
        loss = (1 - t) * x + (1 + (pw - 1) * t) * softplus_neg
    w = _elementwise_weight(weight, x, "binary_cross_entropy_with_logits")
    if w is not None:
        loss = loss * w
    return _reduce(loss, reduction)


# ---------------------------------------------------------------------- multi-class
def _class_layout(x: Tensor, fn: str) -> tuple[Tensor, bool]:
    """(N, C, d1, ...) view of the input; a 1-D input (C,) is one unbatched sample."""
    if x.ndim == 0:
        raise ShapeError(f"{fn}: input must have a class dimension, got a scalar")
    if x.ndim == 1:
        return ops.reshape(x, (1, x.shape[0])), True
    return x, False


def _index_target(target: Any, x: Tensor, unbatched: bool, ignore_index: int, fn: str) -> np.ndarray:
    t = target.array if isinstance(target, Tensor) else np.asarray(target)
    if t.dtype.kind not in "iu":  # a float 0.5 would silently become class 0; True class 1 (torch refuses both)
        raise ArgumentTypeError(
            f"{fn}: target must hold integer class indices, got dtype {t.dtype}"
            + ("; convert a boolean mask with target.long()" if t.dtype.kind == "b" else "")
        )
    expected = x.shape[:1] + x.shape[2:]
    if unbatched:
        if t.shape != ():
            raise ShapeError(f"{fn}: an unbatched input of shape ({x.shape[1]},) needs a scalar target, got {t.shape}")
        t = t.reshape(1)
    if t.shape != expected:
        raise ShapeError(
            f"{fn}: input of shape {x.shape} (N, C, ...) needs class-index targets of shape {expected} "
            + (f"(or class probabilities of shape {x.shape}), " if fn == "cross_entropy" else "")
            + f"got target shape {t.shape}"
        )
    n_classes = x.shape[1]
    bad = (t != ignore_index) & ((t < 0) | (t >= n_classes))
    if bad.any():
        value = int(t[bad].flat[0])
        raise OutOfRangeError(
            f"{fn}: target class {value} is out of range for {n_classes} classes (valid: 0..{n_classes - 1})"
        )
    return t.astype(np.int64, copy=False)


def cross_entropy(
    input: Tensor,
    target: Any,
    weight: Any = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> Tensor:
    """Cross-entropy of raw scores ``input`` (N, C) or (N, C, d1, ...) against class indices
    (N,) / (N, d1, ...) or class probabilities of the input's shape; PyTorch's formula.

    ``weight`` (C,) rescales each class (with 'mean', the sum is divided by the total weight of
    the targets, as in PyTorch); targets equal to ``ignore_index`` contribute nothing;
    ``label_smoothing`` mixes the target with the uniform distribution.

    Example:
        >>> import downslope as ds
        >>> import downslope.nn.functional as F
        >>> logits = ds.tensor([[2.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
        >>> round(F.cross_entropy(logits, ds.tensor([0, 2])).item(), 4)
        0.6691
    """
    x = _input(input, "cross_entropy")
    _check_reduction(reduction, "cross_entropy")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ArgumentError(f"cross_entropy: label_smoothing must be in [0, 1], got {label_smoothing}")
    x2, unbatched = _class_layout(x, "cross_entropy")
    n_classes = x2.shape[1]
    w = _class_weight(weight, n_classes, x, "cross_entropy")
    target_array = target.array if isinstance(target, Tensor) else np.asarray(target)
    if target_array.dtype.kind == "f":
        if ignore_index >= 0:  # torch refuses it too: with probabilities there is no class to ignore
            raise ArgumentError(
                f"cross_entropy: ignore_index={ignore_index} applies to class-index targets, but the target is "
                f"floating-point (class probabilities, dtype {target_array.dtype}); drop ignore_index or pass "
                "integer class indices"
            )
        loss = _cross_entropy_probabilities(x2, target, w, reduction, label_smoothing, unbatched)
    elif (
        w is None
        and label_smoothing == 0
        and reduction != "none"
        and x2.ndim == 2
        and target_array.shape == (x2.shape[0],)
        and _plain_targets(target_array, n_classes, ignore_index)
    ):
        loss = _cross_entropy_plain(x2, target_array, reduction)
    else:
        t = _index_target(target_array, x2, unbatched, ignore_index, "cross_entropy")
        loss = _cross_entropy_indices(x2, t, w, ignore_index, reduction, label_smoothing)
    if unbatched and reduction == "none":
        loss = ops.reshape(loss, ())
    return loss


def _plain_targets(t: np.ndarray, n_classes: int, ignore_index: int) -> bool:
    """True when every target is a valid class index and none can be ``ignore_index`` (two reductions)."""
    if t.dtype.kind not in "iu" or t.size == 0 or 0 <= ignore_index < n_classes:
        return False
    return bool(t.min() >= 0) and bool(t.max() < n_classes)


# The training loop's common case, (N, C) logits, class indices, no weights, no smoothing, nothing
# ignored, fused into one node: the general path's masks and weight arrays cost more than the
# arithmetic at small batch sizes (issue 7's per-step profile).
def _cross_entropy_plain(x: Tensor, t: np.ndarray, reduction: str) -> Tensor:
    """-log softmax(x)[i, t_i], summed or averaged over the batch."""
    d = x.array
    rows = np.arange(d.shape[0])
    shifted = d - d.max(axis=1, keepdims=True)
    probs = np.exp(shifted)
    total = probs.sum(axis=1, keepdims=True)
    s = np.log(total).sum(dtype=np.float64) - shifted[rows, t].sum(dtype=np.float64)
    scale = 1.0 / d.shape[0] if reduction == "mean" else 1.0
    probs /= total  # softmax, kept for the gradient
    return record_op(np.asarray(s * scale, dtype=d.dtype), (x,), _cross_entropy_plain_vjp, (probs, rows, t, scale))


def _cross_entropy_plain_vjp(g, y, args, saved, needs, xp):  # type: ignore[no-untyped-def]
    """d loss / d x = (softmax(x) - onehot(t)) * scale * g."""
    probs, rows, t, scale = saved
    if xp.differentiable:
        onehot = np.zeros(probs.shape, probs.dtype)
        onehot[rows, t] = 1
        return ((ops.softmax(args[0], 1) - wrap_array(onehot)) * (g * scale),)
    gs = float(g) * scale
    grad = probs * gs
    grad[rows, t] -= gs
    return (grad,)


def _cross_entropy_probabilities(
    x: Tensor, target: Any, w: np.ndarray | None, reduction: str, smoothing: float, unbatched: bool
) -> Tensor:
    t = target if isinstance(target, Tensor) else Tensor(np.asarray(target), dtype=x.array.dtype)
    if unbatched:
        t = ops.reshape(t, (1,) + t.shape)
    if t.shape != x.shape:
        raise ShapeError(
            f"cross_entropy: a floating-point target is read as class probabilities and must have the input's "
            f"shape {x.shape}, got {t.shape}; for class indices pass an integer target (e.g. target.long())"
        )
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
    n_classes = d.shape[1]
    shifted = d - d.max(axis=1, keepdims=True)
    probs = np.exp(shifted)
    total = probs.sum(axis=1, keepdims=True)
    log_total = np.log(total)[:, 0]  # log p_c = shifted_c - log_total: no full log-softmax array needed
    probs /= total  # softmax, kept for the gradient
    valid = t != ignore_index
    all_valid = bool(valid.all())
    t_safe = t if all_valid else np.where(valid, t, 0)
    picked = np.take_along_axis(shifted, t_safe[:, None], axis=1)[:, 0] - log_total  # log p of each target
    dtype = d.dtype
    w_t = np.ones(t.shape, dtype) if w is None else w[t_safe]
    if not all_valid:
        w_t = w_t * valid
    per_item = -picked * w_t
    if smoothing > 0:
        # -sum_c w_c log p_c = -(sum_c w_c shifted_c) + log_total * sum_c w_c
        if w is None:
            smooth = log_total * n_classes - shifted.sum(axis=1)
        else:
            wb = w.reshape((1, n_classes) + (1,) * (d.ndim - 2))
            smooth = log_total * w.sum() - (shifted * wb).sum(axis=1)
        if not all_valid:
            smooth = smooth * valid
        per_item = (1.0 - smoothing) * per_item + (smoothing / n_classes) * smooth
    per_item = per_item.astype(dtype, copy=False)
    if reduction == "none":
        out = per_item
        denom = None
    else:
        denom = float(w_t.sum()) if reduction == "mean" else None  # PyTorch: the targets' total weight
        s = per_item.sum(dtype=np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):  # every target ignored: nan, as in PyTorch
            out = np.asarray(s / denom if denom is not None else s, dtype=dtype)
    saved = (probs, t_safe, w, w_t, valid if not all_valid else None, smoothing, denom)
    return record_op(out, (x,), _cross_entropy_vjp, saved)


def _cross_entropy_vjp(g, y, args, saved, needs, xp):  # type: ignore[no-untyped-def]
    """d loss_i / d x_i = softmax(x_i) * sum_c q_ic - q_i, with q_i the (weighted, smoothed)
    target distribution: (1 - eps) w_t onehot(t) + (eps / C) w. Without weights sum_c q_ic = 1."""
    probs, t_safe, w, w_t, valid, smoothing, denom = saved
    x = args[0]
    n_classes = probs.shape[1]
    dtype = probs.dtype
    # s: the gradient reaching each item's loss, (N, d1, ...).
    with np.errstate(invalid="ignore", divide="ignore"):
        s = g / denom if denom is not None else g
    wb = None if w is None else w.reshape((1, n_classes) + (1,) * (probs.ndim - 2))
    # Sum over classes of q: (1 - eps) w_t + eps/C * sum(w), per item (0 for ignored items).
    if w is None and valid is None:
        q_total: Any = None  # 1 everywhere
    else:
        w_sum = n_classes if w is None else float(w.sum())
        q_total = ((1.0 - smoothing) * w_t + (smoothing / n_classes) * w_sum * (1 if valid is None else valid)).astype(
            dtype
        )
    onehot_weight = ((1.0 - smoothing) * w_t).astype(dtype)  # the target class's share of q
    if xp.differentiable:
        # Double backward: rebuild the gradient from differentiable ops (softmax of the input).
        p = ops.softmax(x, 1)
        onehot = np.zeros(probs.shape, dtype)
        np.put_along_axis(onehot, t_safe[:, None], 1, axis=1)
        q = onehot * onehot_weight[:, None]
        if smoothing > 0:
            uniform = np.ones((1, n_classes) + (1,) * (probs.ndim - 2), dtype) if wb is None else wb
            q = q + (smoothing / n_classes) * uniform * (1 if valid is None else valid[:, None])
        pq = p if q_total is None else p * q_total[:, None]
        s_b = s if s.ndim == 0 else ops.unsqueeze(s, 1)
        return ((pq - q) * s_b,)
    s_arr = np.asarray(s, dtype=dtype)
    s_b = s_arr if s_arr.ndim == 0 else s_arr[:, None]
    if q_total is None:
        grad = probs * s_b
    else:
        grad = probs * (q_total[:, None] * s_b)
    at_target = onehot_weight * (s_arr if s_arr.ndim else s_arr[()])
    picked = np.take_along_axis(grad, t_safe[:, None], axis=1)
    np.put_along_axis(grad, t_safe[:, None], picked - at_target[:, None], axis=1)
    if smoothing > 0:
        uniform = np.ones((1, n_classes) + (1,) * (probs.ndim - 2), dtype) if wb is None else wb
        share = (smoothing / n_classes) * uniform * s_b
        grad -= share if valid is None else share * valid[:, None]
    return (grad,)


def nll_loss(
    input: Tensor, target: Any, weight: Any = None, ignore_index: int = -100, reduction: str = "mean"
) -> Tensor:
    """Negative log-likelihood of log-probabilities ``input`` (N, C, ...) at class indices ``target``:
    -w_t input[i, t_i]; with 'mean' the sum is divided by the targets' total weight.

    Example:
        >>> import downslope as ds
        >>> import downslope.nn.functional as F
        >>> F.nll_loss(ds.tensor([[-1.0, -2.0], [-3.0, -0.5]]), ds.tensor([0, 1]))
        tensor(0.75)
    """
    x = _input(input, "nll_loss")
    _check_reduction(reduction, "nll_loss")
    x2, unbatched = _class_layout(x, "nll_loss")
    n_classes = x2.shape[1]
    w = _class_weight(weight, n_classes, x, "nll_loss")
    t = _index_target(target, x2, unbatched, ignore_index, "nll_loss")
    valid = t != ignore_index
    t_safe = np.where(valid, t, 0)
    w_t = (np.ones(t.shape, x.array.dtype) if w is None else w[t_safe]) * valid
    picked = ops.squeeze(ops.gather(x2, 1, t_safe[:, None]), 1)
    per_item = -picked * wrap_array(w_t.astype(x.array.dtype, copy=False))
    if reduction == "none":
        return ops.reshape(per_item, ()) if unbatched else per_item
    total = ops.sum(per_item)
    return total / float(w_t.sum()) if reduction == "mean" else total


def kl_div(input: Tensor, target: Any, reduction: str = "mean", log_target: bool = False) -> Tensor:
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
    x = _input(input, "kl_div")
    _check_reduction(reduction, "kl_div", _REDUCTIONS + ("batchmean",))
    t = _float_target(target, x, "kl_div")
    if log_target:
        loss = ops.exp(t) * (t - x)
    else:
        positive = t.array > 0
        safe_t = ops.where(positive, t, 1.0)  # xlogy: 0 * log 0 counts as 0
        loss = ops.where(positive, t * (ops.log(safe_t) - x), 0.0)
    if reduction == "batchmean":
        return ops.sum(loss) / (x.shape[0] if x.ndim else 1)
    return _reduce(loss, reduction)


# ---------------------------------------------------------------------- PyTorch's legacy reduction flags
def _legacy_reduction_name(size_average: bool | None, reduce: bool | None) -> str:
    """PyTorch's mapping of the pre-1.0 flags: reduce=False -> 'none', else size_average=False -> 'sum'."""
    if reduce is not None and not reduce:
        return "none"
    return "sum" if size_average is not None and not size_average else "mean"


def _legacy_reduction(fn: Any) -> Any:
    """Accept ``size_average=`` / ``reduce=`` (old code: ``F.binary_cross_entropy(x, y, size_average=False)``)
    and turn them into ``reduction``, as PyTorch still does (with a deprecation warning there)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, size_average: bool | None = None, reduce: bool | None = None, **kwargs: Any) -> Any:
        if size_average is not None or reduce is not None:
            if "reduction" in kwargs:
                raise ArgumentError(f"{fn.__name__}: give reduction, or the legacy size_average/reduce, not both")
            kwargs["reduction"] = _legacy_reduction_name(size_average, reduce)
        return fn(*args, **kwargs)

    return wrapper


# ---------------------------------------------------------------------- modules
class _Loss(Module):
    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        init = cls.__dict__.get("__init__")
        if init is not None:
            setattr(cls, "__init__", _legacy_reduction(init))  # noqa: B010

    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        _check_reduction(reduction, type(self).__name__, self._allowed)
        self.reduction = reduction

    _allowed: tuple[str, ...] = _REDUCTIONS
    weight: Tensor | None  # a buffer in the losses that take class or element weights
    pos_weight: Tensor | None

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"


setattr(_Loss, "__init__", _legacy_reduction(_Loss.__init__))  # noqa: B010  (its subclasses are wrapped above)


def _weight_buffer(weight: Any) -> Tensor | None:
    if weight is None:
        return None
    return weight if isinstance(weight, Tensor) else Tensor(weight)  # floats become float32


class MSELoss(_Loss):
    """Mean squared error (see :func:`mse_loss`); shapes must match exactly.

    Example:
        >>> import downslope as ds
        >>> ds.nn.MSELoss()(ds.tensor([1.0, 3.0]), ds.tensor([1.0, 1.0]))
        tensor(2.)
    """

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return mse_loss(input, target, self.reduction)


class L1Loss(_Loss):
    """Mean absolute error (see :func:`l1_loss`)."""

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return l1_loss(input, target, self.reduction)


class HuberLoss(_Loss):
    """Quadratic below ``delta``, linear above (see :func:`huber_loss`)."""

    def __init__(self, reduction: str = "mean", delta: float = 1.0) -> None:
        super().__init__(reduction)
        self.delta = float(delta)

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return huber_loss(input, target, self.reduction, self.delta)

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}, delta={self.delta}"


class SmoothL1Loss(_Loss):
    """Huber loss divided by ``beta`` (see :func:`smooth_l1_loss`)."""

    def __init__(self, reduction: str = "mean", beta: float = 1.0) -> None:
        super().__init__(reduction)
        self.beta = float(beta)

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return smooth_l1_loss(input, target, self.reduction, self.beta)

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}, beta={self.beta}"


class BCELoss(_Loss):
    """Binary cross-entropy of probabilities (see :func:`binary_cross_entropy`)."""

    def __init__(self, weight: Any = None, reduction: str = "mean") -> None:
        super().__init__(reduction)
        self.register_buffer("weight", _weight_buffer(weight))

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return binary_cross_entropy(input, target, self.weight, self.reduction)


class BCEWithLogitsLoss(_Loss):
    """Binary cross-entropy of logits, stable (see :func:`binary_cross_entropy_with_logits`).

    Example:
        >>> import downslope as ds
        >>> loss = ds.nn.BCEWithLogitsLoss(pos_weight=ds.tensor([3.0]))
        >>> round(loss(ds.tensor([[0.0]]), ds.tensor([[1.0]])).item(), 4)
        2.0794
    """

    def __init__(self, weight: Any = None, reduction: str = "mean", pos_weight: Any = None) -> None:
        super().__init__(reduction)
        self.register_buffer("weight", _weight_buffer(weight))
        self.register_buffer("pos_weight", _weight_buffer(pos_weight))

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return binary_cross_entropy_with_logits(input, target, self.weight, self.reduction, self.pos_weight)


class CrossEntropyLoss(_Loss):
    """Cross-entropy of logits against class indices or probabilities (see :func:`cross_entropy`).

    Example:
        >>> import downslope as ds
        >>> loss_fn = ds.nn.CrossEntropyLoss(label_smoothing=0.1)
        >>> loss_fn(ds.zeros(4, 3), ds.tensor([0, 1, 2, 0])).shape
        ()
    """

    def __init__(
        self, weight: Any = None, ignore_index: int = -100, reduction: str = "mean", label_smoothing: float = 0.0
    ) -> None:
        super().__init__(reduction)
        if not 0.0 <= label_smoothing <= 1.0:
            raise ArgumentError(f"CrossEntropyLoss: label_smoothing must be in [0, 1], got {label_smoothing}")
        self.register_buffer("weight", _weight_buffer(weight))
        self.ignore_index = int(ignore_index)
        self.label_smoothing = float(label_smoothing)

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return cross_entropy(input, target, self.weight, self.ignore_index, self.reduction, self.label_smoothing)

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}, ignore_index={self.ignore_index}, label_smoothing={self.label_smoothing}"


class NLLLoss(_Loss):
    """Negative log-likelihood of log-probabilities (see :func:`nll_loss`)."""

    def __init__(self, weight: Any = None, ignore_index: int = -100, reduction: str = "mean") -> None:
        super().__init__(reduction)
        self.register_buffer("weight", _weight_buffer(weight))
        self.ignore_index = int(ignore_index)

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return nll_loss(input, target, self.weight, self.ignore_index, self.reduction)


class KLDivLoss(_Loss):
    """KL divergence of log-probabilities ``input`` from ``target`` (see :func:`kl_div`)."""

    _allowed = _REDUCTIONS + ("batchmean",)

    def __init__(self, reduction: str = "mean", log_target: bool = False) -> None:
        super().__init__(reduction)
        self.log_target = bool(log_target)

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return kl_div(input, target, self.reduction, self.log_target)


# ---------------------------------------------------------------------- margin, embedding and likelihood losses
# Composites of basic ops (their gradients come from those ops): they are rarely on a hot path.
def _as_input_tensor(x: Any, like: Tensor) -> Tensor:
    return x if isinstance(x, Tensor) else Tensor(np.asarray(x), dtype=like.array.dtype)


def margin_ranking_loss(
    input1: Tensor, input2: Tensor, target: Any, margin: float = 0.0, reduction: str = "mean"
) -> Tensor:
    """max(0, -y (x1 - x2) + margin) with y = 1 (x1 should rank higher) or -1.

    Example:
        >>> import downslope as ds
        >>> import downslope.nn.functional as F
        >>> F.margin_ranking_loss(ds.tensor([1.0, 0.0]), ds.tensor([0.0, 1.0]), ds.tensor([1.0, 1.0]), 0.5).item()
        0.75
    """
    _check_reduction(reduction, "margin_ranking_loss")
    x1, x2 = _input(input1, "margin_ranking_loss"), _input(input2, "margin_ranking_loss")
    y = _as_input_tensor(target, x1)
    return _reduce(ops.relu(-y * (x1 - x2) + margin), reduction)


def hinge_embedding_loss(input: Tensor, target: Any, margin: float = 1.0, reduction: str = "mean") -> Tensor:
    """x where y = 1, max(0, margin - x) where y = -1 (x usually a distance)."""
    _check_reduction(reduction, "hinge_embedding_loss")
    x = _input(input, "hinge_embedding_loss")
    y = _as_input_tensor(target, x)
    positive = ops.where(y.array == 1, x, np.zeros((), x.array.dtype))
    negative = ops.where(y.array == -1, ops.relu(margin - x), np.zeros((), x.array.dtype))
    return _reduce(positive + negative, reduction)


def soft_margin_loss(input: Tensor, target: Any, reduction: str = "mean") -> Tensor:
    """log(1 + exp(-y x)) elementwise, y in {1, -1} (two-class logistic loss)."""
    _check_reduction(reduction, "soft_margin_loss")
    x = _input(input, "soft_margin_loss")
    return _reduce(ops.softplus(-_float_target(target, x, "soft_margin_loss") * x), reduction)


def multilabel_soft_margin_loss(input: Tensor, target: Any, weight: Any = None, reduction: str = "mean") -> Tensor:
    """Binary cross-entropy of logits averaged over the C labels of each (N, C) sample.

    Example:
        >>> import downslope as ds
        >>> import downslope.nn.functional as F
        >>> round(F.multilabel_soft_margin_loss(ds.zeros(1, 2), ds.tensor([[1.0, 0.0]])).item(), 4)
        0.6931
    """
    _check_reduction(reduction, "multilabel_soft_margin_loss")
    x = _input(input, "multilabel_soft_margin_loss")
    y = _float_target(target, x, "multilabel_soft_margin_loss")
    loss = -(y * -ops.softplus(-x) + (1.0 - y) * -ops.softplus(x))
    if weight is not None:
        loss = loss * _as_input_tensor(weight, x)
    return _reduce(ops.mean(loss, -1), reduction)


def cosine_embedding_loss(
    input1: Tensor, input2: Tensor, target: Any, margin: float = 0.0, reduction: str = "mean"
) -> Tensor:
    """1 - cos(x1, x2) where y = 1, max(0, cos(x1, x2) - margin) where y = -1 (cosine along dim 1)."""
    _check_reduction(reduction, "cosine_embedding_loss")
    x1, x2 = _input(input1, "cosine_embedding_loss"), _input(input2, "cosine_embedding_loss")
    y = _as_input_tensor(target, x1)
    dim = x1.ndim - 1
    eps = 1e-12  # PyTorch's: keeps the norms of all-zero rows away from 0
    cos = ops.sum(x1 * x2, dim) / ops.sqrt((ops.sum(x1 * x1, dim) + eps) * (ops.sum(x2 * x2, dim) + eps))
    zero = np.zeros((), x1.array.dtype)
    loss = ops.where(y.array == 1, 1.0 - cos, zero) + ops.where(y.array == -1, ops.relu(cos - margin), zero)
    return _reduce(loss, reduction)


def _distance(a: Tensor, b: Tensor, p: float, eps: float) -> Tensor:
    d = a - b + eps
    if p == 2:
        return ops.sqrt(ops.sum(d * d, -1))
    return ops.sum(ops.abs(d) ** p, -1) ** (1.0 / p)


def triplet_margin_loss(
    anchor: Tensor,
    positive: Tensor,
    negative: Tensor,
    margin: float = 1.0,
    p: float = 2.0,
    eps: float = 1e-6,
    swap: bool = False,
    reduction: str = "mean",
) -> Tensor:
    """max(0, d(a, p) - d(a, n) + margin), d the p-norm distance (``swap`` uses min(d(a, n), d(p, n)))."""
    _check_reduction(reduction, "triplet_margin_loss")
    a = _input(anchor, "triplet_margin_loss")
    d_pos = _distance(a, positive, p, eps)
    d_neg = _distance(a, negative, p, eps)
    if swap:
        d_neg = ops.minimum(d_neg, _distance(positive, negative, p, eps))
    return _reduce(ops.relu(d_pos - d_neg + margin), reduction)


def poisson_nll_loss(
    input: Tensor,
    target: Any,
    log_input: bool = True,
    full: bool = False,
    eps: float = 1e-8,
    reduction: str = "mean",
) -> Tensor:
    """Negative log-likelihood of a Poisson target: exp(x) - y x (log_input) or x - y log(x + eps);
    ``full`` adds Stirling's approximation of log(y!) where y > 1."""
    _check_reduction(reduction, "poisson_nll_loss")
    x = _input(input, "poisson_nll_loss")
    y = _float_target(target, x, "poisson_nll_loss")
    loss = ops.exp(x) - y * x if log_input else x - y * ops.log(x + eps)
    if full:
        t = y.array
        safe = np.where(t > 1, t, 1.0)
        stirling = np.where(t > 1, safe * np.log(safe) - safe + 0.5 * np.log(2 * np.pi * safe), 0.0)
        loss = loss + stirling.astype(x.array.dtype)
    return _reduce(loss, reduction)


def gaussian_nll_loss(
    input: Tensor, target: Any, var: Any, full: bool = False, eps: float = 1e-6, reduction: str = "mean"
) -> Tensor:
    """Negative log-likelihood of a Gaussian target: (log(var) + (x - y)^2 / var) / 2, with var
    clamped below at ``eps`` (the clamp passes the gradient through, as in PyTorch); ``full`` adds
    log(2 pi) / 2. ``var`` has the input's shape, or lacks (or has size 1 in) its last dim."""
    _check_reduction(reduction, "gaussian_nll_loss")
    x = _input(input, "gaussian_nll_loss")
    y = _float_target(target, x, "gaussian_nll_loss")
    v = _as_input_tensor(var, x)
    if v.shape != x.shape and v.shape == x.shape[:-1]:
        v = ops.unsqueeze(v, -1)
    if v.ndim != x.ndim or any(a not in (b, 1) for a, b in zip(v.shape, x.shape)):
        raise ShapeError(f"gaussian_nll_loss: var shape {v.shape} does not fit input shape {x.shape}")
    if np.any(v.array < 0):
        raise ArgumentError("gaussian_nll_loss: var has negative entries")
    floor = np.maximum(v.array, eps) - v.array  # added as a constant, so the gradient reaches var unchanged
    v = v + floor.astype(x.array.dtype)
    loss = 0.5 * (ops.log(v) + (x - y) ** 2 / v)
    if full:
        loss = loss + 0.5 * float(np.log(2 * np.pi))
    return _reduce(loss, reduction)


def multi_margin_loss(
    input: Tensor,
    target: Any,
    p: int = 1,
    margin: float = 1.0,
    weight: Any = None,
    reduction: str = "mean",
) -> Tensor:
    """Multi-class hinge loss: for each sample, sum over classes i != y of
    max(0, margin - x[y] + x[i])**p (times weight[y]), divided by the number of classes C.

    Example:
        >>> import downslope as ds
        >>> import downslope.nn.functional as F
        >>> round(F.multi_margin_loss(ds.tensor([[0.1, 0.2, 0.4, 0.8]]), ds.tensor([3])).item(), 4)
        0.325
    """
    _check_reduction(reduction, "multi_margin_loss")
    if p not in (1, 2):
        raise ArgumentError(f"multi_margin_loss: p must be 1 or 2, got {p!r}")
    x = _input(input, "multi_margin_loss")
    unbatched = x.ndim == 1
    if unbatched:
        x = ops.unsqueeze(x, 0)
    t = target.array if isinstance(target, Tensor) else np.asarray(target)
    t = t.reshape(-1).astype(np.int64)
    n, c = x.shape
    if t.shape != (n,) or (t.size and (t.min() < 0 or t.max() >= c)):
        raise ShapeError(f"multi_margin_loss: expected {n} class indices in [0, {c}), got {t.tolist()}")
    picked = ops.unsqueeze(x[np.arange(n), t], 1)
    hinge = ops.relu(margin - picked + x)
    if p == 2:
        hinge = hinge * hinge
    others = np.ones((n, c), dtype=x.array.dtype)
    others[np.arange(n), t] = 0  # the target class itself does not count
    per_class = hinge * others
    if weight is not None:
        w = weight.array if isinstance(weight, Tensor) else np.asarray(weight)
        per_class = per_class * w.astype(x.array.dtype)[t][:, None]
    loss = ops.sum(per_class, 1) / float(c)
    if unbatched and reduction == "none":
        return ops.squeeze(loss, 0)
    return _reduce(loss, reduction)


def multilabel_margin_loss(input: Tensor, target: Any, reduction: str = "mean") -> Tensor:
    """Multi-label hinge loss: ``target`` (N, C) lists each sample's classes, ended by the first -1;
    the loss sums max(0, 1 - (x[j] - x[i])) over its classes j and the other classes i, divided by C.

    Example:
        >>> import downslope as ds
        >>> import downslope.nn.functional as F
        >>> round(F.multilabel_margin_loss(ds.tensor([[0.1, 0.2, 0.4, 0.8]]), ds.tensor([[3, 0, -1, 1]])).item(), 4)
        0.85
    """
    _check_reduction(reduction, "multilabel_margin_loss")
    x = _input(input, "multilabel_margin_loss")
    unbatched = x.ndim == 1
    if unbatched:
        x = ops.unsqueeze(x, 0)
    t = np.asarray(target.array if isinstance(target, Tensor) else target, dtype=np.int64).reshape(x.shape)
    n, c = x.shape
    is_target = np.zeros((n, c), dtype=bool)
    for row in range(n):
        listed = t[row]
        ends = np.flatnonzero(listed < 0)
        listed = listed[: ends[0]] if ends.size else listed
        if listed.size and (listed.min() < 0 or listed.max() >= c):
            raise ShapeError(f"multilabel_margin_loss: class indices must lie in [0, {c}), got {listed.tolist()}")
        is_target[row, listed] = True
    pairs = (is_target[:, :, None] & ~is_target[:, None, :]).astype(x.array.dtype)  # (N, j target, i other)
    hinge = ops.relu(1.0 - (ops.unsqueeze(x, 2) - ops.unsqueeze(x, 1)))
    loss = ops.sum(hinge * pairs, (1, 2)) / float(c)
    if unbatched and reduction == "none":
        return ops.squeeze(loss, 0)
    return _reduce(loss, reduction)


class MultiLabelMarginLoss(_Loss):
    """See :func:`multilabel_margin_loss`."""

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return multilabel_margin_loss(input, target, self.reduction)


class NLLLoss2d(_Loss):
    """PyTorch's deprecated name for :class:`NLLLoss` on (N, C, H, W) input."""

    def __init__(self, weight: Any = None, ignore_index: int = -100, reduction: str = "mean") -> None:
        super().__init__(reduction)
        self.register_buffer("weight", _weight_buffer(weight))
        self.ignore_index = ignore_index

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return nll_loss(input, target, self.weight, ignore_index=self.ignore_index, reduction=self.reduction)


class MultiMarginLoss(_Loss):
    """See :func:`multi_margin_loss`."""

    def __init__(self, p: int = 1, margin: float = 1.0, weight: Any = None, reduction: str = "mean") -> None:
        super().__init__(reduction)
        self.p, self.margin = p, float(margin)
        self.register_buffer("weight", _weight_buffer(weight))

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return multi_margin_loss(input, target, self.p, self.margin, self.weight, self.reduction)


def triplet_margin_with_distance_loss(
    anchor: Tensor,
    positive: Tensor,
    negative: Tensor,
    *,
    distance_function: Any = None,
    margin: float = 1.0,
    swap: bool = False,
    reduction: str = "mean",
) -> Tensor:
    """:func:`triplet_margin_loss` with any ``distance_function(a, b)`` (default: pairwise Euclidean)."""
    _check_reduction(reduction, "triplet_margin_with_distance_loss")
    dist = distance_function if distance_function is not None else (lambda a, b: _distance(a, b, 2.0, 1e-6))
    d_pos, d_neg = dist(anchor, positive), dist(anchor, negative)
    if swap:
        d_neg = ops.minimum(d_neg, dist(positive, negative))
    return _reduce(ops.relu(d_pos - d_neg + margin), reduction)


class TripletMarginWithDistanceLoss(_Loss):
    """See :func:`triplet_margin_with_distance_loss`."""

    def __init__(
        self, *, distance_function: Any = None, margin: float = 1.0, swap: bool = False, reduction: str = "mean"
    ) -> None:
        super().__init__(reduction)
        self.distance_function, self.margin, self.swap = distance_function, float(margin), bool(swap)

    def forward(self, anchor: Tensor, positive: Tensor, negative: Tensor) -> Tensor:
        return triplet_margin_with_distance_loss(
            anchor, positive, negative, distance_function=self.distance_function, margin=self.margin,
            swap=self.swap, reduction=self.reduction,
        )  # fmt: skip


class MarginRankingLoss(_Loss):
    """See :func:`margin_ranking_loss`."""

    def __init__(self, margin: float = 0.0, reduction: str = "mean") -> None:
        super().__init__(reduction)
        self.margin = float(margin)

    def forward(self, input1: Tensor, input2: Tensor, target: Any) -> Tensor:
        return margin_ranking_loss(input1, input2, target, self.margin, self.reduction)


class HingeEmbeddingLoss(_Loss):
    """See :func:`hinge_embedding_loss`."""

    def __init__(self, margin: float = 1.0, reduction: str = "mean") -> None:
        super().__init__(reduction)
        self.margin = float(margin)

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return hinge_embedding_loss(input, target, self.margin, self.reduction)


class SoftMarginLoss(_Loss):
    """See :func:`soft_margin_loss`."""

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return soft_margin_loss(input, target, self.reduction)


class MultiLabelSoftMarginLoss(_Loss):
    """See :func:`multilabel_soft_margin_loss`."""

    def __init__(self, weight: Any = None, reduction: str = "mean") -> None:
        super().__init__(reduction)
        self.register_buffer("weight", _weight_buffer(weight))

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return multilabel_soft_margin_loss(input, target, self.weight, self.reduction)


class CosineEmbeddingLoss(_Loss):
    """See :func:`cosine_embedding_loss`."""

    def __init__(self, margin: float = 0.0, reduction: str = "mean") -> None:
        super().__init__(reduction)
        self.margin = float(margin)

    def forward(self, input1: Tensor, input2: Tensor, target: Any) -> Tensor:
        return cosine_embedding_loss(input1, input2, target, self.margin, self.reduction)


class TripletMarginLoss(_Loss):
    """See :func:`triplet_margin_loss`."""

    def __init__(
        self, margin: float = 1.0, p: float = 2.0, eps: float = 1e-6, swap: bool = False, reduction: str = "mean"
    ) -> None:
        super().__init__(reduction)
        self.margin, self.p, self.eps, self.swap = float(margin), float(p), float(eps), bool(swap)

    def forward(self, anchor: Tensor, positive: Tensor, negative: Tensor) -> Tensor:
        return triplet_margin_loss(anchor, positive, negative, self.margin, self.p, self.eps, self.swap, self.reduction)


class PoissonNLLLoss(_Loss):
    """See :func:`poisson_nll_loss`."""

    def __init__(self, log_input: bool = True, full: bool = False, eps: float = 1e-8, reduction: str = "mean") -> None:
        super().__init__(reduction)
        self.log_input, self.full, self.eps = bool(log_input), bool(full), float(eps)

    def forward(self, log_input: Tensor, target: Any) -> Tensor:
        return poisson_nll_loss(log_input, target, self.log_input, self.full, self.eps, self.reduction)


class GaussianNLLLoss(_Loss):
    """See :func:`gaussian_nll_loss`."""

    def __init__(self, *, full: bool = False, eps: float = 1e-6, reduction: str = "mean") -> None:
        super().__init__(reduction)
        self.full, self.eps = bool(full), float(eps)

    def forward(self, input: Tensor, target: Any, var: Any) -> Tensor:
        return gaussian_nll_loss(input, target, var, self.full, self.eps, self.reduction)


__all__ += [
    "margin_ranking_loss", "hinge_embedding_loss", "soft_margin_loss", "multilabel_soft_margin_loss",
    "cosine_embedding_loss", "triplet_margin_loss", "poisson_nll_loss", "gaussian_nll_loss", "MarginRankingLoss",
    "HingeEmbeddingLoss", "SoftMarginLoss", "MultiLabelSoftMarginLoss", "CosineEmbeddingLoss", "TripletMarginLoss",
    "PoissonNLLLoss", "GaussianNLLLoss", "multi_margin_loss", "MultiMarginLoss", "multilabel_margin_loss", "MultiLabelMarginLoss", "NLLLoss2d", "triplet_margin_with_distance_loss",
    "TripletMarginWithDistanceLoss",
]  # fmt: skip


for _name in [n for n in __all__ if n[0].islower()]:
    globals()[_name] = _legacy_reduction(globals()[_name])


# ---------------------------------------------------------------------- connectionist temporal classification
def _logsumexp(*terms: np.ndarray) -> np.ndarray:
    stacked = np.stack(terms)
    top = np.max(stacked, axis=0)
    safe = np.where(np.isfinite(top), top, 0.0)
    with np.errstate(divide="ignore"):
        return np.where(np.isfinite(top), safe + np.log(np.sum(np.exp(stacked - safe), axis=0)), -np.inf)


def _ctc_one(lp: np.ndarray, target: np.ndarray, blank: int) -> tuple[float, np.ndarray]:
    """Negative log-likelihood of one target under (T, C) log-probabilities, and its gradient
    (PyTorch's form: exp(lp) minus the posterior occupancy of each class, so a log_softmax before it
    passes the exact gradient to the logits)."""
    steps, classes = lp.shape
    ext = np.full(2 * len(target) + 1, blank, dtype=np.int64)
    ext[1::2] = target
    n = len(ext)
    skip = np.zeros(n, dtype=bool)  # s may come from s - 2: a label different from the one two back
    skip[2:] = (ext[2:] != blank) & (ext[2:] != ext[:-2])
    alpha = np.full((steps, n), -np.inf)
    alpha[0, 0] = lp[0, ext[0]]
    if n > 1:
        alpha[0, 1] = lp[0, ext[1]]
    for t in range(1, steps):
        prev = alpha[t - 1]
        one = np.concatenate([[-np.inf], prev[:-1]])
        two = np.where(skip, np.concatenate([[-np.inf, -np.inf], prev[:-2]]), -np.inf)
        alpha[t] = _logsumexp(prev, one, two) + lp[t, ext]
    beta = np.full((steps, n), -np.inf)
    beta[-1, -1] = lp[-1, ext[-1]]
    if n > 1:
        beta[-1, -2] = lp[-1, ext[-2]]
    skip_back = np.zeros(n, dtype=bool)
    skip_back[:-2] = skip[2:]
    for t in range(steps - 2, -1, -1):
        nxt = beta[t + 1]
        one = np.concatenate([nxt[1:], [-np.inf]])
        two = np.where(skip_back, np.concatenate([nxt[2:], [-np.inf, -np.inf]]), -np.inf)
        beta[t] = _logsumexp(nxt, one, two) + lp[t, ext]
    loglik = float(_logsumexp(alpha[-1, -1], alpha[-1, -2] if n > 1 else np.array(-np.inf)))
    occupancy = np.zeros((steps, classes))
    if np.isfinite(loglik):
        with np.errstate(invalid="ignore"):
            weight = np.exp(alpha + beta - lp[:, ext] - loglik)
        for s in range(n):
            occupancy[:, ext[s]] += np.nan_to_num(weight[:, s])
    return -loglik, np.exp(lp) - occupancy


def ctc_loss(
    log_probs: Tensor,
    targets: Any,
    input_lengths: Any,
    target_lengths: Any,
    blank: int = 0,
    reduction: str = "mean",
    zero_infinity: bool = False,
) -> Tensor:
    """Connectionist temporal classification loss (Graves et al., 2006) of (T, N, C) log-probabilities
    (``log_softmax`` output) against label sequences: ``targets`` (N, S) padded or 1-D concatenated.
    'mean' averages each sample's loss divided by its target length, as PyTorch does.

    Example:
        >>> import downslope as ds
        >>> import downslope.nn.functional as F
        >>> lp = ds.zeros(2, 1, 2).log_softmax(2)  # two steps, each class with probability 1/2
        >>> round(F.ctc_loss(lp, ds.tensor([[1]]), [2], [1], reduction="sum").item(), 4)  # 3 paths of prob 1/4
        0.2877
    """
    _check_reduction(reduction, "ctc_loss")
    x = _input(log_probs, "ctc_loss")
    unbatched = x.ndim == 2
    if unbatched:
        x = ops.unsqueeze(x, 1)
    steps, batch, classes = x.shape
    lp = x.array.astype(np.float64)
    in_len = np.asarray(input_lengths.array if isinstance(input_lengths, Tensor) else input_lengths).reshape(-1)
    tg_len = np.asarray(target_lengths.array if isinstance(target_lengths, Tensor) else target_lengths).reshape(-1)
    tg = np.asarray(targets.array if isinstance(targets, Tensor) else targets, dtype=np.int64)
    if in_len.shape != (batch,) or tg_len.shape != (batch,):
        raise ShapeError(f"ctc_loss: expected {batch} input and target lengths, got {in_len.shape} and {tg_len.shape}")
    if np.any(in_len > steps) or np.any(in_len < 0):
        raise ArgumentError(f"ctc_loss: input_lengths must lie in [0, {steps}], got {in_len.tolist()}")
    offsets = np.concatenate([[0], np.cumsum(tg_len)])
    losses = np.zeros(batch)
    grad = np.zeros_like(lp)
    for b in range(batch):
        label = tg[b, : tg_len[b]] if tg.ndim == 2 else tg[offsets[b] : offsets[b + 1]]
        if np.any(label == blank) or np.any(label < 0) or np.any(label >= classes):
            raise ArgumentError(f"ctc_loss: target labels must lie in [0, {classes}) and differ from blank={blank}")
        t_b = int(in_len[b])
        loss, g = _ctc_one(lp[:t_b, b], label, blank) if t_b else (np.inf, np.zeros((0, classes)))
        if zero_infinity and not np.isfinite(loss):
            loss, g = 0.0, np.zeros_like(g)
        losses[b] = loss
        grad[:t_b, b] = g
    out = record_op(losses.astype(x.array.dtype), (x,), _ctc_vjp, grad.astype(x.array.dtype))
    if reduction == "mean":
        return ops.mean(out / np.maximum(tg_len, 1).astype(x.array.dtype))
    if reduction == "sum":
        return ops.sum(out)
    return ops.squeeze(out, 0) if unbatched else out


def _ctc_vjp(g, y, args, saved, needs, xp):  # type: ignore[no-untyped-def]
    if xp.differentiable:
        raise ArgumentError("ctc_loss: double backward is not supported")
    return (saved * g[None, :, None],)


class CTCLoss(_Loss):
    """See :func:`ctc_loss`; call as ``loss(log_probs, targets, input_lengths, target_lengths)``."""

    def __init__(self, blank: int = 0, reduction: str = "mean", zero_infinity: bool = False) -> None:
        super().__init__(reduction)
        self.blank, self.zero_infinity = blank, zero_infinity

    def forward(self, log_probs: Tensor, targets: Any, input_lengths: Any, target_lengths: Any) -> Tensor:
        return ctc_loss(
            log_probs, targets, input_lengths, target_lengths, self.blank, self.reduction, self.zero_infinity
        )


__all__ += ["ctc_loss", "CTCLoss"]
