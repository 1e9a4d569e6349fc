"""Module constructors take torch's positional parameters in torch's order, ``device`` and ``dtype``
included: code written for torch passes them positionally (pytorch/examples' mnist_forward_forward
subclasses ``nn.Linear`` and calls ``super().__init__(in_features, out_features, bias, device, dtype)``)."""

from __future__ import annotations

import inspect
import warnings
from typing import Any

import numpy as np
import pytest
import torch

import downslope as ds
from downslope import nn

_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)

# torch's constructor takes *args there (its positional order is checked by the behavioural tests below)
_STAR_ARGS = {"RNN", "LSTM", "GRU"}


def _positional_names(cls: type) -> list[str] | None:
    """The positional parameter names of ``cls.__init__`` (self left out); None when it takes *args."""
    params = list(inspect.signature(cls.__init__).parameters.values())[1:]
    if any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in params):
        return None
    return [p.name for p in params if p.kind in _POSITIONAL]


def _shared_module_classes() -> list[str]:
    names = []
    for name in sorted(dir(torch.nn)):
        theirs = getattr(torch.nn, name)
        if isinstance(theirs, type) and issubclass(theirs, torch.nn.Module) and hasattr(nn, name):
            names.append(name)
    return names


@pytest.mark.parametrize("name", _shared_module_classes())
def test_positional_parameters_match_torch(name: str) -> None:
    theirs = _positional_names(getattr(torch.nn, name))
    if name in _STAR_ARGS:
        assert theirs is None, f"{name}: torch's signature is explicit now; drop it from _STAR_ARGS"
        return
    # torch's *args (Module's own, on Identity, Tanh...) is ours too: None on both sides
    assert _positional_names(getattr(nn, name)) == theirs


def test_the_scan_covers_the_layers_that_take_device_and_dtype() -> None:
    # guards the scan itself: it must see the classes the porting reports were about
    names = set(_shared_module_classes())
    assert {"Linear", "Conv2d", "LayerNorm", "BatchNorm1d", "ParameterDict", "ZeroPad2d", "RNNCellBase"} <= names


def _dtypes(module: Any) -> dict[str, tuple[tuple[int, ...], str]]:
    return {k: (tuple(v.shape), str(v.dtype).replace("torch.", "")) for k, v in module.state_dict().items()}


# (name, positional arguments before device and dtype): every argument given positionally, as torch takes them
_BUILT_POSITIONALLY = [
    ("Linear", (3, 4, True)),
    ("Bilinear", (3, 2, 4, True)),
    ("Conv1d", (2, 3, 3, 1, 0, 1, 1, True, "zeros")),
    ("Conv2d", (1, 2, 3, 1, 0, 1, 1, True, "zeros")),
    ("Conv3d", (1, 2, 2, 1, 0, 1, 1, True, "zeros")),
    ("ConvTranspose1d", (2, 3, 3, 1, 0, 0, 1, True, 1, "zeros")),
    ("ConvTranspose2d", (2, 3, 3, 2, 1, 1, 1, False, 1, "zeros")),
    ("ConvTranspose3d", (2, 3, 2, 1, 0, 0, 1, True, 1, "zeros")),
    ("BatchNorm1d", (4, 1e-5, 0.1, True, True)),
    ("BatchNorm2d", (4, 1e-5, 0.1, True, True)),
    ("BatchNorm3d", (4, 1e-5, None, True, False)),
    ("InstanceNorm1d", (4, 1e-5, 0.1, True, True)),
    ("InstanceNorm2d", (4, 1e-5, 0.1, True, False)),
    ("InstanceNorm3d", (4, 1e-5, 0.1, False, True)),
    ("LayerNorm", (4, 1e-5, True, True)),
    ("GroupNorm", (2, 4, 1e-5, True)),
    ("RMSNorm", (4, 1e-6, True)),
    ("PReLU", (3, 0.1)),
    ("MultiheadAttention", (4, 2, 0.0, True, True, False, 3, 5, True)),
    ("TransformerEncoderLayer", (4, 2, 8, 0.1, "gelu", 1e-5, True, True, True)),
    ("TransformerDecoderLayer", (4, 2, 8, 0.1, "relu", 1e-5, True, False, False)),
    ("Transformer", (4, 2, 1, 1, 8, 0.1, "relu", None, None, 1e-5, True, False, True)),
    ("RNNCell", (3, 4, True, "relu")),
    ("LSTMCell", (3, 4, False)),
    ("GRUCell", (3, 4, True)),
    ("RNNCellBase", (3, 4, True, 4)),
    ("RNN", (3, 4, 2, "relu", True, True, 0.0, True, 0)),
    ("LSTM", (3, 4, 1, True, True, 0.0, True, 2)),
    ("GRU", (3, 4, 1, False, True, 0.0, False, 0)),
    ("RNNBase", ("LSTM", 3, 4, 2, True, False, 0.0, False, 3)),
    ("AdaptiveLogSoftmaxWithLoss", (4, 10, [3, 6], 2.0, True)),
]


