"""Loggers: each epoch's logs as CSV rows (:class:`CSVLogger`), the learning rates (:class:`LearningRateMonitor`)."""

from __future__ import annotations

import csv
import io
import os
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import ConfigError
from .base import Callback, Logs, TrainingState  # noqa: F401  (TrainingState: the examples use it)
from .write_errors import check_writable, write_failure

#: The columns fit logs beyond Keras' (the learning rate, the epoch's seconds, the seconds since training began):
#: CSVLogger writes them after Keras' columns.
EXTRA_COLUMNS = ("lr", "learning_rate", "epoch_time", "time")


class CSVLogger(Callback):
    """Write each epoch's logs as a CSV row, as Keras' CSVLogger: ``epoch`` (Keras' 0-based epoch index: 0, 1,
    ...), then the logged keys sorted by name (``loss``, the metrics, ``val_*``); then, after Keras' columns,
    the extra columns fit logs (``lr``, ``epoch_time``, ``time``: see :data:`EXTRA_COLUMNS`). A file written
    by Keras' CSVLogger and one written here read alike (``pandas.read_csv``) but for those extra columns.

    Each epoch appends its row to the file and flushes it, so a row costs the same at epoch 5000 as at
    epoch 1; the file is synced to disk when training ends. ``append=True`` continues an existing file
    (a header is written only to an empty one); otherwise the file is started anew at the first epoch's
    end. ``separator`` is the field delimiter.

    A column that appears late (e.g. from a callback) still gets its header: the file is then
    rewritten once, atomically, with the wider header. A crash leaves every finished epoch's row
    (at worst, after a power loss, the last row cut short); a run resumed from a checkpoint
    (``fit(..., resume_from=...)``) first cuts the file back to the rows the checkpoint knew, so
    the rows match the resumed history, none twice.

    Example:
        >>> import os, tempfile
        >>> path = os.path.join(tempfile.mkdtemp(), "log.csv")
        >>> logger = CSVLogger(path); logger.on_train_begin()
        >>> logger.on_epoch_end(0, {"loss": 0.5}); logger.on_epoch_end(1, {"loss": 0.25})
        >>> print(open(path).read().strip())
        epoch,loss
        0,0.5
        1,0.25
    """

    #: Seconds between syncs of the file to disk while training (each row is flushed at once).
    SYNC_EVERY = 30.0

    def __init__(self, filename: str | Path, separator: str = ",", append: bool = False) -> None:
        self.filename = Path(filename)
        self.separator = separator
        self.append = append
        self.rows: list[dict[str, Any]] = []
        self._columns: list[str] = []
        self._size = 0  # bytes of the file that hold the header and self.rows
        self._rewrite = True  # the file does not hold self.rows yet: write it whole at the next row
        self._synced = time.monotonic()

    def on_train_begin(self, logs: Logs | None = None) -> None:
        # as Keras opens its file here: an unwritable place is said before any epoch is trained (a file
        # appended to needs only itself writable)
        if not (self.append and self.filename.is_file() and os.access(self.filename, os.W_OK)):
            check_writable(self.filename, "CSVLogger")
        self.rows, self._columns, self._size, self._rewrite = [], [], 0, True
        self._synced = time.monotonic()
        if self.append and self.filename.exists():
            self.rows, self._columns = self._read()
            self._size = self.filename.stat().st_size
            self._rewrite = False

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        values = {
            k: v
            for k, v in (logs or {}).items()
            if k != "epoch" and (np.isscalar(v) or isinstance(v, (int, float, str)))
        }
        # Keras' columns: the 0-based epoch, then its logged keys sorted; then fit's extra columns
        row: dict[str, Any] = {"epoch": epoch}
        row.update((k, values[k]) for k in sorted(values) if k not in EXTRA_COLUMNS)
        row.update((k, values[k]) for k in values if k in EXTRA_COLUMNS)
        self.rows.append(row)
        added = [k for k in row if k not in self._columns]
        if added or self._rewrite:
            self._columns.extend(added)
            self._write_all()
        else:
            self._append(row)

    def on_train_end(self, logs: Logs | None = None) -> None:
        if self.rows and self.filename.exists():
            self._sync()

    # ------------------------------------------------------------------ the file
    def _text(self, rows: list[dict[str, Any]], header: bool) -> bytes:
        buffer = io.StringIO()
        writer = csv.DictWriter(
            buffer, fieldnames=self._columns, delimiter=self.separator, lineterminator="\n", restval=""
        )
        if header:
            writer.writeheader()
        writer.writerows(rows)
        return buffer.getvalue().encode()

    def _write_all(self) -> None:
        from ...serialization import atomic_write_bytes

        data = self._text(self.rows, header=True)
        try:
            atomic_write_bytes(self.filename, data)
        except OSError as exc:  # name the log, not the temporary file beside it
            raise type(exc)(exc.errno, f"CSVLogger: {write_failure(exc, self.filename)}") from None
        self._size, self._rewrite = len(data), False
        self._synced = time.monotonic()

    def _append(self, row: dict[str, Any]) -> None:
        data = self._text([row], header=False)
        try:
            with open(self.filename, "ab") as handle:
                handle.write(data)
                handle.flush()
                self._size = handle.tell()
                if time.monotonic() - self._synced > self.SYNC_EVERY:
                    os.fsync(handle.fileno())
                    self._synced = time.monotonic()
        except OSError as exc:
            raise type(exc)(exc.errno, f"CSVLogger: {write_failure(exc, self.filename)}") from None

    def _sync(self) -> None:
        with open(self.filename, "rb+") as handle:
            os.fsync(handle.fileno())
        self._synced = time.monotonic()

    def _read(self) -> tuple[list[dict[str, Any]], list[str]]:
        """The rows and columns the file holds now."""
        with open(self.filename, newline="") as handle:
            reader = csv.DictReader(handle, delimiter=self.separator)
            rows = [dict(r) for r in reader]
            return rows, list(reader.fieldnames or [])

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        """How much of the file the checkpoint knows: its rows, columns and size in bytes (the rows
        themselves stay in the file, so a checkpoint does not grow with them)."""
        return {"written": len(self.rows), "columns": list(self._columns), "bytes": self._size}

    def state_identity(self) -> dict[str, Any]:
        return {"filename": str(self.filename)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Cut the file back to what the checkpoint knew, and continue it from there."""
        if "rows" in state:  # checkpoints written before the rows stayed in the file alone
            self.rows = [dict(r) for r in state["rows"]]
            self._columns = []
            for r in self.rows:
                self._columns.extend(k for k in r if k not in self._columns)
            self._rewrite = True
            return
        size, written, columns = int(state["bytes"]), int(state["written"]), list(state["columns"])
        self.rows, self._columns, self._size, self._rewrite = [], columns, 0, True
        if written == 0:
            return  # the checkpoint came before any row: the file starts anew at the next one
        rows, on_disk = self._read() if self.filename.exists() else ([], [])
        if len(rows) < written:
            warnings.warn(
                f"CSVLogger: {self.filename} holds {len(rows)} rows, fewer than the {written} the checkpoint knew; "
                "it continues with the rows it has",
                RuntimeWarning,
                stacklevel=2,
            )
        self.rows = [{k: r.get(k, "") for k in columns} for r in rows[:written]]
        if on_disk == columns and len(rows) >= written and self.filename.stat().st_size >= size:
            # The file as the checkpoint saw it, perhaps with rows of later epochs (trained again now): cut them.
            with open(self.filename, "rb+") as handle:
                handle.truncate(size)
            self._size, self._rewrite = size, False
        else:  # rewritten since (a late column) or damaged: write back the rows the checkpoint knew
            self._write_all()


class LearningRateMonitor(Callback):
    """Record the learning rate of every parameter group, per epoch (default) or per step.

    Each record is the rate the epoch (or step) trained with: read before its first update, so before
    fit steps the scheduler at the epoch's end, as PyTorch's ``scheduler.get_last_lr()`` read at the
    top of an epoch. ``self.lrs`` keeps one list of group rates per epoch or step; :meth:`rates` gives
    one group's series as a flat list (``viz.plot_learning_rate(monitor.rates())``; per step, pass
    ``x_label="step"``). The epoch logs get ``lr_group<i>`` for the other groups, and ``lr`` (group 0)
    only where the loop has not logged it: fit logs the same number itself, and a monitor must not
    change what it watches.

    Example:
        >>> class Opt: param_groups = [{"lr": 0.1}, {"lr": 0.01}]
        >>> monitor = LearningRateMonitor(); monitor.set_trainer(TrainingState(optimizer=Opt()))
        >>> monitor.on_train_begin(); logs = {}; monitor.on_epoch_end(0, logs); logs
        {'lr': 0.1, 'lr_group1': 0.01}
        >>> monitor.rates(1)
        [0.01]
    """

    def __init__(self, logging_interval: str = "epoch") -> None:
        if logging_interval not in ("epoch", "step"):
            raise ConfigError(
                f"LearningRateMonitor: logging_interval must be 'epoch' or 'step', got {logging_interval!r}"
            )
        self.logging_interval = logging_interval
        self.lrs: list[list[float]] = []
        # the rates the epoch under way trained with (None outside an epoch, or before its first update)
        self._epoch_rates: list[float] | None = None
        self._epoch_started = False  # the first batch of the epoch under way has not begun yet

    def _rates(self) -> list[float]:
        groups = getattr(self.trainer.optimizer, "param_groups", None) or []
        return [float(g["lr"]) for g in groups]

    def rates(self, group: int = 0) -> list[float]:
        """The recorded rates of parameter group ``group``, one per epoch (or step), as a flat list."""
        if isinstance(group, bool) or not isinstance(group, (int, np.integer)):
            raise ConfigError(f"LearningRateMonitor.rates: group must be an integer, got {group!r}")
        present = [r for r in self.lrs if -len(r) <= group < len(r)]
        if self.lrs and not present:
            raise ConfigError(
                f"LearningRateMonitor.rates: group {group} is out of range; the optimizer has "
                f"{max(len(r) for r in self.lrs)} param group(s)"
            )
        return [r[group] for r in present]

    def on_train_begin(self, logs: Logs | None = None) -> None:
        self.lrs = []
        self._epoch_rates = None

    def on_epoch_begin(self, epoch: int, logs: Logs | None = None) -> None:
        self._epoch_rates = self._rates()
        self._epoch_started = True

    def on_batch_begin(self, batch: int, logs: Logs | None = None) -> None:
        rates = self._rates()
        if self._epoch_started:
            # a callback's on_epoch_begin may set the rate after this one read it (Keras'
            # LearningRateScheduler): the first update's rate is the one the epoch trained with
            self._epoch_rates = rates
            self._epoch_started = False
        if self.logging_interval == "step":
            self.lrs.append(rates)

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        # read at the epoch's start: fit steps an epoch scheduler before the callbacks' on_epoch_end, so
        # the rate now is the next epoch's
        rates = self._epoch_rates if self._epoch_rates is not None else self._rates()
        self._epoch_rates, self._epoch_started = None, False
        if self.logging_interval == "epoch":
            self.lrs.append(rates)
        if logs is not None and rates:
            logs.setdefault("lr", rates[0])
            for i, r in enumerate(rates[1:], start=1):
                logs[f"lr_group{i}"] = r

    def state_dict(self) -> dict[str, Any]:
        # One float64 table (steps x groups) rather than a list per step: a checkpoint per epoch
        # would otherwise re-encode every recorded rate, number by number, each time.
        if self.lrs and all(len(r) == len(self.lrs[0]) for r in self.lrs):
            return {"lrs": np.array(self.lrs, dtype=np.float64)}
        return {"lrs": self.lrs}  # groups added during the run: rows of different lengths

    def load_state_dict(self, state: dict[str, Any]) -> None:
        lrs = state["lrs"]
        self.lrs = [list(r) for r in (lrs.tolist() if isinstance(lrs, np.ndarray) else lrs)]
