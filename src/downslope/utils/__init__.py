"""PyTorch's ``torch.utils`` namespace: ``downslope.utils.data``, which re-exports :mod:`downslope.data`, and
``downslope.utils.checkpoint`` (activation checkpointing), ``downslope.utils.dlpack`` (``from_dlpack``,
``to_dlpack``), ``downslope.utils.benchmark`` (``Timer``) and ``downslope.utils.hooks`` (``RemovableHandle``).

Example:
    >>> import downslope.utils.data
    >>> from downslope.utils.data import DataLoader, TensorDataset
    >>> DataLoader is downslope.data.DataLoader
    True
"""

from __future__ import annotations

from typing import NoReturn

from . import _pytree as _pytree  # torch.utils._pytree as an attribute path (tree_map, tree_flatten...)
from . import benchmark, checkpoint, data, dlpack, hooks

__all__ = ["benchmark", "checkpoint", "data", "dlpack", "hooks"]


def __getattr__(name: str) -> NoReturn:
    # torch.utils' names left out on purpose (model_zoo: downloads) say why
    from .._unsupported import missing_module_attribute

    missing_module_attribute(name, "torch.utils")
