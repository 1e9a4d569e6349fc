"""``distributed.fit``: :func:`downslope.train.fit`, data-parallel over the ranks of an MPI job.

The same call as ``ds.fit``, launched with ``mpiexec -n W python script.py``. Around the ordinary
loop it adds:

* the training data sharded by a :class:`DistributedDataLoader` (``batch_size`` is **per rank**:
  the effective batch of one update is ``batch_size * W``);
* the optimizer wrapped in a :class:`DistributedOptimizer` (gradients averaged before each step);
* rank 0's parameters and optimizer state broadcast at the start (after a same-model check);
* validation split across ranks and its numbers combined (sum of ``loss * count`` and ``count``);
  the epoch's training loss averaged over ranks; so every rank logs the same ``loss``/``val_*``;
* stopping agreed on: if any rank's callback stops (divergence, time limit...), all stop at the
  same batch, so no rank is left waiting in an Allreduce;
* only rank 0 prints, writes checkpoints (``checkpoint_dir``, ``ModelCheckpoint``) and CSV logs;
* optionally the linear scaling rule with warm-up (``lr_scaling="linear"``, ``warmup_steps``).

In a plain process (world of one) it is ``ds.fit`` with the sharding loader.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from .. import backend
from ..data import ArrayDataset, DataLoader, Dataset, Subset
from ..data.dataset import dataset_arrays
from ..device import CPU
from ..errors import ConfigError, StateError
from ..optim.protocols import OptimizerLike, SchedulerLike
from ..train.callbacks import (
    BackupAndRestore,
    Callback,
    CallbackList,
    CSVLogger,
    DivergenceGuard,
    Logs,
    ModelCheckpoint,
)
from ..train.history import History
from ..train.inputs import InputsDataset, inputs_dataset, make_loader, model_float_dtype, multi_input, split_validation
from ..train.placement import training_device
from ..train.protocols import LossFn, ModelLike
from .agreement import array_digest, check_same_config, make_parameters_identical, plain
from .collectives import (
    DEFAULT_BUCKET_BYTES,
    allreduce_sum,
    broadcast_object,
    broadcast_optimizer_state,
    broadcast_parameters,
    sync_buffers_before_forward,
)
from .optimizer import DistributedOptimizer
from .sampler import DistributedDataLoader
from .world import DisagreementError, World, end_job_on_error, get_world

_NOT_REDUCED = {"lr", "time", "epoch_time"}
# Callbacks that only write (files, the terminal): they run on rank 0 alone.
_WRITERS: tuple[type, ...] = (ModelCheckpoint, CSVLogger)


def linear_scaling_factor(step: int, world_size: int, warmup_steps: int = 0) -> float:
    """The learning-rate multiplier of the linear scaling rule at update ``step`` (0-based).

    With W ranks the batch of one update is W times larger, so the rule multiplies the learning
    rate tuned for one process by W (Goyal et al. 2017). ``warmup_steps`` ramps the multiplier
    linearly from 1 to W over that many updates, which avoids the early instability of a large rate.

    Example:
        >>> [linear_scaling_factor(s, world_size=4, warmup_steps=3) for s in range(4)]
        [2.0, 3.0, 4.0, 4.0]
    """
    if warmup_steps <= 0 or step + 1 >= warmup_steps:
        return float(world_size)
    return 1.0 + (world_size - 1) * (step + 1) / warmup_steps


class LinearScalingRule(Callback):
    """Multiply every group's learning rate by :func:`linear_scaling_factor` during each update.

    The rate is scaled just before the update and restored just after, so a scheduler keeps
    computing the unscaled rate and the logged ``lr`` is the unscaled (single-process) one.
    """

    def __init__(self, world_size: int, warmup_steps: int = 0) -> None:
        if isinstance(warmup_steps, bool) or not isinstance(warmup_steps, (int, np.integer)) or warmup_steps < 0:
            raise ConfigError(f"LinearScalingRule: warmup_steps must be an integer >= 0, got {warmup_steps!r}")
        self.world_size = int(world_size)
        self.warmup_steps = int(warmup_steps)
        self._saved: list[float] = []

    def _groups(self) -> list[dict[str, Any]]:
        optimizer = self.trainer.optimizer
        if optimizer is None:
            raise StateError("LinearScalingRule: the training state has no optimizer (used outside fit?)")
        return optimizer.param_groups

    def on_batch_begin(self, batch: int, logs: Logs | None = None) -> None:
        step = self.trainer.epoch * int(self.trainer.params.get("steps", 0)) + batch
        factor = linear_scaling_factor(step, self.world_size, self.warmup_steps)
        groups = self._groups()
        self._saved = [g["lr"] for g in groups]
        for g in groups:
            g["lr"] = g["lr"] * factor

    def on_batch_end(self, batch: int, logs: Logs | None = None) -> None:
        for g, lr in zip(self._groups(), self._saved):
            g["lr"] = lr


class _AverageLogsAcrossRanks(Callback):
    """Replace each rank's numbers of the epoch by the global ones, so that EarlyStopping, schedulers,
    the History and checkpoints agree on every rank.

    ``fit`` calls :meth:`combine_epoch_logs` once the epoch's validation is logged, before it steps the
    epoch's scheduler (a ReduceLROnPlateau stepped with one rank's share of the validation loss would
    lower the rate at another epoch on each rank, and their weights would drift apart); the epoch end,
    this callback being the first, averages the numbers of a loop that did not call it."""

    def __init__(self, world: World, val_count: int | None) -> None:
        self.world = world
        self.val_count = val_count  # this rank's validation samples; None: every rank saw all of them
        self._combined: int | None = None  # the epoch whose logs combine_epoch_logs made global

    def combine_epoch_logs(self, epoch: int, logs: Logs) -> None:
        self._average(logs)
        self._combined = epoch

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        combined, self._combined = self._combined, None
        if combined != epoch:
            self._average(logs)

    def _average(self, logs: Logs | None) -> None:
        if logs is None or self.world.world_size == 1:
            return
        train_keys = sorted(k for k, v in logs.items() if _reducible(k, v) and not k.startswith("val_"))
        val_keys = sorted(k for k, v in logs.items() if _reducible(k, v) and k.startswith("val_"))
        if self.val_count is None:
            val_keys = []  # identical on every rank already
        names = train_keys + val_keys
        # Checked every epoch, not only when this rank's keys change: whether to call a collective
        # must never be one rank's own decision (the others would be in the Allreduce below).
        _check_same_names(names, self.world)
        n_val = float(self.val_count or 0)
        values = [float(logs[k]) for k in train_keys] + [float(logs[k]) * n_val for k in val_keys] + [1.0, n_val]
        totals = allreduce_sum(values, world=self.world)
        ranks, val_total = totals[-2], totals[-1]
        for i, k in enumerate(train_keys):
            logs[k] = float(totals[i] / ranks)  # every rank trained on the same number of samples
        for j, k in enumerate(val_keys, start=len(train_keys)):
            logs[k] = float(totals[j] / val_total)


def _reducible(key: str, value: Any) -> bool:
    return key not in _NOT_REDUCED and isinstance(value, (int, float, np.number)) and not isinstance(value, bool)


def _check_same_names(names: list[str], world: World) -> None:
    mine = ",".join(names).encode()
    for other, theirs in enumerate(world.comm.allgather_bytes(mine)):
        if theirs != mine:
            raise DisagreementError(
                f"distributed.fit: rank {world.rank} logged {names} but rank {other} logged "
                f"{theirs.decode().split(',')}; every rank must compute the same metrics"
            )


class _AgreeOnStopping(Callback):
    """Last user callback: if any rank wants to stop, every rank stops at the same point.

    Whatever a rank decides alone is agreed on here with one small Allreduce per batch and per
    epoch: a stop asked for by a callback (divergence guard, time limit, stop-at-loss, early
    stopping on that rank's view), SIGINT/SIGTERM received by that rank (at the epoch's end, where
    the loop honours it), and reaching its own epoch limit. At the end of training, parameters that
    differ across ranks (a callback only one rank ran, such as EarlyStopping restoring its best
    weights) are made identical, taken from the rank whose decision ended training.
    """

    agrees_across_ranks = True  # fit leaves every stop to this callback's agreement (none on one rank alone)

    def __init__(self, world: World) -> None:
        self.world = world
        self.decider: int | None = None  # the first rank that asked to stop

    def on_train_begin(self, logs: Logs | None = None) -> None:
        self.decider = None

    def _agree(self, last_epoch: bool = False) -> None:
        state = self.trainer
        if self.world.world_size == 1:
            return
        wants = state.stop_training
        wanted, at_limit = allreduce_sum([1.0 if wants else 0.0, 1.0 if last_epoch else 0.0], world=self.world)
        if wanted == 0:
            if 0 < at_limit < self.world.world_size:  # epochs differ across ranks: stop with the first
                state.stop_training = True
                state.stop_reason = state.stop_reason or (
                    f"stopped with the other ranks: {int(at_limit)} of {self.world.world_size} ranks reached "
                    f"their epoch limit here (the ranks were given different numbers of epochs)"
                )
                state.stop_kind = state.stop_kind or "max_epochs"
            return
        # each rank's (kind, reason), so every rank records the same History.stop_kind as the decider
        mine = f"{state.stop_kind or 'callback'}\n{state.stop_reason or 'stop'}".encode() if wants else b""
        reasons = self.world.comm.allgather_bytes(mine)
        first = next(r for r, reason in enumerate(reasons) if reason)
        self.decider = first if self.decider is None else self.decider
        state.stop_training = True
        if not wants:
            kind, _, reason = reasons[first].decode().partition("\n")
            state.stop_reason = f"{reason} (on rank {first})"
            state.stop_kind = kind

    def on_batch_end(self, batch: int, logs: Logs | None = None) -> None:
        self._agree()

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        epochs = self.trainer.params.get("epochs")
        self._agree(last_epoch=epochs is not None and epoch + 1 >= int(epochs))

    def on_train_end(self, logs: Logs | None = None) -> None:
        model = self.trainer.model
        if self.world.world_size > 1 and model is not None:
            make_parameters_identical(model, root=self.decider or 0, world=self.world)


def _fit_settings(
    dataset: Dataset,
    validation: Any,
    optimizer: OptimizerLike,
    epochs: Any,
    batch_size: Any,
    validation_split: Any,
    metrics: Any,
    shuffle: bool,
    seed: Any,
    pad: bool,
    drop_last: bool,
    lr_scaling: Any,
    warmup_steps: Any,
    fit_options: dict[str, Any],
) -> dict[str, Any]:
    """Everything that decides how many steps a rank takes and what each step computes.

    Not compared: callbacks (a rank may log on its own; what they decide is agreed on during
    training), ``verbose`` and ``checkpoint_dir`` (rank 0 alone prints and writes).
    """
    inner = optimizer.optimizer if isinstance(optimizer, DistributedOptimizer) else optimizer
    groups = [{k: v for k, v in g.items() if k != "params"} for g in getattr(inner, "param_groups", [])]
    scheduler: SchedulerLike | None = fit_options.get("scheduler")

    def data(d: Any) -> Any:
        names = ""
        if isinstance(d, Dataset):
            arrays, n = dataset_arrays(d), len(d)
            if isinstance(d, InputsDataset):
                names = f"{d.count} inputs{'' if d.names is None else ' ' + ','.join(d.names)}, "
        elif isinstance(d, (tuple, list)) and d:
            fields = list(d)
            if multi_input(fields[0]):  # several inputs: each one's array, then the targets
                xs = fields.pop(0)
                names = f"{len(xs)} inputs{' ' + ','.join(xs) if isinstance(xs, Mapping) else ''}, "
                fields[:0] = list(xs.values()) if isinstance(xs, Mapping) else list(xs)
            arrays = tuple(np.asarray(a.array if hasattr(a, "array") else a) for a in fields)
            n = len(arrays[0])
        else:
            return plain(d)
        return f"{n} samples, {names}" + (f"sha256 {array_digest(*arrays)[:16]}" if arrays else "not array-backed")

    return {
        "training data": data(dataset),
        "validation data": data(validation),
        "epochs": epochs,
        "batch_size": batch_size,
        "validation_split": validation_split,
        "metrics": [m if isinstance(m, str) else getattr(m, "__name__", type(m).__name__) for m in metrics or []]
        if not isinstance(metrics, str)
        else metrics,
        "shuffle": shuffle,
        "seed": seed,
        "pad": pad,
        "drop_last": drop_last,
        "lr_scaling": lr_scaling,
        "warmup_steps": warmup_steps,
        "optimizer": type(inner).__name__,
        "optimizer settings": {"param_groups": groups},
        "scheduler": None if scheduler is None else type(scheduler).__name__,
        "scheduler settings": scheduler.state_dict()
        if scheduler is not None and hasattr(scheduler, "state_dict")
        else None,
        **{f"fit option {k}": v for k, v in fit_options.items() if k != "scheduler"},
    }


def _shardable(metrics: Sequence[Any] | None) -> bool:
    """Whether validation can be split across ranks: the loss and every metric are means over
    samples (``Metric.sample_mean``), so the mean over all samples is the count-weighted mean of the
    ranks' values. Precision, recall, F1, RMSE and R^2 are not."""
    from ..train.evaluation import resolve_metrics

    return all(m.sample_mean for m in resolve_metrics(metrics))


