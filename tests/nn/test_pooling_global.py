"""Max pooling whose windows tile the length (global max pooling, ``F.max_pool1d(x, L)``, the
text-CNN idiom, and any stride = kernel that divides L): values, indices and gradients against torch
at ties, NaN and -inf, unbatched, float64, a channel-major input, and the double backward; and the
three spellings of a global max (max_pool1d, adaptive_max_pool1d(x, 1), x.max(-1)) agree."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import downslope as ds
import downslope.nn.functional as F

torch = pytest.importorskip("torch")


def _signal(shape: tuple[int, ...], dtype: Any, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.integers(-3, 4, shape).astype(dtype)  # few values: many tied maxima in a window
    flat = x.reshape(-1, shape[-1])
    flat[0, 5] = np.nan  # a window with NaN: torch's gradient goes to its last NaN
    flat[0, 9] = np.nan
    flat[1, :] = -np.inf  # a window of -inf only
    flat[2, 3] = np.inf
    return x


def _both(x: np.ndarray, fn: Any, reference: Any, w: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    ours = ds.tensor(x, dtype=x.dtype, requires_grad=True)
    theirs = torch.tensor(x, requires_grad=True)
    (out, idx), (ref, ref_idx) = fn(ours), reference(theirs)
    (out * ds.tensor(w, dtype=x.dtype)).sum().backward()
    (ref * torch.tensor(w)).sum().backward()
    return [
        (out.detach().numpy(), ref.detach().numpy()),
        (idx.numpy(), ref_idx.numpy()),
        (ours.grad.numpy(), theirs.grad.numpy()),
    ]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(3, 4, 16), (4, 16)])
@pytest.mark.parametrize("kernel", [16, 4, 2])
def test_tiling_max_pool1d_matches_torch_at_ties_nan_and_inf(dtype: Any, shape: Any, kernel: int) -> None:
    x = _signal(shape, dtype, kernel)
    w = np.random.default_rng(1).standard_normal(shape[:-1] + (shape[-1] // kernel,)).astype(dtype)
    pairs = _both(
        x,
        lambda t: F.max_pool1d(t, kernel, return_indices=True),
        lambda t: torch.nn.functional.max_pool1d(t, kernel, return_indices=True),
        w,
    )
    for name, (got, want) in zip(("values", "indices", "gradient"), pairs):
        assert got.shape == want.shape, name
        assert got.dtype == want.dtype, name
        np.testing.assert_array_equal(got, want, err_msg=name)


def test_global_max_pool1d_of_a_channel_major_input_matches_torch() -> None:
    # a convolution's output is (C, N, L) in memory: the pooled result must not depend on it
    x = np.ascontiguousarray(_signal((5, 3, 12), np.float32, 2)).transpose(1, 0, 2)
    w = np.random.default_rng(3).standard_normal((3, 5, 1)).astype(np.float32)
    pairs = _both(
        x,
        lambda t: F.max_pool1d(t, 12, return_indices=True),
        lambda t: torch.nn.functional.max_pool1d(t, 12, return_indices=True),
        w,
    )
    for got, want in pairs:
        np.testing.assert_array_equal(got, want)


def test_global_max_pool1d_double_backward_matches_torch() -> None:
    x = np.random.default_rng(4).standard_normal((2, 3, 8))
    ours, theirs = ds.tensor(x, dtype=ds.float64, requires_grad=True), torch.tensor(x, requires_grad=True)
    (g,) = ds.autograd.grad(F.max_pool1d(ours, 8).pow(2).sum(), ours, create_graph=True)
    (ref_g,) = torch.autograd.grad(torch.nn.functional.max_pool1d(theirs, 8).pow(2).sum(), theirs, create_graph=True)
    np.testing.assert_allclose(g.detach().numpy(), ref_g.detach().numpy(), rtol=1e-12)
    (gg,) = ds.autograd.grad((g * ds.tensor(x, dtype=ds.float64)).sum(), ours)
    (ref_gg,) = torch.autograd.grad((ref_g * torch.tensor(x)).sum(), theirs)
    np.testing.assert_allclose(gg.numpy(), ref_gg.numpy(), rtol=1e-12)


def test_the_three_global_maxima_agree_without_nan() -> None:
    # max(-1) takes the first of tied maxima too; with NaN, torch's max picks the first NaN and
    # pooling the last, so that case is left to the tests against torch above
    x = np.random.default_rng(5).integers(-2, 3, (4, 6, 32)).astype(np.float32)
    outs = []
    for fn in (
        lambda t: F.max_pool1d(t, 32)[..., 0],
        lambda t: F.adaptive_max_pool1d(t, 1)[..., 0],
        lambda t: t.max(-1).values,
    ):
        t = ds.tensor(x, requires_grad=True)
        out = fn(t)
        out.sum().backward()
        outs.append((out.detach().numpy(), t.grad.numpy()))
    for out, grad in outs[1:]:
        np.testing.assert_array_equal(out, outs[0][0])
        np.testing.assert_array_equal(grad, outs[0][1])
