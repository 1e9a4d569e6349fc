"""Tensor hooks, views used as backward's root, and saved_tensors_hooks around in-place ops, compared
with PyTorch in float64: a hook registered before an in-place op sees the gradient of the value it was
registered on (torch's "Behavior of Tensor hooks when Tensor is modified in-place"), a view taken before
a write to its base and used as the root differentiates its current values, a custom Function under
saved_tensors_hooks keeps its double backward, and values packed as copies skip the version check."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")

X = np.random.default_rng(0).standard_normal((2, 3))
W = np.random.default_rng(1).standard_normal((3, 3))
LIBS = (ds, torch)

# the in-place op applied to the hooked tensor ``a`` (the pytorch-grad-cam pattern: a forward hook calls
# ``o.register_hook(save_grad)``, then the model modifies ``o`` in place)
WRITES: dict[str, Callable[[Any, Any], Any]] = {
    "relu_": lambda lib, a: a.relu_(),
    "mul_": lambda lib, a: a.mul_(2.0),
    "mul_tensor": lambda lib, a: a.mul_(lib.tensor([0.0, 2.0, -1.0], dtype=lib.float64)),
    "clamp_": lambda lib, a: a.clamp_(min=0.1),
    "sigmoid_": lambda lib, a: a.sigmoid_(),
    "masked_fill_": lambda lib, a: a.masked_fill_(a < 0, 0.0),
    "setitem_mask": lambda lib, a: a.__setitem__(a < 0, 0.0),
    "top_level_relu_": lambda lib, a: lib.relu_(a),
    "iadd_twice": lambda lib, a: a.add_(1.0).mul_(3.0),
}


def _np(t: Any) -> np.ndarray:
    return np.asarray(t.detach().numpy())


@pytest.mark.parametrize("write", WRITES)
def test_a_hook_registered_before_an_inplace_op_sees_the_old_values_gradient(write: str) -> None:
    results = []
    for lib in LIBS:
        x = lib.tensor(X, dtype=lib.float64, requires_grad=True)
        a = x @ lib.tensor(W, dtype=lib.float64)
        seen: list[Any] = []
        a.register_hook(lambda g, seen=seen: seen.append(_np(g)))
        WRITES[write](lib, a)
        (a * 5).sum().backward()
        results.append((seen, _np(x.grad)))
    (ours, ours_grad), (theirs, theirs_grad) = results
    assert len(ours) == len(theirs) == 1
    np.testing.assert_allclose(ours[0], theirs[0], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ours_grad, theirs_grad, rtol=1e-12, atol=1e-12)


def test_hooks_before_and_after_an_inplace_op_and_retain_grad_as_torch() -> None:
    """A hook before the write scales the old value's gradient only; one after it, and retain_grad (which
    follows the tensor to its new value, after that hook), see the new value's gradient."""
    results = []
    for lib in LIBS:
        x = lib.tensor([0.5, 1.0], dtype=lib.float64, requires_grad=True)
        h = x * 3
        seen: list[Any] = []
        h.retain_grad()
        h.register_hook(lambda g, seen=seen: seen.append(("before", _np(g).tolist())) or g * 10)
        h.mul_(lib.tensor([0.0, 2.0], dtype=lib.float64))
        h.register_hook(lambda g, seen=seen: seen.append(("after", _np(g).tolist())) or g * 100)
        (h * 5).sum().backward()
        results.append((seen, _np(h.grad).tolist(), _np(x.grad).tolist()))
    assert results[0] == results[1]


def test_a_hook_before_an_inplace_residual_add_leaves_the_other_operand_alone() -> None:
    results = []
    for lib in LIBS:
        x = lib.tensor([0.5, 1.0], dtype=lib.float64, requires_grad=True)
        identity = lib.tensor([2.0, 3.0], dtype=lib.float64, requires_grad=True)
        out = x * 3
        out.register_hook(lambda g: g * 0)
        out += identity
        out.sum().backward()
        results.append((_np(x.grad).tolist(), _np(identity.grad).tolist()))
    assert results[0] == results[1]


