"""The training loop: ``fit`` repeats forward, loss, backward and update until a stopping rule fires.

It reads straight through (Keras' shape): a separate :func:`train_step` does one update and
returns a ``logs`` dict; ``fit`` wraps it in epochs, validation, schedulers, callbacks and
checkpoints. :func:`evaluate` and :func:`predict` run a model without recording gradients.

On a device (``fit(..., device="cuda")``) the model is moved there once, the data is placed there
(whole, or batch by batch: see DataLoader's ``device``), and the epoch's loss and metric inputs are
summed there and read back once per epoch (``train/placement.py``); on the CPU every batch loss is
read as it comes, as before.

One epoch::

    for x, y in loader:                 # full batch / stochastic / mini-batch, see DataLoader
        optimizer.zero_grad()
        loss = loss_fn(model(x), y)     # forward
        loss.backward()                 # gradients into each parameter's .grad
        optimizer.step()                # one update
    validate -> step the scheduler -> callbacks (may stop) -> history -> checkpoint
"""

from __future__ import annotations

import itertools
import math
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np

from .. import backend
from ..data.loader import DataLoader, batch_to
from ..device import CPU, device
from ..devices import device_of, to_device, to_host
from ..errors import ArgumentTypeError, ConfigError
from ..optim.protocols import OptimizerLike, SchedulerLike
from ..tensor import Tensor, wrap_array
from .batch_logs import TRAIN_BATCH_END, BatchLogs, CountedLoss, RunningDeviceMean, RunningMetrics, reads_batch_logs
from .callbacks import (
    BackupAndRestore,
    Callback,
    CallbackList,
    DivergenceGuard,
    Logs,
    ModelCheckpoint,
    TrainingState,
    as_callback_list,
)
from .callbacks.base import class_name, kind_of
from .diagnostics import (
    LossAboveStartWarning,
    RisingLossWarning,
    UnscaledInputsWarning,
    loss_above_start_note,
    rising_loss_note,
    unscaled_inputs_note,
)
from .evaluation import (
    LOSS_NAMES,
    check_metrics,
    check_scalar_loss,
    counts_targets,
    device_target_weight,
    evaluate,
    evaluate_loader,
    loss_weights,
    metric_inputs,
    model_mode,
    predict,
    refuse_keras_object,
    resolve_loss,
    resolve_metrics,
    resolve_weighted_metrics,
    score,
    score_on_device,
    weighted_loss,
    with_sample_weight,
)
from .history import History
from .inputs import (
    GeneratorBatches,
    as_dataset,
    as_loader,
    call_model,
    check_has_batches,
    conform,
    input_rows,
    input_shapes,
    is_stream,
    known_length,
    make_loader,
    model_float_dtype,
    model_input_count,
    resolve_seed,
    split_validation,
    target_column,
    unpack_batch,
)
from .metrics import Metric, MetricFn, canonical_log_name
from .multi_output import (
    OutputLosses,
    PartLosses,
    arrays_of,
    output_metrics,
    part_arrays,
    plan_outputs,
    refuse_class_weight,
    refuse_unplanned,
    shapes_of,
    structured,
)
from .placement import DeviceScalar, EpochLoss, on_host, training_device
from .progress import ProgressBar
from .protocols import LossFn, ModelLike
from .resume import (
    CHECKPOINT_KIND,
    StepsPerEpoch,
    backup_callback,
    data_fingerprint,
    hold_checkpoint_dir,
    release_backup_dir,
    release_checkpoint_dir,
    restore,
    starting_checkpoint,
    warn_if_other_data,
)
from .stepping import needs_closure


class _DefaultBatchSize(int):
    """fit's default batch size (32), told apart from an explicit ``batch_size=32`` (which a DataLoader
    refuses); it shows as ``32`` in ``help(fit)``."""

    def __repr__(self) -> str:
        return "32"


_UNSET: Any = _DefaultBatchSize(32)


# ---------------------------------------------------------------------- one update
def train_step(
    model: ModelLike,
    loss_fn: LossFn,
    optimizer: OptimizerLike,
    x: Tensor,
    y: Tensor,
    device: Any = None,
    sample_weight: Any = None,
) -> Logs:
    """One gradient-descent update on a batch; returns ``{'loss': float, 'outputs': array}``.

    A model with several outputs (a tuple, list or dict of Tensors) takes ``loss_fn`` per output (a list, or
    a dict by output name: see :class:`~downslope.train.multi_output.OutputLosses`) and ``y`` per output;
    ``'outputs'`` is then the model's tuple, list or dict of arrays, and ``'parts'`` each output's loss.

    With ``device`` (``"cuda"``, a :class:`downslope.device`) the model and the batch are moved there
    first (nothing moves when they are there already). When the loss lives on a device, ``'loss'`` is
    a :class:`~downslope.train.placement.DeviceScalar`: the number stays on the device until it is
    read (``float(logs['loss'])``), so a loop that does not read it never waits for the device.
    ``'outputs'`` is the model's output array, on the device it was computed on. With
    ``sample_weight`` (one weight per sample) the loss is :func:`~downslope.train.evaluation.weighted_loss`.
    ``loss_fn`` is read as fit reads it: a name, or a function written Keras' way, ``fn(y_true, y_pred)``,
    called with the targets first.

    Example:
        >>> import downslope as ds
        >>> from downslope import nn, optim
        >>> model = nn.Linear(1, 1); opt = optim.SGD(model.parameters(), lr=0.1)
        >>> logs = train_step(model, nn.MSELoss(), opt, ds.ones(4, 1), ds.zeros(4, 1))
        >>> sorted(logs)
        ['loss', 'outputs']
    """
    loss_fn = resolve_loss(loss_fn, "train_step")  # a name, or a function fn(y_true, y_pred) called as fit calls it
    if device is not None:
        target = training_device(device, model, "train_step")
        if hasattr(model, "to"):
            model.to(target)
        x, y = batch_to((_as_tensor(x), _as_tensors(y)), target)
        if sample_weight is not None:
            (sample_weight,) = batch_to((_as_tensors(sample_weight),), target)
    else:
        y = _as_tensors(y) if structured(y) else y
    return _update(model, loss_fn, optimizer, x, y, sample_weight, needs_closure(optimizer))


def _update(
    model: ModelLike,
    loss_fn: LossFn,
    optimizer: OptimizerLike,
    x: Tensor,
    y: Tensor,
    sample_weight: Any,
    closure: bool,
) -> Logs:
    """:func:`train_step` on a placed batch; ``closure``: the optimizer's step needs one (asked once per
    epoch by fit's loops, not per batch)."""
    if closure:
        outputs, loss, parts = _step_with_closure(model, loss_fn, optimizer, x, y, sample_weight)
    else:
        optimizer.zero_grad()
        outputs = call_model(model, x)
        if type(outputs) is not Tensor:
            refuse_unplanned(outputs, loss_fn, "fit")
        y = target_column(outputs, y)
        loss = loss_fn(outputs, y) if sample_weight is None else weighted_loss(loss_fn, outputs, y, sample_weight)
        check_scalar_loss(loss, loss_fn)
        parts = part_arrays(loss_fn)  # a multi-output model's loss per output (0-d arrays), else None
        loss.backward()
        optimizer.step()
    logs: Logs = {"loss": float(loss.item()) if on_host(loss.array) else DeviceScalar(loss.array)}
    logs["outputs"] = outputs.array if type(outputs) is Tensor else arrays_of(outputs)
    if parts is not None:
        logs["parts"] = parts
    return logs


def _step_with_closure(
    model: ModelLike, loss_fn: LossFn, optimizer: OptimizerLike, x: Tensor, y: Tensor, sample_weight: Any
) -> tuple[Any, Tensor, Any]:
    """``optimizer.step(closure)`` for an optimizer that re-evaluates the batch's loss itself (L-BFGS);
    returns the outputs, loss and each output's loss (a multi-output model's; else None) of the closure's
    first call, at the parameters before the step (what the other optimizers' steps log)."""
    first: list[tuple[Any, Tensor, Any]] = []

    def closure() -> Tensor:
        optimizer.zero_grad()
        outputs = call_model(model, x)
        if type(outputs) is not Tensor:
            refuse_unplanned(outputs, loss_fn, "fit")
        target = target_column(outputs, y)
        loss = (
            loss_fn(outputs, target)
            if sample_weight is None
            else weighted_loss(loss_fn, outputs, target, sample_weight)
        )
        check_scalar_loss(loss, loss_fn)
        parts = part_arrays(loss_fn)
        loss.backward()
        if not first:
            first.append((outputs, loss, parts))
        return loss

    optimizer.step(closure)
    if not first:  # an optimizer that never called the closure: the batch's loss all the same
        closure()
    return first[0]


def _as_tensor(value: Any) -> Any:
    """A Tensor as it is; host data as a Tensor (``ds.tensor``'s dtype policy)."""
    if isinstance(value, Tensor):
        return value
    from ..tensor import tensor

    return tensor(value)


def _as_tensors(value: Any) -> Any:
    """:func:`_as_tensor`, or of each part of values given per output (a dict, or a list or tuple of arrays)."""
    if isinstance(value, Mapping):
        return {k: _as_tensor(v) for k, v in value.items()}
    if type(value) in (tuple, list) and value and all(hasattr(v, "shape") for v in value):
        return type(value)(_as_tensor(v) for v in value)
    return _as_tensor(value)


# ---------------------------------------------------------------------- the loop's helpers
class _RecordHistory(Callback):
    """Appends each epoch's logs to the History (placed after user callbacks, before checkpoints)."""

    def __init__(self, history: History) -> None:
        self.history = history

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        self.history.append(epoch, logs or {})


# SIGHUP (a closed terminal or SSH session) stops training as SIGTERM does; there is none on Windows
_HANGUP = (signal.SIGHUP,) if hasattr(signal, "SIGHUP") else ()


