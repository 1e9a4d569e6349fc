"""Clipping: per coordinate (clip) and by the global norm (clip_by_global_norm, with the one
definition of the total norm and of PyTorch's clipping coefficient)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .base import (
    GradientTransformation,
    State,
    StepContext,
    _no_state,
    hyper,
)


def clip(max_delta: Any) -> GradientTransformation:
    """Clip every coordinate of the updates into ``[-max_delta, max_delta]``.

    Example:
        >>> from downslope.optim import transforms as T
        >>> T.update_once(T.clip(1.5), [1.0, -2.0])
        array([ 1. , -1.5])
    """

    def update(g: np.ndarray, state: State, params: np.ndarray, ctx: StepContext) -> tuple[np.ndarray, State]:
        m = hyper(max_delta, ctx)
        np.clip(g, -m, m, out=g)
        return g, state

    return GradientTransformation(_no_state, update)


def global_norm(arrays: list[np.ndarray], norm_type: float = 2.0) -> float:
    """The norm of all ``arrays`` taken together as one vector (``norm_type`` 2, inf or any p > 0).

    The one definition of "total gradient norm" behind ``clip_grad_norm_``, the optimizers'
    ``clip_norm=`` option and :func:`clip_by_global_norm`. The 2-norm sums per-array dot products
    in float64, so a large float32 model does not lose precision in the sum.
    """
    if not arrays:
        return 0.0
    if norm_type == 2.0:
        return math.sqrt(sum(float(np.dot(a.reshape(-1), a.reshape(-1))) for a in arrays))
    if math.isinf(norm_type):
        return max((float(np.max(np.abs(a))) for a in arrays if a.size), default=0.0)
    per_array = [float(np.linalg.norm(a.reshape(-1), ord=norm_type)) for a in arrays]
    return float(np.linalg.norm(np.asarray(per_array), ord=norm_type))


def scale_to_max_norm_(arrays: list[np.ndarray], max_norm: float, total: float) -> None:
    """Multiply ``arrays`` in place by PyTorch's clipping coefficient ``max_norm / (total + 1e-6)``
    when it is below 1 (``total`` is their norm, from :func:`global_norm`)."""
    coef = max_norm / (total + 1e-6)
    if coef < 1.0:
        with np.errstate(invalid="ignore"):  # inf * 0 is NaN, as in PyTorch
            for a in arrays:
                a *= coef


def clip_by_global_norm(max_norm: Any) -> GradientTransformation:
    """Rescale the updates so their L2 norm is at most ``max_norm`` (PyTorch's coefficient
    ``max_norm / (norm + 1e-6)``, applied only when it is below 1).
    Example:
        >>> import numpy as np
        >>> from downslope.optim import transforms as T
        >>> T.update_once(T.clip_by_global_norm(1.0), [3.0, 4.0]).round(6)
        array([0.6, 0.8])
    """

    def update(g: np.ndarray, state: State, params: np.ndarray, ctx: StepContext) -> tuple[np.ndarray, State]:
        scale_to_max_norm_([g], hyper(max_norm, ctx), global_norm([g]))
        return g, state

    return GradientTransformation(_no_state, update)
