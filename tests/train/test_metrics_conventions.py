"""The conventions the built-in metrics share with scikit-learn and Keras: the default average of
precision/recall/F1 on a binary task, the cut ``score > threshold``, when a column of floats is read as
labels, ties in top-k, NaN scores in AUC/AP, one-hot and multi-class AUC, sample weights, and r2 of one
sample. Each is checked against scikit-learn (or Keras' rule written out)."""

from __future__ import annotations

import numpy as np
import pytest
import sklearn.metrics as skm

from downslope.errors import ConfigError, DataError
from downslope.train import metrics as M


def _binary(seed: int, n: int = 60):
    rng = np.random.default_rng(seed)
    return rng.random(n), rng.integers(0, 2, n)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize(
    "ours, theirs", [(M.precision, skm.precision_score), (M.recall, skm.recall_score), (M.f1_score, skm.f1_score)]
)
def test_binary_default_is_the_positive_class_as_scikit_learn_and_keras(seed, ours, theirs):
    scores, y = _binary(seed)
    expected = theirs(y, scores > 0.5, zero_division=0)  # scikit-learn's default average='binary'
    assert ours(scores, y) == pytest.approx(expected, rel=1e-12)
    assert ours(scores.reshape(-1, 1), y) == pytest.approx(expected, rel=1e-12)
    assert ours(scores, y, average="binary") == pytest.approx(expected, rel=1e-12)
    assert ours(scores > 0.5, y) == pytest.approx(expected, rel=1e-12)  # labels 0/1
    two = np.stack([1 - scores, scores], axis=1)  # two class columns: the arg-max
    assert ours(two, y) == pytest.approx(theirs(y, two.argmax(1), zero_division=0), rel=1e-12)
    per_class = ours(scores, y, average=None)
    np.testing.assert_allclose(per_class, theirs(y, scores > 0.5, average=None, zero_division=0), rtol=1e-12)
    assert ours(scores, y, average="macro") == pytest.approx(
        theirs(y, scores > 0.5, average="macro", zero_division=0), rel=1e-12
    )


def test_the_stranger_example_binary_precision():
    s, y = np.array([0.9, 0.8, 0.2, 0.1, 0.7]), np.array([1, 0, 0, 0, 1])
    assert M.precision(s, y) == pytest.approx(2 / 3)
    np.testing.assert_allclose(M.precision(s, y, average=None), [1.0, 2 / 3])


@pytest.mark.parametrize("seed", range(3))
def test_multiclass_keeps_macro_and_refuses_binary_with_scikit_learns_words(seed):
    rng = np.random.default_rng(seed)
    scores, y = rng.normal(size=(50, 4)), rng.integers(0, 4, 50)
    assert M.f1_score(scores, y) == pytest.approx(skm.f1_score(y, scores.argmax(1), average="macro"), rel=1e-12)
    np.testing.assert_allclose(M.recall(scores, y, average=None), skm.recall_score(y, scores.argmax(1), average=None))
    with pytest.raises(ConfigError, match=r"Target is multiclass but average='binary'"):
        M.precision(scores, y, average="binary")
    # scores of more than two classes stay multi-class even when only classes 0 and 1 occur
    few = np.array([0, 1, 1, 0, 1])
    wide = np.eye(4)[few] + 0.01
    assert M.precision(wide, few) == pytest.approx(1.0)
    assert M.precision(wide, np.array([0, 1, 0, 0, 1])) == pytest.approx(
        skm.precision_score([0, 1, 0, 0, 1], few, average="macro")
    )


def test_multilabel_keeps_micro_and_refuses_binary():
    p = np.array([[0.9, 0.2, 0.7], [0.1, 0.8, 0.6]])
    t = np.array([[1, 0, 0], [0, 1, 1]])
    assert M.precision(p, t) == pytest.approx(skm.precision_score(t, p > 0.5, average="micro"))
    with pytest.raises(ConfigError, match="multilabel-indicator but average='binary'"):
        M.recall(p, t, average="binary")