def _as_dataset(data: Any, where: str, float_dtype: Any = None, model: Any = None) -> Dataset:
    if isinstance(data, DataLoader):
        raise ConfigError(
            f"distributed.fit: {where} must be arrays (x, y) or a Dataset, not a DataLoader: each rank's share "
            "is cut from the whole data set (give batch_size to fit; it is per rank)"
        )
    if isinstance(data, Dataset):
        return data
    if isinstance(data, (tuple, list)) and len(data) == 2 and multi_input(data[0]):
        # several inputs, as ds.fit takes them (model(*xs) or model(**xs)): one dataset, so that every
        # rank's shard takes the same rows of each input
        return inputs_dataset(data[0], data[1:], f"distributed.fit({where}=...)", float_dtype, model)
    if isinstance(data, (tuple, list)) and len(data) == 2:
        return ArrayDataset(*data, float_dtype=float_dtype)  # the model's dtype, as the one-process fit
    raise ConfigError(f"distributed.fit: {where} must be (inputs, targets) or a Dataset, got {type(data).__name__}")


def _validation_loader(
    validation: Any,
    metrics: Any,
    batch_size: int,
    world: World,
    float_dtype: Any = None,
    model: Any = None,
    device: Any = None,
) -> tuple[DataLoader | None, int | None]:
    """This rank's validation loader and its number of samples (None: every rank scores all of them)."""
    if validation is None:
        return None, None
    val_set = _as_dataset(validation, "validation", float_dtype, model)
    val_batch = min(1024, batch_size * 8)
    if _shardable(metrics) and len(val_set) >= world.world_size and world.world_size > 1:
        # rank r scores samples r, r+W, ...: no padding, so no sample is counted twice
        rows = np.arange(world.rank, len(val_set), world.world_size)
        if isinstance(val_set, InputsDataset):
            return _InputsShareLoader(val_set, rows, val_batch, device), len(rows)
        return DataLoader(Subset(val_set, rows), batch_size=val_batch, device=device), len(rows)
    return make_loader(val_set, batch_size=val_batch, device=device), None


