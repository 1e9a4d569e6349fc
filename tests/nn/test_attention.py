"""scaled_dot_product_attention and MultiheadAttention (downslope.nn.attention) against PyTorch,
finite differences and double backward."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds
import downslope.nn.functional as F
from downslope import nn
from downslope.devices import is_array, to_host
from downslope.errors import ArgumentError, ShapeError

torch = pytest.importorskip("torch")
# PyTorch warns when a boolean key_padding_mask meets a float attn_mask (both are still supported).
pytestmark = pytest.mark.filterwarnings("ignore:Support for mismatched")


# ---------------------------------------------------------------------- the fused op
def _sdpa_case(rng, dtype, q_shape, k_shape, v_shape, mask=None, assert_close=None, **kwargs):
    arrays = [rng.standard_normal(s).astype(dtype) for s in (q_shape, k_shape, v_shape)]
    ours = [ds.tensor(a, dtype=dtype, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    m_ours = m_theirs = None
    if mask is not None:
        is_float = mask.dtype.kind == "f"
        m_ours = ds.tensor(mask, dtype=mask.dtype, requires_grad=is_float)
        m_theirs = torch.tensor(mask, requires_grad=is_float)
    out = F.scaled_dot_product_attention(*ours, attn_mask=m_ours, **kwargs)
    ref = torch.nn.functional.scaled_dot_product_attention(*theirs, attn_mask=m_theirs, **kwargs)
    assert out.shape == tuple(ref.shape) and out.dtype == dtype
    if not kwargs.get("enable_gqa"):  # grouped heads add a reshape on each side
        assert out.grad_fn.name() == "SdpaBackward0", "attention must be one node"
    assert_close(out.detach().numpy(), ref.detach().numpy(), dtype, "output")
    proj = rng.standard_normal(out.shape).astype(dtype)
    (out * ds.tensor(proj, dtype=dtype)).sum().backward()
    (ref * torch.tensor(proj)).sum().backward()
    for name, a, b in zip("qkv", ours, theirs):
        assert_close(a.grad.detach().numpy(), b.grad.detach().numpy(), dtype, f"gradient of {name}")
    if mask is not None and mask.dtype.kind == "f":
        assert_close(m_ours.grad.detach().numpy(), m_theirs.grad.detach().numpy(), dtype, "gradient of the float mask")


SDPA_CASES = [
    dict(q_shape=(2, 3, 5, 4), k_shape=(2, 3, 6, 4), v_shape=(2, 3, 6, 7)),
    dict(q_shape=(2, 3, 5, 4), k_shape=(2, 3, 5, 4), v_shape=(2, 3, 5, 4), is_causal=True),
    dict(q_shape=(2, 3, 4, 4), k_shape=(2, 3, 7, 4), v_shape=(2, 3, 7, 2), is_causal=True),  # L != S
    dict(q_shape=(2, 3, 5, 4), k_shape=(2, 3, 6, 4), v_shape=(2, 3, 6, 7), mask="bool2d"),
    dict(q_shape=(2, 3, 5, 4), k_shape=(2, 3, 6, 4), v_shape=(2, 3, 6, 7), mask="float3d"),
    dict(q_shape=(3, 5, 4), k_shape=(3, 6, 4), v_shape=(3, 6, 7), mask="float_full", scale=0.3),
    dict(q_shape=(5, 4), k_shape=(6, 4), v_shape=(6, 3)),
    dict(q_shape=(2, 1, 5, 4), k_shape=(1, 3, 6, 4), v_shape=(2, 3, 6, 4)),  # batch dims broadcast
    dict(q_shape=(2, 4, 5, 4), k_shape=(2, 2, 6, 4), v_shape=(2, 2, 6, 3), enable_gqa=True, mask="bool_heads"),
    # attn_mask and is_causal together: PyTorch's CPU op applies both (mask AND causal)
    dict(q_shape=(2, 3, 5, 4), k_shape=(2, 3, 5, 4), v_shape=(2, 3, 5, 4), mask="bool2d", is_causal=True),
]


def _make_mask(kind, rng, q_shape, k_shape, dtype):
    L, S = q_shape[-2], k_shape[-2]
    if kind is None:
        return None
    if kind == "bool2d":
        return rng.random((L, S)) > 0.4
    if kind == "bool_heads":
        return rng.random((q_shape[-3], L, S)) > 0.4
    if kind == "float3d":
        return rng.standard_normal((q_shape[-3], 1, S)).astype(dtype)
    return rng.standard_normal(q_shape[:-1] + (S,)).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", range(len(SDPA_CASES)))
def test_sdpa_matches_torch(case, dtype, assert_close, gemm_path):
    rng = np.random.default_rng(case)
    kwargs = dict(SDPA_CASES[case])
    mask = _make_mask(kwargs.pop("mask", None), rng, kwargs["q_shape"], kwargs["k_shape"], dtype)
    _sdpa_case(rng, dtype, mask=mask, assert_close=assert_close, **kwargs)


def test_sdpa_fully_masked_rows_give_zeros_as_torch(assert_close, gemm_path):
    rng = np.random.default_rng(1)
    mask = rng.random((5, 6)) > 0.3
    mask[1] = False  # query 1 may attend to nothing
    _sdpa_case(rng, np.float64, (2, 3, 5, 4), (2, 3, 6, 4), (2, 3, 6, 7), mask=mask, assert_close=assert_close)
    fmask = np.zeros((5, 6))
    fmask[2] = -np.inf
    _sdpa_case(rng, np.float64, (2, 3, 5, 4), (2, 3, 6, 4), (2, 3, 6, 7), mask=fmask, assert_close=assert_close)


def test_sdpa_mask_and_is_causal_is_mask_and_tril():
    rng = np.random.default_rng(4)
    q, k, v = (ds.tensor(rng.standard_normal((2, 3, 5, 4))) for _ in range(3))
    mask = rng.random((5, 5)) > 0.3
    both = F.scaled_dot_product_attention(q, k, v, attn_mask=ds.tensor(mask), is_causal=True)
    folded = F.scaled_dot_product_attention(q, k, v, attn_mask=ds.tensor(mask & np.tril(np.ones((5, 5), bool))))
    np.testing.assert_array_equal(both.detach().numpy(), folded.detach().numpy())


def test_sdpa_float_mask_and_is_causal_match_torch(assert_close):
    """A float mask (L != S) with is_causal: the output as PyTorch's fused CPU op gives it; the mask's
    gradient as PyTorch's for the mask with the future folded in as -inf (PyTorch's other paths,
    taken for a mask that requires grad, dropout, 3-D inputs or a value width unlike the query's,
    refuse the combination; downslope computes the same thing on every path)."""
    rng = np.random.default_rng(6)
    arrays = [rng.standard_normal(s) for s in ((2, 3, 4, 4), (2, 3, 7, 4), (2, 3, 7, 4))]
    mask = rng.standard_normal((4, 7))
    ours = [ds.tensor(a, dtype="float64", requires_grad=True) for a in arrays + [mask]]
    out = F.scaled_dot_product_attention(*ours[:3], attn_mask=ours[3], is_causal=True)
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    ref = torch.nn.functional.scaled_dot_product_attention(*theirs, attn_mask=torch.tensor(mask), is_causal=True)
    assert_close(out.detach().numpy(), ref.detach().numpy(), np.float64, "output")
    m_t = torch.tensor(mask, requires_grad=True)
    future = torch.ones(4, 7, dtype=torch.bool).triu(1)
    ref2 = torch.nn.functional.scaled_dot_product_attention(
        *[torch.tensor(a) for a in arrays], attn_mask=m_t.masked_fill(future, float("-inf"))
    )
    proj = rng.standard_normal(out.shape)
    (out * ds.tensor(proj, dtype="float64")).sum().backward()
    (ref * torch.tensor(proj)).sum().backward()
    (ref2 * torch.tensor(proj)).sum().backward()
    for a, b in zip(ours[:3], theirs):
        assert_close(a.grad.detach().numpy(), b.grad.detach().numpy(), np.float64, "input gradient")
    assert_close(ours[3].grad.detach().numpy(), m_t.grad.detach().numpy(), np.float64, "mask gradient")


def _three(shape, seed=0):
    rng = np.random.default_rng(seed)
    return [ds.tensor(rng.standard_normal(shape), dtype="float64", requires_grad=True) for _ in range(3)]


@pytest.mark.parametrize(
    "kwargs",
    [dict(), dict(is_causal=True), dict(attn_mask=np.array([[True, False, True], [True, True, False]]), scale=0.7)],
)
def test_sdpa_gradcheck(kwargs):
    q = ds.tensor(np.random.default_rng(0).standard_normal((2, 2, 4)), requires_grad=True, dtype="float64")
    k, v = _three((2, 3, 4), seed=1)[:2]
    mask = kwargs.pop("attn_mask", None)
    m = None if mask is None else ds.tensor(mask)
    ds.gradcheck(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, attn_mask=m, **kwargs), [q, k, v])


def test_sdpa_gradcheck_with_dropout_and_float_mask():
    q, k, v = _three((2, 3, 4))
    mask = ds.tensor(np.random.default_rng(2).standard_normal((3, 3)), dtype="float64", requires_grad=True)

    def f(q, k, v, mask):
        ds.manual_seed(3)  # the same dropout mask at every evaluation
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=0.3)

    ds.gradcheck(f, [q, k, v, mask])


def test_sdpa_double_backward_matches_finite_differences():
    q, k, v = _three((2, 3, 4))

    def grad_norm(q, k, v):
        out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        gq, gk, gv = ds.autograd.grad((out * out).sum(), [q, k, v], create_graph=True)
        return (gq * gq).sum() + (gk * gk).sum() + (gv * gv).sum()

    ds.gradcheck(grad_norm, [q, k, v])


def test_sdpa_dropout_uses_the_seeded_generator_and_keeps_expectation():
    q, k, v = (ds.randn(4, 8, 16) for _ in range(3))
    ds.manual_seed(5)
    a = F.scaled_dot_product_attention(q, k, v, dropout_p=0.5).detach().numpy()
    ds.manual_seed(5)
    b = F.scaled_dot_product_attention(q, k, v, dropout_p=0.5).detach().numpy()
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, F.scaled_dot_product_attention(q, k, v).detach().numpy())
    # Inverted dropout: averaging many draws approaches the undropped output.
    mean = np.mean(
        [F.scaled_dot_product_attention(q, k, v, dropout_p=0.5).detach().numpy() for _ in range(400)], axis=0
    )
    ref = F.scaled_dot_product_attention(q, k, v).detach().numpy()
    assert np.abs(mean - ref).mean() < 0.1 * np.abs(ref).mean()


def test_sdpa_refuses_bad_arguments():
    q = ds.randn(2, 3, 4)
    with pytest.raises(ShapeError, match="last dim"):
        F.scaled_dot_product_attention(q, ds.randn(2, 3, 5), q)
    with pytest.raises(ShapeError, match="does not broadcast"):
        F.scaled_dot_product_attention(q, q, q, attn_mask=ds.ones(4, 3))
    with pytest.raises(ArgumentError, match="dropout_p"):
        F.scaled_dot_product_attention(q, q, q, dropout_p=1.5)


# ---------------------------------------------------------------------- MultiheadAttention
def _load_from_torch(ours, theirs):
    sd = theirs.state_dict()
    assert list(ours.state_dict()) == list(sd), "state-dict keys/order differ from PyTorch"
    ours.load_state_dict({name: t.detach().numpy() for name, t in sd.items()})


def _mha_case(seed):
    """A random configuration: shapes, layout, projection sharing, masks and options."""
    rng = np.random.default_rng(seed)
    heads = int(rng.choice([1, 2, 4]))
    embed = heads * int(rng.integers(2, 5))
    cfg = dict(
        embed_dim=embed,
        num_heads=heads,
        batch_first=bool(rng.integers(2)),
        bias=bool(rng.random() > 0.2),
        add_bias_kv=bool(rng.random() > 0.7),
        add_zero_attn=bool(rng.random() > 0.7),
    )
    sharing = str(rng.choice(["self", "kv", "separate", "kdim"]))
    if sharing == "kdim":
        cfg.update(kdim=int(rng.integers(2, 7)), vdim=int(rng.integers(2, 7)))
    call = dict(
        need_weights=bool(rng.integers(2)),
        average_attn_weights=bool(rng.integers(2)),
        attn_mask=str(rng.choice(["none", "bool2d", "float2d", "float3d", "causal"])),
        key_padding_mask=str(rng.choice(["none", "bool", "float"])),
    )
    n, L = int(rng.integers(1, 4)), int(rng.integers(1, 6))
    S = L if sharing == "self" or call["attn_mask"] == "causal" else int(rng.integers(1, 6))
    batched = rng.random() > 0.15
    return cfg, call, sharing, n, L, S, batched


def _masks(call, rng, n, heads, L, S, batched, dtype):
    out = {}
    kind = call["attn_mask"]
    if kind == "bool2d":
        m = rng.random((L, S)) > 0.6
        m[:, 0] = False  # every query keeps one key
        out["attn_mask"] = m
    elif kind == "float2d":
        out["attn_mask"] = rng.standard_normal((L, S)).astype(dtype)
    elif kind == "float3d":
        out["attn_mask"] = rng.standard_normal(((n if batched else 1) * heads, L, S)).astype(dtype)
    elif kind == "causal":
        out["attn_mask"] = np.triu(np.full((L, S), -np.inf, dtype=dtype), k=1)
        out["is_causal"] = True
    kpm = call["key_padding_mask"]
    if kpm != "none":
        m = rng.random((n, S)) > 0.6
        m[:, 0] = False
        if kpm == "float":
            m = np.where(m, -np.inf, rng.standard_normal((n, S))).astype(dtype)
        out["key_padding_mask"] = m if batched else m[0]
    return out


def _compare_mha(seed, dtype, training, assert_close):
    cfg, call, sharing, n, L, S, batched = _mha_case(seed)
    rng = np.random.default_rng(1000 + seed)
    torch.manual_seed(seed)
    theirs = torch.nn.MultiheadAttention(**cfg)
    ours = nn.MultiheadAttention(**cfg)
    if dtype == np.float64:
        theirs.double()
        ours.double()
    _load_from_torch(ours, theirs)
    theirs.train(training)
    ours.train(training)
    e, kdim, vdim = cfg["embed_dim"], cfg.get("kdim", cfg["embed_dim"]), cfg.get("vdim", cfg["embed_dim"])

    def shape(seq, feat):
        if not batched:
            return (seq, feat)
        return (n, seq, feat) if cfg["batch_first"] else (seq, n, feat)

    q_arr = rng.standard_normal(shape(L, e)).astype(dtype)
    arrays = {"q": q_arr}
    if sharing != "self":
        arrays["k"] = rng.standard_normal(shape(S, kdim)).astype(dtype)
        if sharing != "kv":
            arrays["v"] = rng.standard_normal(shape(S, vdim)).astype(dtype)
    ours_in = {k: ds.tensor(a, dtype=dtype, requires_grad=True) for k, a in arrays.items()}
    theirs_in = {k: torch.tensor(a, requires_grad=True) for k, a in arrays.items()}

    def qkv(d):
        q = d["q"]
        k = d.get("k", q)
        return q, k, d.get("v", k)

    masks = _masks(call, rng, n, cfg["num_heads"], L, S, batched, dtype)
    kw = dict(need_weights=call["need_weights"], average_attn_weights=call["average_attn_weights"])
    ours_masks = {k: (ds.tensor(v, dtype=v.dtype) if isinstance(v, np.ndarray) else v) for k, v in masks.items()}
    theirs_masks = {k: (torch.tensor(v) if isinstance(v, np.ndarray) else v) for k, v in masks.items()}
    out, w = ours(*qkv(ours_in), **kw, **ours_masks)
    ref, w_ref = theirs(*qkv(theirs_in), **kw, **theirs_masks)
    what = f"case {seed}: {cfg} {call} {sharing} n={n} L={L} S={S} batched={batched}"
    assert out.shape == tuple(ref.shape), what
    assert_close(out.detach().numpy(), ref.detach().numpy(), dtype, "output " + what)
    assert (w is None) == (w_ref is None), what
    proj = rng.standard_normal(out.shape).astype(dtype)
    loss, loss_ref = (out * ds.tensor(proj, dtype=dtype)).sum(), (ref * torch.tensor(proj)).sum()
    if w is not None:
        assert w.shape == tuple(w_ref.shape), what
        assert_close(w.detach().numpy(), w_ref.detach().numpy(), dtype, "weights " + what)
        proj_w = rng.standard_normal(w.shape).astype(dtype)
        loss = loss + (w * ds.tensor(proj_w, dtype=dtype)).sum()
        loss_ref = loss_ref + (w_ref * torch.tensor(proj_w)).sum()
    loss.backward()
    loss_ref.backward()
    for k in arrays:
        assert_close(
            ours_in[k].grad.detach().numpy(), theirs_in[k].grad.detach().numpy(), dtype, f"gradient of {k} " + what
        )
    mine = dict(ours.named_parameters())
    for name, p in theirs.named_parameters():
        assert_close(mine[name].grad.detach().numpy(), p.grad.detach().numpy(), dtype, f"gradient of {name} " + what)


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("seed", range(24))
def test_multihead_attention_matches_torch(seed, dtype, training, assert_close, gemm_path):
    _compare_mha(seed, dtype, training, assert_close)


def test_multihead_attention_parameter_names_and_init_follow_torch():
    m = nn.MultiheadAttention(8, 2, kdim=5, vdim=6, add_bias_kv=True)
    t = torch.nn.MultiheadAttention(8, 2, kdim=5, vdim=6, add_bias_kv=True)
    assert [n for n, _ in m.named_parameters()] == [n for n, _ in t.named_parameters()]
    assert {k: v.shape for k, v in m.state_dict().items()} == {k: tuple(v.shape) for k, v in t.state_dict().items()}
    ds.manual_seed(0)
    big = nn.MultiheadAttention(64, 4)
    bound = (6 / (64 + 3 * 64)) ** 0.5  # Xavier-uniform over the (3E, E) packed weight, as torch
    w = big.in_proj_weight.detach().numpy()
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.95 * bound
    assert not big.in_proj_bias.detach().numpy().any() and not big.out_proj.bias.detach().numpy().any()
    # and the state dict goes back into torch
    t2 = torch.nn.MultiheadAttention(64, 4)
    t2.load_state_dict({k: torch.tensor(to_host(v)) for k, v in big.state_dict().items()})


def test_multihead_attention_dropout_in_train_only():
    mha = nn.MultiheadAttention(8, 2, dropout=0.5, batch_first=True)
    x = ds.randn(2, 4, 8)
    ds.manual_seed(0)
    a = mha(x, x, x, need_weights=False)[0].detach().numpy()
    mha.eval()
    b = mha(x, x, x, need_weights=False)[0].detach().numpy()
    c = mha(x, x, x)[0].detach().numpy()
    assert not np.allclose(a, b)
    np.testing.assert_allclose(b, c, rtol=1e-5, atol=1e-6)


def test_multihead_attention_errors_name_the_problem():
    mha = nn.MultiheadAttention(8, 2)
    x = ds.randn(3, 2, 8)
    with pytest.raises(ArgumentError, match="divisible"):
        nn.MultiheadAttention(10, 3)
    with pytest.raises(ShapeError, match="embed_dim=8"):
        mha(ds.randn(3, 2, 6), x, x)
    with pytest.raises(ArgumentError, match="is_causal"):
        mha(x, x, x, is_causal=True)
    with pytest.raises(ShapeError, match=r"\(L, S\)"):
        mha(x, x, x, attn_mask=ds.zeros(2, 3))
    with pytest.raises(ShapeError, match="key_padding_mask"):
        mha(x, x, x, key_padding_mask=ds.tensor(np.zeros((2, 5), dtype=bool)))


@pytest.mark.parametrize("dropout_p", [0.0, 0.2])
def test_sdpa_keeps_probabilities_only_and_backward_needs_one_more_matrix(dropout_p):
    """What the node saves: P (float) and, with dropout, a one-byte keep mask. Backward allocates one
    more (L, S) matrix per head at a time beside them (the composite of basic ops needs four)."""
    import tracemalloc

    q, k, v = (ds.randn(1, 2, 512, 8, requires_grad=True) for _ in range(3))
    out = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p)
    saved = [a for a in out._saved if is_array(a)]  # arrays of any device
    expected = [((1, 2, 512, 512), np.float32)] + ([((1, 2, 512, 512), np.bool_)] if dropout_p else [])
    assert [(a.shape, a.dtype) for a in saved] == expected
    loss = out.sum()
    probs_bytes = 2 * 512 * 512 * 4
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        loss.backward()
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert peak < 1.25 * probs_bytes, f"backward allocated {peak / probs_bytes:.2f} x the probabilities"


@pytest.mark.parametrize("is_causal", [False, True])
def test_packed_self_attention_gradcheck_first_and_second_order(is_causal):
    """The node MultiheadAttention uses for self-attention takes the packed (3, N, H, L, D) projection."""
    from downslope.nn.attention import _packed_self_attention

    rng = np.random.default_rng(0)
    qkv = ds.tensor(rng.standard_normal((3, 2, 2, 4, 3)), dtype="float64", requires_grad=True)
    mask = None if is_causal else ds.tensor(rng.standard_normal((2, 1, 1, 4)), dtype="float64")

    def f(qkv):
        return _packed_self_attention(qkv, mask, 0.0, is_causal)

    ds.gradcheck(f, [qkv])
    unpacked = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2], attn_mask=mask, is_causal=is_causal)
    np.testing.assert_allclose(f(qkv).detach().numpy(), unpacked.detach().numpy(), rtol=1e-12)

    def grad_norm(qkv):
        (g,) = ds.autograd.grad((f(qkv) ** 2).sum(), [qkv], create_graph=True)
        return (g * g).sum()

    ds.gradcheck(grad_norm, [qkv])


# ---------------------------------------------------------------------- float16
def _f64(t):
    return np.asarray(t.detach().numpy(), np.float64)


def _half_error_at_most_torch(ours, theirs, exact, what):
    """float16 results: as close to the float64 result as PyTorch's float16 results are, give or take
    a float16 rounding of the result's scale."""
    scale = float(np.abs(_f64(exact)).max(initial=0.0)) or 1.0
    err, err_torch = np.abs(_f64(ours) - _f64(exact)).max(), np.abs(_f64(theirs) - _f64(exact)).max()
    assert np.isfinite(_f64(ours)).all(), what
    assert err <= 2 * err_torch + 2e-3 * scale, f"{what}: error {err:.3g}, PyTorch's {err_torch:.3g}, scale {scale:.3g}"


