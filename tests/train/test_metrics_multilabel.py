"""Multi-label targets and the threshold that cuts scores: how fit's metrics read the model's outputs
from its loss (a binary cross-entropy on logits or probabilities, wrapped or not, or a function fit
cannot read), compared with scikit-learn and with a torch loop."""

import functools
import warnings

import numpy as np
import pytest
import torch

import downslope as ds
import downslope.nn.functional as F
from downslope import nn
from downslope.train import metrics as M
from downslope.train.evaluation import loss_reads

skm = pytest.importorskip("sklearn.metrics")


def _multilabel_data(seed=0, n=300, c=4):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6)).astype(np.float32)
    w = rng.normal(size=(6, c)).astype(np.float32)
    y = ((x @ w) > 0.5).astype(np.float32)  # rows with 0, 1 or several labels
    assert (y.sum(1) != 1).any() and (y.sum(1) == 1).any()
    return x, w, y


def _linear(w, bias):
    model = nn.Linear(w.shape[0], w.shape[1])
    with ds.no_grad():
        model.weight.copy_(ds.tensor(w.T))
        model.bias.copy_(ds.tensor(np.full(w.shape[1], bias, np.float32)))
    return model


@pytest.mark.parametrize("seed", range(3))
def test_multilabel_accuracy_is_keras_binary_accuracy_and_f1_is_sklearn_micro(seed):
    x, w, y = _multilabel_data(seed)
    model = _linear(w, -0.3)
    logits = torch.tensor(x) @ torch.tensor(w) - 0.3
    predicted = (torch.sigmoid(logits) > 0.5).numpy()
    elementwise = float((predicted == (y > 0.5)).mean())  # Keras' binary_accuracy, torchmetrics' multilabel
    logs = ds.evaluate(model, nn.BCEWithLogitsLoss(), (x, y), metrics=["accuracy", "f1", "precision", "recall"])
    assert logs["accuracy"] == pytest.approx(elementwise, abs=1e-12)
    assert logs["f1"] == pytest.approx(skm.f1_score(y, predicted, average="micro", zero_division=0))
    assert logs["precision"] == pytest.approx(skm.precision_score(y, predicted, average="micro", zero_division=0))
    assert logs["recall"] == pytest.approx(skm.recall_score(y, predicted, average="micro", zero_division=0))
    history = ds.fit(
        model, nn.BCEWithLogitsLoss(), ds.optim.SGD(model.parameters(), lr=0.0), (x, y), epochs=1, verbose=0,
        metrics=["accuracy"],
    )  # fmt: skip
    assert history["accuracy"][0] == pytest.approx(elementwise, abs=1e-12)


def test_multilabel_probabilities_with_bce_cut_at_one_half_even_when_every_row_is_one_hot():
    # one-hot-looking rows under a binary loss are still C independent labels (the loss says so)
    probs = np.array([[0.9, 0.6, 0.1], [0.2, 0.4, 0.7], [0.3, 0.8, 0.2]], np.float32)
    y = np.eye(3, dtype=np.float32)[[0, 2, 1]]
    predicted = probs > 0.5
    model = nn.Identity()
    logs = ds.evaluate(model, nn.BCELoss(), (probs, y), metrics=["accuracy", "f1"])
    assert logs["accuracy"] == pytest.approx(float((predicted == (y > 0.5)).mean()))
    assert logs["f1"] == pytest.approx(skm.f1_score(y, predicted, average="micro"))
    # without the loss telling, one-hot rows are classes: the arg-max accuracy
    assert M.accuracy(probs, y) == pytest.approx(skm.accuracy_score(y.argmax(1), probs.argmax(1)))


@pytest.mark.parametrize("average", ["micro", "macro", "weighted"])
def test_multilabel_precision_recall_f1_take_sklearns_averages_on_the_label_matrix(average):
    rng = np.random.default_rng(3)
    y = (rng.random((50, 5)) < 0.4).astype(np.float64)
    y[:, 4] = 0  # a label never present: zero divisions
    scores = rng.normal(size=(50, 5))
    predicted = scores > 0.0
    for ours, theirs in [(M.precision, skm.precision_score), (M.recall, skm.recall_score), (M.f1_score, skm.f1_score)]:
        expected = theirs(y, predicted, average=average, zero_division=0)
        assert ours(scores, y, average=average, threshold=0.0) == pytest.approx(expected)
    assert M.f1_score(scores, y, threshold=0.0) == pytest.approx(skm.f1_score(y, predicted, average="micro"))


