"""The backward walk, grad modes and autograd.grad: second derivatives against PyTorch, and the
behaviours users rely on (accumulation, graph release, deep graphs, no_grad, detach, retain_grad...)."""

from __future__ import annotations

import doctest
import gc
import importlib
import weakref
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import downslope as ds

torch = pytest.importorskip("torch")
F = torch.nn.functional


def _rand(seed, shape, low=-1.5, high=1.5):
    return np.random.default_rng(seed).uniform(low, high, size=shape)


# ---------------------------------------------------------------------- second derivatives
def _mlp(lib, x, w1, b1, w2):
    """A small tanh network's scalar loss; ``lib`` is ds or torch (same code for both)."""
    h = lib.tanh(x @ w1 + b1)
    out = lib.tanh(h @ w2)
    return (out * out).sum() / 4.0


def test_hessian_vector_product_via_backward_create_graph_matches_torch_hvp(assert_close):
    x = _rand(0, (4, 3))
    params = [_rand(1, (3, 5)), _rand(2, (5,)), _rand(3, (5, 2))]
    vs = [_rand(10 + i, p.shape) for i, p in enumerate(params)]

    theirs = torch.autograd.functional.hvp(
        lambda *ps: _mlp(torch, torch.tensor(x), *ps),
        tuple(torch.tensor(p) for p in params),
        tuple(torch.tensor(v) for v in vs),
    )[1]

    ours = [ds.tensor(p, dtype="float64", requires_grad=True) for p in params]
    loss = _mlp(ds, ds.tensor(x, dtype="float64"), *ours)
    loss.backward(create_graph=True)
    grads = [p.grad for p in ours]
    assert all(g is not None and g.requires_grad for g in grads)
    for p in ours:
        p.grad = None
    dot = ds.stack([(g * ds.tensor(v, dtype="float64")).sum() for g, v in zip(grads, vs)]).sum()
    dot.backward()
    for p, ref in zip(ours, theirs):
        assert_close(p.grad.numpy(), ref.numpy(), np.float64, "Hessian-vector product")


def test_hessian_vector_product_via_autograd_grad(assert_close):
    x = _rand(0, (4, 3))
    params = [_rand(1, (3, 5)), _rand(2, (5,)), _rand(3, (5, 2))]
    vs = [_rand(10 + i, p.shape) for i, p in enumerate(params)]
    theirs = torch.autograd.functional.hvp(
        lambda *ps: _mlp(torch, torch.tensor(x), *ps),
        tuple(torch.tensor(p) for p in params),
        tuple(torch.tensor(v) for v in vs),
    )[1]
    ours = [ds.tensor(p, dtype="float64", requires_grad=True) for p in params]
    grads = ds.autograd.grad(_mlp(ds, ds.tensor(x, dtype="float64"), *ours), ours, create_graph=True)
    dot = ds.stack([(g * ds.tensor(v, dtype="float64")).sum() for g, v in zip(grads, vs)]).sum()
    for hv, ref in zip(ds.autograd.grad(dot, ours), theirs):
        assert_close(hv.numpy(), ref.numpy(), np.float64, "Hessian-vector product")


# (op on ds, op on torch, input makers): each input is a function of a seed
def _pos(seed, shape):
    return _rand(seed, shape, 0.5, 2.0)


def _away0(seed, shape):
    v = _rand(seed, shape)
    return np.where(np.abs(v) < 0.1, 0.3, v)


