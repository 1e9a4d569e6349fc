"""The entries a training checkpoint must hold, checked when it is read for resuming.

A file of kind ``CHECKPOINT_KIND`` written by another downslope version, or edited, may lack an entry
or hold one of another type: resuming from it must stop with one :class:`CheckpointError` that names
the file and the entry (docs/security.md), before any state is put back, rather than a bare
``KeyError`` from deep inside fit or a run that silently trains the wrong number of epochs.

Example:
    >>> check_training_checkpoint({"kind": "downslope-training-state"}, "last.ckpt")
    Traceback (most recent call last):
    ...
    downslope.errors.CheckpointError: fit(resume_from='last.ckpt'): last.ckpt is not a training checkpoint of this layout: it lacks the entry 'epoch' (written by another downslope version, or edited?)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from ..errors import CheckpointError

# entry -> (what it must be, a test of the value); in the order fit reads them
_TABLE = ("a table", lambda v: isinstance(v, Mapping))
_LAYOUT: dict[str, tuple[str, Any]] = {
    "epoch": ("a whole number >= 0 (the epochs completed)", lambda v: type(v) is int and v >= 0),
    "seed": ("a whole number or None", lambda v: v is None or type(v) is int),
    "model": _TABLE,
    "optimizer": _TABLE,
    "scheduler": ("a table, or None without a scheduler", lambda v: v is None or isinstance(v, Mapping)),
    "train_loader": _TABLE,
    "rng": ("the random generator's state", lambda v: v is not None),
    "history": (
        "History's record (a table with 'epochs' and 'history')",
        lambda v: isinstance(v, Mapping) and "epochs" in v and isinstance(v.get("history"), Mapping),
    ),
    "callbacks": _TABLE,
}


def check_training_checkpoint(state: Mapping[str, Any], path: str | os.PathLike[str]) -> None:
    """Refuse a training checkpoint read from ``path`` that lacks an entry resuming reads, or holds one
    of another kind, in one :class:`CheckpointError` naming the file and the entry."""
    where = f"fit(resume_from={os.fspath(path)!r}): {os.fspath(path)}"
    for key, (expected, valid) in _LAYOUT.items():
        if key not in state:
            raise CheckpointError(
                f"{where} is not a training checkpoint of this layout: it lacks the entry {key!r} (written by "
                "another downslope version, or edited?)"
            )
        value = state[key]
        if not valid(value):
            shown = repr(value) if isinstance(value, (int, float, str)) else type(value).__name__
            raise CheckpointError(f"{where}: its entry {key!r} must be {expected}, the file has {shown}")
