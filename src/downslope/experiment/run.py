"""The run itself: train as the config says, score the model, and the state a run directory keeps."""

from __future__ import annotations

import contextlib
import math
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import CheckpointError, ConfigError
from ..train.diagnostics import RisingLossWarning
from ..train.history import History
from ..train.protocols import LossFn, ModelLike
from .advice import DIVERGENCE_CAUSE, GAP_RATIO, crawl_note, divergence_note, generalisation_gap_note
from .checks import check_run_state
from .config import ARCHITECTURE_KEYS, DEFAULTS, resolve_run_device
from .inputs import Prepared, data_units, is_file_source, model_targets, prepare, training_data
from .models import balanced_class_weights, batch_size_of, build_loss, build_model, build_optimizer, build_scheduler

if TYPE_CHECKING:
    from ..nn.module import Module


@dataclass
class RunResult:
    cfg: dict[str, Any]
    history: History
    metrics: dict[str, Any]
    stop_reason: str
    seconds: float
    model: ModelLike
    data: Prepared
    out_dir: Path | None = None
    diagnostics: list[str] = field(default_factory=list)  # plain-words warnings from training
    gradients: Any = None  # the GradientDiagnostics callback (per-layer norms per epoch)
    # the (1-based) epoch whose weights the model holds when early stopping restored its best ones
    # at the end of training; None without early stopping
    weights_epoch: int | None = None


