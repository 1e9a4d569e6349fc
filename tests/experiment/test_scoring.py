"""Scores that accuracy hides (baseline, balanced accuracy, ROC AUC), class weights, and the checks a
run makes of its data (many classes, row hashes)."""

from __future__ import annotations

import numpy as np
import pytest

from downslope.errors import ConfigError, DataError
from downslope.experiment import inputs, normalize_config
from downslope.experiment.models import balanced_class_weights, build_loss
from downslope.experiment.run import classification_scores, roc_auc, run_training


def test_roc_auc_matches_scikit_learn_with_ties():
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    for _ in range(20):
        y = rng.integers(0, 2, 101)
        s = np.round(rng.random(101), 1)  # many ties
        assert roc_auc(y, s) == pytest.approx(metrics.roc_auc_score(y, s), abs=1e-12)
    assert np.isnan(roc_auc(np.zeros(5), np.arange(5.0)))


def test_classification_scores_match_scikit_learn():
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(200, 3))
    y = rng.integers(0, 3, 200)
    out = classification_scores(logits, y, np.bincount([2, 2, 1]))
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    assert out["balanced_accuracy"] == pytest.approx(metrics.balanced_accuracy_score(y, logits.argmax(1)))
    assert out["roc_auc"] == pytest.approx(metrics.roc_auc_score(y, probs, multi_class="ovr", average="macro"))
    assert out["baseline_accuracy"] == pytest.approx((y == 2).mean())


def test_balanced_class_weights_match_scikit_learn_and_reach_the_loss():
    utils = pytest.importorskip("sklearn.utils")
    y = np.array([0] * 90 + [1] * 8 + [2] * 2)
    expected = utils.compute_class_weight("balanced", classes=np.arange(3), y=y)
    assert balanced_class_weights(y, 3) == pytest.approx(expected)
    cfg = normalize_config({"class_weight": "balanced"})
    loss = build_loss(cfg, "classification", balanced_class_weights(y, 3))
    assert np.asarray(loss.weight.numpy()) == pytest.approx(expected)
    with pytest.raises(ConfigError, match="regression"):
        build_loss(cfg, "regression")
    with pytest.raises(ConfigError, match="class_weight"):
        normalize_config({"class_weight": "heavy"})


def _imbalanced(tmp_path, n=400, positives=4):
    rng = np.random.default_rng(0)
    lines = ["a,b,y"] + [f"{rng.normal():.3f},{rng.normal():.3f},{int(i < positives)}" for i in range(n)]
    p = tmp_path / "fraud.csv"
    p.write_text("\n".join(lines) + "\n")
    return str(p)


def test_a_majority_class_model_is_warned_about(tmp_path):
    cfg = normalize_config({"data": _imbalanced(tmp_path), "epochs": 2, "verbose": 0, "hidden": [4]})
    result = run_training(cfg)
    m = result.metrics
    assert {"test_baseline_accuracy", "test_balanced_accuracy", "test_roc_auc"} <= set(m)
    assert list(m)[:4] == ["test_accuracy", "test_f1_macro", "test_precision_macro", "test_recall_macro"]
    assert m["test_accuracy"] <= m["test_baseline_accuracy"]
    assert any("single class" in d or "does not beat the baseline" in d for d in result.diagnostics)
    weighted = run_training(dict(cfg, class_weight="balanced"))
    assert weighted.cfg["class_weight"] == "balanced"


def test_a_target_with_units_is_not_a_476_class_classifier(tmp_path):
    rng = np.random.default_rng(0)
    lines = ["a,weight"] + [f"{rng.normal():.3f},{rng.normal(75, 8):.1f} kg" for _ in range(300)]
    p = tmp_path / "units.csv"
    p.write_text("\n".join(lines) + "\n")
    cfg = normalize_config({"data": str(p), "target": "weight", "verbose": 0})
    with pytest.raises(DataError, match=r"classes in 300 rows.*followed by a unit.*'kg'"):
        inputs.prepare(cfg)
    forced = inputs.prepare(dict(cfg, task="classification"))  # asked for: a warning, not a refusal
    assert any("rows per class" in n for n in forced.notes)


