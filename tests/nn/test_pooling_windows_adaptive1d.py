"""adaptive_max_pool1d_with_indices' one-argmax kernel against torch: values, indices (ties: the first
maximum; NaN: the last one), gradients where neighbouring windows share an element, and its memory."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds
import downslope.nn.functional as F

torch = pytest.importorskip("torch")


@pytest.mark.parametrize(("length", "out"), [(12, 4), (500, 7), (10, 3), (5, 8), (9, 9), (7, 1), (1, 3)])
@pytest.mark.parametrize("unbatched", [False, True])
def test_adaptive_max_pool1d_with_indices_matches_torch(length: int, out: int, unbatched: bool) -> None:
    rng = np.random.default_rng(length * 31 + out)
    x = rng.integers(-3, 4, (2, 3, length)).astype(np.float64)  # small integers: many tied maxima
    if unbatched:
        x = x[0]
    ours = ds.tensor(x, dtype=ds.float64, requires_grad=True)
    theirs = torch.tensor(x, requires_grad=True)
    values, idx = F.adaptive_max_pool1d_with_indices(ours, out)
    ref_values, ref_idx = torch.nn.functional.adaptive_max_pool1d(theirs, out, return_indices=True)
    np.testing.assert_array_equal(values.detach().numpy(), ref_values.detach().numpy())
    np.testing.assert_array_equal(idx.numpy(), ref_idx.numpy())
    assert idx.dtype == np.int64 and values.shape == tuple(ref_values.shape)
    weights = rng.standard_normal(tuple(ref_values.shape))
    (values * ds.tensor(weights, dtype=ds.float64)).sum().backward()
    (ref_values * torch.tensor(weights)).sum().backward()
    np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=1e-15, atol=0)


def test_adaptive_max_pool1d_nan_and_infinite_windows_match_torch() -> None:
    x = np.array([[[1.0, np.nan, 2.0, np.nan, 0.0, -np.inf, -np.inf, np.inf, 3.0, np.nan]]])
    for out in (3, 4, 7):
        values, idx = F.adaptive_max_pool1d_with_indices(ds.tensor(x, dtype=ds.float64), out)
        ref_values, ref_idx = torch.nn.functional.adaptive_max_pool1d(torch.tensor(x), out, return_indices=True)
        np.testing.assert_array_equal(values.numpy(), ref_values.numpy())
        np.testing.assert_array_equal(idx.numpy(), ref_idx.numpy())


def test_adaptive_max_pool1d_double_backward_gives_the_input_a_zero_gradient() -> None:
    x = ds.tensor(np.random.default_rng(2).standard_normal((2, 3, 10)), dtype=ds.float64, requires_grad=True)
    values, _ = F.adaptive_max_pool1d_with_indices(x, 4)
    (g,) = ds.autograd.grad((values**2).sum(), x, create_graph=True)
    ref_x = torch.tensor(x.detach().numpy(), requires_grad=True)
    ref_values, _ = torch.nn.functional.adaptive_max_pool1d(ref_x, 4, return_indices=True)
    (ref_g,) = torch.autograd.grad((ref_values**2).sum(), ref_x, create_graph=True)
    np.testing.assert_allclose(g.detach().numpy(), ref_g.detach().numpy(), rtol=1e-15)
    (gg,) = ds.autograd.grad(g.sum(), x)
    (ref_gg,) = torch.autograd.grad(ref_g.sum(), ref_x)
    np.testing.assert_allclose(gg.numpy(), ref_gg.numpy(), rtol=1e-15)


@pytest.mark.host_only  # the host kernels' memory; a device's arrays take the ops' path
def test_adaptive_max_pool1d_holds_no_per_window_copies() -> None:
    import tracemalloc

    # 4 MiB of input: the gradient itself takes as much; the windows' argmax needs one more copy at most
    x = ds.tensor(np.random.default_rng(0).standard_normal((8, 64, 1000)), dtype=ds.float64, requires_grad=True)
    tracemalloc.start()
    try:
        F.adaptive_max_pool1d_with_indices(x, 7)[0].sum().backward()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 6 << 20, f"adaptive_max_pool1d held {peak / 2**20:.1f} MiB"
