"""Running a model without training it: :func:`evaluate` (loss and metrics) and :func:`predict`.

Both run in eval mode without recording gradients and put the model's previous mode back
(:func:`model_mode`); fit scores its validation data with :func:`evaluate_loader`. On a device the
loss sum and the outputs stay there and are read back once (see ``train/placement.py``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
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
from .callbacks import Logs
from .inputs import as_loader, conform, model_float_dtype, unpack_batch
from .metrics import Metric, MetricFn, as_metric, for_logits
from .placement import EpochLoss, training_device
from .protocols import LossFn, ModelLike


@contextmanager
def model_mode(model: ModelLike, training: bool) -> Iterator[None]:
    """Switch ``model`` to train (True) or eval (False) mode and restore the previous one afterwards.

    Example:
        >>> from downslope import nn
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
    - a class-weighted mean (a loss with ``weight`` and ``ignore_index``, as ``CrossEntropyLoss`` and
      ``NLLLoss``, given class-index ``targets``): PyTorch divides the batch's sum by the batch's total
      target weight ``sum(weight[y])`` (ignored targets excluded), so both are that total: the epoch's
      loss is then the weighted mean over all the data, as one full batch gives. On a device the
      targets are read to the host for it (one small copy per batch).

    Example:
        >>> import downslope as ds
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
    """The total class weight of ``targets`` for a class-weighted mean loss; None for any other loss."""
    weight = getattr(loss_fn, "weight", None)
    if weight is None or not hasattr(loss_fn, "ignore_index"):
        return None
    labels = to_host(targets.array if isinstance(targets, Tensor) else np.asarray(targets))
    if labels.dtype.kind not in "iu":  # class probabilities: PyTorch's mean divides by the batch size
        return None
    table = to_host(weight.array if isinstance(weight, Tensor) else np.asarray(weight)).astype(np.float64)
    labels = labels[labels != loss_fn.ignore_index]
    return float(table[labels].sum())  # host: the batch's total target weight


def weighted_loss(loss_fn: LossFn, outputs: Tensor, targets: Tensor, weights: Any, where: str = "fit") -> Tensor:
    """The batch loss with per-sample ``weights`` (fit's ``sample_weight``/``class_weight``), as Keras
    reduces it: ``sum(w_i * loss_i) / n`` for a mean-reduced loss (Keras' ``sum_over_batch_size``;
    ``sum(w_i * loss_i)`` for a sum-reduced one). Each ``loss_i`` comes from the loss module run with
    ``reduction='none'`` (averaged over a sample's other axes); a loss that cannot give per-sample
    values (a plain function, or another reduction) is refused.

    Example:
        >>> import downslope as ds
        >>> loss = weighted_loss(ds.nn.MSELoss(), ds.tensor([[1.0], [2.0]]), ds.zeros(2, 1), [1.0, 0.0])
        >>> loss.item()
        0.5
    """
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


def resolve_metrics(metrics: Sequence[str | MetricFn] | str | MetricFn | None, loss_fn: Any = None) -> list[Metric]:
    """fit's ``metrics`` argument as Metric objects (one name or function, or a list of them). With
    ``BCEWithLogitsLoss`` as ``loss_fn`` the model outputs logits, so the built-in accuracy, precision,
    recall and f1 cut one column of scores at 0 instead of 0.5.

    Example:
        >>> [m.name for m in resolve_metrics(["acc", "mse"])]
        ['accuracy', 'mse']
    """
    if metrics is None:
        return []
    if isinstance(metrics, str) or callable(metrics):
        metrics = [metrics]
    resolved = [as_metric(m) for m in metrics]
    if _outputs_logits(loss_fn):
        resolved = [for_logits(m) for m in resolved]
    names = [m.name for m in resolved]
    if len(set(names)) != len(names) or "loss" in names:
        raise ConfigError(f"fit: metric names must be distinct and not 'loss', got {names}")
    return resolved


