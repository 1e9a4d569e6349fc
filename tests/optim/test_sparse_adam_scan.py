"""SparseAdam's scan for the rows with a non-zero gradient reads the whole table each step: one pass
over the bits of a host gradient, without a boolean copy of the table, with the answer of
``(grad != 0).any(...)`` (-0.0 a zero, NaN and subnormals not)."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

import downslope as ds
from downslope.optim.sparse_adam import touched_rows

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_touched_rows_reads_the_bits_as_the_comparison_does(dtype: str) -> None:
    g = np.zeros((9, 2, 3), dtype)
    g[1, 0, 0] = -0.0
    g[2, 1, 2] = np.nan
    g[3, 0, 1] = np.finfo(dtype).smallest_subnormal
    g[4, 1, 1] = -np.inf
    g[5, 0, 2] = -1.5
    g[6] = -0.0
    expected = (g != 0).any(axis=(1, 2))
    np.testing.assert_array_equal(touched_rows(g), expected)
    np.testing.assert_array_equal(touched_rows(np.asfortranarray(g)), expected)  # the comparison's path
    np.testing.assert_array_equal(touched_rows(g[:, 0]), (g[:, 0] != 0).any(axis=1))
    np.testing.assert_array_equal(touched_rows(g[:, 0, 0]), g[:, 0, 0] != 0)
    assert touched_rows(np.zeros((0, 3), dtype)).shape == (0,)
    assert not touched_rows(np.zeros((3, 0), dtype)).any()


def test_touched_rows_makes_no_copy_of_the_table() -> None:
    g = np.zeros((4000, 128), np.float32)
    g[::7, 5] = 1.0
    tracemalloc.start()
    try:
        rows = touched_rows(g)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < g.size // 8, f"the scan allocated {peak} bytes for a table of {g.size} entries"
    np.testing.assert_array_equal(rows, (g != 0).any(axis=1))


def test_sparse_adam_on_a_larger_table_matches_torch() -> None:
    rng = np.random.default_rng(0)
    table = rng.standard_normal((3000, 8)).astype(np.float32)
    out = []
    for T in (ds, torch):
        emb = T.nn.Embedding(3000, 8, sparse=True)
        with T.no_grad():
            emb.weight.copy_(T.tensor(table))
        opt = T.optim.SparseAdam(list(emb.parameters()), lr=0.05)
        steps = np.random.default_rng(1)
        for _ in range(5):
            idx = T.tensor(steps.integers(0, 3000, 64))
            opt.zero_grad()
            (emb(idx) ** 2).sum().backward()
            opt.step()
        out.append(emb.weight.detach().numpy())
    np.testing.assert_allclose(out[0], out[1], rtol=1e-5, atol=1e-6)
