"""What the ranks say to each other: start in the same state, average gradients, sum metrics.

* :func:`check_same_model` compares parameter names, shapes and dtypes across ranks before anything
  else, so a model built differently on one rank fails at start with the first difference named,
  rather than as a shape error inside an Allreduce (or, worse, a silently wrong average).
* :func:`broadcast_parameters` / :func:`broadcast_optimizer_state` copy rank 0's state to every rank.
* :func:`allreduce_gradients` averages ``.grad`` over ranks: gradients are packed into one flat,
  contiguous buffer per dtype (float32 normally), reduced with one in-place ``Allreduce`` per bucket
  (25 MB by default; a small model is a single Allreduce), scaled by ``1/world_size`` and copied back.
* :func:`allreduce_sum` / :func:`reduce_metrics` combine per-rank sums (``loss * count`` and ``count``)
  so that every rank sees the same global averages.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import ArgumentError, ArgumentTypeError, CheckpointError
from ..optim.protocols import OptimizerLike
from ..serialization import decode_tree, encode_tree
from ..tensor import Tensor, wrap_array
from .world import DisagreementError, DistributedError, UnsendableObjectError, World, get_world

DEFAULT_BUCKET_BYTES = 25 * 2**20

NamedTensors = list[tuple[str, Tensor]]


def named_tensors(source: Any, *, buffers: bool = True) -> NamedTensors:
    """``(name, tensor)`` pairs of a Module (parameters, then buffers), a name->tensor mapping, or
    a sequence of tensors (named ``param[i]``)."""
    if hasattr(source, "named_parameters"):
        found: NamedTensors = list(source.named_parameters())
        if buffers and hasattr(source, "named_buffers"):
            found += [(f"buffer {name}", b) for name, b in source.named_buffers()]
        return found
    if isinstance(source, Mapping):
        items = list(source.items())
    else:
        items = [(f"param[{i}]", t) for i, t in enumerate(source)]
    for name, t in items:
        if not isinstance(t, Tensor):
            raise ArgumentTypeError(
                f"downslope.distributed: {name} is a {type(t).__name__}, expected a Tensor/Parameter"
            )
    return items


def _signature(named: NamedTensors) -> list[list[Any]]:
    # requires_grad too: the gradient buffers hold only the trained tensors, so a layer frozen on one rank
    # alone would misalign every gradient after it (or fail deep inside MPI)
    return [[name, list(t.shape), str(t.dtype), bool(getattr(t, "requires_grad", False))] for name, t in named]


def _describe(entry: list[Any] | None) -> str:
    if entry is None:
        return "nothing (fewer tensors)"
    name, shape, dtype, trained = entry
    frozen = "" if trained or name.startswith("buffer ") else " (frozen)"  # a buffer is never trained
    return f"{name!r} with shape {tuple(shape)} {dtype}{frozen}"


def check_same_model(model_or_params: Any, world: World | None = None, *, what: str = "model") -> None:
    """Raise :class:`DistributedError` on every rank unless all ranks hold the same tensors.

    Names, shapes and dtypes are compared in order against rank 0. The message names the first
    difference and the ranks involved, e.g. ``'0.weight' with shape (8, 4) float32 on rank 0 but
    '0.weight' with shape (8, 5) float32 on rank 1``. Every rank reaches the same verdict, so no rank
    is left waiting.

    Example:
        >>> import downslope as ds
        >>> from downslope import distributed as dist
        >>> dist.check_same_model([ds.zeros(3, requires_grad=True)])   # a world of one always agrees
    """
    world = world if world is not None else get_world()
    mine = _signature(named_tensors(model_or_params))
    gathered = world.comm.allgather_bytes(json.dumps(mine).encode())
    reference = json.loads(gathered[0])
    for other_rank, raw in enumerate(gathered[1:], start=1):
        theirs = json.loads(raw)
        for position in range(max(len(reference), len(theirs))):
            ref = reference[position] if position < len(reference) else None
            got = theirs[position] if position < len(theirs) else None
            if ref != got:
                raise DisagreementError(
                    f"the {what} differs across ranks (checked before training starts): tensor #{position} is "
                    f"{_describe(ref)} on rank 0 but {_describe(got)} on rank {other_rank} "
                    f"(rank 0 has {len(reference)} tensors, rank {other_rank} has {len(theirs)}). "
                    f"Build the same model on every rank."
                )


def _chunks(size: int, itemsize: int, bucket_bytes: int) -> list[tuple[int, int]]:
    step = max(1, bucket_bytes // itemsize)
    return [(start, min(start + step, size)) for start in range(0, size, step)] or [(0, 0)]


def broadcast_parameters(
    model_or_params: Any,
    root: int = 0,
    *,
    world: World | None = None,
    check: bool = True,
    bucket_bytes: int = DEFAULT_BUCKET_BYTES,
) -> None:
    """Overwrite every rank's parameters (and a Module's buffers) with rank ``root``'s, in place.

    In place means an optimizer already holding these parameters stays valid. With ``check`` (the
    default), :func:`check_same_model` runs first.

    Example:
        >>> import downslope as ds
        >>> from downslope import distributed as dist
        >>> w = ds.ones(2, requires_grad=True)
        >>> dist.broadcast_parameters([w]); w
        tensor([1., 1.], requires_grad=True)
    """
    world = world if world is not None else get_world()
    _check_root(root, world)
    if check:
        check_same_model(model_or_params, world)
    if world.world_size == 1:
        return
    _broadcast_tensors([t for _, t in named_tensors(model_or_params)], root, world, bucket_bytes)


def _broadcast_tensors(tensors: Sequence[Tensor], root: int, world: World, bucket_bytes: int) -> None:
    """Rank ``root``'s values of ``tensors`` copied into every rank's, one flat buffer per dtype."""
    for dtype, group in _by_dtype(tensors).items():
        flat = np.empty(sum(t.array.size for t in group), dtype=dtype)
        offset = 0
        for t in group:
            flat[offset : offset + t.array.size] = t.array.reshape(-1)
            offset += t.array.size
        for start, end in _chunks(flat.size, flat.itemsize, bucket_bytes):
            world.comm.bcast(flat[start:end], root)
        offset = 0
        for t in group:
            value = flat[offset : offset + t.array.size].reshape(t.array.shape)
            if t.array.flags.writeable:
                np.copyto(t.array, value)
            else:
                t.array = value.copy()
            offset += t.array.size


def broadcast_buffers(
    module: Any, root: int = 0, *, world: World | None = None, bucket_bytes: int = DEFAULT_BUCKET_BYTES
) -> None:
    """Overwrite every rank's buffers (BatchNorm's running statistics...) with rank ``root``'s, in place.

    What PyTorch's ``DistributedDataParallel`` does before each forward pass (``broadcast_buffers=True``,
    its default); :func:`sync_buffers_before_forward` does it at the same point in a hand-written loop.
    Each rank's batch statistics still normalize its own batch, as under DDP without SyncBatchNorm.

    Example:
        >>> from downslope import nn, distributed as dist
        >>> bn = nn.BatchNorm1d(3)
        >>> dist.broadcast_buffers(bn); bn.running_var
        tensor([1., 1., 1.])
    """
    world = world if world is not None else get_world()
    _check_root(root, world)
    if not hasattr(module, "named_buffers"):
        raise ArgumentTypeError(f"broadcast_buffers: expected a Module, got {type(module).__name__}")
    if world.world_size == 1:
        return
    buffers = [b for _, b in module.named_buffers()]
    if sum(b.array.nbytes for b in buffers) > bucket_bytes:
        _broadcast_tensors(buffers, root, world, bucket_bytes)
        return
    # Usually a few small buffers of two dtypes (BatchNorm's float32 statistics, its int64 count): their
    # bytes travel in one Bcast, as this runs before every training step's forward pass
    parts = [np.ascontiguousarray(b.array).reshape(-1).view(np.uint8) for b in buffers]
    flat = np.concatenate(parts) if parts else np.empty(0, np.uint8)
    world.comm.bcast(flat, root)
    offset = 0
    for b, part in zip(buffers, parts):
        value = flat[offset : offset + part.size].view(b.array.dtype).reshape(b.array.shape)
        if b.array.flags.writeable:
            np.copyto(b.array, value)
        else:
            b.array = value.copy()
        offset += part.size


def sync_buffers_before_forward(module: Any, root: int = 0, *, world: World | None = None) -> Any:
    """Copy rank ``root``'s buffers (BatchNorm's running statistics...) to every rank before a forward
    pass of ``module``, when PyTorch's ``DistributedDataParallel`` does (``broadcast_buffers=True``, its
    default): before the first forward pass, and before each one that follows a forward pass run with
    gradients enabled. So every training step starts from rank 0's statistics, and so does the first
    forward pass under ``no_grad`` after training (validation), not the ones after it.

    Without it each rank's running statistics follow that rank's batches only and drift apart. The
    broadcast is a collective: every rank must run its forward passes in the same sequence of
    gradient modes (a training step each, then validation), as under DDP.
    :func:`~downslope.distributed.fit` installs it for a model with buffers. Returns the hook's
    handle (``handle.remove()`` stops it).

    Example:
        >>> import downslope as ds
        >>> from downslope import nn, distributed as dist
        >>> model = nn.Sequential(nn.Linear(2, 4), nn.BatchNorm1d(4))
        >>> handle = dist.sync_buffers_before_forward(model)
        >>> model(ds.ones(3, 2)).shape
        downslope.Size([3, 4])
        >>> handle.remove()
    """
    from ..graph import is_grad_enabled

    world = world if world is not None else get_world()
    _check_root(root, world)
    if not hasattr(module, "register_forward_pre_hook") or not hasattr(module, "named_buffers"):
        raise ArgumentTypeError(f"sync_buffers_before_forward: expected a Module, got {type(module).__name__}")

    after_grad_forward = [True]  # DDP's require_forward_param_sync: True at first, then set by each forward

    def broadcast_before_forward(mod: Any, args: Any) -> None:
        if after_grad_forward[0]:
            broadcast_buffers(mod, root, world=world)
        after_grad_forward[0] = is_grad_enabled()

    return module.register_forward_pre_hook(broadcast_before_forward)


def _by_dtype(tensors: Sequence[Tensor]) -> dict[np.dtype, list[Tensor]]:
    groups: dict[np.dtype, list[Tensor]] = {}
    for t in tensors:
        groups.setdefault(t.array.dtype, []).append(t)
    return groups


def _check_root(root: int, world: World) -> None:
    if isinstance(root, bool) or not isinstance(root, (int, np.integer)) or not 0 <= root < world.world_size:
        raise ArgumentError(f"downslope.distributed: root must be a rank in [0, {world.world_size}), got {root!r}")


# Sets travel as lists tagged with their type, inside a tuple whose first item is this marker (the
# encoder keeps tuples as tuples); a tuple of the user's that starts with it is refused, never misread.
_SET_MARK = "\x00downslope.distributed:set\x00"
_SET_TYPES: dict[str, type] = {"set": set, "frozenset": frozenset}


def _tag_sets(obj: Any, found: list[bool]) -> Any:
    """``obj`` with every set/frozenset replaced by ``(_SET_MARK, type name, [items])``; containers
    are copied only where a set lies beneath (the caller's object is never changed)."""
    if isinstance(obj, (set, frozenset)):
        found[0] = True
        kind = "frozenset" if isinstance(obj, frozenset) else "set"
        return (_SET_MARK, kind, [_tag_sets(v, found) for v in obj])
    if type(obj) is tuple and obj and obj[0] == _SET_MARK:
        raise ArgumentError(f"a tuple starting with {_SET_MARK!r} cannot be sent: that string marks a set")
    if isinstance(obj, (list, tuple)) and type(obj) in (list, tuple):
        items = [_tag_sets(v, found) for v in obj]
        if all(a is b for a, b in zip(items, obj)):
            return obj
        return items if type(obj) is list else tuple(items)
    if isinstance(obj, dict):
        values = {k: _tag_sets(v, found) for k, v in obj.items()}
        if all(values[k] is v for k, v in obj.items()):
            return obj
        copy = obj.copy()  # an OrderedDict stays one, with its _metadata
        copy.update(values)
        if hasattr(obj, "_metadata"):
            copy._metadata = obj._metadata  # type: ignore[attr-defined]  # a state_dict OrderedDict
        return copy
    return obj


def _untag_sets(obj: Any) -> Any:
    """The inverse of :func:`_tag_sets` on a decoded tree (which is this rank's own: changed in place)."""
    if type(obj) is tuple:
        if len(obj) == 3 and obj[0] == _SET_MARK and obj[1] in _SET_TYPES and isinstance(obj[2], list):
            return _SET_TYPES[obj[1]](_untag_sets(v) for v in obj[2])
        return tuple(_untag_sets(v) for v in obj)
    if isinstance(obj, list):
        obj[:] = [_untag_sets(v) for v in obj]
    elif isinstance(obj, dict):
        for k, v in obj.items():
            obj[k] = _untag_sets(v)
    return obj


_SENDABLE = "nested dicts/lists/tuples/sets of numbers, strings, None, arrays and tensors, sent without pickle"


def encode_object(obj: Any, refusal: str | None = None) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """``(header, arrays)`` for an object collective: the header is JSON-able (the tree, each array's
    dtype and shape) or, when ``obj`` cannot be sent (or ``refusal`` gives a reason), ``{"error": reason}``,
    which the receivers turn into the same error as the sender (:func:`decode_object`)."""
    if refusal is not None:
        return {"error": refusal}, {}
    arrays: dict[str, np.ndarray] = {}
    try:
        found = [False]
        meta = encode_tree(_tag_sets(obj, found), arrays, "obj")
        specs = {key: [str(a.dtype), list(a.shape)] for key, a in arrays.items()}
        header = {"meta": meta, "arrays": specs, "sets": found[0]}
        json.dumps(header)  # refused here, on the sender, rather than as a broken message
    except (CheckpointError, ArgumentError, RecursionError, TypeError, ValueError) as exc:
        return {"error": str(exc).removeprefix("save: ").replace("can be saved", "can be sent")}, {}
    return header, arrays


def decode_object(header: dict[str, Any], arrays: dict[str, np.ndarray], what: str, sender: int) -> Any:
    """The object :func:`encode_object` encoded on rank ``sender``; raises :class:`UnsendableObjectError`
    (the same on every rank that decodes it) when the sender could not encode it."""
    if "error" in header:
        raise UnsendableObjectError(
            f"{what}: rank {sender}'s object cannot be sent: {header['error']} (the object collectives take "
            f"{_SENDABLE}); every rank raises this error here"
        )
    decoded = decode_tree(header["meta"], arrays)
    return _untag_sets(decoded) if header.get("sets") else decoded


def pack_object(obj: Any, refusal: str | None = None) -> bytes:
    """``obj`` as one message: the header's length (8 bytes), the JSON header, then each array's bytes."""
    header, arrays = encode_object(obj, refusal)
    text = json.dumps(header).encode()
    parts = [np.int64(len(text)).astype("<i8").tobytes(), text]
    parts += [np.ascontiguousarray(arrays[key]).tobytes() for key in header.get("arrays", {})]
    return b"".join(parts)


def unpack_object(data: bytes, what: str, sender: int) -> Any:
    """The object :func:`pack_object` packed on rank ``sender`` (see :func:`decode_object`)."""
    length = int(np.frombuffer(data[:8], dtype="<i8")[0])
    header = json.loads(data[8 : 8 + length])
    arrays: dict[str, np.ndarray] = {}
    offset = 8 + length
    for key, (dtype, shape) in header.get("arrays", {}).items():
        size = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
        arrays[key] = np.frombuffer(data[offset : offset + size], dtype=dtype).reshape(shape).copy()
        offset += size
    return decode_object(header, arrays, what, sender)


def broadcast_object(
    obj: Any, root: int = 0, *, world: World | None = None, what: str = "broadcast_object", refusal: str | None = None
) -> Any:
    """Rank ``root``'s ``obj`` on every rank; ``obj`` is nested dicts/lists/tuples/sets of arrays and JSON values.

    The structure travels as JSON and each array as raw bytes (no pickle), like a checkpoint file.
    The root encodes ``obj`` before anything is sent and sends a header first: when ``obj`` cannot be
    sent (or the root passes a ``refusal``, a reason its arguments are wrong), the header carries the
    reason and every rank raises the same error at the same point, so no rank is left waiting
    (``what`` names the call in that message).

    Example:
        >>> import numpy as np
        >>> from downslope import distributed as dist
        >>> dist.broadcast_object({"step": 3, "m": np.zeros(2)})["step"]
        3
    """
    world = world if world is not None else get_world()
    _check_root(root, world)
    if world.world_size == 1:
        decode_object(*encode_object(None, refusal), what, root)  # a refusal is raised in a world of one too
        return obj
    header, arrays = encode_object(obj, refusal) if world.rank == root else ({}, {})
    received = json.loads(world.comm.bcast_bytes(json.dumps(header).encode() if world.rank == root else b"", root))
    if "error" in received:
        return decode_object(received, {}, what, root)  # raises
    out: dict[str, np.ndarray] = {}
    for key, (dtype, shape) in received["arrays"].items():
        # (np.array, not ascontiguousarray, which would turn a 0-d array into 1-d on the root alone)
        buf = np.array(arrays[key], order="C", copy=True) if world.rank == root else np.empty(shape, dtype=dtype)
        world.comm.bcast(buf.reshape(-1), root)
        out[key] = buf
    return decode_object(received, out, what, root)


def broadcast_optimizer_state(optimizer: OptimizerLike, root: int = 0, *, world: World | None = None) -> None:
    """Load rank ``root``'s ``optimizer.state_dict()`` into the optimizer on every other rank.

    Needed when training resumes from a checkpoint that only rank 0 read; on a fresh optimizer the
    state is empty and this only checks that the hyperparameters agree.
    """
    world = world if world is not None else get_world()
    if not (hasattr(optimizer, "state_dict") and hasattr(optimizer, "load_state_dict")):
        raise ArgumentTypeError(
            f"broadcast_optimizer_state: expected an optimizer with state_dict()/load_state_dict(), "
            f"got {type(optimizer).__name__}"
        )
    if world.world_size == 1:
        return
    state = broadcast_object(optimizer.state_dict() if world.rank == root else None, root, world=world)
    if world.rank != root:
        optimizer.load_state_dict(state)


class GradientAllreducer:
    """Average the ``.grad`` of a fixed list of parameters over all ranks, in flat buckets.

    The layout (which parameter sits where in the flat buffer) is computed once; each call packs
    the gradients, runs one in-place ``Allreduce`` per bucket, scales by ``1/world_size`` and writes
    the averages back into ``.grad``. A parameter whose gradient is None on every rank (unused in
    the forward pass) keeps ``grad=None``, so optimizers skip it as they would in one process; if
    only some ranks have it, the others count as zeros. ``seconds`` accumulates the time spent.

    Example:
        >>> import downslope as ds
        >>> from downslope import distributed as dist
        >>> w = ds.ones(3, requires_grad=True); (2 * w).sum().backward()
        >>> dist.GradientAllreducer([w]).reduce(); w.grad
        tensor([2., 2., 2.])
    """

    def __init__(
        self,
        params: Iterable[Tensor] | Any,
        *,
        world: World | None = None,
        bucket_bytes: int = DEFAULT_BUCKET_BYTES,
        replace_grads: bool = False,
    ) -> None:
        self.world = world if world is not None else get_world()
        # True when reduce() runs inside backward (DDP's hook): a .grad array may still be shared with a
        # leaf that backward has yet to reach, so the means go into new arrays instead of over it
        self.replace_grads = bool(replace_grads)
        if bucket_bytes <= 0:
            raise ArgumentError(f"GradientAllreducer: bucket_bytes must be positive, got {bucket_bytes}")
        named = named_tensors(params, buffers=False)
        self.params = [t for _, t in named if t.requires_grad]
        if not self.params:
            raise ArgumentError("GradientAllreducer: none of the given tensors requires grad; nothing to average")
        self.bucket_bytes = int(bucket_bytes)
        # One flat buffer per dtype; the first also carries one "has a gradient" flag per parameter
        # at its end, so the flags ride in the same Allreduce instead of costing one of their own.
        self._groups: list[tuple[np.ndarray, list[tuple[int, Tensor]], int]] = []
        for i, (dtype, group) in enumerate(_by_dtype(self.params).items()):
            slots, offset = [], 0
            for t in group:
                slots.append((offset, t))
                offset += t.array.size
            flat = np.zeros(offset + (len(self.params) if i == 0 else 0), dtype=dtype)
            self._groups.append((flat, slots, offset))
        self._flag_index = {id(t): k for k, t in enumerate(self.params)}
        self.seconds = 0.0
        self.calls = 0

    @property
    def num_buckets(self) -> int:
        """Allreduce calls per :meth:`reduce`."""
        return sum(len(_chunks(flat.size, flat.itemsize, self.bucket_bytes)) for flat, _, _ in self._groups)

    def reduce(self) -> None:
        """Replace every parameter's ``.grad`` with its average over ranks (no-op in a world of one)."""
        if self.world.world_size == 1:
            return
        started = time.perf_counter()
        comm = self.world.comm
        first_flat, _, first_end = self._groups[0]
        flags = first_flat[first_end:]
        for flat, slots, _ in self._groups:
            for offset, t in slots:
                part = flat[offset : offset + t.array.size]
                grad = t.grad
                if grad is None:
                    part.fill(0)
                    flags[self._flag_index[id(t)]] = 0
                else:
                    if grad.shape != t.shape:
                        raise DistributedError(
                            f"allreduce_gradients: a gradient of shape {tuple(grad.shape)} for a parameter of shape {tuple(t.shape)}"
                        )
                    part[...] = grad.array.reshape(-1)
                    flags[self._flag_index[id(t)]] = 1
            for start, end in _chunks(flat.size, flat.itemsize, self.bucket_bytes):
                comm.allreduce_sum(flat[start:end])
        scale_by = 1.0 / self.world.world_size
        for flat, slots, end in self._groups:
            data = flat[:end]
            data *= data.dtype.type(scale_by)  # a dtype scalar: no float64 promotion of the buffer
            for offset, t in slots:
                if flags[self._flag_index[id(t)]] == 0:
                    continue  # no rank had a gradient: leave None, as a single process would
                mean = flat[offset : offset + t.array.size].reshape(t.array.shape)
                grad = t.grad
                if grad is None or self.replace_grads or grad.requires_grad or not grad.array.flags.writeable:
                    t.grad = wrap_array(mean.copy())
                else:
                    np.copyto(grad.array, mean)
        self.seconds += time.perf_counter() - started
        self.calls += 1


_reducers: dict[tuple[int, ...], GradientAllreducer] = {}


def allreduce_gradients(
    params: Iterable[Tensor] | Any, *, world: World | None = None, bucket_bytes: int = DEFAULT_BUCKET_BYTES
) -> None:
    """Average ``.grad`` over all ranks (call between ``loss.backward()`` and ``optimizer.step()``).

    Accepts a Module or an iterable of parameters. The packing layout is cached per parameter list,
    so calling this every step costs one pack, the Allreduce(s), and one unpack.

    Example:
        >>> import downslope as ds
        >>> from downslope import distributed as dist
        >>> w = ds.ones(2, requires_grad=True); (w * w).sum().backward()
        >>> dist.allreduce_gradients([w]); w.grad
        tensor([2., 2.])
    """
    world = world if world is not None else get_world()
    plist = [t for _, t in named_tensors(params, buffers=False)]
    key = (id(world), int(bucket_bytes), *map(id, plist))
    reducer = _reducers.get(key)
    if reducer is None:
        if len(_reducers) >= 8:
            _reducers.clear()
        reducer = _reducers[key] = GradientAllreducer(plist, world=world, bucket_bytes=bucket_bytes)
    reducer.reduce()


def allreduce_sum(values: Any, *, world: World | None = None) -> np.ndarray:
    """Elementwise sum over ranks of a number or array, in float64 (exact for counts).

    Example:
        >>> from downslope import distributed as dist
        >>> dist.allreduce_sum([2.5, 4]).tolist()
        [2.5, 4.0]
    """
    world = world if world is not None else get_world()
    buf = np.array(values, dtype=np.float64, copy=True).reshape(-1)
    world.comm.allreduce_sum(buf)
    return buf.reshape(np.shape(values))


def reduce_metrics(sums: Mapping[str, float], count: float, *, world: World | None = None) -> dict[str, float]:
    """Global means from per-rank sums: ``{name: sum over ranks of sums[name] / sum of count}``.

    Pass ``loss * n`` (not the mean) for each metric and the rank's sample count ``n``: the result
    is the mean over every sample of every rank, even when ranks saw different numbers of samples.
    Every rank must pass the same names.

    Example:
        >>> from downslope import distributed as dist
        >>> dist.reduce_metrics({"loss": 6.0, "accuracy": 3.0}, count=4)
        {'accuracy': 0.75, 'loss': 1.5}
    """
    world = world if world is not None else get_world()
    names = sorted(sums)
    if world.world_size > 1:
        everyone = world.comm.allgather_bytes(json.dumps(names).encode())
        for other, raw in enumerate(everyone):
            if json.loads(raw) != names:
                raise DisagreementError(
                    f"reduce_metrics: rank {world.rank} reports metrics {names} but rank {other} reports "
                    f"{json.loads(raw)}; every rank must reduce the same metrics"
                )
    totals = allreduce_sum([float(sums[n]) for n in names] + [float(count)], world=world)
    if totals[-1] <= 0:
        raise ArgumentError(f"reduce_metrics: the total count over all ranks is {totals[-1]}; nothing to average")
    return {name: float(totals[i] / totals[-1]) for i, name in enumerate(names)}
