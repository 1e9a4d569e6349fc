"""Transformer layers (downslope.nn.transformer) against PyTorch: outputs and the gradients of the
inputs and of every parameter, weights copied from PyTorch by state_dict."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import downslope as ds
from downslope import nn
from downslope.devices import to_host
from downslope.errors import ArgumentError, ShapeError

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.filterwarnings("ignore:Support for mismatched", "ignore:enable_nested_tensor")

KINDS = ["encoder_layer", "decoder_layer", "encoder", "decoder", "transformer"]


def _load_from_torch(ours, theirs):
    sd = theirs.state_dict()
    assert list(ours.state_dict()) == list(sd), "state-dict keys/order differ from PyTorch"
    ours.load_state_dict({name: t.detach().numpy() for name, t in sd.items()})


def _case(seed):
    rng = np.random.default_rng(seed)
    nhead = int(rng.choice([1, 2, 4]))
    layer = dict(
        d_model=nhead * int(rng.integers(2, 5)),
        nhead=nhead,
        dim_feedforward=int(rng.integers(3, 12)),
        activation=str(rng.choice(["relu", "gelu"])),
        batch_first=bool(seed % 2),  # every combination of the two layouts and the two norm placements
        norm_first=bool(seed // 2 % 2),
        bias=bool(rng.random() > 0.2),
        layer_norm_eps=float(rng.choice([1e-5, 1e-3])),
    )
    masks = dict(
        src_mask=str(rng.choice(["none", "bool", "float", "causal"])),
        src_kpm=str(rng.choice(["none", "bool", "float"])),
        tgt_mask=str(rng.choice(["none", "bool", "causal"])),
        tgt_kpm=str(rng.choice(["none", "bool"])),
        memory_mask=str(rng.choice(["none", "bool", "float"])),
        memory_kpm=str(rng.choice(["none", "bool"])),
    )
    if seed == 3:  # causal masks without padding: the fused op applies the causal mask from the hint
        masks.update(src_mask="causal", src_kpm="none", tgt_mask="causal", tgt_kpm="none")
    n, S, T = int(rng.integers(1, 4)), int(rng.integers(1, 6)), int(rng.integers(1, 6))
    batched = rng.random() > 0.15
    return layer, masks, n, S, T, batched


def _mask(kind, rng, L, S, dtype):
    if kind == "none":
        return None
    if kind == "causal":
        return np.triu(np.full((L, S), -np.inf, dtype=dtype), k=1)
    m = rng.random((L, S)) > 0.6
    m[:, 0] = False  # every query keeps one key
    return m if kind == "bool" else np.where(m, -np.inf, rng.standard_normal((L, S))).astype(dtype)


def _kpm(kind, rng, n, S, batched, dtype):
    if kind == "none":
        return None
    m = rng.random((n, S)) > 0.6
    m[:, 0] = False
    if kind == "float":
        m = np.where(m, -np.inf, 0.0).astype(dtype)
    return m if batched else m[0]


def _build(kind, layer, lib, dropout):
    mod = lib.nn
    kw = dict(layer, dropout=dropout)
    if kind == "encoder_layer":
        return mod.TransformerEncoderLayer(**kw)
    if kind == "decoder_layer":
        return mod.TransformerDecoderLayer(**kw)
    if kind == "encoder":
        norm = mod.LayerNorm(layer["d_model"])
        return mod.TransformerEncoder(mod.TransformerEncoderLayer(**kw), num_layers=2, norm=norm)
    if kind == "decoder":
        return mod.TransformerDecoder(mod.TransformerDecoderLayer(**kw), num_layers=2)
    kw.pop("activation")
    return mod.Transformer(num_encoder_layers=2, num_decoder_layers=1, activation=layer["activation"], **kw)


def _inputs(kind, masks, rng, n, S, T, batched, layer, dtype):
    d = layer["d_model"]

    def seq(length):
        if not batched:
            return rng.standard_normal((length, d)).astype(dtype)
        shape = (n, length, d) if layer["batch_first"] else (length, n, d)
        return rng.standard_normal(shape).astype(dtype)

    src_mask = _mask(masks["src_mask"], rng, S, S, dtype)
    src_kpm = _kpm(masks["src_kpm"], rng, n, S, batched, dtype)
    tgt_mask = _mask(masks["tgt_mask"], rng, T, T, dtype)
    tgt_kpm = _kpm(masks["tgt_kpm"], rng, n, T, batched, dtype)
    mem_mask = _mask(masks["memory_mask"], rng, T, S, dtype)
    mem_kpm = _kpm(masks["memory_kpm"], rng, n, S, batched, dtype)
    if kind == "encoder_layer":
        return [seq(S)], dict(src_mask=src_mask, src_key_padding_mask=src_kpm)
    if kind == "encoder":
        return [seq(S)], dict(mask=src_mask, src_key_padding_mask=src_kpm)
    dec = dict(tgt_mask=tgt_mask, memory_mask=mem_mask, tgt_key_padding_mask=tgt_kpm, memory_key_padding_mask=mem_kpm)
    if kind in ("decoder_layer", "decoder"):
        if masks["tgt_mask"] == "causal":
            dec["tgt_is_causal"] = True
        return [seq(T), seq(S)], dec
    return [seq(S), seq(T)], dict(dec, src_mask=src_mask, src_key_padding_mask=src_kpm)


def _compare(kind, seed, dtype, training, assert_close):
    layer, masks, n, S, T, batched = _case(seed)
    if kind == "transformer" and not batched:
        batched = True  # torch's Transformer.forward reads the batch size from 3-D src only
    rng = np.random.default_rng(500 + seed)
    dropout = 0.0 if training else 0.2  # in eval mode dropout must do nothing
    torch.manual_seed(seed)
    theirs = _build(kind, layer, torch, dropout)
    ours = _build(kind, layer, ds, dropout)
    if dtype == np.float64:
        theirs.double()
        ours.double()
    _load_from_torch(ours, theirs)
    theirs.train(training)
    ours.train(training)
    arrays, mask_kw = _inputs(kind, masks, rng, n, S, T, batched, layer, dtype)
    ours_in = [ds.tensor(a, dtype=dtype, requires_grad=True) for a in arrays]
    theirs_in = [torch.tensor(a, requires_grad=True) for a in arrays]
    ours_kw = {k: (ds.tensor(v, dtype=v.dtype) if isinstance(v, np.ndarray) else v) for k, v in mask_kw.items()}
    theirs_kw = {k: (torch.tensor(v) if isinstance(v, np.ndarray) else v) for k, v in mask_kw.items()}
    out = ours(*ours_in, **ours_kw)
    ref = theirs(*theirs_in, **theirs_kw)
    what = f"{kind} case {seed}: {layer} {masks} n={n} S={S} T={T} batched={batched}"
    assert out.shape == tuple(ref.shape), what
    assert out.dtype == dtype
    assert_close(out.detach().numpy(), ref.detach().numpy(), dtype, "output " + what)
    proj = rng.standard_normal(out.shape).astype(dtype)
    (out * ds.tensor(proj, dtype=dtype)).sum().backward()
    (ref * torch.tensor(proj)).sum().backward()
    for i, (a, b) in enumerate(zip(ours_in, theirs_in)):
        assert_close(a.grad.detach().numpy(), b.grad.detach().numpy(), dtype, f"gradient of input {i} " + what)
    mine = dict(ours.named_parameters())
    assert list(mine) == [name for name, _ in theirs.named_parameters()]
    for name, p in theirs.named_parameters():
        assert_close(mine[name].grad.detach().numpy(), p.grad.detach().numpy(), dtype, f"gradient of {name} " + what)


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("kind", KINDS)
def test_matches_torch(kind, seed, dtype, training, assert_close):
    _compare(kind, seed, dtype, training, assert_close)


def test_generate_square_subsequent_mask_is_torchs():
    for sz in (0, 1, 5):
        ours = nn.Transformer.generate_square_subsequent_mask(sz).detach().numpy()
        np.testing.assert_array_equal(ours, torch.nn.Transformer.generate_square_subsequent_mask(sz).detach().numpy())
        assert ours.dtype == np.float32
    assert nn.Transformer.generate_square_subsequent_mask(2, dtype="float64").dtype == np.float64


def test_causal_hint_gives_the_masked_result():
    """is_causal=True lets the fused op apply the mask itself; the numbers are those of the mask."""
    ds.manual_seed(0)
    enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True), 2)
    x = ds.randn(3, 6, 8)
    mask = nn.Transformer.generate_square_subsequent_mask(6, device=x.device)  # beside the data, as in torch
    a = enc(x, mask=mask).detach().numpy()  # detected as causal
    b = enc(x, mask=mask, is_causal=False).detach().numpy()  # the mask itself
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    # position 0 depends on itself only
    x2 = x.detach().numpy().copy()
    x2[:, 1:] += 1.0
    np.testing.assert_allclose(enc(ds.tensor(x2), mask=mask).detach().numpy()[:, 0], a[:, 0], rtol=1e-5, atol=1e-6)


def test_custom_activation_and_custom_encoder():
    layer = nn.TransformerEncoderLayer(8, 2, 16, activation=lambda t: t * 0.5, dropout=0.0)
    t_layer = torch.nn.TransformerEncoderLayer(8, 2, 16, activation=lambda t: t * 0.5, dropout=0.0)
    _load_from_torch(layer, t_layer)
    x = np.random.default_rng(0).standard_normal((4, 2, 8)).astype(np.float32)
    np.testing.assert_allclose(
        layer(ds.tensor(x)).detach().numpy(), t_layer(torch.tensor(x)).detach().numpy(), atol=1e-5
    )
    enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16), 1)
    model = nn.Transformer(8, 2, custom_encoder=enc, num_decoder_layers=1, dim_feedforward=16)
    assert model.encoder is enc
    assert model(ds.randn(5, 2, 8), ds.randn(3, 2, 8)).shape == (3, 2, 8)


def test_transformer_init_is_xavier_and_layers_are_independent_copies():
    ds.manual_seed(0)
    model = nn.Transformer(d_model=32, nhead=4, num_encoder_layers=2, num_decoder_layers=1, dim_feedforward=64)
    w = model.encoder.layers[0].linear1.weight.detach().numpy()
    assert np.abs(w).max() <= (6 / (32 + 64)) ** 0.5
    a, b = model.encoder.layers[0], model.encoder.layers[1]
    assert a.linear1.weight is not b.linear1.weight
    assert model.state_dict().keys() == torch.nn.Transformer(32, 4, 2, 1, 64).state_dict().keys()


def test_errors_name_the_problem():
    with pytest.raises(ArgumentError, match="activation"):
        nn.TransformerEncoderLayer(8, 2, activation="tanh")
    with pytest.raises(ArgumentError, match="divisible"):
        nn.TransformerEncoderLayer(10, 3)
    model = nn.Transformer(8, 2, 1, 1, 16)
    with pytest.raises(ShapeError, match="batch size"):
        model(ds.randn(4, 2, 8), ds.randn(3, 5, 8))
    with pytest.raises(ShapeError, match="d_model"):
        model(ds.randn(4, 2, 6), ds.randn(3, 2, 6))
    with pytest.raises(ArgumentError, match="num_layers"):
        nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2), 0)


# ---------------------------------------------------------------------- docs, fit, checkpoints, learning
DOC = Path(__file__).resolve().parents[2] / "docs" / "transformer.md"


def test_docs_example_runs(tmp_path, monkeypatch):
    """Every code block of docs/transformer.md runs, in order, in one namespace (a character-level
    language model trained with ds.fit, generation, and a checkpoint round trip)."""
    monkeypatch.chdir(tmp_path)
    text = DOC.read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert len(blocks) >= 3
    namespace: dict = {"__name__": "transformer_doc"}
    for i, block in enumerate(blocks):
        try:
            exec(compile(block, f"{DOC.name} block {i + 1}", "exec"), namespace)
        except Exception as exc:  # pragma: no cover - the message is the point
            raise AssertionError(f"docs/transformer.md block {i + 1} failed: {exc!r}\n{block}") from exc


def test_fit_checkpoint_resumes_a_transformer_exactly(tmp_path):
    """The fit loop's checkpoint (model, Adam state, RNG) holds a Transformer like any other model:
    two epochs in one go equal one epoch, a resume from its checkpoint, and one more epoch."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 5, 8)).astype(np.float32)
    y = x[:, ::-1].copy()

    def run(epochs, **kw):
        ds.manual_seed(1)
        model = nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16, dropout=0.1, batch_first=True), 2)
        opt = ds.optim.Adam(model.parameters(), lr=1e-2)
        history = ds.fit(model, nn.MSELoss(), opt, (x, y), epochs=epochs, batch_size=16, verbose=0, seed=3, **kw)
        return model, history

    straight, h1 = run(2)
    run(1, checkpoint_dir=tmp_path)
    resumed, h2 = run(2, resume_from=tmp_path)
    assert h2["loss"] == pytest.approx(h1["loss"], rel=1e-6)
    for key, value in straight.state_dict().items():
        np.testing.assert_allclose(
            to_host(resumed.state_dict()[key]), to_host(value), rtol=1e-6, atol=1e-7, err_msg=key
        )
    saved = ds.load(tmp_path / "last.ckpt")["model"]
    assert "layers.1.self_attn.in_proj_weight" in saved


