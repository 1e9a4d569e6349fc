"""Keras 3's regression and margin losses by name, for ``fit(loss="msle")`` and the metrics of those names.

Each is Keras 3's formula (``keras/src/losses/losses.py``), clipping included, on downslope Tensors (so
it has gradients, in the outputs' dtype and on their device). A sample's loss is taken over the last
axis (a mean, or a sum for ``kl_divergence`` and ``cosine_similarity``, as Keras takes it), and the
loss is the mean over samples (Keras' ``sum_over_batch_size``). The cross-entropies are
:class:`~downslope.train.evaluation.KerasCrossEntropy`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from ..backend import namespace_of
from ..devices import to_host
from ..errors import ConfigError
from ..tensor import Tensor, wrap_array

_EPSILON = 1e-7  # Keras' backend.epsilon()


def _msle(p: Tensor, t: Tensor) -> Tensor:
    first = (p.clamp(min=_EPSILON) + 1.0).log()
    second = (t.clamp(min=_EPSILON) + 1.0).log()
    return ((first - second) ** 2).mean(dim=-1)


def _mape(p: Tensor, t: Tensor) -> Tensor:
    return 100.0 * ((t - p) / t.abs().clamp(min=_EPSILON)).abs().mean(dim=-1)


def _poisson(p: Tensor, t: Tensor) -> Tensor:
    return (p - t * (p + _EPSILON).log()).mean(dim=-1)


def _kl_divergence(p: Tensor, t: Tensor) -> Tensor:
    t = t.clamp(_EPSILON, 1.0)
    p = p.clamp(_EPSILON, 1.0)
    return (t * (t / p).log()).sum(dim=-1)


def _log_cosh(p: Tensor, t: Tensor) -> Tensor:
    from ..nn.functional import softplus

    x = p - t
    return (x + softplus(x * -2.0) - math.log(2.0)).mean(dim=-1)


def _hinge_labels(t: Tensor) -> Tensor:
    """Keras' hinge losses take -1/1 labels; 0/1 labels (all of them 0 or 1) become -1/1 first."""
    xp = namespace_of(t.array)
    binary = bool(to_host(xp.all((t.array == 0) | (t.array == 1))))  # host: Keras decides it per batch too
    return t * 2.0 - 1.0 if binary else t


def _hinge(p: Tensor, t: Tensor) -> Tensor:
    return (1.0 - _hinge_labels(t) * p).clamp(min=0.0).mean(dim=-1)


def _squared_hinge(p: Tensor, t: Tensor) -> Tensor:
    return ((1.0 - _hinge_labels(t) * p).clamp(min=0.0) ** 2).mean(dim=-1)


def _categorical_hinge(p: Tensor, t: Tensor) -> Tensor:
    positive = (t * p).sum(dim=-1)
    negative = ((1.0 - t) * p).amax(dim=-1)
    return (negative - positive + 1.0).clamp(min=0.0)


def _l2_normalize(x: Tensor) -> Tensor:
    # Keras' x * min(rsqrt(sum(x^2)), 1/eps), written as a clamp of the sum, so that a zero row has a
    # zero gradient, not NaN
    return x * (x * x).sum(dim=-1, keepdim=True).clamp(min=_EPSILON**2).rsqrt()


def _cosine_similarity(p: Tensor, t: Tensor) -> Tensor:
    return -(_l2_normalize(t) * _l2_normalize(p)).sum(dim=-1)


#: Keras 3's loss names (and legacy aliases) with each one's per-sample formula ``f(outputs, targets)``.
KERAS_LOSSES: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    "mean_squared_logarithmic_error": _msle,
    "mean_absolute_percentage_error": _mape,
    "poisson": _poisson,
    "kl_divergence": _kl_divergence,
    "log_cosh": _log_cosh,
    "hinge": _hinge,
    "squared_hinge": _squared_hinge,
    "categorical_hinge": _categorical_hinge,
    "cosine_similarity": _cosine_similarity,
}
KERAS_LOSS_ALIASES = {
    "msle": "mean_squared_logarithmic_error",
    "mape": "mean_absolute_percentage_error",
    "kld": "kl_divergence",
    "kullback_leibler_divergence": "kl_divergence",
    "logcosh": "log_cosh",
}


class KerasLoss:
    """Keras 3's loss ``name`` (see :data:`KERAS_LOSSES`): ``msle`` ``log((max(p, 1e-7) + 1) / (max(y, 1e-7)
    + 1))^2``, ``mape`` ``100 |y - p| / max(|y|, 1e-7)``, ``poisson`` ``p - y log(p + 1e-7)``,
    ``kl_divergence`` ``sum y log(y / p)`` (both clipped to [1e-7, 1]), ``log_cosh`` ``log(cosh(p - y))``,
    ``hinge`` ``max(1 - y p, 0)`` and ``squared_hinge`` its square (0/1 labels become -1/1, as Keras does),
    ``categorical_hinge`` ``max(max((1 - y) p) - sum(y p) + 1, 0)`` (one-hot targets) and
    ``cosine_similarity`` ``-sum(y / |y| * p / |p|)`` (norms at least 1e-7).

    Targets take the outputs' shape (``(N,)`` targets for ``(N, 1)`` outputs gain their last axis) and
    dtype. ``reduction``: ``'mean'`` over samples (Keras' default), ``'sum'`` or ``'none'`` (one value per
    sample).

    Example:
        >>> import downslope as ds
        >>> from downslope.train.keras_losses import KerasLoss
        >>> round(KerasLoss("hinge")(ds.tensor([[0.5], [-2.0]]), ds.tensor([1.0, 0.0])).item(), 4)
        0.25
    """

    def __init__(self, name: str, reduction: str = "mean") -> None:
        key = KERAS_LOSS_ALIASES.get(name.lower(), name.lower())
        if key not in KERAS_LOSSES:
            raise ConfigError(f"KerasLoss: unknown loss {name!r}; use one of {', '.join(KERAS_LOSSES)}")
        if reduction not in ("mean", "sum", "none"):
            raise ConfigError(f"KerasLoss: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
        self.name = key
        self.reduction = reduction
        self.__name__ = key

    def __repr__(self) -> str:
        return f"KerasLoss({self.name!r})"

    def __call__(self, outputs: Tensor, target: Any) -> Tensor:
        t = target if isinstance(target, Tensor) else wrap_array(namespace_of(outputs.array).asarray(target))
        given = tuple(t.shape)
        if t.ndim == outputs.ndim - 1 and outputs.ndim >= 1 and outputs.shape[-1] == 1:
            t = t.unsqueeze(-1)  # (N,) targets of (N, 1) outputs, as Keras' squeeze_or_expand_to_same_rank
        if tuple(t.shape) != tuple(outputs.shape):
            raise ConfigError(
                f"{self.name}: expected targets of the outputs' shape {tuple(outputs.shape)}, got {given}"
                + (" (one-hot rows: class indices do not fit this loss)" if self.name == "categorical_hinge" else "")
            )
        if outputs.ndim == 0:
            raise ConfigError(f"{self.name}: expected outputs with a sample axis, got a scalar")
        t = wrap_array(t.array.astype(outputs.dtype, copy=False))
        per = KERAS_LOSSES[self.name](outputs, t)
        if self.reduction == "none":
            return per
        return per.sum() if self.reduction == "sum" else per.mean()


__all__ = ["KerasLoss", "KERAS_LOSSES", "KERAS_LOSS_ALIASES"]
