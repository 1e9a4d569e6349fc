"""The memory layout of scaled_dot_product_attention's output against PyTorch's: it follows the
query's, so that ``y.transpose(1, 2).view(B, L, H * D)`` works after heads were split by
``proj(x).view(B, L, H, D).transpose(1, 2)`` (the SDPA tutorial's CausalSelfAttention, nanoGPT).
Values, gradients and strides are compared with torch."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds
import downslope.nn.functional as F
from downslope import nn
from downslope.errors import ShapeError

torch = pytest.importorskip("torch")


def _heads(lib, x, b, length, h, d):
    """The tutorial's split: q, k, v = (t.view(B, L, H, D).transpose(1, 2) for t in x.chunk(3, -1))."""
    return [t.view(b, length, h, d).transpose(1, 2) for t in x.chunk(3, -1)]


def _tutorial_case(rng, dtype, b, length, h, d, rtol, atol, **kwargs):
    x = rng.standard_normal((b, length, 3 * h * d)).astype(dtype)
    proj = rng.standard_normal((b, length, h * d)).astype(dtype)
    ours, theirs = ds.tensor(x, dtype=dtype, requires_grad=True), torch.tensor(x, requires_grad=True)
    y = F.scaled_dot_product_attention(*_heads(ds, ours, b, length, h, d), **kwargs)
    ref = torch.nn.functional.scaled_dot_product_attention(*_heads(torch, theirs, b, length, h, d), **kwargs)
    assert y.stride() == ref.stride(), "the output follows the query's layout, as PyTorch's"
    merged = y.transpose(1, 2).view(b, -1, h * d)  # raised ShapeError while the output was (B, H, L, D) in order
    merged_ref = ref.transpose(1, 2).view(b, -1, h * d)
    np.testing.assert_allclose(merged.detach().numpy(), merged_ref.detach().numpy(), rtol=rtol, atol=atol)
    (merged * ds.tensor(proj, dtype=dtype)).sum().backward()
    (merged_ref * torch.tensor(proj)).sum().backward()
    np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=rtol, atol=atol)
    return y


@pytest.mark.parametrize("is_causal", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_tutorial_heads_view_after_transpose(is_causal, dtype):
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-11, atol=1e-12)
    _tutorial_case(np.random.default_rng(0), dtype, 4, 16, 8, 8, is_causal=is_causal, **tol)


def test_tutorial_heads_causal_blocks():
    """Long causal attention, computed block row by block row, writes into the query-ordered output too."""
    _tutorial_case(np.random.default_rng(1), np.float32, 2, 300, 2, 16, 1e-4, 1e-5, is_causal=True)


def test_tutorial_heads_with_float_mask_and_scale():
    rng = np.random.default_rng(2)
    mask = ds.tensor(rng.standard_normal((16, 16)).astype(np.float32))
    b, length, h, d = 3, 16, 4, 8
    x = rng.standard_normal((b, length, 3 * h * d)).astype(np.float32)
    y = F.scaled_dot_product_attention(*_heads(ds, ds.tensor(x), b, length, h, d), attn_mask=mask, scale=0.2)
    ref = torch.nn.functional.scaled_dot_product_attention(
        *_heads(torch, torch.tensor(x), b, length, h, d), attn_mask=torch.tensor(mask.numpy()), scale=0.2
    )
    assert y.stride() == ref.stride()
    np.testing.assert_allclose(y.transpose(1, 2).view(b, length, -1).numpy(), ref.transpose(1, 2).reshape(b, length, -1).numpy(), rtol=1e-5, atol=1e-6)  # fmt: skip