class _InputsShareLoader(DataLoader):
    """Some rows of a several-inputs dataset in order, each batch regrouped as ``(inputs, targets, ...)``
    (as the one-process fit's loader gives them)."""

    def __init__(self, dataset: InputsDataset, rows: np.ndarray, batch_size: int, device: Any = None) -> None:
        super().__init__(Subset(dataset, rows), batch_size=batch_size, device=device)
        self._group = dataset.group

    def __iter__(self) -> Iterator[Any]:
        return (self._group(batch) for batch in super().__iter__())


def _rank_callbacks(
    callbacks: Sequence[Callback] | CallbackList | None,
    world: World,
    val_count: int | None,
    lr_scaling: str | None,
    warmup_steps: int,
) -> list[Callback]:
    """The callbacks of this rank, in order: logs averaged across ranks first, the linear scaling
    rule, the user's (writers on rank 0 only; a DivergenceGuard unless given), the agreement last."""
    user = list(callbacks.callbacks if isinstance(callbacks, CallbackList) else (callbacks or []))
    if any(isinstance(cb, BackupAndRestore) for cb in user):
        # rank 0 alone writes files, so a backup would restore rank 0 and leave the others at the start
        raise ConfigError(
            "distributed.fit: BackupAndRestore is not supported across ranks (only rank 0 writes the backup, "
            "and every rank must resume from the same state); pass checkpoint_dir=... and, after an "
            "interruption, resume_from=... (a file every rank can read)"
        )
    if not world.is_main:
        user = [cb for cb in user if not isinstance(cb, _WRITERS)]
    if not any(isinstance(cb, DivergenceGuard) for cb in user):
        user.append(DivergenceGuard(factor=math.inf, initial_factor=1e4))  # ds.fit's default, before the agreement
    ordered: list[Callback] = [_AverageLogsAcrossRanks(world, val_count)]
    if lr_scaling is not None:
        if lr_scaling != "linear":
            raise ConfigError(f"distributed.fit: lr_scaling must be None or 'linear', got {lr_scaling!r}")
        ordered.append(LinearScalingRule(world.world_size, warmup_steps))
    elif warmup_steps:
        raise ConfigError("distributed.fit: warmup_steps needs lr_scaling='linear'")
    return [*ordered, *user, _AgreeOnStopping(world)]


