"""Run by test_call_checks.py under ``mpiexec -n 2``: collectives whose ranks pass tensors of another
size, dtype or shape must raise on every rank, leave the tensors as they were, and let the next
matching call pair up.

Usage: mpiexec -n 2 python mpi_worker_call_checks.py OUT_DIR
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import downslope as ds
from downslope import distributed as dist


def _attempt(record: dict[str, Any], name: str, tensor: ds.Tensor, call: Callable[[ds.Tensor], None]) -> None:
    try:
        call(tensor)
    except Exception as exc:  # noqa: BLE001  (recorded for the test to look at)
        record[name] = {"raised": type(exc).__name__, "message": str(exc), "after": tensor.numpy().tolist()}
    else:
        record[name] = {"returned": tensor.numpy().tolist()}


def main(out: Path) -> None:
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    record: dict[str, Any] = {}
    _attempt(record, "broadcast into a larger tensor", ds.ones(3 if rank == 0 else 5) * (rank + 1),
             lambda t: dist.broadcast(t, 0))  # fmt: skip
    wide = ds.ones(4, dtype=ds.float32 if rank == 0 else ds.float64) * (rank + 1)
    _attempt(record, "broadcast into another dtype", wide, lambda t: dist.broadcast(t, 0))
    narrow = ds.ones(3, dtype=ds.float32 if rank == 0 else ds.float64) * (rank + 1)
    _attempt(record, "all_reduce of another dtype", narrow, lambda t: dist.all_reduce(t))
    _attempt(record, "all_reduce of another shape", ds.ones((2, 3) if rank == 0 else (3, 2)) * (rank + 1),
             lambda t: dist.all_reduce(t))  # fmt: skip
    _attempt(record, "matching all_reduce", ds.tensor([1.0, 2.0]) * (rank + 1), lambda t: dist.all_reduce(t))
    (out / f"rank{rank}.json").write_text(json.dumps(record))
    dist.destroy_process_group()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
