"""Running a model without training it: :func:`evaluate` (loss and metrics) and :func:`predict`.

Both run in eval mode without recording gradients and put the model's previous mode back
(:func:`model_mode`); fit scores its validation data with :func:`evaluate_loader`. On a device the
loss sum and the outputs stay there and are read back once (see ``train/placement.py``).
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import partial
from typing import Any

import numpy as np

from ..autograd import no_grad
from ..backend import namespace_of
from ..data.dataset import ArrayDataset, Dataset
from ..data.loader import DataLoader, batch_to
from ..device import CPU, device
from ..devices import to_host
from ..errors import ConfigError
from ..tensor import Tensor, wrap_array
from .batch_logs import TEST_BATCH_END, BatchLogs, CountedLoss, RunningDeviceMean, RunningMetrics, reads_batch_logs
from .callbacks import Callback, Logs, as_callback_list
from .inputs import (
    as_loader,
    batch_inputs,
    call_model,
    check_numeric,
    conform,
    features_as_float,
    input_rows,
    inputs_dataset,
    make_loader,
    model_float_dtype,
    model_input_count,
    multi_input,
    target_column,
    unpack_batch,
)
from .keras_losses import KERAS_LOSS_ALIASES, KERAS_LOSSES, KerasLoss
from .metrics import (
    GuessedThreshold,
    Metric,
    MetricFn,
    NonFiniteScoresError,
    adapt_to_loss,
    as_metric,
    canonical_log_name,
    keras_order,
    logged_as,
    of_class_logits,
    quiet_check,
)
from .multi_output import (
    OutputLosses,
    PartLosses,
    arrays_of,
    host_tensors,
    join_parts,
    output_metrics,
    part_arrays,
    per_output_loss,
    pick,
    pick_weights,
    plan_outputs,
    refuse_unplanned,
    shapes_of,
    structured,
)
from .placement import DeviceScalar, EpochLoss, on_host, training_device
from .protocols import LossFn, ModelLike


@contextmanager
def model_mode(model: ModelLike, training: bool) -> Iterator[None]:
    """Switch ``model`` to train (True) or eval (False) mode and restore the previous one afterwards.

    Example:
        >>> from downslope import nn
        >>> from downslope.train.evaluation import model_mode
        >>> layer = nn.Dropout(0.5)
        >>> with model_mode(layer, False):
        ...     layer.training
        False
        >>> layer.training
        True
    """
    previous = getattr(model, "training", None)
    if hasattr(model, "train"):
        model.train(training)
    try:
        yield
    finally:
        if previous is not None and hasattr(model, "train"):
            model.train(previous)


def loss_weight(loss_fn: LossFn, n: int, targets: Any = None) -> float:
    """Weight of a batch loss in the epoch's mean (see :func:`loss_weights`, which also gives the count).

    A mean-reduced batch loss counts ``n`` times; a sum-reduced one already adds up its samples; a
    class-weighted mean (``CrossEntropyLoss(weight=...)``, given the batch's ``targets``) counts the
    total weight of its targets.
    """
    return loss_weights(loss_fn, n, targets)[0]


def loss_weights(loss_fn: LossFn, n: int, targets: Any = None) -> tuple[float, float]:
    """``(weight, count)`` of a batch of ``n`` samples in the epoch's loss ``sum(weight * batch loss) /
    sum(count)``, so that the epoch's loss is the loss of the whole data in one batch, whatever the
    batch size.

    - a mean-reduced loss: ``(n, n)``; a sum-reduced one: ``(1, n)`` (the mean over samples);
    - a loss with ``ignore_index`` (``CrossEntropyLoss``, ``NLLLoss``) given class-index ``targets``:
      PyTorch divides the batch's sum by the batch's total target weight ``sum(weight[y])``, or without
      class weights by the number of targets that are not ignored, so both are that total: the epoch's
      loss is then the (weighted) mean over all the data, as one full batch gives, and a batch whose
      targets are all ignored (a NaN mean) weighs nothing. On a device the targets are read to the host
      for it (one small copy per batch).

    Example:
        >>> import downslope as ds
        >>> from downslope.train.evaluation import loss_weights
        >>> loss = ds.nn.CrossEntropyLoss(weight=ds.tensor([1.0, 3.0]))
        >>> loss_weights(loss, 3, ds.tensor([0, 1, 1])), loss_weights(ds.nn.MSELoss(reduction="sum"), 3)
        ((7.0, 7.0), (1, 3))
    """
    reduction = getattr(loss_fn, "reduction", "mean")
    if reduction == "sum":
        return 1, n
    total = _target_weight(loss_fn, targets) if targets is not None and reduction == "mean" else None
    return (n, n) if total is None else (total, total)


def _target_weight(loss_fn: Any, targets: Any) -> float | None:
    """What a mean loss with ``ignore_index`` divides the batch's sum by: the total class weight of the
    targets not ignored, or their number without class weights; None for any other loss (or targets that
    are class probabilities, whose mean PyTorch takes over the batch)."""
    ignore_index = getattr(loss_fn, "ignore_index", None)
    if ignore_index is None or isinstance(ignore_index, bool) or not isinstance(ignore_index, (int, np.integer)):
        return None
    labels = to_host(targets.array if isinstance(targets, Tensor) else np.asarray(targets))
    if labels.dtype.kind not in "iu":  # class probabilities: PyTorch's mean divides by the batch size
        return None
    kept = labels[labels != ignore_index]
    weight = getattr(loss_fn, "weight", None)
    if weight is None:
        return float(kept.size)  # host: the number of targets the mean is over
    table = to_host(weight.array if isinstance(weight, Tensor) else np.asarray(weight)).astype(np.float64)
    return float(table[kept].sum())  # host: the batch's total target weight


def counts_targets(loss_fn: Any) -> bool:
    """Whether ``loss_fn``'s batch mean is over the targets it does not ignore (a mean-reduced loss with an
    integer ``ignore_index``: ``CrossEntropyLoss``, ``NLLLoss``), so that a batch weighs its count of them
    in the epoch's loss (see :func:`loss_weights`)."""
    ignore_index = getattr(loss_fn, "ignore_index", None)
    return (
        getattr(loss_fn, "reduction", "mean") == "mean"
        and not isinstance(ignore_index, bool)
        and isinstance(ignore_index, (int, np.integer))
    )


def device_target_weight(loss_fn: Any, targets: Any) -> Any:
    """:func:`loss_weights`' weight of a batch for a loss that :func:`counts_targets`, computed where the
    ``targets`` are (a 0-d float64 array there, nothing read back); None for targets that are not class
    indices (class probabilities: the batch weighs its size)."""
    labels = targets.array if isinstance(targets, Tensor) else targets
    if labels.dtype.kind not in "iu":
        return None
    xp = namespace_of(labels)
    kept = labels != loss_fn.ignore_index
    weight = getattr(loss_fn, "weight", None)
    if weight is None:
        return xp.sum(kept).astype(np.float64)
    from ..devices import device_of, to_device

    table = weight.array if isinstance(weight, Tensor) else np.asarray(weight)
    table = to_device(table, device_of(labels)).astype(np.float64)  # the class weights, where the targets are
    return xp.sum(xp.where(kept, table[xp.where(kept, labels, 0)], 0.0))