def _agreed_seed(seed: int | None, resume_from: Any, world: World) -> int:
    """The run's seed, rank 0's on every rank: the given one, the interrupted run's when resuming,
    or one drawn from the library's generator (so ``ds.manual_seed`` makes the run reproducible)."""
    if seed is None and resume_from is not None:
        from ..train.resume import read_checkpoint

        seed = int(read_checkpoint(resume_from)["seed"])  # the shards of the interrupted run
    if seed is None:
        seed = int(backend.rng().integers(0, 2**31 - 1))
    return int(broadcast_object({"seed": int(seed)}, world=world)["seed"])


def _rank_loader(
    dataset: Dataset,
    batch_size: Any,
    shuffle: bool,
    seed: int,
    drop_last: bool,
    pad: bool,
    world: World,
    device: Any = None,
) -> DistributedDataLoader:
    """This rank's share of the training data, in batches of ``batch_size`` (None/'full': the whole share)."""
    per_rank = len(dataset) // world.world_size if pad is False else -(-len(dataset) // world.world_size)
    if batch_size is None or (isinstance(batch_size, str) and batch_size.lower() == "full"):
        rank_batch = max(1, per_rank)
    elif isinstance(batch_size, str):
        raise ConfigError(f"distributed.fit: batch_size must be a positive integer, None or 'full', got {batch_size!r}")
    else:
        rank_batch = batch_size
    return DistributedDataLoader(
        dataset,
        batch_size=rank_batch,
        shuffle=shuffle,
        seed=seed,
        drop_last=drop_last,
        pad=pad,
        world=world,
        device=device,
    )


