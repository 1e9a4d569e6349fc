"""downslope.linalg on complex matrices against torch: values and gradients (torch's conjugate-Wirtinger
convention) in complex64 and complex128. Eigenvectors and singular vectors are defined up to a phase
each, so the losses are phase-invariant (``|V|^2``, ``V diag(w) V^H``, ``U diag(S) Vh``); the
eigenvalues, singular values, inverses and solutions are compared as they are."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import downslope as ds
from downslope.errors import DTypeError

from ._complex_helpers import to_numpy as _numpy
from ._complex_helpers import values as _values

torch = pytest.importorskip("torch")

_DTYPES = ["complex64", "complex128"]
# float32 LAPACK in complex64: torch's and NumPy's factorizations round differently in the last bits
_TOL = {"complex64": {"rtol": 2e-4, "atol": 2e-5}, "complex128": {"rtol": 1e-9, "atol": 1e-10}}


def _lib(t: Any) -> Any:
    return torch if isinstance(t, torch.Tensor) else ds


def _const(like: Any, a: np.ndarray) -> Any:
    """``a`` as a constant of ``like``'s library, complex in ``like``'s precision (or real for a real ``a``)."""
    lib = _lib(like)
    wide = like.dtype in (torch.complex128, torch.float64) if lib is torch else like.dtype in ("complex128", "float64")
    if a.dtype.kind == "c":
        return lib.tensor(a, dtype=lib.complex128 if wide else lib.complex64)
    return lib.tensor(a, dtype=lib.float64 if wide else lib.float32)


def _herm(a: Any) -> Any:
    return a + a.mH


def _weighted(out: Any, seed: int) -> Any:
    """A real loss reading the whole of ``out`` (its real and imaginary parts): sum(Re(out * W))."""
    w = (
        _values(seed, *tuple(out.shape))
        if out.dtype in (torch.complex64, torch.complex128, "complex64", "complex128")
        else (np.random.default_rng(seed).standard_normal(tuple(out.shape)))
    )
    prod = out * _const(out, w)
    return (
        prod.real.sum() if prod.dtype in (torch.complex64, torch.complex128, "complex64", "complex128") else prod.sum()
    )


def _phase_free(vecs: Any, seed: int) -> Any:
    """A loss of ``|V|^2`` only: each column's phase drops out."""
    return (
        (vecs.abs() ** 2) * _const(vecs.abs(), np.random.default_rng(seed).standard_normal(tuple(vecs.shape)))
    ).sum()


def _eigh(a: Any) -> Any:
    lib = _lib(a)
    w, v = lib.linalg.eigh(_herm(a))
    recon = (v * w.to(v.dtype)[..., None, :]) @ v.mH
    return _weighted(w, 1) + _phase_free(v, 2) + _weighted(recon, 3)


def _eigvalsh_upper(a: Any) -> Any:
    return _weighted(_lib(a).linalg.eigvalsh(a @ a.mH, UPLO="U"), 4)


def _svd(full: bool) -> Callable[[Any], Any]:
    def loss(a: Any) -> Any:
        u, s, vh = _lib(a).linalg.svd(a, full_matrices=full)
        k = s.shape[-1]
        u, vh = u[..., :k], vh[..., :k, :]
        recon = (u * s.to(u.dtype)[..., None, :]) @ vh
        return _weighted(s, 5) + _phase_free(u, 6) + _phase_free(vh, 7) + _weighted(recon, 8)

    return loss


def _slogdet(a: Any) -> Any:
    sign, logabs = _lib(a).linalg.slogdet(a)
    return _weighted(sign, 9) + logabs.sum()


def _qr(a: Any) -> Any:
    q, r = _lib(a).linalg.qr(a)
    return _weighted(q, 10) + _weighted(r, 11)


def _cholesky(upper: bool) -> Callable[[Any], Any]:
    def loss(a: Any) -> Any:
        lib = _lib(a)
        eye = lib.eye(a.shape[-1], dtype=a.dtype)
        return _weighted(lib.linalg.cholesky(a @ a.mH + eye, upper=upper), 12)

    return loss


