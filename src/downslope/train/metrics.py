"""Metrics: numbers that say how good predictions are, computed from whole epochs of predictions.

Every metric is ``metric(preds, target) -> float`` — predictions first, like PyTorch losses and
torchmetrics (scikit-learn puts the truth first). A plain function written Keras' way, ``fn(y_true,
y_pred)`` (those parameter names: :func:`keras_order`), is called with the truth first, as Keras calls it. Both may be Tensors or arrays. They are summaries for
people, not differentiable losses: they run in float64 on NumPy arrays.

Classification predictions may be class scores/logits ``(N, C)`` (the arg-max is the prediction),
labels ``(N,)`` (integers), or one column of binary scores ``(N,)``/``(N, 1)`` cut at ``threshold``:
a score is class 1 when ``score > threshold``, as Keras cuts it (0.5 for probabilities; ``fit`` and
``evaluate`` cut at 0 when the loss is ``BCEWithLogitsLoss``, whose model outputs logits, so a logit
of exactly 0 is class 0). Integer (or boolean) predictions of one column are labels. A column of
floats is read as labels only when no ``threshold`` is given and every value is a whole number
(labels stored as floats, ``[0., 2., 1.]``); with a threshold given (as fit and evaluate always give
one) a column of floats is always cut, whole numbers or not. Targets are class labels ``(N,)``, or
one-hot rows / class probabilities ``(N, C)`` (the arg-max is the class, as Keras's categorical
accuracy reads them).

Precision, recall and F1 average as scikit-learn and Keras do by default: for a binary task (one
score column, two class-score columns, or labels all in {0, 1}) the value is the positive class's
(class 1, scikit-learn's ``average='binary'``, what Keras' ``Precision`` and ``Recall`` give); for
more classes the unweighted mean over the classes present ('macro'); for multi-label targets the
micro average. ``average=None`` gives the per-class values as an array, as scikit-learn.

``ignore_index`` (accuracy, precision, recall, f1): targets equal to it are left out, as
torchmetrics' ``ignore_index`` (Keras has no such option); fit and evaluate pass the loss's own
(``CrossEntropyLoss(ignore_index=...)``, ``NLLLoss``), so the metrics score the rows the loss scores.

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
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from functools import partial
from typing import Any

import numpy as np

from ..devices import to_host
from ..errors import ArgumentTypeError, ConfigError, DataError, ShapeError
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
        # the metric weighted by sample weights its own way, ``weighed(preds, target, weights) -> float``
        # (scikit-learn's ``sample_weight``: weighted counts for F1, weighted pairs for AUC): what
        # weighted_metrics uses for a metric that is not a mean over samples; None: per_sample or refused
        self.weighed: Callable[[Any, Any, np.ndarray], float] | None = None
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


class _Checking(threading.local):
    active = False


_CHECKING = _Checking()


@contextmanager
def quiet_check() -> Iterator[None]:
    """Metrics computed inside are a trial (fit checks each metric on its first batch before training):
    the warning that a threshold was guessed is neither shown nor counted as said, so the epoch's own
    computation shows it once."""
    before = _CHECKING.active
    _CHECKING.active = True
    try:
        yield
    finally:
        _CHECKING.active = before


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
    if _CHECKING.active:  # a trial computation (see quiet_check): the real one says it
        return 0.5
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


def _labels(
    preds: Any, target: Any, threshold: Threshold | None, where: str, ignore_index: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Predicted and true class labels, one per sample (those whose target is ``ignore_index`` left out).
    ``threshold`` None: a column of whole floats is labels, any other column of floats is cut at 0.5."""
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
    if p.ndim > 2 or (p.ndim == 2 and p.shape[1] < 1):
        raise ShapeError(f"{where}: preds must be (N, C) scores or (N,) labels/scores, got {tuple(p.shape)}")
    kept = _kept(target, ignore_index)
    if kept is not None:
        p, t = p[kept], t[kept]
    if p.ndim == 2 and p.shape[1] > 1:
        return np.argmax(p, axis=1), t
    if p.ndim == 2:
        p = p[:, 0]
    if p.dtype.kind == "f" and (threshold is not None or not _whole(p)):
        # one column of binary scores: class 1 above the cut, as Keras (a score at the cut is class 0)
        return (p > _cut(p, 0.5 if threshold is None else threshold, where)).astype(np.int64), t
    return p.astype(np.int64), t


def _kept(target: Any, ignore_index: int | None) -> np.ndarray | None:
    """The samples whose class-label target is not ``ignore_index`` (a mask), or None when all are kept
    (no ``ignore_index``, none ignored, or targets that are not labels: one-hot rows have no index to ignore)."""
    if ignore_index is None:
        return None
    t = _array(target, "target", "ignore_index")
    if t.ndim == 2 and t.shape[1] == 1:
        t = t[:, 0]
    if t.ndim != 1:
        return None
    kept = t != ignore_index
    return None if kept.all() else kept