class _Reverser(nn.Module):
    def __init__(self, vocab: int, length: int, d_model: int = 32) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, d_model)
        self.position = nn.Embedding(length, d_model)
        layer = nn.TransformerEncoderLayer(d_model, 4, 64, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 2)
        self.head = nn.Linear(d_model, vocab)

    def forward(self, tokens):
        return self.head(self.encoder(self.embed(tokens) + self.position(ds.arange(tokens.shape[1]))))


@pytest.mark.slow
def test_two_layer_encoder_learns_to_reverse_sequences():
    vocab, length = 8, 10
    rng = np.random.default_rng(0)
    x = rng.integers(0, vocab, (4096, length))
    ds.manual_seed(0)
    model = _Reverser(vocab, length)

    def loss_fn(logits, target):
        return ds.nn.functional.cross_entropy(logits.reshape(-1, vocab), target.reshape(-1))

    ds.fit(model, loss_fn, ds.optim.Adam(model.parameters(), lr=3e-3), (x, x[:, ::-1].copy()), epochs=3,
           batch_size=64, verbose=0)  # fmt: skip
    test = rng.integers(0, vocab, (2000, length))
    with ds.no_grad():
        accuracy = (model.eval()(ds.tensor(test)).detach().numpy().argmax(-1) == test[:, ::-1]).mean()
    assert accuracy >= 0.99, f"token accuracy {accuracy:.4f}"


