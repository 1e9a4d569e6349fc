"""Keras' small callbacks: :class:`LambdaCallback` (hooks from functions), :class:`LearningRateScheduler`
(``schedule(epoch, lr) -> lr`` at each epoch's start) and :class:`ReduceLROnPlateau` as a callback, with
Keras' arguments and Keras 3's rule (the lr scheduler of that name is PyTorch's)."""

from __future__ import annotations

import inspect
import math
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

from ...errors import ConfigError, StateError
from .base import Callback, Logs
from .monitoring import Monitor, resolve_mode

_HOOKS = tuple(name for name in dir(Callback) if name.startswith("on_"))


class LambdaCallback(Callback):
    """A callback made of functions, as Keras' ``LambdaCallback``: each argument replaces the hook of its
    name and takes that hook's arguments — ``on_epoch_begin(epoch, logs)``, ``on_epoch_end(epoch, logs)``,
    ``on_batch_begin(batch, logs)``, ``on_batch_end(batch, logs)``, ``on_train_begin(logs)``,
    ``on_train_end(logs)``, ``on_train_batch_begin(batch, logs)``, ``on_train_batch_end(batch, logs)``;
    any other hook (``on_test_end=...``) by keyword. As in Keras, ``on_train_batch_begin/end`` replace
    ``on_batch_begin/end`` (which they call unless given).

    Example:
        >>> seen = []
        >>> cb = LambdaCallback(on_epoch_end=lambda epoch, logs: seen.append((epoch, logs["loss"])))
        >>> cb.on_epoch_end(0, {"loss": 0.5}); seen
        [(0, 0.5)]
    """

    def __init__(
        self,
        on_epoch_begin: Callable[[int, Logs], Any] | None = None,
        on_epoch_end: Callable[[int, Logs], Any] | None = None,
        on_batch_begin: Callable[[int, Logs], Any] | None = None,
        on_batch_end: Callable[[int, Logs], Any] | None = None,
        on_train_begin: Callable[[Logs], Any] | None = None,
        on_train_end: Callable[[Logs], Any] | None = None,
        on_train_batch_begin: Callable[[int, Logs], Any] | None = None,
        on_train_batch_end: Callable[[int, Logs], Any] | None = None,
        **hooks: Callable[..., Any],
    ) -> None:
        given = {
            "on_epoch_begin": on_epoch_begin,
            "on_epoch_end": on_epoch_end,
            "on_batch_begin": on_batch_begin,
            "on_batch_end": on_batch_end,
            "on_train_begin": on_train_begin,
            "on_train_end": on_train_end,
            "on_train_batch_begin": on_train_batch_begin,
            "on_train_batch_end": on_train_batch_end,
            **hooks,
        }
        for name, fn in given.items():
            if name not in _HOOKS:
                raise ConfigError(f"LambdaCallback: {name!r} is not a callback hook; hooks are {', '.join(_HOOKS)}")
            if fn is None:
                continue
            if not callable(fn):
                raise ConfigError(f"LambdaCallback: {name} must be a function, got {type(fn).__name__} {fn!r}")
            setattr(self, name, fn)


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)  # beside fit's epoch lines


def _group_rates(optimizer: Any, where: str) -> list[dict[str, Any]]:
    groups = getattr(optimizer, "param_groups", None)
    if not groups:
        raise StateError(f"{where}: the run has no optimizer with param_groups (used outside fit?)")
    return list(groups)


def _takes_rate(schedule: Callable[..., Any]) -> bool:
    """Whether ``schedule`` takes ``(epoch, lr)`` (Keras' form) rather than ``(epoch)`` (its older one)."""
    try:
        signature = inspect.signature(schedule)
    except (TypeError, ValueError):
        return True
    try:
        signature.bind(0, 0.1)
    except TypeError:
        return False
    return True


