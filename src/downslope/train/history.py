"""History: what happened in each epoch of a fit (losses, metrics, learning rate, time)."""

from __future__ import annotations

import array
import csv
import io
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ArgumentError, StateDictError
from .metrics import Metric, canonical_log_name, greater_is_better

#: Why a fit ended, as ``History.stop_kind``: it ran all its epochs, a callback's rule fired
#: (EarlyStopping, StopAtTarget/StopAtLoss, MaxTime), the loss diverged (DivergenceGuard,
#: TerminateOnNaN), a signal interrupted it, or a user callback called ``stop`` without a kind.
STOP_KINDS = ("max_epochs", "early_stopping", "target", "time_limit", "diverged", "interrupted", "callback")

#: Logged quantities (matched as whole names, any case, after a ``val_`` prefix is removed) that are better
#: when larger, for a quantity no Metric object describes. Every other name is taken as better when smaller:
#: a part of a name says nothing ('val_brier_score' is better low, though 'score' is in it).
HIGHER_IS_BETTER_NAMES = frozenset(
    {
        "accuracy", "acc", "binary_accuracy", "categorical_accuracy", "sparse_categorical_accuracy",
        "top_k_categorical_accuracy", "sparse_top_k_categorical_accuracy", "top_k_accuracy", "balanced_accuracy",
        "auc", "roc_auc", "roc_auc_score", "pr_auc", "average_precision", "f1", "f1_score", "f1_macro", "f1_micro",
        "f1_weighted", "fbeta", "fbeta_score", "precision", "recall", "sensitivity", "specificity", "r2",
        "r2_score", "explained_variance", "cosine_similarity", "iou", "mean_iou", "dice", "mcc",
        "matthews_corrcoef", "kappa", "cohen_kappa", "psnr", "ssim", "bleu", "rouge",
    }
)  # fmt: skip


def higher_is_better_name(monitor: str) -> bool:
    """Whether the logged quantity ``monitor`` is better when larger, by its name alone: one of
    :data:`HIGHER_IS_BETTER_NAMES`, or a name ending in ``accuracy``, ``_acc`` or ``_auc``, after a ``val_``
    prefix is removed; any other name (the loss, an error, a name this rule does not know) is better
    when smaller.

    Example:
        >>> higher_is_better_name("val_accuracy"), higher_is_better_name("val_brier_score")
        (True, False)
    """
    base = monitor.lower().removeprefix("val_")
    if base in HIGHER_IS_BETTER_NAMES:
        return True
    # a name that ends as an accuracy or an AUC is one (top_5_accuracy, balanced_acc, my_accuracy, val_pr_auc),
    # as Keras 2 read them; such a word elsewhere in a name says nothing ('auc_loss', 'accuracy_drop')
    return base.endswith(("accuracy", "_acc", "_auc"))


