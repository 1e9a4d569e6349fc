"""The backward of a row gather (``x[idx]``, ``x.index_select(0, idx)``, the graph network's
``lin(x)[src]``): the gradient rows are added whole (``indexing._rows_at``: compiled where numba is
there, else one flat ``np.add.at``) rather than through a flat index of every element; values against
torch, with repeated rows, at the sizes where the compiled kernel runs and below, in float32 and float64."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import downslope as ds
from downslope.ops import indexing

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("n", "e", "c"), [(50, 300, 8), (500, 5000, 16), (7, 40, 3)])
@pytest.mark.parametrize("how", ["getitem", "index_select", "tuple"])
def test_row_gather_gradient_matches_torch(dtype: Any, n: int, e: int, c: int, how: str) -> None:
    rng = np.random.default_rng(n + e)
    x = rng.standard_normal((n, c)).astype(dtype)
    idx = rng.integers(0, n, e)  # many repeated rows
    w = rng.standard_normal((e, c)).astype(dtype)
    ours, theirs = ds.tensor(x, dtype=x.dtype, requires_grad=True), torch.tensor(x, requires_grad=True)
    pick = {
        "getitem": lambda t, i: t[i],
        "index_select": lambda t, i: t.index_select(0, i),
        "tuple": lambda t, i: t[i, :],
    }[how]
    (pick(ours, ds.tensor(idx)) * ds.tensor(w, dtype=x.dtype)).sum().backward()
    (pick(theirs, torch.tensor(idx)) * torch.tensor(w)).sum().backward()
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=tol, atol=tol)


def test_row_gather_of_a_3d_tensor_and_a_negative_index_match_torch() -> None:
    rng = np.random.default_rng(2)
    x = rng.standard_normal((20, 4, 30)).astype(np.float32)
    for idx in (rng.integers(0, 20, 100), rng.integers(-20, 20, 100)):
        ours, theirs = ds.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        ours[ds.tensor(idx)].pow(2).sum().backward()
        theirs[torch.tensor(idx)].pow(2).sum().backward()
        np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.host_only  # the host scatter's path (device arrays scatter through their own library)
def test_row_gather_backward_adds_whole_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    # a flat int64 index of every gathered element and np.add.at made the GNN step's backward 2x torch's
    calls: list[int] = []
    original = indexing._rows_at

    def spy(ufunc: Any, out: np.ndarray, rows: np.ndarray, values: Any) -> None:
        calls.append(rows.size)
        original(ufunc, out, rows, values)

    monkeypatch.setattr(indexing, "_rows_at", spy)
    x = ds.tensor(np.ones((100, 16), np.float32), requires_grad=True)
    idx = ds.tensor(np.arange(2000) % 100)
    x[idx].sum().backward()
    x.index_select(0, idx).sum().backward()
    assert calls == [2000, 2000]
    np.testing.assert_array_equal(x.grad.numpy(), np.full((100, 16), 40.0, np.float32))
