"""What each rank runs under ``mpiexec -n 2`` for test_sync_batchnorm_mpi.py and test_fit_inputs.py
(``python mpi_worker_sync.py MODE OUT``).

Also imported (by file path) by those tests, which reuse the data and models to compute the one-process
reference. Nothing runs at import time.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

import downslope as ds
from downslope import distributed as dist
from downslope import nn, optim
from downslope.data import TensorDataset

# ------------------------------------------------------------------ SyncBatchNorm
BN_SHAPES = ((3, 4, 5, 2), (5, 4, 5, 2))  # rank 0's batch A and rank 1's batch B (uneven), (N, C, H, W)
BN_STEPS, BN_MOMENTUM = 3, 0.2


def bn_data(step: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Each rank's (input, upstream gradient) at ``step``, in float64."""
    rng = np.random.default_rng(100 + step)
    return [(rng.standard_normal(s) * 2 + 0.5 * step, rng.standard_normal(s)) for s in BN_SHAPES]


def bn_parameters() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    return rng.standard_normal(BN_SHAPES[0][1]), rng.standard_normal(BN_SHAPES[0][1])


def sync_batch_norm(out: Path) -> None:
    """A BatchNorm2d converted to SyncBatchNorm, trained for a few steps on this rank's batches."""
    rank = dist.rank()
    weight, bias = bn_parameters()
    layer = nn.SyncBatchNorm.convert_sync_batchnorm(nn.BatchNorm2d(BN_SHAPES[0][1], momentum=BN_MOMENTUM).double())
    layer.weight.data = ds.tensor(weight, dtype=ds.float64)
    layer.bias.data = ds.tensor(bias, dtype=ds.float64)
    arrays: dict[str, np.ndarray] = {}
    for step in range(BN_STEPS):
        x, g = bn_data(step)[rank]
        xt = ds.tensor(x, dtype=ds.float64, requires_grad=True)
        y = layer(xt)
        (y * ds.tensor(g, dtype=ds.float64)).sum().backward()
        arrays[f"{step}/out"] = y.detach().numpy()
        arrays[f"{step}/grad_x"] = xt.grad.numpy()
        arrays[f"{step}/grad_weight"] = layer.weight.grad.numpy().copy()
        arrays[f"{step}/grad_bias"] = layer.bias.grad.numpy().copy()
        layer.zero_grad()
    for name in ("running_mean", "running_var", "num_batches_tracked"):
        arrays[name] = getattr(layer, name).numpy().copy()
    layer.eval()  # eval mode: the running statistics, no collective (rank 1 alone runs it)
    if rank == 1:
        arrays["eval_out"] = layer(ds.tensor(bn_data(0)[0][0], dtype=ds.float64)).detach().numpy()
    model, opt = bn_model_and_optimizer()
    x, y = bn_fit_data()
    dist.fit(
        nn.SyncBatchNorm.convert_sync_batchnorm(model), nn.MSELoss(), opt, (x, y), batch_size=BN_FIT_BATCH,
        epochs=2, seed=ORDER_SEED,
    )  # fmt: skip
    for key, value in model.state_dict().items():
        arrays[f"fit/{key}"] = value.numpy().copy()
    np.savez(out / f"bn{rank}.npz", **arrays)


BN_FIT_BATCH = 5  # per rank


def bn_fit_data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(9)
    x = (rng.standard_normal((40, 4)) * 3 + 1).astype(np.float32)
    return x, np.sin(x[:, :2]).astype(np.float32)


def bn_model_and_optimizer() -> tuple[nn.Module, Any]:
    ds.manual_seed(MODEL_SEED)
    model = nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.Tanh(), nn.Linear(6, 2))
    return model, optim.SGD(model.parameters(), lr=0.1, momentum=0.9)


# ------------------------------------------------------------------ dist.fit with several inputs
N_SAMPLES, PER_RANK_BATCH, EPOCHS, ORDER_SEED, MODEL_SEED = 30, 4, 3, 5, 11
FORMS = ("list", "tuple", "dict", "tensor_dataset")


def inputs_data() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Category ids (an Embedding's input), numbers, the targets; and 7 validation rows' numbers."""
    rng = np.random.default_rng(3)
    ids = rng.integers(0, 6, (N_SAMPLES, 2))
    numbers = rng.standard_normal((N_SAMPLES, 3)).astype(np.float32)
    targets = np.tanh(numbers[:, :2] + ids[:, :1] / 6.0).astype(np.float32)
    return ids, numbers, targets, rng.standard_normal((7, 3)).astype(np.float32)


class TwoInputs(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(6, 3)
        self.mix = nn.Linear(6 + 3, 8)
        self.out = nn.Linear(8, 2)

    def forward(self, ids: ds.Tensor, numbers: ds.Tensor) -> ds.Tensor:
        return self.out(ds.tanh(self.mix(ds.cat([self.embed(ids).flatten(1), numbers], 1))))


def fit_data(form: str) -> tuple[Any, Any]:
    """``(train, validation)`` in ``form``: the ids and numbers as a list, a tuple, a dict by name, or a
    TensorDataset(ids, numbers, y)."""
    ids, numbers, targets, val_numbers = inputs_data()
    val = (ids[:7], val_numbers, targets[:7])
    if form == "tensor_dataset":
        return TensorDataset(ids, numbers, targets), TensorDataset(*val)
    if form == "dict":
        return ({"numbers": numbers, "ids": ids}, targets), ({"numbers": val[1], "ids": val[0]}, val[2])
    kind = list if form == "list" else tuple
    return (kind([ids, numbers]), targets), (kind(val[:2]), val[2])


def fit_options() -> dict[str, Any]:
    return {"epochs": EPOCHS, "metrics": ["mae"]}


def make_model_and_optimizer() -> tuple[nn.Module, Any]:
    ds.manual_seed(MODEL_SEED)
    model = TwoInputs()
    return model, optim.Adam(model.parameters(), lr=0.01)


def fit_several_inputs(out: Path) -> None:
    rank = dist.rank()
    arrays: dict[str, np.ndarray] = {}
    for form in FORMS:
        model, opt = make_model_and_optimizer()
        train, validation = fit_data(form)
        history = dist.fit(
            model, nn.MSELoss(), opt, train, validation=validation, batch_size=PER_RANK_BATCH, seed=ORDER_SEED,
            **fit_options(),
        )  # fmt: skip
        for key, value in model.state_dict().items():
            arrays[f"{form}/param/{key}"] = value.numpy().copy()
        for key in ("loss", "val_loss", "val_mae"):
            arrays[f"{form}/history/{key}"] = np.array(history[key])
    np.savez(out / f"fit{rank}.npz", **arrays)


def launch(mpiexec: list[str], mode: str, out: Path, timeout: float = 120) -> str:
    """Run ``mode`` on 2 ranks (one BLAS thread each, as tests/distributed/conftest.py launches); its output."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMPI_", "PMIX_", "PMI_", "PRTE_"))}
    env.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    cmd = [*mpiexec, "-n", "2", sys.executable, __file__, mode, str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    return output


def main(mode: str, out: Path) -> None:
    dist.init()
    if mode == "sync_bn":
        sync_batch_norm(out)
    elif mode == "fit_inputs":
        fit_several_inputs(out)
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]))