def score_model(model: ModelLike, data: Prepared, X: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    """Metrics of ``model`` on preprocessed features ``X`` and targets ``y`` in the data's units."""
    from ..data.dataset import LazyDataset
    from ..data.memmap import is_lazy
    from ..train import metrics as m
    from ..train import predict

    out = predict(model, LazyDataset(X) if is_lazy(X) else X)
    preds = out.numpy() if hasattr(out, "numpy") else np.asarray(out)
    if data.task == "classification":
        scores = {
            "accuracy": float(m.accuracy(preds, y)),
            "f1_macro": float(m.f1_score(preds, y, average="macro")),
            "precision_macro": float(m.precision(preds, y, average="macro")),
            "recall_macro": float(m.recall(preds, y, average="macro")),
        }
        return scores | classification_scores(preds, y, training_class_counts(data), data.class_names)
    preds = data_units(preds, data.preprocess)  # metrics in the data's own units
    return {
        "mse": float(m.mean_squared_error(preds, y)),
        "rmse": float(m.root_mean_squared_error(preds, y)),
        "mae": float(m.mean_absolute_error(preds, y)),
        "r2": float(m.r2_score(preds, y)),
    }


def training_class_counts(data: Prepared) -> np.ndarray | None:
    """How many training rows each class has: from the training split itself, or (a stored run, whose
    training rows are not at hand) the counts the run recorded; None when neither is known (a run
    written before the counts were recorded), so no baseline is computed from other rows.

    Example:
        >>> from downslope.experiment.inputs import Prepared
        >>> z = np.zeros((0, 1), np.float32)
        >>> d = Prepared(z, np.zeros(0), None, None, z, np.zeros(0), "classification", 1, 3, "d")
        >>> training_class_counts(d) is None, training_class_counts(Prepared(
        ...     z, np.zeros(0), None, None, z, np.zeros(0), "classification", 1, 3, "d",
        ...     split={"train_class_counts": [1, 5, 2]})).tolist()
        (True, [1, 5, 2])
    """
    if len(data.y_train):
        return np.bincount(np.asarray(data.y_train, dtype=np.int64).reshape(-1), minlength=data.n_outputs)
    stored = (data.split or {}).get("train_class_counts")
    if stored is None:
        return None
    return np.asarray(stored, dtype=np.int64).reshape(-1)


def roc_auc(y_true: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve of ``scores`` for binary labels ``y_true`` (1 = positive), by the
    Mann-Whitney U statistic on average ranks (ties count one half), as scikit-learn's
    ``roc_auc_score``; NaN when only one class is present.

    Example:
        >>> roc_auc(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8]))
        0.75
    """
    from ..train.metrics import roc_auc_score  # the one implementation (fit's "auc" metric)

    if not np.isfinite(np.asarray(scores, dtype=np.float64)).all():  # a diverged model: nothing to rank
        return float("nan")
    return roc_auc_score(np.asarray(scores).reshape(-1), (np.asarray(y_true).reshape(-1) == 1).astype(np.int64))


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def classification_scores(
    logits: np.ndarray, y: np.ndarray, train_counts: np.ndarray | None, class_names: list[str] | None = None
) -> dict[str, Any]:
    """What accuracy alone hides on imbalanced classes: ``balanced_accuracy`` (the mean recall over the
    classes present in ``y``, scikit-learn's ``balanced_accuracy_score``), ``baseline_accuracy`` (the
    accuracy of always predicting the training split's most frequent class, ``DummyClassifier``; its
    classes' row counts are ``train_counts``, and without them there is no baseline: the scored rows'
    own majority would flatter it) and ``roc_auc`` from the predicted probabilities (binary; macro
    one-vs-rest over the classes present in ``y`` for more classes; left out when ``y`` holds one class),
    with a binary target's ``average_precision`` (scikit-learn's ``average_precision_score``, the PR AUC)
    of the class named by ``positive_class``: the 1 of labels 0/1, -1/1 or false/true, else the rarer
    training class (:func:`~downslope.experiment.labels.positive_class`; ``class_names``: the run's classes,
    without them the outputs' indices 0 and 1; without ``train_counts``, the rarer class of ``y``).

    Example:
        >>> logits = np.array([[2.0, 0.0], [2.0, 0.0], [2.0, 0.0], [0.0, 1.0]])
        >>> classification_scores(logits, np.array([0, 0, 1, 1]), np.array([3, 1]))
        {'balanced_accuracy': 0.75, 'baseline_accuracy': 0.5, 'roc_auc': 0.75, 'average_precision': 0.75, 'positive_class': '1'}
        >>> classification_scores(logits, np.array([0, 0, 1, 1]), np.array([3, 1]), ["ok", "fraud"])["positive_class"]
        'fraud'
    """
    y = np.asarray(y, dtype=np.int64).reshape(-1)
    if not len(y):
        return {}
    logits = np.asarray(logits).reshape(len(y), -1)
    predicted = logits.argmax(axis=1)
    present = np.unique(y)
    recalls = [float((predicted[y == c] == c).mean()) for c in present]
    out: dict[str, Any] = {"balanced_accuracy": float(np.mean(recalls))}
    if train_counts is not None and len(train_counts) and np.asarray(train_counts).sum() > 0:
        out["baseline_accuracy"] = float((y == int(np.argmax(train_counts))).mean())
    if logits.shape[1] >= 2 and len(present) >= 2:
        probs = _softmax(logits)
        if logits.shape[1] == 2:
            # (the same for either class taken as positive: ranking by p1 or by p0 = 1 - p1 is one order)
            out["roc_auc"] = roc_auc((y == 1).astype(np.int64), probs[:, 1])
            from ..train.metrics import average_precision_score
            from .labels import positive_class

            names = [str(n) for n in class_names] if class_names and len(class_names) == 2 else ["0", "1"]
            counts = (
                train_counts if train_counts is not None and len(train_counts) >= 2 else np.bincount(y, minlength=2)
            )
            pos = positive_class(names, counts)
            # the precision-recall area: for a rare positive class, what ROC AUC's many easy negatives flatter;
            # it is not symmetric, so the class it is about is named beside it
            out["average_precision"] = (
                average_precision_score(probs[:, pos], (y == pos).astype(np.int64))
                if np.isfinite(probs[:, pos]).all()
                else float("nan")  # a diverged model: nothing to rank
            )
            out["positive_class"] = names[pos]
        else:
            out["roc_auc"] = float(np.mean([roc_auc((y == c).astype(np.int64), probs[:, c]) for c in present]))
    return out


def regression_warnings(
    data: Prepared, metrics: dict[str, Any], scale_target: bool = True, cause_known: bool = False
) -> list[str]:
    """Plain words when a regression's test r2 is at most 0: the model does no better than always
    predicting the training split's mean (scikit-learn's ``DummyRegressor``), whose r2 is about 0.

    Example:
        >>> from downslope.experiment.inputs import Prepared
        >>> z = np.array([[0.0], [1.0]], np.float32)
        >>> data = Prepared(z, z, None, None, z, z, "regression", 1, 1, "d")
        >>> regression_warnings(data, {"test_r2": -0.5})[0][:42]
        'the test r2 -0.5 is no better than 0, the '
    """
    r2 = metrics.get("test_r2")
    if data.task != "regression" or r2 is None or not math.isfinite(r2) or r2 > 0:
        return []
    if len(data.y_test) and float(np.ptp(np.asarray(data.y_test, np.float64))) == 0:
        return []  # a constant target: r2 says nothing (a note about the target says why)
    hint = (
        "; the warning above on the learning rate says why"
        if cause_known
        else "; the target was not standardized (--no-scale-target): in very small or large units a model cannot "
        "fit it, drop --no-scale-target"
        if not scale_target
        else "; the features may not predict the target, or the model needs other settings (look at the loss "
        "curves), or the test rows differ from the training rows"
    )
    hint += _outlier_hint(data)
    if r2 < -1:  # far below the mean's r2: say how much worse, a number a user can weigh
        return [
            f"the test r2 {r2:.4g} is no better than 0, the r2 of always predicting the training split's mean: "
            f"the model is worse than that, its squared error on the test rows {1 - r2:.3g} times the mean's{hint}"
        ]
    return [
        f"the test r2 {r2:.4g} is no better than 0, the r2 of always predicting the training split's mean: "
        f"the model has learned nothing the test rows can use{hint}"
    ]


def _outlier_hint(data: Prepared) -> str:
    """Where the target's extreme values are, judged by the training split's median and spread: in the
    test split they dominate r2; in the training split they pull the model towards themselves."""
    from .inputs import OUTLIER_SCALES, target_outliers

    if not len(data.y_train):
        return ""
    parts = [
        f"{int(target_outliers(y, data.y_train).sum())} in the {name} split"
        for name, y in (("training", data.y_train), ("validation", data.y_val), ("test", data.y_test))
        if y is not None and len(y) and target_outliers(y, data.y_train).any()
    ]
    if not parts:
        return ""
    return (
        f"; the target has extreme values (more than {OUTLIER_SCALES:g} robust standard deviations from the "
        f"training median: {', '.join(parts)}), which squared errors let dominate the model and r2: check them, "
        "leave them out, or try --loss huber"
    )


def classifier_warnings(
    model: ModelLike, data: Prepared, metrics: dict[str, Any], class_weight: str = "none", stopped_at: str = ""
) -> list[str]:
    """Plain words when a classifier's test accuracy means less than it seems: it predicts one class
    only, or it does not beat always predicting the most frequent class. ``stopped_at``: for a run early
    stopping ended, the epoch and the limit ("3 of 100"): more epochs are then no lever to advise."""
    from ..data.dataset import LazyDataset
    from ..data.memmap import is_lazy
    from ..train import predict

    if data.task != "classification" or not len(data.y_test):
        return []
    out = predict(model, LazyDataset(data.X_test) if is_lazy(data.X_test) else data.X_test)
    predicted = np.asarray(out.numpy() if hasattr(out, "numpy") else out).argmax(axis=1)
    names = data.class_names or [str(i) for i in range(data.n_outputs)]
    notes = []
    accuracy, baseline = metrics.get("test_accuracy"), metrics.get("test_baseline_accuracy")
    distinct = np.unique(predicted)
    positive = metrics.get("test_positive_class")
    about = f" (and average_precision, positive class {positive!r})" if positive is not None else ""
    look = "look at balanced_accuracy and roc_auc" + (
        about or (" (and average_precision)" if data.n_outputs == 2 else "")
    )
    # advice the run has not taken yet: a run weighted already is told to look elsewhere
    if class_weight != "balanced":
        advice = f"{look}, and try --class-weight balanced for rare classes"
    elif stopped_at:
        # early stopping ended the run: its validation loss had stopped falling, so more epochs would not
        # help; a smaller step lets the weighted loss settle more slowly, and the data is the other lever
        advice = (
            f"{look}; the loss is class-weighted already and early stopping ended training at epoch {stopped_at} "
            "(the validation loss had stopped falling, so more epochs would not help): try a smaller --lr or a "
            "larger --patience, more rows of the rare classes or more informative features"
        )
    else:
        advice = f"{look}; the loss is class-weighted already, so more data, features or epochs are the next levers"
    if len(distinct) == 1 and len(np.unique(data.y_test)) > 1:
        versus = f" (always predicting the most frequent class gets {baseline:.4g})" if baseline is not None else ""
        notes.append(
            f"the model predicts a single class ({names[int(distinct[0])]!r}) for every test row: its accuracy "
            f"{accuracy:.4g} is what always answering that one class gets{versus}; {advice}"
        )
    elif accuracy is not None and baseline is not None and accuracy <= baseline:
        notes.append(
            f"the test accuracy {accuracy:.4g} does not beat the baseline {baseline:.4g} of always predicting the "
            f"most frequent class; {advice}"
        )
    return notes


def run_training(
    cfg: dict[str, Any],
    data: Prepared | None = None,
    initial_state: dict[str, Any] | None = None,
    extra_callbacks: list[Any] | None = None,
    resume_from: str | Path | None = None,
    on_data: Any = None,
) -> RunResult:
    """Train once as ``cfg`` says; ``initial_state`` makes several runs start from identical weights;
    ``on_data(prepared)`` is called once the data is read, before training (the CLI says then what
    it made of a file, so a surprise can be stopped before it trains)."""
    import warnings

    from .. import backend
    from ..distributed import is_main
    from ..train.diagnostics import GradientDiagnostics

    fit_fn, world_size = _fit_function(cfg)
    device = resolve_run_device(cfg.get("device", "cpu"))  # before any work: a missing GPU fails at once
    if device != "cpu" and world_size > 1:
        raise ConfigError(
            f"device {device!r}: data-parallel training (mpiexec) runs on the CPU; drop --device or start one process"
        )
    # the model is built on the host (the seeded draws are made there) and fit moves it: on the CPU
    # fit is called as before, without the option
    placement: dict[str, Any] = {} if device == "cpu" else {"device": device}
    backend.manual_seed(cfg["seed"])
    data = prepare(cfg) if data is None else data
    if on_data is not None:
        on_data(data)
    speaks = bool(cfg["verbose"]) and (world_size == 1 or is_main())  # under mpiexec: rank 0 only
    if speaks:  # what reading the data found is said before training, not after every epoch's line
        for note in data.notes:
            print(f"note: {note}", flush=True)
    model = build_model(cfg, data.n_features, data.n_outputs, data.image_shape)
    if initial_state is not None:
        model.load_state_dict(initial_state)
    weights = None
    if cfg.get("class_weight", "none") == "balanced" and data.task == "classification":
        weights = balanced_class_weights(data.y_train, data.n_outputs)
    loss_fn = build_loss(cfg, data.task, weights)
    optimizer = build_optimizer(cfg, model.parameters())
    optimizer_lr = optimizer.param_groups[0].get("lr") if optimizer.param_groups else None
    bs = batch_size_of(cfg)
    # batch_size is per process: an update sees batch_size * world_size samples (see docs/distributed.md)
    steps = math.ceil(len(data.X_train) / (bs * world_size)) if bs else 1
    scheduler = build_scheduler(cfg, optimizer, steps)
    gradients = GradientDiagnostics(every_n_batches=10, clip_hint="--clip-norm 1.0")
    callbacks = _stopping_rules(cfg, has_val=data.X_val is not None) + [gradients] + (extra_callbacks or [])
    pre = data.preprocess
    validation = None
    if data.X_val is not None and data.y_val is not None:
        validation = training_data(data.X_val, model_targets(data.y_val, pre))
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:  # kept for the report, shown once below
        warnings.simplefilter("always", RuntimeWarning)
        warnings.simplefilter("always", RisingLossWarning)  # a note of the report, whatever the filters say
        history = fit_fn(
            model,
            loss_fn,
            optimizer,
            training_data(data.X_train, model_targets(data.y_train, pre)),
            validation=validation,
            epochs=cfg["epochs"],
            batch_size=bs,
            metrics=["accuracy"] if data.task == "classification" else [_mae_in_data_units(pre)],
            callbacks=callbacks,
            scheduler=scheduler,
            verbose=cfg["verbose"],
            seed=cfg["seed"],
            resume_from=resume_from,
            **placement,
        )
    seconds = time.perf_counter() - start
    weights_epoch = _restored_epoch(callbacks)
    diverged = bool(getattr(history, "diverged", False))
    # a diverged model's weights are huge or NaN: scoring it overflows, which its clear "diverged" message
    # already says; NumPy's floating-point warnings would only repeat it (a healthy run keeps them)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore") if diverged else contextlib.nullcontext():
        results = _run_metrics(model, data, history, seconds, world_size, weights_epoch)
    if device != "cpu":
        model.to("cpu")  # scored where it trained; the run's files, plots and report are made on the host
    stop_reason = getattr(history, "stop_reason", None) or f"reached the epoch limit ({cfg['epochs']})"
    if diverged:
        stop_reason = _divergence_advice(stop_reason, cfg, data, optimizer_lr, history)
    groups = getattr(optimizer, "param_groups", None) or [{}]
    notes = _run_notes(data, history, caught, diverged, cfg, optimizer_lr, groups[0].get("momentum"), results)
    early = getattr(history, "stop_kind", None) == "early_stopping"
    stopped_at = f"{results.get('epochs')} of {cfg['epochs']}" if early else ""
    notes += classifier_warnings(model, data, results, str(cfg.get("class_weight", "none")), stopped_at)
    rising = any(issubclass(w.category, RisingLossWarning) for w in caught)  # (said in the notes above)
    if getattr(history, "stop_kind", None) == "max_epochs" and not rising:  # a rising loss is not a crawl
        crawl = crawl_note(
            cfg,
            data.X_train,
            model_targets(data.y_train, pre),
            data.task,
            data.n_outputs,
            history.as_dict().get("loss", []),
            optimizer_lr,
            groups[0].get("momentum"),
        )
        # a crawl's steady small drops are what the relative-drop rule misses; one note says it
        notes += (
            [crawl]
            if crawl
            else still_improving_note(history.as_dict(), cfg["epochs"], optimizer_lr, int(cfg.get("patience") or 0))
        )
    notes += _schedule_cut_note(cfg, history)
    # (the baseline loss is computed on the host: a class-weighted loss holds its weights on the device)
    if not diverged and not any(n.startswith("the model is overfitting") for n in notes):
        if device == "cpu" or weights is None:
            notes += _gap_note(cfg, data, history, weights_epoch, loss_fn)
    known = any(DIVERGENCE_CAUSE in n for n in notes)  # the cause is said: no guesses after it
    notes += regression_warnings(data, results, bool(cfg.get("scale_target", True)), cause_known=known)
    if speaks:
        for note in notes:
            if note not in data.notes:  # (the data's notes were said before training)
                print(f"warning: {note}")
    # the momentum trained with: a resumed run's comes back from its checkpoint's optimizer state
    used = resolved_config(cfg, data, optimizer_lr, loss_fn, momentum=groups[0].get("momentum"))
    used["device"] = device  # the device trained on (auto resolved), recorded in the run's config
    return RunResult(
        used,
        history,
        results,
        stop_reason,
        seconds,
        model,
        data,
        diagnostics=notes,
        gradients=gradients,
        weights_epoch=weights_epoch,
    )


def baseline_val_loss(loss_fn: LossFn, data: Prepared) -> float | None:
    """The validation loss (in the units training logs it) of a model that ignores the features: it predicts
    the training split's mean target (a regression; scikit-learn's ``DummyRegressor``) or the training
    class frequencies (a classification; ``DummyClassifier(strategy="prior")``). None without validation rows."""
    from .. import no_grad, tensor

    if data.X_val is None or data.y_val is None or not len(data.y_val) or not len(data.y_train):
        return None
    pre = data.preprocess
    y_val = model_targets(data.y_val, pre)
    if data.task == "classification":
        counts = np.bincount(np.asarray(data.y_train, np.int64).reshape(-1), minlength=data.n_outputs)[: data.n_outputs]
        # a class the training split lacks gets a tiny share, not log(0)
        logits = np.log(np.maximum(counts / counts.sum(), 1e-12))
        outputs = np.broadcast_to(logits, (len(y_val), data.n_outputs))
    else:
        y_train = np.asarray(model_targets(data.y_train, pre), np.float64)
        outputs = np.broadcast_to(y_train.mean(axis=0), y_val.shape)
    with no_grad():
        value = loss_fn(tensor(np.ascontiguousarray(outputs, np.float32)), tensor(np.ascontiguousarray(y_val)))
    return float(value.item())


def _gap_note(
    cfg: dict[str, Any], data: Prepared, history: History, weights_epoch: int | None, loss_fn: LossFn
) -> list[str]:
    """The generalisation-gap advice (:func:`~.advice.generalisation_gap_note`) for the epoch whose weights
    the run saves: early stopping's best, else the last."""
    logs = history.as_dict()
    loss, val = logs.get("loss") or [], logs.get("val_loss") or []
    if not loss or len(val) != len(loss):
        return []
    kept = weights_epoch if weights_epoch is not None and 1 <= weights_epoch <= len(loss) else len(loss)
    train_loss, val_loss = loss[kept - 1], val[kept - 1]
    if train_loss is None or val_loss is None:
        return []
    if float(val_loss) <= GAP_RATIO * float(train_loss):  # (no baseline computed for most runs)
        return []
    note = generalisation_gap_note(
        float(train_loss),
        float(val_loss),
        baseline_val_loss(loss_fn, data),
        kept,
        cfg,
        data.n_features,
        len(data.y_train),
    )
    return [note] if note else []


