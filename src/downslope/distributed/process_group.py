"""``torch.distributed``'s core calls over the MPI job: init_process_group, all_reduce, broadcast...

A script written for PyTorch's process group runs unchanged under ``mpiexec -n W``: the launcher
gives every process its rank and the world size, so ``init_process_group`` needs none of torchrun's
settings (backend, init_method, MASTER_ADDR...); it accepts them and joins MPI's world. The
collectives follow torch's semantics: the tensor argument is written in place, on every rank (on
``dst`` only for :func:`reduce`).

What differs, each refused with a message saying what to do instead: the collectives are blocking
(``async_op=True`` is refused: the result is there when the call returns), they always span every
rank (no subgroups: ``group`` must be None or ``group.WORLD``), tensors live on the host, and
``all_gather_object``/``broadcast_object_list`` carry JSON values, tuples, sets and arrays (no pickle),
as :func:`~downslope.distributed.broadcast_object` does; an object of another type is refused on every
rank at the same call.

Every collective here, in torch_calls.py and object_calls.py (and ``barrier``) first compares the
ranks' calls in one small Allgather: another collective, another tensor shape or dtype, another root
or op, or arguments one rank refused (a list on a rank that must pass none...) make every rank raise
before any data moves, where MPI would pair the calls by bytes alone and return garbage, a wrong value
on one rank, or wait forever. ``send``/``recv`` carry the tensor's dtype and shape with the data: a
receiving tensor that does not fit is refused on the receiver.
"""

from __future__ import annotations

import enum
import json
import os
import zlib
from collections.abc import MutableMapping, MutableSequence, Sequence
from typing import Any

import numpy as np

from ..errors import ArgumentError, ArgumentTypeError, DeviceError
from ..tensor import Tensor
from . import collectives, world
from .collectives import broadcast_object
from .world import CollectiveMismatchError, DistributedError, World, init


class ReduceOp(enum.Enum):
    """``torch.distributed.ReduceOp``: how :func:`all_reduce` and :func:`reduce` combine the ranks' values.

    ``AVG`` is the sum divided by the world size (floating tensors); ``BAND``/``BOR``/``BXOR`` are
    bitwise (integer tensors). PyTorch's ``PREMUL_SUM`` (an NCCL scaling trick) is not provided.
    """

    SUM = "sum"
    AVG = "avg"
    PRODUCT = "prod"
    MIN = "min"
    MAX = "max"
    BAND = "band"
    BOR = "bor"
    BXOR = "bxor"


class _WorldGroup:
    """The group of every rank, ``group.WORLD``: the only group there is."""

    _downslope_world_group = True

    def __repr__(self) -> str:
        return "<downslope.distributed.group.WORLD>"


class group:  # noqa: N801 (torch.distributed.group's name)
    """``torch.distributed.group``: ``group.WORLD``, the default (and only) group."""

    WORLD = _WorldGroup()


_BACKENDS = {"mpi", "gloo", "nccl", "ucc", "xccl"}
_initialized_here = False  # init_process_group was called (and not destroyed): a second call is an error


def _check_group(group_: Any, what: str) -> None:
    if group_ is not None and not getattr(group_, "_downslope_world_group", False):
        raise DistributedError(
            f"{what}: process subgroups are not supported (got group={group_!r}); every collective is over all "
            "ranks: pass group=None (or group.WORLD)"
        )


def _check_sync(async_op: Any, what: str) -> None:
    if async_op:
        raise DistributedError(
            f"{what}: async_op=True is not supported (downslope's collectives are blocking, so there is no Work "
            "handle to wait on); call it with async_op=False: the result is in place when the call returns"
        )


def _check_backend(backend: Any) -> None:
    if backend is None:
        return
    if not isinstance(backend, str):
        raise ArgumentTypeError(f"init_process_group: backend must be a string such as 'gloo', got {backend!r}")
    # torch's forms: "gloo", or per device "cpu:gloo,cuda:nccl"
    names = [part.split(":")[-1].strip().lower() for part in backend.split(",")]
    unknown = [name for name in names if name not in _BACKENDS]
    if unknown:
        raise ArgumentError(
            f"init_process_group: unknown backend {backend!r}; expected one of {sorted(_BACKENDS)} (downslope "
            "accepts any of them and always talks over MPI)"
        )


def _env_int(name: str) -> int | None:
    value = os.environ.get(name, "").strip()
    return int(value) if value.isdigit() else None


