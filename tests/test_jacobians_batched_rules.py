"""The batched gradient rules (autograd._batched_rules): a batch of cotangents carried through one walk
gives, slice for slice, what one backward pass per cotangent gives (float64), for every op that has
a batched form, broadcasting and reduced dims included; and the Jacobians and Hessians built on them
(autograd.functional.jacobian(vectorize=True), func.jacrev/jacfwd/hessian) equal torch.func's and the
per-row path's, on fixed and on random compositions of those ops."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import downslope as ds
from downslope import autograd
from downslope.devices import to_host

torch = pytest.importorskip("torch")

_RNG = np.random.default_rng(0)
# a (3, 4) and b (4,): a batch of 4 cotangents matches a's last dim, so a rule that took the batch dim
# for a dim of the tensor would give wrong numbers of the right shape, not an error
A = _RNG.standard_normal((3, 4))
B = _RNG.standard_normal(4)
BATCH = 4


def _vn(lib: Any, x: Any, ord: Any, dim: Any, keepdim: bool = False) -> Any:
    return lib.linalg.vector_norm(x, ord, dim=dim, keepdim=keepdim)


# each op with a batched rule, written once for both libraries (f(lib, a, b))
PROGRAMS: dict[str, Callable[[Any, Any, Any], Any]] = {
    "exp log sqrt rsqrt expm1 log1p": lambda lib, a, b: (
        a.exp() + (a * a + 1).log() + (a * a + 1).sqrt() + (a * a + 1).rsqrt() + a.expm1() + (a * a).log1p()
    ),
    "sin cos tanh sigmoid abs clone": lambda lib, a, b: (
        a.sin() * b.cos() + (a * b).tanh() - a.sigmoid() * a.abs() + a.clone()
    ),
    "div, both sides broadcast": lambda lib, a, b: a / (b * b + 1) + b / (a * a + 2),
    "add and sub with alpha": lambda lib, a, b: lib.add(a, b, alpha=2.5) * lib.sub(b, a, alpha=-3) * a,
    "pow by numbers": lambda lib, a, b: (
        a**2
        + a**3
        - (a * a + 1) ** 0.5
        + (a * a + 1) ** -0.5
        + (a * a + 1) ** -1
        + (a * a + 1) ** -2
        + (a * a + 1) ** 2.5
    ),
    "pow by a broadcast tensor, and a zero exponent": lambda lib, a, b: (
        (a * a + 1) ** b + b.abs() ** (a * 0) + (b * b) ** a[0]
    ),
    "maximum minimum with ties": lambda lib, a, b: lib.maximum(a, b) - lib.minimum(a[0], b) + lib.maximum(a, a * 1.0),
    "where, broadcast condition": lambda lib, a, b: lib.where(b > 0, a * 2, b.exp()) + lib.where(a > 0, a, 0.5),
    "astype there and back": lambda lib, a, b: (a * b).to(lib.float32).to(lib.float64) * a,
    "sum over dims": lambda lib, a, b: a.sum(0) * b + a.sum(1, keepdim=True) * a + a.sum() + (a * a).sum((0, 1)),
    "mean over dims": lambda lib, a, b: a.mean(0) * b + a.mean(1, keepdim=True) * a + a.mean(),
    "softmax over each dim": lambda lib, a, b: (
        lib.nn.functional.softmax(a, 0) * b
        + lib.nn.functional.softmax(a * b, -1)
        + lib.nn.functional.softmax(a.reshape(3, 2, 2), 1).reshape(3, 4)
    ),
    "log_softmax over each dim": lambda lib, a, b: (
        lib.nn.functional.log_softmax(a, 0) * b + lib.nn.functional.log_softmax(a * b, 1)
    ),
    "vector_norm p=2 1 3 over dims": lambda lib, a, b: (
        _vn(lib, a, 2, 1) * _vn(lib, a, 1, 0).sum() + _vn(lib, a, 3, (0, 1)) + _vn(lib, a - b, 2, 0, True).sum()
    ),
    "vector_norm p=inf -inf 0.5 0": lambda lib, a, b: (
        _vn(lib, a, float("inf"), 0)
        + _vn(lib, a, -float("inf"), 0)
        + _vn(lib, a, 0.5, 0, True).reshape(4)
        + _vn(lib, a, 0, 0)
    ),
    "logsumexp over dims": lambda lib, a, b: lib.logsumexp(a, 1) + lib.logsumexp(a * b, 0, keepdim=True).sum(),
    "permute transpose mT": lambda lib, a, b: (
        a.reshape(3, 2, 2).permute(2, 0, 1).reshape(-1)[:4] * b + (a.T @ a).sum(0) + a.mT.sum(1)
    ),
    "stack along each dim": lambda lib, a, b: lib.stack([a[0], b], 0).sum(0) + lib.stack([a[1] * b, b], 1).sum(1),
    "cat along each dim": lambda lib, a, b: (
        lib.cat([a, b[None]], 0).sum(0) + lib.cat([a[:, :2], a[:, 2:] * b[:2]], 1)[0]
    ),
}


def _leaves() -> tuple[Any, Any]:
    return (
        ds.tensor(A, dtype=ds.float64, requires_grad=True),
        ds.tensor(B, dtype=ds.float64, requires_grad=True),
    )


def _one_at_a_time(root: Any, cotangents: np.ndarray, inputs: list[Any]) -> list[np.ndarray]:
    rows = [
        autograd.grad(root, inputs, ds.tensor(c, dtype=root.dtype), retain_graph=True, allow_unused=True)
        for c in cotangents
    ]
    return [
        np.stack([np.zeros(tuple(t.shape)) if r[i] is None else r[i].numpy() for r in rows])
        for i, t in enumerate(inputs)
    ]


def _batched_rules_cover(root: Any, inputs: list[Any]) -> list[str]:
    """The rules on the way from ``inputs`` to ``root`` that have no batched form (by name)."""
    rules = autograd._batched_rules()
    order = autograd._topological_order([root], autograd._capture_floor(inputs))
    return [n._vjp.__qualname__ for n in order if n._vjp is not None and n._vjp not in rules]


@pytest.mark.parametrize("name", list(PROGRAMS))
def test_batched_walk_equals_one_pass_per_cotangent(name: str) -> None:
    a, b = _leaves()
    a1, b1 = a * 1.0, b * 1.0  # non-leaf inputs, as the transforms' stand-ins
    out = PROGRAMS[name](ds, a1, b1)
    assert _batched_rules_cover(out, [a1, b1]) == []
    cotangents = _RNG.standard_normal((BATCH, *out.shape))
    found = autograd.batched_cotangent_grads(out, ds.tensor(cotangents, dtype=ds.float64).array, [a1, b1])
    assert found is not None, f"{name}: the walk was not batched"
    for f, e in zip(found, _one_at_a_time(out, cotangents, [a1, b1])):
        np.testing.assert_allclose(to_host(f), e, rtol=1e-12, atol=1e-13)


def _torch_pair() -> tuple[Any, Any]:
    return torch.tensor(A), torch.tensor(B)


def _close(ours: Any, theirs: Any, rtol: float = 1e-10) -> None:
    if isinstance(theirs, (tuple, list)):
        assert isinstance(ours, (tuple, list)) and len(ours) == len(theirs)
        for o, t in zip(ours, theirs):
            _close(o, t, rtol)
        return
    assert tuple(ours.shape) == tuple(theirs.shape)
    np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=rtol, atol=1e-11)


@pytest.mark.parametrize("name", list(PROGRAMS))
def test_jacobians_equal_torch_and_the_per_row_path(name: str) -> None:
    fn = PROGRAMS[name]
    a, b = (t.detach() for t in _leaves())
    ta, tb = _torch_pair()
    theirs = torch.func.jacrev(lambda x, y: fn(torch, x, y), argnums=(0, 1))(ta, tb)
    _close(ds.func.jacrev(lambda x, y: fn(ds, x, y), argnums=(0, 1))(a, b), theirs)
    _close(ds.func.jacfwd(lambda x, y: fn(ds, x, y), argnums=(0, 1))(a, b), theirs)
    vectorized = ds.autograd.functional.jacobian(lambda x, y: fn(ds, x, y), (a, b), vectorize=True)
    per_row = ds.autograd.functional.jacobian(lambda x, y: fn(ds, x, y), (a, b))
    _close(vectorized, theirs)
    _close(vectorized, per_row, rtol=1e-12)


# Hessians through the smooth programs (the double backward's graph is made of the same ops)
SMOOTH = [n for n in PROGRAMS if "maximum" not in n and "inf" not in n and "astype" not in n]


@pytest.mark.parametrize("name", SMOOTH)
def test_hessians_equal_torch_and_the_per_row_path(name: str) -> None:
    fn = PROGRAMS[name]
    a, b = (t.detach() for t in _leaves())
    ta, tb = _torch_pair()
    theirs = torch.func.hessian(lambda x, y: fn(torch, x, y).sum(), argnums=(0, 1))(ta, tb)
    _close(ds.func.hessian(lambda x, y: fn(ds, x, y).sum(), argnums=(0, 1))(a, b), theirs, rtol=1e-9)
    vectorized = ds.autograd.functional.hessian(lambda x, y: fn(ds, x, y).sum(), (a, b), vectorize=True)
    per_row = ds.autograd.functional.hessian(lambda x, y: fn(ds, x, y).sum(), (a, b))
    _close(vectorized, theirs, rtol=1e-9)
    _close(vectorized, per_row, rtol=1e-12)


# ---------------------------------------------------------------- random compositions of the ops
_UNARY: list[Callable[[Any, Any], Any]] = [
    lambda lib, x: x.tanh(),
    lambda lib, x: x.sin(),
    lambda lib, x: x.cos(),
    lambda lib, x: (x * 0.3).exp(),
    lambda lib, x: x.sigmoid(),
    lambda lib, x: (x * x + 1).log(),
    lambda lib, x: (x * x + 0.5).sqrt(),
    lambda lib, x: x**2,
    lambda lib, x: x**3 * 0.1,
    lambda lib, x: lib.nn.functional.softmax(x, -1),
    lambda lib, x: lib.nn.functional.log_softmax(x, 0),
    lambda lib, x: x - x.mean(-1, keepdim=True),
    lambda lib, x: x * x.sum(0),
    lambda lib, x: x / (lib.linalg.vector_norm(x, dim=-1, keepdim=True) + 1),
    lambda lib, x: x.T.reshape(x.shape) * 0.5 + x,
]
_BINARY: list[Callable[[Any, Any, Any], Any]] = [
    lambda lib, x, w: x + w,
    lambda lib, x, w: x * w,
    lambda lib, x, w: x - w[0],
    lambda lib, x, w: x / (w * w + 1),
    lambda lib, x, w: x @ lib.tanh(x.T @ x * w[None, :4] * 0.1) if x.shape[-1] == 4 else x * w,
]


def _random_function(seed: int) -> Callable[[Any, Any, Any], Any]:
    rng = np.random.default_rng(seed)
    steps = [
        ("u", int(rng.integers(len(_UNARY)))) if rng.random() < 0.6 else ("b", int(rng.integers(len(_BINARY))))
        for _ in range(int(rng.integers(3, 7)))
    ]

    def f(lib: Any, a: Any, b: Any) -> Any:
        x = a
        for kind, k in steps:
            x = _UNARY[k](lib, x) if kind == "u" else _BINARY[k](lib, x, b)
        return x.sum(0)

    return f


@pytest.mark.parametrize("seed", range(12))
def test_random_functions_jacobian_and_hessian(seed: int) -> None:
    fn = _random_function(seed)
    a, b = (t.detach() for t in _leaves())
    ta, tb = _torch_pair()
    jac = ds.autograd.functional.jacobian(lambda x, y: fn(ds, x, y), (a, b), vectorize=True)
    _close(jac, torch.func.jacrev(lambda x, y: fn(torch, x, y), argnums=(0, 1))(ta, tb))
    _close(jac, ds.autograd.functional.jacobian(lambda x, y: fn(ds, x, y), (a, b)), rtol=1e-12)
    _close(ds.func.jacfwd(lambda x, y: fn(ds, x, y), argnums=(0, 1))(a, b), jac, rtol=1e-12)
    hess = ds.func.hessian(lambda x: fn(ds, x, b).sum())(a)
    _close(hess, torch.func.hessian(lambda x: fn(torch, x, tb).sum())(ta), rtol=1e-9)
    _close(hess, ds.autograd.functional.hessian(lambda x: fn(ds, x, b).sum(), a), rtol=1e-12)


def test_a_float32_jacobian_takes_the_batched_walk_and_matches_torch() -> None:
    """The default dtype: one walk, torch's numbers to float32's rounding."""
    fn = PROGRAMS["softmax over each dim"]
    a, b = ds.tensor(A, dtype=ds.float32), ds.tensor(B, dtype=ds.float32)
    a1, b1 = a.requires_grad_(True) * 1.0, b.requires_grad_(True) * 1.0
    out = fn(ds, a1, b1)
    eye = np.eye(out.numel(), dtype=np.float32).reshape((out.numel(), *out.shape))
    assert autograd.batched_cotangent_grads(out, eye, [a1, b1]) is not None
    ours = ds.autograd.functional.jacobian(lambda x, y: fn(ds, x, y), (a.detach(), b.detach()), vectorize=True)
    theirs = torch.autograd.functional.jacobian(
        lambda x, y: fn(torch, x, y), (torch.tensor(A, dtype=torch.float32), torch.tensor(B, dtype=torch.float32))
    )
    for o, t in zip(ours, theirs):
        assert o.dtype == ds.float32
        np.testing.assert_allclose(o.numpy(), t.numpy(), rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------- the recorded walk (create_graph)
RECORDED: dict[str, Callable[[Any, Any, Any], Any]] = {
    **{
        name: PROGRAMS[name]
        for name in (
            "exp log sqrt rsqrt expm1 log1p",
            "div, both sides broadcast",
            "pow by numbers",
            "where, broadcast condition",
            "sum over dims",
            "mean over dims",
            "softmax over each dim",
            "log_softmax over each dim",
        )
    },
    "linear tanh sigmoid": lambda lib, a, b: lib.nn.functional.linear(a, a.T @ a * 0.1, b).tanh().sigmoid() * b,
    "matmul permute stack cat": lambda lib, a, b: (
        (a.T @ a @ b) * b + lib.stack([a, a * b], 1).sum(1).sum(0) + lib.cat([a, a.sin()], 0).sum(0)
    ),
}


@pytest.mark.parametrize("name", list(RECORDED))
def test_recorded_walk_equals_per_row_create_graph_passes(name: str) -> None:
    """Values and a second derivative through them: the same as one create_graph pass per cotangent."""
    a, b = _leaves()
    out = RECORDED[name](ds, a, b)
    cotangents = _RNG.standard_normal((BATCH, *out.shape))
    weights = [_RNG.standard_normal((BATCH, *t.shape)) for t in (a, b)]
    found = autograd.batched_cotangent_grads(out, ds.tensor(cotangents, dtype=ds.float64).array, [a, b], True)
    assert found is not None, f"{name}: the walk was not batched"
    rows = [
        autograd.grad(
            out, [a, b], ds.tensor(c, dtype=ds.float64), retain_graph=True, create_graph=True, allow_unused=True
        )
        for c in cotangents
    ]
    expected = [ds.stack([ds.zeros_like(t) if r[i] is None else r[i] for r in rows]) for i, t in enumerate((a, b))]
    for f, e in zip(found, expected):
        assert f.requires_grad == e.requires_grad
        np.testing.assert_allclose(f.detach().numpy(), e.detach().numpy(), rtol=1e-12, atol=1e-13)
    assert found[0].requires_grad or name.startswith("where")  # (where's gradient is constant in a and b)
    second = autograd.grad(
        sum((f * ds.tensor(w, dtype=ds.float64)).sum() for f, w in zip(found, weights)),
        [a, b],
        retain_graph=True,
        allow_unused=True,
    )
    second_rows = autograd.grad(
        sum((e * ds.tensor(w, dtype=ds.float64)).sum() for e, w in zip(expected, weights)), [a, b], allow_unused=True
    )
    for s, r in zip(second, second_rows):
        if r is None:
            assert s is None or not s.numpy().any()
        else:
            np.testing.assert_allclose(s.numpy(), r.numpy(), rtol=1e-11, atol=1e-12)


def _pinn(lib: Any) -> tuple[Any, Callable[[Any], Any]]:
    gen = np.random.default_rng(3)
    layers = [lib.nn.Linear(2, 16), lib.nn.Tanh(), lib.nn.Linear(16, 16), lib.nn.Tanh(), lib.nn.Linear(16, 1)]
    for layer in layers[::2]:
        layer.weight.data.copy_(lib.tensor(gen.standard_normal(tuple(layer.weight.shape)) * 0.5))
        layer.bias.data.copy_(lib.tensor(gen.standard_normal(tuple(layer.bias.shape)) * 0.5))
    model = lib.nn.Sequential(*layers).double()
    return model, lambda x: model(x.reshape(10, 2)).reshape(10)


def test_pinn_derivatives_stay_differentiable_in_the_parameters_as_torch() -> None:
    """A PINN's loss on u's derivatives in x (parameters requiring grad: the Jacobian is recorded), its
    parameter gradients and its Hessian in x against torch's; the Jacobian's rows in one walk."""
    x = _RNG.standard_normal(20)
    results = {}
    for lib in (ds, torch):
        model, u = _pinn(lib)
        xs = lib.tensor(x, dtype=lib.float64)
        before = autograd._pass_number[0]
        du = lib.func.jacrev(u)(xs)
        if lib is ds:
            assert autograd._pass_number[0] == before  # no per-row backward pass
        assert du.requires_grad
        loss = (du**2).sum() + lib.func.jacfwd(u)(xs).sum() ** 2
        loss.backward()
        hess = lib.func.hessian(lambda v, u=u: u(v).sum())(xs)
        results[lib.__name__] = [du, hess] + [p.grad for p in model.parameters()]
    for ours, theirs in zip(results["downslope"], results["torch"]):
        if theirs is None:  # the last bias: no derivative in x depends on it (None in both)
            assert ours is None
            continue
        np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", ["linear tanh sigmoid", "softmax over each dim", "div, both sides broadcast"])
def test_functional_jacobian_with_create_graph_is_recorded_and_equals_torch(name: str) -> None:
    """autograd.functional.jacobian(create_graph=True, vectorize=True): one recorded walk whose result
    is differentiable again, as torch's (and as the per-row path's)."""
    fn = RECORDED[name]
    out_shape = tuple(fn(ds, ds.tensor(A), ds.tensor(B)).shape)
    weights = [_RNG.standard_normal((*out_shape, *s)) for s in (A.shape, B.shape)]
    seconds = []
    for lib, vectorize in ((ds, True), (ds, False), (torch, True)):
        a, b = (
            lib.tensor(A, dtype=lib.float64, requires_grad=True),
            lib.tensor(B, dtype=lib.float64, requires_grad=True),
        )
        before = autograd._pass_number[0]
        jac = lib.autograd.functional.jacobian(
            lambda x, y, lib=lib: fn(lib, x, y), (a, b), create_graph=True, vectorize=vectorize
        )
        if lib is ds and vectorize:
            assert autograd._pass_number[0] == before  # no per-row backward pass
        total = sum((j * lib.tensor(w, dtype=lib.float64)).sum() for j, w in zip(jac, weights))
        seconds.append([j.detach().numpy() for j in jac] + [g.numpy() for g in lib.autograd.grad(total, [a, b])])
    for ours, per_row, theirs in zip(*seconds):
        np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(ours, per_row, rtol=1e-12, atol=1e-13)


def test_tall_jacfwd_through_parameters_requiring_grad_is_recorded_and_equals_torch() -> None:
    """More outputs than inputs: the columns in one recorded walk (after the one create_graph pass of
    J^T u), still differentiable in the weights, as torch's."""
    w_np = _RNG.standard_normal((30, 4))
    x_np = _RNG.standard_normal(4)
    results = []
    for lib in (ds, torch):
        w = lib.tensor(w_np, dtype=lib.float64, requires_grad=True)
        before = autograd._pass_number[0]
        jac = lib.func.jacfwd(lambda x, w=w, lib=lib: lib.tanh(w @ x).sigmoid())(lib.tensor(x_np, dtype=lib.float64))
        if lib is ds:
            assert autograd._pass_number[0] == before + 1  # J^T u's pass, then no pass per column
        assert jac.requires_grad and tuple(jac.shape) == (30, 4)
        ((jac**2).sum()).backward()
        results.append((jac.detach().numpy(), w.grad.numpy()))
    for ours, theirs in zip(*results):
        np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-12)