#: The divergence guard's advice: a tenth of the rate, or a rate estimated from how fast the loss grew (its
#: reason in parentheses, part of the match so that a replacement leaves no reason behind that explains nothing)
_TENTH = re.compile(r"try lr=\S+ or lower(?P<estimate> \(an estimate from [^)]*\))?")


def _divergence_advice(reason: str, cfg: dict[str, Any], data: Prepared, lr: float | None, history: History) -> str:
    """The stop reason of a diverged run with a rate worth trying: a tenth of a rate far above the stable
    one (lr=1e20) diverges again, so the estimate from the features' curvature (a linear model), or for
    an immediate blow-up (non-finite loss within two epochs) a range test, replaces it."""
    from .advice import judged, stable_lr

    said = _TENTH.search(reason) if lr is not None else None
    if lr is None or said is None:
        return reason
    limit = stable_lr(data.X_train, data.n_outputs) if judged(cfg, data.task) else None
    if limit is not None and lr > 10 * limit:
        # a stable rate the guard estimated already stays: the "Stopped:" line said it, and this one says the same
        guessed = float(said.group(0).split()[1].removeprefix("lr="))
        rate = f"{guessed:g}" if guessed <= limit / 2 else f"{limit / 2:.2g}"
        better = f"try lr={rate} or lower (the largest stable rate for these features is about {limit:.2g})"
        return _TENTH.sub(lambda _: better, reason, count=1)
    # the guard says "loss became inf/nan" when one step overflowed: within two epochs, a rate this far
    # off is more than tenfold too large
    immediate = len(history.as_dict().get("loss", [])) <= 2 and "loss became" in reason
    # a rate estimated from the measured growth stands: the "Stopped:" line said it, and says the same
    if limit is None and immediate and not said.group("estimate"):
        better = (
            "the rate is likely orders of magnitude too large: find a working range with 'downslope lr-find' "
            "(the same data and model flags)"
        )
        return _TENTH.sub(lambda _: better, reason, count=1)
    return reason


