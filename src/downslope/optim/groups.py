"""Parameter groups built for the common case: weight decay on weights, none on biases and norm layers.

Decaying a bias or a normalization layer's scale and shift pulls them toward zero for no benefit;
the usual practice (BERT, timm, nanoGPT) is one group with decay for the weight matrices and
kernels, and one group without for every parameter with at most one dimension.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from ..errors import ArgumentError, ArgumentTypeError
from ..tensor import Tensor

__all__ = ["weight_decay_groups"]


def weight_decay_groups(
    model: Any,
    weight_decay: float,
    *,
    no_decay: Iterable[str] = (),
    max_ndim_without_decay: int = 1,
) -> list[dict[str, Any]]:
    """Split a model's parameters into a group with ``weight_decay`` and one with ``weight_decay=0``.

    A parameter goes to the no-decay group when it has at most ``max_ndim_without_decay``
    dimensions (biases, and the scale and shift of BatchNorm/LayerNorm/GroupNorm), or when its name
    is in ``no_decay`` or ends with ``"." + an entry`` of it (e.g. ``no_decay=("pos_embedding",)``).
    Parameters with ``requires_grad=False`` (frozen) are left out. The groups keep the parameter
    names, so the optimizer's state dict names them too; an empty group is left out.

    Args:
        model: a Module (its ``named_parameters()`` are used) or an iterable of ``(name, Tensor)``.
        weight_decay: the decay of the first group (a finite number >= 0).
        no_decay: names (or name suffixes after a dot) never to decay.
        max_ndim_without_decay: parameters with this many dimensions or fewer are not decayed
            (-1 turns the rule off, leaving only ``no_decay``).

    Returns:
        ``[{"params": [(name, param), ...], "weight_decay": weight_decay},
        {"params": [...], "weight_decay": 0.0}]`` to pass to any optimizer.

    Example:
        >>> from downslope import nn, optim
        >>> model = nn.Sequential(nn.Linear(4, 8), nn.LayerNorm(8), nn.Linear(8, 2))
        >>> groups = optim.weight_decay_groups(model, 0.05)
        >>> [[name for name, _ in g["params"]] for g in groups]
        [['0.weight', '2.weight'], ['0.bias', '1.weight', '1.bias', '2.bias']]
        >>> opt = optim.AdamW(groups, lr=1e-3)
        >>> [g["weight_decay"] for g in opt.param_groups]
        [0.05, 0.0]
    """
    where = "weight_decay_groups"
    if isinstance(weight_decay, bool) or not isinstance(weight_decay, (int, float)):
        raise ArgumentTypeError(f"{where}: weight_decay must be a number, got {type(weight_decay).__name__}")
    if not math.isfinite(weight_decay) or weight_decay < 0:
        raise ArgumentError(f"{where}: invalid weight_decay={weight_decay!r}; expected a finite number >= 0")
    if isinstance(max_ndim_without_decay, bool) or not isinstance(max_ndim_without_decay, int):
        raise ArgumentTypeError(
            f"{where}: max_ndim_without_decay must be an integer, got {type(max_ndim_without_decay).__name__}"
        )
    if isinstance(no_decay, str):
        raise ArgumentTypeError(f"{where}: no_decay must be a collection of names, got the string {no_decay!r}")
    skip = tuple(no_decay)
    named = model.named_parameters() if hasattr(model, "named_parameters") else model
    decay: list[tuple[str, Tensor]] = []
    keep: list[tuple[str, Tensor]] = []
    for i, item in enumerate(named):
        if not (isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str)):
            raise ArgumentTypeError(
                f"{where}: expected a Module or (name, Tensor) pairs; item {i} is {type(item).__name__}"
            )
        name, param = item
        if not isinstance(param, Tensor):
            raise ArgumentTypeError(f"{where}: parameter {name!r} is a {type(param).__name__}, not a Tensor")
        if not param.requires_grad:
            continue
        exempt = param.ndim <= max_ndim_without_decay or any(name == s or name.endswith("." + s) for s in skip)
        (keep if exempt else decay).append((name, param))
    if not decay and not keep:
        raise ArgumentError(f"{where}: the model has no trainable parameters")
    groups: list[dict[str, Any]] = []
    if decay:
        groups.append({"params": decay, "weight_decay": float(weight_decay)})
    if keep:
        groups.append({"params": keep, "weight_decay": 0.0})
    return groups