def _whole(p: np.ndarray) -> bool:
    """Whether every value of ``p`` is a whole number (floats holding labels)."""
    with np.errstate(invalid="ignore"):
        return bool(np.all(p == np.round(p)))


def _binary_task(many_columns: bool, classes: np.ndarray) -> bool:
    """Whether a task is binary, as scikit-learn tells it from the labels: the predicted and true labels
    (``classes``, their union) all in {0, 1}, and the predictions not scores of more than two classes
    (``many_columns``: (N, C > 2), a multi-class model whatever classes a batch holds)."""
    with np.errstate(invalid="ignore"):
        return not many_columns and bool(np.all((classes == 0) | (classes == 1)))


def accuracy(
    preds: Any,
    target: Any,
    top_k: int = 1,
    threshold: Threshold | None = None,
    multilabel: bool | None = None,
    ignore_index: int | None = None,
) -> float:
    """Fraction of samples whose class is predicted: the arg-max of class scores (the first of tied scores,
    as Keras' accuracy); ``top_k`` > 1: the class is among the k highest scores, a score tied with the k-th
    highest counting, as TensorFlow's ``in_top_k`` in Keras' top-k metrics (a non-finite score never does).

    One column of scores is cut at ``threshold`` (``score > threshold``; 0.5 when not given, see the
    module's docstring). Multi-label targets (see the module's docstring; ``multilabel=True`` says so,
    False never reads them so) give the fraction of correct labels over all samples and labels, Keras'
    ``binary_accuracy``. ``ignore_index``: samples whose target is it are left out (torchmetrics'
    option; NaN when every sample is left out).

    Example:
        >>> accuracy([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]], [1, 0, 0])
        0.6666666666666666
        >>> accuracy([[0.9, 0.8], [0.2, 0.7]], [[1, 1], [0, 0]])  # multi-label: 3 of 4 labels right
        0.75
    """
    if isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or top_k < 1:
        raise ConfigError(f"accuracy: top_k must be a positive integer, got {top_k!r}")
    if top_k == 1:
        hits = _accuracy_per_sample(preds, target, threshold, multilabel, ignore_index)
        return float(np.mean(hits)) if len(hits) else float("nan")
    p = _array(preds, "preds", "accuracy")
    t = _array(target, "target", "accuracy").reshape(-1)
    if p.ndim != 2 or p.shape[0] != t.shape[0]:
        raise ShapeError(
            f"accuracy(top_k={top_k}): expected preds (N, C) scores for target (N,), got {p.shape} and {t.shape}"
        )
    if ignore_index is not None:
        kept = t != ignore_index
        p, t = p[kept], t[kept]
        if not len(t):
            return float("nan")
    return float(np.mean(_in_top_k(p, t, int(top_k))))


def _in_top_k(p: np.ndarray, t: np.ndarray, k: int) -> np.ndarray:
    """Whether each row's target class is among its ``k`` highest scores, as TensorFlow's ``in_top_k``:
    fewer than ``k`` scores strictly above the target's (ties at the k-th place count); a target that is
    not a class index of the row, or whose score is not finite, is a miss."""
    valid = (t >= 0) & (t < p.shape[1]) & (t == np.round(t))
    index = np.where(valid, t, 0).astype(np.int64)
    at = p[np.arange(len(t)), index]
    with np.errstate(invalid="ignore"):
        above = np.count_nonzero(p > at[:, None], axis=1)
        return valid & np.isfinite(at) & (above < k)


def _accuracy_per_sample(
    preds: Any,
    target: Any,
    threshold: Threshold | None = None,
    multilabel: bool | None = None,
    ignore_index: int | None = None,
) -> np.ndarray:
    """:func:`accuracy` (top 1) of each sample: 1.0 or 0.0, or its fraction of correct labels (multi-label);
    samples whose target is ``ignore_index`` are left out."""
    p, t = _array(preds, "preds", "accuracy"), _array(target, "target", "accuracy")
    if _multilabel(p, t, multilabel, "accuracy"):
        predicted, actual = _multilabel_pair(p, t, 0.5 if threshold is None else threshold, "accuracy")
        return np.mean(predicted == actual, axis=1)
    labels, t = _labels(preds, target, threshold, "accuracy", ignore_index)
    return (labels == t).astype(np.float64)


