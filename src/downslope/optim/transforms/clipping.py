"""Clipping: per coordinate (clip) and by the global norm (clip_by_global_norm).

The total norm and PyTorch's clipping coefficient are those of :mod:`downslope.nn.utils`
(global_norm, scale_to_max_norm_, beside clip_grad_norm_), computed here without leaving the
arrays' device: the norm stays a 0-d array and the coefficient is applied as ``min(coef, 1)``, so a
step on a GPU never waits for the host. The arithmetic is the same, in the same order (float64
sum of per-array float32 dot products, the coefficient cast to the arrays' dtype), so the results
are bit-identical to the host versions.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ...nn.utils import global_norm, scale_to_max_norm_  # noqa: F401  (re-exported by transforms)
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
        clip_to_max_norm_([g], hyper(max_norm, ctx))
        return g, state

    return GradientTransformation(_no_state, update)


def clip_to_max_norm_(arrays: list[Any], max_norm: float) -> None:
    """Multiply ``arrays`` in place by PyTorch's coefficient ``max_norm / (norm + 1e-6)`` when it is
    below 1: nn.utils' one clipping rule over their global 2-norm, with no host round-trip."""
    if arrays:
        scale_to_max_norm_(arrays, max_norm, global_norm(arrays))