def weighted_loss(loss_fn: LossFn, outputs: Tensor, targets: Tensor, weights: Any, where: str = "fit") -> Tensor:
    """The batch loss with per-sample ``weights`` (fit's ``sample_weight``/``class_weight``), as Keras
    reduces it: ``sum(w_i * loss_i) / n`` for a mean-reduced loss (Keras' ``sum_over_batch_size``;
    ``sum(w_i * loss_i)`` for a sum-reduced one). Each ``loss_i`` comes from the loss module run with
    ``reduction='none'`` (averaged over a sample's other axes); a loss that cannot give per-sample
    values (a plain function, or another reduction) is refused.

    Example:
        >>> import downslope as ds
        >>> from downslope.train.evaluation import weighted_loss
        >>> loss = weighted_loss(ds.nn.MSELoss(), ds.tensor([[1.0], [2.0]]), ds.zeros(2, 1), [1.0, 0.0])
        >>> loss.item()
        0.5
    """
    if getattr(loss_fn, "per_output", False):  # a multi-output model's loss: each output's loss weighs its own
        return loss_fn(outputs, targets, weights)  # type: ignore[call-arg]
    reduction = getattr(loss_fn, "reduction", None)
    if reduction not in ("mean", "sum"):
        shown = f"reduction={reduction!r}" if reduction is not None else "no reduction attribute"
        raise ConfigError(
            f"{where}: sample_weight and class_weight need per-sample losses: a loss module with reduction='mean' "
            f"or 'sum' (run with reduction='none'), such as nn.CrossEntropyLoss(); got "
            f"{getattr(loss_fn, '__name__', type(loss_fn).__name__)} with {shown}"
        )
    loss_fn.reduction = "none"  # type: ignore[attr-defined]
    try:
        per = loss_fn(outputs, targets)
    finally:
        loss_fn.reduction = reduction  # type: ignore[attr-defined]
    w = weights if isinstance(weights, Tensor) else wrap_array(np.asarray(weights))
    n = int(w.shape[0]) if w.ndim else 1
    if per.ndim == 0 or per.shape[0] != n:
        raise ConfigError(
            f"{where}: the loss with reduction='none' gave shape {tuple(per.shape)}, not one value per sample "
            f"({n}), so it cannot be weighted per sample"
        )
    if per.ndim > 1:
        per = per.reshape(n, -1).mean(1)
    total = (per * w.to(per.dtype)).sum()
    return total / n if reduction == "mean" else total


# ---------------------------------------------------------------------- losses by name
#: Loss names fit and evaluate take, with the loss each builds. The Keras names of the cross-entropies
#: read the model's outputs as Keras reads them: probabilities (a model ending in softmax or sigmoid)
#: unless ``from_logits=True`` is given; downslope's own names keep PyTorch's meaning (logits for
#: 'cross_entropy' and 'bce_with_logits').
LOSS_NAMES = {
    "mse": "MSELoss", "mean_squared_error": "MSELoss", "mae": "L1Loss", "l1": "L1Loss",
    "mean_absolute_error": "L1Loss", "huber": "HuberLoss", "smooth_l1": "SmoothL1Loss",
    "cross_entropy": "CrossEntropyLoss", "sparse_categorical_crossentropy": "sparse",
    "categorical_crossentropy": "categorical", "binary_crossentropy": "binary", "bce": "BCELoss",
    "bce_with_logits": "BCEWithLogitsLoss", "nll": "NLLLoss", "kl_div": "KLDivLoss",
    # Keras 3's other losses, with its formulas and clipping (train/keras_losses.py)
    **{name: f"keras:{name}" for name in (*KERAS_LOSSES, *KERAS_LOSS_ALIASES)},
}  # fmt: skip

_KERAS_EPSILON = 1e-7  # Keras' backend.epsilon(): probabilities are clipped to [eps, 1 - eps]


class KerasCrossEntropy:
    """Keras' ``sparse_categorical_crossentropy`` (``kind='sparse'``: class-index targets),
    ``categorical_crossentropy`` (``kind='categorical'``: one-hot or probability targets), over the
    last axis as Keras reads it, and ``binary_crossentropy`` (``kind='binary'``: 0/1 or probability
    targets of the outputs' shape, one sigmoid output per column). With ``from_logits=False`` (Keras'
    default) the outputs are probabilities: each row is divided by its sum (not for 'binary') and
    clipped to ``[1e-7, 1 - 1e-7]`` before the log, as Keras 3 does (PyTorch's ``BCELoss`` instead
    clamps the log at -100, a different loss when a probability saturates at 0 or 1); with
    ``from_logits=True`` they are logits (a log-softmax, or for 'binary' a log-sigmoid, is taken).
    A sample's 'binary' loss is the mean over its last axis, as Keras takes it. The loss is the mean
    over samples (``reduction='mean'``), ``'sum'`` or ``'none'`` (one value per sample).

    Outputs with negative values are not probabilities: the first batch that holds some warns (once
    per loss, and only for host arrays, where the check costs no wait for a device).

    Example:
        >>> import downslope as ds
        >>> from downslope.train.evaluation import KerasCrossEntropy
        >>> probs = ds.tensor([[0.9, 0.1], [0.2, 0.8]])
        >>> round(KerasCrossEntropy("sparse")(probs, ds.tensor([0, 1])).item(), 4)
        0.1643
    """

    def __init__(self, kind: str = "sparse", from_logits: bool = False, reduction: str = "mean") -> None:
        if kind not in ("sparse", "categorical", "binary"):
            raise ConfigError(f"KerasCrossEntropy: kind must be 'sparse', 'categorical' or 'binary', got {kind!r}")
        self.kind = kind
        self.from_logits = bool(from_logits)
        self.reduction = reduction
        self._checked = from_logits

    def __repr__(self) -> str:
        return f"KerasCrossEntropy({self.kind!r}, from_logits={self.from_logits})"

    def __call__(self, outputs: Tensor, target: Any) -> Tensor:
        from ..nn.functional import log_softmax

        if not self._checked:
            self._checked = True
            self._warn_if_logits(outputs)
        if self.kind == "binary":
            return self._binary(outputs, target)
        if self.from_logits:
            log_p = log_softmax(outputs, dim=-1)
        else:
            log_p = (outputs / outputs.sum(dim=-1, keepdim=True)).clamp(_KERAS_EPSILON, 1.0 - _KERAS_EPSILON).log()
        t = target if isinstance(target, Tensor) else wrap_array(np.asarray(target))
        if self.kind == "sparse":
            if t.ndim == log_p.ndim and t.shape[-1] == 1:  # (N, 1) labels, as Keras takes them
                t = t.squeeze(-1)
            if tuple(t.shape) != tuple(log_p.shape[:-1]):
                raise ConfigError(
                    f"sparse_categorical_crossentropy: expected targets of shape {tuple(log_p.shape[:-1])} (one "
                    f"class index per output row of {tuple(log_p.shape)}), got {tuple(t.shape)}"
                )
            index = t.array if t.array.dtype.kind in "iu" else t.array.astype(np.int64)
            per = -log_p.gather(-1, wrap_array(index.astype(np.int64, copy=False)).unsqueeze(-1)).squeeze(-1)
        else:
            if tuple(t.shape) != tuple(log_p.shape):
                raise ConfigError(
                    f"categorical_crossentropy: expected one-hot targets of the outputs' shape {tuple(log_p.shape)}, "
                    f"got {tuple(t.shape)} (class indices take 'sparse_categorical_crossentropy')"
                )
            per = -(wrap_array(t.array.astype(log_p.dtype, copy=False)) * log_p).sum(dim=-1)
        if self.reduction == "none":
            return per
        return per.sum() if self.reduction == "sum" else per.mean()

    def _binary(self, outputs: Tensor, target: Any) -> Tensor:
        from ..nn.functional import binary_cross_entropy, binary_cross_entropy_with_logits

        t = target if isinstance(target, Tensor) else wrap_array(np.asarray(target))
        given = tuple(t.shape)
        if t.ndim == outputs.ndim - 1 and outputs.shape[-1] == 1:  # (N,) labels for (N, 1) outputs, as Keras
            t = t.unsqueeze(-1)
        if tuple(t.shape) != tuple(outputs.shape):
            raise ConfigError(
                f"binary_crossentropy: expected targets of the outputs' shape {tuple(outputs.shape)} (one 0/1 "
                f"label per output), got {given}"
            )
        t = wrap_array(t.array.astype(outputs.dtype, copy=False))
        # PyTorch's fused losses on Keras' inputs: once clipped, log p >= log(1e-7) never meets BCE's -100 clamp
        if self.from_logits:
            loss = partial(binary_cross_entropy_with_logits, outputs, t)
        else:
            loss = partial(binary_cross_entropy, outputs.clamp(_KERAS_EPSILON, 1.0 - _KERAS_EPSILON), t)
        if self.reduction == "mean":  # the mean of the samples' means over the last axis: the mean of all
            return loss()
        per = loss(reduction="none")
        per = per.mean(dim=-1) if per.ndim > 1 else per
        return per if self.reduction == "none" else per.sum()

    def _warn_if_logits(self, outputs: Tensor) -> None:
        if not on_host(outputs.array) or outputs.array.size == 0:
            return
        if float(outputs.array.min()) < 0:  # host: one reduction on the first batch
            import warnings

            name = "sparse_categorical_crossentropy" if self.kind == "sparse" else f"{self.kind}_crossentropy"
            own, last = (
                ("'bce_with_logits'", "a sigmoid") if self.kind == "binary" else ("'cross_entropy'", "a softmax")
            )
            warnings.warn(
                f"{name} reads the model's outputs as probabilities (Keras' default), but they hold negative "
                f"values, so they are logits: pass loss=({name!r}, {{'from_logits': True}}) (or {own}, "
                f"PyTorch's loss on logits), or end the model with {last}",
                RuntimeWarning,
                stacklevel=4,
            )


