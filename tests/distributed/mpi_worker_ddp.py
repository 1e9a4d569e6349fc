"""Programs each rank runs under ``mpiexec -n 2`` for test_ddp.py (``python mpi_worker_ddp.py MODE OUT``):
nn.parallel.DistributedDataParallel beside a one-process reference on the whole batch and beside
PyTorch's own DDP (gloo) on the same batches. Nothing runs at import time."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

import downslope as ds
from downslope import distributed as dist
from downslope import nn, optim
from downslope.nn.parallel import DistributedDataParallel

BATCH, STEPS = 8, 3  # the whole batch; each of the 2 ranks gets half of it


def batches(step: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(100 + step)
    return rng.standard_normal((BATCH, 5)), rng.integers(0, 3, BATCH)


def f64(x: np.ndarray) -> ds.Tensor:
    return ds.tensor(x, dtype=ds.float64)


def initial_weights() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    return {
        "0.weight": rng.standard_normal((8, 5)) * 0.5,
        "0.bias": rng.standard_normal(8) * 0.1,
        "2.weight": rng.standard_normal((3, 8)) * 0.5,
        "2.bias": rng.standard_normal(3) * 0.1,
    }


def ds_model(rank: int = 0) -> nn.Module:
    model = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 3)).double()
    # rank 1 starts elsewhere: DDP's constructor must copy rank 0's parameters
    model.load_state_dict({k: ds.tensor(v + rank, dtype=ds.float64) for k, v in initial_weights().items()})
    return model


def torch_model(rank: int = 0) -> Any:
    import torch

    model = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3)).double()
    model.load_state_dict({k: torch.tensor(v + rank) for k, v in initial_weights().items()})
    return model


def ds_optimizer(kind: str, params: Any) -> Any:
    if kind == "sgd":
        return optim.SGD(params, lr=0.1, momentum=0.9)
    return optim.AdamW(params, lr=0.05, weight_decay=0.1)


def torch_optimizer(kind: str, params: Any) -> Any:
    import torch

    if kind == "sgd":
        return torch.optim.SGD(params, lr=0.1, momentum=0.9)
    return torch.optim.AdamW(params, lr=0.05, weight_decay=0.1)


def snapshot(model: Any) -> dict[str, np.ndarray]:
    return {k: np.array(v.detach().numpy(), dtype=np.float64) for k, v in model.state_dict().items()}


def train(out: Path) -> None:
    """Per optimizer and per way of stepping: the parameters after each step, on every rank."""
    import torch
    import torch.distributed as tdist
    from torch.nn.parallel import DistributedDataParallel as TorchDDP

    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    rank, size = dist.get_rank(), dist.get_world_size()
    tdist.init_process_group("gloo", init_method=f"file://{out}/torch_rendezvous", rank=rank, world_size=size)
    half = slice(rank * BATCH // size, (rank + 1) * BATCH // size)
    saved: dict[str, np.ndarray] = {}
    for kind in ("sgd", "adamw"):
        reference = ds_model()  # one process, the whole batch
        ref_opt = ds_optimizer(kind, reference.parameters())
        ddp = DistributedDataParallel(ds_model(rank))
        opt = ds_optimizer(kind, ddp.parameters())
        acc = DistributedDataParallel(ds_model(rank), device_ids=[rank])  # no_sync over 2 micro-batches
        acc_opt = ds_optimizer(kind, acc.parameters())
        tddp = TorchDDP(torch_model(rank))
        topt = torch_optimizer(kind, tddp.parameters())
        for name, model in (("ddp", ddp.module), ("acc", acc.module), ("torch", tddp.module)):
            for key, value in snapshot(model).items():
                saved[f"{kind}/{name}/init/{key}"] = value
        for step in range(STEPS):
            x, y = batches(step)
            ref_opt.zero_grad()
            nn.functional.cross_entropy(reference(f64(x)), ds.tensor(y)).backward()
            ref_opt.step()
            opt.zero_grad()
            nn.functional.cross_entropy(ddp(f64(x[half])), ds.tensor(y[half])).backward()
            opt.step()
            acc_opt.zero_grad()
            xs, ys = x[half], y[half]
            with acc.no_sync():
                nn.functional.cross_entropy(acc(f64(xs[:2])), ds.tensor(ys[:2])).div(2).backward()
            nn.functional.cross_entropy(acc(f64(xs[2:])), ds.tensor(ys[2:])).div(2).backward()
            acc_opt.step()
            topt.zero_grad()
            torch.nn.functional.cross_entropy(tddp(torch.tensor(x[half])), torch.tensor(y[half])).backward()
            topt.step()
            for name, model in (("ref", reference), ("ddp", ddp.module), ("acc", acc.module), ("torch", tddp.module)):
                for key, value in snapshot(model).items():
                    saved[f"{kind}/{name}/{step}/{key}"] = value
    np.savez(out / f"train{rank}.npz", **saved)
    dist.barrier()
    tdist.destroy_process_group()
    dist.destroy_process_group()


class Branches(nn.Module):
    """``a`` is used on every rank, ``b`` on rank 0 only, ``c`` never."""

    def __init__(self, rank: int) -> None:
        super().__init__()
        self.rank = rank
        self.a, self.b, self.c = nn.Linear(3, 2), nn.Linear(3, 2), nn.Linear(3, 2)

    def forward(self, x: Any) -> Any:
        return self.a(x) + self.b(x) if self.rank == 0 else self.a(x)


def torch_branches(rank: int) -> Any:
    import torch

    class TorchBranches(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b, self.c = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)

        def forward(self, x: Any) -> Any:
            return self.a(x) + self.b(x) if rank == 0 else self.a(x)

    return TorchBranches().double()


def unused(out: Path) -> None:
    """find_unused_parameters=True against torch's; then find_unused_parameters=False with the same model:
    an error at the next forward pass, on every rank."""
    import torch
    import torch.distributed as tdist
    from torch.nn.parallel import DistributedDataParallel as TorchDDP

    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    rank, size = dist.get_rank(), dist.get_world_size()
    tdist.init_process_group("gloo", init_method=f"file://{out}/torch_rendezvous", rank=rank, world_size=size)
    ds.manual_seed(rank)  # different starts: the constructors copy rank 0's
    ours = Branches(rank).double()
    theirs = torch_branches(rank)
    theirs.load_state_dict({k: torch.tensor(v.numpy()) for k, v in ours.state_dict().items()})
    ddp = DistributedDataParallel(ours, find_unused_parameters=True)
    tddp = TorchDDP(theirs, find_unused_parameters=True)
    x = np.random.default_rng(rank).standard_normal((4, 3))
    saved: dict[str, np.ndarray] = {}
    for step in range(2):  # the second backward accumulates onto the first's gradients
        (ddp(f64(x)) ** 2).sum().backward()
        (tddp(torch.tensor(x)) ** 2).sum().backward()
        for name, p in ours.named_parameters():
            saved[f"{step}/ours/{name}"] = np.array(np.nan) if p.grad is None else p.grad.numpy().copy()
        for name, p in theirs.named_parameters():
            saved[f"{step}/torch/{name}"] = np.array(np.nan) if p.grad is None else p.grad.numpy().copy()
    strict = DistributedDataParallel(Branches(0).double())  # b is used on every rank, c on none
    strict(f64(x)).sum().backward()
    try:
        strict(f64(x))
    except ds.DownslopeError as exc:
        (out / f"unused_error{rank}.txt").write_text(f"{type(exc).__name__}: {exc}")
    dist.barrier()  # both ranks got here: nothing hangs
    np.savez(out / f"unused{rank}.npz", **saved)
    tdist.destroy_process_group()
    dist.destroy_process_group()


def buffers(out: Path) -> None:
    """BatchNorm's running statistics under our DDP and torch's, on each rank, after each forward pass."""
    import torch
    import torch.distributed as tdist
    from torch.nn.parallel import DistributedDataParallel as TorchDDP

    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    rank, size = dist.get_rank(), dist.get_world_size()
    tdist.init_process_group("gloo", init_method=f"file://{out}/torch_rendezvous", rank=rank, world_size=size)
    ds.manual_seed(0)
    ours = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3)).double()
    ours[1].running_mean.array[...] = rank + 1.0  # rank 1 starts elsewhere: the constructor sends rank 0's
    theirs = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3)).double()
    theirs.load_state_dict({k: torch.tensor(v.numpy()) for k, v in ours.state_dict().items()})
    ddp, tddp = DistributedDataParallel(ours), TorchDDP(theirs)
    opt = optim.SGD(ddp.parameters(), lr=0.1)
    topt = torch.optim.SGD(tddp.parameters(), lr=0.1)
    saved: dict[str, np.ndarray] = {}
    rng = np.random.default_rng(rank)
    plan = [("train", True), ("train", True), ("eval", False), ("eval", False), ("train", True), ("nosync", True)]
    for i, (mode, grad) in enumerate(plan):
        x = rng.standard_normal((5, 4)) + rank
        ddp.train(mode != "eval")
        tddp.train(mode != "eval")
        opt.zero_grad()
        topt.zero_grad()
        if mode == "nosync":
            with ddp.no_sync(), tddp.no_sync():
                ddp(f64(x)).sum().backward()
                tddp(torch.tensor(x)).sum().backward()
        elif grad:
            ddp(f64(x)).sum().backward()
            tddp(torch.tensor(x)).sum().backward()
            opt.step()
            topt.step()
        else:
            with ds.no_grad(), torch.no_grad():
                ddp(f64(x))
                tddp(torch.tensor(x))
        for k, v in ours.state_dict().items():
            saved[f"{i}/ours/{k}"] = np.array(v.numpy(), dtype=np.float64)
        for k, v in theirs.state_dict().items():
            saved[f"{i}/torch/{k}"] = np.array(v.numpy(), dtype=np.float64)
    np.savez(out / f"buffers{rank}.npz", **saved)
    tdist.destroy_process_group()
    dist.destroy_process_group()


def mismatch(out: Path) -> None:
    """Rank 1 builds a wider layer: the constructor fails on every rank, naming the difference."""
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    try:
        DistributedDataParallel(nn.Sequential(nn.Linear(4, 3 + rank)))
    except ds.DownslopeError as exc:
        (out / f"mismatch{rank}.txt").write_text(f"{type(exc).__name__}: {exc}")
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    {"train": train, "unused": unused, "buffers": buffers, "mismatch": mismatch}[sys.argv[1]](Path(sys.argv[2]))
