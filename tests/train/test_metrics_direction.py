"""mode='auto': the monitoring callbacks and History pick the same direction for every logged name."""

from __future__ import annotations

import pytest

import downslope as ds
from downslope.train import metrics as M
from downslope.train.callbacks import EarlyStopping, ModelCheckpoint, ReduceLROnPlateau
from downslope.train.history import History

# Keras' own metric names, torchmetrics-style names, sklearn's, users' own, losses and logged extras.
NAMES = [
    # Keras
    "loss", "accuracy", "acc", "binary_accuracy", "categorical_accuracy", "sparse_categorical_accuracy",
    "top_k_categorical_accuracy", "sparse_top_k_categorical_accuracy", "auc", "AUC", "precision", "recall",
    "f1_score", "fbeta_score", "mean_squared_error", "mean_absolute_error", "mean_absolute_percentage_error",
    "mean_squared_logarithmic_error", "root_mean_squared_error", "cosine_similarity", "log_cosh", "logcosh",
    "hinge", "squared_hinge", "categorical_hinge", "kl_divergence", "kld", "poisson", "binary_crossentropy",
    "categorical_crossentropy", "sparse_categorical_crossentropy", "mean_iou", "iou", "r2_score",
    # torchmetrics / scikit-learn style
    "f1", "f1_macro", "f1_micro", "f1_weighted", "roc_auc", "roc_auc_score", "average_precision",
    "average_precision_score", "pr_auc", "balanced_accuracy", "matthews_corrcoef", "mcc", "cohen_kappa",
    "kappa", "explained_variance", "r2", "mse", "mae", "rmse", "mape", "dice", "specificity", "sensitivity",
    "psnr", "ssim", "bleu", "rouge", "top5_accuracy", "top_5_accuracy", "top_k_accuracy",
    # losses and names a part of which says nothing
    "log_loss", "perplexity", "brier_score", "my_score", "score", "balanced_acc", "my_accuracy_loss",
    "error_rate", "lr", "learning_rate", "thing", "auc_loss",
]  # fmt: skip


@pytest.mark.parametrize("prefix", ["", "val_"])
def test_callbacks_auto_mode_agrees_with_history_on_every_name(prefix):
    for base in NAMES:
        name = prefix + base
        maximize = History().maximizes(name)
        assert M.greater_is_better(name) is maximize, name
        want = "max" if maximize else "min"
        assert EarlyStopping(monitor=name).mode == want, name
        assert ModelCheckpoint("best.ds", monitor=name).mode == want, name
        stepper = ReduceLROnPlateau(monitor=name)
        stepper.on_train_begin()
        assert stepper._direction == want, name


def test_the_names_that_are_better_larger():
    larger = {n for n in NAMES if M.greater_is_better(n)}
    assert larger == {
        "accuracy", "acc", "binary_accuracy", "categorical_accuracy", "sparse_categorical_accuracy",
        "top_k_categorical_accuracy", "sparse_top_k_categorical_accuracy", "auc", "AUC", "precision", "recall",
        "f1_score", "fbeta_score", "cosine_similarity", "mean_iou", "iou", "r2_score", "f1", "f1_macro",
        "f1_micro", "f1_weighted", "roc_auc", "roc_auc_score", "average_precision", "average_precision_score",
        "pr_auc", "balanced_accuracy", "matthews_corrcoef", "mcc", "cohen_kappa", "kappa",
        "explained_variance", "r2", "dice", "specificity", "sensitivity", "psnr", "ssim", "bleu", "rouge",
        "top5_accuracy", "top_k_accuracy", "top_5_accuracy", "balanced_acc",
    }  # fmt: skip
    # a word inside a name says nothing (only an accuracy's or an AUC's ending does): these are losses or
    # unknown, and minimized (as History does)
    for name in ("brier_score", "my_score", "log_loss", "perplexity", "auc_loss", "my_accuracy_loss"):
        assert not M.greater_is_better("val_" + name)


def test_a_function_named_score_is_not_guessed_larger():
    def brier_score(preds, target):
        return 0.0

    def my_score(preds, target):
        return 0.0

    def f1_macro(preds, target):
        return 0.0

    assert not M.as_metric(brier_score).greater_is_better and M.as_metric(brier_score).direction_known
    assert not M.as_metric(my_score).direction_known  # 'auto' asks for a mode instead of guessing
    assert M.as_metric(f1_macro).greater_is_better and M.as_metric(f1_macro).direction_known
    with pytest.raises(ds.ConfigError, match="cannot tell whether 'val_my_score'"):
        stopper = EarlyStopping(monitor="val_my_score")
        stopper.set_trainer(ds.train.TrainingState(metrics=[M.as_metric(my_score)]))
        stopper.on_train_begin()