def _markov_text(rng, vocab, n):
    """Tokens from a random second-order Markov chain: predictable in part, so the loss has a floor."""
    table = rng.dirichlet(np.full(vocab, 0.1), size=(vocab, vocab))
    out = [0, 1]
    for _ in range(n - 2):
        out.append(int(rng.choice(vocab, p=table[out[-2], out[-1]])))
    return np.array(out, dtype=np.int64)


@pytest.mark.slow
def test_tiny_causal_language_model_reaches_torchs_validation_loss():
    """The same causal LM in both libraries (weights copied by state_dict, the same batches, Adam):
    the validation losses after training agree within 2%."""
    vocab, window, d_model = 12, 16, 32
    rng = np.random.default_rng(0)
    ids = _markov_text(rng, vocab, 6000)
    starts = np.arange(len(ids) - window - 1)
    x = np.stack([ids[s : s + window] for s in starts])
    y = np.stack([ids[s + 1 : s + window + 1] for s in starts])
    split = int(0.85 * len(x))
    batches = [rng.choice(split, 32, replace=False) for _ in range(300)]

    def build(lib):
        m = lib.nn.Module()
        m.embed = lib.nn.Embedding(vocab, d_model)
        m.position = lib.nn.Embedding(window, d_model)
        layer = lib.nn.TransformerEncoderLayer(d_model, 4, 64, dropout=0.0, batch_first=True, norm_first=True)
        m.encoder = lib.nn.TransformerEncoder(layer, 2)
        m.head = lib.nn.Linear(d_model, vocab)
        return m

    def logits(lib, m, tokens):
        mask = lib.nn.Transformer.generate_square_subsequent_mask(window)
        h = m.embed(tokens) + m.position(lib.arange(window))
        return m.head(m.encoder(h, mask=mask, is_causal=True)).reshape(-1, vocab)

    torch.manual_seed(0)
    theirs = build(torch)
    ours = build(ds)
    _load_from_torch(ours, theirs)
    opt_t = torch.optim.Adam(theirs.parameters(), lr=3e-3)
    opt_d = ds.optim.Adam(ours.parameters(), lr=3e-3)
    for idx in batches:
        loss_t = torch.nn.functional.cross_entropy(
            logits(torch, theirs, torch.tensor(x[idx])), torch.tensor(y[idx]).reshape(-1)
        )
        opt_t.zero_grad()
        loss_t.backward()
        opt_t.step()
        loss_d = ds.nn.functional.cross_entropy(logits(ds, ours, ds.tensor(x[idx])), ds.tensor(y[idx]).reshape(-1))
        opt_d.zero_grad()
        loss_d.backward()
        opt_d.step()
    with torch.no_grad():
        val_t = torch.nn.functional.cross_entropy(
            logits(torch, theirs, torch.tensor(x[split:])), torch.tensor(y[split:]).reshape(-1)
        ).item()
    with ds.no_grad():
        val_d = ds.nn.functional.cross_entropy(
            logits(ds, ours, ds.tensor(x[split:])), ds.tensor(y[split:]).reshape(-1)
        ).item()
    first = np.log(vocab)
    assert val_t < 0.7 * first, f"the reference did not learn: {val_t:.4f}"
    print(f"validation loss: downslope {val_d:.4f}, torch {val_t:.4f}")
    assert abs(val_d - val_t) <= 0.02 * val_t, f"validation loss {val_d:.4f} vs torch {val_t:.4f}"


