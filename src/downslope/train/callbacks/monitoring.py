"""What monitoring callbacks share: which way a monitored quantity improves (``mode``), and
reading it from the logs with a fallback from ``val_x`` to ``x`` when there is no validation data."""

from __future__ import annotations

import warnings

from ...errors import ConfigError
from ..metrics import canonical_log_name, greater_is_better
from .base import Callback, Logs


def resolve_mode(mode: str, monitor: str, where: str, callback: Callback | None = None) -> str:
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
        base = monitor[4:] if monitor.startswith("val_") else monitor
        if metrics is not None and base in metrics and not getattr(metrics[base], "direction_known", True):
            raise ConfigError(
                f"{where}: cannot tell whether {monitor!r} (the function {base!r}) should be maximized or minimized; "
                f"pass mode='max' or mode='min', or metrics=[ds.train.Metric({base}, greater_is_better=True)]"
            )
        return "max" if greater_is_better(monitor, metrics) else "min"
    return mode


def fmt(x: float) -> str:
    return f"{x:.4g}"


class Monitor:
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
        alias = canonical_log_name(self.key, logs)  # 'val_acc' reads 'val_accuracy', 'mae' 'mean_absolute_error'
        if alias in logs:
            self.key = alias
            return float(logs[alias])
        if alias.startswith("val_") and getattr(logs, "validation_skipped", False):
            return None  # an epoch fit's validation_freq leaves unvalidated: skipped, as Keras skips it
        trained = canonical_log_name(alias[4:], logs) if alias.startswith("val_") else None
        if trained is not None and trained in logs:
            self.key = "val_" + trained
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
