"""BatchNorm's running statistics in data-parallel training: rank 0's buffers broadcast before a forward
pass exactly when PyTorch's DistributedDataParallel broadcasts them (broadcast_buffers=True)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import downslope as ds
from downslope import distributed as dist
from downslope import nn
from downslope.distributed import World
from downslope.distributed.world import _SelfComm


class _RankOneOfTwo(_SelfComm):
    """Rank 1 of two, whose rank 0 holds the buffers ``rank0``: a broadcast copies their bytes in."""

    size = 2

    def __init__(self, rank0: list[np.ndarray]) -> None:
        self.rank0 = np.concatenate([b.reshape(-1).view(np.uint8) for b in rank0])
        self.broadcasts = 0

    def bcast(self, buf: np.ndarray, root: int) -> None:
        assert root == 0 and buf.dtype == np.uint8 and buf.size == self.rank0.size
        self.broadcasts += 1
        buf[...] = self.rank0


@pytest.mark.host_only  # MPI's broadcast packs host arrays (as broadcast_parameters does)
def test_the_buffers_are_broadcast_when_ddp_broadcasts_them() -> None:
    ds.manual_seed(0)
    bn = nn.BatchNorm1d(3, track_running_stats=True)
    rank0 = [np.full(3, 5.0, np.float32), np.full(3, 2.0, np.float32), np.array(7, np.int64)]  # mean, var, count
    comm = _RankOneOfTwo(rank0)
    handle = dist.sync_buffers_before_forward(bn, world=World(rank=1, world_size=2, backend="fake", comm=comm))
    x = ds.randn(4, 3)
    bn(x)  # the first forward: broadcast first, then this rank's batch moves the statistics
    assert comm.broadcasts == 1
    expected = 0.9 * 5.0 + 0.1 * x.numpy().mean(axis=0)
    np.testing.assert_allclose(bn.running_mean.numpy(), expected, rtol=1e-6)
    bn(x)  # after a forward with gradients enabled: broadcast again
    assert comm.broadcasts == 2
    with ds.no_grad():
        bn.eval()
        bn(x)  # the first forward after training (validation) still starts from rank 0's
        assert comm.broadcasts == 3
        np.testing.assert_allclose(bn.running_mean.numpy(), rank0[0])
        assert int(bn.num_batches_tracked) == 7
        bn(x)  # not the ones after it, as DDP
        assert comm.broadcasts == 3
    bn.train()
    bn(x)  # after a no_grad forward, DDP does not broadcast either
    assert comm.broadcasts == 3
    handle.remove()
    bn(x)
    bn(x)
    assert comm.broadcasts == 3


def test_a_world_of_one_needs_no_broadcast() -> None:
    bn = nn.BatchNorm1d(2)
    dist.broadcast_buffers(bn)
    handle = dist.sync_buffers_before_forward(bn)
    bn(ds.ones(3, 2))
    handle.remove()
    with pytest.raises(TypeError, match="expected a Module, got list"):
        dist.broadcast_buffers([bn.running_mean])


@pytest.mark.slow
def test_running_statistics_match_torch_ddp(run_torch_worker: Callable[..., Any]) -> None:
    """The same batches through torch's DistributedDataParallel (gloo), a downslope hand loop with
    sync_buffers_before_forward, and dist.fit: weights, running statistics (each rank's) and the
    validation loss (each rank scores its share with its own statistics) agree."""
    pytest.importorskip("torch")
    launch = run_torch_worker("batchnorm_ddp", timeout=120)
    assert launch.returncode == 0, launch.output
    for rank in range(2):
        saved = dict(np.load(launch.out_dir / f"rank{rank}.npz"))
        for key in (k for k in saved if k.startswith("torch/")):
            name = key.removeprefix("torch/")
            for ours in ("hand", "fit"):
                np.testing.assert_allclose(
                    saved[f"{ours}/{name}"], saved[key], rtol=1e-5, atol=1e-6, err_msg=f"rank {rank} {ours} {name}"
                )
        for ours in ("hand", "fit"):
            np.testing.assert_allclose(saved[f"{ours}_val_loss"], saved["torch_val_loss"], rtol=1e-5, err_msg=ours)
