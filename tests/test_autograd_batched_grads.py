"""autograd.grad(..., is_grads_batched=True): the per-slice gradients stacked, checked against torch."""

import numpy as np
import pytest

import downslope as ds
from downslope.errors import ShapeError

torch = pytest.importorskip("torch")


def _both(fn):
    rng = np.random.default_rng(0)
    a, w = rng.standard_normal(3), rng.standard_normal((4, 3))
    return fn(ds, a, w), fn(torch, a, w)


def _jacobian_rows(lib, a, w):
    x = lib.tensor(a, dtype=lib.float64, requires_grad=True)
    wt = lib.tensor(w, dtype=lib.float64, requires_grad=True)
    y = lib.tanh(wt @ x)
    gx, gw = lib.autograd.grad(y, (x, wt), lib.eye(4, dtype=lib.float64), is_grads_batched=True)
    return gx.numpy(), gw.numpy()


def test_rows_of_a_jacobian_match_torch():
    (dx, dw), (tx, tw) = _both(_jacobian_rows)
    assert dx.shape == (4, 3) and dw.shape == (4, 4, 3)
    np.testing.assert_allclose(dx, tx, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(dw, tw, rtol=1e-12, atol=1e-14)


def _through_create_graph(lib, a, w):
    x = lib.tensor(a, dtype=lib.float64, requires_grad=True)
    wt = lib.tensor(w, dtype=lib.float64)
    y = lib.sin(wt @ x) * x.sum()
    (jac,) = lib.autograd.grad(y, x, lib.eye(4, dtype=lib.float64), is_grads_batched=True, create_graph=True)
    (jac * jac).sum().backward()
    return jac.detach().numpy(), x.grad.numpy()


def test_create_graph_differentiates_the_stacked_result():
    (dj, dg), (tj, tg) = _both(_through_create_graph)
    np.testing.assert_allclose(dj, tj, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(dg, tg, rtol=1e-11, atol=1e-13)


def test_unused_input_is_none_with_allow_unused():
    x = ds.tensor([1.0, 2.0], requires_grad=True)
    z = ds.tensor(1.0, requires_grad=True)
    gx, gz = ds.autograd.grad(x * 3, (x, z), ds.eye(2), is_grads_batched=True, allow_unused=True)
    assert gz is None
    np.testing.assert_array_equal(gx.numpy(), 3 * np.eye(2))


def test_graph_is_freed_after_the_last_slice_unless_retained():
    x = ds.tensor([1.0, 2.0], requires_grad=True)
    y = x.exp()
    ds.autograd.grad(y, x, ds.eye(2), is_grads_batched=True)
    with pytest.raises(Exception, match="second time|freed|retain_graph"):
        ds.autograd.grad(y, x, ds.eye(2), is_grads_batched=True)


def test_grad_outputs_without_a_batch_dim_are_refused():
    x = ds.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(ShapeError, match="batch"):
        ds.autograd.grad(x * 2, x, ds.ones(2), is_grads_batched=True)
