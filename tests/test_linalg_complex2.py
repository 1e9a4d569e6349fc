"""Complex matrices through torch.linalg's solvers and factorizations beyond the first set (triangular and
Cholesky solves, LU and its solves, inv_ex/solve_ex, vecdot, cond, matrix_rank): values and gradients
against torch (torch's conjugate-Wirtinger convention) in complex64 and complex128."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import downslope as ds

from ._complex_helpers import to_numpy as _numpy
from ._complex_helpers import values as _values
from ._complex_helpers import weighted_loss as _loss

torch = pytest.importorskip("torch")

_DTYPES = ["complex64", "complex128"]
_TOL = {"complex64": {"rtol": 1e-4, "atol": 1e-4}, "complex128": {"rtol": 1e-9, "atol": 1e-10}}


def _well_conditioned(seed: int, n: int, batch: tuple[int, ...] = ()) -> np.ndarray:
    return _values(seed, *batch, n, n) + 3 * np.eye(n)


def _hermitian_factor(seed: int, n: int) -> np.ndarray:
    """A lower Cholesky factor with a positive real diagonal (what linalg.cholesky gives)."""
    a = _values(seed, n, n)
    return np.linalg.cholesky(a @ a.conj().T + n * np.eye(n))


def _compare(fn: Callable[..., Any], arrays: list[np.ndarray], dtype: str) -> None:
    mine = [ds.tensor(a, dtype=getattr(ds, dtype), requires_grad=True) for a in arrays]
    ref = [torch.tensor(a, dtype=getattr(torch, dtype), requires_grad=True) for a in arrays]
    out, expected = fn(ds, *mine), fn(torch, *ref)
    outs = out if isinstance(out, tuple) else (out,)
    expecteds = expected if isinstance(expected, tuple) else (expected,)
    loss_m, loss_t = 0, 0
    for i, (o, e) in enumerate(zip(outs, expecteds)):
        assert str(o.dtype) == str(e.dtype).replace("torch.", ""), (o.dtype, e.dtype)
        assert tuple(o.shape) == tuple(e.shape)
        np.testing.assert_allclose(_numpy(o), _numpy(e), **_TOL[dtype])
        if e.requires_grad:
            loss_m, loss_t = loss_m + _loss(o, 10 + i), loss_t + _loss(e, 10 + i)
    loss_m.backward()
    loss_t.backward()
    for m, r in zip(mine, ref):
        if r.grad is None:
            assert m.grad is None or not np.abs(_numpy(m.grad)).any()
        else:
            np.testing.assert_allclose(_numpy(m.grad), _numpy(r.grad), **_TOL[dtype])


def _cond(lib: Any, a: Any, p: Any) -> Any:
    if lib is ds:
        return ds.linalg.cond(a, p)
    return torch.linalg.matrix_norm(a, p) * torch.linalg.matrix_norm(torch.linalg.inv(a), p)


_SQUARE = _well_conditioned(1, 4, (2,))
_RHS = _values(2, 2, 4, 3)
_RHS_RIGHT = _values(3, 2, 3, 4)

_CASES: dict[str, tuple[Callable[..., Any], list[np.ndarray]]] = {
    "solve_triangular_upper": (
        lambda L, a, b: L.linalg.solve_triangular(a, b, upper=True), [_SQUARE, _RHS]),
    "solve_triangular_lower_right_unit": (
        lambda L, a, b: L.linalg.solve_triangular(a, b, upper=False, left=False, unitriangular=True),
        [_SQUARE, _RHS_RIGHT]),
    "triangular_solve": (lambda L, a, b: L.triangular_solve(b, a, upper=False), [_SQUARE, _RHS]),
    "triangular_solve_transpose": (
        lambda L, a, b: L.triangular_solve(b, a, upper=True, transpose=True)[0], [_SQUARE, _RHS]),
    "cholesky_solve_lower": (lambda L, f, b: L.cholesky_solve(b, f), [_hermitian_factor(4, 4), _RHS[0]]),
    "cholesky_solve_upper": (
        lambda L, f, b: L.cholesky_solve(b, f, upper=True), [_hermitian_factor(5, 4).conj().T, _RHS[1]]),
    "cholesky_inverse": (lambda L, f: L.cholesky_inverse(f), [_hermitian_factor(6, 4)]),
    "cholesky_inverse_upper": (lambda L, f: L.cholesky_inverse(f, upper=True), [_hermitian_factor(7, 3).conj().T]),
    "lu_factor": (lambda L, a: L.linalg.lu_factor(a)[0], [_values(8, 2, 4, 4)]),
    "lu_factor_ex_wide": (lambda L, a: L.linalg.lu_factor_ex(a).LU, [_values(9, 3, 5)]),
    "lu_tall": (lambda L, a: L.linalg.lu(a)[1:], [_values(10, 5, 3)]),
    "lu_square": (lambda L, a: L.linalg.lu(a), [_values(11, 2, 4, 4)]),
    "lu_unpack": (lambda L, a: L.lu_unpack(*L.linalg.lu_factor(a))[1:], [_values(12, 4, 4)]),
    "lu_solve": (lambda L, a, b: L.linalg.lu_solve(*L.linalg.lu_factor(a), b), [_SQUARE, _RHS]),
    "lu_solve_adjoint": (
        lambda L, a, b: L.linalg.lu_solve(*L.linalg.lu_factor(a), b, adjoint=True), [_SQUARE, _RHS]),
    "lu_solve_right": (
        lambda L, a, b: L.linalg.lu_solve(*L.linalg.lu_factor(a), b, left=False), [_SQUARE, _RHS_RIGHT]),
    "lu_solve_right_adjoint": (
        lambda L, a, b: L.linalg.lu_solve(*L.linalg.lu_factor(a), b, left=False, adjoint=True),
        [_SQUARE, _RHS_RIGHT]),
    "inv_ex": (lambda L, a: L.linalg.inv_ex(a)[0], [_SQUARE]),
    "solve_ex": (lambda L, a, b: L.linalg.solve_ex(a, b)[0], [_SQUARE, _RHS]),
    "solve_ex_vector": (lambda L, a, b: L.linalg.solve_ex(a, b[..., 0])[0], [_SQUARE, _RHS]),
    "vecdot": (lambda L, x, y: L.linalg.vecdot(x, y), [_values(13, 3, 5), _values(14, 3, 5)]),
    "vecdot_dim0": (lambda L, x, y: L.linalg.vecdot(x, y, dim=0), [_values(15, 3, 5), _values(16, 3, 5)]),
    "cond": (lambda L, a: L.linalg.cond(a), [_SQUARE]),
    # torch 2.13's own backward of cond(complex, "fro" or 1) fails (an in-place write in inv_ex): its
    # reference is the definition, ||A|| ||A^-1||, which torch differentiates
    "cond_fro": (lambda L, a: _cond(L, a, "fro"), [_SQUARE]),
    "cond_1": (lambda L, a: _cond(L, a, 1), [_SQUARE]),
    "cond_wide_minus2": (lambda L, a: L.linalg.cond(a, -2), [_values(17, 3, 5)]),
}  # fmt: skip


@pytest.mark.parametrize("dtype", _DTYPES)
@pytest.mark.parametrize("case", sorted(_CASES))
def test_complex_linalg_matches_torch(case: str, dtype: str) -> None:
    fn, arrays = _CASES[case]
    _compare(fn, arrays, dtype)


@pytest.mark.parametrize("dtype", _DTYPES)
def test_complex_lu_pivots_are_lapacks(dtype: str) -> None:
    # LAPACK pivots complex columns on |re| + |im|, not the modulus: rows chosen so the two differ
    a = np.array([[0.1 + 0.0j, 1.0, 0.5], [0.7 + 0.7j, 2.0, 1.0], [0.95 + 0.0j, 1.0j, 3.0]])
    lu, pivots = ds.linalg.lu_factor(ds.tensor(a, dtype=getattr(ds, dtype)))
    lu_t, pivots_t = torch.linalg.lu_factor(torch.tensor(a, dtype=getattr(torch, dtype)))
    np.testing.assert_array_equal(pivots.numpy(), pivots_t.numpy())
    np.testing.assert_allclose(_numpy(lu), _numpy(lu_t), **_TOL[dtype])


@pytest.mark.parametrize("dtype", _DTYPES)
def test_complex_matrix_rank_matches_torch(dtype: str) -> None:
    u, v = _values(18, 2, 5, 2), _values(19, 2, 2, 4)
    a = u @ v  # rank 2
    for kwargs in ({}, {"hermitian": True}, {"atol": 1.0, "rtol": 0.0}):
        arr = a if not kwargs.get("hermitian") else u @ u.conj().swapaxes(-1, -2)
        mine = ds.linalg.matrix_rank(ds.tensor(arr, dtype=getattr(ds, dtype)), **kwargs)
        theirs = torch.linalg.matrix_rank(torch.tensor(arr, dtype=getattr(torch, dtype)), **kwargs)
        np.testing.assert_array_equal(mine.numpy(), theirs.numpy())


def test_complex_singular_solve_ex_and_cond_match_torch() -> None:
    a = np.array([[[1 + 1j, 2j], [1 - 1j, 2.0]], [[2.0, 0], [0, 1j]]])  # the first is singular
    mine = ds.linalg.inv_ex(ds.tensor(a, dtype=ds.complex128))
    theirs = torch.linalg.inv_ex(torch.tensor(a))
    np.testing.assert_array_equal(mine.info.numpy(), theirs.info.numpy())
    np.testing.assert_allclose(_numpy(mine.inverse)[1], _numpy(theirs.inverse)[1], rtol=1e-12)
    for p in (None, 1, "fro"):
        c = ds.linalg.cond(ds.tensor(a, dtype=ds.complex128), p)
        c_t = torch.linalg.cond(torch.tensor(a), p)
        assert str(c.dtype) == str(c_t.dtype).replace("torch.", "")
        assert np.isinf(c.numpy()[0]) == np.isinf(c_t.numpy()[0])
        np.testing.assert_allclose(c.numpy()[1], c_t.numpy()[1], rtol=1e-9)