def _schedule_cut_note(cfg: dict[str, Any], history: History) -> list[str]:
    """Plain words when early stopping ended a run before a schedule shaped over all its epochs finished."""
    from .config import SPANS_EPOCHS

    ran = len(history.as_dict().get("loss", []))
    stopped_early = getattr(history, "stop_kind", None) == "early_stopping"
    if cfg["schedule"] not in SPANS_EPOCHS or not stopped_early or ran >= cfg["epochs"]:
        return []
    return [
        f"early stopping (--patience {cfg['patience']}) ended the run at epoch {ran} of {cfg['epochs']}, before the "
        f"{cfg['schedule']} schedule, shaped over all {cfg['epochs']} epochs, had finished (its learning rate had not "
        "come down to its end); --patience 0 runs the whole schedule, or lower --epochs to the length wanted"
    ]


def _restored_epoch(callbacks: list[Any]) -> int | None:
    """The 1-based epoch whose weights EarlyStopping put back at the end of training, or None."""
    from ..train.callbacks import EarlyStopping

    for callback in callbacks:
        if isinstance(callback, EarlyStopping) and callback.restore_best_weights and callback.best_weights is not None:
            return int(callback.best_epoch) + 1
    return None


def _fit_function(cfg: dict[str, Any]) -> tuple[Any, int]:
    """``train.fit``, or ``distributed.fit`` when started by mpiexec/srun (data-parallel over the job's
    ranks, which must agree on the settings); and the number of processes."""
    from ..distributed import launched_size
    from ..train import fit

    world_size = launched_size() or 1
    if world_size == 1:
        return fit, 1
    from .. import distributed as dist

    dist.init()
    dist.check_same_config(cfg, ignore=("out", "verbose"))  # only rank 0 writes and prints
    return dist.fit, world_size


