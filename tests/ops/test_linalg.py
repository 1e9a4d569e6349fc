"""Products (downslope.ops.linalg): einsum's rule under create_graph and with broadcasting."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")


def test_einsum_gradient_over_an_index_only_one_operand_has_is_differentiable_again():
    # in "ij,k->k" the rule for the first operand broadcasts over i and j with a constant of ones
    # (xp.constant), which must be a recorded operand under create_graph
    def first_gradient(a: ds.Tensor, b: ds.Tensor) -> ds.Tensor:
        ga, gb = ds.autograd.grad((ds.einsum("ij,k->k", a, b) ** 2).sum(), [a, b], create_graph=True)
        return ga.sum() + (gb * gb).sum()

    a, b = ds.randn(2, 3, dtype=ds.float64), ds.randn(4, dtype=ds.float64)
    assert ds.gradcheck(first_gradient, [a, b]).passed


@pytest.mark.parametrize("device", ["cpu", "strict"])
@pytest.mark.parametrize(
    "spec, shapes",
    [
        ("...,...->...", [(1, 3), (2, 3)]),
        ("...i,...i->...", [(2, 1, 4), (3, 4)]),
        ("...ij,...jk->...ik", [(1, 2, 3), (5, 3, 4)]),
        ("...i,...i", [(4, 1, 3), (1, 2, 3)]),
        ("b...,b...->b", [(2, 1), (2, 3)]),
    ],
)
def test_einsum_broadcasts_a_size_one_dim_under_the_ellipsis_like_torch(check_op, device, spec, shapes):
    arrays = [np.random.default_rng(k).standard_normal(s) for k, s in enumerate(shapes)]
    check_op(lambda *t: ds.einsum(spec, *t), lambda *t: torch.einsum(spec, *t), arrays, device=device)


def test_cross_needs_size_3_along_dim_as_torch() -> None:
    torch = pytest.importorskip("torch")
    with pytest.raises(RuntimeError):
        torch.cross(torch.randn(2, 4), torch.randn(2, 4), dim=1)
    with pytest.raises(ds.errors.ShapeError, match=r"cross: .*size 3 along dim 1, got shapes \(2, 4\) and \(2, 4\)"):
        ds.cross(ds.randn(2, 4), ds.randn(2, 4), dim=1)  # was the cross product of the first 3 entries
    with pytest.raises(ds.errors.ShapeError, match="cross"):
        ds.linalg.cross(ds.randn(3, 2), ds.randn(3, 2))
    a, b = np.random.RandomState(0).randn(2, 2, 3).astype(np.float32)
    np.testing.assert_allclose(
        ds.linalg.cross(ds.tensor(a), ds.tensor(b)).numpy(),
        torch.linalg.cross(torch.tensor(a), torch.tensor(b)).numpy(),
        rtol=1e-6,
    )
