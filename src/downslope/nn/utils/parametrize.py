"""PyTorch's ``torch.nn.utils.parametrize`` helpers for the parametrizations downslope provides
(:mod:`downslope.nn.utils.parametrizations`): ask whether a tensor is parametrized, or remove the
parametrization and keep its current value as an ordinary parameter.

Example:
    >>> from downslope import nn
    >>> from downslope.nn.utils import parametrize, parametrizations
    >>> layer = parametrizations.weight_norm(nn.Linear(3, 2))
    >>> parametrize.is_parametrized(layer, "weight"), [n for n, _ in parametrize.remove_parametrizations(layer, "weight").named_parameters()]
    (True, ['bias', 'weight'])
"""

from __future__ import annotations

from typing import Any

from ...errors import ArgumentError

__all__ = ["is_parametrized", "remove_parametrizations"]


def is_parametrized(module: Any, tensor_name: str | None = None) -> bool:
    hooks = module.__dict__.get("_parametrization_hooks", {})
    return len(hooks) > 0 if tensor_name is None else tensor_name in hooks


def remove_parametrizations(module: Any, tensor_name: str, leave_parametrized: bool = True) -> Any:
    """Turn ``module.<tensor_name>`` back into an ordinary parameter: its current (parametrized)
    value, or the unparametrized original with ``leave_parametrized=False`` (a single original only)."""
    from ..module import Parameter

    hooks = module.__dict__.get("_parametrization_hooks", {})
    if tensor_name not in hooks:
        raise ArgumentError(f"remove_parametrizations: {type(module).__name__}.{tensor_name} is not parametrized")
    hooks.pop(tensor_name).remove()
    holder = module.parametrizations[tensor_name]
    if leave_parametrized:
        value = module.__dict__[tensor_name].array.copy()
    else:
        if "original" not in holder._parameters:
            raise ArgumentError("remove_parametrizations: leave_parametrized=False needs a single original tensor")
        value = holder.original.array.copy()
    module.__dict__.pop(tensor_name, None)
    del module.parametrizations[tensor_name]
    if not len(module.parametrizations):
        delattr(module, "parametrizations")
    module.register_parameter(tensor_name, Parameter(value, dtype=value.dtype))
    return module
