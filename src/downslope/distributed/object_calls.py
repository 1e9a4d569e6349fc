"""``torch.distributed``'s other object calls: gather_object, scatter_object_list, send_object_list and
recv_object_list, beside :mod:`.process_group`'s all_gather_object and broadcast_object_list.

The objects travel as :func:`~downslope.distributed.broadcast_object`'s do: nested dicts, lists,
tuples and sets of numbers, strings, None, arrays and tensors, as JSON and raw bytes (downslope never
pickles). An object that cannot be sent (or a call whose arguments are wrong on the rank that sends)
is refused on every rank taking part, at the same point, so no rank is left waiting in a collective.
"""

from __future__ import annotations

from collections.abc import MutableSequence, Sequence
from typing import Any

import numpy as np

from ..errors import ArgumentError, ArgumentTypeError
from . import collectives, world
from .process_group import _check_calls_match, _check_group, refused
from .torch_calls import OBJECTS_MESSAGE, _check_peer, _describe_message, _root, frame_message, unframe_message
from .world import CollectiveMismatchError

_OBJECT_TAG = 0  # torch sends objects as tensors with send's default tag


def _check_rooted_list(
    items: Any, w: world.World, root: int, what: str, name: str, role: str, root_name: str
) -> str | None:
    """Why the root's ``items`` (a list of world_size entries there; None elsewhere, as torch asks) is
    wrong, or None; raised at once off the root (nothing was sent yet), carried to every rank on it."""
    if w.rank != root:
        if items is not None:
            raise ArgumentError(
                f"{what}: {name} is given on rank {w.rank}, which is not the {role} ({root_name}={root}); pass "
                f"{name}=None on the other ranks, as torch.distributed asks"
            )
        return None
    if not isinstance(items, (list, MutableSequence)) or len(items) != w.world_size:
        got = f"{len(items)} entries" if isinstance(items, Sequence) else type(items).__name__
        return f"{name} on the {role} must be a list of world_size={w.world_size} entries, got {got}"
    return None


def gather_object(
    obj: Any,
    object_gather_list: MutableSequence[Any] | None = None,
    dst: int | None = None,
    group: Any = None,
    group_dst: int | None = None,
) -> None:
    """``torch.distributed.gather_object``: ``object_gather_list[r]`` on rank ``dst`` (default 0) becomes
    rank r's ``obj``; the other ranks pass ``object_gather_list=None``, as torch asks.

    Example:
        >>> from downslope import distributed as dist
        >>> dist.init_process_group("gloo")                       # a plain process: a world of one
        >>> out = [None]; dist.gather_object({"acc": 0.9}, out, dst=0); out
        [{'acc': 0.9}]
        >>> dist.destroy_process_group()
    """
    _check_group(group, "gather_object")
    w = world.initialized_world("gather_object")
    dst = _root(dst, group_dst)

    def check() -> None:
        collectives._check_root(dst, w)
        wrong = _check_rooted_list(
            object_gather_list, w, dst, "gather_object", "object_gather_list", "destination", "dst"
        )
        if wrong is not None:
            raise ArgumentError(f"gather_object: {wrong}")

    refusal = refused(check)
    if w.world_size == 1:
        if refusal is not None:
            raise refusal
        assert object_gather_list is not None  # the one rank is the destination, checked above
        object_gather_list[0] = obj
        return
    # the ranks' calls (the destination, and its verdict on its list) are compared first, then every rank
    # sees every rank's packed object, so an object that cannot be sent is refused alike everywhere
    _check_calls_match(w, "gather_object", subject="", root=dst, root_name="dst", refusal=refusal)
    everyone = w.comm.allgather_bytes(collectives.pack_object(obj))
    gathered = [collectives.unpack_object(data, "gather_object", r) for r, data in enumerate(everyone)]
    if w.rank == dst:
        assert object_gather_list is not None  # checked above on the destination
        object_gather_list[:] = gathered