SECOND_ORDER = {
    "exp": (ds.exp, torch.exp, [(_rand, (2, 3))]),
    "log": (ds.log, torch.log, [(_pos, (2, 3))]),
    "sqrt": (ds.sqrt, torch.sqrt, [(_pos, (2, 3))]),
    "tanh": (ds.tanh, torch.tanh, [(_rand, (2, 3))]),
    "sigmoid": (ds.sigmoid, torch.sigmoid, [(_rand, (2, 3))]),
    "sin": (ds.sin, torch.sin, [(_rand, (2, 3))]),
    "cos": (ds.cos, torch.cos, [(_rand, (2, 3))]),
    "softplus": (ds.softplus, F.softplus, [(_rand, (2, 3))]),
    "gelu": (ds.gelu, F.gelu, [(_rand, (2, 3))]),
    "gelu tanh": (lambda t: ds.gelu(t, approximate="tanh"), lambda t: F.gelu(t, approximate="tanh"), [(_rand, (3,))]),
    "elu": (ds.elu, F.elu, [(_away0, (2, 3))]),
    "erf": (ds.erf, torch.erf, [(_rand, (2, 3))]),
    "abs*x": (lambda t: ds.abs(t) * t, lambda t: torch.abs(t) * t, [(_away0, (2, 3))]),
    "relu*x": (lambda t: ds.relu(t) * t, lambda t: torch.relu(t) * t, [(_away0, (2, 3))]),
    "leaky_relu*x": (lambda t: ds.leaky_relu(t, 0.1) * t, lambda t: F.leaky_relu(t, 0.1) * t, [(_away0, (2, 3))]),
    "matmul": (lambda a, b: ds.tanh(a @ b), lambda a, b: torch.tanh(a @ b), [(_rand, (2, 3)), (_rand, (3, 4))]),
    "matmul batched": (lambda a, b: (a @ b) ** 2, lambda a, b: (a @ b) ** 2, [(_rand, (2, 2, 3)), (_rand, (3,))]),
    "matmul vec-mat": (lambda a, b: (a @ b) ** 2, lambda a, b: (a @ b) ** 2, [(_rand, (3,)), (_rand, (2, 3, 2))]),
    "softmax": (lambda t: ds.softmax(t, -1), lambda t: torch.softmax(t, -1), [(_rand, (2, 4))]),
    "log_softmax": (lambda t: ds.log_softmax(t, 0), lambda t: torch.log_softmax(t, 0), [(_rand, (3, 2))]),
    "logsumexp": (lambda t: t.logsumexp(1), lambda t: torch.logsumexp(t, 1), [(_rand, (2, 4))]),
    "getitem": (lambda t: t[[0, 2, 2], 1:] ** 3, lambda t: t[[0, 2, 2], 1:] ** 3, [(_rand, (3, 3))]),
    "getitem bool": (lambda t: t[t.array > 0] ** 3, lambda t: t[t > 0] ** 3, [(_rand, (3, 3))]),
    "gather": (
        lambda t: t.gather(1, ds.tensor([[0, 0], [2, 1]])) ** 3,
        lambda t: t.gather(1, torch.tensor([[0, 0], [2, 1]])) ** 3,
        [(_rand, (2, 3))],
    ),
    "pow": (lambda a, b: a**b, lambda a, b: a**b, [(_pos, (2, 3)), (_rand, (3,))]),
    "pow scalar": (lambda a: a**3, lambda a: a**3, [(_rand, (2, 3))]),
    "rpow": (lambda a: 2.0**a, lambda a: 2.0**a, [(_rand, (2, 3))]),
    "div": (lambda a, b: a / b, lambda a, b: a / b, [(_rand, (2, 3)), (_pos, (2, 1))]),
    "mul": (lambda a, b: a * b * a, lambda a, b: a * b * a, [(_rand, (2, 3)), (_rand, (3,))]),
    "where": (
        lambda a, b: ds.where(a.array > 0, a * a, b**3),
        lambda a, b: torch.where(a > 0, a * a, b**3),
        [(_rand, (2, 3)), (_rand, (3,))],
    ),
    "maximum": (
        lambda a, b: ds.maximum(a, b) ** 2,
        lambda a, b: torch.maximum(a, b) ** 2,
        [(_rand, (2, 3)), (_rand, (3,))],
    ),
    "max dim": (lambda t: t.max(1).values ** 2, lambda t: t.max(1).values ** 2, [(_rand, (2, 3))]),
    "amax dim": (lambda t: t.amax(1) ** 2, lambda t: torch.amax(t, 1) ** 2, [(_rand, (2, 3))]),
    "mean": (lambda t: t.mean(0) ** 2, lambda t: t.mean(0) ** 2, [(_rand, (2, 3))]),
    "var": (lambda t: t.var(1), lambda t: t.var(1), [(_rand, (2, 4))]),
    "std": (lambda t: t.std(), lambda t: t.std(), [(_rand, (2, 4))]),
    "cat stack": (
        lambda a, b: ds.stack([ds.cat([a, b], 0) ** 2, ds.cat([b, a], 0)], 1),
        lambda a, b: torch.stack([torch.cat([a, b], 0) ** 2, torch.cat([b, a], 0)], 1),
        [(_rand, (2, 3)), (_rand, (1, 3))],
    ),
    "pad reflect": (
        lambda t: ds.pad(t, (2, 1), mode="reflect") ** 2,
        lambda t: F.pad(t, (2, 1), mode="reflect") ** 2,
        [(_rand, (2, 4))],
    ),
    "pad constant": (lambda t: ds.pad(t, (1, 1)) ** 3, lambda t: F.pad(t, (1, 1)) ** 3, [(_rand, (2, 4))]),
    "reshape permute": (
        lambda t: t.reshape(3, 2).T.exp().flatten(),
        lambda t: t.reshape(3, 2).T.exp().flatten(),
        [(_rand, (2, 3))],
    ),
    "clip": (lambda t: ds.clip(t, -0.8, 0.9) ** 2, lambda t: torch.clamp(t, -0.8, 0.9) ** 2, [(_rand, (2, 3))]),
    "astype": (
        lambda t: t.astype("float32").astype("float64") ** 2,
        lambda t: t.float().double() ** 2,
        [(_rand, (3,))],
    ),
}