def _fnv(X):
    words = np.ascontiguousarray(X, dtype=np.float32).reshape(len(X), -1).view(np.uint32).astype(np.uint64)
    h = np.full(len(X), 14695981039346656037, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for j in range(words.shape[1]):
            h = (h ^ words[:, j]) * np.uint64(1099511628211)
    return h


def test_row_hashes_work_in_chunks_with_the_same_values(monkeypatch):
    X = np.random.default_rng(0).random((257, 9)).astype(np.float32)
    expected = _fnv(X)
    monkeypatch.setattr(inputs, "HASH_CHUNK_BYTES", 100)  # a few rows per chunk
    assert (inputs.row_hashes(X) == expected).all()
    index = np.arange(0, 257, 3)
    assert (inputs._hashes(X, index) == expected[index]).all()
    assert inputs.row_hashes(X[:0]).shape == (0,)


def test_the_baseline_is_the_training_majority_and_absent_without_training_counts():
    logits = np.array([[2.0, 0.0], [0.0, 2.0], [0.0, 2.0], [0.0, 2.0]])
    y = np.array([0, 1, 1, 1])
    assert classification_scores(logits, y, np.array([9, 1]))["baseline_accuracy"] == 0.25
    assert "baseline_accuracy" not in classification_scores(logits, y, None)  # never the scored rows' majority


def test_the_single_class_warning_names_the_baseline_and_advice_the_run_has_not_taken():
    from types import SimpleNamespace

    import downslope as ds
    from downslope import nn
    from downslope.experiment.run import classifier_warnings

    model = nn.Linear(2, 3)
    with ds.no_grad():  # always class 1 ('dog'), where 'cat' is the most frequent
        model.weight.zero_()
        model.bias.copy_(ds.tensor([0.0, 5.0, 0.0]))
    data = SimpleNamespace(
        task="classification",
        X_test=np.zeros((4, 2), np.float32),
        y_test=np.array([0, 0, 1, 2]),
        class_names=["cat", "dog", "bird"],
        n_outputs=3,
    )
    metrics = {"test_accuracy": 0.25, "test_baseline_accuracy": 0.5}
    (plain,) = classifier_warnings(model, data, metrics)
    assert "single class ('dog')" in plain and "most frequent class gets 0.5" in plain
    assert "try --class-weight balanced" in plain
    (weighted,) = classifier_warnings(model, data, metrics, class_weight="balanced")
    assert "--class-weight balanced" not in weighted and "class-weighted already" in weighted


@pytest.mark.parametrize(
    ("names", "train_counts", "positive"),
    [
        (["fraud", "ok"], [56, 2944], "fraud"),  # text: the rarer training class
        (["no", "yes"], [2944, 56], "yes"),
        (["no", "yes"], [50, 50], "yes"),  # a tie: classes[1]
        (["0", "1"], [2944, 56], "1"),  # scikit-learn's pos_label=1, whichever is rarer
        (["0", "1"], [56, 2944], "1"),
        (["-1", "1"], [56, 2944], "1"),
        (["False", "True"], [56, 2944], "True"),
        (["1", "2"], [2944, 56], "2"),  # numbers that are not 0/1 or -1/1: the rarer class
    ],
)
def test_average_precision_is_scikit_learns_for_the_named_positive_class(names, train_counts, positive):
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(4)
    logits = rng.normal(size=(300, 2))
    y = (rng.random(300) < 0.1).astype(np.int64)  # the scored rows' own balance plays no part here
    out = classification_scores(logits, y, np.array(train_counts), names)
    assert out["positive_class"] == positive
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    labels = np.array(names)[y]
    j = names.index(positive)
    expected = metrics.average_precision_score(labels, probs[:, j], pos_label=positive)
    assert out["average_precision"] == pytest.approx(expected, rel=1e-12)


def test_without_training_counts_the_positive_class_is_the_scored_rows_rarer_one():
    y = np.array([0, 1, 1, 1])
    out = classification_scores(np.zeros((4, 2)), y, None, ["fraud", "ok"])
    assert out["positive_class"] == "fraud" and "baseline_accuracy" not in out