@pytest.mark.parametrize("loss", ["view", "base", "both", "earlier_use"])
def test_hooks_on_a_view_and_its_base_before_an_inplace_op_on_the_view(loss: str) -> None:
    """torch keeps a view's hooks on its old grad_fn: reached by ops that used the view before the write,
    not by the write itself (CopySlices goes to the base's old history, whose hooks see it)."""
    results = []
    for lib in LIBS:
        x = lib.tensor([0.5, 1.0, 2.0], dtype=lib.float64, requires_grad=True)
        h = x * 3
        v = h[1:]
        on_view: list[Any] = []
        on_base: list[Any] = []
        v.register_hook(lambda g, s=on_view: s.append(_np(g).tolist()))
        h.register_hook(lambda g, s=on_base: s.append(_np(g).tolist()))
        early = v * 7
        v.mul_(2.0)
        total = {
            "view": (v * 5).sum(),
            "base": (h * 5).sum(),
            "both": (v * 5).sum() + (h * 7).sum(),
            "earlier_use": (h * 5).sum() + early.sum(),
        }[loss]
        total.backward()
        results.append((on_view, on_base, _np(x.grad).tolist()))
    assert results[0] == results[1]


def test_a_hook_before_an_inplace_op_under_create_graph_as_torch() -> None:
    results = []
    for lib in LIBS:
        x = lib.tensor(X, dtype=lib.float64, requires_grad=True)
        a = x.sin()
        a.register_hook(lambda g: g * 2)
        a.mul_(a.detach() + 1)
        (gx,) = lib.autograd.grad((a**2).sum(), x, create_graph=True)
        (gg,) = lib.autograd.grad(gx.sum(), x)
        results.append((_np(gx), _np(gg)))
    for ours, theirs in zip(*results):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------- a view as the root after its base's write
ROOTS: dict[str, Callable[[Any, Any], Any]] = {
    "row_with_gradient": lambda lib, h: (h[0], lib.ones(2, dtype=lib.float64)),
    "scalar_element": lambda lib, h: (h[0, 0], None),
    "view_of_view": lambda lib, h: (h[1:][0], lib.tensor([2.0, -1.0], dtype=lib.float64)),
    "transpose": lambda lib, h: (h.t(), lib.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=lib.float64)),
}


@pytest.mark.parametrize("root", ROOTS)
def test_a_view_used_as_the_root_after_an_inplace_write_to_its_base(root: str) -> None:
    results = []
    for lib in LIBS:
        x = lib.tensor([[0.5, -1.0], [2.0, 3.0]], dtype=lib.float64, requires_grad=True)
        h = x * x
        out, gradient = ROOTS[root](lib, h)
        h.mul_(3.0)
        out.backward(gradient)
        results.append(_np(x.grad))
    np.testing.assert_allclose(results[0], results[1], rtol=1e-12, atol=1e-12)


def _row_then_write(v: Any) -> Any:
    h = v * 1
    row = h[0]
    h.mul_(3.0)
    return row


def test_a_stale_view_root_in_autograd_grad_jacrev_and_retain_grad() -> None:
    results = []
    for lib in LIBS:
        x = lib.zeros(2, 2, dtype=lib.float64, requires_grad=True)
        h = x * 1
        row = h[0]
        h.mul_(3.0)
        row.retain_grad()
        got_row, got_x = lib.autograd.grad(row, [row, x], lib.ones(2, dtype=lib.float64), retain_graph=True)
        row.backward(lib.full((2,), 2.0, dtype=lib.float64))
        jac = lib.func.jacrev(_row_then_write)(lib.zeros(2, 2, dtype=lib.float64))
        results.append((_np(got_row), _np(got_x), _np(row.grad), _np(x.grad), _np(jac)))
    for ours, theirs in zip(*results):
        np.testing.assert_array_equal(ours, theirs)


