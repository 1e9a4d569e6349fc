"""Function transforms stay differentiable in what lies outside them, as torch.func's do: in an
enclosing transform's argument that the function takes or closes over (``grad`` over ``w`` of a
``grad`` over ``x``), and in tensors requiring grad that the function closes over (a module's
parameters inside a PINN's ``vmap(hessian(u))(x)``, trained with ``loss.backward()``). Every value
is compared with PyTorch in float64."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")

LIBS = ((ds, ds.func), (torch, torch.func))


def _f(lib: Any, w: Any, x: Any) -> Any:
    return lib.sin(w[0] * x) * lib.exp(w[1] * x)


def _both(build: Any) -> tuple[np.ndarray, np.ndarray]:
    """``build(lib, tf)`` run with downslope and with torch, as float64 arrays."""
    ours, theirs = (build(lib, tf) for lib, tf in LIBS)
    return _numpy(ours), _numpy(theirs)


def _numpy(value: Any) -> np.ndarray:
    if isinstance(value, (list, tuple)):
        return np.concatenate([_numpy(v).ravel() for v in value])
    return np.asarray(value.detach().numpy(), dtype=np.float64)


def _w(lib: Any) -> Any:
    return lib.tensor([0.5, -1.0], dtype=lib.float64)


def _xi(lib: Any) -> Any:
    return lib.tensor(0.3, dtype=lib.float64)


def _xs(lib: Any) -> Any:
    return lib.tensor([0.3, 0.7], dtype=lib.float64)


CROSS_LEVEL = {
    "grad of grad wrt x (argnums)": lambda lib, tf: tf.grad(
        lambda w: tf.grad(lambda a, b: _f(lib, a, b), argnums=1)(w, _xi(lib))
    )(_w(lib)),
    "grad of grad wrt x (closure)": lambda lib, tf: tf.grad(lambda w: tf.grad(lambda s: _f(lib, w, s))(_xi(lib)))(
        _w(lib)
    ),
    "grad of u_xx (argnums)": lambda lib, tf: tf.grad(
        lambda w: tf.grad(tf.grad(lambda a, b: _f(lib, a, b), argnums=1), argnums=1)(w, _xi(lib))
    )(_w(lib)),
    "grad of u_xx (closure)": lambda lib, tf: tf.grad(lambda w: tf.grad(tf.grad(lambda s: _f(lib, w, s)))(_xi(lib)))(
        _w(lib)
    ),
    "grad of vmap(hessian) closure": lambda lib, tf: tf.grad(
        lambda w: tf.vmap(lambda s: tf.hessian(lambda a, b: _f(lib, a, b), argnums=1)(w, s))(_xs(lib)).sum()
    )(_w(lib)),
    "grad of vmap(hessian) in_dims": lambda lib, tf: tf.grad(
        lambda w: tf.vmap(tf.hessian(lambda a, b: _f(lib, a, b), argnums=1), in_dims=(None, 0))(w, _xs(lib)).sum()
    )(_w(lib)),
    "grad of vmap(grad(grad))": lambda lib, tf: tf.grad(
        lambda w: tf.vmap(lambda s: tf.grad(tf.grad(lambda a, b: _f(lib, a, b), argnums=1), argnums=1)(w, s))(
            _xs(lib)
        ).sum()
    )(_w(lib)),
    "jacrev of jacfwd wrt x": lambda lib, tf: tf.jacrev(lambda w: tf.jacfwd(lambda s: _f(lib, w, s))(_xs(lib)))(
        _w(lib)
    ),
    "hessian in w of grad in x": lambda lib, tf: tf.hessian(lambda w: tf.grad(lambda s: _f(lib, w, s))(_xi(lib)))(
        _w(lib)
    ),
    "grad of jvp in x": lambda lib, tf: tf.grad(
        lambda w: tf.jvp(lambda s: _f(lib, w, s), (_xi(lib),), (lib.tensor(1.0, dtype=lib.float64),))[1]
    )(_w(lib)),
    "grad of vjp in x": lambda lib, tf: tf.grad(
        lambda w: tf.vjp(lambda s: _f(lib, w, s), _xi(lib))[1](lib.tensor(1.0, dtype=lib.float64))[0]
    )(_w(lib)),
}


@pytest.mark.parametrize("name", sorted(CROSS_LEVEL))
def test_outer_transform_sees_through_an_inner_one_wrt_another_argument(name, assert_close):
    ours, theirs = _both(CROSS_LEVEL[name])
    assert np.abs(theirs).max() > 1e-3  # not a vacuous all-zero comparison
    assert_close(ours, theirs, np.float64, name)


def test_inner_result_is_detached_at_top_level_like_torch():
    # only the enclosing transform's leaves in the graph: nothing outside to stay connected to
    g = ds.func.grad(lambda w: ds.func.grad(lambda s: _f(ds, w, s))(_xi(ds)))(_w(ds))
    assert not g.requires_grad
    assert not ds.func.hessian(lambda s: _f(ds, _w(ds), s))(_xi(ds)).requires_grad


def test_perturbations_of_two_levels_are_not_confused():
    # d/dx [x * d/dy (x * y)] = d/dx x^2 = 2x
    for lib, tf in LIBS:
        x0 = lib.tensor(1.5, dtype=lib.float64)
        c = lib.tensor(4.0, dtype=lib.float64)
        assert float(tf.grad(lambda x: x * tf.grad(lambda y: x * y)(c))(x0)) == pytest.approx(3.0)  # noqa: B023


CAPTURED = {
    "grad": lambda tf, f, x: tf.grad(f)(x),
    "grad_and_value value": lambda tf, f, x: tf.grad_and_value(f)(x)[1],
    "jacrev": lambda tf, f, x: tf.jacrev(f)(x),
    "jacfwd": lambda tf, f, x: tf.jacfwd(f)(x),
    "hessian": lambda tf, f, x: tf.hessian(f)(x),
    "jvp": lambda tf, f, x: tf.jvp(f, (x,), (x * 0 + 1,))[1],
    "jvp primal": lambda tf, f, x: tf.jvp(f, (x,), (x * 0 + 1,))[0],
    "vjp": lambda tf, f, x: tf.vjp(f, x)[1](f(x) * 0 + 1)[0],
    "vjp primal": lambda tf, f, x: tf.vjp(f, x)[0],
    "vmap(hessian)": lambda tf, f, x: tf.vmap(tf.hessian(f))(x.reshape(2, 1)),
    "jvp of jvp": lambda tf, f, x: tf.jvp(lambda q: tf.jvp(f, (q,), (x * 0 + 1,))[1], (x,), (x * 0 + 1,))[1],
}


@pytest.mark.parametrize("name", sorted(CAPTURED))
def test_results_stay_differentiable_in_a_captured_tensor(name, assert_close):
    results = []
    for lib, tf in LIBS:
        w = lib.tensor([0.5, -1.0], dtype=lib.float64, requires_grad=True)
        h = w * 1.5  # a captured non-leaf too: its history leads to w
        x = lib.tensor([0.3, 0.7], dtype=lib.float64)

        def f(s, w=w, h=h, lib=lib):
            return (lib.sin(w * s) ** 2 * lib.exp(h[0] * s)).sum()

        out = CAPTURED[name](tf, f, x)
        assert out.requires_grad
        (first,) = lib.autograd.grad(out.sum(), w, create_graph=True)
        (second,) = lib.autograd.grad(first.sum(), w)  # a term of higher order in w
        results.append((out, first, second))
    for a, b, what in zip(results[0], results[1], ("value", "d/dw", "d2/dw2")):
        assert_close(_numpy(a), _numpy(b), np.float64, f"{name} {what}")


def test_no_grad_outside_keeps_results_off_the_graph_like_torch(assert_close):
    for lib, tf in LIBS:
        w = lib.tensor([0.5, -1.0], dtype=lib.float64, requires_grad=True)
        x = lib.tensor([0.3, 0.7], dtype=lib.float64)
        with lib.no_grad():
            g = tf.grad(lambda s: (lib.sin(w * s) ** 2).sum())(x)  # noqa: B023
            h = tf.hessian(lambda s: (lib.sin(w * s) ** 2).sum())(x)  # noqa: B023
        assert not g.requires_grad and not h.requires_grad
    ours = ds.func.grad(lambda s: (ds.sin(s) ** 2).sum())(ds.tensor([0.3, 0.7], dtype="float64"))
    assert not ours.requires_grad


def _pinn(lib: Any) -> Any:
    lib.manual_seed(0)
    net = lib.nn.Sequential(lib.nn.Linear(2, 8), lib.nn.Tanh(), lib.nn.Linear(8, 8), lib.nn.Tanh(), lib.nn.Linear(8, 1))
    rng = np.random.default_rng(5)
    with lib.no_grad():
        for p in net.parameters():
            p.copy_(lib.tensor(rng.normal(0, 0.7, size=tuple(p.shape)), dtype=lib.float32))
    return net.double()


def _points(lib: Any) -> Any:
    return lib.tensor(np.random.default_rng(0).uniform(size=(6, 2)), dtype=lib.float64)


def _laplacian_loss(lib: Any, tf: Any, net: Any, x: Any, boundary: bool) -> Any:
    def u(p):
        return net(p.reshape(1, 2)).squeeze()

    lap = tf.vmap(tf.hessian(u))(x).diagonal(dim1=-2, dim2=-1).sum(-1)
    loss = ((lap + 1.0) ** 2).mean()
    if boundary:
        loss = loss + (net(lib.zeros(1, 2, dtype=lib.float64)) ** 2).sum()
    return loss


@pytest.mark.parametrize("boundary", [True, False], ids=["with boundary term", "pde term only"])
def test_pinn_backward_through_vmap_hessian_reaches_the_parameters(boundary, assert_close):
    grads = []
    for lib, tf in LIBS:
        net = _pinn(lib)
        _laplacian_loss(lib, tf, net, _points(lib), boundary).backward()
        grads.append([p.grad for p in net.parameters()][:-1])  # the last bias is not in the Laplacian
    for i, (a, b) in enumerate(zip(*grads)):
        assert b is not None and np.abs(b.numpy()).max() > 1e-6
        assert_close(a.numpy(), b.numpy(), np.float64, f"parameter {i}")


def test_pinn_trains_a_few_adam_steps_like_torch(assert_close):
    params = []
    for lib, tf in LIBS:
        net = _pinn(lib)
        x = _points(lib)
        opt = lib.optim.Adam(net.parameters(), lr=1e-2)
        for _ in range(4):
            opt.zero_grad()
            _laplacian_loss(lib, tf, net, x, True).backward()
            opt.step()
        params.append([p.detach().numpy() for p in net.parameters()])
    for i, (a, b) in enumerate(zip(*params)):
        assert_close(a, b, np.float64, f"parameter {i} after 4 Adam steps")


def test_functional_pinn_gradient_over_a_parameter_dict(assert_close):
    found = []
    for lib, tf in LIBS:
        net = _pinn(lib)
        params = {k: v.detach() for k, v in net.named_parameters()}
        x = _points(lib)

        def u(p, q, net=net, tf=tf):
            return tf.functional_call(net, p, (q.reshape(1, 2),)).squeeze()

        def loss(p, u=u, x=x, tf=tf, lib=lib):
            ux = tf.vmap(tf.grad(u, argnums=1), in_dims=(None, 0))(p, x)
            lap = tf.vmap(lambda q: lib.trace(tf.hessian(u, argnums=1)(p, q)))(x)
            return ((ux - 1.0) ** 2).mean() + (lap**2).mean()

        found.append(tf.grad(loss)(params))
    for key in found[1]:
        assert_close(found[0][key].numpy(), found[1][key].numpy(), np.float64, key)


def test_vjp_fn_called_later_stays_connected_to_a_captured_tensor(assert_close):
    results = []
    for lib, tf in LIBS:
        w = lib.tensor([0.5, -1.0], dtype=lib.float64, requires_grad=True)
        _, vjp_fn = tf.vjp(lambda s: lib.sin(w * s), lib.tensor([0.3, 0.7], dtype=lib.float64))  # noqa: B023
        (g,) = vjp_fn(lib.tensor([1.0, 2.0], dtype=lib.float64))
        results.append(lib.autograd.grad(g.sum(), w)[0])
    assert_close(results[0].numpy(), results[1].numpy(), np.float64, "d/dw of the vjp")
