"""autograd.grad and backward(inputs=) through a graph an earlier pass freed, and custom Functions'
edges (non-tensor outputs, vjp as backward, ctx attributes read through grad_fn, anomaly names),
each against PyTorch."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")

FREED = "Trying to backward through the graph a second time"


def _outcome(fn: Any) -> tuple[str, Any]:
    """("raised", first words of the message) or ("ok", the value as nested lists / None)."""
    try:
        value = fn()
    except Exception as e:  # noqa: BLE001  (either library's error class)
        return "raised", str(e)[: len(FREED)]
    if value is None:
        return "ok", None
    return "ok", np.asarray(value.detach().numpy() if hasattr(value, "detach") else value).tolist()


# ---------------------------------------------------------------------- a freed graph
@pytest.mark.parametrize("kwargs", [{}, {"allow_unused": True}, {"materialize_grads": True}])
def test_grad_through_a_graph_a_previous_grad_freed(kwargs: dict[str, Any]) -> None:
    """DeepFool's second autograd.grad on the same logits without retain_graph: torch raises."""

    def run(lib: Any) -> tuple[str, Any]:
        x = lib.ones(1, 3, requires_grad=True)
        fs = lib.nn.functional.linear(x.tanh(), lib.ones(4, 3))
        lib.autograd.grad(fs[0, 0], x)
        return _outcome(lambda: lib.autograd.grad(fs[0, 1], x, **kwargs)[0])

    assert run(ds) == run(torch) == ("raised", FREED)


def test_grad_twice_on_the_same_loss() -> None:
    def run(lib: Any) -> tuple[str, Any]:
        b = lib.tensor([1.0, 2.0], requires_grad=True)
        loss = (b * b.exp()).sum()
        lib.autograd.grad(loss, [b])
        return _outcome(lambda: lib.autograd.grad(loss, [b], materialize_grads=True)[0])

    assert run(ds) == run(torch) == ("raised", FREED)


def test_backward_with_inputs_through_a_freed_graph() -> None:
    def run(lib: Any) -> tuple[str, Any]:
        x = lib.ones(1, 3, requires_grad=True)
        fs = lib.nn.functional.linear(x.tanh(), lib.ones(4, 3))
        fs[0, 0].backward()
        return _outcome(lambda: fs[0, 1].backward(inputs=[x]))

    assert run(ds) == run(torch) == ("raised", FREED)


def test_grad_after_backward_on_a_shared_trunk() -> None:
    def run(lib: Any) -> tuple[str, Any]:
        x = lib.tensor([0.5, -1.0], requires_grad=True)
        h = (x * 2.0).tanh()
        (h * 3.0).sum().backward()
        return _outcome(lambda: lib.autograd.grad((h * h).sum(), x, allow_unused=True)[0])

    assert run(ds) == run(torch) == ("raised", FREED)


def test_grad_of_a_head_after_the_trunk_was_freed_still_works() -> None:
    """The input lies before the freed trunk is needed: torch computes it, so must we (no false alarm)."""

    def run(lib: Any) -> tuple[str, Any]:
        x = lib.tensor([0.5, -1.0], requires_grad=True)
        w = lib.tensor([2.0, 3.0], requires_grad=True)
        h = (x * 2.0).tanh()
        (h * 3.0).sum().backward()
        return _outcome(lambda: lib.autograd.grad((h * w).sum(), w)[0])

    (status, value), expected = run(ds), run(torch)
    assert status == expected[0] == "ok"
    np.testing.assert_allclose(value, expected[1], rtol=1e-6)


def test_unused_input_without_a_freed_node_still_gets_none() -> None:
    def run(lib: Any) -> tuple[str, Any]:
        x = lib.tensor([0.5, -1.0], requires_grad=True)
        c = lib.tensor([1.0], requires_grad=True)
        loss = (x.exp() * 2.0).sum()
        return _outcome(lambda: lib.autograd.grad(loss, [x, c], allow_unused=True)[1])

    assert run(ds) == run(torch) == ("ok", None)