def _weighted_accuracy(
    preds: Any, target: Any, weights: np.ndarray, ignore_index: int | None = None, **options: Any
) -> float:
    """:func:`accuracy` as a mean weighted by the samples' ``weights`` (those of ignored targets left out)."""
    hits = _accuracy_per_sample(preds, target, ignore_index=ignore_index, **options)
    w = np.asarray(weights, np.float64).reshape(-1)
    kept = _kept(target, ignore_index)
    if kept is not None:
        w = w[kept]
    total = float(w.sum())
    return float((hits * w).sum() / total) if total else 0.0


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
    among the ``k`` highest scores (k=5 as Keras; ties with the k-th highest count, as TensorFlow's
    ``in_top_k``, for k=1 too).

    Example:
        >>> top_k_categorical_accuracy([[0.5, 0.3, 0.2], [0.1, 0.2, 0.7]], [[0, 1, 0], [1, 0, 0]], k=2)
        0.5
    """
    p = _class_scores(preds, "top_k_categorical_accuracy")
    return float(np.mean(_in_top_k(p, _one_hot_classes(p, target, "top_k_categorical_accuracy"), _k(k))))


def sparse_top_k_categorical_accuracy(preds: Any, target: Any, k: int = 5) -> float:
    """Keras' ``sparse_top_k_categorical_accuracy``: the fraction of rows whose class index is among the
    ``k`` highest scores (k=5 as Keras; ties with the k-th highest count, as TensorFlow's ``in_top_k``).

    Example:
        >>> sparse_top_k_categorical_accuracy([[0.5, 0.3, 0.2], [0.1, 0.2, 0.7]], [1, 0], k=2)
        0.5
    """
    p = _class_scores(preds, "sparse_top_k_categorical_accuracy")
    return float(np.mean(_in_top_k(p, _sparse_classes(p, target, "sparse_top_k_categorical_accuracy"), _k(k))))


def _k(k: Any) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ConfigError(f"top_k_categorical_accuracy: k must be a positive integer, got {k!r}")
    return int(k)


class _Counts:
    """Per class (per label for multi-label targets) true positives, predicted and actual counts (sums of
    sample weights when weighted), the classes they are of, and the task: 'multilabel', 'binary' (see
    :func:`_binary_task`) or 'multiclass'."""

    def __init__(
        self, tp: np.ndarray, predicted: np.ndarray, actual: np.ndarray, classes: np.ndarray, kind: str
    ) -> None:
        self.tp, self.predicted, self.actual, self.classes, self.kind = tp, predicted, actual, classes, kind

    def value(self, metric: str, average: str | None) -> Any:
        """``metric`` ('precision', 'recall' or 'f1_score') averaged as ``average`` says (see the module's
        docstring; None: the per-class values as an array)."""
        num, den = {
            "precision": (self.tp, self.predicted),
            "recall": (self.tp, self.actual),
            "f1_score": (2 * self.tp, self.predicted + self.actual),
        }[metric]
        average = _resolved_average(average, self.kind, metric)
        if average == "micro":
            return _micro(num, den)
        if average == "binary":  # the positive class 1 (0 when absent, scikit-learn's zero_division=0)
            at = np.flatnonzero(self.classes == 1)
            return float(_safe_div(num[at], den[at])[0]) if len(at) else 0.0
        per_class = _safe_div(num, den)
        if average is None:
            return per_class
        return _average(per_class, self.actual, average, metric)


_AVERAGES = ("auto", "binary", "micro", "macro", "weighted", None)


def _resolved_average(average: str | None, kind: str, where: str) -> str | None:
    """``average`` as computed: 'auto' (the default) is 'binary' for a binary task, 'micro' for multi-label
    targets and 'macro' for more classes; 'binary' is refused on other tasks, as scikit-learn refuses it."""
    if average not in _AVERAGES:
        raise ConfigError(
            f"{where}: average must be 'binary', 'micro', 'macro', 'weighted', None (per class) or 'auto', "
            f"got {average!r}"
        )
    if average == "auto":
        return {"multilabel": "micro", "binary": "binary", "multiclass": "macro"}[kind]
    if average == "binary" and kind != "binary":
        seen = "multilabel-indicator" if kind == "multilabel" else "multiclass"
        raise ConfigError(
            f"{where}: Target is {seen} but average='binary'. Please choose another average setting, one of "
            "[None, 'micro', 'macro', 'weighted']."
        )
    return average


def _confusion_counts(
    preds: Any,
    target: Any,
    threshold: Threshold | None,
    where: str,
    multilabel: bool | None = None,
    ignore_index: int | None = None,
    sample_weight: Any = None,
) -> _Counts:
    """Per-class counts of ``preds`` against ``target`` (see :class:`_Counts`): one pass over the samples
    whatever the number of classes (each sample's class pair is counted by ``bincount``)."""
    p, t_raw = _array(preds, "preds", where), _array(target, "target", where)
    w = None if sample_weight is None else _sample_weights(sample_weight, len(p), where)
    if _multilabel(p, t_raw, multilabel, where):
        predicted_labels, actual_labels = _multilabel_pair(p, t_raw, 0.5 if threshold is None else threshold, where)
        ww = np.ones((len(p), 1)) if w is None else w[:, None]
        tp, predicted, actual = (
            np.asarray(np.sum(ww * m, axis=0, dtype=np.float64))
            for m in (predicted_labels & actual_labels, predicted_labels, actual_labels)
        )
        return _Counts(tp, predicted, actual, np.arange(p.shape[1]), "multilabel")
    labels, t = _labels(preds, target, threshold, where, ignore_index)
    if w is not None:
        kept = _kept(target, ignore_index)
        w = w if kept is None else w[kept]
    classes, codes = np.unique(np.concatenate([labels, t]), return_inverse=True)
    predicted_codes, actual_codes = codes[: len(labels)], codes[len(labels) :]
    hit = predicted_codes == actual_codes
    size = len(classes)
    counted = [
        np.bincount(predicted_codes[hit], weights=None if w is None else w[hit], minlength=size),
        np.bincount(predicted_codes, weights=w, minlength=size),
        np.bincount(actual_codes, weights=w, minlength=size),
    ]
    tp, predicted, actual = (c.astype(np.float64) for c in counted)
    kind = "binary" if _binary_task(p.ndim == 2 and p.shape[1] > 2, classes) else "multiclass"
    return _Counts(tp, predicted, actual, classes, kind)


def _sample_weights(sample_weight: Any, n: int, where: str) -> np.ndarray:
    """One float64 weight per sample, checked."""
    w = _array(sample_weight, "sample_weight", where).astype(np.float64).reshape(-1)
    if len(w) != n:
        raise ShapeError(f"{where}: sample_weight must hold one weight per sample ({n}), got {len(w)}")
    return w


def _safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    # scikit-learn's zero_division=0: a class never predicted (or never present) scores 0.
    return np.divide(num, den, out=np.zeros_like(num, dtype=np.float64), where=den > 0)


def _average(per_class: np.ndarray, actual: np.ndarray, average: str, where: str) -> float:
    if average == "macro":
        return float(per_class.mean()) if len(per_class) else 0.0
    if average == "weighted":
        return float(_safe_div(np.sum(per_class * actual), np.sum(actual)))
    raise ConfigError(f"{where}: average must be 'binary', 'macro', 'weighted' or 'micro', got {average!r}")


def _micro(num: np.ndarray, den: np.ndarray) -> float:
    return float(_safe_div(np.asarray(num.sum()), np.asarray(den.sum())))


_AVERAGE_DOC = """``average``: 'auto' (the default) is 'binary' for a binary task (one score column, two class-score
    columns, or labels in {0, 1}: the positive class 1's value, as scikit-learn's default and Keras'
    ``Precision``/``Recall``), 'macro' (the unweighted mean over the classes present) for more classes,
    and 'micro' for multi-label targets; 'micro', 'macro', 'weighted' as scikit-learn's; None gives the
    per-class values (an array, over the classes present in order). ``threshold`` cuts one column of
    scores (``score > threshold``), ``ignore_index`` leaves out the samples whose target is it, and
    ``sample_weight`` weighs each sample's counts (scikit-learn's)."""


def _counted_metric(name: str, doc: str) -> Callable[..., Any]:
    """The public function ``name`` ('precision', 'recall' or 'f1_score'): the same arguments and per-class
    counts for the three, each its own share of them (see ``_Counts.value``); ``doc``'s ``{average}``
    is filled in with the options they share."""

    def metric(
        preds: Any,
        target: Any,
        average: str | None = "auto",
        threshold: Threshold | None = None,
        multilabel: bool | None = None,
        ignore_index: int | None = None,
        sample_weight: Any = None,
    ) -> Any:
        counts = _confusion_counts(preds, target, threshold, name, multilabel, ignore_index, sample_weight)
        return counts.value(name, average)

    metric.__name__ = metric.__qualname__ = name
    metric.__doc__ = doc.replace("{average}", _AVERAGE_DOC)
    return metric


precision = _counted_metric(
    "precision",
    """Precision TP / (TP + FP): of the samples predicted as a class, the share that are of it.

    {average}

    Example:
        >>> round(precision([0.9, 0.8, 0.2, 0.7], [1, 0, 0, 1]), 4)  # binary: class 1's precision
        0.6667
        >>> precision([0, 1, 1, 2], [0, 1, 2, 2])  # three classes: the macro average
        0.8333333333333334
    """,
)
recall = _counted_metric(
    "recall",
    """Recall TP / (TP + FN): of the samples of a class, the share predicted as it.

    {average}

    Example:
        >>> recall([0.9, 0.8, 0.2, 0.1], [1, 0, 0, 1])  # binary: class 1's recall
        0.5
        >>> recall([0, 1, 1, 2], [0, 1, 2, 2])  # three classes: the macro average
        0.8333333333333334
    """,
)
f1_score = _counted_metric(
    "f1_score",
    """F1, the harmonic mean of precision and recall (2 TP / (2 TP + FP + FN)).

    {average}

    Example:
        >>> round(f1_score([0.9, 0.8, 0.2, 0.1], [1, 0, 0, 1]), 4)  # binary: class 1's F1
        0.5
        >>> round(f1_score([0, 1, 1, 2], [0, 1, 2, 2]), 4)  # three classes: the macro average
        0.7778
    """,
)


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

    A constant target scores 1.0 when predicted exactly and 0.0 otherwise (scikit-learn's choice); one
    sample gives NaN (scikit-learn's too).

    Example:
        >>> r2_score([1.0, 2.0, 3.0], [1.0, 2.0, 4.0])
        0.7857142857142857
    """
    p, t = _regression_pair(preds, target, "r2_score")
    if len(p) < 2:  # one sample has no variance to explain: undefined, as scikit-learn says
        return float("nan")
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


class NonFiniteScoresError(DataError):
    """Scores holding NaN or infinity given to a ranking metric (AUC, average precision), which cannot
    rank them. fit scores an epoch that diverged as NaN instead of raising this."""


def _finite_scores(p: np.ndarray, where: str) -> None:
    """Refuse NaN or infinite scores, as scikit-learn does: a NaN ranks above every number when sorted, so
    a model that outputs NaN for some rows would otherwise get a plausible-looking area."""
    if np.isfinite(p).all():
        return
    what = "NaN" if np.isnan(p).any() else "infinity or a value too large for dtype('float64')"
    raise NonFiniteScoresError(f"{where}: Input contains {what}: the scores (preds) must be finite numbers")


def _binary_scores(
    preds: Any, target: Any, where: str, note: str = "", sample_weight: Any = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """``(scores, labels, weights)`` as 1-d float64 scores and 0/1 labels of one binary problem: a score per
    sample given as (N,), (N, 1) or (N, 2) (class scores: probabilities or logits rank alike by the second
    minus the first), labels as (N,), (N, 1) or one-hot rows (N, 2) (the second column is the positive
    class); anything else refused, ``note`` added to the shape error. NaN or infinite scores are refused."""
    p = _array(preds, "preds", where).astype(np.float64)
    t = _array(target, "target", where)
    if t.ndim == 2 and t.shape[1] == 1:
        t = t[:, 0]
    elif t.ndim == 2 and t.shape[1] == 2 and p.ndim == 2 and p.shape[1] == 2:
        if not np.all(t.sum(axis=1) == 1):
            raise ConfigError(f"{where}: two target columns must be one-hot rows (one 1 per row) of a binary task")
        t = t[:, 1]
    if p.ndim == 2 and p.shape[1] == 2:
        p = p[:, 1] - p[:, 0]
    elif p.ndim == 2 and p.shape[1] == 1:
        p = p[:, 0]
    if p.ndim != 1 or t.ndim != 1 or len(p) != len(t):
        raise ShapeError(
            f"{where}: expected one binary score per sample ((N,), (N, 1) or (N, 2)) and (N,) labels (or (N, 2) "
            f"one-hot rows), got preds {_array(preds, 'preds', where).shape} and target "
            f"{tuple(_array(target, 'target', where).shape)}{note}"
        )
    _finite_scores(p, where)
    labels = np.unique(t)
    if not np.all(np.isin(labels, (0, 1))):
        raise ConfigError(f"{where}: targets must be binary labels 0/1, got values {labels[:5].tolist()}")
    w = None if sample_weight is None else _sample_weights(sample_weight, len(p), where)
    return p, t, w


def _weighted_auc(p: np.ndarray, positive: np.ndarray, w: np.ndarray) -> float:
    """The area under the ROC curve of scores ``p`` with sample weights ``w``: the weighted share of
    (positive, negative) pairs ranked right, ties a half (the trapezoids under scikit-learn's weighted
    ROC curve)."""
    w_pos, w_neg = np.where(positive, w, 0.0), np.where(positive, 0.0, w)
    total_pos, total_neg = w_pos.sum(), w_neg.sum()
    if total_pos <= 0 or total_neg <= 0:
        return float("nan")
    scores, codes = np.unique(p, return_inverse=True)  # the distinct scores, ascending
    pos_at = np.bincount(codes, weights=w_pos, minlength=len(scores))
    neg_at = np.bincount(codes, weights=w_neg, minlength=len(scores))
    below = np.cumsum(neg_at) - neg_at  # the negatives' weight under each distinct score
    return float(np.sum(pos_at * (below + neg_at / 2.0)) / (total_pos * total_neg))


def _multiclass_auc(p: np.ndarray, target: Any, where: str, sample_weight: Any) -> float:
    """scikit-learn's ``roc_auc_score(multi_class='ovr', average='macro')``: each class's AUC against the
    rest, from its column of probabilities, averaged; NaN when a class is absent from the targets."""
    t = _array(target, "target", where)
    if t.ndim == 2 and t.shape[1] == 1:
        t = t[:, 0]
    elif t.shape == p.shape:
        t = np.argmax(t, axis=1)  # one-hot rows
    if t.ndim != 1 or len(t) != len(p):
        raise ShapeError(
            f"{where}: expected class labels (N,) or one-hot rows for preds {tuple(p.shape)}, got {tuple(t.shape)}"
        )
    _finite_scores(p, where)
    if not np.allclose(p.sum(axis=1), 1.0):
        raise ConfigError(
            f"{where}: Target scores need to be probabilities for multiclass roc_auc, i.e. they should sum up to "
            f"1.0 over classes: the one-vs-rest AUC of {p.shape[1]} classes ranks each class's probability, so "
            "apply a softmax to logits (or end the model with nn.Softmax)"
        )
    if not np.all(np.isin(t, np.arange(p.shape[1]))):
        raise ConfigError(
            f"{where}: targets must be class indices 0..{p.shape[1] - 1} of the {p.shape[1]} score columns, got "
            f"values {np.unique(t)[:5].tolist()}"
        )
    areas = [roc_auc_score(p[:, c], (t == c).astype(np.int64), sample_weight=sample_weight) for c in range(p.shape[1])]
    return float(np.mean(areas))


def roc_auc_score(preds: Any, target: Any, sample_weight: Any = None) -> float:
    """Area under the ROC curve of binary scores, exactly as scikit-learn's ``roc_auc_score`` (the
    Mann-Whitney U statistic with average ranks for ties), not Keras' ``AUC`` (its 200 thresholds
    approximate this number). ``preds``: one score per sample ((N,) or (N, 1): probabilities or
    logits, the order is what counts) or two columns of class scores (the second against the first);
    ``target``: labels 0/1, or one-hot rows (N, 2). Probabilities of more classes (N, C > 2) give the
    macro one-vs-rest AUC, scikit-learn's ``multi_class='ovr'`` (they must sum to 1 per row, as
    scikit-learn requires). ``sample_weight``: scikit-learn's. NaN when the targets hold one class only
    (a class absent, for more classes; scikit-learn raises there; an epoch's numbers should not stop
    training). NaN or infinite scores are refused, as scikit-learn refuses them.

    Example:
        >>> roc_auc_score([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1])
        0.75
    """
    p_all = _array(preds, "preds", "roc_auc_score")
    if p_all.ndim == 2 and p_all.shape[1] > 2:
        return _multiclass_auc(p_all.astype(np.float64), target, "roc_auc_score", sample_weight)
    p, t, w = _binary_scores(preds, target, "roc_auc_score", "", sample_weight)
    positive = t == 1
    if w is not None:
        return _weighted_auc(p, positive, w)
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


def average_precision_score(preds: Any, target: Any, sample_weight: Any = None) -> float:
    """Average precision of binary scores (the area under the precision-recall curve as a step sum),
    exactly as scikit-learn's ``average_precision_score``: ``sum_n (R_n - R_{n-1}) P_n`` over the distinct
    scores taken as thresholds from the highest down (equal scores are one threshold). Beside the ROC AUC,
    it is the score for a rare positive class: always about the positives' share for scores that know
    nothing, however many negatives there are. ``preds`` and ``target`` as :func:`roc_auc_score`'s binary
    ones; ``sample_weight``: scikit-learn's. NaN when the targets hold no positive (scikit-learn warns and
    returns 0 there, a number that looks like a score); NaN or infinite scores are refused.

    Example:
        >>> round(average_precision_score([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]), 6)
        0.833333
    """
    p, t, w = _binary_scores(
        preds, target, "average_precision_score", " (a multi-class average precision is not built in)", sample_weight
    )
    order = np.argsort(-p, kind="mergesort")
    positive = (t == 1)[order]
    ranked = p[order]
    # the last position of each run of equal scores: one threshold per distinct score
    last = np.r_[np.flatnonzero(ranked[1:] != ranked[:-1]), len(p) - 1]
    if w is not None:
        weight = w[order]
        true_pos = np.cumsum(weight * positive)[last]
        seen = np.cumsum(weight)[last]
        total = true_pos[-1] if len(true_pos) else 0.0
        if total <= 0:
            return float("nan")
        precision = _safe_div(true_pos, seen)
        return float(np.sum(np.diff(np.r_[0.0, true_pos]) / total * precision))
    n_pos = int(positive.sum())
    if n_pos == 0:
        return float("nan")
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
    classes are those seen in any batch so far, as ``np.unique`` over the batches joined gives them, and the
    task (binary or not) is told from them as it is from the batches joined."""

    def __init__(
        self,
        kind: str,
        average: str | None = "auto",
        threshold: Threshold | None = None,
        multilabel: bool | None = None,
        ignore_index: int | None = None,
    ):
        self.kind, self.average, self.threshold, self.multilabel = kind, average, threshold, multilabel
        self.ignore_index = ignore_index
        self.counts: _Counts | None = None
        self.label_mode: str | None = None  # how one column of floats was read: 'cut' or 'labels'

    def add(self, preds: Any, target: Any) -> bool:
        if isinstance(self.threshold, (str, GuessedThreshold)):
            return False  # 'auto' cuts at 0 or 0.5 by every score of the epoch so far
        p, t = _array(preds, "preds", self.kind), _array(target, "target", self.kind)
        multi = _multilabel(p, t, self.multilabel, self.kind)
        if self.multilabel is None and self.counts is not None and multi != (self.counts.kind == "multilabel"):
            return False  # a batch of one-hot rows beside one of several labels: read as joined only
        if self.threshold is None and not multi and p.dtype.kind == "f" and (p.ndim == 1 or p.shape[1] == 1):
            # without a threshold one column of floats is read as labels when every score of the epoch is
            # whole, else cut at 0.5: a batch of only 0 and 1 reads alike either way; otherwise every batch
            # must read as the joined scores would
            whole = _whole(p)
            mode: str | None = "labels" if whole else "cut"
            if whole and bool(np.all((p == 0) | (p == 1))):
                mode = None
            if mode is not None:
                if self.label_mode not in (None, mode):
                    return False
                self.label_mode = mode
        counts = _confusion_counts(p, t, self.threshold, self.kind, self.multilabel, self.ignore_index)
        if self.counts is None:
            self.counts = counts
            return True
        old = self.counts
        if counts.kind == "multilabel":
            if counts.tp.shape != old.tp.shape:
                return False
            self.counts = _Counts(old.tp + counts.tp, old.predicted + counts.predicted, old.actual + counts.actual,
                                  old.classes, "multilabel")  # fmt: skip
            return True
        joined = np.union1d(old.classes, counts.classes)
        total = np.zeros((3, len(joined)), dtype=np.float64)
        for part in (old, counts):
            total[:, np.searchsorted(joined, part.classes)] += np.stack([part.tp, part.predicted, part.actual])
        # binary as the batches joined would be: predictions not of more than two class columns (every
        # batch has the same columns) and the classes so far all 0 or 1
        binary = _binary_task(p.ndim == 2 and p.shape[1] > 2, joined)
        self.counts = _Counts(total[0], total[1], total[2], joined, "binary" if binary else "multiclass")
        return True

    def so_far(self) -> Callable[[], float]:
        assert self.counts is not None
        value = self.counts.value(self.kind, self.average)
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
        p_all = _array(preds, "preds", "roc_auc_score")
        if p_all.ndim == 2 and p_all.shape[1] > 2:
            return False  # several classes: computed over the batches joined
        p, t, _ = _binary_scores(preds, target, "roc_auc_score")
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
        p, t, _ = _binary_scores(preds, target, "average_precision_score")
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
for _name in ("precision", "recall", "f1", "auc", "average_precision"):
    _BY_NAME[_name].weighed = partial(lambda fn, p, t, w: fn(p, t, sample_weight=w), _BY_NAME[_name].fn)

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


