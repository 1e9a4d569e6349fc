"""Stopping rules: stop when the monitored quantity stops improving (:class:`EarlyStopping`), reaches a
target, the time runs out, or the loss diverges (:class:`DivergenceGuard`, :class:`TerminateOnNaN`)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from ...errors import ConfigError, DivergenceError
from ..placement import DeviceScalar, load_on_host, state_snapshot
from .base import Callback, Logs, TrainingState  # noqa: F401  (TrainingState: the examples use it)
from .monitoring import Monitor, fmt, resolve_mode


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
        baseline: a value the monitored quantity must beat for the wait to restart (Keras 3's rule):
            an epoch that improves on the best so far without beating the baseline keeps the count of
            epochs waited, and training stops at the first epoch that does not improve once that count
            has reached ``patience``. A steady improvement that never reaches the baseline does not stop.
        restore_best_weights: at the end of training — early stop or not — load the weights of
            the best epoch.
        start_from_epoch: epochs of warm-up during which improvement is not tracked.

    ``stopped_epoch`` and ``best_epoch`` are 0-based epoch indices, as Keras' (the base of
    ``history.epoch`` and ``History.best_epoch_index``; ``History.best_epoch`` counts from 1, as
    ``history["epoch"]`` and the messages do).

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
        self.mode = resolve_mode(mode, monitor, "EarlyStopping")
        self.baseline = baseline
        self.restore_best_weights = restore_best_weights
        self.start_from_epoch = start_from_epoch
        self._monitor = Monitor(monitor, "EarlyStopping")
        self.on_train_begin()

    def on_train_begin(self, logs: Logs | None = None) -> None:
        self.mode = resolve_mode(self.mode_requested, self.monitor, "EarlyStopping", self)
        self.wait = 0
        self.stopped_epoch = 0
        self.best: float | None = None
        self.best_weights: Mapping[str, np.ndarray] | None = None
        self.best_epoch = 0
        self._monitor.reset()

    def _is_improvement(self, value: float, reference: float | None) -> bool:
        if math.isnan(value):  # never the best (Keras compares with an initial +-inf: NaN loses)
            return False
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
            self.best_weights = state_snapshot(self.trained_model())
            self.best_epoch = epoch
        self.wait += 1
        if self._is_improvement(current, self.best):
            self.best = current
            self.best_epoch = epoch
            if self.restore_best_weights:
                self.best_weights = state_snapshot(self.trained_model())
            # The wait restarts only when the value beats both the previous best and the baseline.
            if self.baseline is None or self._is_improvement(current, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            best = "none" if self.best is None else fmt(self.best)
            self.stop(
                f"early stopping: {self._monitor.key} did not improve for {self.wait} epoch"
                f"{'s' if self.wait != 1 else ''} (best {best} at epoch {self.best_epoch + 1})",
                "early_stopping",
            )

    def on_train_end(self, logs: Logs | None = None) -> None:
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose:
                print(f"Restoring model weights from the end of the best epoch: {self.best_epoch + 1}.")
            from ...nn import Module

            model = self.trained_model()
            if isinstance(model, Module):  # its own snapshot: an epoch that diverged may hold NaN
                load_on_host(model, self.best_weights, allow_nonfinite=True)  # the model may be on a device
            else:
                model.load_state_dict(self.best_weights)

    def state_dict(self) -> dict[str, Any]:
        return {
            "wait": self.wait,
            "stopped_epoch": self.stopped_epoch,
            "best": self.best,
            "best_epoch": self.best_epoch,
            "best_weights": self.best_weights,
            "monitor_key": self._monitor.key,
        }

    def state_identity(self) -> dict[str, Any]:
        # the best value and the wait belong to one quantity, compared one way
        return {"monitor": self.monitor, "mode": self.mode_requested}

    def legacy_state_fits(self, state: dict[str, Any]) -> bool:
        return _same_quantity(str(state.get("monitor_key", self.monitor)), self.monitor)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.wait = int(state["wait"])
        self.stopped_epoch = int(state["stopped_epoch"])
        self.best = None if state["best"] is None else float(state["best"])
        self.best_epoch = int(state["best_epoch"])
        self.best_weights = None if state["best_weights"] is None else dict(state["best_weights"])
        key = str(state.get("monitor_key", self.monitor))
        # the key it read last (e.g. 'loss' for 'val_loss' in a run without validation data), so that a
        # resumed run reads the same one without warning again; never another quantity than its own
        if _same_quantity(key, self.monitor):
            self._monitor.key = key


def _same_quantity(key: str, monitor: str) -> bool:
    """Whether ``key``, a log name a monitor read, is what ``monitor`` reads: itself, its alias ('val_acc'
    reads 'val_accuracy') or, without validation data, the training value it falls back to."""
    from ..metrics import canonical_log_name

    alias, read = canonical_log_name(monitor), canonical_log_name(key)
    return read in {alias, alias.removeprefix("val_")} or key in {monitor, monitor.removeprefix("val_")}


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
        self.mode = resolve_mode(mode, monitor, type(self).__name__)
        self._monitor = Monitor(monitor, type(self).__name__)

    def on_train_begin(self, logs: Logs | None = None) -> None:
        self.mode = resolve_mode(self.mode_requested, self.monitor, type(self).__name__, self)
        self._monitor.reset()

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        value = self._monitor.read(logs)
        if value is None:
            return
        reached = value <= self.target if self.mode == "min" else value >= self.target
        if reached:
            sign = "<=" if self.mode == "min" else ">="
            self.stop(
                f"target reached: {self._monitor.key} {fmt(value)} {sign} {fmt(self.target)} at epoch {epoch + 1}",
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
            self.stop(f"time limit: {fmt(elapsed)} s >= {fmt(self.seconds)} s after epoch {epoch + 1}", "time_limit")


def batch_loss(logs: Logs | None) -> Any:
    """This batch's own loss: fit's batch logs hold Keras 3's running mean as ``'loss'`` and the batch's own
    loss as the attribute ``batch_loss``; logs without it (a loop of one's own) hold the batch's loss. None for
    a batch with nothing to score (``scored`` False: all its targets ignored, a NaN that is no divergence)."""
    if getattr(logs, "scored", True) is False:
        return None
    own = getattr(logs, "batch_loss", None)
    return own if own is not None else (logs or {}).get("loss")


class TerminateOnNaN(Callback):
    """Stop at the first batch whose loss is NaN or infinite.

    When training on a device the batch losses are not read back one by one (each read would wait
    for the device): a NaN/inf loss shows in the epoch's loss, and training stops after that epoch.

    Example:
        >>> rule = TerminateOnNaN(); state = TrainingState(); rule.set_trainer(state)
        >>> rule.on_batch_end(7, {"loss": float("nan")}); state.stop_reason
        'loss became nan at batch 8'
    """

    def on_batch_end(self, batch: int, logs: Logs | None = None) -> None:
        loss = batch_loss(logs)
        if isinstance(loss, DeviceScalar) and not loss.read:
            return  # on a device: judged from the epoch's loss (see the class docstring)
        if loss is not None and not math.isfinite(float(loss)):
            self.stop(f"loss became {float(loss)} at batch {batch + 1}", "diverged")

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        loss = (logs or {}).get("loss")
        if loss is not None and not self.trainer.stop_training and not math.isfinite(float(loss)):
            self.stop(f"loss became {float(loss)} in epoch {epoch + 1}", "diverged")


# At most this many batch losses of an epoch are kept to confirm a rise from the first batch's loss.
MAX_BATCHES_KEPT = 10_000

#: A rise from the first batch's loss is confirmed when the loss climbed past the limit, at least doubling
#: from each batch to the next this many times in a row (see :class:`DivergenceGuard`).
CLIMB_STEPS = 3


class DivergenceGuard(Callback):
    """Stop (or raise) when training diverges: the loss turns NaN/inf, or grows ``factor`` times above its best
    (the first batch's loss, taken before any update, counts as a best) and back above where it started.

    A rise above the best counts only once the loss is also above its value before training (the first
    batch's loss, or the first epoch's when no batch losses are seen): a loss that fell from 1 to 0.002
    and bounced to 0.25 is mini-batch noise near a minimum, not a divergence, though it rose 100-fold.

    One batch's loss is a sample, an epoch's loss an average: a first batch that happens to be easy
    (all zeros of a target that is 99% zeros) has a loss hundreds of times below the epoch's without
    anything going wrong. So a rise measured from the first batch counts only when the epoch's batches
    confirm it: at least 9 in 10 of them (the first batch left out) are above the limit too, or the loss
    climbed past the limit, at least doubling from each batch to the next for :data:`CLIMB_STEPS` batches
    in a row, and the epoch's median batch is above it too. (A step too large multiplies the loss at every
    update, so a blow-up inside one epoch has its early batches below the limit. A target that is mostly
    zeros has runs of ever harder batches too, but its typical batch stays near the first one.) When neither
    holds, the first batch was not representative, and the epoch's loss becomes the reference (named by
    its epoch in the message, not as the loss before training). (On a device the batch losses are not
    read back, so there a rise from the first batch is not confirmed.)

    The message names what happened and what to try, e.g. ``loss rose from 0.41 to 3e+08 in 3 epochs
    at lr=1; try lr=0.1 or lower``. The suggested rate is an estimate from the measured growth: if the
    loss grew ``r``-fold per update, plain gradient descent on a quadratic overshoots its steepest
    direction by ``sqrt(r)``, so the step there is ``lr * curvature = 1 + sqrt(r)``; the suggestion
    ``lr / (1 + sqrt(r))`` is the rate that stops overshooting it (half the largest stable one), and
    never above lr/10. Non-finite batch losses stop training at once; growth is judged per epoch.
    When training on a device the batch losses are not read back one by one (each read would wait for
    the device): the first batch's loss is read once, at the end of the first epoch, and a NaN/inf loss
    is caught from the epoch's loss, stopping training after that epoch instead of at the batch.

    Args:
        monitor: the quantity to watch ('loss').
        factor: how many times above its best the value may grow before it counts as divergence.
        raise_error: raise :class:`~downslope.errors.DivergenceError` instead of stopping quietly.
        initial_factor: how many times above the loss before training (the first batch's) the value
            may grow: a loss that climbs that far above where it started diverged, however slowly.

    Example:
        >>> guard = DivergenceGuard(); state = TrainingState(); guard.set_trainer(state); guard.on_train_begin()
        >>> for epoch, loss in enumerate([0.41, 2.0, 30.0, 3e8]):
        ...     guard.on_epoch_end(epoch, {"loss": loss, "lr": 1.0})
        >>> state.stop_reason
        'diverged: loss rose from 0.41 to 3e+08 in 3 epochs at lr=1; the step size is probably too large, try lr=0.03 or lower (an estimate from the loss growing about 901-fold per epoch)'
    """

    def __init__(
        self, monitor: str = "loss", factor: float = 100.0, raise_error: bool = False, initial_factor: float = math.inf
    ) -> None:
        for name, value in (("factor", factor), ("initial_factor", initial_factor)):
            if not isinstance(value, (int, float)) or not value > 1:
                raise ConfigError(f"DivergenceGuard: {name} must be a number > 1, got {value!r}")
        self.monitor = monitor
        self.factor = float(factor)
        self.initial_factor = float(initial_factor)
        self.raise_error = raise_error
        self.on_train_begin()

    def on_train_begin(self, logs: Logs | None = None) -> None:
        self.best: float | None = None
        self.best_epoch = 0
        self.initial: float | None = None  # the loss before training (the first batch's)
        self.initial_epoch: int | None = None  # None, or the epoch whose loss replaced the first batch's
        #: the first batch's loss, taken before any update (never replaced: see ``initial``)
        self.before_training: float | None = None
        self.diverged_epoch: int | None = None
        self.start: float | None = None  # where the loss started: the first batch's, else the first epoch's
        # the growth clock: updates made (batches seen) when any batch is seen, else epochs
        self._steps = 0
        self._epochs = 0
        self._best_step = 0
        self._last_finite: tuple[float, int] | None = None  # the last finite batch loss and its step
        self._first: DeviceScalar | None = None  # on a device: the first batch's loss, read at the epoch's end
        # this epoch's batch losses after the reference batch (host values only: see the class docstring)
        self._batches: list[float] = []
        # the climb: the last finite batch loss, how many batches in a row each at least doubled the one
        # before it (across epochs), and this epoch's largest loss reached by a climb of CLIMB_STEPS
        self._previous: float | None = None
        self._doublings = 0
        self._climbed = -math.inf

    def on_epoch_begin(self, epoch: int, logs: Logs | None = None) -> None:
        self._batches = []
        self._climbed = -math.inf

    def _climb(self, value: float) -> None:
        """Counts the batches in a row whose loss at least doubled the one before (see the class docstring)."""
        if self._previous is not None and self._previous > 0 and value >= 2 * self._previous:
            self._doublings += 1
        else:
            self._doublings = 0
        self._previous = value
        if self._doublings >= CLIMB_STEPS:
            self._climbed = max(self._climbed, value)

    def _confirmed(self, limit: float) -> bool:
        """Whether this epoch's batch losses confirm a rise above ``limit`` measured from one batch's
        loss: at least 9 in 10 of them are above it, or the loss climbed past it and the median batch is above
        it (no batch losses seen: nothing to contradict it)."""
        values = np.array([float(v) for v in self._batches], dtype=np.float64)
        values = values[np.isfinite(values)] if len(values) else values
        if not len(values):
            return True
        if self._climbed > limit and np.median(values) > limit:
            return True
        return bool(np.quantile(values, 0.1) > limit)

    def _clock(self) -> tuple[int, str]:
        """The step the latest loss was computed at (updates before it) and the unit of that count: a
        batch's loss is computed after the updates of the batches before it; an epoch's loss, in a run
        that diverges, is dominated by its last batch's. Without batch losses, epochs are counted."""
        if self._steps:
            return self._steps - 1, "update"
        return self._epochs - 1, "epoch"

    def _lr_text(
        self,
        logs: Logs | None,
        growth: tuple[float, float, int] | None = None,
        unit: str = "update",
        cause: str = "the step size is probably too large",
    ) -> tuple[str, str]:
        """' at lr=...' and the likely ``cause`` with the hint; ``growth`` (from, to, steps) measures how fast
        the loss rose. At a learning rate of 0 (a warm-up from 0) no update moved the weights, so the cause is
        not the step size, and the hint says where to look instead."""
        lr = (logs or {}).get("lr")
        if lr is None and hasattr(self, "trainer"):
            lr = self.trainer.current_lr()
        if lr is None:
            return "", f"{cause}, try a smaller learning rate"
        lr = float(lr)
        if not lr > 0:
            return f" at lr={lr:g}", (
                "the learning rate is not positive, so no update caused it: look for NaN or inf in the inputs "
                "or targets, or a loss that is not finite (a log of 0, a division by 0)"
            )
        rate = _growth_per_step(growth)
        if rate is None or lr / (1 + math.sqrt(rate)) >= lr / 10:
            return f" at lr={lr:g}", f"{cause}, try lr={_round_down(lr / 10):g} or lower"
        # lr / 10 is not enough when the loss multiplies fast (see the class docstring): estimate more
        return f" at lr={lr:g}", (
            f"{cause}, try lr={_round_down(lr / (1 + math.sqrt(rate))):g} or lower "
            f"(an estimate from the loss growing about {_fold(rate)}-fold per {unit})"
        )

    def _diverge(self, epoch: int, message: str) -> None:
        self.diverged_epoch = epoch
        if self.raise_error:
            raise DivergenceError(message)
        self.stop(message, "diverged")

    def on_batch_end(self, batch: int, logs: Logs | None = None) -> None:
        if self.monitor != "loss":
            return
        loss = batch_loss(logs)
        self._steps += 1
        if isinstance(loss, DeviceScalar) and not loss.read:
            if self.best is None and self._first is None:
                self._first = loss
            # the other batches' losses are not kept: confirming a rise would read each from the device
            return  # on a device: judged at the epoch's end (see the class docstring)
        if loss is None:
            return
        value = float(loss)
        finite = math.isfinite(value)
        if self.best is None and finite:
            # The first batch's loss is the loss before any update: a run whose epoch loss climbs
            # `factor` times above it diverged, even if it later comes down again.
            self.best, self.best_epoch, self._best_step = value, -1, 0
            self.initial = self.start = self.before_training = value
        elif len(self._batches) < MAX_BATCHES_KEPT:
            self._batches.append(value)
        if finite:
            self._last_finite = (value, self._steps - 1)
            self._climb(value)
        else:
            at, hint = self._lr_text(logs, self._growth_to_last_finite(), cause=_EXTREME)
            epoch = self.trainer.epoch if hasattr(self, "trainer") else 0
            self._diverge(epoch, f"diverged: loss became {value} at batch {batch + 1} of epoch {epoch + 1}{at}; {hint}")

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        if self._first is not None:  # the first batch's loss on a device: one read, at the first epoch's end
            first, self._first = float(self._first), None
            if self.best is None and math.isfinite(first):
                self.best, self.best_epoch, self._best_step = first, -1, 0
                self.initial = self.start = self.before_training = first
        self._epochs += 1
        value = (logs or {}).get(self.monitor)
        if value is None:
            return
        value = float(value)
        step, unit = self._clock()
        if not math.isfinite(value):
            at, hint = self._lr_text(logs, self._growth_to_last_finite(), unit, cause=_EXTREME)
            self._diverge(epoch, f"diverged: {self.monitor} became {value} at epoch {epoch + 1}{at}; {hint}")
            return
        if self.start is None:
            self.start = value
        batch_reference = self.monitor == "loss" and self.best_epoch == -1
        if self.initial is not None and value > self.initial_factor * max(self.initial, 1e-12):
            if not batch_reference or self._confirmed(self.initial_factor * max(self.initial, 1e-12)):
                at, hint = self._lr_text(logs, (self.initial, value, step), unit)
                when = "before training" if self.initial_epoch is None else f"in epoch {self.initial_epoch + 1}"
                self._diverge(
                    epoch,
                    f"diverged: {self.monitor} rose from {fmt(self.initial)} {when} to {value:.3g} by "
                    f"epoch {epoch + 1}{at}; {hint}",
                )
                return
            self._unrepresentative_first_batch(epoch, value)
            return
        if self.best is None or value < self.best:
            self.best, self.best_epoch, self._best_step = value, epoch, step
            return
        # a rise that stays below where the loss started is noise near a minimum, not a divergence
        if value > self.factor * max(self.best, 1e-12) and value > self.start:
            if batch_reference and not self._confirmed(self.factor * max(self.best, 1e-12)):
                self._unrepresentative_first_batch(epoch, value)
                return
            at, hint = self._lr_text(logs, (self.best, value, step - self._best_step), unit)
            span = epoch - self.best_epoch
            self._diverge(
                epoch,
                f"diverged: {self.monitor} rose from {fmt(self.best)} to {value:.3g} in {span} epoch"
                f"{'s' if span != 1 else ''}{at}; {hint}",
            )

    def _unrepresentative_first_batch(self, epoch: int, value: float) -> None:
        """Most of the epoch's batches stayed near the first batch's loss: that batch was an easy sample,
        not a loss the training rose from; the epoch's loss is the reference from now on."""
        self.best, self.best_epoch, self._best_step = value, epoch, self._clock()[0]
        self.initial = self.start = value
        self.initial_epoch = epoch

    def epoch_batch_losses(self) -> list[float]:
        """The latest epoch's batch losses read on the host (the first batch of training left out; empty on
        a device, where they are not read back)."""
        return list(self._batches)

    def _growth_to_last_finite(self) -> tuple[float, float, int] | None:
        """(from, to, steps): the loss before training to the last finite batch loss (a loss that turned
        NaN/inf grew at least this fast: the suggestion from it is an upper bound)."""
        if self.initial is None or self._last_finite is None:
            return None
        return self.initial, self._last_finite[0], self._last_finite[1]

    def state_dict(self) -> dict[str, Any]:
        return {
            "best": self.best,
            "best_epoch": self.best_epoch,
            "initial": self.initial,
            "initial_epoch": self.initial_epoch,
            "before_training": self.before_training,
            "start": self.start,
            "clock": [self._steps, self._epochs, self._best_step],
            "climb": [self._previous, self._doublings],
        }

    def state_identity(self) -> dict[str, Any]:
        return {"monitor": self.monitor}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best = None if state["best"] is None else float(state["best"])
        self.best_epoch = int(state["best_epoch"])
        initial = state.get("initial")  # absent from checkpoints written before it was kept
        self.initial = None if initial is None else float(initial)
        start = state.get("start", initial)  # absent from checkpoints written before it was kept
        self.start = None if start is None else float(start)
        self._steps, self._epochs, self._best_step = (int(v) for v in state.get("clock", (0, 0, 0)))
        # absent from checkpoints written before they were kept: a reference from before training, no climb
        initial_epoch = state.get("initial_epoch")
        self.initial_epoch = None if initial_epoch is None else int(initial_epoch)
        before = state.get("before_training", initial if initial_epoch is None else None)
        self.before_training = None if before is None else float(before)
        previous, doublings = state.get("climb", (None, 0))
        self._previous = None if previous is None else float(previous)
        self._doublings = int(doublings)


# the likely cause of a loss that became NaN or infinite (beside too large a step)
_EXTREME = "the step size is probably too large (or the data holds extreme values)"


def _growth_per_step(growth: tuple[float, float, int] | None) -> float | None:
    """The factor the loss grew by per step, from (from, to, steps); None when it cannot be measured."""
    if growth is None:
        return None
    start, end, steps = growth
    if steps < 1 or not (math.isfinite(start) and math.isfinite(end)) or start <= 0 or end <= start:
        return None
    return float((end / start) ** (1.0 / steps))


def _round_down(value: float) -> float:
    """``value`` to one significant digit, rounded down (a suggested rate must not exceed the estimate)."""
    scale = 10.0 ** math.floor(math.log10(value))
    return math.floor(value / scale * (1 + 1e-9)) * scale


def _fold(rate: float) -> str:
    """A growth factor as a user reads it: 1.8, 35, 1033, 2.5e+06."""
    return f"{rate:.2g}" if rate < 10 else f"{rate:.0f}" if rate < 1e5 else f"{rate:.2g}"
