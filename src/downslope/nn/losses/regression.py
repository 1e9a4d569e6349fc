"""Regression losses: squared and absolute error, Huber/smooth L1, and the Poisson and Gaussian
negative log-likelihoods."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ... import ops
from ...backend import namespace_of
from ...errors import ArgumentError, InvalidValueError, ShapeError
from ...tensor import Tensor, record_op, wrap_array
from .._arrays import is_host, scalar
from ._base import (
    _as_input_tensor,
    _broadcast_pair,
    _check_reduction,
    _input,
    _input_and_reduction,
    _legacy_reduction,
    _Loss,
    _reduce,
    _reduction_arg,
)


def mse_loss(
    input: Tensor,
    target: Any,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    weight: Any = None,
) -> Tensor:
    """Mean squared error: (input - target)^2, reduced. Shapes must match, up to a one-element
    target or size-1 dims (with PyTorch's warning); other broadcasts raise (see the README), except
    under ``reduction='none'``, which returns the broadcast loss with PyTorch's warning (its shape
    shows the pairing; l1, huber and smooth_l1 do the same).

    Example:
        >>> import downslope as ds
        >>> import downslope.nn.functional as F
        >>> F.mse_loss(ds.tensor([1.0, 2.0]), ds.tensor([0.0, 4.0]))
        tensor(2.5)
    """
    x, reduction = _input_and_reduction(input, "mse_loss", size_average, reduce, reduction)
    w = _sample_weight(weight, x, "mse_loss")
    x, t = _broadcast_pair(x, target, "mse_loss", warn=True, reduction=reduction, promote="types")
    if w is not None:
        d = x - t
        return _weighted_reduce(d * d * w, w, reduction)
    if reduction == "none":
        d = x - t
        return d * d
    diff = x.array - t.array
    wide = diff.astype(np.float32) if diff.dtype == np.float16 else diff  # float16 sums in float32, as torch
    total = np.vdot(wide, wide)  # one pass, no squared temporary
    n = diff.size or np.nan  # the mean of an empty batch is NaN (as in torch), not a ZeroDivisionError
    scale = 2.0 / n if reduction == "mean" else 2.0
    value = total / n if reduction == "mean" else total
    return record_op(namespace_of(diff).asarray(value, dtype=x.array.dtype), (x, t), _mse_vjp, scale)


def _mse_vjp(g, y, args, saved, needs, xp):
    gd = (args[0] - args[1]) * (g * saved)
    return (gd if needs[0] else None, -gd if needs[1] else None)


def l1_loss(
    input: Tensor,
    target: Any,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    weight: Any = None,
) -> Tensor:
    """Mean absolute error: |input - target|, reduced.

    Example:
        >>> import downslope as ds
        >>> import downslope.nn.functional as F
        >>> F.l1_loss(ds.tensor([1.0, 2.0]), ds.tensor([0.0, 4.0]))
        tensor(1.5)
    """
    # complex input: |input - target| is real, as torch's (the checks read its real part's dtype)
    complex_input = isinstance(input, Tensor) and input.array.dtype.kind == "c"
    checked = wrap_array(np.real(input.array)) if complex_input else input  # np.real: device arrays dispatch it
    x, reduction = _input_and_reduction(checked, "l1_loss", size_average, reduce, reduction)
    w = _sample_weight(weight, x, "l1_loss")
    x, t = _broadcast_pair(
        input if complex_input else x, target, "l1_loss", warn=True, reduction=reduction, promote="types"
    )
    if w is not None:
        return _weighted_reduce(ops.abs(x - t) * w, w, reduction)
    return _reduce(ops.abs(x - t), reduction)


def _sample_weight(weight: Any, like: Tensor, fn: str) -> Tensor | None:
    """The per-element ``weight`` of the regression losses: exactly the input's shape, as in torch."""
    if weight is None:
        return None
    w = _as_input_tensor(weight, like)
    if w.shape != like.shape:
        raise ShapeError(f"{fn}: expected a weight of the input's shape {tuple(like.shape)}, got {tuple(w.shape)}")
    return w


def _weighted_reduce(loss: Tensor, weight: Tensor, reduction: str) -> Tensor:
    """torch's weighted mse/l1 reduction: 'mean' divides the weighted sum by the total weight."""
    if reduction == "mean":
        return ops.sum(loss) / ops.sum(weight)
    return _reduce(loss, reduction)


def huber_loss(
    input: Tensor,
    target: Any,
    reduction: str = "mean",
    delta: float = 1.0,
    weight: Any = None,
) -> Tensor:
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
        raise InvalidValueError(f"huber_loss: delta must be positive, got {delta}")  # torch: a RuntimeError
    w = _sample_weight(weight, x, "huber_loss")
    x, t = _broadcast_pair(x, target, "huber_loss", warn=True, reduction=reduction)
    delta = float(delta)  # host: a Python number (a NumPy float64 would widen float32 results)
    if w is not None:
        # weighted, 'mean' is the plain mean of the weighted terms (torch's choice, unlike mse/l1)
        return _reduce(_huber_op(x, t, delta, 1.0, "none") * w, reduction)
    return _huber_op(x, t, delta, 1.0, reduction)


