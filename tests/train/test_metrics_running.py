"""The metrics so far in the batch logs (F1, precision, recall, AUC, average precision) fed one batch at a
time: after every batch, scikit-learn's number on the batches so far joined."""

from __future__ import annotations

import numpy as np
import pytest
import sklearn.metrics as skm

import downslope as ds
from downslope import nn, optim
from downslope.train import metrics as M
from downslope.train.batch_logs import RunningMetrics


def _batches(rng, sizes, make):
    return [make(rng, n) for n in sizes]


def _feed(metric, batches):
    """Each batch's MetricSoFar value, read as the batch ends, and whether a running metric served it."""
    running = RunningMetrics([metric])
    outputs, targets, values = [], [], []
    for p, t in batches:
        outputs.append(p)
        targets.append(t)
        values.append(float(running.update(outputs, targets)[metric.name]))
    return values, metric.name in running.running


@pytest.mark.parametrize("ties", [False, True])
def test_auc_and_average_precision_after_every_batch_are_scikit_learns(ties):
    rng = np.random.default_rng(0)

    def make(rng, n):
        scores = rng.normal(size=n)
        if ties:
            scores = np.round(scores, 1)  # many equal scores, within and across batches
        return scores.astype(np.float32).reshape(-1, 1), (rng.random(n) < 0.3).astype(np.float32)

    batches = _batches(rng, [1, 5, 17, 3, 64, 64, 2, 40], make)
    for name, reference in (("auc", skm.roc_auc_score), ("average_precision", skm.average_precision_score)):
        values, served = _feed(M.as_metric(name), batches)
        assert served
        for k, value in enumerate(values):
            p = np.concatenate([b[0] for b in batches[: k + 1]])[:, 0].astype(np.float64)
            t = np.concatenate([b[1] for b in batches[: k + 1]])
            joined = M.as_metric(name)(p, t)
            # the same number as the joined batches, to the bit (NaN for AUC on one class, AP without positives)
            assert value == joined or (np.isnan(value) and np.isnan(joined)), (name, k)
            if len(np.unique(t)) < 2:
                continue
            assert value == pytest.approx(reference(t, p), rel=1e-12, abs=1e-15)


def test_f1_precision_recall_after_every_batch_are_scikit_learns():
    rng = np.random.default_rng(1)
    binary = _batches(rng, [3, 8, 1, 20, 7], lambda r, n: (r.random((n, 1)).astype(np.float32), r.integers(0, 2, n)))
    # classes: some batches lack classes the others hold (class 4 only late)
    classes = _batches(
        rng, [4, 6, 9, 2, 30], lambda r, n: (r.normal(size=(n, 5)), r.integers(0, 4 if n < 20 else 5, n))
    )
    multilabel = _batches(rng, [5, 6, 7], lambda r, n: (r.random((n, 3)), (r.random((n, 3)) < 0.5).astype(float)))
    cases = [
        (binary, lambda p: (p[:, 0] > 0.5).astype(int), "binary", {}),
        (classes, lambda p: p.argmax(1), "macro", {}),
        (multilabel, lambda p: (p > 0.5).astype(int), "micro", {"multilabel": True}),
    ]
    for batches, read, average, options in cases:
        for name, reference in (("f1", skm.f1_score), ("precision", skm.precision_score), ("recall", skm.recall_score)):
            metric = M.adapt_to_loss(M.as_metric(name), **options) if options else M.as_metric(name)
            values, served = _feed(metric, batches)
            assert served
            for k, value in enumerate(values):
                p = np.concatenate([b[0] for b in batches[: k + 1]])
                t = np.concatenate([b[1] for b in batches[: k + 1]])
                assert value == metric(p, t), (name, average, k)
                want = reference(t, read(p), average=average, zero_division=0)
                assert value == pytest.approx(want, rel=1e-12), (name, average, k)


def test_batches_that_read_differently_joined_fall_back_to_joining():
    # whole scores 0/2 are labels while every batch is whole; a later fractional batch cuts them all at 0.5
    batches = [(np.array([0.0, 2.0, 2.0]), np.array([0, 2, 2])), (np.array([0.7, 0.2]), np.array([1, 0]))]
    values, served = _feed(M.as_metric("f1"), batches)
    assert not served
    for k, value in enumerate(values):
        p = np.concatenate([b[0] for b in batches[: k + 1]])
        t = np.concatenate([b[1] for b in batches[: k + 1]])
        assert value == M.f1_score(p, t)
    # one-hot rows then rows of several labels: multi-label only joined
    one_hot = (np.eye(3)[[0, 1]], np.eye(3)[[0, 2]])
    several = (np.ones((2, 3)), np.ones((2, 3)))
    values, served = _feed(M.as_metric("f1"), [one_hot, several])
    assert not served and values[1] == M.f1_score(np.concatenate([one_hot[0], several[0]]),
                                                    np.concatenate([one_hot[1], several[1]]))  # fmt: skip
    # NaN scores: joined, and refused when read, as the joined batches are (scikit-learn's "Input contains NaN")
    metric = M.as_metric("auc")
    running = RunningMetrics([metric])
    so_far = running.update([np.array([np.nan, 0.2])], [np.array([0, 1])])[metric.name]
    assert metric.name not in running.running
    with pytest.raises(M.NonFiniteScoresError, match="Input contains NaN"):
        float(so_far)


def test_fit_batch_logs_hold_the_epochs_numbers_so_far():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(96, 3)).astype(np.float32)
    y = (x[:, :1] + 0.3 * rng.normal(size=(96, 1)) > 0).astype(np.float32)
    seen: list[dict[str, float]] = []
    reader = ds.train.LambdaCallback(on_train_batch_end=lambda i, logs: seen.append({k: float(logs[k]) for k in logs}))
    ds.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 1), nn.Sigmoid())
    history = ds.fit(model, nn.BCELoss(), optim.SGD(model.parameters(), lr=0.0), (x, y), epochs=1, batch_size=16,
                     metrics=["auc", "f1", "average_precision"], callbacks=[reader], shuffle=False, verbose=0)  # fmt: skip
    scores = model(ds.tensor(x)).detach().numpy()[:, 0]  # lr 0: the model the batches saw
    for k, logs in enumerate(seen):
        p, t = scores[: 16 * (k + 1)], y[: 16 * (k + 1), 0]
        assert logs["auc"] == pytest.approx(skm.roc_auc_score(t, p), rel=1e-6)
        assert logs["average_precision"] == pytest.approx(skm.average_precision_score(t, p), rel=1e-6)
        # binary: class 1's F1 (scikit-learn's average='binary', Keras' F1Score on one column), scores cut at > 0.5
        assert logs["f1"] == pytest.approx(skm.f1_score(t, p > 0.5, zero_division=0), rel=1e-12)
    assert seen[-1]["auc"] == pytest.approx(history["auc"][-1], rel=1e-12)
