"""ONNX export of values a forward computes without recording them (comparisons, masks, casts, argmax,
detach), of the functional forms of the exported layers, of masks given as graph inputs, and torch's
export() names. Each graph runs in ONNX Runtime on inputs not seen at export (two batch sizes, or
other values at a fixed batch) and must match PyTorch's model with the same weights."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
torch = pytest.importorskip("torch")

import downslope as ds  # noqa: E402
from downslope.errors import ExportError  # noqa: E402

Forward = Callable[[Any, Any, Any, Any], Any]  # (lib, F, module, x) -> output


def _pair(forward: Forward, build: Callable[[Any], dict[str, Any]]) -> tuple[Any, Any]:
    """The same model in downslope and torch: ``build(lib)`` makes its layers, ``forward`` runs them."""

    def make(lib: Any) -> Any:
        class Net(lib.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                for name, layer in build(lib).items():
                    setattr(self, name, layer)

            def forward(self, *xs: Any) -> Any:
                return forward(lib, lib.nn.functional, self, *xs)

        return Net()

    ds.manual_seed(0)
    dm = make(ds).eval()
    tm = make(torch).eval()
    tm.load_state_dict({k: torch.from_numpy(np.array(v.numpy())) for k, v in dm.state_dict().items()})
    return dm, tm


def _run(path: Path | bytes, feeds: list[np.ndarray]) -> list[np.ndarray]:
    session = ort.InferenceSession(path if isinstance(path, bytes) else str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {i.name: a for i, a in zip(session.get_inputs(), feeds)})


def _torch_out(tm: Any, feeds: list[np.ndarray]) -> list[np.ndarray]:
    with torch.no_grad():
        out = tm(*[torch.from_numpy(a.copy()) for a in feeds])
    outs = out if isinstance(out, (tuple, list)) else [out]
    return [o.numpy() for o in outs]


def _check(
    forward: Forward,
    build: Callable[[Any], dict[str, Any]],
    make_inputs: Callable[[np.random.Generator, int], list[np.ndarray]],
    tmp_path: Path,
    batch_sizes: tuple[int, ...] = (3, 6),
    **kwargs: Any,
) -> None:
    """Export at batch 2; the graph on fresh inputs of ``batch_sizes`` (the example's batch with a fixed
    batch) matches torch."""
    dm, tm = _pair(forward, build)
    rng = np.random.default_rng(0)
    example = [ds.from_numpy(a) for a in make_inputs(rng, 2)]
    path = tmp_path / "m.onnx"
    ds.onnx.export(dm, tuple(example), path, **kwargs)
    fixed = kwargs.get("dynamic_batch") is False
    for n in (2, 2) if fixed else batch_sizes:
        feeds = make_inputs(rng, n)
        for got, want in zip(_run(path, feeds), _torch_out(tm, feeds)):
            assert got.shape == want.shape
            if want.dtype.kind == "f":
                np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
            else:
                np.testing.assert_array_equal(got, want)


def _floats(*shape: int) -> Callable[[np.random.Generator, int], list[np.ndarray]]:
    return lambda rng, n: [rng.standard_normal((n, *shape)).astype(np.float32)]


def _linear(lib: Any) -> dict[str, Any]:
    return {"fc": lib.nn.Linear(4, 5)}


# ---------------------------------------------------------------------- comparisons, masks, casts, argmax
MASKS: dict[str, Forward] = {
    "masked_fill": lambda lib, F, m, x: (h := m.fc(x)).masked_fill(h < 0, 0.0),
    "where": lambda lib, F, m, x: lib.where((h := m.fc(x)) > 0, h, 0.1 * h),
    "where_numbers": lambda lib, F, m, x: lib.where(m.fc(x) > 0.2, 1.0, -1.0),
    "float_mask": lambda lib, F, m, x: ((h := m.fc(x)) > 0).float() * h,
    "logical": lambda lib, F, m, x: (
        (~((h := m.fc(x)) > 0) & (h > -0.5)).float() + (h == h.amax(1, keepdim=True)).float()
    ),
    "ne_long": lambda lib, F, m, x: ((h := m.fc(x)) >= 0.1).long() * 2 + (h <= -0.1).long() + (h != 0).long(),
    "argmax": lambda lib, F, m, x: m.fc(x).argmax(1),
    "argmin_keepdim": lambda lib, F, m, x: m.fc(x).argmin(dim=-1, keepdim=True),
    "var": lambda lib, F, m, x: m.fc(x).var(1),
    "std": lambda lib, F, m, x: m.fc(x).std(1),  # std is one op of its own: Sqrt after the variance
    "std_keepdim_biased": lambda lib, F, m, x: (h := m.fc(x)) / h.std(-1, unbiased=False, keepdim=True),
    "kron_of_weights": lambda lib, F, m, x: m.fc(x) * lib.kron(m.fc.weight[:1, :1], m.fc.bias),  # kron's own op
    "detach": lambda lib, F, m, x: m.fc(x) - m.fc(x).detach().mean(1, keepdim=True),
}


@pytest.mark.parametrize("dynamic", [True, False])
@pytest.mark.parametrize("name", list(MASKS))
def test_values_made_from_the_input_follow_it(name: str, dynamic: bool, tmp_path: Path) -> None:
    # They were frozen at the example's values: refused with a dynamic batch, silently wrong with a fixed one.
    _check(MASKS[name], _linear, _floats(4), tmp_path, dynamic_batch=dynamic)


def test_a_value_frozen_with_a_fixed_batch_is_refused_not_written(tmp_path: Path) -> None:
    class Frozen(ds.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = ds.nn.Linear(4, 5)

        def forward(self, x: ds.Tensor) -> ds.Tensor:
            h = self.fc(x)
            return h * ds.from_numpy(h.array > 0)  # a mask rebuilt from the raw array: the trace cannot follow it

    ds.manual_seed(0)
    path = tmp_path / "m.onnx"
    with pytest.raises(ExportError, match=r"differs from the model's on a second input of the example's shapes"):
        ds.onnx.export(Frozen(), ds.randn(2, 4), path, dynamic_batch=False)
    assert not path.exists()


def test_token_masks_from_integer_ids(tmp_path: Path) -> None:
    def forward(lib: Any, F: Any, m: Any, ids: Any) -> Any:
        keep = (ids != 0).float().unsqueeze(-1)
        return (m.emb(ids) * keep).sum(1) / keep.sum(1).clamp(min=1.0)

    def ids(rng: np.random.Generator, n: int) -> list[np.ndarray]:
        a = rng.integers(1, 10, size=(n, 6))
        a[:, 4:] = 0
        a[0, 2:] = 0
        return [a.astype(np.int64)]

    _check(forward, lambda lib: {"emb": lib.nn.Embedding(10, 3)}, ids, tmp_path)
    _check(forward, lambda lib: {"emb": lib.nn.Embedding(10, 3)}, ids, tmp_path, dynamic_batch=False)


# ---------------------------------------------------------------------- attention masks as graph inputs
def _tokens_and_mask(kind: str) -> Callable[[np.random.Generator, int], list[np.ndarray]]:
    def make(rng: np.random.Generator, n: int) -> list[np.ndarray]:
        x = rng.standard_normal((n, 5, 8)).astype(np.float32)
        lengths = rng.integers(1, 6, size=n)
        padded = np.arange(5)[None, :] >= lengths[:, None]
        if kind == "bool":
            return [x, padded]
        return [x, np.where(padded, -np.inf, 0.0).astype(np.float32)]

    return make


@pytest.mark.parametrize("dynamic", [True, False])
@pytest.mark.parametrize("kind", ["bool", "float"])
def test_key_padding_mask_input_of_multihead_attention(kind: str, dynamic: bool, tmp_path: Path) -> None:
    def forward(lib: Any, F: Any, m: Any, x: Any, mask: Any) -> Any:
        return m.a(x, x, x, key_padding_mask=mask, need_weights=False)[0]

    def build(lib: Any) -> dict[str, Any]:
        return {"a": lib.nn.MultiheadAttention(8, 2, batch_first=True)}

    _check(forward, build, _tokens_and_mask(kind), tmp_path, dynamic_batch=dynamic)


def test_src_key_padding_mask_input_of_an_encoder_layer(tmp_path: Path) -> None:
    def forward(lib: Any, F: Any, m: Any, x: Any, mask: Any) -> Any:
        return m.enc(x, src_key_padding_mask=mask)

    def build(lib: Any) -> dict[str, Any]:
        return {"enc": lib.nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True)}

    dm, tm = _pair(forward, build)
    rng = np.random.default_rng(1)
    x, mask = _tokens_and_mask("bool")(rng, 2)
    path = tmp_path / "m.onnx"
    ds.onnx.export(dm, (ds.from_numpy(x), ds.from_numpy(mask)), path)
    for n in (3, 5):
        feeds = _tokens_and_mask("bool")(rng, n)
        # torch's fast path returns zeros at padded positions in eval: compare the positions that take part
        keep = ~feeds[1]
        np.testing.assert_allclose(_run(path, feeds)[0][keep], _torch_out(tm, feeds)[0][keep], rtol=1e-4, atol=1e-5)


def test_boolean_attn_mask_input_of_sdpa_with_a_dynamic_batch(tmp_path: Path) -> None:
    def forward(lib: Any, F: Any, m: Any, x: Any, mask: Any) -> Any:
        return F.scaled_dot_product_attention(x, x, x, attn_mask=mask)

    def inputs(rng: np.random.Generator, n: int) -> list[np.ndarray]:
        mask = rng.random((n, 1, 5, 5)) < 0.7
        mask[..., 0] = True  # every query sees a key
        return [rng.standard_normal((n, 1, 5, 8)).astype(np.float32), mask]

    _check(forward, lambda lib: {}, inputs, tmp_path)


# ---------------------------------------------------------------------- functional forms
FUNCTIONAL: dict[str, tuple[Forward, Callable[[Any], dict[str, Any]], tuple[int, ...]]] = {
    "F.max_pool2d": (lambda lib, F, m, x: F.max_pool2d(x, 2), lambda lib: {}, (3, 4, 4)),
    "F.max_pool2d_pad": (lambda lib, F, m, x: F.max_pool2d(x, 3, 2, 1), lambda lib: {}, (3, 5, 5)),
    "F.max_pool1d": (lambda lib, F, m, x: F.max_pool1d(x, 2), lambda lib: {}, (3, 8)),
    "F.avg_pool2d": (lambda lib, F, m, x: F.avg_pool2d(x, 2), lambda lib: {}, (3, 4, 4)),
    "F.avg_pool1d": (lambda lib, F, m, x: F.avg_pool1d(x, 3, 1, 1), lambda lib: {}, (3, 8)),
    "F.conv2d": (lambda lib, F, m, x: F.conv2d(x, m.c.weight, m.c.bias, padding=1),
                 lambda lib: {"c": lib.nn.Conv2d(3, 4, 3)}, (3, 5, 5)),
    "F.conv1d": (lambda lib, F, m, x: F.conv1d(x, m.c.weight, stride=2), lambda lib: {"c": lib.nn.Conv1d(3, 4, 3)},
                 (3, 9)),
    "F.layer_norm": (lambda lib, F, m, x: F.layer_norm(x, (4,), m.ln.weight, m.ln.bias),
                     lambda lib: {"ln": lib.nn.LayerNorm(4)}, (3, 4)),
    "F.layer_norm_plain": (lambda lib, F, m, x: F.layer_norm(x, (3, 4)), lambda lib: {}, (3, 4)),
    "F.silu": (lambda lib, F, m, x: F.silu(x), lambda lib: {}, (3, 4)),
    "F.pad": (lambda lib, F, m, x: F.pad(x, (1, 2), value=0.5), lambda lib: {}, (3, 4)),
    "F.pad_reflect": (lambda lib, F, m, x: F.pad(x, (2, 1), mode="reflect"), lambda lib: {}, (3, 4)),
    "F.pad_replicate": (lambda lib, F, m, x: F.pad(x, (1, 1, 2, 0), mode="replicate"), lambda lib: {}, (3, 4, 4)),
    "clamp": (lambda lib, F, m, x: x.clamp(-0.5, 0.5), lambda lib: {}, (3, 4)),
    "clamp_min": (lambda lib, F, m, x: lib.clamp(x, min=0.1), lambda lib: {}, (3, 4)),
    "F.normalize": (lambda lib, F, m, x: F.normalize(x, dim=1), lambda lib: {}, (3, 4)),
    "F.cosine_similarity": (lambda lib, F, m, x: F.cosine_similarity(m.fc(x), m.fc(x * 2 - 1), dim=1), _linear,
                            (4,)),
    "log1p": (lambda lib, F, m, x: (x * x).log1p(), lambda lib: {}, (3, 4)),
    "cumsum": (lambda lib, F, m, x: x.cumsum(2), lambda lib: {}, (3, 4)),
    "norm_dim": (lambda lib, F, m, x: x.norm(dim=1), lambda lib: {}, (3, 4)),
    "norm_p1_keepdim": (lambda lib, F, m, x: x.norm(p=1, dim=-1, keepdim=True), lambda lib: {}, (3, 4)),
    "norm_inf": (lambda lib, F, m, x: lib.linalg.vector_norm(x, float("inf"), dim=(1, 2)), lambda lib: {}, (3, 4)),
    "norm_p3": (lambda lib, F, m, x: x.norm(p=3, dim=2), lambda lib: {}, (3, 4)),
    "max_dim_values": (lambda lib, F, m, x: x.max(2)[0], lambda lib: {}, (3, 4)),
    "max_dim_both": (lambda lib, F, m, x: x.max(1, keepdim=True), lambda lib: {}, (3, 4)),
    "min_dim_indices": (lambda lib, F, m, x: x.min(2)[1], lambda lib: {}, (3, 4)),
    "amax": (lambda lib, F, m, x: x.amax(1), lambda lib: {}, (3, 4)),
    "amin_dims": (lambda lib, F, m, x: x.amin((1, 2)), lambda lib: {}, (3, 4)),
    "repeat": (lambda lib, F, m, x: x.repeat(1, 2, 3), lambda lib: {}, (3, 4)),
}  # fmt: skip


@pytest.mark.parametrize("name", list(FUNCTIONAL))
def test_functional_forms_export(name: str, tmp_path: Path) -> None:
    forward, build, shape = FUNCTIONAL[name]
    _check(forward, build, _floats(*shape), tmp_path)


@pytest.mark.parametrize(
    "make,shape",
    [(lambda lib: lib.nn.Upsample(scale_factor=2), (3, 4, 4)),
     (lambda lib: lib.nn.Upsample(scale_factor=2, mode="bilinear"), (3, 4, 5)),
     (lambda lib: lib.nn.Upsample(size=(7, 6), mode="bilinear", align_corners=True), (3, 4, 4)),
     (lambda lib: lib.nn.Upsample(size=7, mode="linear"), (3, 4)),
     (lambda lib: lib.nn.PixelShuffle(2), (8, 3, 3))],
)  # fmt: skip
def test_upsampling_layers_export(make: Callable[[Any], Any], shape: tuple[int, ...], tmp_path: Path) -> None:
    # traced through their forward (with or without the compiled resampling kernels)
    _check(lambda lib, F, m, x: m.up(x), lambda lib: {"up": make(lib)}, _floats(*shape), tmp_path)


def test_text_cnn_max_over_time(tmp_path: Path) -> None:
    # Kim's TextCNN: embedding, conv1d, relu, max over time (x.max(dim)[0]), as PyTorch tutorials write it
    def forward(lib: Any, F: Any, m: Any, ids: Any) -> Any:
        e = m.emb(ids).transpose(1, 2)
        pooled = [F.relu(c(e)).max(dim=2)[0] for c in (m.c3, m.c4)]
        return m.fc(lib.cat(pooled, 1))

    def build(lib: Any) -> dict[str, Any]:
        return {"emb": lib.nn.Embedding(20, 6), "c3": lib.nn.Conv1d(6, 4, 3), "c4": lib.nn.Conv1d(6, 4, 4),
                "fc": lib.nn.Linear(8, 2)}  # fmt: skip

    _check(forward, build, lambda rng, n: [rng.integers(0, 20, size=(n, 9)).astype(np.int64)], tmp_path)


def test_repeat_of_the_batch_dim_is_refused_with_a_dynamic_batch(tmp_path: Path) -> None:
    class Tiled(ds.nn.Module):
        def forward(self, x: ds.Tensor) -> ds.Tensor:
            return x.repeat(2, 1)

    with pytest.raises(ExportError, match=r"repeat\(2, 1\) repeats the batch dim 0"):
        ds.onnx.export(Tiled(), ds.randn(2, 3), tmp_path / "m.onnx")
    _check(lambda lib, F, m, x: x.repeat(2, 1), lambda lib: {}, _floats(3), tmp_path, dynamic_batch=False)


# ---------------------------------------------------------------------- torch.onnx's names and arguments
def test_export_writes_to_a_file_object() -> None:
    ds.manual_seed(0)
    model = ds.nn.Linear(3, 2)
    buffer = io.BytesIO()
    ds.onnx.export(model, (ds.randn(1, 3),), buffer)
    x = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
    np.testing.assert_allclose(_run(buffer.getvalue(), [x])[0], model(ds.from_numpy(x)).detach().numpy(), rtol=1e-5)


def test_torch_onnx_names() -> None:
    for enum in ("TrainingMode", "OperatorExportTypes"):
        ours, theirs = getattr(ds.onnx, enum), getattr(torch.onnx, enum)
        assert {n: int(v) for n, v in ours.__members__.items()} == {n: int(v) for n, v in theirs.__members__.items()}
    assert ds.onnx.is_in_onnx_export() is torch.onnx.is_in_onnx_export() is False


def test_export_takes_torch_keywords_and_kwargs(tmp_path: Path) -> None:
    seen: list[bool] = []

    class TwoInputs(ds.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = ds.nn.Linear(3, 2)

        def forward(self, x: ds.Tensor, scale: ds.Tensor | None = None) -> ds.Tensor:
            seen.append(ds.onnx.is_in_onnx_export())
            return self.fc(x) * scale

    ds.manual_seed(0)
    model = TwoInputs()
    path = tmp_path / "m.onnx"
    ds.onnx.export(model=model, args=(ds.randn(2, 3),), f=str(path), kwargs={"scale": ds.rand(2, 1)},
                   training=ds.onnx.TrainingMode.EVAL, operator_export_type=ds.onnx.OperatorExportTypes.ONNX)  # fmt: skip
    assert seen and all(seen) and not ds.onnx.is_in_onnx_export()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["input", "scale"]
    rng = np.random.default_rng(0)
    x, s = rng.standard_normal((5, 3)).astype(np.float32), rng.random((5, 1)).astype(np.float32)
    want = model(ds.from_numpy(x), scale=ds.from_numpy(s)).detach().numpy()
    np.testing.assert_allclose(session.run(None, {"input": x, "scale": s})[0], want, rtol=1e-5)
    with pytest.raises(ExportError, match="operator_export_type"):
        ds.onnx.export(model, ds.randn(2, 3), path, operator_export_type=ds.onnx.OperatorExportTypes.ONNX_ATEN)


def test_fewer_output_names_name_the_first_outputs(tmp_path: Path) -> None:
    # as torch.onnx.export: the names given are the first outputs'; the others keep default names
    model = ds.nn.LSTM(3, 4, batch_first=True)
    proto = ds.onnx.export(model, ds.randn(2, 5, 3), tmp_path / "m.onnx", output_names=["out"])
    names = [o.name for o in proto.graph.output]
    assert names[0] == "out" and len(names) == 3 and len(set(names)) == 3


# ---------------------------------------------------------------------- sequence-first models
def test_sequence_first_encoder_layer_with_its_batch_on_axis_1(tmp_path: Path) -> None:
    def forward(lib: Any, F: Any, m: Any, x: Any) -> Any:
        return m.enc(x)

    def build(lib: Any) -> dict[str, Any]:
        return {"enc": lib.nn.TransformerEncoderLayer(16, 2, 32, dropout=0.0)}

    def inputs(rng: np.random.Generator, n: int) -> list[np.ndarray]:
        return [rng.standard_normal((7, n, 16)).astype(np.float32)]  # (L, N, E)

    _check(forward, build, inputs, tmp_path, input_names=["x"], dynamic_axes={"x": {1: "batch"}})
    with pytest.raises(ExportError, match=r"sequence-first .* dynamic_axes=\{'<input name>': \{1: 'batch'\}\}"):
        ds.onnx.export(_pair(forward, build)[0], ds.randn(7, 2, 16), tmp_path / "m.onnx")


def test_time_major_lstm_names_its_free_axis_and_takes_the_batch_on_axis_1(tmp_path: Path) -> None:
    def forward(lib: Any, F: Any, m: Any, x: Any) -> Any:
        _, (h, _) = m.lstm(x)
        return m.fc(h[-1])

    def build(lib: Any) -> dict[str, Any]:
        return {"lstm": lib.nn.LSTM(5, 8), "fc": lib.nn.Linear(8, 3)}

    dm, _ = _pair(forward, build)
    proto = ds.onnx.export(dm, ds.randn(7, 2, 5), tmp_path / "m.onnx", input_names=["x"])
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value for d in dims] == ["sequence", 2, 5]  # axis 0 is the time here
    _check(forward, build, lambda rng, n: [rng.standard_normal((7, n, 5)).astype(np.float32)], tmp_path,
           input_names=["x"], dynamic_axes={"x": {1: "batch"}, "output": {0: "batch"}})  # fmt: skip
    proto = onnx.load(str(tmp_path / "m.onnx"))
    assert [d.dim_param or d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim] == [7, "batch", 5]
    assert proto.graph.output[0].type.tensor_type.shape.dim[0].dim_param == "batch"