class _RunningHits(RunningMetric):
    """Accuracy that leaves out ignored targets, over the batches so far: hits and kept samples summed (a
    batch whose targets are all ignored adds nothing)."""

    def __init__(self, **options: Any) -> None:
        self.options = options
        self.hits = self.count = 0.0

    def add(self, preds: Any, target: Any) -> bool:
        p = _array(preds, "preds", "accuracy")
        threshold = self.options.get("threshold")
        if (threshold is None or isinstance(threshold, (str, GuessedThreshold))) and (p.ndim == 1 or p.shape[1] == 1):
            return False  # a column of scores read by all the epoch's scores at once: joined only
        hits = _accuracy_per_sample(preds, target, **self.options)
        self.hits += float(hits.sum())
        self.count += len(hits)
        return True

    def so_far(self) -> Callable[[], float]:
        value = self.hits / self.count if self.count else float("nan")
        return lambda: value


def _with_options(metric: Metric, **options: Any) -> Metric:
    fn: Callable[..., float] = metric.fn

    def with_options(preds: Any, target: Any, **more: Any) -> float:
        return fn(preds, target, **options, **more)

    ignoring = options.get("ignore_index") is not None
    # accuracy leaving out ignored targets is a mean over the kept samples only: not a batch-size mean
    made = _builtin(with_options, metric.name, metric.greater_is_better, metric.sample_mean and not ignoring)
    per_sample = metric.per_sample
    if per_sample is not None and not ignoring:
        made.per_sample = lambda preds, target: per_sample(preds, target, **options)
    if metric.weighed is not None:
        made.weighed = lambda preds, target, weights: with_options(preds, target, sample_weight=weights)
    if metric.name in _RUNNING_COUNTS:
        made.running = partial(_RunningCounts, _RUNNING_COUNTS[metric.name], **options)
    if metric.name == "accuracy" and ignoring:
        made.weighed = lambda preds, target, weights: _weighted_accuracy(preds, target, weights, **options)
        made.running = partial(_RunningHits, **options)
    return made


