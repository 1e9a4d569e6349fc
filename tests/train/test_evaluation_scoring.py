"""score and score_on_device (one set of steps, each joining the batches its own way): the same values,
against scikit-learn, and the not-class-labels warning pointing at the line that called them."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import sklearn.metrics as skm

from downslope.train.evaluation import score, score_on_device
from downslope.train.metrics import as_metric


@pytest.mark.parametrize("scorer", [score, score_on_device])
def test_score_joins_the_batches_and_matches_sklearn(scorer) -> None:
    rng = np.random.default_rng(0)
    preds = [rng.random((n, 3)).astype(np.float32) for n in (5, 7, 4)]
    targets = [rng.integers(0, 3, len(p)) for p in preds]
    logs = scorer([as_metric("accuracy"), as_metric("f1")], preds, targets)
    labels, truth = np.argmax(np.concatenate(preds), axis=1), np.concatenate(targets)
    assert logs["accuracy"] == pytest.approx(skm.accuracy_score(truth, labels), abs=1e-12)
    assert logs["f1"] == pytest.approx(skm.f1_score(truth, labels, average="macro"), abs=1e-12)
    assert scorer([as_metric("accuracy")], [], []) == {}


@pytest.mark.parametrize("scorer", [score, score_on_device])
def test_the_not_class_labels_warning_points_at_the_caller(scorer) -> None:
    preds, targets = [np.array([[0.2], [0.7]], np.float32)], [np.array([0.25, 1.5], np.float32)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        scorer([as_metric("accuracy")], preds, targets)
    found = [w for w in caught if "not class labels" in str(w.message)]
    assert len(found) == 1
    assert found[0].filename == __file__
