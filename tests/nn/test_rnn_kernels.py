"""The fused recurrent sequence op (downslope.nn._rnn_kernels) by finite differences in float64.

The layers built on it are compared with PyTorch in test_recurrent.py; here every input of the op
(sequence, initial states, weights, biases) gets a finite-difference check, in both directions.
"""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds
from downslope.nn._rnn_kernels import rnn_sequence

GATES = {"LSTM": 4, "GRU": 3, "RNN_TANH": 1, "RNN_RELU": 1}


def _inputs(mode: str, bias: bool, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    hidden, features, batch, steps = 3, 2, 2, 4
    rows = GATES[mode] * hidden
    arrays = [rng.standard_normal((steps, batch, features)), rng.standard_normal((batch, hidden))]
    if mode == "LSTM":
        arrays.append(rng.standard_normal((batch, hidden)))
    arrays += [rng.standard_normal((rows, features)) * 0.6, rng.standard_normal((rows, hidden)) * 0.6]
    if bias:
        arrays += [rng.standard_normal(rows) * 0.5, rng.standard_normal(rows) * 0.5]
    return arrays


def _op(mode: str, bias: bool, reverse: bool):  # type: ignore[no-untyped-def]
    def run(*args):  # type: ignore[no-untyped-def]
        x, h0 = args[0], args[1]
        c0 = args[2] if mode == "LSTM" else None
        rest = args[3:] if mode == "LSTM" else args[2:]
        w_ih, w_hh = rest[0], rest[1]
        b_ih, b_hh = (rest[2], rest[3]) if bias else (None, None)
        return rnn_sequence(mode, x, h0, c0, w_ih, w_hh, b_ih, b_hh, reverse=reverse)

    return run


@pytest.mark.parametrize("mode", ["LSTM", "GRU", "RNN_TANH", "RNN_RELU"])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("bias", [True, False])
def test_fused_sequence_gradcheck_float64(mode, reverse, bias):
    ds.gradcheck(_op(mode, bias, reverse), _inputs(mode, bias))


def test_packed_layout_and_reverse_direction():
    arrays = [a.astype(np.float32) for a in _inputs("LSTM", True, seed=1)]
    t = [ds.tensor(a) for a in arrays]
    packed = rnn_sequence("LSTM", t[0], t[1], t[2], t[3], t[4], t[5], t[6], reverse=False)
    steps = arrays[0].shape[0]
    assert packed.shape == (steps + 2,) + arrays[1].shape
    np.testing.assert_array_equal(packed.numpy()[0], arrays[1])  # packed[0] is h0
    # The reverse direction is the forward one run over the time-reversed sequence.
    flipped = ds.tensor(np.ascontiguousarray(arrays[0][::-1]))
    backwards = rnn_sequence("LSTM", t[0], t[1], t[2], t[3], t[4], t[5], t[6], reverse=True)
    forwards = rnn_sequence("LSTM", flipped, t[1], t[2], t[3], t[4], t[5], t[6], reverse=False)
    np.testing.assert_allclose(backwards.numpy(), forwards.numpy(), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("mode", ["LSTM", "GRU", "RNN_TANH", "RNN_RELU"])
@pytest.mark.parametrize("reverse", [False, True])
def test_double_backward_through_the_fused_op_equals_the_recorded_rerun(mode, reverse):
    from downslope.nn._rnn_kernels import _rerun_recorded

    lstm = mode == "LSTM"
    arrays = _inputs(mode, True)
    tensors = [ds.tensor(a, dtype=ds.float64, requires_grad=True) for a in arrays]
    x, h0 = tensors[0], tensors[1]
    c0 = tensors[2] if lstm else None
    weights = tensors[3:] if lstm else tensors[2:]
    packed = rnn_sequence(mode, x, h0, c0, *weights, reverse=reverse)
    rerun = _rerun_recorded(mode, reverse, True, tensors)
    np.testing.assert_allclose(packed.detach().numpy(), rerun.detach().numpy(), rtol=1e-12)
    grads = []
    for out in (packed, rerun):
        (g,) = ds.autograd.grad((out * out).sum(), [weights[1]], create_graph=True)
        second = ds.autograd.grad((g * g).sum(), [x])
        grads.append((g.detach().numpy(), second[0].numpy()))
    for a, b in zip(grads[0], grads[1]):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.host_only  # oneDNN takes host arrays only
@pytest.mark.parametrize("mode", ["LSTM", "GRU", "RNN_TANH"])
def test_float32_products_take_onednn_step_by_step(mode, monkeypatch):
    """Guard against a silent fallback: with the size thresholds at 0 and the compiled loops off,
    every per-step product of the NumPy formulation is a call into oneDNN."""
    from downslope import gemm
    from downslope.nn import _jit

    if not gemm.available():
        pytest.skip("oneDNN is not installed (the onednn extra)")
    monkeypatch.setattr(gemm, "MIN_MULTIPLY_ADDS", 0)
    monkeypatch.setattr(gemm, "STEP_MIN_MULTIPLY_ADDS", 0)
    monkeypatch.setattr(gemm, "STEP_NARROW_MAX_MULTIPLY_ADDS", 0)
    calls = []
    real = gemm._sgemm
    monkeypatch.setattr(gemm, "_sgemm", lambda *args: calls.append(args[2:5]) or real(*args))
    arrays = [ds.tensor(a.astype(np.float32), requires_grad=True) for a in _inputs(mode, True)]
    with _jit.disabled():
        packed = _op(mode, True, False)(*arrays)
        forward = len(calls)
        packed.sum().backward()
    steps = arrays[0].shape[0]
    assert forward >= steps, f"{forward} oneDNN calls in a {steps}-step forward pass"
    assert len(calls) - forward >= steps + 2, "the backward pass: one per step and the weight gradients"


@pytest.mark.host_only  # oneDNN takes host arrays only
@pytest.mark.parametrize("mode", ["LSTM", "GRU"])
def test_small_batch_gate_major_products_stay_on_numpy_and_match_torch(mode, monkeypatch):
    """At a batch of 4 the gate-major per-step products are (G*H, K) @ (K, 4): oneDNN's narrow
    kernels ran them 3-15x slower than NumPy's BLAS (79 vs 9 us for an LSTM of 128 units), which
    made an eval pass of a small LSTM several times slower than PyTorch's. They stay on NumPy;
    the whole-sequence products around the loop may still go to oneDNN."""
    import torch

    from downslope import gemm
    from downslope.nn import _jit

    if not gemm.available():
        pytest.skip("oneDNN is not installed (the onednn extra)")
    calls = []
    real = gemm._sgemm
    monkeypatch.setattr(gemm, "_sgemm", lambda *args: calls.append(args[2:5]) or real(*args))
    x = np.random.default_rng(3).standard_normal((4, 20, 32)).astype(np.float32)
    theirs = getattr(torch.nn, mode)(32, 128, batch_first=True)
    ours = getattr(ds.nn, mode)(32, 128, batch_first=True)
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    with torch.no_grad():
        want = theirs(torch.from_numpy(x))[0].numpy()
    with ds.no_grad(), _jit.disabled():
        got = ours(ds.tensor(x))[0].numpy()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    narrow = [c for c in calls if min(c[:2]) <= gemm.STEP_NARROW_COLUMNS]
    assert not narrow, f"{len(narrow)} narrow per-step products (m, n, k) went to oneDNN: {narrow[:3]}"
