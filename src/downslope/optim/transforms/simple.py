"""Transforms without state: scale, scale_by_lr, negate_if, add_decayed_weights."""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import (
    GradientTransformation,
    State,
    StepContext,
    _no_state,
    _opmath,
    _round_as,
    from_group,
    hyper,
)


def scale(factor: Any) -> GradientTransformation:
    """Multiply the updates by ``factor`` (a number, schedule or ``from_group``).

    Example:
        >>> from downslope.optim import transforms as T
        >>> T.update_once(T.scale(2.0), [1.0, -2.0])
        array([ 2., -4.])
    """

    def update(g: np.ndarray, state: State, params: np.ndarray, ctx: StepContext) -> tuple[np.ndarray, State]:
        f = hyper(factor, ctx)
        if f != 1:
            g *= f
        return g, state

    return GradientTransformation(_no_state, update)


def scale_by_lr(lr: Any = from_group("lr")) -> GradientTransformation:  # noqa: B008 - an immutable marker
    """The descent step: ``updates = -lr * updates``.

    ``lr`` is a float, a schedule (a pure function of the update count, Optax style) or, by default,
    ``from_group("lr")``: the live learning rate of the param group, which lr schedulers change.

    Example:
        >>> import numpy as np
        >>> from downslope.optim import transforms as T
        >>> T.update_once(T.scale_by_lr(0.1), [1.0, -2.0])
        array([-0.1,  0.2])
    """

    def update(g: np.ndarray, state: State, params: np.ndarray, ctx: StepContext) -> tuple[np.ndarray, State]:
        g *= -hyper(lr, ctx)
        return g, state

    return GradientTransformation(_no_state, update)


def negate_if(flag: Any) -> GradientTransformation:
    """Flip the gradient's sign when ``flag`` is true (PyTorch's ``maximize``).

    Example:
        >>> from downslope.optim import transforms as T
        >>> T.update_once(T.negate_if(True), [1.0, -2.0])
        array([-1.,  2.])
    """

    def update(g: np.ndarray, state: State, params: np.ndarray, ctx: StepContext) -> tuple[np.ndarray, State]:
        if hyper(flag, ctx):
            np.negative(g, out=g)
        return g, state

    return GradientTransformation(_no_state, update)


def add_decayed_weights(weight_decay: Any, *, decoupled: bool = False) -> GradientTransformation:
    """``updates += weight_decay * params``.

    Before the moments it is L2 regularisation (PyTorch's ``weight_decay`` in SGD/Adam); after them
    and before ``scale_by_lr`` it is decoupled weight decay (AdamW: ``p -= lr * wd * p``). PyTorch
    applies decoupled decay as a shrink of the parameter first (``p *= 1 - lr * wd``), so an infinite
    parameter stays infinite whatever the step; ``decoupled=True`` keeps that by decaying infinite
    parameters as the largest finite number (an infinite term would make ``p + update`` inf - inf).

    Example:
        >>> import numpy as np
        >>> from downslope.optim import transforms as T
        >>> T.update_once(T.add_decayed_weights(0.5), [1.0, -2.0], params=[2.0, 2.0])
        array([ 2., -1.])
    """

    def update(g: np.ndarray, state: State, params: np.ndarray, ctx: StepContext) -> tuple[np.ndarray, State]:
        wd = hyper(weight_decay, ctx)
        if wd != 0:
            tmp = ctx.scratch(g, 1)
            # float16 parameters: PyTorch's g.add(p, alpha=wd), whose float16 kernel rounds alpha to float16
            # and the sum once (float32 arithmetic in between)
            half_wd = float(np.float16(wd))  # host: a Python hyperparameter, rounded as torch's float16 alpha
            source = params
            if decoupled:
                big = np.finfo(params.dtype).max
                source = np.clip(params, -big, big, out=tmp)
            np.multiply(source, _opmath(params, half_wd) if params.dtype == np.float16 else wd, out=tmp)
            g += tmp
            _round_as(g, params)
        return g, state

    return GradientTransformation(_no_state, update)