class _Interrupt:
    """SIGINT/SIGTERM/SIGHUP: the first one finishes the epoch, saves and stops; a second one stops after the batch
    under way, without saving it (a third one raises KeyboardInterrupt wherever the program is)."""

    def __init__(self, state: TrainingState) -> None:
        self.state = state
        self.received: str | None = None
        self.aborted: str | None = None  # set by a second signal: the loop raises it as a KeyboardInterrupt
        self.stopped = False  # training stopped for the signal: resumable, unlike a stopping rule's stop
        self.previous: dict[int, Any] = {}
        self.checked = -1  # the last epoch whose end checked for a signal (a later one stops the next)

    def _handle(self, signum: int, frame: Any) -> None:
        name = signal.Signals(signum).name
        if self.aborted is not None:  # a third signal: the loop did not get back to its check; stop here
            self.restore()
            raise KeyboardInterrupt(self.aborted)
        if self.received is not None:
            # Raising here would unwind from whatever the handler interrupted (a workspace pool's bookkeeping,
            # a kernel's Python around native code) and left a process that crashed as it exited ("double
            # free"): the loop raises instead, between batches, where nothing is half done.
            self.aborted = f"second {name}: training aborted"
            self.state.stop_training = True  # ends the batch loop at its next check
            self._say(f"\n{name} again: stopping after this batch (the unfinished epoch is not saved)\n")
            return
        # Stopping mid-epoch would leave a state no checkpoint can resume exactly: finish the epoch.
        self.received = self.state.signal_received = name
        # said at once: an epoch can take minutes, and silence reads as not received (by whoever pressed
        # Ctrl-C, or in a process manager's log); past an epoch's check for a signal, the next epoch is finished
        epoch = max(self.state.epoch, self.checked + 1) + 1
        again = "Ctrl-C again" if signum == signal.SIGINT else f"{name} again (or Ctrl-C)"
        self._say(f"\n{name} received: finishing epoch {epoch}; {again} to stop now\n")

    @staticmethod
    def _say(line: str) -> None:
        try:
            sys.stderr.write(line)
            sys.stderr.flush()
        except (OSError, RuntimeError, ValueError):  # stderr closed, or interrupted inside its own write
            pass

    def check_aborted(self) -> None:
        """Raise the second signal's KeyboardInterrupt, from a point between batches."""
        if self.aborted is not None:
            self.restore()
            raise KeyboardInterrupt(self.aborted)

    def stop_training(self, epoch: int) -> None:
        """Stops training after ``epoch`` (0-based), which has just finished, for the signal received."""
        self.stopped = True
        self.state.stop_training = True
        self.state.stop_reason = f"interrupted by {self.received}: finished epoch {epoch + 1} and stopped"
        self.state.stop_kind = "interrupted"

    def __enter__(self) -> _Interrupt:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM, *_HANGUP):
                if sig in _HANGUP and signal.getsignal(sig) is signal.SIG_IGN:
                    continue  # nohup: the terminal's hang-up is meant to go unnoticed
                self.previous[sig] = signal.signal(sig, self._handle)
        return self

    def restore(self) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)
        self.previous = {}

    def __exit__(self, *exc: object) -> None:
        self.restore()


class _FirstBatches:
    """A validation loader read only for its first ``steps`` batches (fit's ``validation_steps``); other
    attributes are the loader's."""

    def __init__(self, loader: DataLoader, steps: int) -> None:
        self.loader = loader
        self.steps = steps

    def __getattr__(self, name: str) -> Any:
        return getattr(self.loader, name)

    def __iter__(self) -> Any:
        return itertools.islice(iter(self.loader), self.steps)

    def __len__(self) -> int:
        return min(self.steps, len(self.loader))


def _scheduler_per_batch(scheduler: SchedulerLike, interval: str) -> bool:
    if interval not in ("auto", "epoch", "batch"):
        raise ConfigError(f"fit: scheduler_interval must be 'auto', 'epoch' or 'batch', got {interval!r}")
    if interval == "auto":
        return bool(getattr(scheduler, "steps_per_batch", False))
    return interval == "batch"


def _is_plateau(scheduler: SchedulerLike) -> bool:
    return bool(getattr(scheduler, "needs_metric", False))


def _record_step_lr(state: TrainingState, optimizer: OptimizerLike, epoch: int, batch: int) -> None:
    """Record in the History the rate the update just made used (read before a per-batch scheduler
    moves it): ``history.lr_steps``, what the learning-rate plot draws."""
    groups = getattr(optimizer, "param_groups", None)
    if groups and state.history is not None:
        state.history.record_step(epoch, batch, state.params["steps"] or batch + 1, groups[0]["lr"])


def _current_lr(optimizer: OptimizerLike | None) -> float | None:
    groups = getattr(optimizer, "param_groups", None)
    return float(groups[0]["lr"]) if groups else None


class EpochLogs(dict[str, Any]):
    """An epoch's logs; ``validation_skipped`` is True for an epoch that ``validation_freq`` left without
    validation, so that monitors of ``val_`` keys skip it instead of falling back to training values."""

    validation_skipped = False


def _check_validation_freq(validation_freq: Any) -> int | tuple[int, ...]:
    """fit's ``validation_freq``: a positive int, or a non-empty list of 1-based epoch numbers."""
    if isinstance(validation_freq, (list, tuple)) and validation_freq:
        epochs = tuple(_check_positive_int("validation_freq entries", e) for e in validation_freq)
        return epochs
    if isinstance(validation_freq, bool) or not isinstance(validation_freq, (int, np.integer)) or validation_freq < 1:
        raise ConfigError(
            f"fit: validation_freq must be a positive integer (validate every N epochs) or a list of 1-based epoch "
            f"numbers, got {validation_freq!r}"
        )
    return int(validation_freq)


def _validates(epoch: int, validation_freq: int | tuple[int, ...]) -> bool:
    """Whether the 0-based ``epoch`` is validated (Keras' rule, on the 1-based epoch number)."""
    if isinstance(validation_freq, tuple):
        return epoch + 1 in validation_freq
    return (epoch + 1) % validation_freq == 0


def _no_split(validation_split: Any) -> bool:
    """Whether ``validation_split`` is 0 (Keras' default, which holds nothing out); not ``False``."""
    return (
        not isinstance(validation_split, bool)
        and isinstance(validation_split, (int, float, np.integer, np.floating))
        and validation_split == 0
    )


def _check_positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ConfigError(f"fit: {name} must be a positive integer, got {value!r}")
    return int(value)


