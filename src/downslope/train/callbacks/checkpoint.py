"""Saving checkpoints at epoch ends (or every so many batches): :class:`ModelCheckpoint`."""

from __future__ import annotations

import math
import string
from pathlib import Path
from typing import Any

from ...errors import CheckpointError, ConfigError
from ..metrics import canonical_log_name
from .base import Callback, Logs, TrainingState  # noqa: F401  (TrainingState: the examples use it)
from .monitoring import Monitor, resolve_mode
from .write_errors import write_failure


class SaveFrequency:
    """Keras 3's ``save_freq``: ``"epoch"``, or a save every N training batches counted across epochs
    (``due`` says when). ``since_save`` (batches trained since the last save) is what a checkpoint keeps."""

    def __init__(self, save_freq: str | int, owner: str) -> None:
        if save_freq != "epoch" and (isinstance(save_freq, bool) or not isinstance(save_freq, int) or save_freq < 1):
            raise ConfigError(
                f"{owner}: save_freq must be 'epoch' or a positive integer (a number of batches), got {save_freq!r}"
            )
        self.per_epoch = save_freq == "epoch"
        self.batches = 0 if self.per_epoch else int(save_freq)
        self.restart()

    def restart(self) -> None:
        self.since_save = 0
        self._last_batch = -1

    def due(self, batch: int) -> bool:
        """Whether the batch of index ``batch`` (within its epoch) completes the next N; counts it. A batch
        index not above the last one seen starts a new epoch (Keras 3's count)."""
        if self.per_epoch:
            return False
        self.since_save += batch + 1 if batch <= self._last_batch else batch - self._last_batch
        self._last_batch = batch
        if self.since_save < self.batches:
            return False
        self.since_save = 0
        return True


