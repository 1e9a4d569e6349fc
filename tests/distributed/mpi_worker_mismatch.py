"""Programs each rank runs under ``mpiexec -n 2`` for test_collective_errors.py
(``python mpi_worker_mismatch.py MODE OUT``): object collectives with objects that cannot be sent,
sets and tuples on the wire, and collectives whose ranks do not match. Nothing runs at import time."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import downslope as ds
from downslope import distributed as dist
from downslope import nn


class Unsendable:
    """A type the object collectives have no encoding for."""


def _attempt(record: dict[str, Any], name: str, call: Any) -> None:
    """Run ``call``; record what it returned or raised (type names and message) under ``name``."""
    try:
        record[name] = {"returned": repr(call())}
    except Exception as exc:  # recorded for the test to judge
        record[name] = {"raised": [c.__name__ for c in type(exc).__mro__], "message": str(exc)}


def objects(out: Path) -> None:
    dist.init_process_group("gloo")
    rank, size = dist.get_rank(), dist.get_world_size()
    record: dict[str, Any] = {}

    def gather(obj: Any) -> list[Any]:
        got: list[Any] = [None] * size
        dist.all_gather_object(got, obj)
        return got

    # rank 1's object has no encoding: every rank raises, and the next gather pairs up as it should
    _attempt(record, "unsendable gather", lambda: gather(Unsendable() if rank == 1 else {"rank": rank}))
    _attempt(record, "next gather", lambda: gather({"rank": rank}))
    # the source's list holds a set inside something unsendable; then an ordinary broadcast
    _attempt(
        record, "unsendable broadcast list", lambda: dist.broadcast_object_list([Unsendable()] if rank == 0 else [0])
    )

    def broadcast_list() -> list[Any]:
        shared: list[Any] = [{"epoch": 3}, None] if rank == 0 else [None, None]
        dist.broadcast_object_list(shared, src=0)
        return shared

    _attempt(record, "next broadcast list", broadcast_list)
    # sets, frozensets and tuples come back as themselves
    mine = {"seen": {rank, 10 + rank}, "pair": (rank, "a"), "frozen": frozenset({(rank, 1)}), "nested": [{1, 2}]}
    gathered = gather(mine)
    expected = [
        {"seen": {r, 10 + r}, "pair": (r, "a"), "frozen": frozenset({(r, 1)}), "nested": [{1, 2}]} for r in range(size)
    ]
    record["sets and tuples equal"] = gathered == expected
    record["sets and tuples types"] = [
        [type(g["seen"]).__name__, type(g["pair"]).__name__, type(g["frozen"]).__name__, type(g["nested"][0]).__name__]
        for g in gathered
    ]
    _attempt(
        record,
        "unsendable gather_object",
        lambda: dist.gather_object(Unsendable() if rank == 1 else 0, [None, None] if rank == 0 else None),
    )
    _attempt(record, "short scatter list", lambda: dist.scatter_object_list([None], [1] if rank == 0 else None, src=0))
    _attempt(record, "marker tuple", lambda: dist.broadcast_object(("\x00downslope.distributed:set\x00", "set", [])))
    _attempt(record, "last gather", lambda: gather(rank))
    (out / f"rank{rank}.json").write_text(json.dumps(record))


def broadcast_of_another_dtype() -> None:
    """Rank 0 broadcasts float64, rank 1 receives into float32: refused on both ranks, uncaught, the job ends."""
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    t = ds.ones(4, dtype=ds.float64 if rank == 0 else ds.float32)
    dist.broadcast(t, 0)
    x = ds.tensor([1.0])
    dist.all_reduce(x)  # rank 0 waits here for rank 1, which has left: the job must end, not hang


def ddp_buffer_of_another_size(out: Path) -> None:
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    model = nn.Linear(3, 2)
    model.register_buffer("stats", ds.zeros(4 if rank == 0 else 3))
    record: dict[str, Any] = {}
    _attempt(record, "ddp", lambda: nn.parallel.DistributedDataParallel(model))
    _attempt(record, "after", lambda: dist.all_gather_object([None, None], rank))
    (out / f"rank{rank}.json").write_text(json.dumps(record))


def main(mode: str, out: Path) -> None:
    if mode == "objects":
        objects(out)
    elif mode == "broadcast_of_another_dtype":
        broadcast_of_another_dtype()
    elif mode == "ddp_buffer_of_another_size":
        ddp_buffer_of_another_size(out)
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]))
