import numpy as np
import pytest

import downslope as ds
from downslope.errors import ConfigError, ShapeError
from downslope.train import metrics as M

skm = pytest.importorskip("sklearn.metrics")


@pytest.mark.parametrize("seed", range(4))
def test_accuracy_and_top_k_match_sklearn(seed):
    rng = np.random.default_rng(seed)
    scores = rng.normal(size=(60, 5))
    target = rng.integers(0, 5, size=60)
    assert M.accuracy(scores, target) == pytest.approx(skm.accuracy_score(target, scores.argmax(1)))
    for k in (2, 3):
        expected = skm.top_k_accuracy_score(target, scores, k=k, labels=np.arange(5))
        assert M.accuracy(scores, target, top_k=k) == pytest.approx(expected)
    assert M.get_metric("top3_accuracy")[1](scores, target) == pytest.approx(
        skm.top_k_accuracy_score(target, scores, k=3, labels=np.arange(5))
    )


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("average", ["macro", "micro", "weighted"])
def test_precision_recall_f1_match_sklearn(seed, average):
    rng = np.random.default_rng(seed)
    target = rng.integers(0, 4, size=40)
    # Class 4 is predicted but never present, class 3 possibly never predicted: zero divisions happen.
    pred = np.where(rng.random(40) < 0.6, target, rng.integers(0, 5, size=40))
    for ours, theirs in [(M.precision, skm.precision_score), (M.recall, skm.recall_score), (M.f1_score, skm.f1_score)]:
        expected = theirs(target, pred, average=average, zero_division=0)
        assert ours(pred, target, average=average) == pytest.approx(expected)


def test_binary_scores_are_thresholded_and_tensors_accepted():
    probs = ds.tensor([[0.2], [0.7], [0.55], [0.1]])
    target = ds.tensor([0, 1, 0, 0])
    assert M.accuracy(probs, target) == pytest.approx(skm.accuracy_score([0, 1, 0, 0], [0, 1, 1, 0]))
    logits = np.array([-1.0, 2.0, 0.3, -0.2])
    assert M.accuracy(logits, [0, 1, 0, 0], threshold=0.0) == pytest.approx(0.75)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("shape", [(30,), (30, 3)])
def test_regression_metrics_match_sklearn(seed, shape):
    rng = np.random.default_rng(seed)
    target = rng.normal(size=shape)
    pred = target + 0.3 * rng.normal(size=shape)
    assert M.mean_squared_error(pred, target) == pytest.approx(skm.mean_squared_error(target, pred))
    assert M.mean_absolute_error(pred, target) == pytest.approx(skm.mean_absolute_error(target, pred))
    assert M.root_mean_squared_error(pred, target) == pytest.approx(np.sqrt(skm.mean_squared_error(target, pred)))
    assert M.r2_score(pred, target) == pytest.approx(skm.r2_score(target, pred))


def test_r2_constant_target_matches_sklearn():
    target = np.full(5, 2.0)
    assert M.r2_score(target.copy(), target) == skm.r2_score(target, target.copy())
    assert M.r2_score(target + 1, target) == skm.r2_score(target, target + 1)


def test_column_vs_vector_is_allowed_but_real_mismatch_is_refused():
    pred = np.array([[1.0], [2.0], [3.0]])
    assert M.mean_squared_error(pred, np.array([1.0, 2.0, 5.0])) == pytest.approx(4 / 3)
    with pytest.raises(ShapeError, match=r"\(3, 2\) and \(3,\)"):
        M.mean_squared_error(np.zeros((3, 2)), np.zeros(3))
    with pytest.raises(ShapeError, match="4 samples but target has 3"):
        M.accuracy(np.zeros((4, 3)), np.zeros(3, int))


def test_metric_names_and_user_functions():
    assert M.get_metric("ACC")[0] == "accuracy"

    def my_score(preds, target):
        return 1.0

    name, wrapped = M.get_metric(my_score)
    assert name == "my_score" and wrapped.fn is my_score and wrapped([0], [1]) == 1.0
    with pytest.raises(ConfigError, match="valid names are: .*accuracy"):
        M.get_metric("acuracy")


def test_metric_objects_carry_direction_and_whether_they_are_sample_means():
    facts = {
        name: (M.as_metric(name).greater_is_better, M.as_metric(name).sample_mean)
        for name in ("accuracy", "top3_accuracy", "precision", "recall", "f1", "mse", "mae", "rmse", "r2")
    }
    assert facts == {
        "accuracy": (True, True),
        "top3_accuracy": (True, True),
        "precision": (True, False),
        "recall": (True, False),
        "f1": (True, False),
        "mse": (False, True),
        "mae": (False, True),
        "rmse": (False, False),
        "r2": (True, False),
    }
    assert M.as_metric("top3_accuracy").name == "top3_accuracy"
    with pytest.raises(TypeError, match="fn must be a function"):
        M.Metric(0.5)  # type: ignore[arg-type]


