"""A binary run's ``average_precision`` names the class it is about (``positive_class``): the 1 of labels
0/1 (scikit-learn's ``pos_label=1``), else the rarer training class, e.g. 'fraud' of fraud/ok, where
``classes[1]`` ('ok', alphabetically second) would report the easy majority's near-1 area."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from downslope.cli import main
from downslope.runs import open_run

FAST = ["--hidden", "8", "--epochs", "5", "--patience", "0", "--quiet", "--lr", "0.05"]


@pytest.fixture
def no_plots(monkeypatch):
    from downslope.cli import results

    monkeypatch.setattr(results, "_plots", lambda result, run: ({}, []))


def _rare(path: Path, low: str, high: str, n: int = 600, seed: int = 0) -> Path:
    """Two features; the ``high`` label on about 8% of the rows, shifted so a model can partly find them."""
    rng = np.random.default_rng(seed)
    rare = rng.random(n) < 0.08
    x = rng.normal(size=(n, 2)) + rare[:, None] * 1.2
    rows = [f"{a:.4f},{b:.4f},{high if r else low}" for (a, b), r in zip(x, rare)]
    path.write_text("a,b,label\n" + "\n".join(rows) + "\n")
    return path


def _test_rows(run: Path, data: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The run's test rows: (probabilities in classes_ order, labels as written, classes_)."""
    handle = open_run(run)
    with data.open() as f:
        rows = list(csv.reader(f))[1:]
    index = np.asarray(handle.state["split"]["test_indices"], dtype=np.int64)
    X = np.array([[float(a), float(b)] for a, b, _ in rows])[index]
    labels = np.array([label for *_, label in rows])[index]
    return handle.predict_proba(X), labels, handle.classes_


def test_text_labels_score_the_rarer_class_and_name_it(tmp_path, capsys, no_plots):
    data = _rare(tmp_path / "rare.csv", "ok", "fraud")  # fraud sorts first: classes ['fraud', 'ok']
    run = tmp_path / "run"
    assert main(["train", "--data", str(data), "--out", str(run), *FAST]) == 0
    printed = capsys.readouterr().out
    metrics = json.loads((run / "metrics.json").read_text())
    probs, labels, classes = _test_rows(run, data)
    assert list(classes) == ["fraud", "ok"]
    expected = average_precision_score(labels, probs[:, 0], pos_label="fraud")
    assert metrics["test_positive_class"] == "fraud"
    assert metrics["test_average_precision"] == pytest.approx(expected, rel=1e-6)
    # the majority's area is another number (near 1 here): the one reported is not it
    assert abs(average_precision_score(labels, probs[:, 1], pos_label="ok") - expected) > 0.3
    # the class is said by the number it is about, not as a metric of its own
    ap = float(f"{metrics['test_average_precision']:.4g}")
    assert f"test_average_precision={ap} (average precision of class 'fraud')" in printed
    assert "test_positive_class" not in printed
    # evaluate scores the same split the same way, and names the class too
    assert main(["evaluate", str(run)]) == 0
    said = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert said["positive_class"] == "fraud"
    assert said["average_precision"] == pytest.approx(expected, rel=1e-5)


def test_zero_one_labels_keep_scikit_learns_pos_label_1_even_when_1_is_common(tmp_path, no_plots):
    data = _rare(tmp_path / "common1.csv", "1", "0")  # 0 is the rare class; the convention still says 1
    run = tmp_path / "run"
    assert main(["train", "--data", str(data), "--out", str(run), *FAST]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    probs, labels, classes = _test_rows(run, data)
    assert classes.tolist() == [0, 1]
    assert metrics["test_positive_class"] == "1"
    expected = average_precision_score(labels.astype(int), probs[:, 1])  # pos_label=1, scikit-learn's default
    assert metrics["test_average_precision"] == pytest.approx(expected, rel=1e-6)


def test_the_single_class_warning_names_the_positive_class():
    from types import SimpleNamespace

    import downslope as ds
    from downslope import nn
    from downslope.experiment.run import classifier_warnings

    model = nn.Linear(2, 2)
    with ds.no_grad():  # always 'ok'
        model.weight.zero_()
        model.bias.copy_(ds.tensor([0.0, 5.0]))
    data = SimpleNamespace(
        task="classification", X_test=np.zeros((4, 2), np.float32), y_test=np.array([1, 1, 1, 0]),
        class_names=["fraud", "ok"], n_outputs=2,
    )  # fmt: skip
    metrics = {"test_accuracy": 0.75, "test_baseline_accuracy": 0.75, "test_positive_class": "fraud"}
    (note,) = classifier_warnings(model, data, metrics)
    assert "average_precision, positive class 'fraud'" in note
