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
from downslope.optim import SGD, Adam
from downslope.train import CSVLogger, EarlyStopping, ModelCheckpoint
from downslope.train.callbacks import Callback

N_SAMPLES, N_FEATURES, N_OUT = 44, 5, 3
PER_RANK_BATCH, EPOCHS, DATA_SEED, ORDER_SEED, MODEL_SEED = 4, 3, 0, 7, 100


def host_state(model: nn.Module) -> dict[str, np.ndarray]:
    """The model's state as NumPy copies (its state_dict's tensors share the model's memory)."""
    return {k: v.numpy().copy() for k, v in model.state_dict().items()}


def make_data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(DATA_SEED)
    x = rng.standard_normal((N_SAMPLES, N_FEATURES)).astype(np.float32)
    y = np.tanh(x @ rng.standard_normal((N_FEATURES, N_OUT))).astype(np.float32)
    return x, y


def make_model(hidden: int = 16) -> nn.Module:
    return nn.Sequential(nn.Linear(N_FEATURES, hidden), nn.Tanh(), nn.Linear(hidden, N_OUT))


def make_optimizer(name: str, params: list[Any]) -> Any:
    if name == "sgd":
        return SGD(params, lr=0.1, momentum=0.9)
    return Adam(params, lr=0.01)


def mse(out: ds.Tensor, y: ds.Tensor) -> ds.Tensor:
    return ((out - y) ** 2).mean()


N_VAL = 13  # odd: the two ranks score 7 and 6 validation samples


def make_validation() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(DATA_SEED + 1)
    x = rng.standard_normal((N_VAL, N_FEATURES)).astype(np.float32)
    return x, np.tanh(x).astype(np.float32)[:, :N_OUT]


def fit_kwargs() -> dict[str, Any]:
    return {"validation": make_validation(), "epochs": EPOCHS, "metrics": ["mae"], "seed": ORDER_SEED}


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
    return host_state(model)


def distributed_training(name: str, bucket_bytes: int | None = None) -> dict[str, np.ndarray]:
    world = dist.get_world()
    x, y = make_data()
    ds.manual_seed(MODEL_SEED + world.rank)  # a different start on each rank: the broadcast must fix it
    model = make_model()
    dist.broadcast_parameters(model)
    opt = make_optimizer(name, list(model.parameters()))
    dist.broadcast_optimizer_state(opt)
    loader = dist.DistributedDataLoader((x, y), batch_size=PER_RANK_BATCH, seed=ORDER_SEED)
    for _ in range(EPOCHS):
        train(model, opt, loader, reduce_gradients=True, bucket_bytes=bucket_bytes)
    return host_state(model)


def wrapped_training() -> dict[str, np.ndarray]:
    """Adam through DistributedOptimizer (the path fit takes): must equal allreduce_gradients + Adam."""
    x, y = make_data()
    ds.manual_seed(MODEL_SEED)
    model = make_model()
    opt = dist.DistributedOptimizer(make_optimizer("adam", list(model.parameters())))
    loader = dist.DistributedDataLoader((x, y), batch_size=PER_RANK_BATCH, seed=ORDER_SEED)
    for _ in range(EPOCHS):
        train(model, opt, loader, reduce_gradients=False)
    return host_state(model)


def optimizer_state_broadcast() -> dict[str, np.ndarray]:
    """Rank 0 alone takes two Adam steps; the broadcast must give rank 1 the same weights and moments."""
    world = dist.get_world()
    ds.manual_seed(MODEL_SEED + world.rank)
    model = make_model()
    opt = make_optimizer("adam", list(model.parameters()))
    if world.rank == 0:
        x, y = make_data()
        train(model, opt, [(ds.tensor(x), ds.tensor(y))] * 2, reduce_gradients=False)
    dist.broadcast_parameters(model)
    dist.broadcast_optimizer_state(opt)
    flat: dict[str, np.ndarray] = {}
    for index, slot in opt.state_dict()["state"].items():
        for name, value in slot.items():
            flat[f"{index}/{name}"] = np.asarray(value)
    return {**host_state(model), **flat}


