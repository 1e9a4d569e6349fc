"""Forward-mode tangents (``func.jvp``, built as the derivative of a vjp at a zero cotangent) through every
op of the shared table, against torch's ``func.jvp`` in float64; logcumsumexp (whose rule splits the
cotangent by sign in log space) also against finite differences."""

from __future__ import annotations

from typing import Any

import downslope.autograd.forward_ad as fwAD
import numpy as np
import pytest

import downslope as ds

from ._autograd_op_table import ALL, A, Tn

torch = pytest.importorskip("torch")


def _first(y: Any) -> Any:
    return y[0] if isinstance(y, tuple) else y


def _jvp(lib: Any, name: str) -> np.ndarray:
    f = ALL[name]
    _, t = lib.func.jvp(lambda a: _first(f(lib, a)), (lib.tensor(A),), (lib.tensor(Tn),))
    return np.asarray(t.detach().numpy())


@pytest.mark.parametrize("name", sorted(ALL))
def test_jvp_matches_torch(name: str, float64_defaults: None) -> None:
    try:
        expected = _jvp(torch, name)
    except Exception:  # noqa: BLE001  (torch has no forward rule for it: nothing to compare)
        pytest.skip("torch has no jvp here")
    got = _jvp(ds, name)
    if got.shape == expected.shape and np.allclose(got, expected, rtol=1e-6, atol=1e-8, equal_nan=True):
        return
    # torch's forward rule is wrong for a few ops (scatter_reduce 'prod' gives zeros): central
    # differences in float64 decide
    f = ALL[name]
    fd = _fd(lambda z: _first(f(torch, torch.tensor(z))).detach().numpy(), A, Tn)
    assert not np.allclose(expected, fd, rtol=1e-5, atol=1e-6), name
    np.testing.assert_allclose(got, fd, rtol=1e-5, atol=1e-6, err_msg=name)


def _fd(f: Any, a: np.ndarray, v: np.ndarray, h: float = 1e-6) -> np.ndarray:
    return (f(a + h * v) - f(a - h * v)) / (2 * h)


def _lcse(a: np.ndarray, dim: int) -> np.ndarray:
    return np.logaddexp.accumulate(a, axis=dim)


@pytest.mark.parametrize("dim", [0, 1])
def test_logcumsumexp_tangent_is_finite_difference(dim: int, float64_defaults: None) -> None:
    a = np.array([[0.5, 1.2, 0.3, 1.6], [-3.0, 40.0, 2.0, -1.0]])
    v = np.array([[1.0, -0.5, 0.25, 2.0], [0.3, 0.1, -1.0, 0.7]])
    expected = _fd(lambda z: _lcse(z, dim), a, v)
    _, t = ds.func.jvp(lambda x: ds.logcumsumexp(x, dim), (ds.tensor(a),), (ds.tensor(v),))
    np.testing.assert_allclose(t.numpy(), expected, rtol=1e-6, atol=1e-9)
    with fwAD.dual_level():
        y = ds.logcumsumexp(fwAD.make_dual(ds.tensor(a), ds.tensor(v)), dim)
        np.testing.assert_allclose(fwAD.unpack_dual(y).tangent.numpy(), expected, rtol=1e-6, atol=1e-9)


def test_logcumsumexp_double_backward_through_zero_cotangent(float64_defaults: None) -> None:
    # d/dg of the vjp where g has zeros: the mixed second derivative sum_k w_k d2y_k/dx_i dx_j
    a = np.array([0.5, 1.2, 0.3, 1.6])
    w = np.array([0.0, 1.0, 0.0, -2.0])  # zeros in the first cotangent
    u = np.array([0.4, -1.0, 2.0, 0.5])

    def grad_dot(z: np.ndarray) -> float:  # (J(z)^T w) . u, differentiated by finite differences
        x = ds.tensor(z, requires_grad=True)
        (g,) = ds.autograd.grad((ds.logcumsumexp(x, 0) * ds.tensor(w)).sum(), x)
        return float((g.numpy() * u).sum())

    x = ds.tensor(a, requires_grad=True)
    gw = ds.tensor(w, requires_grad=True)
    (g,) = ds.autograd.grad(ds.logcumsumexp(x, 0), x, grad_outputs=gw, create_graph=True)
    dx, dw = ds.autograd.grad((g * ds.tensor(u)).sum(), (x, gw))
    expected_dx = [(grad_dot(a + 1e-6 * e) - grad_dot(a - 1e-6 * e)) / 2e-6 for e in np.eye(4)]
    np.testing.assert_allclose(dx.numpy(), expected_dx, rtol=1e-6, atol=1e-8)
    # the derivative in the cotangent is J u, the tangent, at the zeros of w too
    np.testing.assert_allclose(dw.numpy(), _fd(lambda z: _lcse(z, 0), a, u), rtol=1e-6, atol=1e-9)