# ---------------------------------------------------------------------- custom Functions
def _function(lib: Any, result: str, got: list[bool] | None = None) -> Any:
    class Out(lib.autograd.Function):
        @staticmethod
        def forward(ctx: Any, x: Any) -> Any:
            if result == "dict":
                return {"a": x * 2}
            if result == "float":
                return float(x.sum())
            if result == "list":
                return [x * 2, x * 3]
            return (x * 2, 3.0, "s", None)

        @staticmethod
        def backward(ctx: Any, *grads: Any) -> Any:
            if got is not None:
                got.extend(g is None for g in grads)
            return grads[0] * 2

    return Out


@pytest.mark.parametrize("result", ["dict", "float", "list"])
def test_function_non_tuple_non_tensor_output_passes_through_untracked(result: str) -> None:
    def run(lib: Any) -> Any:
        out = _function(lib, result).apply(lib.ones(2, requires_grad=True))
        if isinstance(out, dict):
            return "dict", [(k, v.tolist(), v.grad_fn is None) for k, v in out.items()]
        if isinstance(out, list):
            return "list", [(v.tolist(), v.grad_fn is None) for v in out]
        return type(out).__name__, out

    assert run(ds) == run(torch)


def test_function_tuple_with_non_tensor_outputs() -> None:
    def run(lib: Any) -> Any:
        x = lib.ones(2, requires_grad=True)
        got: list[bool] = []
        out = _function(lib, "tuple", got).apply(x)
        out[0].sum().backward()
        return out[1:], got, x.grad.tolist()

    assert run(ds) == run(torch)


def test_function_defining_only_vjp() -> None:
    def run(lib: Any) -> Any:
        class Double(lib.autograd.Function):
            @staticmethod
            def forward(ctx: Any, x: Any) -> Any:
                return x * 2

            @staticmethod
            def vjp(ctx: Any, g: Any) -> Any:
                return g * 3  # not the true derivative: shows vjp is the one called

        x = lib.ones(2, requires_grad=True)
        Double.apply(x).sum().backward()
        return x.grad.tolist()

    assert run(ds) == run(torch)


def test_function_defining_both_backward_and_vjp_is_refused() -> None:
    class Both(ds.autograd.Function):
        @staticmethod
        def forward(ctx: Any, x: Any) -> Any:
            return x * 2

        @staticmethod
        def backward(ctx: Any, g: Any) -> Any:
            return g * 2

        @staticmethod
        def vjp(ctx: Any, g: Any) -> Any:
            return g * 2

    with pytest.raises(ds.DownslopeError, match="both 'backward' and 'vjp'"):
        Both.apply(ds.ones(2, requires_grad=True)).sum().backward()


def _scale(lib: Any, outputs: int) -> Any:
    class Scale(lib.autograd.Function):
        @staticmethod
        def forward(ctx: Any, x: Any, k: float) -> Any:
            ctx.save_for_backward(x)
            ctx.k = k
            return x * k if outputs == 1 else (x * k, x + k)

        @staticmethod
        def backward(ctx: Any, *g: Any) -> Any:
            return g[0] * ctx.k, None

    return Scale


@pytest.mark.parametrize("outputs", [1, 2])
def test_grad_fn_reads_the_ctx_attributes(outputs: int) -> None:
    def run(lib: Any) -> Any:
        y = _scale(lib, outputs).apply(lib.ones(2, requires_grad=True), 5.0)
        node = y if outputs == 1 else y[1]
        fn = node.grad_fn
        saved = fn.saved_tensors
        return fn.k, len(saved), saved[0].tolist(), tuple(fn.needs_input_grad), fn.name()

    assert run(ds) == run(torch)


def test_grad_fn_of_a_function_keeps_node_api_and_refuses_unknown_names() -> None:
    x = ds.ones(2, requires_grad=True)
    y = _scale(ds, 1).apply(x, 5.0)
    fn = y.grad_fn
    assert fn.name() == "ScaleBackward"
    assert fn.next_functions[0][0].variable is x
    assert fn.metadata == {}
    seen = []
    fn.register_hook(lambda gi, go: seen.append(len(gi)))
    y.sum().backward()
    assert seen == [1]
    with pytest.raises(AttributeError, match="no attribute 'missing'"):
        fn.missing  # noqa: B018
    with pytest.raises(ds.DownslopeError, match=FREED):
        fn.saved_tensors  # noqa: B018  (freed by the backward pass, as in torch)


