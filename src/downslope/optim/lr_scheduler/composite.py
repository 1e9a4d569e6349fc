"""Schedules made of other schedules: one after another (SequentialLR) or all at once (ChainedScheduler)."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from typing import Any

from ...errors import ArgumentError, ArgumentTypeError
from ..optimizer import Optimizer
from .base import LRScheduler, _check_optimizer, _group_lrs, _set_lr


class _OfSchedulers(LRScheduler):
    """A schedule made of other schedules: its state holds each child's state."""

    _schedulers: list[LRScheduler]

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["_schedulers"] = [s.state_dict() for s in self._schedulers]
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        state = dict(state_dict)
        children = state.pop("_schedulers")
        super().load_state_dict(state)
        for s, sd in zip(self._schedulers, children):
            s.load_state_dict(sd)


class SequentialLR(_OfSchedulers):
    """Run ``schedulers`` one after another, switching at the epochs in ``milestones``
    (e.g. LinearLR warm-up, then CosineAnnealingLR).

    Example:
        >>> import downslope as ds
        >>> from downslope import optim
        >>> opt = optim.SGD([ds.zeros(1, requires_grad=True)], lr=1.0)
        >>> sched = optim.lr_scheduler.SequentialLR(
        ...     opt, [optim.lr_scheduler.ConstantLR(opt, 0.1, total_iters=2), optim.lr_scheduler.ExponentialLR(opt, 0.5)], [2])
        >>> lrs = []
        >>> for _ in range(4):
        ...     opt.step(); sched.step(); lrs.append(round(sched.get_last_lr()[0], 4))
        >>> lrs
        [0.1, 1.0, 0.5, 0.25]
    """

    _excluded_state = ("optimizer", "_schedulers")

    def __init__(
        self, optimizer: Optimizer, schedulers: Sequence[LRScheduler], milestones: Sequence[int], last_epoch: int = -1
    ) -> None:
        _check_optimizer("SequentialLR", optimizer)
        _check_children("SequentialLR", optimizer, schedulers)
        if len(milestones) != len(schedulers) - 1:
            raise ArgumentError(
                f"SequentialLR: expected {len(schedulers) - 1} milestones for {len(schedulers)} schedulers, "
                f"got {len(milestones)}"
            )
        self._schedulers = list(schedulers)
        self._milestones = list(milestones)
        self.last_epoch = last_epoch + 1
        self.optimizer = optimizer
        for group in optimizer.param_groups:
            _set_lr(group, group["initial_lr"])
        for s in self._schedulers:  # undo the initial steps the children took when built
            _undo(s)
        idx = bisect_right(self._milestones, 0)
        self._schedulers[idx]._initial_step()
        self._last_lr = self._schedulers[idx].get_last_lr()

    def step(self, epoch: int | None = None) -> None:
        if epoch is not None:
            raise ArgumentError(f"{type(self).__name__}.step() takes no epoch, as in PyTorch")
        self.last_epoch += 1
        idx = bisect_right(self._milestones, self.last_epoch)
        scheduler = self._schedulers[idx]
        if idx > 0 and self._milestones[idx - 1] == self.last_epoch:
            # the next scheduler starts from its epoch 0 (PyTorch's _update_lr(0): closed form where it has one)
            scheduler.last_epoch = 0
            scheduler._apply(scheduler._within_step(scheduler._get_closed_form_lr))
        else:
            scheduler.step()
        self._last_lr = scheduler.get_last_lr()


def _undo(s: Any) -> None:
    if hasattr(s, "_schedulers"):
        for child in s._schedulers:
            _undo(child)
    elif hasattr(s, "last_epoch"):
        s.last_epoch -= 1


def _check_children(owner: str, optimizer: Optimizer, schedulers: Sequence[Any]) -> None:
    if len(schedulers) < 1:
        raise ArgumentError(f"{owner}: expected at least one scheduler")
    for i, s in enumerate(schedulers):
        if not isinstance(s, LRScheduler):
            raise ArgumentTypeError(f"{owner}: item {i} is a {type(s).__name__}, expected an LRScheduler")
        if s.needs_metric:
            raise ArgumentError(
                f"{owner}: {type(s).__name__} (item {i}) needs a metric at each step and cannot be chained"
            )
        if s.optimizer is not optimizer:
            raise ArgumentError(f"{owner}: scheduler {i} ({type(s).__name__}) belongs to a different optimizer")


class ChainedScheduler(_OfSchedulers):
    """Step several schedulers together at every step (their effects multiply).

    Example:
        >>> import downslope as ds
        >>> from downslope import optim
        >>> opt = optim.SGD([ds.zeros(1, requires_grad=True)], lr=1.0)
        >>> sched = optim.lr_scheduler.ChainedScheduler(
        ...     [optim.lr_scheduler.ConstantLR(opt, 0.1, total_iters=2), optim.lr_scheduler.ExponentialLR(opt, 0.5)])
        >>> lrs = []
        >>> for _ in range(3):
        ...     opt.step(); sched.step(); lrs.append(round(sched.get_last_lr()[0], 4))
        >>> lrs
        [0.05, 0.25, 0.125]
    """

    _excluded_state = ("optimizer", "_schedulers")

    def __init__(self, schedulers: Sequence[LRScheduler], optimizer: Optimizer | None = None) -> None:
        if len(schedulers) < 1:
            raise ArgumentError("ChainedScheduler: expected at least one scheduler")
        optimizer = optimizer or schedulers[0].optimizer
        _check_children("ChainedScheduler", optimizer, schedulers)
        self._schedulers = list(schedulers)
        self.optimizer = optimizer
        self._last_lr = _group_lrs(optimizer)

    def step(self, epoch: int | None = None) -> None:
        if epoch is not None:
            raise ArgumentError(f"{type(self).__name__}.step() takes no epoch, as in PyTorch")
        for s in self._schedulers:
            s.step()
        self._last_lr = _group_lrs(self.optimizer)