@pytest.mark.parametrize("device", ["cpu", "device", None])
@pytest.mark.parametrize(("name", "args"), _BUILT_POSITIONALLY)
def test_positional_device_and_dtype_build_torchs_layer(name: str, args: tuple[Any, ...], device: Any) -> None:
    theirs = getattr(torch.nn, name)(*args, torch.device("cpu") if device == "device" else device, torch.float64)
    ours = getattr(nn, name)(*args, ds.device("cpu") if device == "device" else device, ds.float64)
    assert _dtypes(ours) == _dtypes(theirs)
    assert all(p.dtype == ds.float64 for p in ours.parameters())


@pytest.mark.parametrize(
    ("name", "args", "x_shape"),
    [("LazyLinear", (4, True), (2, 3)), ("LazyConv2d", (2, 3, 1, 1, 1, 1, True, "zeros"), (1, 3, 5, 5)),
     ("LazyConvTranspose1d", (2, 3, 2, 0, 1, 1, True, 1, "zeros"), (1, 3, 4)),
     ("LazyBatchNorm2d", (1e-5, 0.1, True, True), (2, 3, 4, 4)),
     ("LazyInstanceNorm1d", (1e-5, 0.1, True, True), (2, 3, 4))],
)  # fmt: skip
def test_lazy_layers_take_positional_device_and_dtype(name: str, args: tuple[Any, ...], x_shape: tuple) -> None:
    theirs = getattr(torch.nn, name)(*args, "cpu", torch.float64)
    ours = getattr(nn, name)(*args, "cpu", ds.float64)
    x = np.random.default_rng(0).standard_normal(x_shape)
    theirs(torch.tensor(x))
    ours(ds.tensor(x, dtype=ds.float64))
    assert _dtypes(ours) == _dtypes(theirs)


def test_keyword_device_and_dtype_still_work_and_agree_with_positional() -> None:
    ds.manual_seed(3)
    a = nn.Linear(3, 4, True, "cpu", ds.float64)
    ds.manual_seed(3)
    b = nn.Linear(3, 4, device="cpu", dtype=ds.float64)
    np.testing.assert_array_equal(a.weight.detach().numpy(), b.weight.detach().numpy())
    ds.manual_seed(3)
    c = nn.LazyConv2d(2, 3, device="cpu", dtype=ds.float64)  # the lazy convolutions refused these keywords
    c(ds.randn(1, 3, 4, 4, dtype=ds.float64))
    assert c.weight.dtype == ds.float64


def test_positional_device_is_resolved_as_the_keyword_is() -> None:
    # an unavailable device is refused up front, with the same error either way
    with pytest.raises(ds.errors.StateError) as keyword:
        nn.Linear(3, 4, device="mps")
    with pytest.raises(ds.errors.StateError) as positional:
        nn.Linear(3, 4, True, "mps")
    assert str(positional.value) == str(keyword.value)
    with pytest.raises(ds.errors.StateError):
        nn.Conv2d(1, 2, 3, 1, 0, 1, 1, True, "zeros", "mps")


def test_positional_device_moves_the_layer_to_the_strict_stand_in() -> None:
    ours = nn.LayerNorm(4, 1e-5, True, True, "strict")
    kw = nn.LayerNorm(4, device="strict")
    assert ours.weight.device == kw.weight.device == ds.device("strict")


