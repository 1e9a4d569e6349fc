"""The compiled lookups of ``embedding`` and ``embedding_bag`` (``nn._jit_embedding``): the same
values as PyTorch and as the NumPy path, the same errors for indices out of range, and the bag
sums straight from the table only where no graph is recorded."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import downslope as ds
import downslope.nn.functional as F
from downslope import jit_gate
from downslope.errors import OutOfRangeError


@pytest.fixture(autouse=True)
def _compiled_at_every_size(monkeypatch):
    """The small bags of these tests take the compiled kernels (below the size gate a process that has
    not loaded them would not)."""
    from downslope.nn import layers

    monkeypatch.setattr(layers, "JIT_EMBEDDING_BAG_MIN_SIZE", 0)


def _table(rows=50, dim=7, dtype="float32", seed=0):
    return np.random.default_rng(seed).standard_normal((rows, dim)).astype(dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("index_dtype", ["int64", "int32"])
def test_lookups_match_torch_and_the_numpy_path(dtype, index_dtype):
    table = _table(dtype=dtype)
    idx = np.random.default_rng(1).integers(0, 50, (3, 4)).astype(index_dtype)
    got = F.embedding(ds.from_numpy(idx), ds.from_numpy(table)).numpy()
    with jit_gate.disabled():
        plain = F.embedding(ds.from_numpy(idx), ds.from_numpy(table)).numpy()
    want = torch.nn.functional.embedding(torch.from_numpy(idx.astype(np.int64)), torch.from_numpy(table)).numpy()
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(plain, want)


@pytest.mark.host_only  # indices are range-checked on the host only (as before)
@pytest.mark.parametrize("bad", [50, -1, 10**6])
def test_an_index_out_of_range_is_refused_as_before(bad):
    table = ds.from_numpy(_table())
    idx = ds.tensor([1, bad, 3])
    with pytest.raises(OutOfRangeError, match=f"index {bad} is out of range for a table of 50 rows"):
        F.embedding(idx, table)
    with pytest.raises(OutOfRangeError, match=f"index {bad} is out of range for a table of 50 rows"):
        with ds.no_grad():
            F.embedding_bag(idx, table, ds.tensor([0, 2]), mode="mean")


def test_the_gradient_of_a_compiled_lookup_is_the_scatter_add():
    table = _table(dtype="float64")
    idx = np.array([[3, 1], [3, 0]])
    w = ds.from_numpy(table.copy()).requires_grad_(True)
    tw = torch.from_numpy(table.copy()).requires_grad_(True)
    g = np.random.default_rng(2).standard_normal((2, 2, 7))
    F.embedding(ds.from_numpy(idx), w, padding_idx=0).backward(ds.from_numpy(g))
    torch.nn.functional.embedding(torch.from_numpy(idx), tw, padding_idx=0).backward(torch.from_numpy(g))
    np.testing.assert_allclose(w.grad.numpy(), tw.grad.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("mode", ["sum", "mean"])
@pytest.mark.parametrize("padding_idx", [None, 4])
@pytest.mark.parametrize("include_last_offset", [False, True])
def test_bag_sums_without_a_graph_match_torch_to_the_bit(mode, padding_idx, include_last_offset):
    rng = np.random.default_rng(3)
    table = _table(rows=20, dim=33)
    idx = rng.integers(0, 20, 40)
    idx[:5] = 4
    offsets = np.array([0, 0, 5, 5, 17, 30, 40])  # empty bags, a bag of padding only, a last empty bag
    kw = dict(mode=mode, padding_idx=padding_idx, include_last_offset=include_last_offset)
    with ds.no_grad():
        got = F.embedding_bag(ds.from_numpy(idx), ds.from_numpy(table), ds.from_numpy(offsets), **kw).numpy()
    with jit_gate.disabled(), ds.no_grad():
        plain = F.embedding_bag(ds.from_numpy(idx), ds.from_numpy(table), ds.from_numpy(offsets), **kw).numpy()
    want = torch.nn.functional.embedding_bag(
        torch.from_numpy(idx), torch.from_numpy(table), torch.from_numpy(offsets), **kw
    ).numpy()
    np.testing.assert_array_equal(got, plain)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


def test_two_dimensional_bags_of_a_frozen_table_match_torch():
    table = _table(rows=30, dim=5, dtype="float64")
    idx = np.random.default_rng(4).integers(0, 30, (6, 3))
    layer = ds.nn.EmbeddingBag.from_pretrained(ds.from_numpy(table), mode="sum")
    reference = torch.nn.EmbeddingBag.from_pretrained(torch.from_numpy(table), mode="sum")
    got = layer(ds.from_numpy(idx))  # frozen: no graph to record, with grad mode on
    assert not got.requires_grad
    np.testing.assert_allclose(got.numpy(), reference(torch.from_numpy(idx)).numpy(), rtol=1e-12, atol=1e-12)


def test_a_trained_table_still_gets_its_bag_gradient():
    table = _table(rows=12, dim=4, dtype="float64")
    idx, offsets = np.array([1, 2, 2, 5, 7]), np.array([0, 3])
    w = ds.from_numpy(table.copy()).requires_grad_(True)
    tw = torch.from_numpy(table.copy()).requires_grad_(True)
    F.embedding_bag(ds.from_numpy(idx), w, ds.from_numpy(offsets), mode="mean").sum().backward()
    torch.nn.functional.embedding_bag(
        torch.from_numpy(idx), tw, torch.from_numpy(offsets), mode="mean"
    ).sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), tw.grad.numpy(), rtol=1e-12, atol=1e-12)
