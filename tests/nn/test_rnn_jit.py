"""The compiled LSTM loops (downslope.nn._rnn_jit, _rnn_jit_kernels): their tanh, that they run when
they apply, and that they give the NumPy formulation's values and gradients. The layers are compared
with PyTorch on every path in test_recurrent.py."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds
from downslope import gemm
from downslope.nn import _jit, _rnn_jit
from downslope.nn._rnn_kernels import rnn_sequence

kernels = _rnn_jit.kernels(np.zeros(1, dtype=np.float32))
pytestmark = pytest.mark.skipif(kernels is None, reason="needs numba and oneDNN (the jit and onednn extras)")


def test_tanh_is_within_half_a_millionth_everywhere():
    tiny = np.logspace(-30, 0, 20_001)
    x = np.concatenate([np.linspace(-12, 12, 1_000_001), tiny, -tiny, [0.0, 7.9, -7.91, 50.0, -50.0]])
    x = x.astype(np.float32)
    out = np.empty_like(x)
    kernels.tanh_into(x, out)
    exact = np.tanh(x.astype(np.float64))
    error = np.abs(out - exact)
    # 4e-7 absolute and relative: 7 float32 ulps at worst (near |x| = 6), so float32 results agree
    # with PyTorch's to the parity tests' tolerance (rtol 1e-5).
    assert error.max() <= 4e-7, f"max error {error.max():.3g} at x = {x[np.argmax(error)]}"
    relative = error[exact != 0] / np.abs(exact[exact != 0])
    assert relative.max() <= 4e-7
    assert np.abs(out).max() <= 1.0
    np.testing.assert_array_equal(np.sign(out), np.sign(x))


def test_tanh_passes_nan_through():
    out = np.empty(2, dtype=np.float32)
    kernels.tanh_into(np.array([np.nan, 1.0], dtype=np.float32), out)
    assert np.isnan(out[0]) and not np.isnan(out[1])


def _lstm_inputs(bias: bool, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    steps, batch, features, hidden = 7, 5, 6, 9
    arrays = [
        rng.standard_normal((steps, batch, features)),
        rng.standard_normal((batch, hidden)),
        rng.standard_normal((batch, hidden)),
        rng.standard_normal((4 * hidden, features)) * 0.5,
        rng.standard_normal((4 * hidden, hidden)) * 0.5,
    ]
    if bias:
        arrays += [rng.standard_normal(4 * hidden) * 0.5, rng.standard_normal(4 * hidden) * 0.5]
    return [a.astype(np.float32) for a in arrays]


def _run(arrays: list[np.ndarray], reverse: bool) -> list[np.ndarray]:
    """The packed value and the gradient of every input under a fixed projection of the output."""
    tensors = [ds.tensor(a, requires_grad=True) for a in arrays]
    bias = tensors[5:7] if len(tensors) == 7 else [None, None]
    packed = rnn_sequence("LSTM", *tensors[:5], *bias, reverse=reverse)
    projection = np.random.default_rng(9).standard_normal(packed.shape).astype(np.float32)
    (packed * ds.tensor(projection)).sum().backward()
    return [packed.numpy()] + [t.grad.numpy() for t in tensors]


@pytest.mark.host_only  # the compiled loops take host arrays only; on a device the NumPy formulation runs
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("reverse", [False, True])
def test_compiled_loops_give_the_numpy_formulations_values_and_gradients(bias, reverse, monkeypatch):
    arrays = _lstm_inputs(bias, seed=int(bias) + 2 * int(reverse))
    with gemm.disabled(), _jit.disabled():
        want = _run(arrays, reverse)
    calls = []
    for name in ("lstm_forward", "lstm_backward"):
        real = getattr(kernels, name)
        monkeypatch.setattr(kernels, name, lambda *a, _real=real, _name=name: calls.append(_name) or _real(*a))
    got = _run(arrays, reverse)
    assert calls == ["lstm_forward", "lstm_backward"], "the compiled loops did not run"
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5 * max(1.0, np.abs(w).max()))


def test_float64_and_switched_off_paths_do_not_use_the_compiled_loops():
    assert _rnn_jit.kernels(np.zeros(1)) is None  # float64
    with _jit.disabled():
        assert _rnn_jit.kernels(np.zeros(1, dtype=np.float32)) is None
    with gemm.disabled():
        assert _rnn_jit.kernels(np.zeros(1, dtype=np.float32)) is None
