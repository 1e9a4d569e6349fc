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
    np.testing.assert_array_equal(g.detach().numpy(), [2.0, 4.0])
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


# --- vmap, vjp, jvp, Jacobians, ensembles (torch.func) ---------------------------------------------

F = torch.func


def _pair(arr):
    """The same float64 values as a downslope and a torch tensor."""
    return ds.tensor(arr, dtype="float64"), torch.tensor(arr)


def _mlps():
    theirs = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2)).double()
    ours = ds.nn.Sequential(ds.nn.Linear(3, 4), ds.nn.Tanh(), ds.nn.Linear(4, 2)).to(ds.float64)
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    return ours, theirs


def test_per_sample_gradients_vmap_of_grad_match_torch_and_a_loop(assert_close):
    ours, theirs = _mlps()
    (x, tx), (y, ty) = _pair(_rand(10, (6, 3))), _pair(_rand(11, (6, 2)))

    def loss_fn(lib, model):
        def loss(params, buffers, sample, target):
            pred = lib.func.functional_call(model, (params, buffers), (sample.unsqueeze(0),))
            return ((pred - target.unsqueeze(0)) ** 2).mean()

        return loss

    params = {k: v.detach() for k, v in ours.named_parameters()}
    tparams = {k: v.detach() for k, v in theirs.named_parameters()}
    got = ds.func.vmap(ds.func.grad(loss_fn(ds, ours)), in_dims=(None, None, 0, 0))(params, {}, x, y)
    want = F.vmap(F.grad(loss_fn(torch, theirs)), in_dims=(None, None, 0, 0))(tparams, {}, tx, ty)
    assert set(got) == set(want)
    for k in want:
        assert tuple(got[k].shape) == tuple(want[k].shape) == (6, *params[k].shape)
        assert_close(got[k].numpy(), want[k].numpy(), np.float64, f"per-sample grad {k}")
        looped = np.stack([ds.func.grad(loss_fn(ds, ours))(params, {}, x[i], y[i])[k].numpy() for i in range(6)])
        assert_close(got[k].numpy(), looped, np.float64, f"loop {k}")


def test_model_ensembling_with_stack_module_state_and_functional_call():
    import copy

    models = [ds.nn.Sequential(ds.nn.Linear(3, 5), ds.nn.ReLU(), ds.nn.Linear(5, 2)) for _ in range(4)]
    params, buffers = ds.func.stack_module_state(models)
    assert tuple(params["0.weight"].shape) == (4, 5, 3) and params["0.weight"].requires_grad
    assert params["0.weight"].grad_fn is None and buffers == {}
    base = copy.deepcopy(models[0])  # PyTorch's tutorial moves it to 'meta'; any copy works here

    def fmodel(p, b, x):
        return ds.func.functional_call(base, (p, b), (x,))

    x = ds.randn(7, 3)
    out = ds.func.vmap(fmodel, in_dims=(0, 0, None))(params, buffers, x)
    np.testing.assert_allclose(out.detach().numpy(), np.stack([m(x).detach().numpy() for m in models]), rtol=1e-6)
    minibatches = ds.randn(4, 7, 3)  # a different minibatch per model
    out2 = ds.func.vmap(fmodel)(params, buffers, minibatches)
    np.testing.assert_allclose(out2[2].detach().numpy(), models[2](minibatches[2]).detach().numpy(), rtol=1e-6)
    out.sum().backward()  # the stacked parameters train the ensemble
    assert tuple(params["2.bias"].grad.shape) == (4, 2)
    with pytest.raises(RuntimeError, match="at least one model"):
        ds.func.stack_module_state([])
    with pytest.raises(RuntimeError, match="same class"):
        ds.func.stack_module_state([ds.nn.Linear(2, 2), ds.nn.Sequential(ds.nn.Linear(2, 2))])
    with pytest.raises(RuntimeError, match="training/eval"):
        ds.func.stack_module_state([ds.nn.Linear(2, 2), ds.nn.Linear(2, 2).eval()])


