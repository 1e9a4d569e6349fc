"""``torch.distributed``'s other calls that real scripts use: gather/scatter, the tensor forms of
all_gather and reduce_scatter, all_to_all_single, blocking send/recv, monitored_barrier, and the
launcher and backend queries.

They follow :mod:`.process_group`'s rules: blocking, over every rank (``group`` None or
``group.WORLD``), on host tensors, written in place with torch's semantics. The non-blocking forms
(``isend``/``irecv``, ``async_op=True``) are refused with what to write instead.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import MutableSequence, Sequence
from typing import Any

import numpy as np

from ..errors import ArgumentError, ArgumentTypeError
from ..tensor import Tensor
from . import collectives, world
from .process_group import (
    ReduceOp,
    _check_calls_match,
    _check_group,
    _check_sync,
    _check_tensor,
    _host_buffer,
    _op_name,
    _reduce_into,
    allgather_same,
    check_tensor_list,
    group,
    refused,
)
from .world import CollectiveMismatchError, DisagreementError, DistributedError

_DEFAULT_TAG = 0


def _host_copy(tensor: Tensor, what: str) -> np.ndarray:
    """A contiguous host copy of the tensor's values (float16 as float32, as the collectives combine it)."""
    _, buf = _host_buffer(tensor, what)
    return np.array(buf, order="C", copy=True)


def _write(target: Tensor, values: np.ndarray, what: str) -> None:
    array, _ = _host_buffer(target, what)
    if array.size != values.size:
        raise ArgumentError(f"{what}: the output holds {array.size} elements, {values.size} were received")
    np.copyto(array, values.reshape(array.shape), casting="unsafe")


def _gathered(mine: np.ndarray, w: world.World, what: str) -> list[np.ndarray]:
    """Every rank's array of ``mine``'s shape and dtype, on every rank (the ranks' calls compared first:
    refused alike everywhere when one rank's shape or dtype differs)."""
    _check_calls_match(w, what, subject=f"a {tuple(int(n) for n in mine.shape)} {mine.dtype} tensor")
    return list(allgather_same(w, mine, what))


def _root(given: int | None, group_given: int | None) -> int:
    """The root rank from torch's two spellings (``dst``/``group_dst``, the same in the one group); 0 by default."""
    if given is not None:
        return given
    return 0 if group_given is None else group_given


def _rooted(
    what: str, tensor: Tensor, tensors: Any, root: int | None, group_root: int | None, group: Any, async_op: Any
) -> tuple[world.World, int, list[Tensor] | None, Exception | None]:
    """The checks gather and scatter share: (the world, the root rank, the root's checked list of
    world_size tensors of ``tensor``'s shape and dtype (None elsewhere: the other ranks must pass no list,
    as torch.distributed asks), and this rank's refusal of its arguments, if any)."""
    role, list_name = ("destination", "dst") if what == "gather" else ("source", "src")
    _check_group(group, what)
    _check_sync(async_op, what)
    w = world.initialized_world(what)
    rank = _root(root, group_root)
    checked: list[list[Tensor]] = []

    def check() -> None:
        collectives._check_root(rank, w)
        _check_tensor(tensor, what)
        if w.rank == rank:
            checked.append(check_tensor_list(tensors, tensor, w.world_size, f"{what}: {what}_list"))
        elif tensors:
            raise ArgumentError(
                f"{what}: {what}_list is given on rank {w.rank}, which is not the {role} ({list_name}={rank}); "
                f"pass {what}_list=None on the other ranks, as torch.distributed asks"
            )
        if w.world_size > 1:
            for r, t in enumerate([tensor, *(checked[0] if checked else [])]):
                _host_buffer(t, what if r == 0 else f"{what}: {what}_list[{r - 1}]")

    refusal = refused(check)
    return w, rank, checked[0] if checked else None, refusal


