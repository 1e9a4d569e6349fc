"""The op contract (downslope.graph): a custom op written with the public helpers, the two rule
namespaces, and the module's place below tensor and ops in the import order."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import downslope as ds
from downslope import graph
from downslope.graph import ArrayRules, TensorRules, VJPRule
from downslope.tensor import Tensor, record_op, to_array, wrap_array


def _softsign_vjp(g: Any, y: Any, args: tuple[Any, ...], saved: Any, needs: tuple[bool, ...], xp: Any) -> tuple[Any]:
    # d/dx x / (1 + |x|) = 1 / (1 + |x|)^2, written with operators and xp helpers only, so the same rule
    # runs on arrays (ArrayRules) and, under create_graph, on tensors (TensorRules)
    (x,) = args
    d = 1 + x * xp.sign(x)
    return (g / (d * d),)


def softsign(x: Tensor) -> Tensor:
    """A custom op on the public contract: forward on the array, the rule beside it."""
    rule: VJPRule = _softsign_vjp  # the Protocol accepts a plain function with the rule's signature
    return record_op(x.array / (1 + np.abs(x.array)), (x,), rule)


def test_a_custom_op_records_runs_backward_and_matches_the_closed_form():
    x = ds.tensor([-2.0, -0.5, 0.0, 1.5], requires_grad=True)
    y = softsign(x)
    assert y.requires_grad and y.grad_fn is not None
    np.testing.assert_allclose(y.detach().numpy(), x.detach().numpy() / (1 + np.abs(x.detach().numpy())), rtol=1e-6)
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 1 / (1 + np.abs(x.detach().numpy())) ** 2, rtol=1e-6)


def test_a_custom_op_passes_gradcheck():
    x = ds.tensor([-2.0, -0.5, 0.3, 1.5])
    assert ds.gradcheck(lambda t: softsign(t) * 3.0, [x]).passed


def test_a_custom_op_is_differentiable_twice_under_create_graph():
    # the gradient computed with create_graph=True is itself checked against finite differences
    def first_gradient(t: Tensor) -> Tensor:
        (g,) = ds.autograd.grad(softsign(t).sum(), [t], create_graph=True)
        return g

    x = ds.tensor([-2.0, -0.5, 0.3, 1.5])
    assert ds.gradcheck(first_gradient, [x]).passed
    xs = ds.tensor([-0.5, 2.0], requires_grad=True)
    (g,) = ds.autograd.grad(softsign(xs).sum(), [xs], create_graph=True)
    g.sum().backward()
    a = np.abs(xs.detach().numpy())
    np.testing.assert_allclose(xs.grad.numpy(), -2 * np.sign(xs.detach().numpy()) / (1 + a) ** 3, rtol=1e-6)


def test_an_op_records_nothing_when_no_input_wants_a_gradient_or_under_no_grad():
    x = ds.tensor([1.0, 2.0])
    assert not softsign(x).requires_grad
    w = ds.tensor([1.0, 2.0], requires_grad=True)
    with ds.no_grad():
        assert not softsign(w).requires_grad


def test_wrap_array_shares_the_array_and_to_array_applies_the_dtype_policy():
    arr = np.arange(3.0)
    t = wrap_array(arr)
    assert t.array is arr and not t.requires_grad and t.dtype == np.float64
    assert to_array([1, 2.5]).dtype == np.float32
    assert to_array([1, 2]).dtype == np.int64


def _helpers(namespace: type) -> set[str]:
    return {n for n in vars(namespace) if not n.startswith("_")}


def test_both_rule_namespaces_offer_the_same_helpers():
    assert _helpers(ArrayRules) == _helpers(TensorRules)
    assert {"sin", "cos", "sign", "sigmoid", "cumsum", "einsum", "constant"} <= _helpers(ArrayRules)


@pytest.mark.parametrize("name", ["sin", "cos", "sign", "sqrt", "sinh", "cosh", "exp", "log", "sigmoid"])
def test_the_tensor_namespace_computes_what_the_array_namespace_does(name):
    arr = np.array([0.25, 1.0, 2.5], np.float32)
    ours = getattr(TensorRules, name)(ds.tensor(arr, requires_grad=True))
    assert ours.requires_grad  # recorded, so a rule using it can be differentiated again
    np.testing.assert_allclose(ours.detach().numpy(), getattr(ArrayRules, name)(arr), rtol=1e-6)


def test_the_namespaces_agree_on_cumsum_einsum_and_constant():
    arr = np.arange(6.0).reshape(2, 3)
    t = ds.tensor(arr, dtype=np.float64)
    np.testing.assert_array_equal(TensorRules.cumsum(t, 1).numpy(), ArrayRules.cumsum(arr, 1))
    np.testing.assert_array_equal(TensorRules.einsum("ij,ij->i", t, t).numpy(), ArrayRules.einsum("ij,ij->i", arr, arr))
    assert isinstance(TensorRules.constant(arr), Tensor) and ArrayRules.constant(arr) is arr


def test_the_graph_module_imports_neither_tensor_nor_ops_when_it_is_imported():
    tree = ast.parse(Path(graph.__file__).read_text())
    top_level = [n for n in tree.body if isinstance(n, ast.ImportFrom)]  # not under `if TYPE_CHECKING:`
    modules = {n.module for n in top_level if n.level}
    assert not modules & {"tensor", "ops", "autograd", "functional"}, modules


def test_grad_mode_is_per_thread_as_in_torch() -> None:
    """A no_grad block in one thread leaves recording on in the others, overlapping blocks in two
    threads restore each thread's own mode, and a new thread starts with recording on."""
    import threading

    inside, leave = threading.Event(), threading.Event()
    seen: dict[str, bool] = {}

    def evaluator() -> None:
        with ds.no_grad():
            inside.set()
            leave.wait(5)

    worker = threading.Thread(target=evaluator)
    worker.start()
    inside.wait(5)
    x = ds.ones(2, requires_grad=True)
    seen["main during"] = (x * 2).requires_grad
    with ds.no_grad():  # overlaps the other thread's block and exits before it
        child = threading.Thread(target=lambda: seen.__setitem__("new thread", ds.is_grad_enabled()))
        child.start()
        child.join()
    leave.set()
    worker.join()
    seen["main after"] = ds.is_grad_enabled() and (x * 2).requires_grad
    assert seen == {"main during": True, "new thread": True, "main after": True}