def test_a_score_at_the_threshold_is_class_0_everywhere_as_keras():
    s, y = np.array([0.5, 0.2]), np.array([0, 0])
    assert M.accuracy(s, y) == 1.0 == M.binary_accuracy(s, y)
    assert M.precision(s, y) == 0.0  # nothing predicted positive
    logit_at_zero = M.for_logits(M.as_metric("accuracy"))
    assert logit_at_zero(np.array([[0.0], [-0.3]]), y) == 1.0
    assert M.accuracy(np.array([0.3, 0.2]), np.array([0, 1]), threshold=0.3) == 0.5


def test_whole_logits_are_cut_when_a_threshold_is_given():
    y = np.array([0, 1, 1])
    whole = np.array([[-3.0], [2.0], [5.0]])
    assert M.for_logits(M.as_metric("accuracy"))(whole, y) == 1.0
    assert M.for_logits(M.as_metric("f1"))(whole, y) == 1.0
    assert M.accuracy(whole, y, threshold=0.0) == 1.0
    assert M.accuracy(whole, y, threshold="auto") == 1.0  # outside [0, 1]: logits
    # no threshold given: a column of whole floats is labels (documented), integers always are
    assert M.accuracy(np.array([0.0, 2.0, 1.0]), np.array([0, 2, 1])) == 1.0
    assert M.accuracy(np.array([0, 2, 1]), np.array([0, 2, 1]), threshold=0.5) == 1.0


def test_top_k_ties_at_the_boundary_count_as_tensorflow_in_top_k():
    p = np.array([[0.5, 0.5, 0.5], [0.0, 0.0, 1.0], [0.2, 0.3, 0.5]])
    y = np.array([2, 1, 0])
    assert M.accuracy(p, y, top_k=2) == pytest.approx(2 / 3)  # row 2: class 0 is third
    assert M.sparse_top_k_categorical_accuracy(p, y, k=2) == pytest.approx(2 / 3)
    assert M.top_k_categorical_accuracy(p, np.eye(3)[y], k=2) == pytest.approx(2 / 3)
    rng = np.random.default_rng(0)
    q = np.round(rng.random((400, 6)) * 3)  # many ties
    t = rng.integers(0, 6, 400)
    keras_rule = np.mean((q > q[np.arange(400), t][:, None]).sum(1) < 3)
    assert M.accuracy(q, t, top_k=3) == pytest.approx(keras_rule)
    assert M.accuracy(np.array([[np.nan, 0.1, 0.2]]), np.array([0]), top_k=2) == 0.0  # a NaN score: a miss


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("fn", [M.roc_auc_score, M.average_precision_score])
def test_nan_or_inf_scores_are_refused_as_scikit_learn(bad, fn):
    s = np.array([0.1, bad, 0.3, 0.2])
    with pytest.raises(DataError, match="Input contains (NaN|infinity)") as caught:
        fn(s, np.array([0, 1, 1, 0]))
    assert fn.__name__ in str(caught.value)
    with pytest.raises(ValueError, match="Input contains"):
        skm.roc_auc_score([0, 1, 1, 0], s)


def test_other_metrics_on_nan():
    assert np.isnan(M.mean_squared_error([np.nan, 1.0], [0.0, 1.0]))
    assert np.isnan(M.mean_absolute_error([np.nan, 1.0], [0.0, 1.0]))
    assert M.accuracy(np.array([[np.nan, 0.1], [0.2, 0.9]]), np.array([1, 1])) == 0.5  # NaN row: a wrong class


