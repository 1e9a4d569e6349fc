"""Learning-rate schedules with PyTorch's names, arguments and values (``torch.optim.lr_scheduler``).

Every scheduler, ReduceLROnPlateau included, is an :class:`LRScheduler`: ``step()``,
``get_last_lr()``, ``last_epoch``, ``state_dict()``/``load_state_dict()`` (JSON-able values). A
scheduler writes the new learning rate into ``optimizer.param_groups[i]['lr']``, which the
optimizer reads at every step. The formulas are PyTorch's recursive ("chainable") forms, so the
sequences match torch's to the last bit and schedulers can be stacked.

One deliberate difference: ReduceLROnPlateau's relative threshold is measured against ``|best|``
(``a < best - threshold * |best|`` in min mode), so it also works for negative metrics (a
log-likelihood, a negative score); PyTorch's ``a < best * (1 - threshold)`` makes any small
worsening count as an improvement when ``best < 0``. For positive metrics the two agree.

Example:
    >>> import downslope as ds
    >>> from downslope import optim
    >>> opt = optim.SGD([ds.zeros(1, requires_grad=True)], lr=1.0)
    >>> sched = optim.lr_scheduler.MultiStepLR(opt, milestones=[2, 4], gamma=0.5)
    >>> lrs = []
    >>> for _ in range(5):
    ...     opt.step(); sched.step(); lrs.append(sched.get_last_lr()[0])
    >>> lrs
    [1.0, 0.5, 0.5, 0.25, 0.25]
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from ..errors import ArgumentError, ArgumentTypeError, StateDictError, StateError
from .optimizer import Optimizer

__all__ = [
    "LRScheduler", "LambdaLR", "MultiplicativeLR", "StepLR", "MultiStepLR", "ConstantLR", "LinearLR",
    "ExponentialLR", "PolynomialLR", "CosineAnnealingLR", "CosineAnnealingWarmRestarts", "CyclicLR", "OneCycleLR",
    "SequentialLR", "ChainedScheduler", "ReduceLROnPlateau",
]  # fmt: skip


def _per_group(name: str, optimizer: Optimizer, value: Any) -> list[Any]:
    if isinstance(value, (list, tuple)):
        if len(value) != len(optimizer.param_groups):
            raise ArgumentError(
                f"{name} must have one value per param group: got {len(value)} values for "
                f"{len(optimizer.param_groups)} groups"
            )
        return list(value)
    return [value] * len(optimizer.param_groups)


def _group_lrs(optimizer: Optimizer) -> list[float]:
    return [group["lr"] for group in optimizer.param_groups]


def _check_optimizer(owner: str, optimizer: Any) -> None:
    # duck-typed so that wrappers exposing the inner optimizer's groups (DistributedOptimizer) work too
    if isinstance(optimizer, Optimizer):
        return
    if not isinstance(getattr(optimizer, "param_groups", None), list) or not isinstance(
        getattr(optimizer, "defaults", None), dict
    ):
        raise ArgumentTypeError(
            f"{owner}: expected a downslope optimizer (with param_groups and defaults), got {type(optimizer).__name__}"
        )


class LRScheduler:
    """Base class: ``step()`` advances ``last_epoch`` and writes ``get_lr()`` into the param groups.

    Subclasses implement ``get_lr()``. Construction performs the initial step (epoch 0), as in
    PyTorch, and records ``initial_lr`` in each param group.
    """

    _excluded_state: tuple[str, ...] = ("optimizer",)

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1) -> None:
        _check_optimizer(type(self).__name__, optimizer)
        self.optimizer = optimizer
        if last_epoch == -1:
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
        else:
            for i, group in enumerate(optimizer.param_groups):
                if "initial_lr" not in group:
                    raise StateDictError(
                        f"{type(self).__name__}: param_groups[{i}] has no 'initial_lr' but last_epoch={last_epoch}; "
                        "to resume, load the optimizer's state_dict first (or start with last_epoch=-1)"
                    )
        self.base_lrs: list[float] = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self._initial_step()

    def _initial_step(self) -> None:
        self._step_count = 0
        self._is_initial = True
        try:
            self.step()
        finally:
            self._is_initial = False

    def get_lr(self) -> list[float]:
        raise NotImplementedError

    def get_last_lr(self) -> list[float]:
        """The learning rate of each param group after the last ``step()`` (for logging)."""
        return self._last_lr

    def step(self) -> None:
        """Advance one epoch (or one batch, for per-batch schedules) and update the learning rates."""
        self._step_count += 1
        self.last_epoch += 1
        self._apply(self.get_lr())

    def _apply(self, values: list[float]) -> None:
        for group, lr in zip(self.optimizer.param_groups, values):
            group["lr"] = lr
        self._last_lr = _group_lrs(self.optimizer)

    def state_dict(self) -> dict[str, Any]:
        """Every attribute but the optimizer and functions, as JSON-able values."""
        return {k: _jsonable(v) for k, v in self.__dict__.items() if k not in self._excluded_state and not callable(v)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore attributes saved by :meth:`state_dict`."""
        for k, v in state_dict.items():
            current = self.__dict__.get(k)
            self.__dict__[k] = tuple(v) if isinstance(current, tuple) and isinstance(v, list) else v


