"""End to end: a small CNN (Conv2d-ReLU-MaxPool-Linear) learns scikit-learn's 8x8 digits.

The optimizer is a few lines of Adam written here on ``p.array`` / ``p.grad.array`` (downslope.optim
is tested on its own), so this test depends only on the layers, the loss and backpropagation.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

import downslope as ds
import downslope.nn.functional as F
from downslope import nn


def _cross_entropy(logits: ds.Tensor, labels: ds.Tensor) -> ds.Tensor:
    fused = getattr(F, "cross_entropy", None)
    if fused is not None:
        return fused(logits, labels)
    picked = ds.gather(ds.log_softmax(logits, dim=1), 1, labels.numpy()[:, None])
    return -picked.mean()


class _Adam:
    """Adam (Kingma & Ba) with PyTorch's defaults besides the learning rate."""

    def __init__(self, params, lr: float, betas=(0.9, 0.999), eps: float = 1e-8) -> None:
        self.params, self.lr, self.betas, self.eps, self.t = list(params), lr, betas, eps, 0
        self.m: list = []  # the moments are made at the first step, beside the parameters wherever they are then
        self.v: list = []

    def step(self) -> None:
        self.t += 1
        if not self.m:
            self.m = [np.zeros_like(p.array) for p in self.params]
            self.v = [np.zeros_like(p.array) for p in self.params]
        b1, b2 = self.betas
        for p, m, v in zip(self.params, self.m, self.v):
            g = p.grad.array
            m *= b1
            m += (1 - b1) * g
            v *= b2
            v += (1 - b2) * g * g
            m_hat = m / (1 - b1**self.t)
            v_hat = v / (1 - b2**self.t)
            p.array -= (self.lr * m_hat / (np.sqrt(v_hat) + self.eps)).astype(p.array.dtype)


def test_cnn_reaches_95_percent_on_digits():
    datasets = pytest.importorskip("sklearn.datasets")
    model_selection = pytest.importorskip("sklearn.model_selection")
    digits = datasets.load_digits()
    images = (digits.images / 16.0).astype(np.float32)[:, None]  # (N, 1, 8, 8) in [0, 1]
    x_train, x_test, y_train, y_test = model_selection.train_test_split(
        images, digits.target, test_size=0.25, random_state=0, stratify=digits.target
    )
    ds.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 16, kernel_size=3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(16 * 4 * 4, 10),
    )
    opt = _Adam(model.parameters(), lr=1e-2)
    order = np.random.default_rng(0)
    start = time.perf_counter()
    for _epoch in range(10):
        perm = order.permutation(len(x_train))
        for i in range(0, len(perm), 64):
            idx = perm[i : i + 64]
            loss = _cross_entropy(model(ds.tensor(x_train[idx])), ds.tensor(y_train[idx]))
            model.zero_grad()
            loss.backward()
            opt.step()
    seconds = time.perf_counter() - start
    model.eval()
    with ds.no_grad():
        predicted = model(ds.tensor(x_test)).numpy().argmax(axis=1)
    accuracy = float((predicted == y_test).mean())
    print(f"digits CNN: test accuracy {accuracy:.4f} after {seconds:.2f} s of training")
    assert np.isfinite(loss.item())
    assert accuracy >= 0.95, f"test accuracy {accuracy:.4f} < 0.95"