# --------------------------------------------------------------- saved_tensors_hooks
def test_a_custom_function_under_saved_tensors_hooks_keeps_its_double_backward() -> None:
    results = []
    for lib in LIBS:

        class Mul(lib.autograd.Function):  # type: ignore[misc, name-defined]
            @staticmethod
            def forward(ctx: Any, a: Any, b: Any) -> Any:
                ctx.save_for_backward(a, b)
                return a * b

            @staticmethod
            def backward(ctx: Any, g: Any) -> Any:
                a, b = ctx.saved_tensors
                return g * b, g * a

        x = lib.tensor([1.0, 2.0, 3.0], dtype=lib.float64, requires_grad=True)
        packed: list[bool] = []
        with lib.autograd.graph.saved_tensors_hooks(
            lambda t, p=packed: p.append(t.requires_grad) or t.clone(), lambda p: p
        ):
            y = (Mul.apply(x, x) + x.sin()).sum()
        (g,) = lib.autograd.grad(y, x, create_graph=True)
        (gg,) = lib.autograd.grad(g.sum(), x)
        results.append((_np(g), _np(gg), packed))
    (g, gg, packed), (gt, ggt, packed_t) = results
    np.testing.assert_allclose(g, gt, rtol=1e-12)
    np.testing.assert_allclose(gg, ggt, rtol=1e-12)
    np.testing.assert_allclose(gg, 2 - np.sin([1.0, 2.0, 3.0]), rtol=1e-12)  # the closed form
    assert packed == packed_t


def test_a_custom_function_without_grad_packs_nothing_and_backward_unchanged() -> None:
    class Square(ds.autograd.Function):
        @staticmethod
        def forward(ctx: Any, a: Any) -> Any:
            ctx.save_for_backward(a)
            return a * a

        @staticmethod
        def backward(ctx: Any, g: Any) -> Any:
            (a,) = ctx.saved_tensors
            return 2 * a * g

    calls: list[int] = []
    with ds.autograd.graph.saved_tensors_hooks(lambda t: calls.append(1) or t, lambda p: p):
        Square.apply(ds.tensor([1.0, 2.0]))  # nothing requires grad: nothing recorded, nothing packed (torch)
        assert calls == []
        x = ds.tensor([1.0, 2.0], requires_grad=True)
        y = Square.apply(x).sum()
    y.backward()
    assert calls == [1] and x.grad.tolist() == [2.0, 4.0]


@pytest.mark.parametrize("op", ["tanh", "exp", "sigmoid", "mul"])
def test_saved_tensors_hooks_that_pack_a_copy_skip_the_inplace_version_check(op: str) -> None:
    results = []
    for lib in LIBS:
        x = lib.tensor([0.5, 1.0], dtype=lib.float64, requires_grad=True)
        with lib.autograd.graph.saved_tensors_hooks(lambda t: t.clone(), lambda p: p):
            y = x.tanh() if op == "tanh" else x.exp() if op == "exp" else x.sigmoid() if op == "sigmoid" else x * x
        y.mul_(2.0)
        y.sum().backward()
        results.append(_np(x.grad))
    np.testing.assert_allclose(results[0], results[1], rtol=1e-12)


def test_without_saved_tensors_hooks_the_version_check_still_refuses() -> None:
    x = ds.tensor([0.5, 1.0], dtype=ds.float64, requires_grad=True)
    y = x.tanh()
    y.mul_(2.0)
    with pytest.raises(ds.errors.StateError, match="modified by an inplace operation"):
        y.sum().backward()


