"""ReduceLROnPlateau: lower the rate when a monitored metric stops improving."""

from __future__ import annotations

import math
import warnings
from typing import Any

from ...errors import ArgumentError, ArgumentTypeError, StateError
from ..optimizer import Optimizer
from .base import LRScheduler, _check_optimizer, _group_lrs, _per_group, _set_lr


class ReduceLROnPlateau(LRScheduler):
    """Multiply the lr by ``factor`` when a metric has stopped improving for ``patience`` epochs.

    ``step(metric)`` once per epoch. An epoch improves on ``best`` when (min mode) the metric is
    below ``best - threshold * |best|`` (``threshold_mode='rel'``) or ``best - threshold``
    (``'abs'``); max mode mirrors this. After a reduction, ``cooldown`` epochs pass before bad epochs
    count again. The lr never goes below ``min_lr``, and changes smaller than ``eps`` are skipped.

    One deliberate difference from PyTorch: the relative threshold uses ``|best|``. PyTorch tests
    ``a < best * (1 - threshold)``, which for a negative metric (a log-likelihood, an ELBO, a negative
    score) counts a *worse* value as an improvement: with ``threshold=0.1`` and ``best=-1`` PyTorch
    takes ``-0.95`` as better (it is below ``-0.9``), so a run whose negative metric slowly worsens
    never has its rate lowered. Here the metric must go below ``-1 - 0.1 * 1 = -1.1``. For positive
    metrics, and with ``threshold_mode='abs'``, the two agree; see the second example.

    A NaN metric compares false, so it counts as an epoch without improvement, as in PyTorch; the
    first one gives a RuntimeWarning (training has probably diverged).

    This is PyTorch's scheduler, not Keras' callback of the same name: Keras lowers the rate after
    ``patience`` epochs without an absolute improvement of ``min_delta``, this after ``patience + 1``
    epochs without a (by default relative) improvement of ``threshold``. Keras'
    ``ReduceLROnPlateau(patience=p, min_delta=d)`` is ``ReduceLROnPlateau(opt, patience=p - 1,
    threshold_mode="abs", threshold=d)`` here.

    Example:
        >>> import downslope as ds
        >>> from downslope import optim
        >>> opt = optim.SGD([ds.zeros(1, requires_grad=True)], lr=1.0)
        >>> sched = optim.lr_scheduler.ReduceLROnPlateau(opt, patience=1)
        >>> for loss in [1.0, 0.9, 0.95, 0.95]:
        ...     sched.step(loss)
        >>> sched.get_last_lr()
        [0.1]

        A negative metric that gets worse (PyTorch would keep lr = 1.0 and take best = -0.95):

        >>> opt = optim.SGD([ds.zeros(1, requires_grad=True)], lr=1.0)
        >>> sched = optim.lr_scheduler.ReduceLROnPlateau(opt, threshold=0.1, patience=1)
        >>> for loss in [-1.0, -0.95, -0.95]:
        ...     sched.step(loss)
        >>> sched.get_last_lr(), sched.best
        ([0.1], -1.0)
    """

    needs_metric = True
    # PyTorch's plateau state has no step count; whether the NaN warning was given is not state either
    _excluded_state = ("optimizer", "_step_count", "_warned_nan")

    def __init__(
        self,
        optimizer: Optimizer,
        mode: str = "min",
        factor: float = 0.1,
        patience: int = 10,
        threshold: float = 1e-4,
        threshold_mode: str = "rel",
        cooldown: int = 0,
        min_lr: float | list[float] = 0,
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
        # one min_lr for every group (also for groups added later), or None for per-group values (PyTorch's key)
        self.default_min_lr = None if isinstance(min_lr, (list, tuple)) else min_lr
        self.patience = patience
        self.cooldown = cooldown
        self.eps = eps
        self.mode = mode
        self.threshold = threshold
        self.threshold_mode = threshold_mode
        self.mode_worse = math.inf if mode == "min" else -math.inf  # PyTorch's state-dict key
        self.last_epoch = 0
        self._step_count = 0
        self._last_lr = _group_lrs(optimizer)
        self._warned_nan = False
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

    def step(self, metrics: Any = None) -> None:
        """Record this epoch's metric (a number or 0-d tensor) and reduce the lr on a plateau."""
        if metrics is None:
            raise ArgumentTypeError("ReduceLROnPlateau.step: pass the monitored metric, e.g. sched.step(val_loss)")
        current = float(metrics)
        if math.isnan(current) and not getattr(self, "_warned_nan", False):
            # PyTorch goes on (NaN compares false, so the epoch counts as bad): a ported loop that
            # sometimes sees a NaN validation loss must not stop here, but the user should hear of it
            self._warned_nan = True
            warnings.warn(
                f"ReduceLROnPlateau.step: the metric is NaN (epoch {self.last_epoch + 1}); it counts as no "
                f"improvement on best={self.best}, as in PyTorch, and training has probably diverged "
                "(warned once per scheduler)",
                RuntimeWarning,
                stacklevel=2,
            )
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

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` (PyTorch's too: ``mode_worse`` follows ``mode``, as there)."""
        super().load_state_dict(state_dict)
        self.mode_worse = math.inf if self.mode == "min" else -math.inf

    def _reduce_lr(self) -> None:
        if len(self.min_lrs) != len(self.optimizer.param_groups) and self.default_min_lr is not None:
            self.min_lrs = [self.default_min_lr] * len(self.optimizer.param_groups)  # a group added since
        if len(self.min_lrs) != len(self.optimizer.param_groups):
            raise StateError(
                f"ReduceLROnPlateau: the optimizer now has {len(self.optimizer.param_groups)} param groups but min_lr "
                f"has {len(self.min_lrs)} values; set scheduler.min_lrs to one value per group"
            )
        for i, group in enumerate(self.optimizer.param_groups):
            old_lr = float(group["lr"])
            new_lr = max(old_lr * self.factor, self.min_lrs[i])
            if old_lr - new_lr > self.eps:
                _set_lr(group, new_lr)
