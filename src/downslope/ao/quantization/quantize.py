"""PyTorch's eager-mode ``prepare_qat`` / ``prepare`` / ``propagate_qconfig_``
(``torch.ao.quantization.quantize``): each module inherits its parent's ``qconfig`` unless it has its
own; ``prepare_qat`` then swaps every ``nn.Linear`` / ``nn.Conv2d`` with a qconfig for its
quantization-aware twin (:mod:`downslope.ao.nn.qat`, fake-quantizing the weight in forward) and, as
``prepare``, gives the quantizable leaves (the swapped layers, ``QuantStub``...) an
``activation_post_process`` (``qconfig.activation()``) applied to their output by a forward hook: the
module tree, state-dict keys and values of torch's. ``convert`` (to int8 modules) is not implemented.

Example:
    >>> import downslope as ds
    >>> from downslope.ao import quantization as Q
    >>> model = ds.nn.Sequential(Q.QuantStub(), ds.nn.Linear(3, 2), Q.DeQuantStub())
    >>> model.qconfig = Q.get_default_qat_qconfig()
    >>> qat = Q.prepare_qat(model)
    >>> type(qat[1]).__module__, hasattr(qat[1], "activation_post_process")
    ('downslope.ao.nn.qat.modules', True)
"""

from __future__ import annotations

import copy
from typing import Any

from ... import nn
from ...errors import ArgumentAssertionError
from .stubs import DeQuantStub, QuantStub

__all__ = ["get_default_qat_module_mappings", "prepare", "prepare_qat", "propagate_qconfig_"]


def get_default_qat_module_mappings() -> dict[type, type]:
    """The float layers ``prepare_qat`` swaps and their quantization-aware twins (torch's for Linear and
    Conv2d; its fused and 1-d/3-d ones are not implemented here)."""
    from ..nn import qat

    return {nn.Linear: qat.Linear, nn.Conv2d: qat.Conv2d}


# torch's default qconfig propagation list: the module types that get an activation_post_process as
# leaves (the ones downslope has)
_PROPAGATION_NAMES = (
    "ELU", "Hardswish", "LeakyReLU", "PReLU", "ReLU6", "BatchNorm2d", "BatchNorm3d", "Sequential", "Conv1d",
    "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d", "Dropout", "InstanceNorm1d",
    "InstanceNorm2d", "InstanceNorm3d", "Linear", "GroupNorm", "LayerNorm", "GRU", "GRUCell", "LSTM", "LSTMCell",
    "RNNCell", "Embedding", "EmbeddingBag",
)  # fmt: skip


def _propagation_list() -> set[type]:
    found = {getattr(nn, name) for name in _PROPAGATION_NAMES if hasattr(nn, name)}
    return found | {QuantStub, DeQuantStub} | set(get_default_qat_module_mappings().values())


def propagate_qconfig_(module: nn.Module, qconfig_dict: dict[Any, Any] | None = None) -> None:
    """Give every module in ``module``'s tree a ``qconfig``: its own, else ``qconfig_dict``'s entry for
    its qualified name or its type, else its parent's (torch's ``propagate_qconfig_``)."""
    _propagate(module, qconfig_dict or {}, None, "")


def _propagate(module: nn.Module, qconfig_dict: dict[Any, Any], parent: Any, prefix: str) -> None:
    qconfig = qconfig_dict.get(type(module), parent)
    qconfig = qconfig_dict.get(prefix, qconfig)
    qconfig = getattr(module, "qconfig", qconfig)
    module.qconfig = qconfig
    for name, child in module.named_children():
        _propagate(child, qconfig_dict, qconfig, f"{prefix}.{name}" if prefix else name)


def _observer_forward_hook(module: nn.Module, input: Any, output: Any) -> Any:
    """torch's hook: the module's output through its ``activation_post_process``."""
    return module.activation_post_process(output)


def _needs_observation(module: nn.Module) -> bool:
    return getattr(module, "qconfig", None) is not None


