"""History: what happened in each epoch of a fit (losses, metrics, learning rate, time)."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import StateDictError
from .metrics import Metric, canonical_log_name, greater_is_better

#: Why a fit ended, as ``History.stop_kind``: it ran all its epochs, a callback's rule fired
#: (EarlyStopping, StopAtTarget/StopAtLoss, MaxTime), the loss diverged (DivergenceGuard,
#: TerminateOnNaN), a signal interrupted it, or a user callback called ``stop`` without a kind.
STOP_KINDS = ("max_epochs", "early_stopping", "target", "time_limit", "diverged", "interrupted", "callback")


class History:
    """Per-epoch records of a training run: ``history["val_loss"]`` is a list with one value per epoch.

    ``history["epoch"]`` numbers count from 1, as the progress output and the CSV do (and so does
    :attr:`best_epoch`); ``history.epoch`` and :attr:`best_epoch_index` are Keras' 0-based indices, the
    base of ``EarlyStopping.best_epoch``. The learning rate is recorded as ``lr`` and under Keras 3's
    name ``learning_rate`` (the same numbers). ``metrics`` (fit passes
    the Metric objects it computes) say which way each metric is better, for :meth:`best`. An epoch lacking a
    key that others have (say, a metric added late) holds None there. ``stop_reason`` says why
    training ended, in words ("reached the epoch limit (N)" when fit ran all its epochs; None before
    fit has finished); ``stop_kind`` says the same
    as one of :data:`STOP_KINDS`, for programs to test (``history.diverged`` reads it).

    Example:
        >>> h = History()
        >>> h.append(0, {"loss": 1.0, "val_loss": 1.2}); h.append(1, {"loss": 0.5, "val_loss": 0.9})
        >>> h["val_loss"], h.best_epoch, len(h)
        ([1.2, 0.9], 2, 2)
    """

    def __init__(self, metrics: Iterable[Metric] = ()) -> None:
        self.metrics: dict[str, Metric] = {m.name: m for m in metrics}
        self.epochs: list[int] = []
        self.history: dict[str, list[Any]] = {}
        self.stop_reason: str | None = None
        self.stop_kind: str = "max_epochs"
        #: Keras' ``History.params``: ``{"verbose", "epochs", "steps"}`` of the fit that made it.
        self.params: dict[str, Any] = {}

    @property
    def epoch(self) -> list[int]:
        """Keras' ``History.epoch``: the 0-based index of each recorded epoch (``[0, 1, ...]``, from
        ``initial_epoch`` when fit started there); ``history["epoch"]`` holds the same counted from 1."""
        return [e - 1 for e in self.epochs]

    @property
    def diverged(self) -> bool:
        """Whether training was stopped because the loss diverged (NaN/inf, or far above its best)."""
        return self.stop_kind == "diverged"

    def append(self, epoch: int, logs: dict[str, Any]) -> None:
        """Record the logs of the 0-based ``epoch``."""
        n = len(self.epochs)
        self.epochs.append(int(epoch) + 1)
        for key, value in logs.items():
            if not isinstance(value, (int, float)) and not hasattr(value, "item"):
                continue
            column = self.history.setdefault(key, [None] * n)
            column.append(float(value))
        if "lr" in logs and "learning_rate" not in logs and "lr" in self.history:
            # Keras 3 records the rate as 'learning_rate': the same numbers, under both names, side by side
            if "learning_rate" not in self.history:
                self.history = {
                    k2: v2
                    for k, v in self.history.items()
                    for k2, v2 in ((k, v), ("learning_rate", [None] * n))
                    if k2 != "learning_rate" or k == "lr"
                }
            self.history["learning_rate"].append(self.history["lr"][-1])
        for column in self.history.values():
            if len(column) < n + 1:
                column.append(None)

    def __len__(self) -> int:
        return len(self.epochs)

    def __getitem__(self, key: str) -> list[Any]:
        if key == "epoch":
            return list(self.epochs)
        try:
            return self.history[canonical_log_name(key, self.history)]
        except KeyError:
            raise StateDictError(f"History has no {key!r}; recorded: {', '.join(self.keys())}") from None

    def __iter__(self) -> Any:
        """The recorded names, as iterating a dict gives its keys (``dict(history)`` works too)."""
        return iter(self.keys())

    def __contains__(self, key: object) -> bool:
        # any spelling of a logged metric ('val_accuracy' for a metric given as 'acc'), as History[key] reads it
        return (
            key == "epoch"
            or key in self.history
            or (isinstance(key, str) and canonical_log_name(key, self.history) in self.history)
        )

    def keys(self) -> list[str]:
        return ["epoch", *self.history]

    def as_dict(self) -> dict[str, list[Any]]:
        """``{"epoch": [1, 2, ...], "loss": [...], ...}`` (copies)."""
        return {"epoch": list(self.epochs), **{k: list(v) for k, v in self.history.items()}}

    def best(self, monitor: str | None = None, mode: str = "auto") -> tuple[int | None, float | None]:
        """``(epoch number, value)`` of the best epoch by ``monitor`` ('val_loss' if recorded, else 'loss').

        ``mode='auto'`` maximizes a metric whose Metric says ``greater_is_better`` (see
        :func:`~downslope.train.metrics.greater_is_better`) and minimizes anything else.
        """
        if monitor is None:
            monitor = "val_loss" if "val_loss" in self.history else "loss"
        monitor = canonical_log_name(monitor, self.history)
        values = self.history.get(monitor, [])
        maximize = greater_is_better(monitor, self.metrics) if mode == "auto" else mode == "max"
        best_i: int | None = None
        for i, v in enumerate(values):
            if v is None or not math.isfinite(v):
                continue
            if best_i is None or (v > values[best_i] if maximize else v < values[best_i]):
                best_i = i
        if best_i is None:
            return None, None
        return self.epochs[best_i], values[best_i]

    @property
    def best_epoch(self) -> int | None:
        """The number (from 1, as ``history["epoch"]`` and the progress output count) of the epoch with
        the lowest val_loss (or loss, without validation). Keras-style 0-based indices, as
        ``history.epoch`` and ``EarlyStopping.best_epoch`` hold them: :attr:`best_epoch_index`."""
        return self.best()[0]

    @property
    def best_epoch_index(self) -> int | None:
        """:attr:`best_epoch` as a 0-based index, the base of ``history.epoch`` (Keras' ``History.epoch``)
        and of ``EarlyStopping.best_epoch`` / ``ModelCheckpoint.best_epoch`` (Keras' base): the three agree.

        Example:
            >>> h = History()
            >>> h.append(0, {"loss": 1.0}); h.append(1, {"loss": 0.5})
            >>> h.best_epoch, h.best_epoch_index, h.epoch
            (2, 1, [0, 1])
        """
        number = self.best()[0]
        return None if number is None else number - 1

    def to_csv(self, path: str | Path | None = None) -> str:
        """The table as CSV text; also written (atomically) to ``path`` when given."""
        columns = self.keys()
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(columns)
        table = self.as_dict()
        for i in range(len(self.epochs)):
            writer.writerow(["" if table[c][i] is None else repr(table[c][i]) for c in columns])
        text = buffer.getvalue()
        if path is not None:
            from ..serialization import atomic_write_bytes

            atomic_write_bytes(path, text.encode())
        return text

    def state_dict(self) -> dict[str, Any]:
        """The record for a checkpoint: each column as one float64 array (a list of Python floats would be
        re-encoded element by element at every epoch's checkpoint, a cost growing with the epoch count).

        ``missing`` marks, per column that has any, the epochs holding None (NaN is a value a loss can
        take, so it cannot stand for "not recorded"). The arrays round-trip every float exactly.
        """
        columns: dict[str, np.ndarray] = {}
        missing: dict[str, np.ndarray] = {}
        for key, values in self.history.items():
            column = np.array(values, dtype=np.float64)  # None becomes NaN here; told apart below
            if np.isnan(column).any():
                absent = np.fromiter((v is None for v in values), dtype=bool, count=len(values))
                if absent.any():
                    missing[key] = absent
            columns[key] = column
        state: dict[str, Any] = {
            "epochs": np.array(self.epochs, dtype=np.int64),
            "history": columns,
            "stop_reason": self.stop_reason,
            "stop_kind": self.stop_kind,
        }
        if missing:
            state["missing"] = missing
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`'s record; checkpoints that stored plain lists load too."""
        missing = state.get("missing") or {}
        self.epochs = [int(e) for e in np.asarray(state["epochs"]).tolist()]
        history: dict[str, list[Any]] = {}
        for key, values in state["history"].items():
            if key == "epoch":  # older checkpoints repeated the epoch numbers as a column
                continue
            column = values.tolist() if isinstance(values, np.ndarray) else list(values)
            if key in missing:
                column = [None if absent else v for v, absent in zip(column, np.asarray(missing[key]).tolist())]
            history[key] = column
        self.history = history
        self.stop_reason = state.get("stop_reason")
        self.stop_kind = state.get("stop_kind") or "max_epochs"

    def __repr__(self) -> str:
        last = {k: v[-1] for k, v in self.history.items() if v}
        shown = ", ".join(f"{k}={v:.4g}" for k, v in last.items() if v is not None)
        return f"History({len(self)} epochs; last: {shown})"
