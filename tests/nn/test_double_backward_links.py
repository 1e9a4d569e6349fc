"""After a gradient penalty, a parameter that reaches the output only through the kinks of a
piecewise-linear op (hardtanh, relu6, max pooling) gets a zero gradient, not None, as in torch: a
normalization layer's affine bias before them is the common case (optimizers treat None and zeros
differently: weight decay and Adam's moments still run on zeros)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

import downslope as ds


def _penalty_grads(lib: Any, norm: str, act: str) -> dict[str, Any]:
    lib.manual_seed(0)
    layers = {
        "batch": lambda: lib.nn.BatchNorm2d(3),
        "instance": lambda: lib.nn.InstanceNorm2d(3, affine=True),
    }
    acts = {
        "hardtanh": lambda: lib.nn.Hardtanh(),
        "relu6": lambda: lib.nn.ReLU6(),
        "maxpool": lambda: lib.nn.MaxPool2d(2),
        "maxpool3": lambda: lib.nn.MaxPool2d(3, stride=2, padding=1),
        "adaptivemax": lambda: lib.nn.AdaptiveMaxPool2d((2, 3)),
        "relu": lambda: lib.nn.ReLU(),
    }
    model = lib.nn.Sequential(layers[norm](), acts[act]()).double()
    x = np.random.default_rng(0).standard_normal((2, 3, 6, 6))
    xx = lib.tensor(x, dtype=lib.float64, requires_grad=True)
    (gx,) = lib.autograd.grad(model(xx).sum(), xx, create_graph=True)
    (gx**2).sum().backward()
    return {name: p.grad for name, p in model.named_parameters()}


@pytest.mark.parametrize("act", ["hardtanh", "relu6", "maxpool", "maxpool3", "adaptivemax", "relu"])
@pytest.mark.parametrize("norm", ["batch", "instance"])
def test_affine_parameters_after_a_gradient_penalty_match_torch(norm: str, act: str) -> None:
    ours, theirs = _penalty_grads(ds, norm, act), _penalty_grads(torch, norm, act)
    assert ours.keys() == theirs.keys()
    for name, t in theirs.items():
        d = ours[name]
        assert (d is None) == (t is None), name
        if t is not None:
            np.testing.assert_allclose(d.numpy(), t.numpy(), rtol=1e-9, atol=1e-12, err_msg=name)
    assert theirs["0.bias"] is not None and not theirs["0.bias"].any()  # the case: zeros, not None