_SQUARE = (2, 3, 3)  # a stack of two 3 x 3 matrices
_CASES: dict[str, tuple[Callable[[Any], Any], tuple[int, ...]]] = {
    "inv": (lambda a: _weighted(_lib(a).linalg.inv(a), 13), _SQUARE),
    "det": (lambda a: _weighted(_lib(a).linalg.det(a), 14), _SQUARE),
    "slogdet": (_slogdet, _SQUARE),
    "matrix_exp": (lambda a: _weighted(_lib(a).linalg.matrix_exp(a * 0.5), 15), _SQUARE),
    "cholesky": (_cholesky(False), _SQUARE),
    "cholesky_upper": (_cholesky(True), _SQUARE),
    "eigh": (_eigh, _SQUARE),
    "eigvalsh_upper": (_eigvalsh_upper, _SQUARE),
    "svdvals": (lambda a: _weighted(_lib(a).linalg.svdvals(a), 16), (2, 4, 3)),
    "svd_square": (_svd(False), _SQUARE),
    "svd_tall": (_svd(False), (2, 4, 3)),
    "svd_wide": (_svd(False), (2, 3, 4)),
    "svd_wide_full": (_svd(True), (3, 4)),
    "qr_square": (_qr, _SQUARE),
    "qr_tall": (_qr, (2, 4, 3)),
    "qr_wide": (_qr, (2, 3, 4)),
    "pinv_tall": (lambda a: _weighted(_lib(a).linalg.pinv(a), 17), (2, 4, 3)),
    "pinv_wide": (lambda a: _weighted(_lib(a).linalg.pinv(a), 18), (2, 3, 4)),
    "pinv_hermitian": (lambda a: _weighted(_lib(a).linalg.pinv(a @ a.mH, hermitian=True), 19), _SQUARE),
    "matrix_norm_2": (lambda a: _lib(a).linalg.matrix_norm(a, ord=2).sum(), _SQUARE),
    "matrix_norm_-2": (lambda a: _lib(a).linalg.matrix_norm(a, ord=-2).sum(), _SQUARE),
    "matrix_norm_nuc": (lambda a: _lib(a).linalg.matrix_norm(a, ord="nuc").sum(), _SQUARE),
    "norm_nuc": (lambda a: _lib(a).linalg.norm(a[0], ord="nuc"), _SQUARE),
    "norm_2": (lambda a: _lib(a).linalg.norm(a[0], ord=2), _SQUARE),
}


@pytest.mark.parametrize("dtype", _DTYPES)
@pytest.mark.parametrize("name", sorted(_CASES))
def test_complex_linalg_values_and_gradients_match_torch(name: str, dtype: str) -> None:
    loss_of, shape = _CASES[name]
    a = _values(20, *shape)
    if shape[-1] == shape[-2]:
        a = a + 3 * np.eye(shape[-1])  # well conditioned: float32 results comparable
    mine = ds.tensor(a, dtype=getattr(ds, dtype), requires_grad=True)
    ref = torch.tensor(a, dtype=getattr(torch, dtype), requires_grad=True)
    out, expected = loss_of(mine), loss_of(ref)
    np.testing.assert_allclose(_numpy(out), _numpy(expected), **_TOL[dtype])
    out.backward()
    expected.backward()
    assert mine.grad.dtype == dtype
    np.testing.assert_allclose(_numpy(mine.grad), _numpy(ref.grad), **_TOL[dtype])


