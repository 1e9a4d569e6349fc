"""Autograd details that change what a training step sees, against torch: a custom Function's
``set_materialize_grads(False)``, ``inference_mode(False)`` inside ``inference_mode()``, and the zero
(not None) gradient that double backward through a ReLU-like op gives the parameters before it."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")


def _two_outputs(lib, materialize: bool):
    seen = []

    class Split(lib.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.set_materialize_grads(materialize)
            return x * 2, x * 3

        @staticmethod
        def backward(ctx, ga, gb):
            seen.append((ga is None, gb is None))
            grad = 0
            if ga is not None:
                grad = grad + ga * 2
            if gb is not None:
                grad = grad + gb * 3
            return grad

    return Split, seen


@pytest.mark.parametrize("materialize", [True, False])
def test_set_materialize_grads_false_hands_backward_none_for_unused_outputs(materialize: bool) -> None:
    results = []
    for lib in (ds, torch):
        split, seen = _two_outputs(lib, materialize)
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        a, b = split.apply(x)
        a.sum().backward(retain_graph=True)
        (b * 2).sum().backward()  # the second pass reaches only b
        results.append((seen, x.grad.tolist()))
    assert results[0] == results[1]
    assert results[0][0] == ([(False, True), (True, False)] if not materialize else [(False, False), (False, False)])


def test_inference_mode_false_turns_recording_on_inside_inference_mode_and_no_grad() -> None:
    for lib in (ds, torch):
        w = lib.ones(2, requires_grad=True)
        with lib.inference_mode():
            with lib.inference_mode(False):
                assert lib.is_grad_enabled() and not lib.is_inference_mode_enabled()
                assert (w * 2).requires_grad
            assert not lib.is_grad_enabled() and lib.is_inference_mode_enabled()
        with lib.no_grad():
            with lib.inference_mode(False):
                assert lib.is_grad_enabled()
            assert not lib.is_grad_enabled()

        @lib.inference_mode(False)
        def step(w=w):
            return (w * 2).requires_grad

        with lib.inference_mode():
            assert step()


X = np.random.default_rng(0).standard_normal((2, 3, 4, 4)).astype(np.float32)
ACTIVATIONS = {
    "relu": lambda lib, t: lib.relu(t),
    "leaky_relu": lambda lib, t: lib.nn.functional.leaky_relu(t, 0.2),
    "abs": lambda lib, t: lib.abs(t),
    "LeakyReLU module": lambda lib, t: lib.nn.LeakyReLU(0.2)(t),
    "clamp (None in torch too)": lambda lib, t: lib.clamp(t, -0.5, 0.5),
    "elu (a real gradient)": lambda lib, t: lib.nn.functional.elu(t),
}


@pytest.mark.parametrize("norm", ["InstanceNorm2d", "BatchNorm2d"])
@pytest.mark.parametrize("act", list(ACTIVATIONS))
def test_a_gradient_penalty_gives_the_bias_before_a_relu_what_torch_gives(norm: str, act: str) -> None:
    grads = []
    for lib in (ds, torch):
        lib.manual_seed(0)
        layer = getattr(lib.nn, norm)(3, affine=True)
        x = lib.tensor(X, requires_grad=True)
        out = ACTIVATIONS[act](lib, layer(x)).sum()
        (g,) = lib.autograd.grad(out, x, create_graph=True)
        ((g.reshape(2, -1).norm(2, dim=1) - 1) ** 2).mean().backward()
        grads.append([None if p.grad is None else p.grad.detach().numpy() for p in (layer.weight, layer.bias)])
    for ours, theirs in zip(*grads):
        assert (ours is None) == (theirs is None)
        if ours is not None:
            np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-5)