def _huber_op(x: Tensor, t: Tensor, delta: float, scale: float, reduction: str, smooth_l1: bool = False) -> Tensor:
    """scale * huber(x - t, delta), reduced, recorded as one op (x and t share a shape). smooth_l1 with
    beta is huber with delta = beta, scaled by 1 / beta.

    With c = clip(d, -delta, delta), huber(d) = c (d - c / 2): 0.5 d^2 inside, delta (|d| - delta / 2)
    outside, inf at an infinite d and NaN at a NaN, as torch's; c is also the gradient (torch's rule,
    +-delta at +-inf), so it is kept for backward and the forward needs no branch masks."""
    rule = _smooth_l1_loss_vjp if smooth_l1 else _huber_loss_vjp  # one rule under torch's two node names
    xp = namespace_of(x.array)
    d = x.array - t.array
    c = xp.clip(d, -delta, delta)
    host = type(d) is np.ndarray
    if host:  # fewer passes and temporaries over the data
        e = np.multiply(c, -0.5)
        e += d
    else:
        e = d - 0.5 * c
    if reduction == "none":
        loss = np.multiply(c, e, out=e) if host else c * e
        if scale != 1.0:
            loss = np.multiply(loss, scale, out=loss) if host else loss * scale
        return record_op(loss.astype(x.array.dtype, copy=False), (x, t), rule, (delta, scale, c))
    if host:
        wide = np.float32 if d.dtype == np.float16 else None  # float16 sums in float32, as torch
        total = np.vdot(c.astype(wide), e.astype(wide)) if wide else np.vdot(c, e)
    else:
        total = xp.sum(c * e)
    n = d.size
    if reduction == "mean":
        scale = scale / n if n else math.nan  # the mean of an empty batch is NaN, as torch's
    value = xp.asarray(total * scale, dtype=x.array.dtype)
    return record_op(value, (x, t), rule, (delta, scale, c))


def _huber_loss_vjp(g, y, args, saved, needs, xp):
    # the gradient is c = clip(d, -delta, delta): d inside, +-delta outside (also at +-inf, where a
    # where() over both branches would make 0 * inf = NaN); NaN stays NaN, as in torch's rule
    delta, scale, c = saved
    if xp.differentiable:  # create_graph: a recorded expression, d's derivative 1 inside, 0 outside
        d = args[0] - args[1]
        c = xp.where(namespace_of(c).abs(c) < delta, d, delta * xp.sign(d))
    gd = c * (g * scale)
    return (gd if needs[0] else None, -gd if needs[1] else None)


def _smooth_l1_loss_vjp(g, y, args, saved, needs, xp):
    """huber's rule (the loss is huber scaled by 1 / beta), under torch's node name SmoothL1LossBackward0."""
    return _huber_loss_vjp(g, y, args, saved, needs, xp)


def smooth_l1_loss(
    input: Tensor,
    target: Any,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    beta: float = 1.0,
) -> Tensor:
    """0.5 d^2 / beta where |d| < beta, else |d| - 0.5 beta (Huber divided by beta; L1 when beta=0)."""
    x, reduction = _input_and_reduction(input, "smooth_l1_loss", size_average, reduce, reduction)
    if beta < 0:
        raise InvalidValueError(f"smooth_l1_loss: beta must be non-negative, got {beta}")  # torch: a RuntimeError
    x, t = _broadcast_pair(x, target, "smooth_l1_loss", warn=True, reduction=reduction, promote="types")
    if beta == 0:
        return _reduce(ops.abs(x - t), reduction)
    beta = float(beta)  # host: a Python number (a NumPy float64 would widen float32 results)
    return _huber_op(x, t, beta, 1.0 / beta, reduction, smooth_l1=True)


