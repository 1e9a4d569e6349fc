"""Ranks that must agree: on the settings before training, and on the parameters after it.

Data-parallel training is only correct when every rank runs the same program on the same data:
the same number of epochs and steps (or one rank waits forever in an Allreduce the others never
join), the same schedule, loss and optimizer (or the copies of the model silently drift apart).
:func:`check_same_config` compares a whole configuration across ranks before anything is trained:
one collective exchanges a SHA-256 of each rank's canonical JSON; only when the digests differ is
the JSON itself gathered, to name the keys that differ and their values on each rank. Every rank
reaches the same verdict, so every rank raises the same one-line :class:`DisagreementError`.

:func:`parameters_digest` and :func:`make_parameters_identical` serve the end of training: a
callback that only one rank ran (say, EarlyStopping restoring its best weights) may leave that
rank's parameters different from the others'.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..train.protocols import ModelLike
from .world import DisagreementError, World, get_world


def plain(value: Any) -> Any:
    """``value`` as JSON-able data for comparison: arrays become a digest of dtype, shape and bytes,
    objects of other types their type name (so a callable's memory address never differs).

    Example:
        >>> plain({"betas": (0.9, 0.999), "lr": 0.1, "fn": len})
        {'betas': [0.9, 0.999], 'lr': 0.1, 'fn': 'builtin_function_or_method'}
    """
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, np.generic):
        return plain(value.item())
    if isinstance(value, np.ndarray):
        return "array " + array_digest(value)
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    return type(value).__name__


def array_digest(*arrays: np.ndarray) -> str:
    """SHA-256 of the arrays' dtypes, shapes and contents (a fingerprint of a data set)."""
    h = hashlib.sha256()
    for a in arrays:
        h.update(f"{a.dtype.str}{tuple(a.shape)};".encode())
        h.update(np.ascontiguousarray(a).data)
    return h.hexdigest()


def _short(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


_NOT_SET = "<not set>"
_Path = tuple[str | int, ...]


def _first_difference(a: Any, b: Any, path: _Path = ()) -> _Path | None:
    """Where two plain values first differ (dict keys in sorted order, list items in order): the
    path down to the differing entry, ``()`` when they differ as a whole, None when they are equal.
    Nested settings (an optimizer's param_groups) share a long common start, so naming the entry
    is what makes the message show the difference."""
    if a == b:
        return None
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            found = _first_difference(a.get(key, _NOT_SET), b.get(key, _NOT_SET), (*path, key))
            if found is not None:
                return found
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            found = _first_difference(x, y, (*path, i))
            if found is not None:
                return found
    return path


def _at(value: Any, path: _Path) -> Any:
    for step in path:
        if isinstance(step, int) and isinstance(value, list) and step < len(value):
            value = value[step]
        elif isinstance(step, str) and isinstance(value, dict) and step in value:
            value = value[step]
        else:
            return _NOT_SET
    return value


def _path_text(path: _Path) -> str:
    parts = []
    for step in path:
        if isinstance(step, int):
            parts.append(f"[{step}]")
        elif step.isidentifier():
            parts.append(f".{step}")
        else:
            parts.append(f"[{step!r}]")
    return "".join(parts).removeprefix(".")


def _describe_difference(key: str, values: list[Any], differing: list[int]) -> str:
    """One key's difference across ranks: the first differing entry inside nested values."""
    whole = [_short(values[0]), _short(values[differing[0]])]
    # values short enough to show whole are shown whole ("hidden is [4] on rank 0 but [8] on rank 1")
    path = _first_difference(values[0], values[differing[0]]) or () if any(t.endswith("...") for t in whole) else ()
    shown = [r for r in differing if _at(values[r], path) != _at(values[0], path)][:3] or differing[:1]
    others = ", ".join(f"{_short(_at(values[r], path))} on rank {r}" for r in shown)
    more = f" (and {len(differing) - len(shown)} more ranks differ)" if len(differing) > len(shown) else ""
    subject = f"{key} differ: {_path_text(path)} is" if path else f"{key} is"
    return f"{subject} {_short(_at(values[0], path))} on rank 0 but {others}{more}"


def check_same_config(
    config: Mapping[str, Any],
    *,
    what: str = "configuration",
    world: World | None = None,
    ignore: tuple[str, ...] = (),
) -> None:
    """Raise :class:`DisagreementError` on every rank unless all ranks pass the same ``config``.

    ``config`` is a flat mapping of setting name to value (values are compared as :func:`plain`
    data); keys in ``ignore`` are left out. The message names every key that differs with its value
    on each rank that differs from rank 0, on one line, e.g. ``the ranks disagree on the
    configuration: epochs is 3 on rank 0 but 5 on rank 1``. A nested value (a list, a dict) is
    named down to its first differing entry: ``optimizer settings differ: param_groups[0].lr is 0.1
    on rank 0 but 0.2 on rank 1``.

    Example:
        >>> from downslope import distributed as dist
        >>> dist.check_same_config({"epochs": 3, "lr": 0.1})   # a world of one always agrees
    """
    world = world if world is not None else get_world()
    if world.world_size == 1:
        return
    mine = json.dumps({str(k): plain(v) for k, v in config.items() if k not in ignore}, sort_keys=True).encode()
    digests = world.comm.allgather_bytes(hashlib.sha256(mine).digest())
    if all(d == digests[0] for d in digests):
        return
    # The digests differ on every rank's view alike, so this second exchange is collective too.
    everyone = [json.loads(raw) for raw in world.comm.allgather_bytes(mine)]
    keys = sorted({k for settings in everyone for k in settings})
    parts: list[str] = []
    for key in keys:
        values = [settings.get(key, "<not set>") for settings in everyone]
        differing = [r for r, v in enumerate(values) if v != values[0]]
        if differing:
            parts.append(_describe_difference(key, values, differing))
    hint = ""
    if any(part.startswith("training data is") for part in parts):
        # the Horovod habit: each rank loads its own shard, where distributed.fit shards the data itself
        hint = " distributed.fit shards the training data itself: give every rank the whole data set, not its part."
    raise DisagreementError(
        f"the ranks disagree on the {what} (checked before training): {'; '.join(parts)}. "
        f"Start every rank with the same settings and data.{hint}"
    )


def parameters_digest(model: ModelLike) -> bytes:
    """SHA-256 over a model's parameters and buffers (names, dtypes, shapes and values)."""
    from .collectives import named_tensors

    h = hashlib.sha256()
    for name, t in named_tensors(model):
        h.update(name.encode())
        h.update(array_digest(t.array).encode())
    return h.digest()


def make_parameters_identical(model: ModelLike, root: int = 0, *, world: World | None = None) -> bool:
    """If the ranks' parameters differ, copy rank ``root``'s to every rank; return whether they differed.

    One small allgather of digests when they already agree (every rank decides alike from it).
    """
    from .collectives import broadcast_parameters

    world = world if world is not None else get_world()
    if world.world_size == 1:
        return False
    digests = world.comm.allgather_bytes(parameters_digest(model))
    if all(d == digests[0] for d in digests):
        return False
    broadcast_parameters(model, root=root, world=world)
    return True
