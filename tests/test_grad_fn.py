"""``tensor.grad_fn`` as PyTorch's node objects, and ``torch.autograd.graph`` (saved-tensor hooks,
multi-tensor hooks): each case runs the same code on downslope and on torch and compares."""

from __future__ import annotations

import gc
import weakref
from typing import Any

import numpy as np
import pytest

import downslope as ds
from downslope.errors import ArgumentTypeError, StateError

torch = pytest.importorskip("torch")

RNG = np.random.default_rng(0)


def _pair(*shape: int, requires_grad: bool = True) -> tuple[ds.Tensor, Any]:
    a = RNG.uniform(0.5, 1.5, shape)
    return ds.tensor(a, dtype=ds.float64, requires_grad=requires_grad), torch.tensor(a, requires_grad=requires_grad)


# name: the op, written once for both libraries (m is the module, x and y tensors of shape (3, 4))
NAMED_OPS = {
    "add": lambda m, x, y: x + y,
    "sub": lambda m, x, y: x - y,
    "mul": lambda m, x, y: x * y,
    "div": lambda m, x, y: x / y,
    "pow": lambda m, x, y: x**2,
    "pow_tensor": lambda m, x, y: x**y,
    "neg": lambda m, x, y: -x,
    "exp": lambda m, x, y: x.exp(),
    "log": lambda m, x, y: x.log(),
    "tanh": lambda m, x, y: x.tanh(),
    "sigmoid": lambda m, x, y: x.sigmoid(),
    "relu": lambda m, x, y: m.relu(x),
    "sum": lambda m, x, y: x.sum(),
    "sum_dim": lambda m, x, y: x.sum(1),
    "mean": lambda m, x, y: x.mean(),
    "max": lambda m, x, y: x.max(),
    "min": lambda m, x, y: x.min(),
    "amax": lambda m, x, y: x.amax(1),
    "amin": lambda m, x, y: x.amin(0),
    "mm": lambda m, x, y: x @ y.T[:, :3].contiguous(),
    "mv": lambda m, x, y: x @ y[0],
    "dot": lambda m, x, y: x[0] @ y[0],
    "bmm": lambda m, x, y: m.bmm(x.reshape(1, 3, 4), y.reshape(1, 4, 3)),
    "linear": lambda m, x, y: m.nn.functional.linear(x, y[:2], y[0, :2]),
    "linear_no_bias": lambda m, x, y: m.nn.functional.linear(x, y[:2]),
    "view": lambda m, x, y: x.view(12),
    "t": lambda m, x, y: x.t(),
    "permute": lambda m, x, y: x.reshape(3, 2, 2).permute(2, 0, 1),
    "cat": lambda m, x, y: m.cat([x, y]),
    "stack": lambda m, x, y: m.stack([x, y]),
    "select": lambda m, x, y: x[1],
    "slice": lambda m, x, y: x[1:],
    "index": lambda m, x, y: x[m.tensor([0, 2])],
    "clone": lambda m, x, y: x.clone(),
    "where": lambda m, x, y: m.where(x > 1, x, y),
    "clamp": lambda m, x, y: x.clamp(0.8, 1.2),
    "expand": lambda m, x, y: x[:1].expand(3, 4),
    "cumsum": lambda m, x, y: x.cumsum(1),
    "log_softmax": lambda m, x, y: m.log_softmax(x, 1),
    "mse_loss": lambda m, x, y: m.nn.functional.mse_loss(x, y),
    "to_float32": lambda m, x, y: x.float(),
}


@pytest.mark.parametrize("name", sorted(NAMED_OPS))
def test_grad_fn_names_are_torchs(name: str) -> None:
    (x, tx), (y, ty) = _pair(3, 4), _pair(3, 4)
    ours, theirs = NAMED_OPS[name](ds, x, y).grad_fn, NAMED_OPS[name](torch, tx, ty).grad_fn
    assert ours.name() == theirs.name()
    assert type(ours).__name__ == type(theirs).__name__
    assert repr(ours).startswith(f"<{theirs.name()} object at 0x") and str(ours) == repr(ours)
    assert f"grad_fn=<{theirs.name()}>" in repr(NAMED_OPS[name](ds, x, y))


