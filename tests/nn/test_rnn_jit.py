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
    return [packed.detach().numpy()] + [t.grad.numpy() for t in tensors]


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


@pytest.mark.host_only
@pytest.mark.parametrize("trained", ["inputs", "weights"])
def test_compiled_loops_give_only_the_gradients_asked_for(trained):
    """A frozen layer (its weights without grad) still passes the input's gradient back, and a
    layer over data (the input without grad) still gets its weights' gradients: the kernel runs
    only the product blocks that are needed, with the NumPy formulation's values."""

    def grads(arrays):
        tensors = [ds.tensor(a, requires_grad=(i == 0) == (trained == "inputs")) for i, a in enumerate(arrays)]
        packed = rnn_sequence("LSTM", *tensors, reverse=False)
        projection = np.random.default_rng(3).standard_normal(packed.shape).astype(np.float32)
        (packed * ds.tensor(projection)).sum().backward()
        return [t.grad for t in tensors]

    arrays = _lstm_inputs(True, seed=31)
    with gemm.disabled(), _jit.disabled():
        want = grads(arrays)
    got = grads(arrays)
    for g, w in zip(got, want):
        assert (g is None) == (w is None)
        if w is not None:
            w = w.numpy()
            np.testing.assert_allclose(g.numpy(), w, rtol=1e-5, atol=1e-5 * max(1.0, np.abs(w).max()))
    assert sum(g is not None for g in got) == (1 if trained == "inputs" else 6)


def test_float64_and_switched_off_paths_do_not_use_the_compiled_loops():
    assert _rnn_jit.kernels(np.zeros(1)) is None  # float64
    with _jit.disabled():
        assert _rnn_jit.kernels(np.zeros(1, dtype=np.float32)) is None
    with gemm.disabled():
        assert _rnn_jit.kernels(np.zeros(1, dtype=np.float32)) is None


def _split_over_threads(monkeypatch: pytest.MonkeyPatch) -> tuple[int, ...]:
    """Make the compiled loops split a small batch (5 rows) over two threads, as they split large
    ones; returns the chunks' bounds (skips where numba cannot run two chunks at once)."""
    from downslope import parallel
    from downslope.nn import _rnn_kernels

    if _rnn_jit.threads() < 2:
        pytest.skip("numba's OpenMP layer with two threads is needed to run two chunks at once")
    monkeypatch.setattr(parallel, "MIN_WORK", 0)
    monkeypatch.setattr(_rnn_kernels, "MIN_ROWS_PER_CHUNK", 1)
    gemm.set_num_threads(2)  # the caller restores the count
    return _rnn_kernels._batch_chunks(np.zeros(1, dtype=np.float32), 7, 5, 9)


@pytest.mark.host_only
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("reverse", [False, True])
def test_two_chunks_at_once_give_the_numpy_formulations_values_and_gradients(bias, reverse, monkeypatch):
    arrays = _lstm_inputs(bias, seed=5 + int(bias) + 2 * int(reverse))
    with gemm.disabled(), _jit.disabled():
        want = _run(arrays, reverse)
    threads = gemm.get_num_threads()
    try:
        assert _split_over_threads(monkeypatch) == (0, 2, 5)  # chunks of unequal size
        calls = []
        for name in ("lstm_forward_threads", "lstm_backward_threads"):
            real = getattr(kernels, name)
            monkeypatch.setattr(kernels, name, lambda *a, _real=real, _name=name: calls.append(_name) or _real(*a))
        got = _run(arrays, reverse)
    finally:
        gemm.set_num_threads(threads)
    assert calls == ["lstm_forward_threads", "lstm_backward_threads"], "the threads did not run"
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5 * max(1.0, np.abs(w).max()))


@pytest.mark.host_only
def test_a_backward_pass_after_the_compiled_loops_are_switched_off_reads_their_layouts(monkeypatch):
    arrays = _lstm_inputs(True, seed=11)
    with gemm.disabled(), _jit.disabled():
        want = _run(arrays, reverse=False)
    threads = gemm.get_num_threads()
    try:
        _split_over_threads(monkeypatch)
        tensors = [ds.tensor(a, requires_grad=True) for a in arrays]
        packed = rnn_sequence("LSTM", *tensors, reverse=False)  # forward: compiled, two chunks
    finally:
        gemm.set_num_threads(threads)
    projection = np.random.default_rng(9).standard_normal(packed.shape).astype(np.float32)
    with _jit.disabled():  # backward: the NumPy formulation, on gate-major rows
        (packed * ds.tensor(projection)).sum().backward()
    got = [packed.detach().numpy()] + [t.grad.numpy() for t in tensors]
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5 * max(1.0, np.abs(w).max()))