class LearningRateScheduler(Callback):
    """Keras' ``LearningRateScheduler``: at the start of each epoch, ``lr = schedule(epoch, lr)`` (0-based
    epoch, the current rate; a ``schedule(epoch)`` of one argument is called so, as Keras allows) becomes
    the optimizer's rate; ``verbose=1`` says so. The epoch's logs record the rate it trained with
    (``lr`` and ``learning_rate``). One rate for the model, as in Keras: param groups with different
    rates are refused (use ``optim.lr_scheduler.LambdaLR``, which scales each group).

    Example:
        >>> from downslope import nn, optim
        >>> from downslope.train.callbacks import TrainingState
        >>> model = nn.Linear(1, 1); opt = optim.SGD(model.parameters(), lr=0.1)
        >>> cb = LearningRateScheduler(lambda epoch, lr: lr * 0.5 if epoch > 0 else lr)
        >>> cb.set_trainer(TrainingState(model, opt)); cb.on_epoch_begin(0); cb.on_epoch_begin(1)
        >>> opt.param_groups[0]["lr"]
        0.05
    """

    def __init__(self, schedule: Callable[..., Any], verbose: int = 0) -> None:
        if not callable(schedule):
            raise ConfigError(f"LearningRateScheduler: schedule must be a function, got {type(schedule).__name__}")
        self.schedule = schedule
        self.verbose = verbose
        self._with_rate = _takes_rate(schedule)

    def on_epoch_begin(self, epoch: int, logs: Logs | None = None) -> None:
        groups = _group_rates(self.trainer.optimizer, "LearningRateScheduler")
        rates = [float(g["lr"]) for g in groups]  # in group order, as the user built them
        if len(set(rates)) > 1:
            raise ConfigError(
                f"LearningRateScheduler: the optimizer's param groups have different rates {rates} (in group "
                "order); Keras' schedule sets one rate. Use optim.lr_scheduler.LambdaLR(optimizer, lambda epoch: "
                "factor), which scales each group"
            )
        current = float(groups[0]["lr"])
        new = self.schedule(epoch, current) if self._with_rate else self.schedule(epoch)
        if isinstance(new, bool) or not isinstance(new, (int, float, np.integer, np.floating)):
            raise ConfigError(
                f"LearningRateScheduler: schedule({epoch}{', ' + repr(current) if self._with_rate else ''}) must "
                f"return a number (the learning rate), got {type(new).__name__} {new!r}"
            )
        if not math.isfinite(float(new)) or float(new) < 0:
            raise ConfigError(f"LearningRateScheduler: schedule gave learning rate {new!r} at epoch {epoch + 1}")
        for group in groups:
            group["lr"] = float(new)
        if self.verbose:
            _say(f"\nEpoch {epoch + 1}: LearningRateScheduler setting learning rate to {float(new)}.")

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        if logs is not None:  # fit read the rate before this epoch's schedule ran: the rate it trained with
            logs["lr"] = float(_group_rates(self.trainer.optimizer, "LearningRateScheduler")[0]["lr"])


