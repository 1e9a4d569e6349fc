"""Triangular solves over a batch of small matrices (per-particle 3x3 systems, batched Cholesky solves):
values and gradients as torch's, without a per-matrix call into SciPy."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds
import downslope.linalg as dl

torch = pytest.importorskip("torch")


def _lower(rng, shape, n, dtype=np.float64):
    t = np.tril(rng.standard_normal((*shape, n, n))) + 2 * np.eye(n)
    if np.dtype(dtype).kind == "c":
        t = t + 1j * np.tril(rng.standard_normal((*shape, n, n)))
    return t.astype(dtype)


@pytest.mark.parametrize("upper", [False, True])
@pytest.mark.parametrize("left", [True, False])
@pytest.mark.parametrize("unit", [False, True])
def test_batched_solve_triangular_values_and_gradients_match_torch(upper, left, unit):
    rng = np.random.default_rng(0)
    t0 = _lower(rng, (5, 1), 4)
    # an upper solve reads the upper triangle: junk below it must be ignored (and the diagonal with unit)
    t0 = (
        np.swapaxes(t0, -1, -2) + np.tril(rng.standard_normal(t0.shape), -1)
        if upper
        else t0 + np.triu(rng.standard_normal(t0.shape), 1)
    )
    b0 = rng.standard_normal((1, 3, 4, 2) if left else (1, 3, 2, 4))  # batches broadcast to (5, 3)
    got = {}
    for lib in (torch, ds):
        t = lib.tensor(t0, dtype=lib.float64, requires_grad=True)
        b = lib.tensor(b0, dtype=lib.float64, requires_grad=True)
        x = lib.linalg.solve_triangular(t, b, upper=upper, left=left, unitriangular=unit)
        gt, gb = lib.autograd.grad((x * x.detach().cos()).sum(), (t, b))
        got[lib.__name__] = [x.detach().numpy(), gt.numpy(), gb.numpy()]
    for d, w in zip(got["downslope"], got["torch"]):
        np.testing.assert_allclose(d, w, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.complex128])
def test_batched_solve_triangular_keeps_dtype_and_matches_torch(dtype):
    rng = np.random.default_rng(1)
    t0 = _lower(rng, (6,), 3, dtype)
    b0 = rng.standard_normal((6, 3, 1)).astype(dtype)
    want = torch.linalg.solve_triangular(torch.from_numpy(t0), torch.from_numpy(b0), upper=False).numpy()
    got = ds.linalg.solve_triangular(ds.from_numpy(t0), ds.from_numpy(b0), upper=False).numpy()
    assert got.dtype == want.dtype
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


def test_batched_cholesky_solve_gradient_matches_torch():
    rng = np.random.default_rng(2)
    a = rng.standard_normal((200, 3, 3))
    s0 = a @ np.swapaxes(a, -1, -2) + np.eye(3)
    b0 = rng.standard_normal((200, 3, 2))
    got = {}
    for lib in (torch, ds):
        s = lib.tensor(s0, dtype=lib.float64, requires_grad=True)
        x = lib.cholesky_solve(lib.tensor(b0, dtype=lib.float64), lib.linalg.cholesky(s))
        got[lib.__name__] = (x.detach().numpy(), lib.autograd.grad(x.pow(2).sum(), s)[0].numpy())
    for d, w in zip(got["downslope"], got["torch"]):
        np.testing.assert_allclose(d, w, rtol=1e-10, atol=1e-12)


def test_a_batch_of_small_matrices_is_not_solved_one_matrix_at_a_time(monkeypatch):
    # SciPy loops over a batch in Python (seconds for 20000 3x3 solves): a batch takes the substitution
    class NoScipy:
        def solve_triangular(self, *args, **kwargs):
            raise AssertionError("a batch of small matrices reached SciPy's per-matrix solve")

    monkeypatch.setattr(dl, "_host_scipy_linalg", lambda: NoScipy())
    t = ds.tensor(_lower(np.random.default_rng(3), (2000,), 3), dtype=ds.float64)
    x = ds.linalg.solve_triangular(t, ds.ones(2000, 3, 1, dtype=ds.float64), upper=False)
    np.testing.assert_allclose((t @ x).numpy(), np.ones((2000, 3, 1)), rtol=1e-12)
