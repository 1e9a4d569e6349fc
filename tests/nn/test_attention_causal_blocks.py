"""scaled_dot_product_attention's long-sequence paths: causal attention from 256 keys computed by
blocks of rows, each product only over the keys its rows see, and the scores / score gradient in
pooled memory. Values and gradients in float64 against PyTorch (causal with L != S and lengths off
the block size, scale=, masks, grouped heads, the packed self-attention of MultiheadAttention),
double backward, and the work the products do."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from torch.nn.attention import SDPBackend, sdpa_kernel

import downslope as ds
import downslope.nn.functional as F
from downslope import gemm, workspace
from downslope.nn import attention


def _run(lib, q, k, v, g, mask=None, **kw):
    """(out, dq, dk, dv[, dmask]) of ``lib``'s attention of float64 arrays and output gradient ``g``."""
    if lib == "torch":
        ts = [torch.from_numpy(a.copy()).requires_grad_() for a in (q, k, v)]
        m = None if mask is None else torch.from_numpy(mask.copy()).requires_grad_(mask.dtype != bool)
        given = m
        if m is not None and kw.get("is_causal"):
            # torch refuses a mask with is_causal; its CPU kernel's meaning (both apply) written out
            kw = {**kw, "is_causal": False}
            tril = torch.ones(q.shape[-2], k.shape[-2], dtype=torch.bool).tril()
            m = m & tril if mask.dtype == bool else m.masked_fill(~tril, -float("inf"))
        out = TF.scaled_dot_product_attention(*ts, attn_mask=m, **kw)
        out.backward(torch.from_numpy(g))
    else:
        ts = [ds.from_numpy(a.copy()).requires_grad_() for a in (q, k, v)]
        m = None if mask is None else ds.from_numpy(mask.copy()).requires_grad_(mask.dtype != bool)
        out = F.scaled_dot_product_attention(*ts, attn_mask=m, **kw)
        out.backward(ds.from_numpy(g))
    if lib == "torch":
        m = given
    grads = [t.grad.numpy() for t in ts] + ([] if m is None or mask.dtype == bool else [m.grad.numpy()])
    return [out.detach().numpy()] + grads


def _compare(q_shape, k_shape, mask=None, seed=0, **kw):
    rng = np.random.default_rng(seed)
    q = rng.standard_normal(q_shape)
    k = rng.standard_normal(k_shape)
    v = rng.standard_normal(k_shape[:-1] + (5,))
    g = rng.standard_normal(q_shape[:-1] + (5,))
    ours = _run("downslope", q, k, v, g, mask, **kw)
    theirs = _run("torch", q, k, v, g, mask, **kw)
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(
    "L,S",
    [(256, 256), (300, 300), (260, 400), (400, 260), (129 + 256, 256)],
)
def test_blocked_causal_attention_matches_torch_in_float64(L, S):
    assert attention._causal_bounds(L, S) is not None  # the blocked path is the one tested
    _compare((2, 2, L, 6), (2, 2, S, 6), is_causal=True)


def test_blocked_causal_attention_with_scale_matches_torch():
    _compare((1, 3, 300, 4), (1, 3, 300, 4), is_causal=True, scale=0.7, seed=1)


@pytest.mark.parametrize("kind", ["bool", "float"])
@pytest.mark.parametrize("is_causal", [False, True])
def test_long_masked_attention_matches_torch_in_float64(kind, is_causal):
    rng = np.random.default_rng(2)
    L = S = 260
    if kind == "bool":
        mask = rng.random((L, S)) < 0.7
        mask[:, 0] = True
    else:
        mask = rng.standard_normal((2, 1, L, S))
    _compare((2, 2, L, 4), (2, 2, S, 4), mask=mask, is_causal=is_causal, seed=3)


@pytest.mark.parametrize("is_causal", [False, True])
def test_long_grouped_query_attention_matches_torch_in_float64(is_causal):
    _compare((1, 4, 300, 4), (1, 2, 300, 4), enable_gqa=True, is_causal=is_causal, seed=4)


