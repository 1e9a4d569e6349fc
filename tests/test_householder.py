"""geqrf, linalg.householder_product (orgqr) and ormqr against torch 2.13: values (float32, float64,
complex; tall, wide, square, batched), gradients of householder_product and ormqr against torch's and
against finite differences in float64, and geqrf's backward refused as torch refuses it."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")

SHAPES = [(5, 3), (3, 5), (4, 4), (2, 6, 4), (2, 3, 4, 2)]
DTYPES = ["float32", "float64", "complex64", "complex128"]


def _random(shape: tuple[int, ...], dtype: str, seed: int = 0) -> np.ndarray:
    r = np.random.default_rng(seed)
    x = r.standard_normal(shape)
    if dtype.startswith("complex"):
        x = x + 1j * r.standard_normal(shape)
    return x.astype(dtype)


def _tol(dtype: str) -> dict[str, float]:
    return {"rtol": 1e-4, "atol": 1e-5} if dtype in ("float32", "complex64") else {"rtol": 1e-10, "atol": 1e-12}


def _ds(x: np.ndarray) -> Any:
    return ds.tensor(x, dtype=getattr(ds, str(x.dtype)))


def _pair(x: np.ndarray, grad: bool = False) -> tuple[Any, Any]:
    ours = ds.tensor(x, dtype=getattr(ds, str(x.dtype)), requires_grad=grad)
    ref = torch.tensor(x, requires_grad=grad)
    return ours, ref


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_geqrf_is_torchs(shape: tuple[int, ...], dtype: str) -> None:
    ours, ref = _pair(_random(shape, dtype))
    a, tau = ds.geqrf(ours)
    ref_a, ref_tau = torch.geqrf(ref)
    assert a.dtype == ours.dtype and tau.dtype == ours.dtype
    assert a.shape == tuple(ref_a.shape) and tau.shape == tuple(ref_tau.shape)
    np.testing.assert_allclose(a.numpy(), ref_a.numpy(), **_tol(dtype))
    np.testing.assert_allclose(tau.numpy(), ref_tau.numpy(), **_tol(dtype))
    method = ours.geqrf()
    np.testing.assert_array_equal(method.a.numpy(), a.numpy())


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [s for s in SHAPES if s[-2] >= s[-1]], ids=str)
def test_householder_product_of_geqrf_is_torchs_q(shape: tuple[int, ...], dtype: str) -> None:
    x = _random(shape, dtype)
    a, tau = torch.geqrf(torch.tensor(x))
    ours = ds.linalg.householder_product(_ds(a.numpy()), _ds(tau.numpy()))
    ref = torch.linalg.householder_product(a, tau)
    assert ours.dtype == getattr(ds, dtype) and ours.shape == tuple(ref.shape)
    np.testing.assert_allclose(ours.numpy(), ref.numpy(), **_tol(dtype))
    # Q R is the input (R on and above a's diagonal)
    n = shape[-1]
    r = np.triu(a.numpy()[..., :n, :])
    np.testing.assert_allclose(ours.numpy() @ r, x, **_tol(dtype))
    np.testing.assert_array_equal(ds.orgqr(_ds(a.numpy()), _ds(tau.numpy())).numpy(), ours.numpy())
    np.testing.assert_array_equal(_ds(a.numpy()).orgqr(_ds(tau.numpy())).numpy(), ours.numpy())


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("left", [True, False])
@pytest.mark.parametrize("transpose", [False, True])
def test_ormqr_is_torchs(shape: tuple[int, ...], dtype: str, left: bool, transpose: bool) -> None:
    a, tau = torch.geqrf(torch.tensor(_random(shape, dtype)))
    m = shape[-2]
    other = _random((*shape[:-2], m, 3) if left else (*shape[:-2], 2, m), dtype, seed=1)
    ours = ds.ormqr(_ds(a.numpy()), _ds(tau.numpy()), _ds(other), left, transpose)
    ref = torch.ormqr(a, tau, torch.tensor(other), left, transpose)
    assert ours.shape == tuple(ref.shape)
    np.testing.assert_allclose(ours.numpy(), ref.numpy(), **_tol(dtype))
    method = _ds(a.numpy()).ormqr(_ds(tau.numpy()), _ds(other), left=left, transpose=transpose)
    np.testing.assert_array_equal(method.numpy(), ours.numpy())


def _inputs(shape: tuple[int, ...], k: int, dtype: str) -> tuple[np.ndarray, np.ndarray]:
    """Any matrix and coefficients (not geqrf's), so that every entry's gradient is exercised."""
    return _random(shape, dtype, seed=2), _random((*shape[:-2], k), dtype, seed=3)


@pytest.mark.parametrize("dtype", ["float64", "complex128"])
@pytest.mark.parametrize(("shape", "k"), [((5, 3), 3), ((4, 4), 3), ((2, 6, 4), 2)], ids=str)
def test_householder_product_gradients_are_torchs(shape: tuple[int, ...], k: int, dtype: str) -> None:
    a, tau = _inputs(shape, k, dtype)
    upstream = _random(shape, dtype, seed=4)
    (ours_a, ref_a), (ours_tau, ref_tau) = _pair(a, True), _pair(tau, True)
    out = ds.linalg.householder_product(ours_a, ours_tau)
    ref = torch.linalg.householder_product(ref_a, ref_tau)
    np.testing.assert_allclose(out.detach().numpy(), ref.detach().numpy(), rtol=1e-10, atol=1e-12)
    out.backward(_ds(upstream))
    ref.backward(torch.tensor(upstream))
    np.testing.assert_allclose(ours_a.grad.numpy(), ref_a.grad.numpy(), rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(ours_tau.grad.numpy(), ref_tau.grad.numpy(), rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("dtype", ["float64", "complex128"])
@pytest.mark.parametrize("left", [True, False])
@pytest.mark.parametrize("transpose", [False, True])
def test_ormqr_gradients_are_torchs(dtype: str, left: bool, transpose: bool) -> None:
    shape, k = (2, 5, 3), 3
    a, tau = _inputs(shape, k, dtype)
    other = _random((2, 5, 2) if left else (2, 4, 5), dtype, seed=5)
    (oa, ra), (ot, rt), (oc, rc) = _pair(a, True), _pair(tau, True), _pair(other, True)
    out = ds.ormqr(oa, ot, oc, left, transpose)
    ref = torch.ormqr(ra, rt, rc, left, transpose)
    upstream = _random(tuple(ref.shape), dtype, seed=6)
    out.backward(_ds(upstream))
    ref.backward(torch.tensor(upstream))
    for ours, theirs in ((oa, ra), (ot, rt), (oc, rc)):
        np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=1e-9, atol=1e-11)


def test_householder_product_and_ormqr_gradients_match_finite_differences() -> None:
    a, tau = _inputs((5, 3), 2, "float64")
    other = _random((2, 5), "float64", seed=7)
    args = [ds.tensor(x, dtype=ds.float64, requires_grad=True) for x in (a, tau, other)]
    assert ds.autograd.gradcheck(lambda x, t: ds.linalg.householder_product(x, t), tuple(args[:2]))
    assert ds.autograd.gradcheck(lambda x, t, c: ds.ormqr(x, t, c, False, True), tuple(args))
    assert ds.autograd.gradgradcheck(lambda x, t: ds.linalg.householder_product(x, t), tuple(args[:2]))


def test_geqrf_backward_is_refused_as_torch() -> None:
    x = _random((4, 3), "float64")
    ours, ref = _pair(x, True)
    a, tau = ds.geqrf(ours)
    ref_a, ref_tau = torch.geqrf(ref)
    assert a.requires_grad and tau.requires_grad and ref_a.requires_grad
    with pytest.raises(NotImplementedError, match="derivative for 'geqrf' is not implemented"):
        ref_a.sum().backward()
    with pytest.raises(NotImplementedError, match="derivative for 'geqrf' is not implemented"):
        a.sum().backward()
    with pytest.raises(NotImplementedError, match="geqrf"):
        ds.geqrf(ours).tau.sum().backward()
    complex_input = ds.tensor(_random((3, 3), "complex128"), dtype=ds.complex128, requires_grad=True)
    with pytest.raises(NotImplementedError, match="geqrf"):
        ds.geqrf(complex_input).a.abs().sum().backward()


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda L, a, t: L.linalg.householder_product(a[:, :3].mT, t[:2]), "m >= n|greater than or equal"),
        (lambda L, a, t: L.linalg.householder_product(a, L.cat([t, t])), "coefficients|greater than or equal"),
        (lambda L, a, t: L.linalg.householder_product(a, t.to(L.float32)), "dtype"),
        (lambda L, a, t: L.ormqr(a, t, L.ones(3, 2, dtype=L.float64)), "rows|must be"),
    ],
)
def test_bad_arguments_raise_as_torch(call: Any, message: str) -> None:
    x, tau = _inputs((5, 3), 3, "float64")
    (ours_x, ref_x), (ours_tau, ref_tau) = _pair(x), _pair(tau)
    with pytest.raises(RuntimeError):
        call(torch, ref_x, ref_tau)
    with pytest.raises(RuntimeError, match=message):
        call(ds, ours_x, ours_tau)