def test_tutorial_heads_float16():
    rng = np.random.default_rng(3)
    b, length, h, d = 2, 8, 4, 8
    x = rng.standard_normal((b, length, 3 * h * d)).astype(np.float16)
    xs, xt = ds.tensor(x, dtype=ds.float16, requires_grad=True), torch.tensor(x, requires_grad=True)
    y = F.scaled_dot_product_attention(*_heads(ds, xs, b, length, h, d), is_causal=True)
    ref = torch.nn.functional.scaled_dot_product_attention(*_heads(torch, xt, b, length, h, d), is_causal=True)
    assert y.dtype == ds.float16 and y.stride() == ref.stride()
    merged = y.transpose(1, 2).view(b, length, h * d)
    np.testing.assert_allclose(merged.detach().numpy().astype(np.float32), ref.transpose(1, 2).reshape(b, length, -1).detach().numpy().astype(np.float32), rtol=2e-3, atol=2e-3)  # fmt: skip
    merged.sum().backward()
    ref.sum().backward()
    np.testing.assert_allclose(xs.grad.numpy().astype(np.float32), xt.grad.numpy().astype(np.float32), rtol=1e-2, atol=2e-3)  # fmt: skip


def test_grouped_query_heads_follow_the_query():
    """enable_gqa: the query's heads are split into groups internally; the output is still (B, L, Hq, D) in memory."""
    rng = np.random.default_rng(4)
    b, length, hq, hk, d = 2, 6, 4, 2, 8
    q = rng.standard_normal((b, length, hq, d)).astype(np.float32)
    kv = rng.standard_normal((2, b, hk, length, d)).astype(np.float32)
    ours = [
        ds.tensor(q, requires_grad=True),
        ds.tensor(kv[0], requires_grad=True),
        ds.tensor(kv[1], requires_grad=True),
    ]
    theirs = [torch.tensor(a, requires_grad=True) for a in (q, kv[0], kv[1])]
    y = F.scaled_dot_product_attention(ours[0].transpose(1, 2), ours[1], ours[2], enable_gqa=True, is_causal=True)
    ref = torch.nn.functional.scaled_dot_product_attention(
        theirs[0].transpose(1, 2), theirs[1], theirs[2], enable_gqa=True, is_causal=True
    )
    assert y.stride() == ref.stride()
    merged = y.transpose(1, 2).view(b, length, hq * d)
    np.testing.assert_allclose(merged.detach().numpy(), ref.transpose(1, 2).reshape(b, length, -1).detach().numpy(), rtol=1e-5, atol=1e-6)  # fmt: skip
    merged.square().sum().backward()
    ref.square().sum().backward()
    for a, t in zip(ours, theirs):
        np.testing.assert_allclose(a.grad.numpy(), t.grad.numpy(), rtol=1e-4, atol=1e-5)


def test_contiguous_query_gives_contiguous_output():
    rng = np.random.default_rng(5)
    q, k, v = (rng.standard_normal((2, 3, 5, 4)).astype(np.float32) for _ in range(3))
    y = F.scaled_dot_product_attention(ds.tensor(q), ds.tensor(k).transpose(1, 2).contiguous().transpose(1, 2), ds.tensor(v))  # fmt: skip
    ref = torch.nn.functional.scaled_dot_product_attention(*(torch.tensor(a) for a in (q, k, v)))
    assert y.is_contiguous() and y.stride() == ref.stride() == (60, 20, 4, 1)
    np.testing.assert_allclose(y.view(6, 5, 4).numpy(), ref.view(6, 5, 4).numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "make",
    [
        lambda lib, a: lib.tensor(a).permute(1, 2, 0, 3),  # (L, B, H, D) in memory
        lambda lib, a: lib.tensor(a).permute(1, 0, 2, 3),  # (H, B, L, D) in memory
        lambda lib, a: lib.tensor(a)[:1].expand(3, 3, 3, 4),  # broadcast batch: laid out in order
    ],
)
def test_other_query_layouts_match_torch_strides(make):
    a = np.random.default_rng(6).standard_normal((3, 3, 3, 4)).astype(np.float32)
    q = make(ds, a)
    ref_q = make(torch, a)
    y = F.scaled_dot_product_attention(q, q, q)
    ref = torch.nn.functional.scaled_dot_product_attention(ref_q, ref_q, ref_q)
    assert y.stride() == ref.stride()
    np.testing.assert_allclose(y.numpy(), ref.numpy(), rtol=1e-5, atol=1e-6)