def test_blocked_causal_attention_needs_only_the_gradients_asked_for():
    rng = np.random.default_rng(5)
    q, k, v = (rng.standard_normal((1, 2, 300, 4)) for _ in range(3))
    qd, kd = ds.from_numpy(q).requires_grad_(), ds.from_numpy(k).requires_grad_()
    out = F.scaled_dot_product_attention(qd, kd, ds.from_numpy(v), is_causal=True)
    out.sum().backward()
    qt, kt = torch.from_numpy(q).requires_grad_(), torch.from_numpy(k).requires_grad_()
    TF.scaled_dot_product_attention(qt, kt, torch.from_numpy(v), is_causal=True).sum().backward()
    np.testing.assert_allclose(qd.grad.numpy(), qt.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(kd.grad.numpy(), kt.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_blocked_causal_attention_double_backward_matches_torch():
    rng = np.random.default_rng(6)
    arrays = [rng.standard_normal((1, 1, 256, 3)) for _ in range(3)]

    def grads(lib):
        if lib == "torch":
            ts = [torch.from_numpy(a.copy()).requires_grad_() for a in arrays]
            with sdpa_kernel(SDPBackend.MATH):  # torch's flash kernel has no double backward
                out = TF.scaled_dot_product_attention(*ts, is_causal=True)
            first = torch.autograd.grad((out**2).sum(), ts, create_graph=True)
            return [t.numpy() for t in torch.autograd.grad(sum((f * f).sum() for f in first), ts)]
        ts = [ds.from_numpy(a.copy()).requires_grad_() for a in arrays]
        out = F.scaled_dot_product_attention(*ts, is_causal=True)
        first = ds.autograd.grad((out**2).sum(), ts, create_graph=True)
        return [t.numpy() for t in ds.autograd.grad(sum((f * f).sum() for f in first), ts)]

    for a, b in zip(grads("downslope"), grads("torch")):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-11)


def test_packed_causal_self_attention_of_multihead_attention_matches_torch():
    """The Transformer layers' node (packed q, k, v; gradients written into one buffer) on the blocked path."""
    torch.manual_seed(0)
    theirs = torch.nn.MultiheadAttention(16, 2, batch_first=True, dtype=torch.float64)
    ours = ds.nn.MultiheadAttention(16, 2, batch_first=True, dtype="float64")
    ours.load_state_dict({k: ds.from_numpy(v.detach().numpy().copy()) for k, v in theirs.state_dict().items()})
    x = np.random.default_rng(7).standard_normal((2, 300, 16))
    causal = np.triu(np.full((300, 300), -np.inf), 1)
    xt, xd = torch.from_numpy(x).requires_grad_(), ds.from_numpy(x.copy()).requires_grad_()
    ot = theirs(xt, xt, xt, attn_mask=torch.from_numpy(causal), is_causal=True, need_weights=False)[0]
    od = ours(xd, xd, xd, attn_mask=ds.from_numpy(causal), is_causal=True, need_weights=False)[0]
    (ot**2).sum().backward()
    (od**2).sum().backward()
    np.testing.assert_allclose(od.detach().numpy(), ot.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(xd.grad.numpy(), xt.grad.numpy(), rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(
        ours.in_proj_weight.grad.numpy(), theirs.in_proj_weight.grad.numpy(), rtol=1e-9, atol=1e-11
    )


def test_causal_attention_products_skip_the_masked_blocks(monkeypatch):
    """At 1024 tokens the six products of forward + backward do at most 60% of the full products'
    multiply-adds (8 blocks of 128 rows: 9/16 of them), as PyTorch's flash kernel skips the blocks."""
    done = []
    real = gemm.matmul

    def counting(a, b, out=None, **kw):
        done.append(
            a.shape[-2] * a.shape[-1] * b.shape[-1] * int(np.prod(np.broadcast_shapes(a.shape[:-2], b.shape[:-2])))
        )
        return real(a, b, out, **kw)

    monkeypatch.setattr(attention.gemm, "matmul", counting)
    q, k, v = (ds.randn(1, 2, 1024, 8, requires_grad=True) for _ in range(3))
    F.scaled_dot_product_attention(q, k, v, is_causal=True).sum().backward()
    full = 6 * 2 * 1024 * 1024 * 8
    assert sum(done) <= 0.6 * full, f"{sum(done) / full:.2f} of the full products"


def test_long_attention_scores_come_from_the_pool():
    """P (saved for backward) is lent memory, so each step reuses the last one's pages instead of a
    fresh array that costs a page fault per 4 KiB page (as much time as the product at head dim 32)."""
    q, k, v = (ds.randn(1, 2, 512, 8, requires_grad=True) for _ in range(3))
    for is_causal in (False, True):
        out = F.scaled_dot_product_attention(q, k, v, is_causal=is_causal)
        p = out._saved[0]
        assert p.shape == (1, 2, 512, 512)
        # only host arrays are pooled (a device library keeps its own pool)
        assert workspace.is_lent_whole(p) or type(p) is not np.ndarray
