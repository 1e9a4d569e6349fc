"""Loggers: each epoch's logs as CSV rows (:class:`CSVLogger`), the learning rates (:class:`LearningRateMonitor`)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import ConfigError
from .base import Callback, Logs, TrainingState  # noqa: F401  (TrainingState: the examples use it)


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

        from ...serialization import atomic_write_bytes

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