class History:
    """Per-epoch records of a training run: ``history["val_loss"]`` is a list with one value per epoch.

    ``history["epoch"]`` numbers count from 1, as the progress output and the CSV do (and so does
    :attr:`best_epoch`); ``history.epoch`` and :attr:`best_epoch_index` are Keras' 0-based indices, the
    base of ``EarlyStopping.best_epoch``. The learning rate is recorded as ``lr`` and under Keras 3's
    name ``learning_rate`` (the same numbers): the optimizer's rate as the epoch starts. Under a scheduler
    stepped every batch (or a callback scaling the rate) it changes within an epoch: :attr:`lr_steps` holds the rate of every update
    and :attr:`lr_step_epochs` where each update ends, in fractional epochs (what
    ``viz.plot_learning_rate`` draws when present). ``metrics`` (fit passes
    the Metric objects it computes) say which way each metric is better, for :meth:`best`. An epoch lacking a
    key that others have (say, a metric added late) holds None there. ``stop_reason`` says why
    training ended, in words ("reached the epoch limit (N)" when fit ran all its epochs; None before
    fit has finished); ``stop_kind`` says the same
    as one of :data:`STOP_KINDS`, for programs to test (``history.diverged`` reads it).

    The best epoch (:meth:`best`, :attr:`best_epoch`, and the one ``viz.plot_loss_curves`` marks) is
    judged by the quantity the run monitored: fit records in ``monitor`` (with ``monitor_source``) the
    monitor of the run's EarlyStopping with ``restore_best_weights`` (the epoch whose weights the model
    holds), else of a ModelCheckpoint with ``save_best_only`` (the epoch saved), else of an
    EarlyStopping; without one (or when that quantity was not logged), ``val_loss``, else ``loss``.
    Without such a callback the plot marks the first epoch within ``viz.curves.BEST_EPOCH_RTOL``
    (relative) of the best value, where float32 rounding after convergence would move the strict best.

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
        #: The quantity the run's best epoch is judged by (see :meth:`follow_monitor`); None: val_loss or loss.
        self.monitor: str | None = None
        #: What set ``monitor``: the callback's class name ('EarlyStopping'), None when nothing did.
        self.monitor_source: str | None = None
        self._monitor_rule: tuple[str, float, int] = ("auto", 0.0, 0)  # mode, min_delta, first epoch index
        #: The rate of each update fit made, in order (float64; one float per update, cheaper than a list).
        self.lr_steps: array.array[float] = array.array("d")
        #: Where each update of :attr:`lr_steps` ends, in epochs: ``epoch - 1 + (batch + 1) / steps`` for the
        #: 0-based ``batch`` of the epoch numbered from 1, so epoch ``k``'s updates fill ``(k - 1, k]``.
        self.lr_step_epochs: array.array[float] = array.array("d")

    def record_step(self, epoch: int, batch: int, steps: int, lr: float) -> None:
        """Record the rate ``lr`` of the update on the 0-based ``batch`` of the 0-based ``epoch`` of
        ``steps`` updates (fit calls it after each update).

        Example:
            >>> h = History(); h.record_step(0, 0, 2, 0.1); h.record_step(0, 1, 2, 0.2)
            >>> list(h.lr_steps), list(h.lr_step_epochs)
            ([0.1, 0.2], [0.5, 1.0])
        """
        self.lr_steps.append(float(lr))
        self.lr_step_epochs.append(epoch + (batch + 1) / max(int(steps), batch + 1))

    def follow_monitor(self, callbacks: Iterable[Any]) -> None:
        """Judge the best epoch as the run's callbacks do: by the monitor (and mode, ``min_delta``,
        ``start_from_epoch``) of the first EarlyStopping with ``restore_best_weights`` (its best epoch's
        weights are the ones the model ends with), else of the first ModelCheckpoint with
        ``save_best_only``, else of the first EarlyStopping. Without any, nothing changes.

        Example:
            >>> from downslope.train import EarlyStopping
            >>> h = History(); h.follow_monitor([EarlyStopping(monitor="val_accuracy", restore_best_weights=True)])
            >>> h.append(0, {"val_loss": 0.5, "val_accuracy": 0.9}); h.append(1, {"val_loss": 0.4, "val_accuracy": 0.8})
            >>> h.monitor, h.best_epoch
            ('val_accuracy', 1)
        """
        from .callbacks.checkpoint import ModelCheckpoint  # (the callbacks import this module)
        from .callbacks.stopping import EarlyStopping

        callbacks = list(callbacks)
        ranked = (
            [cb for cb in callbacks if isinstance(cb, EarlyStopping) and cb.restore_best_weights]
            + [cb for cb in callbacks if isinstance(cb, ModelCheckpoint) and cb.save_best_only]
            + [cb for cb in callbacks if isinstance(cb, EarlyStopping)]
        )
        for cb in ranked:
            monitor = getattr(cb, "monitor", None)
            if isinstance(monitor, str) and monitor:
                mode = getattr(cb, "mode_requested", getattr(cb, "mode", "auto"))
                self.monitor, self.monitor_source = monitor, type(cb).__name__
                self._monitor_rule = (
                    mode if mode in ("min", "max") else "auto",
                    abs(float(getattr(cb, "min_delta", 0.0) or 0.0)),
                    int(getattr(cb, "start_from_epoch", 0) or 0),
                )
                return

    def default_monitor(self) -> str:
        """The quantity :meth:`best` judges by when given none: :attr:`monitor` when the run set one and
        it was logged (its ``val_`` form falls back to the training one without validation, as the
        callbacks' monitors do), else ``val_loss`` when recorded, else ``loss``."""
        if self.monitor is not None:
            key = canonical_log_name(self.monitor, self.history)
            if key in self.history:
                return key
            plain = self.monitor.removeprefix("val_")
            if self.monitor.startswith("val_") and canonical_log_name(plain, self.history) in self.history:
                return canonical_log_name(plain, self.history)
        return "val_loss" if "val_loss" in self.history else "loss"

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
        """``(epoch number, value)`` of the best epoch by ``monitor`` (default :meth:`default_monitor`:
        the run's EarlyStopping/ModelCheckpoint monitor, else 'val_loss' if recorded, else 'loss').

        ``mode='auto'`` maximizes a metric whose Metric says ``greater_is_better``, and a name in
        :data:`HIGHER_IS_BETTER_NAMES`; anything else is minimized. For the run's own monitor, 'auto'
        follows the callback (its mode, ``min_delta`` and ``start_from_epoch``), so the epoch found is
        the one it kept.
        """
        monitor, maximize, min_delta, start = self._rule(monitor, mode)
        values = self.history.get(monitor, [])
        best_i: int | None = None
        for i, v in enumerate(values):
            if v is None or not math.isfinite(v) or self.epochs[i] - 1 < start:
                continue
            if best_i is None or (v - min_delta > values[best_i] if maximize else v + min_delta < values[best_i]):
                best_i = i
        if best_i is None:
            return None, None
        return self.epochs[best_i], values[best_i]

    def maximizes(self, monitor: str | None = None, mode: str = "auto") -> bool:
        """Whether :meth:`best` (with the same arguments) looks for the largest value."""
        return self._rule(monitor, mode)[1]

    def _rule(self, monitor: str | None, mode: str) -> tuple[str, bool, float, int]:
        """The logged key, whether larger is better, the ``min_delta`` and the first 0-based epoch that
        :meth:`best` judges by."""
        if mode not in ("auto", "min", "max"):
            raise ArgumentError(f"History.best: mode must be 'auto', 'min' or 'max', got {mode!r}")
        follows = False  # judged as the run's callback judged it
        min_delta, start = 0.0, 0
        if monitor is None:
            monitor = self.default_monitor()
            follows = self.monitor is not None and _same_name(monitor, self.monitor)
            if follows and mode == "auto":
                mode, min_delta, start = self._monitor_rule
        monitor = canonical_log_name(monitor, self.history)
        if mode == "auto":
            # the callback resolved its own 'auto' with metrics.greater_is_better: the same answer here
            maximize = greater_is_better(monitor, self.metrics) if follows else self._greater_is_better(monitor)
        else:
            maximize = mode == "max"
        return monitor, maximize, min_delta, start

    def _greater_is_better(self, monitor: str) -> bool:
        base = monitor.removeprefix("val_")
        if base in self.metrics:
            return self.metrics[base].greater_is_better
        return higher_is_better_name(monitor)

    @property
    def best_epoch(self) -> int | None:
        """The number (from 1, as ``history["epoch"]`` and the progress output count) of the best epoch by
        :meth:`default_monitor` (the run's EarlyStopping/ModelCheckpoint monitor, else the lowest val_loss,
        else loss). Keras-style 0-based indices, as
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
        if self.lr_steps:  # (left out when empty: older readers see the record they knew)
            state["lr_steps"] = np.array(self.lr_steps, dtype=np.float64)
            state["lr_step_epochs"] = np.array(self.lr_step_epochs, dtype=np.float64)
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
        rates, ends = state.get("lr_steps"), state.get("lr_step_epochs")
        if rates is None or ends is None or len(rates) != len(ends):
            rates = ends = ()  # a checkpoint from before the per-update record (or a damaged one): none
        self.lr_steps = array.array("d", np.asarray(rates, dtype=np.float64).tolist())
        self.lr_step_epochs = array.array("d", np.asarray(ends, dtype=np.float64).tolist())

    def __repr__(self) -> str:
        last = {k: v[-1] for k, v in self.history.items() if v}
        shown = ", ".join(f"{k}={v:.4g}" for k, v in last.items() if v is not None)
        return f"History({len(self)} epochs; last: {shown})"


def _same_name(key: str, monitor: str) -> bool:
    """Whether the logged ``key`` is what ``monitor`` reads (itself, or its training form without validation)."""
    return key in (monitor, monitor.removeprefix("val_")) or canonical_log_name(monitor) == canonical_log_name(key)
