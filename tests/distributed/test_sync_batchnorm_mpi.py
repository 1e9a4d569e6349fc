"""nn.SyncBatchNorm over MPI: 2 ranks with batches A and B normalize, backpropagate and update their
running statistics as one BatchNorm does over the batch A+B (float64, to 1e-10); and dist.fit of a
converted model on 2 ranks trains as one process with BatchNorm and the double batch."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

import downslope as ds
from downslope import distributed as dist
from downslope import nn
from downslope.distributed import World
from downslope.distributed.world import _SelfComm

WORKER = Path(__file__).with_name("mpi_worker_sync.py")


@pytest.fixture(scope="module")
def worker() -> ModuleType:
    spec = importlib.util.spec_from_file_location("downslope_mpi_worker_sync", WORKER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_two_ranks_normalize_as_one_batch_norm_of_both_batches(
    mpiexec: list[str], worker: ModuleType, tmp_path: Path
) -> None:
    worker.launch(mpiexec, "sync_bn", tmp_path)
    ranks = [dict(np.load(tmp_path / f"bn{r}.npz")) for r in range(2)]
    weight, bias = worker.bn_parameters()
    ref = nn.BatchNorm2d(worker.BN_SHAPES[0][1], momentum=worker.BN_MOMENTUM).double()
    ref.weight.data = ds.tensor(weight, dtype=ds.float64)
    ref.bias.data = ds.tensor(bias, dtype=ds.float64)
    cut = worker.BN_SHAPES[0][0]
    for step in range(worker.BN_STEPS):
        (xa, ga), (xb, gb) = worker.bn_data(step)
        x = ds.tensor(np.concatenate([xa, xb]), dtype=ds.float64, requires_grad=True)
        y = ref(x)
        (y * ds.tensor(np.concatenate([ga, gb]), dtype=ds.float64)).sum().backward()
        for key, whole in (("out", y.detach().numpy()), ("grad_x", x.grad.numpy())):
            for r, part in enumerate((whole[:cut], whole[cut:])):
                np.testing.assert_allclose(ranks[r][f"{step}/{key}"], part, rtol=1e-10, atol=1e-10, err_msg=key)
        # each rank's parameter gradient is its own share (DDP averages them): together, the whole one
        for key, whole in (("grad_weight", ref.weight.grad), ("grad_bias", ref.bias.grad)):
            joined = ranks[0][f"{step}/{key}"] + ranks[1][f"{step}/{key}"]
            np.testing.assert_allclose(joined, whole.numpy(), rtol=1e-10, atol=1e-10, err_msg=key)
        ref.zero_grad()
    for r in range(2):
        for name in ("running_mean", "running_var", "num_batches_tracked"):
            np.testing.assert_allclose(ranks[r][name], getattr(ref, name).numpy(), rtol=1e-10, err_msg=name)
    ref.eval()
    np.testing.assert_allclose(
        ranks[1]["eval_out"], ref(ds.tensor(worker.bn_data(0)[0][0], dtype=ds.float64)).detach().numpy(), rtol=1e-10
    )
    # dist.fit of a converted model on 2 ranks with batch B = ds.fit of the BatchNorm model on one, batch 2B
    model, opt = worker.bn_model_and_optimizer()
    loader = dist.DistributedDataLoader(
        worker.bn_fit_data(), batch_size=2 * worker.BN_FIT_BATCH, seed=worker.ORDER_SEED, world=_one_process()
    )
    ds.fit(model, nn.MSELoss(), opt, loader, epochs=2)
    for key, ref_value in model.state_dict().items():
        want = ref_value.numpy()
        for r in range(2):
            np.testing.assert_allclose(ranks[r][f"fit/{key}"], want, rtol=1e-5, atol=1e-6, err_msg=key)


def _one_process() -> World:
    return World(rank=0, world_size=1, backend="single", comm=_SelfComm())