def _jsonable(v: Any) -> Any:
    if isinstance(v, Counter):
        return sorted(v.elements())
    if isinstance(v, tuple):
        return [_jsonable(x) for x in v]
    if isinstance(v, list):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    return v


class LambdaLR(LRScheduler):
    """``lr = initial_lr * lr_lambda(epoch)`` (one function, or one per group).

    Example:
        >>> import downslope as ds
        >>> from downslope import optim
        >>> opt = optim.SGD([ds.zeros(1, requires_grad=True)], lr=0.1)
        >>> sched = optim.lr_scheduler.LambdaLR(opt, lambda epoch: 0.5 ** epoch)
        >>> opt.step(); sched.step(); sched.get_last_lr()
        [0.05]
    """

    _excluded_state = ("optimizer", "lr_lambdas")

    def __init__(
        self,
        optimizer: Optimizer,
        lr_lambda: Callable[[int], float] | Sequence[Callable[[int], float]],
        last_epoch: int = -1,
    ) -> None:
        _check_optimizer("LambdaLR", optimizer)
        self.lr_lambdas = _lambdas("LambdaLR", optimizer, lr_lambda)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        return [base_lr * fn(self.last_epoch) for fn, base_lr in zip(self.lr_lambdas, self.base_lrs)]


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


class MultiplicativeLR(LRScheduler):
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

    _excluded_state = ("optimizer", "lr_lambdas")

    def __init__(
        self,
        optimizer: Optimizer,
        lr_lambda: Callable[[int], float] | Sequence[Callable[[int], float]],
        last_epoch: int = -1,
    ) -> None:
        _check_optimizer("MultiplicativeLR", optimizer)
        self.lr_lambdas = _lambdas("MultiplicativeLR", optimizer, lr_lambda)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self._is_initial:
            return _group_lrs(self.optimizer)
        return [g["lr"] * fn(self.last_epoch) for fn, g in zip(self.lr_lambdas, self.optimizer.param_groups)]


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

    def get_lr(self) -> list[float]:
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

    def get_lr(self) -> list[float]:
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

    def get_lr(self) -> list[float]:
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

    def get_lr(self) -> list[float]:
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

    def get_lr(self) -> list[float]:
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

    def get_lr(self) -> list[float]:
        if self._is_initial or self.last_epoch > self.total_iters:
            return _group_lrs(self.optimizer)
        decay = (
            (1.0 - self.last_epoch / self.total_iters) / (1.0 - (self.last_epoch - 1) / self.total_iters)
        ) ** self.power
        return [g["lr"] * decay for g in self.optimizer.param_groups]


