"""scaled_dot_product_attention's compiled softmax pass (``nn._jit_attention``): the same values and
gradients as PyTorch and as the NumPy pass, for the causal mask (also with L != S and rows longer
than a SIMD block), the masks, the scale, dropout, grouped heads and rows masked out entirely."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import downslope as ds
import downslope.nn.functional as F
from downslope import jit_gate

compiled = jit_gate.kernels("downslope.nn._jit_attention")
needs_numba = pytest.mark.skipif(compiled is None, reason="numba is not installed")


@pytest.fixture(autouse=True)
def _compiled_at_every_size(monkeypatch):
    """The small scores of these tests take the compiled pass too (below the size gate they would not)."""
    from downslope.nn import attention

    monkeypatch.setattr(attention, "JIT_SCORES_MIN_SIZE", 0)


def _inputs(shape_q, shape_k, ev, dtype, seed=0, spread=1.0):
    rng = np.random.default_rng(seed)
    q = (rng.standard_normal(shape_q) * spread).astype(dtype)
    k = (rng.standard_normal(shape_k) * spread).astype(dtype)
    v = rng.standard_normal(shape_k[:-1] + (ev,)).astype(dtype)
    return q, k, v


def _ours(q, k, v, grad=True, **kw):
    tensors = [ds.from_numpy(a.copy()).requires_grad_(grad) for a in (q, k, v)]
    mask = kw.pop("attn_mask", None)
    if mask is not None:
        kw["attn_mask"] = ds.from_numpy(mask)
    out = F.scaled_dot_product_attention(*tensors, **kw)
    if not grad:
        return [out.numpy()]
    g = np.random.default_rng(7).standard_normal(out.shape).astype(q.dtype)
    out.backward(ds.from_numpy(g))
    return [out.detach().numpy()] + [t.grad.numpy() for t in tensors]


def _torch(q, k, v, **kw):
    tensors = [torch.from_numpy(a.copy()).requires_grad_(True) for a in (q, k, v)]
    mask = kw.pop("attn_mask", None)
    if mask is not None:
        kw["attn_mask"] = torch.from_numpy(mask)
    out = TF.scaled_dot_product_attention(*tensors, **kw)
    g = np.random.default_rng(7).standard_normal(tuple(out.shape)).astype(q.dtype)
    out.backward(torch.from_numpy(g))
    return [out.detach().numpy()] + [t.grad.numpy() for t in tensors]


def _close(got, want, dtype):
    tol = 1e-12 if dtype == "float64" else 2e-6
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=tol * 10, atol=tol * max(1.0, float(np.abs(w).max())))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("L,S", [(64, 64), (5, 9), (9, 5), (130, 130), (70, 200)])
def test_causal_attention_matches_torch(L, S, dtype):
    q, k, v = _inputs((2, 3, L, 8), (2, 3, S, 8), 6, dtype, seed=L + S)
    _close(_ours(q, k, v, is_causal=True), _torch(q, k, v, is_causal=True), dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("kind", ["bool", "float"])
def test_masks_match_torch(kind, dtype):
    rng = np.random.default_rng(3)
    q, k, v = _inputs((2, 3, 7, 4), (2, 3, 66, 4), 5, dtype)
    if kind == "bool":
        mask = rng.random((7, 66)) > 0.4
        mask[:, 0] = True
    else:
        mask = rng.standard_normal((3, 7, 66)).astype(dtype)
        mask[1, 2, 5:] = -np.inf
    _close(_ours(q, k, v, attn_mask=mask), _torch(q, k, v, attn_mask=mask), dtype)


@pytest.mark.parametrize("scale", [0.0, -0.7, 2.5])
def test_any_scale_matches_torch(scale):
    q, k, v = _inputs((2, 2, 65, 4), (2, 2, 65, 4), 3, "float64", seed=5)
    _close(_ours(q, k, v, is_causal=True, scale=scale), _torch(q, k, v, is_causal=True, scale=scale), "float64")


def test_grouped_heads_match_torch():
    q, k, v = _inputs((2, 4, 9, 8), (2, 2, 9, 8), 8, "float32", seed=9)
    kw = dict(is_causal=True, enable_gqa=True)
    _close(_ours(q, k, v, **kw), _torch(q, k, v, **kw), "float32")


@pytest.mark.parametrize("grad", [False, True])
def test_compiled_and_numpy_passes_agree_without_and_with_gradients(grad):
    q, k, v = _inputs((3, 2, 100, 16), (3, 2, 100, 16), 16, "float32", seed=4, spread=3.0)
    got = _ours(q, k, v, grad=grad, is_causal=True)
    with jit_gate.disabled():
        want = _ours(q, k, v, grad=grad, is_causal=True)
    _close(got, want, "float32")


@needs_numba
@pytest.mark.host_only  # the compiled pass takes host arrays only
def test_the_compiled_pass_runs_for_host_float_scores(monkeypatch):
    from downslope.nn import _jit_attention

    calls = []
    real = _jit_attention.softmax_rows
    monkeypatch.setattr(_jit_attention, "softmax_rows", lambda *a: calls.append(a[2]) or real(*a))
    q, k, v = _inputs((1, 1, 4, 2), (1, 1, 4, 2), 2, "float32")
    with ds.no_grad():
        F.scaled_dot_product_attention(*(ds.from_numpy(a) for a in (q, k, v)), is_causal=True)
    assert calls == [True]


def test_dropout_uses_the_same_draws_on_both_passes():
    q, k, v = _inputs((2, 2, 8, 4), (2, 2, 8, 4), 4, "float32", seed=6)
    ds.manual_seed(11)
    got = _ours(q, k, v, is_causal=True, dropout_p=0.3)
    ds.manual_seed(11)
    with jit_gate.disabled():
        want = _ours(q, k, v, is_causal=True, dropout_p=0.3)
    _close(got, want, "float32")


def test_rows_masked_out_entirely_give_zeros_as_before():
    q, k, v = _inputs((1, 2, 3, 4), (1, 2, 70, 4), 4, "float32", seed=8)
    mask = np.ones((3, 70), dtype=bool)
    mask[1] = False
    got = _ours(q, k, v, attn_mask=mask)
    with jit_gate.disabled():
        want = _ours(q, k, v, attn_mask=mask)
    assert (got[0][:, :, 1] == 0).all()
    _close(got, want, "float32")


@pytest.mark.filterwarnings("ignore:invalid value encountered")  # inf / inf in the NumPy pass, as before
def test_a_row_with_an_infinite_score_takes_the_numpy_pass():
    q, k, v = _inputs((1, 1, 3, 2), (1, 1, 5, 2), 2, "float32", seed=1)
    mask = np.zeros((3, 5), dtype=np.float32)
    mask[0, 1] = np.inf
    got = _ours(q, k, v, grad=False, attn_mask=mask)
    with jit_gate.disabled():
        want = _ours(q, k, v, grad=False, attn_mask=mask)
    np.testing.assert_array_equal(np.isnan(got[0]), np.isnan(want[0]))
    np.testing.assert_allclose(np.nan_to_num(got[0]), np.nan_to_num(want[0]), rtol=1e-6, atol=1e-6)


def test_float16_matches_torch():
    q, k, v = _inputs((2, 2, 66, 8), (2, 2, 66, 8), 8, "float16", seed=2)
    got = _ours(q, k, v, is_causal=True)
    want = _torch(q, k, v, is_causal=True)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g.astype(np.float32), w.astype(np.float32), rtol=2e-2, atol=2e-2)


@needs_numba
@pytest.mark.host_only  # the compiled pass's own arrays
def test_large_scores_and_tiny_probabilities_stay_finite():
    from downslope.nn import _jit_attention

    s = np.array([[[0.0, -200.0, -1e30, -np.inf, 50.0]]], dtype=np.float32)
    assert _jit_attention.softmax_rows(s, 1.0, False)
    assert np.isfinite(s).all() and s[0, 0, 4] == 1.0 and s[0, 0, :4].max() < 1e-21
