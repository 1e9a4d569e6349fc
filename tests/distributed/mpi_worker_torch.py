"""Programs each rank runs under ``mpiexec -n 2`` for test_process_group.py and test_exit.py
(``python mpi_worker_torch.py MODE OUT``): torch.distributed's calls, BatchNorm's buffers against
PyTorch's DistributedDataParallel, and ranks that leave early. Nothing runs at import time."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

import downslope as ds
from downslope import distributed as dist
from downslope import nn, optim


def rank_values(rank: int) -> dict[str, np.ndarray]:
    """What rank ``rank`` contributes to the collectives (the test recomputes the results from these)."""
    rng = np.random.default_rng(10 + rank)
    return {
        "f32": rng.standard_normal((2, 3)).astype(np.float32),
        "f64": rng.standard_normal(5),
        "i64": rng.integers(-50, 50, size=4).astype(np.int64),
        "f16": rng.standard_normal(3).astype(np.float16),
    }


def torch_collectives(out: Path) -> None:
    dist.init_process_group(backend="gloo", init_method="env://")
    rank, size = dist.get_rank(), dist.get_world_size()
    mine = rank_values(rank)
    saved: dict[str, np.ndarray] = {}
    for op in ("SUM", "AVG", "PRODUCT", "MIN", "MAX"):
        for key in ("f32", "f64", "f16"):
            t = ds.from_numpy(mine[key].copy())
            dist.all_reduce(t, op=getattr(dist.ReduceOp, op))
            saved[f"all_reduce/{op}/{key}"] = t.numpy()
    for op in ("SUM", "PRODUCT", "MIN", "MAX", "BAND", "BOR", "BXOR"):
        t = ds.from_numpy(mine["i64"].copy())
        dist.all_reduce(t, getattr(dist.ReduceOp, op))
        saved[f"all_reduce/{op}/i64"] = t.numpy()
    t = ds.from_numpy(mine["f64"].copy())
    dist.reduce(t, dst=1, op=dist.ReduceOp.MAX)
    saved["reduce/MAX/f64"] = t.numpy()
    t = ds.from_numpy(mine["f32"].copy())
    dist.broadcast(t, src=1)
    saved["broadcast/f32"] = t.numpy()
    gathered = [ds.zeros(2, 3) for _ in range(size)]
    dist.all_gather(gathered, ds.from_numpy(mine["f32"].copy()))
    for r, g in enumerate(gathered):
        saved[f"all_gather/{r}"] = g.numpy()
    objects: list = [None] * size
    dist.all_gather_object(objects, {"rank": rank, "values": mine["i64"]})
    for r, o in enumerate(objects):
        saved[f"all_gather_object/{r}/rank"] = np.array(o["rank"])
        saved[f"all_gather_object/{r}/values"] = o["values"]
    shared = [f"from rank {rank}", rank * 10] if rank == 1 else [None, None]
    dist.broadcast_object_list(shared, src=1)
    saved["broadcast_object_list/1"] = np.array(shared[1])
    (out / f"text{rank}.txt").write_text(f"{shared[0]}|{dist.get_backend()}")
    dist.barrier()
    np.savez(out / f"rank{rank}.npz", **saved)
    dist.destroy_process_group()
    assert not dist.is_initialized()


N, BATCH, EPOCHS, ORDER_SEED = 48, 6, 3, 5  # N divisible by 2 x BATCH: no padding, the same batches for both


def bn_data() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((N, 5)) * 2 + 1).astype(np.float32)
    xv = (rng.standard_normal((15, 5)) * 2 + 1).astype(np.float32)
    return x, rng.integers(0, 3, N), xv, rng.integers(0, 3, 15)


def bn_model() -> nn.Module:
    ds.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 12), nn.BatchNorm1d(12), nn.ReLU(), nn.Linear(12, 3))


def batchnorm_against_ddp(out: Path) -> None:
    """The same batches through PyTorch's DDP (gloo), a downslope hand loop and dist.fit."""
    import torch
    import torch.distributed as tdist
    from torch.nn.parallel import DistributedDataParallel

    torch.set_num_threads(1)
    world = dist.init()
    rank, size = world.rank, world.world_size
    tdist.init_process_group("gloo", init_method=f"file://{out}/torch_rendezvous", rank=rank, world_size=size)
    x, y, xv, yv = bn_data()
    reference = bn_model()
    tm = torch.nn.Sequential(torch.nn.Linear(5, 12), torch.nn.BatchNorm1d(12), torch.nn.ReLU(), torch.nn.Linear(12, 3))
    tm.load_state_dict({k: torch.tensor(v.numpy()) for k, v in reference.state_dict().items()})
    ddp = DistributedDataParallel(tm)  # broadcast_buffers=True, its default
    topt = torch.optim.SGD(ddp.parameters(), lr=0.05, momentum=0.9)
    hand = bn_model()
    hopt = dist.DistributedOptimizer(optim.SGD(hand.parameters(), lr=0.05, momentum=0.9))
    handle = dist.sync_buffers_before_forward(hand)
    ddp_val, hand_val = [], []
    for epoch in range(EPOCHS):
        order = dist.epoch_permutation(N, ORDER_SEED, epoch)[rank::size]
        tm.train()
        hand.train()
        for start in range(0, len(order), BATCH):
            idx = order[start : start + BATCH]
            topt.zero_grad()
            torch.nn.functional.cross_entropy(ddp(torch.tensor(x[idx])), torch.tensor(y[idx])).backward()
            topt.step()
            hopt.zero_grad()
            nn.functional.cross_entropy(hand(ds.tensor(x[idx])), ds.tensor(y[idx])).backward()
            hopt.step()
        # dist.fit's validation: rank r scores samples r, r+W, ... with its own buffers, sums combined
        tm.eval()
        with torch.no_grad():
            share = np.arange(rank, len(xv), size)
            loss = torch.nn.functional.cross_entropy(
                ddp(torch.tensor(xv[share])), torch.tensor(yv[share]), reduction="sum"
            )
        totals = dist.allreduce_sum([float(loss), float(len(share))])
        ddp_val.append(totals[0] / totals[1])
        hand.eval()
        with ds.no_grad():
            loss = nn.functional.cross_entropy(hand(ds.tensor(xv[share])), ds.tensor(yv[share]), reduction="sum")
        totals = dist.allreduce_sum([float(loss), float(len(share))])
        hand_val.append(totals[0] / totals[1])
    handle.remove()
    fitted = bn_model()
    history = dist.fit(
        fitted,
        nn.CrossEntropyLoss(),
        optim.SGD(fitted.parameters(), lr=0.05, momentum=0.9),
        (x, y),
        validation=(xv, yv),
        batch_size=BATCH,
        epochs=EPOCHS,
        seed=ORDER_SEED,
    )
    saved = {f"torch/{k}": v.numpy() for k, v in tm.state_dict().items()}
    saved.update({f"hand/{k}": v.numpy() for k, v in hand.state_dict().items()})
    saved.update({f"fit/{k}": v.numpy() for k, v in fitted.state_dict().items()})
    saved["torch_val_loss"] = np.array(ddp_val)
    saved["hand_val_loss"] = np.array(hand_val)
    saved["fit_val_loss"] = np.array(history["val_loss"])
    np.savez(out / f"rank{rank}.npz", **saved)
    tdist.destroy_process_group()


def exit_in_hand_loop() -> None:
    """Rank 1 calls sys.exit(3) mid-loop while rank 0 goes on to its next Allreduce."""
    rank = dist.init().rank
    model = nn.Linear(2, 1)
    opt = dist.DistributedOptimizer(optim.SGD(model.parameters(), lr=0.1))
    for i in range(100):
        if rank == 1 and i == 3:
            sys.exit(3)
        opt.zero_grad()
        model(ds.ones(4, 2)).sum().backward()
        opt.step()


def early_clean_exit(out: Path) -> None:
    """Rank 1 ends at once, rank 0 works on alone (no collective) and ends: a clean job, status 0."""
    world = dist.init()
    dist.allreduce_sum(np.ones(2))
    if world.rank == 0:
        time.sleep(4)  # longer than the watchdog's wait before it looks for a rank that left
        (out / "rank0_done.txt").write_text("done")


def main(mode: str, out: Path) -> None:
    if mode == "torch_collectives":
        torch_collectives(out)
    elif mode == "batchnorm_ddp":
        batchnorm_against_ddp(out)
    elif mode == "exit_in_hand_loop":
        exit_in_hand_loop()
    elif mode == "early_clean_exit":
        early_clean_exit(out)
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]))
