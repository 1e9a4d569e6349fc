"""Resuming a fit: what a training checkpoint holds, how it is found, read and put back.

A training checkpoint (written by fit's ``checkpoint_dir`` or by ModelCheckpoint without
``save_weights_only``) is a dict of kind :data:`CHECKPOINT_KIND`: the completed epochs, the seed,
and the states of the model, optimizer, scheduler, training loader, random generator, History and
callbacks; fit builds it in ``TrainingState.checkpoint_state``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .. import backend
from ..data.loader import DataLoader
from ..errors import CheckpointError
from ..optim.protocols import OptimizerLike, SchedulerLike
from .callbacks import CallbackList
from .history import History
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
) -> int:
    """Load a checkpoint's states into a run's objects; returns the number of epochs it had completed.

    ``path`` (where it was read from) is named in errors.
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
    loader.load_state_dict(ckpt["train_loader"])
    backend.set_rng_state(ckpt["rng"])
    history.load_state_dict(ckpt["history"])
    cbs.load_state_dict(ckpt["callbacks"])
    return int(ckpt["epoch"])


__all__ = ["CHECKPOINT_KIND", "checkpoint_path", "read_checkpoint", "restore"]
