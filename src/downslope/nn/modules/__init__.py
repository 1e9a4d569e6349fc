"""PyTorch's ``torch.nn.modules`` paths, for code that imports the private layer bases from them
(``from torch.nn.modules.batchnorm import _BatchNorm``, or ``torch.nn.modules.batchnorm._BatchNorm``
without an import) to freeze norm layers or pick the parameters that get no weight decay.

``modules.module`` is :mod:`downslope.nn.module` (PyTorch's ``torch.nn.modules.module``: the global
hooks). Each other submodule gives PyTorch's names: the public layers (the same classes as
``downslope.nn``) and the private bases, such that ``isinstance(layer, base)`` answers as in PyTorch.
Where downslope's layers share a base class with PyTorch's membership, the name is that class (so
subclassing it works as in PyTorch); where they do not, the name is a Module subclass whose
``isinstance`` is widened, with :meth:`abc.ABCMeta.register`, to the downslope layers PyTorch's base
covers (see :mod:`._bases`). ``modules.utils`` holds the argument helpers (``_pair``...). The
submodules load on first use.

Example:
    >>> import downslope as ds
    >>> isinstance(ds.nn.BatchNorm2d(3), ds.nn.modules.batchnorm._BatchNorm)
    True
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

from .. import module as module
from ..module import hooks as _hooks

# ``from downslope.nn.modules.module import register_module_forward_hook`` finds the same module
sys.modules[f"{__name__}.module"] = module
# torch.nn.modules.module's other global hooks, held by nn.module.hooks beside the forward ones
for _name in _hooks.GLOBAL_REGISTRATIONS:
    if not hasattr(module, _name):
        setattr(module, _name, getattr(_hooks, _name))

_SUBMODULES = frozenset(("batchnorm", "conv", "dropout", "instancenorm", "loss", "pooling", "utils"))
# the files of torch.nn.modules that model code names its layers by (torch.nn.modules.linear.Linear)
_SUBMODULES |= {"activation", "adaptive", "channelshuffle", "container", "distance", "flatten", "fold", "linear"}
_SUBMODULES |= {"normalization", "padding", "pixelshuffle", "rnn", "sparse", "transformer", "upsampling"}


def __getattr__(name: str) -> Any:
    # PyTorch imports these with torch.nn; here they load when first named (they need the whole of nn)
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
