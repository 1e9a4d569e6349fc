"""ONNX export with a free sequence axis (``dynamic_axes={"x": {0: "batch", 1: "seq"}}``): models exported
at length 7 run in ONNX Runtime at lengths 3 and 50 (and other batch sizes) with downslope's outputs.
The sizes the forward reads from the input (x.shape[1], view(B, T, -1), arange(T) for positions, a causal
mask of T x T, a mean over T written as a division) become Shape/Gather/Range nodes; what cannot follow the
length (a pooling window fitted to it, a Python loop over it) is refused naming the op and line."""

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

# the exporter reads the example's arrays on the host (as the rest of tests/export's ONNX tests)
pytestmark = pytest.mark.host_only

VOCAB = 20


class _Recurrent(nn.Module):
    def __init__(self, cell: Any) -> None:
        super().__init__()
        self.emb = nn.Embedding(VOCAB, 8)
        self.rnn = cell(8, 6, batch_first=True)
        self.out = nn.Linear(6, 3)

    def forward(self, x: ds.Tensor) -> ds.Tensor:
        return self.out(self.rnn(self.emb(x))[0])


class _Convolution(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(VOCAB, 8)
        self.conv = nn.Conv1d(8, 5, 3, padding=1)

    def forward(self, x: ds.Tensor) -> ds.Tensor:
        return self.conv(self.emb(x).transpose(1, 2)).transpose(1, 2)


class _CausalTransformer(nn.Module):
    """Positions from arange(T), a causal mask from T, heads split with view(B, T, ...)."""

    def __init__(self, additive: bool) -> None:
        super().__init__()
        self.additive = additive
        self.emb = nn.Embedding(VOCAB, 16)
        self.pos = nn.Embedding(64, 16)
        self.layer = nn.TransformerEncoderLayer(16, 2, 32, dropout=0.0, batch_first=True)
        self.out = nn.Linear(16, 4)

    def forward(self, x: ds.Tensor) -> ds.Tensor:
        b, t = x.shape[0], x.shape[1]
        h = self.emb(x) + self.pos(ds.arange(t))
        if self.additive:
            mask = ds.triu(ds.full((t, t), float("-inf")), diagonal=1)
        else:
            mask = ds.triu(ds.ones(t, t, dtype=ds.bool), diagonal=1)
        h = self.layer(h, src_mask=mask)
        h = h.view(b, t, 2, 8).reshape(b, t, -1)
        return self.out(h) + h.sum(1, keepdim=True)[..., :4] / t


def _ids(rng: np.random.Generator, b: int, t: int) -> np.ndarray:
    return rng.integers(0, VOCAB, (b, t)).astype(np.int64)


def _check(model: nn.Module, tmp_path: Path, axes: dict[int, str] | None = None) -> onnx.ModelProto:
    model.eval()
    rng = np.random.default_rng(0)
    path = tmp_path / "m.onnx"
    axes = axes or {0: "batch", 1: "seq"}
    ds.onnx.export(model, ds.from_numpy(_ids(rng, 2, 7)), path, input_names=["x"], output_names=["y"],
                   dynamic_axes={"x": axes, "y": axes})  # fmt: skip
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for b, t in ((4, 3), (3, 50), (1, 7)):
        x = _ids(rng, b, t)
        with ds.no_grad():
            want = model(ds.from_numpy(x)).numpy()
        got = session.run(None, {"x": x})[0]
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    proto = onnx.load(str(path))
    dims = [[d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim] for v in (*proto.graph.input,
                                                                                        *proto.graph.output)]  # fmt: skip
    assert dims[0] == ["batch", "seq"] and dims[1][:2] == ["batch", "seq"]
    return proto


@pytest.mark.parametrize("cell", [nn.LSTM, nn.GRU, nn.RNN], ids=["lstm", "gru", "rnn"])
def test_embedding_and_recurrent_layer(cell: Any, tmp_path: Path) -> None:
    ds.manual_seed(0)
    _check(_Recurrent(cell), tmp_path)


def test_embedding_and_conv1d(tmp_path: Path) -> None:
    ds.manual_seed(0)
    _check(_Convolution(), tmp_path)


@pytest.mark.parametrize("additive", [False, True], ids=["bool_mask", "additive_mask"])
def test_transformer_with_positions_and_a_causal_mask_from_the_length(additive: bool, tmp_path: Path) -> None:
    ds.manual_seed(0)
    proto = _check(_CausalTransformer(additive), tmp_path)
    ops = {n.op_type for n in proto.graph.node}
    assert {"Shape", "Gather", "Range"} <= ops
    # no constant of the example's length is left: positions and the mask are computed
    shapes = {tuple(i.dims) for i in proto.graph.initializer}
    assert (7,) not in shapes and (7, 7) not in shapes


def test_sequence_first_recurrent_layer_with_its_length_on_axis_0(tmp_path: Path) -> None:
    ds.manual_seed(0)

    class SequenceFirst(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.rnn = nn.LSTM(4, 5)

        def forward(self, x: ds.Tensor) -> ds.Tensor:
            return self.rnn(x)[0]

    model = SequenceFirst().eval()
    rng = np.random.default_rng(0)
    path = tmp_path / "m.onnx"
    example = rng.standard_normal((7, 2, 4)).astype(np.float32)
    ds.onnx.export(model, ds.from_numpy(example), path, input_names=["x"], dynamic_axes={"x": {0: "time", 1: "batch"}})
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for t, b in ((3, 4), (50, 1)):
        x = rng.standard_normal((t, b, 4)).astype(np.float32)
        with ds.no_grad():
            want = model(ds.from_numpy(x)).numpy()
        np.testing.assert_allclose(session.run(None, {"x": x})[0], want, rtol=1e-5, atol=1e-5)


def test_a_pooling_window_fitted_to_the_length_is_refused_naming_the_layer(tmp_path: Path) -> None:
    class Pooled(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.pool = nn.AdaptiveAvgPool1d(3)

        def forward(self, x: ds.Tensor) -> ds.Tensor:
            return self.pool(x.transpose(1, 2))

    with pytest.raises(ExportError, match=r"AdaptiveAvgPool1d at test_onnx_sequence_axis\.py:\d+: .*sequence length"):
        ds.onnx.export(Pooled(), ds.randn(2, 7, 4), tmp_path / "m.onnx", input_names=["x"],
                       dynamic_axes={"x": {0: "batch", 1: "seq"}})  # fmt: skip


def test_a_python_loop_over_the_length_is_refused_naming_the_line(tmp_path: Path) -> None:
    class Loop(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = nn.Linear(4, 4)

        def forward(self, x: ds.Tensor) -> ds.Tensor:
            h = x[:, 0]
            for t in range(1, x.shape[1]):
                h = self.lin(h) + x[:, t]
            return h

    with pytest.raises(ExportError, match=r"test_onnx_sequence_axis\.py:\d+: .*Python loop over the length"):
        ds.onnx.export(Loop(), ds.randn(2, 7, 4), tmp_path / "m.onnx", input_names=["x"],
                       dynamic_axes={"x": {0: "batch", 1: "seq"}})  # fmt: skip


def test_an_output_axis_that_does_not_follow_the_length_is_refused(tmp_path: Path) -> None:
    model = _Recurrent(nn.GRU)
    with pytest.raises(ExportError, match=r"axis 2 of output 'y' .*sequence length"):
        ds.onnx.export(model, ds.from_numpy(_ids(np.random.default_rng(0), 2, 7)), tmp_path / "m.onnx",
                       input_names=["x"], output_names=["y"],
                       dynamic_axes={"x": {0: "batch", 1: "seq"}, "y": {0: "batch", 2: "seq"}})  # fmt: skip


def test_two_sequence_labels_are_refused(tmp_path: Path) -> None:
    class Two(nn.Module):
        def forward(self, a: ds.Tensor, b: ds.Tensor) -> ds.Tensor:
            return a.sum(1) + b.sum(1)

    with pytest.raises(ExportError, match="several sequence axes"):
        ds.onnx.export(Two(), (ds.randn(2, 7), ds.randn(2, 5)), tmp_path / "m.onnx", input_names=["a", "b"],
                       dynamic_axes={"a": {0: "batch", 1: "seq_a"}, "b": {0: "batch", 1: "seq_b"}})  # fmt: skip


class _MaskedAttention(nn.Module):
    """Two inputs with the sequence axis: the values and a key padding mask; the causal mask made by
    generate_square_subsequent_mask(T) and by the fused attention's is_causal."""

    def __init__(self, fused: bool) -> None:
        super().__init__()
        self.fused = fused
        self.layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True)
        self.qkv = nn.Linear(8, 24)

    def forward(self, x: ds.Tensor, pad: ds.Tensor) -> ds.Tensor:
        b, t = x.shape[0], x.shape[1]
        if self.fused:
            q, k, v = self.qkv(x).view(b, t, 3, 2, 4).permute(2, 0, 3, 1, 4)
            y = nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
            return y.transpose(1, 2).reshape(b, t, 8)
        mask = nn.Transformer.generate_square_subsequent_mask(t)
        return self.layer(x, src_mask=mask, src_key_padding_mask=pad)


@pytest.mark.parametrize("fused", [False, True], ids=["encoder_layer_with_padding", "sdpa_is_causal"])
def test_attention_with_a_padding_mask_input_and_a_causal_mask(fused: bool, tmp_path: Path) -> None:
    ds.manual_seed(0)
    model = _MaskedAttention(fused).eval()
    rng = np.random.default_rng(0)

    def inputs(b: int, t: int) -> tuple[np.ndarray, np.ndarray]:
        pad = np.zeros((b, t), dtype=bool)
        pad[0, -1:] = True
        return rng.standard_normal((b, t, 8)).astype(np.float32), pad

    path = tmp_path / "m.onnx"
    axes = {"x": {0: "batch", 1: "seq"}, "pad": {0: "batch", 1: "seq"}}
    ds.onnx.export(model, tuple(ds.from_numpy(a) for a in inputs(2, 7)), path, input_names=["x", "pad"],
                   dynamic_axes=axes)  # fmt: skip
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for b, t in ((4, 3), (3, 50)):
        x, pad = inputs(b, t)
        with ds.no_grad():
            want = model(ds.from_numpy(x), ds.from_numpy(pad)).numpy()
        np.testing.assert_allclose(session.run(None, {"x": x, "pad": pad})[0], want, rtol=1e-5, atol=1e-5)
