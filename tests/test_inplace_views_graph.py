"""An in-place op on a view of a tensor outside the graph, with an operand that requires grad, brings
the tensor the view was taken from into the graph, as PyTorch's CopySlices: the buffer (and its
other views) then require grad and backward reaches the operand (``out[:, :d].copy_(x)`` per head,
``out.narrow(...).index_add_(...)`` in graph code). Values and gradients are compared with PyTorch
in float64."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")

BASE_SHAPE = (4, 6)

# the view of the (4, 6) buffer written into: each a chain of view ops of its own kind
VIEWS: dict[str, Callable[[Any], Any]] = {
    "slice": lambda b: b[:, 1:3],
    "narrow": lambda b: b.narrow(0, 1, 2),
    "select": lambda b: b.select(1, 2),
    "steps": lambda b: b[::2, 1::2],
    "t_slice": lambda b: b.t()[1:3],
    "chain": lambda b: b[1:][:, ::2],
    "unsqueeze": lambda b: b[1].unsqueeze(0),
    "reshape": lambda b: b[1:3].reshape(3, 4),
}


def _operand(lib: Any, rng: np.random.Generator, shape: tuple[int, ...], low: float = -1.0) -> Any:
    return lib.tensor(rng.uniform(low, 1.0, shape), dtype=lib.float64, requires_grad=True)


def _index(lib: Any, values: Any) -> Any:
    return lib.tensor(np.asarray(values), dtype=lib.int64)


# op name -> fn(lib, view, rng) that writes into the view and returns the operands requiring grad
def _scatter_index(shape: tuple[int, ...]) -> np.ndarray:
    # a permutation along dim 0 of each column, so scatter_ writes each element once
    return np.argsort(np.random.default_rng(3).uniform(size=shape), axis=0)


def _op_add(lib, v, rng):
    s = _operand(lib, rng, v.shape)
    v.add_(s, alpha=2.0)
    return [s]


def _op_sub(lib, v, rng):
    s = _operand(lib, rng, v.shape)
    v.sub_(s)
    return [s]


def _op_mul(lib, v, rng):
    s = _operand(lib, rng, v.shape)
    v.mul_(s)
    return [s]


def _op_div(lib, v, rng):
    s = _operand(lib, rng, v.shape, low=0.5)
    v.div_(s)
    return [s]


def _op_copy(lib, v, rng):
    s = _operand(lib, rng, v.shape)
    v.copy_(s)
    return [s]


def _op_index_add(lib, v, rng):
    s = _operand(lib, rng, (2, *v.shape[1:]))
    v.index_add_(0, _index(lib, [v.shape[0] - 1, 0]), s)
    return [s]


def _op_index_copy(lib, v, rng):
    s = _operand(lib, rng, (1, *v.shape[1:]))
    v.index_copy_(0, _index(lib, [v.shape[0] - 1]), s)
    return [s]


def _op_scatter(lib, v, rng):
    s = _operand(lib, rng, v.shape)
    v.scatter_(0, _index(lib, _scatter_index(v.shape)), s)
    return [s]


def _op_scatter_add(lib, v, rng):
    s = _operand(lib, rng, v.shape)
    v.scatter_add_(0, _index(lib, np.zeros(v.shape, np.int64)), s)
    return [s]


def _op_masked_fill(lib, v, rng):
    s = _operand(lib, rng, ())
    mask = lib.tensor(np.arange(int(np.prod(v.shape))).reshape(v.shape) % 3 == 0)
    v.masked_fill_(mask, s)
    return [s]


def _op_masked_scatter(lib, v, rng):
    mask = lib.tensor(np.arange(int(np.prod(v.shape))).reshape(v.shape) % 2 == 0)
    s = _operand(lib, rng, v.shape)
    v.masked_scatter_(mask, s)
    return [s]


def _op_addcmul(lib, v, rng):
    a, b = _operand(lib, rng, v.shape), _operand(lib, rng, v.shape)
    v.addcmul_(a, b, value=0.5)
    return [a, b]


def _op_lerp(lib, v, rng):
    end, weight = _operand(lib, rng, v.shape), _operand(lib, rng, v.shape, low=0.0)
    v.lerp_(end, weight)
    return [end, weight]


def _op_clamp(lib, v, rng):
    low, high = _operand(lib, rng, v.shape, low=-0.5), _operand(lib, rng, v.shape, low=0.0)
    v.clamp_(min=low * 0.5, max=high + 0.5)
    return [low, high]


def _op_put(lib, v, rng):
    s = _operand(lib, rng, (2,))
    v.put_(_index(lib, [0, int(np.prod(v.shape)) - 1]), s)
    return [s]


def _op_index_put(lib, v, rng):
    s = _operand(lib, rng, (1, *v.shape[1:]))
    v.index_put_((_index(lib, [v.shape[0] - 1]),), s, accumulate=True)
    return [s]


OPS = {f.__name__[4:]: f for f in (
    _op_add, _op_sub, _op_mul, _op_div, _op_copy, _op_index_add, _op_index_copy, _op_scatter, _op_scatter_add,
    _op_masked_fill, _op_masked_scatter, _op_addcmul, _op_lerp, _op_clamp, _op_put, _op_index_put,
)}  # fmt: skip


def _run(lib: Any, view: str, op: str, *, before: bool = True) -> tuple[list[np.ndarray], list[Any]]:
    """Write into a view of a plain buffer; backward through the buffer, the view and (``before``) a
    view of the buffer taken before the write. The buffer's values, then the operands' gradients."""
    rng = np.random.default_rng(0)
    buf = lib.tensor(rng.uniform(0.5, 1.5, BASE_SHAPE), dtype=lib.float64)
    rows = buf[2:]  # a view taken before the write
    v = VIEWS[view](buf)
    operands = OPS[op](lib, v, rng)
    assert buf.requires_grad and v.requires_grad and rows.requires_grad
    w = lib.tensor(rng.uniform(-1.0, 1.0, BASE_SHAPE), dtype=lib.float64)
    loss = (buf * w).sum() + (v * v).sum()
    if before:
        loss = loss + (rows**2).sum()
    loss.backward()
    grads = [np.zeros(o.shape) if o.grad is None else o.grad.numpy() for o in operands]
    return [buf.detach().numpy(), *grads], [buf, v, rows]


@pytest.mark.parametrize("view", list(VIEWS))
@pytest.mark.parametrize("op", list(OPS))
def test_in_place_op_on_a_view_of_a_plain_buffer_matches_torch(view: str, op: str) -> None:
    ours, _ = _run(ds, view, op)
    theirs, _ = _run(torch, view, op)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_the_view_and_the_views_taken_before_see_the_buffers_new_history() -> None:
    for lib in (ds, torch):
        p = lib.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
        buf = lib.zeros(3, 4)
        flat, col = buf.view(12), buf[:, 3]
        d = buf.detach()  # no view: stays outside the graph, as in torch
        v = buf[:, :2]
        v.index_add_(0, lib.tensor([0, 2]), p)
        assert buf.requires_grad and v.requires_grad and flat.requires_grad and col.requires_grad
        assert not d.requires_grad
        assert buf.grad_fn is not None and flat.grad_fn is not None and not v.is_leaf
        (flat * lib.arange(12.0)).sum().backward()
        np.testing.assert_allclose(p.grad.numpy(), [[0.0, 1.0], [8.0, 9.0]])


def test_writes_through_views_one_after_another_as_per_head_fills() -> None:
    results = []
    for lib in (ds, torch):
        rng = np.random.default_rng(1)
        heads = [lib.tensor(rng.normal(size=(5, 3)), dtype=lib.float64, requires_grad=True) for _ in range(3)]
        out = lib.zeros(5, 9, dtype=lib.float64)
        per_head = out.view(5, 3, 3)  # taken before the writes
        for k, h in enumerate(heads):
            out.narrow(1, 3 * k, 3).copy_(h * (k + 1))
        out[:, 1:8:3].mul_(heads[0])  # a strided view, after the buffer joined the graph
        loss = (per_head.sin() * lib.arange(45.0, dtype=lib.float64).view(5, 3, 3)).sum()
        loss.backward()
        results.append([out.detach().numpy()] + [h.grad.numpy() for h in heads])
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("op", ["exp_", "sigmoid_", "mul_", "copy_"])
@pytest.mark.parametrize("view", ["slice", "t_slice", "chain", "select"])
def test_in_place_op_on_a_view_of_a_tensor_in_the_graph_matches_torch(view: str, op: str) -> None:
    results = []
    for lib in (ds, torch):
        rng = np.random.default_rng(2)
        w = lib.tensor(rng.uniform(0.5, 1.5, BASE_SHAPE), dtype=lib.float64, requires_grad=True)
        h = w * 2
        v = VIEWS[view](h)
        if op == "mul_":
            v.mul_(3.0)
        elif op == "copy_":
            v.copy_(lib.ones(v.shape, dtype=lib.float64))
        else:
            getattr(v, op)()
        (h * h).sum().backward()
        results.append((h.detach().numpy(), w.grad.numpy()))
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("view", ["slice", "t_slice", "steps"])
@pytest.mark.parametrize("op", ["mul", "lerp", "copy"])
def test_double_backward_through_a_write_into_a_view_of_a_plain_buffer(view: str, op: str) -> None:
    results = []
    for lib in (ds, torch):
        rng = np.random.default_rng(4)
        buf = lib.tensor(rng.uniform(0.5, 1.5, BASE_SHAPE), dtype=lib.float64)
        v = VIEWS[view](buf)
        operands = OPS[op](lib, v, rng)
        loss = (buf**3).sum()
        grads = lib.autograd.grad(loss, operands, create_graph=True)
        sum((g**2).sum() for g in grads).backward()
        results.append([o.grad.numpy() for o in operands])
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_a_write_to_the_whole_buffer_brings_its_views_into_the_graph() -> None:
    for lib in (ds, torch):
        p = lib.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
        buf = lib.zeros(2, 2)
        u = buf.t()
        buf.add_(p)
        assert u.requires_grad
        (u * lib.tensor([[1.0, 2.0], [3.0, 4.0]])).sum().backward()
        np.testing.assert_allclose(p.grad.numpy(), [[1.0, 3.0], [2.0, 4.0]])


def test_a_view_taken_under_no_grad_and_written_with_grad_is_refused_like_torch() -> None:
    for lib in (ds, torch):
        p = lib.ones(2, requires_grad=True)
        buf = lib.zeros(2, 4)
        with lib.no_grad():
            v = buf[0, :2]
        with pytest.raises(RuntimeError, match="A view was created in no_grad mode"):
            v.add_(p)
        with lib.no_grad():
            v.add_(p)  # written under no_grad too: fine
        assert not buf.requires_grad
        np.testing.assert_allclose(buf.numpy()[0], [1.0, 1.0, 0.0, 0.0])


def test_a_view_of_a_leaf_that_requires_grad_is_still_refused() -> None:
    w = ds.zeros(2, 4, requires_grad=True)
    v = w[:, :2]
    with pytest.raises(RuntimeError, match="view of a leaf Variable"):
        v.add_(ds.ones(2, 2, requires_grad=True))


def test_writes_without_gradients_leave_the_buffer_outside_the_graph() -> None:
    buf = ds.zeros(3, 4)
    buf[:, :2].add_(ds.ones(3, 2))
    buf.narrow(1, 2, 2).copy_(ds.full((3, 2), 2.0))
    with ds.no_grad():
        buf[0].mul_(ds.ones(4, requires_grad=True) * 3)
    assert not buf.requires_grad and buf.grad_fn is None
    np.testing.assert_allclose(buf.numpy(), [[3.0, 3.0, 6.0, 6.0], [1.0, 1.0, 2.0, 2.0], [1.0, 1.0, 2.0, 2.0]])


def test_views_of_views_keep_no_chain_alive_and_a_temporary_view_needs_no_heap_search(monkeypatch) -> None:
    import gc
    import weakref

    buf = ds.zeros(8, 4)
    v = buf
    firsts = []
    for _ in range(4):  # each view taken from the one before
        v = v[1:]
        firsts.append(weakref.ref(v))
    assert all(r() is None for r in firsts[:-1])  # only the last one lives
    v[:, :2].add_(ds.ones(4, 2, requires_grad=True))  # v, taken before, joins too (found on the heap)
    assert v.requires_grad and buf.requires_grad
    searched = []
    monkeypatch.setattr(gc, "get_referrers", lambda *a: searched.append(a) or [])
    other = ds.zeros(3, 4)
    other[:, :2].add_(ds.ones(3, 2, requires_grad=True))  # nothing else holds a view of it: no search
    assert other.requires_grad and not searched