def _walk(fn: Any) -> list[Any]:
    """The graph below ``fn`` as nested (name, [children]) / ('leaf', variable) / None, for comparing."""
    if fn is None:
        return [None]
    if fn.name() == "torch::autograd::AccumulateGrad":
        return ["acc", fn.variable.detach().numpy().tolist()]
    return [fn.name(), [(_walk(child), i) for child, i in fn.next_functions]]


def test_next_functions_walk_the_graph_as_torchs() -> None:
    (a, ta), (b, tb) = _pair(2), _pair(2)
    c, tc = _pair(2, requires_grad=False)

    def graph(m: Any, a: Any, b: Any, c: Any) -> Any:
        return ((a * b).exp() + m.tanh(b) * c).sum()

    ours, theirs = graph(ds, a, b, c), graph(torch, ta, tb, tc)
    assert _walk(ours.grad_fn) == _walk(theirs.grad_fn)
    mul = ours.grad_fn.next_functions[0][0].next_functions[0][0].next_functions[0][0]
    (acc_a, _), (acc_b, _) = mul.next_functions
    assert acc_a.variable is a and acc_b.variable is b and acc_a.next_functions == ()
    assert acc_a is (a * 3).grad_fn.next_functions[0][0]  # one AccumulateGrad per leaf, as torch's
    assert isinstance(acc_a, ds.autograd.graph.Node) and isinstance(mul, ds.autograd.graph.Node)
    assert repr(acc_a).startswith("<AccumulateGrad object at 0x")


def test_grad_fn_is_none_for_leaves_and_without_recording_and_is_one_object() -> None:
    x = ds.ones(2, requires_grad=True)
    y = x * 2
    assert x.grad_fn is None and ds.ones(2).grad_fn is None and y.grad_fn is y.grad_fn
    with ds.no_grad():
        assert (x * 2).grad_fn is None
    assert y.detach().grad_fn is None
    y.add_(1)  # an in-place op makes a new node
    assert y.grad_fn.name() == "AddBackward0"


def test_grad_fn_survives_backward_with_its_name_and_edges() -> None:
    x = ds.ones(2, requires_grad=True)
    y = (x * x).sum()
    fn = y.grad_fn
    y.backward()
    assert y.grad_fn is fn and fn.name() == "SumBackward0"
    assert fn.next_functions[0][0].name() == "MulBackward0"
    assert "grad_fn=<SumBackward0>" in repr(y)


def test_the_node_object_keeps_no_graph_alive_unless_held() -> None:
    x = ds.ones(3, requires_grad=True)
    hidden = x * 2
    ref = weakref.ref(hidden)
    loss = (hidden * hidden).sum()
    repr(loss), loss.grad_fn.next_functions  # noqa: B018  (reading grad_fn, then dropping the node)
    del hidden
    loss.backward()
    gc.collect()
    assert ref() is None, "reading grad_fn kept the graph alive"


def test_saved_self_other_and_result_are_torchs() -> None:
    (x, tx), (y, ty) = _pair(3), _pair(3)
    ours, theirs = x.pow(2).grad_fn, tx.pow(2).grad_fn
    assert ours._saved_self is x and theirs._saved_self is tx
    e, te = x.exp(), tx.exp()
    np.testing.assert_array_equal(e.grad_fn._saved_result.numpy(), te.grad_fn._saved_result.detach().numpy())
    assert e.grad_fn._saved_result is not e and te.grad_fn._saved_result is not te
    m, tm = (x * y).grad_fn, (tx * ty).grad_fn
    assert m._saved_self is x and m._saved_other is y and tm._saved_self is tx and tm._saved_other is ty
    c, tc = _pair(3, requires_grad=False)
    for node, other in (((x * c).grad_fn, c), ((tx * tc).grad_fn, tc)):  # only what the gradient needs is saved
        assert node._saved_self is None and node._saved_other is other
    with pytest.raises(AttributeError, match="_saved_self"):
        (x + y).grad_fn._saved_self  # noqa: B018
    with pytest.raises(AttributeError, match="_saved_result"):
        m._saved_result  # noqa: B018
    out = (x * y).sum()
    node = out.grad_fn.next_functions[0][0]
    out.backward()
    with pytest.raises(StateError, match="already been freed"):
        node._saved_self  # noqa: B018


