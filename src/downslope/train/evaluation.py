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
from .inputs import as_loader, unpack_batch
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


def loss_weight(loss_fn: LossFn, n: int) -> int:
    """Weight of a batch loss in the epoch's per-sample mean.

    A mean-reduced batch loss counts ``n`` times; a sum-reduced one already adds up its samples.
    """
    return 1 if getattr(loss_fn, "reduction", "mean") == "sum" else n


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
    return {m.name: float(m(preds, target)) for m in metrics}


def score_on_device(metrics: list[Metric], outputs: list[Any], targets: list[Any]) -> Logs:
    """:func:`score` for outputs and targets on a device: each list is joined there and copied to the
    host once (metric functions run on host arrays)."""
    if not metrics or not outputs:
        return {}
    xp = namespace_of(outputs[0])
    preds, target = to_host(xp.concatenate(outputs)), to_host(namespace_of(targets[0]).concatenate(targets))
    return {m.name: float(m(preds, target)) for m in metrics}


# ---------------------------------------------------------------------- evaluation
def evaluate_loader(
    model: ModelLike, loss_fn: LossFn, loader: DataLoader, metrics: list[Metric], placed: device | None = None
) -> Logs:
    """:func:`evaluate` on a DataLoader with resolved metrics (what fit runs on validation data);
    ``placed`` is the device the model is on (None: the host)."""
    if placed is not None:
        return _evaluate_on_device(model, loss_fn, loader, metrics, placed)
    total, count = 0.0, 0
    outputs: list[np.ndarray] = []
    targets: list[np.ndarray] = []
    with no_grad(), model_mode(model, False):
        for batch in loader:
            x, y = unpack_batch(batch, "evaluate")
            out = model(x)
            n = len(x)
            total += float(loss_fn(out, y).item()) * loss_weight(loss_fn, n)
            count += n
            if metrics:
                outputs.append(out.array)
                targets.append(y.array)
    return {"loss": total / count, **score(metrics, outputs, targets)}


def _evaluate_on_device(model: Any, loss_fn: Any, loader: DataLoader, metrics: list[Metric], placed: device) -> Logs:
    """:func:`evaluate_loader` on a device: the loss sum (float64, as the host loop's float) and the
    outputs stay there and are read back once."""
    total = EpochLoss()
    count = 0
    outputs: list[Any] = []
    targets: list[Any] = []
    moved = loader.device != placed
    with no_grad(), model_mode(model, False):
        for batch in loader:
            x, y = unpack_batch(batch_to(batch, placed) if moved else batch, "evaluate")
            out = model(x)
            n = len(x)
            total.add(loss_fn(out, y).array, loss_weight(loss_fn, n))
            count += n
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
    loader = as_loader(data, batch_size, False, None, "evaluate", device=placed)
    return evaluate_loader(model, loss_fn, loader, resolve_metrics(metrics, loss_fn), placed)


def predict(model: ModelLike, x: Any, batch_size: int | str | None = 1024, device: Any = None) -> Tensor:
    """The model's outputs for inputs ``x`` (array, Tensor, Dataset or DataLoader), in batches.

    Runs in eval mode without recording gradients; restores the previous mode afterwards.
    ``device`` moves the model there (in place) and computes there; None computes where the model
    is. The outputs come back as a host (CPU) Tensor either way, copied from a device once.

    Example:
        >>> import numpy as np
        >>> from downslope import nn
        >>> predict(nn.Linear(3, 2), np.ones((10, 3)), batch_size=4).shape
        (10, 2)
    """
    placed = _placement(model, device, "predict")
    if isinstance(x, DataLoader):
        loader = x
    elif isinstance(x, Dataset):
        loader = DataLoader(x, batch_size=batch_size, device=placed)
    else:
        loader = DataLoader(ArrayDataset(x), batch_size=batch_size, device=placed)
    chunks: list[Any] = []
    moved = placed is not None and loader.device != placed
    with no_grad(), model_mode(model, False):
        for batch in loader:
            chunks.append(model(batch_to(batch, placed)[0] if moved else batch[0]).array)
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
]