class KerasOrderLoss:
    """A loss written Keras' way, ``fn(y_true, y_pred)`` (see :func:`~downslope.train.metrics.keras_order`),
    as fit calls a loss, ``loss(outputs, targets)``: the targets go first. A Keras loss returns one value
    per sample, and Keras takes their mean over the batch; so does this (``reduction='mean'``; ``'sum'``
    sums them, and ``'none'`` gives them as they are, which lets ``sample_weight`` weigh each sample).
    A function that already returns a scalar is used as it is.

    Example:
        >>> import downslope as ds
        >>> from downslope.train.evaluation import KerasOrderLoss
        >>> def under(y_true, y_pred): return ds.relu(y_true - y_pred)  # per sample, truth first
        >>> KerasOrderLoss(under)(ds.tensor([1.0, 4.0]), ds.tensor([2.0, 2.0])).item()  # (1 + 0) / 2
        0.5
    """

    def __init__(self, fn: Any, reduction: str = "mean") -> None:
        self.fn = fn
        self.reduction = reduction
        self.__name__ = getattr(fn, "__name__", type(fn).__name__)

    def __repr__(self) -> str:
        return f"KerasOrderLoss({self.__name__})"

    def __call__(self, outputs: Tensor, targets: Any) -> Any:
        values = self.fn(targets, outputs)
        if self.reduction == "none" or not isinstance(values, Tensor) or values.ndim == 0:
            return values
        return values.sum() if self.reduction == "sum" else values.mean()


def refuse_keras_object(value: Any, argument: str, where: str) -> None:
    """A Keras object (``keras.losses.MeanSquaredError()``, ``keras.optimizers.Adam()``) passed where downslope
    needs its own is refused, naming it (it would fail deep inside with an unrelated error)."""
    module = type(value).__module__ or ""
    if not (module == "keras" or module.startswith(("keras.", "tf_keras", "tensorflow"))):
        return
    name = type(value).__name__
    instead = (
        "a loss name ('sparse_categorical_crossentropy', 'mse', ...), a downslope loss (nn.CrossEntropyLoss()) or a "
        "function fn(y_true, y_pred)"
        if argument == "loss_fn"
        else "an optimizer name ('adam', 'sgd', ...) or a downslope optimizer (optim.Adam(model.parameters(), lr=...))"
    )
    raise ConfigError(
        f"{where}: {argument} is the Keras object {module}.{name}, which downslope cannot run; pass {instead}"
    )


def resolve_loss(loss_fn: Any, where: str = "fit") -> Any:
    """A loss given by name (as Keras users pass one), or as ``(name, {"from_logits": bool})``, as the loss
    object; anything else as it is. See :data:`LOSS_NAMES`: 'sparse_categorical_crossentropy',
    'categorical_crossentropy' and 'binary_crossentropy' read probabilities unless ``from_logits`` is True.

    Example:
        >>> from downslope.train.evaluation import resolve_loss
        >>> resolve_loss("sparse_categorical_crossentropy"), resolve_loss(("binary_crossentropy", {"from_logits": True}))
        (KerasCrossEntropy('sparse', from_logits=False), BCEWithLogitsLoss())
    """
    options: dict[str, Any] = {}
    if isinstance(loss_fn, tuple) and len(loss_fn) == 2 and isinstance(loss_fn[0], str):
        loss_fn, options = loss_fn[0], loss_fn[1]
        if not isinstance(options, Mapping) or set(options) - {"from_logits"}:
            raise ConfigError(
                f"{where}: a loss given as (name, options) takes options {{'from_logits': bool}}, got {options!r}"
            )
    if isinstance(loss_fn, OutputLosses):
        return loss_fn
    if per_output_loss(loss_fn):  # one loss per output (Keras' multi-output models): named at the first call
        return OutputLosses(loss_fn, where=where)
    if not isinstance(loss_fn, str):
        refuse_keras_object(loss_fn, "loss_fn", where)
        return KerasOrderLoss(loss_fn) if keras_order(loss_fn) else loss_fn
    from .. import nn

    name = LOSS_NAMES.get(loss_fn.lower())
    if name is None:
        raise ConfigError(
            f"{where}: unknown loss {loss_fn!r}; use one of {', '.join(LOSS_NAMES)} or pass a loss function"
        )
    from_logits = bool(options.get("from_logits", False))
    if name in ("sparse", "categorical"):
        if name == "sparse" and from_logits:
            return nn.CrossEntropyLoss()  # the same loss on logits, PyTorch's fused kernel
        return KerasCrossEntropy(name, from_logits)
    if name == "binary":  # on logits, PyTorch's fused loss is the same loss
        return nn.BCEWithLogitsLoss() if from_logits else KerasCrossEntropy("binary")
    if options:
        raise ConfigError(f"{where}: from_logits applies to the Keras cross-entropy names, not to {loss_fn!r}")
    if name.startswith("keras:"):
        return KerasLoss(name[len("keras:") :])
    return getattr(nn, name)()


