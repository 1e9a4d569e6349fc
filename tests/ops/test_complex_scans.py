"""Running reductions of complex tensors (cumprod, logcumsumexp, cumsum) against torch: values and
gradients (torch's conjugate-Wirtinger convention) in complex64 and complex128, finite differences in
complex128, and no reliance on a warnings filter (a user's filterwarnings("ignore") changes nothing)."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import downslope as ds

from .._complex_helpers import to_numpy as _numpy

torch = pytest.importorskip("torch")

_DTYPES = ["complex64", "complex128"]
_TOL = {"complex64": {"rtol": 5e-5, "atol": 5e-6}, "complex128": {"rtol": 1e-10, "atol": 1e-12}}


def _values(seed: int, *shape: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return 0.8 * (rng.standard_normal(shape) + 1j * rng.standard_normal(shape))


def check(fn: Callable[..., Any], values: np.ndarray, dtype: str, create_graph: bool = False) -> None:
    """``fn(lib, z)`` in downslope and torch: values, dtype and z's gradient of Re(sum(y * w)) agree (and,
    with ``create_graph``, the gradient of |that gradient|^2 too)."""
    z = ds.tensor(values, dtype=getattr(ds, dtype), requires_grad=True)
    zt = torch.tensor(values, dtype=getattr(torch, dtype), requires_grad=True)
    y, ref = fn(ds, z), fn(torch, zt)
    assert str(y.dtype) == str(ref.dtype).replace("torch.", "")
    np.testing.assert_allclose(_numpy(y), _numpy(ref), **_TOL[dtype])
    w = _values(99, *ref.shape)
    (g,) = ds.autograd.grad(ds.real(y * ds.tensor(w, dtype=y.dtype)).sum(), [z], create_graph=create_graph)
    (gt,) = torch.autograd.grad(
        torch.real(ref * torch.tensor(w, dtype=ref.dtype)).sum(), [zt], create_graph=create_graph
    )
    assert g.dtype == z.dtype
    np.testing.assert_allclose(_numpy(g), _numpy(gt), **_TOL[dtype])
    if create_graph:
        (gg,) = ds.autograd.grad((g.abs() ** 2).sum(), [z])
        (ggt,) = torch.autograd.grad((gt.abs() ** 2).sum(), [zt])
        np.testing.assert_allclose(_numpy(gg), _numpy(ggt), **_TOL[dtype])


def finite_differences(fn: Callable[[Any], Any], values: np.ndarray) -> None:
    """Backprop's gradient of L = Re(sum(fn(z) * w)) against dL/dx + i dL/dy by central differences."""
    w = ds.tensor(_values(5, *fn(ds.tensor(values, dtype=ds.complex128)).shape), dtype=ds.complex128)

    def loss(v: np.ndarray) -> float:
        return float(ds.real(fn(ds.tensor(v, dtype=ds.complex128)) * w).sum().item())

    z = ds.tensor(values, dtype=ds.complex128, requires_grad=True)
    ds.real(fn(z) * w).sum().backward()
    h = 1e-6
    want = np.empty(values.shape, complex)
    for i in np.ndindex(values.shape):
        e = np.zeros(values.shape, complex)
        e[i] = h
        want[i] = (loss(values + e) - loss(values - e)) / (2 * h) + 1j * (
            loss(values + 1j * e) - loss(values - 1j * e)
        ) / (2 * h)
    np.testing.assert_allclose(z.grad.numpy(), want, rtol=1e-6, atol=1e-8)


_SCANS: list[tuple[str, Callable[..., Any], tuple[int, ...]]] = [
    ("cumprod-0", lambda L, z: L.cumprod(z, 0), (4, 3)),
    ("cumprod-1", lambda L, z: z.cumprod(1), (2, 5)),
    ("logcumsumexp-0", lambda L, z: L.logcumsumexp(z, 0), (5, 2)),
    ("logcumsumexp-1", lambda L, z: z.logcumsumexp(-1), (2, 6)),
    ("cumsum", lambda L, z: z.cumsum(1), (2, 4)),
]


@pytest.mark.parametrize("dtype", _DTYPES)
@pytest.mark.parametrize(("fn", "shape"), [s[1:] for s in _SCANS], ids=[s[0] for s in _SCANS])
def test_complex_scans_match_torch(fn: Callable[..., Any], shape: tuple[int, ...], dtype: str) -> None:
    check(fn, _values(1, *shape), dtype)


@pytest.mark.parametrize("dtype", _DTYPES)
@pytest.mark.parametrize(("fn", "shape"), [s[1:] for s in _SCANS[:4]], ids=[s[0] for s in _SCANS[:4]])
def test_complex_scans_under_create_graph_match_torch(
    fn: Callable[..., Any], shape: tuple[int, ...], dtype: str
) -> None:
    check(fn, _values(2, *shape), dtype, create_graph=True)


