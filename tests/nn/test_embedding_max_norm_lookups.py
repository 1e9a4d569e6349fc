"""Embedding / EmbeddingBag with max_norm looked up more than once before backward (TransE's ent(h) and
ent(t) in one forward): each lookup renormalises rows in place, which must not invalidate the earlier
lookups' gradients (PyTorch's rule saves only the indices). Values and gradients against PyTorch in
float64 over a few optimizer steps, and the version check kept for ops that do read the table."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import downslope as ds
from downslope.errors import StateError

torch = pytest.importorskip("torch")

RNG = np.random.default_rng(5)
TABLE = 3.0 * RNG.standard_normal((7, 4))  # rows well above max_norm, so every lookup renormalises
LOOKUPS = [np.array([0, 1, 4]), np.array([2, 3, 4]), np.array([5, 1, 0])]


def _train(lib: Any, n_lookups: int, opt_name: str, steps: int = 5, **kw: Any) -> list[tuple[Any, Any, float]]:
    """Weights, gradients and losses of ``steps`` steps of a TransE-like loss over ``n_lookups`` lookups."""
    emb = lib.nn.Embedding(7, 4, max_norm=1.0, dtype=lib.float64, **kw)
    with lib.no_grad():
        emb.weight.copy_(lib.tensor(TABLE, dtype=lib.float64))
    opt = lib.optim.SGD(emb.parameters(), lr=0.1) if opt_name == "sgd" else lib.optim.Adam(emb.parameters(), lr=0.05)
    seen = []
    for _ in range(steps):
        opt.zero_grad()
        vecs = [emb(lib.tensor(i)) for i in LOOKUPS[:n_lookups]]
        diff = vecs[0] - vecs[1] if n_lookups == 2 else vecs[0] + vecs[1] - vecs[2]
        loss = diff.norm(p=1, dim=1).sum() + (vecs[0] * vecs[1]).sum()
        loss.backward()
        grad = emb.weight.grad.to_dense() if emb.weight.grad.is_sparse else emb.weight.grad
        seen.append((emb.weight.detach().numpy().copy(), grad.detach().numpy().copy(), float(loss.detach())))
        opt.step()
    return seen


@pytest.mark.parametrize("opt_name", ["sgd", "adam"])
@pytest.mark.parametrize("n_lookups", [2, 3])
def test_several_max_norm_lookups_train_as_torch(n_lookups: int, opt_name: str) -> None:
    ours, theirs = _train(ds, n_lookups, opt_name), _train(torch, n_lookups, opt_name)
    for (w, g, loss), (tw, tg, tloss) in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(w, tw, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(g, tg, rtol=1e-12, atol=1e-12)
        assert loss == pytest.approx(tloss, rel=1e-12)


def test_several_max_norm_lookups_with_sparse_gradients_as_torch() -> None:
    ours, theirs = _train(ds, 2, "sgd", sparse=True), _train(torch, 2, "sgd", sparse=True)
    for (w, g, loss), (tw, tg, tloss) in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(w, tw, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(g, tg, rtol=1e-12, atol=1e-12)
        assert loss == pytest.approx(tloss, rel=1e-12)


def _functional_twice(lib: Any) -> tuple[Any, Any]:
    w = lib.tensor(TABLE, dtype=lib.float64, requires_grad=True)
    a = lib.nn.functional.embedding(lib.tensor(LOOKUPS[0]), w, max_norm=1.5, norm_type=1.0)
    b = lib.nn.functional.embedding(lib.tensor(LOOKUPS[1]), w, max_norm=1.5, norm_type=1.0)
    (a * b * lib.tensor(np.arange(12.0).reshape(3, 4), dtype=lib.float64)).sum().backward()
    return w.detach().numpy(), w.grad.numpy()


def test_functional_embedding_with_max_norm_twice_as_torch() -> None:
    for got, want in zip(_functional_twice(ds), _functional_twice(torch), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def _bag_twice(lib: Any, mode: str) -> list[Any]:
    bag = lib.nn.EmbeddingBag(7, 4, max_norm=1.0, mode=mode, dtype=lib.float64)
    with lib.no_grad():
        bag.weight.copy_(lib.tensor(TABLE, dtype=lib.float64))
    opt = lib.optim.SGD(bag.parameters(), lr=0.1)
    offsets = lib.tensor([0, 2])
    seen = []
    for _ in range(3):
        opt.zero_grad()
        loss = (bag(lib.tensor(LOOKUPS[0]), offsets) - bag(lib.tensor(LOOKUPS[1]), offsets)).abs().sum()
        loss.backward()
        seen += [bag.weight.detach().numpy().copy(), bag.weight.grad.numpy().copy()]
        opt.step()
    return seen


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
def test_embedding_bag_with_max_norm_twice_as_torch(mode: str) -> None:
    for got, want in zip(_bag_twice(ds, mode), _bag_twice(torch, mode), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_an_op_that_reads_the_table_still_refuses_a_later_renorm() -> None:
    # pow saves the table's values: a max_norm lookup after it changes them, and both libraries refuse.
    for lib in (ds, torch):
        w = lib.tensor(TABLE, dtype=lib.float64, requires_grad=True)
        loss = (w**2).sum() + lib.nn.functional.embedding(lib.tensor(LOOKUPS[0]), w, max_norm=1.0).sum()
        error = StateError if lib is ds else RuntimeError
        with pytest.raises(error, match="modified by an inplace operation"):
            loss.backward()
