"""autograd.functional (vjp, jvp, jacobian, hessian, hvp, vhp) against torch.autograd.functional."""

from __future__ import annotations

import numpy as np
import pytest
from downslope.autograd.functional import hessian, hvp, jacobian, jvp, vhp, vjp

import downslope as ds

torch = pytest.importorskip("torch")
TF = torch.autograd.functional


def _pair(*arrays):
    return tuple(ds.tensor(a, dtype=ds.float64) for a in arrays), tuple(torch.tensor(a) for a in arrays)


def _same(ours, theirs):
    if isinstance(theirs, (tuple, list)):
        assert isinstance(ours, tuple) and len(ours) == len(theirs)
        for a, b in zip(ours, theirs):
            _same(a, b)
        return
    assert isinstance(ours, ds.Tensor) and tuple(ours.shape) == tuple(theirs.shape)
    np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=1e-10, atol=1e-12)


RNG = np.random.default_rng(0)
X, Y = RNG.standard_normal((3, 2)), RNG.standard_normal((2,))


def two_in_two_out(lib):
    def f(x, y):
        return (x @ y).tanh() * 2, (x * x).sum(dim=0) + y.exp()

    return f


def scalar_of_two(lib):
    def f(x, y):
        return ((x @ y).sigmoid() ** 2).sum() + (y**3).sum() * x.sum()

    return f


def test_jacobian_of_one_input_and_output_has_output_then_input_shape():
    (x,), (tx,) = _pair(X)
    ours = jacobian(lambda a: (a**2).sum(dim=1).sin(), x)
    _same(ours, TF.jacobian(lambda a: (a**2).sum(dim=1).sin(), tx))
    assert tuple(ours.shape) == (3, 3, 2)


@pytest.mark.parametrize("create_graph", [False, True])
def test_jacobian_of_tuples_nests_as_torch(create_graph):
    ours_in, theirs_in = _pair(X, Y)
    ours = jacobian(two_in_two_out(ds), ours_in, create_graph=create_graph)
    theirs = TF.jacobian(two_in_two_out(torch), theirs_in, create_graph=create_graph)
    _same(ours, theirs)


def test_vjp_and_jvp_match_torch():
    ours_in, theirs_in = _pair(X, Y)
    v_out = (RNG.standard_normal(3), RNG.standard_normal(2))
    v_in = (RNG.standard_normal((3, 2)), RNG.standard_normal(2))
    ours, theirs = (
        vjp(two_in_two_out(ds), ours_in, _pair(*v_out)[0]),
        TF.vjp(two_in_two_out(torch), theirs_in, _pair(*v_out)[1]),
    )
    _same(ours, theirs)
    ours, theirs = (
        jvp(two_in_two_out(ds), ours_in, _pair(*v_in)[0]),
        TF.jvp(two_in_two_out(torch), theirs_in, _pair(*v_in)[1]),
    )
    _same(ours, theirs)


def test_hessian_and_hessian_vector_products_match_torch():
    ours_in, theirs_in = _pair(X, Y)
    _same(hessian(scalar_of_two(ds), ours_in), TF.hessian(scalar_of_two(torch), theirs_in))
    v = (RNG.standard_normal((3, 2)), RNG.standard_normal(2))
    _same(hvp(scalar_of_two(ds), ours_in, _pair(*v)[0]), TF.hvp(scalar_of_two(torch), theirs_in, _pair(*v)[1]))
    _same(vhp(scalar_of_two(ds), ours_in, _pair(*v)[0]), TF.vhp(scalar_of_two(torch), theirs_in, _pair(*v)[1]))
    (x,), (tx,) = _pair(X)
    _same(hessian(lambda a: (a**3).sum() * a.sum(), x), TF.hessian(lambda a: (a**3).sum() * a.sum(), tx))


def test_hessian_of_a_network_loss_in_its_parameters_matches_torch():
    # the curvature that decides whether a learning rate diverges: largest eigenvalue below 2/lr
    inputs, targets = RNG.standard_normal((8, 3)), RNG.standard_normal((8, 1))
    w0, b0 = RNG.standard_normal((3, 4)) * 0.5, RNG.standard_normal(4) * 0.1

    def loss(lib, x, t):
        def f(w, b):
            return (((x @ w + b).tanh().sum(dim=1, keepdim=True) - t) ** 2).mean()

        return f

    ours = hessian(loss(ds, *_pair(inputs, targets)[0]), _pair(w0, b0)[0])
    theirs = TF.hessian(loss(torch, *_pair(inputs, targets)[1]), _pair(w0, b0)[1])
    _same(ours, theirs)


def test_unused_inputs_get_zeros_or_an_error_with_strict():
    ours_in, theirs_in = _pair(X, Y)
    _same(jacobian(lambda x, y: x * 2, ours_in), TF.jacobian(lambda x, y: x * 2, theirs_in))
    with pytest.raises(ds.DownslopeError, match="does not depend on input 1"):
        jacobian(lambda x, y: x * 2, ours_in, strict=True)


def test_results_are_detached_unless_create_graph_and_inputs_untouched():
    (x,), _ = _pair(X)
    x.requires_grad_(True)
    out, product = vjp(lambda a: a.sin(), x, ds.ones(3, 2, dtype=ds.float64))
    assert not out.requires_grad and not product.requires_grad and x.grad is None
    _, product = vjp(lambda a: a.sin(), x, ds.ones(3, 2, dtype=ds.float64), create_graph=True)
    product.sum().backward()  # d/dx sum(cos x) = -sin x
    np.testing.assert_allclose(x.grad.numpy(), -np.sin(X))


def test_torch_spellings_and_clear_errors():
    assert ds.autograd.functional.jacobian is jacobian
    with pytest.raises(ds.DownslopeError, match="v can be omitted only"):
        vjp(lambda a: a * 2, ds.ones(3))
    with pytest.raises(ds.DownslopeError, match=r"v\[0\] has shape \(2,\), inputs\[0\] has shape \(3,\)"):
        jvp(lambda a: a * 2, ds.ones(3), ds.ones(2))
    with pytest.raises(ds.DownslopeError, match="single one-element tensor"):
        hessian(lambda a: a * 2, ds.ones(3))
    with pytest.raises(ds.DownslopeError, match="expected inputs to be a Tensor"):
        jacobian(lambda a: a, [1.0, 2.0])


@pytest.mark.parametrize("vectorize", [False, True])
def test_jacobian_and_hessian_of_zero_dim_tensors_are_zero_dim_like_torch(vectorize):
    (ox, oy), (tx, ty) = _pair(np.array(0.3), np.array([0.3, -0.2]))

    def cases(lib, x, y):
        return (
            TF.jacobian(lib.sin, x, vectorize=vectorize) if lib is torch else jacobian(lib.sin, x, vectorize=vectorize),
            (TF.jacobian if lib is torch else jacobian)(lambda s: s * y, x),
            (TF.jacobian if lib is torch else jacobian)(lambda v: (v**2).sum(), y),
            (TF.hessian if lib is torch else hessian)(lambda s: lib.sin(s) * s, x, vectorize=vectorize),
            (TF.hessian if lib is torch else hessian)(lambda a, b: a * b**2, (x, x)),
            (TF.jacobian if lib is torch else jacobian)(lambda a, b: (a * b, a + b), (x, x), create_graph=True),
        )

    _same(cases(ds, ox, oy), cases(torch, tx, ty))