def _check_scheduler_optimizer(scheduler: Any, optimizer: Any) -> None:
    """Refuse, before anything is sent between the ranks, a scheduler built on another optimizer than the
    one distributed.fit was given, in distributed.fit's words: fit itself only sees the DistributedOptimizer
    made here, which the user never passed. One on the given optimizer, or on a DistributedOptimizer
    around it, steps the same param groups and is taken."""
    from ..train.fit import described, same_param_groups

    stepped = getattr(scheduler, "optimizer", None)
    if stepped is None or not hasattr(optimizer, "param_groups") or same_param_groups(stepped, optimizer):
        return
    inner = optimizer.optimizer if isinstance(optimizer, DistributedOptimizer) else optimizer
    theirs, given = described(stepped), described(optimizer)
    if isinstance(stepped, DistributedOptimizer):
        theirs = f"a DistributedOptimizer around {described(stepped.optimizer)}"
    if isinstance(optimizer, DistributedOptimizer):
        given = f"a DistributedOptimizer around {described(inner)}"
    if theirs == given:
        theirs += " (an optimizer alike but not the same object)"
    sched = type(scheduler).__name__
    raise ConfigError(
        f"distributed.fit: the scheduler ({sched}) steps another optimizer, {theirs}, so the rates training "
        f"uses would never change; distributed.fit was given {given}: build the scheduler on that optimizer "
        f"(a DistributedOptimizer around it shares its param groups, so either works): "
        f"sched = optim.lr_scheduler.{sched}(opt, ...); distributed.fit(model, loss_fn, opt, ..., scheduler=sched) "
        "(was the optimizer created again after the scheduler?)"
    )


