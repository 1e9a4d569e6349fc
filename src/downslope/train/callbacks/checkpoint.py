"""Saving checkpoints at epoch ends: :class:`ModelCheckpoint`."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from ...errors import CheckpointError, ConfigError
from .base import Callback, Logs, TrainingState  # noqa: F401  (TrainingState: the examples use it)
from .monitoring import Monitor, resolve_mode
from .write_errors import write_failure


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
        self.mode = resolve_mode(mode, monitor, "ModelCheckpoint")
        self.save_best_only = save_best_only
        self.save_weights_only = save_weights_only
        self.every_n_epochs = every_n_epochs
        self.verbose = verbose
        self._monitor = Monitor(monitor, "ModelCheckpoint")
        self.on_train_begin()

    def on_train_begin(self, logs: Logs | None = None) -> None:
        self.mode = resolve_mode(self.mode_requested, self.monitor, "ModelCheckpoint", self)
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
            return {"model": self.trained_model().state_dict()}
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
        from ...serialization import save

        path = self._path(epoch, logs)
        try:
            # Keras' ModelCheckpoint creates the file's directory (save itself refuses a missing one, as torch's)
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            save(self._state(), path)
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
        return {"best": self.best, "best_epoch": self.best_epoch}

    def state_identity(self) -> dict[str, Any]:
        # the best value belongs to one quantity compared one way, and to the files it decided on
        return {"filepath": self.filepath, "monitor": self.monitor, "mode": self.mode_requested}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best = state["best"]
        self.best_epoch = state["best_epoch"]
