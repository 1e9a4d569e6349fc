"""Optimizers whose ``step`` must be given a closure (L-BFGS): telling them apart from the others.

A training loop calls ``optimizer.step()`` after ``loss.backward()``; an optimizer that re-evaluates
the loss itself (L-BFGS's line search) needs ``optimizer.step(closure)`` instead, with a closure
that zeroes the gradients, recomputes the loss, calls ``backward()`` and returns it, as a PyTorch
loop passes one. :func:`needs_closure` says which kind ``optimizer`` is.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any


def needs_closure(optimizer: Any) -> bool:
    """Whether ``optimizer.step`` must be given a closure: :class:`~downslope.optim.LBFGS`, an optimizer
    whose ``requires_closure`` attribute is true, or one whose ``step(closure)`` has no default for it
    (PyTorch's own ``LBFGS.step(self, closure)``). Other optimizers are stepped without one, so their
    step costs no second forward pass.

    Example:
        >>> from downslope import nn, optim
        >>> p = list(nn.Linear(2, 1).parameters())
        >>> needs_closure(optim.LBFGS(p)), needs_closure(optim.SGD(p, lr=0.1))
        (True, False)
    """
    from ..optim import LBFGS

    if isinstance(optimizer, LBFGS) or getattr(optimizer, "requires_closure", False) is True:
        return True
    step = getattr(optimizer, "step", None)
    if step is None:
        return False
    method = getattr(step, "__func__", None)  # a class's step: its signature read once (fit asks every batch)
    return _closure_required(method) if method is not None else _signature_requires_closure(step)


@functools.lru_cache(maxsize=256)
def _closure_required(method: Any) -> bool:
    return _signature_requires_closure(method, bound=False)


def _signature_requires_closure(step: Any, bound: bool = True) -> bool:
    """Whether ``step``'s first argument (after ``self`` for an unbound method) has no default."""
    try:
        parameters = list(inspect.signature(step).parameters.values())
    except (TypeError, ValueError):  # a builtin or C-implemented step: no signature to read
        return False
    if not bound:
        parameters = parameters[1:]
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return bool(parameters) and parameters[0].kind in positional and parameters[0].default is inspect.Parameter.empty


__all__ = ["needs_closure"]