@pytest.mark.parametrize("name", SECOND_ORDER)
def test_double_backward_matches_torch(assert_close, name):
    ours_fn, theirs_fn, makers = SECOND_ORDER[name]
    arrays = [make(i, shape) for i, (make, shape) in enumerate(makers)]
    ours = [ds.tensor(a, dtype="float64", requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    out_ours, out_theirs = ours_fn(*ours), theirs_fn(*theirs)
    v = np.random.default_rng(99).standard_normal(out_ours.shape)
    first = ds.autograd.grad((out_ours * ds.tensor(v, dtype="float64")).sum(), ours, create_graph=True)
    first_t = torch.autograd.grad((out_theirs * torch.tensor(v)).sum(), theirs, create_graph=True)
    for g, gt in zip(first, first_t):
        assert_close(g.detach().numpy(), gt.detach().numpy(), np.float64, "first derivative")
    us = [np.random.default_rng(100 + i).standard_normal(a.shape) for i, a in enumerate(arrays)]
    second = ds.stack([(g * ds.tensor(u, dtype="float64")).sum() for g, u in zip(first, us)]).sum()
    second_t = sum((g * torch.tensor(u)).sum() for g, u in zip(first_t, us))
    second.backward()
    second_t.backward()
    for i, (t, tt) in enumerate(zip(ours, theirs)):
        ref = np.zeros(arrays[i].shape) if tt.grad is None else tt.grad.numpy()
        got = np.zeros(arrays[i].shape) if t.grad is None else t.grad.numpy()
        assert_close(got, ref, np.float64, f"second derivative of input {i}")


def test_third_derivative_of_a_power():
    x = ds.tensor(1.5, dtype="float64", requires_grad=True)
    (d1,) = ds.autograd.grad(x**4, [x], create_graph=True)
    (d2,) = ds.autograd.grad(d1, [x], create_graph=True)
    (d3,) = ds.autograd.grad(d2, [x])
    assert d1.item() == pytest.approx(4 * 1.5**3)
    assert d2.item() == pytest.approx(12 * 1.5**2)
    assert d3.item() == pytest.approx(24 * 1.5)


# ---------------------------------------------------------------------- autograd.grad
def test_autograd_grad_matches_torch_and_allow_unused():
    a = ds.tensor([1.0, 2.0], requires_grad=True)
    b = ds.tensor([3.0, 4.0], requires_grad=True)
    unused = ds.tensor([5.0], requires_grad=True)
    ga, gb = ds.autograd.grad((a * b).sum(), [a, b], retain_graph=True)
    np.testing.assert_array_equal(ga.numpy(), [3.0, 4.0])
    np.testing.assert_array_equal(gb.numpy(), [1.0, 2.0])
    assert a.grad is None and b.grad is None
    with pytest.raises(RuntimeError, match="allow_unused"):
        ds.autograd.grad((a * b).sum(), [a, unused])
    ga, gu = ds.autograd.grad((a * b).sum(), [a, unused], allow_unused=True)
    assert gu is None
    np.testing.assert_array_equal(ga.numpy(), [3.0, 4.0])
    ta, tu = torch.tensor([1.0, 2.0], requires_grad=True), torch.tensor([5.0], requires_grad=True)
    assert torch.autograd.grad((ta * 2).sum(), [ta, tu], allow_unused=True)[1] is None


def test_autograd_grad_with_grad_outputs_and_several_outputs():
    x = ds.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y1, y2 = x * 2, x * x
    (g,) = ds.autograd.grad([y1, y2], [x], grad_outputs=[ds.ones(3), ds.tensor([1.0, 0.0, 2.0])])
    tx = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    (gt,) = torch.autograd.grad([tx * 2, tx * tx], [tx], grad_outputs=[torch.ones(3), torch.tensor([1.0, 0.0, 2.0])])
    np.testing.assert_allclose(g.numpy(), gt.numpy())


def test_autograd_grad_refuses_inputs_without_requires_grad():
    x = ds.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="requires_grad"):
        ds.autograd.grad((x * 2).sum(), [ds.tensor([1.0])])


def test_autograd_grad_materialize_grads_gives_zeros_like_torch():
    results = []
    for lib in (ds, torch):
        a = lib.tensor([1.0, 2.0], requires_grad=True)
        unused = lib.tensor([5.0, 6.0, 7.0], requires_grad=True)
        ga, gu = lib.autograd.grad((a * a).sum(), [a, unused], materialize_grads=True)
        results.append((ga.detach().numpy().copy(), gu.detach().numpy().copy()))
    for ours, theirs in zip(*results):
        np.testing.assert_array_equal(ours, theirs)
    np.testing.assert_array_equal(results[0][1], [0.0, 0.0, 0.0])


def test_autograd_grad_refuses_batched_grad_outputs():
    x = ds.tensor([1.0], requires_grad=True)
    with pytest.raises(ValueError, match="is_grads_batched"):
        ds.autograd.grad((x * 2).sum(), x, is_grads_batched=True)


# ---------------------------------------------------------------------- accumulation and graph release
def test_gradients_accumulate_across_two_backward_calls():
    x = ds.tensor([1.0, -2.0], requires_grad=True)
    (x * x).sum().backward()
    (x * 3.0).sum().backward()
    tx = torch.tensor([1.0, -2.0], requires_grad=True)
    (tx * tx).sum().backward()
    (tx * 3.0).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), tx.grad.numpy())


def test_grad_reused_tensor_accumulates_inside_one_backward():
    x = ds.tensor([1.0, 2.0], requires_grad=True)
    y = x * x
    (y + y * x + x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * np.array([1, 2]) + 3 * np.array([1, 2]) ** 2 + 1)


def test_split_pieces_used_several_times_sum_their_gradients_as_torch():
    # backward adds a basic-indexing piece's gradient into its input's running sum in place (no
    # scatter into zeros): pieces used twice, a piece and the whole, a root gradient left untouched
    a = np.arange(24, dtype=np.float32).reshape(2, 12) / 10
    results = []
    for lib in (ds, torch):
        x = lib.tensor(a, requires_grad=True)
        q, k, v = x.split(4, dim=1)
        y = q * k + v.exp() + q.sum() * v + x[:, 2:6] * 3
        g = lib.tensor(np.ones((2, 4), dtype=np.float32))
        (y * y).backward(g)
        assert g.tolist() == np.ones((2, 4)).tolist()
        results.append(x.grad.numpy())
    np.testing.assert_allclose(results[0], results[1], rtol=1e-6)


def test_grad_runs_only_the_rules_on_a_path_to_its_inputs():
    # as torch's engine: wx's gradient is not asked of the product's rule, so wx's hook never runs
    for lib in (ds, torch):
        w, x = lib.tensor([2.0], requires_grad=True), lib.tensor([3.0], requires_grad=True)
        wx = w * 1.0
        seen = []
        wx.register_hook(seen.append)
        (gx,) = lib.autograd.grad((wx * x).sum(), x)
        assert gx.tolist() == [2.0] and seen == [] and w.grad is None


def test_second_backward_raises_mentioning_retain_graph():
    x = ds.tensor([1.0, 2.0], requires_grad=True)
    loss = (x.exp() * x).sum()
    loss.backward()
    with pytest.raises(RuntimeError, match="retain_graph"):
        loss.backward()


def test_retain_graph_allows_a_second_backward():
    x = ds.tensor([1.0, 2.0], requires_grad=True)
    loss = (x.exp() * x).sum()
    loss.backward(retain_graph=True)
    first = x.grad.numpy().copy()
    loss.backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * first)