# torchrun's variables and where MPI launchers keep the same numbers (Open MPI; MPICH/Intel MPI's Hydra)
_TORCHRUN_FROM_LAUNCHER = {
    "RANK": ("OMPI_COMM_WORLD_RANK", "PMI_RANK"),
    "WORLD_SIZE": ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE"),
    "LOCAL_RANK": ("OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID"),
    "LOCAL_WORLD_SIZE": ("OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS"),
}


def export_torchrun_environment(environ: MutableMapping[str, str] | None = None) -> None:
    """Under an MPI launcher, set torchrun's ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` and ``LOCAL_WORLD_SIZE``
    from the launcher's own variables (those already set are kept), so that a script written for
    torchrun (``int(os.environ["LOCAL_RANK"])``) runs under ``mpiexec`` unchanged. Runs when this
    package is imported; outside a launcher nothing is set.

    Example:
        >>> from downslope.distributed.process_group import export_torchrun_environment
        >>> env = {"OMPI_COMM_WORLD_RANK": "1", "OMPI_COMM_WORLD_SIZE": "2", "OMPI_COMM_WORLD_LOCAL_RANK": "1"}
        >>> export_torchrun_environment(env); env["RANK"], env["WORLD_SIZE"], env["LOCAL_RANK"]
        ('1', '2', '1')
    """
    environ = os.environ if environ is None else environ
    for name, sources in _TORCHRUN_FROM_LAUNCHER.items():
        for source in sources:
            value = environ.get(source, "").strip()
            if value.isdigit():
                environ.setdefault(name, value)
                break


export_torchrun_environment()


def init_process_group(
    backend: str | None = None,
    init_method: str | None = None,
    timeout: Any = None,
    world_size: int = -1,
    rank: int = -1,
    store: Any = None,
    group_name: str = "",
    pg_options: Any = None,
    device_id: Any = None,
) -> None:
    """``torch.distributed.init_process_group``: join the MPI job (:func:`~downslope.distributed.init`).

    ``backend`` ('gloo', 'mpi', 'nccl'...), ``init_method``, ``store``, ``group_name``, ``pg_options``
    and ``device_id`` are accepted and not needed: ``mpiexec`` gives every process its rank and the
    world size. ``world_size``/``rank``, when given, must be MPI's (a mismatch is an error, as is a
    torchrun launch: start the script with ``mpiexec -n W``). ``timeout`` (a ``timedelta`` or seconds)
    is how long a collective waits for the others before the job ends.

    Calling it twice without :func:`destroy_process_group` in between is an error, as in PyTorch.
    """
    global _initialized_here
    if _initialized_here:
        raise DistributedError("init_process_group: trying to initialize the default process group twice!")
    _check_backend(backend)
    joined = init(timeout=timeout)
    torchrun_size = _env_int("WORLD_SIZE")
    if joined.world_size == 1 and torchrun_size is not None and torchrun_size > 1 and world_size in (-1, None):
        world_size = torchrun_size  # a torchrun launch: refused below, since downslope cannot join it
    for name, given, actual in (("world_size", world_size, joined.world_size), ("rank", rank, joined.rank)):
        if given not in (-1, None) and given != actual:
            raise DistributedError(
                f"init_process_group: {name}={given} was asked for, but MPI's world gives {actual} (downslope's "
                f"process group is the MPI job: launch the script with mpiexec -n W, not torchrun, and let it "
                f"set the rank and world size)"
            )
    _initialized_here = True


def destroy_process_group(group: Any = None) -> None:
    """``torch.distributed.destroy_process_group``: forget the process group (``is_initialized()`` is
    False again; :func:`init_process_group` may be called again). MPI itself stays up until the
    process exits, so a later ``init_process_group`` joins the same job."""
    global _initialized_here
    _check_group(group, "destroy_process_group")
    world._world = None
    collectives._reducers.clear()  # their World is the one forgotten
    _initialized_here = False


def get_backend(group: Any = None) -> str:
    """``torch.distributed.get_backend``: ``"mpi"`` under an MPI launcher, ``"single"`` in a plain process
    (whatever backend name was given to :func:`init_process_group`). Raises before it, as torch's."""
    _check_group(group, "get_backend")
    return world.initialized_world("get_backend").backend


def _check_tensor(tensor: Any, what: str) -> np.dtype:
    """The tensor's dtype, after checking that the collectives take it (in a world of one too)."""
    if not isinstance(tensor, Tensor):
        raise ArgumentTypeError(f"{what}: expected a Tensor, got {type(tensor).__name__}")
    if tensor.array.dtype == np.bool_:
        raise ArgumentTypeError(f"{what}: bool tensors are not supported; convert to an integer dtype first")
    return np.dtype(tensor.array.dtype)


