"""Keras 3's loss names in fit and evaluate (msle, mape, poisson, kld, log_cosh, hinge, squared_hinge,
categorical_hinge, cosine_similarity) against Keras' formulas written in torch (value and gradient, float64)
and against torch's own losses where torch has the same one; Keras' metric names against scikit-learn
and the formulas."""

import numpy as np
import pytest
import torch

import downslope as ds
from downslope import nn
from downslope.errors import ConfigError
from downslope.train import metrics as M
from downslope.train.evaluation import resolve_loss
from downslope.train.keras_losses import KerasLoss

skm = pytest.importorskip("sklearn.metrics")
EPS = 1e-7


def _keras_formula(name, p, t):
    """Keras 3's per-sample loss (keras/src/losses/losses.py) in torch."""
    if name == "msle":
        return ((torch.log(torch.clamp(p, min=EPS) + 1) - torch.log(torch.clamp(t, min=EPS) + 1)) ** 2).mean(-1)
    if name == "mape":
        return 100 * torch.abs((t - p) / torch.clamp(torch.abs(t), min=EPS)).mean(-1)
    if name == "poisson":
        return (p - t * torch.log(p + EPS)).mean(-1)
    if name == "kld":
        tc, pc = torch.clamp(t, EPS, 1), torch.clamp(p, EPS, 1)
        return (tc * torch.log(tc / pc)).sum(-1)
    if name == "log_cosh":
        return torch.log(torch.cosh(p - t)).mean(-1)
    if name in ("hinge", "squared_hinge"):
        if bool(((t == 0) | (t == 1)).all()):
            t = 2 * t - 1
        margin = torch.clamp(1 - t * p, min=0)
        return (margin if name == "hinge" else margin**2).mean(-1)
    if name == "categorical_hinge":
        return torch.clamp(((1 - t) * p).amax(-1) - (t * p).sum(-1) + 1, min=0)
    if name == "cosine_similarity":
        unit = lambda v: v / torch.clamp(torch.linalg.vector_norm(v, dim=-1, keepdim=True), min=EPS)  # noqa: E731
        return -(unit(t) * unit(p)).sum(-1)
    raise AssertionError(name)


def _case(name, rng):
    p = rng.normal(size=(12, 4))
    t = rng.normal(size=(12, 4))
    if name in ("msle", "poisson", "kld"):
        p, t = np.abs(p) + 0.05, np.abs(t)
        t[0, 0] = 0.0  # clipped to eps
    if name == "kld":
        p, t = p / p.sum(1, keepdims=True), t / t.sum(1, keepdims=True)
    if name in ("hinge", "squared_hinge"):
        t = rng.integers(0, 2, size=(12, 4)).astype(np.float64)  # 0/1 labels, converted to -1/1
    if name == "categorical_hinge":
        t = np.eye(4)[rng.integers(0, 4, size=12)]
    return p, t