class CosineAnnealingLR(LRScheduler):
    """Cosine annealing from the initial lr to ``eta_min`` over ``T_max`` epochs (SGDR without
    restarts), in PyTorch's recursive form (so it can be chained and matches torch's values).

    Example:
        >>> import downslope as ds
        >>> from downslope import optim
        >>> opt = optim.SGD([ds.zeros(1, requires_grad=True)], lr=1.0)
        >>> sched = optim.lr_scheduler.CosineAnnealingLR(opt, T_max=2)
        >>> for _ in range(2):
        ...     opt.step(); sched.step()
        >>> sched.get_last_lr()
        [0.0]
    """

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0, last_epoch: int = -1) -> None:
        if not isinstance(T_max, int) or T_max <= 0:
            raise ArgumentError(f"CosineAnnealingLR: expected a positive integer T_max, got {T_max!r}")
        self.T_max = T_max
        self.eta_min = eta_min
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        groups = self.optimizer.param_groups
        t, T, eta_min = self.last_epoch, self.T_max, self.eta_min
        if self._is_initial:
            return _group_lrs(self.optimizer)
        if self._step_count == 1 and t > 0:
            return [eta_min + (base - eta_min) * (1 + math.cos(t * math.pi / T)) / 2 for base in self.base_lrs]
        if (t - 1 - T) % (2 * T) == 0:
            return [
                g["lr"] + (base - eta_min) * (1 - math.cos(math.pi / T)) / 2 for base, g in zip(self.base_lrs, groups)
            ]
        return [
            (1 + math.cos(math.pi * t / T)) / (1 + math.cos(math.pi * (t - 1) / T)) * (g["lr"] - eta_min) + eta_min
            for g in groups
        ]


class CosineAnnealingWarmRestarts(LRScheduler):
    """Cosine annealing with warm restarts (SGDR): the first cycle lasts ``T_0`` epochs, each next
    one ``T_mult`` times longer.

    Example:
        >>> import downslope as ds
        >>> from downslope import optim
        >>> opt = optim.SGD([ds.zeros(1, requires_grad=True)], lr=1.0)
        >>> sched = optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=2)
        >>> lrs = []
        >>> for _ in range(4):
        ...     opt.step(); sched.step(); lrs.append(round(sched.get_last_lr()[0], 4))
        >>> lrs
        [0.5, 1.0, 0.5, 1.0]
    """

    def __init__(
        self, optimizer: Optimizer, T_0: int, T_mult: int = 1, eta_min: float = 0.0, last_epoch: int = -1
    ) -> None:
        if not isinstance(T_0, int) or T_0 <= 0:
            raise ArgumentError(f"CosineAnnealingWarmRestarts: expected a positive integer T_0, got {T_0!r}")
        if not isinstance(T_mult, int) or T_mult < 1:
            raise ArgumentError(f"CosineAnnealingWarmRestarts: expected an integer T_mult >= 1, got {T_mult!r}")
        self.T_0 = T_0
        self.T_i = T_0
        self.T_mult = T_mult
        self.eta_min = eta_min
        self.T_cur: float = last_epoch
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        return [
            self.eta_min + (base - self.eta_min) * (1 + math.cos(math.pi * self.T_cur / self.T_i)) / 2
            for base in self.base_lrs
        ]

    def step(self, epoch: float | None = None) -> None:
        """Advance one epoch, or jump to a (fractional) ``epoch``, e.g. ``epoch + i / iters`` per batch."""
        self._step_count += 1
        if epoch is None and self.last_epoch < 0:
            epoch = 0
        if epoch is None:
            epoch = self.last_epoch + 1
            self.T_cur = self.T_cur + 1
            if self.T_cur >= self.T_i:
                self.T_cur = self.T_cur % self.T_i
                self.T_i = self.T_i * self.T_mult
        else:
            if epoch < 0:
                raise ArgumentError(f"CosineAnnealingWarmRestarts: expected a non-negative epoch, got {epoch}")
            if epoch >= self.T_0:
                if self.T_mult == 1:
                    self.T_cur = epoch % self.T_0
                else:
                    n = int(math.log(epoch / self.T_0 * (self.T_mult - 1) + 1, self.T_mult))
                    self.T_cur = epoch - self.T_0 * (self.T_mult**n - 1) / (self.T_mult - 1)
                    self.T_i = self.T_0 * self.T_mult**n
            else:
                self.T_i = self.T_0
                self.T_cur = epoch
        self.last_epoch = math.floor(epoch)
        self._apply(self.get_lr())