def resolve_metrics(metrics: Sequence[str | MetricFn] | str | MetricFn | None, loss_fn: Any = None) -> list[Metric]:
    """fit's ``metrics`` argument as Metric objects (one name or function, or a list of them), reading
    the model's outputs as ``loss_fn`` does (:func:`loss_reads`): the built-in accuracy, binary_accuracy,
    precision, recall and f1 cut scores at 0 for a loss on logits (``BCEWithLogitsLoss``), and read
    ``(N, C)`` 0/1 targets as multi-label with a binary cross-entropy.

    Example:
        >>> from downslope.train.evaluation import resolve_metrics
        >>> [m.name for m in resolve_metrics(["acc", "mean_squared_error"])]  # logged under the names given
        ['acc', 'mean_squared_error']
    """
    if metrics is None:
        return []
    if isinstance(metrics, str) or callable(metrics):
        metrics = [metrics]
    threshold, multilabel = loss_reads(loss_fn)
    ignore_index = loss_ignore_index(loss_fn)
    shared = GuessedThreshold() if threshold == "auto" else threshold  # its warning is said once for all metrics

    def adapted(m: Any) -> Metric:
        found = adapt_to_loss(as_metric(m), shared, multilabel, ignore_index)
        return of_class_logits(found) if _class_logits(loss_fn) else found

    # a metric given by name is logged under that name, as Keras 3 logs it ('mean_absolute_error', 'AUC')
    resolved = [logged_as(adapted(m), m) if isinstance(m, str) else adapted(m) for m in metrics]
    names = [m.name for m in resolved]
    if len(set(names)) != len(names) or "loss" in names:
        raise ConfigError(f"fit: metric names must be distinct and not 'loss', got {names}")
    return resolved


def resolve_weighted_metrics(weighted_metrics: Any, loss_fn: Any, metrics: list[Metric]) -> list[Metric]:
    """fit's ``weighted_metrics`` (Keras'): metrics whose mean over samples is weighted by the sample weights
    (``sample_weight`` times ``class_weight``; validation's by its ``(x, y, w)`` weights). Logged under the name
    given, or ``weighted_<name>`` when ``metrics`` holds that name too, as Keras 3 names them.

    Example:
        >>> from downslope.train.evaluation import resolve_metrics, resolve_weighted_metrics
        >>> [m.name for m in resolve_weighted_metrics(["accuracy", "mae"], None, resolve_metrics(["accuracy"]))]
        ['weighted_accuracy', 'mae']
    """
    taken = {m.name for m in metrics}
    weighted = [
        logged_as(m, f"weighted_{m.name}" if m.name in taken else m.name, weighted=True)
        for m in resolve_metrics(weighted_metrics, loss_fn)
    ]
    names = [m.name for m in (*metrics, *weighted)]
    if len(set(names)) != len(names):
        raise ConfigError(f"fit: metric names must be distinct, got {names}")
    return weighted


def _class_logits(loss_fn: Any) -> bool:
    """Whether ``loss_fn`` reads the model's outputs as class logits (or log-probabilities): a softmax of
    them is the class probabilities (``CrossEntropyLoss``, ``NLLLoss``, Keras' sparse or categorical
    cross-entropy with ``from_logits=True``)."""
    from ..nn import CrossEntropyLoss, NLLLoss

    if isinstance(loss_fn, KerasCrossEntropy):
        return loss_fn.kind != "binary" and loss_fn.from_logits
    return isinstance(loss_fn, (CrossEntropyLoss, NLLLoss))


def loss_ignore_index(loss_fn: Any) -> int | None:
    """The class index a downslope loss object leaves out (``CrossEntropyLoss(ignore_index=...)``,
    ``NLLLoss``), which fit's accuracy, precision, recall and f1 then leave out too, as the loss's mean
    does; None for any other loss.

    Example:
        >>> import downslope as ds
        >>> from downslope.train.evaluation import loss_ignore_index
        >>> loss_ignore_index(ds.nn.CrossEntropyLoss(ignore_index=0)), loss_ignore_index(ds.nn.MSELoss())
        (0, None)
    """
    if not str(getattr(type(loss_fn), "__module__", None)).startswith("downslope."):
        return None
    value = getattr(loss_fn, "ignore_index", None)
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        return None
    return int(value)


def loss_reads(loss_fn: Any) -> tuple[float | str, bool | None]:
    """``(threshold, multilabel)``: how a loss reads the model's outputs, for the metrics that cut scores.

    ``functools.partial`` is unwrapped. A binary cross-entropy on logits (``BCEWithLogitsLoss``, with
    ``pos_weight`` or not, or ``F.binary_cross_entropy_with_logits``) gives ``(0.0, True)``; one on
    probabilities (``BCELoss``, ``F.binary_cross_entropy``, ``'binary_crossentropy'``) ``(0.5, True)``;
    any other loss of downslope's ``(0.5, None)`` (None: multi-label targets are told by their rows).
    A function fit cannot read (a lambda, a function or module of your own) gives ``("auto", None)``:
    scores outside [0, 1] cannot be probabilities, so they are cut at 0; scores all inside are cut at
    0.5, with a warning that this was guessed (see :func:`~downslope.train.metrics.with_threshold`).

    Example:
        >>> import functools, downslope as ds
        >>> from downslope.train.evaluation import loss_reads
        >>> loss_reads(functools.partial(ds.nn.functional.binary_cross_entropy_with_logits, pos_weight=None))
        (0.0, True)
        >>> loss_reads(ds.nn.BCELoss()), loss_reads(ds.nn.CrossEntropyLoss())
        ((0.5, True), (0.5, None))
    """
    from ..nn import BCELoss, BCEWithLogitsLoss

    if isinstance(loss_fn, KerasOrderLoss):
        loss_fn = loss_fn.fn  # the user's function: fit cannot read it
    while isinstance(loss_fn, partial):
        loss_fn = loss_fn.func
    if loss_fn is None:
        return 0.5, None
    ours = str(getattr(loss_fn, "__module__", None)).startswith("downslope.")
    # downslope's functions by name: F.binary_cross_entropy_with_logits and torch's top-level spelling
    # (ds.binary_cross_entropy_with_logits, its own function with torch's signature) read the same outputs
    name = getattr(loss_fn, "__name__", None) if ours else None
    if isinstance(loss_fn, BCEWithLogitsLoss) or name == "binary_cross_entropy_with_logits":
        return 0.0, True
    if isinstance(loss_fn, KerasCrossEntropy) and loss_fn.kind == "binary":
        return (0.0 if loss_fn.from_logits else 0.5), True
    if isinstance(loss_fn, BCELoss) or name == "binary_cross_entropy":
        return 0.5, True
    if ours:
        return 0.5, None  # another of downslope's loss functions or loss objects (their class's module)
    return "auto", None


