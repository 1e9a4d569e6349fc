"""One program, two libraries: torch.distributed's object calls, all_to_all, the group queries and the
differentiable collectives of ``distributed.nn.functional``, run on 2 ranks by downslope under
``mpiexec`` (``python mpi_worker_torch_names.py downslope OUT``) and by PyTorch over gloo under
``torchrun`` (``... torch OUT``). Each rank writes what it got to ``OUT/<lib>_rank<r>.json``;
test_torch_names.py compares the two. Nothing runs at import time."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def _values(t: Any) -> list[float]:
    return [float(v) for v in t.detach().reshape(-1).tolist()]


def _attempt(record: dict[str, Any], name: str, call: Any) -> None:
    try:
        record[name] = call()
    except Exception as exc:  # a call the backend does not support is recorded, not fatal
        record[name] = {"raised": type(exc).__name__, "message": str(exc)[:300]}


def main(lib: str, out: Path) -> None:
    if lib == "torch":
        import torch
        import torch.distributed as dist
        import torch.distributed.nn.functional as F  # noqa: N812
    else:
        import downslope as torch  # type: ignore[no-redef]
        import downslope.distributed as dist  # type: ignore[no-redef]
        import downslope.distributed.nn.functional as F  # type: ignore[no-redef]  # noqa: N812
    dist.init_process_group("gloo")
    rank, size = dist.get_rank(), dist.get_world_size()
    record: dict[str, Any] = {}
    f64 = torch.float64

    def gather_object() -> Any:
        got = [None] * size if rank == 1 else None
        dist.gather_object({"rank": rank, "vals": [rank, 2 * rank], "pair": (rank, "x")}, got, dst=1)
        return repr(got)

    def scatter_object_list() -> Any:
        got: list[Any] = [None]
        sent = [{"to": 0}, {"to": 1, "seen": {1, 2}}] if rank == 0 else None
        dist.scatter_object_list(got, sent, src=0)
        return repr(got)

    def send_recv_object_list() -> Any:
        if rank == 0:
            dist.send_object_list([{"a": 1}, "x", 3.5], dst=1)
            return None
        got: list[Any] = [None, None, None]
        sender = dist.recv_object_list(got, src=0)
        return [repr(got), sender]

    def all_to_all() -> Any:
        # rank s sends rank k a tensor of s + k + 1 values: the pairs differ in size
        inputs = [torch.arange(rank + k + 1, dtype=f64) + 10 * rank + k for k in range(size)]
        outputs = [torch.zeros(s + rank + 1, dtype=f64) for s in range(size)]
        dist.all_to_all(outputs, inputs)
        return [_values(t) for t in outputs]

    def all_to_all_equal() -> Any:
        inputs = [torch.tensor([10.0 * rank + k, -1.0 - k], dtype=f64) for k in range(size)]
        outputs = [torch.zeros(2, dtype=f64) for _ in range(size)]
        dist.all_to_all(outputs, inputs)
        return [_values(t) for t in outputs]

    def queries() -> Any:
        return {
            "global rank of 1": dist.get_global_rank(dist.group.WORLD, 1),
            "ranks": dist.get_process_group_ranks(dist.group.WORLD),
            "Backend('GLOO')": dist.Backend("GLOO"),
            "Backend.NCCL": dist.Backend.NCCL,
            "Backend.MPI": dist.Backend.MPI,
            "NON_GROUP_MEMBER": dist.GroupMember.NON_GROUP_MEMBER,
        }

    def weights(n: int) -> Any:
        return torch.tensor([float(rank + 1 + 2 * i) for i in range(n)], dtype=f64)

    def fn_all_reduce() -> Any:
        x = torch.tensor([1.0 + rank, 2.0 * rank + 3, -1.0], dtype=f64, requires_grad=True)
        y = F.all_reduce(x)
        (y * weights(3)).sum().backward()
        return [_values(y), _values(x.grad), _values(x)]

    def fn_broadcast() -> Any:
        x = torch.tensor([1.0 + rank, -2.0], dtype=f64, requires_grad=True)
        y = F.broadcast(x, src=1)
        (y * weights(2)).sum().backward()
        return [_values(y), _values(x.grad)]

    def fn_reduce_scatter() -> Any:
        parts = [torch.tensor([1.0 + rank + k, 3.0 * k], dtype=f64, requires_grad=True) for k in range(size)]
        y = F.reduce_scatter(torch.zeros(2, dtype=f64), parts)
        (y * weights(2)).sum().backward()
        return [_values(y)] + [_values(p.grad) for p in parts]

    def fn_all_to_all() -> Any:
        parts = [torch.tensor([1.0 + rank, 5.0 * k], dtype=f64, requires_grad=True) for k in range(size)]
        ys = F.all_to_all([torch.zeros(2, dtype=f64) for _ in range(size)], parts)
        sum((y * weights(2) * (k + 1)).sum() for k, y in enumerate(ys)).backward()
        return [[_values(y) for y in ys]] + [_values(p.grad) for p in parts]

    def fn_gather() -> Any:
        x = torch.tensor([1.0 + rank, 4.0], dtype=f64, requires_grad=True)
        ys = F.gather(x, dst=0)
        sum((y * weights(2) * (k + 1)).sum() for k, y in enumerate(ys)).backward()
        return [[_values(y) for y in ys], _values(x.grad)]

    def fn_scatter() -> Any:
        parts = [torch.tensor([1.0 + rank, 2.0 + k], dtype=f64, requires_grad=True) for k in range(size)]
        y = F.scatter(parts, src=0)
        (y * weights(2)).sum().backward()
        return [_values(y)] + [_values(p.grad) for p in parts]

    for name, call in [
        ("gather_object", gather_object),
        ("scatter_object_list", scatter_object_list),
        ("send_object_list", send_recv_object_list),
        ("all_to_all", all_to_all),
        ("all_to_all equal", all_to_all_equal),
        ("queries", queries),
        ("nn all_reduce", fn_all_reduce),
        ("nn broadcast", fn_broadcast),
        ("nn reduce_scatter", fn_reduce_scatter),
        ("nn all_to_all", fn_all_to_all),
        ("nn gather", fn_gather),
        ("nn scatter", fn_scatter),
    ]:
        _attempt(record, name, call)
        dist.barrier()  # a call that raised on one rank only must not leave the next one out of step
    (out / f"{lib}_rank{rank}.json").write_text(json.dumps(record, indent=1))
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]))
