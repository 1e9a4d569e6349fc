"""The NumPy path of a whole-row scatter without numba (``indexing._rows_in_rounds``: one stable sort,
then each row's k-th value applied in round k), the backward of ``x[idx]`` and of index_add: the
same results as ``ufunc.at`` bit for bit (each element takes its values in the order of the index),
rows met more often than ``_ROUNDS_MAX`` left to ufunc.at, and torch's gradient."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds
from downslope import jit_gate
from downslope.ops import indexing

torch = pytest.importorskip("torch")

pytestmark = pytest.mark.host_only


@pytest.mark.parametrize(
    ("rows_in_out", "count", "features", "dtype", "ufunc"),
    [
        (10_000, 50_000, 64, np.float32, np.add),  # a graph network's edges
        (100, 5_000, 3, np.float64, np.maximum),
        (70_000, 30_000, 2, np.float32, np.add),  # more rows than 16-bit keys hold
        (50, 20_000, 8, np.float32, np.multiply),
    ],
)
def test_rounds_give_ufunc_at_bits(monkeypatch, rows_in_out, count, features, dtype, ufunc):
    calls: list[int] = []
    rounds = indexing._rows_in_rounds
    monkeypatch.setattr(indexing, "_rows_in_rounds", lambda *a: (calls.append(1), rounds(*a))[1])
    rng = np.random.default_rng(3)
    rows = rng.integers(0, rows_in_out, count)
    rows[: 3 * indexing._ROUNDS_MAX] = 7  # a hub: left to ufunc.at
    values = rng.standard_normal((count, features)).astype(dtype)
    values[5, 0] = np.nan
    values[6, 1] = -0.0
    start = rng.standard_normal((rows_in_out, features)).astype(dtype)
    expected = start.copy()
    ufunc.at(expected, (rows,), values)
    with jit_gate.disabled():
        ours = start.copy()
        indexing._rows_at(ufunc, ours, rows, values)
    assert calls
    np.testing.assert_array_equal(ours.view(np.uint8), expected.view(np.uint8))


def test_rounds_take_a_broadcast_gradient():
    rows = np.random.default_rng(4).integers(0, 300, 5000)
    start = np.zeros((300, 32), np.float32)
    expected = start.copy()
    np.add.at(expected, (rows,), np.ones((5000, 32), np.float32))
    with jit_gate.disabled():
        indexing._rows_at(np.add, start, rows, np.broadcast_to(np.float32(1.0), (5000, 32)))
    np.testing.assert_array_equal(start, expected)


def test_gather_backward_without_numba_matches_torch():
    rng = np.random.default_rng(5)
    table = rng.standard_normal((1000, 16)).astype(np.float32)
    idx = rng.integers(0, 1000, 6000)
    g = rng.standard_normal((6000, 16)).astype(np.float32)
    with jit_gate.disabled():
        xd = ds.from_numpy(table.copy()).requires_grad_(True)
        xd[ds.from_numpy(idx)].backward(ds.from_numpy(g))
        ours = xd.grad.numpy()
    expected = np.zeros_like(table)
    np.add.at(expected, (idx,), g)
    np.testing.assert_array_equal(ours, expected)  # ufunc.at's order: the same sums
    xt = torch.from_numpy(table.copy()).requires_grad_(True)
    xt[torch.from_numpy(idx)].backward(torch.from_numpy(g))
    # torch's accumulation order differs: equal within float32 rounding
    np.testing.assert_allclose(ours, xt.grad.numpy(), rtol=1e-5, atol=1e-5)