def adapt_to_loss(
    metric: Metric, threshold: Threshold = 0.5, multilabel: bool | None = None, ignore_index: int | None = None
) -> Metric:
    """The built-in ``metric`` reading the model's outputs as fit's loss says: scores cut at ``threshold``
    (0 for logits, 0.5 for probabilities, ``"auto"`` for a loss fit cannot read: see the module's
    docstring) and, with ``multilabel=True`` (a binary cross-entropy), ``(N, C)`` 0/1 targets as C
    labels even when every row holds one 1; ``ignore_index`` (the loss's, ``CrossEntropyLoss``'s):
    accuracy, precision, recall and f1 leave out the samples whose target is it, as the loss does.
    Metrics other than the built-in accuracy, binary_accuracy, precision, recall and f1 are returned as
    they are (so is a metric made by :func:`with_threshold`).

    Example:
        >>> adapt_to_loss(as_metric("accuracy"), threshold=0.0)([[-0.3], [0.2]], [0, 1])
        1.0
        >>> adapt_to_loss(as_metric("accuracy"), ignore_index=-100)([[0.2, 0.8], [0.9, 0.1]], [1, -100])
        1.0
    """
    if metric.name not in _THRESHOLDED or metric is not _BY_NAME[metric.name]:
        return metric
    options: dict[str, Any] = {}
    if isinstance(threshold, (str, GuessedThreshold)) or threshold != 0.5:
        options["threshold"] = threshold
    if multilabel is not None and metric.name != "binary_accuracy":
        options["multilabel"] = multilabel
    if ignore_index is not None and metric.name != "binary_accuracy":
        options["ignore_index"] = int(ignore_index)
    return _with_options(metric, **options) if options else metric