@pytest.mark.host_only
@pytest.mark.parametrize("bias", [True, False])
def test_one_thread_alone_runs_every_task_of_a_split_batch(bias, monkeypatch):
    """The threads take a pass's tasks from one ticket counter: a thread alone (the others not
    started yet, or none at all) runs every task, here of three batch chunks of unequal size and
    the product blocks that go with them, with the NumPy formulation's values and gradients."""
    from downslope.nn import _rnn_kernels

    arrays = _lstm_inputs(bias, seed=21 + int(bias))
    with gemm.disabled(), _jit.disabled():
        want = _run(arrays, reverse=False)
    monkeypatch.setattr(_rnn_kernels, "_batch_chunks", lambda *args: (0, 1, 3, 5))
    done = []

    def alone(name):
        def run(sgemm, pause, *arrays_bounds_counters_statuses):
            *rest, counters, statuses = arrays_bounds_counters_statuses
            statuses[0] = getattr(kernels, name)(sgemm, pause, *rest, counters)
            done.append(int(counters[2 * 16]))

        return run

    for name in ("lstm_forward", "lstm_backward"):
        monkeypatch.setattr(kernels, name + "_threads", alone(name))
    got = _run(arrays, reverse=False)
    # forward: 3 projection blocks and 3 chunks; backward: 3 chunks, 3 weight-gradient blocks and
    # 3 input-gradient blocks
    assert done == [6, 9], "every task of both passes was run and counted done"
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5 * max(1.0, np.abs(w).max()))


@pytest.mark.slow  # a fresh process: numba's threading layer starts once per process
def test_starting_numbas_threads_keeps_the_gemm_thread_count():
    import subprocess
    import sys

    code = (
        "from downslope import gemm\n"
        "from downslope.nn import _rnn_jit\n"
        "gemm.set_num_threads(1)\n"
        "_rnn_jit.threads()\n"
        "print(gemm.get_num_threads())\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[-1] == "1", "starting numba's OpenMP threads changed oneDNN's thread count"


@pytest.mark.host_only
def test_a_layer_in_one_chunk_runs_its_small_step_products_on_one_thread(monkeypatch):
    """As gemm.stepper's: one OpenMP region per time step waits badly for a thread that another
    process holds the core of, so a loop's small products run on its own thread."""
    from downslope.nn import _rnn_kernels

    monkeypatch.setattr(_rnn_kernels, "MIN_ROWS_PER_CHUNK", 10**6)  # one chunk
    seen = []
    for name in ("lstm_forward", "lstm_backward"):
        real = getattr(kernels, name)
        monkeypatch.setattr(kernels, name, lambda *a, _real=real: seen.append(gemm.get_num_threads()) or _real(*a))
    threads = gemm.get_num_threads()
    gemm.set_num_threads(2)
    try:
        _run(_lstm_inputs(True, seed=21), reverse=False)
        assert gemm.get_num_threads() == 2
    finally:
        gemm.set_num_threads(threads)
    assert seen == [1, 1]


def test_a_failing_load_of_the_compiled_loops_falls_back_to_numpy(monkeypatch):
    # numba raises RuntimeError ("cannot cache function ... no locator available") at import when no
    # cache directory is writable (a read-only install, HOME not writable): the LSTM must run on NumPy.
    import sys

    from downslope import jit_gate

    name = "downslope.nn._rnn_jit_kernels"

    class _NoCacheLocator:
        def find_spec(self, fullname, path=None, target=None):
            if fullname == name:
                raise RuntimeError("cannot cache function 'tanh_into': no locator available")
            return None

    monkeypatch.delitem(sys.modules, name, raising=False)
    monkeypatch.setattr(sys, "meta_path", [_NoCacheLocator(), *sys.meta_path])
    monkeypatch.setattr(_rnn_jit, "_tried", False)
    monkeypatch.setattr(_rnn_jit, "_loaded", None)
    monkeypatch.setattr(jit_gate, "_loaded", {})
    monkeypatch.setattr(jit_gate, "_warned", set())
    monkeypatch.setenv("DOWNSLOPE_JIT", "1")
    x = np.zeros((2, 3, 4), np.float32)
    with pytest.warns(RuntimeWarning, match="could not be loaded"):
        assert _rnn_jit.kernels(x, gain_us=10**9) is None
    layer = ds.nn.LSTM(4, 5)
    out = layer(ds.tensor(x))[0]
    out.sum().backward()
    assert out.shape == (2, 3, 5)
