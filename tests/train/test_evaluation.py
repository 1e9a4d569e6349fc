"""evaluate/predict and the Keras loss names (train/evaluation.py).

keras is not installed: Keras 3's ``binary_crossentropy`` on probabilities is written out here as its
numpy backend computes it, ``-mean(y * log(clip(p)) + (1 - y) * log(1 - clip(p)))`` with
``clip(p) = clip(p, 1e-7, 1 - 1e-7)`` (the mean over the last axis, then over the samples), and its
gradient as the derivative of that closed form (zero where the clip holds p).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import downslope as ds
from downslope import nn
from downslope.train.evaluation import KerasCrossEntropy, evaluate, predict, resolve_loss

EPS = 1e-7


def _keras_bce(p: np.ndarray, y: np.ndarray) -> float:
    c = np.clip(p, EPS, 1 - EPS)
    return float(-np.mean(np.mean(y * np.log(c) + (1 - y) * np.log(1 - c), axis=-1)))


def _keras_bce_grad(p: np.ndarray, y: np.ndarray) -> np.ndarray:
    c = np.clip(p, EPS, 1 - EPS)
    inside = (p >= EPS) & (p <= 1 - EPS)
    n_rows = int(np.prod(p.shape[:-1]))
    return np.where(inside, -(y / c - (1 - y) / (1 - c)) / (n_rows * p.shape[-1]), 0.0)


class _Const(nn.Module):
    """A model whose outputs are fixed probabilities (whatever the inputs)."""

    def __init__(self, values: np.ndarray) -> None:
        super().__init__()
        self.values = values
        self.w = nn.Parameter(ds.zeros(1))

    def forward(self, x: ds.Tensor) -> ds.Tensor:
        return ds.tensor(self.values) + 0 * self.w


def test_binary_crossentropy_clips_saturated_probabilities_as_keras():
    p = np.array([[0.0], [0.0], [1.0], [1.0], [0.3]], np.float32)
    y = np.array([[1.0], [0.0], [0.0], [1.0], [1.0]], np.float32)
    x = np.zeros((5, 1), np.float32)
    got = evaluate(_Const(p), "binary_crossentropy", (x, y))["loss"]
    # in float32 (as Keras computes on float32 outputs): 1 - 1e-7 rounds to 1 - 2**-23 there
    assert got == pytest.approx(_keras_bce(p, y), rel=1e-5)
    # torch's BCELoss clamps the log at -100 instead: a different number on saturated outputs
    torch_bce = torch.nn.functional.binary_cross_entropy(torch.tensor(p), torch.tensor(y)).item()
    assert abs(got - torch_bce) > 1.0


def test_binary_crossentropy_gradient_matches_the_closed_form_in_float64():
    rng = np.random.default_rng(0)
    p = rng.uniform(0, 1, size=(6, 3))
    p[0, 0], p[1, 2], p[2, 1] = 0.0, 1.0, 1e-9  # clipped: no gradient, as Keras' clip
    y = (rng.uniform(size=(6, 3)) > 0.5).astype(np.float64)
    y[3, 0] = 0.25  # soft targets are read as Keras reads them
    out = ds.tensor(p, dtype=ds.float64, requires_grad=True)
    loss = resolve_loss("binary_crossentropy")(out, ds.tensor(y, dtype=ds.float64))
    assert loss.item() == pytest.approx(_keras_bce(p, y), rel=1e-12)
    loss.backward()
    np.testing.assert_allclose(out.grad.numpy(), _keras_bce_grad(p, y), rtol=1e-10, atol=1e-15)


def test_binary_crossentropy_takes_flat_labels_and_refuses_other_shapes():
    p = np.array([[0.2], [0.9]], np.float32)
    loss = KerasCrossEntropy("binary")
    flat = loss(ds.tensor(p), ds.tensor([0.0, 1.0])).item()
    assert flat == pytest.approx(_keras_bce(p.astype(np.float64), np.array([[0.0], [1.0]])), rel=1e-6)
    with pytest.raises(ds.errors.ConfigError, match=r"binary_crossentropy: expected targets .*\(2, 1\).*got \(3,\)"):
        loss(ds.tensor(p), ds.tensor([0.0, 1.0, 1.0]))


def test_binary_crossentropy_per_sample_weights_and_logits():
    rng = np.random.default_rng(1)
    p = rng.uniform(0.05, 0.95, size=(8, 2)).astype(np.float64)
    y = (rng.uniform(size=(8, 2)) > 0.5).astype(np.float64)
    f64 = ds.float64
    per = KerasCrossEntropy("binary", reduction="none")(ds.tensor(p, dtype=f64), ds.tensor(y, dtype=f64)).numpy()
    c = np.clip(p, EPS, 1 - EPS)
    np.testing.assert_allclose(per, -np.mean(y * np.log(c) + (1 - y) * np.log(1 - c), axis=-1), rtol=1e-12)
    z = rng.normal(size=(8, 2)) * 30
    got = KerasCrossEntropy("binary", from_logits=True)(ds.tensor(z, dtype=f64), ds.tensor(y, dtype=f64)).item()
    want = torch.nn.functional.binary_cross_entropy_with_logits(torch.tensor(z), torch.tensor(y)).item()
    assert got == pytest.approx(want, rel=1e-12)


def test_binary_crossentropy_on_logits_warns():
    x = np.array([[-2.0], [1.0]], np.float32)
    with pytest.warns(RuntimeWarning, match=r"binary_crossentropy.*from_logits.*'bce_with_logits'.*sigmoid"):
        evaluate(nn.Identity(), "binary_crossentropy", (x, np.array([[0.0], [1.0]], np.float32)))


def test_categorical_crossentropy_clips_saturated_probabilities_as_keras():
    p = np.array([[1.0, 0.0, 0.0], [0.2, 0.3, 0.5]], np.float64)
    y = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]], np.float64)
    got = evaluate(_Const(p), "categorical_crossentropy", (np.zeros((2, 1)), y))["loss"]
    q = np.clip(p / p.sum(-1, keepdims=True), EPS, 1 - EPS)
    assert got == pytest.approx(float(-np.mean(np.sum(y * np.log(q), axis=-1))), rel=1e-6)


def test_evaluate_and_predict_take_keras_verbose_and_batch_size(capsys):
    x = np.arange(10, dtype=np.float32).reshape(5, 2)
    y = x.sum(1, keepdims=True)
    model = nn.Linear(2, 1)
    want = torch.nn.functional.mse_loss(torch.tensor(predict(model, x).numpy()), torch.tensor(y)).item()
    capsys.readouterr()
    assert evaluate(model, "mse", (x, y), batch_size=2, verbose=0)["loss"] == pytest.approx(want, rel=1e-6)
    assert predict(model, x, batch_size=2, verbose=0).shape == (5, 1)
    assert capsys.readouterr().err == ""
    logs = evaluate(model, "mse", (x, y), batch_size=2, verbose=1)
    assert capsys.readouterr().err == f"evaluate - loss {logs['loss']:.4g}\n"
    predict(model, x, batch_size=2, verbose="auto")
    assert capsys.readouterr().err == "predict - 5 rows in 3 batches\n"
    with pytest.raises(ds.errors.ConfigError, match=r"evaluate: verbose must be 0, 1, 2 or 'auto'.*got 3"):
        evaluate(model, "mse", (x, y), verbose=3)
    with pytest.raises(ds.errors.ConfigError, match=r"predict: verbose must be .*got 'loud'"):
        predict(model, x, verbose="loud")


@pytest.mark.host_only  # the examples hand host arrays and lists in, as a reader does
def test_every_public_example_imports_what_it_calls(examples_failing_as_copied):
    """help(ds.train.lr_find), help(ds.evaluate)...: the examples run as copied, in an empty namespace."""
    assert examples_failing_as_copied("downslope.train.evaluation", "downslope.train.lr_find") == []
