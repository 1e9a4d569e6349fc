"""DistributedOptimizer: any optimizer, with gradients averaged over ranks before each step.

Wrapping the optimizer (the Horovod pattern) is what lets an unmodified loop — ``fit``, or a
hand-written ``zero_grad(); backward(); step()`` — train data-parallel: ``step()`` first averages
``.grad`` over all ranks, then runs the wrapped optimizer's update, identically on every rank.
Everything else (``param_groups``, ``state_dict``, ``zero_grad``, schedulers holding the inner
optimizer) is the wrapped optimizer's own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..errors import ArgumentTypeError
from ..optim.protocols import OptimizerLike
from ..tensor import Tensor, wrap_array
from .collectives import DEFAULT_BUCKET_BYTES, GradientAllreducer, allreduce_sum, check_same_model
from .world import World, get_world


class DistributedOptimizer:
    """``optimizer`` whose :meth:`step` averages gradients over all ranks first.

    Args:
        optimizer: e.g. ``optim.Adam(model.parameters())``, built the same way on every rank.
        bucket_bytes: Allreduce bucket size (25 MB: a small model needs a single Allreduce).

    A closure (``step(closure)``, as L-BFGS uses) is wrapped too: after each evaluation its
    gradients are averaged and the loss it returns is the mean over ranks, so line searches agree.

    Clipping: the gradients are averaged in :meth:`step`, not in ``backward()`` as under PyTorch's
    DDP, so ``clip_grad_norm_`` between ``backward()`` and ``step()`` would clip each rank's local
    gradient (silently: the optimizer cannot see that it was scaled). Call :meth:`synchronize`
    first, or give the wrapped optimizer ``clip_norm=``::

        opt.zero_grad(); loss.backward()
        opt.synchronize()                                  # average now
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)  # clips the global gradient, as under DDP
        opt.step()

    Example:
        >>> import downslope as ds
        >>> from downslope import nn, optim, distributed as dist
        >>> model = nn.Linear(2, 1)
        >>> opt = dist.DistributedOptimizer(optim.SGD(model.parameters(), lr=0.1))
        >>> opt.zero_grad(); model(ds.ones(3, 2)).sum().backward(); opt.step()
        >>> opt.param_groups[0]["lr"]
        0.1
    """

    def __init__(
        self, optimizer: OptimizerLike, *, world: World | None = None, bucket_bytes: int = DEFAULT_BUCKET_BYTES
    ) -> None:
        if isinstance(optimizer, DistributedOptimizer):
            raise ArgumentTypeError("DistributedOptimizer: this optimizer is already wrapped")
        if not hasattr(optimizer, "param_groups") or not callable(getattr(optimizer, "step", None)):
            raise ArgumentTypeError(
                f"DistributedOptimizer: expected an optimizer with param_groups and step(), got {type(optimizer).__name__}"
            )
        self.optimizer = optimizer
        self.world = world if world is not None else get_world()
        self.bucket_bytes = int(bucket_bytes)
        self._reducer: GradientAllreducer | None = None
        self._reducer_key: tuple[int, ...] = ()

    def _params(self) -> list[Tensor]:
        return [p for group in self.optimizer.param_groups for p in group["params"]]

    @property
    def reducer(self) -> GradientAllreducer:
        """The gradient averager, rebuilt (after a model check) if the parameter groups changed."""
        params = self._params()
        key = tuple(map(id, params))
        if self._reducer is None or key != self._reducer_key:
            check_same_model(params, self.world, what="optimizer's parameter list")
            self._reducer = GradientAllreducer(params, world=self.world, bucket_bytes=self.bucket_bytes)
            self._reducer_key = key
        return self._reducer

    def synchronize(self) -> None:
        """Average the gradients now (``step`` does this; call it to inspect or clip them yourself)."""
        self.reducer.reduce()

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Average gradients over ranks, then take the wrapped optimizer's step."""
        if closure is None:
            self.synchronize()
            return self.optimizer.step()

        def averaged_closure() -> Any:
            loss = closure()
            self.synchronize()
            if loss is None or self.world.world_size == 1:
                return loss
            value = np.asarray(loss.array if isinstance(loss, Tensor) else loss, dtype=np.float64)
            mean = allreduce_sum(value, world=self.world) / self.world.world_size
            if isinstance(loss, Tensor):
                return wrap_array(mean.astype(loss.dtype))
            return float(mean)

        return self.optimizer.step(averaged_closure)

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.optimizer.zero_grad(set_to_none)

    @property
    def param_groups(self) -> list[dict[str, Any]]:
        return self.optimizer.param_groups

    def state_dict(self) -> dict[str, Any]:
        return self.optimizer.state_dict()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state_dict)

    # A scheduler built on this wrapper and one built on the wrapped optimizer step the same param groups,
    # so fit takes either with either. The scheduler's first step warns when the optimizer it was built on
    # never stepped; a step of the wrapped optimizer (fit given it, or another DistributedOptimizer around
    # it, as distributed.fit makes) is a step of this one too, so the warning would be false. These two
    # attributes are what lr_scheduler.LRScheduler sets and reads (torch's names).
    @property
    def _opt_called(self) -> bool:
        """Whether this wrapper or the optimizer it wraps has stepped (since a scheduler began watching)."""
        return bool(self.__dict__.get("_opt_called")) or bool(getattr(self.optimizer, "_opt_called", False))

    @_opt_called.setter
    def _opt_called(self, value: bool) -> None:
        self.__dict__["_opt_called"] = value

    @property
    def _step_tracked_by_lr_sched(self) -> bool:
        return bool(self.__dict__.get("_step_tracked_by_lr_sched"))

    @_step_tracked_by_lr_sched.setter
    def _step_tracked_by_lr_sched(self, value: bool) -> None:
        # a scheduler now watches this wrapper's step: have it watch the wrapped optimizer's too
        self.__dict__["_step_tracked_by_lr_sched"] = value
        if value:
            from ..optim.lr_scheduler.base import track_optimizer_steps

            track_optimizer_steps(self.optimizer)

    def __getattr__(self, name: str) -> Any:
        # Only reached for attributes not defined here: the wrapped optimizer's (state, defaults...).
        if name == "optimizer":
            raise AttributeError(name)
        return getattr(self.optimizer, name)

    def __repr__(self) -> str:
        return f"DistributedOptimizer({self.optimizer!r}, world_size={self.world.world_size})"
