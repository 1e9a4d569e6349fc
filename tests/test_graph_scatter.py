"""The engine's host scatter of an indexing gradient (graph._scatter_array: create_graph's scatter,
the embedding's backward without numba) through the flat-index ufunc.at path: the same sums as
np.add.at's, in the same order, and second derivatives through it as torch's."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

import downslope as ds
import downslope.ops.indexing as indexing
from downslope import jit_gate
from downslope.graph import _scatter_array


def _cases() -> list[tuple[tuple[int, ...], Any, tuple[int, ...]]]:
    rng = np.random.default_rng(0)
    rows = rng.integers(0, 50, 3000)  # many repeats: the order of the adds decides the float32 sums
    return [
        ((50, 8), rows, (3000, 8)),  # index_select / embedding: one 1-D index
        ((6, 50, 4), (slice(None), rows), (6, 3000, 4)),  # a full slice before it
        ((50, 40), (rows[:, None], rng.integers(0, 40, (3000, 3))), (3000, 3)),  # an index array per dim
        ((50, 8), rows - 50, (3000, 8)),  # negative indices: NumPy's own path
        ((50, 8), (rows,), (3000, 8)),
        ((50, 8), rows.reshape(60, 50), (60, 50, 8)),  # an embedding's (batch, seq) index
        ((60, 50, 8), rows.reshape(60, 50) > 25, (int((rows > 25).sum()), 8)),  # a mask is not flattened
    ]


@pytest.mark.parametrize("case", range(7))
def test_scatter_array_sums_as_numpy_add_at(case: int) -> None:
    shape, index, gshape = _cases()[case]
    g = np.random.default_rng(case).standard_normal(gshape).astype(np.float32)
    want = np.zeros(shape, np.float32)
    np.add.at(want, index, g)
    got = _scatter_array(shape, index, True, g)
    np.testing.assert_array_equal(got, want)  # bitwise: the same adds in the same order


@pytest.mark.parametrize("case", [0, 5])  # index_select's 1-D index, an embedding's 2-D one
def test_large_host_scatter_takes_the_flat_index_path(monkeypatch: pytest.MonkeyPatch, case: int) -> None:
    calls: list[int] = []
    real = indexing._at

    def spy(ufunc: Any, out: Any, full: Any, values: Any, lin: Any) -> None:
        calls.append(0 if lin is None else lin.size)
        real(ufunc, out, full, values, lin)

    monkeypatch.setattr(indexing, "_at", spy)
    shape, index, gshape = _cases()[case]
    g = np.ones(gshape, np.float32)
    with jit_gate.disabled():  # NumPy's path (with numba, whole rows go to the compiled row kernel instead)
        _scatter_array(shape, index, True, g)
    assert calls == [g.size]


def test_second_derivative_through_a_repeated_index_matches_torch() -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((40, 16))
    idx = rng.integers(0, 40, 500)
    w = rng.standard_normal((40, 16))
    grads = []
    for lib in (ds, torch):
        t = lib.tensor(x, dtype=lib.float64, requires_grad=True)
        (g,) = lib.autograd.grad((t[lib.tensor(idx)] ** 3).sum(), (t,), create_graph=True)
        (g * lib.tensor(w, dtype=lib.float64)).sum().backward()
        grads.append((g.detach().numpy(), t.grad.numpy()))
    for ours, theirs in zip(*grads):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-12)


def test_embedding_backward_matches_torch() -> None:
    rng = np.random.default_rng(2)
    weight = rng.standard_normal((30, 64)).astype(np.float32)
    idx = rng.integers(0, 30, (20, 50))
    out = []
    for lib in (ds, torch):
        w = lib.tensor(weight, requires_grad=True)
        y = lib.nn.functional.embedding(lib.tensor(idx), w)
        (y * y).sum().backward()
        out.append(w.grad.numpy())
    np.testing.assert_allclose(out[0], out[1], rtol=1.3e-6, atol=1e-5)
