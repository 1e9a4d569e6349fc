"""fit's bookkeeping of metrics and the epoch loss, against torch and scikit-learn: the epoch loss of a
loss with ignore_index, accuracy leaving ignored targets out, a batch whose targets are all ignored,
named binary metrics with Keras' values, AUC on one-hot targets and with sample weights, the guessed
threshold's warning, and the divergence guard at lr 0."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import sklearn.metrics as skm
import torch

import downslope as ds


def _linear3(x: np.ndarray, classes: int = 3):
    ds.manual_seed(0)
    model = ds.nn.Linear(x.shape[1], classes).double()
    logits = x @ model.weight.detach().numpy().T + model.bias.detach().numpy()
    return model, logits


def _fit(model, loss, data, **kw):
    return ds.fit(model, loss, ds.optim.SGD(model.parameters(), lr=0.0), data, shuffle=False, verbose=0, **kw)


def test_epoch_loss_with_ignore_index_is_the_whole_datas_loss_and_accuracy_skips_ignored():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(40, 3)), rng.integers(0, 3, 40)
    y[:7] = -100
    model, logits = _linear3(x)
    h = _fit(model, ds.nn.CrossEntropyLoss(), (x, y), epochs=1, batch_size=10, metrics=["accuracy", "f1"],
             validation_data=(x, y), validation_batch_size=9)  # fmt: skip
    want = torch.nn.functional.cross_entropy(torch.tensor(logits), torch.tensor(y)).item()
    keep = y != -100
    assert h["loss"][0] == pytest.approx(want, rel=1e-12)
    assert h["val_loss"][0] == pytest.approx(want, rel=1e-12)
    assert h["accuracy"][0] == pytest.approx(np.mean(logits.argmax(1)[keep] == y[keep]), rel=1e-12)
    assert h["val_f1"][0] == pytest.approx(skm.f1_score(y[keep], logits.argmax(1)[keep], average="macro"), rel=1e-12)


def test_a_batch_whose_targets_are_all_ignored_adds_nothing_and_stops_nothing():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(40, 3)), rng.integers(0, 3, 40)
    y[10:20] = -100  # the second batch: nothing to score (PyTorch's mean over it is NaN, its gradient 0)
    model, logits = _linear3(x)
    seen, accuracy_so_far = [], []

    def read(i, logs):
        seen.append(float(logs["loss"]))
        accuracy_so_far.append(float(logs["accuracy"]))

    reader = ds.train.LambdaCallback(on_train_batch_end=read)
    h = _fit(model, ds.nn.CrossEntropyLoss(), (x, y), epochs=2, batch_size=10, metrics=["accuracy"],
             callbacks=[reader], validation_data=(x, y), validation_batch_size=10)  # fmt: skip
    want = torch.nn.functional.cross_entropy(torch.tensor(logits), torch.tensor(y)).item()
    keep = y != -100
    assert len(h["loss"]) == 2  # the divergence guard did not stop on the empty batch's NaN
    assert h["loss"] == pytest.approx([want, want], rel=1e-12)
    assert h["val_loss"][0] == pytest.approx(want, rel=1e-12)
    assert h["accuracy"][0] == pytest.approx(np.mean(logits.argmax(1)[keep] == y[keep]), rel=1e-12)
    assert all(np.isfinite(seen)) and len(seen) == 8
    hits = logits.argmax(1) == y
    for k, value in enumerate(accuracy_so_far[:4]):  # the accuracy so far leaves the ignored targets out
        first = slice(0, 10 * (k + 1))
        assert value == pytest.approx(np.mean(hits[first][keep[first]]), rel=1e-12)
    assert accuracy_so_far[-1] == pytest.approx(h["accuracy"][1], rel=1e-12)


def test_class_weighted_loss_with_ignore_index_still_matches_torch():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(30, 3)), rng.integers(0, 3, 30)
    y[::4] = 1
    y[3:9] = 2
    model, logits = _linear3(x)
    weight = np.array([1.0, 3.0, 0.5])
    loss = ds.nn.CrossEntropyLoss(weight=ds.from_numpy(weight), ignore_index=2)
    h = _fit(model, loss, (x, y), epochs=1, batch_size=7)
    want = torch.nn.functional.cross_entropy(
        torch.tensor(logits), torch.tensor(y), weight=torch.tensor(weight), ignore_index=2
    ).item()
    assert h["loss"][0] == pytest.approx(want, rel=1e-12)


@pytest.mark.parametrize("names", [["precision", "recall"], ["f1"]])
def test_named_binary_metrics_give_keras_and_scikit_learn_binary_values(names):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(103, 3))
    y = (x[:, :1] + rng.normal(size=(103, 1)) > 0.3).astype(np.float64)
    ds.manual_seed(0)
    model = ds.nn.Linear(3, 1).double()
    logits = x @ model.weight.detach().numpy().T + model.bias.detach().numpy()
    h = _fit(model, ds.nn.BCEWithLogitsLoss(), (x, y), epochs=1, batch_size=16, metrics=names)
    reference = {"precision": skm.precision_score, "recall": skm.recall_score, "f1": skm.f1_score}
    for name in names:  # Keras' Precision/Recall/F1Score of one sigmoid column: class 1's, cut at logit > 0
        assert h[name][0] == pytest.approx(reference[name](y[:, 0], logits[:, 0] > 0), rel=1e-12)


def test_auc_on_one_hot_targets_and_weighted_auc_in_fit():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 3))
    y_onehot = np.eye(2)[(x[:, 0] > 0).astype(int)]
    w = rng.random(64).astype(np.float32).astype(np.float64)  # (fit keeps sample weights in the default dtype)
    ds.manual_seed(0)
    model = ds.nn.Sequential(ds.nn.Linear(3, 2), ds.nn.Softmax(dim=1)).double()
    with ds.no_grad():
        probs = model(ds.from_numpy(x)).numpy()
    h = _fit(model, "categorical_crossentropy", (x, y_onehot), epochs=1, metrics=["AUC"],
             weighted_metrics=["AUC", "precision"], sample_weight=w)  # fmt: skip
    assert h["AUC"][0] == pytest.approx(skm.roc_auc_score(y_onehot, probs), rel=1e-12)
    assert h["weighted_AUC"][0] == pytest.approx(skm.roc_auc_score(y_onehot, probs, sample_weight=w), rel=1e-12)
    assert h["precision"][0] == pytest.approx(
        skm.precision_score(y_onehot[:, 1], probs.argmax(1), sample_weight=w), rel=1e-12
    )


def test_fit_shows_the_guessed_threshold_warning_once():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(40, 3))
    y = (x[:, :1] > 0).astype(np.float64)
    ds.manual_seed(0)
    model = ds.nn.Sequential(ds.nn.Linear(3, 1), ds.nn.Sigmoid()).double()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _fit(model, lambda o, t: ((o - t) ** 2).mean(), (x, y), epochs=2, metrics=["accuracy", "precision"])
    guessed = [w for w in caught if "cannot tell from the loss" in str(w.message)]
    assert len(guessed) == 1


def test_divergence_at_lr_0_stops_with_the_guards_message():
    x = np.random.default_rng(0).normal(size=(20, 3))
    model = ds.nn.Linear(3, 1).double()

    def nan_loss(o, t):
        return ((o - t) ** 2).mean() * float("nan")

    h = _fit(model, nan_loss, (x, np.zeros((20, 1))), epochs=1, batch_size=10)
    assert "diverged" in h.stop_reason and "lr=0" in h.stop_reason
    assert "learning rate is not positive" in h.stop_reason and "try lr=" not in h.stop_reason


def test_a_diverged_epoch_logs_nan_auc_instead_of_raising():
    x = np.random.default_rng(0).normal(size=(20, 3))
    y = (x[:, :1] > 0).astype(np.float64)
    model = ds.nn.Linear(3, 1).double()
    with ds.no_grad():
        model.bias.fill_(float("nan"))
    h = _fit(model, ds.nn.BCEWithLogitsLoss(), (x, y), epochs=1, batch_size=10, metrics=["auc"])
    assert "diverged" in h.stop_reason
    assert np.isnan(h["auc"][0])


@pytest.mark.parametrize("class_weight", [None, [1.0, 3.0, 0.5]])
def test_ignore_index_on_a_device_counts_targets_there_without_reading_each_batch(monkeypatch, class_weight):
    from downslope.devices import strict

    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(60, 3)), rng.integers(0, 3, 60)
    y[:7] = -100
    y[20:30] = -100  # the third batch: all ignored
    model, logits = _linear3(x)
    weight = None if class_weight is None else np.asarray(class_weight)
    loss = ds.nn.CrossEntropyLoss(weight=None if weight is None else ds.from_numpy(weight))
    reads = [0]
    synchronize = strict._synchronize

    def counting(what):
        reads[0] += 1
        return synchronize(what)

    monkeypatch.setattr(strict, "_synchronize", counting)
    h = ds.fit(model, loss, ds.optim.SGD(model.parameters(), lr=0.0), (x, y), epochs=2, batch_size=10,
               shuffle=False, verbose=0, device="strict", validation_data=(x, y), validation_batch_size=10)  # fmt: skip
    few = reads[0]
    torch_weight = None if weight is None else torch.tensor(weight)
    want = torch.nn.functional.cross_entropy(torch.tensor(logits), torch.tensor(y), weight=torch_weight).item()
    assert h["loss"] == pytest.approx([want, want], rel=1e-12)
    assert h["val_loss"] == pytest.approx([want, want], rel=1e-12)
    # per epoch the training and validation losses (a sum and a count each), once the guard's first batch:
    # not one read per batch
    assert few <= 2 * 2 + 2, few


def test_weighted_accuracy_with_ignore_index_weighs_the_kept_samples():
    rng = np.random.default_rng(6)
    x, y = rng.normal(size=(50, 3)), rng.integers(0, 3, 50)
    y[::5] = -100
    w = rng.random(50).astype(np.float32).astype(np.float64)
    model, logits = _linear3(x)
    h = _fit(model, ds.nn.CrossEntropyLoss(), (x, y), epochs=1, batch_size=8, sample_weight=w,
             weighted_metrics=["accuracy"])  # fmt: skip
    keep = y != -100
    want = skm.accuracy_score(y[keep], logits.argmax(1)[keep], sample_weight=w[keep])
    assert h["accuracy"][0] == pytest.approx(want, rel=1e-12)


@pytest.mark.parametrize("loss", [ds.nn.CrossEntropyLoss(), ("sparse_categorical_crossentropy", {"from_logits": True})])
def test_multiclass_auc_of_logits_under_a_logits_loss_is_scikit_learns_ovr_on_the_softmax(loss):
    rng = np.random.default_rng(7)
    x, y = rng.normal(size=(90, 3)), rng.integers(0, 3, 90)
    w = rng.random(90).astype(np.float32).astype(np.float64)
    model, logits = _linear3(x)
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    h = _fit(model, loss, (x, y), epochs=1, batch_size=16, metrics=["auc"], weighted_metrics=["auc"],
             sample_weight=w)  # fmt: skip
    assert h["auc"][0] == pytest.approx(skm.roc_auc_score(y, probs, multi_class="ovr"), rel=1e-12)
    assert h["weighted_auc"][0] == pytest.approx(
        skm.roc_auc_score(y, probs, multi_class="ovr", sample_weight=w), rel=1e-12
    )
