"""einsum (downslope.ops.linalg): two-operand contractions run as one product on the project's GEMM,
forward and in the rule, with torch's values and gradients (also on the strict device and under
create_graph), small ones stay on np.einsum; a size mismatch names the subscript, sizes and operand."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import downslope as ds
from downslope import gemm
from downslope.errors import ShapeError
from downslope.ops import linalg

torch = pytest.importorskip("torch")

# big enough for the product path (at least linalg._EINSUM_MIN_PRODUCT multiply-adds)
CONTRACTIONS = [
    ("nc,ck->nk", [(16, 32), (32, 64)]),
    ("bnc,bmc->bnm", [(3, 32, 32), (3, 40, 32)]),
    ("bij,bjk->bik", [(2, 24, 32), (2, 32, 40)]),
    ("ij,kj->ik", [(48, 32), (40, 32)]),
    ("abc,cd->abd", [(4, 8, 32), (32, 32)]),
    ("ijk,jl->lik", [(8, 16, 12), (16, 24)]),
    ("bij,bj->bi", [(8, 64, 64), (8, 64)]),
    ("ij,jk->", [(48, 32), (32, 32)]),
    ("ijx,jky->xik", [(16, 16, 3), (16, 24, 2)]),
    ("nhqd,nhkd->nhqk", [(2, 3, 20, 16), (2, 3, 24, 16)]),
    ("...qd,...kd->...qk", [(2, 3, 20, 16), (2, 3, 24, 16)]),
]


@pytest.mark.parametrize("device", ["cpu", "strict"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("spec, shapes", CONTRACTIONS)
def test_two_operand_einsum_matches_torch(check_op: Any, device: str, dtype: Any, spec: str, shapes: Any) -> None:
    arrays = [np.random.default_rng(k).standard_normal(s).astype(dtype) for k, s in enumerate(shapes)]
    check_op(lambda *t: ds.einsum(spec, *t), lambda *t: torch.einsum(spec, *t), arrays, device=device)


@pytest.mark.parametrize("spec, shapes", CONTRACTIONS)
def test_these_contractions_take_the_product_path(monkeypatch: pytest.MonkeyPatch, spec: str, shapes: Any) -> None:
    calls = []
    real = gemm.matmul

    def counting(a: Any, b: Any) -> Any:
        calls.append(1)
        return real(a, b)

    monkeypatch.setattr(gemm, "matmul", counting)
    ds.einsum(spec, *(ds.ones(*s) for s in shapes))
    assert calls == [1]


@pytest.mark.parametrize("spec, shapes", CONTRACTIONS[:4] + CONTRACTIONS[7:9])
def test_two_operand_einsum_second_derivatives_match_torch(spec: str, shapes: Any) -> None:
    arrays = [np.random.default_rng(k).standard_normal(s) for k, s in enumerate(shapes)]
    results = []
    for lib in (ds, torch):
        a, b = (lib.tensor(x, dtype=lib.float64, requires_grad=True) for x in arrays)
        ga, gb = lib.autograd.grad((lib.einsum(spec, a, b) ** 2).sum(), [a, b], create_graph=True)
        ((ga * ga).sum() + (gb**3).sum()).backward()
        results.append([a.grad.detach().numpy() if lib is torch else a.grad.numpy(), np.asarray(b.grad.tolist())])
    for ours, ref in zip(*results):
        np.testing.assert_allclose(ours, ref, rtol=1e-10, atol=1e-10)


def test_large_two_operand_einsum_reaches_the_gemm_forward_and_backward(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[tuple[int, ...], tuple[int, ...]]] = []
    real = gemm.matmul

    def counting(a: Any, b: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append((tuple(a.shape), tuple(b.shape)))
        return real(a, b, *args, **kwargs)

    monkeypatch.setattr(gemm, "matmul", counting)
    q = ds.randn(64, 32, requires_grad=True)
    queue = ds.randn(32, 256, requires_grad=True)
    ds.einsum("nc,ck->nk", q, queue).sum().backward()
    assert calls == [((64, 32), (32, 256)), ((64, 256), (256, 32)), ((32, 64), (64, 256))]


def test_small_einsum_stays_on_numpy(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("an 8x8 einsum should not pay for the product path")

    monkeypatch.setattr(gemm, "matmul", refuse)
    a, v = np.random.default_rng(0).standard_normal((8, 8)), np.random.default_rng(1).standard_normal(8)
    out = ds.einsum("ij,j->i", ds.tensor(a, dtype=ds.float64), ds.tensor(v, dtype=ds.float64))
    np.testing.assert_allclose(out.numpy(), torch.einsum("ij,j->i", torch.tensor(a), torch.tensor(v)).numpy())
    assert linalg._EINSUM_MIN_PRODUCT > 8 * 8 * 8


def test_einsum_size_mismatch_names_subscript_sizes_and_operand() -> None:
    with pytest.raises(RuntimeError, match="subscript c has size 4 for operand 1"):
        torch.einsum("nc,ck->nk", torch.ones(4, 3), torch.ones(4, 5))
    with pytest.raises(
        ShapeError, match=r"subscript c has size 4 for operand 1 \(shape \(4, 5\)\) .*previously seen size 3"
    ):
        ds.einsum("nc,ck->nk", ds.ones(4, 3), ds.ones(4, 5))
    with pytest.raises(ShapeError, match="subscript j has size 2 for operand 2"):
        ds.einsum("ij,jk,jl->ikl", ds.ones(2, 3), ds.ones(3, 4), ds.ones(2, 5))
    with pytest.raises(ShapeError, match=r"a dim under '\.\.\.' has size 3 for operand 1"):
        ds.einsum("...i,...i->...", ds.ones(2, 4), ds.ones(3, 4))