def _binary_case():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 3)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.float32).reshape(-1, 1)
    model = nn.Linear(3, 1)
    with ds.no_grad():
        model.weight.copy_(ds.tensor([[1.0, 0.0, 0.0]]))
        model.bias.copy_(ds.tensor([-0.3]))
    logits = x[:, :1] - 0.3
    reference = float(((logits > 0) == (y > 0.5)).mean())  # a torch loop: sigmoid(z) > 0.5 <=> z > 0
    return model, x, y, reference


@pytest.mark.parametrize(
    "loss",
    [
        functools.partial(F.binary_cross_entropy_with_logits, pos_weight=ds.tensor([2.0])),
        nn.BCEWithLogitsLoss(pos_weight=ds.tensor([2.0])),
        lambda o, t: F.binary_cross_entropy_with_logits(o, t),
    ],
    ids=["partial", "module-pos-weight", "lambda"],
)
def test_a_wrapped_logits_loss_cuts_one_column_at_zero(loss):
    model, x, y, reference = _binary_case()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # scores outside [0, 1]: no guess, no warning
        logs = ds.evaluate(model, loss, (x, y), metrics=["accuracy", "f1"])
    assert logs["accuracy"] == pytest.approx(reference, abs=1e-12)
    predicted = (x[:, 0] - 0.3 > 0).astype(int)
    assert logs["f1"] == pytest.approx(skm.f1_score(y[:, 0].astype(int), predicted))  # binary: class 1's F1


def test_an_unknown_loss_on_scores_inside_0_1_cuts_at_one_half_and_warns_that_it_guessed():
    rng = np.random.default_rng(1)
    probs = rng.random((50, 1)).astype(np.float32)
    y = (rng.random((50, 1)) < 0.5).astype(np.float32)
    expected = float(((probs > 0.5) == (y > 0.5)).mean())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        logs = ds.evaluate(
            nn.Identity(), lambda o, t: F.binary_cross_entropy(o, t), (probs, y), metrics=["accuracy", "f1"]
        )
    guessed = [w for w in caught if "cut at 0.5" in str(w.message)]
    assert len(guessed) == 1, [str(w.message) for w in caught]  # once for all the metrics of the call
    assert logs["accuracy"] == pytest.approx(expected)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # said explicitly: no warning
        said = ds.evaluate(
            nn.Identity(), lambda o, t: F.binary_cross_entropy(o, t), (probs, y),
            metrics=[M.with_threshold("accuracy", 0.5)],
        )  # fmt: skip
    assert said["accuracy"] == pytest.approx(expected)


def test_loss_reads_names_the_threshold_and_multilabel_rule_of_each_loss():
    assert loss_reads(nn.BCEWithLogitsLoss()) == (0.0, True)
    assert loss_reads(functools.partial(functools.partial(F.binary_cross_entropy_with_logits))) == (0.0, True)
    assert loss_reads(ds.binary_cross_entropy_with_logits) == (0.0, True)  # torch's top-level spelling
    assert loss_reads(nn.BCELoss()) == (0.5, True)
    assert loss_reads(F.binary_cross_entropy) == (0.5, True)
    assert loss_reads("binary_crossentropy" and ds.train.evaluation.resolve_loss("binary_crossentropy")) == (0.5, True)
    assert loss_reads(nn.CrossEntropyLoss()) == (0.5, None)
    assert loss_reads(F.mse_loss) == (0.5, None)
    assert loss_reads(lambda o, t: o.sum()) == ("auto", None)


def test_keras_binary_accuracy_metric_matches_the_formula():
    rng = np.random.default_rng(2)
    scores = rng.random((40, 3))
    y = (rng.random((40, 3)) < 0.5).astype(np.float64)
    assert M.binary_accuracy(scores, y) == pytest.approx(float(((scores > 0.5) == y).mean()))
    assert M.get_metric("binary_accuracy")[1](scores[:, :1], y[:, 0]) == pytest.approx(
        float(((scores[:, 0] > 0.5) == y[:, 0]).mean())
    )