def test_detect_anomaly_names_the_custom_function() -> None:
    def run(lib: Any) -> str:
        class MyOp(lib.autograd.Function):
            @staticmethod
            def forward(ctx: Any, x: Any) -> Any:
                return x * 1

            @staticmethod
            def backward(ctx: Any, g: Any) -> Any:
                return g * float("nan")

        y = MyOp.apply(lib.ones(2, requires_grad=True))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with lib.autograd.detect_anomaly():
                try:
                    y.sum().backward()
                except Exception as e:  # noqa: BLE001  (either library's error class)
                    return str(e)
        return ""

    assert run(ds) == run(torch) == "Function 'MyOpBackward' returned nan values in its 0th output."


def test_a_function_gradient_the_argument_broadcasts_to_is_summed_back_as_torch() -> None:
    # DeepSeek-MoE's AddAuxiliaryLoss returns ones(1) as the gradient of a 0-d loss argument
    torch = pytest.importorskip("torch")
    got = {}
    for lib in (torch, ds):

        class AddAux(lib.autograd.Function):
            @staticmethod
            def forward(ctx, x, loss):
                return x

            @staticmethod
            def backward(ctx, g):
                return g, lib.ones(2, 1, dtype=g.dtype)  # noqa: B023

        w = lib.tensor([2.0], requires_grad=True)
        x = lib.ones(3, requires_grad=True)
        AddAux.apply(x * 1.0, (w * 3).sum()).sum().backward()
        got[lib.__name__] = (w.grad.tolist(), x.grad.tolist())
    assert got["downslope"] == got["torch"] == ([6.0], [1.0, 1.0, 1.0])

    class Wrong(ds.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 1.0

        @staticmethod
        def backward(ctx, g):
            return ds.ones(2)

    with pytest.raises(ds.errors.ArgumentError, match=r"shape \(2,\), but that argument has shape \(3,\)"):
        Wrong.apply(ds.ones(3, requires_grad=True)).sum().backward()


def test_unused_input_behind_no_freed_node_gets_none() -> None:
    """A freed node whose inputs lead to no input of autograd.grad: torch prunes it and returns None."""

    def run(lib: Any) -> tuple[str, Any]:
        mu = lib.tensor([0.3, -0.2], requires_grad=True)
        ls = lib.tensor([0.1, 0.2], requires_grad=True)
        sd = ls.exp()  # saves its result: freed by the next pass
        lib.autograd.grad((mu * sd).sum(), [mu, ls])
        return _outcome(lambda: lib.autograd.grad((sd * 2).sum(), mu, allow_unused=True)[0])

    assert run(ds) == run(torch) == ("ok", None)


def test_unused_input_materialized_behind_a_freed_node_on_another_branch() -> None:
    def run(lib: Any) -> tuple[str, Any]:
        mu = lib.tensor([0.3, -0.2], requires_grad=True)
        ls = lib.tensor([0.1, 0.2], requires_grad=True)
        sd = ls.exp()
        lib.autograd.grad((mu * sd).sum(), [mu, ls])
        return _outcome(lambda: lib.autograd.grad((sd * 2).sum(), mu, materialize_grads=True)[0])

    assert run(ds) == run(torch) == ("ok", [0.0, 0.0])


def test_input_behind_a_freed_node_through_its_kept_edges_still_raises() -> None:
    """The freed node's own input is the one asked for: torch raises, and so must we."""

    def run(lib: Any) -> tuple[str, Any]:
        ls = lib.tensor([0.1, 0.2], requires_grad=True)
        mu = lib.tensor([0.3, -0.2], requires_grad=True)
        sd = ls.exp()
        lib.autograd.grad((mu * sd).sum(), [mu, ls])
        return _outcome(lambda: lib.autograd.grad((sd * 2).sum(), ls, allow_unused=True)[0])

    assert run(ds) == run(torch) == ("raised", FREED)