def _softmax_rows(scores: np.ndarray) -> np.ndarray:
    z = scores - scores.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def of_class_logits(metric: Metric) -> Metric:
    """The built-in ``auc`` reading scores of more than two classes as logits (or log-probabilities), as
    fit's loss says they are (``CrossEntropyLoss``, ``NLLLoss``, a Keras cross-entropy with ``from_logits``):
    the one-vs-rest AUC ranks each class's softmax probability, as scikit-learn's ``multi_class='ovr'``
    on ``softmax(logits)``. Any other metric is returned as it is.

    Example:
        >>> auc = of_class_logits(as_metric("auc"))
        >>> logits = [[2.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 2.0], [1.0, 0.0, 0.0]]
        >>> auc(logits, [0, 1, 2, 0])
        1.0
    """
    if metric is not _BY_NAME["auc"]:
        return metric
    fn: Callable[..., float] = metric.fn

    def probabilities(preds: Any) -> Any:
        p = _array(preds, "preds", "roc_auc_score")
        if p.ndim != 2 or p.shape[1] <= 2 or p.dtype.kind != "f":
            return preds  # one score column or two: the logits rank as the probabilities do
        with np.errstate(invalid="ignore", over="ignore"):
            return _softmax_rows(p.astype(np.float64))

    def auc_of_logits(preds: Any, target: Any, **more: Any) -> float:
        return fn(probabilities(preds), target, **more)

    made = _builtin(auc_of_logits, metric.name, metric.greater_is_better, metric.sample_mean)
    made.running = metric.running  # (one or two columns only: more are computed joined)
    made.weighed = lambda preds, target, weights: auc_of_logits(preds, target, sample_weight=weights)
    return made


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
    renamed.weighed = metric.weighed
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