# ---------------------------------------------------------------------- fit
def fit(
    model: ModelLike,
    loss_fn: LossFn | str | tuple[str, dict[str, Any]],
    optimizer: OptimizerLike | str,
    train: Any,
    validation: Any = None,
    *,
    validation_split: float | None = None,
    epochs: int = 10,
    batch_size: int | str | None = _UNSET,
    metrics: Sequence[str | MetricFn] | None = None,
    callbacks: Sequence[Callback] | CallbackList | None = None,
    scheduler: SchedulerLike | None = None,
    scheduler_interval: str = "auto",
    verbose: int = 1,
    shuffle: bool = True,
    seed: int | None = None,
    resume_from: str | Path | None = None,
    checkpoint_dir: str | Path | None = None,
    device: Any = None,
    validation_data: Any = None,
    class_weight: Mapping[Any, float] | None = None,
    sample_weight: Any = None,
    initial_epoch: int = 0,
    validation_freq: int | Sequence[int] = 1,
    validation_batch_size: int | None = None,
    steps_per_epoch: int | None = None,
    validation_steps: int | None = None,
    weighted_metrics: Sequence[str | MetricFn] | None = None,
    loss_weights: Sequence[float] | Mapping[str, float] | None = None,
) -> History:
    """Train ``model`` by gradient descent on ``train``; returns the per-epoch :class:`History`.

    Args:
        model: a callable Module (``model(x)`` gives outputs; ``train()``/``eval()`` switch modes).
        loss_fn: ``loss_fn(outputs, targets)`` -> scalar Tensor, or a name ('mse', 'mae', 'huber',
            ...). A plain function written Keras' way, ``fn(y_true, y_pred)`` (its first two parameters
            named ``y_true`` and ``y_pred``, Keras' convention), is called with the targets first, and
            the per-sample values it may return (Keras' custom losses return one per sample) are averaged
            over the batch, as Keras reduces them; any other callable (an ``nn.Module``, a loss object, a
            function with other parameter names) is called PyTorch's way and must return a scalar (one that
            does not is refused, naming it and the shape it returned). A Keras loss or optimizer object
            (``keras.losses.*``) is refused by name. For a model with several outputs (below) it may be
            given per output, as Keras' ``compile(loss=...)``: a list (one per output, in order; None: an
            output not trained on) or a dict by output name (outputs left out are not trained on); one
            loss is then applied to every output, and the loss minimised is the sum of each output's loss
            (reduced over the batch) times its ``loss_weights``. Keras' names read the outputs as Keras
            does: 'sparse_categorical_crossentropy' (class-index targets), 'categorical_crossentropy' (one-hot targets) and
            'binary_crossentropy' take probabilities (a model ending in softmax/sigmoid); for logits
            pass ``(name, {"from_logits": True})``, as Keras' ``from_logits=True``. downslope's own
            names keep PyTorch's meaning: 'cross_entropy' and 'bce_with_logits' take logits. Keras 3's
            'msle', 'mape', 'poisson', 'kld', 'log_cosh', 'hinge', 'squared_hinge',
            'categorical_hinge' and 'cosine_similarity' (and long names) follow Keras' formulas and
            clipping (:class:`~downslope.train.keras_losses.KerasLoss`). (Until
            this rule 'sparse_categorical_crossentropy' read logits; a model without a softmax that
            is given it now warns, its outputs being negative.) The logged loss is the mean over
            samples: batch means are weighted by batch size (a ``reduction='sum'`` loss is summed).
            A 1-D floating-point target (a pandas Series) against (N, 1) outputs is one target column:
            it is compared as (N, 1) (Keras squeezes the outputs instead); against (N, k>1) outputs it
            is refused, as the losses refuse pairings that broadcast to (N, N).
        optimizer: updates the model's parameters (``zero_grad()``, ``step()``, ``param_groups``), or
            Keras' name of one ('sgd', 'adam', 'adamw', 'rmsprop', 'adagrad', 'adadelta', 'adamax',
            'nadam'): that optimizer over ``model.parameters()`` at Keras' default learning rate (0.01
            for 'sgd', 0.001 for the others; PyTorch's defaults differ), its other settings PyTorch's
            (pass an optimizer object to choose them). One
            whose step needs a closure (``optim.LBFGS``) is given one that re-evaluates the batch's
            loss, as a PyTorch loop passes it: each batch is then one L-BFGS step (up to ``max_iter``
            iterations; ``batch_size="full"`` is its usual setting). A class (``optim.SGD``, or
            ``nn.MSELoss`` as ``loss_fn``) is refused, naming the instance to pass; an optimizer holding
            none of the model's trainable parameters (built on another model) warns.
        train: ``(x, y)`` arrays, a Dataset, or a DataLoader (then batch_size/shuffle are its own:
            leave ``batch_size`` out or None), or a Python generator of ``(x, y)`` batches with
            ``steps_per_epoch`` (Keras' ``fit(generator, steps_per_epoch=N)``: read on across epochs, never
            restarted; one that runs out before ``steps_per_epoch x epochs`` batches is an error, and a run
            fed by one cannot be resumed).
            Several outputs (Keras' multi-output models): a model whose ``forward`` returns a tuple or
            list of Tensors, or a dict of them, takes its targets per output, ``(x, [y1, y2])`` (in the
            outputs' order) or ``(x, {"name": y})``, and so may a Dataset's samples, ``(x, (y1, y2))`` or
            ``(x, {"name": y})``. A tuple's outputs are named ``model.output_names`` when the model sets
            it (Keras' attribute), else ``output_1``, ``output_2``...; a dict's by its keys. A loss
            function of your own written PyTorch's way, ``fn(outputs, targets)``, is still handed the
            whole tuples of a Dataset's batches (give it as a list to apply it per output). Every
            mismatch (a count, a name, the rows of an output and its targets) is refused naming what
            was expected and what was given.
            Arrays are checked for NaN/inf (pass ``ArrayDataset(x, y, check_finite=False)`` to skip).
            Floating data becomes the model's dtype, as in Keras: float32 (the default) for a float32
            model, float64 for a model made ``.double()`` (arrays are read at that precision; batches
            of a DataLoader are cast); so do integer (and boolean) feature arrays, as Keras' layers
            read them, unless the model holds an Embedding (its inputs are token ids). Targets keep
            their dtype (integer class labels stay int64). ``evaluate`` and ``predict`` do the same.
            Several inputs (Keras' multi-input form): ``x`` as a list or tuple of arrays (one row per
            sample each) is passed as ``model(*xs)``, a dict of arrays as ``model(**xs)`` (Keras passes a
            dict by input name; keyword arguments are a PyTorch module's equivalent); each input
            follows the rules above on its own, and all are batched and shuffled together. A Dataset
            whose batches are ``(x1, ..., xk, y)`` (``TensorDataset(x_cat, x_num, y)``), for a model
            whose ``forward`` requires k > 1 inputs, is passed as ``model(x1, ..., xk)`` with the last
            field the targets (one more field: the sample weights). A DataLoader that gives no batch
            (``drop_last=True`` with fewer samples than ``batch_size``) is refused. Dict batches are
            read by their keys ``'x'``, ``'y'`` (and ``'sample_weight'``); other keys are refused by
            name. A DataLoader over an IterableDataset without a length runs each epoch until the stream
            ends (Keras' unknown cardinality), or for ``steps_per_epoch`` batches.
        validation: held-out ``(x, y)``/Dataset/DataLoader, scored after every epoch; its
            numbers are logged with a ``val_`` prefix.
        validation_split: a fraction of ``train`` (arrays) held out for validation, exactly as Keras
            holds it out: the LAST ``n - floor(n * (1 - validation_split))`` rows, taken before any
            shuffling (``shuffle`` shuffles the training rows only). Shuffle the arrays first if
            their order means something (rows sorted by class or by time) and you want a random split.
            ``0`` (Keras' default) holds nothing out, as None does.
            (Until this rule, ``shuffle=True`` held out a seeded random fraction; held-out class
            labels that never occur in the training rows now warn.)
        epochs: the largest number of epochs (a callback may stop sooner).
        batch_size: ``B`` mini-batches (default 32, as Keras), ``1`` stochastic GD, ``None`` or
            ``"full"`` full-batch GD: every sample in one update per epoch. (Keras reads
            ``batch_size=None`` as its default of 32; here it means the full batch, on purpose.)
        metrics: names ('accuracy', 'f1', 'mae', 'r2', 'top5_accuracy', 'auc': scikit-learn's exact
            binary ROC AUC, 'mape': Keras' percentage error, ...), ``fn(preds, target)``
            or ``Metric(fn, greater_is_better=True)``; training metrics are computed from the
            outputs seen during the epoch (train mode). A metric is logged under the string given, as
            Keras 3 logs it (``'mean_absolute_error'``, ``'AUC'``, ``'acc'`` and ``'val_acc'``); monitors,
            ``History[...]`` and ModelCheckpoint's file-name fields read any spelling of a built-in metric
            (``'val_mae'`` reads ``'val_mean_absolute_error'``). A function written Keras' way,
            ``fn(y_true, y_pred)``, gets the targets first (as ``loss_fn``), and a function may return one
            value per sample (Keras' habit): they are averaged. Each metric is computed on the first
            training batch before the epoch goes on, so a metric that cannot fit the outputs or targets
            ('auc' on 3 classes, 'mse' on class scores) is refused at once, naming it. Callbacks monitoring a metric with
            ``mode='auto'`` take its direction from the Metric (a plain function: smaller is better).
            'precision', 'recall' and 'f1' are macro averages over the classes, two classes included
            (scikit-learn's ``average='macro'``, not its binary default); one column of scores is cut
            at 0.5, or at 0 with ``BCEWithLogitsLoss`` (logits; also through ``functools.partial``).
            With a loss fit cannot read (a lambda, your own function) scores outside [0, 1] are cut at
            0 (they are logits) and scores inside at 0.5, with a warning that it guessed
            (``ds.train.metrics.with_threshold('accuracy', 0.0)`` says which). Multi-label targets
            ((N, C) rows of 0/1 that are not all one-hot, or any (N, C) targets with a binary
            cross-entropy loss) make 'accuracy' the element-wise ``binary_accuracy`` (tf.keras 2's rule; Keras
            3 picks by shapes alone and gives the argmax match, ``categorical_accuracy``: pass
            'categorical_accuracy' for that number) and 'f1', 'precision', 'recall' micro averages over all
            labels (scikit-learn's ``average='micro'``).
            Keras' names: 'binary_accuracy', 'categorical_accuracy', 'sparse_categorical_accuracy',
            'top_k_categorical_accuracy', 'sparse_top_k_categorical_accuracy' (k=5), and metrics
            named after Keras' losses ('sparse_categorical_crossentropy', 'msle', 'hinge', ...: the
            loss averaged over samples; 'cosine_similarity' is the similarity, larger is better).
            Several outputs: as Keras 3 reads them, a list with one entry per output (a metric, a list of
            them, or None) or a dict by output name, each logged as ``<output>_<metric>`` (a name given
            twice for one output: ``<output>_<metric>_1``); a flat list shorter or longer than the
            outputs is refused (Keras 3 refuses it too; tf.keras 2 applied it to every output).
        callbacks: e.g. ``[EarlyStopping(patience=10), ModelCheckpoint("best.ckpt")]``. A
            DivergenceGuard that stops on NaN/inf losses is added unless you pass one. Their hooks
            run as in Keras 3: ``on_train_batch_begin/end`` per update (calling ``on_batch_begin/end``
            unless overridden) and ``on_test_begin``, ``on_test_batch_begin/end``, ``on_test_end``
            around each validation. The batch-end logs are Keras 3's: ``'loss'`` is the epoch's mean so
            far (the last batch's is the epoch's loss), and each metric so far is there too, computed per
            batch only when a callback of yours overrides a batch-end hook (downslope's own read the loss
            alone, so an ordinary fit computes no metric per batch); this batch's own loss and its number
            of samples are ``logs.batch_loss`` and ``logs.size`` (attributes: Keras' logs have neither).
            ``self.params`` is Keras' dict (``epochs``, ``steps``, ``verbose``); ``self.model`` is the
            Module (a Keras model's ``self.model.optimizer`` is ``self.trainer.optimizer`` here, and
            ``get_weights()`` is ``self.model.state_dict()``: their AttributeErrors say so).
        scheduler: an lr scheduler, stepped once per epoch (after validation) — per batch for
            OneCycleLR/CyclicLR, or as ``scheduler_interval`` says. ReduceLROnPlateau is given
            ``val_loss`` (``loss`` without validation, or its own ``monitor`` attribute). It is
            PyTorch's scheduler with PyTorch's rule, not Keras' callback: ``threshold`` is relative
            (``threshold_mode='rel'``; Keras' ``min_delta`` is absolute: ``threshold_mode='abs'``) and
            the rate drops after ``patience + 1`` epochs without improvement (Keras: after
            ``patience``), so ``ReduceLROnPlateau(opt, patience=p - 1, threshold_mode='abs',
            threshold=min_delta)`` follows Keras' ``ReduceLROnPlateau(patience=p, min_delta=...)`` (cooldown 0);
            Keras' callback itself is ``callbacks=[ds.train.ReduceLROnPlateau(...)]``. A per-batch
            scheduler with a fixed length (OneCycleLR's ``total_steps``) shorter than the updates fit
            will make (batches per epoch x epochs) is refused before the first update, and so is a
            scheduler built on another optimizer than ``optimizer`` (its rates would never reach the
            training; one on the optimizer a DistributedOptimizer wraps is fit's own) or something fit
            cannot step (a callback such as ``ds.train.LearningRateScheduler``: ``callbacks=[...]``; a
            function: ``optim.lr_scheduler.LambdaLR``).
        verbose: 0 silent, 1 progress bar on a terminal (epoch lines otherwise), 2 epoch lines.
        shuffle: reshuffle the training data every epoch.
        seed: seeds the shuffling (drawn from the library generator if None).
        resume_from: a checkpoint file (or a directory holding ``last.ckpt``) written by this loop;
            training continues where it stopped, exactly as if it had not been interrupted, given the
            same data and batch size: other data (told by a fingerprint of the samples) or batches warn.
        checkpoint_dir: save ``last.ckpt`` there after every epoch (and on Ctrl-C/SIGTERM). One run at
            a time: a second process training into the same directory is refused.
        device: where to train (``"cpu"``, ``"cuda"``, ``"cuda:1"``, a :class:`downslope.device`); None
            trains where the model's parameters are. The model is moved there once (``model.to``, in
            place: it stays there afterwards) and so is the data: arrays that fit are copied whole,
            otherwise each batch once. On a device the epoch's loss and metrics are summed there and
            read back once per epoch; batch logs carry the loss as a ``DeviceScalar`` (read only if a
            callback asks), and NaN/inf losses are caught at the end of the epoch rather than at the
            batch. Checkpoints hold host arrays, so a run saved on one device resumes on another.
        validation_data: Keras's name for ``validation``.
        class_weight: ``{class: weight}`` (Keras; a model of one output only, as Keras refuses it with
            several: weigh them with ``sample_weight`` per output): each training sample's loss is multiplied by its
            class's weight (classes not listed weigh 1; one-hot targets are read by their argmax). The
            batch loss is Keras' ``sum(w_i * loss_i) / batch_size``, from the loss module run with
            ``reduction='none'`` (a loss without per-sample values is refused). Validation is not weighted.
        sample_weight: one weight per training sample (``train`` given as ``(x, y)`` arrays), reduced
            as for ``class_weight`` (both: their product). With ``validation_split`` the held-out rows
            keep their weights, and the validation loss is weighted by them, as in Keras. Several outputs:
            one array weighs every output's loss alike; a list (in the outputs' order) or a dict by
            output name weighs each output's loss by its own.
        initial_epoch: the index of the epoch to start from (Keras): epochs ``initial_epoch`` to
            ``epochs - 1`` are trained, and logged, counted, and seen by callbacks under those indices.
        validation_freq: validate after every ``validation_freq``-th epoch (Keras: epochs 2, 4, ... for
            2), or after the 1-based epochs a list names. Other epochs log no ``val_*`` numbers (the
            History holds None there); callbacks monitoring a ``val_`` key skip those epochs, as in
            Keras, and a ReduceLROnPlateau scheduler watching one is not stepped on them.
        validation_batch_size: the batch size of the validation loader fit makes (default 1024; the
            numbers do not depend on it). Not with a validation DataLoader, which has its own.
        steps_per_epoch: an epoch is this many batches (Keras 3's rule). The pass over the data is not
            restarted at each epoch: the next epoch takes the batches after the last one trained, and a
            fresh (reshuffled) pass starts once the data runs out. An epoch that would need more batches
            than the pass has left ends early at the end of the pass, with a warning, as Keras'
            "Your input ran out of data". A checkpoint records where the pass stands (its order and the
            batches taken), so ``resume_from`` continues it exactly (reading past the batches taken).
        validation_steps: validation reads only the first this many batches of the validation data
            (the same batches every time, as Keras, whose validation starts a fresh pass each time).
        weighted_metrics: metrics (as ``metrics``) whose mean over samples is weighted by the sample
            weights, ``sum(w_i * v_i) / sum(w_i)`` (``sample_weight`` times ``class_weight``; validation
            by the weights of ``(x, y, w)`` validation data), as Keras' ``weighted_metrics``; without
            weights they are the plain means. Logged under the name given, or ``weighted_<name>`` when
            ``metrics`` has that name too (Keras 3's names). Means over samples only: 'accuracy',
            'binary_accuracy', '(sparse_)categorical_accuracy', 'mae', 'mse', 'mape', or a function
            returning one value per sample ('auc', 'f1' are refused). ``metrics`` stay unweighted.
            Several outputs: as ``metrics``; a name already logged for the output is logged as
            ``<output>_weighted_<metric>``.
        loss_weights: several outputs only: a list (one weight per output) or a dict by output name
            (outputs left out weigh 1), Keras' ``compile(loss_weights=...)``; the loss minimised and
            logged as ``loss`` is ``sum(weight_k * loss_k)``, and each output's own (unweighted) loss is
            logged as ``<output>_loss`` (``val_<output>_loss``) when more than one output has a loss, as
            Keras 3 logs them: monitors (EarlyStopping, ModelCheckpoint) may watch them.

    Logs per epoch: ``loss``, metrics, each output's ``<output>_loss`` (several outputs), ``val_*``, ``lr`` (the optimizer's rate as the epoch starts; the
    History records it under Keras 3's ``learning_rate`` too, and the rate of every update in
    ``history.lr_steps``, which a per-batch scheduler or a rate-scaling callback changes within the epoch), ``epoch_time`` (seconds) and ``time``
    (seconds since training began).

    A run that ends with its training loss risen in each of its last k epochs (k = half the epochs, 3 to
    10) to at least 10x its lowest warns (:class:`~downslope.train.diagnostics.RisingLossWarning`, a
    UserWarning): a slow divergence below the divergence guard's limits, most often a learning rate a
    little too large. ``stop_kind`` stays ``"max_epochs"``. Otherwise, a run whose every epoch's loss (and
    the last epoch's typical batch loss) stayed 10x or more above the loss before training warns
    (:class:`~downslope.train.diagnostics.LossAboveStartWarning`): an early blow-up threw the weights off
    and training never recovered. And a single ``nn.Linear`` trained under MSE by GD or SGD (no weight
    decay) on arrays ``(x, y)`` that stops at its epoch limit far above the least-squares optimum, with
    inputs whose scales make the loss 100x worse conditioned than standardized ones, warns
    (:class:`~downslope.train.diagnostics.UnscaledInputsWarning`) to standardize the inputs.

    Ctrl-C (or SIGTERM) finishes the current epoch, saves a checkpoint (with ``checkpoint_dir``) and
    returns; a second Ctrl-C aborts at once. The History says so: ``history.stop_kind == "interrupted"``
    and ``history.stop_reason`` names the signal (``downslope train`` then exits with status 130).

    Example:
        >>> import numpy as np, downslope as ds
        >>> from downslope import nn, optim
        >>> _ = ds.manual_seed(0)
        >>> x = np.linspace(-1, 1, 20).reshape(-1, 1); y = 3 * x + 1
        >>> model = nn.Linear(1, 1)
        >>> history = ds.fit(model, nn.MSELoss(), optim.SGD(model.parameters(), lr=0.5), (x, y),
        ...                  epochs=200, batch_size=None, verbose=0)
        >>> round(model.weight.item(), 3), round(model.bias.item(), 3), len(history)
        (3.0, 1.0, 200)
    """
    epochs = _check_positive_int("epochs", epochs)
    validation_freq = _check_validation_freq(validation_freq)
    if validation_batch_size is not None:
        validation_batch_size = _check_positive_int("validation_batch_size", validation_batch_size)
    if steps_per_epoch is not None:
        steps_per_epoch = _check_positive_int("steps_per_epoch", steps_per_epoch)
    if validation_steps is not None:
        validation_steps = _check_positive_int("validation_steps", validation_steps)
    if isinstance(initial_epoch, bool) or not isinstance(initial_epoch, (int, np.integer)) or initial_epoch < 0:
        raise ConfigError(f"fit: initial_epoch must be an integer >= 0, got {initial_epoch!r}")
    _refuse_a_class("loss_fn", loss_fn, "()")
    _refuse_a_class("optimizer", optimizer, "(model.parameters(), lr=...)")
    # several outputs (Keras' multi-output models): told by the targets, or the losses/metrics given per output
    outputs_loss = plan_outputs(model, loss_fn, loss_weights, metrics, weighted_metrics, train, "fit")
    loss_fn_: LossFn = outputs_loss if outputs_loss is not None else _loss_by_name(loss_fn)
    optimizer_: OptimizerLike = _optimizer_by_name(optimizer, model)
    _warn_if_optimizer_misses_the_model(optimizer_, model)
    if scheduler is not None:
        _check_scheduler(scheduler, optimizer_, optimizer)
    loss_fn, optimizer = loss_fn_, optimizer_  # (names resolved: the types below are the objects')
    class_weight = _check_class_weight(class_weight)
    if class_weight is not None and isinstance(loss_fn, OutputLosses):
        refuse_class_weight("fit")
    if is_stream(train):
        train = _generator_loader(train, steps_per_epoch, checkpoint_dir, resume_from, callbacks)
    if sample_weight is not None:
        train = _with_sample_weight(train, sample_weight)
    if _no_split(validation_split):  # Keras' default 0.0 means "no validation"
        validation_split = None
    if validation_data is not None:  # Keras's name
        if validation is not None:
            raise ConfigError("fit: pass either validation=... or validation_data=... (the same thing), not both")
        validation = validation_data
    if validation is not None and validation_split is not None:
        raise ConfigError("fit: pass either validation=... or validation_split=..., not both")
    backup = backup_callback(callbacks, checkpoint_dir)  # Keras' BackupAndRestore: resume from its backup
    checkpoint, resume_from = starting_checkpoint(resume_from, backup)
    seed = resolve_seed(checkpoint["seed"] if checkpoint is not None else seed)
    target = training_device(device, model, "fit")
    if device is not None and hasattr(model, "to"):
        model.to(target)  # once, in place: the Parameter objects stay, so the optimizer follows them
    placed = None if target == CPU else target  # None: today's host loop, untouched
    loader, val_loader = _loaders(
        train, validation, validation_split, batch_size, shuffle, seed, placed, model, validation_batch_size
    )
    if val_loader is not None and validation_steps is not None:
        val_loader = cast(DataLoader, _FirstBatches(val_loader, validation_steps))
    batches: Any = loader if steps_per_epoch is None else StepsPerEpoch(loader, steps_per_epoch)
    if isinstance(loss_fn, OutputLosses):  # each metric reads one output, logged as <output>_<metric>
        metric_fns = output_metrics(metrics, weighted_metrics, loss_fn, "fit")
    else:
        metric_fns = resolve_metrics(metrics, loss_fn)
        metric_fns += resolve_weighted_metrics(weighted_metrics, loss_fn, metric_fns)
    per_batch_schedule = scheduler is not None and _scheduler_per_batch(scheduler, scheduler_interval)

    # Monitors with mode='auto' and History.best read each metric's direction from these.
    history = History(metrics=metric_fns)
    # a stream without a length (an IterableDataset) runs each epoch until it ends, as Keras' unknown cardinality
    steps = known_length(loader) if steps_per_epoch is None else steps_per_epoch
    history.params = {"verbose": verbose, "epochs": epochs, "steps": steps}  # Keras' History.params
    state = TrainingState(
        model,
        optimizer,
        scheduler,
        history,
        params={
            "verbose": verbose,
            "epochs": epochs,
            "steps": steps,
            "batch_size": loader.batch_size,
            "method": loader.method,
        },
        metrics=metric_fns,
    )
    cbs = _callback_list(callbacks, history, checkpoint_dir, verbose)
    history.follow_monitor(cbs)  # its best epoch is the one EarlyStopping/ModelCheckpoint kept
    ranks_agree = any(getattr(cb, "agrees_across_ranks", False) for cb in cbs)
    if not ranks_agree:
        _warn_if_one_of_several_processes(cbs)
    cbs.set_trainer(state)
    interrupt = _Interrupt(state)
    state.checkpoint_state = _checkpoint_builder(state, seed, loader, cbs, interrupt, batches)

    if getattr(model, "stop_training", False):
        model.stop_training = False  # type: ignore[attr-defined]  # as Keras: an earlier fit's flag does not stop this one
    held = hold_checkpoint_dir(checkpoint_dir) if checkpoint_dir is not None else None
    held_backup = None
    try:
        if backup is not None:
            held_backup = hold_checkpoint_dir(
                backup.backup_dir, f"BackupAndRestore(backup_dir={str(backup.backup_dir)!r})"
            )
        cbs.on_train_begin({})
        completed = 0
        if checkpoint is not None:
            warn_if_other_data(checkpoint, loader, resume_from)
            completed = _resume(checkpoint, resume_from, state, loader, cbs, epochs, batches)
        # "time" continues from the checkpoint's clock when resuming.
        first_epoch = max(completed, int(initial_epoch))
        if per_batch_schedule and scheduler is not None and steps_per_epoch is None:
            _check_schedule_length(scheduler, loader, epochs - first_epoch)
        started = time.perf_counter() - (history["time"][-1] if "time" in history and len(history) else 0.0)
        logs: Logs = {}
        with interrupt:
            for epoch in range(first_epoch, epochs):
                state.epoch = epoch
                logs = _train_epoch(
                    epoch,
                    loss_fn,
                    batches,
                    val_loader,
                    metric_fns,
                    cbs,
                    state,
                    per_batch_schedule,
                    started,
                    placed,
                    class_weight,
                    interrupt,
                    validation_freq,
                    epoch == first_epoch,
                )
                interrupt.check_aborted()  # (one during validation: the epoch's scheduler step was skipped)
                if interrupt.received is not None:
                    interrupt.stop_training(epoch)
                cbs.on_epoch_end(epoch, logs)
                interrupt.check_aborted()  # (after the checkpoint write it let finish)
                if interrupt.received is not None and not state.stop_training and not ranks_agree:
                    # arrived while the epoch's checkpoint was written: stop now (resumable, the checkpoint
                    # was written as not finished), not after one more epoch, nor never in the last epoch.
                    # Not in a data-parallel run: its ranks agree on stopping inside the callbacks, and a rank
                    # stopping alone here would leave the others waiting in their next collective.
                    interrupt.stop_training(epoch)
                interrupt.checked = epoch
                if getattr(model, "stop_training", False) and not state.stop_training:  # Keras' idiom
                    state.stop_training = True
                    state.stop_reason = state.stop_reason or "model.stop_training was set"
                if state.stop_training:
                    state.stop_reason = state.stop_reason or f"a callback set stop_training after epoch {epoch + 1}"
                    break
        history.stop_reason = state.stop_reason
        # a callback that set trainer.stop_training itself stopped the run: say so, not "max_epochs"
        history.stop_kind = state.stop_kind or ("callback" if state.stop_training else "max_epochs")
        if history.stop_reason is None and history.stop_kind == "max_epochs":
            history.stop_reason = f"reached the epoch limit ({epochs})"  # as the CLI says it
        if history.stop_kind not in ("diverged", "interrupted") and "loss" in history:
            # a slow divergence below the guard's limits ends as an ordinary run: say what the losses show
            rising = rising_loss_note(history["loss"], history["epoch"])
            if rising is not None:
                warnings.warn(rising, RisingLossWarning, stacklevel=2)
            else:
                above = _loss_above_start(
                    cbs, history, same_rows_first=not shuffle and not isinstance(train, DataLoader)
                )
                if above is not None:
                    warnings.warn(above, LossAboveStartWarning, stacklevel=2)
                elif history.stop_kind == "max_epochs":
                    unscaled = _unscaled_inputs(model, loss_fn, optimizer, train, validation_split, history)
                    if unscaled is not None:
                        warnings.warn(unscaled, UnscaledInputsWarning, stacklevel=2)
        cbs.on_train_end(logs)
    finally:
        release_checkpoint_dir(held, checkpoint_dir)
        release_backup_dir(held_backup, backup)
    return history


