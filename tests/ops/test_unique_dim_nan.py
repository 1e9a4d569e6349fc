"""unique(dim=...) of slices holding NaN in torch 2.13's order and grouping: its CPU kernel sorts the
slices with std::sort under a lexicographic ``<`` that NaN makes no strict weak order, so the order is
std::sort's own, and a slice holding NaN is never merged with another."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")

# torch's CPU kernel's order, reproduced for host arrays (torch's CUDA kernel sorts otherwise)
pytestmark = pytest.mark.host_only


def _check(a: np.ndarray, dim: int, **kwargs) -> None:
    theirs = torch.unique(torch.from_numpy(a), dim=dim, return_inverse=True, return_counts=True, **kwargs)
    ours = ds.unique(ds.from_numpy(a), dim=dim, return_inverse=True, return_counts=True, **kwargs)
    np.testing.assert_array_equal(ours[0].numpy(), theirs[0].numpy())  # NaN in the same places too
    np.testing.assert_array_equal(ours[1].numpy(), theirs[1].numpy())
    np.testing.assert_array_equal(ours[2].numpy(), theirs[2].numpy())
    alone = ds.unique(ds.from_numpy(a), dim=dim, **kwargs)
    np.testing.assert_array_equal(alone.numpy(), theirs[0].numpy())


def test_nan_rows_example() -> None:
    nan = np.nan
    rows = [[1.0, nan], [0.0, 1.0], [1.0, nan], [nan, 0.0], [0.0, 1.0], [1.0, 2.0], [nan, nan], [nan, 0.0], [1.0, 0.0]]
    _check(np.array(rows, dtype=np.float32), 0)
    _check(np.array(rows, dtype=np.float32), 0, sorted=False)


def test_one_dimensional_nan_along_dim_zero() -> None:
    _check(np.array([np.nan, 1.0, np.nan, 0.0]), 0)


@pytest.mark.parametrize("seed", range(12))
def test_random_slices_with_nan_match_torch(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 90))  # past 16 slices: std::sort's introsort, not only its insertion sort
    shape = (n, int(rng.integers(1, 4)), 2) if seed % 2 else (n, int(rng.integers(1, 4)))
    a = rng.integers(0, 3, size=shape).astype(np.float64 if seed % 3 else np.float32)
    a[rng.random(shape) < 0.15] = np.nan
    _check(a, 0)
    _check(np.moveaxis(a, 0, -1).copy(), a.ndim - 1)  # along the last dim: the slices moved there


def test_without_nan_unchanged() -> None:
    a = np.random.default_rng(3).integers(0, 2, size=(30, 3)).astype(np.float32)
    _check(a, 0)
    _check(a, 1)
