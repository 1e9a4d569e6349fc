"""ONNX export of Hugging Face style transformers (GPT-2, LLaMA, ViT, BERT blocks): clone/contiguous,
rsqrt, expand, where, functional linear/gelu, scaled_dot_product_attention, MultiheadAttention,
TransformerEncoderLayer, reshapes that fold the batch into rows, and ``dynamic_axes``. Each graph
runs in ONNX Runtime on a batch size not seen at export and must match downslope's outputs."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

import downslope as ds  # noqa: E402
import downslope.nn.functional as F  # noqa: E402
from downslope import nn  # noqa: E402
from downslope.errors import ExportError  # noqa: E402


class Conv1D(nn.Module):  # GPT-2's projection: weight (in, out), rows folded as (B*L, in)
    def __init__(self, nx: int, nf: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(ds.randn(nx, nf) * 0.2)
        self.bias = nn.Parameter(ds.randn(nf) * 0.1)

    def forward(self, x: ds.Tensor) -> ds.Tensor:
        size = x.shape[:-1] + (self.weight.shape[1],)
        return ds.addmm(self.bias, x.view(-1, x.shape[-1]), self.weight).view(size)


class GPT2Block(nn.Module):
    def __init__(self, d: int = 16, h: int = 4, p: int = 12, vocab: int = 30) -> None:
        super().__init__()
        self.h = h
        self.wte, self.wpe = nn.Embedding(vocab, d), nn.Embedding(p, d)
        self.ln = nn.LayerNorm(d)
        self.c_attn, self.c_proj = Conv1D(d, 3 * d), Conv1D(d, d)
        self.register_buffer("bias", ds.tril(ds.ones(p, p, dtype=ds.bool)).view(1, 1, p, p), persistent=False)
        self.head = nn.Linear(d, vocab, bias=False)

    def forward(self, ids: ds.Tensor) -> ds.Tensor:
        b, n = ids.shape
        x = self.wte(ids) + self.wpe(ds.arange(n).unsqueeze(0))
        d = x.shape[-1]
        q, k, v = self.c_attn(self.ln(x)).split(d, dim=2)
        q, k, v = (t.view(b, n, self.h, d // self.h).permute(0, 2, 1, 3) for t in (q, k, v))
        w = ds.matmul(q, k.transpose(-1, -2)) / math.sqrt(d // self.h)
        w = ds.where(self.bias[:, :, :n, :n], w, ds.tensor(ds.finfo(w.dtype).min, dtype=w.dtype))
        o = ds.matmul(ds.softmax(w, dim=-1), v).permute(0, 2, 1, 3).contiguous().view(b, n, d)
        return self.head(x + F.gelu(self.c_proj(o), approximate="tanh"))


class LlamaBlock(nn.Module):
    def __init__(self, d: int = 16, h: int = 4, kv: int = 2, vocab: int = 30, gqa: bool = False) -> None:
        super().__init__()
        self.h, self.kv, self.hd, self.gqa = h, kv, d // h, gqa
        self.emb = nn.Embedding(vocab, d)
        self.norm_w = nn.Parameter(ds.ones(d) + 0.1 * ds.randn(d))
        self.q, self.k = nn.Linear(d, d, bias=False), nn.Linear(d, kv * self.hd, bias=False)
        self.v, self.o = nn.Linear(d, kv * self.hd, bias=False), nn.Linear(d, vocab, bias=False)

    def forward(self, ids: ds.Tensor) -> ds.Tensor:
        x = self.emb(ids)
        b, n, _ = x.shape
        x = self.norm_w * (x * ds.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6))  # RMSNorm
        q = self.q(x).view(b, n, self.h, self.hd).transpose(1, 2)
        k = self.k(x).view(b, n, self.kv, self.hd).transpose(1, 2)
        v = self.v(x).view(b, n, self.kv, self.hd).transpose(1, 2)
        if self.gqa:
            o = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
        else:
            rep = self.h // self.kv
            k = k[:, :, None].expand(b, self.kv, rep, n, self.hd).reshape(b, self.h, n, self.hd)
            v = ds.repeat_interleave(v, rep, dim=1)
            o = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.o(o.transpose(1, 2).reshape(b, n, -1))


class ViTBlock(nn.Module):
    def __init__(self, d: int = 16) -> None:
        super().__init__()
        self.patch = nn.Conv2d(3, d, 4, stride=4)
        self.cls_token = nn.Parameter(ds.randn(1, 1, d))
        self.block = nn.TransformerEncoderLayer(d, 4, 2 * d, dropout=0.0, activation="gelu", batch_first=True,
                                                norm_first=True)  # fmt: skip
        self.head = nn.Linear(d, 3)

    def forward(self, x: ds.Tensor) -> ds.Tensor:
        x = self.patch(x).flatten(2).transpose(1, 2)
        x = ds.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        return self.head(self.block(x)[:, 0])


class BertBlock(nn.Module):
    def __init__(self, d: int = 16, vocab: int = 30) -> None:
        super().__init__()
        self.emb = nn.Embedding(vocab, d, padding_idx=0)
        self.attn = nn.MultiheadAttention(d, 4, batch_first=True)
        self.fc = nn.Linear(d, d)

    def forward(self, ids: ds.Tensor, am: ds.Tensor) -> ds.Tensor:
        x = self.emb(ids)
        # HF's additive mask, from a float input (an int64 one is not traced: ops on it record nothing)
        ext = (1.0 - am[:, None, None, :]) * -10000.0
        a = self.attn(x, x, x, need_weights=False)[0]
        w = ds.softmax(x @ x.transpose(-1, -2) / 4.0 + ext[:, 0], dim=-1)
        return F.gelu(self.fc(a + w @ x))


def _ids(batch: int, n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(1, 30, (batch, n)).astype(np.int64)


def _as_tensor(a: np.ndarray) -> ds.Tensor:
    return ds.tensor(a, dtype=a.dtype) if a.dtype == np.int64 else ds.tensor(a)


def _check(model: nn.Module, example: tuple[np.ndarray, ...], other: tuple[np.ndarray, ...], tmp_path: Path,
           **kwargs: Any) -> Any:  # fmt: skip
    path = tmp_path / "model.onnx"
    model.eval()
    ex = tuple(_as_tensor(a) for a in example)
    proto = ds.onnx.export(model, ex if len(ex) > 1 else ex[0], path, **kwargs)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    with ds.no_grad():
        expected = model(*(_as_tensor(a) for a in other)).numpy()
    got = session.run(None, {i.name: a for i, a in zip(session.get_inputs(), other)})[0]
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    return proto


def test_gpt2_style_block(tmp_path: Path) -> None:
    ds.manual_seed(0)
    _check(GPT2Block(), (_ids(2, 7, 0),), (_ids(5, 7, 1),), tmp_path)


@pytest.mark.parametrize("gqa", [False, True])
def test_llama_style_block(gqa: bool, tmp_path: Path) -> None:
    ds.manual_seed(1)
    _check(LlamaBlock(gqa=gqa), (_ids(2, 6, 0),), (_ids(3, 6, 1),), tmp_path)


def test_vit_style_block_with_transformer_encoder_layer(tmp_path: Path) -> None:
    ds.manual_seed(2)
    rng = np.random.default_rng(0)
    x, y = (rng.standard_normal((b, 3, 8, 8)).astype(np.float32) for b in (2, 4))
    _check(ViTBlock(), (x,), (y,), tmp_path)


def test_bert_style_block_with_multihead_attention_and_an_input_mask(tmp_path: Path) -> None:
    ds.manual_seed(3)
    am1, am2 = np.ones((2, 6), np.float32), np.ones((3, 6), np.float32)
    am1[1, 4:] = 0
    am2[0, 3:] = 0
    _check(BertBlock(), (_ids(2, 6, 0), am1), (_ids(3, 6, 1), am2), tmp_path)


@pytest.mark.parametrize("need_weights", [False, True])
def test_multihead_attention_alone(need_weights: bool, tmp_path: Path) -> None:
    class Self(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = nn.MultiheadAttention(16, 4, batch_first=True)

        def forward(self, x: ds.Tensor) -> ds.Tensor:
            return self.a(x, x, x, need_weights=need_weights)[0]

    ds.manual_seed(4)
    rng = np.random.default_rng(1)
    _check(Self(), (rng.standard_normal((2, 5, 16)).astype(np.float32),),
           (rng.standard_normal((4, 5, 16)).astype(np.float32),), tmp_path)  # fmt: skip


def test_sdpa_with_a_boolean_mask_and_fully_masked_rows(tmp_path: Path) -> None:
    mask = np.ones((5, 5), bool)
    mask[2] = False  # a query that may attend to nothing: zeros, as downslope's op gives

    class Attend(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.proj = nn.Linear(8, 24)

        def forward(self, x: ds.Tensor) -> ds.Tensor:
            q, k, v = self.proj(x).view(x.shape[0], 5, 3, 8).permute(2, 0, 1, 3).unbind(0)
            return F.scaled_dot_product_attention(q, k, v, attn_mask=ds.tensor(mask), is_causal=True)

    ds.manual_seed(5)
    rng = np.random.default_rng(2)
    _check(Attend(), (rng.standard_normal((2, 5, 8)).astype(np.float32),),
           (rng.standard_normal((3, 5, 8)).astype(np.float32),), tmp_path)  # fmt: skip


def test_dynamic_axes_as_torch_onnx_export_takes_it(tmp_path: Path) -> None:
    ds.manual_seed(0)
    model = GPT2Block()
    proto = _check(model, (_ids(2, 7, 0),), (_ids(4, 7, 1),), tmp_path, input_names=["input_ids"],
                   output_names=["logits"], dynamic_axes={"input_ids": {0: "batch_size"}, "logits": [0]})  # fmt: skip
    assert [d.dim_param or d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim] == ["batch_size", 7]
    assert proto.graph.output[0].type.tensor_type.shape.dim[0].dim_param == "logits_dynamic_axes_1"
    static = ds.onnx.to_model(model, _as_tensor(_ids(2, 7, 0)), dynamic_axes={})
    assert [d.dim_value for d in static.graph.input[0].type.tensor_type.shape.dim] == [2, 7]
    path = tmp_path / "m.onnx"
    # a free sequence axis too: the graph runs at other lengths
    for other in (_ids(3, 4, 1), _ids(2, 12, 2)):
        _check(model, (_ids(2, 7, 0),), (other,), tmp_path, dynamic_axes={"input": {0: "b", 1: "seq"}})
    with pytest.raises(ds.errors.ArgumentError, match=r"dynamic_axes names \['nope'\]"):
        ds.onnx.export(model, _as_tensor(_ids(2, 7, 0)), path, dynamic_axes={"nope": [0]})


def test_refusal_names_the_op_not_the_out_wrapper(tmp_path: Path) -> None:
    class Cum(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(4, 4)

        def forward(self, x: ds.Tensor) -> ds.Tensor:
            return ds.cumprod(self.fc(x), dim=1)

    with pytest.raises(ExportError, match=r"Cum\.forward uses the tensor operation 'cumprod' \(cumprod\(\) at "):
        ds.onnx.export(Cum(), ds.randn(2, 4), tmp_path / "m.onnx")
