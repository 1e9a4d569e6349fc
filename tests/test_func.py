"""ds.func.grad (torch.func.grad): gradients of functions against PyTorch, argnums, has_aux and
composition; ds.grad is the same transform, and its old torch.autograd.grad-style call (like
ds.autograd_grad) still works with a DeprecationWarning."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")


def _rand(seed, shape, low=-1.5, high=1.5):
    return np.random.default_rng(seed).uniform(low, high, size=shape)


def test_grad_of_function_matches_torch_func_grad(assert_close):
    def f(lib, w, x):
        return (lib.sigmoid(x @ w) ** 2).mean()

    w, x = _rand(0, (3,)), _rand(1, (5, 3))
    ours = ds.func.grad(lambda w_: f(ds, w_, ds.tensor(x, dtype="float64")))(ds.tensor(w, dtype="float64"))
    theirs = torch.func.grad(lambda w_: f(torch, w_, torch.tensor(x)))(torch.tensor(w))
    assert_close(ours.numpy(), theirs.numpy(), np.float64, "grad(f)")

    both = ds.func.grad(lambda w_, x_: f(ds, w_, x_), argnums=(0, 1))(
        ds.tensor(w, dtype="float64"), ds.tensor(x, dtype="float64")
    )
    theirs_both = torch.func.grad(lambda w_, x_: f(torch, w_, x_), argnums=(0, 1))(torch.tensor(w), torch.tensor(x))
    for a, b in zip(both, theirs_both):
        assert_close(a.numpy(), b.numpy(), np.float64, "grad(f, argnums)")


def test_grad_of_grad_composes_like_torch_func(assert_close):
    def f(lib, x):
        return (lib.tanh(x) * x**2).sum()

    x = _rand(4, (3,))
    ours = ds.func.grad(lambda v: ds.func.grad(lambda u: f(ds, u))(v).sum())(ds.tensor(x, dtype="float64"))
    theirs = torch.func.grad(lambda v: torch.func.grad(lambda u: f(torch, u))(v).sum())(torch.tensor(x))
    assert_close(ours.numpy(), theirs.numpy(), np.float64, "grad of grad")
    third = ds.func.grad(ds.func.grad(ds.func.grad(lambda v: v**3)))(ds.tensor(2.0, dtype="float64"))
    assert third.item() == pytest.approx(6.0)


def test_grad_of_function_does_not_touch_dot_grad_and_accepts_lists():
    w = ds.tensor([1.0, 2.0], requires_grad=True)
    g = ds.func.grad(lambda v: (v * v).sum())(w)
    assert w.grad is None
    np.testing.assert_array_equal(g.numpy(), [2.0, 4.0])
    assert g.dtype == np.float32
    np.testing.assert_array_equal(ds.func.grad(lambda v: (v * 3.0).sum())([1.0, 5.0]).numpy(), [3.0, 3.0])


def test_grad_of_function_errors():
    with pytest.raises(TypeError, match="scalar"):
        ds.func.grad(lambda v: v * 2)(ds.tensor([1.0, 2.0]))
    with pytest.raises(TypeError, match="argnums"):
        ds.func.grad(lambda v: v.sum(), argnums=1)(ds.tensor([1.0]))


def test_grad_of_a_constant_function_is_zero():
    g = ds.func.grad(lambda v: ds.tensor(3.0))(ds.tensor([1.0, 2.0]))
    np.testing.assert_array_equal(g.numpy(), [0.0, 0.0])


def test_has_aux_returns_the_gradient_and_the_auxiliary_value_like_torch(assert_close):
    x = _rand(2, (4,))

    def f(lib, v):
        return (lib.sin(v) ** 2).sum(), v * 3

    g, aux = ds.func.grad(lambda v: f(ds, v), has_aux=True)(ds.tensor(x, dtype="float64"))
    tg, taux = torch.func.grad(lambda v: f(torch, v), has_aux=True)(torch.tensor(x))
    assert_close(g.numpy(), tg.numpy(), np.float64, "grad(f, has_aux)")
    assert_close(aux.detach().numpy(), taux.numpy(), np.float64, "aux")


def test_refuses_a_tensor_in_place_of_a_function():
    x = ds.tensor([1.0], requires_grad=True)
    with pytest.raises(TypeError, match=r"autograd\.grad\(outputs, inputs\)"):
        ds.func.grad((x * 2).sum())


def test_ds_grad_is_the_function_transform():
    x = _rand(3, (3,))
    second = ds.grad(ds.grad(lambda v: v**3))
    assert second(ds.tensor(2.0, dtype="float64")).item() == pytest.approx(12.0)
    both = ds.grad(lambda a, b: (a * b).sum(), argnums=(0, 1))(ds.tensor(x), ds.tensor(2 * x))
    np.testing.assert_allclose(both[0].numpy(), 2 * x, rtol=1e-6)
    np.testing.assert_allclose(both[1].numpy(), x, rtol=1e-6)


def test_ds_grad_called_the_torch_autograd_way_warns_and_still_works():
    x = ds.tensor([1.0, 2.0], requires_grad=True)
    with pytest.warns(DeprecationWarning, match=r"ds\.autograd\.grad\(outputs, inputs\)"):
        (g,) = ds.grad((x**3).sum(), [x])
    np.testing.assert_array_equal(g.numpy(), [3.0, 12.0])
    with pytest.warns(DeprecationWarning, match="deprecated"):
        (g,) = ds.grad(outputs=(x * x).sum(), inputs=x)
    np.testing.assert_array_equal(g.numpy(), [2.0, 4.0])
    with pytest.warns(DeprecationWarning), pytest.raises(TypeError, match="outputs and inputs"):
        ds.grad((x**3).sum())


def test_autograd_grad_alias_warns_and_still_works():
    x = ds.tensor([1.0, 2.0], requires_grad=True)
    with pytest.warns(DeprecationWarning, match=r"ds\.autograd\.grad"):
        (g,) = ds.autograd_grad((x * x).sum(), x, create_graph=True)
    np.testing.assert_array_equal(g.detach().numpy(), [2.0, 4.0])
    assert g.requires_grad


def test_func_functional_call_is_torch_funcs_and_carries_maml_second_order_gradients():
    from downslope.func import functional_call

    ours = ds.nn.Sequential(ds.nn.Linear(3, 4), ds.nn.Tanh(), ds.nn.Linear(4, 1))
    theirs = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1))
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    x = np.random.default_rng(7).standard_normal((5, 3)).astype(np.float32)
    y = np.sin(x.sum(1, keepdims=True))

    def meta_loss(lib, model, call, X, Y):
        params = dict(model.named_parameters())
        inner = ((call(model, params, (X,)) - Y) ** 2).mean()
        grads = lib.autograd.grad(inner, list(params.values()), create_graph=True)
        fast = {k: v - 0.3 * g for (k, v), g in zip(params.items(), grads)}
        return ((call(model, fast, X) - Y) ** 2).mean()  # a single tensor as args, as torch accepts

    got = meta_loss(ds, ours, functional_call, ds.tensor(x), ds.tensor(y))
    want = meta_loss(torch, theirs, torch.func.functional_call, torch.tensor(x), torch.tensor(y))
    np.testing.assert_allclose(got.item(), want.item(), rtol=1e-5)
    got.backward()
    want.backward()
    for p, t in zip(ours.parameters(), theirs.parameters()):  # the second-order terms included
        np.testing.assert_allclose(p.grad.numpy(), t.grad.numpy(), rtol=1e-4, atol=1e-6)
    assert isinstance(ours[0].weight, ds.nn.Parameter)
    layer = ds.nn.Linear(2, 1)
    with pytest.raises(ValueError, match="strict"):
        functional_call(layer, {"weight": ds.ones(1, 2)}, (ds.ones(1, 2),), strict=True)
    out = functional_call(layer, [{"weight": ds.ones(1, 2)}, {"bias": ds.zeros(1)}], (ds.ones(1, 2),))
    assert out.item() == 2.0