def _host_buffer(tensor: Tensor, what: str) -> tuple[np.ndarray, np.ndarray]:
    """``(the tensor's array, a contiguous buffer MPI can work in)``: the same array when possible."""
    array = tensor.array
    if not isinstance(array, np.ndarray):
        raise DeviceError(
            f"{what}: the tensor is on {tensor.device}; the MPI collectives work on host tensors: pass "
            "tensor.cpu() and copy the result back"
        )
    if not array.flags.writeable:
        raise ArgumentError(f"{what}: the tensor's memory is read-only; the result is written into it in place")
    if array.dtype == np.float16:  # MPI has no half-precision type: combined in float32, stored back rounded
        return array, array.astype(np.float32)
    return array, array if array.flags.c_contiguous else np.ascontiguousarray(array)


def _op_name(op: Any, dtype: np.dtype, what: str) -> str:
    if not isinstance(op, ReduceOp):
        raise ArgumentTypeError(f"{what}: op must be a ReduceOp (ReduceOp.SUM, AVG, PRODUCT, MIN, MAX...), got {op!r}")
    integer = np.issubdtype(dtype, np.integer)
    if op in (ReduceOp.BAND, ReduceOp.BOR, ReduceOp.BXOR) and not integer:
        raise ArgumentTypeError(f"{what}: {op} is bitwise and needs an integer tensor, got {dtype}")
    if op is ReduceOp.AVG and not np.issubdtype(dtype, np.floating):
        raise ArgumentTypeError(f"{what}: ReduceOp.AVG needs a floating tensor, got {dtype}; use ReduceOp.SUM")
    return "sum" if op is ReduceOp.AVG else op.value


def _code(text: str) -> int:
    return zlib.crc32(text.encode())


def _describe_call(call: dict[str, Any]) -> str:
    text = call["call"] + (f" with {call['subject']}" if call["subject"] else "")
    if call["op"]:
        text += f", op={call['op']}"
    if call["root"] is not None:
        text += f", {call['root_name']}={call['root']}"
    return text


def tensor_subject(tensor: Any, noun: str = "tensor") -> str:
    """How a call's tensor reads in a mismatch message ("a (4,) float32 tensor"); also what the ranks
    compare, so two tensors of another shape or dtype make two calls that do not match."""
    array = getattr(tensor, "array", None)
    if array is None or not hasattr(array, "shape"):
        return f"a {type(tensor).__name__} as the {noun}"
    return f"a {tuple(int(n) for n in array.shape)} {array.dtype} {noun}"


def refused(check: Any) -> Exception | None:
    """The argument error ``check()`` raises on this rank, or None: a collective carries it into
    :func:`_check_calls_match`, so that the other ranks learn of it instead of waiting for this one."""
    try:
        check()
    except (ArgumentError, ArgumentTypeError, DeviceError) as exc:
        return exc
    return None


_call_codes: dict[tuple[Any, ...], np.ndarray] = {}


