"""What the training loop and its tools need of an optimizer and of a learning-rate scheduler.

Packages downstream of ``optim`` (train, distributed, experiment, cli) type the objects they are given
with these Protocols rather than with ``Any``: every :class:`~downslope.optim.Optimizer`, the
:class:`~downslope.distributed.DistributedOptimizer` wrapper and every scheduler in
``optim.lr_scheduler`` satisfy them, and so does any object of the user's with the same methods.

Example:
    >>> import downslope as ds
    >>> from downslope import optim
    >>> w = ds.tensor([1.0], requires_grad=True)
    >>> opt: OptimizerLike = optim.SGD([w], lr=0.1)
    >>> sched: SchedulerLike = optim.lr_scheduler.StepLR(opt, step_size=1)
    >>> opt.param_groups[0]["lr"]
    0.1
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class OptimizerLike(Protocol):
    """An optimizer as fit sees it: parameter groups (each with an ``'lr'``), ``zero_grad``, ``step``
    and a state dict to checkpoint."""

    @property
    def param_groups(self) -> list[dict[str, Any]]: ...

    def zero_grad(self, set_to_none: bool = True) -> None: ...

    def step(self, closure: Callable[[], Any] | None = None) -> Any: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state_dict: dict[str, Any]) -> None: ...


@runtime_checkable
class SchedulerLike(Protocol):
    """A learning-rate scheduler as fit sees it: ``step()`` (``step(metric)`` for one with
    ``needs_metric``, such as ReduceLROnPlateau) and a state dict to checkpoint.

    fit reads two optional class attributes with ``getattr``: ``steps_per_batch`` (step after every
    batch, as OneCycleLR and CyclicLR do) and ``needs_metric`` (step with the monitored value)."""

    def step(self, *args: Any, **kwargs: Any) -> None: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state_dict: dict[str, Any]) -> None: ...


__all__ = ["OptimizerLike", "SchedulerLike"]
