"""Callbacks: small objects the fit loop calls at fixed points, which can watch, log, or stop training.

The hooks (all no-ops in :class:`Callback`) receive the 0-based ``epoch``/``batch`` index and the
``logs`` dict of the moment::

    on_train_begin(logs)            logs: {}
    on_epoch_begin(epoch, logs)     logs: {}
    on_batch_begin(batch, logs)     logs: {'size': samples in the batch}
    on_batch_end(batch, logs)       logs: {'loss': this batch's loss, 'size': ...}
    on_epoch_end(epoch, logs)       logs: {'loss', metrics, 'val_loss', 'val_<metric>', 'lr', 'time'}
    on_train_end(logs)              logs: the last epoch's logs

A callback reaches the run through ``self.trainer`` (a :class:`TrainingState`: model, optimizer,
scheduler, history, params) and stops it with ``self.stop("reason")``, which sets
``trainer.stop_training = True`` and ``trainer.stop_reason``; the loop finishes the current batch
and, at an epoch's end, stops. Each callback resets its state in ``on_train_begin``, so one object
can be reused across runs. Messages count epochs from 1, as progress output does.
"""

from __future__ import annotations

import io
import math
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ArgumentError, ArgumentTypeError, ConfigError, DivergenceError
from .history import STOP_KINDS
from .metrics import Metric, greater_is_better

Logs = dict[str, Any]


class TrainingState:
    """What callbacks see of a training run (``callback.trainer``); ``fit`` fills it.

    Attributes:
        model, optimizer, scheduler: the objects being trained (None where absent).
        history: the :class:`~downslope.train.history.History` being recorded.
        params: facts about the run: ``epochs``, ``steps`` (updates per epoch), ``batch_size``.
        metrics: the Metric objects fit computes, by name (monitors with ``mode='auto'`` read
            their ``greater_is_better``).
        epoch: the 0-based index of the current epoch.
        stop_training / stop_reason: set by :meth:`Callback.stop`.
        checkpoint_state: a function returning the full, resumable training state (set by fit).
    """

    def __init__(
        self,
        model: Any = None,
        optimizer: Any = None,
        scheduler: Any = None,
        history: Any = None,
        params: dict[str, Any] | None = None,
        metrics: Iterable[Metric] = (),
    ) -> None:
        self.model = model
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.history = history
        self.params: dict[str, Any] = dict(params or {})
        self.metrics: dict[str, Metric] = {m.name: m for m in metrics}
        self.epoch = 0
        self.stop_training = False
        self.stop_reason: str | None = None
        self.stop_kind: str | None = None
        self.checkpoint_state: Callable[[], dict[str, Any]] | None = None

    def current_lr(self) -> float | None:
        """The first parameter group's learning rate, if there is an optimizer."""
        groups = getattr(self.optimizer, "param_groups", None)
        if groups:
            return float(groups[0]["lr"])
        return None