def test_same_values_as_with_a_contiguous_query():
    """The layout changes where the output lies, not what it holds (dropout draws the same mask too)."""
    rng = np.random.default_rng(7)
    x = ds.tensor(rng.standard_normal((2, 9, 3 * 4 * 8)).astype(np.float32))
    heads = _heads(ds, x, 2, 9, 4, 8)
    for kwargs in (dict(is_causal=True), dict(dropout_p=0.3)):
        ds.manual_seed(0)
        strided = F.scaled_dot_product_attention(*heads, **kwargs)
        ds.manual_seed(0)
        plain = F.scaled_dot_product_attention(*(t.contiguous() for t in heads), **kwargs)
        assert strided.transpose(1, 2).is_contiguous() and plain.is_contiguous()
        np.testing.assert_allclose(strided.numpy(), plain.numpy(), rtol=1e-6, atol=1e-7)


def test_multihead_attention_values_unchanged():
    """MultiheadAttention's heads come from the same split; its result against torch's."""
    rng = np.random.default_rng(8)
    ours = nn.MultiheadAttention(16, 4, batch_first=True)
    theirs = torch.nn.MultiheadAttention(16, 4, batch_first=True)
    theirs.load_state_dict({k: torch.tensor(v.numpy()) for k, v in ours.state_dict().items()})
    x = rng.standard_normal((3, 7, 16)).astype(np.float32)
    xs, xt = ds.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    mask = ds.nn.Transformer.generate_square_subsequent_mask(7, device=xs.device)
    out, _ = ours(xs, xs, xs, need_weights=False, attn_mask=mask)
    ref, _ = theirs(xt, xt, xt, need_weights=False, attn_mask=torch.tensor(mask.numpy()))
    np.testing.assert_allclose(out.detach().numpy(), ref.detach().numpy(), rtol=1e-5, atol=1e-6)
    out.square().sum().backward()
    ref.square().sum().backward()
    np.testing.assert_allclose(xs.grad.numpy(), xt.grad.numpy(), rtol=1e-4, atol=1e-5)


def test_hand_written_attention_view_needs_contiguous_as_in_torch():
    """nanoGPT's hand-written attention: ``(att @ v)`` is (B, H, L, D) in order in both libraries, so
    its transpose cannot be viewed without ``.contiguous()`` (torch raises too), and can with it."""
    rng = np.random.default_rng(9)
    b, length, h, d = 2, 5, 3, 4
    x = rng.standard_normal((b, length, 3 * h * d)).astype(np.float32)
    results = []
    for lib in (ds, torch):
        q, k, v = _heads(lib, lib.tensor(x), b, length, h, d)
        y = ((q @ k.transpose(-2, -1)) * (1.0 / d**0.5)).softmax(-1) @ v
        assert y.is_contiguous() and not y.transpose(1, 2).is_contiguous()
        with pytest.raises((ShapeError, RuntimeError)):
            y.transpose(1, 2).view(b, length, h * d)
        results.append(y.transpose(1, 2).contiguous().view(b, length, h * d).numpy())
    np.testing.assert_allclose(results[0], results[1], rtol=1e-5, atol=1e-6)


_SMALL_ATTENTION = """
import sys
import downslope as ds
import downslope.nn.functional as F
x = ds.randn(2, 8, 3 * 4 * 8, requires_grad=True)
q, k, v = [t.view(2, 8, 4, 8).transpose(1, 2) for t in x.chunk(3, -1)]
F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).view(2, 8, 32).sum().backward()
print("numba" in sys.modules)
"""


@pytest.mark.host_only  # numba runs on host arrays only
def test_small_attention_does_not_import_numba():
    """Scores below the size gate (here 2 x 4 x 8 x 8) take NumPy's softmax: no ~2 s numba import and
    kernel load on a process's first call."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", _SMALL_ATTENTION], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"
