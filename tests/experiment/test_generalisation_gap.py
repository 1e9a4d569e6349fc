"""The overfitting diagnosis for a validation loss that plateaus far above the training loss (a wide table
with a linear target: the default MLP scored r2 0.77 where least squares scored 0.98, with no advice),
checked against closed forms; and its silence on healthy runs."""

from __future__ import annotations

import numpy as np
import pytest

from downslope.experiment import normalize_config
from downslope.experiment.advice import GAP_BASELINE_SHARE, GAP_RATIO, generalisation_gap_note
from downslope.experiment.inputs import prepare
from downslope.experiment.models import build_loss
from downslope.experiment.run import baseline_val_loss, run_training

MLP = {"model": "mlp", "weight_decay": 0.0, "dropout": 0.0, "hidden": [128, 64]}


def test_the_note_fires_on_a_large_gap_that_matters_and_advises_what_the_run_has_not_tried():
    note = generalisation_gap_note(2.3e-4, 0.25, 1.0, 17, MLP, 199, 650)
    assert note.startswith("the model overfits: at epoch 17, whose weights are saved, the validation loss 0.25 is ")
    assert "25% of the loss of predicting without the features (1)" in note
    assert "199 features for 650 training rows" in note
    for advice in ("--model linear", "--weight-decay 0.1", "--dropout 0.2", "a smaller --hidden (32,16)"):
        assert advice in note
    tried = dict(MLP, model="linear", weight_decay=0.1)
    linear = generalisation_gap_note(2.3e-4, 0.25, 1.0, 17, tried, 199, 650)
    assert "--model linear" not in linear and "--weight-decay 1" in linear and "--dropout" not in linear


@pytest.mark.parametrize(
    "train, val, baseline",
    [
        (0.004, 0.08, 2.3),  # digits: 20 times apart, yet 3.5% of the prior's loss: a good fit
        (0.05, 0.09, 1.0),  # a small gap
        (0.02, 0.2 - 1e-9, 1.0),  # 10 times at most
        (0.001, 0.1, 1.0),  # 10% of the baseline at most
        (0.0, 0.5, None),  # no validation rows
        (float("nan"), 0.5, 1.0),
    ],
)
def test_the_note_is_silent_below_either_threshold(train, val, baseline):
    assert generalisation_gap_note(train, val, baseline, 5, MLP, 10, 1000) == ""
    assert (GAP_RATIO, GAP_BASELINE_SHARE) == (10.0, 0.1)


def _table(tmp_path, n, d, seed=7, name="wide.csv"):
    r = np.random.default_rng(seed)
    X = r.normal(size=(n, d))
    y = X[:, :5] @ np.array([1, 2, -1, 0.5, 3]) + 0.5 * r.normal(size=n)
    path = tmp_path / name
    head = ",".join([f"c{i}" for i in range(d)] + ["y"])
    np.savetxt(path, np.c_[X, y], delimiter=",", fmt="%.5f", header=head, comments="")
    return str(path)


def test_the_baseline_loss_is_the_training_mean_or_prior_on_the_validation_rows(tmp_path):
    cfg = normalize_config({"data": _table(tmp_path, 300, 6), "verbose": 0})
    data = prepare(cfg)
    y_tr, y_val = np.asarray(data.y_train, np.float64), np.asarray(data.y_val, np.float64)
    # standardized by the training split: the mean is 0, the loss the validation rows' mean square
    expected = np.mean(((y_val - y_tr.mean()) / y_tr.std()) ** 2)
    assert baseline_val_loss(build_loss(cfg, "regression"), data) == pytest.approx(expected, rel=1e-5)
    iris = normalize_config({"data": "iris", "verbose": 0})
    data = prepare(iris)
    prior = np.bincount(data.y_train, minlength=3) / len(data.y_train)
    expected = -np.mean(np.log(prior[data.y_val]))  # scikit-learn's log_loss of DummyClassifier(strategy="prior")
    assert baseline_val_loss(build_loss(iris, "classification"), data) == pytest.approx(expected, rel=1e-5)
    assert baseline_val_loss(build_loss(iris, "classification"), prepare(dict(iris, val_split=0.0))) is None


def test_a_wide_table_with_a_linear_target_gets_the_diagnosis_and_a_narrow_one_does_not(tmp_path):
    wide = run_training(normalize_config({"data": _table(tmp_path, 400, 120), "verbose": 0, "epochs": 40}))
    (note,) = [d for d in wide.diagnostics if d.startswith("the model overfits")]
    assert "--model linear" in note and "120 features for 260 training rows" in note
    narrow = run_training(normalize_config({"data": _table(tmp_path, 400, 6, name="narrow.csv"), "verbose": 0}))
    assert not [d for d in narrow.diagnostics if "overfit" in d]
    # the advice points the right way: least squares (the linear model's optimum) does far better on the split
    data = wide.data
    design = np.c_[np.asarray(data.X_train, np.float64), np.ones(len(data.X_train))]
    coef = np.linalg.lstsq(design, np.asarray(data.y_train, np.float64).reshape(-1), rcond=None)[0]
    y_test = np.asarray(data.y_test, np.float64).reshape(-1)
    fitted = np.c_[np.asarray(data.X_test, np.float64), np.ones(len(y_test))] @ coef
    r2 = 1 - np.sum((y_test - fitted) ** 2) / np.sum((y_test - y_test.mean()) ** 2)
    assert r2 > wide.metrics["test_r2"] + 0.1


def test_a_weighted_run_that_stopped_early_is_not_told_to_train_longer():
    from types import SimpleNamespace

    import downslope as ds
    from downslope import nn
    from downslope.experiment.run import classifier_warnings

    model = nn.Linear(2, 2)
    with ds.no_grad():  # always class 0
        model.weight.zero_()
        model.bias.copy_(ds.tensor([5.0, 0.0]))
    data = SimpleNamespace(
        task="classification", X_test=np.zeros((4, 2), np.float32), y_test=np.array([0, 0, 0, 1]),
        class_names=["ok", "fraud"], n_outputs=2,
    )  # fmt: skip
    metrics = {"test_accuracy": 0.75, "test_baseline_accuracy": 0.75}
    (early,) = classifier_warnings(model, data, metrics, "balanced", stopped_at="3 of 100")
    assert "early stopping ended training at epoch 3 of 100" in early and "epochs are the next levers" not in early
    assert "more epochs would not help" in early and "average_precision" in early
    (limit,) = classifier_warnings(model, data, metrics, "balanced")
    assert "more data, features or epochs are the next levers" in limit


def test_a_binary_run_reports_average_precision_as_scikit_learn_computes_it(tmp_path):
    from sklearn.metrics import average_precision_score

    from downslope.experiment.inputs import data_units  # noqa: F401  (the scores below are probabilities)
    from downslope.experiment.run import _softmax
    from downslope.train import predict

    r = np.random.default_rng(3)
    X = r.normal(size=(600, 3))
    y = (X[:, 0] + 0.8 * r.normal(size=600) > 1.6).astype(int)  # about 8% positives
    path = tmp_path / "rare.csv"
    np.savetxt(path, np.c_[X, y], delimiter=",", fmt=["%.4f"] * 3 + ["%d"], header="a,b,c,y", comments="")
    result = run_training(normalize_config({"data": str(path), "verbose": 0, "epochs": 5, "hidden": [8]}))
    data = result.data
    probs = _softmax(np.asarray(predict(result.model, data.X_test).numpy()))
    expected = average_precision_score(data.y_test, probs[:, 1])
    assert result.metrics["test_average_precision"] == pytest.approx(expected, rel=1e-6)