def _loss_above_start(cbs: CallbackList, history: History, same_rows_first: bool = False) -> str | None:
    """:func:`~downslope.train.diagnostics.loss_above_start_note` from the divergence guard watching the
    training loss (the loss before training and the last epoch's batch losses are its records). Unshuffled
    (``same_rows_first``), each epoch's first batch holds the rows the loss before training was measured on:
    that batch alone is compared with it, like with like, so rows sorted by their target (an easy first
    batch, every later one harder) never pass for a blow-up."""
    guard = next((cb for cb in cbs if isinstance(cb, DivergenceGuard) and cb.monitor == "loss"), None)
    if guard is None:
        return None
    batches = list(guard.epoch_batch_losses())
    if same_rows_first:
        batches = batches[:1]
    return loss_above_start_note(history["loss"], guard.before_training, batches, history["epoch"])


#: fit judges the inputs' scales only when n (d + 1)^2 is at most this (n rows, d features): the products over
#: the rows and the least-squares solve cost that many operations (0.2-0.8 s at this bound on a loaded
#: 2-core machine: 5,000 x 99, 200,000 x 15), and the note comes unasked.
_UNSCALED_BUDGET = 50_000_000


def _unscaled_inputs(
    model: Any, loss_fn: Any, optimizer: Any, train: Any, validation_split: Any, history: History
) -> str | None:
    """:func:`~downslope.train.diagnostics.unscaled_inputs_note` for the runs the curvature of a linear model
    describes: one ``nn.Linear`` trained under the mean squared error by plain gradient descent (GD, SGD, with
    or without momentum), without weight decay, on arrays ``(x, y)`` it trained on whole (no validation_split).
    Adaptive optimizers (Adam...) divide the gradient by its own size: the inputs' scale does not slow them so."""
    from ..nn import Linear, MSELoss, Sequential
    from ..optim import GD, SGD

    layer = model[0] if isinstance(model, Sequential) and len(model) == 1 else model
    if not isinstance(layer, Linear) or not isinstance(loss_fn, MSELoss) or loss_fn.reduction != "mean":
        return None
    if type(optimizer) not in (GD, SGD) or len(optimizer.param_groups) != 1 or validation_split is not None:
        return None
    group = optimizer.param_groups[0]
    if group.get("weight_decay") or not isinstance(train, (tuple, list)) or len(train) != 2:
        return None
    x, y = (to_host(v.array) if isinstance(v, Tensor) else v for v in train)
    if not (isinstance(x, np.ndarray) and isinstance(y, np.ndarray)) or x.ndim != 2 or len(x) != len(y):
        return None
    if len(x) * (x.shape[1] + 1) ** 2 > _UNSCALED_BUDGET:
        return None
    if not (np.issubdtype(x.dtype, np.number) and np.issubdtype(y.dtype, np.number)):
        return None
    beta = float(group.get("momentum") or 0.0)  # heavy ball widens the stable range by 1 + beta
    momentum = (1.0 + beta) / (1.0 + 2.0 * beta) - 1.0 if group.get("nesterov") else beta
    outputs = 1 if y.ndim == 1 else int(np.prod(y.shape[1:]))
    return unscaled_inputs_note(x, y, history["loss"], outputs, momentum)


