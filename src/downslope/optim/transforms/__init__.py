"""Update rules as small composable gradient transformations (in the manner of Optax).

A :class:`GradientTransformation` is a pair of functions over FLAT arrays (one contiguous vector
holding every parameter of a group, see ``optimizer.py``)::

    init(params) -> state                                  # state: dict of flat arrays
    update(grads, state, params, ctx) -> (updates, state)

``update`` turns gradients into the updates that are *added* to the parameters
(``params += updates``), so the last transform of a descent chain is ``scale_by_lr``, which
multiplies by ``-lr``. To stay fast, transforms work in place: ``grads`` is a private buffer that a
transform may overwrite and return as ``updates``, and state arrays are mutated in place.
``ctx`` (:class:`StepContext`) carries what a pure function of the gradients cannot know: the
per-parameter step count (1 on the first update, as in PyTorch), the number of updates applied so
far (``count``, what a schedule is a function of) and the parameter group's hyperparameters.

Hyperparameters may be plain numbers, a schedule (a function of ``count``) or ``from_group("lr")``
(read from the optimizer's param group at every step, so that lr schedulers and momentum cycling
can change them mid-run).

Example:
    >>> import numpy as np
    >>> from downslope.optim import transforms as T
    >>> adam = T.chain(T.scale_by_adam(b1=0.9, b2=0.999, eps=1e-8), T.scale_by_lr(0.1))
    >>> params = np.array([1.0, -2.0], dtype=np.float32)
    >>> state = adam.init(params)
    >>> updates, state = adam.update(np.array([0.5, -0.5], np.float32), state, params, T.StepContext({}, 1, 0))
    >>> updates.round(6)  # Adam's first step moves each coordinate by lr against its gradient's sign
    array([-0.1,  0.1], dtype=float32)
"""

from __future__ import annotations

from .adaptive import (
    scale_by_adadelta,
    scale_by_adagrad,
    scale_by_adam,
    scale_by_adamax,
    scale_by_asgd,
    scale_by_lion,
    scale_by_nadam,
    scale_by_radam,
    scale_by_rms,
    scale_by_rprop,
)
from .base import (
    GradientTransformation,
    Schedule,
    State,
    StepContext,
    chain,
    from_group,
    hyper,
    identity,
    update_once,
)
from .clipping import (
    clip,
    clip_by_global_norm,
    clip_to_max_norm_,
    global_norm,
    scale_to_max_norm_,
)
from .momentum import trace
from .simple import add_decayed_weights, negate_if, scale, scale_by_lr

__all__ = [
    "GradientTransformation",
    "Schedule",
    "State",
    "StepContext",
    "add_decayed_weights",
    "chain",
    "clip",
    "clip_by_global_norm",
    "clip_to_max_norm_",
    "from_group",
    "global_norm",
    "hyper",
    "identity",
    "negate_if",
    "scale",
    "scale_by_adadelta",
    "scale_by_adagrad",
    "scale_by_asgd",
    "scale_by_rprop",
    "scale_by_adam",
    "scale_by_adamax",
    "scale_by_lion",
    "scale_by_lr",
    "scale_by_nadam",
    "scale_by_radam",
    "scale_by_rms",
    "scale_to_max_norm_",
    "trace",
    "update_once",
]
