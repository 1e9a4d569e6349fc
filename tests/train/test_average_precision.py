"""average_precision_score (PR AUC) against scikit-learn's, with ties, and as fit's metric name."""

from __future__ import annotations

import numpy as np
import pytest

from downslope.errors import ConfigError
from downslope.train.metrics import average_precision_score, get_metric

sk = pytest.importorskip("sklearn.metrics")


def test_it_matches_scikit_learn_with_ties_and_rare_positives():
    r = np.random.default_rng(0)
    for _ in range(100):
        n = int(r.integers(2, 80))
        y = (r.random(n) < r.uniform(0.02, 0.6)).astype(np.int64)
        if not y.any():
            continue
        scores = np.round(r.normal(size=n), int(r.integers(0, 3)))  # rounding makes ties
        assert average_precision_score(scores, y) == pytest.approx(sk.average_precision_score(y, scores), abs=1e-12)
    two_columns = r.normal(size=(50, 2))
    y = r.integers(0, 2, 50)
    expected = sk.average_precision_score(y, two_columns[:, 1] - two_columns[:, 0])
    assert average_precision_score(two_columns, y) == pytest.approx(expected, abs=1e-12)


def test_no_positive_is_nan_and_labels_must_be_binary():
    assert np.isnan(average_precision_score([0.1, 0.2], [0, 0]))
    with pytest.raises(ConfigError, match="binary labels 0/1"):
        average_precision_score([0.1, 0.2], [0, 2])


def test_fit_knows_it_by_name():
    name, metric = get_metric("pr_auc")
    assert name == "average_precision" and metric.greater_is_better
