"""Run by test_call_mismatch.py under ``mpiexec -n 2`` and ``-n 3``: torch.distributed's calls whose ranks
do not match (another dtype, shape, root, list, collective, or a receiving tensor that does not fit the
message). Each case is run on every rank and what it returned or raised is recorded; after each, a
matching all_reduce must pair up (no rank was left waiting, none ran ahead).

Usage: mpiexec -n W python mpi_worker_call_mismatch.py OUT_DIR [CASE ...]   (no CASE: every case)
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import downslope as ds
from downslope import distributed as dist
from downslope.distributed.world import raised_on_every_rank

Case = Callable[[int, int], Any]  # (rank, world size) -> what the call left (tensor values, a list...)


def _values(value: Any) -> Any:
    if isinstance(value, ds.Tensor):
        return value.numpy().tolist()
    if isinstance(value, (list, tuple)):
        return [_values(v) for v in value]
    return value


def gather_of_another_dtype(rank: int, size: int) -> Any:
    mine = ds.ones(2, dtype=ds.int32 if rank == size - 1 else ds.float32)  # the same bytes: MPI sees no difference
    out = [ds.zeros(2) for _ in range(size)] if rank == 0 else None
    dist.gather(mine, out, dst=0)
    return out


def gather_of_another_shape(rank: int, size: int) -> Any:
    mine = ds.arange(6.0).reshape((3, 2) if rank == size - 1 else (2, 3))
    out = [ds.zeros(2, 3) for _ in range(size)] if rank == 0 else None
    dist.gather(mine, out, dst=0)
    return out


def gather_to_another_dst(rank: int, size: int) -> Any:
    dst = 1 if rank == size - 1 else 0
    out = [ds.zeros(2) for _ in range(size)] if rank == dst else None
    dist.gather(ds.ones(2), out, dst=dst)
    return out


def gather_list_off_the_destination(rank: int, size: int) -> Any:
    out = [ds.zeros(2) for _ in range(size)] if rank in (0, size - 1) else None
    dist.gather(ds.ones(2), out, dst=0)
    return out


def scatter_into_another_shape(rank: int, size: int) -> Any:
    out = ds.zeros((3, 2) if rank == size - 1 else (2, 3))
    parts = [ds.arange(6.0).reshape(2, 3) + r for r in range(size)] if rank == 0 else None
    dist.scatter(out, parts, src=0)
    return out


def scatter_from_another_src(rank: int, size: int) -> Any:
    src = 1 if rank == size - 1 else 0
    out = ds.zeros(2)
    dist.scatter(out, [ds.ones(2) for _ in range(size)] if rank == src else None, src=src)
    return out


def scatter_list_of_another_shape(rank: int, size: int) -> Any:
    out = ds.zeros(2)
    dist.scatter(out, [ds.ones(3) for _ in range(size)] if rank == 0 else None, src=0)
    return out


def all_gather_into_tensor_of_another_dtype(rank: int, size: int) -> Any:
    dtype = ds.int32 if rank == size - 1 else ds.float32
    out = ds.zeros(2 * size, dtype=dtype)
    dist.all_gather_into_tensor(out, ds.ones(2, dtype=dtype))
    return out


def all_gather_with_a_short_list(rank: int, size: int) -> Any:
    out = [ds.zeros(2) for _ in range(size - 1 if rank == size - 1 else size)]
    dist.all_gather(out, ds.ones(2))
    return out


def all_to_all_single_of_another_dtype(rank: int, size: int) -> Any:
    dtype = ds.int32 if rank == size - 1 else ds.float32
    out = ds.zeros(size, dtype=dtype)
    dist.all_to_all_single(out, ds.ones(size, dtype=dtype))
    return out


def all_to_all_single_of_other_splits(rank: int, size: int) -> Any:
    # the last rank expects 2 rows from rank 0 and none from rank 1; every rank sends one row to each
    expect = [2, 0] + [1] * (size - 2) if rank == size - 1 else [1] * size
    out = ds.zeros(sum(expect))
    dist.all_to_all_single(out, ds.ones(size), expect, [1] * size)
    return out


def all_to_all_against_all_reduce(rank: int, size: int) -> Any:
    if rank == size - 1:
        t = ds.ones(2)
        dist.all_reduce(t)
        return t
    out = [ds.zeros(1) for _ in range(size)]
    dist.all_to_all(out, [ds.ones(1) for _ in range(size)])
    return out


def barrier_against_all_reduce(rank: int, size: int) -> Any:
    if rank == size - 1:
        t = ds.ones(7)  # the check's own size: a byte count MPI would not notice
        dist.all_reduce(t)
        return t
    dist.barrier(device_ids=[0])
    return None


def all_gather_object_against_broadcast_object_list(rank: int, size: int) -> Any:
    got: list[Any] = [None] * size
    if rank == size - 1:
        dist.broadcast_object_list(got, src=0)
    else:
        dist.all_gather_object(got, {"rank": rank})
    return got


def broadcast_object_list_of_another_length(rank: int, size: int) -> Any:
    got: list[Any] = [rank] * (3 if rank == size - 1 else 2)
    dist.broadcast_object_list(got, src=0)
    return got


def broadcast_object_list_from_another_src(rank: int, size: int) -> Any:
    got: list[Any] = [rank, rank]
    dist.broadcast_object_list(got, src=1 if rank == size - 1 else 0)
    return got


def gather_object_to_another_dst(rank: int, size: int) -> Any:
    dst = 1 if rank == size - 1 else 0
    out: list[Any] | None = [None] * size if rank == dst else None
    dist.gather_object({"rank": rank}, out, dst=dst)
    return out


def all_gather_object_with_a_short_list(rank: int, size: int) -> Any:
    got: list[Any] = [None] * (size - 1 if rank == size - 1 else size)
    dist.all_gather_object(got, rank)
    return got


def recv_into_another_dtype(rank: int, size: int) -> Any:
    if rank == 0:
        dist.send(ds.ones(4), dst=size - 1)  # 16 bytes of float32 into 16 bytes of float64
    elif rank == size - 1:
        box = ds.zeros(2, dtype=ds.float64)
        dist.recv(box, src=0)
        return box
    return None


def recv_into_a_larger_tensor(rank: int, size: int) -> Any:
    if rank == 0:
        dist.send(ds.ones(2), dst=size - 1)
    elif rank == size - 1:
        box = ds.zeros(4)
        dist.recv(box, src=0)
        return box
    return None


def recv_object_list_of_a_tensor(rank: int, size: int) -> Any:
    if rank == 0:
        dist.send(ds.ones(2), dst=size - 1)
    elif rank == size - 1:
        got: list[Any] = [None]
        dist.recv_object_list(got, src=0)
        return got
    return None


CASES: dict[str, Case] = {
    case.__name__: case
    for case in (
        gather_of_another_dtype,
        gather_of_another_shape,
        gather_to_another_dst,
        gather_list_off_the_destination,
        scatter_into_another_shape,
        scatter_from_another_src,
        scatter_list_of_another_shape,
        all_gather_into_tensor_of_another_dtype,
        all_gather_with_a_short_list,
        all_to_all_single_of_another_dtype,
        all_to_all_single_of_other_splits,
        all_to_all_against_all_reduce,
        barrier_against_all_reduce,
        all_gather_object_against_broadcast_object_list,
        broadcast_object_list_of_another_length,
        broadcast_object_list_from_another_src,
        gather_object_to_another_dst,
        all_gather_object_with_a_short_list,
        recv_into_another_dtype,
        recv_into_a_larger_tensor,
        recv_object_list_of_a_tensor,
    )
}


def run_case(name: str, rank: int, size: int) -> dict[str, Any]:
    try:
        left = CASES[name](rank, size)
    except Exception as exc:  # noqa: BLE001  (recorded for the test to judge)
        record: dict[str, Any] = {
            "raised": type(exc).__name__,
            "types": [c.__name__ for c in type(exc).__mro__],
            "message": str(exc),
            "on_every_rank": raised_on_every_rank(exc),
        }
    else:
        record = {"returned": _values(left)}
    t = ds.tensor([float(rank + 1)])
    dist.all_reduce(t)  # the next call pairs up on every rank
    record["next all_reduce"] = t.item()
    return record


def main(out: Path, names: list[str]) -> None:
    dist.init_process_group("gloo")
    rank, size = dist.get_rank(), dist.get_world_size()
    records = {name: run_case(name, rank, size) for name in names or list(CASES)}
    (out / f"rank{rank}.json").write_text(json.dumps(records))
    dist.destroy_process_group()


if __name__ == "__main__":
    np.seterr(all="ignore")
    main(Path(sys.argv[1]), sys.argv[2:])
