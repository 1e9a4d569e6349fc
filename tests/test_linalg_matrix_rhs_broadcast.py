"""The triangular, Cholesky and LU solves take B as a matrix whatever its shape, broadcast against a batch
of factors as PyTorch's do (linalg.solve's rule that B of A's shape without its last dim is a batch of
vectors is its own): B of shape (n, k) against factors of shape (b, n, n) gives (b, n, k)."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")

RNG = np.random.default_rng(0)
FACTORS = np.tril(RNG.standard_normal((2, 2, 2))) + 3 * np.eye(2)  # batch == n: B (n, n) is A.shape[:-1]


def _ours_and_theirs(b: np.ndarray) -> list[tuple[object, object]]:
    return [
        (lambda B, L: ds.cholesky_solve(B, L), lambda B, L: torch.cholesky_solve(B, L)),
        (
            lambda B, L: ds.linalg.solve_triangular(L, B, upper=False),
            lambda B, L: torch.linalg.solve_triangular(L, B, upper=False),
        ),
        (
            lambda B, L: ds.triangular_solve(B, L, upper=False)[0],
            lambda B, L: torch.triangular_solve(B, L, upper=False)[0],
        ),
    ]


@pytest.mark.parametrize("k", [2, 4])  # k == n is the shape linalg.solve would read as vectors
def test_matrix_rhs_broadcasts_against_a_batch_of_factors_as_torch(k: int) -> None:
    b = RNG.standard_normal((2, k))
    for ours, theirs in _ours_and_theirs(b):
        B, L = (
            ds.tensor(b, dtype=ds.float64, requires_grad=True),
            ds.tensor(FACTORS, dtype=ds.float64, requires_grad=True),
        )
        tB, tL = torch.tensor(b, requires_grad=True), torch.tensor(FACTORS, requires_grad=True)
        y, ty = ours(B, L), theirs(tB, tL)
        assert tuple(y.shape) == tuple(ty.shape)
        np.testing.assert_allclose(y.detach().numpy(), ty.detach().numpy(), rtol=1e-12, atol=1e-12)
        y.sum().backward()
        ty.sum().backward()
        np.testing.assert_allclose(B.grad.numpy(), tB.grad.numpy(), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(L.grad.numpy(), tL.grad.numpy(), rtol=1e-12, atol=1e-12)


def test_lu_solve_broadcasts_a_matrix_rhs_as_torch() -> None:
    a = RNG.standard_normal((2, 2, 2)) + 3 * np.eye(2)
    b = RNG.standard_normal((2, 2))
    LU, piv = ds.linalg.lu_factor(ds.tensor(a, dtype=ds.float64))
    tLU, tpiv = torch.linalg.lu_factor(torch.tensor(a))
    y = ds.linalg.lu_solve(LU, piv, ds.tensor(b, dtype=ds.float64))
    ty = torch.linalg.lu_solve(tLU, tpiv, torch.tensor(b))
    assert tuple(y.shape) == tuple(ty.shape)
    np.testing.assert_allclose(y.numpy(), ty.numpy(), rtol=1e-12, atol=1e-12)