@pytest.mark.parametrize(("fn", "shape"), [s[1:] for s in _SCANS], ids=[s[0] for s in _SCANS])
def test_complex_scan_gradients_agree_with_finite_differences(fn: Callable[..., Any], shape: tuple[int, ...]) -> None:
    finite_differences(lambda z: fn(ds, z), _values(3, *shape))


@pytest.mark.parametrize("dtype", _DTYPES)
def test_complex_cumprod_with_zeros_matches_torch(dtype: str) -> None:
    values = _values(4, 2, 5)
    values[0, 1] = 0
    values[1, 3] = 0
    check(lambda L, z: L.cumprod(z, 1), values, dtype)
    check(lambda L, z: L.cumprod(z, 1), values, dtype, create_graph=True)


def test_heinsen_log_space_scan_of_signed_values_matches_torch() -> None:
    """cumsum of signed values as exp(logcumsumexp(log(complex v))).real, as log-space scans do."""
    v = np.array([[0.5, -1.0, 2.0, -0.25, 3.0]])
    out = []
    for lib in (ds, torch):
        x = lib.tensor(v, dtype=lib.float32, requires_grad=True)
        h = lib.exp(lib.logcumsumexp(lib.log(x.to(lib.complex64)), dim=-1)).real
        (h * lib.tensor([[1.0, -2.0, 0.5, 3.0, 1.5]])).sum().backward()
        out.append((h.detach().numpy(), x.grad.numpy()))
    np.testing.assert_allclose(out[0][0], out[1][0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out[0][1], out[1][1], rtol=1e-5, atol=1e-6)


def test_logcumsumexp_of_complex_with_large_real_parts_is_stable() -> None:
    values = np.array([1000 + 1j, 999 - 2j, -1000 + 0.5j, 1001 + 0j])
    ours = ds.logcumsumexp(ds.tensor(values, dtype=ds.complex128), 0).numpy()
    theirs = torch.logcumsumexp(torch.tensor(values), 0).numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-12)


def test_complex_results_do_not_depend_on_the_warnings_filters() -> None:
    """With every warning ignored (a script's filterwarnings("ignore") after import downslope), complex
    ops still give torch's numbers or refuse: nothing rests on NumPy's ComplexWarning being an error."""
    z = np.exp(1j * np.array([0.1, 0.2, 0.3])) * 0.9
    r = np.array([2.0, 1.0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = [
            ds.cumprod(ds.tensor(z, dtype=ds.complex64), 0).numpy(),
            ds.outer(ds.tensor(r), ds.tensor(z[:2], dtype=ds.complex64)).numpy(),
            ds.cat([ds.tensor(r), ds.tensor(z, dtype=ds.complex64)]).numpy(),
        ]
        with pytest.raises(ds.errors.DTypeError, match="fmod"):
            ds.fmod(ds.tensor(z, dtype=ds.complex64), 2.0)
    theirs = [
        torch.cumprod(torch.tensor(z, dtype=torch.complex64), 0).numpy(),
        torch.outer(torch.tensor(r, dtype=torch.float32), torch.tensor(z[:2], dtype=torch.complex64)).numpy(),
        torch.cat([torch.tensor(r, dtype=torch.float32), torch.tensor(z, dtype=torch.complex64)]).numpy(),
    ]
    for a, b in zip(ours, theirs):
        assert a.dtype == b.dtype
        np.testing.assert_allclose(a, b, rtol=1e-6)


def test_integer_cumprod_stays_int64_without_a_gradient() -> None:
    x = ds.tensor([1, 2, 3])
    assert ds.cumprod(x, 0).dtype == ds.int64
    np.testing.assert_array_equal(ds.cumprod(x, 0).numpy(), torch.cumprod(torch.tensor([1, 2, 3]), 0).numpy())


@pytest.mark.parametrize("dtype", [np.complex64, np.complex128])
def test_complex_logsumexp_var_mean_and_std_mean_match_torch(dtype: Any) -> None:
    torch = pytest.importorskip("torch")
    z = (np.array([[3 + 4j, 1j, -2 + 0.5j], [1 + 1j, 50 + 2j, 0.3 - 1j]])).astype(dtype)
    results = {}
    for lib in (torch, ds):
        t = lib.from_numpy(z.copy()).requires_grad_()  # ds.tensor would narrow complex128 as it narrows float64
        y = lib.logsumexp(t, 1)
        v, m = lib.var_mean(t, 1)
        s, m2 = lib.std_mean(t, 0, correction=0)
        loss = (y.real * 2 + y.imag * 3).sum() + v.sum() + (m.real * m.imag).sum() + s.sum() + m2.abs().sum()
        loss.backward()
        results[lib.__name__] = [a.detach().numpy() for a in (y, v, m, s, m2, t.grad)]
    tol = 1e-5 if dtype == np.complex64 else 1e-12
    for got, want in zip(results["downslope"], results["torch"]):
        assert got.dtype == want.dtype
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol)
