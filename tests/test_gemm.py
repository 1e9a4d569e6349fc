"""downslope.gemm: the product on oneDNN (when installed) equals NumPy's matmul for every layout it takes,
and everything it does not take falls back to NumPy unchanged."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys

import numpy as np
import pytest

from downslope import gemm

needs_onednn = pytest.mark.skipif(not gemm.available(), reason="oneDNN (the onednn extra) is not installed")

# Large enough to take the oneDNN path (m * n * k >= MIN_MULTIPLY_ADDS).
M, K, N = 48, 96, 128
assert M * K * N >= gemm.MIN_MULTIPLY_ADDS


def _rand(*shape: int, seed: int = 0, dtype=np.float32) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def _close(got: np.ndarray, want: np.ndarray) -> None:
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-5 * np.abs(want).max())


def _layouts(rows: int, cols: int, seed: int) -> dict[str, np.ndarray]:
    """The same matrix held four ways: contiguous, transposed view, row-strided slice, column slice."""
    base = _rand(rows, cols, seed=seed)
    wide = np.zeros((rows, cols + 7), dtype=np.float32)
    wide[:, 3 : 3 + cols] = base
    tall = np.zeros((rows + 5, cols), dtype=np.float32).T.copy().T  # Fortran-ordered storage
    tall[:rows] = base
    return {
        "contiguous": base,
        "transposed view": np.ascontiguousarray(base.T).T,
        "padded rows": wide[:, 3 : 3 + cols],
        "fortran slice": tall[:rows],
    }


@needs_onednn
@pytest.mark.parametrize("a_kind", ["contiguous", "transposed view", "padded rows", "fortran slice"])
@pytest.mark.parametrize("b_kind", ["contiguous", "transposed view", "padded rows", "fortran slice"])
def test_every_layout_gives_numpys_product(a_kind, b_kind):
    a, b = _layouts(M, K, 1)[a_kind], _layouts(K, N, 2)[b_kind]
    _close(gemm.matmul(a, b), np.matmul(a.astype(np.float64), b.astype(np.float64)).astype(np.float32))


@needs_onednn
def test_out_is_overwritten_even_when_it_holds_nan_and_accumulate_adds():
    a, b = _rand(M, K, seed=3), _rand(K, N, seed=4)
    want = np.matmul(a, b)
    out = np.full((M, N), np.nan, dtype=np.float32)
    assert gemm.matmul(a, b, out) is out
    _close(out, want)
    start = _rand(M, N, seed=5)
    acc = start.copy()
    assert gemm.matmul(a, b, acc, accumulate=True) is acc
    _close(acc, start + want)


@needs_onednn
def test_an_out_view_with_a_row_stride_and_stacks_of_matrices():
    a, b = _rand(M, K, seed=6), _rand(K, N, seed=7)
    big = np.zeros((M, N + 9), dtype=np.float32)
    gemm.matmul(a, b, big[:, 4 : 4 + N])
    _close(big[:, 4 : 4 + N], a @ b)
    assert not big[:, :4].any() and not big[:, 4 + N :].any()
    stack_a, stack_b = _rand(3, M, K, seed=8), _rand(3, K, N, seed=9)
    _close(gemm.matmul(stack_a, stack_b), np.matmul(stack_a, stack_b))
    _close(gemm.matmul(stack_a, b), np.matmul(stack_a, b))  # a matrix broadcast over the stack
    _close(gemm.matmul(a, stack_b), np.matmul(a, stack_b))
    out = np.empty((3, M, N), dtype=np.float32)
    gemm.matmul(stack_a, stack_b.transpose(0, 2, 1).copy().transpose(0, 2, 1), out)
    _close(out, np.matmul(stack_a, stack_b))


@needs_onednn
def test_stacks_read_backwards_over_two_batch_axes_into_padded_planes_accumulate():
    """A stack's matrices share one layout, worked out once: reversed stacks (negative strides), two
    batch axes, a broadcast operand, and outputs a gap apart (as the Winograd planes are)."""
    stack_a = _rand(2, 3, M, K, seed=11)[:, ::-1]
    b = _rand(K, N, seed=12).T.copy().T  # read transposed
    planes = np.zeros((6 * (M * N + 16),), dtype=np.float32)
    out = planes.reshape(6, M * N + 16)[:, : M * N].reshape(2, 3, M, N)
    start = _rand(2, 3, M, N, seed=13)
    out[...] = start
    assert gemm.matmul(stack_a, b, out, accumulate=True) is out
    _close(out, start + np.matmul(stack_a, b))
    assert not planes.reshape(6, -1)[:, M * N :].any()


@needs_onednn
def test_a_product_that_really_takes_the_onednn_path(monkeypatch):
    # Guard against a silent fallback: count the foreign calls.
    calls = []
    real = gemm._sgemm

    def counting(*args):
        calls.append(args[:5])
        return real(*args)

    monkeypatch.setattr(gemm, "_sgemm", counting)
    a, b = _rand(M, K), _rand(K, N)
    _close(gemm.matmul(a, b.T.copy().T), a @ b)
    assert calls == [(b"N", b"T", M, N, K)]


@pytest.mark.parametrize(
    "case",
    ["float64", "small", "int", "vector", "overlapping out", "strided both ways", "mismatch"],
)
def test_what_onednn_does_not_take_stays_on_numpy(case, monkeypatch):
    def refuse(*args):
        raise AssertionError("this product must not reach oneDNN")

    monkeypatch.setattr(gemm, "_sgemm", refuse)
    a, b = _rand(M, K), _rand(K, N)
    if case == "float64":
        a, b = a.astype(np.float64), b.astype(np.float64)
    elif case == "small":
        a, b = a[:4, :8], b[:8, :8]
    elif case == "int":
        a, b = (a * 10).astype(np.int64), (b * 10).astype(np.int64)
    elif case == "vector":
        b = b[:, 0]
    elif case == "strided both ways":
        a = _rand(2 * M, 2 * K)[::2, ::2]
    elif case == "mismatch":
        with pytest.raises(ValueError):
            gemm.matmul(a, b[:-1])
        return
    if case == "overlapping out":
        square = _rand(K, K)
        want = square @ square
        gemm.matmul(square, square, square)  # NumPy's matmul copies when out overlaps an input
        np.testing.assert_array_equal(square, want)
        return
    np.testing.assert_array_equal(gemm.matmul(a, b), np.matmul(a, b))


def test_tensors_and_device_arrays_use_their_own_operator():
    import downslope as ds
    from downslope.devices import strict

    a, b = _rand(M, K), _rand(K, N)
    got = gemm.matmul(ds.tensor(a), ds.tensor(b))
    assert isinstance(got, ds.Tensor)
    np.testing.assert_array_equal(got.numpy(), ds.tensor(a).matmul(ds.tensor(b)).numpy())
    on_device = gemm.matmul(strict.asarray(a), strict.asarray(b))
    assert type(on_device) is not np.ndarray
    np.testing.assert_array_equal(on_device.get(), np.matmul(a, b))


def test_disabled_and_the_environment_switch():
    with gemm.disabled():
        assert not gemm.available()
        assert gemm.describe().startswith("NumPy")
    code = "import os; from downslope import gemm; print(gemm.available(), gemm.describe()[:7])"
    env = dict(os.environ, DOWNSLOPE_ONEDNN="0")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert done.stdout.split() == ["False", "NumPy's"]


def test_import_downslope_does_not_load_onednn():
    code = "import downslope, downslope.nn; from downslope import gemm; print(gemm._library is None)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "True"


@needs_onednn
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_keeps_numpys_matmul():
    threads = gemm.get_num_threads()
    gemm.set_num_threads(2)
    try:
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: GNU OpenMP is not fork-safe, so the product must come from NumPy
            os.close(read)
            a = _rand(M, K)
            ok = (not gemm.available()) and np.allclose(gemm.matmul(a, a.T), a @ a.T)
            os.write(write, b"1" if ok else b"0")
            os._exit(0)
        os.close(write)
        assert os.read(read, 1) == b"1"
        os.waitpid(pid, 0)
    finally:
        gemm.set_num_threads(threads)


def test_set_num_threads_checks_its_argument():
    with pytest.raises(ValueError, match="expected a count >= 1, got 0"):
        gemm.set_num_threads(0)


def test_loading_onednn_leaves_the_environment_as_it_was():
    # The short OpenMP spin is set only while libgomp loads; child processes see the user's environment.
    code = (
        "import os; from downslope import gemm; gemm.available(); "
        "print('GOMP_SPINCOUNT' in os.environ, os.environ.get('OMP_WAIT_POLICY'))"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert done.stdout.split() == ["False", "None"]


# ---------------------------------------------------------------------- stepper
def _stacks(steps: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A weight, a stack of (K, N) operands read through a transposed view, and a stack of outputs."""
    a = _rand(M, K, seed=seed)
    b = np.ascontiguousarray(_rand(steps, N, K, seed=seed + 1).transpose(0, 2, 1))  # (steps, K, N)
    return a, b.transpose(0, 2, 1).copy().transpose(0, 2, 1), _rand(steps, M, N, seed=seed + 2)


