"""Parameter (a trainable weight) and Buffer (saved state that is not trained)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ... import backend
from ...tensor import Tensor, empty, to_array

_PLACEHOLDER = np.zeros(0, np.float32)  # host: a constant, never computed with


class Parameter(Tensor):
    """A tensor that a Module treats as a trainable weight (``requires_grad=True``, float32 by default).

    Floating data keeps the library's default dtype (float32) unless ``dtype`` is given; integer
    data is converted, since only floating tensors have gradients. A Tensor of the right dtype is
    shared, not copied (as ``torch.nn.Parameter`` does).

    Example:
        >>> import downslope as ds
        >>> p = ds.nn.Parameter([1.0, 2.0])
        >>> p.requires_grad, p.dtype
        (True, dtype('float32'))
    """

    def __init__(self, data: Any = None, requires_grad: bool = True, dtype: Any = None) -> None:
        if data is None:
            data = empty(0)
        if isinstance(data, Tensor) and dtype is None and backend.is_floating(data.array.dtype):
            arr = data.array  # share memory, like torch.nn.Parameter(tensor)
        else:
            arr = to_array(data, dtype)
            if not backend.is_floating(arr.dtype):
                arr = arr.astype(backend.get_default_dtype())
        # Tensor's constructor would copy its data (and refuses device arrays): it gets a tiny
        # placeholder, and the parameter holds ``arr`` itself.
        super().__init__(_PLACEHOLDER, requires_grad=False)
        self.array = arr
        if requires_grad:
            self.requires_grad_(True)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


class Buffer(Tensor):
    """Marks a tensor as a buffer when assigned to a Module attribute (PyTorch's ``nn.Buffer``):
    ``self.steps = nn.Buffer(ds.zeros(()))`` is ``self.register_buffer("steps", ds.zeros(()))``.

    Example:
        >>> import downslope as ds
        >>> from downslope import nn
        >>> class Counter(nn.Module):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.count = nn.Buffer(ds.zeros(()), persistent=False)
        >>> [n for n, _ in Counter().named_buffers()], list(Counter().state_dict())
        (['count'], [])
    """

    def __init__(self, data: Any = None, *, persistent: bool = True) -> None:
        if data is None:
            data = empty(0)
        arr = data.array if isinstance(data, Tensor) else to_array(data)
        super().__init__(None, requires_grad=False)  # the buffer holds ``arr`` itself (no copy, any device)
        self.array = arr
        self.persistent = persistent