def _outputs_logits(loss_fn: Any) -> bool:
    """Whether ``loss_fn`` reads the model's outputs as logits of binary classes (BCEWithLogitsLoss)."""
    from ..nn import BCEWithLogitsLoss
    from ..nn.functional import binary_cross_entropy_with_logits

    return isinstance(loss_fn, BCEWithLogitsLoss) or loss_fn is binary_cross_entropy_with_logits


def score(metrics: list[Metric], outputs: list[np.ndarray], targets: list[np.ndarray]) -> Logs:
    """Each metric on the concatenated outputs and targets of an epoch (``{}`` when there are none)."""
    if not metrics or not outputs:
        return {}
    preds, target = np.concatenate(outputs), np.concatenate(targets)
    _warn_if_not_labels(metrics, target)
    return {m.name: float(m(preds, target)) for m in metrics}


_LABEL_METRICS = ("accuracy", "precision", "recall", "f1")


def _warn_if_not_labels(metrics: list[Metric], target: np.ndarray) -> None:
    """Warn when a metric of predicted classes (accuracy, precision, recall, f1) is given targets that are
    not class labels (a regression's continuous values): no predicted class equals 4.27, so it logs 0 at
    every epoch. Keras computes such a metric without a word; here it is still computed (a program that
    reads it keeps working), with this warning saying why it means nothing."""
    named = [m.name for m in metrics if m.name in _LABEL_METRICS or (m.name[:3] == "top" and "_accuracy" in m.name)]
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
        stacklevel=3,
    )


def score_on_device(metrics: list[Metric], outputs: list[Any], targets: list[Any]) -> Logs:
    """:func:`score` for outputs and targets on a device: each list is joined there and copied to the
    host once (metric functions run on host arrays)."""
    if not metrics or not outputs:
        return {}
    xp = namespace_of(outputs[0])
    preds, target = to_host(xp.concatenate(outputs)), to_host(namespace_of(targets[0]).concatenate(targets))
    _warn_if_not_labels(metrics, np.asarray(target))
    return {m.name: float(m(preds, target)) for m in metrics}


# ---------------------------------------------------------------------- evaluation
def evaluate_loader(
    model: ModelLike, loss_fn: LossFn, loader: DataLoader, metrics: list[Metric], placed: device | None = None
) -> Logs:
    """:func:`evaluate` on a DataLoader with resolved metrics (what fit runs on validation data);
    ``placed`` is the device the model is on (None: the host)."""
    if placed is not None:
        return _evaluate_on_device(model, loss_fn, loader, metrics, placed)
    total, count = 0.0, 0.0
    outputs: list[np.ndarray] = []
    targets: list[np.ndarray] = []
    float_dtype = model_float_dtype(model)  # None for a default-dtype model: its batches pass untouched
    with no_grad(), model_mode(model, False):
        for batch in loader:
            x, y, w = unpack_batch(batch, "evaluate", weights=True)
            if float_dtype is not None:
                x, y = conform(x, float_dtype), conform(y, float_dtype)
            out = model(x)
            n = len(x)
            if w is None:
                weight, counted = loss_weights(loss_fn, n, y)
                loss = loss_fn(out, y)
            else:  # (inputs, targets, sample weights)
                weight, counted = loss_weights(loss_fn, n)
                loss = weighted_loss(loss_fn, out, y, w, "evaluate")
            if weight:  # (a batch whose targets are all ignored has no weight, and a NaN mean)
                total += float(loss.item()) * weight
            count += counted
            if metrics:
                outputs.append(out.array)
                targets.append(y.array)
    return {"loss": total / (count or 1), **score(metrics, outputs, targets)}