def test_is_inference_mode_enabled_matches_torch() -> None:
    """Inside inference_mode only (no_grad alone does not count), turned off by an inner
    inference_mode(False), restored on exit and around a decorated function, as torch's."""
    torch = pytest.importorskip("torch")
    import threading

    def facts(lib: Any) -> list[bool]:
        seen = [lib.is_inference_mode_enabled()]
        with lib.inference_mode():
            seen.append(lib.is_inference_mode_enabled())
            with lib.inference_mode(False):
                seen.append(lib.is_inference_mode_enabled())
            with lib.no_grad():
                seen.append(lib.is_inference_mode_enabled())
            seen.append(lib.is_inference_mode_enabled())
        with lib.no_grad():
            seen.append(lib.is_inference_mode_enabled())

        @lib.inference_mode()
        def inside() -> bool:
            return bool(lib.is_inference_mode_enabled())

        seen += [inside(), lib.is_inference_mode_enabled()]
        other: list[bool] = []
        with lib.inference_mode():  # per thread: a new thread starts outside it
            t = threading.Thread(target=lambda: other.append(lib.is_inference_mode_enabled()))
            t.start()
            t.join()
        return seen + other

    assert facts(ds) == facts(torch) == [False, True, False, True, True, False, True, False, False]


def test_tensor_sum_to_records_no_node_when_nothing_was_broadcast() -> None:
    # under create_graph, add's rule sums g back to each input's shape; with equal shapes that is a no-op,
    # and torch's AddBackward passes the gradient on as it is: the gradient's grad_fn is sin's MulBackward0
    torch = pytest.importorskip("torch")
    values = np.random.RandomState(0).randn(3, 4)
    grad_fns = []
    for lib in (torch, ds):
        x = lib.tensor(values, requires_grad=True)
        b = lib.tensor(values[::-1].copy(), requires_grad=True)
        (gx,) = lib.autograd.grad((x + b).sin().sum(), x, create_graph=True)
        grad_fns.append(type(gx.grad_fn).__name__)
    assert grad_fns[1] == grad_fns[0] == "MulBackward0"
    g = ds.ones(3, 4)
    assert TensorRules.sum_to(g, (3, 4)) is g
    assert tuple(TensorRules.sum_to(g, (1, 4)).shape) == (1, 4)


def test_create_graph_grads_of_a_sum_stay_separate_and_differentiable() -> None:
    # the passed-through gradient reaches both inputs of x + y: each .grad must be its own tensor (a write
    # into one leaves the other), and the second derivative is the closed form d/dx sum(2 (x + y) * x) = 2 (2x + y)
    x = ds.tensor([1.0, 2.0, 3.0], dtype=ds.float64, requires_grad=True)
    y = ds.tensor([0.5, -1.0, 4.0], dtype=ds.float64, requires_grad=True)
    ((x + y) ** 2).sum().backward(create_graph=True)
    assert x.grad is not None and y.grad is not None
    expected = 2 * (x.detach().numpy() + y.detach().numpy())
    (second,) = ds.autograd.grad((x.grad * x).sum(), x)
    np.testing.assert_allclose(second.numpy(), 2 * (2 * x.detach().numpy() + y.detach().numpy()))
    with ds.no_grad():
        x.grad.mul_(0)
    np.testing.assert_allclose(y.grad.detach().numpy(), expected)
    x.grad = None
    y.grad = None
