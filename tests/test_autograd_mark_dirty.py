"""``ctx.mark_dirty``: a custom Function that writes an input in place, checked against PyTorch."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import downslope as ds
from downslope.errors import StateError

torch = pytest.importorskip("torch")


def _functions(lib: Any) -> tuple[Any, Any]:
    class Exp_(lib.autograd.Function):  # type: ignore[misc,name-defined]
        @staticmethod
        def forward(ctx: Any, x: Any) -> Any:
            x.exp_()
            ctx.mark_dirty(x)
            ctx.save_for_backward(x)
            return x

        @staticmethod
        def backward(ctx: Any, g: Any) -> Any:
            (y,) = ctx.saved_tensors
            return g * y

    class AddInto(lib.autograd.Function):  # type: ignore[misc,name-defined]
        @staticmethod
        def forward(ctx: Any, x: Any, w: Any) -> Any:
            x.add_(w)
            ctx.mark_dirty(x)
            return x, w * 2

        @staticmethod
        def backward(ctx: Any, g: Any, g2: Any) -> Any:
            return g, g + 2 * g2

    return Exp_, AddInto


def _program(lib: Any, values: np.ndarray, operand: np.ndarray) -> list[np.ndarray]:
    """Ops before and after the write use both histories of the written tensor."""
    exp_, add_into = _functions(lib)
    p = lib.tensor(values, dtype=lib.float64, requires_grad=True)
    w = lib.tensor(operand, dtype=lib.float64, requires_grad=True)
    q = p * 3
    before = q + 1  # reads no values: its gradient goes to the history q had before the write
    r = exp_.apply(q)
    buf = lib.zeros(values.shape, dtype=lib.float64)
    out, twice = add_into.apply(buf, w * r)
    loss = (r * r).sum() + (before * before).sum() + (out * lib.cos(out)).sum() + twice.sum()
    loss.backward()
    return [r.detach().numpy(), out.detach().numpy(), buf.detach().numpy(), p.grad.numpy(), w.grad.numpy()]


def test_mark_dirty_values_and_gradients_match_torch() -> None:
    rng = np.random.default_rng(0)
    values, operand = rng.standard_normal(5) * 0.5, rng.standard_normal(5)
    ours = _program(ds, values, operand)
    theirs = _program(torch, values, operand)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_mark_dirty_output_is_the_input_and_joins_the_graph() -> None:
    exp_, add_into = _functions(ds)
    p = ds.tensor([0.0, 1.0], requires_grad=True)
    q = p.clone()
    r = exp_.apply(q)
    assert r is q and q.requires_grad
    (r * 2).sum().backward()
    np.testing.assert_allclose(p.grad.numpy(), 2 * np.exp([0.0, 1.0]), rtol=1e-6)
    buf = ds.zeros(2)  # a buffer outside the graph takes the Function's history
    w = ds.tensor([1.0, 2.0], requires_grad=True)
    out, _ = add_into.apply(buf, w)
    assert out is buf and buf.requires_grad
    (buf * buf).sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), [2.0, 4.0])


def test_mark_dirty_without_grad_only_writes() -> None:
    exp_, _ = _functions(ds)
    q = ds.tensor([0.0, 1.0])
    r = exp_.apply(q)
    assert r is q and not r.requires_grad
    np.testing.assert_allclose(q.numpy(), np.exp([0.0, 1.0]), rtol=1e-6)


def test_mark_dirty_refuses_what_torch_refuses() -> None:
    exp_, _ = _functions(ds)
    leaf = ds.tensor([0.0, 1.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        exp_.apply(leaf)

    class NotReturned(ds.autograd.Function):
        @staticmethod
        def forward(ctx: Any, x: Any) -> Any:
            x.mul_(2)
            ctx.mark_dirty(x)
            return x * 1

        @staticmethod
        def backward(ctx: Any, g: Any) -> Any:
            return g

    with pytest.raises(StateError, match="not returned as output"):
        NotReturned.apply(ds.tensor([1.0], requires_grad=True) * 1)
    # an op that saved the values before the write cannot run its backward (torch raises the same)
    p = ds.tensor([0.5, 1.0], requires_grad=True)
    q = p * 3
    s = q.sin()
    exp_.apply(q)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        (q.sum() + s.sum()).backward()


def test_mark_dirty_on_a_view_is_refused_by_name() -> None:
    _, add_into = _functions(ds)
    buf = ds.zeros(4)
    w = ds.ones(2, requires_grad=True)
    # a view written by a Function of two outputs: torch's refusal (one output: test_autograd_mark_dirty_views)
    with pytest.raises(StateError, match="AddInto: If your Function modifies inplace an input that is a view"):
        add_into.apply(buf[:2], w)


def test_mark_dirty_hooks_stay_with_their_history_as_torchs() -> None:
    results = []
    for lib in (ds, torch):
        exp_, _ = _functions(lib)
        seen: list[tuple[str, list[float]]] = []
        p = lib.tensor([0.5, 1.0], dtype=lib.float64, requires_grad=True)
        q = p * 2
        q.register_hook(lambda g, seen=seen: seen.append(("before", g.tolist())))
        exp_.apply(q)
        q.register_hook(lambda g, seen=seen: seen.append(("after", g.tolist())))
        (q * 3).sum().backward()
        results.append((seen, p.grad.tolist()))
    (ours, our_grad), (theirs, their_grad) = results
    assert [name for name, _ in ours] == [name for name, _ in theirs] == ["after", "before"]
    for (_, a), (_, b) in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    np.testing.assert_allclose(our_grad, their_grad, rtol=1e-12)


def test_mark_dirty_non_differentiable_input_becomes_a_constant() -> None:
    results = []
    for lib in (ds, torch):

        class DoubleND(lib.autograd.Function):  # type: ignore[misc,name-defined]
            @staticmethod
            def forward(ctx: Any, x: Any, w: Any) -> Any:
                x.mul_(2)
                ctx.mark_dirty(x)
                ctx.mark_non_differentiable(x)
                return x, w * 3

            @staticmethod
            def backward(ctx: Any, gx: Any, gw: Any) -> Any:
                return None, gw * 3

        p = lib.tensor([1.0, 2.0], dtype=lib.float64, requires_grad=True)
        q = p * 1
        before = q * 5
        w = lib.ones(2, dtype=lib.float64, requires_grad=True)
        x, y = DoubleND.apply(q, w)
        (before.sum() + y.sum()).backward()
        results.append((x.requires_grad, x.detach().numpy().copy(), p.grad.numpy(), w.grad.numpy()))
    (req, x1, pg1, wg1), (treq, x2, pg2, wg2) = results
    assert req is treq is False
    np.testing.assert_allclose(x1, x2)
    np.testing.assert_allclose(pg1, pg2)
    np.testing.assert_allclose(wg1, wg2)