def _check_calls_match(
    w: World,
    what: str,
    tensor: Tensor | None = None,
    *,
    op: ReduceOp | None = None,
    root: int | None = None,
    root_name: str = "",
    subject: str | None = None,
    refusal: Exception | None = None,
) -> None:
    """Refuse, on every rank alike and before any data moves, a collective whose ranks passed tensors of
    different shapes or dtypes, another op or root, or are in another of these calls; and one whose
    arguments a rank refused (``refusal``: that rank's error, which it raises; the others raise a
    :class:`CollectiveMismatchError` naming it).

    MPI sees only bytes: a float32 tensor broadcast into a float64 one, or into a larger one, arrives as
    garbage with no error, and a mismatch MPI does notice (a smaller receiver) is raised on that rank
    alone while the others return wrong values. One small Allgather of a few numbers per call (each
    rank's call, op, root, arguments, refusal) lets every rank reach the same verdict instead.
    ``subject`` describes the arguments that must match (by default ``tensor``'s shape and dtype)."""
    if subject is None:
        subject = tensor_subject(tensor)
    op_name = "" if op is None else getattr(op, "name", repr(op))
    # a root that is not a rank was refused on its rank (``refusal``): it still takes part as "no rank"
    root = int(root) if isinstance(root, (int, np.integer)) and not isinstance(root, bool) else root
    if root is not None and not isinstance(root, int):
        root = -2
    reason = "" if refusal is None else f"{type(refusal).__name__}: {refusal}"
    key = (what, op_name, root, subject, reason)
    mine = _call_codes.get(key)
    if mine is None:  # a loop calls with the same arguments: its numbers are made once
        if len(_call_codes) >= 256:
            _call_codes.clear()
        # six numbers for every call, whichever it is, so that two ranks in two different calls meet in the
        # same Allgather (of the same size) and see that their calls differ
        mine = _call_codes[key] = np.array(
            [_code(what), _code(op_name), -1 if root is None else int(root), _code(subject),
             zlib.adler32(subject.encode()), _code(reason)],
            dtype=np.int64,
        )  # fmt: skip
    gather_fixed = getattr(w.comm, "allgather_fixed", None)
    if gather_fixed is not None:
        with world.naming_the_call(what):
            everyone = gather_fixed(mine)
    else:  # a communicator with only the byte exchange
        everyone = np.stack([np.frombuffer(raw, dtype=np.int64) for raw in w.comm.allgather_bytes(mine.tobytes())])
    if everyone.shape[0] == 1 or (everyone[1:] == everyone[0]).all():
        if refusal is not None:  # every rank refused the same arguments: each raises its own error
            setattr(refusal, world.ON_EVERY_RANK, True)
            raise refusal
        return
    # every rank gathered the same rows, so every rank is here: one more exchange gives the message its words
    call = {
        "call": what, "subject": subject, "op": op_name, "root": root,
        "root_name": root_name, "refusal": reason,
    }  # fmt: skip
    calls = [json.loads(raw) for raw in w.comm.allgather_bytes(json.dumps(call).encode())]
    refusing = next((r for r, c in enumerate(calls) if c["refusal"]), None)
    if refusing is not None:
        if refusal is not None:
            setattr(refusal, world.ON_EVERY_RANK, True)
            raise refusal
        raise CollectiveMismatchError(
            f"{what}: rank {refusing} refused its arguments, so every rank refuses the call (nothing was sent): "
            f"{calls[refusing]['refusal']}",
            on_every_rank=True,
        )
    other = next(r for r in range(1, len(calls)) if not bool((everyone[r] == everyone[0]).all()))
    raise CollectiveMismatchError(
        f"{what}: the ranks' calls do not match: rank 0 called {_describe_call(calls[0])}, but rank {other} called "
        f"{_describe_call(calls[other])}. Every rank must make the same call at this point, with the same arguments "
        "(tensors of the same shape and dtype, the same op and root); nothing was sent. Is there a distributed "
        "collective mismatch in your code?",
        on_every_rank=True,
    )


def allgather_same(w: World, mine: np.ndarray, what: str) -> np.ndarray:
    """Every rank's ``mine`` (the same shape and dtype on every rank, checked before) stacked in rank order,
    in one Allgather."""
    exchange = getattr(w.comm, "allgather_array", None)
    if exchange is None:  # a communicator with only the byte exchange
        raw = w.comm.allgather_bytes(mine.tobytes())
        return np.stack([np.frombuffer(data, dtype=mine.dtype).reshape(mine.shape) for data in raw])
    everyone = np.empty((w.world_size, *mine.shape), dtype=mine.dtype)
    with world.naming_the_call(what):
        exchange(np.ascontiguousarray(mine), everyone)
    return everyone


def _reduce_into(buf: np.ndarray, op: ReduceOp, name: str, w: World) -> None:
    w.comm.allreduce(buf.reshape(-1), name)
    if op is ReduceOp.AVG:
        buf /= buf.dtype.type(w.world_size)


def all_reduce(tensor: Tensor, op: ReduceOp = ReduceOp.SUM, group: Any = None, async_op: bool = False) -> None:
    """``torch.distributed.all_reduce``: combine ``tensor`` over all ranks with ``op``, in place on every rank.

    Example:
        >>> import downslope as ds
        >>> from downslope import distributed as dist
        >>> dist.init_process_group("gloo")                       # a plain process: a world of one
        >>> t = ds.tensor([1.0, 2.0]); dist.all_reduce(t, op=dist.ReduceOp.SUM); t
        tensor([1., 2.])
        >>> dist.destroy_process_group()
    """
    _check_group(group, "all_reduce")
    _check_sync(async_op, "all_reduce")
    w = world.initialized_world("all_reduce")
    refusal = refused(lambda: _op_name(op, _check_tensor(tensor, "all_reduce"), "all_reduce"))
    if w.world_size == 1:
        if refusal is not None:
            raise refusal
        return  # every op leaves a world of one's tensor as it is (the data is not touched: any device)
    refusal = refusal or refused(lambda: _host_buffer(tensor, "all_reduce"))
    _check_calls_match(w, "all_reduce", tensor, op=op, refusal=refusal)
    name = _op_name(op, _check_tensor(tensor, "all_reduce"), "all_reduce")
    array, buf = _host_buffer(tensor, "all_reduce")
    with world.naming_the_call("all_reduce"):
        _reduce_into(buf, op, name, w)
    if buf is not array:
        np.copyto(array, buf, casting="unsafe")


