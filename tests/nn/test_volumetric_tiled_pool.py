"""max_pool3d over windows that tile the input (stride = kernel, no padding) runs as one argmax per window
row (``volumetric._tiled_max_pool3d``): values, torch's indices (the first maximum in scan order, the last
NaN) and gradients equal torch's, unbatched and with ceil_mode too; and which windows take it."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import downslope as ds
import downslope.nn.functional as F
from downslope.nn import volumetric

torch = pytest.importorskip("torch")


@pytest.fixture
def rows_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, ...]]:
    """The kernels that took the window-rows path."""
    seen: list[tuple[int, ...]] = []
    original = volumetric._tiled_max_pool

    def spy(x: Any, k: Any, return_indices: bool) -> Any:
        seen.append(tuple(k))
        return original(x, k, return_indices)

    monkeypatch.setattr(volumetric, "_tiled_max_pool", spy)
    return seen


def _compare(a: np.ndarray, kernel: Any, **kw: Any) -> None:
    tx = torch.tensor(a, requires_grad=True)
    dx = ds.from_numpy(a.copy(), requires_grad=True)
    t_out, t_idx = torch.nn.functional.max_pool3d(tx, kernel, return_indices=True, **kw)
    d_out, d_idx = F.max_pool3d(dx, kernel, return_indices=True, **kw)
    np.testing.assert_array_equal(d_out.detach().numpy(), t_out.detach().numpy())
    np.testing.assert_array_equal(d_idx.numpy(), t_idx.numpy())
    g = np.random.default_rng(1).standard_normal(t_out.shape).astype(a.dtype)
    t_out.backward(torch.tensor(g))
    d_out.backward(ds.from_numpy(g))
    np.testing.assert_array_equal(dx.grad.numpy(), tx.grad.numpy())


@pytest.mark.host_only
@pytest.mark.parametrize(
    ("shape", "kernel"),
    [
        ((2, 3, 8, 8, 8), 4),
        ((2, 3, 4, 8, 16), (2, 4, 8)),
        ((2, 3, 6, 6, 6), 6),  # one window per volume
        ((3, 2, 2, 2), 2),  # unbatched, global
        ((2, 2, 8, 4, 8), (4, 4, 4)),
    ],
)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_values_indices_and_gradients_match_torch(rows_calls: list[Any], shape: Any, kernel: Any, dtype: str) -> None:
    a = np.random.default_rng(0).standard_normal(shape).astype(dtype)
    _compare(a, kernel)
    assert rows_calls


@pytest.mark.host_only
def test_ties_go_to_the_first_maximum_and_nans_to_the_last(rows_calls: list[Any]) -> None:
    rng = np.random.default_rng(2)
    a = rng.integers(0, 3, (2, 2, 8, 8, 8)).astype(np.float64)  # many ties in every window
    _compare(a, 4)
    a[0, 0, 1, 2, 3] = a[0, 0, 2, 1, 0] = a[1, 1, 5, 5, 5] = np.nan  # two NaNs in one window
    tx, dx = torch.tensor(a), ds.from_numpy(a.copy())
    t_out, t_idx = torch.nn.functional.max_pool3d(tx, 4, return_indices=True)
    d_out, d_idx = F.max_pool3d(dx, 4, return_indices=True)
    np.testing.assert_array_equal(d_out.numpy(), t_out.numpy())
    np.testing.assert_array_equal(d_idx.numpy(), t_idx.numpy())
    assert len(rows_calls) == 2


@pytest.mark.host_only
def test_ceil_mode_and_the_module_take_it_too(rows_calls: list[Any]) -> None:
    a = np.random.default_rng(3).standard_normal((2, 3, 8, 8, 8)).astype(np.float32)
    _compare(a, 4, ceil_mode=True)
    out = ds.nn.MaxPool3d(8)(ds.from_numpy(a))
    np.testing.assert_array_equal(out.numpy(), torch.nn.MaxPool3d(8)(torch.tensor(a)).numpy())
    assert rows_calls == [(4, 4, 4), (8, 8, 8)]


@pytest.mark.host_only
def test_short_or_overlapping_windows_keep_the_window_kernel(rows_calls: list[Any]) -> None:
    a = np.random.default_rng(4).standard_normal((2, 3, 8, 8, 8)).astype(np.float32)
    _compare(a, 2)  # 8 elements per window, not global
    _compare(a, 4, stride=2)
    _compare(a, 4, padding=1)
    assert rows_calls == []


@pytest.mark.host_only
def test_global_pooling_takes_the_window_rows(rows_calls: list[Any]) -> None:
    """Global 16^3 windows were 9x torch's time on the compiled window kernel: they take the rows path
    (checked by its spy, not by timing on a shared machine; the speed against torch is
    benchmarks/volumetric.py's global MaxPool3d(16) row)."""
    a = np.random.default_rng(5).standard_normal((4, 8, 16, 16, 16)).astype(np.float32)
    _compare(a, 16)
    assert rows_calls == [(16, 16, 16)]