def _stopping_rules(cfg: dict[str, Any], has_val: bool) -> list[Any]:
    """The callbacks that end a run: divergence, early stopping, a target loss, a time limit."""
    from ..train import callbacks as cb

    monitor = "val_loss" if has_val else "loss"
    # a loss that rises 100-fold above its best and back above where it started, or 10^4-fold above
    # its start however slowly (ds.fit's default rule), diverged; a bounce near a minimum did not
    callbacks: list[Any] = [cb.DivergenceGuard(initial_factor=1e4)]
    if cfg["patience"] > 0:
        callbacks.append(cb.EarlyStopping(monitor=monitor, patience=cfg["patience"], restore_best_weights=True))
    if cfg["target_loss"] > 0:
        callbacks.append(cb.StopAtLoss(cfg["target_loss"], monitor=monitor))
    if cfg["max_time"] > 0:
        callbacks.append(cb.MaxTime(cfg["max_time"]))
    return callbacks


def _mae_in_data_units(preprocess: dict[str, Any]) -> Any:
    """The epoch logs' "mae" in the target's own units: the model learns a standardized target, and
    its MAE there (0.18 for prices around 2.4e5) is not the number a user reads as an error."""
    from ..train.metrics import Metric, mean_absolute_error

    def mae(preds: Any, target: Any) -> float:
        return mean_absolute_error(
            data_units(np.asarray(preds), preprocess), data_units(np.asarray(target), preprocess)
        )

    return Metric(mae, "mae", greater_is_better=False, sample_mean=True)


def _run_metrics(
    model: ModelLike,
    data: Prepared,
    history: History,
    seconds: float,
    world_size: int,
    weights_epoch: int | None = None,
) -> dict[str, Any]:
    """metrics.json: test metrics in the data's units, final losses (and their units), epochs, time, and the
    epoch whose weights the saved model holds (``weights_epoch``, 1-based: the best one early stopping put
    back; None: the last) with that epoch's losses and validation metrics as ``best_*``."""
    results: dict[str, Any] = {"test_" + k: v for k, v in score_model(model, data, data.X_test, data.y_test).items()}
    logged = {k: v for k, v in history.as_dict().items() if isinstance(v, list)}
    final = {k: (v[-1] if v else None) for k, v in logged.items()}
    results.update({"final_" + k: v for k, v in final.items() if k in ("loss", "val_loss")})
    ran = len(logged.get("loss", []))
    if ran:
        # the final_* losses are the last epoch's; a program reading this file must be able to tell which
        # epoch the saved model is and what it scored then
        kept = weights_epoch if weights_epoch is not None and 1 <= weights_epoch <= ran else ran
        results["model_epoch"] = kept
        if kept != ran:
            results["best_epoch"] = kept
            results.update(
                {
                    "best_" + k: v[kept - 1]
                    for k, v in logged.items()
                    if (k == "loss" or k.startswith("val_")) and len(v) == ran
                }
            )
    scaler = data.preprocess.get("target_scaler")
    if scaler:  # the logged losses are not in the data's units: say in which they are
        mean = ", ".join(f"{v:.6g}" for v in np.ravel(scaler["mean"]))
        # the spread itself: a constant target is scaled by 1 (nothing to divide by), its std is 0
        wide = np.asarray(data.y_train, np.float64).reshape(len(data.y_train), -1)
        spread = wide.std(axis=0) if len(wide) else np.ravel(scaler["scale"])
        std = ", ".join(f"{v:.6g}" for v in np.ravel(spread))
        single = "; a single value: only centered" if (np.ravel(spread) == 0).any() else ""
        results["loss_units"] = f"standardized target (training split mean {mean}, standard deviation {std}{single})"
    results["epochs"] = len(history.as_dict().get("loss", []))
    results["seconds"] = round(seconds, 3)
    # batch_size in the config is per process: the run must say how many processes shared an update
    results["processes"] = world_size
    return results