def test_graph_is_released_after_backward():
    x = ds.tensor([1.0, 2.0], requires_grad=True)
    hidden = x * 2
    ref = weakref.ref(hidden)
    loss = (hidden * hidden).sum()
    del hidden
    loss.backward()
    gc.collect()
    assert ref() is None, "an intermediate tensor is still alive after backward"
    product = loss._parents[0]  # sum saved nothing and stays (as in PyTorch); the product it reads is freed
    # freed: no inputs, no saved values (only the rule itself is kept, so grad_fn still names the op)
    assert product._parents == () and callable(product._saved) and product.grad_fn.name() == "MulBackward0"


_SECOND_PASS_CASES = {
    "add": lambda lib, x: x + 1,
    "expand": lambda lib, x: x[:1].expand(3),
    "slice": lambda lib, x: x[1:],
    "reshape_mean": lambda lib, x: x.reshape(3, 1).mean(),
    "cat": lambda lib, x: lib.cat([x, -x]),
    "fancy_index": lambda lib, x: x[lib.tensor([0, 0])],  # saves its index: freed in both
    "mul": lambda lib, x: x * x,  # saves its inputs: freed in both
    "exp": lambda lib, x: x.exp(),  # saves its output
    "add_after_mul": lambda lib, x: x * 2 + 1,
}


@pytest.mark.parametrize("case", sorted(_SECOND_PASS_CASES))
def test_second_backward_through_nodes_that_saved_nothing_matches_torch(case: str) -> None:
    # torch frees saved tensors, not the graph: another pass through nodes that saved none is allowed,
    # and only a node whose saved values were freed raises (with torch's message)
    results = []
    for lib in (ds, torch):
        x = lib.tensor([1.0, 2.0, 3.0], dtype=lib.float64, requires_grad=True)
        y = _SECOND_PASS_CASES[case](lib, x)
        y.sum().backward()
        try:
            y.sum().backward()
        except RuntimeError as e:
            results.append(("raises", str(e)))
        else:
            results.append(("ok", x.grad.tolist()))
    assert results[0] == results[1]


def test_second_backward_through_broadcasts_made_at_distribution_construction() -> None:
    loc = ds.zeros(3, requires_grad=True)
    scale = ds.ones(1, requires_grad=True)
    d = ds.distributions.Normal(loc, scale)
    d.log_prob(ds.ones(3)).sum().backward()
    d.entropy().sum().backward()  # through the construction-time broadcast nodes again
    tl, ts = torch.zeros(3, requires_grad=True), torch.ones(1, requires_grad=True)
    td = torch.distributions.Normal(tl, ts)
    td.log_prob(torch.ones(3)).sum().backward()
    td.entropy().sum().backward()
    np.testing.assert_allclose(scale.grad.numpy(), ts.grad.numpy(), rtol=1e-6)
    np.testing.assert_allclose(loc.grad.numpy(), tl.grad.numpy(), rtol=1e-6)


def test_custom_function_second_backward_raises_only_when_it_reads_saved_tensors() -> None:
    def make(lib: Any, reads: bool) -> Any:
        class Double(lib.autograd.Function):
            @staticmethod
            def forward(ctx, x):
                return x * 2

            @staticmethod
            def backward(ctx, g):
                if reads:
                    ctx.saved_tensors  # noqa: B018  (freed after the first pass: raises)
                return g * 2

        return Double

    for reads in (False, True):
        outcome = []
        for lib in (ds, torch):
            x = lib.ones(2, requires_grad=True)
            y = make(lib, reads).apply(x)
            y.sum().backward()
            try:
                y.sum().backward()
                outcome.append(x.grad.tolist())
            except RuntimeError as e:
                outcome.append(str(e))
        assert outcome[0] == outcome[1]


@pytest.mark.slow
def test_chain_of_100000_ops_backpropagates_and_frees():
    x = ds.tensor(2.0, dtype="float64", requires_grad=True)
    y = x
    for _ in range(100_000):
        y = -y  # the cheapest op, so the test measures depth and not arithmetic
    y = y * x
    y.backward(retain_graph=True)  # iterative walk: no RecursionError
    assert x.grad.item() == 4.0
    # the retained 100,000-deep graph must be freed without blowing the C stack either
    ref = weakref.ref(y._parents[0])
    del y
    gc.collect()
    assert ref() is None


def test_deep_graph_create_graph_and_retain():
    x = ds.tensor(0.5, dtype="float64", requires_grad=True)
    y = x
    for _ in range(2000):
        y = ds.tanh(y)
    (g,) = ds.autograd.grad(y, [x], create_graph=True)
    t = torch.tensor(0.5, dtype=torch.float64, requires_grad=True)
    ty = t
    for _ in range(2000):
        ty = torch.tanh(ty)
    (gt,) = torch.autograd.grad(ty, [t], create_graph=True)
    assert g.item() == pytest.approx(gt.item(), rel=1e-10)


# ---------------------------------------------------------------------- backward variants
def test_backward_with_gradient_argument_matches_torch():
    x = ds.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    upstream = [[0.5, -1.0], [2.0, 0.0]]
    (x * x).backward(gradient=ds.tensor(upstream))
    tx = torch.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    (tx * tx).backward(gradient=torch.tensor(upstream))
    np.testing.assert_array_equal(x.grad.numpy(), tx.grad.numpy())
    x.grad = None
    (x * x).backward(np.array(upstream))  # a NumPy array works too
    np.testing.assert_array_equal(x.grad.numpy(), tx.grad.numpy())


def test_backward_on_non_scalar_without_gradient_says_so():
    x = ds.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=r"scalar.*\(2,\)"):
        (x * 2).backward()
    with pytest.raises(RuntimeError, match=r"gradient has shape \(3,\).*\(2,\)"):
        (x * 2).backward(gradient=ds.ones(3))


def test_backward_on_tensor_without_graph_says_so():
    with pytest.raises(RuntimeError, match="requires_grad"):
        ds.tensor([1.0, 2.0]).sum().backward()


