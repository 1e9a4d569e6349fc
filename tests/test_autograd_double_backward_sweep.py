"""Second-order gradients through every op of the shared table and through layers after a gradient
penalty, against torch 2.13 in float64: a first gradient taken with ``create_graph=True`` requires grad
exactly where torch's does (a piecewise-linear op's rule keeps its input in the graph, with a zero second
derivative), its gradient matches torch's, and a parameter below such a layer gets zeros, not None."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import downslope as ds

from ._autograd_op_table import ALL, A

torch = pytest.importorskip("torch")


def _second(lib: Any, name: str) -> tuple[bool, np.ndarray | None]:
    """Whether the first gradient requires grad, and the second derivative along fixed directions."""
    x = lib.tensor(A, requires_grad=True)
    y = ALL[name](lib, x)
    y = y[0] if isinstance(y, tuple) else y
    w = lib.tensor(np.cos(np.arange(y.numel())).reshape(tuple(y.shape)))
    (g,) = lib.autograd.grad((y * w).sum(), x, create_graph=True)
    if not g.requires_grad:
        return False, None
    u = lib.tensor(np.sin(np.arange(12.0)).reshape(3, 4))
    (h,) = lib.autograd.grad((g * u).sum(), x, allow_unused=True, materialize_grads=True)
    return True, np.asarray(h.detach().numpy())


@pytest.mark.parametrize("name", sorted(ALL))
def test_second_order_exists_where_torch_has_it(name: str, float64_defaults: None) -> None:
    try:
        expected = _second(torch, name)
    except Exception:  # noqa: BLE001  (torch has no double backward here: nothing to compare)
        pytest.skip("torch has no double backward here")
    got = _second(ds, name)
    assert got[0] == expected[0], f"{name}: first gradient requires grad: torch {expected[0]}, downslope {got[0]}"
    if expected[1] is not None and name not in _RANDOM_LAYERS:
        np.testing.assert_allclose(got[1], expected[1], rtol=1e-6, atol=1e-8, err_msg=name)


# layers made with each library's own initialisation: only whether the graph is kept is compared
_RANDOM_LAYERS = {"lstm", "gru", "rnn", "mha", "linear_layer"}


LAYERS = {
    "PReLU": lambda T: T.nn.PReLU(),
    "PReLU_channels": lambda T: T.nn.PReLU(6),
    "RReLU": lambda T: T.nn.RReLU(),
    "Hardsigmoid": lambda T: T.nn.Hardsigmoid(),
    "LeakyReLU": lambda T: T.nn.LeakyReLU(0.1),
    "ReLU": lambda T: T.nn.ReLU(),
    "Hardtanh": lambda T: T.nn.Hardtanh(),
    "ReplicationPad1d": lambda T: T.nn.Sequential(
        T.nn.Unflatten(1, (1, 6)), T.nn.ReplicationPad1d(2), T.nn.Flatten(), T.nn.Linear(10, 6)
    ),
    "ReflectionPad1d": lambda T: T.nn.Sequential(
        T.nn.Unflatten(1, (1, 6)), T.nn.ReflectionPad1d(2), T.nn.Flatten(), T.nn.Linear(10, 6)
    ),
    "CircularPad1d": lambda T: T.nn.Sequential(
        T.nn.Unflatten(1, (1, 6)), T.nn.CircularPad1d(2), T.nn.Flatten(), T.nn.Linear(10, 6)
    ),
}


def _penalty_grads(lib: Any, layer: str) -> list[np.ndarray | None]:
    """A WGAN-GP penalty on Linear -> layer -> Linear (weights copied from torch): every parameter's grad."""
    lib.manual_seed(0)
    torch.manual_seed(0)
    t_model = torch.nn.Sequential(torch.nn.Linear(4, 6), LAYERS[layer](torch), torch.nn.Linear(6, 1)).eval()
    model = t_model
    if lib is ds:
        model = ds.nn.Sequential(ds.nn.Linear(4, 6), LAYERS[layer](ds), ds.nn.Linear(6, 1)).eval()
        model.load_state_dict({k: ds.tensor(v.detach().numpy()) for k, v in t_model.state_dict().items()})
    x = lib.tensor(np.random.default_rng(0).normal(size=(5, 4)), requires_grad=True)
    (g,) = lib.autograd.grad(model(x).sum(), x, create_graph=True)
    (g**2).sum().backward()
    return [None if p.grad is None else np.asarray(p.grad.detach().numpy()) for p in model.parameters()]


@pytest.mark.parametrize("layer", sorted(LAYERS))
def test_gradient_penalty_grads_as_torch(layer: str, float64_defaults: None) -> None:
    try:
        expected = _penalty_grads(torch, layer)
    except RuntimeError:  # torch's hardsigmoid has no double backward (downslope's second derivative: 0)
        pytest.skip("torch has no double backward here")
    got = _penalty_grads(ds, layer)
    assert [e is None for e in expected] == [g is None for g in got], layer
    for e, g in zip(expected, got):
        if e is not None:
            np.testing.assert_allclose(g, e, rtol=1e-6, atol=1e-10, err_msg=layer)


def test_prelu_second_derivative_is_zeros_not_an_error(float64_defaults: None) -> None:
    for lib in (ds, torch):
        x = lib.tensor([-1.5, -0.5, 0.5, 2.0], requires_grad=True)
        w = lib.tensor([0.25], requires_grad=True)
        (g,) = lib.autograd.grad(lib.nn.functional.prelu(x, w).sum(), x, create_graph=True)
        dx, dw = lib.autograd.grad((g * g).sum(), (x, w))
        assert dx.tolist() == [0.0, 0.0, 0.0, 0.0]
        np.testing.assert_allclose(dw.detach().numpy(), [1.0])  # d/dw of 2 w^2 at w = 0.25
