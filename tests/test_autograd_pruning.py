"""autograd.grad and backward(inputs=) with non-leaf inputs leave out of the walk every node made before
all of the inputs (it cannot lie on a path from an input to an output), as torch's engine prunes by its
nodes' topological numbers. Random programs with in-place ops, views and hooks must give the same
gradients, hook calls and errors with that pruning and without it, and a few programs match torch."""

from __future__ import annotations

import random
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import downslope as ds
from downslope import autograd

torch = pytest.importorskip("torch")


def _host(t: Any) -> list[float]:
    return np.round(np.asarray(t.tolist(), dtype=np.float64), 10).reshape(-1).tolist()


def _collected(monkeypatch: pytest.MonkeyPatch) -> list[list[Any]]:
    """The node lists the walks collect (each call's _topological_order result), appended as they come."""
    seen: list[list[Any]] = []
    original = autograd._topological_order

    def recording(*args: Any, **kwargs: Any) -> list[Any]:
        order = original(*args, **kwargs)
        seen.append(order)
        return order

    monkeypatch.setattr(autograd, "_topological_order", recording)
    return seen


# ---------------------------------------------------------------- what the walk collects
def test_grad_wrt_a_recent_non_leaf_does_not_walk_the_history_before_it(monkeypatch: pytest.MonkeyPatch) -> None:
    w = ds.tensor([0.5, -0.25, 2.0], dtype=ds.float64, requires_grad=True)
    h = w
    for _ in range(50):  # a long history (an integration loop's earlier steps)
        h = (h * 1.01).sin() + w
    x = h * 1.0  # the input: made after all of that history
    y = (x * x).sum() + (h * w).sum()
    seen = _collected(monkeypatch)
    (g,) = ds.autograd.grad(y, x)
    assert max(len(order) for order in seen) <= 6  # y's few nodes since x, not the 150 before it
    assert all(n._seq >= x._seq or n is y for n in seen[0])
    np.testing.assert_allclose(g.numpy(), 2 * x.detach().numpy())


def test_backward_inputs_non_leaf_does_not_walk_the_history_before_it(monkeypatch: pytest.MonkeyPatch) -> None:
    w = ds.tensor([0.5, -0.25], dtype=ds.float64, requires_grad=True)
    h = w
    for _ in range(30):
        h = h.tanh() * 1.5
    x = h + 0.0
    x.retain_grad()
    loss = (x.exp() * h).sum()
    seen = _collected(monkeypatch)
    loss.backward(inputs=[x])
    assert max(len(order) for order in seen) <= 6
    assert w.grad is None
    expected = (x.detach().exp() * h.detach()).numpy()
    np.testing.assert_allclose(x.grad.numpy(), expected)


def test_a_leaf_input_keeps_the_whole_walk(monkeypatch: pytest.MonkeyPatch) -> None:
    # leaves are all numbered 0: nothing can be left out when one of the inputs is a leaf
    w = ds.tensor([0.5, -0.25], dtype=ds.float64, requires_grad=True)
    h = w
    for _ in range(10):
        h = h.sin()
    x = h * 2.0
    seen = _collected(monkeypatch)
    gx, gw = ds.autograd.grad((x * x).sum(), [x, w])
    assert len(seen[0]) >= 12
    np.testing.assert_allclose(gx.numpy(), 2 * x.detach().numpy())
    assert gw.shape == w.shape


# ---------------------------------------------------------------- against torch
def _integration(lib: Any) -> list[list[float]]:
    """An RK-like loop over a small net, each step's Jacobian trace by vmap(jacrev) of the state, all
    trained by one backward: the per-element autograd.grad calls ask for recent inputs only."""
    gen = np.random.default_rng(3)
    w1 = lib.tensor(gen.standard_normal((3, 8)), dtype=lib.float64, requires_grad=True)
    w2 = lib.tensor(gen.standard_normal((8, 3)) * 0.3, dtype=lib.float64, requires_grad=True)
    z = lib.tensor(gen.standard_normal((4, 3)), dtype=lib.float64)

    def f(v: Any) -> Any:
        return (v @ w1).tanh() @ w2

    trace = lib.zeros(4, dtype=lib.float64)
    for _ in range(3):
        jac = lib.func.vmap(lib.func.jacrev(f))(z)
        trace = trace + lib.diagonal(jac, dim1=-2, dim2=-1).sum(-1) * 0.25
        z = z + 0.25 * f(z)
    loss = (z * z).sum() + trace.sum()
    g1, g2 = lib.autograd.grad(loss, [w1, w2])
    return [_host(loss), _host(g1), _host(g2)]


