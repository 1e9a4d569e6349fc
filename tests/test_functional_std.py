"""std as one recorded op with torch's own rule (std_backward): values, gradients (also where std is 0
and where the degrees of freedom are <= 0), second derivatives and the node's name, against torch."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")


def _std_and_grad(lib, x, g, **kwargs):
    t = lib.from_numpy(x.copy()).requires_grad_()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        y = t.std(**kwargs)
    y.backward(lib.from_numpy(np.asarray(g).copy()))
    return y.detach().numpy(), t.grad.numpy()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(
    "kwargs",
    [{"dim": 1}, {"dim": -1, "keepdim": True}, {"dim": 0, "unbiased": False}, {"dim": (0, 2)}, {"correction": 2, "dim": 1},
     {}],
)  # fmt: skip
def test_std_values_and_gradient_match_torch(dtype, kwargs):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 6, 5)).astype(dtype)
    shape = tuple(torch.from_numpy(x).std(**kwargs).shape)
    g = rng.standard_normal(shape).astype(dtype)
    tol = {"rtol": 2e-6, "atol": 1e-6} if dtype == "float32" else {"rtol": 1e-12, "atol": 1e-13}
    for ours, theirs in zip(_std_and_grad(ds, x, g, **kwargs), _std_and_grad(torch, x, g, **kwargs)):
        np.testing.assert_allclose(ours, theirs, **tol)
        assert ours.dtype == theirs.dtype


def test_std_gradient_is_zero_where_std_is_zero_even_for_an_infinite_upstream_gradient():
    x = np.array([[2.0, 2.0, 2.0], [1.0, 2.0, 4.0]], dtype=np.float32)
    g = np.array([np.inf, 1.0], dtype=np.float32)  # torch masks after dividing: 0 in the constant row
    ours, theirs = _std_and_grad(ds, x, g, dim=1), _std_and_grad(torch, x, g, dim=1)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    assert ours[1][0].tolist() == [0.0, 0.0, 0.0]


@pytest.mark.parametrize("shape, kwargs", [((1, 3), {"dim": 0}), ((2, 3), {"dim": 1, "correction": 3}),
                                           ((2, 1), {"dim": 1})])  # fmt: skip
def test_std_with_no_degrees_of_freedom_warns_and_gives_torch_values_and_gradient(shape, kwargs):
    x = np.arange(1.0, 1.0 + np.prod(shape), dtype=np.float32).reshape(shape)
    with pytest.warns(UserWarning, match="degrees of freedom is <= 0"):
        ds.from_numpy(x).std(**kwargs)
    g = np.ones(tuple(torch.from_numpy(x).std(**kwargs).shape), dtype=np.float32)
    for ours, theirs in zip(_std_and_grad(ds, x, g, **kwargs), _std_and_grad(torch, x, g, **kwargs)):
        np.testing.assert_array_equal(ours, theirs)


def test_std_second_derivative_matches_torch_and_passes_gradgradcheck():
    rng = np.random.default_rng(8)
    x = rng.standard_normal((3, 5))
    x[1] = 0.5  # a constant row: std 0, gradient 0, and a finite second derivative there

    def hessian_vector(lib):
        t = lib.from_numpy(x.copy()).requires_grad_()
        (grad,) = lib.autograd.grad((t.std(1) ** 3).sum(), t, create_graph=True)
        (second,) = lib.autograd.grad((grad * lib.from_numpy(x * 0.3)).sum(), t)
        return grad.detach().numpy(), second.numpy()

    for ours, theirs in zip(hessian_vector(ds), hessian_vector(torch)):
        np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-12)
    t = ds.from_numpy(rng.standard_normal((3, 4))).requires_grad_()
    assert ds.autograd.gradgradcheck(lambda a: a.std(1, keepdim=True), (t,))


def test_std_is_one_recorded_op_named_as_torch_names_it():
    t = torch.randn(3, 4, requires_grad=True).std(1)
    y = ds.randn(3, 4, requires_grad=True).std(1)
    assert y.grad_fn.name() == t.grad_fn.name() == "StdBackward0"
