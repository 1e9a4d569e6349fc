"""The compiled LSTM forward reads the layer's weights as they are: no halved or transposed copy of
W_ih or W_hh per call at small batches (that copy cost as much as the whole loop at batch 1), a
transposed copy of W_hh only where the steps repay it; both layouts give PyTorch's values and
gradients."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

import downslope as ds
from downslope.nn import _rnn_jit, _rnn_kernels

kernels = _rnn_jit.kernels(np.zeros(1, dtype=np.float32))
pytestmark = pytest.mark.skipif(kernels is None, reason="needs numba and oneDNN (the jit and onednn extras)")


def _capture_weights(monkeypatch: Any) -> list[tuple[Any, ...]]:
    seen: list[tuple[Any, ...]] = []
    run = _rnn_kernels._run_tasks

    def spy(compiled: Any, kernel: str, threads: int, step_product: int, *arguments: Any) -> None:
        if kernel == "lstm_forward":
            seen.append(arguments[0])
        run(compiled, kernel, threads, step_product, *arguments)

    monkeypatch.setattr(_rnn_kernels, "_run_tasks", spy)
    return seen


def _layers(hidden: int, bias: bool) -> tuple[Any, Any]:
    torch.manual_seed(0)
    theirs = torch.nn.LSTM(hidden, hidden, batch_first=True, bias=bias)
    ours = ds.nn.LSTM(hidden, hidden, batch_first=True, bias=bias)
    ours.load_state_dict({k: ds.tensor(v.detach().numpy()) for k, v in theirs.state_dict().items()})
    return theirs, ours


@pytest.mark.host_only  # the compiled loops run on host arrays alone
def test_small_batch_inference_reads_the_weights_without_copies(monkeypatch: Any) -> None:
    seen = _capture_weights(monkeypatch)
    theirs, ours = _layers(16, bias=True)
    x = np.random.default_rng(0).standard_normal((1, 40, 16)).astype(np.float32)
    with ds.no_grad():
        out, (h, c) = ours.eval()(ds.tensor(x))
    assert len(seen) == 1, "the compiled loop did not run"
    w_ih, w_hh = seen[0]
    assert np.shares_memory(w_ih, ours.weight_ih_l0.array)
    assert np.shares_memory(w_hh, ours.weight_hh_l0.array)
    with torch.no_grad():
        t_out, (t_h, t_c) = theirs.eval()(torch.tensor(x))
    for mine, ref in ((out, t_out), (h, t_h), (c, t_c)):
        np.testing.assert_allclose(mine.numpy(), ref.numpy(), rtol=1e-5, atol=1e-6)


def _compare_with_torch(batch: int, length: int, bias: bool) -> None:
    hidden = 12
    theirs, ours = _layers(hidden, bias)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((batch, length, hidden)).astype(np.float32)
    h0, c0 = (rng.standard_normal((1, batch, hidden)).astype(np.float32) for _ in range(2))
    weights = rng.standard_normal((batch, length, hidden)).astype(np.float32)
    results = []
    for lib, model in ((torch, theirs), (ds, ours)):
        xs = lib.tensor(x, requires_grad=True)
        out, (h, c) = model(xs, (lib.tensor(h0), lib.tensor(c0)))
        ((out * lib.tensor(weights)).sum() + h.sum() + 2 * c.sum()).backward()
        grads = [p.grad.numpy() for p in model.parameters()]
        results.append([out.detach().numpy(), h.detach().numpy(), c.detach().numpy(), xs.grad.numpy(), *grads])
    for mine, ref in zip(results[1], results[0]):
        np.testing.assert_allclose(mine, ref, rtol=2e-5, atol=2e-5)


_SHAPES = [(3, 40), (9, 5), (9, 40)]  # (batch, length): W_hh read transposed, and the copy of it


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("batch, length", _SHAPES)
def test_both_step_layouts_match_torch(batch: int, length: int, bias: bool) -> None:
    _compare_with_torch(batch, length, bias)


@pytest.mark.host_only  # the compiled loops run on host arrays alone
@pytest.mark.parametrize("batch, length", _SHAPES)
def test_the_steps_read_the_layout_their_size_calls_for(monkeypatch: Any, batch: int, length: int) -> None:
    seen = _capture_weights(monkeypatch)
    _compare_with_torch(batch, length, bias=True)
    assert len(seen) == 1, "the compiled loop did not run"
    hidden = seen[0][0].shape[1]
    transposed = batch >= _rnn_kernels.TRANSPOSED_STEP_MIN_ROWS and length >= _rnn_kernels.TRANSPOSED_STEP_MIN_STEPS
    assert seen[0][1].shape == ((hidden, 4 * hidden) if transposed else (4 * hidden, hidden))
