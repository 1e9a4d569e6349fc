"""``functional_call``: run a module with some of its parameters and buffers replaced by given
tensors, without changing the module (PyTorch's ``torch.nn.utils.stateless.functional_call``,
the tool of meta-learning code such as MAML: the inner-loop weights are tensors in the graph).
It is :func:`downslope.func.functional_call` (``torch.func``'s newer name for it).

Example:
    >>> import downslope as ds
    >>> from downslope import nn
    >>> from downslope.nn.utils.stateless import functional_call
    >>> layer = nn.Linear(2, 1)
    >>> out = functional_call(layer, {"weight": ds.ones(1, 2), "bias": ds.zeros(1)}, (ds.tensor([[1.0, 2.0]]),))
    >>> out, layer.weight.shape
    (tensor([[3.]]), downslope.Size([1, 2]))
"""

from __future__ import annotations

from ...func import functional_call

__all__ = ["functional_call"]