def score(
    metrics: list[Metric],
    outputs: list[Any],
    targets: list[Any],
    weights: list[Any] | None = None,
    loss: float | None = None,
) -> Logs:
    """Each metric on the concatenated outputs and targets of an epoch (``{}`` when there are none);
    ``weights``: each batch's sample weights (None: an unweighted batch), read by the weighted metrics.
    A multi-output model's batches are dicts of arrays by output name: each metric reads its output's.
    ``loss``: the epoch's loss; when it is not finite (the model diverged, and the divergence guard says
    so), a ranking metric that refuses NaN scores (AUC) is NaN rather than an error that would hide it."""
    return _scored(metrics, outputs, targets, weights, loss, np.concatenate)


def _scored(
    metrics: list[Metric],
    outputs: list[Any],
    targets: list[Any],
    weights: list[Any] | None,
    loss: float | None,
    join: Callable[[list[Any]], np.ndarray],
) -> Logs:
    """:func:`score`'s steps, ``join`` making one host array of a list of batches' arrays."""
    if not metrics or not outputs:
        return {}
    values: dict[str, float] = {}
    for group in _by_output(metrics):
        outs = [pick(o, group[0]) for o in outputs]
        preds, target = join(outs), join([pick(t, group[0]) for t in targets])
        _warn_if_not_labels(group, np.asarray(target))
        joined = join_weights(None if weights is None else [pick_weights(w, group[0]) for w in weights], outs)
        values.update({m.name: _epoch_value(m, preds, target, joined if m.weighted else None, loss) for m in group})
    return {m.name: values[m.name] for m in metrics}


def _epoch_value(metric: Metric, preds: Any, target: Any, weights: np.ndarray | None, loss: float | None) -> float:
    """:func:`metric_value` for an epoch: NaN for NaN scores when the epoch's ``loss`` is not finite."""
    try:
        return metric_value(metric, preds, target, weights)
    except NonFiniteScoresError:
        if loss is not None and not np.isfinite(loss):
            return float("nan")
        raise


def _by_output(metrics: list[Metric]) -> list[list[Metric]]:
    """The metrics grouped by the output they read (one group for a single-output model), in order."""
    groups: dict[str | None, list[Metric]] = {}
    for m in metrics:
        groups.setdefault(m.output, []).append(m)
    return list(groups.values())


def join_weights(weights: list[Any] | None, outputs: list[Any]) -> np.ndarray | None:
    """The batches' sample weights as one host array (a batch without weights weighs 1 per sample); None
    when no batch has any (the weighted metrics are then the unweighted ones, as in Keras)."""
    if weights is None or all(w is None for w in weights):
        return None
    parts = [
        np.ones(len(out), np.float64) if w is None else np.asarray(to_host(w), np.float64).reshape(-1)
        for w, out in zip(weights, outputs)
    ]
    return np.concatenate(parts)  # host: the metrics' inputs are host arrays


def metric_value(metric: Metric, preds: Any, target: Any, weights: np.ndarray | None = None) -> float:
    """``metric(preds, target)`` as one number. A metric function may return one value per sample, as Keras'
    metric functions do (``mean(abs(y_true - y_pred), axis=-1)``): they are averaged, as Keras averages them
    (a sample's values over its other axes first). Anything else than a number or one value per sample is
    refused, naming the metric and the shape it returned. With ``weights`` (one per sample: fit's
    ``weighted_metrics``) the mean is weighted, ``sum(w_i * v_i) / sum(w_i)`` as Keras' (0 when the weights
    sum to 0); the built-in precision, recall, F1, AUC and average precision weigh their counts as
    scikit-learn's ``sample_weight`` (``Metric.weighed``); any other metric that gives one number for all the
    samples cannot be weighted, and is refused.

    Example:
        >>> import numpy as np
        >>> from downslope.train.evaluation import metric_value
        >>> from downslope.train.metrics import Metric
        >>> def abs_error(y_true, y_pred): return np.abs(y_true - y_pred)[:, 0]
        >>> metric_value(Metric(abs_error), np.array([[1.0], [3.0]]), np.array([[0.0], [0.0]]))
        2.0
    """
    n = len(preds)
    if weights is not None and metric.weighed is not None:  # weighted counts (F1) or pairs (AUC)
        return float(metric.weighed(preds, target, weights))
    if weights is not None and metric.per_sample is not None:
        value: Any = metric.per_sample(preds, target)
    else:
        value = metric(preds, target)
    if isinstance(value, Tensor):
        value = to_host(value.array)
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ConfigError(
            f"metric {metric.name!r} returned {type(value).__name__}, not a number (or one number per sample)"
        ) from None
    if array.ndim == 0 and weights is not None:
        raise ConfigError(
            f"weighted_metrics: {metric.name!r} gives one number for all the samples, so it cannot be weighted by "
            "sample; weigh a mean over samples ('accuracy', 'binary_accuracy', 'categorical_accuracy', "
            "'sparse_categorical_accuracy', 'mae', 'mse', 'mape'), 'precision', 'recall', 'f1', 'auc', "
            "'average_precision', or a function returning one value per sample"
        )
    if array.ndim == 0:
        return float(array)
    if array.shape[0] != n or array.size == 0:
        raise ConfigError(
            f"metric {metric.name!r} returned shape {array.shape}: expected a number, or one value per sample "
            f"({n} samples, shape ({n},)), which is averaged"
        )
    per_sample = array.reshape(n, -1).mean(axis=1)
    if weights is None:
        return float(per_sample.mean())
    total = float(weights.sum())
    return float((per_sample * weights).sum() / total) if total else 0.0


def check_metrics(metrics: list[Metric], outputs: Any, targets: Any, weights: Any = None, where: str = "fit") -> None:
    """Compute each metric on one batch (the first training batch) so that a metric that cannot fit the model's
    outputs or the targets (``'auc'`` on 3 classes, ``'mse'`` on class scores) is refused at once, not after a
    whole epoch; the error says which metric. The numbers are not used."""
    if not metrics:
        return
    for m in metrics:
        preds, target = to_host(pick(outputs, m)), to_host(pick(targets, m))  # host: one batch, once per fit
        weighed = join_weights([pick_weights(weights, m)], [preds])
        try:
            # the epoch's own computation says what it has to say: a warning shown (or only marked as said,
            # for the guessed threshold's once-per-fit warning) here would never reach the user
            with warnings.catch_warnings(), quiet_check():
                warnings.simplefilter("ignore")
                metric_value(m, preds, target, weighed if m.weighted else None)
        except NonFiniteScoresError:
            continue  # NaN outputs of the first batch: the divergence guard speaks of them, not the metric
        except Exception as exc:
            if hasattr(exc, "add_note"):
                output = "" if m.output is None else f" of output {m.output!r}"
                exc.add_note(
                    f"({where}: metric {m.name!r}{output} checked on the first training batch: outputs "
                    f"{tuple(preds.shape)}, targets {tuple(target.shape)})"
                )
            raise


def check_scalar_loss(loss: Any, loss_fn: Any, where: str = "fit") -> None:
    """Refuse a batch loss that is not one number (a loss function returning one value per sample),
    naming the loss function and the shape it returned."""
    shape = getattr(loss, "shape", ())
    if len(shape) == 0:
        return
    name = getattr(loss_fn, "__name__", type(loss_fn).__name__)
    raise ConfigError(
        f"{where}: the loss {name} returned shape {tuple(shape)}, not a scalar: reduce it in the function (e.g. "
        "return values.mean()), or write it Keras' way, fn(y_true, y_pred) (those parameter names), and fit "
        "averages its per-sample values over the batch as Keras does"
    )