@pytest.mark.parametrize("dtype", _DTYPES)
def test_complex_solve_matches_torch_for_matrix_and_vector_right_hand_sides(dtype: str) -> None:
    a = _values(21, 2, 3, 3) + 3 * np.eye(3)
    for b, left in ((_values(22, 2, 3, 2), True), (_values(23, 3), True), (_values(22, 2, 2, 3), False)):
        mine = [ds.tensor(v, dtype=getattr(ds, dtype), requires_grad=True) for v in (a, b)]
        ref = [torch.tensor(v, dtype=getattr(torch, dtype), requires_grad=True) for v in (a, b)]
        out = _weighted(ds.linalg.solve(*mine, left=left), 24)
        expected = _weighted(torch.linalg.solve(*ref, left=left), 24)
        np.testing.assert_allclose(_numpy(out), _numpy(expected), **_TOL[dtype])
        out.backward()
        expected.backward()
        for m, r in zip(mine, ref):
            np.testing.assert_allclose(_numpy(m.grad), _numpy(r.grad), **_TOL[dtype])
            m.grad, r.grad = None, None


@pytest.mark.parametrize("dtype", _DTYPES)
def test_complex_factorizations_give_torch_dtypes(dtype: str) -> None:
    real = "float32" if dtype == "complex64" else "float64"
    a = ds.tensor(_values(25, 3, 3), dtype=getattr(ds, dtype))
    assert ds.linalg.eigvalsh(_herm(a)).dtype == real
    assert ds.linalg.eigh(_herm(a)).eigenvectors.dtype == dtype
    u, s, vh = ds.linalg.svd(a)
    assert (u.dtype, s.dtype, vh.dtype) == (dtype, real, dtype)
    sign, logabs = ds.linalg.slogdet(a)
    assert (sign.dtype, logabs.dtype) == (dtype, real)
    assert ds.linalg.matrix_norm(a, ord="nuc").dtype == real


def test_hippo_style_skew_eigh_matches_torch() -> None:
    """S4's DPLR initialisation: eigh of the Hermitian ``S * -1j`` for a real skew-symmetric S."""
    s = np.array([[0.0, 1.0, 2.0], [-1.0, 0.0, 1.0], [-2.0, -1.0, 0.0]])
    w, v = ds.linalg.eigh(ds.from_numpy(s) * -1j)
    tw, tv = torch.linalg.eigh(torch.from_numpy(s) * -1j)
    np.testing.assert_allclose(w.numpy(), tw.numpy(), atol=1e-12)
    np.testing.assert_allclose(np.abs(v.numpy()) ** 2, np.abs(tv.numpy()) ** 2, atol=1e-12)


def test_complex_det_at_a_singular_matrix_matches_torch() -> None:
    """The cofactor formula (from the SVD) where det(A) inv(A)^H has no value."""
    a = _values(26, 3, 2)
    a = a @ _values(27, 2, 3)  # rank 2
    mine = ds.tensor(a, dtype=ds.complex128, requires_grad=True)
    ref = torch.tensor(a, requires_grad=True)
    (ds.linalg.det(mine) * (1 - 2j)).real.backward()
    (torch.linalg.det(ref) * (1 - 2j)).real.backward()
    np.testing.assert_allclose(mine.grad.numpy(), ref.grad.numpy(), rtol=1e-9, atol=1e-10)