def _run_notes(
    data: Prepared,
    history: History,
    caught: list[Any],
    diverged: bool = False,
    cfg: dict[str, Any] | None = None,
    lr: float | None = None,
    momentum: float | None = None,
    results: dict[str, Any] | None = None,
) -> list[str]:
    """Plain-words warnings for the report: the data's, then training's (each once); for a diverged run,
    without NumPy's "overflow/invalid value encountered in ..." (the divergence itself, said once), and
    with its cause when the features' curvature tells it."""
    # fit's rising-loss warning is a UserWarning, yet the report is where a run's user reads it
    said = (RuntimeWarning, RisingLossWarning)
    notes = list(dict.fromkeys(str(w.message) for w in caught if issubclass(w.category, said)))
    if diverged:
        notes = [n for n in notes if not re.match(r"(overflow|invalid value|divide by zero) encountered in ", n)]
    cause = divergence_note(cfg, data.X_train, data.task, data.n_outputs, lr, momentum) if cfg and diverged else ""
    if cause:
        notes = [cause] + notes
    scale_note = _target_scale_note(data, history, failed=_failed(diverged, results), cause_known=bool(cause))
    if scale_note:  # the gradients are large because of the target's units: learning-rate advice would mislead
        notes = [scale_note] + [n for n in notes if "learning rate" not in n]
    return list(data.notes) + notes


def _failed(diverged: bool, results: dict[str, Any] | None) -> bool:
    """Whether a run learned nothing usable: it diverged, or its test r2 is at most 0."""
    r2 = (results or {}).get("test_r2")
    return diverged or (r2 is not None and (not math.isfinite(r2) or r2 <= 0))


#: A run that ends at its epoch limit is told to train longer when its training loss fell by more than
#: this fraction (of its final value) between the last two windows of a tenth of its epochs.
STILL_IMPROVING = 0.05
#: ... and its validation loss (when there is one) fell by more than this fraction between the same windows:
#: a validation loss that moves less is flat (noise), and more epochs would not help it.
VAL_STILL_IMPROVING = 0.01
#: A training loss whose last window is below this fraction of its largest value is at its floor (an
#: overfit model's 1e-8): its relative drops are noise, not progress.
LOSS_FLOOR = 1e-4
#: A last window of validation losses this fraction above the best one (reached before that window)
#: is overfitting: the note says so, and how to stop at the best epoch, instead of advising more epochs.
OVERFITTING = 0.1