@pytest.mark.parametrize("seed", range(3))
def test_auc_and_ap_of_one_hot_two_column_targets_are_binary(seed):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(40, 2))
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    y = rng.integers(0, 2, 40)
    onehot = np.eye(2)[y]
    assert M.roc_auc_score(probs, onehot) == pytest.approx(skm.roc_auc_score(onehot, probs), rel=1e-12)
    assert M.roc_auc_score(probs, onehot) == pytest.approx(skm.roc_auc_score(y, probs[:, 1]), rel=1e-12)
    assert M.average_precision_score(probs, onehot) == pytest.approx(
        skm.average_precision_score(y, probs[:, 1]), rel=1e-12
    )


@pytest.mark.parametrize("seed", range(3))
def test_multiclass_auc_is_one_vs_rest_macro_as_scikit_learn(seed):
    rng = np.random.default_rng(seed)
    logits = np.round(rng.normal(size=(80, 4)), 1)
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    y = rng.integers(0, 4, 80)
    w = rng.random(80)
    assert M.roc_auc_score(probs, y) == pytest.approx(skm.roc_auc_score(y, probs, multi_class="ovr"), rel=1e-12)
    assert M.roc_auc_score(probs, np.eye(4)[y]) == pytest.approx(
        skm.roc_auc_score(y, probs, multi_class="ovr"), rel=1e-12
    )
    assert M.roc_auc_score(probs, y, sample_weight=w) == pytest.approx(
        skm.roc_auc_score(y, probs, multi_class="ovr", sample_weight=w), rel=1e-12
    )
    with pytest.raises(ConfigError, match="need to be probabilities"):
        M.roc_auc_score(logits, y)


@pytest.mark.parametrize("seed", range(4))
def test_sample_weights_in_auc_ap_and_counts_are_scikit_learns(seed):
    rng = np.random.default_rng(seed)
    s = np.round(rng.random(70), 1)  # ties
    y = rng.integers(0, 2, 70)
    w = rng.random(70) * (rng.random(70) > 0.2)  # some zero weights
    assert M.roc_auc_score(s, y, sample_weight=w) == pytest.approx(skm.roc_auc_score(y, s, sample_weight=w), rel=1e-12)
    assert M.average_precision_score(s, y, sample_weight=w) == pytest.approx(
        skm.average_precision_score(y, s, sample_weight=w), rel=1e-12
    )
    for ours, theirs in ((M.precision, skm.precision_score), (M.recall, skm.recall_score), (M.f1_score, skm.f1_score)):
        assert ours(s, y, sample_weight=w) == pytest.approx(theirs(y, s > 0.5, sample_weight=w), rel=1e-12)
    # unit weights: the unweighted numbers
    ones = np.ones(70)
    assert M.roc_auc_score(s, y, sample_weight=ones) == pytest.approx(M.roc_auc_score(s, y), rel=1e-12)


def test_confusion_counts_many_classes_match_scikit_learn():
    rng = np.random.default_rng(0)
    y, pred = rng.integers(0, 300, 20_000), rng.integers(-5, 300, 20_000)  # a label only predicted, negatives
    for average in ("macro", "weighted", "micro"):
        assert M.f1_score(pred, y, average=average) == pytest.approx(
            skm.f1_score(y, pred, average=average, zero_division=0), rel=1e-12
        )


def test_ignore_index_leaves_samples_out_as_torchmetrics():
    scores = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    y = np.array([0, -100, 1, 1])
    keep = y != -100
    assert M.accuracy(scores, y, ignore_index=-100) == pytest.approx(2 / 3)
    assert M.f1_score(scores, y, ignore_index=-100) == pytest.approx(skm.f1_score(y[keep], scores[keep].argmax(1)))
    assert np.isnan(M.accuracy(scores[:1], np.array([-100]), ignore_index=-100))


def test_r2_of_one_sample_is_nan_as_scikit_learn():
    assert np.isnan(M.r2_score([1.0], [2.0]))
    assert M.r2_score([1.0, 2.0], [1.0, 3.0]) == pytest.approx(skm.r2_score([1.0, 3.0], [1.0, 2.0]))
