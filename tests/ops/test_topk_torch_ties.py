"""topk(sorted=True) lists equal values in torch 2.13's CPU order: its kernel's libstdc++ partial_sort
(k * 64 <= n) or nth_element then sort of the first k - 1, whose order among equal values is theirs. The
compiled steps and the Python ones (numba switched off) against torch, with NaN and +-0; the steps of
``_stl_order`` against the library's std::sort as torch's unique(dim) uses it; sort/argsort(stable=True)
stay exactly torch's."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds
from downslope import jit_gate

torch = pytest.importorskip("torch")

# torch's CPU order, reproduced for host arrays (a device's topk keeps index order, as torch's CUDA
# kernels have an order of their own)
pytestmark = pytest.mark.host_only


def _rows(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 300)) if seed % 4 else int(rng.integers(300, 2000))
    a = rng.integers(0, int(rng.integers(1, 6)), size=(3, n)).astype(np.float32 if seed % 2 else np.float64)
    if seed % 3 == 0:
        a[rng.random(a.shape) < 0.2] = np.nan
    if seed % 5 == 0:
        a[rng.random(a.shape) < 0.2] = -0.0
    return a


@pytest.mark.parametrize("jit", [True, False], ids=["jit-allowed", "python"])
@pytest.mark.parametrize("seed", range(16))
def test_topk_tie_order_matches_torch(jit: bool, seed: int) -> None:
    a = _rows(seed)
    n = a.shape[1]
    rng = np.random.default_rng(100 + seed)
    for k in {1, n, int(rng.integers(1, n + 1)), max(1, n // 64)}:
        for largest in (True, False):
            want = torch.topk(torch.from_numpy(a), k, largest=largest).indices.numpy()
            if jit:
                got = ds.topk(ds.from_numpy(a), k, largest=largest)[1].numpy()
            else:
                with jit_gate.disabled():
                    got = ds.topk(ds.from_numpy(a), k, largest=largest)[1].numpy()
            np.testing.assert_array_equal(got, want, err_msg=f"k={k} largest={largest}")


def test_topk_along_a_middle_dim_with_ties() -> None:
    a = np.random.default_rng(5).integers(0, 3, size=(4, 100, 3)).astype(np.float32)
    want = torch.topk(torch.from_numpy(a), 40, dim=1)
    got = ds.topk(ds.from_numpy(a), 40, dim=1)
    np.testing.assert_array_equal(got[1].numpy(), want.indices.numpy())
    np.testing.assert_array_equal(got[0].numpy(), want.values.numpy())


def test_topk_integers_with_ties_match_torch() -> None:
    a = np.random.default_rng(6).integers(0, 4, size=(5, 500))
    for k in (3, 250):
        want = torch.topk(torch.from_numpy(a), k).indices.numpy()
        np.testing.assert_array_equal(ds.topk(ds.from_numpy(a), k)[1].numpy(), want)


@pytest.mark.parametrize("seed", range(6))
def test_stable_sort_and_argsort_match_torch_exactly(seed: int) -> None:
    a = _rows(seed)
    for descending in (False, True):
        want = torch.sort(torch.from_numpy(a), descending=descending, stable=True).indices.numpy()
        np.testing.assert_array_equal(ds.sort(ds.from_numpy(a), descending=descending, stable=True)[1].numpy(), want)
        want = torch.argsort(torch.from_numpy(a), descending=descending, stable=True).numpy()
        np.testing.assert_array_equal(ds.argsort(ds.from_numpy(a), descending=descending, stable=True).numpy(), want)
