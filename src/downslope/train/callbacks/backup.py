"""Keras 3's :class:`BackupAndRestore`: fit backs the whole run up into a directory, and a later fit given
the same callback after an interruption (an exception, a kill -9, Ctrl-C) continues from the backup."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ...errors import CheckpointError, ConfigError, StateError
from .base import Callback, Logs
from .checkpoint import SaveFrequency
from .write_errors import write_failure

#: The file a BackupAndRestore keeps in its directory (one backup at a time, each replacing the last).
BACKUP_FILE = "backup.ckpt"


class BackupAndRestore(Callback):
    """Back the run up at every epoch's end (or every ``save_freq`` batches) into ``backup_dir``; a later
    ``fit`` given this callback (or one with the same ``backup_dir``) starts from the backup, as Keras 3's
    ``BackupAndRestore``.

    The backup is fit's full training state, the one ``fit(resume_from=...)`` reads: the weights, the
    optimizer's and scheduler's states, the completed epochs, the other callbacks' states, the History, the
    training loader's shuffling stream and the random generator. A run backed up at epoch ends and resumed
    so ends with the weights an uninterrupted run ends with, bit for bit (same data, batch size, machine
    and settings; other data warns, as ``resume_from`` does). Each backup replaces the last one
    atomically: a process killed while writing it leaves the previous backup, which the next fit resumes.

    - ``save_freq="epoch"``: back up after each epoch. An int N: after every N training batches, counted
      across epochs (Keras' count). A backup inside an epoch is resumed by Keras' rule: the interrupted
      epoch is trained again from its first batch, starting from the weights (and optimizer state) of the
      backup, so the run differs from an uninterrupted one (restoring from it warns).
    - ``delete_checkpoint=True``: when fit ends without interruption (all its epochs, or a stopping rule
      such as EarlyStopping), the backup is deleted, so the next fit starts afresh. A run stopped by
      Ctrl-C/SIGTERM (``history.stop_kind == "interrupted"``) keeps it: the next fit continues.

    The History a resumed fit returns holds every epoch of the run, those before the interruption
    included (as ``fit(resume_from=...)`` returns it); Keras 3's holds only the epochs of the call that
    resumed (in its example, 6 of 10 epochs). ``history.epoch`` numbers the epochs from 0 in both.

    fit holds ``backup_dir`` for one process at a time, as ``checkpoint_dir``; it may not be fit's
    ``checkpoint_dir`` too (each writes its own state). A ``resume_from`` given with it is read only when
    there is no backup yet (a backup is the same run, later). Where ``backup_dir`` holds nothing else, it
    is removed with the backup.

    Example:
        >>> import tempfile, numpy as np, downslope as ds
        >>> from downslope import nn, optim
        >>> backup = BackupAndRestore(tempfile.mkdtemp())
        >>> model = nn.Linear(2, 1); x, y = np.ones((8, 2)), np.zeros((8, 1))
        >>> history = ds.fit(model, "mse", optim.SGD(model.parameters(), lr=0.1), (x, y), epochs=3,
        ...                  callbacks=[backup], verbose=0)
        >>> len(history), backup.path.exists()  # finished: the backup is gone
        (3, False)
    """

    def __init__(self, backup_dir: str | Path, save_freq: str | int = "epoch", delete_checkpoint: bool = True) -> None:
        if backup_dir is None or not str(backup_dir):
            raise ConfigError(f"BackupAndRestore: backup_dir must name a directory, got {backup_dir!r}")
        self._frequency = SaveFrequency(save_freq, "BackupAndRestore")
        if not isinstance(delete_checkpoint, bool):
            raise ConfigError(f"BackupAndRestore: delete_checkpoint must be True or False, got {delete_checkpoint!r}")
        self.backup_dir = Path(backup_dir)
        self.path = self.backup_dir / BACKUP_FILE
        self.save_freq = save_freq
        self.delete_checkpoint = delete_checkpoint
        #: Whether the last fit deleted the backup as it ended (fit then removes an emptied ``backup_dir``).
        self.deleted = False

    def read(self) -> dict[str, Any] | None:
        """The training state backed up in ``backup_dir``, or None when there is none (a first run)."""
        if not self.path.is_file():
            return None
        from ..resume import read_checkpoint

        try:
            return read_checkpoint(self.path)
        except CheckpointError as exc:
            raise CheckpointError(
                f"BackupAndRestore(backup_dir={str(self.backup_dir)!r}): cannot resume from {self.path}: {exc}; "
                "remove it to start afresh"
            ) from None

    def on_train_begin(self, logs: Logs | None = None) -> None:
        self.deleted = False
        self._frequency.restart()  # (a resumed run then gets the saved count back from the backup)

    def on_train_batch_end(self, batch: int, logs: Logs | None = None) -> None:
        if self._frequency.due(batch):
            self._save(within_epoch=batch + 1)

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        if self.save_freq == "epoch":
            self._save()

    def on_train_end(self, logs: Logs | None = None) -> None:
        # an interrupted run is resumed by the next fit: only a run that ended keeps no backup
        if self.delete_checkpoint and self.trainer.stop_kind != "interrupted":
            self.path.unlink(missing_ok=True)
            self.deleted = True

    def _save(self, within_epoch: int | None = None) -> None:
        from ...serialization import save

        build = self.trainer.checkpoint_state
        if build is None:
            raise StateError("BackupAndRestore: the run has no resumable state to back up (used outside fit?)")
        state = build()
        if within_epoch is not None:  # the epoch under way is not complete: it is trained again on resume
            state["epoch"] = self.trainer.epoch
            state["within_epoch"] = within_epoch
        try:
            self.backup_dir.mkdir(parents=True, exist_ok=True)
            save(state, self.path)
        except OSError as exc:
            error = CheckpointError(f"BackupAndRestore: {write_failure(exc, self.path)}")
            error.filename, error.reason, error.errno = str(self.path), str(exc.strerror or exc), exc.errno
            raise error from None

    def state_dict(self) -> dict[str, Any]:
        return {"batches_since_save": self._frequency.since_save} if self.save_freq != "epoch" else {}

    def state_identity(self) -> dict[str, Any]:
        return {"backup_dir": str(self.backup_dir)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._frequency.since_save = int(state.get("batches_since_save", 0))


__all__ = ["BackupAndRestore", "BACKUP_FILE"]