_LABEL_METRICS = ("accuracy", "precision", "recall", "f1")


def _warn_if_not_labels(metrics: list[Metric], target: np.ndarray) -> None:
    """Warn when a metric of predicted classes (accuracy, precision, recall, f1) is given targets that are
    not class labels (a regression's continuous values): no predicted class equals 4.27, so it logs 0 at
    every epoch. Keras computes such a metric without a word; here it is still computed (a program that
    reads it keeps working), with this warning saying why it means nothing."""
    spelled = [(m.name, canonical_log_name(m.name)) for m in metrics]  # ('acc': the built-in accuracy)
    named = [name for name, base in spelled if base in _LABEL_METRICS or (base[:3] == "top" and "_accuracy" in base)]
    if not named or target.dtype.kind != "f":
        return
    with np.errstate(invalid="ignore"):
        if not (np.isfinite(target) & (target != np.round(target))).any():
            return
    import warnings

    warnings.warn(
        f"metric(s) {named} compare predicted classes with class labels, but the targets are not class labels "
        "(they hold non-integer values): on a regression they are 0 or meaningless; use 'mae', 'mse', 'rmse' or "
        "'r2' there",
        RuntimeWarning,
        stacklevel=4,  # the caller of score or score_on_device (_scored stands between)
    )


def score_on_device(
    metrics: list[Metric],
    outputs: list[Any],
    targets: list[Any],
    weights: list[Any] | None = None,
    loss: float | None = None,
) -> Logs:
    """:func:`score` for outputs and targets on a device: each output's batches are joined there and copied
    to the host once (metric functions run on host arrays)."""
    return _scored(metrics, outputs, targets, weights, loss, _joined_to_host)


def _joined_to_host(parts: list[Any]) -> Any:
    """Device arrays joined on their device, then copied to the host once."""
    return to_host(namespace_of(parts[0]).concatenate(parts))


def metric_inputs(loss_fn: Any, outputs: Any, targets: Any, weights: Any) -> tuple[Any, Any, Any]:
    """A batch's outputs (arrays, or Tensors), targets and sample weights as the arrays the metrics read: by
    output name for a multi-output model's loss (:class:`~downslope.train.multi_output.OutputLosses`)."""
    if isinstance(loss_fn, OutputLosses):
        return loss_fn.metric_inputs(outputs, targets, weights)
    return arrays_of(outputs), arrays_of(targets), arrays_of(weights)


# ---------------------------------------------------------------------- evaluation
def evaluate_loader(
    model: ModelLike,
    loss_fn: LossFn,
    loader: DataLoader,
    metrics: list[Metric],
    placed: device | None = None,
    callbacks: Callback | None = None,
) -> Logs:
    """:func:`evaluate` on a DataLoader with resolved metrics (what fit runs on validation data);
    ``placed`` is the device the model is on (None: the host); ``callbacks`` (a CallbackList) get
    Keras' ``on_test_*`` hooks."""
    if callbacks is not None:
        callbacks.on_test_begin({})
    if placed is not None:
        logs = _evaluate_on_device(model, loss_fn, loader, metrics, placed, callbacks)
    else:
        logs = _evaluate_on_host(model, loss_fn, loader, metrics, callbacks)
    if callbacks is not None:
        callbacks.on_test_end(dict(logs))
    return logs


def _running_metrics(metrics: list[Metric], callbacks: Callback | None) -> Any:
    """The metrics so far for the batch logs, when a callback of the user's reads them (else None)."""
    if not metrics or callbacks is None or not reads_batch_logs(callbacks, TEST_BATCH_END):
        return None
    return RunningMetrics(metrics)


def _batch_logs(
    so_far: Any,
    loss: Any,
    n: int,
    running: Any,
    outputs: list[Any],
    targets: list[Any],
    weights: list[Any],
    parts: PartLosses | None = None,
) -> Logs:
    """An evaluation batch's logs, as Keras 3's: the loss so far, (``running``) each metric so far and each
    output's loss so far (``parts``); the batch's own loss and size as the attributes ``batch_loss`` and ``size``."""
    logs = BatchLogs(loss=so_far)
    if running is not None:
        logs.update(running.update(outputs, targets, weights))
    if parts:
        logs.update(parts.so_far())
    logs.batch_loss, logs.size = loss, n
    return logs


def _evaluate_on_host(
    model: ModelLike, loss_fn: LossFn, loader: DataLoader, metrics: list[Metric], callbacks: Callback | None
) -> Logs:
    total, count = 0.0, 0.0
    outputs: list[np.ndarray] = []
    targets: list[np.ndarray] = []
    float_dtype = model_float_dtype(model)  # None for a default-dtype model: its batches pass untouched
    inputs = model_input_count(model)  # (a batch (x1, x2, y) for a model of two inputs)
    running = _running_metrics(metrics, callbacks)
    weights: list[Any] = []  # each batch's sample weights, for the weighted metrics
    parts = PartLosses(loss_fn)  # a multi-output model's loss per output (<name>_loss)
    with no_grad(), model_mode(model, False):
        for i, batch in enumerate(loader):
            x, y, w = unpack_batch(batch, "evaluate", weights=True, inputs=inputs)
            if float_dtype is not None:
                x, y = conform(x, float_dtype), conform(y, float_dtype)
            n = input_rows(x)
            if callbacks is not None:
                callbacks.on_test_batch_begin(i, {"size": n})
            out = call_model(model, x)
            loss, weight, counted = _batch_loss(loss_fn, out, y, w, n)
            value = float(loss.item())
            if weight:  # (a batch whose targets are all ignored has no weight, and a NaN mean)
                total += value * weight
            count += counted
            parts.add(part_arrays(loss_fn), n)
            if metrics:
                _keep(metric_inputs(loss_fn, out, target_column(out, y), w), outputs, targets, weights)
            if callbacks is not None:
                logs = _batch_logs(total / (count or 1), value, n, running, outputs, targets, weights, parts)
                callbacks.on_test_batch_end(i, logs)
    mean = total / (count or 1)
    return {"loss": mean, **score(metrics, outputs, targets, weights, mean), **parts.means()}


def _batch_loss(loss_fn: Any, out: Any, y: Any, w: Any, n: int, on_device: bool = False) -> tuple[Any, float, float]:
    """An evaluation batch's loss, and its weight and count in the mean (see :func:`loss_weights`);
    ``on_device``: the targets are not read (the caller counts them on the device)."""
    if type(out) is not Tensor:
        refuse_unplanned(out, loss_fn, "evaluate")
    y = target_column(out, y)
    if w is None:
        weight, counted = loss_weights(loss_fn, n, None if on_device else y)
        loss = loss_fn(out, y)
    else:  # (inputs, targets, sample weights)
        weight, counted = loss_weights(loss_fn, n)
        loss = weighted_loss(loss_fn, out, y, w, "evaluate")
    check_scalar_loss(loss, loss_fn, "evaluate")
    return loss, weight, counted


