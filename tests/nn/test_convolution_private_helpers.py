"""torch's private layer helpers that quantization-aware and spiking-network subclasses call:
``Conv1d/2d/3d._conv_forward`` and ``_reversed_padding_repeated_twice`` (here), ``_BatchNorm._check_input_dim``
and ``Embedding._fill_padding_idx_with_zero`` (tests/nn/test_normalization_private_helpers.py,
tests/nn/test_layers_private_helpers.py), each against torch."""

from __future__ import annotations

import types

import numpy as np
import pytest
import torch

import downslope as ds

CONVS = {1: "Conv1d", 2: "Conv2d", 3: "Conv3d"}


def _fake_quant(lib: types.ModuleType, w):  # a DoReFa-style 3-bit weight quantizer with a straight-through gradient
    scale = w.abs().max() / 3
    return w + ((w / scale).round() * scale - w).detach()


def _qat_class(lib: types.ModuleType, n: int) -> type:
    base = getattr(lib.nn, CONVS[n])

    class QConv(base):
        def forward(self, x):
            return self._conv_forward(x, _fake_quant(lib, self.weight), self.bias)

    return QConv


def _run(lib: types.ModuleType, cls: type, n: int, kwargs: dict, weight: np.ndarray, bias: np.ndarray, x: np.ndarray):
    layer = cls(2, 3, **kwargs)
    with lib.no_grad():
        layer.weight.copy_(lib.tensor(weight))
        layer.bias.copy_(lib.tensor(bias))
    inp = lib.tensor(x, requires_grad=True)
    out = layer(inp)
    projection = np.random.default_rng(0).standard_normal(tuple(out.shape)).astype(np.float32)
    (out * lib.tensor(projection)).sum().backward()
    return out.detach().numpy(), inp.grad.numpy(), layer.weight.grad.numpy(), layer.bias.grad.numpy()


SETTINGS = [
    {"kernel_size": 3, "padding": 1},
    {"kernel_size": 3, "padding": 1, "padding_mode": "reflect"},
    {"kernel_size": 2, "padding": "same", "padding_mode": "circular", "dilation": 2},
    {"kernel_size": 3, "stride": 2, "padding": 2, "padding_mode": "replicate"},
    {"kernel_size": 3, "padding": "valid"},
]


@pytest.mark.parametrize("n", [1, 2, 3])
@pytest.mark.parametrize("kwargs", SETTINGS, ids=lambda k: "-".join(f"{a}={b}" for a, b in k.items()))
def test_qat_subclass_calling_conv_forward_matches_torch(n: int, kwargs: dict) -> None:
    rng = np.random.default_rng(n)
    k = kwargs["kernel_size"]
    weight = rng.standard_normal((3, 2) + (k,) * n).astype(np.float32)
    bias = rng.standard_normal(3).astype(np.float32)
    x = rng.standard_normal((2, 2) + (6,) * n).astype(np.float32)
    expected = _run(torch, _qat_class(torch, n), n, kwargs, weight, bias, x)
    got = _run(ds, _qat_class(ds, n), n, kwargs, weight, bias, x)
    for e, g in zip(expected, got):
        np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("n", [1, 2])
def test_overriding_conv_forward_changes_forward_as_in_torch(n: int) -> None:
    rng = np.random.default_rng(7)
    weight = rng.standard_normal((3, 2) + (3,) * n).astype(np.float32)
    bias = rng.standard_normal(3).astype(np.float32)
    x = rng.standard_normal((1, 2) + (5,) * n).astype(np.float32)
    results = []
    for lib in (torch, ds):

        class Halved(getattr(lib.nn, CONVS[n])):
            def _conv_forward(self, input, weight, bias):
                return super()._conv_forward(input, weight / 2, bias)

        results.append(_run(lib, Halved, n, {"kernel_size": 3}, weight, bias, x))
    for e, g in zip(*results):
        np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-5)


PADDINGS = [
    (2, {"kernel_size": 3, "padding": (1, 2)}),
    (2, {"kernel_size": (4, 3), "padding": "same", "dilation": (1, 3)}),
    (2, {"kernel_size": 3, "padding": "valid"}),
    (1, {"kernel_size": 4, "padding": "same"}),
    (1, {"kernel_size": 5, "padding": 2}),
    (3, {"kernel_size": (2, 3, 4), "padding": "same"}),
    (3, {"kernel_size": 3, "padding": (0, 1, 2)}),
]


@pytest.mark.parametrize(("n", "kwargs"), PADDINGS)
def test_reversed_padding_repeated_twice_is_torch_value(n: int, kwargs: dict) -> None:
    expected = getattr(torch.nn, CONVS[n])(2, 3, **kwargs)._reversed_padding_repeated_twice
    got = getattr(ds.nn, CONVS[n])(2, 3, **kwargs)._reversed_padding_repeated_twice
    assert got == expected and type(got) is type(expected)


def test_reversed_padding_of_a_transposed_convolution_and_an_assigned_value() -> None:
    expected = torch.nn.ConvTranspose2d(2, 3, 3, padding=(1, 2))._reversed_padding_repeated_twice
    assert ds.nn.ConvTranspose2d(2, 3, 3, padding=(1, 2))._reversed_padding_repeated_twice == expected
    conv = ds.nn.Conv2d(2, 3, 3)
    conv._reversed_padding_repeated_twice = [1, 1, 0, 0]  # subclasses set their own, as on torch's attribute
    assert conv._reversed_padding_repeated_twice == [1, 1, 0, 0]


def test_conv_forward_of_a_transposed_convolution_is_refused_where_torch_returns_none() -> None:
    stub = torch.nn.ConvTranspose2d(2, 3, 3)._conv_forward(torch.ones(1, 2, 4, 4), torch.ones(2, 3, 3, 3), None)
    assert stub is None  # torch's _ConvNd._conv_forward is an empty stub
    with pytest.raises(ds.errors.StateError, match="transposed convolution has no _conv_forward"):
        ds.nn.ConvTranspose2d(2, 3, 3)._conv_forward(ds.ones(1, 2, 4, 4), ds.ones(2, 3, 3, 3), None)


def test_conv3d_forward_runs_through_an_overridden_conv_forward():
    class Halved(ds.nn.Conv3d):
        def _conv_forward(self, input, weight, bias):
            return super()._conv_forward(input, weight * 0.5, bias)

    ds.manual_seed(0)
    plain = ds.nn.Conv3d(2, 3, 3, padding=1, padding_mode="reflect")
    halved = Halved(2, 3, 3, padding=1, padding_mode="reflect")
    halved.load_state_dict(plain.state_dict())
    x = ds.randn(1, 2, 4, 5, 6)
    with ds.no_grad():
        plain.weight.mul_(0.5)
    np.testing.assert_allclose(halved(x).detach().numpy(), plain(x).detach().numpy(), rtol=1e-6, atol=1e-6)