def test_mnist_forward_forward_layer_subclass() -> None:
    # pytorch/examples mnist_forward_forward: a Linear subclass forwarding torch's positional arguments
    def make(lib: Any) -> Any:
        class Layer(lib.nn.Linear):
            def __init__(self, in_features, out_features, bias=True, device=None, dtype=None):  # type: ignore[no-untyped-def]
                super().__init__(in_features, out_features, bias, device, dtype)
                self.relu = lib.nn.ReLU()
                self.opt = lib.optim.Adam(self.parameters(), lr=0.03)
                self.threshold = 2.0

            def forward(self, x):  # type: ignore[no-untyped-def]
                x_direction = x / (x.norm(2, 1, keepdim=True) + 1e-4)
                return self.relu(lib.mm(x_direction, self.weight.T) + self.bias.unsqueeze(0))

        return Layer

    x = np.random.default_rng(1).standard_normal((5, 6))
    theirs = make(torch)(6, 3, True, "cpu", torch.float64)
    ours = make(ds)(6, 3, True, "cpu", ds.float64)
    assert ours.weight.dtype == ds.float64 and ours.bias is not None
    with torch.no_grad():
        theirs.weight.copy_(torch.tensor(ours.weight.detach().numpy()))
        theirs.bias.copy_(torch.tensor(ours.bias.detach().numpy()))
    for _ in range(3):  # the example's training step: a goodness loss, Adam on the layer's own parameters
        for lib, layer in ((torch, theirs), (ds, ours)):
            g = layer(lib.tensor(x, dtype=lib.float64)).pow(2).mean(1)
            loss = lib.log(1 + lib.exp(-g + layer.threshold)).mean()
            layer.opt.zero_grad()
            loss.backward()
            layer.opt.step()
    np.testing.assert_allclose(ours.weight.detach().numpy(), theirs.weight.detach().numpy(), rtol=1e-12, atol=1e-12)


def test_pads_take_padding_alone_as_torch() -> None:
    for name in ("ZeroPad2d", "ReflectionPad1d", "ReplicationPad3d", "CircularPad2d"):
        with pytest.raises(TypeError):
            getattr(torch.nn, name)(1, 0.5)
        with pytest.raises(TypeError):
            getattr(nn, name)(1, 0.5)
    x = np.arange(12.0).reshape(1, 1, 3, 4)
    for name, args in (("ZeroPad2d", (1,)), ("ConstantPad2d", (1, 0.5)), ("ReflectionPad2d", ((1, 0, 2, 1),))):
        expected = getattr(torch.nn, name)(*args)(torch.tensor(x)).numpy()
        np.testing.assert_array_equal(getattr(nn, name)(*args)(ds.tensor(x)).numpy(), expected)


def test_parameter_dict_takes_torchs_keyword() -> None:
    theirs = torch.nn.ParameterDict(
        parameters={"b": torch.nn.Parameter(torch.ones(2)), "a": torch.nn.Parameter(torch.zeros(1))}
    )
    ours = nn.ParameterDict(parameters={"b": nn.Parameter(ds.ones(2)), "a": nn.Parameter(ds.zeros(1))})
    assert list(ours.keys()) == list(theirs.keys())


def test_rnn_cell_base_takes_the_chunk_count() -> None:
    theirs = torch.nn.RNNCellBase(3, 4, True, 3)
    ours = nn.RNNCellBase(3, 4, True, 3)
    assert _dtypes(ours) == _dtypes(theirs)
    with pytest.raises(ds.errors.ArgumentError, match="num_chunks"):
        nn.RNNCellBase(3, 4, True, 2)


def test_gru_refuses_a_positional_projection() -> None:
    # torch builds the GRU and fails at its first forward; it is refused here up front
    with pytest.raises(RuntimeError, match="hidden size"):
        torch.nn.GRU(3, 4, 1, True, False, 0.0, False, 2)(torch.randn(5, 3))
    with pytest.raises(ds.errors.ArgumentError, match="proj_size"):
        nn.GRU(3, 4, 1, True, False, 0.0, False, 2)


def test_no_warning_from_building_layers_positionally() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        nn.Linear(3, 4, True, None, None)
        nn.BatchNorm1d(4, 1e-5, 0.1, True, True, None, None)


def test_multihead_attentions_projection_class_matches_torch() -> None:
    # torch.nn.modules.linear's Linear subclass (MultiheadAttention's out_proj), outside torch.nn's namespace
    from torch.nn.modules.linear import NonDynamicallyQuantizableLinear as Theirs

    from downslope.nn.modules.linear import NonDynamicallyQuantizableLinear as Ours

    assert _positional_names(Ours) == _positional_names(Theirs)
    assert Ours(3, 4, True, "cpu", ds.float64).weight.dtype == ds.float64