def test_backward_inputs_only_fills_those():
    a = ds.tensor([1.0, 2.0], requires_grad=True)
    b = ds.tensor([3.0, 4.0], requires_grad=True)
    (a * b).sum().backward(inputs=[a])
    np.testing.assert_array_equal(a.grad.numpy(), [3.0, 4.0])
    assert b.grad is None


def test_leaf_grads_are_not_aliased():
    x = ds.tensor([1.0, 2.0], requires_grad=True)
    y = ds.tensor([3.0, 4.0], requires_grad=True)
    (x + y).sum().backward()
    x.grad.array += 10.0  # an in-place update of one gradient (like an optimizer's) ...
    np.testing.assert_array_equal(y.grad.numpy(), [1.0, 1.0])  # ... must not change the other
    x2 = ds.tensor([1.0, 2.0], requires_grad=True)
    y2 = ds.tensor([3.0, 4.0], requires_grad=True)
    (x2 + y2).backward(gradient=ds.tensor([1.0, 2.0]))
    x2.grad.array *= 0
    np.testing.assert_array_equal(y2.grad.numpy(), [1.0, 2.0])
    x3 = ds.tensor([1.0, 2.0], requires_grad=True)
    y3 = ds.tensor([3.0, 4.0], requires_grad=True)
    (x3 + y3).backward(gradient=ds.tensor([1.0, 2.0]), create_graph=True)
    x3.grad.array *= 0
    np.testing.assert_array_equal(y3.grad.numpy(), [1.0, 2.0])


def test_leaf_grad_does_not_alias_the_upstream_gradient():
    x = ds.tensor([1.0, 2.0], requires_grad=True)
    upstream = np.array([1.0, 1.0], dtype=np.float32)
    (x * 1.0).backward(gradient=upstream)
    x.grad.array += 1
    np.testing.assert_array_equal(upstream, [1.0, 1.0])


def test_retain_grad_keeps_the_gradient_of_a_non_leaf():
    x = ds.tensor([1.0, 2.0], requires_grad=True)
    h = x * 3.0
    h.retain_grad()
    other = x * 2.0
    (h * h).sum().backward(retain_graph=True)
    np.testing.assert_array_equal(h.grad.numpy(), 2 * 3.0 * np.array([1.0, 2.0]))
    assert other.grad is None
    np.testing.assert_array_equal(x.grad.numpy(), 18.0 * np.array([1.0, 2.0]))
    with pytest.raises(RuntimeError, match="does not require grad"):
        ds.tensor([1.0]).retain_grad()


# ---------------------------------------------------------------------- grad modes
def test_no_grad_context_and_decorator_forms():
    w = ds.ones(2, requires_grad=True)
    with ds.no_grad():
        assert not (w * 2).requires_grad
        assert not ds.is_grad_enabled()
    assert ds.is_grad_enabled() and (w * 2).requires_grad

    @ds.no_grad()
    def called():
        return w * 2

    assert not called().requires_grad
    assert ds.is_grad_enabled()


def test_no_grad_bare_decorator_like_torch():
    w = ds.ones(2, requires_grad=True)

    @ds.no_grad
    def bare():
        return w * 2

    assert not bare().requires_grad
    assert ds.is_grad_enabled()


def test_enable_grad_inside_no_grad():
    w = ds.ones(2, requires_grad=True)
    with ds.no_grad():
        with ds.enable_grad():
            assert (w * 2).requires_grad
        assert not (w * 2).requires_grad

        @ds.enable_grad()
        def inner():
            return w * 2

        assert inner().requires_grad


def test_set_grad_enabled_context_and_function_forms():
    w = ds.ones(2, requires_grad=True)
    with ds.set_grad_enabled(False):
        assert not (w * 2).requires_grad
        with ds.set_grad_enabled(True):
            assert (w * 2).requires_grad
    assert ds.is_grad_enabled()
    try:
        ds.set_grad_enabled(False)  # a plain call switches the mode, as torch.set_grad_enabled does
        assert not ds.is_grad_enabled()
    finally:
        ds.set_grad_enabled(True)
    assert ds.is_grad_enabled()


def test_set_grad_enabled_as_a_decorator():
    w = ds.ones(2, requires_grad=True)

    @ds.set_grad_enabled(False)
    def frozen():
        return w * 2

    assert ds.is_grad_enabled()  # decorating does not switch the mode
    assert not frozen().requires_grad
    assert ds.is_grad_enabled()


def test_grad_mode_restored_after_an_exception():
    with pytest.raises(ValueError):
        with ds.no_grad():
            raise ValueError("boom")
    assert ds.is_grad_enabled()


def test_detach_cuts_the_graph_and_shares_data():
    x = ds.tensor([1.0, 2.0], requires_grad=True)
    d = (x * 2).detach()
    assert not d.requires_grad and d.is_leaf and d.grad_fn is None
    y = x * 2
    assert y.grad_fn.name() == "MulBackward0" and not y.is_leaf
    base = ds.tensor([1.0, 2.0], requires_grad=True)
    view = base.detach()
    with ds.no_grad():
        view[0] = 5.0
    assert base.detach().numpy()[0] == 5.0
    (x * d).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 4.0])  # no gradient through d


def test_in_place_assignment_into_graph_tensor_is_refused():
    x = ds.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="no_grad"):
        x[0] = 3.0
    with ds.no_grad():
        x[0] = 3.0
    assert x.detach().numpy()[0] == 3.0


def test_requires_grad_on_integer_tensor_is_refused():
    with pytest.raises(TypeError, match="floating"):
        ds.tensor([1, 2], requires_grad=True)
    with pytest.raises(TypeError, match="int64"):
        ds.tensor([1, 2]).requires_grad_()
    with pytest.raises(RuntimeError, match="leaf"):
        (ds.tensor([1.0], requires_grad=True) * 2).requires_grad_(False)


