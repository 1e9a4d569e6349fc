"""What the training loop and the packages around it need of a model and of a loss function.

train, distributed, experiment, cli, viz and export type the models they are given with
:class:`ModelLike` rather than ``Any``: every :class:`~downslope.nn.Module` satisfies it, and so does
any object of the user's with the same methods. (The optimizer and scheduler Protocols live in
``downslope.optim.protocols``, the package that defines what they describe.)

Example:
    >>> from downslope import nn
    >>> model: ModelLike = nn.Linear(2, 1)
    >>> loss_fn: LossFn = nn.MSELoss()
    >>> sum(p.numel() for p in model.parameters())
    3
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Protocol, runtime_checkable

from ..tensor import Tensor


@runtime_checkable
class ModelLike(Protocol):
    """A model as fit sees it: called on a batch, with parameters, train/eval modes and a state dict."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any: ...

    def parameters(self) -> Iterator[Tensor]: ...

    def named_parameters(self) -> Iterator[tuple[str, Tensor]]: ...

    def train(self, mode: bool = True) -> Any: ...

    def eval(self) -> Any: ...

    def state_dict(self) -> Mapping[str, Any]: ...

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True) -> Any: ...


class LossFn(Protocol):
    """``loss_fn(outputs, targets)`` -> a scalar Tensor (an ``nn`` loss module or a function)."""

    def __call__(self, outputs: Tensor, targets: Tensor, /) -> Tensor: ...


__all__ = ["ModelLike", "LossFn"]
