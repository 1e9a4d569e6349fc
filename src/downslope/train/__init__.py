"""Training: the fit loop, evaluation, callbacks (stopping rules, checkpoints, loggers) and metrics.

Example:
    >>> from downslope import train
    >>> stopper = train.EarlyStopping(patience=10, restore_best_weights=True)
"""

from .callbacks import (
    BackupAndRestore,
    Callback,
    CallbackList,
    CSVLogger,
    DivergenceGuard,
    EarlyStopping,
    LambdaCallback,
    LearningRateMonitor,
    LearningRateScheduler,
    MaxTime,
    ModelCheckpoint,
    ReduceLROnPlateau,
    StopAtLoss,
    StopAtTarget,
    TerminateOnNaN,
    TrainingState,
)
from .diagnostics import GradientDiagnostics
from .fit import evaluate, fit, predict, train_step
from .history import STOP_KINDS, History
from .lr_find import LRFinderResult, lr_find
from .metrics import (
    Metric,
    accuracy,
    as_metric,
    f1_score,
    get_metric,
    greater_is_better,
    mean_absolute_error,
    mean_squared_error,
    precision,
    r2_score,
    recall,
    root_mean_squared_error,
)
from .progress import ProgressBar
from .tensorboard import TensorBoard

__all__ = [
    "fit",
    "evaluate",
    "predict",
    "train_step",
    "History",
    "STOP_KINDS",
    "lr_find",
    "LRFinderResult",
    "Callback",
    "CallbackList",
    "TrainingState",
    "EarlyStopping",
    "StopAtLoss",
    "StopAtTarget",
    "MaxTime",
    "TerminateOnNaN",
    "DivergenceGuard",
    "ModelCheckpoint",
    "BackupAndRestore",
    "CSVLogger",
    "LearningRateMonitor",
    "LambdaCallback",
    "LearningRateScheduler",
    "ReduceLROnPlateau",
    "ProgressBar",
    "GradientDiagnostics",
    "TensorBoard",
    "accuracy",
    "precision",
    "recall",
    "f1_score",
    "mean_squared_error",
    "mean_absolute_error",
    "root_mean_squared_error",
    "r2_score",
    "get_metric",
    "as_metric",
    "greater_is_better",
    "Metric",
]
