"""The scheduler base class and the helpers every schedule shares."""

from __future__ import annotations

import math
import types
import warnings
from collections import Counter
from collections.abc import Callable
from typing import Any

from ...autograd import no_grad
from ...devices import is_array, to_host
from ...errors import ArgumentError, ArgumentTypeError, StateDictError
from ...tensor import Tensor
from ..optimizer import Optimizer


def _per_group(name: str, optimizer: Optimizer, value: Any) -> list[Any]:
    if isinstance(value, (list, tuple)):
        if len(value) != len(optimizer.param_groups):
            raise ArgumentError(
                f"{name} must have one value per param group: got {len(value)} values for "
                f"{len(optimizer.param_groups)} groups"
            )
        return list(value)
    return [value] * len(optimizer.param_groups)


def _group_lrs(optimizer: Optimizer) -> list[Any]:
    # a Tensor lr cloned, as PyTorch's: get_last_lr() must not follow (or let a caller change) the group's
    return [group["lr"].clone() if isinstance(group["lr"], Tensor) else group["lr"] for group in optimizer.param_groups]


def _set_lr(group: dict[str, Any], lr: Any, key: str = "lr") -> None:
    """Write ``lr`` into ``group[key]``: into a Tensor kept there (a Tensor lr stays the user's object,
    as PyTorch's schedulers ``fill_`` it), else by assignment."""
    current = group.get(key)
    if isinstance(current, Tensor):
        value = lr.detach().array if isinstance(lr, Tensor) else lr
        with no_grad():
            current.fill_(float(to_host(value) if is_array(value) else value))  # host: a Tensor lr, one number
    else:
        group[key] = lr


def _check_group_count(scheduler: Any, values: list[Any]) -> None:
    """PyTorch's strict zip of the groups with the new rates, as an error that says what happened: a
    group added by ``add_param_group`` after a scheduler with per-group state (base lrs, cycles) was built."""
    groups = len(scheduler.optimizer.param_groups)
    if len(values) != groups:
        name = type(scheduler).__name__
        raise ArgumentError(
            f"{name}.step: the optimizer has {groups} param groups but {name} schedules {len(values)}, the groups "
            f"it was built with; add the group before building the scheduler (or build a new {name})"
        )


def _cosine(start: float, end: float, fraction: float) -> float:
    """From ``start`` (fraction 0) to ``end`` (fraction 1) along half a cosine wave (SGDR's annealing)."""
    return end + (start - end) * (1 + math.cos(math.pi * fraction)) / 2


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


def _step_and_mark(self: Any, *args: Any, **kwargs: Any) -> Any:
    """The optimizer's own step, noting that it ran (what the scheduler's first step checks)."""
    self._opt_called = True
    return type(self).step(self, *args, **kwargs)


_step_and_mark._wrapped_by_lr_sched = True  # type: ignore[attr-defined]  # torch's marker name


def track_optimizer_steps(optimizer: Any) -> None:
    """Have ``optimizer.step()`` note that it ran, as torch does, so that a scheduler stepped before it
    can warn. A bound method (not a closure over the optimizer): a deep copy of the optimizer then
    marks itself. An optimizer whose ``step`` is already an attribute of its own is left alone."""
    if "step" in getattr(optimizer, "__dict__", {"step": None}) or not callable(getattr(type(optimizer), "step", None)):
        return  # its own step attribute, or no step method of its class to call (a groups-only wrapper)
    try:
        optimizer.step = types.MethodType(_step_and_mark, optimizer)
        # what the scheduler's first step checks: a step no longer marked was replaced since
        optimizer._step_tracked_by_lr_sched = True
    except AttributeError:  # a duck-typed optimizer that takes no new attributes
        return


def _warn_get_lr_called_within_step(scheduler: Any) -> None:
    """PyTorch's warning for ``get_lr()`` called by hand: it computes the next step's rates (and, for
    the chainable schedules, from the current ones), which is not the current learning rate."""
    if not getattr(scheduler, "_get_lr_called_within_step", False):
        warnings.warn(
            "To get the last learning rate computed by the scheduler, please use `get_last_lr()`.",
            UserWarning,
            stacklevel=3,
        )