def _hooked(m: Any, x: Any, log: list[Any]) -> Any:
    """Pre- and post-hooks on a node, on the AccumulateGrad of a leaf; returns x.grad."""
    y = x * 3
    z = (y * y).sum()

    def pre(grad_outputs: Any) -> Any:
        log.append(("pre", [g.tolist() for g in grad_outputs]))
        return (grad_outputs[0] * 2,)

    def post(grad_inputs: Any, grad_outputs: Any) -> Any:
        log.append(("post", [None if g is None else g.tolist() for g in grad_inputs], grad_outputs[0].tolist()))
        return (grad_inputs[0] + 1, None)

    y.grad_fn.register_prehook(pre)
    y.grad_fn.register_hook(post)
    acc = y.grad_fn.next_functions[0][0]
    acc.register_prehook(lambda go: log.append(("acc pre", go[0].tolist())))
    acc.register_hook(lambda gi, go: log.append(("acc post", gi, go[0].tolist())))
    z.backward()
    return x.grad


def test_node_hooks_and_prehooks_follow_torch() -> None:
    (x, tx) = _pair(2)
    ours: list[Any] = []
    theirs: list[Any] = []
    g, tg = _hooked(ds, x, ours), _hooked(torch, tx, theirs)
    assert ours == theirs
    np.testing.assert_allclose(g.numpy(), tg.numpy(), rtol=1e-12)


def test_node_hook_handles_remove_and_bad_returns_are_named() -> None:
    x = ds.ones(2, requires_grad=True)
    y = x * 2
    calls: list[int] = []
    handle = y.grad_fn.register_prehook(lambda go: calls.append(1))
    handle.remove()
    y.sum().backward()
    assert calls == [] and x.grad.tolist() == [2.0, 2.0]
    y = x * 2
    y.grad_fn.register_hook(lambda gi, go: (gi[0],))  # one gradient too many
    with pytest.raises(StateError, match="expected None or a tuple with one gradient per input"):
        (y * x).sum().backward()
    with pytest.raises(ArgumentTypeError, match="callable"):
        (x * 2).grad_fn.register_hook(3)  # type: ignore[arg-type]


def test_metadata_is_a_dict_that_stays_with_the_node() -> None:
    x = ds.ones(2, requires_grad=True)
    y = x * 2
    y.grad_fn.metadata["tag"] = "mine"
    gc.collect()
    assert y.grad_fn.metadata == {"tag": "mine"}


def test_custom_function_nodes_are_named_after_the_class() -> None:
    class Cube(ds.autograd.Function):
        @staticmethod
        def forward(ctx: Any, x: Any) -> Any:
            ctx.save_for_backward(x)
            return x**3

        @staticmethod
        def backward(ctx: Any, g: Any) -> Any:
            (x,) = ctx.saved_tensors
            return g * 3 * x**2

    y = Cube.apply(ds.ones(2, requires_grad=True))
    assert y.grad_fn.name() == "CubeBackward"


# ---------------------------------------------------------------------- saved tensors hooks
def _with_hooks(m: Any, x: Any, y: Any, log: list[Any], unpack_scale: float = 1.0) -> Any:
    def pack(t: Any) -> Any:
        log.append(("pack", tuple(t.shape)))
        return t

    def unpack(t: Any) -> Any:
        log.append(("unpack", tuple(t.shape)))
        return t * unpack_scale if unpack_scale != 1.0 else t

    with m.autograd.graph.saved_tensors_hooks(pack, unpack):
        z = (x * y).exp().sum() + (x + 1).sum()
    log.append("forward done")
    z.backward(retain_graph=True)
    z.backward()
    return x.grad, y.grad


@pytest.mark.parametrize("unpack_scale", [1.0, 10.0])
def test_saved_tensors_hooks_pack_and_unpack_as_torch(unpack_scale: float) -> None:
    (x, tx), (y, ty) = _pair(3), _pair(3)
    ours: list[Any] = []
    theirs: list[Any] = []
    gx, gy = _with_hooks(ds, x, y, ours, unpack_scale)
    tgx, tgy = _with_hooks(torch, tx, ty, theirs, unpack_scale)
    assert ours == theirs  # 3 packs (x, y, exp's result), then 3 unpacks per backward pass
    np.testing.assert_allclose(gx.numpy(), tgx.numpy(), rtol=1e-12)
    np.testing.assert_allclose(gy.numpy(), tgy.numpy(), rtol=1e-12)