def test_vmap_in_dims_out_dims_nesting_and_pytrees_match_torch(assert_close):
    a, ta = _pair(_rand(20, (3, 4)))
    b, tb = _pair(_rand(21, (4, 3)))
    w, tw = _pair(_rand(22, (4,)))
    cases = [
        (lambda lib: lambda u, v: u * v, dict(in_dims=(0, 1)), (a, b), (ta, tb)),
        (lambda lib: lambda u, v: u * v, dict(in_dims=(1, None)), (a, w[:3]), (ta, tw[:3])),
        (lambda lib: lambda u: u.sin(), dict(out_dims=1), (a,), (ta,)),
        (lambda lib: lambda u: u.sin(), dict(in_dims=-1, out_dims=-1), (a,), (ta,)),
        (lambda lib: lambda u: u.sum(), dict(in_dims=(1,)), (a,), (ta,)),
        (lambda lib: lambda d: d["p"] * d["q"], dict(in_dims=({"p": 0, "q": None},)), ({"p": a, "q": w},), ({"p": ta, "q": tw},)),
        (lambda lib: lambda t: t[0] + t[1], dict(in_dims=((0, 1),)), ((a, b),), ((ta, tb),)),
        (lambda lib: lib.func.vmap(lambda u, v: u * v, in_dims=(0, None)), dict(in_dims=(None, 0)), (a[0], b), (ta[0], tb)),
        (lambda lib: lib.func.vmap(lib.dot), dict(), (a.reshape(3, 2, 2), a.reshape(3, 2, 2) * 2), (ta.reshape(3, 2, 2), ta.reshape(3, 2, 2) * 2)),
    ]  # fmt: skip
    for make, kwargs, ours_args, torch_args in cases:
        got = ds.func.vmap(make(ds), **kwargs)(*ours_args)
        want = F.vmap(make(torch), **kwargs)(*torch_args)
        assert tuple(got.shape) == tuple(want.shape), kwargs
        assert_close(got.numpy(), want.numpy(), np.float64, str(kwargs))


def test_vmap_returns_tuples_and_dicts_and_takes_unbatched_kwargs(assert_close):
    a, ta = _pair(_rand(23, (3, 4)))
    scale, tscale = _pair(_rand(24, (4,)))

    def f(lib):
        return lambda u, scale: {"s": (u * scale).sum(), "pair": (u * 2, u.max())}

    got = ds.func.vmap(f(ds), out_dims={"s": 0, "pair": (1, 0)})(a, scale=scale)
    want = F.vmap(f(torch), out_dims={"s": 0, "pair": (1, 0)})(ta, scale=tscale)
    assert_close(got["s"].numpy(), want["s"].numpy(), np.float64, "dict output")
    assert tuple(got["pair"][0].shape) == tuple(want["pair"][0].shape) == (4, 3)
    assert_close(got["pair"][1].numpy(), want["pair"][1].numpy(), np.float64, "tuple output")
    same = ds.func.vmap(lambda u: (u * 2, ds.ones(2)), out_dims=(0, None))(a)
    assert tuple(same[1].shape) == (2,)
    assert tuple(ds.vmap(lambda u: u * 2)(ds.ones(0, 3)).shape) == (0, 3)  # an empty batch, as torch


def test_vmap_is_differentiable_and_composes_with_jacrev(assert_close):
    x, tx = _pair(_rand(25, (4, 3)))
    x.requires_grad_(True)
    tx.requires_grad_(True)

    def f(lib):
        return lambda v: lib.tanh(v) * v.sum()

    (F.vmap(f(torch))(tx) ** 2).sum().backward()
    (ds.vmap(f(ds))(x) ** 2).sum().backward()
    assert_close(x.grad.numpy(), tx.grad.numpy(), np.float64, "backward through vmap")
    got = ds.func.vmap(ds.func.jacrev(f(ds)))(x.detach())
    want = F.vmap(F.jacrev(f(torch)))(tx.detach())
    assert_close(got.numpy(), want.numpy(), np.float64, "vmap(jacrev)")