def _grad_of_recent_node_with_inplace(lib: Any) -> list[list[float]]:
    a = lib.tensor([0.3, -1.2, 0.7, 2.0], dtype=lib.float64, requires_grad=True)
    h = a.exp()
    h.mul_(2.0)  # an in-place write before the input
    v = h[1:3]
    x = v * 3.0  # the input: a non-leaf made after the write
    h.add_(1.0)  # and one after it: x's view history is rewired
    y = (x.sin() * h[1:3]).sum() + (h * a).sum()
    gx, gh = lib.autograd.grad(y, [x, h])
    return [_host(gx), _host(gh)]


def _hooks_upstream_and_on_the_path(lib: Any) -> list[list[float]]:
    calls: list[list[float]] = []
    a = lib.tensor([0.5, 1.5, -0.5], dtype=lib.float64, requires_grad=True)
    u = a * a
    u.register_hook(lambda g: calls.append(["u", *_host(g)]))  # upstream of the input: never called
    x = u + 1.0
    x.register_hook(lambda g: calls.append(["x", *_host(g)]))
    m = x.cos()
    m.register_hook(lambda g: g * 2)
    y = (m * u).sum()
    (gx,) = lib.autograd.grad(y, x)
    return [_host(gx), *calls]


@pytest.mark.parametrize("program", [_integration, _grad_of_recent_node_with_inplace, _hooks_upstream_and_on_the_path])
def test_pruned_walks_match_torch(program: Callable[[Any], list[list[float]]]) -> None:
    ours = program(ds)
    theirs = program(torch)
    assert len(ours) == len(theirs)
    for o, t in zip(ours, theirs):
        if o and isinstance(o[0], str):
            assert o[0] == t[0]
            o, t = o[1:], t[1:]
        np.testing.assert_allclose(o, t, rtol=1e-9, atol=1e-12)


