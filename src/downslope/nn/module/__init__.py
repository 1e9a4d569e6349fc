"""Module and Parameter: the containers that hold a network's weights and walk its structure.

A :class:`Module` registers what is assigned to it: a :class:`Parameter` becomes a trainable
weight, another Module becomes a child, a list or tuple of Modules becomes a :class:`ModuleList`
child and a dict of Modules a :class:`ModuleDict` child, and a tensor given to
:meth:`Module.register_buffer` becomes state that is saved but not trained (BatchNorm's running
statistics). Names follow PyTorch, so ``state_dict()`` keys
(``"0.weight"``, ``"bn.running_mean"``) read the same as there.

Modules: parameter (Parameter, Buffer), base (Module), hooks (RemovableHandle, the backward-hook
nodes and the global forward hooks), containers (Sequential, ModuleList, ModuleDict, ParameterList, ParameterDict), simple
(Identity, Flatten, Unflatten).
"""

from __future__ import annotations

from .base import IncompatibleKeys, Module
from .containers import ModuleDict, ModuleList, ParameterDict, ParameterList, Sequential
from .hooks import RemovableHandle, register_module_forward_hook, register_module_forward_pre_hook
from .parameter import Buffer, Parameter
from .simple import Flatten, Identity, Unflatten

__all__ = [
    "Parameter",
    "Module",
    "Sequential",
    "ModuleList",
    "ModuleDict",
    "ParameterList",
    "ParameterDict",
    "Identity",
    "Flatten",
    "Unflatten",
    "IncompatibleKeys",
    "RemovableHandle",
    "Buffer",
    "register_module_forward_hook",
    "register_module_forward_pre_hook",
]
