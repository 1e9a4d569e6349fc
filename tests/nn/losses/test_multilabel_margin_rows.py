"""multilabel_margin_loss's row-block kernel against torch: values and gradients in float64 with
empty lists, repeated targets, ties at the margin, every reduction, and its memory (no (N, C, C))."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import downslope as ds
import downslope.nn.functional as F
from downslope.nn.losses import margin as margin_module

torch = pytest.importorskip("torch")


def _case() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(11)
    n, c = 9, 6
    x = rng.standard_normal((n, c))
    t = rng.integers(0, c, (n, c))
    t[0] = -1  # an empty list: no loss, no gradient
    t[1, 2] = -1  # a list of two, the rest ignored (even class indices after the -1)
    t[2] = [3, 3, 1, -1, 0, 0]  # a class listed twice counts twice
    t[3] = [0, 1, 2, 3, 4, 5]  # every class listed: no other classes, loss 0
    t[4, :2] = [5, -1]
    x[4, 5], x[4, 0] = 1.5, 0.5  # a hinge exactly at 0: torch passes no gradient there
    t[5, 3:] = [-1, 2, -1]
    return x, t


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("block_bytes", [32 << 20, 1])
def test_multilabel_margin_matches_torch_in_float64(monkeypatch: Any, reduction: str, block_bytes: int) -> None:
    monkeypatch.setattr(margin_module, "_MULTILABEL_BLOCK_BYTES", block_bytes)  # 1: one row per block
    x, t = _case()
    ours = ds.tensor(x, dtype=ds.float64, requires_grad=True)
    theirs = torch.tensor(x, requires_grad=True)
    out = F.multilabel_margin_loss(ours, ds.tensor(t), reduction=reduction)
    ref = torch.nn.functional.multilabel_margin_loss(theirs, torch.tensor(t), reduction=reduction)
    np.testing.assert_allclose(out.detach().numpy(), ref.detach().numpy(), rtol=1e-12, atol=1e-15)
    weights = np.random.default_rng(12).standard_normal(tuple(ref.shape))
    (out * ds.tensor(weights, dtype=ds.float64)).sum().backward()
    (ref * torch.tensor(weights)).sum().backward()
    np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=1e-12, atol=1e-15)


def test_multilabel_margin_unbatched_and_all_lists_empty_match_torch() -> None:
    x, t = _case()
    for xs, ts in ((x[2], t[2]), (x[:1], t[:1])):
        ours = ds.tensor(xs, dtype=ds.float64, requires_grad=True)
        theirs = torch.tensor(xs, requires_grad=True)
        out = F.multilabel_margin_loss(ours, ds.tensor(ts), reduction="sum")
        ref = torch.nn.functional.multilabel_margin_loss(theirs, torch.tensor(ts), reduction="sum")
        out.backward()
        ref.backward()
        np.testing.assert_allclose(out.item(), ref.item(), rtol=1e-12)
        np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=1e-12, atol=1e-15)


@pytest.mark.host_only  # the host kernels' memory; a device's arrays take the ops' path
def test_multilabel_margin_never_holds_class_by_class_pairs() -> None:
    import tracemalloc

    # 2048 x 200 float64: the (N, C, C) pairs would take 2048 * 200 * 200 * 8 bytes = 655 MB
    rng = np.random.default_rng(13)
    t = np.where(rng.random((2048, 200)) < 0.2, rng.integers(0, 200, (2048, 200)), -1)
    x = ds.tensor(rng.standard_normal((2048, 200)), dtype=ds.float64, requires_grad=True)
    target = ds.tensor(t)
    tracemalloc.start()
    try:
        F.multilabel_margin_loss(x, target).backward()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 << 20, f"multilabel_margin_loss held {peak / 2**20:.0f} MiB"
