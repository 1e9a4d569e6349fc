"""The program each rank runs under ``mpiexec -n 2`` in tests/distributed (``python mpi_worker.py MODE OUT``).

Also imported (by file path) by the tests, which reuse ``make_model``, ``make_data`` and
``reference_training`` to train in one process for comparison. Nothing runs at import time.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

import downslope as ds
from downslope import distributed as dist
from downslope import nn

N_SAMPLES, N_FEATURES, N_OUT = 44, 5, 3
PER_RANK_BATCH, EPOCHS, DATA_SEED, ORDER_SEED, MODEL_SEED = 4, 3, 0, 7, 100


def make_data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(DATA_SEED)
    x = rng.standard_normal((N_SAMPLES, N_FEATURES)).astype(np.float32)
    y = np.tanh(x @ rng.standard_normal((N_FEATURES, N_OUT))).astype(np.float32)
    return x, y


def make_model(hidden: int = 16) -> nn.Module:
    return nn.Sequential(nn.Linear(N_FEATURES, hidden), nn.Tanh(), nn.Linear(hidden, N_OUT))


class _HandSGD:
    """SGD with momentum, written out (stand-in until downslope.optim lands)."""

    def __init__(self, params: list[Any], lr: float, momentum: float) -> None:
        self.params, self.lr, self.momentum = params, np.float32(lr), np.float32(momentum)
        self.buf = [np.zeros_like(p.data) for p in params]

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def step(self) -> None:
        for p, b in zip(self.params, self.buf):
            b *= self.momentum
            b += p.grad.data
            p.data -= self.lr * b


class _HandAdam(_HandSGD):
    def __init__(self, params: list[Any], lr: float) -> None:
        super().__init__(params, lr, 0.0)
        self.m = [np.zeros_like(p.data) for p in params]
        self.v = [np.zeros_like(p.data) for p in params]
        self.t = 0

    def step(self) -> None:
        self.t += 1
        b1, b2, eps = np.float32(0.9), np.float32(0.999), np.float32(1e-8)
        for p, m, v in zip(self.params, self.m, self.v):
            g = p.grad.data
            m[...] = b1 * m + (1 - b1) * g
            v[...] = b2 * v + (1 - b2) * g * g
            mhat = m / (1 - b1**self.t)
            vhat = v / (1 - b2**self.t)
            p.data -= self.lr * mhat / (np.sqrt(vhat) + eps)


def make_optimizer(name: str, params: list[Any]) -> Any:
    try:
        from downslope.optim import SGD, Adam
    except ImportError:
        return _HandSGD(params, 0.1, 0.9) if name == "sgd" else _HandAdam(params, 0.01)
    if name == "sgd":
        return SGD(params, lr=0.1, momentum=0.9)
    return Adam(params, lr=0.01)


def mse(out: ds.Tensor, y: ds.Tensor) -> ds.Tensor:
    return ((out - y) ** 2).mean()


def train(model: nn.Module, opt: Any, batches: Any, reduce_gradients: bool, bucket_bytes: int | None = None) -> None:
    for xb, yb in batches:
        opt.zero_grad()
        mse(model(xb), yb).backward()
        if reduce_gradients:
            dist.allreduce_gradients(model, bucket_bytes=bucket_bytes or dist.DEFAULT_BUCKET_BYTES)
        opt.step()


def reference_training(name: str, batch: int) -> dict[str, np.ndarray]:
    """One process, batch ``batch``, reading each epoch's permutation default_rng([seed, epoch]) in order."""
    x, y = make_data()
    ds.manual_seed(MODEL_SEED)
    model = make_model()
    opt = make_optimizer(name, list(model.parameters()))
    for epoch in range(EPOCHS):
        order = np.random.default_rng([ORDER_SEED, epoch]).permutation(N_SAMPLES)
        batches = [
            (ds.tensor(x[order[i : i + batch]]), ds.tensor(y[order[i : i + batch]])) for i in range(0, N_SAMPLES, batch)
        ]
        train(model, opt, batches, reduce_gradients=False)
    return model.state_dict()


def distributed_training(name: str, bucket_bytes: int | None = None) -> dict[str, np.ndarray]:
    world = dist.get_world()
    x, y = make_data()
    ds.manual_seed(MODEL_SEED + world.rank)  # a different start on each rank: the broadcast must fix it
    model = make_model()
    dist.broadcast_parameters(model)
    opt = make_optimizer(name, list(model.parameters()))
    if hasattr(opt, "state_dict"):
        dist.broadcast_optimizer_state(opt)
    loader = dist.DistributedDataLoader((x, y), batch_size=PER_RANK_BATCH, seed=ORDER_SEED)
    for _ in range(EPOCHS):
        train(model, opt, loader, reduce_gradients=True, bucket_bytes=bucket_bytes)
    return model.state_dict()


def main(mode: str, out: Path) -> None:
    world = dist.init()
    if mode == "train":
        arrays = {}
        for name in ("sgd", "adam"):
            for key, value in distributed_training(name).items():
                arrays[f"{name}/{key}"] = value
        for key, value in distributed_training("sgd", bucket_bytes=64).items():  # 16 floats per bucket
            arrays[f"bucketed_sgd/{key}"] = value
        metrics = dist.reduce_metrics({"loss": float(world.rank + 1) * 3}, count=world.rank + 2)
        arrays["metrics/loss"] = np.array(metrics["loss"])
        np.savez(out / f"rank{world.rank}.npz", **arrays)
    elif mode == "raise":
        if world.rank == 1:
            raise ValueError("deliberate failure on rank 1")
        time.sleep(0.2)
        dist.allreduce_sum(np.ones(3))  # rank 0 waits here for a partner that will never come
        time.sleep(120)
    elif mode == "mismatch":
        dist.broadcast_parameters(make_model(hidden=16 if world.rank == 0 else 17))
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]))