@pytest.mark.parametrize("path", ["onednn", "numpy"])
@pytest.mark.parametrize("accumulate", [False, True])
def test_stepper_computes_each_step_product_on_both_paths(path, accumulate, monkeypatch):
    if path == "onednn" and not gemm.available():
        pytest.skip("oneDNN (the onednn extra) is not installed")
    calls = []
    if path == "onednn":
        real = gemm._sgemm
        monkeypatch.setattr(gemm, "_sgemm", lambda *args: calls.append(args[:5]) or real(*args))
    a, b, out = _stacks(3, seed=10)
    start = out.copy()
    with gemm.disabled() if path == "numpy" else contextlib.nullcontext():
        step = gemm.stepper(a, b, out, accumulate=accumulate)
        for t in (2, 0):  # any order, each step only touches its own output
            step(t)
    for t in (0, 2):
        _close(out[t], (start[t] if accumulate else 0) + a @ b[t])
    np.testing.assert_array_equal(out[1], start[1])
    assert len(calls) == (2 if path == "onednn" else 0)
    if calls:
        assert calls[0] == (b"N", b"T", M, N, K)


@needs_onednn
def test_stepper_with_a_shared_output_reversed_stacks_and_a_transposed_weight():
    # out is one matrix every step adds to; the stack is read backwards (negative step stride).
    w = _rand(K, M, seed=20)  # used as w.T, (M, K)
    stack = _rand(4, K, N, seed=21)[::-1]
    out = np.zeros((M, N), dtype=np.float32)
    step = gemm.stepper(w.T, stack, out, accumulate=True)
    for t in range(4):
        step(t)
    _close(out, sum(w.T @ stack[t] for t in range(4)))


