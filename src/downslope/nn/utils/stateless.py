"""``functional_call``: run a module with some of its parameters and buffers replaced by given
tensors, without changing the module (PyTorch's ``torch.nn.utils.stateless.functional_call``,
the tool of meta-learning code such as MAML: the inner-loop weights are tensors in the graph).

Example:
    >>> import downslope as ds
    >>> from downslope import nn
    >>> from downslope.nn.utils.stateless import functional_call
    >>> layer = nn.Linear(2, 1)
    >>> out = functional_call(layer, {"weight": ds.ones(1, 2), "bias": ds.zeros(1)}, (ds.tensor([[1.0, 2.0]]),))
    >>> out, layer.weight.shape
    (tensor([[3.]]), (1, 2))
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ...errors import ArgumentError

__all__ = ["functional_call"]


def functional_call(
    module: Any,
    parameter_and_buffer_dicts: Mapping[str, Any] | Sequence[Mapping[str, Any]],
    args: Any = None,
    kwargs: dict[str, Any] | None = None,
    *,
    tie_weights: bool = True,
    strict: bool = False,
) -> Any:
    """Call ``module(*args, **kwargs)`` with the named tensors (``"0.weight"``...) standing in for
    its parameters and buffers; the module is unchanged afterwards (even if the call raises)."""
    dicts = (
        [parameter_and_buffer_dicts] if isinstance(parameter_and_buffer_dicts, Mapping) else parameter_and_buffer_dicts
    )
    values: dict[str, Any] = {}
    for d in dicts:
        for key, value in d.items():
            if key in values:
                raise ArgumentError(f"functional_call: {key!r} is given twice")
            values[key] = value
    known = dict(module.named_parameters(remove_duplicate=False)) | dict(module.named_buffers(remove_duplicate=False))
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ArgumentError(f"functional_call: {type(module).__name__} has no parameters or buffers {unknown}")
    if strict and set(values) != set(known):
        raise ArgumentError(f"functional_call: strict=True but {sorted(set(known) - set(values))} are not given")
    if tie_weights:  # a tensor shared by several names is replaced under all of them
        for name, tensor in known.items():
            for other, given in list(values.items()):
                if other != name and known[other] is tensor and name not in values:
                    values[name] = given
    saved = []
    try:
        for key, value in values.items():
            owner_path, _, attr = key.rpartition(".")
            owner = module.get_submodule(owner_path)
            saved.append((owner, attr, owner.__dict__.get(attr)))
            object.__setattr__(owner, attr, value)
        call_args = () if args is None else args if isinstance(args, tuple) else (args,)
        return module(*call_args, **(kwargs or {}))
    finally:
        for owner, attr, original in reversed(saved):
            object.__setattr__(owner, attr, original)