class LRScheduler:
    """Base class: ``step()`` advances ``last_epoch`` and writes ``get_lr()`` into the param groups.

    Subclasses implement ``get_lr()``. Construction performs the initial step (epoch 0), as in
    PyTorch, and records ``initial_lr`` in each param group.
    """

    _excluded_state: tuple[str, ...] = ("optimizer",)
    #: stepped once per batch rather than once per epoch (the fit loop reads this)
    steps_per_batch: bool = False
    #: ``step(metric)`` needs the monitored value (the fit loop passes it)
    needs_metric: bool = False

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1) -> None:
        _check_optimizer(type(self).__name__, optimizer)
        self.optimizer = optimizer
        if last_epoch == -1:
            for group in optimizer.param_groups:
                lr = group["lr"]
                group.setdefault("initial_lr", lr.clone() if isinstance(lr, Tensor) else lr)
        else:
            for i, group in enumerate(optimizer.param_groups):
                if "initial_lr" not in group:
                    raise StateDictError(
                        f"{type(self).__name__}: param_groups[{i}] has no 'initial_lr' but last_epoch={last_epoch}; "
                        "to resume, load the optimizer's state_dict first (or start with last_epoch=-1)"
                    )
        self.base_lrs: list[float] = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        # PyTorch's flag (in its state dicts too): True only while step() asks get_lr() for the new rates
        self._get_lr_called_within_step = False
        track_optimizer_steps(optimizer)
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

    def _get_closed_form_lr(self) -> list[float]:
        """The lr at ``last_epoch`` from the schedule's formula (PyTorch's name); schedules that
        have no closed form use their recursive rule."""
        return self.get_lr()

    def get_last_lr(self) -> list[float]:
        """The learning rate of each param group after the last ``step()`` (for logging)."""
        return self._last_lr

    def step(self, epoch: int | None = None) -> None:
        """Advance one epoch (or one batch, for per-batch schedules) and update the learning rates.
        ``step(epoch)``, deprecated in PyTorch, jumps to ``epoch`` by the schedule's closed form."""
        if self._step_count == 1 and not getattr(getattr(self.optimizer, "step", None), "_wrapped_by_lr_sched", False):
            if getattr(self.optimizer, "__dict__", {}).get("_step_tracked_by_lr_sched"):
                warnings.warn(
                    "Seems like `optimizer.step()` has been overridden after learning rate scheduler "
                    "initialization. Please, make sure to call `optimizer.step()` before "
                    "`lr_scheduler.step()`. See more details at "
                    "https://pytorch.org/docs/stable/optim.html#how-to-adjust-learning-rate",
                    UserWarning,
                    stacklevel=2,
                )
        elif self._step_count == 1:
            if not getattr(self.optimizer, "_opt_called", False):
                warnings.warn(
                    "Detected call of `lr_scheduler.step()` before `optimizer.step()`. You should call them in "
                    "the opposite order: `optimizer.step()` before `lr_scheduler.step()`. Failure to do this "
                    "will skip the first value of the learning rate schedule.",
                    UserWarning,
                    stacklevel=2,
                )
        self._step_count += 1
        if epoch is None:
            self.last_epoch += 1
            self._apply(self._within_step(self.get_lr))
            return
        warnings.warn(
            "The epoch parameter in `scheduler.step()` was not necessary and is being deprecated where "
            "possible. Please use `scheduler.step()` to step the scheduler.",
            UserWarning,
            stacklevel=2,
        )
        self.last_epoch = int(epoch)
        self._apply(self._within_step(self._get_closed_form_lr))

    def _within_step(self, rates: Callable[[], list[float]]) -> list[float]:
        self._get_lr_called_within_step = True
        try:
            return rates()
        finally:
            self._get_lr_called_within_step = False

    def _apply(self, values: list[float]) -> None:
        for group, lr in zip(self.optimizer.param_groups, values):
            _set_lr(group, lr)
        _check_group_count(self, values)  # after the writes, as PyTorch's strict zip fails at its end
        self._last_lr = _group_lrs(self.optimizer)

    def state_dict(self) -> dict[str, Any]:
        """Every attribute but the optimizer and functions, copied, in PyTorch's types (MultiStepLR's
        milestones a Counter, tuples as tuples): ``ds.save`` writes them without pickle, and PyTorch's
        schedulers load the dict."""
        return {k: _jsonable(v) for k, v in self.__dict__.items() if k not in self._excluded_state and not callable(v)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore attributes saved by :meth:`state_dict`."""
        for k, v in state_dict.items():
            current = self.__dict__.get(k)
            if isinstance(current, tuple) and isinstance(v, list):
                v = tuple(v)
            elif isinstance(current, Counter) and isinstance(v, (list, dict)):
                # MultiStepLR's milestones: a Counter (a plain dict once through ds.save), or the list
                # older downslope checkpoints hold; a JSON round trip makes its keys strings
                v = Counter({int(k): n for k, n in v.items()} if isinstance(v, dict) else v)
            self.__dict__[k] = v


def _jsonable(v: Any) -> Any:
    if isinstance(v, Counter):
        return Counter(v)
    if isinstance(v, tuple):
        return tuple(_jsonable(x) for x in v)
    if isinstance(v, list):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    return v