def _set_momentum(group: dict[str, Any], use_beta1: bool, momentum: float) -> None:
    if use_beta1:
        group["betas"] = (momentum, *group["betas"][1:])
    else:
        group["momentum"] = momentum


def _momentum_kind(owner: str, optimizer: Optimizer) -> bool:
    """True when the optimizer's momentum is beta1 (Adam family), False for ``momentum``."""
    if "momentum" not in optimizer.defaults and "betas" not in optimizer.defaults:
        raise ArgumentError(
            f"{owner}: cycle_momentum=True needs an optimizer with 'momentum' or 'betas' "
            f"({type(optimizer).__name__} has neither); pass cycle_momentum=False"
        )
    return "betas" in optimizer.defaults


class CyclicLR(LRScheduler):
    """Cyclical learning rates (Smith, 2017) between ``base_lr`` and ``max_lr``, stepped per batch;
    modes ``triangular``, ``triangular2`` and ``exp_range``. With ``cycle_momentum`` the momentum
    (or Adam's beta1) cycles inversely between ``max_momentum`` and ``base_momentum``.

    Example:
        >>> import downslope as ds
        >>> from downslope import optim
        >>> opt = optim.SGD([ds.zeros(1, requires_grad=True)], lr=1.0, momentum=0.9)
        >>> sched = optim.lr_scheduler.CyclicLR(opt, base_lr=0.1, max_lr=1.0, step_size_up=2)
        >>> lrs = []
        >>> for _ in range(4):
        ...     opt.step(); sched.step(); lrs.append(round(sched.get_last_lr()[0], 4))
        >>> lrs
        [0.55, 1.0, 0.55, 0.1]
    """

    _excluded_state = ("optimizer", "scale_fn_custom")

    def __init__(
        self,
        optimizer: Optimizer,
        base_lr: float | list[float],
        max_lr: float | list[float],
        step_size_up: int = 2000,
        step_size_down: int | None = None,
        mode: str = "triangular",
        gamma: float = 1.0,
        scale_fn: Callable[[float], float] | None = None,
        scale_mode: str = "cycle",
        cycle_momentum: bool = True,
        base_momentum: float = 0.8,
        max_momentum: float = 0.9,
        last_epoch: int = -1,
    ) -> None:
        _check_optimizer("CyclicLR", optimizer)
        base_lrs = _per_group("base_lr", optimizer, base_lr)
        if last_epoch == -1:
            for lr, group in zip(base_lrs, optimizer.param_groups):
                group["lr"] = lr
        self.max_lrs = _per_group("max_lr", optimizer, max_lr)
        up = float(step_size_up)
        down = float(step_size_down) if step_size_down is not None else up
        if up <= 0 or down <= 0:
            raise ArgumentError(
                f"CyclicLR: expected positive step sizes, got step_size_up={step_size_up!r}, step_size_down={step_size_down!r}"
            )
        self.total_size = up + down
        self.step_ratio = up / self.total_size
        if mode not in ("triangular", "triangular2", "exp_range") and scale_fn is None:
            raise ArgumentError(
                f"CyclicLR: mode must be 'triangular', 'triangular2' or 'exp_range' (or give scale_fn), got {mode!r}"
            )
        if scale_mode not in ("cycle", "iterations"):
            raise ArgumentError(f"CyclicLR: scale_mode must be 'cycle' or 'iterations', got {scale_mode!r}")
        self.mode = mode
        self.gamma = gamma
        self.scale_fn_custom = scale_fn
        self.scale_mode = scale_mode if scale_fn is not None else ("iterations" if mode == "exp_range" else "cycle")
        self.cycle_momentum = cycle_momentum
        if cycle_momentum:
            self.use_beta1 = _momentum_kind("CyclicLR", optimizer)
            self.base_momentums = _per_group("base_momentum", optimizer, base_momentum)
            self.max_momentums = _per_group("max_momentum", optimizer, max_momentum)
            if last_epoch == -1:
                for m_max, m_base, group in zip(self.max_momentums, self.base_momentums, optimizer.param_groups):
                    _set_momentum(group, self.use_beta1, m_max)
                    group["max_momentum"] = m_max
                    group["base_momentum"] = m_base
        super().__init__(optimizer, last_epoch)
        self.base_lrs = base_lrs

    def scale_fn(self, x: float) -> float:
        if self.scale_fn_custom is not None:
            return self.scale_fn_custom(x)
        if self.mode == "triangular":
            return 1.0
        if self.mode == "triangular2":
            return 1 / (2.0 ** (x - 1))
        return self.gamma**x

    def get_lr(self) -> list[float]:
        cycle = math.floor(1 + self.last_epoch / self.total_size)
        x = 1.0 + self.last_epoch / self.total_size - cycle
        scale_factor = x / self.step_ratio if x <= self.step_ratio else (x - 1) / (self.step_ratio - 1)
        scale = self.scale_fn(cycle) if self.scale_mode == "cycle" else self.scale_fn(self.last_epoch)
        lrs = [base + (top - base) * scale_factor * scale for base, top in zip(self.base_lrs, self.max_lrs)]
        if self.cycle_momentum:
            for m_base, m_max, group in zip(self.base_momentums, self.max_momentums, self.optimizer.param_groups):
                _set_momentum(group, self.use_beta1, m_max - (m_max - m_base) * scale_factor * scale)
        return lrs