def poisson_nll_loss(
    input: Tensor,
    target: Any,
    log_input: bool = True,
    full: bool = False,
    size_average: bool | None = None,
    eps: float = 1e-08,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Tensor:
    """Negative log-likelihood of a Poisson target: exp(x) - y x (log_input) or x - y log(x + eps);
    ``full`` adds Stirling's approximation of log(y!) where y > 1."""
    reduction = _reduction_arg(size_average, reduce, reduction, "poisson_nll_loss")
    x = _input(input, "poisson_nll_loss")
    x, y = _broadcast_pair(x, target, "poisson_nll_loss", promote="result")
    loss = ops.exp(x) - y * x if log_input else x - y * ops.log(x + eps)
    if full:
        # Stirling's term as ops on the target, so that a target that requires grad gets its
        # derivative log(y) + 1/(2y) (torch's formula; masked to 0 where y <= 1, and like torch's
        # NaN at y = 0, where 0 * log(0) enters the chain)
        with np.errstate(divide="ignore", invalid="ignore"):
            stirling = y * ops.log(y) - y + 0.5 * ops.log(2 * np.pi * y)
        loss = loss + ops.where(y.array > 1, stirling, scalar(0.0, x.array.dtype))
    return _reduce(loss, reduction)


@_legacy_reduction
def gaussian_nll_loss(
    input: Tensor, target: Any, var: Any, full: bool = False, eps: float = 1e-6, reduction: str = "mean"
) -> Tensor:
    """Negative log-likelihood of a Gaussian target: (log(var) + (x - y)^2 / var) / 2, with var
    clamped below at ``eps`` (the clamp passes the gradient through, as in PyTorch); ``full`` adds
    log(2 pi) / 2. ``var`` has the input's shape, or lacks (or has size 1 in) its last dim; a
    Python float is one variance for every element (as PyTorch).

    Example:
        >>> import downslope as ds
        >>> import downslope.nn.functional as F
        >>> round(F.gaussian_nll_loss(ds.tensor([1.0, 2.0]), ds.tensor([1.0, 0.0]), 0.5).item(), 4)
        1.6534
    """
    _check_reduction(reduction, "gaussian_nll_loss")
    x = _input(input, "gaussian_nll_loss")
    if isinstance(var, float):  # PyTorch takes a Python float (not an int) as a variance for every element
        if var < 0:
            raise ArgumentError("gaussian_nll_loss: var has negative entry/entries")
        var = wrap_array(namespace_of(x.array).full(x.shape, var, dtype=x.array.dtype))
    v = _as_input_tensor(var, x)
    if v.shape != x.shape and v.shape == x.shape[:-1]:
        v = ops.unsqueeze(v, -1)
    if v.ndim != x.ndim or any(a not in (b, 1) for a, b in zip(v.shape, x.shape)):
        raise ShapeError(f"gaussian_nll_loss: var shape {tuple(v.shape)} does not fit input shape {tuple(x.shape)}")
    if is_host(v.array) and np.any(v.array < 0):  # a value check: on a device it would synchronise
        raise ArgumentError("gaussian_nll_loss: var has negative entries")
    x, y = _broadcast_pair(x, target, "gaussian_nll_loss", promote="result")
    # added as a constant, so the gradient reaches var unchanged; 0 where var >= eps (not max(var, eps) - var,
    # which is inf - inf = NaN at var = inf, where torch's loss is inf and its gradients finite)
    floor = namespace_of(v.array).where(v.array < eps, eps - v.array, 0)
    v = v + floor.astype(x.array.dtype)
    loss = 0.5 * (ops.log(v) + (x - y) ** 2 / v)
    if full:
        loss = loss + 0.5 * math.log(2 * math.pi)
    return _reduce(loss, reduction)


class MSELoss(_Loss):
    """Mean squared error (see :func:`mse_loss`).

    Example:
        >>> import downslope as ds
        >>> ds.nn.MSELoss()(ds.tensor([1.0, 3.0]), ds.tensor([1.0, 1.0]))
        tensor(2.)
    """

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return mse_loss(input, target, reduction=self.reduction)


class L1Loss(_Loss):
    """Mean absolute error (see :func:`l1_loss`)."""

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return l1_loss(input, target, reduction=self.reduction)


class HuberLoss(_Loss):
    """Quadratic below ``delta``, linear above (see :func:`huber_loss`)."""

    def __init__(self, reduction: str = "mean", delta: float = 1.0) -> None:
        super().__init__(reduction=reduction)
        self.delta = float(delta)  # host: a Python number

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return huber_loss(input, target, reduction=self.reduction, delta=self.delta)


class SmoothL1Loss(_Loss):
    """Huber loss divided by ``beta`` (see :func:`smooth_l1_loss`)."""

    def __init__(
        self, size_average: bool | None = None, reduce: bool | None = None, reduction: str = "mean", beta: float = 1.0
    ) -> None:
        super().__init__(size_average, reduce, reduction)
        self.beta = float(beta)  # host: a Python number

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return smooth_l1_loss(input, target, reduction=self.reduction, beta=self.beta)


class PoissonNLLLoss(_Loss):
    """See :func:`poisson_nll_loss`."""

    def __init__(
        self,
        log_input: bool = True,
        full: bool = False,
        size_average: bool | None = None,
        eps: float = 1e-8,
        reduce: bool | None = None,
        reduction: str = "mean",
    ) -> None:
        super().__init__(size_average, reduce, reduction)
        self.log_input, self.full, self.eps = bool(log_input), bool(full), float(eps)  # host: a Python number

    def forward(self, log_input: Tensor, target: Any) -> Tensor:
        return poisson_nll_loss(log_input, target, self.log_input, self.full, eps=self.eps, reduction=self.reduction)


class GaussianNLLLoss(_Loss):
    """See :func:`gaussian_nll_loss`."""

    def __init__(self, *, full: bool = False, eps: float = 1e-6, reduction: str = "mean") -> None:
        super().__init__(reduction=reduction)
        self.full, self.eps = bool(full), float(eps)  # host: a Python number

    def forward(self, input: Tensor, target: Any, var: Any) -> Tensor:
        return gaussian_nll_loss(input, target, var, self.full, self.eps, self.reduction)