def _check_rooted(tensor: Tensor, root: Any, w: World, what: str, op: Any = None) -> None:
    """The local checks of a rooted call (the root is a rank, the tensor one the collectives take)."""
    collectives._check_root(root, w)
    dtype = _check_tensor(tensor, what)
    if op is not None:
        _op_name(op, dtype, what)


def reduce(tensor: Tensor, dst: int, op: ReduceOp = ReduceOp.SUM, group: Any = None, async_op: bool = False) -> None:
    """``torch.distributed.reduce``: ``tensor`` on rank ``dst`` becomes the combination over all ranks;
    the other ranks' tensors are left as they were."""
    _check_group(group, "reduce")
    _check_sync(async_op, "reduce")
    w = world.initialized_world("reduce")
    refusal = refused(lambda: _check_rooted(tensor, dst, w, "reduce", op))
    if w.world_size == 1:
        if refusal is not None:
            raise refusal
        return
    refusal = refusal or refused(lambda: _host_buffer(tensor, "reduce"))
    _check_calls_match(w, "reduce", tensor, op=op, root=dst, root_name="dst", refusal=refusal)
    name = _op_name(op, _check_tensor(tensor, "reduce"), "reduce")
    array, buf = _host_buffer(tensor, "reduce")
    work = buf.copy() if buf is array else buf
    with world.naming_the_call("reduce"):
        _reduce_into(work, op, name, w)
    if w.rank == dst:
        np.copyto(array, work, casting="unsafe")


def broadcast(tensor: Tensor, src: int, group: Any = None, async_op: bool = False) -> None:
    """``torch.distributed.broadcast``: rank ``src``'s ``tensor`` copied into ``tensor`` on every rank."""
    _check_group(group, "broadcast")
    _check_sync(async_op, "broadcast")
    w = world.initialized_world("broadcast")
    refusal = refused(lambda: _check_rooted(tensor, src, w, "broadcast"))
    if w.world_size == 1:
        if refusal is not None:
            raise refusal
        return
    refusal = refusal or refused(lambda: _host_buffer(tensor, "broadcast"))
    _check_calls_match(w, "broadcast", tensor, root=src, root_name="src", refusal=refusal)
    array, buf = _host_buffer(tensor, "broadcast")
    with world.naming_the_call("broadcast"):
        w.comm.bcast(buf.reshape(-1), src)
    if buf is not array:
        np.copyto(array, buf, casting="unsafe")


def check_tensor_list(tensors: Any, like: Tensor, world_size: int, what: str) -> list[Tensor]:
    """``tensors``, after checking that it is a list of ``world_size`` tensors of ``like``'s shape and dtype
    (``what`` names the list in errors: "all_gather: tensor_list")."""
    dtype = _check_tensor(like, what.partition(":")[0])
    if not isinstance(tensors, Sequence) or isinstance(tensors, (str, bytes)) or len(tensors) != world_size:
        got = f"{len(tensors)}" if isinstance(tensors, Sequence) else type(tensors).__name__
        raise ArgumentError(f"{what}: expected a list of world_size={world_size} tensors, got {got}")
    for r, t in enumerate(tensors):
        if _check_tensor(t, f"{what}[{r}]") != dtype or tuple(t.shape) != tuple(like.shape):
            raise ArgumentError(
                f"{what}[{r}] is {tuple(t.shape)} {t.array.dtype}, expected the tensor's {tuple(like.shape)} {dtype}"
            )
    return list(tensors)