def test_integer_inputs_do_not_break_backward():
    x = ds.tensor([1.0, 2.0, 3.0], requires_grad=True)
    idx = ds.tensor([2, 0])
    (x[idx] * ds.tensor([1, 2])).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 0.0, 1.0])


@pytest.mark.host_only  # the examples print CPU tensors (a device tensor's repr names its device)
@pytest.mark.parametrize("module", ["downslope.autograd"])
def test_docstring_examples_run(module):
    # pytest also collects them (--doctest-modules over src/downslope); this keeps them checked in this file's run
    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


BROADCAST_SECOND_ORDER = {
    "add": lambda a, b: (a + b) ** 2,
    "sub": lambda a, b: (a - b) ** 3,
    "mul": lambda a, b: a * b * b,
    "div": lambda a, b: a / (b * b + 1.0),
    "pow": lambda a, b: (a * a + 0.5) ** b,
    "outer product via indexing": lambda a, b: (a[..., None] * b[..., None, :]).sum(-1) ** 2,
}


@pytest.mark.parametrize("name", BROADCAST_SECOND_ORDER)
@settings(max_examples=10, deadline=None, derandomize=True, database=None)
@given(shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=3, max_side=3), seed=st.integers(0, 1000))
def test_double_backward_with_broadcasting_matches_torch(assert_close, name, shapes, seed):
    fn = BROADCAST_SECOND_ORDER[name]
    if name.startswith("outer") and () in shapes.input_shapes:
        return  # [..., None, :] needs a dimension to slice
    arrays = [_rand(seed + i, s) for i, s in enumerate(shapes.input_shapes)]
    ours = [ds.tensor(a, dtype="float64", requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    first = ds.autograd.grad(fn(*ours).sum(), ours, create_graph=True)
    first_t = torch.autograd.grad(fn(*theirs).sum(), theirs, create_graph=True)
    ds.stack([(g * g).sum() for g in first]).sum().backward()
    sum((g * g).sum() for g in first_t).backward()
    for t, tt in zip(ours, theirs):
        assert t.grad.shape == tuple(tt.grad.shape)
        assert_close(t.grad.numpy(), tt.grad.numpy(), np.float64, "second derivative with broadcasting")


# ---------------------------------------------------------------------- custom autograd.Function
def _legendre(lib):
    class LegendrePolynomial3(lib.autograd.Function):
        """PyTorch's tutorial example: P3(x) = (5x^3 - 3x) / 2 with a hand-written backward."""

        @staticmethod
        def forward(ctx, input):
            ctx.save_for_backward(input)
            return 0.5 * (5 * input**3 - 3 * input)

        @staticmethod
        def backward(ctx, grad_output):
            (input,) = ctx.saved_tensors
            return grad_output * 1.5 * (5 * input**2 - 1)

    return LegendrePolynomial3


def _tutorial_fit(lib, steps=200):
    # The tutorial's training loop (polynomial_custom_function.py), shortened, in float64.
    x = lib.tensor(np.linspace(-np.pi, np.pi, 500), dtype=lib.float64)
    y = lib.sin(x)
    a, b, c, d = (lib.tensor(v, dtype=lib.float64, requires_grad=True) for v in (0.0, -1.0, 0.0, 0.3))
    P3 = _legendre(lib)
    for _ in range(steps):
        y_pred = a + b * P3.apply(c + d * x)
        loss = (y_pred - y).pow(2).sum()
        loss.backward()
        with lib.no_grad():
            for p in (a, b, c, d):
                p -= 5e-6 * p.grad
                p.grad = None
    return [loss.item()] + [p.item() for p in (a, b, c, d)]


def test_custom_function_tutorial_matches_torch():
    np.testing.assert_allclose(_tutorial_fit(ds), _tutorial_fit(torch), rtol=1e-9, atol=1e-15)


def test_custom_function_gradient_passes_gradcheck_and_double_backward():
    P3 = _legendre(ds)
    ds.gradcheck(lambda x: P3.apply(x).sum(), (np.linspace(-1, 1, 7),))
    x = ds.tensor([0.3, -0.7], dtype="float64", requires_grad=True)
    (g,) = ds.autograd.grad(P3.apply(x).sum(), x, create_graph=True)
    g.sum().backward()  # d2/dx2 P3 = 15 x, through the recorded backward
    np.testing.assert_allclose(x.grad.numpy(), 15 * x.detach().numpy(), rtol=1e-12)


def _scale_and_split(lib):
    class ScaleSplit(lib.autograd.Function):
        """Two outputs, a non-tensor argument and a non-differentiable integer output."""

        @staticmethod
        def forward(ctx, x, w, factor):
            ctx.factor = factor
            ctx.save_for_backward(x, w)
            idx = (x > 0).long()
            ctx.mark_non_differentiable(idx)
            return x * w * factor, (x + w).exp(), idx

        @staticmethod
        def backward(ctx, g1, g2, g_idx):
            x, w = ctx.saved_tensors
            e = (x + w).exp()
            gx = g1 * w * ctx.factor + g2 * e if ctx.needs_input_grad[0] else None
            gw = g1 * x * ctx.factor + g2 * e if ctx.needs_input_grad[1] else None
            return gx, gw, None

    return ScaleSplit


@pytest.mark.parametrize("w_requires_grad", [True, False])
def test_custom_function_with_several_outputs_matches_torch(w_requires_grad):
    xs, ws = np.array([[0.5, -1.0], [2.0, 0.1]]), np.array([[0.3, 0.2], [-0.4, 1.0]])
    results = []
    for lib in (ds, torch):
        x = lib.tensor(xs, dtype=lib.float64, requires_grad=True)
        w = lib.tensor(ws, dtype=lib.float64, requires_grad=w_requires_grad)
        a, b, idx = _scale_and_split(lib).apply(x, w, 3.0)
        assert not idx.requires_grad and a.requires_grad
        ((a * a).sum() + b.sum() * 2).backward()
        results.append((x.grad.numpy().copy(), None if w.grad is None else w.grad.numpy().copy(), idx.numpy()))
    for ours, ref in zip(*results):
        if ref is None:
            assert ours is None
        else:
            np.testing.assert_allclose(ours, ref, rtol=1e-12)


def test_custom_function_checks_its_saved_tensors_and_gradient_count():
    P3 = _legendre(ds)
    x = ds.tensor([0.5, 1.0], requires_grad=True)
    h = x * 1
    y = P3.apply(h)
    with ds.no_grad():
        h.add_(1)
    with pytest.raises(RuntimeError, match="is at version 1; expected version 0 instead"):
        y.sum().backward()

    class TooFew(ds.autograd.Function):
        @staticmethod
        def forward(ctx, a, b):
            return a * b

        @staticmethod
        def backward(ctx, g):
            return g

    with pytest.raises(ValueError, match="expected one per forward argument"):
        TooFew.apply(x, x).sum().backward()
    with pytest.raises(RuntimeError, match="apply"):
        TooFew()


def test_custom_function_with_setup_context_and_no_grad():
    class Square(ds.autograd.Function):
        @staticmethod
        def forward(x):
            return x * x

        @staticmethod
        def setup_context(ctx, inputs, output):
            ctx.save_for_backward(inputs[0])

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return 2 * g * x

    x = ds.tensor([1.0, -3.0], requires_grad=True)
    with ds.no_grad():
        assert not Square.apply(x).requires_grad
    Square.apply(x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, -6.0])


def test_register_hook_sees_and_replaces_gradients_like_torch():
    results = []
    for lib in (ds, torch):
        x = lib.tensor([1.0, -2.0, 3.0], requires_grad=True)
        seen = []
        h = x * 2
        h.register_hook(seen.append)  # observe a non-leaf's gradient
        handle = x.register_hook(lambda g: g.clamp(-1.0, 1.0))  # replace the leaf's gradient
        (h * h).sum().backward()
        results.append((seen[0], x.grad.numpy().copy()))
        handle.remove()
        x.grad = None
        (x * 5).sum().backward()
        results.append((x.grad.numpy().copy(),))
    np.testing.assert_allclose(results[0][0].numpy(), results[2][0].numpy())
    np.testing.assert_allclose(results[0][1], results[2][1])
    np.testing.assert_allclose(results[1][0], results[3][0])  # removed: the raw gradient again
    with pytest.raises(RuntimeError, match="doesn't require gradient"):
        ds.zeros(2).register_hook(lambda g: g)


def test_autograd_grad_with_torchs_keywords():
    results = []
    for lib in (ds, torch):
        x = lib.tensor([[1.0, 2.0], [3.0, -1.0]], requires_grad=True)
        y = (x**3).sum(1, keepdim=True)
        (g,) = lib.autograd.grad(
            outputs=y,
            inputs=x,
            grad_outputs=lib.ones(2, 1),
            create_graph=True,
            retain_graph=True,
            only_inputs=True,
            is_grads_batched=False,
        )
        (g.norm(2, dim=1) ** 2).sum().backward()
        results.append((g.detach().numpy().copy(), x.grad.numpy().copy()))
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-5)


