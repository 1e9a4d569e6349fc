"""Triangular solves (solve_triangular, cholesky_solve, triangular_solve, lu_solve) by O(n^2 k)
triangular solves, with and without SciPy, and lstsq by one LAPACK call per matrix, against torch in
float64 (values and gradients)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import downslope as ds
from downslope import linalg as dl


def _pair(a: np.ndarray, grad: bool = True) -> tuple[torch.Tensor, ds.Tensor]:
    return torch.tensor(a, requires_grad=grad), ds.tensor(a, dtype=ds.float64, requires_grad=grad)


def _rel(x: np.ndarray, y: np.ndarray) -> float:
    return float(np.abs(x - y).max() / max(np.abs(x).max(), 1e-300))


@pytest.fixture(params=["scipy", "blocked"])
def tri_path(request, monkeypatch):
    """Both routes of the triangular solve: SciPy's trtrs, and the blocked substitution (no SciPy)."""
    if request.param == "blocked":
        monkeypatch.setattr(dl, "_HOST_SCIPY_LINALG", [None])
    else:
        pytest.importorskip("scipy")
    return request.param


@pytest.mark.parametrize("n", [5, 150])
@pytest.mark.parametrize("upper", [False, True])
@pytest.mark.parametrize("left", [True, False])
@pytest.mark.parametrize("unit", [False, True])
def test_solve_triangular_matches_torch(tri_path, n, upper, left, unit):
    r = np.random.default_rng(n + 2 * upper + 4 * left + 8 * unit)
    a = r.normal(size=(2, n, n)) * 0.1 + 3 * np.eye(n)
    b = r.normal(size=(3, 1, n, 4)) if left else r.normal(size=(3, 1, 4, n))
    (at, ad), (bt, bd) = _pair(a), _pair(b)
    xt = torch.linalg.solve_triangular(at, bt, upper=upper, left=left, unitriangular=unit)
    xd = ds.linalg.solve_triangular(ad, bd, upper=upper, left=left, unitriangular=unit)
    assert tuple(xd.shape) == tuple(xt.shape)
    assert _rel(xt.detach().numpy(), xd.detach().numpy()) < 1e-13
    g = r.normal(size=tuple(xt.shape))
    (xt * torch.tensor(g)).sum().backward()
    (xd * ds.tensor(g, dtype=ds.float64)).sum().backward()
    assert _rel(at.grad.numpy(), ad.grad.numpy()) < 1e-13  # A's gradient stays in its triangle, as torch's
    assert _rel(bt.grad.numpy(), bd.grad.numpy()) < 1e-13


def test_solve_triangular_double_backward_matches_torch(tri_path):
    r = np.random.default_rng(3)
    a = r.normal(size=(70, 70)) * 0.1 + 2 * np.eye(70)
    b = r.normal(size=(70, 2))
    outs = []
    for lib in (torch, ds):
        ta = lib.tensor(a, dtype=lib.float64, requires_grad=True)
        tb = lib.tensor(b, dtype=lib.float64, requires_grad=True)
        x = lib.linalg.solve_triangular(ta, tb, upper=True)
        (gb,) = lib.autograd.grad((x**2).sum(), tb, create_graph=True)
        (ga,) = lib.autograd.grad((gb**3).sum(), ta)
        outs.append(ga.detach().numpy())
    assert _rel(outs[0], outs[1]) < 1e-12


@pytest.mark.parametrize("upper", [False, True])
def test_cholesky_solve_matches_torch(tri_path, upper):
    r = np.random.default_rng(7)
    m = r.normal(size=(2, 130, 130))
    factor = np.linalg.cholesky(m @ m.transpose(0, 2, 1) + 130 * np.eye(130))
    if upper:
        factor = factor.transpose(0, 2, 1).copy()
    b = r.normal(size=(2, 130, 3))
    (lt, ld), (bt, bd) = _pair(factor), _pair(b)
    xt, xd = torch.cholesky_solve(bt, lt, upper=upper), ds.cholesky_solve(bd, ld, upper=upper)
    assert _rel(xt.detach().numpy(), xd.detach().numpy()) < 1e-13
    g = r.normal(size=tuple(xt.shape))
    (xt * torch.tensor(g)).sum().backward()
    (xd * ds.tensor(g, dtype=ds.float64)).sum().backward()
    assert _rel(lt.grad.numpy(), ld.grad.numpy()) < 1e-12
    assert _rel(bt.grad.numpy(), bd.grad.numpy()) < 1e-12


def test_blocked_substitution_is_exact_to_rounding_for_float32():
    r = np.random.default_rng(1)
    a = np.tril(r.normal(size=(200, 200)) * 0.1) + 2 * np.eye(200)
    b = r.normal(size=(200, 3))
    x = dl._tri_values(a.astype(np.float32), b.astype(np.float32), True)
    assert x.dtype == np.float32
    assert _rel(np.linalg.solve(a, b), x) < 1e-5


