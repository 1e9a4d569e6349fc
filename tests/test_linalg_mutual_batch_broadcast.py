"""Solves whose A and B batch dims broadcast with each other (A (2, 1, n, n) with B (3, n, k) gives
(2, 3, n, k)), as PyTorch's: values against torch in float64, and each gradient summed back to its own
operand's batch shape."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")

N, K = 3, 2
RNG = np.random.default_rng(7)
A_NP = RNG.standard_normal((2, 1, N, N)) + 3 * np.eye(N)
B_NP = RNG.standard_normal((3, N, K))
CHOL_NP = np.linalg.cholesky(A_NP @ np.swapaxes(A_NP, -1, -2))

Solve = Callable[[Any, Any, Any], Any]  # (library, A, B) -> X

CASES: dict[str, Solve] = {
    "solve": lambda L, a, b: L.linalg.solve(a, b),
    "solve_ex": lambda L, a, b: L.linalg.solve_ex(a, b)[0],
    "solve_left_false": lambda L, a, b: L.linalg.solve(a, b.mT, left=False),
    "solve_triangular": lambda L, a, b: L.linalg.solve_triangular(a.triu(), b, upper=True),
    "solve_triangular_left_false": lambda L, a, b: L.linalg.solve_triangular(a.tril(), b.mT, upper=False, left=False),
    "solve_triangular_unit": lambda L, a, b: L.linalg.solve_triangular(a, b, upper=False, unitriangular=True),
    "triangular_solve": lambda L, a, b: L.triangular_solve(b, a.triu())[0],
    "triangular_solve_transpose": lambda L, a, b: L.triangular_solve(b, a, upper=False, transpose=True)[0],
    "cholesky_solve": lambda L, a, b: L.cholesky_solve(b, a.tril()),
    "cholesky_solve_upper": lambda L, a, b: L.cholesky_solve(b, a.triu(), upper=True),
}


def _run(lib: Any, fn: Solve, a_np: np.ndarray, b_np: np.ndarray, cot: np.ndarray | None) -> tuple[Any, ...]:
    a = lib.tensor(a_np, dtype=lib.float64, requires_grad=True)
    b = lib.tensor(b_np, dtype=lib.float64, requires_grad=True)
    x = fn(lib, a, b)
    if cot is None:
        return (x.detach().numpy(),)
    (x * lib.tensor(cot, dtype=lib.float64)).sum().backward()
    return x.detach().numpy(), a.grad.numpy(), b.grad.numpy()


@pytest.mark.parametrize("name", sorted(CASES))
def test_mutually_broadcast_batches_match_torch_with_gradients(name: str) -> None:
    a_np = CHOL_NP if name.startswith("cholesky") else A_NP
    fn = CASES[name]
    (probe,) = _run(torch, fn, a_np, B_NP, None)
    assert probe.shape[:2] == (2, 3)  # the common batch, not A's
    cot = RNG.standard_normal(probe.shape)
    theirs = _run(torch, fn, a_np, B_NP, cot)
    ours = _run(ds, fn, a_np, B_NP, cot)
    assert ours[1].shape == a_np.shape and ours[2].shape == B_NP.shape
    for got, want in zip(ours, theirs, strict=True):
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)


def test_b_with_more_batch_dims_than_a_matches_torch() -> None:
    a_np = RNG.standard_normal((3, N, N)) + 3 * np.eye(N)
    b_np = RNG.standard_normal((2, 1, N, K))
    cot = RNG.standard_normal((2, 3, N, K))
    for fn in (CASES["solve"], CASES["solve_triangular"], CASES["cholesky_solve"]):
        ours, theirs = _run(ds, fn, a_np, b_np, cot), _run(torch, fn, a_np, b_np, cot)
        for got, want in zip(ours, theirs, strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)


def test_singular_member_of_a_mutually_broadcast_solve_ex_matches_torch() -> None:
    a_np = A_NP.copy()
    a_np[0, 0] = 0.0  # a singular matrix: LAPACK's inf/NaN result and info, the other keeps its solution
    theirs = torch.linalg.solve_ex(torch.tensor(a_np), torch.tensor(B_NP))
    ours = ds.linalg.solve_ex(ds.tensor(a_np, dtype=ds.float64), ds.tensor(B_NP, dtype=ds.float64))
    np.testing.assert_array_equal(ours.info.numpy(), theirs.info.numpy())
    assert tuple(ours.result.shape) == tuple(theirs.result.shape)
    np.testing.assert_allclose(ours.result.numpy()[1], theirs.result.numpy()[1], rtol=1e-10, atol=1e-10)


def test_zero_diagonal_triangular_solve_broadcasts_mutually_as_torch() -> None:
    a_np = np.triu(A_NP.copy())
    a_np[1, 0, 2, 2] = 0.0  # a zero pivot takes the substitution path (inf/NaN as LAPACK's trsm)
    fn = CASES["solve_triangular"]
    ours, theirs = _run(ds, fn, a_np, B_NP, None), _run(torch, fn, a_np, B_NP, None)
    np.testing.assert_allclose(ours[0], theirs[0], rtol=1e-10, atol=1e-10)


def test_batches_that_do_not_broadcast_are_refused_naming_the_shapes() -> None:
    a = ds.tensor(RNG.standard_normal((2, N, N)) + 3 * np.eye(N), dtype=ds.float64)
    b = ds.tensor(RNG.standard_normal((3, N, K)), dtype=ds.float64)
    with pytest.raises(ds.errors.ShapeError, match="do not broadcast"):
        ds.linalg.solve(a, b)


@pytest.mark.parametrize(
    "shapes", [((3, 3), (3,)), ((2, 3, 3), (2, 3)), ((1, 2, 3, 3), (1, 2, 3)), ((2, 2, 2), (2, 2))]
)
def test_left_false_refuses_a_vector_shaped_b_as_torch(shapes: tuple[tuple[int, ...], tuple[int, ...]]) -> None:
    a_shape, b_shape = shapes
    with pytest.raises(RuntimeError, match="Incompatible shapes"):
        torch.linalg.solve(
            torch.ones(a_shape, dtype=torch.float64), torch.ones(b_shape, dtype=torch.float64), left=False
        )
    with pytest.raises(ds.errors.ShapeError, match="left=False, B must be a matrix"):
        ds.linalg.solve(ds.ones(*a_shape, dtype=ds.float64), ds.ones(*b_shape, dtype=ds.float64), left=False)


def test_left_false_takes_a_matrix_b_against_a_batch_as_torch() -> None:
    a_np = RNG.standard_normal((2, N, N)) + 3 * np.eye(N)
    b_np = RNG.standard_normal((N, N))  # not A's shape without its last dim: a matrix
    cot = RNG.standard_normal((2, N, N))
    fn = CASES["solve_left_false"]
    ours, theirs = _run(ds, fn, a_np, b_np, cot), _run(torch, fn, a_np, b_np, cot)
    for got, want in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)
