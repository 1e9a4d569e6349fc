"""What each rank runs under ``mpiexec -n 2`` for test_torch_calls.py (``python mpi_worker_torch_calls.py OUT
PORT``): torch.distributed's gather/scatter/reduce_scatter/all_to_all/send/recv and
distributed.nn.all_gather, run through downslope and through torch's gloo backend on the same inputs
(in the same process), each rank saving both. Nothing runs at import time."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np


def inputs(rank: int, size: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(20 + rank)
    return {
        "x": rng.standard_normal((2, 3)).astype(np.float32),
        "big": rng.standard_normal((2 * size, 3)).astype(np.float32),
        "ints": rng.integers(-9, 9, size=(size, 4)).astype(np.int64),
        "a2a": (np.arange(3 * size * 2, dtype=np.float64) + 100 * rank).reshape(3 * size, 2),
    }


def run(lib, dist, rank: int, size: int) -> dict[str, np.ndarray]:  # noqa: ANN001  (torch or downslope)
    mine = inputs(rank, size)
    t = lib.from_numpy
    saved: dict[str, np.ndarray] = {}
    gathered = [lib.zeros(2, 3) for _ in range(size)] if rank == 1 else None
    dist.gather(t(mine["x"].copy()), gathered, dst=1)
    if gathered is not None:
        saved["gather"] = np.stack([g.numpy() for g in gathered])
    out = lib.zeros(2, 3)
    dist.scatter(out, [t(mine["big"][2 * r : 2 * r + 2].copy()) for r in range(size)] if rank == 0 else None, src=0)
    saved["scatter"] = out.numpy()
    flat = lib.zeros(2 * size, 3)
    dist.all_gather_into_tensor(flat, t(mine["x"].copy()))
    saved["all_gather_into_tensor"] = flat.numpy()
    part = lib.zeros(2, 3)
    dist.reduce_scatter_tensor(part, t(mine["big"].copy()))
    saved["reduce_scatter_tensor/SUM"] = part.numpy()
    ipart = lib.zeros(4, dtype=lib.int64)
    dist.reduce_scatter_tensor(ipart, t(mine["ints"].copy().reshape(-1)), op=dist.ReduceOp.MAX)
    saved["reduce_scatter_tensor/MAX"] = ipart.numpy()
    part = lib.zeros(2, 3)
    dist.reduce_scatter(part, [t(mine["big"][2 * r : 2 * r + 2].copy()) for r in range(size)], op=dist.ReduceOp.SUM)
    saved["reduce_scatter"] = part.numpy()
    a2a = lib.zeros(3 * size, 2, dtype=lib.float64)
    dist.all_to_all_single(a2a, t(mine["a2a"].copy()))
    saved["all_to_all_single"] = a2a.numpy()
    # uneven splits: rank r sends r + 1 rows to rank 0 and the rest to rank 1 (two ranks)
    send_sizes = [rank + 1, 3 * size - rank - 1]
    recv_sizes = [1 + r if rank == 0 else 3 * size - r - 1 for r in range(size)]
    a2a = lib.zeros(sum(recv_sizes), 2, dtype=lib.float64)
    dist.all_to_all_single(a2a, t(mine["a2a"].copy()), recv_sizes, send_sizes)
    saved["all_to_all_single/uneven"] = a2a.numpy()
    box = lib.zeros(2, 3)
    if rank == 0:
        dist.send(t(mine["x"].copy()), dst=1)
        dist.recv(box, src=1)
        saved["recv/src"] = np.array(1)
    else:
        sender = dist.recv(box)
        saved["recv/src"] = np.array(sender)
        dist.send(t(mine["x"].copy() * 2), dst=0)
    saved["recv"] = box.numpy()
    dist.monitored_barrier()
    # open_clip's gather_with_grad: every rank's features, each rank's loss reading all of them
    feats = t(mine["x"].copy()).requires_grad_()
    if lib.__name__ == "torch":
        from torch.distributed.nn import functional as functional_collectives
    else:
        from downslope.distributed.nn import functional as functional_collectives
    everyone = functional_collectives.all_gather(feats)
    weights = [float(rank + 1 + 3 * r) for r in range(size)]
    loss = sum(w * (g * g).sum() for w, g in zip(weights, everyone))
    loss.backward()
    saved["nn.all_gather"] = np.stack([g.detach().numpy() for g in everyone])
    saved["nn.all_gather/grad"] = feats.grad.numpy()
    return saved


def main(out: Path, port: str) -> None:
    import torch
    import torch.distributed as tdist

    import downslope as ds
    from downslope import distributed as dist

    dist.init_process_group("gloo")
    rank, size = dist.get_rank(), dist.get_world_size()
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=port)
    tdist.init_process_group("gloo", rank=rank, world_size=size)
    theirs = run(torch, tdist, rank, size)
    ours = run(ds, dist, rank, size)
    np.savez(
        out / f"rank{rank}.npz",
        **{f"torch:{k}": v for k, v in theirs.items()},
        **{f"ds:{k}": v for k, v in ours.items()},
    )
    tdist.destroy_process_group()
    dist.destroy_process_group()


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2])