class OneCycleLR(LRScheduler):
    """The 1cycle policy (Smith & Topin, 2018), stepped per batch: the lr rises from
    ``max_lr / div_factor`` to ``max_lr`` over ``pct_start`` of the steps, then anneals (cos or
    linear) to ``initial_lr / final_div_factor``; momentum moves the opposite way.
    ``three_phase`` adds a symmetric descent before the final annealing (fastai's variant).

    Example:
        >>> import downslope as ds
        >>> from downslope import optim
        >>> opt = optim.SGD([ds.zeros(1, requires_grad=True)], lr=1.0, momentum=0.9)
        >>> sched = optim.lr_scheduler.OneCycleLR(opt, max_lr=1.0, total_steps=10)
        >>> lrs = []
        >>> for _ in range(3):
        ...     opt.step(); sched.step(); lrs.append(round(sched.get_last_lr()[0], 4))
        >>> lrs
        [0.52, 1.0, 0.9505]
    """

    def __init__(
        self,
        optimizer: Optimizer,
        max_lr: float | list[float],
        total_steps: int | None = None,
        epochs: int | None = None,
        steps_per_epoch: int | None = None,
        pct_start: float = 0.3,
        anneal_strategy: str = "cos",
        cycle_momentum: bool = True,
        base_momentum: float | list[float] = 0.85,
        max_momentum: float | list[float] = 0.95,
        div_factor: float = 25.0,
        final_div_factor: float = 1e4,
        three_phase: bool = False,
        last_epoch: int = -1,
    ) -> None:
        _check_optimizer("OneCycleLR", optimizer)
        if total_steps is not None:
            if not isinstance(total_steps, int) or total_steps <= 0:
                raise ArgumentError(f"OneCycleLR: expected a positive integer total_steps, got {total_steps!r}")
            self.total_steps = total_steps
        elif epochs is not None and steps_per_epoch is not None:
            if not isinstance(epochs, int) or epochs <= 0:
                raise ArgumentError(f"OneCycleLR: expected a positive integer epochs, got {epochs!r}")
            if not isinstance(steps_per_epoch, int) or steps_per_epoch <= 0:
                raise ArgumentError(f"OneCycleLR: expected a positive integer steps_per_epoch, got {steps_per_epoch!r}")
            self.total_steps = epochs * steps_per_epoch
        else:
            raise ArgumentError("OneCycleLR: give total_steps, or both epochs and steps_per_epoch")
        if not isinstance(pct_start, float) or not 0 <= pct_start <= 1:
            raise ArgumentError(f"OneCycleLR: expected a float pct_start in [0, 1], got {pct_start!r}")
        if anneal_strategy not in ("cos", "linear"):
            raise ArgumentError(f"OneCycleLR: anneal_strategy must be 'cos' or 'linear', got {anneal_strategy!r}")
        self.anneal_strategy = anneal_strategy
        n = self.total_steps
        # each phase: [end step, lr key at start, lr key at end, momentum key at start, at end]
        self._phases: list[list[Any]]
        if three_phase:
            self._phases = [
                [float(pct_start * n) - 1, "initial_lr", "max_lr", "max_momentum", "base_momentum"],
                [float(2 * pct_start * n) - 2, "max_lr", "initial_lr", "base_momentum", "max_momentum"],
                [n - 1, "initial_lr", "min_lr", "max_momentum", "max_momentum"],
            ]
        else:
            self._phases = [
                [float(pct_start * n) - 1, "initial_lr", "max_lr", "max_momentum", "base_momentum"],
                [n - 1, "max_lr", "min_lr", "base_momentum", "max_momentum"],
            ]
        max_lrs = _per_group("max_lr", optimizer, max_lr)
        if last_epoch == -1:
            for top, group in zip(max_lrs, optimizer.param_groups):
                group["initial_lr"] = top / div_factor
                group["max_lr"] = top
                group["min_lr"] = group["initial_lr"] / final_div_factor
        self.cycle_momentum = cycle_momentum
        if cycle_momentum:
            self.use_beta1 = _momentum_kind("OneCycleLR", optimizer)
            m_maxes = _per_group("max_momentum", optimizer, max_momentum)
            m_bases = _per_group("base_momentum", optimizer, base_momentum)
            if last_epoch == -1:
                for m_max, m_base, group in zip(m_maxes, m_bases, optimizer.param_groups):
                    _set_momentum(group, self.use_beta1, m_max)
                    group["max_momentum"] = m_max
                    group["base_momentum"] = m_base
        super().__init__(optimizer, last_epoch)

    def _anneal(self, start: float, end: float, pct: float) -> float:
        if self.anneal_strategy == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
        return (end - start) * pct + start

    def get_lr(self) -> list[float]:
        step = self.last_epoch
        if step > self.total_steps:
            raise ArgumentError(f"OneCycleLR: tried to step {step} times; total_steps is {self.total_steps}")
        lrs = []
        for group in self.optimizer.param_groups:
            start_step = 0.0
            for i, (end_step, lr_from, lr_to, m_from, m_to) in enumerate(self._phases):
                if step <= end_step or i == len(self._phases) - 1:
                    pct = (step - start_step) / (end_step - start_step)
                    lr = self._anneal(group[lr_from], group[lr_to], pct)
                    if self.cycle_momentum:
                        _set_momentum(group, self.use_beta1, self._anneal(group[m_from], group[m_to], pct))
                    break
                start_step = end_step
            lrs.append(lr)
        return lrs