def test_vmap_errors_match_torch():
    a, b = ds.ones(3, 2), ds.ones(4, 2)
    with pytest.raises(ValueError, match="same size in the mapped dimension, got sizes \\[3, 4\\]"):
        ds.vmap(lambda u, v: u + v)(a, b)
    with pytest.raises(ValueError, match="in_dims is not compatible with the structure of `inputs`"):
        ds.vmap(lambda u, v: u + v, in_dims=(0,))(a, a)
    with pytest.raises(ValueError, match="expected `in_dims` to be int or a"):
        ds.vmap(lambda u, v: u + v, in_dims=[0, 0])(a, a)
    with pytest.raises(ValueError, match="expected in_dim to satisfy -2 <= in_dim < 2"):
        ds.vmap(lambda u: u, in_dims=2)(a)
    with pytest.raises(ValueError, match="non-Tensor arguments"):
        ds.vmap(lambda u, s: u * s)(a, 2.0)
    with pytest.raises(ValueError, match="at least one Tensor to vmap over"):
        ds.vmap(lambda u: u, in_dims=(None,))(a)
    with pytest.raises(ValueError, match="got no inputs"):
        ds.vmap(lambda: ds.ones(1))()
    with pytest.raises(ValueError, match="must only return Tensors"):
        ds.vmap(lambda u: 1.0)(a)
    with pytest.raises(ValueError, match="out_dims is not compatible"):
        ds.vmap(lambda u: (u, u), out_dims=(0,))(a)
    with pytest.raises(ValueError, match="can not return a BatchedTensor when out_dim is None"):
        ds.vmap(lambda u: u, out_dims=None)(ds.arange(3.0))
    with pytest.raises(IndexError, match="Dimension out of range"):
        ds.vmap(lambda u: u, out_dims=2)(a)
    with pytest.raises(ValueError, match="randomness"):
        ds.vmap(lambda u: u, randomness="sometimes")
    with pytest.raises(ValueError, match="chunk_size"):
        ds.vmap(lambda u: u, chunk_size=0)


def test_vmap_randomness_modes():
    a = ds.zeros(3, 2)
    with pytest.raises(RuntimeError, match="randomness error mode"):
        ds.vmap(lambda u: u + ds.randn(2))(a)
    same = ds.vmap(lambda u: u + ds.randn(2), randomness="same")(a).numpy()
    assert (same == same[0]).all()
    different = ds.vmap(lambda u: u + ds.randn(2), randomness="different")(a).numpy()
    assert not (different == different[0]).all()
    ds.vmap(lambda u: u * 2)(a)  # no random op: no error


def test_grad_and_value_vjp_and_jvp_match_torch(assert_close):
    x, tx = _pair(_rand(30, (4,)))
    v, tv = _pair(_rand(31, (3,)))
    t, tt = _pair(_rand(32, (4,)))

    def f(lib):
        return lambda u: lib.sin(u[:3]) * u[1:].exp()

    g, (val, aux) = ds.func.grad_and_value(lambda u: (f(ds)(u).sum(), u * 2), has_aux=True)(x)
    tg, (tval, taux) = F.grad_and_value(lambda u: (f(torch)(u).sum(), u * 2), has_aux=True)(tx)
    assert_close(g.numpy(), tg.numpy(), np.float64, "grad_and_value grad")
    assert_close(val.numpy(), tval.numpy(), np.float64, "grad_and_value value")
    out, vjp_fn = ds.func.vjp(f(ds), x)
    tout, tvjp_fn = F.vjp(f(torch), tx)
    (got,), (want,) = vjp_fn(v), tvjp_fn(tv)
    assert_close(out.numpy(), tout.numpy(), np.float64, "vjp output")
    assert_close(got.numpy(), want.numpy(), np.float64, "vjp")
    out, jv = ds.func.jvp(f(ds), (x,), (t,))
    tout, tjv = F.jvp(f(torch), (tx,), (tt,))
    assert_close(jv.numpy(), tjv.numpy(), np.float64, "jvp")
    with pytest.raises(TypeError, match="primals to be a tuple"):
        ds.func.jvp(f(ds), x, t)
    with pytest.raises(ValueError, match="shape"):
        ds.func.jvp(f(ds), (x,), (v,))
    _, vjp_aux, aux = ds.func.vjp(lambda u: (u * 3, "aux"), x, has_aux=True)
    assert aux == "aux" and isinstance(vjp_aux(x), tuple)