def _keep(batch: tuple[Any, Any, Any], outputs: list[Any], targets: list[Any], weights: list[Any]) -> None:
    """Append a batch's metric inputs (outputs, targets, sample weights) to the pass's lists."""
    outputs.append(batch[0])
    targets.append(batch[1])
    weights.append(batch[2])


def _evaluate_on_device(
    model: Any, loss_fn: Any, loader: DataLoader, metrics: list[Metric], placed: device, callbacks: Callback | None
) -> Logs:
    """:func:`evaluate_loader` on a device: the loss sum (float64, as the host loop's float) and the
    outputs stay there and are read back once."""
    total = EpochLoss()
    # a loss whose mean is over the targets it does not ignore: each batch weighs its count of them, kept on the
    # device (read once), not read per batch
    counted = CountedLoss() if counts_targets(loss_fn) else None
    count = 0.0
    outputs: list[Any] = []
    targets: list[Any] = []
    moved = loader.device != placed
    float_dtype = model_float_dtype(model)
    inputs = model_input_count(model)
    running = _running_metrics(metrics, callbacks)
    weights: list[Any] = []  # each batch's sample weights, for the weighted metrics
    parts = PartLosses(loss_fn)  # a multi-output model's loss per output (<name>_loss), summed on the device
    with no_grad(), model_mode(model, False):
        for i, batch in enumerate(loader):
            x, y, w = unpack_batch(batch_to(batch, placed) if moved else batch, "evaluate", weights=True, inputs=inputs)
            if float_dtype is not None:
                x, y = conform(x, float_dtype), conform(y, float_dtype)
            n = input_rows(x)
            if callbacks is not None:
                callbacks.on_test_batch_begin(i, {"size": n})
            out = call_model(model, x)
            loss, weight, in_count = _batch_loss(loss_fn, out, y, w, n, on_device=counted is not None)
            if counted is not None:
                on_device = device_target_weight(loss_fn, target_column(out, y)) if w is None else None
                counted.add(loss.array, weight if on_device is None else on_device)
            elif weight:  # (a batch whose targets are all ignored has no weight, and a NaN mean)
                total.add(loss.array, weight)
            count += in_count
            parts.add(part_arrays(loss_fn), n)
            if metrics:
                _keep(metric_inputs(loss_fn, out, target_column(out, y), w), outputs, targets, weights)
            if callbacks is not None:  # the batch loss stays on the device unless a callback reads it
                so_far = RunningDeviceMean(total if counted is None else counted, count)
                logs = _batch_logs(so_far, DeviceScalar(loss.array), n, running, outputs, targets, weights, parts)
                callbacks.on_test_batch_end(i, logs)
    # host: the loss sum and the metrics' inputs, once per pass over the data
    mean = total.mean(count) if counted is None else counted.mean()
    return {"loss": mean, **score_on_device(metrics, outputs, targets, weights, mean), **parts.means()}


def _placement(model: Any, target: Any, where: str) -> device | None:
    """The device ``model`` computes on (moved there first when ``target`` names one); None for the CPU."""
    d = training_device(target, model, where)
    if target is not None and hasattr(model, "to"):
        model.to(d)
    return None if d == CPU else d


def evaluate(
    model: ModelLike,
    loss_fn: LossFn,
    data: Any,
    batch_size: int | str | None = 1024,
    metrics: Sequence[str | MetricFn] | None = None,
    device: Any = None,
    callbacks: Sequence[Callback] | None = None,
    verbose: int | str = 0,
    sample_weight: Any = None,
    return_dict: bool | None = None,
    weighted_metrics: Sequence[str | MetricFn] | None = None,
    loss_weights: Sequence[float] | Mapping[str, float] | None = None,
) -> Any:
    """Loss (mean over samples) and metrics of ``model`` on ``data``, in eval mode, without gradients.

    ``loss_fn`` is a loss function or one of fit's loss names (``"mse"``,
    ``"sparse_categorical_crossentropy"``, ``("binary_crossentropy", {"from_logits": True})``...: see
    :func:`~downslope.train.fit`). The model's previous train/eval mode is restored afterwards.
    ``device`` moves the model there (in place, as ``model.to``) and computes there; None computes
    where the model is. The numbers are read back from a device once, after the last batch.
    ``callbacks`` get Keras' ``on_test_begin``, ``on_test_batch_begin/end`` and ``on_test_end``.
    ``verbose`` takes Keras' values: 0 (the default here; Keras' is ``"auto"``) prints nothing; 1, 2
    or ``"auto"`` print the logs on one line to stderr when done (no live bar).

    Weighting (Keras' ``sample_weight``): ``sample_weight=w`` (one weight per sample, ``data`` given as
    ``(x, y)`` arrays), or ``data`` given as ``(x, y, w)`` (a Dataset or DataLoader may yield such batches),
    weights the loss as fit does (``sum(w_i * loss_i) / n``); the metrics stay unweighted, as Keras' ``metrics``,
    and ``weighted_metrics`` are weighted means (see :func:`~downslope.train.fit`).

    Returns a dict ``{'loss': ..., metric: ...}`` (the default, and ``return_dict=True``, Keras' option);
    ``return_dict=False`` returns Keras' list ``[loss, *metrics]`` in the order given (the loss alone, a
    float, when there are no metrics).

    A model with several outputs is scored as fit trains it (targets, ``loss_fn``, ``loss_weights``,
    ``metrics`` and ``sample_weight`` per output: see :func:`~downslope.train.fit`): the dict holds the
    weighted total as ``loss``, each metric as ``<output>_<metric>`` and, when several outputs have a loss,
    each output's as ``<output>_loss``; ``return_dict=False`` lists them as Keras 3 does, ``[loss,
    *<output>_loss in the outputs' order, *the metrics sorted by name]``.

    Example:
        >>> import numpy as np
        >>> from downslope import nn, evaluate
        >>> model = nn.Linear(2, 1)
        >>> logs = evaluate(model, nn.MSELoss(), (np.zeros((5, 2)), np.zeros((5, 1))), metrics=["mae"])
        >>> sorted(logs)
        ['loss', 'mae']
    """
    outputs_loss = plan_outputs(model, loss_fn, loss_weights, metrics, weighted_metrics, data, "evaluate")
    loss_fn = outputs_loss if outputs_loss is not None else resolve_loss(loss_fn, "evaluate")
    if return_dict is not None and not isinstance(return_dict, bool):
        raise ConfigError(f"evaluate: return_dict must be True or False, got {return_dict!r}")
    if sample_weight is not None:
        data = with_sample_weight(data, sample_weight, "evaluate")
    placed = _placement(model, device, "evaluate")
    loader = as_loader(
        data, batch_size, False, None, "evaluate", device=placed, float_dtype=model_float_dtype(model), model=model
    )
    show = _shows(verbose, "evaluate")
    cbs = _callbacks_for(callbacks, model)
    if isinstance(loss_fn, OutputLosses):
        resolved = output_metrics(metrics, weighted_metrics, loss_fn, "evaluate")
    else:
        resolved = resolve_metrics(metrics, loss_fn)
        resolved += resolve_weighted_metrics(weighted_metrics, loss_fn, resolved)
    logs = evaluate_loader(model, loss_fn, loader, resolved, placed, cbs)
    if show:
        from .progress import format_logs

        print(f"evaluate - {format_logs(logs)}", file=sys.stderr, flush=True)
    if return_dict is False:  # Keras' list: the loss, then the metrics in order (the loss alone without metrics)
        values = list(logs.values())
        if isinstance(loss_fn, OutputLosses):  # Keras 3's: the losses it tracks, then the output metrics by name
            losses = ["loss", *(f"{n}_loss" for n in loss_fn.logged)]
            values = [logs[k] for k in losses] + [logs[k] for k in sorted(logs) if k not in losses]
        return values if len(values) > 1 else values[0]
    return logs