def fit(
    model: ModelLike,
    loss_fn: LossFn,
    optimizer: OptimizerLike,
    train: Any,
    validation: Any = None,
    *,
    batch_size: int | str | None = 32,
    epochs: int = 10,
    validation_split: float | None = None,
    metrics: Sequence[Any] | None = None,
    callbacks: Sequence[Callback] | None = None,
    verbose: int = 0,
    shuffle: bool = True,
    seed: int | None = None,
    checkpoint_dir: Any = None,
    pad: bool = True,
    drop_last: bool = False,
    lr_scaling: str | None = None,
    warmup_steps: int = 0,
    bucket_bytes: int | None = None,
    **fit_options: Any,
) -> History:
    """Train data-parallel over the MPI job's ranks; the arguments are those of ``ds.fit``, plus:

    Args:
        train / validation: ``(x, y)`` arrays or a Dataset, as ``ds.fit`` takes them; ``x`` may be
            several inputs (a list or tuple of arrays: ``model(*xs)``; a dict: ``model(**xs)``), and
            a Dataset of ``(x1, ..., xk, y)`` feeds a model of k inputs. Each rank's shard takes the
            same rows of every input.
        batch_size: samples **per rank** per update; the effective batch is ``batch_size * W``.
            ``None``/``"full"``: each rank's whole share (full-batch gradient descent).
        pad / drop_last: make the data divisible by W by repeating a few samples (default) or by
            dropping the leftovers; ``drop_last`` also drops each rank's last, smaller batch.
        lr_scaling: ``"linear"`` multiplies the learning rate by W (the batch is W times larger),
            ramped up over ``warmup_steps`` updates; ``None`` (default) leaves it as given, which
            reproduces a single process with batch ``batch_size * W`` exactly.
        bucket_bytes: gradient Allreduce bucket size (default 25 MB).
        **fit_options: passed to ``ds.fit`` (scheduler, scheduler_interval, resume_from...).
            ``resume_from`` must be readable by every rank (a shared file system).

    Returns the History on every rank (rank 0's is the one to report; its ``loss`` and ``val_*``
    values are the global ones on every rank).

    Validation is split across the ranks when every metric is a mean over samples (loss,
    accuracy, top-k accuracy, MSE, MAE), so its cost is shared; with precision/recall/F1/RMSE/R^2
    each rank scores the whole validation set, which keeps those exact. Training metrics are the
    mean of the ranks' values (exact for the sample-mean metrics, an approximation for the others).

    Example:
        >>> import numpy as np, downslope as ds
        >>> from downslope import nn, optim, distributed as dist
        >>> _ = ds.manual_seed(0)
        >>> x = np.linspace(-1, 1, 32).reshape(-1, 1); y = 2 * x - 1
        >>> model = nn.Linear(1, 1)
        >>> h = dist.fit(model, nn.MSELoss(), optim.SGD(model.parameters(), lr=0.5), (x, y),
        ...              batch_size=None, epochs=100, seed=0)
        >>> round(model.weight.item(), 3), round(model.bias.item(), 3)
        (2.0, -1.0)
    """
    from ..train import fit as single_process_fit

    _check_scheduler_optimizer(fit_options.get("scheduler"), optimizer)
    world = get_world()
    dataset = _as_dataset(train, "train", model_float_dtype(model), model)
    if world.world_size > 1:  # before anything else: a rank trained differently would hang or drift
        check_same_config(
            _fit_settings(
                dataset, validation, optimizer, epochs, batch_size, validation_split, metrics, shuffle, seed, pad,
                drop_last, lr_scaling, warmup_steps, fit_options,
            ),
            what="settings of distributed.fit",
            world=world,
        )  # fmt: skip
    seed = _agreed_seed(seed, fit_options.get("resume_from"), world)
    if validation is not None and validation_split is not None:
        raise ConfigError("distributed.fit: pass either validation=... or validation_split=..., not both")
    if validation_split is not None:
        dataset, validation = split_validation(dataset, validation_split, seed, "distributed.fit")
    # the batches are made where the model computes, so fit takes them as they come: it would rebuild a
    # batch it moves, and several inputs (Inputs, NamedInputs) would lose their kind on the way
    target = training_device(fit_options.get("device"), model, "distributed.fit")
    placed = None if target == CPU else target
    loader = _rank_loader(dataset, batch_size, shuffle, seed, drop_last, pad, world, placed)
    val_loader, val_count = _validation_loader(
        validation, metrics, loader.batch_size, world, model_float_dtype(model), model, placed
    )

    dopt = optimizer if isinstance(optimizer, DistributedOptimizer) else None
    if dopt is None:
        dopt = DistributedOptimizer(optimizer, world=world, bucket_bytes=bucket_bytes or DEFAULT_BUCKET_BYTES)
    broadcast_parameters(model, world=world)
    broadcast_optimizer_state(dopt.optimizer, world=world)

    ordered = _rank_callbacks(callbacks, world, val_count, lr_scaling, warmup_steps)
    # BatchNorm's running statistics: rank 0's before each training step (and validation's first batch), as
    # under PyTorch's DDP (broadcast_buffers=True), instead of W copies each following its own rank's batches
    hookable = hasattr(model, "named_buffers") and hasattr(model, "register_forward_pre_hook")
    buffers = list(model.named_buffers()) if world.world_size > 1 and hookable else []  # type: ignore[attr-defined]
    synced = sync_buffers_before_forward(model, world=world) if buffers else None

    try:
        return single_process_fit(
            model,
            loss_fn,
            dopt,
            loader,
            validation=val_loader,
            epochs=epochs,
            metrics=metrics,
            callbacks=ordered,
            verbose=verbose if world.is_main else 0,
            seed=seed,
            checkpoint_dir=checkpoint_dir if world.is_main else None,
            **fit_options,
        )
    except SystemExit as exit_:  # sys.exit() on one rank (a callback's): the others would wait in a collective
        code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
        if code and world.world_size > 1:
            end_job_on_error(code)
        raise
    finally:
        if synced is not None:
            synced.remove()