def _insert_activation_post_process(module: nn.Module) -> None:
    if _needs_observation(module) and not isinstance(module, DeQuantStub):
        module.add_module("activation_post_process", module.qconfig.activation())
        module.register_forward_hook(_observer_forward_hook, prepend=True)


def _add_observer_(module: nn.Module, propagation: set[type], non_leaf: set[type] | None) -> None:
    """torch's ``_add_observer_``: an activation_post_process on each quantizable leaf with a qconfig
    (and on the ``non_leaf`` types: the swapped QAT layers), Dropout skipped."""
    for child in module.children():
        if type(child) is nn.Dropout:
            continue
        if non_leaf is not None and type(child) in non_leaf:
            _insert_activation_post_process(child)
        else:
            _add_observer_(child, propagation, non_leaf)
    leaf = not any(True for _ in module.children())
    if leaf and not isinstance(module, nn.Sequential) and type(module) in propagation:
        _insert_activation_post_process(module)


def prepare(
    model: nn.Module,
    inplace: bool = False,
    allow_list: Any = None,
    observer_non_leaf_module_list: Any = None,
    prepare_custom_config_dict: Any = None,
) -> nn.Module:
    """torch's ``prepare``: ``model`` (a copy unless ``inplace``) with qconfigs propagated and an
    ``activation_post_process`` on each quantizable leaf that has one (see the module's doc)."""
    if prepare_custom_config_dict:
        raise ArgumentAssertionError(
            "prepare: prepare_custom_config_dict (custom observed modules) is not implemented; got "
            f"{prepare_custom_config_dict!r}"
        )
    if not inplace:
        model = copy.deepcopy(model)
    propagation = set(allow_list) if allow_list is not None else _propagation_list()
    propagate_qconfig_(model)
    if not any(getattr(m, "qconfig", None) for m in model.modules()):
        import warnings

        warnings.warn(
            "None of the submodule got qconfig applied. Make sure you passed correct configuration through "
            "`qconfig_dict` or by assigning the `.qconfig` attribute directly on submodules",
            stacklevel=2,
        )
    non_leaf = set(observer_non_leaf_module_list) if observer_non_leaf_module_list is not None else None
    _add_observer_(model, propagation, non_leaf)
    return model


def _swap(module: nn.Module, mapping: dict[type, type]) -> None:
    """torch's ``convert(mapping=...)`` as prepare_qat uses it: each child with a qconfig whose type is
    in ``mapping`` replaced by ``mapping[type].from_float(child)`` (its forward hooks kept)."""
    for name, child in list(module.named_children()):
        _swap(child, mapping)
        if _needs_observation(child) and type(child) in mapping:
            qat_class: Any = mapping[type(child)]
            swapped = qat_class.from_float(child)
            for hook in child._forward_pre_hooks.values():
                swapped.register_forward_pre_hook(hook)
            for hook in child._forward_hooks.values():
                if hook is not _observer_forward_hook:
                    swapped.register_forward_hook(hook)
            swapped.train(child.training)
            setattr(module, name, swapped)


def prepare_qat(model: nn.Module, mapping: dict[type, type] | None = None, inplace: bool = False) -> nn.Module:
    """torch's ``prepare_qat``: ``model`` (a copy unless ``inplace``; in training mode) with qconfigs
    propagated, its Linear and Conv2d layers that have a qconfig swapped for their QAT twins (which
    fake-quantize the weight), and an ``activation_post_process`` on each quantizable output."""
    if not model.training:
        raise ArgumentAssertionError("prepare_qat: prepare_qat only works on models in training mode")
    if mapping is None:
        mapping = get_default_qat_module_mappings()
    if not inplace:
        model = copy.deepcopy(model)
    propagate_qconfig_(model)
    _swap(model, mapping)
    return prepare(model, observer_non_leaf_module_list=set(mapping.values()), inplace=True)
