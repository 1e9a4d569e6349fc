"""Schedules that scale the initial rate by a factor of the epoch: lambda, multiplicative, step,
multi-step, constant, linear, exponential and polynomial decay."""

from __future__ import annotations

import types
from bisect import bisect_right
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from ...errors import ArgumentError, ArgumentTypeError
from ..optimizer import Optimizer
from .base import LRScheduler, _check_optimizer, _group_lrs, _warn_get_lr_called_within_step


class _LambdaScheduler(LRScheduler):
    """A scheduler driven by the user's functions of the epoch: one, or one per param group."""

    _excluded_state = ("optimizer", "lr_lambdas")

    def __init__(
        self,
        optimizer: Optimizer,
        lr_lambda: Callable[[int], float] | Sequence[Callable[[int], float]],
        last_epoch: int = -1,
    ) -> None:
        owner = type(self).__name__
        _check_optimizer(owner, optimizer)
        self.lr_lambdas = _lambdas(owner, optimizer, lr_lambda)
        super().__init__(optimizer, last_epoch)

    def _lambdas_of_groups(self) -> list[Callable[[int], float]]:
        """The lr_lambdas, one per param group: a group added by ``add_param_group`` after the scheduler
        was built has none (PyTorch fails there too, in a zip), so it is refused rather than left unscheduled."""
        groups = len(self.optimizer.param_groups)
        if len(self.lr_lambdas) != groups:
            raise ArgumentError(
                f"{type(self).__name__}.step: the optimizer has {groups} param groups but the scheduler has "
                f"{len(self.lr_lambdas)} lr_lambda(s), one per group it was built with; add the group before "
                "building the scheduler"
            )
        return self.lr_lambdas

    def state_dict(self) -> dict[str, Any]:
        """The scheduler's attributes, and under ``"lr_lambdas"`` the ``__dict__`` of each lr_lambda that
        is a callable object (None for a function or lambda, whose code is not state), as PyTorch saves."""
        state = super().state_dict()
        state["lr_lambdas"] = [
            None if isinstance(fn, _FUNCTIONS) or not hasattr(fn, "__dict__") else dict(fn.__dict__)
            for fn in self.lr_lambdas
        ]
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`'s attributes; a callable object's saved ``__dict__`` is put back into
        the lr_lambda at the same place (the functions themselves stay those given to the constructor)."""
        state = dict(state_dict)
        saved = state.pop("lr_lambdas", None) or []
        super().load_state_dict(state)
        for fn, attributes in zip(self.lr_lambdas, saved):
            if attributes is not None:
                fn.__dict__.update(attributes)


_FUNCTIONS = (types.FunctionType, types.MethodType, types.BuiltinFunctionType)


def _lambdas(owner: str, optimizer: Optimizer, lr_lambda: Any) -> list[Callable[[int], float]]:
    fns = list(lr_lambda) if isinstance(lr_lambda, (list, tuple)) else [lr_lambda] * len(optimizer.param_groups)
    if len(fns) != len(optimizer.param_groups):
        raise ArgumentError(
            f"{owner}: expected {len(optimizer.param_groups)} lr_lambdas (one per group), got {len(fns)}"
        )
    for fn in fns:
        if not callable(fn):
            raise ArgumentTypeError(f"{owner}: lr_lambda should be a function, got {type(fn).__name__}")
    return fns


class LambdaLR(_LambdaScheduler):
    """``lr = initial_lr * lr_lambda(epoch)`` (one function, or one per group).

    Example:
        >>> import downslope as ds
        >>> from downslope import optim
        >>> opt = optim.SGD([ds.zeros(1, requires_grad=True)], lr=0.1)
        >>> sched = optim.lr_scheduler.LambdaLR(opt, lambda epoch: 0.5 ** epoch)
        >>> opt.step(); sched.step(); sched.get_last_lr()
        [0.05]
    """

    def get_lr(self) -> list[float]:
        _warn_get_lr_called_within_step(self)
        fns = self._lambdas_of_groups()
        return [base_lr * fn(self.last_epoch) for fn, base_lr in zip(fns, self.base_lrs)]


class MultiplicativeLR(_LambdaScheduler):
    """``lr = lr * lr_lambda(epoch)`` at every step after the first.

    Example:
        >>> import downslope as ds
        >>> from downslope import optim
        >>> opt = optim.SGD([ds.zeros(1, requires_grad=True)], lr=1.0)
        >>> sched = optim.lr_scheduler.MultiplicativeLR(opt, lambda epoch: 0.9)
        >>> lrs = []
        >>> for _ in range(2):
        ...     opt.step(); sched.step(); lrs.append(round(sched.get_last_lr()[0], 4))
        >>> lrs
        [0.9, 0.81]
    """

    def get_lr(self) -> list[float]:
        _warn_get_lr_called_within_step(self)
        if self._is_initial:
            return _group_lrs(self.optimizer)
        fns = self._lambdas_of_groups()
        return [g["lr"] * fn(self.last_epoch) for fn, g in zip(fns, self.optimizer.param_groups)]


class StepLR(LRScheduler):
    """Multiply the lr by ``gamma`` every ``step_size`` epochs.

    Example:
        >>> import downslope as ds
        >>> from downslope import optim
        >>> opt = optim.SGD([ds.zeros(1, requires_grad=True)], lr=1.0)
        >>> sched = optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
        >>> lrs = []
        >>> for _ in range(4):
        ...     opt.step(); sched.step(); lrs.append(round(sched.get_last_lr()[0], 4))
        >>> lrs
        [1.0, 0.5, 0.5, 0.25]
    """

    def __init__(self, optimizer: Optimizer, step_size: int | float, gamma: float = 0.1, last_epoch: int = -1) -> None:
        size: Any = step_size
        if isinstance(size, float) and size.is_integer():
            size = int(size)  # PyTorch's tutorials write StepLR(optimizer, 1.0, ...)
        if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
            raise ArgumentError(f"StepLR: expected a positive integer step_size, got {step_size!r}")
        self.step_size: int = size
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def _get_closed_form_lr(self) -> list[float]:
        return [b * self.gamma ** (self.last_epoch // self.step_size) for b in self.base_lrs]

    def get_lr(self) -> list[float]:
        _warn_get_lr_called_within_step(self)
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return _group_lrs(self.optimizer)
        return [g["lr"] * self.gamma for g in self.optimizer.param_groups]


class MultiStepLR(LRScheduler):
    """Multiply the lr by ``gamma`` at each epoch listed in ``milestones``."""

    def __init__(
        self, optimizer: Optimizer, milestones: Iterable[int], gamma: float = 0.1, last_epoch: int = -1
    ) -> None:
        self.milestones = Counter(milestones)
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def _get_closed_form_lr(self) -> list[float]:
        milestones = sorted(self.milestones.elements())
        return [b * self.gamma ** bisect_right(milestones, self.last_epoch) for b in self.base_lrs]

    def get_lr(self) -> list[float]:
        _warn_get_lr_called_within_step(self)
        if self.last_epoch not in self.milestones:
            return _group_lrs(self.optimizer)
        return [g["lr"] * self.gamma ** self.milestones[self.last_epoch] for g in self.optimizer.param_groups]

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        self.milestones = Counter(self.milestones)


class ConstantLR(LRScheduler):
    """Multiply the lr by ``factor`` for the first ``total_iters`` epochs.

    Example:
        >>> import downslope as ds
        >>> from downslope import optim
        >>> opt = optim.SGD([ds.zeros(1, requires_grad=True)], lr=1.0)
        >>> sched = optim.lr_scheduler.ConstantLR(opt, factor=0.5, total_iters=2)
        >>> lrs = []
        >>> for _ in range(3):
        ...     opt.step(); sched.step(); lrs.append(round(sched.get_last_lr()[0], 4))
        >>> lrs
        [0.5, 1.0, 1.0]
    """

    def __init__(
        self, optimizer: Optimizer, factor: float = 1.0 / 3, total_iters: int = 5, last_epoch: int = -1
    ) -> None:
        if not 0 <= factor <= 1.0:
            raise ArgumentError(f"ConstantLR: expected factor in [0, 1], got {factor!r}")
        self.factor = factor
        self.total_iters = total_iters
        super().__init__(optimizer, last_epoch)

    def _get_closed_form_lr(self) -> list[float]:
        after = self.last_epoch >= self.total_iters
        return [b * (self.factor + after * (1 - self.factor)) for b in self.base_lrs]

    def get_lr(self) -> list[float]:
        _warn_get_lr_called_within_step(self)
        if self.last_epoch == 0:
            return [g["lr"] * self.factor for g in self.optimizer.param_groups]
        if self.last_epoch != self.total_iters:
            return _group_lrs(self.optimizer)
        return [g["lr"] * (1.0 / self.factor) for g in self.optimizer.param_groups]


class LinearLR(LRScheduler):
    """Linear warm-up (or decay) of the lr's factor from ``start_factor`` to ``end_factor`` over
    ``total_iters`` epochs.

    Example:
        >>> import downslope as ds
        >>> from downslope import optim
        >>> opt = optim.SGD([ds.zeros(1, requires_grad=True)], lr=1.0)
        >>> sched = optim.lr_scheduler.LinearLR(opt, start_factor=0.25, total_iters=3)
        >>> lrs = [sched.get_last_lr()[0]]
        >>> for _ in range(4):
        ...     opt.step(); sched.step(); lrs.append(round(sched.get_last_lr()[0], 6))
        >>> lrs
        [0.25, 0.5, 0.75, 1.0, 1.0]
    """

    def __init__(
        self,
        optimizer: Optimizer,
        start_factor: float = 1.0 / 3,
        end_factor: float = 1.0,
        total_iters: int = 5,
        last_epoch: int = -1,
    ) -> None:
        if not 0 < start_factor <= 1.0:
            raise ArgumentError(f"LinearLR: expected start_factor in (0, 1], got {start_factor!r}")
        if not 0 <= end_factor <= 1.0:
            raise ArgumentError(f"LinearLR: expected end_factor in [0, 1], got {end_factor!r}")
        self.start_factor = start_factor
        self.end_factor = end_factor
        self.total_iters = total_iters
        super().__init__(optimizer, last_epoch)

    def _get_closed_form_lr(self) -> list[float]:
        fraction = min(self.total_iters, self.last_epoch) / self.total_iters
        return [b * (self.start_factor + (self.end_factor - self.start_factor) * fraction) for b in self.base_lrs]

    def get_lr(self) -> list[float]:
        _warn_get_lr_called_within_step(self)
        if self.last_epoch == 0:
            return [g["lr"] * self.start_factor for g in self.optimizer.param_groups]
        if self._is_initial or self.last_epoch > self.total_iters:
            return _group_lrs(self.optimizer)
        ratio = 1.0 + (self.end_factor - self.start_factor) / (
            self.total_iters * self.start_factor + (self.last_epoch - 1) * (self.end_factor - self.start_factor)
        )
        return [g["lr"] * ratio for g in self.optimizer.param_groups]


class ExponentialLR(LRScheduler):
    """Multiply the lr by ``gamma`` every epoch.

    Example:
        >>> import downslope as ds
        >>> from downslope import optim
        >>> opt = optim.SGD([ds.zeros(1, requires_grad=True)], lr=1.0)
        >>> sched = optim.lr_scheduler.ExponentialLR(opt, gamma=0.5)
        >>> lrs = []
        >>> for _ in range(3):
        ...     opt.step(); sched.step(); lrs.append(round(sched.get_last_lr()[0], 4))
        >>> lrs
        [0.5, 0.25, 0.125]
    """

    def __init__(self, optimizer: Optimizer, gamma: float, last_epoch: int = -1) -> None:
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def _get_closed_form_lr(self) -> list[float]:
        return [b * self.gamma**self.last_epoch for b in self.base_lrs]

    def get_lr(self) -> list[float]:
        _warn_get_lr_called_within_step(self)
        if self._is_initial:
            return _group_lrs(self.optimizer)
        return [g["lr"] * self.gamma for g in self.optimizer.param_groups]


class PolynomialLR(LRScheduler):
    """Decay the lr to 0 over ``total_iters`` epochs as ``(1 - t / total_iters) ** power``.

    Example:
        >>> import downslope as ds
        >>> from downslope import optim
        >>> opt = optim.SGD([ds.zeros(1, requires_grad=True)], lr=1.0)
        >>> sched = optim.lr_scheduler.PolynomialLR(opt, total_iters=4, power=1.0)
        >>> lrs = []
        >>> for _ in range(4):
        ...     opt.step(); sched.step(); lrs.append(round(sched.get_last_lr()[0], 4))
        >>> lrs
        [0.75, 0.5, 0.25, 0.0]
    """

    def __init__(self, optimizer: Optimizer, total_iters: int = 5, power: float = 1.0, last_epoch: int = -1) -> None:
        if not isinstance(total_iters, int) or total_iters <= 0:
            raise ArgumentError(f"PolynomialLR: expected a positive integer total_iters, got {total_iters!r}")
        self.total_iters = total_iters
        self.power = power
        super().__init__(optimizer, last_epoch)

    def _get_closed_form_lr(self) -> list[float]:
        return [
            b * (1.0 - min(self.total_iters, self.last_epoch) / self.total_iters) ** self.power for b in self.base_lrs
        ]

    def get_lr(self) -> list[float]:
        _warn_get_lr_called_within_step(self)
        if self._is_initial or self.last_epoch > self.total_iters:
            return _group_lrs(self.optimizer)
        decay = (
            (1.0 - self.last_epoch / self.total_iters) / (1.0 - (self.last_epoch - 1) / self.total_iters)
        ) ** self.power
        return [g["lr"] * decay for g in self.optimizer.param_groups]