NAMES = [
    "msle",
    "mape",
    "poisson",
    "kld",
    "log_cosh",
    "hinge",
    "squared_hinge",
    "categorical_hinge",
    "cosine_similarity",
]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("seed", range(2))
def test_keras_loss_value_and_gradient_match_keras_formula_in_float64(name, seed):
    p, t = _case(name, np.random.default_rng(seed))
    loss = resolve_loss(name)
    out = ds.tensor(p, dtype=ds.float64, requires_grad=True)
    value = loss(out, ds.tensor(t, dtype=ds.float64))
    value.backward()
    tp = torch.tensor(p, requires_grad=True)
    expected = _keras_formula(name, tp, torch.tensor(t)).mean()
    expected.backward()
    assert value.item() == pytest.approx(expected.item(), rel=1e-12, abs=1e-12)
    np.testing.assert_allclose(out.grad.numpy(), tp.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_hinge_keeps_minus_one_one_labels_and_takes_n_targets_for_one_column():
    rng = np.random.default_rng(5)
    p = rng.normal(size=(10, 1))
    t = rng.choice([-1.0, 1.0], size=10)
    got = resolve_loss("hinge")(ds.tensor(p, dtype=ds.float64), ds.tensor(t, dtype=ds.float64)).item()
    assert got == pytest.approx(float(np.mean(np.maximum(1 - t[:, None] * p, 0))))


def _f64(a):
    return ds.tensor(a, dtype=ds.float64)


def test_keras_losses_match_torchs_own_where_torch_has_them():
    rng = np.random.default_rng(0)
    p, t = np.abs(rng.normal(size=(20, 3))) + 0.1, rng.poisson(2.0, size=(20, 3)).astype(np.float64)
    poisson = torch.nn.PoissonNLLLoss(log_input=False, full=False, eps=EPS)(torch.tensor(p), torch.tensor(t))
    assert KerasLoss("poisson")(_f64(p), _f64(t)).item() == pytest.approx(poisson.item(), rel=1e-12)
    q, r = rng.random((20, 3)) + 0.1, rng.random((20, 3)) + 0.1
    q, r = q / q.sum(1, keepdims=True), r / r.sum(1, keepdims=True)
    kld = torch.nn.functional.kl_div(torch.log(torch.tensor(q)), torch.tensor(r), reduction="batchmean")
    assert KerasLoss("kld")(_f64(q), _f64(r)).item() == pytest.approx(kld.item(), rel=1e-12)
    a, b = rng.normal(size=(20, 3)), rng.normal(size=(20, 3))
    cosine = -torch.nn.functional.cosine_similarity(torch.tensor(a), torch.tensor(b), dim=-1).mean()
    assert KerasLoss("cosine_similarity")(_f64(a), _f64(b)).item() == pytest.approx(cosine.item(), rel=1e-12)


def test_fit_trains_with_every_keras_loss_name_and_refuses_bad_shapes():
    rng = np.random.default_rng(0)
    x = np.abs(rng.normal(size=(16, 3))).astype(np.float32)
    y = x.sum(1, keepdims=True)
    for name in ["msle", "mean_squared_logarithmic_error", "mape", "mean_absolute_percentage_error", "poisson",
                 "kld", "kl_divergence", "log_cosh", "logcosh", "hinge", "squared_hinge", "cosine_similarity"]:  # fmt: skip
        model = nn.Sequential(nn.Linear(3, 1), nn.Softplus())  # positive outputs, as poisson's log needs
        history = ds.fit(model, name, "adam", (x, y), epochs=1, verbose=0)
        assert np.isfinite(history["loss"][0]), name
    one_hot = np.eye(3, dtype=np.float32)[rng.integers(0, 3, size=16)]
    assert np.isfinite(
        ds.fit(nn.Linear(3, 3), "categorical_hinge", "adam", (x, one_hot), epochs=1, verbose=0)["loss"][0]
    )
    with pytest.raises(ConfigError, match="categorical_hinge: expected targets of the outputs' shape"):
        ds.fit(nn.Linear(3, 3), "categorical_hinge", "adam", (x, rng.integers(0, 3, size=16)), epochs=1, verbose=0)
    with pytest.raises(ConfigError, match="from_logits applies"):
        resolve_loss(("hinge", {"from_logits": True}))


def test_keras_loss_trains_in_float32_as_the_model():
    out = ds.tensor(np.ones((4, 2), np.float32), requires_grad=True)
    value = KerasLoss("msle")(out, np.zeros((4, 2)))
    assert value.dtype == ds.float32
    value.backward()
    assert out.grad.dtype == ds.float32


# ---------------------------------------------------------------------- metric names
@pytest.mark.parametrize("seed", range(3))
def test_keras_accuracy_metric_names_match_sklearn(seed):
    rng = np.random.default_rng(seed)
    scores = rng.normal(size=(60, 7))
    labels = rng.integers(0, 7, size=60)
    one_hot = np.eye(7)[labels]
    assert M.get_metric("sparse_categorical_accuracy")[1](scores, labels) == pytest.approx(
        skm.accuracy_score(labels, scores.argmax(1))
    )
    assert M.get_metric("categorical_accuracy")[1](scores, one_hot) == pytest.approx(
        skm.accuracy_score(labels, scores.argmax(1))
    )
    top5 = skm.top_k_accuracy_score(labels, scores, k=5, labels=np.arange(7))
    assert M.get_metric("sparse_top_k_categorical_accuracy")[1](scores, labels) == pytest.approx(top5)
    assert M.get_metric("top_k_categorical_accuracy")[1](scores, one_hot) == pytest.approx(top5)
    assert M.get_metric("sparse_categorical_accuracy")[1](scores, labels[:, None]) == pytest.approx(
        skm.accuracy_score(labels, scores.argmax(1))
    )


def test_metrics_named_after_keras_losses_are_the_loss_averaged_over_samples():
    rng = np.random.default_rng(4)
    probs = rng.random((30, 3)) + 0.05
    probs /= probs.sum(1, keepdims=True)
    labels = rng.integers(0, 3, size=30)
    got = M.get_metric("sparse_categorical_crossentropy")[1](probs, labels)
    assert got == pytest.approx(skm.log_loss(labels, probs, labels=[0, 1, 2]), rel=1e-9)
    got = M.get_metric("categorical_crossentropy")[1](probs, np.eye(3)[labels])
    assert got == pytest.approx(skm.log_loss(labels, probs, labels=[0, 1, 2]), rel=1e-9)
    p1, y1 = probs[:, :1], (labels == 0).astype(np.float64)
    assert M.get_metric("binary_crossentropy")[1](p1, y1) == pytest.approx(skm.log_loss(y1, p1[:, 0]), rel=1e-9)
    a, b = rng.normal(size=(30, 4)), np.abs(rng.normal(size=(30, 4)))
    for name, alias in [("msle", "mean_squared_logarithmic_error"), ("kl_divergence", "kld"), ("log_cosh", "logcosh")]:
        formula = "kld" if name == "kl_divergence" else name
        expected = _keras_formula(formula, torch.tensor(np.abs(a)), torch.tensor(b)).mean().item()
        assert M.get_metric(alias)[0] == name
        assert M.get_metric(alias)[1](np.abs(a), b) == pytest.approx(expected, rel=1e-12)
    cosine = torch.nn.functional.cosine_similarity(torch.tensor(a), torch.tensor(b), dim=-1).mean().item()
    name, metric = M.get_metric("cosine_similarity")
    assert metric(a, b) == pytest.approx(cosine, rel=1e-12) and metric.greater_is_better
    assert not M.get_metric("hinge")[1].greater_is_better


def test_fit_logs_keras_metric_names():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 3)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    model = nn.Sequential(nn.Linear(3, 2), nn.Softmax(dim=-1))
    names = ["sparse_categorical_accuracy", "sparse_top_k_categorical_accuracy", "sparse_categorical_crossentropy"]
    history = ds.fit(model, "sparse_categorical_crossentropy", "adam", (x, y), epochs=2, verbose=0, metrics=names)
    for name in names:
        assert len(history[name]) == 2
    # the metric of the loss's name is the epoch's loss, computed at the end of each batch's update
    probs = ds.predict(model, x).numpy()
    logs = ds.evaluate(model, "sparse_categorical_crossentropy", (x, y), metrics=names)
    assert logs["sparse_categorical_crossentropy"] == pytest.approx(logs["loss"], rel=1e-5)
    assert logs["sparse_categorical_accuracy"] == pytest.approx(skm.accuracy_score(y, probs.argmax(1)))