@pytest.mark.parametrize("scale", [1.0, 30.0])
@pytest.mark.parametrize("case", range(len(SDPA_CASES)))
def test_sdpa_float16_is_as_accurate_as_torch(case, scale, gemm_path):
    """float16 attention computes in float32 and rounds once (PyTorch's CPU "opmath"): float16 scores
    overflow for inputs of a few hundred, and the backward's row sums cancel."""
    rng = np.random.default_rng(case)
    kwargs = dict(SDPA_CASES[case])
    shapes = kwargs.pop("q_shape"), kwargs.pop("k_shape"), kwargs.pop("v_shape")
    mask = _make_mask(kwargs.pop("mask", None), rng, shapes[0], shapes[1], np.float16)
    arrays = [(rng.standard_normal(s) * scale).astype(np.float16) for s in shapes]
    proj = None
    results = {}
    for lib, dtype in ((ds, np.float16), (torch, np.float16), (torch, np.float64)):
        ldt = getattr(lib, np.dtype(dtype).name)
        ins = [lib.tensor(a, dtype=ldt, requires_grad=True) for a in arrays]
        m = None
        if mask is not None:
            m = lib.tensor(mask, dtype=ldt) if mask.dtype.kind == "f" else lib.tensor(mask)
            m.requires_grad_(mask.dtype.kind == "f")
        out = lib.nn.functional.scaled_dot_product_attention(*ins, attn_mask=m, **kwargs)
        assert str(out.dtype).endswith(np.dtype(dtype).name)
        proj = rng.standard_normal(tuple(out.shape)) if proj is None else proj
        (out.double() if lib is torch else out.astype("float64")).mul(
            lib.tensor(proj, dtype=lib.float64)
        ).sum().backward()
        results[lib.__name__, dtype] = (
            [out] + [t.grad for t in ins] + ([m.grad] if m is not None and m.requires_grad else [])
        )
    ours, theirs, exact = results["downslope", np.float16], results["torch", np.float16], results["torch", np.float64]
    assert ours[1].dtype == ds.float16
    for what, a, b, c in zip(["output", "dq", "dk", "dv", "dmask"], ours, theirs, exact):
        _half_error_at_most_torch(a, b, c, f"{what} at scale {scale}")