def test_greater_is_better_reads_the_metric_then_its_name():
    assert M.greater_is_better("val_accuracy") and M.greater_is_better("r2") and M.greater_is_better("top5_accuracy")
    assert not M.greater_is_better("val_loss") and not M.greater_is_better("mse")
    # A name fit does not compute is read as History reads it (auc, f1_macro are maximized, and so is a
    # name ending as an accuracy: 'balanced_acc'); a word inside a name says nothing ('brier_score' is
    # minimized), nor does a name no list knows (a learning rate, a user's column).
    assert M.greater_is_better("val_auc") and M.greater_is_better("val_f1_macro")
    assert M.greater_is_better("val_balanced_acc") and not M.greater_is_better("val_brier_score")
    assert not M.greater_is_better("lr") and not M.greater_is_better("val_thing")

    def balanced_acc(preds, target):
        return 1.0

    declared = {"balanced_acc": M.Metric(balanced_acc, greater_is_better=False)}
    assert not M.greater_is_better("val_balanced_acc", declared)  # what fit computes wins over the name
    # The metrics a fit computes take precedence over a built-in of the same name.
    assert not M.greater_is_better("accuracy", {"accuracy": M.Metric(balanced_acc, "accuracy")})


def test_one_hot_or_probability_targets_are_read_by_their_arg_max():
    scores = np.array([[2.0, 0.1, 0.3], [0.1, 0.2, 3.0], [0.5, 0.4, 0.1], [0.0, 1.0, 0.2]])
    labels = np.array([0, 2, 1, 1])
    one_hot = np.eye(3)[labels]
    assert M.accuracy(scores, one_hot) == M.accuracy(scores, labels) == 0.75
    assert M.f1_score(scores, one_hot * 0.8 + 0.05) == M.f1_score(scores, labels)  # smoothed labels too


def test_fit_and_evaluate_cut_logits_at_zero_with_bce_with_logits():
    """BCEWithLogitsLoss means the model outputs logits: accuracy is (logit > 0), not (logit >= 0.5)."""
    from downslope import nn, optim

    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 2)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.float32).reshape(-1, 1)
    ds.manual_seed(0)
    model = nn.Linear(2, 1)
    history = ds.fit(
        model, nn.BCEWithLogitsLoss(), optim.SGD(model.parameters(), lr=0.5), (x, y), validation=(x, y),
        epochs=5, metrics=["accuracy", "f1"], verbose=0,
    )  # fmt: skip
    with ds.no_grad():
        logits = model(ds.tensor(x)).numpy()
    truth = float(np.mean((logits > 0) == (y > 0.5)))
    assert history["val_accuracy"][-1] == pytest.approx(truth)
    assert M.accuracy(logits, y) != truth  # the 0.5 cut would have given another number here
    logs = ds.train.evaluate(model, nn.functional.binary_cross_entropy_with_logits, (x, y), metrics=["accuracy"])
    assert logs["accuracy"] == pytest.approx(truth)
    assert M.for_logits(M.as_metric("mse")) is M.as_metric("mse")  # regression metrics have no cut


def test_a_label_metric_on_a_regression_warns_why_it_means_nothing():
    import warnings

    import downslope as ds
    from downslope import nn, optim

    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 3)).astype(np.float32)
    y = X @ np.float32([1, 2, 3])[:, None]

    def fitted(targets, metrics):
        model = nn.Linear(3, 1)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            history = ds.fit(model, nn.MSELoss(), optim.SGD(model.parameters(), lr=0.1), (X, targets), epochs=3,
                             metrics=metrics, verbose=0)  # fmt: skip
        return history, [str(w.message) for w in caught if "not class labels" in str(w.message)]

    history, said = fitted(y, ["accuracy", "mae"])
    assert history["accuracy"] == [0.0, 0.0, 0.0]  # still logged, as Keras does
    assert said and "['accuracy']" in said[0] and "'mae'" in said[0]
    # 0/1 targets fitted with a squared error are class labels: accuracy means something, no warning
    _, said = fitted((y > 0).astype(np.float32), ["accuracy"])
    assert said == []
    _, said = fitted(y, ["mae"])
    assert said == []
