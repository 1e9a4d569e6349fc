"""Callbacks: small objects the fit loop calls at fixed points, which can watch, log, or stop training.

The hooks (all no-ops in :class:`Callback`) receive the 0-based ``epoch``/``batch`` index and the
``logs`` dict of the moment::

    on_train_begin(logs)            logs: {}
    on_epoch_begin(epoch, logs)     logs: {}
    on_train_batch_begin(batch, logs)  logs: {'size': samples in the batch}
    on_train_batch_end(batch, logs)    logs: {'loss': this batch's loss (a DeviceScalar on a device), 'size': ...}
    on_test_begin / on_test_batch_begin / on_test_batch_end / on_test_end: fit's validation after each epoch
    on_epoch_end(epoch, logs)       logs: {'loss', metrics, 'val_loss', 'val_<metric>', 'lr', 'time'}
    on_train_end(logs)              logs: the last epoch's logs

As in Keras 3, ``on_train_batch_begin/end`` call ``on_batch_begin/end`` unless overridden, so a
callback may override either name. ``evaluate(callbacks=...)`` calls the ``on_test_*`` hooks and
``predict(callbacks=...)`` the ``on_predict_*`` ones.

A callback reaches the run through ``self.trainer`` (a :class:`TrainingState`: model, optimizer,
scheduler, history, params) and stops it with ``self.stop("reason")``, which sets
``trainer.stop_training = True`` and ``trainer.stop_reason``; the loop finishes the current batch
and, at an epoch's end, stops. Each callback resets its state in ``on_train_begin``, so one object
can be reused across runs. Messages count epochs from 1, as progress output does.

The package holds the protocol (``base``: Callback, CallbackList, TrainingState), what monitoring
callbacks share (``monitoring``), the stopping rules (``stopping``), checkpointing
(``checkpoint``), Keras' BackupAndRestore (``backup``), loggers (``loggers``) and Keras'
LambdaCallback, LearningRateScheduler and ReduceLROnPlateau (``keras_extras``); everything is
importable from here.
"""

from .backup import BackupAndRestore
from .base import Callback, CallbackList, Logs, TrainingState, as_callback_list
from .checkpoint import ModelCheckpoint
from .keras_extras import LambdaCallback, LearningRateScheduler, ReduceLROnPlateau
from .loggers import CSVLogger, LearningRateMonitor
from .stopping import DivergenceGuard, EarlyStopping, MaxTime, StopAtLoss, StopAtTarget, TerminateOnNaN

__all__ = [
    "Logs",
    "TrainingState",
    "Callback",
    "CallbackList",
    "as_callback_list",
    "EarlyStopping",
    "StopAtTarget",
    "StopAtLoss",
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
]