def still_improving_note(logs: dict[str, list[Any]], epochs: int, lr: float | None, patience: int = 0) -> list[str]:
    """Advice for a run stopped by its epoch limit: while its loss was still falling fast (the mean
    training loss of the last tenth of the epochs, at least 5, is more than :data:`STILL_IMPROVING` below
    that of the tenth before, is not at its floor (:data:`LOSS_FLOOR`), and the validation loss, if any,
    fell by more than :data:`VAL_STILL_IMPROVING` too), train longer; while it was overfitting (the last
    window's validation loss more than :data:`OVERFITTING` above its best, reached earlier), stop at the
    best epoch or regularise instead. Runs of fewer than 10 epochs are not judged. ``patience``: the run's
    early stopping (0: none), which the overfitting advice builds on rather than recommends again.

    Example:
        >>> falling = {"loss": [1.0 / (1 + 0.02 * e) for e in range(100)]}
        >>> still_improving_note(falling, 100, 0.001)[0].startswith("training was still improving")
        True
        >>> still_improving_note({"loss": [0.1] * 100}, 100, 0.001)
        []
        >>> overfit = dict(falling, val_loss=[1.0 - 0.02 * e for e in range(20)] + [0.8] * 80)
        >>> still_improving_note(overfit, 100, 0.001)[0].startswith("the model is overfitting")
        True
    """

    def finite(key: str) -> np.ndarray:
        values = [v for v in logs.get(key) or [] if v is not None]
        return np.asarray(values, np.float64) if values and np.isfinite(values).all() else np.zeros(0)

    loss = finite("loss")
    k = max(5, len(loss) // 10)
    if len(loss) < 10 or len(loss) < 2 * k:
        return []
    val = finite("val_loss")
    if len(val) >= 2 * k:
        best_at = int(np.argmin(val))
        best, ending = float(val[best_at]), float(val[-k:].mean())
        if best_at < len(val) - k and best > 0 and ending > (1 + OVERFITTING) * best:
            if patience > 0:  # early stopping is on already: its kept weights are the best epoch's
                stopping = (
                    f"the saved weights are the best epoch's (early stopping, --patience {patience}, keeps them; "
                    f"the epoch limit came first), and --weight-decay, --dropout or a smaller --hidden make "
                    "overfitting less"
                )
            else:
                stopping = (
                    "early stopping (--patience 10) stops near the best epoch and keeps its weights, and "
                    "--weight-decay, --dropout or a smaller --hidden make overfitting less"
                )
            return [
                f"the model is overfitting: the validation loss ended at {ending:.4g} (the mean of the last {k} "
                f"epochs), {100 * (ending - best) / best:.0f}% above its best, {best:.4g} at epoch {best_at + 1}, "
                f"while the training loss fell to {float(loss[-1]):.3g}; more epochs would not help: {stopping}"
            ]
    before, last = float(loss[-2 * k : -k].mean()), float(loss[-k:].mean())
    # a fall is measured from where it started (0.5 -> 0.2 fell 60%; a fall is at most 100%)
    if not last > LOSS_FLOOR * float(loss.max()) or not before > 0 or (before - last) / before <= STILL_IMPROVING:
        return []
    if len(val) >= 2 * k:
        val_before, val_last = float(val[-2 * k : -k].mean()), float(val[-k:].mean())
        if not val_before - val_last > VAL_STILL_IMPROVING * abs(val_last):
            return []  # flat or rising: more epochs would not bring the validation loss down
    rate = f", now {lr:g}" if lr is not None else ""
    return [
        f"training was still improving when it reached the epoch limit ({epochs}): the mean training loss fell "
        f"{100 * (before - last) / before:.0f}% over the last {k} epochs; train longer (--epochs {2 * epochs}) or "
        f"raise the learning rate (--lr{rate}) to get closer to the best fit"
    ]


def _target_scale_note(data: Prepared, history: History, failed: bool = True, cause_known: bool = False) -> str:
    """Plain words when a regression's unscaled target is in large units. Its scale sets the size of the
    loss and of the gradients, not the largest stable learning rate of gradient descent (the features
    set that), so it is named as a cause only of a run that failed for no cause found elsewhere: the
    weights had far to travel (an adaptive optimizer's steps of about lr crawl there). A run that worked
    is told what its large numbers mean."""
    if data.task != "regression" or data.preprocess.get("target_scaler") or not len(data.y_train):
        return ""
    y = np.asarray(data.y_train, np.float64)
    std, mean = float(y.std()), float(y.mean())
    # the squared error of predicting 0, where an untrained model (small weights, zero bias) starts:
    # the target's mean counts as much as its spread (a 1e9 revenue that varies by 3.5e3)
    start = float(np.mean(y**2))
    losses = [v for v in history.as_dict().get("loss", []) if v is not None and math.isfinite(v)]
    if start < 1e4 or (losses and min(losses) < 1e3):
        return ""
    units = f"mean {mean:.3g}, standard deviation {std:.3g}"
    if cause_known:
        return ""
    if failed:
        return (
            f"the target is not standardized (--no-scale-target) and in large units ({units}): the run learned "
            f"little because of the target's scale. The squared error of an untrained model (which predicts about "
            f"0) is of order {start:.1g}, its gradients are as large, and the weights have that far to travel. "
            "Standardize the target (the default: drop --no-scale-target)"
        )
    return (
        f"the loss is in the target's squared units (--no-scale-target; {units}): it starts near {start:.2g}, the "
        f"squared error of predicting 0, and stays large in these units even for a good fit; compare it with the "
        f"target's variance {std**2:.3g} (the test r2 says how much of it the model explains)"
    )


def resolved_config(
    cfg: dict[str, Any], data: Prepared, lr: float | None, loss_fn: LossFn, momentum: float | None = None
) -> dict[str, Any]:
    """The settings a run actually used, for config.toml and the report: defaults resolved (the
    learning rate, momentum, task, loss, target column) and settings that do not apply left out
    (e.g. ``channels`` for an MLP, ``momentum`` for Adam). Loading it repeats the run. ``momentum``: the
    optimizer's own (when it has one), else the config's resolved."""
    used = dict(cfg)
    used["task"] = data.task
    used["loss"] = {"CrossEntropyLoss": "cross_entropy", "MSELoss": "mse", "L1Loss": "l1", "HuberLoss": "huber"}.get(
        type(loss_fn).__name__, cfg["loss"]
    )
    if lr is not None:
        used["lr"] = float(lr)
    name = cfg["optimizer"]
    if name in ("momentum", "nesterov", "sgd", "rmsprop") and momentum is not None:
        used["momentum"] = float(momentum)
    elif name in ("momentum", "nesterov"):
        used["momentum"] = 0.9 if cfg["momentum"] is None else cfg["momentum"]
    elif name in ("sgd", "rmsprop"):
        used["momentum"] = cfg["momentum"] or 0.0
    else:
        used.pop("momentum", None)
    if cfg["model"] != "cnn":
        used.pop("channels", None)
    if cfg["model"] == "linear":
        for key in ("hidden", "activation", "dropout", "batchnorm"):
            used.pop(key, None)
    for key in ("clip_norm", "target_loss", "max_time", "merge_label_variants"):  # 0 / false means off
        if not used.get(key):
            used.pop(key, None)
    if data.task != "regression":
        used.pop("scale_target", None)
    if data.task != "classification":
        used.pop("class_weight", None)
        used.pop("merge_label_variants", None)
    file_source = is_file_source(cfg["data"])
    if file_source and cfg["data"].lower().endswith(".csv"):
        used["target"] = data.target_name or cfg["target"]
        for key in ("drop", "categorical", "numeric"):
            if not used.get(key):
                used.pop(key, None)
    else:
        for key in ("target", "drop", "max_categories", "categorical", "numeric"):
            used.pop(key, None)
    if not file_source:
        used.pop("missing", None)
    used.pop("verbose", None)
    return used


#: The layout of a run's ``model.ds`` (the entries :func:`run_state` writes). A reader refuses a file of a
#: newer layout, whose entries it may misread, and reads a file without the entry (written before it
#: existed) as version 1.
RUN_FORMAT_VERSION = 1

#: The run directory's file of the split's per-row arrays, kept out of the deployable ``model.ds``.
SPLIT_FILE = "split.ds"

#: The split's entries with one number per training row (megabytes at millions of rows): the training
#: rows' hashes, which only ``evaluate --data`` reads (to say when other data overlaps training). The
#: test rows' indices stay in model.ds, stored in the smallest unsigned integer type that holds them.
SPLIT_ROWS = ("train_row_hashes",)


def split_rows(state: dict[str, Any]) -> dict[str, Any]:
    """What a run's :data:`SPLIT_FILE` holds: the split's per-row arrays of a :func:`run_state`."""
    split = state.get("split") or {}
    return {k: split[k] for k in SPLIT_ROWS if k in split}


def run_state(result: RunResult, rows_apart: bool = False) -> dict[str, Any]:
    """What a run directory's ``model.ds`` holds: weights, the settings used, what the data looked like
    (task, sizes, class and feature names), the fitted preprocessing (``encoder``, ``imputer``,
    ``standardizer``, ``target_scaler``, each a plain state dict) and the split (test rows' indices,
    hashes of the training rows). ``rows_apart``: the split's per-row arrays are left out (written to
    :data:`SPLIT_FILE` beside it, see :func:`split_rows`), and the split names that file."""
    data = result.data
    split = dict(data.split)
    if rows_apart and any(k in split for k in SPLIT_ROWS):
        split = {k: v for k, v in split.items() if k not in SPLIT_ROWS} | {"rows_file": SPLIT_FILE}
    if rows_apart and "test_indices" in split:
        rows = np.asarray(split["test_indices"])
        top = int(rows.max()) if rows.size else 0
        small = np.uint16 if top < 2**16 else np.uint32 if top < 2**32 else np.uint64
        split["test_indices"] = rows.astype(small)  # evaluate reads them back as int64
    return {
        "format_version": RUN_FORMAT_VERSION,
        "model": result.model.state_dict(),
        "config": result.cfg,
        "task": data.task,
        "n_features": data.n_features,
        "n_outputs": data.n_outputs,
        "image_shape": list(data.image_shape) if data.image_shape else None,
        "class_names": data.class_names,
        # a classifier's target type, so predictions come back as the data held them (absent in older runs)
        **({"target_kind": data.target_kind} if data.target_kind else {}),
        "feature_names": data.feature_names,
        "preprocess": data.preprocess,
        "split": split,
    }


def _with_split_rows(split: Any, where: str) -> Any:
    """The split with its per-row arrays read back from the run directory's :data:`SPLIT_FILE`, when the
    model file (at ``where``) names it; a missing file leaves them out (``evaluate`` then asks for --data)."""
    if not isinstance(split, dict) or not isinstance(split.get("rows_file"), str):
        return split  # an older run keeps them in model.ds itself
    from .. import serialization

    path = Path(where).parent / Path(split["rows_file"]).name  # only a file beside the model's
    merged = {k: v for k, v in split.items() if k != "rows_file"}
    if path.is_file():
        rows = serialization.load(path)
        if isinstance(rows, dict):
            merged.update({k: rows[k] for k in SPLIT_ROWS if k in rows})
    return merged


def model_from_state(state: Any, where: str) -> tuple[Module, dict[str, Any]]:
    """The trained model of a run's loaded ``model.ds`` and its state, checked: a training checkpoint
    or a file missing what the model needs is a one-line :class:`ConfigError` naming ``where``."""
    from ..train.fit import CHECKPOINT_KIND

    if not isinstance(state, dict):
        raise ConfigError(f"{where}: not a run's model file (expected a dict of arrays and settings)")
    if state.get("kind") == CHECKPOINT_KIND:
        raise ConfigError(
            f"{where}: this is a training checkpoint of fit (epoch {state.get('epoch')}), not a run's model file; "
            "evaluate and predict take a run directory written by 'downslope train'"
        )
    lacking = [k for k in ("model", "config", "task", "n_features", "n_outputs") if k not in state]
    if lacking:
        raise ConfigError(f"{where}: not a run's model file; it lacks {lacking} (written by 'downslope train'?)")
    raw = state["config"]
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: the stored config is not a table of settings")
    kind = raw.get("model", DEFAULTS["model"])
    needed = [k for k in ("model", *ARCHITECTURE_KEYS.get(kind, ())) if k not in raw]
    if needed:
        raise ConfigError(
            f"{where}: the stored config lacks {needed}, which the model's architecture needs; retrain the run"
        )
    _check_format_version(state.get("format_version", 1), where)
    if "preprocess" not in state:  # a default would skip the scaling the model was trained with
        raise CheckpointError(
            f"{where}: the model file lacks its 'preprocess' entry (the fitted scaling and encoding of the "
            "inputs), so its inputs cannot be prepared as in training; retrain the run"
        )
    state = dict(state)
    state.setdefault("class_names", [])
    state.setdefault("image_shape", None)
    state.setdefault("split", {})
    state["split"] = _with_split_rows(state["split"], where)
    if state["task"] not in ("classification", "regression"):
        raise ConfigError(f"{where}: unknown task {state['task']!r}")
    # the stored config passes the user-config validation (and is replaced by its normalized form) and
    # the parameter shapes it implies match the stored arrays, before any layer is allocated
    check_run_state(state, where)
    _check_class_names(state, where)
    cfg = state["config"]
    shape = tuple(state["image_shape"]) if state["image_shape"] else None
    model = build_model(cfg, int(state["n_features"]), int(state["n_outputs"]), shape)
    model.load_state_dict(state["model"])
    model.eval()
    return model, state


def _check_format_version(version: Any, where: str) -> None:
    """Refuse a ``model.ds`` whose layout version is not one this downslope reads (a newer one's entries
    may mean something else)."""
    if type(version) is not int or version < 1:
        raise CheckpointError(f"{where}: format_version must be a positive integer, the file has {version!r}")
    if version > RUN_FORMAT_VERSION:
        raise CheckpointError(
            f"{where}: the model file has format version {version}, newer than this downslope reads "
            f"(up to {RUN_FORMAT_VERSION}); upgrade downslope to read it"
        )


def _check_class_names(state: dict[str, Any], where: str) -> None:
    """A classifier's class names, when stored, name every output (predictions index them by output)."""
    names = state["class_names"]
    if state["task"] != "classification" or not names:
        return  # no names: the outputs' indices stand for the classes
    n_outputs = int(state["n_outputs"])
    if not isinstance(names, list) or len(names) != n_outputs or not all(isinstance(n, str) for n in names):
        got = f"{len(names)} name(s)" if isinstance(names, list) else f"a {type(names).__name__}"
        raise CheckpointError(
            f"{where}: class_names holds {got} for the model's {n_outputs} outputs (expected one string per "
            "output); retrain the run"
        )