def test_jacrev_jacfwd_hessian_match_torch_and_compose(assert_close):
    x, tx = _pair(_rand(40, (3,)))
    y, ty = _pair(_rand(41, (2,)))

    def f(lib):
        return lambda u, w: lib.tanh(u) * (w**2).sum() + u.sin() * w[0]

    for ours_t, theirs_t in ((ds.func.jacrev, F.jacrev), (ds.func.jacfwd, F.jacfwd)):
        got = ours_t(f(ds), argnums=(0, 1))(x, y)
        want = theirs_t(f(torch), argnums=(0, 1))(tx, ty)
        for a, b in zip(got, want):
            assert tuple(a.shape) == tuple(b.shape)
            assert_close(a.numpy(), b.numpy(), np.float64, ours_t.__name__)

    def scalar(lib):
        return lambda u: (lib.sin(u) ** 2).sum() * (u**3).sum()

    assert_close(ds.func.hessian(scalar(ds))(x).numpy(), F.hessian(scalar(torch))(tx).numpy(), np.float64, "hessian")
    got = ds.func.jacrev(ds.func.jacrev(lambda u: f(ds)(u, y)))(x)
    want = F.jacrev(F.jacrev(lambda u: f(torch)(u, ty)))(tx)
    assert_close(got.numpy(), want.numpy(), np.float64, "jacrev(jacrev)")
    got = ds.func.jacrev(lambda u: {"a": u * 2, "b": u.sum()})(x)
    assert tuple(got["a"].shape) == (3, 3) and tuple(got["b"].shape) == (3,)
    jac, aux = ds.func.jacrev(lambda u: (u.exp(), u), has_aux=True)(x)
    assert_close(jac.numpy(), np.diag(np.exp(x.numpy())), np.float64, "has_aux")


def test_nested_transforms_do_not_confuse_the_levels():
    x = ds.tensor(3.0, dtype="float64")
    # d/dx [d/dy (x * y) at y = x] = d/dx x = 1, not 2
    assert ds.func.grad(lambda u: ds.func.grad(lambda w: u * w)(u))(x).item() == 1.0
    assert F.grad(lambda u: F.grad(lambda w: u * w)(u))(torch.tensor(3.0)).item() == 1.0


def test_neural_tangent_kernel_both_ways_match_torch(assert_close):
    ours, theirs = _mlps()
    (x1, tx1), (x2, tx2) = _pair(_rand(50, (3, 3))), _pair(_rand(51, (2, 3)))

    def ntk(lib, model, x1, x2):
        fn = lib.func
        params = {k: v.detach() for k, v in model.named_parameters()}

        def fnet_single(p, x):
            return fn.functional_call(model, p, (x.unsqueeze(0),)).squeeze(0)

        jac1 = [j.flatten(2) for j in fn.vmap(fn.jacrev(fnet_single), (None, 0))(params, x1).values()]
        jac2 = [j.flatten(2) for j in fn.vmap(fn.jacrev(fnet_single), (None, 0))(params, x2).values()]
        by_jacobians = lib.stack([lib.einsum("Naf,Mbf->NMab", a, b) for a, b in zip(jac1, jac2)]).sum(0)

        def get_ntk(a, b):
            output, vjp_fn = fn.vjp(lambda p: fnet_single(p, a), params)

            def ntk_slice(vec):
                return fn.jvp(lambda p: fnet_single(p, b), (params,), vjp_fn(vec))[1]

            return fn.vmap(ntk_slice)(lib.eye(output.numel(), dtype=output.dtype))

        by_products = fn.vmap(fn.vmap(get_ntk, (None, 0)), (0, None))(x1, x2)
        return by_jacobians, by_products

    for got, want in zip(ntk(ds, ours, x1, x2), ntk(torch, theirs, tx1, tx2)):
        assert tuple(got.shape) == tuple(want.shape) == (3, 2, 2, 2)
        assert_close(got.detach().numpy(), want.detach().numpy(), np.float64, "NTK")