def _checkpoint_builder(
    state: TrainingState, seed: int, loader: DataLoader, cbs: CallbackList, interrupt: _Interrupt, batches: Any
) -> Callable[[], dict[str, Any]]:
    """The function that gathers fit's whole resumable state (``TrainingState.checkpoint_state``)."""

    fingerprint: list[Any] = []  # computed once, at the first checkpoint

    def checkpoint_state() -> dict[str, Any]:
        model, optimizer, history = state.parts()
        scheduler = state.scheduler
        if not fingerprint:
            fingerprint.append(data_fingerprint(loader))
        return {
            "kind": CHECKPOINT_KIND,
            "epoch": state.epoch + 1,
            "seed": seed,
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict() if scheduler is not None else None,
            "train_loader": loader.state_dict(),
            "rng": backend.get_rng_state(),
            "history": history.state_dict(),
            "callbacks": cbs.state_dict(),
            "stop_reason": state.stop_reason,
            "stop_kind": state.stop_kind,
            # A stopping rule fired (early stopping, a target, divergence): resuming must not train on.
            # An interruption is not a stopping rule, wherever it came from: this process's own signal, or
            # another rank's that the ranks agreed on (then this process's handler never saw it).
            # (a second signal sets stop_training too, to end the batch loop: not a stopping rule either)
            "finished": bool(state.stop_training)
            and not interrupt.stopped
            and interrupt.aborted is None
            and state.stop_kind != "interrupted",
            "data": fingerprint[0],
            # with steps_per_epoch an epoch can end inside a pass over the data: where that pass stands
            "steps_pass": batches.state_dict() if isinstance(batches, StepsPerEpoch) else None,
        }

    return checkpoint_state


def _resume(
    checkpoint: dict[str, Any],
    resume_from: str | Path | None,
    state: TrainingState,
    loader: DataLoader,
    cbs: CallbackList,
    epochs: int,
    batches: Any = None,
) -> int:
    """Restores a checkpoint into the run; returns how many epochs are already done."""
    model, optimizer, history = state.parts()
    completed = restore(checkpoint, model, optimizer, state.scheduler, loader, history, cbs, resume_from, batches)
    if checkpoint.get("finished"):  # saved at the epoch where training stopped: nothing left to train
        state.stop_training = True
        state.stop_reason = checkpoint.get("stop_reason")
        state.stop_kind = checkpoint.get("stop_kind")
        completed = epochs
    return completed


