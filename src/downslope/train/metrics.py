"""Metrics: numbers that say how good predictions are, computed from whole epochs of predictions.

Every metric is ``metric(preds, target) -> float`` — predictions first, like PyTorch losses and
torchmetrics (scikit-learn puts the truth first). A plain function written Keras' way, ``fn(y_true,
y_pred)`` (those parameter names: :func:`keras_order`), is called with the truth first, as Keras calls it. Both may be Tensors or arrays. They are summaries for
people, not differentiable losses: they run in float64 on NumPy arrays.

Classification predictions may be class scores/logits ``(N, C)`` (the arg-max is the prediction),
labels ``(N,)`` (integers), or one column of binary scores ``(N,)``/``(N, 1)`` cut at ``threshold``
(0.5 for probabilities; ``fit`` and ``evaluate`` cut at 0 when the loss is ``BCEWithLogitsLoss``,
whose model outputs logits). Targets are class labels ``(N,)``, or one-hot rows / class
probabilities ``(N, C)`` (the arg-max is the class, as Keras's categorical accuracy reads them).

Multi-label targets: ``(N, C)`` rows of 0/1 of the predictions' shape where some row does not hold
exactly one 1 (or any such targets when ``fit``'s loss is a binary cross-entropy, which tells it) are
C independent yes/no labels. Each score is cut at ``threshold`` (``score > threshold``, as Keras'
``binary_accuracy``); accuracy is then the fraction of correct labels over all samples and labels
(Keras' ``binary_accuracy``: what tf.keras 2 made of 'accuracy' there; Keras 3 picks its accuracy from
the shapes alone and gives the argmax match, ``categorical_accuracy``), and precision, recall and f1 are micro averages over all labels
(scikit-learn's ``average="micro"`` on the label matrix) unless ``average`` says otherwise.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

import numpy as np

from ..devices import to_host
from ..errors import ArgumentTypeError, ConfigError, ShapeError
from ..tensor import Tensor

MetricFn = Callable[[Any, Any], float]

#: The names Keras gives a loss's or metric's first two parameters (its order: the truth first).
KERAS_ORDER = ("y_true", "y_pred")


def keras_order(fn: Any) -> bool:
    """Whether ``fn`` is written Keras' way, ``fn(y_true, y_pred)``: a plain Python function (or a method, or a
    ``functools.partial`` of one) whose first two positional parameters are named ``y_true`` and ``y_pred``,
    Keras' convention. fit, evaluate and the metrics call such a function with the targets first; anything
    else (an nn.Module, a loss object, a function with other names, a lambda ``t, p``) is called PyTorch's
    way, ``fn(outputs, targets)``, so a PyTorch program never sees its arguments swapped.

    Example:
        >>> def pinball(y_true, y_pred): ...
        >>> def mine(preds, target): ...
        >>> keras_order(pinball), keras_order(mine), keras_order(lambda y_true, y_pred: 0)
        (True, False, True)
    """
    inner = fn
    while isinstance(inner, partial):
        inner = inner.func
    if not (inspect.isfunction(inner) or inspect.ismethod(inner)):
        return False
    try:
        parameters = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):  # a signature Python cannot read: PyTorch's order, as before
        return False
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return tuple(p.name for p in parameters if p.kind in positional)[:2] == KERAS_ORDER


class Metric:
    """A metric function with the facts the training loop needs about it.

    Args:
        fn: ``fn(preds, target) -> float``; a function written Keras' way, ``fn(y_true, y_pred)`` (those
            parameter names, see :func:`keras_order`), is called with the targets first. It may return one
            value per sample (as Keras' metric functions do): fit and evaluate average them.
        name: the column name in the logs and History (default ``fn.__name__``).
        greater_is_better: whether a larger value is better. EarlyStopping, ModelCheckpoint,
            StopAtTarget (``mode='auto'``) and ``History.best`` read it to know which way is best.
        sample_mean: whether the value is a mean over samples (accuracy, MSE, MAE...), so the mean
            over a whole data set is the count-weighted mean of its parts' values; distributed
            training relies on it to split validation across ranks.

    The built-in metrics (``get_metric("accuracy")``...) are Metric objects. Wrap a function of
    your own to say that larger is better (a plain function counts as smaller-is-better, like a loss).

    Example:
        >>> import numpy as np
        >>> def hits(preds, target): return float(np.sum(np.asarray(preds) == np.asarray(target)))
        >>> m = Metric(hits, greater_is_better=True)
        >>> m.name, m.greater_is_better, m([1, 2], [1, 0])
        ('hits', True, 1.0)
    """

    def __init__(
        self,
        fn: MetricFn,
        name: str | None = None,
        *,
        greater_is_better: bool = False,
        sample_mean: bool = False,
    ) -> None:
        if not callable(fn):
            raise ArgumentTypeError(f"Metric: fn must be a function fn(preds, target), got {type(fn).__name__}")
        self.fn = fn
        self.name = name if name is not None else getattr(fn, "__name__", type(fn).__name__)
        self.greater_is_better = bool(greater_is_better)
        self.sample_mean = bool(sample_mean)
        self.direction_known = True  # False for a plain function whose name does not say (see as_metric)
        self.keras_order = keras_order(fn)  # fn(y_true, y_pred): called with the targets first
        # the metric's value for each sample (the built-in means over samples): what weighted_metrics weighs
        self.per_sample: Callable[[Any, Any], np.ndarray] | None = None
        self.weighted = False  # one of fit's weighted_metrics: a mean weighted by the sample weights
        # makes a RunningMetric: the metric over an epoch's batches so far, one batch at a time (the
        # built-in F1, precision, recall, AUC and average precision); None: computed over the batches joined
        self.running: Callable[[], RunningMetric] | None = None
        # the model output it reads, by name (a multi-output model's metric: ``<output>_<metric>``); None: the one
        self.output: str | None = None
        self.__name__ = self.name

    def __call__(self, preds: Any, target: Any) -> float:
        if self.keras_order:
            return self.fn(target, preds)
        return self.fn(preds, target)

    def __repr__(self) -> str:
        return f"Metric({self.name!r}, greater_is_better={self.greater_is_better}, sample_mean={self.sample_mean})"


def _array(x: Any, what: str, where: str) -> np.ndarray:
    # metrics are host arithmetic: a Tensor on a device is copied to the host once, here
    arr = to_host(x.array if isinstance(x, Tensor) else x)
    if arr.dtype.kind not in "fiub":
        raise ArgumentTypeError(f"{where}: {what} must be numeric, got dtype {arr.dtype}")
    if arr.ndim == 0 or arr.shape[0] == 0:
        raise ShapeError(f"{where}: {what} must hold at least one sample, got shape {arr.shape}")
    return arr


class GuessedThreshold:
    """The threshold ``"auto"`` shared by the metrics of one fit or evaluate call: 0 when a score lies
    outside [0, 1] (logits), else 0.5 with a warning that it was guessed, said once for all of them."""

    def __init__(self) -> None:
        self.warned = False

    def __repr__(self) -> str:
        return "'auto'"


# a number, or "auto" (a GuessedThreshold): 0 when a score lies outside [0, 1] (logits), else 0.5
Threshold = float | str | GuessedThreshold


def _cut(p: np.ndarray, threshold: Threshold, where: str) -> float:
    """The threshold that cuts the scores ``p``: ``threshold`` itself, or for ``"auto"`` (fit's loss is a
    function it cannot read) 0 when some score lies outside [0, 1], as such scores cannot be probabilities,
    else 0.5 with a warning that it was guessed."""
    if not isinstance(threshold, (str, GuessedThreshold)):
        return float(threshold)
    if isinstance(threshold, str) and threshold != "auto":
        raise ConfigError(f"{where}: threshold must be a number or 'auto', got {threshold!r}")
    with np.errstate(invalid="ignore"):
        outside = bool(np.any((p < 0) | (p > 1)))
    if outside:
        return 0.0
    if isinstance(threshold, GuessedThreshold):
        if threshold.warned:
            return 0.5
        threshold.warned = True
    import warnings

    warnings.warn(
        f"{where}: fit cannot tell from the loss whether the model outputs probabilities or logits, and every "
        "score lies in [0, 1], so the scores are cut at 0.5 (probabilities). If they are logits, say so: pass the "
        "loss as nn.BCEWithLogitsLoss(...) or functools.partial(F.binary_cross_entropy_with_logits, ...), or "
        "metrics=[ds.train.metrics.with_threshold('accuracy', 0.0)] (0.5 for probabilities silences this)",
        RuntimeWarning,
        stacklevel=4,
    )
    return 0.5


def _multilabel(p: np.ndarray, t: np.ndarray, multilabel: bool | None, where: str) -> bool:
    """Whether ``(p, t)`` are multi-label: (N, C > 1) targets of 0/1 of the predictions' shape, told by
    ``multilabel=True`` (a binary cross-entropy loss) or, with None, by a row that is not one-hot."""
    if multilabel is False or t.ndim != 2 or t.shape != p.shape or t.shape[1] < 2:
        return False
    if multilabel:
        return True
    with np.errstate(invalid="ignore"):
        if not np.all((t == 0) | (t == 1)):
            return False  # class probabilities: the arg-max is the class
        return not np.all(t.sum(axis=1) == 1)


def _multilabel_pair(p: np.ndarray, t: np.ndarray, threshold: Threshold, where: str) -> tuple[np.ndarray, ...]:
    """Predicted and true labels of a multi-label pair, as booleans (N, C); the targets are read as
    ``target > 0.5`` (0/1 labels; soft labels go to the nearer one)."""
    return p > _cut(p, threshold, where), t > 0.5


def _labels(preds: Any, target: Any, threshold: Threshold, where: str) -> tuple[np.ndarray, np.ndarray]:
    p = _array(preds, "preds", where)
    t = _array(target, "target", where)
    if t.ndim == 2 and t.shape[1] == 1:
        t = t[:, 0]
    elif t.ndim == 2 and t.shape == p.shape:
        t = np.argmax(t, axis=1)  # one-hot rows or class probabilities: the class is the arg-max
    if t.ndim != 1:
        raise ShapeError(f"{where}: target must be class labels of shape (N,), got {tuple(t.shape)}")
    if p.shape[0] != t.shape[0]:
        raise ShapeError(
            f"{where}: preds has {p.shape[0]} samples but target has {t.shape[0]} (shapes {tuple(p.shape)}, {tuple(t.shape)})"
        )
    if p.ndim == 2 and p.shape[1] > 1:
        return np.argmax(p, axis=1), t
    if p.ndim == 2:
        p = p[:, 0]
    if p.ndim != 1:
        raise ShapeError(f"{where}: preds must be (N, C) scores or (N,) labels/scores, got {tuple(p.shape)}")
    if p.dtype.kind == "f" and not np.all(p == np.round(p)):
        return (p >= _cut(p, threshold, where)).astype(np.int64), t  # one column of binary scores
    return p.astype(np.int64), t


def accuracy(
    preds: Any, target: Any, top_k: int = 1, threshold: Threshold = 0.5, multilabel: bool | None = None
) -> float:
    """Fraction of samples whose class is predicted (``top_k``: the class is among the k highest scores).

    Multi-label targets (see the module's docstring; ``multilabel=True`` says so, False never reads them
    so) give the fraction of correct labels over all samples and labels, Keras' ``binary_accuracy``.

    Example:
        >>> accuracy([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]], [1, 0, 0])
        0.6666666666666666
        >>> accuracy([[0.9, 0.8], [0.2, 0.7]], [[1, 1], [0, 0]])  # multi-label: 3 of 4 labels right
        0.75
    """
    if isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or top_k < 1:
        raise ConfigError(f"accuracy: top_k must be a positive integer, got {top_k!r}")
    if top_k == 1:
        return float(np.mean(_accuracy_per_sample(preds, target, threshold, multilabel)))
    p = _array(preds, "preds", "accuracy")
    t = _array(target, "target", "accuracy").reshape(-1)
    if p.ndim != 2 or p.shape[0] != t.shape[0]:
        raise ShapeError(
            f"accuracy(top_k={top_k}): expected preds (N, C) scores for target (N,), got {p.shape} and {t.shape}"
        )
    if top_k >= p.shape[1]:
        return 1.0
    top = np.argpartition(-p, top_k - 1, axis=1)[:, :top_k]
    return float(np.mean(np.any(top == t[:, None], axis=1)))


def _accuracy_per_sample(
    preds: Any, target: Any, threshold: Threshold = 0.5, multilabel: bool | None = None
) -> np.ndarray:
    """:func:`accuracy` (top 1) of each sample: 1.0 or 0.0, or its fraction of correct labels (multi-label)."""
    p, t = _array(preds, "preds", "accuracy"), _array(target, "target", "accuracy")
    if _multilabel(p, t, multilabel, "accuracy"):
        predicted, actual = _multilabel_pair(p, t, threshold, "accuracy")
        return np.mean(predicted == actual, axis=1)
    labels, t = _labels(preds, target, threshold, "accuracy")
    return (labels == t).astype(np.float64)


def _binary_accuracy_per_sample(preds: Any, target: Any, threshold: Threshold = 0.5) -> np.ndarray:
    """:func:`binary_accuracy` of each sample (the fraction of its columns cut right)."""
    where = "binary_accuracy"
    p, t = _array(preds, "preds", where), _array(target, "target", where)
    if p.shape != t.shape:
        if p.ndim == t.ndim + 1 and p.shape[-1] == 1:
            p = p[..., 0]  # (N, 1) scores of (N,) targets, as Keras squeezes them
        elif t.ndim == p.ndim + 1 and t.shape[-1] == 1:
            t = t[..., 0]
        else:
            raise ShapeError(
                f"{where}: preds and target must have the same shape, got {tuple(p.shape)} and {tuple(t.shape)}"
            )
    right = t == (p > _cut(p, threshold, where))
    return right.reshape(len(right), -1).mean(axis=1)


def binary_accuracy(preds: Any, target: Any, threshold: Threshold = 0.5) -> float:
    """Keras' ``binary_accuracy``: the fraction of scores whose cut ``score > threshold`` equals its 0/1
    target, over all samples and columns (one column or several yes/no labels).

    Example:
        >>> binary_accuracy([[0.9, 0.2], [0.4, 0.6]], [[1, 0], [1, 1]])
        0.75
    """
    return float(np.mean(_binary_accuracy_per_sample(preds, target, threshold)))


def _class_scores(preds: Any, where: str) -> np.ndarray:
    p = _array(preds, "preds", where)
    if p.ndim != 2:
        raise ShapeError(f"{where}: expected preds of class scores (N, C), got shape {p.shape}")
    return p


def _one_hot_classes(p: np.ndarray, target: Any, where: str) -> np.ndarray:
    t = _array(target, "target", where)
    if t.shape != p.shape:
        raise ShapeError(
            f"{where}: expected one-hot targets of the preds' shape {p.shape}, got {t.shape} (class indices "
            f"take sparse_{where})"
        )
    return np.argmax(t, axis=1)


def _sparse_classes(p: np.ndarray, target: Any, where: str) -> np.ndarray:
    t = _array(target, "target", where)
    if t.ndim == 2 and t.shape[1] == 1:
        t = t[:, 0]
    if t.shape != p.shape[:1]:
        raise ShapeError(
            f"{where}: expected one class index per row of preds {p.shape}, got targets of shape {tuple(t.shape)}"
        )
    return t


def categorical_accuracy(preds: Any, target: Any) -> float:
    """Keras' ``categorical_accuracy``: the fraction of rows whose highest score is at the one-hot
    target's 1 (``argmax(preds) == argmax(target)``).

    Example:
        >>> categorical_accuracy([[0.1, 0.9], [0.8, 0.2]], [[0, 1], [0, 1]])
        0.5
    """
    return float(np.mean(_categorical_accuracy_per_sample(preds, target)))


def _categorical_accuracy_per_sample(preds: Any, target: Any) -> np.ndarray:
    p = _class_scores(preds, "categorical_accuracy")
    return (np.argmax(p, axis=1) == _one_hot_classes(p, target, "categorical_accuracy")).astype(np.float64)


def _sparse_categorical_accuracy_per_sample(preds: Any, target: Any) -> np.ndarray:
    p = _class_scores(preds, "sparse_categorical_accuracy")
    return (np.argmax(p, axis=1) == _sparse_classes(p, target, "sparse_categorical_accuracy")).astype(np.float64)


def sparse_categorical_accuracy(preds: Any, target: Any) -> float:
    """Keras' ``sparse_categorical_accuracy``: the fraction of rows whose highest score is at the class
    index (``argmax(preds) == target``).

    Example:
        >>> sparse_categorical_accuracy([[0.1, 0.9], [0.8, 0.2]], [1, 1])
        0.5
    """
    return float(np.mean(_sparse_categorical_accuracy_per_sample(preds, target)))


def top_k_categorical_accuracy(preds: Any, target: Any, k: int = 5) -> float:
    """Keras' ``top_k_categorical_accuracy``: the fraction of rows whose one-hot target's class is
    among the ``k`` highest scores (k=5 as Keras).

    Example:
        >>> top_k_categorical_accuracy([[0.5, 0.3, 0.2], [0.1, 0.2, 0.7]], [[0, 1, 0], [1, 0, 0]], k=2)
        0.5
    """
    p = _class_scores(preds, "top_k_categorical_accuracy")
    return accuracy(p, _one_hot_classes(p, target, "top_k_categorical_accuracy"), top_k=k)


def sparse_top_k_categorical_accuracy(preds: Any, target: Any, k: int = 5) -> float:
    """Keras' ``sparse_top_k_categorical_accuracy``: the fraction of rows whose class index is among the
    ``k`` highest scores (k=5 as Keras).

    Example:
        >>> sparse_top_k_categorical_accuracy([[0.5, 0.3, 0.2], [0.1, 0.2, 0.7]], [1, 0], k=2)
        0.5
    """
    p = _class_scores(preds, "sparse_top_k_categorical_accuracy")
    return accuracy(p, _sparse_classes(p, target, "sparse_top_k_categorical_accuracy"), top_k=k)


def _confusion_counts(
    preds: Any, target: Any, threshold: Threshold, where: str, multilabel: bool | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
    """Per class (per label for multi-label targets): true positives, predicted and actual counts, and
    whether the targets were multi-label."""
    p, t_raw = _array(preds, "preds", where), _array(target, "target", where)
    if _multilabel(p, t_raw, multilabel, where):
        predicted_labels, actual_labels = _multilabel_pair(p, t_raw, threshold, where)
        tp = np.sum(predicted_labels & actual_labels, axis=0).astype(np.float64)
        return tp, predicted_labels.sum(axis=0).astype(np.float64), actual_labels.sum(axis=0).astype(np.float64), True
    labels, t = _labels(preds, target, threshold, where)
    classes = np.union1d(labels, t)
    tp = np.array([np.sum((labels == c) & (t == c)) for c in classes], dtype=np.float64)
    predicted = np.array([np.sum(labels == c) for c in classes], dtype=np.float64)
    actual = np.array([np.sum(t == c) for c in classes], dtype=np.float64)
    return tp, predicted, actual, False


def _safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    # scikit-learn's zero_division=0: a class never predicted (or never present) scores 0.
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


def _average(per_class: np.ndarray, actual: np.ndarray, average: str, where: str) -> float:
    if average == "macro":
        return float(per_class.mean())
    if average == "weighted":
        return float(_safe_div(np.sum(per_class * actual), np.sum(actual)))
    raise ConfigError(f"{where}: average must be 'macro', 'weighted' or 'micro', got {average!r}")


def _averaging(average: str | None, multilabel: bool) -> str:
    """``average``, or by default 'micro' for multi-label targets and 'macro' for classes."""
    return average if average is not None else ("micro" if multilabel else "macro")


def _micro(num: np.ndarray, den: np.ndarray) -> float:
    return float(_safe_div(np.asarray(num.sum()), np.asarray(den.sum())))


def precision(
    preds: Any, target: Any, average: str | None = None, threshold: Threshold = 0.5, multilabel: bool | None = None
) -> float:
    """Precision TP / (TP + FP), averaged over classes ('macro' by default, 'weighted' or 'micro'); for
    multi-label targets over labels, 'micro' by default (scikit-learn's ``average="micro"``).

    Example:
        >>> precision([0, 1, 1, 2], [0, 1, 2, 2])
        0.8333333333333334
    """
    tp, predicted, actual, multi = _confusion_counts(preds, target, threshold, "precision", multilabel)
    average = _averaging(average, multi)
    if average == "micro":
        return _micro(tp, predicted)
    return _average(_safe_div(tp, predicted), actual, average, "precision")


def recall(
    preds: Any, target: Any, average: str | None = None, threshold: Threshold = 0.5, multilabel: bool | None = None
) -> float:
    """Recall TP / (TP + FN), averaged over classes ('macro' by default, 'weighted' or 'micro'); for
    multi-label targets over labels, 'micro' by default (scikit-learn's ``average="micro"``).

    Example:
        >>> recall([0, 1, 1, 2], [0, 1, 2, 2])
        0.8333333333333334
    """
    tp, predicted, actual, multi = _confusion_counts(preds, target, threshold, "recall", multilabel)
    average = _averaging(average, multi)
    if average == "micro":
        return _micro(tp, actual)
    return _average(_safe_div(tp, actual), actual, average, "recall")


def f1_score(
    preds: Any, target: Any, average: str | None = None, threshold: Threshold = 0.5, multilabel: bool | None = None
) -> float:
    """F1, the harmonic mean of precision and recall per class, averaged ('macro' by default); for
    multi-label targets over labels, 'micro' by default (scikit-learn's ``average="micro"``).

    Example:
        >>> round(f1_score([0, 1, 1, 2], [0, 1, 2, 2]), 4)
        0.7778
    """
    tp, predicted, actual, multi = _confusion_counts(preds, target, threshold, "f1_score", multilabel)
    average = _averaging(average, multi)
    if average == "micro":
        return _micro(2 * tp, predicted + actual)
    return _average(_safe_div(2 * tp, predicted + actual), actual, average, "f1_score")


def _regression_pair(preds: Any, target: Any, where: str) -> tuple[np.ndarray, np.ndarray]:
    p = _array(preds, "preds", where).astype(np.float64)
    t = _array(target, "target", where).astype(np.float64)
    if p.shape != t.shape:
        # (N, 1) against (N,) is the same column; anything else would broadcast into nonsense.
        if p.ndim + t.ndim == 3 and p.shape[0] == t.shape[0] and p.size == t.size:
            p, t = p.reshape(-1), t.reshape(-1)
        else:
            raise ShapeError(
                f"{where}: preds and target must have the same shape, got {tuple(p.shape)} and {tuple(t.shape)}"
            )
    return p, t


def _per_sample_errors(preds: Any, target: Any, where: str, error: Callable[..., np.ndarray]) -> np.ndarray:
    """``error(p, t)`` averaged over each sample's values: the per-sample form of the regression metrics."""
    p, t = _regression_pair(preds, target, where)
    values = error(p, t)
    return values.reshape(len(values), -1).mean(axis=1)


def mean_squared_error(preds: Any, target: Any) -> float:
    """Mean of squared errors.

    Example:
        >>> mean_squared_error([1.0, 2.0], [1.0, 4.0])
        2.0
    """
    p, t = _regression_pair(preds, target, "mean_squared_error")
    return float(np.mean((p - t) ** 2))


def mean_absolute_error(preds: Any, target: Any) -> float:
    """Mean of absolute errors.

    Example:
        >>> mean_absolute_error([1.0, 2.0], [1.0, 4.0])
        1.0
    """
    p, t = _regression_pair(preds, target, "mean_absolute_error")
    return float(np.mean(np.abs(p - t)))


def root_mean_squared_error(preds: Any, target: Any) -> float:
    """Square root of the mean squared error (in the target's units).

    Example:
        >>> root_mean_squared_error([0.0, 0.0], [3.0, 4.0])
        3.5355339059327378
    """
    return float(np.sqrt(mean_squared_error(preds, target)))


def r2_score(preds: Any, target: Any) -> float:
    """Coefficient of determination 1 - SS_res / SS_tot (averaged over output columns, like scikit-learn).

    A constant target scores 1.0 when predicted exactly and 0.0 otherwise (scikit-learn's choice).

    Example:
        >>> r2_score([1.0, 2.0, 3.0], [1.0, 2.0, 4.0])
        0.7857142857142857
    """
    p, t = _regression_pair(preds, target, "r2_score")
    if p.ndim == 1:
        p, t = p[:, None], t[:, None]
    ss_res = np.sum((t - p) ** 2, axis=0)
    ss_tot = np.sum((t - t.mean(axis=0)) ** 2, axis=0)
    per_output = np.where(ss_tot > 0, 1.0 - ss_res / np.where(ss_tot > 0, ss_tot, 1.0), np.where(ss_res == 0, 1.0, 0.0))
    return float(per_output.mean())


def mean_absolute_percentage_error(preds: Any, target: Any) -> float:
    """Keras' ``mean_absolute_percentage_error``, in percent: ``100 * mean(|target - preds| / max(|target|,
    1e-7))`` (a zero target counts against 1e-7, as Keras clips it; scikit-learn's version is a fraction).

    Example:
        >>> mean_absolute_percentage_error([110.0, 45.0], [100.0, 50.0])
        10.0
    """
    p, t = _regression_pair(preds, target, "mean_absolute_percentage_error")
    return float(100.0 * np.mean(np.abs(t - p) / np.maximum(np.abs(t), 1e-7)))


def _binary_scores(preds: Any, target: Any, where: str, note: str = "") -> tuple[np.ndarray, np.ndarray]:
    """``(scores, labels)`` as 1-d float64 scores and 0/1 labels of one binary problem: a score per sample
    given as (N,), (N, 1) or (N, 2) (class scores: probabilities or logits rank alike by the second minus
    the first), labels as (N,) or (N, 1); anything else refused, ``note`` added to the shape error."""
    p = _array(preds, "preds", where).astype(np.float64)
    t = _array(target, "target", where)
    if t.ndim == 2 and t.shape[1] == 1:
        t = t[:, 0]
    if p.ndim == 2 and p.shape[1] == 2:
        p = p[:, 1] - p[:, 0]
    elif p.ndim == 2 and p.shape[1] == 1:
        p = p[:, 0]
    if p.ndim != 1 or t.ndim != 1 or len(p) != len(t):
        raise ShapeError(
            f"{where}: expected one binary score per sample ((N,), (N, 1) or (N, 2)) and (N,) labels, got preds "
            f"{_array(preds, 'preds', where).shape} and target {tuple(t.shape)}{note}"
        )
    labels = np.unique(t)
    if not np.all(np.isin(labels, (0, 1))):
        raise ConfigError(f"{where}: targets must be binary labels 0/1, got values {labels[:5].tolist()}")
    return p, t


def roc_auc_score(preds: Any, target: Any) -> float:
    """Area under the ROC curve of binary scores, exactly as scikit-learn's ``roc_auc_score`` (the
    Mann-Whitney U statistic with average ranks for ties), not Keras' ``AUC`` (its 200 thresholds
    approximate this number). ``preds``: one score per sample ((N,) or (N, 1): probabilities or
    logits, the order is what counts) or two columns of class scores (the second against the first);
    ``target``: labels 0/1. NaN when the targets hold one class only (scikit-learn raises there; an
    epoch's numbers should not stop training).

    Example:
        >>> roc_auc_score([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1])
        0.75
    """
    p, t = _binary_scores(preds, target, "roc_auc_score", " (a multi-class AUC is not built in)")
    positive = t == 1
    n_pos = int(positive.sum())
    n_neg = len(t) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(p, kind="mergesort")
    ranked = p[order]
    starts = np.flatnonzero(np.r_[True, ranked[1:] != ranked[:-1]])  # runs of equal scores share their mean rank
    ends = np.r_[starts[1:], len(p)]
    ranks = np.empty(len(p), dtype=np.float64)
    ranks[order] = np.repeat((starts + ends + 1) / 2.0, ends - starts)
    u = ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def average_precision_score(preds: Any, target: Any) -> float:
    """Average precision of binary scores (the area under the precision-recall curve as a step sum),
    exactly as scikit-learn's ``average_precision_score``: ``sum_n (R_n - R_{n-1}) P_n`` over the distinct
    scores taken as thresholds from the highest down (equal scores are one threshold). Beside the ROC AUC,
    it is the score for a rare positive class: always about the positives' share for scores that know
    nothing, however many negatives there are. ``preds`` and ``target`` as :func:`roc_auc_score`'s; NaN
    when the targets hold no positive (scikit-learn warns and returns 0 there, a number that looks like
    a score).

    Example:
        >>> round(average_precision_score([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]), 6)
        0.833333
    """
    p, t = _binary_scores(preds, target, "average_precision_score")
    positive = (t == 1)[np.argsort(-p, kind="mergesort")]
    n_pos = int(positive.sum())
    if n_pos == 0:
        return float("nan")
    ranked = np.sort(p)[::-1]
    # the last position of each run of equal scores: one threshold per distinct score
    last = np.r_[np.flatnonzero(ranked[1:] != ranked[:-1]), len(p) - 1]
    true_pos = np.cumsum(positive)[last]
    precision = true_pos / (last + 1.0)
    recall_steps = np.diff(np.r_[0, true_pos]) / n_pos
    return float(np.sum(recall_steps * precision))


class RunningMetric:
    """A metric over the batches of an epoch so far, fed one batch at a time (:meth:`add`), so that reading
    it after every batch costs a pass over that batch, not over the epoch so far. :meth:`so_far` is a
    function giving the value over the batches added until then: the same number as the metric over
    those batches joined. :meth:`add` returns False when it cannot promise that (a batch that reads
    differently joined to the others, such as scores cut at a threshold 'auto' decides, or NaN scores),
    and the caller joins the batches instead."""

    def add(self, preds: Any, target: Any) -> bool:  # pragma: no cover - the interface
        raise NotImplementedError

    def so_far(self) -> Callable[[], float]:  # pragma: no cover - the interface
        raise NotImplementedError


class _RunningCounts(RunningMetric):
    """Precision, recall or F1 from per-class counts (true positives, predicted, actual) summed over batches;
    classes are those seen in any batch so far, as ``np.union1d`` over the batches joined gives them."""

    def __init__(
        self, kind: str, average: str | None = None, threshold: Threshold = 0.5, multilabel: bool | None = None
    ):
        self.kind, self.average, self.threshold, self.multilabel = kind, average, threshold, multilabel
        self.classes: np.ndarray | None = None
        self.counts: np.ndarray | None = None  # (3, classes): true positives, predicted, actual
        self.multi: bool | None = None
        self.label_mode: str | None = None  # how one column of binary scores was read: 'cut' or 'labels'

    def add(self, preds: Any, target: Any) -> bool:
        if isinstance(self.threshold, (str, GuessedThreshold)):
            return False  # 'auto' cuts at 0 or 0.5 by every score of the epoch so far
        p, t = _array(preds, "preds", self.kind), _array(target, "target", self.kind)
        multi = _multilabel(p, t, self.multilabel, self.kind)
        if self.multilabel is None and self.multi is not None and multi != self.multi:
            return False  # a batch of one-hot rows beside one of several labels: read as joined only
        if not multi and p.dtype.kind == "f" and (p.ndim == 1 or p.ndim == 2 and p.shape[1] == 1):
            # one column of floats is read as labels when every score of the epoch is whole, else cut at the
            # threshold: a batch of whole scores that the cut maps to themselves (0 and 1, a threshold in
            # (0, 1]) reads alike either way; otherwise every batch must read as the joined scores would
            whole = bool(np.all(p == np.round(p)))
            mode: str | None = "cut" if not whole else "labels"
            if whole and 0 < float(self.threshold) <= 1 and bool(np.all((p == 0) | (p == 1))):
                mode = None
            if mode is not None:
                if self.label_mode not in (None, mode):
                    return False
                self.label_mode = mode
        tp, predicted, actual, multi = _confusion_counts(p, t, self.threshold, self.kind, self.multilabel)
        counts = np.stack([tp, predicted, actual])
        if multi:
            classes = np.arange(counts.shape[1])
        else:
            labels, truth = _labels(p, t, self.threshold, self.kind)
            classes = np.union1d(labels, truth)
        if self.counts is None or self.classes is None:
            self.classes, self.counts, self.multi = classes, counts, multi
            return True
        if multi:
            if counts.shape != self.counts.shape:
                return False
            self.counts = self.counts + counts
            return True
        joined = np.union1d(self.classes, classes)
        total = np.zeros((3, len(joined)), dtype=np.float64)
        total[:, np.searchsorted(joined, self.classes)] += self.counts
        total[:, np.searchsorted(joined, classes)] += counts
        self.classes, self.counts = joined, total
        return True

    def so_far(self) -> Callable[[], float]:
        assert self.counts is not None and self.multi is not None
        tp, predicted, actual = self.counts
        average, kind = _averaging(self.average, self.multi), self.kind
        num, den = {"precision": (tp, predicted), "recall": (tp, actual), "f1_score": (2 * tp, predicted + actual)}[
            kind
        ]
        value = _micro(num, den) if average == "micro" else _average(_safe_div(num, den), actual, average, kind)
        return lambda: value


class _SortedRuns:
    """Numbers kept as sorted runs of sizes in a binary counter (a run merges with the last while it is not
    smaller), so adding m numbers to n costs O(m log n) amortized and counting those below a value
    O(log^2 n)."""

    def __init__(self) -> None:
        self.runs: list[np.ndarray] = []

    def add(self, values: np.ndarray) -> None:
        run = np.sort(values)
        while self.runs and len(self.runs[-1]) <= len(run):
            run = np.sort(np.concatenate([self.runs.pop(), run]), kind="mergesort")  # two sorted runs: linear
        self.runs.append(run)

    def pairs_below(self, values: np.ndarray) -> float:
        """Sum over ``values`` of (kept numbers below it) + (kept numbers equal to it) / 2."""
        total = 0.0
        for run in self.runs:
            total += float(np.sum(np.searchsorted(run, values, "left") + np.searchsorted(run, values, "right"))) / 2.0
        return total

    def pairs_above(self, values: np.ndarray) -> float:
        """Sum over ``values`` of (kept numbers above it) + (kept numbers equal to it) / 2."""
        total = 0.0
        for run in self.runs:
            left, right = np.searchsorted(run, values, "left"), np.searchsorted(run, values, "right")
            total += float(np.sum(2 * len(run) - left - right)) / 2.0
        return total


class _RunningAUC(RunningMetric):
    """ROC AUC as the Mann-Whitney U statistic, updated per batch: a new positive counts the negatives
    below it (ties a half), a new negative the positives above it. The pairs are half-integers summed in
    float64, exactly the ranks' sum :func:`roc_auc_score` takes, so the value is the same number."""

    def __init__(self) -> None:
        self.positives, self.negatives = _SortedRuns(), _SortedRuns()
        self.n_pos = self.n_neg = 0
        self.u = 0.0

    def add(self, preds: Any, target: Any) -> bool:
        p, t = _binary_scores(preds, target, "roc_auc_score")
        if np.isnan(p).any():
            return False
        pos, neg = p[t == 1], p[t != 1]
        within = _SortedRuns()
        within.add(neg)
        self.u += self.negatives.pairs_below(pos) + self.positives.pairs_above(neg) + within.pairs_below(pos)
        self.positives.add(pos)
        self.negatives.add(neg)
        self.n_pos += len(pos)
        self.n_neg += len(neg)
        return True

    def so_far(self) -> Callable[[], float]:
        value = float("nan") if self.n_pos == 0 or self.n_neg == 0 else float(self.u / (self.n_pos * self.n_neg))
        return lambda: value


class _RunningAveragePrecision(RunningMetric):
    """Average precision over the scores so far, kept sorted (each batch merged in, not the epoch sorted
    again): a read is one pass of cumulative sums over the sorted scores. Every threshold's precision
    changes as scores come, so each read is linear in the scores so far; it is computed only when read."""

    def __init__(self) -> None:
        self.scores = np.empty(0, dtype=np.float64)  # descending
        self.positive = np.empty(0, dtype=bool)

    def add(self, preds: Any, target: Any) -> bool:
        p, t = _binary_scores(preds, target, "average_precision_score")
        if np.isnan(p).any():
            return False
        order = np.argsort(-p, kind="mergesort")
        new_scores, new_positive = p[order], (t == 1)[order]
        # the joined order of :func:`average_precision_score` is a stable sort: equal scores keep batch order,
        # so a new score goes after the old ones it equals ('right' on the negated, ascending scores)
        at = np.searchsorted(-self.scores, -new_scores, "right")
        self.scores = np.insert(self.scores, at, new_scores)
        self.positive = np.insert(self.positive, at, new_positive)
        return True

    def so_far(self) -> Callable[[], float]:
        ranked, positive = self.scores, self.positive  # (replaced, not changed, by later batches)

        def value() -> float:
            n_pos = int(positive.sum())
            if n_pos == 0:
                return float("nan")
            last = np.r_[np.flatnonzero(ranked[1:] != ranked[:-1]), len(ranked) - 1]
            true_pos = np.cumsum(positive)[last]
            precision = true_pos / (last + 1.0)
            recall_steps = np.diff(np.r_[0, true_pos]) / n_pos
            return float(np.sum(recall_steps * precision))

        return value


# Names accepted by fit(metrics=[...]); the key is also the column name in History.
def _builtin(fn: MetricFn, name: str, greater_is_better: bool, sample_mean: bool) -> Metric:
    return Metric(fn, name, greater_is_better=greater_is_better, sample_mean=sample_mean)


def _loss_metric(name: str, loss: Callable[[], Any], sign: float = 1.0) -> Metric:
    """The metric named after Keras' loss ``name``: ``sign`` times the loss ``loss()`` builds, averaged
    over the samples (in float64, without gradients), as Keras' metric of that name."""

    def loss_value(preds: Any, target: Any) -> float:
        from ..autograd import no_grad
        from ..tensor import wrap_array

        p = _array(preds, "preds", name).astype(np.float64)
        t = _array(target, "target", name)
        with no_grad():
            value = loss()(wrap_array(p), wrap_array(t if t.dtype.kind in "iu" else t.astype(np.float64)))
        return sign * float(value.item())  # host: a metric is a host number

    loss_value.__name__ = name
    return _builtin(loss_value, name, greater_is_better=sign < 0, sample_mean=True)


def _keras_cross_entropy(kind: str) -> Callable[[], Any]:
    def make() -> Any:
        from .evaluation import KerasCrossEntropy

        return KerasCrossEntropy(kind)

    return make


def _keras_loss(name: str) -> Callable[[], Any]:
    def make() -> Any:
        from .keras_losses import KerasLoss

        return KerasLoss(name)

    return make


_BY_NAME: dict[str, Metric] = {
    "binary_accuracy": _builtin(binary_accuracy, "binary_accuracy", greater_is_better=True, sample_mean=True),
    "categorical_accuracy": _builtin(
        categorical_accuracy, "categorical_accuracy", greater_is_better=True, sample_mean=True
    ),
    "sparse_categorical_accuracy": _builtin(
        sparse_categorical_accuracy, "sparse_categorical_accuracy", greater_is_better=True, sample_mean=True
    ),
    "top_k_categorical_accuracy": _builtin(
        top_k_categorical_accuracy, "top_k_categorical_accuracy", greater_is_better=True, sample_mean=True
    ),
    "sparse_top_k_categorical_accuracy": _builtin(
        sparse_top_k_categorical_accuracy, "sparse_top_k_categorical_accuracy", greater_is_better=True, sample_mean=True
    ),
    # Keras' metrics named after its losses: the loss averaged over samples (cosine similarity: its negative)
    "binary_crossentropy": _loss_metric("binary_crossentropy", _keras_cross_entropy("binary")),
    "categorical_crossentropy": _loss_metric("categorical_crossentropy", _keras_cross_entropy("categorical")),
    "sparse_categorical_crossentropy": _loss_metric("sparse_categorical_crossentropy", _keras_cross_entropy("sparse")),
    "msle": _loss_metric("msle", _keras_loss("msle")),
    "poisson": _loss_metric("poisson", _keras_loss("poisson")),
    "kl_divergence": _loss_metric("kl_divergence", _keras_loss("kl_divergence")),
    "log_cosh": _loss_metric("log_cosh", _keras_loss("log_cosh")),
    "hinge": _loss_metric("hinge", _keras_loss("hinge")),
    "squared_hinge": _loss_metric("squared_hinge", _keras_loss("squared_hinge")),
    "categorical_hinge": _loss_metric("categorical_hinge", _keras_loss("categorical_hinge")),
    "cosine_similarity": _loss_metric("cosine_similarity", _keras_loss("cosine_similarity"), sign=-1.0),
    "accuracy": _builtin(accuracy, "accuracy", greater_is_better=True, sample_mean=True),
    "precision": _builtin(precision, "precision", greater_is_better=True, sample_mean=False),
    "recall": _builtin(recall, "recall", greater_is_better=True, sample_mean=False),
    "f1": _builtin(f1_score, "f1", greater_is_better=True, sample_mean=False),
    "mse": _builtin(mean_squared_error, "mse", greater_is_better=False, sample_mean=True),
    "mae": _builtin(mean_absolute_error, "mae", greater_is_better=False, sample_mean=True),
    "rmse": _builtin(root_mean_squared_error, "rmse", greater_is_better=False, sample_mean=False),
    "r2": _builtin(r2_score, "r2", greater_is_better=True, sample_mean=False),
    "mape": _builtin(mean_absolute_percentage_error, "mape", greater_is_better=False, sample_mean=True),
    "auc": _builtin(roc_auc_score, "auc", greater_is_better=True, sample_mean=False),
    "average_precision": _builtin(
        average_precision_score, "average_precision", greater_is_better=True, sample_mean=False
    ),
}
_ALIASES = {
    "acc": "accuracy",
    "f1_score": "f1",
    "mean_squared_error": "mse",
    "mean_absolute_error": "mae",
    "root_mean_squared_error": "rmse",
    "r2_score": "r2",
    "mean_absolute_percentage_error": "mape",
    "roc_auc": "auc",
    "roc_auc_score": "auc",
    "average_precision_score": "average_precision",
    "pr_auc": "average_precision",
    "mean_squared_logarithmic_error": "msle",
    "kld": "kl_divergence",
    "kullback_leibler_divergence": "kl_divergence",
    "logcosh": "log_cosh",
}


# the functions whose per-class counts add up over batches (see _RunningCounts), by metric name
_RUNNING_COUNTS = {"precision": "precision", "recall": "recall", "f1": "f1_score"}
for _name, _kind in _RUNNING_COUNTS.items():
    _BY_NAME[_name].running = partial(_RunningCounts, _kind)
_BY_NAME["auc"].running = _RunningAUC
_BY_NAME["average_precision"].running = _RunningAveragePrecision

_BY_NAME["accuracy"].per_sample = _accuracy_per_sample
_BY_NAME["binary_accuracy"].per_sample = _binary_accuracy_per_sample
_BY_NAME["categorical_accuracy"].per_sample = _categorical_accuracy_per_sample
_BY_NAME["sparse_categorical_accuracy"].per_sample = _sparse_categorical_accuracy_per_sample
_BY_NAME["mse"].per_sample = lambda p, t: _per_sample_errors(p, t, "mse", lambda a, b: (a - b) ** 2)
_BY_NAME["mae"].per_sample = lambda p, t: _per_sample_errors(p, t, "mae", lambda a, b: np.abs(a - b))
_BY_NAME["mape"].per_sample = lambda p, t: _per_sample_errors(
    p, t, "mape", lambda a, b: 100.0 * np.abs(b - a) / np.maximum(np.abs(b), 1e-7)
)


def _top_k_metric(k: int) -> Metric:
    def top_k_accuracy(preds: Any, target: Any) -> float:
        return accuracy(preds, target, top_k=k)

    return _builtin(top_k_accuracy, f"top{k}_accuracy", greater_is_better=True, sample_mean=True)


_THRESHOLDED = ("accuracy", "precision", "recall", "f1", "binary_accuracy")


def _with_options(metric: Metric, **options: Any) -> Metric:
    fn: Callable[..., float] = metric.fn

    def with_options(preds: Any, target: Any) -> float:
        return fn(preds, target, **options)

    made = _builtin(with_options, metric.name, metric.greater_is_better, metric.sample_mean)
    per_sample = metric.per_sample
    if per_sample is not None:
        made.per_sample = lambda preds, target: per_sample(preds, target, **options)
    if metric.name in _RUNNING_COUNTS:
        made.running = partial(_RunningCounts, _RUNNING_COUNTS[metric.name], **options)
    return made


def adapt_to_loss(metric: Metric, threshold: Threshold = 0.5, multilabel: bool | None = None) -> Metric:
    """The built-in ``metric`` reading the model's outputs as fit's loss says: scores cut at ``threshold``
    (0 for logits, 0.5 for probabilities, ``"auto"`` for a loss fit cannot read: see the module's
    docstring) and, with ``multilabel=True`` (a binary cross-entropy), ``(N, C)`` 0/1 targets as C
    labels even when every row holds one 1. Metrics other than the built-in accuracy, binary_accuracy,
    precision, recall and f1 are returned as they are (so is a metric made by :func:`with_threshold`).

    Example:
        >>> adapt_to_loss(as_metric("accuracy"), threshold=0.0)([[-0.3], [0.2]], [0, 1])
        1.0
    """
    if metric.name not in _THRESHOLDED or metric is not _BY_NAME[metric.name]:
        return metric
    options: dict[str, Any] = {}
    if isinstance(threshold, (str, GuessedThreshold)) or threshold != 0.5:
        options["threshold"] = threshold
    if multilabel is not None and metric.name != "binary_accuracy":
        options["multilabel"] = multilabel
    return _with_options(metric, **options) if options else metric


def for_logits(metric: Metric) -> Metric:
    """``metric`` reading one column of binary scores as logits (cut at 0, not 0.5): what ``fit`` and
    ``evaluate`` use with ``BCEWithLogitsLoss``. Metrics other than the built-in accuracy, precision,
    recall and f1 are returned as they are.

    Example:
        >>> for_logits(as_metric("accuracy"))([[-0.3], [0.2]], [0, 1])  # 0.5 would call both 0
        1.0
    """
    return adapt_to_loss(metric, threshold=0.0)


def with_threshold(metric: str | Metric, threshold: float) -> Metric:
    """The built-in ``metric`` ('accuracy', 'binary_accuracy', 'precision', 'recall', 'f1') cutting scores
    at ``threshold`` whatever the loss: 0 for logits, 0.5 for probabilities. Use it when fit's loss is a
    function it cannot read (a lambda) and it warns that it guessed.

    Example:
        >>> with_threshold("accuracy", 0.0)([[-0.3], [0.2]], [0, 1])
        1.0
    """
    found = as_metric(metric)
    if found.name not in _THRESHOLDED or found is not _BY_NAME[found.name]:
        raise ConfigError(
            f"with_threshold: expected one of the built-in metrics {', '.join(_THRESHOLDED)}, got {found.name!r}"
        )
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float, np.integer, np.floating)):
        raise ConfigError(f"with_threshold: threshold must be a number, got {threshold!r}")
    return _with_options(found, threshold=float(threshold))


def _spelling(key: str) -> str:
    """One spelling for every name of a built-in metric ('val_mean_absolute_error', 'val_MAE' -> 'val_mae';
    'AUC' -> 'auc'); any other name as it is."""
    prefix = "val_" if key.startswith("val_") else ""
    base = key[len(prefix) :]
    lowered = _ALIASES.get(base.lower(), base.lower())
    return prefix + (lowered if _lookup(lowered) is not None else base)


def canonical_log_name(key: str, logs: Any = None) -> str:
    """``key`` as logged. fit logs a metric under the name given (``metrics=["mean_absolute_error"]`` logs
    ``mean_absolute_error``, as Keras 3); any other spelling of that metric (``"mae"``, ``"val_MAE"``)
    reads it: with ``logs`` (a dict of logged names), the logged name of the same metric is returned. Without
    ``logs``, or when no such name is logged, the built-in metric's own name (``"val_acc"`` ->
    ``"val_accuracy"``, ``"AUC"`` -> ``"auc"``); a name logged as it is stays itself (a user's function named
    ``acc``). Monitors, History lookups and ModelCheckpoint's file names read their keys through this.

    Example:
        >>> canonical_log_name("val_acc"), canonical_log_name("acc", {"acc": 1.0}), canonical_log_name("loss")
        ('val_accuracy', 'acc', 'loss')
        >>> canonical_log_name("val_mae", {"val_mean_absolute_error": 0.5})
        'val_mean_absolute_error'
    """
    if logs is not None and key in logs:
        return key
    spelled = _spelling(key)
    if logs is not None:
        for logged in logs:
            if isinstance(logged, str) and _spelling(logged) == spelled:
                return logged
    return spelled


def _lookup(name: str) -> Metric | None:
    """The built-in metric called ``name`` (any case, aliases, ``top<k>_accuracy``), or None."""
    key = name.lower()
    key = _ALIASES.get(key, key)
    if key in _BY_NAME:
        return _BY_NAME[key]
    if key.startswith("top") and key.endswith("_accuracy") and key[3:-9].isdigit() and int(key[3:-9]) >= 1:
        return _top_k_metric(int(key[3:-9]))
    return None


def as_metric(metric: str | MetricFn | Metric) -> Metric:
    """Resolve a metric name ('accuracy', 'top5_accuracy', 'f1', 'mse', 'r2', ...) or a function to a Metric.

    A Metric is returned as is; a plain function ``fn(preds, target) -> float`` becomes
    ``Metric(fn)`` named after ``fn.__name__`` (not a per-sample mean), whose direction is read from
    that name: a built-in metric's name or one History knows (see :func:`greater_is_better`) as those
    say; else a name holding accuracy, auc, f1, precision, recall, r2, iou or dice is better when larger,
    and one holding loss, error, mse, mae or brier when smaller ('score' says nothing: 'brier_score').
    For any other name the direction is unknown, and a monitor in mode 'auto' asks for 'min' or 'max'
    instead of guessing (as Keras 3 does).

    Example:
        >>> m = as_metric("acc")
        >>> m.name, m.greater_is_better, m([2, 1], [2, 0])
        ('accuracy', True, 0.5)
    """
    if isinstance(metric, Metric):
        return metric
    if callable(metric):
        name = getattr(metric, "__name__", type(metric).__name__)
        better = _direction_from_name(name)
        made = Metric(metric, greater_is_better=bool(better))
        made.direction_known = better is not None
        return made
    if not isinstance(metric, str):
        raise ConfigError(f"metrics: expected a metric name or a function, got {type(metric).__name__} {metric!r}")
    found = _lookup(metric)
    if found is None:
        valid = sorted(_BY_NAME) + sorted(_ALIASES) + ["top<k>_accuracy"]
        raise ConfigError(f"unknown metric {metric!r}; valid names are: {', '.join(valid)} (or pass a function)")
    return found


def logged_as(metric: Metric, name: str, weighted: bool = False) -> Metric:
    """``metric`` logged under ``name``: fit logs a metric given by name under that string, as Keras 3 does
    (``"mean_absolute_error"``, ``"AUC"``, ``"acc"``), not under the built-in metric's own name.
    ``weighted=True``: a copy that is one of fit's ``weighted_metrics``.

    Example:
        >>> logged_as(as_metric("acc"), "acc").name, as_metric("acc").name
        ('acc', 'accuracy')
    """
    if metric.name == name and metric.weighted == weighted:
        return metric
    renamed = Metric(metric.fn, name, greater_is_better=metric.greater_is_better, sample_mean=metric.sample_mean)
    renamed.direction_known = metric.direction_known
    renamed.keras_order = metric.keras_order
    renamed.per_sample = metric.per_sample
    renamed.running = metric.running
    renamed.weighted = weighted
    renamed.output = metric.output
    return renamed


def get_metric(metric: str | MetricFn | Metric) -> tuple[str, Metric]:
    """``(name, metric)`` for a metric name or function: :func:`as_metric` with its name beside it.

    Example:
        >>> name, fn = get_metric("acc")
        >>> name, fn([2, 1], [2, 0])
        ('accuracy', 0.5)
    """
    found = as_metric(metric)
    return found.name, found


# Parts of a function's name that say which way it improves (for ``as_metric(fn)``): 'score' is not one,
# since a score may be either ('f1_score' up, 'brier_score' down); a whole name that History knows, or a
# built-in metric's name, is read first.
_LARGER_BETTER = ("acc", "auc", "f1", "precision", "recall", "r2", "iou", "dice")
_SMALLER_BETTER = ("loss", "error", "err", "mse", "mae", "rmse", "mape", "perplexity", "distance", "brier")


def _direction_from_name(name: str) -> bool | None:
    """True (larger is better), False (smaller), or None when the name does not say."""
    lowered = name.lower()
    found = _lookup(lowered)
    if found is not None:
        return found.greater_is_better
    if _higher_is_better_name(lowered):
        return True
    larger = any(word in lowered for word in _LARGER_BETTER)
    smaller = any(word in lowered for word in _SMALLER_BETTER)
    return None if larger == smaller else larger


def _higher_is_better_name(name: str) -> bool:
    # History's whole-name rule, so a monitor's 'auto' and History.best pick the same epoch; imported
    # here, not at the top, because history.py imports this module
    from .history import higher_is_better_name

    return higher_is_better_name(name)


def greater_is_better(monitor: str, metrics: Mapping[str, Metric] | None = None) -> bool:
    """Whether a larger value of the logged quantity ``monitor`` (e.g. 'val_accuracy') is better.

    The ``val_`` prefix is ignored. The answer comes from the metric of that name in ``metrics``
    (those a fit computes), else from the built-in metric of that name (any spelling: 'AUC',
    'roc_auc_score'), else from History's rule for names
    (:func:`~downslope.train.history.higher_is_better_name`: whole names such as 'f1_macro', 'iou',
    'explained_variance' are better when larger). Anything else -- the loss, 'brier_score', 'my_score',
    a name no list knows -- is better when smaller: a part of a name is not read (Keras 2 read suffixes
    'acc'/'accuracy'/'auc'; Keras 3 refuses names its compiled metrics do not describe).

    Example:
        >>> greater_is_better("val_accuracy"), greater_is_better("val_loss"), greater_is_better("val_brier_score")
        (True, False, False)
    """
    base = monitor[4:] if monitor.startswith("val_") else monitor
    if metrics is not None and base in metrics:
        return metrics[base].greater_is_better
    found = _lookup(base)
    if found is not None:
        return found.greater_is_better
    return _higher_is_better_name(base)