def test_jvp_through_a_custom_function_uses_its_jvp_as_torch_func_does() -> None:
    """A backward written in NumPy cannot be differentiated a second time, so the double-vjp alone
    would give zero tangents: the Function's own jvp gives them, as in torch.func.jvp."""

    class NumpyExp(ds.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            r = ds.from_numpy(np.exp(x.detach().numpy()))
            ctx.r = r
            return r

        @staticmethod
        def jvp(ctx, g):
            return g * ctx.r

        @staticmethod
        def backward(ctx, g):
            return ds.from_numpy(g.detach().numpy() * ctx.r.numpy())

    x = ds.tensor([0.0, 1.0, 2.0], dtype=ds.float64)
    _, tangent = ds.func.jvp(lambda a: NumpyExp.apply(a) * 2, (x,), (ds.ones(3, dtype=ds.float64),))
    np.testing.assert_allclose(tangent.numpy(), 2 * np.exp([0.0, 1.0, 2.0]), rtol=1e-12)

    class WithoutJvp(NumpyExp):
        jvp = None

    with pytest.raises(NotImplementedError, match="must implement the jvp function"):
        ds.func.jvp(lambda a: WithoutJvp.apply(a), (x,), (ds.ones(3, dtype=ds.float64),))


def test_jacobians_of_zero_dim_tensors_are_zero_dim_like_torch_func():
    def cases(lib, tf, x, v):
        return [
            tf.jacrev(lib.sin)(x),
            tf.jacfwd(lib.sin)(x),
            tf.hessian(lambda s: lib.sin(s) * s)(x),
            tf.jacrev(tf.jacrev(lambda s: lib.sin(s) * s))(x),
            tf.jacrev(lambda s: s * v)(x),
            tf.hessian(lambda w, s: lib.sin(w[0] * s) * lib.exp(w[1] * s), argnums=1)(v, x),
            *tf.jacrev(lambda a, b: a * b**2, argnums=(0, 1))(x, x),
            tf.vmap(tf.jacrev(lib.sin))(v),
            tf.vmap(tf.hessian(lambda s: lib.sin(s) * s))(v),
        ]

    ours = cases(ds, ds.func, ds.tensor(0.3, dtype=ds.float64), ds.tensor([0.5, -1.0], dtype=ds.float64))
    theirs = cases(
        torch, torch.func, torch.tensor(0.3, dtype=torch.float64), torch.tensor([0.5, -1.0], dtype=torch.float64)
    )
    for i, (a, b) in enumerate(zip(ours, theirs)):
        assert tuple(a.shape) == tuple(b.shape), i
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-12, atol=1e-14, err_msg=str(i))


def test_functional_call_sets_names_the_module_lacks_for_the_call_unless_strict():
    seen = []

    class Probe(ds.nn.Linear):
        def forward(self, x):
            seen.append(self.__dict__.get("foo"))
            return super().forward(x)

    m = Probe(2, 2)
    with pytest.warns(UserWarning, match="replace nothing"):
        out = ds.func.functional_call(m, {"weight": ds.ones(2, 2), "foo": ds.ones(1)}, (ds.ones(1, 2),))
    assert seen[0] is not None and not hasattr(m, "foo")  # as torch: there during the call only
    assert out.shape == (1, 2)
    with pytest.raises(ds.errors.ArgumentError, match=r"unexpected key\(s\) \['foo'\]; missing key\(s\) \['bias'\]"):
        ds.func.functional_call(m, {"weight": ds.ones(2, 2), "foo": ds.ones(1)}, (ds.ones(1, 2),), strict=True)
    with pytest.raises(ds.errors.ArgumentError, match="no submodule"):
        ds.func.functional_call(m, {"sub.foo": ds.ones(1)}, (ds.ones(1, 2),))