def _train_epoch(
    epoch: int,
    loss_fn: LossFn,
    loader: DataLoader,
    val_loader: DataLoader | None,
    metrics: list[Metric],
    cbs: CallbackList,
    state: TrainingState,
    per_batch_schedule: bool,
    started: float,
    placed: device | None,
    class_weight: dict[int, float] | None = None,
    interrupt: _Interrupt | None = None,
    validation_freq: int | tuple[int, ...] = 1,
    first_fit_epoch: bool = False,
) -> Logs:
    """One epoch: the updates, validation, the epoch's scheduler step and the clocks; returns its logs.
    ``placed`` is the device trained on (None on the CPU). An epoch that ``validation_freq`` skips
    returns :class:`EpochLogs` marked ``validation_skipped``."""
    (model, optimizer, _), scheduler = state.parts(), state.scheduler
    epoch_start = time.perf_counter()
    lr = _current_lr(optimizer)
    batch_scheduler = scheduler if per_batch_schedule else None
    if placed is None:
        logs = _run_epoch(
            epoch,
            model,
            loss_fn,
            optimizer,
            loader,
            metrics,
            cbs,
            state,
            batch_scheduler,
            class_weight,
            first_fit_epoch,
        )
    else:
        logs = _run_epoch_on_device(
            epoch,
            model,
            loss_fn,
            optimizer,
            loader,
            metrics,
            cbs,
            state,
            batch_scheduler,
            placed,
            class_weight,
            first_fit_epoch,
        )
    if interrupt is not None:
        interrupt.check_aborted()  # a second signal ended the batch loop (through state.stop_training)
    if val_loader is not None and _validates(epoch, validation_freq):
        val = evaluate_loader(model, loss_fn, val_loader, metrics, placed, cbs)
        logs.update({f"val_{k}": v for k, v in val.items()})
    elif val_loader is not None:
        logs = EpochLogs(logs)
        logs.validation_skipped = True
    if lr is not None:
        logs["lr"] = lr
    _combine_epoch_logs(cbs, epoch, logs)  # (the global numbers, before the scheduler reads them)
    if scheduler is not None and not per_batch_schedule and not state.stop_training:
        _step_scheduler(scheduler, logs, val_loader is not None)  # (not after a stop within the epoch, e.g. a NaN loss)
    now = time.perf_counter()
    logs["epoch_time"] = now - epoch_start
    logs["time"] = now - started
    return logs


def _loaders(
    train: Any,
    validation: Any,
    validation_split: float | None,
    batch_size: Any,
    shuffle: bool,
    seed: int,
    placed: device | None = None,
    model: Any = None,
    validation_batch_size: int | None = None,
) -> tuple[DataLoader, DataLoader | None]:
    """fit's training loader (``train`` itself when it is a DataLoader) and validation loader (or None);
    the loaders fit makes put their batches on ``placed`` (a user's DataLoader is left as it is).

    A model with BatchNorm1d cannot train on a batch of one sample (its variance over the batch is
    undefined; PyTorch refuses it too). When the data's size is one more than a multiple of the batch
    size, the loader fit makes drops that last sample of each (shuffled) epoch instead of failing, as
    a user's ``DataLoader(drop_last=True)`` would."""
    if isinstance(train, DataLoader):
        # None says "not given" too (Keras' fit takes batch_size=None with a dataset that batches itself)
        if batch_size is not None and type(batch_size) is not _DefaultBatchSize:
            raise ConfigError("fit: train is a DataLoader, so give batch_size to the DataLoader, not to fit")
        if validation_split is not None:
            raise ConfigError(
                "fit: train is a DataLoader, so validation_split cannot hold rows out of it; pass "
                "validation=(x, y) or a validation DataLoader, or give fit the arrays"
            )
        loader = train
    else:
        dataset = as_dataset(train, "fit(train=...)", model_float_dtype(model), model)
        if validation_split is not None:  # the last rows, before shuffling, as Keras
            dataset, validation = split_validation(dataset, validation_split, seed)
        size = int(batch_size) if type(batch_size) is _DefaultBatchSize else batch_size
        loader = make_loader(dataset, batch_size=size, shuffle=shuffle, seed=seed, device=placed)
        if loader.num_samples > 1 and loader.num_samples % loader.batch_size == 1 and _has_batch_norm_1d(model):
            loader.drop_last = True  # read per epoch; the batch size, already below the sample count, stays valid
    check_has_batches(loader, "fit(train=...)")  # zero updates per epoch would train nothing, silently
    if validation is None:
        return loader, None
    if isinstance(validation, DataLoader) and validation_batch_size is not None:
        raise ConfigError(
            "fit: the validation data is a DataLoader, so give batch_size to that DataLoader, not "
            "validation_batch_size to fit"
        )
    return loader, as_loader(
        validation,
        validation_batch_size or 1024,
        False,
        None,
        "fit(validation=...)",
        device=placed,
        float_dtype=model_float_dtype(model),
        model=model,
    )


def _has_batch_norm_1d(model: Any) -> bool:
    from ..nn import BatchNorm1d

    return hasattr(model, "modules") and any(isinstance(m, BatchNorm1d) for m in model.modules())


def _callback_list(
    callbacks: Sequence[Callback] | CallbackList | None, history: History, checkpoint_dir: Any, verbose: int
) -> CallbackList:
    """The user's callbacks, a DivergenceGuard unless they brought one, the History's recorder, then
    checkpoints (so a saved state includes the whole epoch), then the progress output."""
    user = list(as_callback_list(callbacks))
    if not any(isinstance(cb, DivergenceGuard) for cb in user):
        # NaN/inf losses stop training with a clear message, and so does a loss 10^4 times above where it
        # started (however slowly it got there); a loss that merely rises above its best does not
        user.append(DivergenceGuard(factor=math.inf, initial_factor=1e4))
    savers = [cb for cb in user if isinstance(cb, (ModelCheckpoint, BackupAndRestore))]
    ordered: list[Callback] = [cb for cb in user if not isinstance(cb, (ModelCheckpoint, BackupAndRestore))]
    ordered.append(_RecordHistory(history))
    ordered.extend(savers)
    if checkpoint_dir is not None:
        ordered.append(ModelCheckpoint(Path(checkpoint_dir) / "last.ckpt"))
    if verbose:
        ordered.append(ProgressBar(verbose=verbose))
    return CallbackList(ordered)


def _run_epoch(
    epoch: int,
    model: ModelLike,
    loss_fn: LossFn,
    optimizer: OptimizerLike,
    loader: DataLoader,
    metrics: list[Metric],
    cbs: CallbackList,
    state: TrainingState,
    batch_scheduler: SchedulerLike | None,
    class_weight: dict[int, float] | None = None,
    first_fit_epoch: bool = False,
) -> Logs:
    """One epoch's updates on the host; ``first_fit_epoch``: the first epoch of this fit call, whose first batch
    checks that each metric can be computed (see :func:`~downslope.train.evaluation.check_metrics`)."""
    cbs.on_epoch_begin(epoch, {})
    total, count = 0.0, 0.0
    outputs: list[np.ndarray] = []
    targets: list[np.ndarray] = []
    float_dtype = model_float_dtype(model)  # None for a default-dtype model: its batches pass untouched
    closure = needs_closure(optimizer)
    inputs = model_input_count(model)  # (a batch (x1, x2, y) for a model of two inputs)
    # the metrics so far, in the batch logs, only for a callback of the user's that reads them (Keras 3's logs)
    running = RunningMetrics(metrics) if metrics and reads_batch_logs(cbs, TRAIN_BATCH_END) else None
    weights: list[Any] = []  # each batch's sample weights (sample_weight times class_weight), for weighted_metrics
    parts = PartLosses(loss_fn)  # a multi-output model's loss per output (<name>_loss)
    with model_mode(model, True):
        for i, batch in enumerate(loader):
            x, y, w = _batch_weights(batch, class_weight, inputs)
            if float_dtype is not None:
                x, y = conform(x, float_dtype), conform(y, float_dtype)
            n = input_rows(x)
            cbs.on_train_batch_begin(i, {"size": n})
            try:
                # A diverging step overflows (forward, loss, backward, update); the divergence guard fit
                # always runs stops on the non-finite loss and says so, so NumPy's warnings would only repeat it.
                with np.errstate(over="ignore", invalid="ignore"):
                    step_logs = _update(model, loss_fn, optimizer, x, y, w, closure)
            except Exception as exc:
                # Say where in training it happened, without changing the exception's type.
                if hasattr(exc, "add_note"):
                    exc.add_note(
                        f"(in fit: epoch {epoch + 1}, batch {i + 1}; inputs {input_shapes(x)}, targets {shapes_of(y)})"
                    )
                raise
            _record_step_lr(state, optimizer, epoch, i)
            if batch_scheduler is not None:
                batch_scheduler.step()
            weight, counted = loss_weights(loss_fn, n, y if w is None else None)
            if weight:  # (a batch whose targets are all ignored has no weight, and a NaN mean)
                total += step_logs["loss"] * weight
            count += counted
            parts.add(step_logs.get("parts"), n)
            if metrics:
                out, target, weighing = metric_inputs(loss_fn, step_logs["outputs"], y, w)
                if first_fit_epoch and i == 0:
                    check_metrics(metrics, out, target, weighing)
                outputs.append(out)
                targets.append(target)
                weights.append(weighing)
            batch_logs = BatchLogs(loss=total / (count or 1))  # Keras 3's: the epoch's mean so far
            if running is not None:
                batch_logs.update(running.update(outputs, targets, weights))
            if parts:
                batch_logs.update(parts.so_far())
            batch_logs.batch_loss, batch_logs.size, batch_logs.scored = step_logs["loss"], n, bool(weight)
            cbs.on_train_batch_end(i, batch_logs)
            if state.stop_training:  # a callback asked to stop (e.g. the loss became NaN)
                break
    mean = total / (count or 1)
    return {"loss": mean, **score(metrics, outputs, targets, weights, mean), **parts.means()}