def test_sdpa_float16_scores_past_float16_range_match_torch():
    rng = np.random.default_rng(0)
    arrays = [rng.uniform(-300, 300, s).astype(np.float16) for s in [(1, 3, 4), (1, 5, 4), (1, 5, 2)]]
    out = F.scaled_dot_product_attention(*(ds.tensor(a, dtype=ds.float16) for a in arrays))
    ref = torch.nn.functional.scaled_dot_product_attention(*(torch.tensor(a) for a in arrays))
    assert out.dtype == ds.float16
    np.testing.assert_array_equal(out.detach().numpy(), ref.detach().numpy())


def test_sdpa_float16_backward_of_nearly_one_hot_rows_matches_torch():
    """Where P is one-hot to float32's precision the true dQ and dK are ~1e-12: PyTorch's float16 gives
    exact zeros, and so must the float32 rule (g . out with out rounded to float16 would leave ~0.1)."""
    rng = np.random.default_rng(0)
    arrays = [rng.uniform(-30, 30, s).astype(np.float16) for s in [(2, 3, 4), (2, 5, 4), (2, 5, 2)]]
    c = rng.standard_normal((2, 3, 2)).astype(np.float16)
    grads = []
    for lib in (ds, torch):
        ins = [lib.tensor(a, dtype=lib.float16, requires_grad=True) for a in arrays]
        out = lib.nn.functional.scaled_dot_product_attention(*ins)
        grads.append(lib.autograd.grad((out * lib.tensor(c, dtype=lib.float16)).sum(), ins))
    for a, b in zip(*grads):
        assert a.dtype == ds.float16
        np.testing.assert_allclose(_f64(a), _f64(b), rtol=2e-3, atol=2e-3)
    assert np.abs(_f64(grads[0][0])).max() < 1e-3