class Callback:
    """Base class: every hook is a documented no-op; override the ones you need.

    Example:
        >>> class PrintLoss(Callback):
        ...     def on_epoch_end(self, epoch, logs=None):
        ...         print(f"epoch {epoch + 1}: loss {logs['loss']:.2f}")
        >>> cb = PrintLoss(); cb.set_trainer(TrainingState())
        >>> cb.on_epoch_end(0, {"loss": 0.5})
        epoch 1: loss 0.50
    """

    trainer: TrainingState

    def set_trainer(self, trainer: TrainingState) -> None:
        self.trainer = trainer

    @property
    def model(self) -> Any:
        return self.trainer.model

    def stop(self, reason: str, kind: str = "callback") -> None:
        """Ask the loop to stop after the current batch; ``reason`` (words) ends up in
        ``History.stop_reason`` and ``kind`` (one of ``history.STOP_KINDS``) in ``History.stop_kind``."""
        if kind not in STOP_KINDS:
            raise ArgumentError(
                f"{type(self).__name__}.stop: kind must be one of {', '.join(STOP_KINDS)}; got {kind!r}"
            )
        self.trainer.stop_training = True
        if self.trainer.stop_reason is None:
            self.trainer.stop_reason = reason
            self.trainer.stop_kind = kind

    def on_train_begin(self, logs: Logs | None = None) -> None:
        """Called once before the first epoch. Reset per-run state here."""

    def on_train_end(self, logs: Logs | None = None) -> None:
        """Called once after the last epoch (also after an early stop or a Ctrl-C)."""

    def on_epoch_begin(self, epoch: int, logs: Logs | None = None) -> None:
        """Called at the start of epoch ``epoch`` (0-based)."""

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        """Called after an epoch's training and validation; ``logs`` holds its numbers."""

    def on_batch_begin(self, batch: int, logs: Logs | None = None) -> None:
        """Called before the update on batch ``batch`` of the epoch."""

    def on_batch_end(self, batch: int, logs: Logs | None = None) -> None:
        """Called after the update on batch ``batch``; ``logs['loss']`` is the batch loss."""

    def state_dict(self) -> dict[str, Any]:
        """State to put in a checkpoint so that a resumed run behaves as an uninterrupted one."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""


class CallbackList(Callback):
    """Calls each hook on a list of callbacks, in order.

    Example:
        >>> cbs = CallbackList([Callback(), Callback()])
        >>> len(cbs)
        2
    """

    def __init__(self, callbacks: Iterable[Callback] | None = None) -> None:
        self.callbacks: list[Callback] = []
        for cb in callbacks or []:
            if not isinstance(cb, Callback):
                raise ArgumentTypeError(f"callbacks: expected Callback instances, got {type(cb).__name__} {cb!r}")
            self.callbacks.append(cb)

    def __len__(self) -> int:
        return len(self.callbacks)

    def __iter__(self) -> Any:
        return iter(self.callbacks)

    def append(self, callback: Callback) -> None:
        self.callbacks.append(callback)

    def set_trainer(self, trainer: TrainingState) -> None:
        self.trainer = trainer
        for cb in self.callbacks:
            cb.set_trainer(trainer)

    def on_train_begin(self, logs: Logs | None = None) -> None:
        for cb in self.callbacks:
            cb.on_train_begin(logs)

    def on_train_end(self, logs: Logs | None = None) -> None:
        for cb in self.callbacks:
            cb.on_train_end(logs)

    def on_epoch_begin(self, epoch: int, logs: Logs | None = None) -> None:
        for cb in self.callbacks:
            cb.on_epoch_begin(epoch, logs)

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        for cb in self.callbacks:
            cb.on_epoch_end(epoch, logs)

    def on_batch_begin(self, batch: int, logs: Logs | None = None) -> None:
        for cb in self.callbacks:
            cb.on_batch_begin(batch, logs)

    def on_batch_end(self, batch: int, logs: Logs | None = None) -> None:
        for cb in self.callbacks:
            cb.on_batch_end(batch, logs)

    def state_dict(self) -> dict[str, Any]:
        return {f"{i}:{type(cb).__name__}": cb.state_dict() for i, cb in enumerate(self.callbacks)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for i, cb in enumerate(self.callbacks):
            key = f"{i}:{type(cb).__name__}"
            if key in state:
                cb.load_state_dict(state[key])


# ---------------------------------------------------------------------- monitoring helpers
def _resolve_mode(mode: str, monitor: str, where: str, callback: Callback | None = None) -> str:
    """'min' or 'max' for ``mode``; 'auto' asks the monitored metric which way is better.

    With a trainer (from ``on_train_begin`` on), the metrics fit computes decide; before that, or
    for a name fit does not compute, the built-in metric of that name; the loss and anything that
    is not a metric are minimized (see :func:`~downslope.train.metrics.greater_is_better`).
    """
    if mode not in ("auto", "min", "max"):
        raise ConfigError(f"{where}: mode must be 'auto', 'min' or 'max', got {mode!r}")
    if mode == "auto":
        trainer = getattr(callback, "trainer", None)
        metrics = trainer.metrics if trainer is not None else None
        return "max" if greater_is_better(monitor, metrics) else "min"
    return mode


def _fmt(x: float) -> str:
    return f"{x:.4g}"


class _Monitor:
    """Reads a monitored value from logs; falls back from 'val_x' to 'x' (with a warning) without validation."""

    def __init__(self, monitor: str, where: str) -> None:
        self.requested = monitor
        self.key = monitor
        self.where = where
        self.warned = False

    def reset(self) -> None:
        self.key = self.requested
        self.warned = False

    def read(self, logs: Logs | None) -> float | None:
        logs = logs or {}
        if self.key in logs:
            return float(logs[self.key])
        if self.key.startswith("val_") and self.key[4:] in logs:
            warnings.warn(
                f"{self.where}: {self.key!r} is not available (no validation data), so it monitors "
                f"{self.key[4:]!r} (the training value) instead",
                stacklevel=3,
            )
            self.key = self.key[4:]
            return float(logs[self.key])
        if not self.warned:
            warnings.warn(
                f"{self.where}: {self.key!r} is not in the logs (available: {', '.join(sorted(logs)) or 'none'}); "
                "this callback does nothing until it appears",
                stacklevel=3,
            )
            self.warned = True
        return None


# ---------------------------------------------------------------------- stopping rules
class EarlyStopping(Callback):
    """Stop when a monitored quantity has stopped improving (Keras 3 semantics and defaults).

    Args:
        monitor: the logged quantity to watch ('val_loss'; falls back to 'loss', with a warning,
            when there is no validation data).
        min_delta: an improvement must beat the best value by more than this.
        patience: epochs without improvement before stopping. As in Keras, training stops at the
            end of the ``patience``-th epoch in a row without improvement (0 and 1 both stop at the
            first such epoch), and never at the first epoch.
        mode: 'min', 'max' or 'auto': the monitored metric's ``greater_is_better`` decides (max
            for 'val_accuracy', min for 'val_loss'; see :func:`~downslope.train.metrics.greater_is_better`),
            read again at ``on_train_begin`` from the metrics fit computes.
        baseline: training stops unless the monitored value beats this within ``patience`` epochs.
        restore_best_weights: at the end of training — early stop or not — load the weights of
            the best epoch.
        start_from_epoch: epochs of warm-up during which improvement is not tracked.

    ``stopped_epoch`` and ``best_epoch`` are 0-based epoch indices.

    Example:
        >>> stopper = EarlyStopping(monitor="loss", patience=1)
        >>> state = TrainingState(); stopper.set_trainer(state); stopper.on_train_begin()
        >>> for epoch, loss in enumerate([1.0, 0.5, 0.6, 0.7]):
        ...     stopper.on_epoch_end(epoch, {"loss": loss})
        ...     if state.stop_training: break
        >>> epoch, state.stop_reason
        (2, 'early stopping: loss did not improve for 1 epoch (best 0.5 at epoch 2)')
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        min_delta: float = 0.0,
        patience: int = 0,
        verbose: int = 0,
        mode: str = "auto",
        baseline: float | None = None,
        restore_best_weights: bool = False,
        start_from_epoch: int = 0,
    ) -> None:
        if not isinstance(patience, int) or patience < 0:
            raise ConfigError(f"EarlyStopping: patience must be a non-negative integer, got {patience!r}")
        if not isinstance(start_from_epoch, int) or start_from_epoch < 0:
            raise ConfigError(
                f"EarlyStopping: start_from_epoch must be a non-negative integer, got {start_from_epoch!r}"
            )
        self.monitor = monitor
        self.min_delta = abs(float(min_delta))
        self.patience = patience
        self.verbose = verbose
        self.mode_requested = mode
        self.mode = _resolve_mode(mode, monitor, "EarlyStopping")
        self.baseline = baseline
        self.restore_best_weights = restore_best_weights
        self.start_from_epoch = start_from_epoch
        self._monitor = _Monitor(monitor, "EarlyStopping")
        self.on_train_begin()

    def on_train_begin(self, logs: Logs | None = None) -> None:
        self.mode = _resolve_mode(self.mode_requested, self.monitor, "EarlyStopping", self)
        self.wait = 0
        self.stopped_epoch = 0
        self.best: float | None = None
        self.best_weights: dict[str, np.ndarray] | None = None
        self.best_epoch = 0
        self._monitor.reset()

    def _is_improvement(self, value: float, reference: float | None) -> bool:
        if reference is None:
            return True
        if self.mode == "min":
            return value + self.min_delta < reference
        return value - self.min_delta > reference

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        current = self._monitor.read(logs)
        if current is None or epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            # Until something improves, the first tracked epoch's weights are the best we have.
            self.best_weights = self.model.state_dict()
            self.best_epoch = epoch
        self.wait += 1
        if self._is_improvement(current, self.best):
            self.best = current
            self.best_epoch = epoch
            if self.restore_best_weights:
                self.best_weights = self.model.state_dict()
            # The wait restarts only when the value beats both the previous best and the baseline.
            if self.baseline is None or self._is_improvement(current, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            best = "none" if self.best is None else _fmt(self.best)
            self.stop(
                f"early stopping: {self._monitor.key} did not improve for {self.wait} epoch"
                f"{'s' if self.wait != 1 else ''} (best {best} at epoch {self.best_epoch + 1})",
                "early_stopping",
            )

    def on_train_end(self, logs: Logs | None = None) -> None:
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose:
                print(f"Restoring model weights from the end of the best epoch: {self.best_epoch + 1}.")
            from ..nn import Module

            if isinstance(self.model, Module):  # its own snapshot: an epoch that diverged may hold NaN
                self.model.load_state_dict(self.best_weights, allow_nonfinite=True)
            else:
                self.model.load_state_dict(self.best_weights)

    def state_dict(self) -> dict[str, Any]:
        return {
            "wait": self.wait,
            "stopped_epoch": self.stopped_epoch,
            "best": self.best,
            "best_epoch": self.best_epoch,
            "best_weights": self.best_weights,
            "monitor_key": self._monitor.key,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.wait = int(state["wait"])
        self.stopped_epoch = int(state["stopped_epoch"])
        self.best = None if state["best"] is None else float(state["best"])
        self.best_epoch = int(state["best_epoch"])
        self.best_weights = None if state["best_weights"] is None else dict(state["best_weights"])
        self._monitor.key = str(state["monitor_key"])


class StopAtTarget(Callback):
    """Stop as soon as a monitored quantity reaches a target (e.g. val_accuracy >= 0.98).

    Example:
        >>> rule = StopAtTarget("val_accuracy", 0.9)
        >>> state = TrainingState(); rule.set_trainer(state); rule.on_train_begin()
        >>> rule.on_epoch_end(4, {"val_accuracy": 0.93}); state.stop_reason
        'target reached: val_accuracy 0.93 >= 0.9 at epoch 5'
    """

    def __init__(self, monitor: str, target: float, mode: str = "auto") -> None:
        if not isinstance(target, (int, float)) or not math.isfinite(target):
            raise ConfigError(f"StopAtTarget: target must be a finite number, got {target!r}")
        self.monitor = monitor
        self.target = float(target)
        self.mode_requested = mode
        self.mode = _resolve_mode(mode, monitor, type(self).__name__)
        self._monitor = _Monitor(monitor, type(self).__name__)

    def on_train_begin(self, logs: Logs | None = None) -> None:
        self.mode = _resolve_mode(self.mode_requested, self.monitor, type(self).__name__, self)
        self._monitor.reset()

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        value = self._monitor.read(logs)
        if value is None:
            return
        reached = value <= self.target if self.mode == "min" else value >= self.target
        if reached:
            sign = "<=" if self.mode == "min" else ">="
            self.stop(
                f"target reached: {self._monitor.key} {_fmt(value)} {sign} {_fmt(self.target)} at epoch {epoch + 1}",
                "target",
            )


class StopAtLoss(StopAtTarget):
    """Stop once the loss is at or below ``target`` (``monitor`` may be 'val_loss').

    Example:
        >>> rule = StopAtLoss(0.01)
        >>> state = TrainingState(); rule.set_trainer(state); rule.on_train_begin()
        >>> rule.on_epoch_end(0, {"loss": 0.02}); state.stop_training
        False
        >>> rule.on_epoch_end(1, {"loss": 0.009}); state.stop_training
        True
    """

    def __init__(self, target: float, monitor: str = "loss") -> None:
        super().__init__(monitor, target, mode="min")


class MaxTime(Callback):
    """Stop at the end of the first epoch that finishes after ``seconds`` of training.

    ``clock`` is the time source (``time.monotonic``), replaceable in tests.

    Example:
        >>> ticks = iter([0.0, 5.0, 12.0])
        >>> rule = MaxTime(10, clock=lambda: next(ticks))
        >>> state = TrainingState(); rule.set_trainer(state); rule.on_train_begin()
        >>> rule.on_epoch_end(0, {}); state.stop_training
        False
        >>> rule.on_epoch_end(1, {}); state.stop_reason
        'time limit: 12 s >= 10 s after epoch 2'
    """

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        if not isinstance(seconds, (int, float)) or not seconds > 0:
            raise ConfigError(f"MaxTime: seconds must be a positive number, got {seconds!r}")
        self.seconds = float(seconds)
        self.clock = clock
        self.start = 0.0

    def on_train_begin(self, logs: Logs | None = None) -> None:
        self.start = self.clock()

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        elapsed = self.clock() - self.start
        if elapsed >= self.seconds:
            self.stop(f"time limit: {_fmt(elapsed)} s >= {_fmt(self.seconds)} s after epoch {epoch + 1}", "time_limit")


class TerminateOnNaN(Callback):
    """Stop at the first batch whose loss is NaN or infinite.

    Example:
        >>> rule = TerminateOnNaN(); state = TrainingState(); rule.set_trainer(state)
        >>> rule.on_batch_end(7, {"loss": float("nan")}); state.stop_reason
        'loss became nan at batch 8'
    """

    def on_batch_end(self, batch: int, logs: Logs | None = None) -> None:
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.stop(f"loss became {float(loss)} at batch {batch + 1}", "diverged")


class DivergenceGuard(Callback):
    """Stop (or raise) when training diverges: the loss turns NaN/inf, or grows ``factor`` times above its best
    (the first batch's loss, taken before any update, counts as a best).

    The message names what happened and what to try, e.g. ``loss rose from 0.41 to 3e+08 in 3 epochs
    at lr=1; try lr=0.1``. Non-finite batch losses stop training at once; growth is judged per epoch.

    Args:
        monitor: the quantity to watch ('loss').
        factor: how many times above its best the value may grow before it counts as divergence.
        raise_error: raise :class:`~downslope.errors.DivergenceError` instead of stopping quietly.

    Example:
        >>> guard = DivergenceGuard(); state = TrainingState(); guard.set_trainer(state); guard.on_train_begin()
        >>> for epoch, loss in enumerate([0.41, 2.0, 30.0, 3e8]):
        ...     guard.on_epoch_end(epoch, {"loss": loss, "lr": 1.0})
        >>> state.stop_reason
        'diverged: loss rose from 0.41 to 3e+08 in 3 epochs at lr=1; the step size is probably too large, try lr=0.1'
    """

    def __init__(self, monitor: str = "loss", factor: float = 100.0, raise_error: bool = False) -> None:
        if not isinstance(factor, (int, float)) or not factor > 1:
            raise ConfigError(f"DivergenceGuard: factor must be a number > 1, got {factor!r}")
        self.monitor = monitor
        self.factor = float(factor)
        self.raise_error = raise_error
        self.on_train_begin()

    def on_train_begin(self, logs: Logs | None = None) -> None:
        self.best: float | None = None
        self.best_epoch = 0
        self.diverged_epoch: int | None = None

    def _lr_text(self, logs: Logs | None) -> tuple[str, str]:
        lr = (logs or {}).get("lr")
        if lr is None and hasattr(self, "trainer"):
            lr = self.trainer.current_lr()
        if lr is None:
            return "", "try a smaller learning rate"
        return f" at lr={float(lr):g}", f"try lr={float(lr) / 10:g}"

    def _diverge(self, epoch: int, message: str) -> None:
        self.diverged_epoch = epoch
        if self.raise_error:
            raise DivergenceError(message)
        self.stop(message, "diverged")

    def on_batch_end(self, batch: int, logs: Logs | None = None) -> None:
        if self.monitor != "loss":
            return
        loss = (logs or {}).get("loss")
        if loss is not None and self.best is None and math.isfinite(float(loss)):
            # The first batch's loss is the loss before any update: a run whose epoch loss climbs
            # `factor` times above it diverged, even if it later comes down again.
            self.best, self.best_epoch = float(loss), -1
        if loss is not None and not math.isfinite(float(loss)):
            at, hint = self._lr_text(logs)
            epoch = self.trainer.epoch if hasattr(self, "trainer") else 0
            self._diverge(
                epoch,
                f"diverged: loss became {float(loss)} at batch {batch + 1} of epoch {epoch + 1}{at}; "
                f"the step size is probably too large (or the data holds extreme values), {hint}",
            )

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        value = (logs or {}).get(self.monitor)
        if value is None:
            return
        value = float(value)
        at, hint = self._lr_text(logs)
        if not math.isfinite(value):
            self._diverge(
                epoch,
                f"diverged: {self.monitor} became {value} at epoch {epoch + 1}{at}; "
                f"the step size is probably too large (or the data holds extreme values), {hint}",
            )
            return
        if self.best is None or value < self.best:
            self.best, self.best_epoch = value, epoch
            return
        if value > self.factor * max(self.best, 1e-12):
            span = epoch - self.best_epoch
            self._diverge(
                epoch,
                f"diverged: {self.monitor} rose from {_fmt(self.best)} to {value:.3g} in {span} epoch"
                f"{'s' if span != 1 else ''}{at}; the step size is probably too large, {hint}",
            )

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "best_epoch": self.best_epoch}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best = None if state["best"] is None else float(state["best"])
        self.best_epoch = int(state["best_epoch"])


# ---------------------------------------------------------------------- files
class ModelCheckpoint(Callback):
    """Save a checkpoint at epoch ends: the latest, or only when the monitored value improves.

    ``filepath`` may hold format fields filled from the epoch's logs, e.g.
    ``"ckpt/epoch{epoch:03d}-{val_loss:.3f}.ckpt"`` (``epoch`` counts from 1). Files are written
    atomically (a crash leaves the previous file intact) in the library's checkpoint format.
    A full checkpoint holds everything needed to resume (``fit(..., resume_from=path)``);
    ``save_weights_only=True`` keeps just ``{"model": state_dict}``.

    Example:
        >>> import os, tempfile
        >>> from downslope import nn
        >>> path = os.path.join(tempfile.mkdtemp(), "best.ckpt")
        >>> saver = ModelCheckpoint(path, monitor="loss", save_best_only=True)
        >>> saver.set_trainer(TrainingState(model=nn.Linear(2, 1))); saver.on_train_begin()
        >>> saver.on_epoch_end(0, {"loss": 0.3}); saver.best_epoch, os.path.exists(path)
        (0, True)
    """

    def __init__(
        self,
        filepath: str | Path,
        monitor: str = "val_loss",
        mode: str = "auto",
        save_best_only: bool = False,
        save_weights_only: bool = False,
        every_n_epochs: int = 1,
        verbose: int = 0,
    ) -> None:
        if not isinstance(every_n_epochs, int) or every_n_epochs < 1:
            raise ConfigError(f"ModelCheckpoint: every_n_epochs must be a positive integer, got {every_n_epochs!r}")
        self.filepath = str(filepath)
        self.monitor = monitor
        self.mode_requested = mode
        self.mode = _resolve_mode(mode, monitor, "ModelCheckpoint")
        self.save_best_only = save_best_only
        self.save_weights_only = save_weights_only
        self.every_n_epochs = every_n_epochs
        self.verbose = verbose
        self._monitor = _Monitor(monitor, "ModelCheckpoint")
        self.on_train_begin()

    def on_train_begin(self, logs: Logs | None = None) -> None:
        self.mode = _resolve_mode(self.mode_requested, self.monitor, "ModelCheckpoint", self)
        self.best: float | None = None
        self.best_epoch: int | None = None
        self.last_saved: str | None = None
        self._monitor.reset()

    def _path(self, epoch: int, logs: Logs) -> str:
        try:
            return self.filepath.format(epoch=epoch + 1, **logs)
        except (KeyError, IndexError, ValueError) as exc:
            raise ConfigError(
                f"ModelCheckpoint: cannot fill the file name {self.filepath!r} from the logs "
                f"(available: epoch, {', '.join(sorted(logs))}): {exc}"
            ) from None

    def _state(self) -> dict[str, Any]:
        build = self.trainer.checkpoint_state
        if self.save_weights_only or build is None:
            return {"model": self.model.state_dict()}
        return build()

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        logs = dict(logs or {})
        if self.save_best_only:
            value = self._monitor.read(logs)
            if value is None or not math.isfinite(value):
                return
            better = self.best is None or (value < self.best if self.mode == "min" else value > self.best)
            if not better:
                return
            self.best, self.best_epoch = value, epoch
        elif (epoch + 1) % self.every_n_epochs:
            return
        from ..serialization import save

        path = self._path(epoch, logs)
        save(self._state(), path)
        self.last_saved = path
        if self.verbose:
            print(f"Epoch {epoch + 1}: saved checkpoint {path}")

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "best_epoch": self.best_epoch}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best = state["best"]
        self.best_epoch = state["best_epoch"]