def gather(
    tensor: Tensor,
    gather_list: MutableSequence[Tensor] | None = None,
    dst: int | None = None,
    group: Any = None,
    async_op: bool = False,
    group_dst: int | None = None,
) -> None:
    """``torch.distributed.gather``: ``gather_list[r]`` on rank ``dst`` becomes rank r's ``tensor``;
    the other ranks pass ``gather_list=None`` (as torch asks). Every rank's tensor has the same shape
    and dtype (compared before anything is sent, as the ranks' ``dst``).

    Example:
        >>> import downslope as ds
        >>> from downslope import distributed as dist
        >>> dist.init_process_group("gloo")                       # a plain process: a world of one
        >>> out = [ds.zeros(2)]; dist.gather(ds.tensor([1.0, 2.0]), out, dst=0); out
        [tensor([1., 2.])]
        >>> dist.destroy_process_group()
    """
    w, dst, targets, refusal = _rooted("gather", tensor, gather_list, dst, group_dst, group, async_op)
    if w.world_size == 1:
        if refusal is not None:
            raise refusal
        assert targets is not None  # the one rank is the destination
        targets[0].array[...] = tensor.array
        return
    _check_calls_match(w, "gather", tensor, root=dst, root_name="dst", refusal=refusal)
    mine = _host_copy(tensor, "gather")
    everyone = None if targets is None else np.empty((w.world_size, *mine.shape), dtype=mine.dtype)
    with world.naming_the_call("gather"):
        w.comm.gather(mine, everyone, dst)
    if targets is not None:
        assert everyone is not None  # made above for the destination
        for r, target in enumerate(targets):
            _write(target, everyone[r], f"gather: gather_list[{r}]")


def scatter(
    tensor: Tensor,
    scatter_list: Sequence[Tensor] | None = None,
    src: int | None = None,
    group: Any = None,
    async_op: bool = False,
    group_src: int | None = None,
) -> None:
    """``torch.distributed.scatter``: every rank r's ``tensor`` becomes ``scatter_list[r]`` of rank ``src``;
    the other ranks pass ``scatter_list=None`` (as torch asks). Every rank's tensor, and every tensor of
    ``scatter_list``, has the same shape and dtype (compared before anything is sent, as the ranks' ``src``)."""
    w, src, sources, refusal = _rooted("scatter", tensor, scatter_list, src, group_src, group, async_op)
    if w.world_size == 1:
        if refusal is not None:
            raise refusal
        assert sources is not None  # the one rank is the source
        tensor.array[...] = sources[0].array
        return
    _check_calls_match(w, "scatter", tensor, root=src, root_name="src", refusal=refusal)
    mine = _host_copy(tensor, "scatter")
    parts = None
    if sources is not None:
        parts = np.stack([_host_copy(t, f"scatter: scatter_list[{r}]") for r, t in enumerate(sources)])
    with world.naming_the_call("scatter"):
        w.comm.scatter(parts, mine, src)  # each rank receives its own part only
    _write(tensor, mine, "scatter")


def all_gather_into_tensor(
    output_tensor: Tensor, input_tensor: Tensor, group: Any = None, async_op: bool = False
) -> None:
    """``torch.distributed.all_gather_into_tensor``: ``output_tensor`` (``world_size`` times the input's
    elements: the inputs concatenated along dim 0, or stacked) holds every rank's input, in rank order.
    Every rank's input has the same shape and dtype (compared before anything is sent)."""
    _check_group(group, "all_gather_into_tensor")
    _check_sync(async_op, "all_gather_into_tensor")
    w = world.initialized_world("all_gather_into_tensor")

    def check() -> None:
        dtype = _check_tensor(input_tensor, "all_gather_into_tensor: input_tensor")
        if _check_tensor(output_tensor, "all_gather_into_tensor: output_tensor") != dtype:
            raise ArgumentTypeError(
                f"all_gather_into_tensor: output_tensor is {output_tensor.array.dtype}, input_tensor {dtype}; "
                "they must have the same dtype"
            )
        if output_tensor.array.size != input_tensor.array.size * w.world_size:
            raise ArgumentError(
                f"all_gather_into_tensor: output_tensor {tuple(output_tensor.shape)} must hold "
                f"world_size={w.world_size} times the input's {input_tensor.array.size} elements (input "
                f"{tuple(input_tensor.shape)})"
            )
        if w.world_size > 1:
            _host_buffer(input_tensor, "all_gather_into_tensor")
            _host_buffer(output_tensor, "all_gather_into_tensor")

    refusal = refused(check)
    if w.world_size == 1:
        if refusal is not None:
            raise refusal
        output_tensor.array[...] = input_tensor.array.reshape(output_tensor.array.shape)
        return
    _check_calls_match(w, "all_gather_into_tensor", input_tensor, refusal=refusal)
    everyone = allgather_same(w, _host_copy(input_tensor, "all_gather_into_tensor"), "all_gather_into_tensor")
    _write(output_tensor, everyone.reshape(-1), "all_gather_into_tensor")