def test_sdpa_float16_double_backward_is_close_to_float64():
    rng = np.random.default_rng(2)
    arrays = [(rng.standard_normal((2, 3, 4)) * 3).astype(np.float16) for _ in range(3)]
    mask = rng.standard_normal((3, 3)).astype(np.float16)

    def second(dtype):
        ins = [ds.tensor(a, dtype=dtype, requires_grad=True) for a in arrays + [mask]]
        out = F.scaled_dot_product_attention(*ins[:3], attn_mask=ins[3], is_causal=True)
        g = ds.autograd.grad((out * out).sum(), ins, create_graph=True)
        assert all(t.dtype == dtype for t in g)
        return ds.autograd.grad(sum((t * t).sum() for t in g), ins)

    for a, b in zip(second(ds.float16), second(ds.float64)):
        assert a.dtype == ds.float16
        np.testing.assert_allclose(_f64(a), _f64(b), rtol=2e-2, atol=2e-2 * np.abs(_f64(b)).max())


def _half_module_case(make, call, shape, scale, seed=0):
    """A float16 module against PyTorch's float16 and float64 copies: output, input and parameter gradients."""
    torch.manual_seed(seed)
    theirs = make(torch).half()
    ours = make(ds).half()
    ours.load_state_dict({k: ds.tensor(v.detach().numpy(), dtype=ds.float16) for k, v in theirs.state_dict().items()})
    exact = make(torch).double()
    exact.load_state_dict({k: v.double() for k, v in theirs.state_dict().items()})
    rng = np.random.default_rng(seed)
    a = (rng.standard_normal(shape) * scale).astype(np.float16)
    ins = [ds.tensor(a, dtype=ds.float16, requires_grad=True), torch.tensor(a, requires_grad=True)]
    ins.append(torch.tensor(a, dtype=torch.float64))
    ins[2].requires_grad_(True)
    outs = [call(ours, ins[0]), call(theirs, ins[1]), call(exact, ins[2])]
    assert outs[0].dtype == ds.float16
    proj = rng.standard_normal(outs[0].shape)
    outs[0].astype("float64").mul(ds.tensor(proj, dtype=ds.float64)).sum().backward()
    for o in outs[1:]:
        o.double().mul(torch.tensor(proj, dtype=torch.float64)).sum().backward()
    what = f"{type(ours).__name__} at scale {scale}"
    _half_error_at_most_torch(outs[0], outs[1], outs[2], "output of " + what)
    _half_error_at_most_torch(ins[0].grad, ins[1].grad, ins[2].grad, "input gradient of " + what)
    mine, reference = dict(ours.named_parameters()), dict(exact.named_parameters())
    for name, p in theirs.named_parameters():
        assert mine[name].grad.dtype == ds.float16, name
        _half_error_at_most_torch(mine[name].grad, p.grad, reference[name].grad, f"gradient of {name}, {what}")


@pytest.mark.parametrize("scale", [1.0, 30.0])
@pytest.mark.parametrize("need_weights", [True, False])
def test_float16_multihead_attention_is_as_accurate_as_torch(need_weights, scale):
    _half_module_case(
        lambda lib: lib.nn.MultiheadAttention(8, 2, batch_first=True),
        lambda m, x: m(x, x, x, need_weights=need_weights)[0],
        (2, 5, 8),
        scale,
    )


@pytest.mark.parametrize("scale", [1.0, 30.0])
def test_float16_transformer_encoder_layer_is_as_accurate_as_torch(scale):
    _half_module_case(
        lambda lib: lib.nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True),
        lambda m, x: m(x, src_key_padding_mask=_padding_mask(x)),
        (2, 5, 8),
        scale,
    )


def _padding_mask(x):
    """A key padding mask hiding the last key of the second sequence, in the input's library."""
    m = np.zeros((2, 5), dtype=bool)
    m[1, -1] = True
    return ds.tensor(m) if isinstance(x, ds.Tensor) else torch.tensor(m)
