"""When a process starts the compiled LSTM loops (downslope.nn._rnn_jit): small passes run on the NumPy
formulation until their estimated gains add up to the start cost (numba is not imported before), large
passes or a process that already imported numba start them at once, and values and gradients follow
PyTorch's across the switch. Each case runs in a fresh process (numba is imported once per process)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import textwrap
from typing import Any

import numpy as np
import pytest

from downslope import gemm
from downslope.nn import _rnn_kernels

needs_both = pytest.mark.skipif(
    importlib.util.find_spec("numba") is None or gemm.sgemm_function() is None,
    reason="needs numba and oneDNN (the jit and onednn extras)",
)

# Trains an LSTM and torch's from the same weights with SGD, step by step; prints, as JSON, whether
# numba was imported after each pass, whether the compiled loops had started, and the largest
# differences from torch of the loss and the gradients.
SCRIPT = """
import json, sys
import numpy as np
import torch
import downslope as ds
from downslope.nn import _rnn_jit
{setup}
batch, length, hidden, features, passes = {shape}
ours, theirs = ds.nn.LSTM(features, hidden, batch_first=True), torch.nn.LSTM(features, hidden, batch_first=True)
ours.load_state_dict({{k: v.detach().numpy() for k, v in theirs.state_dict().items()}})
opt_ours = ds.optim.SGD(ours.parameters(), lr=0.1)
opt_theirs = torch.optim.SGD(theirs.parameters(), lr=0.1)
x = np.random.default_rng(0).standard_normal((batch, length, features)).astype(np.float32)
seen = []
for _ in range(passes):
    opt_ours.zero_grad(); opt_theirs.zero_grad()
    loss = (ours(ds.tensor(x))[0] ** 2).mean(); loss.backward()
    tloss = (theirs(torch.tensor(x))[0] ** 2).mean(); tloss.backward()
    grads = [abs(p.grad.numpy() - q.grad.numpy()).max() for p, q in zip(ours.parameters(), theirs.parameters())]
    seen.append({{"numba": "numba" in sys.modules, "started": _rnn_jit._loaded is not None,
                 "loss": abs(float(loss.detach()) - float(tloss.detach())), "grad": float(max(grads))}})
    opt_ours.step(); opt_theirs.step()
print(json.dumps(seen))
"""


def _passes(shape: tuple[int, ...], setup: str = "") -> list[dict[str, Any]]:
    code = textwrap.dedent(SCRIPT).format(setup=setup, shape=shape)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.splitlines()[-1])
    for s in seen:  # float32 on both sides; the compiled tanh is within 4e-7 of the exact one
        assert s["loss"] < 1e-6 and s["grad"] < 1e-5, s
    return seen


@needs_both
@pytest.mark.slow  # fresh processes
def test_a_small_lstm_pass_does_not_start_numba() -> None:
    seen = _passes((8, 20, 32, 16, 3))
    assert not any(s["numba"] or s["started"] for s in seen), seen


@needs_both
@pytest.mark.slow  # fresh processes
def test_small_passes_start_the_compiled_loops_once_their_gains_add_up_to_the_start_cost() -> None:
    # the start cost set to what three passes gain: the fourth pass starts the loops
    gain = 20 * _rnn_kernels._compiled_gain_per_step(8, 32)
    seen = _passes((8, 20, 32, 16, 6), setup=f"_rnn_jit.START_COST_US = {3.5 * gain}")
    assert [s["started"] for s in seen] == [False, False, False, True, True, True], seen


@needs_both
@pytest.mark.slow  # fresh processes
def test_a_process_that_imported_numba_starts_the_compiled_loops_at_once() -> None:
    seen = _passes((8, 20, 32, 16, 2), setup="import numba")
    assert all(s["started"] for s in seen), seen


@needs_both
@pytest.mark.slow  # fresh processes
def test_a_pass_that_gains_much_starts_the_compiled_loops_at_once() -> None:
    batch, length, hidden = 64, 100, 128
    assert length * _rnn_kernels._compiled_gain_per_step(batch, hidden) >= _rnn_kernels._rnn_jit.EAGER_GAIN_US
    seen = _passes((batch, length, hidden, 16, 1))
    assert seen[0]["started"], seen


@pytest.mark.host_only
@pytest.mark.parametrize("shape", [(48, 160, 33), (700, 900, 40)])  # 0.25M and 25M multiply-adds
def test_sequence_products_run_small_ones_on_one_thread(shape: tuple[int, int, int], monkeypatch: Any) -> None:
    if not gemm.available():
        pytest.skip("oneDNN is not installed (the onednn extra)")
    m, k, n = shape
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((m, k)).astype(np.float32), rng.standard_normal((k, n)).astype(np.float32)
    before = gemm.get_num_threads()
    gemm.set_num_threads(2)
    threads: list[int | None] = []
    real = gemm.matmul
    monkeypatch.setattr(gemm, "matmul", lambda *args: threads.append(gemm.get_num_threads()) or real(*args))
    try:
        got = _rnn_kernels._sequence_matmul(a, b)
        after = gemm.get_num_threads()
    finally:
        gemm.set_num_threads(before or 1)
    np.testing.assert_allclose(got, a.astype(np.float64) @ b, rtol=1e-4, atol=1e-4)
    small = m * k * n < _rnn_kernels.SEQUENCE_THREADED_MULTIPLY_ADDS
    assert threads == [1 if small else 2] and after == 2
