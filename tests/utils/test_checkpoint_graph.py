"""Non-reentrant checkpoint (src/downslope/utils/checkpoint.py) behaves as the graph of a direct call, as
torch's ``use_reentrant=False`` does: gradients reach tensors inside nested outputs and nested or keyword
inputs and tensors captured by a closure; autograd.grad and backward(inputs=...) fill no other ``.grad``;
hooks run once on the summed gradient; create_graph=True works. Compared with PyTorch in float64; the
memory saving is checked on the graph that stays alive."""

from __future__ import annotations

from collections import namedtuple
from typing import Any

import numpy as np
import pytest

import downslope as ds
import downslope.utils.checkpoint as dcp

torch = pytest.importorskip("torch")
import torch.utils.checkpoint as tcp  # noqa: E402

_W = np.arange(6, dtype=np.float64).reshape(2, 3) / 10
_X = np.linspace(-1, 1, 12).reshape(4, 3)
BOTH = ((ds, dcp), (torch, tcp))


def _t(lib: Any, a: Any, requires_grad: bool = False) -> Any:
    return lib.tensor(np.asarray(a, dtype=np.float64), dtype=lib.float64, requires_grad=requires_grad)


def _np(t: Any) -> np.ndarray:
    return np.asarray(t.detach().numpy(), dtype=np.float64)


def _linear(lib: Any) -> Any:
    lin = lib.nn.Linear(3, 2).double()
    with lib.no_grad():
        lin.weight.copy_(_t(lib, _W))
        lin.bias.fill_(0.1)
    return lin


def test_nested_outputs_get_their_gradients() -> None:
    results = []
    for lib, cp in BOTH:
        lin = _linear(lib)
        x = _t(lib, _X, requires_grad=True)

        def block(z: Any, lin: Any = lin) -> Any:
            h = lin(z)
            return h.tanh(), [h * 2], {"aux": (h**2).sum()}

        out, lst, dct = cp.checkpoint(block, x, use_reentrant=False)
        (out.sum() + lst[0].sum() + dct["aux"]).backward()
        results.append([_np(x.grad), _np(lin.weight.grad), _np(lin.bias.grad)])
    for ours, theirs in zip(*results):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12)


Pair = namedtuple("Pair", ["a", "b"])


class _Output(dict):  # a ModelOutput-like mapping: its type survives the checkpoint
    pass


def test_output_containers_keep_their_types() -> None:
    x = ds.ones(2, 3, requires_grad=True)
    pair = dcp.checkpoint(lambda z: Pair(z * 2, z * 3), x, use_reentrant=False)
    mapping = dcp.checkpoint(lambda z: _Output(h=z.exp()), x, use_reentrant=False)
    assert isinstance(pair, Pair) and isinstance(mapping, _Output)
    (pair.a.sum() + pair.b.sum() + mapping["h"].sum()).backward()
    np.testing.assert_allclose(x.grad.numpy(), 5 + np.e, rtol=1e-6)


def _fuse(lib: Any) -> Any:
    class Fuse(lib.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = _linear(lib)

        def forward(self, pair: Any, bias: Any = None) -> Any:
            return (self.lin(pair[0] * pair[1]) + bias).tanh()

    return Fuse()


@pytest.mark.parametrize("closure", [False, True])
def test_tensors_in_tuple_and_keyword_arguments_get_their_gradients(closure: bool) -> None:
    results = []
    for lib, cp in BOTH:
        block = _fuse(lib)
        a, b = _t(lib, _X, requires_grad=True), _t(lib, _X[::-1] * 2, requires_grad=True)
        bias = lib.nn.Parameter(_t(lib, [0.3, -0.2]))
        fn = (lambda pair, bias, block=block: block(pair, bias=bias)) if closure else block
        cp.checkpoint(fn, (a, b), bias=bias * 2, use_reentrant=False).pow(2).sum().backward()
        results.append([_np(a.grad), _np(b.grad), _np(bias.grad), _np(block.lin.weight.grad)])
    for ours, theirs in zip(*results):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12)


def test_asking_for_the_input_gradient_fills_no_captured_grad() -> None:
    results = []
    for lib, cp in BOTH:
        w, x = _t(lib, _W, requires_grad=True), _t(lib, _X, requires_grad=True)
        y = cp.checkpoint(lambda z, w=w: (z @ w.T).tanh(), x, use_reentrant=False).pow(2).sum()
        (gx,) = lib.autograd.grad(y, [x])
        assert w.grad is None
        cp.checkpoint(lambda z, w=w: (z @ w.T).tanh(), x, use_reentrant=False).sum().backward(inputs=[x])
        assert w.grad is None
        results.append([_np(gx), _np(x.grad)])
    for ours, theirs in zip(*results):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12)


