"""End to end: an MLP with BatchNorm1d and Dropout learns scikit-learn's digits to >= 95% test accuracy.

No optimizer package is used (downslope.optim is a later layer): a ten-line Adam below updates
``p.array`` from ``p.grad.array``, which is all a training step needs from the nn layer.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

import numpy as np
import pytest

import downslope as ds
from downslope import nn

datasets = pytest.importorskip("sklearn.datasets")
model_selection = pytest.importorskip("sklearn.model_selection")


@contextlib.contextmanager
def one_blas_thread() -> Iterator[None]:
    """Small GEMMs (64 x 128) are fastest on one thread; on a busy shared machine OpenBLAS's
    threads spin against each other and a step measured 25x slower (60 ms instead of 2.5 ms)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


class TinyAdam:
    """Adam (Kingma & Ba) with PyTorch's defaults, on the parameters' arrays in place."""

    def __init__(self, params: list[nn.Parameter], lr: float = 1e-3, b1: float = 0.9, b2: float = 0.999) -> None:
        self.params, self.lr, self.b1, self.b2, self.t = params, lr, b1, b2, 0
        self.m = [np.zeros_like(p.array) for p in params]
        self.v = [np.zeros_like(p.array) for p in params]

    def step(self) -> None:
        self.t += 1
        for p, m, v in zip(self.params, self.m, self.v):
            if p.grad is None:
                continue
            g = p.grad.array
            m *= self.b1
            m += (1 - self.b1) * g
            v *= self.b2
            v += (1 - self.b2) * g * g
            m_hat = m / (1 - self.b1**self.t)
            v_hat = v / (1 - self.b2**self.t)
            p.array -= (self.lr * m_hat / (np.sqrt(v_hat) + 1e-8)).astype(p.array.dtype)


def test_mlp_with_batchnorm_and_dropout_learns_digits() -> None:
    x, y = datasets.load_digits(return_X_y=True)
    x_train, x_test, y_train, y_test = model_selection.train_test_split(
        x, y, test_size=0.25, random_state=0, stratify=y
    )
    mean, std = x_train.mean(0), x_train.std(0) + 1e-6
    x_train, x_test = ((x_train - mean) / std).astype(np.float32), ((x_test - mean) / std).astype(np.float32)

    ds.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(64, 128),
        nn.BatchNorm1d(128),
        nn.ReLU(),
        nn.Dropout(0.2),
        nn.Linear(128, 64),
        nn.BatchNorm1d(64),
        nn.ReLU(),
        nn.Dropout(0.2),
        nn.Linear(64, 10),
    )
    loss_fn = nn.CrossEntropyLoss()
    opt = TinyAdam(list(model.parameters()), lr=3e-3)
    start = time.perf_counter()
    model.train()
    with one_blas_thread():
        train(model, loss_fn, opt, x_train, y_train)
    elapsed = time.perf_counter() - start

    model.eval()
    with ds.no_grad():
        predictions = model(ds.tensor(x_test)).argmax(1).numpy()
    accuracy = float((predictions == y_test).mean())
    print(f"digits MLP: test accuracy {accuracy:.4f}, training {elapsed:.2f}s")
    assert accuracy >= 0.95, f"test accuracy {accuracy:.3f} after {elapsed:.1f}s"
    # Eval mode is deterministic (no dropout, running statistics): the same input gives the same output.
    with ds.no_grad():
        a, b = model(ds.tensor(x_test[:5])).numpy(), model(ds.tensor(x_test[:5])).numpy()
    np.testing.assert_array_equal(a, b)


def train(model: nn.Module, loss_fn: nn.Module, opt: TinyAdam, x_train: np.ndarray, y_train: np.ndarray) -> None:
    order_rng = np.random.default_rng(0)
    for _ in range(25):
        order = order_rng.permutation(len(x_train))
        for i in range(0, len(order), 64):
            batch = order[i : i + 64]
            if len(batch) < 2:  # batch norm needs two samples per channel in training
                continue
            loss = loss_fn(model(ds.tensor(x_train[batch])), ds.tensor(y_train[batch]))
            model.zero_grad()
            loss.backward()
            opt.step()