def test_saved_tensors_hooks_cost_nothing_outside_the_context_and_unpack_gives_saved_attrs() -> None:
    x = ds.ones(2, requires_grad=True)
    with ds.autograd.graph.saved_tensors_hooks(lambda t: ("packed", t), lambda p: p[1] * 1):
        y = x * x
    z = x * x
    assert getattr(z, "_fn", None) is None and ds.autograd.graph.saved_tensors_hooks is not None
    assert y.grad_fn._saved_self.tolist() == [1.0, 1.0] and y.grad_fn._saved_self is not x
    with ds.autograd.graph.saved_tensors_hooks(lambda t: t, lambda t: t[:1]):
        w = x * x
    with pytest.raises(StateError, match="expected a tensor of shape"):
        w.sum().backward()


def test_disable_saved_tensors_hooks_raises_the_message_as_torch() -> None:
    for m, error in ((ds, StateError), (torch, RuntimeError)):
        g = m.autograd.graph
        with pytest.raises(error, match="not here"):
            with g.disable_saved_tensors_hooks("not here"):
                with g.saved_tensors_hooks(lambda t: t, lambda t: t):
                    pass
        with pytest.raises(error, match="nor here"):
            with g.saved_tensors_hooks(lambda t: t, lambda t: t):
                with g.disable_saved_tensors_hooks("nor here"):
                    pass
        with g.disable_saved_tensors_hooks("fine"):
            pass
        with g.saved_tensors_hooks(lambda t: t, lambda t: t):  # usable again afterwards
            pass


def test_save_on_cpu_gives_the_same_gradients() -> None:
    (x, tx), (y, ty) = _pair(4), _pair(4)
    with ds.autograd.graph.save_on_cpu(pin_memory=True):
        z = (x * y.tanh()).sum()
    with torch.autograd.graph.save_on_cpu(pin_memory=False):
        tz = (tx * ty.tanh()).sum()
    z.backward()
    tz.backward()
    np.testing.assert_allclose(y.grad.numpy(), ty.grad.numpy(), rtol=1e-12)


def test_import_forms_of_autograd_graph() -> None:
    import downslope.autograd.graph as graph
    from downslope.autograd.graph import Node, saved_tensors_hooks

    assert graph is ds.autograd.graph and Node is graph.Node and saved_tensors_hooks is graph.saved_tensors_hooks


@pytest.mark.parametrize("mode", ["all", "any"])
def test_register_multi_grad_hook_as_torch(mode: str) -> None:
    def run(m: Any) -> list[Any]:
        a, b, c = (m.ones(2, requires_grad=True) for _ in range(3))
        seen: list[Any] = []

        def fn(grads: Any) -> None:
            if mode == "all":
                seen.append([None if g is None else g.tolist() for g in grads])
            else:
                seen.append(grads.tolist())

        handle = m.autograd.graph.register_multi_grad_hook((a, b, c), fn, mode=mode)
        (a * 3 + b * 3).sum().backward()  # equal gradients: which of a, b "any" sees first is not compared
        (c * 4).sum().backward()
        handle.remove()
        (a * 5).sum().backward()
        return seen

    assert run(ds) == run(torch)


def test_saved_tensors_hooks_see_what_a_custom_function_saves() -> None:
    def run(m: Any) -> tuple[list[str], Any]:
        class Square(m.autograd.Function):
            @staticmethod
            def forward(ctx: Any, x: Any) -> Any:
                ctx.save_for_backward(x)
                return x * x

            @staticmethod
            def backward(ctx: Any, g: Any) -> Any:
                (x,) = ctx.saved_tensors
                return 2 * x * g

        log: list[str] = []
        x = m.tensor([1.0, 2.0], requires_grad=True)
        with m.autograd.graph.saved_tensors_hooks(
            lambda t: log.append("pack") or t, lambda t: log.append("unpack") or t * 3
        ):
            y = Square.apply(x)
        y.sum().backward()
        return log, x.grad.tolist()

    assert run(ds) == run(torch)


def test_a_node_hook_stays_with_its_op_after_an_in_place_write() -> None:
    def run(m: Any) -> tuple[list[str], Any]:
        x = m.tensor([1.0, 2.0], requires_grad=True)
        y = x * 2
        log: list[str] = []
        y.grad_fn.register_prehook(lambda go: log.append("mul pre"))
        y.add_(1)
        log.append(y.grad_fn.name())
        (y * y).sum().backward()
        return log, x.grad.tolist()

    assert run(ds) == run(torch)