def test_a_hook_on_a_captured_weight_runs_once_on_the_summed_gradient() -> None:
    results = []
    for lib, cp in BOTH:
        w = _t(lib, [[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
        calls: list[np.ndarray] = []
        w.register_hook(lambda g, calls=calls: (calls.append(_np(g)), g.clamp(-1, 1))[1])
        h = cp.checkpoint(lambda z, w=w: (z @ w).tanh(), _t(lib, np.ones((3, 2))), use_reentrant=False)
        (h @ w).sum().backward()
        results.append((calls, _np(w.grad)))
    (ours, our_grad), (theirs, their_grad) = results
    assert len(ours) == len(theirs) == 1
    np.testing.assert_allclose(ours[0], theirs[0], rtol=1e-12)
    np.testing.assert_allclose(our_grad, their_grad, rtol=1e-12)


def test_autograd_grad_of_a_captured_weight_with_create_graph() -> None:
    results = []
    for lib, cp in BOTH:
        w = _t(lib, _W, requires_grad=True)
        y = cp.checkpoint(lambda z, w=w: (z @ w.T).tanh(), _t(lib, _X), use_reentrant=False).pow(2).sum()
        (g,) = lib.autograd.grad(y, [w], create_graph=True)
        (g**2).sum().backward()
        results.append([_np(g), _np(w.grad)])
    for ours, theirs in zip(*results):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12)


def test_gradient_penalty_through_a_checkpointed_module() -> None:
    results = []
    for lib, cp in BOTH:
        lin = _linear(lib)
        x = _t(lib, _X, requires_grad=True)
        (g,) = lib.autograd.grad(cp.checkpoint(lin, x, use_reentrant=False).tanh().sum(), x, create_graph=True)
        (g.norm(2, dim=1) - 1).pow(2).mean().backward()
        results.append([_np(g), _np(lin.weight.grad), _np(lin.bias.grad)])
    for ours, theirs in zip(*results):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12)


def _graph_bytes(root: ds.Tensor) -> int:
    """Bytes of the arrays the graph from ``root`` keeps alive (every node's array, parameters excluded)."""
    seen, stack, total = {id(root)}, [root], 0
    while stack:
        node = stack.pop()
        if node._parents:
            total += node.array.nbytes
        for p in node._parents:
            if id(p) not in seen:
                seen.add(id(p))
                stack.append(p)
    return total


def test_the_graph_inside_is_dropped_and_dropout_replayed() -> None:
    ds.manual_seed(0)
    blocks = [
        ds.nn.Sequential(ds.nn.Linear(64, 64), ds.nn.Tanh(), ds.nn.Dropout(0.3), ds.nn.Linear(64, 64), ds.nn.Tanh())
        for _ in range(10)
    ]
    x = ds.randn(32, 64)
    sizes, grads = [], []
    for wrapped in (False, True):
        ds.manual_seed(3)
        h = x
        for block in blocks:
            h = dcp.checkpoint(block, h, use_reentrant=False) if wrapped else block(h)
        loss = (h**2).sum()
        sizes.append(_graph_bytes(loss))
        loss.backward()
        grads.append([p.grad.numpy().copy() for b in blocks for p in b.parameters()])
        for b in blocks:
            b.zero_grad()
    assert sizes[1] < sizes[0] / 3  # 5 kept activations per block without checkpoint, about 1 with it
    for plain, checkpointed in zip(*grads):
        np.testing.assert_allclose(checkpointed, plain, rtol=1e-5, atol=1e-6)


def test_parameters_swapped_before_the_recompute_are_refused() -> None:
    # torch silently recomputes with the module's own parameters there; the gradient would be wrong
    lin = ds.nn.Linear(3, 2)
    fast = {"inner." + k: v * 2 for k, v in lin.named_parameters()}
    y = ds.func.functional_call(_Wrap(lin), fast, (ds.ones(1, 3),))  # its backward runs after the call
    with pytest.raises(ds.errors.StateError, match="recompute in backward read 2 tensor"):
        y.sum().backward()


class _Wrap(ds.nn.Module):
    def __init__(self, inner: ds.nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: ds.Tensor) -> ds.Tensor:
        return dcp.checkpoint(self.inner, x, use_reentrant=False)


def test_forward_ad_tangents_pass_through_a_checkpoint() -> None:
    import downslope.autograd.forward_ad as fwad

    lin = _linear(ds)
    v = np.array([[1.0, -2.0, 0.5]])
    with fwad.dual_level():
        x = fwad.make_dual(_t(ds, np.ones((1, 3))), _t(ds, v))
        tangent = fwad.unpack_dual(dcp.checkpoint(lin, x, use_reentrant=False)).tangent
    np.testing.assert_allclose(tangent.numpy(), v @ _W.T, rtol=1e-14)  # J v of x W^T + b
