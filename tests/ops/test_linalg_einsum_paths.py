"""einsum of three or more operands (downslope.ops.linalg): contracted one pair at a time along NumPy's
greedy path, forward and in the gradient rule, each pair on the GEMM. Values and gradients against
torch (also on the strict device and under create_graph); the backward of a chain of matrices costs
what the forward does, not the n^4 of one einsum loop over every index."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

import downslope as ds
from downslope import gemm, graph
from downslope.ops import linalg

torch = pytest.importorskip("torch")

# most above linalg._EINSUM_LOOP_MAX steps (the pairwise path), a few below (one einsum call)
MANY = [
    ("ij,jk,kl->il", [(24, 20), (20, 28), (28, 16)]),
    ("ij,jk,kl->li", [(24, 20), (20, 28), (28, 16)]),
    ("ij,jk,kl->", [(24, 20), (20, 28), (28, 16)]),
    ("bi,ij,bj->b", [(32, 24), (24, 20), (32, 20)]),
    ("bn,anm,bm->ba", [(16, 12), (8, 12, 10), (16, 10)]),
    ("ab,bc,cd,de->ae", [(10, 12), (12, 14), (14, 16), (16, 18)]),
    ("abc,cd,de->ae", [(6, 7, 12), (12, 14), (14, 9)]),  # b: summed within operand 0 alone
    ("i,j,k->ijk", [(24,), (20,), (28,)]),  # no contraction: outer products
    ("...ij,...jk,...kl->...il", [(2, 1, 12, 12), (1, 3, 12, 12), (12, 12)]),  # size-1 dims broadcast
    ("bij,bjk,bkl->bil", [(3, 16, 16), (1, 16, 16), (3, 16, 16)]),
    ("ii,ij,jk->k", [(20, 20), (20, 24), (24, 16)]),  # a repeated index: the diagonal
    ("ij,jk,kl->il", [(4, 4), (4, 4), (4, 4)]),  # small: one einsum call
    ("bi,ij,bj->b", [(4, 3), (3, 3), (4, 3)]),
]


@pytest.mark.parametrize("device", ["cpu", "strict"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("spec, shapes", MANY)
def test_many_operand_einsum_matches_torch(check_op: Any, device: str, dtype: Any, spec: str, shapes: Any) -> None:
    arrays = [np.random.default_rng(k).standard_normal(s).astype(dtype) for k, s in enumerate(shapes)]
    check_op(lambda *t: ds.einsum(spec, *t), lambda *t: torch.einsum(spec, *t), arrays, device=device)


def test_the_same_tensor_twice_gets_both_gradients() -> None:
    x = np.random.default_rng(0).standard_normal((32, 24))
    w = np.random.default_rng(1).standard_normal((24, 24))
    grads = []
    for lib in (ds, torch):
        a, m = lib.tensor(x, dtype=lib.float64, requires_grad=True), lib.tensor(w, dtype=lib.float64)
        lib.einsum("bi,ij,bj->b", a, m, a).sum().backward()
        grads.append(a.grad.numpy())
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-12, atol=1e-12)


def test_many_operand_integer_einsum_matches_torch() -> None:
    arrays = [np.random.default_rng(k).integers(-5, 5, s) for k, s in enumerate([(12, 14), (14, 16), (16, 18)])]
    ours = ds.einsum("ij,jk,kl->il", *(ds.tensor(a) for a in arrays))
    theirs = torch.einsum("ij,jk,kl->il", *(torch.tensor(a) for a in arrays))
    assert ours.dtype == ds.int64
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


@pytest.mark.parametrize("spec, shapes", [MANY[0], MANY[3], MANY[5], MANY[8]])
def test_many_operand_einsum_second_derivatives_match_torch(spec: str, shapes: Any) -> None:
    arrays = [np.random.default_rng(k).standard_normal(s) for k, s in enumerate(shapes)]
    results = []
    for lib in (ds, torch):
        ts = [lib.tensor(x, dtype=lib.float64, requires_grad=True) for x in arrays]
        grads = lib.autograd.grad((lib.einsum(spec, *ts) ** 2).sum(), ts, create_graph=True)
        sum(((g * g).sum() for g in grads), lib.tensor(0.0, dtype=lib.float64)).backward()
        results.append([t.grad.detach().numpy() for t in ts])
    for ours, ref in zip(*results, strict=True):
        np.testing.assert_allclose(ours, ref, rtol=1e-10, atol=1e-10)


def test_chain_backward_takes_one_gemm_per_pair(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[tuple[int, ...], tuple[int, ...]]] = []
    real = gemm.matmul

    def counting(a: Any, b: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append((tuple(a.shape), tuple(b.shape)))
        return real(a, b, *args, **kwargs)

    monkeypatch.setattr(gemm, "matmul", counting)
    a, b, c = (ds.randn(48, 48, requires_grad=True) for _ in range(3))
    y = ds.einsum("ij,jk,kl->il", a, b, c)
    assert len(calls) == 2  # forward: two products
    y.sum().backward()
    assert len(calls) == 2 + 3 * 2  # each operand's gradient: a three-operand einsum, two products


def test_chain_backward_is_not_the_n4_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    # one einsum loop over i, j, k, l took 1.2 s here at n = 128 (NumPy's unoptimized path: n^4
    # multiply-adds per gradient); the pairs cost 2 n^3 each. Counted in multiply-adds (each einsum
    # call's loop over its indices, each GEMM's batch * m * k * n), not timed (a shared machine)
    n = 128
    work: list[int] = []
    real_einsum, real_matmul = graph.ArrayRules.einsum, gemm.matmul

    def einsum(spec: str, *operands: Any, **kwargs: Any) -> Any:
        sizes: dict[str, int] = {}
        for term, x in zip(spec.partition("->")[0].split(","), operands):
            sizes.update(zip(term, np.shape(x)))
        work.append(math.prod(sizes.values()))
        return real_einsum(spec, *operands, **kwargs)

    def matmul(a: Any, b: Any, *args: Any, **kwargs: Any) -> Any:
        batch = np.broadcast_shapes(np.shape(a)[:-2], np.shape(b)[:-2])
        work.append(math.prod(batch) * np.shape(a)[-2] * np.shape(a)[-1] * np.shape(b)[-1])
        return real_matmul(a, b, *args, **kwargs)

    a, b, c = (ds.randn(n, n, requires_grad=True) for _ in range(3))
    y = ds.einsum("ij,jk,kl->il", a, b, c).sum()
    monkeypatch.setattr(graph.ArrayRules, "einsum", staticmethod(einsum))
    monkeypatch.setattr(gemm, "matmul", matmul)
    y.backward()
    assert work and sum(work) <= 8 * n**3, f"{sum(work) / n**3:.0f} n^3 multiply-adds (n^4 is {n} n^3)"
    assert a.grad is not None and b.grad is not None and c.grad is not None


def test_the_contraction_order_is_cached_per_equation_and_shapes() -> None:
    linalg._einsum_pairs.cache_clear()
    arrays = [ds.randn(24, 24, requires_grad=True) for _ in range(3)]
    for _ in range(3):
        ds.einsum("ij,jk,kl->il", *arrays).sum().backward()
    info = linalg._einsum_pairs.cache_info()
    assert info.misses == 4 and info.hits == 8  # the forward's path and each operand's gradient's
