"""Backward through many in-place writes into one tensor: each op finds the history its input had when it
ran in an index of the tensor's chain of histories built once per walk (one link at a time made n writes
quadratic). The indexed lookups give the same histories as the walk, and gradients match PyTorch."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import downslope as ds
from downslope import autograd

torch = pytest.importorskip("torch")


def _linear_at_seq(t: Any, seq: float) -> Any:
    while t._seq > seq:
        t = t._prior
    return t


def _linear_before(t: Any, seq: float) -> Any:
    while t._seq >= seq and t._seq:
        t = t._prior
    return t


def test_indexed_lookups_give_the_walks_histories() -> None:
    v = ds.ones(3, requires_grad=True)
    buf = ds.zeros(5, 3)
    for k in range(12):
        buf[k % 5] += v * float(k)
    chain = [buf]
    while hasattr(chain[-1], "_prior"):
        chain.append(chain[-1]._prior)
    assert len(chain) > 20
    seqs = sorted({float(c._seq) for c in chain})
    queries = sorted({*seqs, *(s + 0.5 for s in seqs), *(s - 0.5 for s in seqs), 0.0, seqs[-1] + 3})
    chains: dict[int, Any] = {}
    for start in chain:
        for q in queries:
            if q >= chain[-1]._seq:  # below the oldest history the walk itself has nowhere to go
                assert autograd._version_at_seq(start, q, chains) is _linear_at_seq(start, q)
            assert autograd._version_before(start, q, chains) is _linear_before(start, q)
    assert list(chains) == [id(buf)]  # one index for the whole chain, from whichever history asked


def _accumulate(lib: Any, xn: np.ndarray, dn: np.ndarray, int_index: bool) -> tuple[Any, Any]:
    x = lib.tensor(xn)
    d = lib.tensor(dn, dtype=lib.float64, requires_grad=True)
    d2 = d * 1.5
    dc = lib.zeros(7, dn.shape[1], dtype=lib.float64)
    for k in range(len(xn)):
        if int_index:
            dc[k % 7] += d2[k]
        else:
            dc[x[k]] += d2[k]
    (dc * lib.arange(7.0 * dn.shape[1], dtype=lib.float64).reshape(7, -1)).sum().backward()
    return dc, d


@pytest.mark.parametrize("int_index", [False, True])
def test_repeated_row_accumulation_matches_torch(int_index: bool) -> None:
    rng = np.random.default_rng(0)
    xn = rng.integers(0, 7, 60)
    dn = rng.standard_normal((60, 4))
    dcd, dd = _accumulate(ds, xn, dn, int_index)
    dct, dt = _accumulate(torch, xn, dn, int_index)
    np.testing.assert_allclose(dcd.detach().numpy(), dct.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(dd.grad.numpy(), dt.grad.numpy(), rtol=1e-12)
