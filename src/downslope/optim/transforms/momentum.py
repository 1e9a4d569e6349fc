"""Heavy-ball and Nesterov momentum (PyTorch's SGD form)."""

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
    hyper,
)


def trace(momentum: Any, dampening: Any = 0.0, nesterov: Any = False) -> GradientTransformation:
    """Heavy-ball momentum, PyTorch's SGD form::

        buf = g                               (first step)
        buf = momentum * buf + (1 - dampening) * g
        update = g + momentum * buf  if nesterov else  buf

    No buffer is kept while ``momentum`` is 0 (it may be switched on later by a scheduler).

    Example:
        >>> import numpy as np
        >>> from downslope.optim import transforms as T
        >>> T.update_once(T.trace(0.9, nesterov=True), [1.0, -2.0])  # first step: g + 0.9 * g
        array([ 1.9, -3.8])
    """

    def update(g: np.ndarray, state: State, params: np.ndarray, ctx: StepContext) -> tuple[np.ndarray, State]:
        mu = hyper(momentum, ctx)
        if mu == 0:
            return g, state
        damp = hyper(dampening, ctx)
        buf = state.get("momentum_buffer")
        first = ctx.first
        if buf is None:
            # float16 parameters: a float16 buffer (their g comes as float32 from chain)
            buf = g.astype(np.float16) if params.dtype == np.float16 else g.copy()
            state["momentum_buffer"] = buf
        elif isinstance(first, (bool, np.bool_)) and first:
            buf[...] = g
        else:
            buf *= _opmath(buf, mu)
            if damp == 0:  # the usual case: no scaled copy of g (one pass over the buffers fewer)
                buf += g
            else:
                tmp = ctx.scratch(g, 1)
                np.multiply(g, 1 - damp, out=tmp)
                buf += tmp
            if not isinstance(first, (bool, np.bool_)):  # parameters on their first step start from g
                np.copyto(buf, g, where=first)  # not buf[first] = g[first]: masks make a GPU synchronise
        started = state.get("momentum_started")
        if started is not None:  # a state saved by an older version: its parameters' buffers not yet made
            np.copyto(buf, g, where=started == 0)  # (now marked as parameters without state: see buckets)
            del state["momentum_started"]  # made now: the state holds PyTorch's keys again
        if hyper(nesterov, ctx):
            tmp = ctx.scratch(g, 1)
            np.multiply(buf, _opmath(buf, mu), out=tmp)
            g += tmp
            _round_as(g, buf)  # PyTorch's float16 nesterov step rounds g + mu * buf
        else:
            g[...] = buf
        return g, state

    return GradientTransformation(_no_state, update)