@needs_onednn
@pytest.mark.parametrize("threaded_from", [gemm.STEP_THREADED_MULTIPLY_ADDS, 0])
def test_stepper_runs_small_products_on_one_thread_and_restores_the_count(threaded_from, monkeypatch):
    """Per-step products below STEP_THREADED_MULTIPLY_ADDS run on one thread (a parallel region per
    time step waits badly for a thread another process holds the core of); larger ones on all."""
    counts = []
    real_sgemm = gemm._sgemm
    monkeypatch.setattr(gemm, "STEP_THREADED_MULTIPLY_ADDS", threaded_from)
    monkeypatch.setattr(gemm, "_sgemm", lambda *args: counts.append(gemm.get_num_threads()) or real_sgemm(*args))
    before = gemm.get_num_threads()
    gemm.set_num_threads(3)
    try:
        a, b, out = _stacks(2, seed=30)
        step = gemm.stepper(a, b, out)
        step(0)
        step(1)
        assert gemm.get_num_threads() == 3, "the thread count is the caller's again after each step"
    finally:
        gemm.set_num_threads(before)
    assert counts == ([1, 1] if threaded_from else [3, 3])
    for t in range(2):
        _close(out[t], a @ b[t])


@pytest.mark.parametrize("case", ["float64", "small", "overlap", "device"])
def test_stepper_leaves_what_onednn_does_not_take_to_numpy(case, monkeypatch):
    def refuse(*args):
        raise AssertionError("this product must not reach oneDNN")

    monkeypatch.setattr(gemm, "_sgemm", refuse)
    a, b, out = _stacks(2, seed=30)
    if case == "float64":
        a, b, out = a.astype(np.float64), b.astype(np.float64), out.astype(np.float64)
    elif case == "small":
        a, b, out = a[:4, :8], b[:, :8, :8], out[:, :4, :8]
    elif case == "overlap":
        out = np.zeros((2, M + K, N), dtype=np.float32)
        out[:, M:] = b
        b, out = out[:, M:], out[:, :M]  # b and out share memory
        b_copy = b.copy()
    elif case == "device":
        from downslope.devices import strict

        on_device = strict.asarray(out)
        step = gemm.stepper(strict.asarray(a), strict.asarray(b), on_device)
        step(1)
        np.testing.assert_allclose(on_device.get()[1], a @ b[1], rtol=1e-5, atol=1e-5 * np.abs(a @ b[1]).max())
        return
    step = gemm.stepper(a, b, out)
    step(1)
    want = a @ (b_copy if case == "overlap" else b)[1]
    np.testing.assert_allclose(out[1], want, rtol=1e-5, atol=1e-5 * np.abs(want).max())


def test_stepper_checks_the_shapes():
    a, b, out = _stacks(2, seed=40)
    with pytest.raises(ValueError, match=r"expected a step's product \(m, k\) @ \(k, n\) -> \(m, n\)"):
        gemm.stepper(a, b, out[:, :, :-1])


@needs_onednn
def test_sgemm_function_for_compiled_code():
    f = gemm.sgemm_function()
    a, b = _rand(M, K, seed=50), _rand(K, N, seed=51)
    c = np.full((M, N), np.nan, dtype=np.float32)
    ptr = lambda x: x.__array_interface__["data"][0]  # noqa: E731
    assert f(ord("N"), ord("N"), M, N, K, 1.0, ptr(a), K, ptr(b), N, 0.0, ptr(c), N) == 0
    _close(c, a @ b)
    with gemm.disabled():
        assert gemm.sgemm_function() is None