@pytest.mark.host_only  # the direct path is the host arrays'
def test_triangular_solve_does_no_general_solve(monkeypatch):
    """The triangular solves (forward and backward) never call a general O(n^3) solver."""
    r = np.random.default_rng(2)
    a = ds.tensor(np.tril(r.normal(size=(100, 100))) + 5 * np.eye(100), dtype=ds.float64, requires_grad=True)
    b = ds.tensor(r.normal(size=(100, 2)), dtype=ds.float64, requires_grad=True)

    def refuse(*args, **kwargs):
        raise AssertionError("a general solve was called")

    pytest.importorskip("scipy")
    monkeypatch.setattr(np.linalg, "solve", refuse)
    x = ds.linalg.solve_triangular(a, b, upper=False)
    y = ds.cholesky_solve(b, a)
    (x.sum() + y.sum()).backward()
    assert a.grad is not None and b.grad is not None


def _lstsq_pair(a, b, driver, rcond=None):
    rt = torch.linalg.lstsq(torch.from_numpy(a), torch.from_numpy(b), rcond=rcond, driver=driver)
    rd = ds.linalg.lstsq(ds.from_numpy(a), ds.from_numpy(b), rcond=rcond, driver=driver)
    return rt, rd


@pytest.mark.parametrize("driver", ["gelsy", "gelsd", "gelss", "gels"])
@pytest.mark.parametrize(
    "shapes",
    [
        ((30, 5), (30, 3)),
        ((30, 5), (30,)),
        ((2, 30, 5), (1, 30, 2)),
        ((2, 30, 5), (2, 30)),
        ((1, 30, 5), (3, 30, 2)),
        ((4, 7), (4, 2)),
    ],
)
@pytest.mark.parametrize("scipy_path", [True, False])
def test_lstsq_fields_match_torch(driver, shapes, scipy_path, monkeypatch):
    if driver == "gels" and shapes[0][-2] < shapes[0][-1]:
        pytest.skip("gels assumes full rank: torch's wide gels is a min-norm solve of its own")
    if not scipy_path:
        monkeypatch.setattr(dl, "_HOST_SCIPY_LINALG", [None])
    r = np.random.default_rng(5)
    a, b = r.normal(size=shapes[0]), r.normal(size=shapes[1])
    rt, rd = _lstsq_pair(a, b, driver)
    for field in ("solution", "residuals", "rank", "singular_values"):
        t, d = getattr(rt, field).numpy(), getattr(rd, field).numpy()
        assert t.shape == d.shape and t.dtype == d.dtype, field
        if t.size:
            assert _rel(t, d) < 1e-13, field


@pytest.mark.parametrize("driver", ["gelsy", "gelsd", "gelss"])
def test_lstsq_rank_deficient_min_norm_matches_torch(driver):
    r = np.random.default_rng(6)
    a = r.normal(size=(30, 5))
    a[:, 4] = a[:, 3]
    b = r.normal(size=(30, 2))
    rt, rd = _lstsq_pair(a, b, driver)
    assert int(rd.rank) == int(rt.rank) == 4
    assert _rel(rt.solution.numpy(), rd.solution.numpy()) < 1e-12
    assert rd.residuals.shape == rt.residuals.shape == (0,)


def test_lstsq_complex_matches_torch():
    r = np.random.default_rng(9)
    a = r.normal(size=(30, 5)) + 1j * r.normal(size=(30, 5))
    b = r.normal(size=(30, 2)) + 1j * r.normal(size=(30, 2))
    rt, rd = _lstsq_pair(a, b, "gelsd")
    assert _rel(rt.solution.numpy(), rd.solution.numpy()) < 1e-13
    assert _rel(rt.residuals.numpy(), rd.residuals.numpy()) < 1e-13
    assert rd.residuals.numpy().dtype == np.float64


def test_lstsq_gradient_unchanged_with_grad():
    """A needing grad keeps pinv's recorded path: its gradient matches torch's."""
    r = np.random.default_rng(4)
    a, b = r.normal(size=(20, 4)), r.normal(size=(20, 2))
    (at, ad), (bt, bd) = _pair(a), _pair(b)
    torch.linalg.lstsq(at, bt).solution.pow(2).sum().backward()
    ds.linalg.lstsq(ad, bd).solution.pow(2).sum().backward()
    assert _rel(at.grad.numpy(), ad.grad.numpy()) < 1e-12
    assert _rel(bt.grad.numpy(), bd.grad.numpy()) < 1e-12


@pytest.mark.host_only  # the direct path is the host arrays'
def test_lstsq_without_grad_takes_one_lapack_call(monkeypatch):
    """No pinv (an SVD and a product) and no second SVD for the rank when nothing needs a gradient."""

    def refuse(*args, **kwargs):
        raise AssertionError("the pinv path was taken")

    monkeypatch.setattr(dl, "pinv", refuse)
    monkeypatch.setattr(dl, "_singular_values", refuse)
    r = np.random.default_rng(8)
    out = ds.linalg.lstsq(ds.from_numpy(r.normal(size=(300, 41))), ds.from_numpy(r.normal(size=(300, 1))))
    assert tuple(out.solution.shape) == (41, 1) and int(out.rank) == 41
