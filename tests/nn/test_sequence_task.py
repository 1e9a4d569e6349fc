"""End to end: an LSTM and a GRU learn small sequence tasks through backpropagation through time.

* parity of 4 bits (the label depends on every step, so the state must carry information);
* the sum of a sequence of 6 numbers (regression, checked on sequences never seen in training).

The optimizer is a few lines of Adam written here on ``p.array`` / ``p.grad.array``.
"""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds
import downslope.nn.functional as F
from downslope import nn


class _Adam:
    """Adam (Kingma & Ba) with PyTorch's defaults besides the learning rate."""

    def __init__(self, params, lr: float, betas=(0.9, 0.999), eps: float = 1e-8) -> None:
        self.params, self.lr, self.betas, self.eps, self.t = list(params), lr, betas, eps, 0
        self.m: list = []
        self.v: list = []

    def step(self) -> None:
        if not self.m:  # the moments are made at the first step, beside the parameters wherever they are then
            self.m = [np.zeros_like(p.array) for p in self.params]
            self.v = [np.zeros_like(p.array) for p in self.params]
        self.t += 1
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


class _SequenceModel(nn.Module):
    """A recurrent layer (batch_first) read out by a linear layer from its final hidden state."""

    def __init__(self, recurrent: nn.Module, hidden: int, outputs: int) -> None:
        super().__init__()
        self.recurrent = recurrent
        self.head = nn.Linear(hidden, outputs)

    def forward(self, x: ds.Tensor) -> ds.Tensor:
        _, state = self.recurrent(x)
        h_n = state[0] if isinstance(state, tuple) else state
        return self.head(h_n[-1])


def _cross_entropy(logits: ds.Tensor, labels: ds.Tensor) -> ds.Tensor:
    fused = getattr(F, "cross_entropy", None)
    if fused is not None:
        return fused(logits, labels)
    return -ds.gather(ds.log_softmax(logits, dim=1), 1, labels.numpy()[:, None]).mean()


@pytest.mark.parametrize("layer", [nn.LSTM, nn.GRU])
def test_learns_parity_of_four_bits(layer):
    ds.manual_seed(0)
    bits = (np.arange(16)[:, None] >> np.arange(4)) & 1  # all 16 sequences
    labels = bits.sum(axis=1).astype(np.int64) % 2
    x, y = ds.tensor((2 * bits - 1).astype(np.float32)[:, :, None]), ds.tensor(labels)  # bits as -1/+1
    model = _SequenceModel(layer(1, 16, batch_first=True), 16, 2)
    opt = _Adam(model.parameters(), lr=0.02)
    for _ in range(200):
        loss = _cross_entropy(model(x), y)
        model.zero_grad()
        loss.backward()
        opt.step()
    with ds.no_grad():
        predicted = model(x).numpy().argmax(axis=1)
    accuracy = float((predicted == labels).mean())
    assert accuracy == 1.0, f"{layer.__name__}: parity accuracy {accuracy} (final loss {loss.item():.4f})"


@pytest.mark.parametrize("layer", [nn.LSTM, nn.GRU])
def test_learns_the_sum_of_a_sequence(layer):
    ds.manual_seed(1)
    rng = np.random.default_rng(1)
    length = 6

    def batch(n: int) -> tuple[ds.Tensor, ds.Tensor]:
        values = rng.uniform(0, 1, (n, length, 1)).astype(np.float32)
        return ds.tensor(values), ds.tensor(values.sum(axis=1))

    model = _SequenceModel(layer(1, 16, batch_first=True), 16, 1)
    opt = _Adam(model.parameters(), lr=0.02)
    for _ in range(300):
        x, target = batch(64)
        loss = ((model(x) - target) ** 2).mean()
        model.zero_grad()
        loss.backward()
        opt.step()
    x, target = batch(500)  # fresh sequences
    with ds.no_grad():
        mse = float(((model(x) - target) ** 2).mean().item())
    print(f"{layer.__name__}: test MSE {mse:.4f} on the sum of {length} numbers")
    # The target's variance is length / 12 = 0.5, so predicting the mean would score 0.5.
    assert mse < 0.05, f"{layer.__name__}: test MSE {mse:.4f} on the sum of {length} numbers"