def test_anomaly_detection_names_the_op_whose_gradient_is_nan():
    x = ds.tensor([0.0, 4.0], requires_grad=True)
    with ds.autograd.detect_anomaly():
        assert ds.autograd.is_anomaly_enabled()
        with pytest.raises(ds.DownslopeError, match="Function 'SqrtBackward0' returned nan values in its 0th output"):
            ds.sqrt(x - 1).sum().backward()
    assert not ds.autograd.is_anomaly_enabled()
    (x * 2).sum().backward()  # off again: no check
    with ds.autograd.set_detect_anomaly(True):
        y = ds.tensor([1.0], requires_grad=True)
        (y * 3).sum().backward()  # finite gradients pass
    assert not ds.autograd.is_anomaly_enabled() and y.grad.tolist() == [3.0]


def test_once_differentiable_as_in_torch() -> None:
    torch = pytest.importorskip("torch")
    from downslope.autograd.function import Function, once_differentiable

    def make(base: Any, decorate: Any) -> Any:
        class Square(base):  # type: ignore[misc, valid-type]
            @staticmethod
            def forward(ctx: Any, x: Any) -> Any:
                ctx.save_for_backward(x)
                return x * x

            @staticmethod
            @decorate
            def backward(ctx: Any, g: Any) -> Any:
                (x,) = ctx.saved_tensors
                return 2 * x * g

        return Square

    ours, theirs = (
        make(Function, once_differentiable),
        make(torch.autograd.Function, torch.autograd.function.once_differentiable),
    )
    x, xt = ds.tensor([3.0], requires_grad=True), torch.tensor([3.0], requires_grad=True)
    (g,) = ds.autograd.grad(ours.apply(x).sum(), [x], create_graph=True)
    (gt,) = torch.autograd.grad(theirs.apply(xt).sum(), [xt], create_graph=True)
    assert g.tolist() == gt.tolist() and g.requires_grad == gt.requires_grad  # plain ones: not differentiable
    v, vt = ds.tensor(1.0, requires_grad=True), torch.tensor(1.0, requires_grad=True)
    (g,) = ds.autograd.grad(ours.apply(x).sum(), [x], grad_outputs=v, create_graph=True)
    (gt,) = torch.autograd.grad(theirs.apply(xt).sum(), [xt], grad_outputs=vt, create_graph=True)
    assert g.requires_grad and gt.requires_grad
    with pytest.raises(RuntimeError, match="once_differentiable"):
        gt.sum().backward()
    with pytest.raises(ds.DownslopeError, match="once_differentiable"):
        g.sum().backward()