def _reduce_scatter_values(stacked: np.ndarray, op: ReduceOp, name: str, w: world.World) -> np.ndarray:
    """This rank's part (a row of ``stacked``, ``world_size`` rows) of the combination over the ranks."""
    _reduce_into(stacked, op, name, w)
    return stacked[w.rank]


def reduce_scatter_tensor(
    output: Tensor,
    input: Tensor,  # noqa: A002  (torch's parameter name)
    op: ReduceOp = ReduceOp.SUM,
    group: Any = None,
    async_op: bool = False,
) -> None:
    """``torch.distributed.reduce_scatter_tensor``: ``input`` (``world_size`` times the output's elements,
    rank r's part the r-th block along dim 0) is combined over the ranks with ``op``; rank r's
    ``output`` is the r-th block of the result."""
    _check_group(group, "reduce_scatter_tensor")
    _check_sync(async_op, "reduce_scatter_tensor")
    w = world.initialized_world("reduce_scatter_tensor")

    def check() -> None:
        dtype = _check_tensor(input, "reduce_scatter_tensor: input")
        if _check_tensor(output, "reduce_scatter_tensor: output") != dtype:
            raise ArgumentTypeError(
                f"reduce_scatter_tensor: output is {output.array.dtype}, input {dtype}; they must have the same dtype"
            )
        _op_name(op, dtype, "reduce_scatter_tensor")
        if input.array.size != output.array.size * w.world_size:
            raise ArgumentError(
                f"reduce_scatter_tensor: input {tuple(input.shape)} must hold world_size={w.world_size} times the "
                f"output's {output.array.size} elements (output {tuple(output.shape)})"
            )
        if w.world_size > 1:
            _host_buffer(input, "reduce_scatter_tensor")
            _host_buffer(output, "reduce_scatter_tensor")

    refusal = refused(check)
    if w.world_size == 1:  # every op leaves one rank's values as they are (any device: no host round trip)
        if refusal is not None:
            raise refusal
        output.array[...] = input.array.reshape(output.array.shape)
        return
    _check_calls_match(w, "reduce_scatter_tensor", input, op=op, refusal=refusal)
    name = _op_name(op, np.dtype(input.array.dtype), "reduce_scatter_tensor")
    stacked = _host_copy(input, "reduce_scatter_tensor").reshape(w.world_size, -1)
    _write(output, _reduce_scatter_values(stacked, op, name, w), "reduce_scatter_tensor")


def reduce_scatter(
    output: Tensor,
    input_list: Sequence[Tensor],
    op: ReduceOp = ReduceOp.SUM,
    group: Any = None,
    async_op: bool = False,
) -> None:
    """``torch.distributed.reduce_scatter``: rank r's ``output`` becomes ``input_list[r]`` combined over the
    ranks with ``op``."""
    _check_group(group, "reduce_scatter")
    _check_sync(async_op, "reduce_scatter")
    w = world.initialized_world("reduce_scatter")

    def check() -> None:
        inputs = check_tensor_list(input_list, output, w.world_size, "reduce_scatter: input_list")
        _op_name(op, np.dtype(output.array.dtype), "reduce_scatter")
        if w.world_size > 1:
            for r, t in enumerate([output, *inputs]):
                _host_buffer(t, "reduce_scatter: output" if r == 0 else f"reduce_scatter: input_list[{r - 1}]")

    refusal = refused(check)
    if w.world_size == 1:
        if refusal is not None:
            raise refusal
        output.array[...] = input_list[0].array
        return
    _check_calls_match(w, "reduce_scatter", output, op=op, refusal=refusal)
    name = _op_name(op, np.dtype(output.array.dtype), "reduce_scatter")
    stacked = np.stack(
        [_host_copy(t, f"reduce_scatter: input_list[{r}]").reshape(-1) for r, t in enumerate(input_list)]
    )
    _write(output, _reduce_scatter_values(stacked, op, name, w), "reduce_scatter")


