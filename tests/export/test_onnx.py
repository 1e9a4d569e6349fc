"""ONNX export: every layer type, containers, user Modules and traced tensor ops, run in ONNX Runtime
and compared with downslope's own outputs (float32, 1e-5) on a batch size not seen at export."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

import downslope as ds  # noqa: E402
from downslope import nn  # noqa: E402
from downslope.errors import ExportError  # noqa: E402
from downslope.export.onnx import EMITTERS, export  # noqa: E402


def _outputs(value: Any) -> list[np.ndarray]:
    if isinstance(value, (tuple, list)):
        return [a for v in value for a in _outputs(v)]
    return [value.numpy()]


def run_session(path: Path, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return [np.asarray(o) for o in session.run(None, feeds)]


def check(model: nn.Module, example: np.ndarray, other: np.ndarray, tmp_path: Path, **kwargs: Any) -> Any:
    """Export with ``example``; ONNX Runtime on ``other`` (another batch size) must match the model."""
    path = tmp_path / "model.onnx"
    modes = [m.training for m in model.modules()]
    proto = ds.onnx.export(model, ds.tensor(example), path, **kwargs)
    assert [m.training for m in model.modules()] == modes  # exported in eval semantics, mode restored
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    assert proto.opset_import[0].version >= 17
    model.eval()
    with ds.no_grad():
        expected = _outputs(model(ds.tensor(other)))
    got = run_session(path, {proto.graph.input[0].name: other})
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        assert g.shape == e.shape and g.dtype == e.dtype
        np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-5)
    return proto


def randn(*shape: int) -> np.ndarray:
    return np.random.default_rng(sum(shape)).standard_normal(shape).astype(np.float32)


ELEMENTWISE = [
    nn.ReLU(), nn.LeakyReLU(0.2), nn.ELU(0.7), nn.GELU(), nn.GELU("tanh"), nn.Sigmoid(), nn.Tanh(),
    nn.Softmax(dim=1), nn.LogSoftmax(dim=-1), nn.Softplus(), nn.Softplus(beta=2.0, threshold=3.0), nn.SiLU(),
    nn.Identity(), nn.Dropout(0.5),
]  # fmt: skip


@pytest.mark.parametrize("layer", ELEMENTWISE, ids=lambda m: repr(m))
def test_activations_and_dropout(layer: nn.Module, tmp_path: Path) -> None:
    model = nn.Sequential(nn.Linear(5, 6), layer)
    model.train()  # exported in evaluation semantics whatever the mode
    x = randn(3, 5) * 4
    check(model, x, randn(7, 5) * 4, tmp_path)


def test_every_activation_module_is_covered() -> None:
    names = [n for n in nn.activation.__all__ if isinstance(getattr(nn, n, None), type)]
    missing = [n for n in names if getattr(nn, n) not in EMITTERS]
    assert not missing


MORE_ACTIVATIONS = [
    nn.ReLU6(), nn.Hardtanh(-0.5, 2.0), nn.SELU(), nn.CELU(0.6), nn.Mish(), nn.Softsign(), nn.Softmin(dim=1),
    nn.LogSigmoid(), nn.Tanhshrink(), nn.Hardsigmoid(), nn.Hardswish(), nn.Threshold(0.3, -2.0),
    nn.Softshrink(0.7), nn.Hardshrink(0.8), nn.RReLU(0.1, 0.4), nn.PReLU(), nn.PReLU(6, init=0.1),
]  # fmt: skip


@pytest.mark.parametrize("layer", MORE_ACTIVATIONS, ids=lambda m: repr(m))
def test_more_activations(layer: nn.Module, tmp_path: Path) -> None:
    model = nn.Sequential(nn.Linear(5, 6), layer)
    if isinstance(layer, nn.PReLU):  # learned slopes: make each one different and not the initial value
        layer.weight.array[...] = np.linspace(-0.3, 0.6, layer.weight.numel(), dtype=np.float32)
    model.train()  # RReLU draws random slopes while training; the export is in eval semantics
    check(model, randn(3, 5) * 4, randn(7, 5) * 4, tmp_path)


@pytest.mark.parametrize(
    "layer",
    [nn.GLU(), nn.GLU(dim=1), nn.PReLU(4, init=0.3), nn.Softmax2d(), nn.Softmin(dim=-3)],
    ids=lambda m: repr(m),
)
def test_channel_activations(layer: nn.Module, tmp_path: Path) -> None:
    # (N, C, H, W) input: GLU halves a chosen dim, PReLU has one slope per channel, Softmax2d normalizes C.
    if isinstance(layer, nn.PReLU):
        layer.weight.array[...] = np.array([-0.2, 0.1, 0.5, 0.9], dtype=np.float32)
    check(layer, randn(2, 4, 3, 6) * 3, randn(5, 4, 3, 6) * 3, tmp_path)


class TwoInputs(nn.Module):
    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        self.a, self.b, self.layer = nn.Linear(5, 6), nn.Linear(5, 6), layer

    def forward(self, x: ds.Tensor) -> ds.Tensor:
        return self.layer(self.a(x), self.b(x))


@pytest.mark.parametrize(
    "layer",
    [nn.CosineSimilarity(), nn.CosineSimilarity(dim=-1, eps=0.5), nn.PairwiseDistance(),
     nn.PairwiseDistance(p=1.0, eps=0.1, keepdim=True), nn.PairwiseDistance(p=3.0)],
    ids=lambda m: f"{type(m).__name__}({m.__dict__.get('dim', '')}{m.__dict__.get('norm', '')},{m.eps})",
)  # fmt: skip
def test_two_input_layers(layer: nn.Module, tmp_path: Path) -> None:
    check(TwoInputs(layer), randn(3, 5), randn(7, 5), tmp_path)


def test_cosine_similarity_eps_floor_is_exported(tmp_path: Path) -> None:
    # Rows near zero hit the eps floor of the norms: ONNX must apply it as downslope does.
    check(TwoInputs(nn.CosineSimilarity(eps=5.0)), randn(3, 5) * 0.1, randn(7, 5) * 0.1, tmp_path)


@pytest.mark.parametrize("shape", [(3, 5), (2, 4, 5)])
def test_linear(shape: tuple[int, ...], tmp_path: Path) -> None:
    check(nn.Linear(5, 3), randn(*shape), randn(*((6,) + shape[1:])), tmp_path)
    check(nn.Linear(5, 3, bias=False), randn(*shape), randn(*((6,) + shape[1:])), tmp_path)


@pytest.mark.parametrize("start_dim,end_dim", [(1, -1), (2, -1), (1, 2), (0, -1)])
def test_flatten(start_dim: int, end_dim: int, tmp_path: Path) -> None:
    check(nn.Flatten(start_dim, end_dim), randn(2, 3, 4, 5), randn(5, 3, 4, 5), tmp_path)


CONV2D = [
    dict(kernel_size=3),
    dict(kernel_size=(3, 2), stride=(2, 1), padding=(1, 2)),
    dict(kernel_size=3, padding="same", dilation=2),
    dict(kernel_size=4, padding="same"),
    dict(kernel_size=3, padding="valid", bias=False),
    dict(kernel_size=3, groups=2, dilation=(2, 1), stride=2),
    dict(kernel_size=3, padding=1, padding_mode="reflect"),
    dict(kernel_size=3, padding=2, padding_mode="replicate"),
]


@pytest.mark.parametrize("kwargs", CONV2D, ids=str)
def test_conv2d(kwargs: dict[str, Any], tmp_path: Path) -> None:
    check(nn.Conv2d(4, 6, **kwargs), randn(2, 4, 9, 8), randn(3, 4, 9, 8), tmp_path)


@pytest.mark.parametrize(
    "kwargs",
    [dict(kernel_size=3), dict(kernel_size=5, stride=2, padding=2, dilation=1), dict(kernel_size=2, padding="same"),
     dict(kernel_size=3, groups=4, dilation=3), dict(kernel_size=3, padding=1, padding_mode="replicate")],
    ids=str,
)  # fmt: skip
def test_conv1d(kwargs: dict[str, Any], tmp_path: Path) -> None:
    check(nn.Conv1d(4, 8, **kwargs), randn(2, 4, 17), randn(5, 4, 17), tmp_path)


POOLS = [
    nn.MaxPool2d(2), nn.MaxPool2d(3, stride=2, padding=1), nn.MaxPool2d((2, 3), stride=1, dilation=2),
    nn.MaxPool2d(3, stride=2, ceil_mode=True), nn.AvgPool2d(2), nn.AvgPool2d(3, stride=2, padding=1),
    nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False), nn.AvgPool2d(3, stride=2, ceil_mode=True),
    nn.AvgPool2d(2, divisor_override=3), nn.AdaptiveAvgPool2d(1), nn.AdaptiveAvgPool2d((3, 2)),
    nn.AdaptiveAvgPool2d((4, 9)),
]  # fmt: skip


@pytest.mark.parametrize("pool", POOLS, ids=repr)
def test_pool2d(pool: nn.Module, tmp_path: Path) -> None:
    check(pool, randn(2, 3, 9, 9), randn(4, 3, 9, 9), tmp_path)


POOLS1D = [
    nn.MaxPool1d(2), nn.MaxPool1d(3, stride=2, padding=1, dilation=2), nn.MaxPool1d(4, stride=3, ceil_mode=True),
    nn.AvgPool1d(3), nn.AvgPool1d(3, stride=2, padding=1, count_include_pad=False), nn.AdaptiveAvgPool1d(1),
    nn.AdaptiveAvgPool1d(4),
]  # fmt: skip


@pytest.mark.parametrize("pool", POOLS1D, ids=repr)
def test_pool1d(pool: nn.Module, tmp_path: Path) -> None:
    check(pool, randn(2, 3, 11), randn(5, 3, 11), tmp_path)


def _trained_bn(bn: nn.Module, x: np.ndarray) -> nn.Module:
    bn.train()
    for _ in range(3):
        bn(ds.tensor(x * 3 + 1))
    if bn.weight is not None:
        bn.weight.array[...] = np.linspace(0.5, 2, bn.num_features)
        bn.bias.array[...] = np.linspace(-1, 1, bn.num_features)
    return bn


@pytest.mark.parametrize("affine", [True, False])
def test_batchnorm(affine: bool, tmp_path: Path) -> None:
    check(_trained_bn(nn.BatchNorm1d(5, affine=affine), randn(8, 5)), randn(3, 5), randn(6, 5), tmp_path)
    check(_trained_bn(nn.BatchNorm1d(5), randn(8, 5, 4)), randn(3, 5, 4), randn(6, 5, 4), tmp_path)
    check(
        _trained_bn(nn.BatchNorm2d(3, affine=affine), randn(4, 3, 5, 5)), randn(2, 3, 5, 5), randn(5, 3, 5, 5), tmp_path
    )


def test_batchnorm_without_running_stats_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="track_running_stats=False"):
        ds.onnx.export(nn.BatchNorm1d(3, track_running_stats=False), ds.randn(4, 3), tmp_path / "m.onnx")


@pytest.mark.parametrize("kwargs", [dict(), dict(elementwise_affine=False), dict(bias=False)], ids=str)
def test_layernorm(kwargs: dict[str, Any], tmp_path: Path) -> None:
    ln = nn.LayerNorm(6, **kwargs)
    if ln.weight is not None:
        ln.weight.array[...] = np.linspace(0.5, 2, 6)
    check(ln, randn(3, 6), randn(5, 6), tmp_path)
    check(nn.LayerNorm((4, 6), **kwargs), randn(2, 4, 6), randn(3, 4, 6), tmp_path)


def test_embedding(tmp_path: Path) -> None:
    model = nn.Sequential(nn.Embedding(10, 4, padding_idx=0), nn.Flatten(), nn.Linear(12, 2))
    rng = np.random.default_rng(0)
    check(model, rng.integers(0, 10, (2, 3)), rng.integers(0, 10, (5, 3)), tmp_path)


@pytest.mark.parametrize("cls", [nn.RNN, nn.LSTM, nn.GRU])
@pytest.mark.parametrize(
    "kwargs",
    [dict(), dict(batch_first=True), dict(num_layers=2, bidirectional=True), dict(num_layers=3, batch_first=True, bias=False),
     dict(bidirectional=True, batch_first=True)],
    ids=str,
)  # fmt: skip
def test_recurrent(cls: type, kwargs: dict[str, Any], tmp_path: Path) -> None:
    ds.manual_seed(0)
    layer = cls(4, 5, **kwargs)
    # Dim 0 is the batch with batch_first, the time otherwise: either way it is free in the export.
    check(layer, randn(3, 2, 4), randn(6, 2, 4), tmp_path)


def test_rnn_relu(tmp_path: Path) -> None:
    check(nn.RNN(4, 5, nonlinearity="relu", num_layers=2, batch_first=True), randn(3, 6, 4), randn(5, 6, 4), tmp_path)


class LSTMClassifier(nn.Module):
    """The usual sequence classifier: last time step of an LSTM, then a Linear."""

    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(3, 8, num_layers=2, batch_first=True, bidirectional=True)
        self.head = nn.Linear(16, 4)

    def forward(self, x: ds.Tensor) -> ds.Tensor:
        out, _ = self.lstm(x)
        return self.head(out[:, -1])


class Residual(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)
        self.bn = nn.BatchNorm2d(3)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(3, 2)

    def forward(self, x: ds.Tensor) -> ds.Tensor:
        y = self.bn(self.conv(x)).relu() + x * 0.5
        return self.fc(self.pool(y).flatten(1))


class Chain(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv1d(2, 4, 3), nn.Tanh(), nn.MaxPool1d(2))
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(4 * 4, 3), nn.LogSoftmax(dim=1))

    def forward(self, x: ds.Tensor) -> ds.Tensor:
        return self.head(self.body(x))


class Reductions(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.rnn = nn.GRU(3, 4, batch_first=True)
        self.fc = nn.Linear(4, 2)

    def forward(self, x: ds.Tensor) -> ds.Tensor:
        out, _ = self.rnn(x)
        pooled = out.mean(1)  # mean over time
        y = self.fc(pooled)
        return y - y.sum(-1, keepdim=True) / 2 + out.unsqueeze(1).sum((1, 2))[:, :2]


class Indexing(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3, 5)

    def forward(self, x: ds.Tensor) -> ds.Tensor:
        y = self.fc(x)
        z = y[:, 2:, None] + y[..., :1, None] * y[:, ::-2][:, -3:, None]
        return ds.cat([z, y[:, -2:-5:-1].unsqueeze(-1)], dim=1).permute(0, 2, 1).reshape(x.shape[0], -1)


def test_user_modules(tmp_path: Path) -> None:
    ds.manual_seed(1)
    check(LSTMClassifier(), randn(2, 5, 3), randn(7, 5, 3), tmp_path)
    check(_trained_bn_in(Residual()), randn(2, 3, 6, 6), randn(3, 3, 6, 6), tmp_path)
    check(Chain(), randn(2, 2, 10), randn(1, 2, 10), tmp_path)
    check(Reductions(), randn(3, 5, 3), randn(4, 5, 3), tmp_path)
    check(Indexing(), randn(2, 3), randn(6, 3), tmp_path)
    check(Reductions(), randn(1, 5, 3), randn(4, 5, 3), tmp_path)  # a batch of one: size-1 dims everywhere


def _trained_bn_in(model: nn.Module) -> nn.Module:
    model.train()
    model(ds.randn(8, 3, 6, 6))
    return model.eval()


def test_names_and_fixed_batch(tmp_path: Path) -> None:
    proto = check(nn.Linear(3, 2), randn(4, 3), randn(4, 3), tmp_path, input_names=["x"], output_names=["y"],
                  dynamic_batch=False)  # fmt: skip
    assert [i.name for i in proto.graph.input] == ["x"] and [o.name for o in proto.graph.output] == ["y"]
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_value == 4


class Unsupported(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3, 3)

    def forward(self, x: ds.Tensor) -> ds.Tensor:
        return ds.cumprod(self.fc(x), 1)  # a running product, which the exporter does not translate


class FromNumpy(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3, 3)

    def forward(self, x: ds.Tensor) -> ds.Tensor:
        return self.fc(ds.tensor(np.abs(x.numpy())))  # leaves the graph: a frozen value


class Detached(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3, 3)

    def forward(self, x: ds.Tensor) -> ds.Tensor:
        return self.fc(ds.tensor(x.array * 2))  # rebuilt from the raw array: frozen, caught by the check


class InPlace(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3, 3)
        self.fc2 = nn.Linear(3, 1)

    def forward(self, x: ds.Tensor) -> ds.Tensor:
        h = self.fc(x)
        h.array[...] *= 2
        return self.fc2(h)


def test_untranslatable_forward_is_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match=r"Unsupported\.forward uses the tensor operation 'cumprod' \(cumprod\(\)"):
        ds.onnx.export(Unsupported(), ds.randn(2, 3), tmp_path / "m.onnx")
    with pytest.raises(ExportError, match=r"FromNumpy\.forward reads a tensor's value into Python \(t\.numpy\(\)"):
        ds.onnx.export(FromNumpy(), ds.randn(2, 3), tmp_path / "m.onnx")
    with pytest.raises(ExportError, match="differs from the model's"):
        ds.onnx.export(Detached(), ds.randn(2, 3), tmp_path / "m.onnx")
    with pytest.raises(ExportError, match="in place"):
        ds.onnx.export(InPlace(), ds.randn(2, 3), tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


def test_unsupported_layer_options_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="circular"):
        ds.onnx.export(nn.Conv1d(2, 2, 3, padding=1, padding_mode="circular"), ds.randn(2, 2, 5), tmp_path / "m.onnx")
    with pytest.raises(ExportError, match="return_indices"):
        ds.onnx.export(nn.MaxPool2d(2, return_indices=True), ds.randn(1, 1, 4, 4), tmp_path / "m.onnx")
    with pytest.raises(ExportError, match="batched"):
        ds.onnx.export(nn.Conv1d(2, 2, 3), ds.randn(2, 5), tmp_path / "m.onnx")
    with pytest.raises(ExportError, match="LSTMCell"):
        ds.onnx.export(nn.LSTMCell(2, 3), ds.randn(4, 2), tmp_path / "m.onnx")


class BatchSized(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3, 2)

    def forward(self, x: ds.Tensor) -> ds.Tensor:
        return self.fc(x) + ds.zeros(x.shape[0], 2)  # a constant of the example's batch size


def test_shape_frozen_at_the_example_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="second batch"):
        ds.onnx.export(BatchSized(), ds.randn(2, 3), tmp_path / "m.onnx")


def test_reference_evaluator_checks_without_onnxruntime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails: onnx's reference evaluator runs the check
    ds.manual_seed(0)
    model = nn.Sequential(nn.Conv1d(2, 3, 3, padding=1), nn.ReLU(), nn.MaxPool1d(2), nn.Flatten(), nn.Linear(12, 2))
    ds.onnx.export(model, ds.randn(2, 2, 8), tmp_path / "m.onnx")
    ds.onnx.export(LSTMClassifier(), ds.randn(2, 5, 3), tmp_path / "m.onnx")
    with pytest.raises(ExportError, match="differs from the model's"):
        ds.onnx.export(Detached(), ds.randn(2, 3), tmp_path / "m.onnx")


# ---------------------------------------------------------------------- regressions (stranger tester, s8)
class SoftmaxOps(nn.Module):
    def __init__(self, variant: str) -> None:
        super().__init__()
        self.fc, self.variant = nn.Linear(4, 3), variant

    def forward(self, x: ds.Tensor) -> ds.Tensor:
        y = self.fc(x)
        if self.variant == "method":
            return y.softmax(-1)
        if self.variant == "ds":
            return ds.softmax(y, 1)
        if self.variant == "F":
            return nn.functional.softmax(y, dim=1)
        return nn.functional.log_softmax(y, dim=-1)


@pytest.mark.parametrize("variant", ["method", "ds", "F", "F_log"])
def test_softmax_tensor_ops(variant: str, tmp_path: Path) -> None:
    # ops.softmax saves its axes as a tuple: the exporter crashed with int(tuple).
    check(SoftmaxOps(variant), randn(2, 4) * 3, randn(6, 4) * 3, tmp_path)


def test_embedding_max_norm_renormalizes_in_the_graph_and_keeps_weights(tmp_path: Path) -> None:
    ds.manual_seed(0)
    emb = nn.Embedding(10, 4, max_norm=1.0, norm_type=3.0)
    emb.weight.array[...] *= 5
    emb.weight.array[7] *= 0.01  # a row under max_norm stays as it is
    before = emb.weight.array.copy()
    ds.onnx.export(emb, ds.tensor([[0, 1]]), tmp_path / "m.onnx")
    np.testing.assert_array_equal(emb.weight.array, before)  # exporting does not renormalize the model's rows
    idx = np.array([[2, 7], [0, 3], [1, 2]], np.int64)
    got = run_session(tmp_path / "m.onnx", {"input": idx})[0]
    with ds.no_grad():
        expected = emb(ds.tensor(idx)).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    assert np.abs(got[0, 1] - before[7]).max() < 1e-7


class ValueBranch(nn.Module):
    def __init__(self, variant: str) -> None:
        super().__init__()
        self.fc, self.variant = nn.Linear(4, 2), variant

    def forward(self, x: ds.Tensor) -> ds.Tensor:
        y = self.fc(x)
        if self.variant == "item":
            return y * 2 if float(x.mean().item()) > 0 else -y
        if self.variant == "float":
            return y * float(y[0, 0])
        if self.variant == "bool":
            return y if x.sum() > 0 else -y
        return y * len(y.tolist())


@pytest.mark.parametrize("variant", ["item", "float", "bool", "tolist"])
def test_value_dependent_forward_is_refused_at_trace_time(variant: str, tmp_path: Path) -> None:
    example = ds.tensor(np.abs(randn(2, 4)))  # every branch taken here also passes a second-batch check
    with pytest.raises(ExportError, match=r"ValueBranch\.forward reads a tensor's value into Python"):
        ds.onnx.export(ValueBranch(variant), example, tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


class ParameterRead(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 2)
        self.gain = nn.Parameter(ds.tensor(1.5))

    def forward(self, x: ds.Tensor) -> ds.Tensor:
        return self.fc(x) * float(self.gain.item())  # a constant of the model: not value-dependent


def test_reading_a_parameter_is_allowed(tmp_path: Path) -> None:
    check(ParameterRead(), randn(2, 4), randn(5, 4), tmp_path)


class HiddenState(nn.Module):
    def __init__(self, variant: str, cls: type = nn.GRU) -> None:
        super().__init__()
        self.rnn = cls(4, 5, num_layers=2 if variant == "last" else 1, batch_first=True)
        self.fc, self.variant = nn.Linear(5, 2), variant

    def forward(self, x: ds.Tensor) -> ds.Tensor:
        _, h = self.rnn(x)
        if isinstance(h, tuple):  # LSTM: (h_n, c_n)
            h, c = h
            return self.fc(h[-1]) + c.sum(0).sum(-1, keepdim=True)
        if self.variant == "last":
            return self.fc(h[-1])
        if self.variant == "first":
            return self.fc(h[0])
        return self.fc(h.squeeze(0))


@pytest.mark.parametrize("variant", ["last", "first", "squeeze"])
def test_rnn_final_state_has_its_batch_at_dim_1(variant: str, tmp_path: Path) -> None:
    ds.manual_seed(0)
    check(HiddenState(variant), randn(2, 6, 4), randn(7, 6, 4), tmp_path)
    check(HiddenState(variant, nn.LSTM), randn(3, 6, 4), randn(5, 6, 4), tmp_path)


def test_float64_model_exports_a_float64_graph(tmp_path: Path) -> None:
    ds.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.Tanh(), nn.Linear(3, 2)).double()
    proto = ds.onnx.export(model, ds.randn(2, 4, dtype=ds.float64), tmp_path / "m.onnx")
    assert proto.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.DOUBLE
    x = np.random.default_rng(0).standard_normal((5, 4))
    got = run_session(tmp_path / "m.onnx", {"input": x})[0]
    with ds.no_grad():
        expected = model(ds.tensor(x, dtype=ds.float64)).numpy()
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


class Messages(nn.Module):
    def __init__(self, variant: str) -> None:
        super().__init__()
        self.fc, self.variant = nn.Linear(4, 5), variant

    def forward(self, x: ds.Tensor) -> ds.Tensor:
        y = self.fc(x)
        if self.variant == "sort":
            return y.kthvalue(2, 1)[0]
        if self.variant == "cumprod":
            return ds.cumprod(y, 1)
        return y + ds.ones(y.shape[0], 5)  # sizes as numbers: the trace cannot tie them to the input


def test_refusals_name_the_op_and_the_module(tmp_path: Path) -> None:
    path = tmp_path / "m.onnx"
    with pytest.raises(
        ExportError, match=r"Messages\.forward \(kthvalue\(\) at test_onnx\.py:\d+\): indexing with arrays"
    ):
        ds.onnx.export(Messages("sort"), ds.randn(2, 4), path)
    with pytest.raises(ExportError, match=r"Messages\.forward uses the tensor operation 'cumprod' \(cumprod\(\) at"):
        ds.onnx.export(Messages("cumprod"), ds.randn(2, 4), path)
    with pytest.raises(
        ExportError,
        match=r"not batch-dynamic: a float32 tensor of shape \(2, 5\) made in Messages\.forward \(ones\(",
    ):
        ds.onnx.export(Messages("ones_like"), ds.randn(2, 4), path)
    with pytest.raises(ExportError, match=r"the layer CircularPad1d is not supported"):
        ds.onnx.export(nn.CircularPad1d(1), ds.randn(2, 3, 4), path)


def test_nearest_upsampling_exports_as_a_gather(tmp_path: Path) -> None:
    # its forward indexes one dim with a fixed index array: written as a Gather of constant indices
    check(nn.Upsample(scale_factor=2), randn(2, 3, 4), randn(5, 3, 4), tmp_path)


@pytest.mark.parametrize(
    "pool,shape",
    [(nn.MaxPool2d(2, stride=2, padding=1, ceil_mode=True), (5, 5)), (nn.MaxPool2d(3, 2, 1, ceil_mode=True), (8, 7)),
     (nn.MaxPool1d(3, stride=2, padding=1, dilation=2, ceil_mode=True), (12,)),
     (nn.MaxPool1d(2, stride=2, padding=1, ceil_mode=True), (6,))],
    ids=repr,
)  # fmt: skip
def test_max_pool_ceil_mode_with_padding(pool: nn.Module, shape: tuple[int, ...], tmp_path: Path) -> None:
    # PyTorch drops a last window that would start in the right padding; ONNX's ceil rule keeps it.
    check(pool, randn(2, 3, *shape), randn(4, 3, *shape), tmp_path)


def test_unsupported_layers_are_refused_by_class_name(tmp_path: Path) -> None:
    path = tmp_path / "m.onnx"
    for layer, x in [(nn.MaxPool3d(2), ds.randn(2, 2, 4, 4, 4)), (nn.AvgPool3d(2), ds.randn(2, 2, 4, 4, 4)),
                     (nn.AdaptiveAvgPool3d(2), ds.randn(2, 2, 5, 5, 5))]:  # fmt: skip
        with pytest.raises(ExportError, match=rf"the layer {type(layer).__name__} is not supported"):
            ds.onnx.export(layer, x, path)
    with pytest.raises(ExportError, match=r"LSTM\(proj_size=3\) is not supported"):
        ds.onnx.export(nn.LSTM(4, 5, proj_size=3, batch_first=True), ds.randn(2, 6, 4), path)


def test_a_forward_that_fixes_the_batch_size_is_refused_with_how_to_export_it(tmp_path):
    class Fixed(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.layer = nn.Linear(5, 5)

        def forward(self, x):  # type: ignore[no-untyped-def]
            return self.layer(x).reshape(2, 5)

    with pytest.raises(ExportError, match="batch size is not dynamic.*dynamic_batch=False"):
        export(Fixed(), ds.randn(2, 5), tmp_path / "m.onnx")
    export(Fixed(), ds.randn(2, 5), tmp_path / "m.onnx", dynamic_batch=False)


def test_dynamic_axes_of_an_output_other_than_the_batch_or_without_the_inputs_are_refused():
    model = nn.Sequential(nn.Linear(4, 3))
    for axes in ({"output": {1: "f"}}, {"output": [1]}, {"input": {0: "b"}, "output": {1: "x"}}, {"output": {0: "b"}}):
        with pytest.raises(ExportError, match="dynamic_axes"):
            ds.onnx.export(model, ds.randn(3, 4), None, output_names=["output"], dynamic_axes=axes)