def with_sample_weight(data: Any, sample_weight: Any, where: str) -> Any:
    """``data`` given as ``(x, y)`` arrays, extended to ``(x, y, sample_weight)`` (batched and shuffled with
    them); a Dataset or DataLoader already decides its batches (it may yield ``(x, y, w)``), so is refused."""
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise ConfigError(
            f"{where}: sample_weight needs the data given as (x, y) arrays; a Dataset or DataLoader can yield "
            "(x, y, sample_weight) batches itself"
        )
    n = input_rows(data[0])  # (several inputs: the rows of each)
    if structured(sample_weight):  # one array per output (a list in the outputs' order, or a dict by name)
        if not structured(data[1]):
            raise ConfigError(
                f"{where}: sample_weight is given per output ({shapes_of(sample_weight)}), but the targets are one "
                f"array of shape {shapes_of(data[1])}: give the targets per output too"
            )
        if isinstance(sample_weight, Mapping):
            return (
                data[0],
                data[1],
                {k: _weights(v, n, where, f"sample_weight[{k!r}]") for k, v in sample_weight.items()},
            )
        return (data[0], data[1], [_weights(v, n, where, f"sample_weight[{i}]") for i, v in enumerate(sample_weight)])
    return (data[0], data[1], _weights(sample_weight, n, where, "sample_weight"))


def _weights(sample_weight: Any, n: int, where: str, what: str) -> np.ndarray:
    """One weight per sample, checked, as a host array of the default dtype."""
    from .. import backend

    weights = to_host(sample_weight.array) if isinstance(sample_weight, Tensor) else np.asarray(sample_weight)
    if weights.ndim == 2 and weights.shape[1] == 1:
        weights = weights[:, 0]
    if weights.ndim != 1 or len(weights) != n:
        raise ConfigError(f"{where}: {what} must hold one weight per sample ({n}), got shape {tuple(weights.shape)}")
    return weights.astype(backend.get_default_dtype())


def _shows(verbose: Any, where: str) -> bool:
    """Whether ``verbose`` (Keras' 0, 1, 2 or 'auto') asks for a line of output; other values are refused."""
    if verbose in (0, 1, 2, "auto") and not isinstance(verbose, float):
        return bool(verbose)
    raise ConfigError(f"{where}: verbose must be 0, 1, 2 or 'auto' (Keras' values), got {verbose!r}")


def _callbacks_for(callbacks: Sequence[Callback] | None, model: Any) -> Any:
    """evaluate's and predict's ``callbacks`` as a CallbackList that sees the model (None: no callbacks)."""
    if callbacks is None:
        return None
    from .callbacks import TrainingState

    cbs = as_callback_list(callbacks)
    cbs.set_trainer(TrainingState(model))
    return cbs


def predict(
    model: ModelLike,
    x: Any,
    batch_size: int | str | None = 1024,
    device: Any = None,
    callbacks: Sequence[Callback] | None = None,
    verbose: int | str = 0,
) -> Any:
    """The model's outputs for inputs ``x`` (array, Tensor, Dataset or DataLoader), in batches.

    Runs in eval mode without recording gradients; restores the previous mode afterwards. Floating
    inputs take the model's dtype (float64 for a model made ``.double()``), as in :func:`~downslope.train.fit`;
    so do integer feature arrays, unless the model holds an Embedding (see fit).
    ``device`` moves the model there (in place) and computes there; None computes where the model
    is. The outputs come back as a host (CPU) Tensor either way, copied from a device once.
    ``callbacks`` get Keras' ``on_predict_begin``, ``on_predict_batch_begin/end`` and ``on_predict_end``.
    ``verbose`` takes Keras' values: 0 (the default here; Keras' is ``"auto"``) prints nothing; 1, 2
    or ``"auto"`` print the number of rows and batches to stderr when done (no live bar).
    A model with several outputs (a tuple, list or dict of Tensors) gives them in that container, each
    output's batches joined (Keras gives a list or dict of arrays).

    Example:
        >>> import numpy as np
        >>> from downslope import nn, predict
        >>> predict(nn.Linear(3, 2), np.ones((10, 3)), batch_size=4).shape
        downslope.Size([10, 2])
    """
    show = _shows(verbose, "predict")
    placed = _placement(model, device, "predict")
    float_dtype = model_float_dtype(model)  # a float64 model predicts from float64 inputs
    if isinstance(x, DataLoader):
        loader = x
    elif isinstance(x, Dataset):
        loader = make_loader(x, batch_size=batch_size, device=placed)
    elif multi_input(x):  # several inputs: model(*x), or model(**x) for a dict
        loader = make_loader(inputs_dataset(x, (), "predict", float_dtype, model), batch_size=batch_size, device=placed)
    else:
        check_numeric(x, "predict: the inputs x")
        x = features_as_float(x, float_dtype, model)
        loader = make_loader(ArrayDataset(x, float_dtype=float_dtype), batch_size=batch_size, device=placed)
    chunks: list[Any] = []
    moved = placed is not None and loader.device != placed
    inputs = model_input_count(model)  # a Dataset of (x_cat, x_num) for a model of two inputs: all of them
    cbs = _callbacks_for(callbacks, model)
    if cbs is not None:
        cbs.on_predict_begin({})
    with no_grad(), model_mode(model, False):
        for i, batch in enumerate(loader):
            if cbs is not None:
                cbs.on_predict_batch_begin(i, {})
            x_batch = batch_inputs(batch_to(batch, placed) if moved else batch, inputs)
            out = call_model(model, conform(x_batch, float_dtype))
            chunks.append(out.array if type(out) is Tensor else arrays_of(out))
            if cbs is not None:
                cbs.on_predict_batch_end(i, {"outputs": chunks[-1]})
    if cbs is not None:
        cbs.on_predict_end({})
    if not isinstance(chunks[0], (Mapping, tuple, list)):
        joined = chunks[0] if len(chunks) == 1 else namespace_of(chunks[0]).concatenate(chunks)
        if show:
            print(f"predict - {len(joined)} rows in {len(chunks)} batches", file=sys.stderr, flush=True)
        return wrap_array(joined if placed is None else to_host(joined))
    # several outputs: each joined over the batches, in the container the model returns (Keras: a list or dict)
    parts = join_parts(chunks)
    if show:
        first = next(iter(parts.values())) if isinstance(parts, Mapping) else parts[0]
        print(f"predict - {len(first)} rows in {len(chunks)} batches", file=sys.stderr, flush=True)
    return host_tensors(parts, to_host)


__all__ = [
    "evaluate",
    "predict",
    "evaluate_loader",
    "model_mode",
    "resolve_loss",
    "KerasCrossEntropy",
    "LOSS_NAMES",
    "resolve_metrics",
    "loss_reads",
    "score",
    "score_on_device",
    "loss_weight",
    "loss_weights",
    "weighted_loss",
]
