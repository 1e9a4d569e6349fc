"""The compiled running sum (src/downslope/ops/_jit_scan.py, used by ops/scans.py's cumsum and its
gradient): bit-identical to torch's cumsum, which accumulates float32 in float64 and rounds once, forward
and backward, along every dim; and the NumPy path (numba switched off) within rounding of it."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds
from downslope import jit_gate
from downslope.devices import to_host

torch = pytest.importorskip("torch")


def _cases(seed: int) -> list[tuple[np.ndarray, int, np.ndarray]]:
    rng = np.random.default_rng(seed)
    cases = []
    while len(cases) < 40:
        shape = tuple(int(n) for n in rng.integers(1, 70, size=rng.integers(1, 4)))
        if np.prod(shape) < 256:
            continue
        dtype = (np.float32, np.float64)[len(cases) % 2]
        a = (rng.standard_normal(shape) * rng.choice([1.0, 1e4])).astype(dtype)
        g = rng.standard_normal(shape).astype(dtype)
        cases.append((a, int(rng.integers(-len(shape), len(shape))), g))
    return cases


def _both(a: np.ndarray, d: int, g: np.ndarray) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    t = torch.tensor(a, requires_grad=True)
    torch.cumsum(t, d).backward(torch.tensor(g))
    x = ds.from_numpy(a.copy()).requires_grad_()
    y = ds.cumsum(x, d)
    y.backward(ds.from_numpy(g))
    want = (torch.cumsum(t, d).detach().numpy(), t.grad.numpy())
    return want, (to_host(y.detach().array), to_host(x.grad.array))


@pytest.mark.host_only  # the compiled kernel runs on host arrays; a device keeps its own scan
def test_the_running_sum_and_its_gradient_equal_torchs_bit_for_bit() -> None:
    if jit_gate.kernels("downslope.ops._jit_scan", np.zeros(1)) is None:
        pytest.skip("numba is not installed or the compiled path is switched off")
    for a, d, g in _cases(0):
        (want_y, want_g), (got_y, got_g) = _both(a, d, g)
        np.testing.assert_array_equal(got_y, want_y, err_msg=f"{a.shape} {a.dtype} dim={d}")
        np.testing.assert_array_equal(got_g, want_g, err_msg=f"{a.shape} {a.dtype} dim={d}")


def test_the_numpy_path_agrees_within_rounding() -> None:
    with jit_gate.disabled():
        for a, d, g in _cases(1):
            (want_y, want_g), (got_y, got_g) = _both(a, d, g)
            scale = np.abs(a).sum(axis=d, keepdims=True) + np.abs(g).sum(axis=d, keepdims=True)
            tol = 4 * np.finfo(a.dtype).eps * scale
            assert (np.abs(got_y - want_y) <= tol).all() and (np.abs(got_g - want_g) <= tol).all()