def all_gather(tensor_list: MutableSequence[Tensor], tensor: Tensor, group: Any = None, async_op: bool = False) -> None:
    """``torch.distributed.all_gather``: ``tensor_list[r]`` becomes rank r's ``tensor``, on every rank.

    ``tensor_list`` holds ``world_size`` tensors of ``tensor``'s shape and dtype, written in place.
    """
    _check_group(group, "all_gather")
    _check_sync(async_op, "all_gather")
    w = world.initialized_world("all_gather")

    def check() -> None:
        check_tensor_list(tensor_list, tensor, w.world_size, "all_gather: tensor_list")
        if not isinstance(tensor_list, MutableSequence):
            raise ArgumentTypeError(f"all_gather: tensor_list must be a list, got {type(tensor_list).__name__}")
        if w.world_size > 1:
            _host_buffer(tensor, "all_gather")
            for r, t in enumerate(tensor_list):
                _host_buffer(t, f"all_gather: tensor_list[{r}]")

    refusal = refused(check)
    if w.world_size == 1:
        if refusal is not None:
            raise refusal
        tensor_list[0].array[...] = tensor.array  # same device and dtype: no host round trip
        return
    _check_calls_match(w, "all_gather", tensor, refusal=refusal)
    _, mine = _host_buffer(tensor, "all_gather")
    everyone = allgather_same(w, mine, "all_gather")
    for r, t in enumerate(tensor_list):
        np.copyto(_host_buffer(t, f"all_gather: tensor_list[{r}]")[0], everyone[r], casting="unsafe")


def _object_list_subject(object_list: Any) -> str:
    return f"a list of {len(object_list)} objects" if isinstance(object_list, Sequence) else ""


def all_gather_object(object_list: MutableSequence[Any], obj: Any, group: Any = None) -> None:
    """``torch.distributed.all_gather_object``: ``object_list[r]`` becomes rank r's ``obj``, on every rank.

    ``obj`` is nested dicts/lists/tuples/sets of numbers, strings, None and arrays (sent as JSON and raw
    bytes: downslope never pickles), as :func:`~downslope.distributed.broadcast_object` takes. The
    ranks' calls are compared first (as the tensor collectives'), then every rank's packed object is
    exchanged: an object that cannot be sent is refused on every rank.
    """
    _check_group(group, "all_gather_object")
    w = world.initialized_world("all_gather_object")

    def check() -> None:
        if not isinstance(object_list, MutableSequence) or len(object_list) != w.world_size:
            got = len(object_list) if isinstance(object_list, MutableSequence) else type(object_list).__name__
            raise ArgumentError(
                f"all_gather_object: object_list must be a list of world_size={w.world_size} entries, got {got}"
            )

    refusal = refused(check)
    if w.world_size == 1:
        if refusal is not None:
            raise refusal
        object_list[0] = obj
        return
    _check_calls_match(w, "all_gather_object", subject="", refusal=refusal)
    # one exchange of every rank's packed object; a rank whose object cannot be sent sends the reason
    # instead, so every rank raises the same error here
    everyone = w.comm.allgather_bytes(collectives.pack_object(obj))
    gathered = [collectives.unpack_object(data, "all_gather_object", r) for r, data in enumerate(everyone)]
    object_list[:] = gathered


def broadcast_object_list(
    object_list: MutableSequence[Any], src: int = 0, group: Any = None, device: Any = None
) -> None:
    """``torch.distributed.broadcast_object_list``: every rank's ``object_list`` becomes rank ``src``'s, in
    place (the entries as :func:`all_gather_object` takes them; the lists have the same length on every
    rank, compared before anything is sent)."""
    _check_group(group, "broadcast_object_list")
    w = world.initialized_world("broadcast_object_list")

    def check() -> None:
        collectives._check_root(src, w)
        if not isinstance(object_list, MutableSequence):
            raise ArgumentTypeError(f"broadcast_object_list: expected a list, got {type(object_list).__name__}")

    refusal = refused(check)
    if w.world_size == 1:
        if refusal is not None:
            raise refusal
    else:
        _check_calls_match(
            w, "broadcast_object_list", subject=_object_list_subject(object_list), root=src, root_name="src",
            refusal=refusal,
        )  # fmt: skip
    received = broadcast_object(
        list(object_list) if w.rank == src else None, root=src, world=w, what="broadcast_object_list"
    )
    object_list[:] = received


def new_group(*args: Any, **kwargs: Any) -> None:
    """``torch.distributed.new_group``: refused; downslope's collectives always span every rank."""
    raise DistributedError(
        "new_group: process subgroups are not supported; every collective is over all ranks (group=None)"
    )


__all__ = [
    "ReduceOp", "group", "init_process_group", "destroy_process_group", "get_backend", "all_reduce", "reduce",
    "broadcast", "all_gather", "all_gather_object", "broadcast_object_list", "new_group",
]  # fmt: skip