def _evaluate_on_device(model: Any, loss_fn: Any, loader: DataLoader, metrics: list[Metric], placed: device) -> Logs:
    """:func:`evaluate_loader` on a device: the loss sum (float64, as the host loop's float) and the
    outputs stay there and are read back once."""
    total = EpochLoss()
    count = 0.0
    outputs: list[Any] = []
    targets: list[Any] = []
    moved = loader.device != placed
    float_dtype = model_float_dtype(model)
    with no_grad(), model_mode(model, False):
        for batch in loader:
            x, y, w = unpack_batch(batch_to(batch, placed) if moved else batch, "evaluate", weights=True)
            if float_dtype is not None:
                x, y = conform(x, float_dtype), conform(y, float_dtype)
            out = model(x)
            n = len(x)
            if w is None:
                weight, counted = loss_weights(loss_fn, n, y)
                total.add(loss_fn(out, y).array, weight)
            else:
                weight, counted = loss_weights(loss_fn, n)
                total.add(weighted_loss(loss_fn, out, y, w, "evaluate").array, weight)
            count += counted
            if metrics:
                outputs.append(out.array)
                targets.append(y.array)
    # host: the loss sum and the metrics' inputs, once per pass over the data
    return {"loss": total.mean(count), **score_on_device(metrics, outputs, targets)}


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
) -> Logs:
    """Loss (mean over samples) and metrics of ``model`` on ``data``, in eval mode, without gradients.

    The model's previous train/eval mode is restored afterwards. ``device`` moves the model there
    (in place, as ``model.to``) and computes there; None computes where the model is. The numbers
    are read back from a device once, after the last batch.

    Example:
        >>> import numpy as np
        >>> from downslope import nn
        >>> model = nn.Linear(2, 1)
        >>> logs = evaluate(model, nn.MSELoss(), (np.zeros((5, 2)), np.zeros((5, 1))), metrics=["mae"])
        >>> sorted(logs)
        ['loss', 'mae']
    """
    placed = _placement(model, device, "evaluate")
    loader = as_loader(data, batch_size, False, None, "evaluate", device=placed, float_dtype=model_float_dtype(model))
    return evaluate_loader(model, loss_fn, loader, resolve_metrics(metrics, loss_fn), placed)


def predict(model: ModelLike, x: Any, batch_size: int | str | None = 1024, device: Any = None) -> Tensor:
    """The model's outputs for inputs ``x`` (array, Tensor, Dataset or DataLoader), in batches.

    Runs in eval mode without recording gradients; restores the previous mode afterwards. Floating
    inputs take the model's dtype (float64 for a model made ``.double()``), as in :func:`~downslope.train.fit`.
    ``device`` moves the model there (in place) and computes there; None computes where the model
    is. The outputs come back as a host (CPU) Tensor either way, copied from a device once.

    Example:
        >>> import numpy as np
        >>> from downslope import nn
        >>> predict(nn.Linear(3, 2), np.ones((10, 3)), batch_size=4).shape
        (10, 2)
    """
    placed = _placement(model, device, "predict")
    float_dtype = model_float_dtype(model)  # a float64 model predicts from float64 inputs
    if isinstance(x, DataLoader):
        loader = x
    elif isinstance(x, Dataset):
        loader = DataLoader(x, batch_size=batch_size, device=placed)
    else:
        loader = DataLoader(ArrayDataset(x, float_dtype=float_dtype), batch_size=batch_size, device=placed)
    chunks: list[Any] = []
    moved = placed is not None and loader.device != placed
    with no_grad(), model_mode(model, False):
        for batch in loader:
            chunks.append(model(conform(batch_to(batch, placed)[0] if moved else batch[0], float_dtype)).array)
    joined = chunks[0] if len(chunks) == 1 else namespace_of(chunks[0]).concatenate(chunks)
    return wrap_array(joined if placed is None else to_host(joined))


__all__ = [
    "evaluate",
    "predict",
    "evaluate_loader",
    "model_mode",
    "resolve_metrics",
    "score",
    "score_on_device",
    "loss_weight",
    "loss_weights",
    "weighted_loss",
]
