"""pdist's host kernels against torch: the Euclidean Gram-matrix path (with its close pairs computed
from their differences) and the row blocks of the other norms, forward and backward."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import downslope as ds
import downslope.nn.functional as F
from downslope.nn import functional as functional_module

torch = pytest.importorskip("torch")

P_VALUES = [0, 0.5, 1, 1.5, 2, 3, float("inf")]


def _rows(dtype: Any = np.float64) -> np.ndarray:
    rng = np.random.default_rng(3)
    x = rng.standard_normal((23, 4)) * [1.0, 2.0, 0.5, 3.0] + 10.0  # off the origin: the Gram path centres
    x[5] = x[2]  # identical rows: a zero distance (torch's gradient there is 0)
    x[7] = x[1] + 1e-9  # a close pair: the Gram matrix alone would lose its digits
    x[9, 1] = x[4, 1]  # a zero difference in one column (p < 1 and p = inf care)
    return x.astype(dtype)


def _both(x: np.ndarray, p: float, weights: np.ndarray) -> tuple[Any, Any, Any, Any]:
    ours = ds.tensor(x, dtype=x.dtype, requires_grad=True)
    theirs = torch.tensor(x, requires_grad=True)
    out, ref = F.pdist(ours, p), torch.nn.functional.pdist(theirs, p)
    (out * ds.tensor(weights, dtype=x.dtype)).sum().backward()
    (ref * torch.tensor(weights)).sum().backward()
    return out, ref, ours.grad, theirs.grad


@pytest.mark.parametrize("p", P_VALUES)
@pytest.mark.parametrize("block_bytes", [64 << 20, 256])
def test_pdist_values_and_gradients_match_torch_in_float64(monkeypatch: Any, p: float, block_bytes: int) -> None:
    # 256 bytes: one row per block and one close pair per chunk, so the block seams are exercised
    monkeypatch.setattr(functional_module, "_PDIST_BLOCK_BYTES", block_bytes)
    x = _rows()
    weights = np.random.default_rng(4).standard_normal(23 * 22 // 2)
    out, ref, grad, ref_grad = _both(x, p, weights)
    np.testing.assert_allclose(out.detach().numpy(), ref.detach().numpy(), rtol=1e-12, atol=1e-13)
    i, j = np.triu_indices(23, 1)
    assert out.detach().numpy()[(i == 2) & (j == 5)] == 0  # the identical rows: exactly 0
    np.testing.assert_allclose(grad.numpy(), ref_grad.numpy(), rtol=1e-10, atol=1e-10)


def test_pdist_float32_gram_path_keeps_torchs_precision_off_the_origin() -> None:
    rng = np.random.default_rng(5)
    x = (rng.standard_normal((300, 16)) + 1000.0).astype(np.float32)
    x[10] = x[3]
    weights = rng.standard_normal(300 * 299 // 2).astype(np.float32)
    out, ref, grad, ref_grad = _both(x, 2.0, weights)
    np.testing.assert_allclose(out.detach().numpy(), ref.detach().numpy(), rtol=1e-5)
    np.testing.assert_allclose(grad.numpy(), ref_grad.numpy(), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("p", [1, 1.5, 2, 3, float("inf")])
def test_pdist_double_backward_matches_torchs_composite_norm(p: float) -> None:
    # torch's pdist has no double backward; its norm of the pairs' differences has (distinct rows, no ties)
    x = np.random.default_rng(6).standard_normal((7, 3))
    i, j = np.triu_indices(7, 1)
    ours = ds.tensor(x, dtype=ds.float64, requires_grad=True)
    theirs = torch.tensor(x, requires_grad=True)
    (g,) = ds.autograd.grad(F.pdist(ours, p).pow(3).sum(), ours, create_graph=True)
    ref_out = torch.linalg.vector_norm(theirs[i] - theirs[j], p, dim=1)
    (ref_g,) = torch.autograd.grad(ref_out.pow(3).sum(), theirs, create_graph=True)
    np.testing.assert_allclose(g.detach().numpy(), ref_g.detach().numpy(), rtol=1e-12, atol=1e-12)
    (gg,) = ds.autograd.grad(g.pow(2).sum(), ours)
    (ref_gg,) = torch.autograd.grad(ref_g.pow(2).sum(), theirs)
    np.testing.assert_allclose(gg.numpy(), ref_gg.numpy(), rtol=1e-10, atol=1e-10)


@pytest.mark.host_only  # the host kernels' memory; a device's arrays take the ops' path
@pytest.mark.parametrize("p", [2, 3, float("inf")])
def test_pdist_never_holds_every_pairs_differences(monkeypatch: Any, p: float) -> None:
    import tracemalloc

    # 300 x 200 float64: every pair's differences would be 300*299/2 * 200 * 8 bytes = 72 MB
    monkeypatch.setattr(functional_module, "_PDIST_BLOCK_BYTES", 1 << 20)
    x = ds.tensor(np.random.default_rng(7).standard_normal((300, 200)), dtype=ds.float64, requires_grad=True)
    F.pdist(x, p).sum().backward()  # a first call may import numba and load the compiled kernels: not pdist's memory
    tracemalloc.start()
    try:
        F.pdist(x, p).sum().backward()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 12 << 20, f"pdist held {peak / 2**20:.0f} MiB"


def test_pdist_float32_small_integer_rows_are_exact_as_torchs() -> None:
    # torch sums the squared differences of these exactly; the Gram matrix must not leave a rounding behind
    x = np.random.default_rng(8).integers(-20, 21, (60, 3)).astype(np.float32)
    ours = F.pdist(ds.tensor(x), 2.0)
    ref = torch.nn.functional.pdist(torch.tensor(x), 2.0)
    np.testing.assert_array_equal(ours.numpy(), ref.numpy())
