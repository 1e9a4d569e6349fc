"""precision, recall and f1_score (built by one factory): each a function of its own name, with the full
signature and its documentation, and the values of scikit-learn's precision_score/recall_score/f1_score."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import sklearn.metrics as skm

from downslope.train import metrics

SKLEARN = {"precision": skm.precision_score, "recall": skm.recall_score, "f1_score": skm.f1_score}


@pytest.mark.parametrize("name", list(SKLEARN))
def test_each_is_a_documented_function_of_its_own_name(name: str) -> None:
    fn = getattr(metrics, name)
    assert inspect.isfunction(fn) and fn.__name__ == fn.__qualname__ == name
    assert fn.__module__ == "downslope.train.metrics"
    assert list(inspect.signature(fn).parameters) == [
        "preds", "target", "average", "threshold", "multilabel", "ignore_index", "sample_weight",
    ]  # fmt: skip
    assert inspect.signature(fn).parameters["average"].default == "auto"
    doc = fn.__doc__ or ""
    assert "{average}" not in doc and "``average``: 'auto'" in doc and ">>> " in doc
    assert not metrics.keras_order(fn)  # preds first, PyTorch's order


@pytest.mark.parametrize("name", list(SKLEARN))
@pytest.mark.parametrize("average", ["macro", "micro", "weighted", None])
def test_values_match_sklearn(name: str, average: str | None) -> None:
    rng = np.random.default_rng(1)
    preds, target, weight = rng.integers(0, 4, 60), rng.integers(0, 4, 60), rng.random(60)
    ours = getattr(metrics, name)(preds, target, average=average, sample_weight=weight)
    theirs = SKLEARN[name](target, preds, average=average, sample_weight=weight, zero_division=0)
    np.testing.assert_allclose(ours, theirs, rtol=1e-12)
    binary = rng.random(40), rng.integers(0, 2, 40)
    expected = SKLEARN[name](binary[1], (binary[0] > 0.5).astype(int), zero_division=0)
    assert getattr(metrics, name)(*binary) == pytest.approx(expected, abs=1e-12)
