"""downslope.linalg against torch.linalg: values and gradients in float64, double backward where
supported, and the errors."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")

RNG = np.random.default_rng(0)
SQUARE = RNG.standard_normal((3, 4, 4))
SPD = SQUARE @ SQUARE.transpose(0, 2, 1) + 4 * np.eye(4)  # symmetric positive-definite
RHS = RNG.standard_normal((3, 4, 2))
TALL = RNG.standard_normal((5, 3))


def _compare(ours: Callable[..., Any], theirs: Callable[..., Any], *arrays: np.ndarray) -> None:
    """Same function, same float64 inputs: outputs, and gradients of a random projection of them."""
    mine = [ds.tensor(a, dtype=ds.float64, requires_grad=True) for a in arrays]
    refs = [torch.tensor(a, requires_grad=True) for a in arrays]
    out, ref = ours(*mine), theirs(*refs)
    assert out.shape == tuple(ref.shape)
    np.testing.assert_allclose(out.detach().numpy(), ref.detach().numpy(), rtol=1e-9, atol=1e-11)
    weights = np.random.default_rng(1).standard_normal(tuple(ref.shape))
    (out * ds.tensor(weights, dtype=ds.float64)).sum().backward()
    (ref * torch.tensor(weights)).sum().backward()
    for a, b in zip(mine, refs):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-7, atol=1e-9)


L, T = ds.linalg, torch.linalg
CASES = {
    "inv": (L.inv, T.inv, (SQUARE,)),
    "det": (L.det, T.det, (SQUARE,)),
    "slogdet": (lambda a: L.slogdet(a).logabsdet, lambda a: T.slogdet(a).logabsdet, (SQUARE,)),
    "logdet": (ds.logdet, torch.logdet, (SPD,)),
    "solve": (L.solve, T.solve, (SQUARE, RHS)),
    "solve a vector": (L.solve, T.solve, (SQUARE[0], RHS[0, :, 0])),
    "solve from the right": (
        lambda a, b: L.solve(a, b, left=False),
        lambda a, b: T.solve(a, b, left=False),
        (SQUARE[0], RHS[0].T),
    ),
    "cholesky": (L.cholesky, T.cholesky, (SPD,)),
    "cholesky upper": (lambda a: L.cholesky(a, upper=True), lambda a: T.cholesky(a, upper=True), (SPD,)),
    "eigvalsh": (L.eigvalsh, T.eigvalsh, (SPD,)),
    # eigenvectors are defined up to sign: compared through sign-free functions of them
    "eigh": (
        lambda a: (L.eigh(a).eigenvectors ** 2 * ds.tensor(np.arange(4.0))).sum(-1) + L.eigh(a).eigenvalues,
        lambda a: (
            (T.eigh(a).eigenvectors ** 2 * torch.arange(4.0, dtype=torch.float64)).sum(-1) + T.eigh(a).eigenvalues
        ),
        (SPD,),
    ),
    "svdvals": (L.svdvals, T.svdvals, (TALL,)),
    "norm of rows": (lambda a: L.norm(a, dim=1), lambda a: T.norm(a, dim=1), (TALL,)),
    "norm of all": (L.norm, T.norm, (TALL,)),
    "matrix_power -2": (lambda a: L.matrix_power(a, -2), lambda a: T.matrix_power(a, -2), (SQUARE,)),
    "matrix_power 3": (lambda a: a.matrix_power(3), lambda a: a.matrix_power(3), (SQUARE,)),
    "pinv tall": (L.pinv, T.pinv, (TALL,)),
    "pinv wide": (L.pinv, T.pinv, (TALL.T.copy(),)),
    "lstsq": (
        lambda a, b: L.lstsq(a, b).solution,
        lambda a, b: T.lstsq(a, b).solution,
        (TALL, RNG.standard_normal((5, 2))),
    ),
    "multi_dot": (
        lambda a, b: L.multi_dot([a, b, a.T]),
        lambda a, b: T.multi_dot([a, b, a.T]),
        (TALL, SQUARE[0, :3, :3]),
    ),
    "vecdot": (L.vecdot, T.vecdot, (TALL, TALL[::-1].copy())),
}


@pytest.mark.parametrize("name", list(CASES))
def test_matches_torch_with_gradients(name: str) -> None:
    ours, theirs, arrays = CASES[name]
    _compare(ours, theirs, *arrays)


@pytest.mark.parametrize("order", ["fro", "nuc", 2, -2, 1, -1, np.inf, -np.inf])
def test_matrix_norms_match_torch(order: Any) -> None:
    _compare(lambda a: L.matrix_norm(a, ord=order), lambda a: T.matrix_norm(a, ord=order), TALL)


@pytest.mark.parametrize("name", ["inv", "det", "slogdet", "solve"])
def test_second_derivatives_match_torch(name: str) -> None:
    ours, theirs, arrays = CASES[name]
    mine = [ds.tensor(a, dtype=ds.float64, requires_grad=True) for a in arrays]
    refs = [torch.tensor(a, requires_grad=True) for a in arrays]
    grads = ds.autograd.grad(ours(*mine).sum(), mine, create_graph=True)
    sum(((g**2).sum() for g in grads), ds.tensor(0.0, dtype=ds.float64)).backward()
    ref_grads = torch.autograd.grad(theirs(*refs).sum(), refs, create_graph=True)
    sum((g**2).sum() for g in ref_grads).backward()
    for a, b in zip(mine, refs):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-7, atol=1e-9)


def test_the_curvature_of_a_quadratic_loss_is_its_hessians_eigenvalues() -> None:
    # loss = 0.5 x^T Q x: gradient descent diverges above lr = 2 / the largest eigenvalue of Q
    q = ds.tensor([[3.0, 1.0], [1.0, 2.0]], dtype=ds.float64)
    hessian = ds.autograd.functional.hessian(lambda x: 0.5 * (x @ q @ x), ds.zeros(2, dtype=ds.float64))
    np.testing.assert_allclose(L.eigvalsh(hessian).numpy(), np.linalg.eigvalsh(q.numpy()), rtol=1e-12)


def test_torch_top_level_names_and_methods() -> None:
    a = ds.tensor(SQUARE[0], dtype=ds.float64)
    np.testing.assert_allclose(ds.inverse(a).numpy(), np.linalg.inv(SQUARE[0]), rtol=1e-10)
    np.testing.assert_allclose(a.det().item(), np.linalg.det(SQUARE[0]), rtol=1e-10)
    np.testing.assert_allclose(a.pinverse().numpy(), np.linalg.pinv(SQUARE[0]), rtol=1e-8)
    assert ds.logdet(ds.zeros(2, 2)).item() == -np.inf
    assert np.isnan(ds.logdet(ds.tensor([[0.0, 1.0], [1.0, 0.0]])).item())  # det -1: NaN, as in torch


def test_errors_name_the_op_and_what_was_wrong() -> None:
    with pytest.raises(L.LinAlgError, match=r"linalg\.inv: Singular matrix") as info:
        L.inv(ds.zeros(2, 2))
    assert isinstance(info.value, RuntimeError)  # torch.linalg.LinAlgError is a RuntimeError
    with pytest.raises(L.LinAlgError, match=r"linalg\.cholesky"):
        L.cholesky(ds.tensor([[1.0, 2.0], [2.0, 1.0]]))  # not positive-definite
    with pytest.raises(ds.ShapeError, match=r"linalg\.det: expected square matrices"):
        L.det(ds.ones(2, 3))


# ---------------------------------------------------------------------- general factorizations
WIDE = RNG.standard_normal((2, 3, 5))
TALLS = RNG.standard_normal((2, 5, 3))
TRI_RHS = RNG.standard_normal((3, 4, 3))


def _svd_sign_free(svd: Callable[..., Any], full: bool) -> Callable[..., Any]:
    # U diag(S) Vh and U U^T, Vh^T Vh (the projections) do not depend on the vectors' signs
    def f(a: Any) -> Any:
        u, s, vh = svd(a, full_matrices=full)
        k = s.shape[-1]
        uk, vhk = u[..., :, :k], vh[..., :k, :]
        weights = 1.0 + 0.1 * (uk.new_ones(uk.shape).cumsum(-2))  # breaks the symmetry of a plain sum
        return (
            (uk * s.unsqueeze(-2)) @ vhk
            + ((uk @ uk.transpose(-1, -2)) * weights[..., :1]).sum(-1, keepdim=True)
            + (vhk.transpose(-1, -2) @ vhk).sum(-2, keepdim=True) * s.sum(-1, keepdim=True).unsqueeze(-1)
        )

    return f


def _qr_both(qr: Callable[..., Any], mode: str) -> Callable[..., Any]:
    def f(a: Any) -> Any:
        q, r = qr(a, mode=mode)
        return (q**3).sum(-1) + (r**2).sum(-2)[..., : q.shape[-2]].sum(-1, keepdim=True) if q.shape[-2] else r

    return f


GENERAL = {
    "svd tall": (_svd_sign_free(L.svd, False), _svd_sign_free(T.svd, False), (TALLS,)),
    "svd wide": (_svd_sign_free(L.svd, False), _svd_sign_free(T.svd, False), (WIDE,)),
    "svd square": (_svd_sign_free(L.svd, False), _svd_sign_free(T.svd, False), (SQUARE,)),
    "svd full tall": (_svd_sign_free(L.svd, True), _svd_sign_free(T.svd, True), (TALLS,)),
    "svd S only": (lambda a: L.svd(a).S, lambda a: T.svd(a).S, (WIDE,)),
    "qr square": (_qr_both(L.qr, "reduced"), _qr_both(T.qr, "reduced"), (SQUARE,)),
    "qr tall": (_qr_both(L.qr, "reduced"), _qr_both(T.qr, "reduced"), (TALLS,)),
    "qr wide": (_qr_both(L.qr, "reduced"), _qr_both(T.qr, "reduced"), (WIDE,)),
    "qr complete wide": (_qr_both(L.qr, "complete"), _qr_both(T.qr, "complete"), (WIDE,)),
    "qr R only values": (lambda a: L.qr(a).R, lambda a: T.qr(a).R, (TALLS,)),
    "solve_triangular upper": (
        lambda a, b: L.solve_triangular(a, b, upper=True),
        lambda a, b: T.solve_triangular(a, b, upper=True),
        (SQUARE[:, :4, :4] + 4 * np.eye(4), TRI_RHS),
    ),
    "solve_triangular lower unit right": (
        lambda a, b: L.solve_triangular(a, b, upper=False, left=False, unitriangular=True),
        lambda a, b: T.solve_triangular(a, b, upper=False, left=False, unitriangular=True),
        (SQUARE, TRI_RHS.transpose(0, 2, 1).copy()),
    ),
    "matrix_exp": (L.matrix_exp, T.matrix_exp, (SQUARE,)),
    "matrix_exp large norm": (L.matrix_exp, T.matrix_exp, (3 * SQUARE[0],)),
    "lu_factor square": (lambda a: L.lu_factor(a).LU, lambda a: T.lu_factor(a).LU, (SQUARE,)),
    "lu_factor tall": (lambda a: L.lu_factor(a).LU, lambda a: T.lu_factor(a).LU, (TALLS,)),
    "lu_factor wide": (lambda a: L.lu_factor(a).LU, lambda a: T.lu_factor(a).LU, (WIDE,)),
    "lu L and U tall": (
        lambda a: L.lu(a).L.sum(-1) + L.lu(a).U.sum(),
        lambda a: T.lu(a).L.sum(-1) + T.lu(a).U.sum(),
        (TALLS,),
    ),
    "lu P": (lambda a: L.lu(a).P @ a, lambda a: T.lu(a).P @ a, (SQUARE,)),
    "lu_solve": (
        lambda a, b: L.lu_solve(*L.lu_factor(a), b),
        lambda a, b: T.lu_solve(*T.lu_factor(a), b),
        (SQUARE, RHS),
    ),
    "lu_solve adjoint right": (
        lambda a, b: L.lu_solve(*L.lu_factor(a), b, left=False, adjoint=True),
        lambda a, b: T.lu_solve(*T.lu_factor(a), b, left=False, adjoint=True),
        (SQUARE, RHS.transpose(0, 2, 1).copy()),
    ),
    "cond": (L.cond, T.cond, (SQUARE,)),
    # torch's own cond(p='fro') fails in backward (an in-place write in its kernel): its definition instead
    "cond fro": (lambda a: L.cond(a, "fro"), lambda a: T.matrix_norm(a) * T.matrix_norm(T.inv(a)), (SQUARE,)),
    "vander": (lambda x: L.vander(x, N=4), lambda x: T.vander(x, N=4), (TALL[:, 0].copy(),)),
    "tensorinv": (lambda a: L.tensorinv(a, ind=1), lambda a: T.tensorinv(a, ind=1), (SQUARE[0].reshape(4, 2, 2),)),
    "tensorsolve": (L.tensorsolve, T.tensorsolve, (SQUARE[0].reshape(2, 2, 4), RHS[0, :, 0].reshape(2, 2))),
}


@pytest.mark.parametrize("name", list(GENERAL))
def test_factorizations_match_torch_with_gradients(name: str) -> None:
    ours, theirs, arrays = GENERAL[name]
    _compare(ours, theirs, *arrays)


def test_lu_factor_pivots_and_info_match_lapack() -> None:
    mine, ref = L.lu_factor_ex(ds.tensor(SQUARE)), T.lu_factor_ex(torch.tensor(SQUARE))
    np.testing.assert_array_equal(mine.pivots.numpy(), ref.pivots.numpy())
    singular = np.array([[1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [1.0, 0.0, 1.0]])
    assert L.lu_factor_ex(ds.tensor(singular)).info.item() == T.lu_factor_ex(torch.tensor(singular)).info.item() == 3
    with pytest.raises(L.LinAlgError, match="lu_factor"):
        L.lu_factor_ex(ds.tensor(singular), check_errors=True)


def test_ex_variants_report_failures_per_matrix() -> None:
    stack = np.stack([SPD[0], np.array([[1.0, 2, 0, 0], [2, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]])])
    mine, ref = L.cholesky_ex(ds.tensor(stack, dtype=ds.float64)), T.cholesky_ex(torch.tensor(stack))
    np.testing.assert_array_equal(mine.info.numpy(), ref.info.numpy())
    np.testing.assert_allclose(mine.L.numpy()[0], ref.L.numpy()[0], rtol=1e-12)
    assert np.isnan(mine.L.numpy()[1]).all()
    singular = np.stack([SQUARE[0], np.zeros((4, 4))])
    inv_mine, inv_ref = L.inv_ex(ds.tensor(singular, dtype=ds.float64)), T.inv_ex(torch.tensor(singular))
    np.testing.assert_array_equal(inv_mine.info.numpy(), inv_ref.info.numpy())
    np.testing.assert_allclose(inv_mine.inverse.numpy()[0], inv_ref.inverse.numpy()[0], rtol=1e-10)
    x = L.solve_ex(ds.tensor(SQUARE, dtype=ds.float64), ds.tensor(RHS, dtype=ds.float64))
    np.testing.assert_allclose(x.result.numpy(), np.linalg.solve(SQUARE, RHS), rtol=1e-10)
    assert not x.info.numpy().any()


def test_rank_and_refusals() -> None:
    low_rank = TALL @ TALL.T  # 5 x 5 of rank 3
    assert L.matrix_rank(ds.tensor(low_rank)).item() == T.matrix_rank(torch.tensor(low_rank)).item() == 3
    assert L.matrix_rank(ds.tensor(low_rank), hermitian=True).item() == 3
    with pytest.raises(ds.DownslopeError, match="mode='r'"):
        L.qr(ds.tensor(TALL, requires_grad=True), mode="r").R.sum().backward()
    with pytest.raises(ds.DownslopeError, match="mode='complete'"):
        L.qr(ds.tensor(TALL, requires_grad=True), mode="complete").Q.sum().backward()
    assert L.qr(ds.tensor(TALL), mode="r").Q.shape == tuple(T.qr(torch.tensor(TALL), mode="r").Q.shape)


@pytest.mark.filterwarnings("ignore:torch.triangular_solve is deprecated")
def test_torch_older_top_level_names() -> None:
    a64, t64 = ds.tensor(SQUARE, dtype=ds.float64), torch.tensor(SQUARE)
    u, s, v = ds.svd(a64)
    np.testing.assert_allclose((u * s.unsqueeze(-2) @ v.transpose(-1, -2)).numpy(), SQUARE, atol=1e-12)
    assert ds.svd(ds.tensor(TALL), compute_uv=False).U.shape == tuple(
        torch.svd(torch.tensor(TALL), compute_uv=False).U.shape
    )
    q, r = a64.qr()
    np.testing.assert_allclose((q @ r).numpy(), SQUARE, atol=1e-12)
    lu_data, pivots = a64.lu()
    np.testing.assert_allclose(
        ds.lu_solve(ds.tensor(RHS, dtype=ds.float64), lu_data, pivots).numpy(), np.linalg.solve(SQUARE, RHS), rtol=1e-9
    )
    p_, l_, u_ = ds.lu_unpack(lu_data, pivots)
    np.testing.assert_allclose((p_ @ l_ @ u_).numpy(), SQUARE, atol=1e-12)
    b = ds.tensor(RHS, dtype=ds.float64)
    mine = ds.triangular_solve(b, a64, upper=False, transpose=True).solution
    ref = torch.triangular_solve(torch.tensor(RHS), t64, upper=False, transpose=True).solution
    np.testing.assert_allclose(mine.numpy(), ref.numpy(), rtol=1e-9)
    spd = ds.tensor(SPD, dtype=ds.float64)
    for upper in (False, True):
        factor = ds.cholesky(spd, upper=upper)
        ref_factor = torch.linalg.cholesky(torch.tensor(SPD), upper=upper)
        np.testing.assert_allclose(
            ds.cholesky_solve(b, factor, upper).numpy(),
            torch.cholesky_solve(torch.tensor(RHS), ref_factor, upper).numpy(),
            rtol=1e-9,
        )
        np.testing.assert_allclose(
            factor.cholesky_inverse(upper).numpy(), torch.cholesky_inverse(ref_factor, upper).numpy(), rtol=1e-9
        )
    np.testing.assert_allclose(a64.matrix_exp().numpy(), torch.matrix_exp(t64).numpy(), rtol=1e-10)


def test_edge_cases_found_by_a_fuzz_against_torch() -> None:
    a, b = RNG.standard_normal((3, 3, 3)), RNG.standard_normal((3, 3))
    mine = L.solve(ds.tensor(a, dtype=ds.float64), ds.tensor(b, dtype=ds.float64))  # a batch of vectors
    np.testing.assert_allclose(mine.numpy(), T.solve(torch.tensor(a), torch.tensor(b)).numpy(), rtol=1e-10)
    stack = np.stack([SQUARE[0], np.full((4, 4), np.nan)])
    x = ds.tensor(stack, dtype=ds.float64, requires_grad=True)
    out = L.matrix_exp(x)  # only the matrix holding NaN gives NaN
    np.testing.assert_allclose(out.detach().numpy()[0], T.matrix_exp(torch.tensor(SQUARE[0])).numpy(), rtol=1e-10)
    assert np.isnan(out.detach().numpy()[1]).all() and out.requires_grad
    singular = torch.tensor([[1.0, 2.0], [2.0, 4.0]], dtype=torch.float64)
    for p in (1, -1, np.inf, "fro"):  # (torch computes "nuc" through a rounded inverse: a huge finite number)
        assert L.cond(ds.tensor(singular.numpy()), p).item() == T.cond(singular, p).item() == np.inf
    for shape in ((0, 0), (3, 0), (2, 0, 0)):
        lu, pivots = L.lu_factor(ds.zeros(*shape))
        ref = T.lu_factor(torch.zeros(*shape))
        assert lu.shape == tuple(ref.LU.shape) and pivots.shape == tuple(ref.pivots.shape)
    assert L.matrix_rank(ds.eye(3), atol=ds.tensor(0.5)).item() == 3


def test_batches_tolerances_and_keywords_found_by_a_second_fuzz() -> None:
    stack = np.stack([np.eye(2), [[1.0, 2.0], [2.0, 4.0]]])
    mine, ref = L.cond(ds.tensor(stack, dtype=ds.float64), 1), T.cond(torch.tensor(stack), 1)
    np.testing.assert_array_equal(mine.numpy(), ref.numpy())  # only the singular matrix is inf
    atol = [0.5, 10.0]
    assert (
        L.matrix_rank(ds.tensor(stack), atol=ds.tensor(atol)).tolist()
        == T.matrix_rank(torch.tensor(stack), atol=torch.tensor(atol)).tolist()
    )
    coefficient = ds.triangular_solve(ds.ones(2, 3, 1), ds.eye(3)).cloned_coefficient
    assert coefficient.shape == (2, 3, 3)
    x = ds.tensor([1.0, 2.0], requires_grad=True)
    ds.autograd.backward(tensors=[x * 2], grad_tensors=[ds.ones(2)])  # torch's keyword names
    assert x.grad.tolist() == [2.0, 2.0]
