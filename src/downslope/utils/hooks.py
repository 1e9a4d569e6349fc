"""PyTorch's ``torch.utils.hooks``: :class:`RemovableHandle`, the handle every ``register_*_hook``
call returns (the same class as :class:`downslope.nn.module.RemovableHandle`), so code that types or
checks handles with ``isinstance(h, torch.utils.hooks.RemovableHandle)`` works unchanged.

Example:
    >>> import downslope as ds
    >>> from downslope.utils.hooks import RemovableHandle
    >>> handle = ds.nn.Linear(2, 1).register_forward_hook(lambda m, args, out: None)
    >>> isinstance(handle, RemovableHandle)
    True
"""

from __future__ import annotations

from ..nn.module.hooks import RemovableHandle

__all__ = ["RemovableHandle"]