def _splits(sizes: Sequence[int] | None, rows: int, w: world.World, what: str) -> list[int]:
    if sizes is None or len(sizes) == 0:
        if rows % w.world_size:
            raise ArgumentError(
                f"all_to_all_single: {what} has {rows} rows along dim 0, not a multiple of world_size={w.world_size}; "
                f"give {what.split()[0]}_split_sizes"
            )
        return [rows // w.world_size] * w.world_size
    if len(sizes) != w.world_size or any(int(s) < 0 for s in sizes) or sum(int(s) for s in sizes) != rows:
        raise ArgumentError(
            f"all_to_all_single: {what}_split_sizes must be world_size={w.world_size} non-negative sizes adding up to "
            f"its {rows} rows along dim 0, got {list(sizes)}"
        )
    return [int(s) for s in sizes]


def _allgather_ints(w: world.World, values: list[int], what: str) -> np.ndarray:
    """Every rank's ``values`` (int64, as many on every rank) as the rows of one array."""
    mine = np.array(values, dtype=np.int64)
    gather_fixed = getattr(w.comm, "allgather_fixed", None)
    if gather_fixed is None:  # a communicator with only the byte exchange
        return np.stack([np.frombuffer(raw, dtype=np.int64) for raw in w.comm.allgather_bytes(mine.tobytes())])
    with world.naming_the_call(what):
        return np.asarray(gather_fixed(mine))


def all_to_all_single(
    output: Tensor,
    input: Tensor,  # noqa: A002  (torch's parameter name)
    output_split_sizes: Sequence[int] | None = None,
    input_split_sizes: Sequence[int] | None = None,
    group: Any = None,
    async_op: bool = False,
) -> None:
    """``torch.distributed.all_to_all_single``: ``input``'s dim-0 blocks go to the ranks in order (block r
    to rank r, equal blocks unless ``input_split_sizes``), and ``output``'s blocks are what each rank
    sent here, in rank order. The ranks' dtypes and sizes after dim 0, and every pair's split sizes,
    are compared before anything is sent."""
    _check_group(group, "all_to_all_single")
    _check_sync(async_op, "all_to_all_single")
    w = world.initialized_world("all_to_all_single")
    plan: list[list[int]] = []

    def check() -> None:
        dtype = _check_tensor(input, "all_to_all_single: input")
        if _check_tensor(output, "all_to_all_single: output") != dtype:
            raise ArgumentTypeError(
                f"all_to_all_single: output is {output.array.dtype}, input {dtype}; they must match"
            )
        if input.array.ndim == 0 or output.array.ndim == 0 or input.shape[1:] != output.shape[1:]:
            raise ArgumentError(
                f"all_to_all_single: input {tuple(input.shape)} and output {tuple(output.shape)} must have a dim 0 "
                "and the same sizes after it"
            )
        plan.append(_splits(input_split_sizes, int(input.shape[0]), w, "input"))
        plan.append(_splits(output_split_sizes, int(output.shape[0]), w, "output"))
        if w.world_size > 1:
            _host_buffer(input, "all_to_all_single")
            _host_buffer(output, "all_to_all_single")

    refusal = refused(check)
    if w.world_size == 1:
        if refusal is not None:
            raise refusal
        output.array[...] = input.array
        return
    rows = getattr(getattr(input, "array", None), "shape", (0,))[1:]
    subject = f"an (N{''.join(f', {int(n)}' for n in rows)}{',' if not rows else ''}) "
    subject += f"{getattr(getattr(input, 'array', None), 'dtype', '?')} input"
    _check_calls_match(w, "all_to_all_single", subject=subject, refusal=refusal)
    sent, received = plan
    # every rank's split sizes (what it sends each rank, what it expects from each), judged alike everywhere
    plans = _allgather_ints(w, [*sent, *received], "all_to_all_single")
    size = w.world_size
    for sender in range(size):
        for receiver in range(size):
            if plans[sender][receiver] != plans[receiver][size + sender]:
                raise CollectiveMismatchError(
                    f"all_to_all_single: rank {sender} sends {plans[sender][receiver]} rows to rank {receiver}, whose "
                    f"output_split_sizes expect {plans[receiver][size + sender]} from it; every pair of ranks must "
                    "agree on the rows that pass between them (nothing was sent)",
                    on_every_rank=True,
                )
    values = _host_copy(input, "all_to_all_single")
    row = int(np.prod(values.shape[1:], dtype=np.int64))
    everyone = w.comm.allgather_bytes(values.tobytes())
    parts = []
    for r, raw in enumerate(everyone):
        theirs = [int(n) for n in plans[r][:size]]
        if row:
            start = sum(theirs[: w.rank])
            block = np.frombuffer(raw, dtype=values.dtype).reshape(-1, *values.shape[1:])
            parts.append(block[start : start + theirs[w.rank]].reshape(-1))
    _write(output, np.concatenate(parts) if parts else np.empty(0, values.dtype), "all_to_all_single")


def all_to_all(
    output_tensor_list: MutableSequence[Tensor],
    input_tensor_list: Sequence[Tensor],
    group: Any = None,
    async_op: bool = False,
) -> None:
    """``torch.distributed.all_to_all``: ``input_tensor_list[r]`` goes to rank r, and ``output_tensor_list[r]``
    becomes what rank r sent here (the tensors may differ in size from pair to pair; each output holds
    what its sender sends it, in the same dtype).

    Example:
        >>> import downslope as ds
        >>> from downslope import distributed as dist
        >>> dist.init_process_group("gloo")                       # a plain process: a world of one
        >>> out = [ds.zeros(2)]; dist.all_to_all(out, [ds.tensor([1.0, 2.0])]); out
        [tensor([1., 2.])]
        >>> dist.destroy_process_group()
    """
    _check_group(group, "all_to_all")
    _check_sync(async_op, "all_to_all")
    w = world.initialized_world("all_to_all")

    def check() -> None:
        for name, tensors in (("output_tensor_list", output_tensor_list), ("input_tensor_list", input_tensor_list)):
            if not isinstance(tensors, Sequence) or len(tensors) != w.world_size:
                got = len(tensors) if isinstance(tensors, Sequence) else type(tensors).__name__
                raise ArgumentError(
                    f"all_to_all: {name} must be a list of world_size={w.world_size} tensors, got {got}"
                )
            for r, t in enumerate(tensors):
                _check_tensor(t, f"all_to_all: {name}[{r}]")
                if w.world_size > 1:
                    _host_buffer(t, f"all_to_all: {name}[{r}]")

    refusal = refused(check)
    if w.world_size == 1:
        if refusal is not None:
            raise refusal
        if output_tensor_list[0].array.size != input_tensor_list[0].array.size:
            raise ArgumentError(
                f"all_to_all: output_tensor_list[0] holds {output_tensor_list[0].array.size} elements, "
                f"input_tensor_list[0] {input_tensor_list[0].array.size}"
            )
        _write(output_tensor_list[0], input_tensor_list[0].array, "all_to_all: output_tensor_list[0]")
        return
    _check_calls_match(w, "all_to_all", subject="", refusal=refusal)
    parts = [_host_copy(t, f"all_to_all: input_tensor_list[{r}]") for r, t in enumerate(input_tensor_list)]
    # every rank's plan (what it sends each rank, what it expects from each), so that a pair that does not
    # match is refused alike on every rank before any data is read
    plan = {
        "send": [[str(p.dtype), int(p.size)] for p in parts],
        "expect": [[str(np.dtype(np.float32) if t.array.dtype == np.float16 else t.array.dtype), int(t.array.size)]
                   for t in output_tensor_list],
    }  # fmt: skip
    plans = [json.loads(raw) for raw in w.comm.allgather_bytes(json.dumps(plan).encode())]
    for sender, theirs in enumerate(plans):
        for receiver, ours in enumerate(plans):
            if theirs["send"][receiver] != ours["expect"][sender]:
                sent_dtype, sent_size = theirs["send"][receiver]
                want_dtype, want_size = ours["expect"][sender]
                raise DisagreementError(
                    f"all_to_all: rank {sender} sends rank {receiver} {sent_size} elements of {sent_dtype}, but rank "
                    f"{receiver}'s output_tensor_list[{sender}] holds {want_size} of {want_dtype}; every pair of ranks "
                    "must agree on the size and dtype of what passes between them"
                )
    everyone = w.comm.allgather_bytes(b"".join(p.tobytes() for p in parts))
    for sender, (theirs, raw) in enumerate(zip(plans, everyone)):
        start = sum(int(size) * np.dtype(dtype).itemsize for dtype, size in theirs["send"][: w.rank])
        dtype, size = theirs["send"][w.rank]
        values = np.frombuffer(raw, dtype=dtype, count=int(size), offset=start)
        _write(output_tensor_list[sender], values, f"all_to_all: output_tensor_list[{sender}]")


def _check_peer(peer: Any, w: world.World, what: str, name: str) -> int:
    collectives._check_root(peer, w)
    if int(peer) == w.rank:
        raise ArgumentError(f"{what}: {name}={peer} is this process's own rank; send to and receive from another rank")
    return int(peer)


# A point-to-point message: a header of int64s (this mark, what it holds: a tensor or objects, the
# tensor's dtype as NumPy numbers it, its number of dimensions and its shape), then the data. The
# receiver sizes its buffer from the message itself and compares the header with what it receives into,
# so a message of another size or dtype is refused by name instead of arriving truncated or as garbage.
_MESSAGE_MARK = 0x64736C6F70650001  # "dslope" and a version
TENSOR_MESSAGE, OBJECTS_MESSAGE = 1, 2
_DTYPES: dict[int, np.dtype] = {
    np.dtype(t).num: np.dtype(t)
    for t in (np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64,
              np.float16, np.float32, np.float64, np.complex64, np.complex128)
}  # fmt: skip


def frame_message(kind: int, dtype: np.dtype, shape: Sequence[int], payload: np.ndarray) -> np.ndarray:
    """The bytes of one point-to-point message: the header, then ``payload`` (contiguous)."""
    head = np.array([_MESSAGE_MARK, kind, np.dtype(dtype).num, len(shape), *shape], dtype=np.int64).view(np.uint8)
    data = payload.reshape(-1).view(np.uint8)
    message = np.empty(head.size + data.size, dtype=np.uint8)
    message[: head.size] = head
    message[head.size :] = data
    return message


def unframe_message(message: np.ndarray, what: str, sender: int) -> tuple[int, np.dtype | None, list[int], np.ndarray]:
    """(what the message holds, its dtype (None: one NumPy has no number for), its shape, the data's bytes)
    of a message :func:`frame_message` made."""
    head = message[:32].view(np.int64).tolist() if message.size >= 32 else [0, 0, 0, -1]
    mark, kind, number, ndim = head
    if mark != _MESSAGE_MARK or not 0 <= ndim <= (message.size - 32) // 8:
        raise CollectiveMismatchError(
            f"{what}: the {message.size}-byte message from rank {sender} was not sent by downslope.distributed's "
            "send or send_object_list; is there a distributed collective mismatch in your code?"
        )
    end = 32 + 8 * ndim
    return kind, _DTYPES.get(number), message[32:end].view(np.int64).tolist(), message[end:]


def _describe_message(kind: int, dtype: np.dtype | None, shape: list[int]) -> str:
    if kind == TENSOR_MESSAGE:
        return f"a {tuple(shape)} {dtype} tensor"
    return f"a list of {shape[0] if shape else '?'} objects (send_object_list)"


def send(
    tensor: Tensor, dst: int | None = None, group: Any = None, tag: int = _DEFAULT_TAG, group_dst: int | None = None
) -> None:
    """``torch.distributed.send``: send ``tensor`` to rank ``dst`` (blocking: it returns once the data is
    on its way, and the matching :func:`recv` must be posted there). Its shape and dtype travel with it:
    a :func:`recv` into a tensor of another dtype or number of elements raises there."""
    _check_group(group, "send")
    w = world.initialized_world("send")
    dst = _check_peer(dst if dst is not None else group_dst, w, "send", "dst")
    _check_tensor(tensor, "send")
    array, buf = _host_buffer(tensor, "send")
    w.comm.send(frame_message(TENSOR_MESSAGE, array.dtype, array.shape, np.ascontiguousarray(buf)), dst, int(tag))


def recv(
    tensor: Tensor, src: int | None = None, group: Any = None, tag: int = _DEFAULT_TAG, group_src: int | None = None
) -> int:
    """``torch.distributed.recv``: receive into ``tensor`` what rank ``src`` (None: any rank) sent;
    returns the sender's rank, as torch's does. A message of another dtype or number of elements than
    ``tensor`` is refused (on this rank: the sender has returned), naming both; the tensor is left as
    it was and the message is consumed."""
    _check_group(group, "recv")
    w = world.initialized_world("recv")
    src = src if src is not None else group_src
    if src is not None:
        src = _check_peer(src, w, "recv", "src")
    _check_tensor(tensor, "recv")
    array, buf = _host_buffer(tensor, "recv")
    message, sender = w.comm.recv_message(src, int(tag))
    kind, dtype, shape, data = unframe_message(message, "recv", sender)
    if kind != TENSOR_MESSAGE or dtype != array.dtype or math.prod(shape) != array.size:
        raise CollectiveMismatchError(
            f"recv: rank {sender} sent {_describe_message(kind, dtype, shape)}, but rank {w.rank} receives into a "
            f"{tuple(array.shape)} {array.dtype} tensor; the sent tensor and the receiving one must have the same "
            "dtype and number of elements (the tensor is left as it was). Is there a distributed collective "
            "mismatch in your code?"
        )
    np.copyto(array, data.view(buf.dtype).reshape(array.shape), casting="unsafe")
    return sender


def isend(
    tensor: Tensor, dst: int | None = None, group: Any = None, tag: int = _DEFAULT_TAG, group_dst: int | None = None
) -> Any:
    """``torch.distributed.isend``: refused (downslope's point-to-point calls are blocking)."""
    raise DistributedError(f"isend: {_NON_BLOCKING_REFUSAL}")


def irecv(
    tensor: Tensor, src: int | None = None, group: Any = None, tag: int = _DEFAULT_TAG, group_src: int | None = None
) -> Any:
    """``torch.distributed.irecv``: refused (downslope's point-to-point calls are blocking)."""
    raise DistributedError(
        "irecv: non-blocking point-to-point is not supported (downslope's calls are blocking, so there is no Work "
        "handle to wait on); use dist.recv(tensor, src) and, on the other rank, dist.send(tensor, dst)"
    )


_NON_BLOCKING_REFUSAL = (
    "non-blocking point-to-point is not supported (downslope's calls are blocking, so there is no Work handle to "
    "wait on); use dist.send(tensor, dst) and, on the other rank, dist.recv(tensor, src)"
)


class P2POp:
    """``torch.distributed.P2POp``: refused, as :func:`isend`/:func:`irecv`, which it describes."""

    def __init__(
        self,
        op: Any,
        tensor: Tensor,
        peer: int | None = None,
        group: Any = None,
        tag: int = _DEFAULT_TAG,
        group_peer: int | None = None,
    ) -> None:
        raise DistributedError(f"P2POp: {_NON_BLOCKING_REFUSAL}")


def batch_isend_irecv(p2p_op_list: Sequence[Any]) -> list[Any]:
    """``torch.distributed.batch_isend_irecv``: refused, as :func:`isend`/:func:`irecv`."""
    raise DistributedError(f"batch_isend_irecv: {_NON_BLOCKING_REFUSAL}")


class Backend(str):
    """``torch.distributed.Backend``: the backend names as lowercase strings (``Backend.GLOO == "gloo"``);
    ``Backend("GLOO")`` parses a name, as torch's. downslope accepts any of them in
    :func:`~downslope.distributed.init_process_group` and always talks over MPI."""

    UNDEFINED = "undefined"
    GLOO = "gloo"
    NCCL = "nccl"
    UCC = "ucc"
    MPI = "mpi"
    XCCL = "xccl"
    FAKE = "fake"
    backend_list = [UNDEFINED, GLOO, NCCL, XCCL, UCC, MPI, FAKE]
    default_device_backend_map = {"cpu": GLOO, "cuda": NCCL, "xpu": XCCL, "mps": GLOO}

    def __new__(cls, name: str) -> str:  # type: ignore[misc]  # returns a plain str, as torch's
        if not isinstance(name, str):
            raise ArgumentError(f"Backend constructor parameter must be string-ish, got {type(name).__name__}")
        value = getattr(Backend, name.upper(), Backend.UNDEFINED)
        return str(value) if value != Backend.UNDEFINED else name.lower()

    @classmethod
    def register_backend(cls, name: str, func: Any, extended_api: bool = False, devices: Any = None) -> None:
        raise DistributedError(
            f"Backend.register_backend: third-party backends are not supported (got {name!r}); downslope's process "
            "group always talks over MPI"
        )


class GroupMember:
    """``torch.distributed.GroupMember``: ``WORLD`` (the one group, ``group.WORLD``) and ``NON_GROUP_MEMBER``."""

    WORLD = group.WORLD
    NON_GROUP_MEMBER = -100


def get_global_rank(group: Any, group_rank: int) -> int:
    """``torch.distributed.get_global_rank``: the global rank of ``group_rank`` in ``group``; the only group
    is every rank's, so it is ``group_rank`` itself (torch's identity for the default group)."""
    _check_group(group, "get_global_rank")
    w = world.initialized_world("get_global_rank")
    collectives._check_root(group_rank, w)
    return int(group_rank)


def get_process_group_ranks(group: Any) -> list[int]:
    """``torch.distributed.get_process_group_ranks``: the global ranks of ``group`` (None: the default
    group) in group-rank order: every rank, ``[0, ..., world_size - 1]``."""
    _check_group(group, "get_process_group_ranks")
    return list(range(world.initialized_world("get_process_group_ranks").world_size))


def monitored_barrier(group: Any = None, timeout: Any = None, wait_all_ranks: bool = False) -> None:
    """``torch.distributed.monitored_barrier``: :func:`~downslope.distributed.barrier`. ``timeout`` is
    accepted: every wait is watched already (a rank that does not arrive within the process group's
    timeout ends the job, naming the wait)."""
    _check_group(group, "monitored_barrier")
    world.initialized_world("monitored_barrier")
    world.wait_for_every_rank("monitored_barrier")


def is_nccl_available() -> bool:
    """False: there is no NCCL here (downslope's process group talks over MPI)."""
    return False


def is_gloo_available() -> bool:
    """True: ``init_process_group("gloo")`` is accepted (and talks over MPI)."""
    return True


def is_mpi_available() -> bool:
    """Whether mpi4py can be imported, which a job of several processes needs (``init_process_group("mpi")``
    is accepted either way)."""
    import importlib.util

    return importlib.util.find_spec("mpi4py") is not None


def is_torchelastic_launched() -> bool:
    """``torch.distributed.is_torchelastic_launched``: whether torchrun started this process (its
    ``TORCHELASTIC_RUN_ID`` is set), as torch's. downslope's process group needs ``mpiexec`` instead."""
    return os.environ.get("TORCHELASTIC_RUN_ID") is not None


def get_node_local_rank(fallback_rank: int | None = None) -> int:
    """``torch.distributed.get_node_local_rank``: ``LOCAL_RANK`` from the environment (set from Open MPI's
    or MPICH's variables under ``mpiexec`` when this package is imported), else ``fallback_rank``;
    raises when neither is there, as torch's."""
    value = os.environ.get("LOCAL_RANK")
    if value is not None:
        return int(value)
    if fallback_rank is not None:
        return int(fallback_rank)
    raise DistributedError(
        "get_node_local_rank: LOCAL_RANK is not in the environment (it is set under mpiexec and torchrun); "
        "pass fallback_rank= for a process started otherwise"
    )


__all__ = [
    "gather", "scatter", "all_gather_into_tensor", "reduce_scatter_tensor", "reduce_scatter", "all_to_all_single",
    "send", "recv", "isend", "irecv", "monitored_barrier", "is_nccl_available", "is_gloo_available",
    "is_mpi_available", "is_torchelastic_launched", "get_node_local_rank", "all_to_all", "P2POp",
    "batch_isend_irecv", "Backend", "GroupMember", "get_global_rank", "get_process_group_ranks",
]  # fmt: skip
