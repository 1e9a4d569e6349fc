"""utils.checkpoint (src/downslope/utils/checkpoint.py): gradients equal a direct call's (and torch's)."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds
from downslope import nn
from downslope.utils.checkpoint import checkpoint, checkpoint_sequential


def _model(dropout: float = 0.0) -> nn.Module:
    ds.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Dropout(dropout), nn.Linear(8, 3))


def _grads(model: nn.Module, x: ds.Tensor) -> list[np.ndarray]:
    return [p.grad.numpy().copy() for p in model.parameters()] + ([x.grad.numpy().copy()] if x.grad is not None else [])


@pytest.mark.parametrize("input_requires_grad", [True, False])
@pytest.mark.parametrize("dropout", [0.0, 0.5])
def test_gradients_equal_a_direct_call(input_requires_grad: bool, dropout: float) -> None:
    model = _model(dropout)
    results = []
    for wrapped in (False, True):
        model.zero_grad()
        x = ds.tensor(np.linspace(-1, 1, 20).reshape(5, 4), requires_grad=input_requires_grad)
        ds.manual_seed(7)
        y = checkpoint(model, x) if wrapped else model(x)
        (y**2).sum().backward()
        results.append((y.detach().numpy().copy(), _grads(model, x)))
    np.testing.assert_array_equal(results[0][0], results[1][0])
    assert len(results[0][1]) == len(results[1][1])
    for a, b in zip(results[0][1], results[1][1]):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_matches_torch_checkpoint_with_tuple_outputs_and_kwargs() -> None:
    torch = pytest.importorskip("torch")
    import torch.utils.checkpoint as tcp

    w = np.random.default_rng(0).standard_normal((3, 3))

    def fn(lib, x, w, scale=1.0):  # type: ignore[no-untyped-def]
        h = lib.tanh(x @ w)
        return h * scale, (h**2).sum()

    x, xt = ds.tensor(w, dtype=ds.float64, requires_grad=True), torch.tensor(w, requires_grad=True)
    wd, wt = ds.tensor(w.T.copy(), dtype=ds.float64, requires_grad=True), torch.tensor(w.T.copy(), requires_grad=True)
    a, b = checkpoint(lambda x, w: fn(ds, x, w, scale=2.0), x, wd)
    at, bt = tcp.checkpoint(lambda x, w: fn(torch, x, w, scale=2.0), xt, wt, use_reentrant=False)
    (a.sum() + 3 * b).backward()
    (at.sum() + 3 * bt).backward()
    np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(wd.grad.numpy(), wt.grad.numpy(), rtol=1e-12)


def test_sequential_segments_and_refusals() -> None:
    model = _model()
    x = ds.ones(2, 4)
    direct = model(x)
    direct.sum().backward()
    expected = _grads(model, x)
    model.zero_grad()
    checkpoint_sequential(model, 2, x).sum().backward()
    for a, b in zip(expected, _grads(model, x)):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    with ds.no_grad():
        assert not checkpoint(model, x).requires_grad
    xg = ds.ones(2, 4, requires_grad=True)
    with pytest.raises(ds.DownslopeError, match="cannot be differentiated again"):  # the reentrant form only
        ds.autograd.grad(checkpoint(model, xg, use_reentrant=True).sum(), [xg], create_graph=True)


def test_asking_for_the_input_gradient_alone_fills_no_parameter_grad_as_torch() -> None:
    model = _model()
    x = ds.ones(2, 4, requires_grad=True)
    (gx,) = ds.autograd.grad(checkpoint(model, x).sum(), [x])
    (direct,) = ds.autograd.grad(model(x).sum(), [x])
    np.testing.assert_allclose(gx.numpy(), direct.numpy(), rtol=1e-6)
    assert all(p.grad is None for p in model.parameters())


def test_a_closure_over_a_tensor_also_used_outside_backpropagates_once_through_both() -> None:
    torch = pytest.importorskip("torch")
    import torch.utils.checkpoint as tcp

    def run(lib, cp):  # type: ignore[no-untyped-def]
        w = lib.tensor([0.5, -1.0], requires_grad=True)
        h = w * 3  # a non-leaf captured by the function and used outside it
        out = cp(lambda x: (x * h).tanh(), lib.tensor([1.0, 2.0], requires_grad=True))
        (out.sum() + h.sum()).backward()
        return w.grad.numpy()

    np.testing.assert_allclose(
        run(ds, checkpoint), run(torch, lambda f, x: tcp.checkpoint(f, x, use_reentrant=False)), rtol=1e-6
    )
