"""Resuming a fit: what a training checkpoint holds, how it is found, read and put back.

A training checkpoint (written by fit's ``checkpoint_dir`` or by ModelCheckpoint without
``save_weights_only``) is a dict of kind :data:`CHECKPOINT_KIND`: the completed epochs, the seed,
and the states of the model, optimizer, scheduler, training loader, random generator, History and
callbacks, and a fingerprint of the training data (:func:`data_fingerprint`), so that resuming on
other data, or with another batch size, says so; fit builds it in ``TrainingState.checkpoint_state``.
A directory that fit checkpoints into is held by one process at a time (:func:`hold_checkpoint_dir`).
"""

from __future__ import annotations

import hashlib
import math
import os
import sys
import warnings
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from .. import backend
from ..data.loader import DataLoader
from ..devices import to_host
from ..errors import CheckpointError, ConfigError, StateError
from ..optim.protocols import OptimizerLike, SchedulerLike
from ..serialization import try_lock
from ..tensor import Tensor
from .callbacks import CallbackList
from .callbacks.backup import BackupAndRestore
from .checkpoint_layout import check_training_checkpoint
from .history import History
from .inputs import known_length
from .placement import load_on_host
from .protocols import ModelLike

CHECKPOINT_KIND = "downslope-training-state"


def checkpoint_path(path: str | Path) -> Path:
    """``path``, or ``path/last.ckpt`` when ``path`` is a directory (where fit's checkpoint_dir writes)."""
    p = Path(path)
    return p / "last.ckpt" if p.is_dir() else p


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The training state fit saved at ``path`` (a file, or a directory holding ``last.ckpt``).

    Raises CheckpointError when the file is not a training checkpoint (e.g. weights only).
    """
    from ..serialization import load

    state = load(checkpoint_path(path))
    if not isinstance(state, dict) or state.get("kind") != CHECKPOINT_KIND:
        raise CheckpointError(
            f"fit(resume_from={str(path)!r}): not a training checkpoint (written by fit's checkpoint_dir or "
            "ModelCheckpoint without save_weights_only)"
        )
    check_training_checkpoint(state, checkpoint_path(path))
    return state


def restore(
    ckpt: dict[str, Any],
    model: ModelLike,
    optimizer: OptimizerLike,
    scheduler: SchedulerLike | None,
    loader: DataLoader,
    history: History,
    cbs: CallbackList,
    path: Any,
    batches: Any = None,
) -> int:
    """Load a checkpoint's states into a run's objects; returns the number of epochs it had completed.

    ``path`` (where it was read from) is named in errors. ``batches``: the run's :class:`StepsPerEpoch`
    (fit's ``steps_per_epoch``), given the position of the pass the checkpoint's epoch ended inside.
    """
    where = f"fit(resume_from={str(path)!r})"
    try:
        load_on_host(model, ckpt["model"])
    except (KeyError, ValueError) as exc:
        raise CheckpointError(f"{where}: the checkpoint's model does not fit this model: {exc}") from None
    try:
        optimizer.load_state_dict(ckpt["optimizer"])
    except (KeyError, ValueError) as exc:
        raise CheckpointError(f"{where}: the checkpoint's optimizer state does not fit this optimizer: {exc}") from None
    if (ckpt["scheduler"] is None) != (scheduler is None):
        raise CheckpointError(
            f"{where}: the checkpoint {'has no' if ckpt['scheduler'] is None else 'has a'} scheduler state, "
            f"but this run {'has a' if scheduler is not None else 'has no'} scheduler"
        )
    if scheduler is not None:
        scheduler.load_state_dict(ckpt["scheduler"])
    try:
        loader.load_state_dict(ckpt["train_loader"])
    except CheckpointError as exc:  # e.g. a data-parallel run's checkpoint resumed in one process
        raise CheckpointError(f"{where}: {exc}") from None
    backend.set_rng_state(ckpt["rng"])
    passing = ckpt.get("steps_pass") or {}
    if isinstance(batches, StepsPerEpoch):
        batches.load_state_dict(passing)  # (after the loader and the generator: it puts both back as they are)
    elif passing.get("taken"):
        warnings.warn(
            f"{where}: the checkpoint ended its last epoch {passing['taken']} batches into a pass over the data "
            "(steps_per_epoch); this run has no steps_per_epoch, so its first epoch starts a fresh pass",
            UserWarning,
            stacklevel=4,
        )
    history.load_state_dict(ckpt["history"])
    cbs.load_state_dict(ckpt["callbacks"])
    return int(ckpt["epoch"])


_ENDED = object()  # what next() gives when a pass has no batch left


class StepsPerEpoch:
    """fit's training batches with ``steps_per_epoch``, by Keras 3's rule (its EpochIterator): each epoch
    takes the next ``steps`` batches of one pass over ``loader``, which is not restarted at the epoch's end;
    an epoch that reaches the pass's end stops there (with a warning when it wanted more batches), and the
    next epoch starts a fresh pass. Other attributes are the loader's.

    A checkpoint records where the pass under way stands (:meth:`state_dict`): the batches already taken
    from it, and the loader's and the library generator's states as the pass began, which fix its order.
    Resuming (:meth:`load_state_dict`) draws that order again and reads past the batches taken (read, not
    trained: up to one pass of reading), so the resumed epochs take the batches the uninterrupted run took."""

    def __init__(self, loader: DataLoader, steps: int) -> None:
        self.loader = loader
        self.steps = steps
        self._batches: Any = None  # the pass under way (None: start one)
        self._taken = 0  # batches of that pass already trained on
        self._pass_start: dict[str, Any] | None = None  # the states that drew the pass under way's order

    def __getattr__(self, name: str) -> Any:
        return getattr(self.loader, name)

    def __iter__(self) -> Any:
        if getattr(self.loader.dataset, "endless", False):
            yield from self._from_stream()
            return
        per_pass = known_length(self.loader)
        if per_pass is None:  # a stream without a length (an IterableDataset): read until it ends
            per_pass = sys.maxsize
        if self._batches is None:
            self._pass_start = {"loader": self.loader.state_dict(), "rng": backend.get_rng_state()}
            self._batches, self._taken = iter(self.loader), 0
        for step in range(self.steps):
            batch = next(self._batches, _ENDED) if self._taken < per_pass else _ENDED
            if batch is _ENDED and step == 0 and per_pass == sys.maxsize and self._taken:
                # a stream without a length that ended exactly with the last epoch: this epoch starts a new pass
                self._pass_start = {"loader": self.loader.state_dict(), "rng": backend.get_rng_state()}
                self._batches, self._taken = iter(self.loader), 0
                batch = next(self._batches, _ENDED)
            if batch is _ENDED:
                per_pass = self._taken
                warnings.warn(
                    f"fit: the data ran out after {per_pass} batches, before steps_per_epoch={self.steps} batches "
                    "were trained in this epoch; the epoch ends here and the next one starts a fresh pass "
                    "(as Keras' 'Your input ran out of data')",
                    stacklevel=2,
                )
                break
            self._taken += 1
            yield batch
        if self._taken >= per_pass:
            self._batches, self._pass_start = None, None

    def _from_stream(self) -> Any:
        """The next ``steps`` batches of a stream without a length (a Python generator, Keras' way to feed fit):
        one iterator read on across epochs. One that runs out is refused, saying how many batches it gave (Keras
        stops training there, with a warning; here a short generator is a mistake to fix, not a way to stop)."""
        if self._batches is None:
            self._batches, self._taken = iter(self.loader), 0
        for step in range(self.steps):
            try:
                batch = next(self._batches)
            except StopIteration:
                raise ConfigError(
                    f"fit: the generator ran out after {self._taken} batches, {step} into this epoch's "
                    f"steps_per_epoch={self.steps}; a generator given to fit must yield steps_per_epoch x epochs "
                    "batches (as Keras' do, loop forever: while True: ... yield x, y)"
                ) from None
            self._taken += 1
            yield batch

    def state_dict(self) -> dict[str, Any]:
        """``{"taken": 0}`` when the next epoch starts a fresh pass; otherwise the batches taken from the
        pass under way and the states its order was drawn from."""
        if self._batches is None or self._pass_start is None:
            return {"taken": 0}
        return {"taken": self._taken, **self._pass_start}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue the pass :meth:`state_dict` describes; the loader's and the library generator's states
        are left as they were when this was called (the checkpoint's, at the end of its epoch)."""
        taken = int(state.get("taken", 0))
        self._batches, self._taken, self._pass_start = None, 0, None
        if not taken:
            return
        per_pass = known_length(self.loader)
        if per_pass is not None and taken >= per_pass:
            raise CheckpointError(
                f"fit: the checkpoint's epoch ended {taken} batches into a pass, but this run's data has "
                f"{len(self.loader)} batches per pass; resume with the data and batch size it was trained on"
            )
        now = {"loader": self.loader.state_dict(), "rng": backend.get_rng_state()}
        self.loader.load_state_dict(state["loader"])
        backend.set_rng_state(state["rng"])
        batches = iter(self.loader)
        for _ in range(taken):  # the order is drawn at the first batch; the batches read are not trained on
            next(batches)
        self._batches, self._taken = batches, taken
        self._pass_start = {"loader": state["loader"], "rng": state["rng"]}
        self.loader.load_state_dict(now["loader"])  # (the pass's order is drawn: the stream goes back)
        backend.set_rng_state(now["rng"])


FINGERPRINT_SAMPLES = 256  # evenly spaced samples hashed for a dataset that holds no arrays
_HASH_BLOCK_BYTES = 4 * 2**20  # rows are hashed a block at a time (bounded memory, same digest)
ALL_ROWS = "all"  # the "hashed" entry of a fingerprint over every row


def data_fingerprint(loader: DataLoader, every_row: bool = True) -> dict[str, Any] | None:
    """How many samples the training data holds and a digest of their values, dtypes and shapes; None
    for a stream without a length or indexing.

    What is hashed (the limit of what a resume can notice):

    - a dataset holding its data in arrays (``ArrayDataset``, ``TensorDataset``, a ``Subset`` of
      one, the memory-mapped ``LazyDataset``; what ``fit`` makes from arrays): **every row** of every
      array, read a block at a time, so a change to any value is noticed. It costs about 3 ms for
      100,000 x 50 float32 (a CRC-32, ~5x faster than BLAKE2b's 15 ms; see :class:`_Crc32`): 1.5% of
      one epoch of a 50-8-2 MLP at batch size 64 (210 ms), 6% at batch size 256 (54 ms), once per fit;
    - any other dataset (one whose ``__getitem__`` computes samples): ``FINGERPRINT_SAMPLES`` (256)
      samples, evenly spaced, since reading every sample through Python would cost an epoch: a change
      confined to the other samples is not noticed.

    ``every_row=False`` gives the sampled digest for any dataset (what checkpoints written before
    every row was hashed hold, so that they are compared alike)."""
    dataset = loader.dataset
    try:
        n = len(dataset)
        arrays = getattr(dataset, "arrays", None) if every_row else None
        if isinstance(arrays, tuple) and arrays and all(_hashable_whole(a) for a in arrays):
            crc = _Crc32()
            for array in arrays:
                _hash_rows(crc, array)
            return {"samples": n, "digest": crc.hexdigest(), "hashed": ALL_ROWS}
        picks = sorted(
            {round(i * (n - 1) / max(1, FINGERPRINT_SAMPLES - 1)) for i in range(min(n, FINGERPRINT_SAMPLES))}
        )
        digest = hashlib.blake2b(digest_size=16)
        for i in picks:
            _hash_sample(digest, dataset[i])
    except (TypeError, NotImplementedError):
        return None
    return {"samples": n, "digest": digest.hexdigest()}


class _Crc32:
    """A running CRC-32 with hashlib's update/hexdigest: it tells accidental changes (any change to
    a value, rows reordered) at ~2 GB/s, three times BLAKE2b's speed, which keeps hashing every row
    of the data a small part of one epoch. A resume check guards against mistakes, not forgery."""

    def __init__(self) -> None:
        self.value = 0

    def update(self, data: Any) -> None:
        self.value = zlib.crc32(data, self.value)

    def hexdigest(self) -> str:
        return f"crc32:{self.value:08x}"


def _hashable_whole(array: Any) -> bool:
    """Whether ``array``'s rows can be read a block at a time: a host or device array, or a RowSource."""
    from ..data.memmap import is_lazy
    from ..devices import is_array

    return is_lazy(array) or isinstance(array, np.ndarray) or is_array(array)


def _hash_rows(digest: Any, array: Any) -> None:
    from ..data.memmap import is_lazy

    if is_lazy(array):
        digest.update(f"rows{tuple(array.shape)}".encode())
        for block in array.chunks():
            digest.update(np.ascontiguousarray(block).data)
        return
    digest.update(f"{array.dtype.str}{tuple(array.shape)}".encode())
    row_bytes = max(1, array.dtype.itemsize * (math.prod(array.shape[1:]) if array.ndim > 1 else 1))
    step = max(1, _HASH_BLOCK_BYTES // row_bytes)
    for begin in range(0, len(array) if array.ndim else 1, step):
        block = array[begin : begin + step] if array.ndim else array
        digest.update(np.ascontiguousarray(to_host(block)).data)


def _hash_sample(digest: Any, item: Any) -> None:
    if isinstance(item, (tuple, list)):
        for part in item:
            _hash_sample(digest, part)
        return
    if isinstance(item, dict):
        for key in sorted(item):
            digest.update(str(key).encode())
            _hash_sample(digest, item[key])
        return
    array = np.ascontiguousarray(to_host(item.array if isinstance(item, Tensor) else item))
    digest.update(f"{array.dtype.str}{array.shape}".encode())
    digest.update(array.tobytes())


def warn_if_other_data(ckpt: dict[str, Any], loader: DataLoader, path: Any) -> None:
    """Warn when the run being resumed trains on other data, or in other batches, than the checkpoint's:
    it then cannot continue "as if never interrupted" (a scaled copy of the data once sent the loss
    from 1.9 to 3.9e7 without a word)."""
    changes = []
    if "data" not in ckpt:
        # an edited or foreign checkpoint: resuming stays allowed (the entry is not part of the required
        # layout), but the user must know the data went unchecked rather than read silence as "unchanged"
        warnings.warn(
            f"fit(resume_from={str(path)!r}): the checkpoint has no 'data' entry (its record of the training "
            "data), so whether the run now trains on the same data cannot be checked",
            UserWarning,
            stacklevel=3,
        )
    saved = ckpt.get("data")
    # a checkpoint written before every row was hashed holds the sampled digest: compare like with like
    every_row = isinstance(saved, dict) and saved.get("hashed") == ALL_ROWS
    now = data_fingerprint(loader, every_row=every_row)
    if saved is not None and now is not None:
        if saved["samples"] != now["samples"]:
            changes.append(f"{saved['samples']} training samples, now {now['samples']}")
        elif saved.get("hashed") == now.get("hashed") and saved["digest"] != now["digest"]:
            changes.append("the same number of training samples, but other values")
    before = ckpt.get("train_loader", {})
    for key in ("batch_size", "shuffle", "drop_last"):
        if key in before and before[key] != getattr(loader, key):
            changes.append(f"{key} {before[key]!r}, now {getattr(loader, key)!r}")
    if changes:
        warnings.warn(
            f"fit(resume_from={str(path)!r}): the checkpoint was trained with {'; '.join(changes)}. The run "
            "continues with the checkpoint's weights, optimizer state and schedule on what was given now; to "
            "start a new run from those weights instead, load them with model.load_state_dict",
            UserWarning,
            stacklevel=3,
        )


def hold_checkpoint_dir(directory: str | Path, where: str | None = None) -> int:
    """Take ``directory`` for this process's run (a lock on its ``.fit.lock``, released when the returned
    descriptor is closed or the process dies); refuse when another process is training into it, since the
    two would overwrite each other's ``last.ckpt``. ``where`` names the argument in errors
    (``fit(checkpoint_dir=...)`` by default). Temporary files that a writer killed mid-write left
    there are removed: while the lock is held nobody else writes in the directory.

    :func:`release_checkpoint_dir` removes the lock file (while still holding it): a process that opened
    the file just before and then locked it holds a lock on a removed file, so the lock taken here counts
    only if the file at the path is still the one locked; otherwise it is taken again."""
    where = where or f"fit(checkpoint_dir={str(directory)!r})"
    path = Path(directory)
    lock_file = path / LOCK_FILE
    fd: int | None = None
    for _ in range(100):  # each retry means another process released the directory in between
        try:
            path.mkdir(parents=True, exist_ok=True)
            lock_file.touch(exist_ok=True)
            fd = try_lock(lock_file)
        except FileNotFoundError:
            continue  # removed by its releasing holder between the touch and the open
        except (FileExistsError, NotADirectoryError):
            # mkdir's own words ("File exists") send the user looking for a directory that is not there
            blocking = _file_in_the_way(path)
            if blocking is None:
                raise
            raise ConfigError(
                f"{where}: {blocking} is a file, not a directory; give a directory for the checkpoints"
            ) from None
        except OSError as exc:
            raise ConfigError(
                f"{where}: cannot write there ({exc.strerror or exc}); choose a writable directory"
            ) from None
        if fd is None or _is_the_file(fd, lock_file):
            break
        os.close(fd)  # a lock on a removed file guards nothing
        fd = None
    if fd is None:
        raise StateError(
            f"{where}: another process is training into this directory now; give each run its own directory"
        )
    for stale in path.glob(".*.ckpt.*.tmp"):
        stale.unlink(missing_ok=True)
    return fd


#: The file whose lock holds a checkpoint directory for one process (removed when fit ends).
LOCK_FILE = ".fit.lock"


def _file_in_the_way(path: Path) -> Path | None:
    """``path`` or the nearest of its parents that exists as something other than a directory, if any."""
    for candidate in (path, *path.parents):
        if candidate.exists() or candidate.is_symlink():
            return None if candidate.is_dir() else candidate
    return None


def _is_the_file(fd: int, path: Path) -> bool:
    """Whether the open descriptor ``fd`` is the file now at ``path``."""
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path))
    except OSError:
        return False


def release_checkpoint_dir(fd: int | None, directory: str | Path | None = None) -> None:
    """Release a directory :func:`hold_checkpoint_dir` took; with ``directory``, its lock file is removed
    first (while still locked), so a finished fit leaves only its checkpoints behind."""
    if fd is None:
        return
    if directory is not None:
        lock_file = Path(directory) / LOCK_FILE
        if _is_the_file(fd, lock_file):
            try:
                lock_file.unlink()
            except OSError:  # e.g. Windows, where an open file cannot be removed: it stays, harmless
                pass
    os.close(fd)


def backup_callback(callbacks: Any, checkpoint_dir: str | Path | None) -> BackupAndRestore | None:
    """The BackupAndRestore among fit's ``callbacks`` (None without one); two, or one backing up into
    fit's ``checkpoint_dir``, are refused (each would overwrite the other's state)."""
    listed = callbacks if isinstance(callbacks, (list, tuple, CallbackList)) else ()  # (fit refuses the rest)
    found = [cb for cb in listed if isinstance(cb, BackupAndRestore)]
    if len(found) > 1:
        raise ConfigError(
            f"fit: {len(found)} BackupAndRestore callbacks ({', '.join(str(cb.backup_dir) for cb in found)}); "
            "pass one: a run has one backup"
        )
    if not found:
        return None
    backup = found[0]
    if checkpoint_dir is not None and os.path.abspath(checkpoint_dir) == os.path.abspath(backup.backup_dir):
        raise ConfigError(
            f"fit: BackupAndRestore(backup_dir={str(backup.backup_dir)!r}) and checkpoint_dir are the same "
            "directory; give the backup a directory of its own"
        )
    return backup


def starting_checkpoint(
    resume_from: str | Path | None, backup: BackupAndRestore | None
) -> tuple[dict[str, Any] | None, str | Path | None]:
    """The checkpoint a fit starts from and where it was read: a BackupAndRestore's backup when there is
    one (the same run, later than any ``resume_from``), else ``resume_from``'s, else none."""
    saved = backup.read() if backup is not None else None
    if backup is None or saved is None:
        return (read_checkpoint(resume_from) if resume_from is not None else None), resume_from
    within = saved.get("within_epoch")
    if within:
        warnings.warn(
            f"BackupAndRestore: the backup in {str(backup.backup_dir)!r} was made after batch {within} of epoch "
            f"{int(saved['epoch']) + 1} (save_freq={backup.save_freq!r}); as in Keras, that epoch is trained again "
            "from its first batch, starting from the backup's weights, so the run is not the uninterrupted one "
            "(save_freq='epoch' resumes exactly)",
            UserWarning,
            stacklevel=3,
        )
    return saved, backup.path


def release_backup_dir(fd: int | None, backup: BackupAndRestore | None) -> None:
    """Release the directory fit held for ``backup``; an emptied one (its backup deleted as the run ended)
    is removed, as Keras removes its backup directory."""
    if backup is None or fd is None:
        return
    release_checkpoint_dir(fd, backup.backup_dir)
    if backup.deleted:
        try:
            backup.backup_dir.rmdir()
        except OSError:  # it holds other files (or is gone): left as it is
            pass


__all__ = [
    "CHECKPOINT_KIND",
    "StepsPerEpoch",
    "backup_callback",
    "release_backup_dir",
    "starting_checkpoint",
    "checkpoint_path",
    "data_fingerprint",
    "hold_checkpoint_dir",
    "read_checkpoint",
    "release_checkpoint_dir",
    "restore",
    "warn_if_other_data",
]