def test_complex_slogdet_sign_gradient_matches_finite_differences() -> None:
    """torch's convention from first principles: grad = dL/dRe(A) + i dL/dIm(A), in complex128."""
    a = _values(28, 3, 3) + 2 * np.eye(3)
    w = _values(29, 1)[0]

    def loss(m: np.ndarray) -> float:
        sign, logabs = np.linalg.slogdet(m)
        return float((sign * w).real + 0.5 * logabs)

    t = ds.tensor(a, dtype=ds.complex128, requires_grad=True)
    sign, logabs = ds.linalg.slogdet(t)
    ((sign * w).real + 0.5 * logabs).backward()
    eps = 1e-6
    fd = np.zeros_like(a)
    for i in range(3):
        for j in range(3):
            for step in (1.0, 1j):
                e = np.zeros_like(a)
                e[i, j] = eps * step
                fd[i, j] += step * (loss(a + e) - loss(a - e)) / (2 * eps)
    np.testing.assert_allclose(t.grad.numpy(), fd, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("op", ["eigh", "svd", "qr", "cholesky"])
def test_complex_factorization_double_backward_is_refused(op: str) -> None:
    a = ds.tensor(_values(30, 3, 3) + 3 * np.eye(3), dtype=ds.complex128, requires_grad=True)
    if op == "eigh":
        out = _phase_free(ds.linalg.eigh(_herm(a)).eigenvectors, 1)
    elif op == "svd":
        out = _phase_free(ds.linalg.svd(a).U, 1)
    elif op == "qr":
        out = _weighted(ds.linalg.qr(a).Q, 1)
    else:
        out = _weighted(ds.linalg.cholesky(a @ a.mH), 1)
    with pytest.raises(DTypeError, match=f"linalg.{op}: the double backward"):
        ds.autograd.grad(out, a, create_graph=True)


@pytest.mark.parametrize("dtype", _DTYPES)
def test_complex_inv_double_backward_matches_torch(dtype: str) -> None:
    a = _values(31, 3, 3) + 3 * np.eye(3)
    results = []
    for lib in (ds, torch):
        t = lib.tensor(a, dtype=getattr(lib, dtype), requires_grad=True)
        (g,) = lib.autograd.grad(_weighted(lib.linalg.inv(t), 32), t, create_graph=True)
        _weighted(g, 33).backward()
        results.append(_numpy(t.grad))
    np.testing.assert_allclose(results[0], results[1], **_TOL[dtype])


@pytest.mark.parametrize("driver", ["gelsy", "gelsd", "gelss", "gels"])
@pytest.mark.parametrize("dtype", _DTYPES)
def test_complex_lstsq_matches_torch(dtype: str, driver: str) -> None:
    a, b = _values(34, 2, 5, 3), _values(35, 2, 5, 2)
    mine = [ds.tensor(v, dtype=getattr(ds, dtype), requires_grad=True) for v in (a, b)]
    ref = [torch.tensor(v, dtype=getattr(torch, dtype), requires_grad=True) for v in (a, b)]
    got, expected = ds.linalg.lstsq(*mine, driver=driver), torch.linalg.lstsq(*ref, driver=driver)
    for field in ("solution", "residuals", "rank", "singular_values"):
        m, r = getattr(got, field), getattr(expected, field)
        assert m.dtype == str(r.dtype).removeprefix("torch.") and tuple(m.shape) == tuple(r.shape), field
        np.testing.assert_allclose(_numpy(m), _numpy(r), **_TOL[dtype])
    loss = _weighted(got.solution, 36) + (got.residuals.sum() if got.residuals.numel() else 0)
    ref_loss = _weighted(expected.solution, 36) + (expected.residuals.sum() if expected.residuals.numel() else 0)
    loss.backward()
    ref_loss.backward()
    for m, r in zip(mine, ref):
        np.testing.assert_allclose(_numpy(m.grad), _numpy(r.grad), **_TOL[dtype])


@pytest.mark.parametrize("n", [0, 1, 3, -2])
def test_complex_matrix_power_and_multi_dot_match_torch(n: int) -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(n + 5)
    a = (rng.standard_normal((3, 3)) + 1j * rng.standard_normal((3, 3)) + 2 * np.eye(3)).astype(np.complex128)
    v = (rng.standard_normal(3) + 1j * rng.standard_normal(3)).astype(np.complex128)
    got = {}
    for lib in (torch, ds):
        t = lib.from_numpy(a.copy()).requires_grad_()
        out = lib.linalg.matrix_power(t, n)
        chain = lib.linalg.multi_dot([out, t, lib.from_numpy(v.copy())])
        (out.abs().sum() + chain.real.sum() - chain.imag.sum()).backward()
        got[lib.__name__] = (out.detach().numpy(), chain.detach().numpy(), t.grad.numpy())
    for mine, theirs in zip(got["downslope"], got["torch"]):
        np.testing.assert_allclose(mine, theirs, rtol=1e-10, atol=1e-12)
