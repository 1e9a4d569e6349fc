"""Gradient clipping as functions over parameters' ``.grad`` (PyTorch's ``clip_grad_norm_`` and
``clip_grad_value_``). The same clipping is available as optimizer options (``clip_norm=``,
``clip_value=``), which leave ``.grad`` untouched."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from ..errors import ArgumentError, ArgumentTypeError, StateError
from ..tensor import Tensor
from .transforms import global_norm, scale_to_max_norm_


def _grads(parameters: Any, owner: str) -> list[np.ndarray]:
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    if isinstance(parameters, (set, frozenset)):
        parameters = list(parameters)  # the order does not matter for a norm
    out = []
    for i, p in enumerate(parameters):
        if not isinstance(p, Tensor):
            raise ArgumentTypeError(f"{owner}: item {i} is a {type(p).__name__}, expected a Tensor")
        if p.grad is not None:
            out.append(p.grad.array)
    return out


def clip_grad_norm_(
    parameters: Tensor | Iterable[Tensor],
    max_norm: float,
    norm_type: float = 2.0,
    error_if_nonfinite: bool = False,
) -> Tensor:
    """Scale the gradients in place so that their total norm is at most ``max_norm``.

    The total norm is that of all gradients concatenated into one vector (``norm_type`` may be
    ``inf``). As in PyTorch, gradients are multiplied by ``max_norm / (total_norm + 1e-6)`` when
    that is below 1. Returns the total norm *before* clipping (a 0-d tensor).

    Example:
        >>> import downslope as ds
        >>> from downslope.optim import clip_grad_norm_
        >>> w = ds.tensor([3.0, 4.0], requires_grad=True)
        >>> (w * w).sum().backward()        # grad = [6, 8], norm 10
        >>> float(clip_grad_norm_([w], max_norm=1.0))
        10.0
        >>> w.grad
        tensor([0.6, 0.8])
    """
    norm_type = float(norm_type)
    if not _number(max_norm) or max_norm < 0:
        raise ArgumentError(f"clip_grad_norm_: expected max_norm >= 0, got {max_norm!r}")
    if not (norm_type > 0 or math.isinf(norm_type)):
        raise ArgumentError(f"clip_grad_norm_: expected norm_type > 0 or inf, got {norm_type!r}")
    grads = _grads(parameters, "clip_grad_norm_")
    if not grads:
        return Tensor(0.0)
    dtype = grads[0].dtype
    total = global_norm(grads, norm_type)
    if error_if_nonfinite and not math.isfinite(total):
        raise StateError(
            f"clip_grad_norm_: the total norm of order {norm_type} of the gradients is {total}, so they cannot be "
            "clipped; set error_if_nonfinite=False to clip anyway (the result will be NaN)"
        )
    scale_to_max_norm_(grads, float(max_norm), total)
    return Tensor(np.asarray(total, dtype=dtype), dtype=dtype)


def clip_grad_value_(parameters: Tensor | Iterable[Tensor], clip_value: float) -> None:
    """Clip every gradient coordinate into ``[-clip_value, clip_value]`` in place.

    Example:
        >>> import downslope as ds
        >>> from downslope.optim import clip_grad_value_
        >>> w = ds.tensor([3.0, -0.1], requires_grad=True)
        >>> (w * w).sum().backward()
        >>> clip_grad_value_([w], 1.0); w.grad
        tensor([ 1. , -0.2])
    """
    if not _number(clip_value) or clip_value < 0:
        raise ArgumentError(f"clip_grad_value_: expected clip_value >= 0, got {clip_value!r}")
    for g in _grads(parameters, "clip_grad_value_"):
        np.clip(g, -clip_value, clip_value, out=g)


def _number(v: Any) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)