class ReduceLROnPlateau(Callback):
    """Keras' ``ReduceLROnPlateau`` callback, with its arguments and Keras 3's rule: after each epoch,
    ``monitor`` improves when it is below ``best - min_delta`` (``mode='min'``; above ``best + min_delta``
    for 'max'); otherwise, outside a cooldown, a bad epoch counts, and after ``patience`` of them each
    rate above ``min_lr`` becomes ``max(lr * factor, min_lr)``, the count restarts and ``cooldown`` epochs
    pass before bad epochs count again. ``mode='auto'`` asks the monitored metric which way is better
    (Keras 3 looks for 'acc' in the name: the same answer for accuracy, and the right one for 'auc' or
    'f1'). An epoch without the monitored value (``validation_freq``) is skipped.

    (``optim.lr_scheduler.ReduceLROnPlateau``, passed as fit's ``scheduler``, is PyTorch's rule:
    ``patience + 1`` bad epochs and a relative threshold.)

    Example:
        >>> from downslope import nn, optim
        >>> from downslope.train.callbacks import TrainingState
        >>> model = nn.Linear(1, 1); opt = optim.SGD(model.parameters(), lr=1.0)
        >>> cb = ReduceLROnPlateau(monitor="loss", patience=2, factor=0.5)
        >>> cb.set_trainer(TrainingState(model, opt)); cb.on_train_begin()
        >>> for epoch, loss in enumerate([1.0, 0.9, 0.95, 0.95]):
        ...     cb.on_epoch_end(epoch, {"loss": loss})
        >>> opt.param_groups[0]["lr"]
        0.5
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        factor: float = 0.1,
        patience: int = 10,
        verbose: int = 0,
        mode: str = "auto",
        min_delta: float = 1e-4,
        cooldown: int = 0,
        min_lr: float = 0.0,
    ) -> None:
        if not isinstance(factor, (int, float)) or isinstance(factor, bool) or not 0 <= factor < 1.0:
            raise ConfigError(f"ReduceLROnPlateau: factor must be in [0, 1) (Keras refuses >= 1), got {factor!r}")
        for name, value in (("patience", patience), ("cooldown", cooldown)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
                raise ConfigError(f"ReduceLROnPlateau: {name} must be an integer >= 0, got {value!r}")
        if not isinstance(min_delta, (int, float)) or min_delta < 0:
            raise ConfigError(f"ReduceLROnPlateau: min_delta must be a number >= 0, got {min_delta!r}")
        if not isinstance(min_lr, (int, float)) or min_lr < 0:
            raise ConfigError(f"ReduceLROnPlateau: min_lr must be a number >= 0, got {min_lr!r}")
        resolve_mode(mode, monitor, "ReduceLROnPlateau")  # refuses a mode other than auto/min/max now
        self.monitor = monitor
        self.factor = float(factor)
        self.patience = int(patience)
        self.verbose = verbose
        self.mode = mode
        self.min_delta = float(min_delta)
        self.cooldown = int(cooldown)
        self.min_lr = float(min_lr)
        self._monitor = Monitor(monitor, "ReduceLROnPlateau")
        self._direction = "min"
        self.best = math.inf
        self.wait = 0
        self.cooldown_counter = 0

    def on_train_begin(self, logs: Logs | None = None) -> None:
        self._monitor.reset()
        self._direction = resolve_mode(self.mode, self.monitor, "ReduceLROnPlateau", self)
        self.best = math.inf if self._direction == "min" else -math.inf
        self.wait = 0
        self.cooldown_counter = 0

    def _improves(self, current: float) -> bool:
        if self._direction == "min":
            return current < self.best - self.min_delta
        return current > self.best + self.min_delta

    def in_cooldown(self) -> bool:
        return self.cooldown_counter > 0

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        current = self._monitor.read(logs)
        if current is None:
            return
        if self.in_cooldown():
            self.cooldown_counter -= 1
            self.wait = 0
        if self._improves(current):
            self.best = current
            self.wait = 0
        elif not self.in_cooldown():
            self.wait += 1
            if self.wait >= self.patience:
                self._reduce(epoch)

    def _reduce(self, epoch: int) -> None:
        reduced = None
        for group in _group_rates(self.trainer.optimizer, "ReduceLROnPlateau"):
            old = float(group["lr"])
            if old > float(np.float32(self.min_lr)):  # Keras compares with min_lr in float32
                group["lr"] = max(old * self.factor, self.min_lr)
                reduced = group["lr"] if reduced is None else reduced
        if reduced is not None:
            if self.verbose:
                _say(f"\nEpoch {epoch + 1}: ReduceLROnPlateau reducing learning rate to {reduced}.")
            self.cooldown_counter = self.cooldown
            self.wait = 0

    def state_identity(self) -> dict[str, Any]:
        # a resumed run gives the saved plateau to the callback watching the same quantity the same way
        return {"monitor": self.monitor, "mode": self.mode}

    def state_dict(self) -> dict[str, Any]:
        return {
            "best": self.best,
            "wait": self.wait,
            "cooldown_counter": self.cooldown_counter,
            "monitor": self.monitor,
            "direction": self._direction,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("monitor") != self.monitor or state.get("direction") != self._direction:
            import warnings

            warnings.warn(
                f"ReduceLROnPlateau: the checkpoint's plateau watched {state.get('monitor')!r} "
                f"({state.get('direction')}), this one watches {self.monitor!r} ({self._direction}): it starts afresh",
                stacklevel=2,
            )
            return
        self.best = float(state["best"])
        self.wait = int(state["wait"])
        self.cooldown_counter = int(state["cooldown_counter"])


__all__ = ["LambdaCallback", "LearningRateScheduler", "ReduceLROnPlateau"]