class CSVLogger(Callback):
    """Write each epoch's logs as a CSV row (``epoch`` from 1, then the logged columns).

    The whole file is rewritten atomically each epoch, so it is always complete and readable, and a
    column that appears late (e.g. from a callback) still gets its header.

    Example:
        >>> import os, tempfile
        >>> path = os.path.join(tempfile.mkdtemp(), "log.csv")
        >>> logger = CSVLogger(path); logger.on_train_begin()
        >>> logger.on_epoch_end(0, {"loss": 0.5}); logger.on_epoch_end(1, {"loss": 0.25})
        >>> print(open(path).read().strip())
        epoch,loss
        1,0.5
        2,0.25
    """

    def __init__(self, filename: str | Path, separator: str = ",", append: bool = False) -> None:
        self.filename = Path(filename)
        self.separator = separator
        self.append = append
        self.rows: list[dict[str, Any]] = []

    def on_train_begin(self, logs: Logs | None = None) -> None:
        self.rows = []
        if self.append and self.filename.exists():
            import csv

            with open(self.filename, newline="") as handle:
                self.rows = [dict(r) for r in csv.DictReader(handle, delimiter=self.separator)]

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        row: dict[str, Any] = {"epoch": epoch + 1}
        row.update({k: v for k, v in (logs or {}).items() if np.isscalar(v) or isinstance(v, (int, float, str))})
        self.rows.append(row)
        self._write()

    def _write(self) -> None:
        import csv

        from ..serialization import atomic_write_bytes

        columns: list[str] = []
        for row in self.rows:
            columns.extend(k for k in row if k not in columns)
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns, delimiter=self.separator, lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.rows)
        atomic_write_bytes(self.filename, buffer.getvalue().encode())

    def state_dict(self) -> dict[str, Any]:
        return {"rows": [{k: (v.item() if isinstance(v, np.generic) else v) for k, v in r.items()} for r in self.rows]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rows = [dict(r) for r in state["rows"]]


class LearningRateMonitor(Callback):
    """Record the learning rate of every parameter group, per epoch (default) or per step.

    Puts ``lr`` (group 0) and ``lr_group<i>`` (other groups) into the epoch logs, and keeps the
    series in ``self.lrs`` (one list of group rates per epoch or step).

    Example:
        >>> class Opt: param_groups = [{"lr": 0.1}, {"lr": 0.01}]
        >>> monitor = LearningRateMonitor(); monitor.set_trainer(TrainingState(optimizer=Opt()))
        >>> monitor.on_train_begin(); logs = {}; monitor.on_epoch_end(0, logs); logs
        {'lr': 0.1, 'lr_group1': 0.01}
    """

    def __init__(self, logging_interval: str = "epoch") -> None:
        if logging_interval not in ("epoch", "step"):
            raise ConfigError(
                f"LearningRateMonitor: logging_interval must be 'epoch' or 'step', got {logging_interval!r}"
            )
        self.logging_interval = logging_interval
        self.lrs: list[list[float]] = []

    def _rates(self) -> list[float]:
        groups = getattr(self.trainer.optimizer, "param_groups", None) or []
        return [float(g["lr"]) for g in groups]

    def on_train_begin(self, logs: Logs | None = None) -> None:
        self.lrs = []

    def on_batch_begin(self, batch: int, logs: Logs | None = None) -> None:
        if self.logging_interval == "step":
            self.lrs.append(self._rates())

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        rates = self._rates()
        if self.logging_interval == "epoch":
            self.lrs.append(rates)
        if logs is not None and rates:
            logs["lr"] = rates[0]
            for i, r in enumerate(rates[1:], start=1):
                logs[f"lr_group{i}"] = r

    def state_dict(self) -> dict[str, Any]:
        return {"lrs": self.lrs}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.lrs = [list(r) for r in state["lrs"]]


def as_callback_list(callbacks: Sequence[Callback] | CallbackList | None) -> CallbackList:
    if isinstance(callbacks, CallbackList):
        return callbacks
    if callbacks is not None and not isinstance(callbacks, (list, tuple)):
        raise ArgumentTypeError(f"callbacks: expected a list of Callback objects, got {type(callbacks).__name__}")
    return CallbackList(callbacks)