def scatter_object_list(
    scatter_object_output_list: MutableSequence[Any],
    scatter_object_input_list: Sequence[Any] | None = None,
    src: int | None = None,
    group: Any = None,
    group_src: int | None = None,
) -> None:
    """``torch.distributed.scatter_object_list``: rank r's ``scatter_object_output_list[0]`` becomes
    ``scatter_object_input_list[r]`` of rank ``src`` (default 0); the other ranks pass no input list.

    Example:
        >>> from downslope import distributed as dist
        >>> dist.init_process_group("gloo")                       # a plain process: a world of one
        >>> out = [None]; dist.scatter_object_list(out, [{"shard": 0}], src=0); out
        [{'shard': 0}]
        >>> dist.destroy_process_group()
    """
    _check_group(group, "scatter_object_list")
    w = world.initialized_world("scatter_object_list")
    src = _root(src, group_src)

    def check() -> None:
        collectives._check_root(src, w)
        if not isinstance(scatter_object_output_list, (list, MutableSequence)) or len(scatter_object_output_list) < 1:
            raise ArgumentTypeError(
                "scatter_object_list: expected argument scatter_object_output_list to be a list of size at least 1, "
                f"got {scatter_object_output_list!r}"
            )
        wrong = _check_rooted_list(
            scatter_object_input_list, w, src, "scatter_object_list", "scatter_object_input_list", "source", "src"
        )
        if wrong is not None:
            raise ArgumentError(f"scatter_object_list: {wrong}")

    refusal = refused(check)
    if w.world_size == 1:
        if refusal is not None:
            raise refusal
        assert scatter_object_input_list is not None  # the one rank is the source, checked above
        scatter_object_output_list[0] = scatter_object_input_list[0]
        return
    _check_calls_match(w, "scatter_object_list", subject="", root=src, root_name="src", refusal=refusal)
    # the source's whole list goes to every rank (it refuses alike on every rank what it cannot send),
    # and each keeps its own entry
    sent = list(scatter_object_input_list) if scatter_object_input_list is not None else None
    received = collectives.broadcast_object(sent, root=src, world=w, what="scatter_object_list")
    scatter_object_output_list[0] = received[w.rank]


def send_object_list(
    object_list: Sequence[Any],
    dst: int | None = None,
    group: Any = None,
    device: Any = None,
    group_dst: int | None = None,
    use_batch: bool = False,
) -> None:
    """``torch.distributed.send_object_list``: send the objects of ``object_list`` to rank ``dst``, where
    :func:`recv_object_list` receives them into a list of the same length (blocking, as :func:`send`).
    An object that cannot be sent is refused on both ranks: the reason is sent in its place."""
    _check_group(group, "send_object_list")
    w = world.initialized_world("send_object_list")
    peer = _check_peer(dst if dst is not None else group_dst, w, "send_object_list", "dst")
    if not isinstance(object_list, (list, Sequence)) or isinstance(object_list, (str, bytes)):
        raise ArgumentTypeError(f"send_object_list: expected a list of objects, got {type(object_list).__name__}")
    data = collectives.pack_object(list(object_list))
    message = frame_message(OBJECTS_MESSAGE, np.dtype(np.uint8), [len(object_list)], np.frombuffer(data, np.uint8))
    w.comm.send(message, peer, _OBJECT_TAG)
    collectives.unpack_object(data, "send_object_list", w.rank)  # the receiver raises the same, if it does


def recv_object_list(
    object_list: MutableSequence[Any],
    src: int | None = None,
    group: Any = None,
    device: Any = None,
    group_src: int | None = None,
    use_batch: bool = False,
) -> int:
    """``torch.distributed.recv_object_list``: receive into ``object_list`` (in place, the same length as
    the sender's list) what rank ``src`` (None: any rank) sent with :func:`send_object_list`; returns the
    sender's rank, as torch's does."""
    _check_group(group, "recv_object_list")
    w = world.initialized_world("recv_object_list")
    source = src if src is not None else group_src
    if source is not None:
        source = _check_peer(source, w, "recv_object_list", "src")
    if not isinstance(object_list, (list, MutableSequence)):
        raise ArgumentTypeError(f"recv_object_list: expected a list to receive into, got {type(object_list).__name__}")
    message, sender = w.comm.recv_message(source, _OBJECT_TAG)
    kind, dtype, shape, data = unframe_message(message, "recv_object_list", sender)
    if kind != OBJECTS_MESSAGE:
        raise CollectiveMismatchError(
            f"recv_object_list: rank {sender} sent {_describe_message(kind, dtype, shape)} with send, not objects with "
            "send_object_list; is there a distributed collective mismatch in your code?"
        )
    received = collectives.unpack_object(data.tobytes(), "recv_object_list", sender)
    if len(received) != len(object_list):
        raise ArgumentError(
            f"recv_object_list: rank {sender} sent {len(received)} objects, rank {w.rank}'s list holds "
            f"{len(object_list)}; receive into a list of the length sent"
        )
    object_list[:] = received
    return sender


__all__ = ["gather_object", "scatter_object_list", "send_object_list", "recv_object_list"]
