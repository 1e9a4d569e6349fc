"""Training: metrics (more arrives with the fit loop)."""

from .metrics import (
    accuracy,
    f1_score,
    get_metric,
    mean_absolute_error,
    mean_squared_error,
    precision,
    r2_score,
    recall,
    root_mean_squared_error,
)

__all__ = [
    "accuracy",
    "precision",
    "recall",
    "f1_score",
    "mean_squared_error",
    "mean_absolute_error",
    "root_mean_squared_error",
    "r2_score",
    "get_metric",
]