def fit_training(out: Path) -> tuple[dict[str, np.ndarray], Any]:
    world = dist.get_world()
    x, y = make_data()
    ds.manual_seed(MODEL_SEED + world.rank)
    model = make_model()
    opt = make_optimizer("adam", list(model.parameters()))
    callbacks = [
        EarlyStopping(monitor="val_loss", patience=100),
        ModelCheckpoint(out / f"written_by_rank{world.rank}.ckpt"),
        CSVLogger(out / f"written_by_rank{world.rank}.csv"),
    ]
    history = dist.fit(
        model,
        nn.MSELoss(),
        opt,
        (x, y),
        batch_size=PER_RANK_BATCH,
        callbacks=callbacks,
        checkpoint_dir=out / f"written_by_rank{world.rank}",
        verbose=1,  # printed by rank 0 only
        **fit_kwargs(),
    )
    return host_state(model), history


SCALED_LR, WARMUP_STEPS = 0.05, 4


def fit_linear_scaling() -> tuple[dict[str, np.ndarray], Any]:
    """Plain SGD through dist.fit with the linear scaling rule and warm-up (2 epochs = 12 updates)."""
    x, y = make_data()
    ds.manual_seed(MODEL_SEED)
    model = make_model()
    opt = SGD(model.parameters(), lr=SCALED_LR)
    history = dist.fit(
        model, nn.MSELoss(), opt, (x, y), batch_size=PER_RANK_BATCH, epochs=2, seed=ORDER_SEED,
        lr_scaling="linear", warmup_steps=WARMUP_STEPS,
    )  # fmt: skip
    return host_state(model), history


class ExitOnRankOne(Callback):
    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        if dist.rank() == 1:
            sys.exit(3)


class RaiseOnRankOne(Callback):
    def on_batch_end(self, batch: int, logs: Any = None) -> None:
        if dist.rank() == 1 and batch == 2:
            raise ValueError("deliberate failure on rank 1 inside fit")


class StopOnRankOne(Callback):
    def on_batch_end(self, batch: int, logs: Any = None) -> None:
        if dist.rank() == 1 and batch == 2:
            self.stop("rank one had enough")


class AnnounceAndPace(Callback):
    """Write this rank's pid once training runs (so a test can signal it); pace the epochs."""

    def __init__(self, out: Path) -> None:
        self.out = out

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        if epoch == 1:
            (self.out / f"pid{dist.rank()}").write_text(str(__import__("os").getpid()))
        time.sleep(0.02)


def save_outcome(out: Path, model: nn.Module, history: Any) -> None:
    arrays = {f"param/{k}": v for k, v in host_state(model).items()}
    arrays["epochs"] = np.array(len(history))
    np.savez(out / f"rank{dist.rank()}.npz", **arrays)
    (out / f"reason{dist.rank()}.txt").write_text(str(history.stop_reason))


def early_stop_on_one_rank(out: Path) -> None:
    """EarlyStopping only on rank 1 (patience 1, an improvement must beat 1e9: it stops after epoch 2
    and restores epoch 1's weights there). Both ranks must stop after epoch 2 with equal weights."""
    x, y = make_data()
    ds.manual_seed(MODEL_SEED)
    model = make_model()
    callbacks = [EarlyStopping(monitor="loss", patience=1, min_delta=1e9, restore_best_weights=True)]
    history = dist.fit(
        model, nn.MSELoss(), make_optimizer("adam", list(model.parameters())), (x, y),
        batch_size=PER_RANK_BATCH, epochs=6, seed=ORDER_SEED, callbacks=callbacks if dist.rank() == 1 else [],
    )  # fmt: skip
    save_outcome(out, model, history)
    if dist.rank() == 1:  # what rank 1's own view restored
        np.savez(out / "restored.npz", **{k: v for k, v in callbacks[0].best_weights.items()})


def interrupted(out: Path) -> None:
    """Trains for up to 100 000 paced epochs until the test sends SIGINT to rank 1."""
    x, y = make_data()
    ds.manual_seed(MODEL_SEED)
    model = make_model()
    history = dist.fit(
        model, nn.MSELoss(), make_optimizer("adam", list(model.parameters())), (x, y),
        batch_size=PER_RANK_BATCH, epochs=100_000, seed=ORDER_SEED, callbacks=[AnnounceAndPace(out)],
        checkpoint_dir=out / "ckpt",
    )  # fmt: skip
    save_outcome(out, model, history)