def test_backward_of_several_tensors_as_torch_autograd_backward() -> None:
    torch = pytest.importorskip("torch")
    x, xt = ds.tensor([1.0, 2.0], requires_grad=True), torch.tensor([1.0, 2.0], requires_grad=True)
    ds.autograd.backward([x * 3, (x**2).sum()], [ds.tensor([1.0, 0.5]), None])
    torch.autograd.backward([xt * 3, (xt**2).sum()], [torch.tensor([1.0, 0.5]), None])
    assert x.grad.tolist() == xt.grad.tolist()
    with pytest.raises(ds.DownslopeError, match="2 tensors but 1 gradients"):
        ds.autograd.backward([x * 3, x * 2], [None])


# ---------------------------------------------------------------------- mixed dtypes
_BINARY = {
    "mul": lambda a, b: a * b,
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "div": lambda a, b: a / b,
    "pow": lambda a, b: a**b,
    "atan2": lambda a, b: a.atan2(b),
    "maximum": lambda a, b: a.maximum(b),
}


@pytest.mark.parametrize("op", sorted(_BINARY))
@pytest.mark.parametrize("shape_b", [(3,), (1,)], ids=["same", "broadcast"])
def test_mixed_dtype_gradients_keep_each_input_dtype_under_create_graph(op: str, shape_b: tuple) -> None:
    # torch casts every gradient to its input's dtype; under create_graph the float32 side got float64
    fn = _BINARY[op]
    a, b = _rand(0, (3,), 0.5, 2.0), _rand(1, shape_b, 0.5, 2.0).astype(np.float32)

    def run(lib: Any, create_graph: bool, call_backward: bool) -> list[Any]:
        A = lib.tensor(a, dtype=lib.float64, requires_grad=True)  # noqa: N806
        B0 = lib.tensor(b, dtype=lib.float32, requires_grad=True)  # noqa: N806
        B = B0 * 1.5  # noqa: N806  (an inner node: its hook sees the float32 gradient too)
        seen: list[str] = []
        B.register_hook(lambda g: seen.append(str(g.dtype).replace("torch.", "")))
        loss = (fn(A, B) ** 2).sum()
        if call_backward:
            loss.backward(create_graph=create_graph)
            grads = [A.grad, B0.grad]
        else:
            grads = list(lib.autograd.grad(loss, [A, B0], create_graph=create_graph))
        out = [str(g.dtype).replace("torch.", "") for g in grads] + seen + [g.detach().numpy() for g in grads]
        if create_graph:  # the cast is recorded: a second derivative flows back through it
            second = lib.autograd.grad(sum((g * g).sum() for g in grads), [A, B0])
            out += [str(s.dtype).replace("torch.", "") for s in second] + [s.numpy() for s in second]
        return out

    for create_graph in (False, True):
        for call_backward in (False, True):
            ours, theirs = run(ds, create_graph, call_backward), run(torch, create_graph, call_backward)
            assert ours[:3] == theirs[:3] == ["float64", "float32", "float32"]
            for o, t in zip(ours[3:], theirs[3:]):
                if isinstance(t, str):
                    assert o == t
                else:
                    assert o.dtype == t.dtype
                    np.testing.assert_allclose(o, t, rtol=2e-6 if o.dtype == np.float32 else 1e-6)


def test_custom_backward_may_return_trailing_nones_beyond_the_arguments_as_in_torch() -> None:
    class Double(ds.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, g):
            return g * 2, None, None  # the fused-conv tutorial's pattern: extra Nones are ignored

    x = ds.ones(3, requires_grad=True)
    Double.apply(x).sum().backward()
    assert x.grad.tolist() == [2.0, 2.0, 2.0]

    class TooMany(Double):
        @staticmethod
        def backward(ctx, g):
            return g * 2, g

    with pytest.raises(ds.errors.ArgumentError, match="returned 2 gradient"):
        TooMany.apply(ds.ones(3, requires_grad=True)).sum().backward()


@pytest.mark.parametrize("lib", [torch, ds], ids=["torch", "downslope"])
def test_grad_calls_no_hook_off_the_path_to_its_inputs_and_leaves_grad_outputs_alone(lib) -> None:
    """autograd.grad([y, a], [w]): the leaf a is an output but on no path to w, so (as in torch's
    engine) its in-place hook is not called and the caller's grad_output for it is not written."""
    w = lib.tensor(np.array([1.0, 2.0]), dtype=lib.float64, requires_grad=True)
    a = lib.tensor(np.array([3.0, 4.0]), dtype=lib.float64, requires_grad=True)
    calls = []
    a.register_hook(lambda g: calls.append(g.tolist()) or g.mul_(2))
    given = lib.tensor(np.array([1.0, 1.0]), dtype=lib.float64)
    (gw,) = lib.autograd.grad([w * 5, a], [w], [lib.ones(2, dtype=lib.float64), given])
    assert gw.tolist() == [5.0, 5.0] and calls == [] and given.tolist() == [1.0, 1.0]


@pytest.mark.parametrize("lib", [torch, ds], ids=["torch", "downslope"])
def test_grad_with_respect_to_the_output_itself_runs_no_rule(lib) -> None:
    """Nothing upstream of the input is needed, so its rule (whose saved input was since written in
    place, which a run would refuse) is not run: the gradient is the grad_output, as in torch."""
    x = lib.tensor(np.arange(4.0).reshape(2, 2), dtype=lib.float64, requires_grad=True)
    h = x * 1
    z = h @ h
    h.mul_(2)
    (g,) = lib.autograd.grad(z, [z], lib.ones(2, 2, dtype=lib.float64))
    assert g.tolist() == [[1.0, 1.0], [1.0, 1.0]]
