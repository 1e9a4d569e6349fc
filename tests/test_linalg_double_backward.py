"""The decompositions differentiated twice and three times (create_graph=True) against torch in float64:
cholesky (and cholesky_solve / cholesky_inverse on it), eigh / eigvalsh, svd / svdvals, qr, the LU
family, det / slogdet / inv / solve; batched inputs, Hessian-vector products and a Gaussian-process
likelihood's Hessian. Eigen- and singular vectors are compared through sign-free functions of them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")

RNG = np.random.default_rng(0)
SQUARE = RNG.standard_normal((2, 4, 4))
SPD = SQUARE @ SQUARE.transpose(0, 2, 1) + 4 * np.eye(4)
TALL = RNG.standard_normal((2, 5, 3))
WIDE = RNG.standard_normal((2, 3, 5))
L, T = ds.linalg, torch.linalg


def _three_orders(ours: Callable[[Any], Any], theirs: Callable[[Any], Any], a: np.ndarray, third: bool = True) -> None:
    """The output, its gradient (a random projection), that gradient's gradient and (``third``) a
    third derivative, each against torch's, relative to the largest of torch's values."""
    x = ds.tensor(a, dtype=ds.float64, requires_grad=True)
    t = torch.tensor(a, dtype=torch.float64, requires_grad=True)
    y, ref = ours(x), theirs(t)
    v = np.random.default_rng(1).standard_normal(tuple(ref.shape))
    w = np.random.default_rng(2).standard_normal(a.shape)
    (g,) = ds.autograd.grad((y * ds.tensor(v, dtype=ds.float64)).sum(), x, create_graph=True)
    (g_ref,) = torch.autograd.grad((ref * torch.tensor(v)).sum(), t, create_graph=True)
    (gg,) = ds.autograd.grad((g * ds.tensor(w, dtype=ds.float64)).sum(), x, create_graph=True)
    (gg_ref,) = torch.autograd.grad((g_ref * torch.tensor(w)).sum(), t, create_graph=True)
    pairs = [(y, ref), (g, g_ref), (gg, gg_ref)]
    if third:
        (ggg,) = ds.autograd.grad((gg * gg).sum(), x)
        (ggg_ref,) = torch.autograd.grad((gg_ref * gg_ref).sum(), t)
        pairs.append((ggg, ggg_ref))
    for mine, theirs_ in pairs:
        expected = theirs_.detach().numpy()
        scale = max(1.0, float(np.abs(expected).max()))
        np.testing.assert_allclose(mine.detach().numpy(), expected, rtol=0, atol=1e-10 * scale)


def _sym(x: Any) -> Any:
    return x + x.transpose(-1, -2)


def _eigen_function(lib: Any) -> Callable[[Any], Any]:
    # V f(w) V^T: independent of the eigenvectors' signs
    def f(x: Any) -> Any:
        w, v = lib.linalg.eigh(_sym(x))
        return (v * w.sin().unsqueeze(-2)) @ v.transpose(-1, -2)

    return f


def _svd_sign_free(lib: Any, full: bool) -> Callable[[Any], Any]:
    def f(x: Any) -> Any:
        u, s, vh = lib.linalg.svd(x, full_matrices=full)
        k = s.shape[-1]
        uk, vhk = u[..., :, :k], vh[..., :k, :]
        projections = (uk @ uk.transpose(-1, -2))[..., :, :1] + (vhk.transpose(-1, -2) @ vhk).sum(-1)[..., None, :]
        return (uk * s.cos().unsqueeze(-2)) @ vhk + 0.3 * projections

    return f


def _qr_function(lib: Any, mode: str) -> Callable[[Any], Any]:
    def f(x: Any) -> Any:
        q, r = lib.linalg.qr(x, mode=mode)
        return q.sin().sum(-1, keepdim=True) + r.cos().sum(-2, keepdim=True)

    return f


def _lu_function(lib: Any) -> Callable[[Any], Any]:
    def f(x: Any) -> Any:
        p, low, up = lib.linalg.lu(x)
        return (p @ low).sin().sum(-1, keepdim=True) + up.cos().sum(-2, keepdim=True)

    return f


FIXED = SPD[0]
CASES: dict[str, tuple[Callable[[Any], Any], Callable[[Any], Any], np.ndarray]] = {
    "cholesky": (L.cholesky, T.cholesky, SPD),
    "cholesky upper": (lambda x: L.cholesky(x, upper=True), lambda x: T.cholesky(x, upper=True), SPD),
    "cholesky of x x^T": (
        lambda x: L.cholesky(x @ x.transpose(-1, -2) + ds.tensor(4 * np.eye(4), dtype=ds.float64)),
        lambda x: T.cholesky(x @ x.transpose(-1, -2) + torch.tensor(4 * np.eye(4))),
        SQUARE,
    ),
    "log-det by cholesky": (
        lambda x: 2 * L.cholesky(x).diagonal(dim1=-2, dim2=-1).log().sum(-1),
        lambda x: 2 * T.cholesky(x).diagonal(dim1=-2, dim2=-1).log().sum(-1),
        SPD,
    ),
    "cholesky_solve": (
        lambda x: ds.cholesky_solve(x, L.cholesky(ds.tensor(FIXED, dtype=ds.float64) + x[:, :4] @ x[:, :4].T)),
        lambda x: torch.cholesky_solve(x, T.cholesky(torch.tensor(FIXED) + x[:, :4] @ x[:, :4].T)),
        RNG.standard_normal((4, 5)),
    ),
    "cholesky_inverse": (
        lambda x: ds.cholesky_inverse(L.cholesky(x)),
        lambda x: torch.cholesky_inverse(T.cholesky(x)),
        FIXED,
    ),
    "eigvalsh": (lambda x: L.eigvalsh(_sym(x)), lambda x: T.eigvalsh(_sym(x)), SPD),
    "eigvalsh lower triangle": (L.eigvalsh, T.eigvalsh, SPD),
    "eigvalsh upper triangle": (lambda x: L.eigvalsh(x, "U"), lambda x: T.eigvalsh(x, "U"), SPD),
    "eigh vectors": (_eigen_function(ds), _eigen_function(torch), SPD),
    "eigh |vectors|": (
        lambda x: L.eigh(_sym(x)).eigenvectors.abs(),
        lambda x: T.eigh(_sym(x)).eigenvectors.abs(),
        SPD,
    ),
    "svdvals tall": (L.svdvals, T.svdvals, TALL),
    "svdvals wide": (L.svdvals, T.svdvals, WIDE),
    "svdvals square": (L.svdvals, T.svdvals, SQUARE),
    "svd tall": (_svd_sign_free(ds, False), _svd_sign_free(torch, False), TALL),
    "svd wide": (_svd_sign_free(ds, False), _svd_sign_free(torch, False), WIDE),
    "svd square": (_svd_sign_free(ds, False), _svd_sign_free(torch, False), SQUARE),
    "svd full_matrices tall": (_svd_sign_free(ds, True), _svd_sign_free(torch, True), TALL),
    "svd full_matrices wide": (_svd_sign_free(ds, True), _svd_sign_free(torch, True), WIDE),
    "nuclear norm": (lambda x: L.matrix_norm(x, "nuc"), lambda x: T.matrix_norm(x, "nuc"), TALL),
    "pinv": (L.pinv, T.pinv, TALL),
    "qr reduced tall": (_qr_function(ds, "reduced"), _qr_function(torch, "reduced"), TALL),
    "qr reduced wide": (_qr_function(ds, "reduced"), _qr_function(torch, "reduced"), WIDE),
    "qr reduced square": (_qr_function(ds, "reduced"), _qr_function(torch, "reduced"), SQUARE),
    "qr complete wide": (_qr_function(ds, "complete"), _qr_function(torch, "complete"), WIDE),
    "qr complete square": (_qr_function(ds, "complete"), _qr_function(torch, "complete"), SQUARE),
    "lu square": (_lu_function(ds), _lu_function(torch), SQUARE),
    "lu tall": (_lu_function(ds), _lu_function(torch), TALL),
    "lu wide": (_lu_function(ds), _lu_function(torch), WIDE),
    "lu_factor": (lambda x: L.lu_factor(x).LU, lambda x: T.lu_factor(x).LU, SQUARE),
    "lu_solve": (
        lambda x: L.lu_solve(*L.lu_factor(x), x[..., :2] ** 2),
        lambda x: T.lu_solve(*T.lu_factor(x), x[..., :2] ** 2),
        SQUARE,
    ),
    "det": (L.det, T.det, SQUARE),
    "slogdet": (lambda x: L.slogdet(x).logabsdet, lambda x: T.slogdet(x).logabsdet, SQUARE),
    "inv": (L.inv, T.inv, SQUARE),
    "solve": (lambda x: L.solve(x, x[..., :2] ** 2), lambda x: T.solve(x, x[..., :2] ** 2), SQUARE),
}


@pytest.mark.parametrize("name", list(CASES))
def test_three_derivatives_match_torch(name: str) -> None:
    ours, theirs, a = CASES[name]
    _three_orders(ours, theirs, a)


def test_single_matrices_differentiate_twice_as_well_as_stacks() -> None:
    _three_orders(L.cholesky, T.cholesky, SPD[1], third=False)
    _three_orders(lambda x: L.eigvalsh(_sym(x)), lambda x: T.eigvalsh(_sym(x)), SPD[1], third=False)
    _three_orders(L.svdvals, T.svdvals, TALL[1], third=False)
    _three_orders(_qr_function(ds, "reduced"), _qr_function(torch, "reduced"), TALL[1], third=False)


@pytest.mark.parametrize(
    "name, ours, theirs, a",
    [
        (
            "log-det",
            lambda x: L.cholesky(x).diagonal().log().sum(),
            lambda x: T.cholesky(x).diagonal().log().sum(),
            SPD[0],
        ),
        ("largest eigenvalue", lambda x: L.eigvalsh(_sym(x))[-1], lambda x: T.eigvalsh(_sym(x))[-1], SPD[0]),
        ("spectral norm", lambda x: L.svdvals(x)[0], lambda x: T.svdvals(x)[0], TALL[0]),
    ],
)
def test_hessian_vector_products_match_torch(name: str, ours: Any, theirs: Any, a: np.ndarray) -> None:
    v = np.random.default_rng(3).standard_normal(a.shape)
    _, hvp = ds.autograd.functional.hvp(ours, ds.tensor(a, dtype=ds.float64), ds.tensor(v, dtype=ds.float64))
    _, ref = torch.autograd.functional.hvp(theirs, torch.tensor(a), torch.tensor(v))
    np.testing.assert_allclose(hvp.numpy(), ref.numpy(), rtol=1e-9, atol=1e-11)


def test_a_gaussian_process_likelihood_hessian_matches_torch() -> None:
    # a kernel's negative log marginal likelihood through its Cholesky factor: the Hessian in the
    # (log lengthscale, log noise) parameters
    points = np.linspace(-1.0, 1.0, 6)
    targets = np.sin(3 * points)

    def nll(lib: Any, params: Any) -> Any:
        x = lib.tensor(points, dtype=lib.float64)
        y = lib.tensor(targets, dtype=lib.float64)
        squared = (x[:, None] - x[None, :]) ** 2
        k = (-0.5 * squared / params[0].exp() ** 2).exp() + params[1].exp() * lib.eye(6, dtype=lib.float64)
        chol = lib.linalg.cholesky(k)
        alpha = lib.cholesky_solve(y[:, None], chol)
        return 0.5 * (y[:, None] * alpha).sum() + chol.diagonal().log().sum()

    start = np.array([-0.3, -2.0])
    ours = ds.autograd.functional.hessian(lambda p: nll(ds, p), ds.tensor(start, dtype=ds.float64))
    ref = torch.autograd.functional.hessian(lambda p: nll(torch, p), torch.tensor(start))
    np.testing.assert_allclose(ours.numpy(), ref.numpy(), rtol=1e-9, atol=1e-11)


def test_float32_second_derivatives_stay_float32() -> None:
    x = ds.tensor(SPD[0].astype(np.float32), requires_grad=True)
    (g,) = ds.autograd.grad(L.cholesky(x).sum(), x, create_graph=True)
    (gg,) = ds.autograd.grad((g * g).sum(), x)
    t = torch.tensor(SPD[0].astype(np.float32), requires_grad=True)
    (g_ref,) = torch.autograd.grad(T.cholesky(t).sum(), t, create_graph=True)
    (gg_ref,) = torch.autograd.grad((g_ref * g_ref).sum(), t)
    assert gg.dtype == ds.float32
    np.testing.assert_allclose(gg.numpy(), gg_ref.numpy(), rtol=1e-4, atol=1e-5)


def test_complete_qr_of_a_tall_matrix_still_refuses_its_gradient() -> None:
    x = ds.tensor(TALL[0], dtype=ds.float64, requires_grad=True)
    with pytest.raises(ds.DownslopeError, match="mode='complete' and more rows than columns"):
        ds.autograd.grad(L.qr(x, mode="complete").Q.sum(), x, create_graph=True)
