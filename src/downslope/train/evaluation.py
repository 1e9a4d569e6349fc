"""Running a model without training it: :func:`evaluate` (loss and metrics) and :func:`predict`.

Both run in eval mode without recording gradients and put the model's previous mode back
(:func:`model_mode`); fit scores its validation data with :func:`evaluate_loader`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from ..autograd import no_grad
from ..data.dataset import ArrayDataset, Dataset
from ..data.loader import DataLoader
from ..errors import ConfigError
from ..tensor import Tensor, wrap_array
from .callbacks import Logs
from .inputs import as_loader, unpack_batch
from .metrics import Metric, MetricFn, as_metric
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


def resolve_metrics(metrics: Sequence[str | MetricFn] | str | MetricFn | None) -> list[Metric]:
    """fit's ``metrics`` argument as Metric objects (one name or function, or a list of them).

    Example:
        >>> [m.name for m in resolve_metrics(["acc", "mse"])]
        ['accuracy', 'mse']
    """
    if metrics is None:
        return []
    if isinstance(metrics, str) or callable(metrics):
        metrics = [metrics]
    resolved = [as_metric(m) for m in metrics]
    names = [m.name for m in resolved]
    if len(set(names)) != len(names) or "loss" in names:
        raise ConfigError(f"fit: metric names must be distinct and not 'loss', got {names}")
    return resolved


def score(metrics: list[Metric], outputs: list[np.ndarray], targets: list[np.ndarray]) -> Logs:
    """Each metric on the concatenated outputs and targets of an epoch (``{}`` when there are none)."""
    if not metrics or not outputs:
        return {}
    preds, target = np.concatenate(outputs), np.concatenate(targets)
    return {m.name: float(m(preds, target)) for m in metrics}


# ---------------------------------------------------------------------- evaluation
def evaluate_loader(model: ModelLike, loss_fn: LossFn, loader: DataLoader, metrics: list[Metric]) -> Logs:
    """:func:`evaluate` on a DataLoader with resolved metrics (what fit runs on validation data)."""
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


def evaluate(
    model: ModelLike,
    loss_fn: LossFn,
    data: Any,
    batch_size: int | str | None = 1024,
    metrics: Sequence[str | MetricFn] | None = None,
) -> Logs:
    """Loss (mean over samples) and metrics of ``model`` on ``data``, in eval mode, without gradients.

    The model's previous train/eval mode is restored afterwards.

    Example:
        >>> import numpy as np
        >>> from downslope import nn
        >>> model = nn.Linear(2, 1)
        >>> logs = evaluate(model, nn.MSELoss(), (np.zeros((5, 2)), np.zeros((5, 1))), metrics=["mae"])
        >>> sorted(logs)
        ['loss', 'mae']
    """
    loader = as_loader(data, batch_size, False, None, "evaluate")
    return evaluate_loader(model, loss_fn, loader, resolve_metrics(metrics))


def predict(model: ModelLike, x: Any, batch_size: int | str | None = 1024) -> Tensor:
    """The model's outputs for inputs ``x`` (array, Tensor, Dataset or DataLoader), in batches.

    Runs in eval mode without recording gradients; restores the previous mode afterwards.

    Example:
        >>> import numpy as np
        >>> from downslope import nn
        >>> predict(nn.Linear(3, 2), np.ones((10, 3)), batch_size=4).shape
        (10, 2)
    """
    if isinstance(x, DataLoader):
        loader = x
    elif isinstance(x, Dataset):
        loader = DataLoader(x, batch_size=batch_size)
    else:
        loader = DataLoader(ArrayDataset(x), batch_size=batch_size)
    chunks: list[np.ndarray] = []
    with no_grad(), model_mode(model, False):
        for batch in loader:
            chunks.append(model(batch[0]).array)
    return wrap_array(chunks[0] if len(chunks) == 1 else np.concatenate(chunks))


__all__ = ["evaluate", "predict", "evaluate_loader", "model_mode", "resolve_metrics", "score", "loss_weight"]