def test_subclassing_transformer_as_pytorch_examples_do():
    """pytorch/examples' word_language_model subclasses nn.Transformer, replaces its decoder by a
    Linear read-out and runs the encoder alone with a log(tril(ones)) mask."""

    class TransformerModel(nn.Transformer):
        def __init__(self, ntoken, ninp, nhead, nhid, nlayers):
            super().__init__(d_model=ninp, nhead=nhead, dim_feedforward=nhid, num_encoder_layers=nlayers)
            self.input_emb = nn.Embedding(ntoken, ninp)
            self.decoder = nn.Linear(ninp, ntoken)

        def forward(self, src):
            mask = ds.tensor(np.log(np.tril(np.ones((src.shape[0], src.shape[0]), dtype=np.float32))))
            return self.decoder(self.encoder(self.input_emb(src), mask=mask))

    with np.errstate(divide="ignore"):
        model = TransformerModel(ntoken=11, ninp=8, nhead=2, nhid=16, nlayers=2)
        out = model(ds.tensor(np.random.default_rng(0).integers(0, 11, (5, 3))))
    assert out.shape == (5, 3, 11)
    assert not any(k.startswith("decoder.layers") for k in model.state_dict())


def test_arrays_instead_of_tensors_are_refused_with_a_message():
    from downslope.errors import ArgumentTypeError

    x = np.zeros((3, 2, 8), dtype=np.float32)
    for module, args in (
        (nn.TransformerEncoderLayer(8, 2, 16), (x,)),
        (nn.TransformerDecoderLayer(8, 2, 16), (ds.tensor(x), x)),
        (nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16), 1), (x,)),
        (nn.Transformer(8, 2, 1, 1, 16), (x, ds.tensor(x))),
    ):
        with pytest.raises(ArgumentTypeError, match="must be a Tensor"):
            module(*args)


def test_square_subsequent_mask_takes_a_device():
    mask = nn.Transformer.generate_square_subsequent_mask(3, device="strict", dtype=ds.float64)
    assert str(mask.device) == "strict" and mask.dtype == np.float64
    np.testing.assert_array_equal(
        mask.cpu().detach().numpy(), nn.Transformer.generate_square_subsequent_mask(3).detach().numpy()
    )
