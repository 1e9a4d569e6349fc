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
    with pytest.raises(ds.DownslopeError, match="double backward"):
        x = ds.tensor(SPD[0], dtype=ds.float64, requires_grad=True)
        (g,) = ds.autograd.grad(L.eigvalsh(x).sum(), [x], create_graph=True)