def _run_epoch_on_device(
    epoch: int,
    model: ModelLike,
    loss_fn: LossFn,
    optimizer: OptimizerLike,
    loader: DataLoader,
    metrics: list[Metric],
    cbs: CallbackList,
    state: TrainingState,
    batch_scheduler: Any,
    placed: device,
    class_weight: dict[int, float] | None = None,
    first_fit_epoch: bool = False,
) -> Logs:
    """:func:`_run_epoch` on a device: the loss sum and the metrics' inputs stay there; the host reads
    them once, at the end of the epoch (the batch logs' losses are DeviceScalars, read only if asked)."""
    cbs.on_epoch_begin(epoch, {})
    total = EpochLoss()  # summed on the device at the end: the same sum, in the same order, as the host loop's
    # a loss whose mean is over the targets it does not ignore (CrossEntropyLoss): each batch weighs its count of
    # them, counted and kept on the device (read once per epoch), not read per batch
    counted = CountedLoss() if counts_targets(loss_fn) else None
    count = 0.0
    outputs: list[Any] = []
    targets: list[Any] = []
    moved = loader.device != placed  # a user's DataLoader without device=: move each batch once here
    float_dtype = model_float_dtype(model)
    closure = needs_closure(optimizer)
    inputs = model_input_count(model)
    running = RunningMetrics(metrics) if metrics and reads_batch_logs(cbs, TRAIN_BATCH_END) else None
    weights: list[Any] = []  # each batch's sample weights (sample_weight times class_weight), for weighted_metrics
    parts = PartLosses(loss_fn)  # a multi-output model's loss per output (<name>_loss), summed on the device
    with model_mode(model, True):
        for i, batch in enumerate(loader):
            x, y, w = _batch_weights(batch_to(batch, placed) if moved else batch, class_weight, inputs)
            if float_dtype is not None:
                x, y = conform(x, float_dtype), conform(y, float_dtype)
            n = input_rows(x)
            cbs.on_train_batch_begin(i, {"size": n})
            try:
                step_logs = _update(model, loss_fn, optimizer, x, y, w, closure)
            except Exception as exc:
                if hasattr(exc, "add_note"):
                    exc.add_note(
                        f"(in fit: epoch {epoch + 1}, batch {i + 1}; inputs {input_shapes(x)}, targets {shapes_of(y)})"
                    )
                raise
            _record_step_lr(state, optimizer, epoch, i)
            if batch_scheduler is not None:
                batch_scheduler.step()
            loss = step_logs["loss"]
            loss_array = loss.array if isinstance(loss, DeviceScalar) else np.asarray(loss)
            if counted is not None:
                weight, in_count = loss_weights(loss_fn, n)  # (the targets are counted on the device)
                on_device = device_target_weight(loss_fn, y) if w is None else None
                counted.add(loss_array, weight if on_device is None else on_device)
            else:
                weight, in_count = loss_weights(loss_fn, n, y if w is None else None)
                if weight:  # (a batch whose targets are all ignored has no weight, and a NaN mean)
                    total.add(loss_array, weight)
            count += in_count
            parts.add(step_logs.get("parts"), n)
            if metrics:
                out, target, weighing = metric_inputs(loss_fn, step_logs["outputs"], y, w)
                if first_fit_epoch and i == 0:
                    check_metrics(metrics, out, target, weighing)
                outputs.append(out)
                targets.append(target)
                weights.append(weighing)
            # read (and computed) only if asked
            batch_logs = BatchLogs(loss=RunningDeviceMean(total if counted is None else counted, count))
            if running is not None:
                batch_logs.update(running.update(outputs, targets, weights))
            if parts:
                batch_logs.update(parts.so_far())
            batch_logs.batch_loss, batch_logs.size, batch_logs.scored = loss, n, bool(weight)
            cbs.on_train_batch_end(i, batch_logs)
            if state.stop_training:
                break
    mean = total.mean(count) if counted is None else counted.mean()
    return {"loss": mean, **score_on_device(metrics, outputs, targets, weights, mean), **parts.means()}


def _check_class_weight(class_weight: Any) -> dict[int, float] | None:
    """fit's ``class_weight`` as ``{int class: float weight}``, or None."""
    if class_weight is None:
        return None
    if not isinstance(class_weight, Mapping) or not class_weight:
        raise ConfigError(f"fit: class_weight must be a non-empty dict {{class index: weight}}, got {class_weight!r}")
    checked: dict[int, float] = {}
    for key, value in class_weight.items():
        if isinstance(key, bool) or not isinstance(key, (int, np.integer)) or key < 0:
            raise ConfigError(f"fit: class_weight keys must be class indices (integers >= 0), got {key!r}")
        weight = float(value.item() if hasattr(value, "item") else value)  # host: a hyperparameter
        if not math.isfinite(weight) or weight < 0:
            raise ConfigError(f"fit: class_weight[{key}] must be a finite number >= 0, got {value!r}")
        checked[int(key)] = weight
    return checked


def _generator_loader(
    batches: Any, steps_per_epoch: int | None, checkpoint_dir: Any, resume_from: Any, callbacks: Any
) -> DataLoader:
    """A Python generator of ``(x, y)`` batches (Keras' ``fit(generator, steps_per_epoch=N)``) as a DataLoader
    passing its batches through; it needs ``steps_per_epoch`` (it has no length), and cannot be rewound, so a
    run that saves its state to resume from (``checkpoint_dir``, ``resume_from``, BackupAndRestore) is refused."""
    if steps_per_epoch is None:
        raise ConfigError(
            "fit: the training data is a generator, which has no length: pass steps_per_epoch=N (the batches of "
            "an epoch), as Keras requires"
        )
    resumable = checkpoint_dir is not None or resume_from is not None
    if resumable or any(isinstance(cb, BackupAndRestore) for cb in as_callback_list(callbacks)):
        raise ConfigError(
            "fit: a generator cannot be rewound, so a run fed by one cannot be resumed (checkpoint_dir, resume_from, "
            "BackupAndRestore); give the data as arrays, a Dataset or a DataLoader to resume"
        )
    return DataLoader(GeneratorBatches(batches), batch_size=None)


def _with_sample_weight(train: Any, sample_weight: Any) -> Any:
    """``train`` given as ``(x, y)`` arrays, extended to ``(x, y, sample_weight)`` (see
    :func:`~downslope.train.evaluation.with_sample_weight`)."""
    return with_sample_weight(train, sample_weight, "fit")


def _batch_weights(
    batch: Any, class_weight: dict[int, float] | None, inputs: int | None = None
) -> tuple[Any, Any, Any]:
    """A training batch's inputs, targets and per-sample weights (None: unweighted): its own weights
    (``sample_weight``) times its targets' class weights (``class_weight``); ``inputs``: the model's
    input count (see :func:`~downslope.train.inputs.unpack_batch`)."""
    x, y, w = unpack_batch(batch, "fit", weights=True, inputs=inputs)
    if class_weight is None:
        return x, y, w
    labels = to_host(y.array)  # host: the batch's targets, to look their classes up
    if labels.ndim >= 2 and labels.shape[-1] > 1:  # one-hot (or probabilities): the class is the argmax
        labels = labels.argmax(-1)
    labels = np.rint(labels.reshape(len(labels), -1)[:, 0]).astype(np.int64)
    found = np.array([class_weight.get(int(c), 1.0) for c in labels], dtype=backend.get_default_dtype())
    weights = to_device(found, device_of(y.array))
    # (a Tensor, not a bare array: weighted_loss would read a device's array through NumPy)
    return x, y, wrap_array(weights if w is None else w.array * weights)


_LOSS_NAMES = LOSS_NAMES  # (the table lives beside evaluate, which takes the same names)


#: Keras' optimizer names, with the class each builds and Keras' default learning rate (the
#: number a Keras user tunes from; PyTorch's differ: Adadelta 1.0, RMSprop and Adagrad 0.01, Adamax
#: and NAdam 0.002). The other hyperparameters are the classes' own (PyTorch's) defaults.
OPTIMIZER_NAMES: dict[str, tuple[str, float]] = {
    "sgd": ("SGD", 0.01),
    "adam": ("Adam", 0.001),
    "adamw": ("AdamW", 0.001),
    "rmsprop": ("RMSprop", 0.001),
    "adagrad": ("Adagrad", 0.001),
    "adadelta": ("Adadelta", 0.001),
    "adamax": ("Adamax", 0.001),
    "nadam": ("NAdam", 0.001),
}


def _optimizer_by_name(optimizer: Any, model: Any) -> Any:
    """An optimizer given by Keras' name ('adam') as that optimizer over ``model.parameters()`` with
    Keras' default learning rate; anything else as it is."""
    if not isinstance(optimizer, str):
        refuse_keras_object(optimizer, "optimizer", "fit")
        return optimizer
    entry = OPTIMIZER_NAMES.get(optimizer.lower())
    if entry is None:
        raise ConfigError(
            f"fit: unknown optimizer {optimizer!r}; use one of {', '.join(OPTIMIZER_NAMES)} or pass an "
            "optimizer object (optim.Adam(model.parameters(), lr=...))"
        )
    if not callable(getattr(model, "parameters", None)):
        raise ConfigError(f"fit: optimizer {optimizer!r} needs a model with parameters(); got {type(model).__name__}")
    from .. import optim

    name, lr = entry
    return getattr(optim, name)(model.parameters(), lr=lr)


def _refuse_a_class(argument: str, value: Any, call: str) -> None:
    """A class passed where fit needs an instance (``loss_fn=nn.MSELoss``): refused, naming the call to
    make (``call``: the arguments to write after the class name)."""
    if not isinstance(value, type):
        return
    module = value.__module__ or ""
    prefix = next(
        (
            short
            for full, short in (
                ("downslope.nn", "nn."),
                ("downslope.optim.lr_scheduler", "optim.lr_scheduler."),
                ("downslope.optim", "optim."),
            )
            if module.startswith(full)
        ),
        "",
    )
    name = f"{prefix}{value.__qualname__}"
    raise ConfigError(f"fit: {argument} is the class {name}; pass an instance: {name}{call}")