class ModelCheckpoint(Callback):
    """Save a checkpoint at epoch ends: the latest, or only when the monitored value improves.

    ``filepath`` may hold format fields filled from the epoch's logs, e.g.
    ``"ckpt/epoch{epoch:03d}-{val_loss:.3f}.ckpt"`` (``epoch`` counts from 1). Files are written
    atomically (a crash leaves the previous file intact) in the library's checkpoint format.
    A full checkpoint holds everything needed to resume (``fit(..., resume_from=path)``);
    ``save_weights_only=True`` keeps just ``{"model": state_dict}``.

    As Keras 3's ModelCheckpoint: ``initial_value_threshold`` (with ``save_best_only``) is the value to
    beat first: nothing is saved until the monitored value is strictly better than it. ``save_freq`` is
    ``"epoch"`` (save at epoch ends, every ``every_n_epochs``-th) or an int N: save after every N training
    batches, counted across epochs (Keras' count), the file name filled with ``epoch`` and ``batch`` (both
    from 1) and the batch's logs (``loss``); with ``save_best_only`` the monitored key is read from the
    batch's logs (``monitor="loss"``). A save within an epoch holds the weights only (``{"model": ...}``):
    a state in the middle of an epoch is not one ``fit(resume_from=...)`` could continue exactly.

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
        initial_value_threshold: float | None = None,
        save_freq: str | int = "epoch",
    ) -> None:
        if not isinstance(every_n_epochs, int) or every_n_epochs < 1:
            raise ConfigError(f"ModelCheckpoint: every_n_epochs must be a positive integer, got {every_n_epochs!r}")
        self._frequency = SaveFrequency(save_freq, "ModelCheckpoint")
        if initial_value_threshold is not None and (
            isinstance(initial_value_threshold, bool)
            or not isinstance(initial_value_threshold, (int, float))
            or math.isnan(initial_value_threshold)
        ):
            raise ConfigError(
                f"ModelCheckpoint: initial_value_threshold must be a number or None, got {initial_value_threshold!r}"
            )
        self.initial_value_threshold = None if initial_value_threshold is None else float(initial_value_threshold)
        self.save_freq = save_freq
        self.filepath = str(filepath)
        self.monitor = monitor
        self.mode_requested = mode
        self.mode = resolve_mode(mode, monitor, "ModelCheckpoint")
        self.save_best_only = save_best_only
        self.save_weights_only = save_weights_only
        self.every_n_epochs = every_n_epochs
        self.verbose = verbose
        self._monitor = Monitor(monitor, "ModelCheckpoint")
        self.on_train_begin()

    def on_train_begin(self, logs: Logs | None = None) -> None:
        self.mode = resolve_mode(self.mode_requested, self.monitor, "ModelCheckpoint", self)
        self.best: float | None = self.initial_value_threshold  # (a threshold is the first value to beat)
        self.best_epoch: int | None = None
        self.last_saved: str | None = None
        self._monitor.reset()
        self._epoch = 0  # the epoch under way, for saves within it
        self._frequency.restart()

    def on_epoch_begin(self, epoch: int, logs: Logs | None = None) -> None:
        self._epoch = epoch

    def on_train_batch_end(self, batch: int, logs: Logs | None = None) -> None:
        if not self._frequency.due(batch):
            return
        logs = {k: float(v) for k, v in (logs or {}).items() if k != "size"}  # (a device's loss is read here)
        if self.save_best_only and not self._improved(logs, self._epoch):
            return
        self._save(self._path(self._epoch, logs, batch), {"model": self.trained_model().state_dict()}, self._epoch)

    def _improved(self, logs: Logs, epoch: int) -> bool:
        """Whether the monitored value beats the best so far (then it becomes the best)."""
        value = self._monitor.read(logs)
        if value is None or not math.isfinite(value):
            return False
        if self.best is not None and not (value < self.best if self.mode == "min" else value > self.best):
            return False
        self.best, self.best_epoch = value, epoch
        return True

    def _path(self, epoch: int, logs: Logs, batch: int | None = None) -> str:
        fields = {"epoch": epoch + 1} if batch is None else {"epoch": epoch + 1, "batch": batch + 1}
        named = {**logs, **fields}
        for _, field, _, _ in string.Formatter().parse(self.filepath):
            key = (field or "").split(".")[0].split("[")[0]
            if key and key not in named:  # another spelling of a logged metric ('val_mae', 'val_mean_absolute_error')
                logged = canonical_log_name(key, logs)
                if logged in logs:
                    named[key] = logs[logged]
        try:
            return self.filepath.format(**named)
        except (KeyError, IndexError, ValueError) as exc:
            raise ConfigError(
                f"ModelCheckpoint: cannot fill the file name {self.filepath!r} from the logs "
                f"(available: {', '.join([*fields, *sorted(logs)])}): {exc}"
            ) from None

    def _state(self) -> dict[str, Any]:
        build = self.trainer.checkpoint_state
        if self.save_weights_only or build is None:
            return {"model": self.trained_model().state_dict()}
        return build()

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        if self.save_freq != "epoch":
            return
        logs = dict(logs or {})
        if self.save_best_only:
            if not self._improved(logs, epoch):
                return
        elif (epoch + 1) % self.every_n_epochs:
            return
        self._save(self._path(epoch, logs), self._state(), epoch)

    def _save(self, path: str, state: dict[str, Any], epoch: int) -> None:
        from ...serialization import save

        try:
            # Keras' ModelCheckpoint creates the file's directory (save itself refuses a missing one, as torch's)
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            save(state, path)
        except OSError as exc:
            # a full disk says so (the path is fine): "choose a writable path" would send the user the wrong way
            error = CheckpointError(f"ModelCheckpoint: {write_failure(exc, path)}")
            # for a caller's own message
            error.filename, error.reason, error.errno = str(path), str(exc.strerror or exc), exc.errno
            raise error from None
        self.last_saved = path
        if self.verbose:
            print(f"Epoch {epoch + 1}: saved checkpoint {path}")

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {"best": self.best, "best_epoch": self.best_epoch}
        if self.save_freq != "epoch":  # (only then is there a count: a state without one holds nothing more)
            state["batches_since_save"] = self._frequency.since_save
        return state

    def state_identity(self) -> dict[str, Any]:
        # the best value belongs to one quantity compared one way, and to the files it decided on
        return {"filepath": self.filepath, "monitor": self.monitor, "mode": self.mode_requested}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best = state["best"]
        self.best_epoch = state["best_epoch"]
        self._frequency.since_save = int(state.get("batches_since_save", 0))  # (absent from older checkpoints)