class SequentialLR(LRScheduler):
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
            group["lr"] = group["initial_lr"]
        for s in self._schedulers:  # undo the initial steps the children took when built
            _undo(s)
        idx = bisect_right(self._milestones, 0)
        self._schedulers[idx]._initial_step()
        self._last_lr = self._schedulers[idx].get_last_lr()

    def step(self) -> None:
        self.last_epoch += 1
        idx = bisect_right(self._milestones, self.last_epoch)
        scheduler = self._schedulers[idx]
        if idx > 0 and self._milestones[idx - 1] == self.last_epoch:
            # the next scheduler starts from its epoch 0 (PyTorch's _update_lr(0): closed form where it has one)
            scheduler.last_epoch = 0
            scheduler._apply(_closed_form(scheduler))
        else:
            scheduler.step()
        self._last_lr = scheduler.get_last_lr()

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


def _undo(s: Any) -> None:
    if hasattr(s, "_schedulers"):
        for child in s._schedulers:
            _undo(child)
    elif hasattr(s, "last_epoch"):
        s.last_epoch -= 1


def _closed_form(s: LRScheduler) -> list[float]:
    """The lr at ``s.last_epoch`` from the formula, as PyTorch's ``_get_closed_form_lr``."""
    t = s.last_epoch
    if isinstance(s, StepLR):
        return [b * s.gamma ** (t // s.step_size) for b in s.base_lrs]
    if isinstance(s, MultiStepLR):
        ms = sorted(s.milestones.elements())
        return [b * s.gamma ** bisect_right(ms, t) for b in s.base_lrs]
    if isinstance(s, ConstantLR):
        return [b * (s.factor + (t >= s.total_iters) * (1 - s.factor)) for b in s.base_lrs]
    if isinstance(s, LinearLR):
        return [
            b * (s.start_factor + (s.end_factor - s.start_factor) * min(s.total_iters, t) / s.total_iters)
            for b in s.base_lrs
        ]
    if isinstance(s, ExponentialLR):
        return [b * s.gamma**t for b in s.base_lrs]
    if isinstance(s, PolynomialLR):
        return [b * (1.0 - min(s.total_iters, t) / s.total_iters) ** s.power for b in s.base_lrs]
    if isinstance(s, CosineAnnealingLR):
        return [s.eta_min + (b - s.eta_min) * (1 + math.cos(math.pi * t / s.T_max)) / 2 for b in s.base_lrs]
    return s.get_lr()


def _check_children(owner: str, optimizer: Optimizer, schedulers: Sequence[Any]) -> None:
    if len(schedulers) < 1:
        raise ArgumentError(f"{owner}: expected at least one scheduler")
    for i, s in enumerate(schedulers):
        if not isinstance(s, LRScheduler):
            raise ArgumentTypeError(f"{owner}: item {i} is a {type(s).__name__}, expected an LRScheduler")
        if isinstance(s, ReduceLROnPlateau):
            raise ArgumentError(
                f"{owner}: ReduceLROnPlateau (item {i}) needs a metric at each step and cannot be chained"
            )
        if s.optimizer is not optimizer:
            raise ArgumentError(f"{owner}: scheduler {i} ({type(s).__name__}) belongs to a different optimizer")


class ChainedScheduler(LRScheduler):
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

    def step(self) -> None:
        for s in self._schedulers:
            s.step()
        self._last_lr = _group_lrs(self.optimizer)

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


class ReduceLROnPlateau(LRScheduler):
    """Multiply the lr by ``factor`` when a metric has stopped improving for ``patience`` epochs.

    ``step(metric)`` once per epoch. An epoch improves on ``best`` when (min mode) the metric is
    below ``best - threshold * |best|`` (``threshold_mode='rel'``) or ``best - threshold``
    (``'abs'``); max mode mirrors this. After a reduction, ``cooldown`` epochs pass before bad epochs
    count again. The lr never goes below ``min_lr``, and changes smaller than ``eps`` are skipped.

    Unlike PyTorch's ``best * (1 - threshold)``, the relative threshold uses ``|best|`` so that a
    negative metric is handled correctly (see the module docstring).

    Example:
        >>> import downslope as ds
        >>> from downslope import optim
        >>> opt = optim.SGD([ds.zeros(1, requires_grad=True)], lr=1.0)
        >>> sched = optim.lr_scheduler.ReduceLROnPlateau(opt, patience=1)
        >>> for loss in [1.0, 0.9, 0.95, 0.95]:
        ...     sched.step(loss)
        >>> sched.get_last_lr()
        [0.1]
    """

    def __init__(
        self,
        optimizer: Optimizer,
        mode: str = "min",
        factor: float = 0.1,
        patience: int = 10,
        threshold: float = 1e-4,
        threshold_mode: str = "rel",
        cooldown: int = 0,
        min_lr: float | list[float] = 0.0,
        eps: float = 1e-8,
    ) -> None:
        _check_optimizer("ReduceLROnPlateau", optimizer)
        if not 0 <= factor < 1.0:
            raise ArgumentError(f"ReduceLROnPlateau: expected factor in [0, 1), got {factor!r}")
        if mode not in ("min", "max"):
            raise ArgumentError(f"ReduceLROnPlateau: mode must be 'min' or 'max', got {mode!r}")
        if threshold_mode not in ("rel", "abs"):
            raise ArgumentError(f"ReduceLROnPlateau: threshold_mode must be 'rel' or 'abs', got {threshold_mode!r}")
        if not isinstance(patience, int) or patience < 0:
            raise ArgumentError(f"ReduceLROnPlateau: expected an integer patience >= 0, got {patience!r}")
        if threshold < 0:
            raise ArgumentError(f"ReduceLROnPlateau: expected threshold >= 0, got {threshold!r}")
        self.optimizer = optimizer
        self.factor = factor
        self.min_lrs = _per_group("min_lr", optimizer, min_lr)
        self.patience = patience
        self.cooldown = cooldown
        self.eps = eps
        self.mode = mode
        self.threshold = threshold
        self.threshold_mode = threshold_mode
        self.last_epoch = 0
        self._step_count = 0
        self._last_lr = _group_lrs(optimizer)
        self._reset()

    def _reset(self) -> None:
        self.best = math.inf if self.mode == "min" else -math.inf
        self.cooldown_counter = 0
        self.num_bad_epochs = 0

    @property
    def in_cooldown(self) -> bool:
        return self.cooldown_counter > 0

    def is_better(self, a: float, best: float) -> bool:
        """Whether metric ``a`` improves on ``best`` by more than the threshold."""
        if math.isinf(best):
            return a < best if self.mode == "min" else a > best
        margin = self.threshold * abs(best) if self.threshold_mode == "rel" else self.threshold
        return a < best - margin if self.mode == "min" else a > best + margin

    def step(self, metrics: Any = None) -> None:  # type: ignore[override]
        """Record this epoch's metric (a number or 0-d tensor) and reduce the lr on a plateau."""
        if metrics is None:
            raise ArgumentTypeError("ReduceLROnPlateau.step: pass the monitored metric, e.g. sched.step(val_loss)")
        current = float(metrics)
        if math.isnan(current):
            raise ArgumentError("ReduceLROnPlateau.step: the metric is NaN; training has probably diverged")
        self._step_count += 1
        self.last_epoch += 1
        if self.is_better(current, self.best):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.in_cooldown:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > self.patience:
            self._reduce_lr()
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
        self._last_lr = _group_lrs(self.optimizer)

    def _reduce_lr(self) -> None:
        if len(self.min_lrs) != len(self.optimizer.param_groups):
            raise StateError(
                f"ReduceLROnPlateau: the optimizer now has {len(self.optimizer.param_groups)} param groups but min_lr "
                f"has {len(self.min_lrs)} values; set scheduler.min_lrs to one value per group"
            )
        for i, group in enumerate(self.optimizer.param_groups):
            old_lr = float(group["lr"])
            new_lr = max(old_lr * self.factor, self.min_lrs[i])
            if old_lr - new_lr > self.eps:
                group["lr"] = new_lr