def main(mode: str, out: Path) -> None:
    world = dist.init()
    if mode == "train":
        arrays = {}
        for name in ("sgd", "adam"):
            for key, value in distributed_training(name).items():
                arrays[f"{name}/{key}"] = value
        for key, value in distributed_training("sgd", bucket_bytes=64).items():  # 16 floats per bucket
            arrays[f"bucketed_sgd/{key}"] = value
        for key, value in wrapped_training().items():
            arrays[f"wrapped_adam/{key}"] = value
        for key, value in optimizer_state_broadcast().items():
            arrays[f"optstate/{key}"] = value
        params, history = fit_training(out)
        for key, value in params.items():
            arrays[f"fit/{key}"] = value
        for key in ("loss", "val_loss", "val_mae"):
            arrays[f"history/{key}"] = np.array(history[key])
        params, history = fit_linear_scaling()
        for key, value in params.items():
            arrays[f"lr_scaling/{key}"] = value
        arrays["lr_scaling_history/lr"] = np.array(history["lr"])
        metrics = dist.reduce_metrics({"loss": float(world.rank + 1) * 3}, count=world.rank + 2)
        arrays["metrics/loss"] = np.array(metrics["loss"])
        np.savez(out / f"rank{world.rank}.npz", **arrays)
    elif mode == "raise":
        if world.rank == 1:
            raise ValueError("deliberate failure on rank 1")
        time.sleep(0.2)
        dist.allreduce_sum(np.ones(3))  # rank 0 waits here for a partner that will never come
        time.sleep(120)
    elif mode == "stall":  # rank 1 stops answering (as under kill -STOP); rank 0 must not wait forever
        if world.rank == 1:
            time.sleep(120)
        dist.allreduce_sum(np.ones(3))
    elif mode == "raise_in_fit":  # rank 0 is in the gradient Allreduce of the next step when rank 1 raises
        x, y = make_data()
        model = make_model()
        opt = make_optimizer("adam", list(model.parameters()))
        dist.fit(model, nn.MSELoss(), opt, (x, y), batch_size=PER_RANK_BATCH, epochs=50, callbacks=[RaiseOnRankOne()])
    elif mode == "exit_in_fit":  # rank 1 calls sys.exit(3) from a callback: no exception reaches the hook
        x, y = make_data()
        model = make_model()
        opt = make_optimizer("adam", list(model.parameters()))
        dist.fit(model, nn.MSELoss(), opt, (x, y), batch_size=PER_RANK_BATCH, epochs=50, callbacks=[ExitOnRankOne()])
    elif mode == "stop":
        x, y = make_data()
        model = make_model()
        history = dist.fit(
            model,
            nn.MSELoss(),
            make_optimizer("sgd", list(model.parameters())),
            (x, y),
            batch_size=PER_RANK_BATCH,
            epochs=EPOCHS,
            callbacks=[StopOnRankOne()],
            seed=0,
        )
        (out / f"stop{world.rank}.txt").write_text(f"{len(history)}|{history.stop_reason}")
    elif mode == "early_stop_on_one_rank":
        early_stop_on_one_rank(out)
    elif mode == "interrupted":
        interrupted(out)
    elif mode == "different_epochs":  # the library call with different settings per rank
        x, y = make_data()
        model = make_model()
        dist.fit(model, nn.MSELoss(), make_optimizer("sgd", list(model.parameters())), (x, y), epochs=3 + world.rank)
    elif mode == "different_data":
        x, y = make_data()
        x[0, 0] += world.rank  # one value differs on rank 1
        model = make_model()
        dist.fit(model, nn.MSELoss(), make_optimizer("sgd", list(model.parameters())), (x, y), epochs=2)
    elif mode == "mismatch":
        dist.broadcast_parameters(make_model(hidden=16 if world.rank == 0 else 17))
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]))