# ---------------------------------------------------------------- random programs: pruned == unpruned
def _random_program(seed: int) -> tuple[Any, ...]:
    """Run one random program (in-place ops, views, hooks, several grad calls) and return what it
    observed: gradients, hook calls, errors (class and message), the leaves' .grad after a last backward."""
    rng = random.Random(seed)
    gen = np.random.default_rng(seed)
    log: list[Any] = []
    leaves = [ds.tensor(gen.uniform(-1, 1, 6), dtype=ds.float64, requires_grad=True) for _ in range(2)]
    pool: list[Any] = list(leaves)
    made: list[Any] = []  # non-leaf tensors, in creation order

    def record(kind: str, fn: Callable[[], Any]) -> None:
        try:
            out = fn()
        except Exception as exc:  # construction refused (an in-place op on a leaf, on a multi-output view...)
            log.append(("build-error", kind, type(exc).__name__))
            return
        if out is not None:
            pool.append(out)
            made.append(out)

    def pick() -> Any:
        return pool[rng.randrange(len(pool))] if rng.random() < 0.5 else pool[-1 - rng.randrange(min(4, len(pool)))]

    for step in range(rng.randrange(8, 20)):
        op = rng.random()
        a, b = pick(), pick()
        if op < 0.25:
            record("binary", lambda a=a, b=b: a * b + a if a.shape == b.shape else a * 1.5)
        elif op < 0.4:
            record("unary", lambda a=a: a.sin() * 1.1 if rng.random() < 0.5 else (a * 0.3).exp())
        elif op < 0.55 and a.ndim == 1 and a.shape[0] >= 4:
            lo = rng.randrange(0, 2)
            record("view", lambda a=a, lo=lo: a[lo : lo + 3] if rng.random() < 0.5 else a.view(-1, 2)[:, 0])
        elif op < 0.75:
            if a._vjp is None:
                continue

            def inplace(a: Any = a, b: Any = b) -> None:
                choice = rng.random()
                if choice < 0.4:
                    a.mul_(1.25)
                elif choice < 0.7 and b.shape == a.shape and b is not a:
                    a.add_(b * 0.5)
                elif a.ndim == 1 and a.shape[0] >= 3:
                    a[1:3] += 0.5  # an in-place op through a view of a
                else:
                    a.sub_(0.1)

            record("inplace", inplace)
        elif op < 0.85 and a._vjp is not None:
            tag = f"hook{step}"
            scale = rng.choice([None, 2.0])

            def hook(g: Any, tag: str = tag, scale: Any = scale) -> Any:
                log.append(("hook", tag, _host(g)))
                return None if scale is None else g * scale

            try:
                a.register_hook(hook)
            except Exception as exc:
                log.append(("hook-error", type(exc).__name__))
        else:
            record("sum", lambda a=a, b=b: a * b.sum() if b.ndim else a * b)

    candidates = [t for t in made if t.requires_grad]
    if len(candidates) < 2:
        return tuple(log)
    for _ in range(3):  # several grad calls over the same graph (retained), then a full backward
        k = rng.randrange(1, 3)
        start = rng.randrange(len(candidates) // 2)
        inputs = rng.sample(candidates[start:], min(k, len(candidates) - start))
        outputs = [t for t in candidates if t.shape == candidates[-1].shape][-2:] or [candidates[-1]]
        y = sum(((o * o).sum() for o in outputs), ds.tensor(0.0, dtype=ds.float64))
        try:
            grads = ds.autograd.grad(y, inputs, retain_graph=True, allow_unused=True)
            log.append(("grad", [None if g is None else _host(g) for g in grads]))
        except Exception as exc:
            log.append(("grad-error", type(exc).__name__, str(exc)[:80]))
        if rng.random() < 0.4:
            nonleaf = [t for t in inputs if t._vjp is not None]
            if nonleaf:
                try:
                    y.backward(inputs=nonleaf, retain_graph=True)
                    with warnings.catch_warnings():  # .grad of a non-leaf: torch's warning, not the point here
                        warnings.simplefilter("ignore", UserWarning)
                        log.append(("inputs", [None if t.grad is None else _host(t.grad) for t in nonleaf]))
                except Exception as exc:
                    log.append(("inputs-error", type(exc).__name__, str(exc)[:80]))
    try:
        y.backward()
        log.append(("leaves", [None if t.grad is None else _host(t.grad) for t in leaves]))
    except Exception as exc:
        log.append(("backward-error", type(exc).__name__, str(exc)[:80]))
    return tuple(log)


@pytest.mark.parametrize("seed", range(60))
def test_random_programs_give_the_same_results_pruned_and_unpruned(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    pruned = _random_program(seed)
    monkeypatch.setattr(autograd, "_PRUNE_BY_SEQ", False)
    full = _random_program(seed)
    assert pruned == full


def _retained_input_of_backward(lib: Any) -> list[list[float]]:
    w = lib.tensor([0.5, -0.25], dtype=lib.float64, requires_grad=True)
    x = w.tanh() * 1.5
    x.retain_grad()
    (x.exp() * x.detach()).sum().backward(inputs=[x], retain_graph=True)
    first = _host(x.grad)
    (x * 3.0).sum().backward(inputs=[x])
    return [first, _host(x.grad)]


def test_backward_inputs_fills_a_retained_input_once_as_torch() -> None:
    # the input's gradient is accumulated once, not also filled as a retained gradient on the way
    np.testing.assert_allclose(_retained_input_of_backward(ds), _retained_input_of_backward(torch), rtol=1e-12)