def _warn_if_optimizer_misses_the_model(optimizer: Any, model: Any) -> None:
    """Warn when the optimizer holds none of the model's trainable parameters (built on another model,
    say one created again after the optimizer): training would change nothing in the model. Only a
    warning: a loss with parameters of its own, trained alone, is legitimate."""
    groups = getattr(optimizer, "param_groups", None)
    parameters = getattr(model, "parameters", None)
    if not groups or not callable(parameters):
        return
    trainable = {id(p) for p in parameters() if getattr(p, "requires_grad", False)}
    held = {id(p[1] if isinstance(p, tuple) else p) for group in groups for p in group.get("params", ())}
    if trainable and held and not trainable & held:
        warnings.warn(
            f"fit: the optimizer holds none of the model's {len(trainable)} trainable parameters (it holds "
            f"{len(held)} others), so training will not change the model; was the model created again after "
            f"the optimizer? Build it on this model: {type(optimizer).__name__}(model.parameters(), ...)",
            UserWarning,
            stacklevel=3,
        )


def _check_scheduler(scheduler: Any, optimizer: Any, given: Any) -> None:
    """Refuse, before the first epoch, a ``scheduler`` fit cannot step (a callback, a name, a function: each
    would fail only after the first epoch, inside ``step``) or one that steps another optimizer than
    ``optimizer`` (its rates would change where fit never reads them: a run silently at the first rate).
    ``given`` is fit's ``optimizer`` argument as passed (a name such as ``'adam'`` or the object)."""
    _refuse_a_class("scheduler", scheduler, "(optimizer, ...)")
    accepted = (
        "an lr scheduler built on fit's optimizer, e.g. optim.lr_scheduler.StepLR(optimizer, step_size=10), "
        "or an object with step()"
    )
    what = described(scheduler)
    if callable(getattr(scheduler, "zero_grad", None)) and hasattr(scheduler, "param_groups"):
        raise ArgumentTypeError(
            f"fit: scheduler is an optimizer ({what}), not a learning-rate scheduler; pass {accepted}"
        )
    if not callable(getattr(scheduler, "step", None)):
        if _is_keras_object(scheduler):
            name = type(scheduler).__name__
            ours = f"ds.train.{name}(...)" if name in ("LearningRateScheduler", "ReduceLROnPlateau") else None
            hint = f"; its downslope version goes in callbacks=[{ours}]" if ours else ""
            raise ArgumentTypeError(f"fit: scheduler is the Keras object {what}, which downslope cannot run{hint}")
        if isinstance(scheduler, Callback) or callable(getattr(scheduler, "on_epoch_begin", None)):
            raise ArgumentTypeError(
                f"fit: scheduler is the callback {what}, which fit cannot step; pass it in callbacks=[...] "
                f"(fit(..., callbacks=[{type(scheduler).__name__}(...)])), or give scheduler= {accepted}"
            )
        if callable(scheduler):
            optax = (
                " (an optim.schedules function maps the update count to the rate: it is the update rule's own, "
                "transforms.scale_by_lr(schedule))"
                if getattr(scheduler, "__module__", None) == "downslope.optim.schedules"
                else ""
            )
            raise ArgumentTypeError(
                f"fit: scheduler is a function ({what}), which fit cannot step{optax}; wrap it: "
                "scheduler=optim.lr_scheduler.LambdaLR(optimizer, lambda epoch: factor) (a factor of the initial "
                "rate), or callbacks=[ds.train.LearningRateScheduler(schedule)] (Keras': schedule(epoch, lr) -> lr)"
            )
        raise ArgumentTypeError(f"fit: scheduler must be {accepted}; got {what}")
    stepped = getattr(scheduler, "optimizer", None)
    if stepped is None or same_param_groups(stepped, optimizer):
        return  # (a scheduler of the user's without .optimizer: nothing to compare)
    sched = type(scheduler).__name__
    theirs, ours = described(stepped), described(optimizer)
    if theirs == ours:
        theirs += " (an optimizer alike but not the same object)"
    if isinstance(given, str):
        fix = (
            f"fit built a new {ours} from the name {given!r}, which no scheduler can be built on; "
            f"build the optimizer yourself and the scheduler on it: opt = optim.{type(optimizer).__name__}("
            f"model.parameters(), lr=...); sched = optim.lr_scheduler.{sched}(opt, ...); "
            "fit(model, loss_fn, opt, ..., scheduler=sched)"
        )
    else:
        fix = (
            f"fit was given {ours}; build the scheduler on the optimizer you pass to fit: "
            f"sched = optim.lr_scheduler.{sched}(opt, ...); fit(model, loss_fn, opt, ..., scheduler=sched) "
            "(was the optimizer created again after the scheduler?)"
        )
    raise ConfigError(
        f"fit: the scheduler ({sched}) steps another optimizer, {theirs}, so the rates fit trains "
        f"with would never change; {fix}"
    )


def same_param_groups(stepped: Any, optimizer: Any) -> bool:
    """Whether a scheduler on ``stepped`` changes the rates ``optimizer`` uses: the same object, or one that
    shares its param groups (distributed.fit's DistributedOptimizer around the optimizer the user's
    scheduler was built on)."""
    if stepped is optimizer:
        return True
    mine, theirs = getattr(stepped, "param_groups", None), getattr(optimizer, "param_groups", None)
    if mine is None or theirs is None:
        return False
    return mine is theirs or (len(mine) == len(theirs) > 0 and all(a is b for a, b in zip(mine, theirs)))


def _is_keras_object(value: Any) -> bool:
    module = type(value).__module__ or ""
    return module == "keras" or module.startswith(("keras.", "tf_keras", "tensorflow"))


def described(value: Any) -> str:
    """A short name for an object in a message (never its repr, which can be long): its class, where it
    comes from when that is not downslope, and an optimizer's rates and parameter count."""
    name = class_name(value)
    if isinstance(value, (str, bool, int, float)):
        return kind_of(value)
    if type(value).__name__ in ("function", "builtin_function_or_method", "method"):
        short = getattr(value, "__name__", name)
        return "a lambda" if short == "<lambda>" else f"{short}()"
    groups = getattr(value, "param_groups", None)
    if isinstance(groups, (list, tuple)) and all(isinstance(g, Mapping) for g in groups):
        rates = ", ".join(f"{float(g['lr']):g}" for g in groups if "lr" in g)
        count = sum(len(list(g.get("params", ()))) for g in groups)
        return f"{name}(lr={rates}) holding {count} parameter tensors"
    return name


def _check_schedule_length(scheduler: Any, loader: DataLoader, epochs_left: int) -> None:
    """Refuse, before the first update, a per-batch scheduler with a fixed number of steps (OneCycleLR's
    ``total_steps``) fewer than the updates fit will make: it would fail mid-training when it runs out."""
    total = getattr(scheduler, "total_steps", None)
    if isinstance(total, bool) or not isinstance(total, (int, np.integer)) or epochs_left <= 0:
        return
    taken = max(int(getattr(scheduler, "last_epoch", 0)), 0)
    left = int(total) - taken
    per_epoch = known_length(loader)
    if per_epoch is None:  # a stream without a length: the updates are not known before it ends
        return
    updates = per_epoch * epochs_left
    if updates <= left:
        return
    name = type(scheduler).__name__
    already = f" ({taken} taken already, {left} left)" if taken else ""
    message = (
        f"fit: {name} steps once per batch and has total_steps={int(total)}{already}, but this training makes "
        f"{per_epoch} batches per epoch x {epochs_left} epochs = {updates} updates; it would fail at update "
        f"{left + 1}. Build it with steps_per_epoch={per_epoch} (and epochs={epochs_left}), or "
        f"total_steps={updates + taken}"
    )
    samples = getattr(loader, "num_samples", None)
    size = getattr(loader, "batch_size", None)
    if isinstance(samples, int) and isinstance(size, int) and size > 0 and not getattr(loader, "drop_last", False):
        floor = samples // size
        if samples % size and left == floor * epochs_left:
            message += (
                f"; steps_per_epoch={floor} looks like len(X) // batch_size ({samples} // {size}), which leaves out "
                f"the last, partial batch: use math.ceil(len(X) / batch_size) = {per_epoch}, or drop that batch "
                "(a DataLoader with drop_last=True)"
            )
    raise ConfigError(message)


def _loss_by_name(loss_fn: Any) -> Any:
    """A loss given by name (as Keras users pass one) as the loss object; anything else as it is."""
    return resolve_loss(loss_fn, "fit")


def _warn_if_one_of_several_processes(cbs: CallbackList) -> None:
    """Under ``mpiexec -n W`` this fit trains each rank's copy alone (distributed.fit is the data-parallel
    one): warned once per process, naming the files every rank would write (read from the launcher's
    environment only)."""
    from ..launchers import warn_training_alone

    files = []
    for cb in cbs:
        for attribute in ("filepath", "filename", "backup_dir", "log_dir"):
            if getattr(cb, attribute, None) is not None:
                files.append(f"{type(cb).__name__} {str(getattr(cb, attribute))!r}")
                break
    warn_training_alone("ds.fit", files)


def _combine_epoch_logs(cbs: CallbackList, epoch: int, logs: Logs) -> None:
    """Let the callbacks that make the epoch's numbers global (distributed.fit's average over the ranks)
    do so before the epoch's scheduler step, which would otherwise read one rank's own numbers; called
    every epoch on every rank alike, as the averaging is a collective."""
    for cb in cbs:
        combine = getattr(cb, "combine_epoch_logs", None)
        if combine is not None:
            combine(epoch, logs)


def _step_scheduler(scheduler: SchedulerLike, logs: Logs, validates: bool = False) -> None:
    if _is_plateau(scheduler):
        monitor = getattr(scheduler, "monitor", None) or ("val_loss" if validates or "val_loss" in logs else "loss")
        monitor = canonical_log_name(monitor, logs)
        if monitor not in logs and getattr(logs, "validation_skipped", False) and monitor.startswith("val_"):
            return  # an epoch validation_freq skips: the plateau waits for the next validation, as in Keras
        if monitor not in logs:
            raise ConfigError(f"fit: ReduceLROnPlateau monitors {monitor!r}, which is not logged ({', '.join(logs)})")
        scheduler.step(logs[monitor])
    else:
        scheduler.step()


__all__ = ["fit", "train_step", "evaluate", "predict", "CHECKPOINT_KIND"]