def test_packed_copies_under_create_graph_still_refuse_a_modified_value() -> None:
    """create_graph computes with the graph's own tensors (never silently with the modified values)."""
    x = ds.tensor([0.5, 1.0], dtype=ds.float64, requires_grad=True)
    with ds.autograd.graph.saved_tensors_hooks(lambda t: t.clone(), lambda p: p):
        y = x.tanh()
    y.mul_(2.0)
    with pytest.raises(ds.errors.StateError, match="modified by an inplace operation"):
        ds.autograd.grad(y.sum(), x, create_graph=True)


# --------------------------------------------------------------- identical views as an in-place operand
SAME_VIEWS: dict[str, Callable[[Any], Any]] = {
    "column_imul": lambda x: x[:, 0].__imul__(x[:, 0]),
    "slice_mul_": lambda x: x[:, 1:].mul_(x[:, 1:]),
    "steps_add_": lambda x: x[::2, ::2].add_(x[::2, ::2]),
    "transpose_sub_": lambda x: x.t()[1:].sub_(x.t()[1:]),
}


@pytest.mark.parametrize("case", SAME_VIEWS)
def test_an_inplace_op_with_a_second_view_of_the_same_elements_is_allowed(case: str) -> None:
    results = []
    for lib in LIBS:
        x = lib.arange(12.0, dtype=lib.float64).view(3, 4)
        SAME_VIEWS[case](x)
        results.append(_np(x))
    np.testing.assert_array_equal(results[0], results[1])


def test_an_inplace_op_with_an_overlapping_strided_view_is_still_refused() -> None:
    x = ds.arange(12.0).view(3, 4)
    with pytest.raises(ds.errors.StateError, match="single memory location"):
        x[:, :2].mul_(x[:, 1:3])


def test_an_inplace_add_of_the_same_view_in_the_graph_as_torch() -> None:
    results = []
    for lib in LIBS:
        w = lib.tensor(X, dtype=lib.float64, requires_grad=True)
        x = w * 1
        x[:, 1:].add_(x[:, 1:])
        (x * lib.tensor(W[:2], dtype=lib.float64)).sum().backward()
        results.append((_np(x), _np(w.grad)))
    for ours, theirs in zip(*results):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12)


def test_a_custom_functions_packed_copy_skips_the_version_check_as_torch() -> None:
    results = []
    for lib in LIBS:

        class Square(lib.autograd.Function):  # type: ignore[misc, name-defined]
            @staticmethod
            def forward(ctx: Any, a: Any) -> Any:
                ctx.save_for_backward(a)
                return a * a

            @staticmethod
            def backward(ctx: Any, g: Any) -> Any:
                (a,) = ctx.saved_tensors
                return 2 * a * g

        x = lib.tensor([0.5, 1.0], dtype=lib.float64, requires_grad=True)
        h = x * 1
        with lib.autograd.graph.saved_tensors_hooks(lambda t: t.clone(), lambda p: p):
            y = Square.apply(h)
        h.mul_(3.0)
        y.sum().backward()
        results.append(_np(x.grad))
    np.testing.assert_allclose(results[0], results[1], rtol=1e-12)


@pytest.mark.parametrize("reduce", ["mean", "mean_dim", "expand_mean"])
def test_hook_writing_its_gradient_in_place_after_a_reduction_matches_torch(reduce):
    # gradient hooks that scale in place (g.mul_(s), g.clamp_(...)): a reduction's gradient may be a
    # read-only broadcast view; the hook writes into its own copy and the written values flow on
    def run(lib):
        x = lib.tensor(X, requires_grad=True)
        h = x * 3.0
        h.register_hook(lambda g: g.mul_(2.0))
        x.register_hook(lambda g: g.add_(1.0))
        if reduce == "mean":
            loss = h.mean()
        elif reduce == "mean_dim":
            loss = (h.mean(dim=0) * lib.tensor([1.0, 2.0, 3.0], dtype=lib.float64)).sum()
        else:
            loss = h[:1].expand(4, 3).mean()
        loss.backward()
        return x.grad.numpy()

    np.testing.assert_allclose(run(ds), run(torch), rtol=1e-12)
